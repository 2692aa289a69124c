"""canirun: which AI models and serving frameworks can this machine host, and how?

The package is imported by every command, so it stays empty of work: each layer
(hardware probe, catalog, estimator, report, output) is imported only by the
commands that need it. The Python API (``canirun.probe``, ``canirun.scan``,
``canirun.check``; see ``canirun.api``) is loaded on first use for the same reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from canirun.api import check, local, probe, scan
    from canirun.errors import InputError

_LAZY = {
    "probe": "canirun.api",
    "scan": "canirun.api",
    "check": "canirun.api",
    "local": "canirun.api",
    "InputError": "canirun.errors",
}

__all__ = ["InputError", "__version__", "check", "local", "probe", "scan"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'canirun' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
