"""Compare what canirun reads from a GGUF file with what llama.cpp allocates for it.

For files written here (Llama 3.2 1B widths, its real 16 layers, random F16 weights,
then quantised by llama.cpp itself so the tensor types are llama.cpp's own mix),
``canirun check FILE`` computes the weights (sum of the tensors), the KV cache and the
compute buffer from the file's header; llama.cpp (through llama-cpp-python) loads the
same file on the CPU and prints its model, KV and compute buffers. This prints both,
side by side, with the difference.

    python -m venv /tmp/llv && . /tmp/llv/bin/activate
    CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install llama-cpp-python==0.3.36 gguf numpy \
        pydantic psutil platformdirs typer nvidia-ml-py
    PYTHONPATH=src python scripts/compare_local_llamacpp.py [--workdir /tmp/llcompare]

Measured 2026-12-01 (llama-cpp-python 0.3.36, CPU backend, 2 cores), for F16, Q8_0 and
Q4_K_M (llama.cpp's own quantiser) at n_ctx 4096 and 16384: weights (the sum of the
file's tensors) equal llama.cpp's model buffers (mmap off: CPU + CPU_REPACK) to the byte
as printed (2357.26, 1252.41, 762.81 MiB); the KV cache equals llama.cpp's (128.00 and
512.00 MiB); the compute buffer is 0.04-0.17 % above llama.cpp's (286.49 vs 286.01 MiB,
1078.49 vs 1078.01 MiB).

Uses the file writer, quantiser and log parser of ``scripts/measure_llamacpp.py``.
About 5 minutes on 2 cores; ~4 GB of disk under --workdir (deleted unless --keep).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import measure_llamacpp as m

MiB = 2**20
CONTEXTS = (4096, 16384)


def canirun_side(path: Path, n_ctx: int) -> dict[str, float]:
    from canirun.catalog.gguf_model import gguf_model
    from canirun.estimate.kv import kv_cache_bytes
    from canirun.estimate.runtime import llamacpp_compute_buffer

    model = gguf_model(path)
    assert model.arch is not None, model.arch_missing
    return {
        "weights": model.weights_bytes / MiB,
        "kv": kv_cache_bytes(model.arch, n_ctx) / MiB,
        "compute": llamacpp_compute_buffer(model.arch, n_ctx, 1, False) / MiB,
        "precision": model.precision,  # type: ignore[dict-item]
    }


def llamacpp_side(path: Path, n_ctx: int, threads: int) -> dict[str, float]:
    # use_mmap off: llama.cpp then allocates every tensor (CPU, plus CPU_REPACK for the
    # types it repacks), so its model buffers are the tensor bytes. With mmap on, the
    # CPU_Mapped buffer is the mapped file range instead, and repacked tensors count twice.
    r = m.load(path, threads, n_ctx, use_mmap=False)
    buffers = r.get("model_buffers") or {}
    return {
        "weights": sum(buffers.values()),
        "kv": (r.get("kv") or {}).get("size_mib", float("nan")),
        "compute": m.cpu_compute(r) or float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/llcompare"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--types", default="F16,Q8_0,Q4_K_M")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    name, layers = "llama-3.2-1b", 16
    f16 = m.ensure_gguf(args.workdir, name, layers)
    files = []
    for ftype in args.types.split(","):
        if ftype == "F16":
            files.append(f16)
        else:
            files.append(m.ensure_quant(args.workdir, f16, name, layers, ftype, args.threads))
    head = ("file", "n_ctx", "what", "canirun MiB", "llama.cpp MiB", "diff")
    print(f"{head[0]:<28} {head[1]:>6}  {head[2]:<8} {head[3]:>12} {head[4]:>14} {head[5]:>8}")
    for path in files:
        for n_ctx in CONTEXTS:
            ours = canirun_side(path, n_ctx)
            theirs = llamacpp_side(path, n_ctx, args.threads)
            for what in ("weights", "kv", "compute"):
                a, b = ours[what], theirs[what]
                diff = f"{(a / b - 1) * 100:+.2f}%" if not math.isnan(b) and b else "n/a"
                print(f"{path.name:<28} {n_ctx:>6}  {what:<8} {a:>12.2f} {b:>14.2f} {diff:>8}")
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
