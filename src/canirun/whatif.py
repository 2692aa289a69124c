"""What-if hardware: replace or adjust a host's GPUs and RAM from flags.

``--gpu "2x A100 80GB"`` takes GPUs from the catalog's GPU table,
``--vram 24GB`` sets every GPU's memory, ``--ram 64GB`` sets the RAM. Figures
set this way are listed in ``hardware.assumed``. Pure: no probing.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache

import msgspec

from canirun.catalog.schema import Gpu as GpuSpec
from canirun.errors import InputError
from canirun.estimate.capacity import match_gpu_spec, normalize_gpu_name
from canirun.hardware.model import Gpu, Hardware, Host, ProbeIssue


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """A count, a stray count and a size in a --gpu value: compiled for the first --gpu,
    not at every start (issue 15)."""
    return (
        re.compile(r"^\s*(\d+)\s*[x×*]\s*(.+?)\s*$", re.IGNORECASE),
        # Anything else that looks like a count ("-1x", "2x 3x", "1.5x", "x2") is refused:
        # the name match is lenient (it finds "RTX 4090" inside longer names), so a stray
        # count would otherwise be silently dropped.
        re.compile(
            r"(^|\s)[-+]?\d*(\.\d+)?\s*[x×*]\s*\d*(\s|$)|(^|\s)[-+]\d|^\s*[x×*]", re.IGNORECASE
        ),
        # A memory size after a unified-memory chip's name: "M3 Max 64GB", "Ryzen AI Max 96 GB".
        re.compile(r"^(.*?)[\s(]+(\d+)\s*(?:GB|GiB)\)?\s*$", re.IGNORECASE),
    )


GIB = 2**30


class WhatIf(msgspec.Struct, frozen=True):
    gpus: tuple[str, ...] = ()  # "RTX 4090", "2x A100 80GB"
    vram: int | None = None
    ram: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.gpus) or self.vram is not None or self.ram is not None


def _exact_name(text: str, specs: tuple[GpuSpec, ...]) -> GpuSpec | None:
    key = normalize_gpu_name(text)
    for spec in specs:
        if key in {normalize_gpu_name(n) for n in (spec.name, *spec.aliases)}:
            return spec
    return None


def parse_gpu(text: str, specs: tuple[GpuSpec, ...]) -> tuple[int, GpuSpec]:
    count, spec, _ = parse_gpu_sized(text, specs)
    return count, spec


def parse_gpu_sized(text: str, specs: tuple[GpuSpec, ...]) -> tuple[int, GpuSpec, int]:
    """(count, catalog GPU, memory): a unified chip may name one of its memory sizes."""
    exact = _exact_name(text, specs)
    if exact is not None:  # "7900 XTX" is a name, not 7900 x "TX"
        return 1, exact, exact.memory_bytes
    match = _patterns()[0].match(text)
    digits = match.group(1) if match else "1"
    count, name = (int(digits[-3:]), match.group(2)) if match else (1, text.strip())
    if _patterns()[1].search(name) or re.match(r"^\s*[-+]", text):
        raise InputError(
            f"--gpu {text!r}: write one optional count then a name, e.g. 'RTX 4090' or "
            "'2x A100 80GB' (a count from 1 to 64)"
        )
    if count < 1 or count > 64 or len(digits.lstrip("0")) > 2:
        raise InputError(f"--gpu {text!r}: the count must be between 1 and 64")
    spec = match_gpu_spec(name, specs)
    if spec is None:
        raise InputError(f"--gpu {text!r}: not in the GPU table (see `canirun gpus`)")
    if spec.unified_memory and count > 1:
        raise InputError(
            f"--gpu {text!r}: {spec.name} is a whole machine with one memory pool; name it once"
        )
    sized = _patterns()[2].match(name)
    if not spec.unified_memory or sized is None:
        return count, spec, spec.memory_bytes
    base = match_gpu_spec(sized.group(1), specs)
    spec = base if base is not None and base.unified_memory else spec
    size = int(sized.group(2)) * GIB
    if spec.memory_options and size not in spec.memory_options_bytes:
        sold = ", ".join(f"{m // GIB}" for m in sorted(spec.memory_options_bytes))
        raise InputError(f"--gpu {text!r}: {spec.name} comes with {sold} GB")
    return count, spec, size


def _from_spec(spec: GpuSpec, index: int, memory: int | None = None) -> Gpu:
    memory = memory or spec.memory_bytes
    name = spec.name if memory == spec.memory_bytes else _resized_name(spec.name, memory)
    return Gpu(
        vendor=spec.vendor,
        name=name,
        memory_total_bytes=memory,
        memory_free_bytes=memory,
        index=index,
        compute_capability=spec.compute_capability,
        memory_bandwidth_bytes_per_s=spec.bandwidth_bytes_per_s,
        memory_bandwidth_source=f"catalog ({spec.name})",
        unified_memory=spec.unified_memory,
        arch=spec.gfx_target,
        memory_source=f"catalog ({spec.name})",
    )


def _resized_name(name: str, memory: int) -> str:
    """ "Apple M3 Max, 40-core GPU (128GB)" at 64 GiB -> "... (64GB)"."""
    size = f"({round(memory / GIB)}GB)"
    return re.sub(r"\(\d+GB\)$", size, name) if re.search(r"\(\d+GB\)$", name) else f"{name} {size}"


def _as_a_mac(hw: Hardware) -> Hardware:
    """An Apple GPU only exists in a Mac: the what-if machine runs macOS on arm64, so
    macOS-only frameworks (mlx-lm) are judged as they would be there. The CPU's
    features stay this host's (the CPU is not what --gpu describes)."""
    os_info = replace(hw.os, system="Darwin", machine="arm64", container=False)
    cpu = replace(hw.cpu, arch="arm64")
    assumed = (*hw.assumed, "os (an Apple GPU is in a Mac: macOS on arm64)")
    return replace(hw, os=os_info, cpu=cpu, assumed=assumed)


