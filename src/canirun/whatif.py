"""What-if hardware: replace or adjust a host's GPUs and RAM from flags.

``--gpu "2x A100 80GB"`` takes GPUs from the catalog's GPU table,
``--vram 24GB`` sets every GPU's memory, ``--ram 64GB`` sets the RAM. Figures
set this way are listed in ``hardware.assumed``. Pure: no probing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from canirun.catalog.schema import Gpu as GpuSpec
from canirun.errors import InputError
from canirun.estimate.capacity import match_gpu_spec
from canirun.hardware.model import Gpu, Host, ProbeIssue

_COUNT = re.compile(r"^\s*(\d+)\s*[x×*]\s*(.+?)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WhatIf:
    gpus: tuple[str, ...] = ()  # "RTX 4090", "2x A100 80GB"
    vram: int | None = None
    ram: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.gpus) or self.vram is not None or self.ram is not None


def parse_gpu(text: str, specs: tuple[GpuSpec, ...]) -> tuple[int, GpuSpec]:
    match = _COUNT.match(text)
    digits = match.group(1) if match else "1"
    count, name = (int(digits[-3:]), match.group(2)) if match else (1, text.strip())
    if count < 1 or count > 64 or len(digits.lstrip("0")) > 2:
        raise InputError(f"--gpu {text!r}: the count must be between 1 and 64")
    spec = match_gpu_spec(name, specs)
    if spec is None:
        raise InputError(f"--gpu {text!r}: not in the GPU table (see `canirun gpus`)")
    return count, spec


def _from_spec(spec: GpuSpec, index: int) -> Gpu:
    memory = spec.memory_bytes
    return Gpu(
        vendor=spec.vendor,
        name=spec.name,
        memory_total_bytes=memory,
        memory_free_bytes=memory,
        index=index,
        compute_capability=spec.compute_capability,
        memory_bandwidth_bytes_per_s=spec.bandwidth_bytes_per_s,
        memory_bandwidth_source=f"catalog ({spec.name})",
        unified_memory=spec.unified_memory,
    )


def apply(host: Host, what: WhatIf, specs: tuple[GpuSpec, ...]) -> Host:
    if not what.active:
        return host
    hw = host.hardware
    assumed = list(hw.assumed)
    gpus = list(hw.gpus)
    if what.gpus:
        gpus = []
        for text in what.gpus:
            count, spec = parse_gpu(text, specs)
            gpus += [_from_spec(spec, len(gpus) + i) for i in range(count)]
        assumed.append("gpus (from --gpu)")
    if what.vram is not None:
        unified = [g.name for g in gpus if g.unified_memory]
        if unified:
            raise InputError(
                f"--vram: {unified[0]} shares memory with the CPU; set its size with --ram instead"
            )
        if not gpus:
            gpus = [Gpu(vendor="nvidia", name="what-if GPU", memory_total_bytes=None, index=0)]
        gpus = [replace(g, memory_total_bytes=what.vram, memory_free_bytes=what.vram) for g in gpus]
        assumed.append("gpus[].memory (from --vram)")
    memory = hw.memory
    if what.ram is not None:
        memory = replace(
            memory,
            total_bytes=what.ram,
            available_bytes=what.ram,
            limit_bytes=None,
            limit_used_bytes=None,
        )
        assumed.append("memory (from --ram)")
    note = ProbeIssue("what-if", "hardware changed by --gpu/--vram/--ram: not this machine", "info")
    new_hw = replace(hw, gpus=tuple(gpus), memory=memory, assumed=tuple(assumed))
    return replace(host, hardware=new_hw, issues=(*host.issues, note))
