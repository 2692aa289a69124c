"""Optional: AMD's ``amdsmi`` binding, used only when it is installed, never required.

Sysfs and KFD already give every sizing figure (amd.py). What amdsmi adds is the
marketing name of a card libdrm's ``amdgpu.ids`` does not know yet (new boards,
old distributions) and the driver version. Its loader prints the library error
at import time when ROCm's ``libamd_smi.so`` is missing, so the import runs with
stdout silenced and every failure (ImportError, OSError, KeyError, its own
exception) means "not available". The seam is the ``module`` argument.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from typing import Any


def load_amdsmi() -> Any | None:
    if importlib.util.find_spec("amdsmi") is None:
        return None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import amdsmi  # type: ignore[import-not-found,unused-ignore]
    except Exception:  # ImportError, OSError, KeyError: the library is not usable
        return None
    return amdsmi


def names_by_address(module: Any | None) -> dict[str, tuple[str | None, str | None]]:
    """PCI address -> (market name, driver version) for every GPU amdsmi sees."""
    if module is None:
        return {}
    out: dict[str, tuple[str | None, str | None]] = {}
    try:
        module.amdsmi_init()
    except Exception:
        return {}
    try:
        for handle in module.amdsmi_get_processor_handles():
            try:
                address = str(module.amdsmi_get_gpu_device_bdf(handle)).lower()
                name = module.amdsmi_get_gpu_asic_info(handle).get("market_name")
                driver = module.amdsmi_get_gpu_driver_info(handle).get("driver_version")
            except Exception:
                continue
            usable = name if name and name != "N/A" else None
            out[address] = (usable, str(driver) if driver else None)
    except Exception:
        return out
    finally:
        with contextlib.suppress(Exception):
            module.amdsmi_shut_down()
    return out