def apply(host: Host, what: WhatIf, specs: tuple[GpuSpec, ...]) -> Host:
    if not what.active:
        return host
    hw = host.hardware
    assumed = list(hw.assumed)
    notes: list[ProbeIssue] = []
    gpus = list(hw.gpus)
    if what.gpus:
        gpus = []
        for text in what.gpus:
            count, spec, size = parse_gpu_sized(text, specs)
            gpus += [_from_spec(spec, len(gpus) + i, size) for i in range(count)]
        assumed.append("gpus (from --gpu)")
    unified = [g for g in gpus if g.unified_memory]
    if what.vram is not None:
        if unified:
            raise InputError(
                f"--vram: {unified[0].name} shares memory with the CPU; "
                "set its size with --ram instead"
            )
        if not gpus:
            gpus = [Gpu(vendor="nvidia", name="what-if GPU", memory_total_bytes=None, index=0)]
            notes.append(
                ProbeIssue(
                    "what-if",
                    "--vram without --gpu: a GPU of unknown model, so no compute capability "
                    "minimum or bandwidth can be checked; name one with --gpu",
                    "warning",
                )
            )
        gpus = [replace(g, memory_total_bytes=what.vram, memory_free_bytes=what.vram) for g in gpus]
        assumed.append("gpus[].memory (from --vram)")
    memory = hw.memory
    if what.gpus and unified and what.ram is None:
        # A unified machine's memory is the machine's RAM: describe that machine,
        # not this host's RAM.
        pool = unified[0].memory_total_bytes
        memory = replace(
            memory, total_bytes=pool, available_bytes=pool, limit_bytes=None, limit_used_bytes=None
        )
        assumed.append("memory (the unified memory of the --gpu machine, all free)")
    if what.ram is not None:
        memory = replace(
            memory,
            total_bytes=what.ram,
            available_bytes=what.ram,
            limit_bytes=None,
            limit_used_bytes=None,
        )
        assumed.append("memory (from --ram)")
        # On a unified machine --ram sizes the one pool the GPU draws from too.
        gpus = [
            replace(
                g,
                name=_resized_name(g.name, what.ram),
                memory_total_bytes=what.ram,
                memory_free_bytes=what.ram,
            )
            if g.unified_memory
            else g
            for g in gpus
        ]
    note = ProbeIssue("what-if", "hardware changed by --gpu/--vram/--ram: not this machine", "info")
    new_hw = replace(hw, gpus=tuple(gpus), memory=memory, assumed=tuple(assumed))
    if what.gpus and any(g.vendor == "apple" for g in gpus):
        new_hw = _as_a_mac(new_hw)
    return replace(host, hardware=new_hw, issues=(*host.issues, note, *notes), basis="what-if")
