"""Which GPU runtime (backend) a framework would use on a GPU, from catalog data.

A GPU offers the runtimes the probe found (``Gpu.runtimes``; a hand-written
file without them offers every backend of its vendor). A framework uses the
first backend, in ``backends.toml`` order, that offers the GPU and lists the
framework, with the GPU's architecture among the framework's targets where the
data restricts them (Ollama's and vLLM's ROCm gfx lists). A framework that no
backend lists is judged by its vendor list alone, as before backends existed.
"""

from __future__ import annotations

import msgspec

from canirun.catalog.schema import Backend, Framework


class Choice(msgspec.Struct, frozen=True):
    backend: str | None  # None: no backend data for this framework (vendor check only)
    usable: bool
    reason: str | None = None


def offered(vendor: str, runtimes: tuple[str, ...], backends: tuple[Backend, ...]) -> list[Backend]:
    """The backends a GPU offers, in the data's order of preference."""
    mine = [b for b in backends if vendor in b.vendors]
    return [b for b in mine if b.id in runtimes] if runtimes else mine


def choose(
    vendor: str,
    arch: str | None,
    runtimes: tuple[str, ...],
    framework: Framework,
    backends: tuple[Backend, ...],
    precision: str | None = None,
) -> Choice:
    if not any(framework.id in b.frameworks for b in backends):
        return Choice(None, True)
    refused = []
    for backend in offered(vendor, runtimes, backends):
        if framework.id not in backend.frameworks:
            continue
        if precision is not None and precision in backend.unsupported_precisions:
            refused.append(f"{backend.name} cannot run {precision} weights")
            continue
        targets = backend.targets_for(framework.id)
        if targets is not None and arch is not None and arch not in targets:
            refused.append(f"{backend.name} builds of {framework.name} do not ship {arch}")
            continue
        return Choice(backend.id, True)
    here = ", ".join(b.name for b in offered(vendor, runtimes, backends)) or "none"
    why = "; ".join(refused) or f"no runtime {framework.name} uses is available (here: {here})"
    return Choice(None, False, why)


def context_bytes(backend: Backend, ggml: bool) -> int:
    return backend.ggml_context_bytes if ggml else backend.torch_context_bytes
