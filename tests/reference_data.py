"""Published figures from tests/reference/*.toml, and canirun's estimates of each.

Shared by tests/test_reference.py (which asserts the targets) and
benchmarks/accuracy.py (which prints median and worst errors per kind).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from canirun.catalog import Catalog, load_catalog
from canirun.estimate import gguf
from canirun.estimate.kv import kv_cache_bytes
from canirun.estimate.need import build_need
from canirun.estimate.placement import GPU_HEADROOM_MIN, GPU_HEADROOM_SHARE
from canirun.estimate.precision import PRECISIONS
from canirun.estimate.rate import Options
from canirun.estimate.results import Workload
from canirun.estimate.weights import _formula
from canirun.units import parse_size

REFERENCE = Path(__file__).parent / "reference"


@dataclass(frozen=True)
class Comparison:
    kind: str  # gguf_file, weights_file, mlx_file, kv_cache, runtime
    label: str
    published: int
    estimated: int | None
    source: str

    @property
    def error(self) -> float | None:
        if self.estimated is None:
            return None
        return self.estimated / self.published - 1


def rows(kind: str) -> Iterator[tuple[str, dict[str, object]]]:
    for path in sorted(REFERENCE.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for row in data.get(kind, []):
            if "variant" in row:  # llamacpp-measured.toml describes shapes, not variants
                yield path.name, row


def _size(row: dict[str, object]) -> int:
    if "bytes" in row:
        return int(row["bytes"])  # type: ignore[call-overload]
    return parse_size(str(row.get("size") or row.get("amount")))


def gguf_files(catalog: Catalog) -> Iterator[Comparison]:
    """Formula-only GGUF sizes (never the catalog's stored file) against real files."""
    for _, row in rows("gguf_file"):
        ref = catalog.variant_by_id[str(row["variant"])]
        arch = ref.variant.arch
        precision = str(row["precision"])
        if arch is None or arch.gguf_arch is None or precision not in gguf.FILE_TYPES:
            continue
        est = gguf.gguf_weight_bytes(arch, arch.gguf_arch, precision)
        label = f"{row['variant']} {precision}"
        yield Comparison("gguf_file", label, _size(row), est, str(row["source"]))


def weights_files(catalog: Catalog) -> Iterator[Comparison]:
    for _, row in rows("weights_file"):
        ref = catalog.variant_by_id.get(str(row["variant"]))
        precision = PRECISIONS.get(str(row["precision"]))
        if ref is None or precision is None or precision.family != "torch":
            continue
        formula = _formula(ref.model, ref.variant, precision)
        est = formula[0] if formula else None
        label = f"{row['variant']} {precision.name}"
        yield Comparison("weights_file", label, _size(row), est, str(row["source"]))


def mlx_files(catalog: Catalog) -> Iterator[Comparison]:
    """mlx_lm.convert -q outputs (mlx-community safetensors) against the MLX formula."""
    for _, row in rows("mlx_file"):
        ref = catalog.variant_by_id[str(row["variant"])]
        precision = PRECISIONS[str(row["precision"])]
        assert precision.family == "mlx", row
        formula = _formula(ref.model, ref.variant, precision)
        est = formula[0] if formula else None
        label = f"{row['variant']} {precision.name}"
        yield Comparison("mlx_file", label, _size(row), est, str(row["source"]))


def kv_caches(catalog: Catalog) -> Iterator[Comparison]:
    for _, row in rows("kv_cache"):
        ref = catalog.variant_by_id[str(row["variant"])]
        arch = ref.variant.arch
        assert arch is not None
        ctx = int(row["context"])  # type: ignore[call-overload]
        runtime = str(row.get("runtime", "llama.cpp"))  # the rows are llama.cpp prints
        est = kv_cache_bytes(arch, ctx, cache_type=str(row["cache_type"]), runtime=runtime)  # type: ignore[arg-type]
        yield Comparison(
            "kv_cache", f"{row['variant']} @{ctx}", _size(row), est, str(row["source"])
        )


def runtimes(catalog: Catalog) -> Iterator[Comparison]:
    """The smallest GPU canirun accepts for a published runtime figure's exact setting."""
    for _, row in rows("runtime"):
        if row.get("resource", "vram") != "vram":
            continue
        ref = catalog.variant_by_id.get(str(row["variant"]))
        fw = catalog.framework_by_id.get(str(row.get("framework")))
        precision = PRECISIONS.get(str(row.get("precision", "fp16")))
        if ref is None or fw is None or precision is None:
            continue
        workload = Workload(
            context_tokens=int(row.get("context", 4096)),  # type: ignore[call-overload]
            batch=int(row["batch"]) if "batch" in row else None,  # type: ignore[call-overload]
            resolution=int(row["resolution"]) if "resolution" in row else None,  # type: ignore[call-overload]
        )
        from canirun.estimate.weights import weights

        w = weights(ref.model, ref.variant, precision)
        if w is None:
            continue
        need, _ = build_need(ref, fw, precision, w, workload)
        over = need.overheads
        planned = need.weights + need.kv + over.gpu_compute + over.gpu_per_device
        if row.get("offload"):
            # Only pipelines staged by component role model what offloading keeps resident.
            if need.offload_peak is None:
                continue
            planned = need.offload_peak + over.gpu_per_device
        # The smallest GPU canirun accepts for it: the need plus canirun's headroom.
        est = max(planned + GPU_HEADROOM_MIN, round(planned / (1 - GPU_HEADROOM_SHARE)))
        label = f"{row['variant']} {fw.id} {precision.name}"
        if row.get("batch"):
            label += f" batch {row['batch']}"
        if row.get("offload"):
            label += " offload"
        yield Comparison("runtime", label, _size(row), est, str(row["source"]))


def quantized_footprints() -> Iterator[Comparison]:
    """canirun's int8/int4 weight formula against quantized loads Transformers measured.

    The published figure is the fp16 footprint / the quantized one; the fp16 footprint is
    params x 2 bytes, so the published quantized size is params x 2 / ratio.
    """
    from canirun.catalog.constraints import validated
    from canirun.catalog.schema import Arch
    from canirun.estimate.params import decoder_params, embedding_params, output_params
    from canirun.estimate.precision import torch_bytes_per_param

    for path in sorted(REFERENCE.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for row in data.get("quantized_footprint", []):
            arch = validated(Arch, row["arch"])
            total = int(row["params"])  # type: ignore[call-overload]
            published = round(total * 2 / float(row["ratio"]))  # type: ignore[arg-type]
            linear = decoder_params(arch) - embedding_params(arch) - output_params(arch)
            per_param = torch_bytes_per_param(str(row["precision"]))
            est = round(linear * per_param + (total - linear) * 2)
            label = f"{row['model']} {row['precision']}"
            yield Comparison("quantized_footprint", label, published, est, str(row["source"]))


def all_comparisons() -> list[Comparison]:
    catalog = load_catalog(user_dir=False)
    return [
        *gguf_files(catalog),
        *weights_files(catalog),
        *mlx_files(catalog),
        *kv_caches(catalog),
        *runtimes(catalog),
        *quantized_footprints(),
    ]


__all__ = ["Comparison", "Options", "all_comparisons"]
