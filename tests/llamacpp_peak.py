"""canirun's llama.cpp CPU estimate against peak resident memory measured with the context filled.

The [[peak_rss]] rows of tests/reference/llamacpp-measured.toml were produced by
``scripts/measure_llamacpp.py --parts peak``: a prompt of n_ctx - 16 tokens, then 8 generated,
use_mmap off, CPU backend, VmHWM of a fresh process. Shared by tests/test_llamacpp_measured.py
and benchmarks/llamacpp_rss.py.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from canirun.catalog.schema import Arch

MIB = 2**20
REFERENCE = Path(__file__).parent / "reference" / "llamacpp-measured.toml"


@dataclass(frozen=True, slots=True)
class PeakComparison:
    label: str
    estimate: int  # bytes canirun plans in RAM
    measured: int  # peak resident bytes (VmHWM)
    terms: dict[str, int]

    @property
    def error(self) -> float:
        return self.estimate / self.measured - 1


def peak_rows() -> list[dict[str, object]]:
    """The [[peak_rss]] loads, and the earlier [[rss]] loads of the real 16-layer Llama 3.2 1B
    shape at 4,096 tokens with mmap off (the context filled to n_ctx - 1 tokens in ubatches,
    no tokens generated; VmHWM at the end)."""
    data = tomllib.loads(REFERENCE.read_text())
    real_depth = [
        dict(r, file_bytes=round(float(r["file_mib"]) * MIB), kv_type="f16")
        for r in data["rss"]
        if not r["use_mmap"]
    ]
    return [*data["peak_rss"], *real_depth]


def arch_of(row: dict[str, object]) -> Arch:
    """The measured file's shape (rows without a layer count are the 4-layer files)."""
    return Arch(
        layers=int(row.get("layers", 4)),  # type: ignore[call-overload]
        hidden=row["hidden"],
        heads=row["heads"],
        kv_heads=row["kv_heads"],
        head_dim=row["head_dim"],
        intermediate=row["ffn"],
        vocab=row["vocab"],
        max_context=131072,
        source="https://example.org/measured",
    )  # type: ignore[arg-type]


def compare(row: dict[str, object]) -> PeakComparison:
    """What `check` plans in RAM for this load: the GGUF file as the weights (canirun sizes a
    known file by its bytes), the KV cache, the compute buffer as touched, the process."""
    from canirun.catalog import load_catalog
    from canirun.estimate.kv import kv_cache_bytes
    from canirun.estimate.results import Workload
    from canirun.estimate.runtime import llm_overheads

    arch = arch_of(row)
    framework = load_catalog(user_dir=False).framework_by_id["llama.cpp"]
    wl = Workload(
        context_tokens=int(row["n_ctx"]),  # type: ignore[call-overload]
        flash_attention=bool(row["flash_attn"]),
        kv_cache_type=str(row["kv_type"]),
    )
    over = llm_overheads(framework, arch, wl, "ggml", precision=str(row["precision"]))
    terms = {
        "weights": int(row["file_bytes"]),  # type: ignore[call-overload]
        "kv": kv_cache_bytes(arch, wl.context_tokens, cache_type=str(row["kv_type"])),
        "compute": over.cpu_compute,
        "process": over.cpu_process,
    }
    label = (
        f"{row['shape']} L{row['layers']} {row['precision']} ctx {row['n_ctx']} "
        f"fa {'on' if row['flash_attn'] else 'off'} kv {row['kv_type']}"
    )
    measured = round(float(row["peak_rss_mib"]) * MIB)  # type: ignore[arg-type]
    return PeakComparison(label, sum(terms.values()), measured, terms)
