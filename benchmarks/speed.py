"""Decode and prefill speed: canirun's estimate against llama.cpp measured on this machine.

    python benchmarks/speed.py [--shapes llama-3.2-1b,mistral-7b] [--layers 8] [--threads N]

Needs llama-cpp-python and gguf (a benchmark-only dependency, not canirun's):
``pip install llama-cpp-python==0.3.36 gguf numpy`` into any venv, then run this with that
venv's Python and ``PYTHONPATH=src``. GGUF files of the published widths are written with
random weights (scripts/measure_llamacpp.py's writer), quantised with llama.cpp itself,
loaded on the CPU backend, and timed:

- prefill: one batch of ``--prompt`` tokens (time to first token of that prompt);
- decode: ``--decode`` single tokens after it (the memory-bound phase canirun estimates).

canirun's decode estimate is its own code path: the GGUF weight bytes from the per-tensor
recipe (estimate/gguf.py), the KV cache read at that position, and decode_speed() on a
CPU placement with the RAM bandwidth canirun measures (or --ram-bandwidth). The prefill
estimate is canirun's too (estimate/speed.py): 2 FLOPs per weight plus attention, at usable
cores x clock x FLOP/cycle for the instruction set (capacity.cpu_flops; --flops-per-cycle
overrides it when llama.cpp was built without AVX-512) x PREFILL_EFFICIENCY. The clock is
read from /proc/cpuinfo here because VMs often hide the maximum frequency. Each figure is
the best of --repeats runs (other work on a shared machine only slows a run down). Not a
test: it prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def _arch(shape: dict, layers: int):  # type: ignore[no-untyped-def]
    from canirun.catalog.schema import Arch

    return Arch(
        layers=layers,
        hidden=shape["hidden"],
        heads=shape["heads"],
        kv_heads=shape["kv_heads"],
        head_dim=shape["head_dim"],
        intermediate=shape["ffn"],
        vocab=shape["vocab"],
        max_context=131072,
        tied_embeddings=shape["tied"],
        gguf_arch="llama",
        source="https://github.com/ggml-org/llama.cpp",
    )


def _estimate(arch, ftype: str, position: int, bandwidth: int) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    from canirun.estimate.capacity import Capacity
    from canirun.estimate.gguf import gguf_weight_bytes
    from canirun.estimate.kv import kv_cache_bytes
    from canirun.estimate.placement import Placement
    from canirun.estimate.speed import decode_speed

    cap = Capacity(
        gpus=(),
        ram_usable_bytes=None,
        ram_total_bytes=None,
        ram_bandwidth_bytes_per_s=bandwidth,
        disk_free_bytes=None,
        disk_path=None,
        os="linux",
        arch="x86_64",
        docker=None,
    )
    weights = gguf_weight_bytes(arch, "llama", ftype)
    kv = kv_cache_bytes(arch, position)
    speed = decode_speed(Placement("cpu"), cap, weights, kv)
    assert speed is not None
    assert speed.low is not None
    assert speed.high is not None
    return speed.low, speed.high, weights


def _prefill_estimate(arch, flops: float, prompt: int) -> float:  # type: ignore[no-untyped-def]
    from canirun.estimate.params import active_decoder_params
    from canirun.estimate.speed import PREFILL_EFFICIENCY, prefill_flops_per_token

    width = arch.heads * arch.effective_head_dim
    per_token = prefill_flops_per_token(active_decoder_params(arch), arch.layers, width, prompt)
    return flops * PREFILL_EFFICIENCY / per_token


def _clock_hz() -> float | None:
    try:
        mhz = [
            float(line.split(":")[1])
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("cpu MHz")
        ]
    except OSError:
        return None
    return max(mhz) * 1e6 if mhz else None


def _time(path: Path, threads: int, prompt: int, decode: int) -> tuple[float, float]:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=prompt + decode + 16,
        n_batch=prompt,
        n_ubatch=prompt,
        n_threads=threads,
        n_threads_batch=threads,
        use_mmap=False,
        verbose=False,
    )
    tokens = [259 + (i * 7919) % 1000 for i in range(prompt)]
    start = time.perf_counter()
    llm.eval(tokens)
    prefill = prompt / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(decode):
        llm.eval([300 + i])
    dec = decode / (time.perf_counter() - start)
    del llm
    return prefill, dec


def _make(workdir: Path, name: str, shape: dict, layers: int, ftype: str) -> Path:
    import llama_cpp
    from scripts.measure_llamacpp import write_gguf

    f16 = workdir / f"{name}-{layers}L-F16.gguf"
    if not f16.exists():
        write_gguf(f16, shape, layers)
    if ftype == "F16":
        return f16
    out = workdir / f"{name}-{layers}L-{ftype}.gguf"
    if not out.exists():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = {"Q8_0": 7, "Q4_K_M": 15, "Q4_0": 2}[ftype]
        params.nthread = os.cpu_count() or 1
        rc = llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), params)
        if rc != 0:
            raise SystemExit(f"quantize {ftype} failed ({rc})")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="llama-3.2-1b,mistral-7b")
    parser.add_argument("--layers", type=int, default=8, help="layers for the 7B-class shapes")
    parser.add_argument("--types", default="Q4_K_M,Q8_0")
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--decode", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--ram-bandwidth", type=float, help="GB/s; default: canirun measures")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--flops-per-cycle", type=int, help="default: from this CPU's flags")
    args = parser.parse_args()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("llama-cpp-python is not installed: see the docstring", file=sys.stderr)
        return 0
    from scripts.measure_llamacpp import SHAPES

    from canirun.hardware import probe

    bandwidth = round(args.ram_bandwidth * 1e9) if args.ram_bandwidth else None
    # The probe's own test: a safe share of free memory, one thread per usable core.
    measured = probe(measure_bandwidth=True).hardware.memory.bandwidth_bytes_per_s
    bandwidth = bandwidth or measured or 0
    from canirun.estimate.capacity import cpu_flops
    from canirun.hardware.cpu import parse_cpuinfo

    clock = _clock_hz()
    flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text()).flags
    flops = cpu_flops(args.threads, clock / 1e6 if clock else None, flags)
    if flops and args.flops_per_cycle and clock:
        flops = round(args.threads * clock * args.flops_per_cycle)
    print(
        f"RAM bandwidth {bandwidth / 1e9:.1f} GB/s (canirun), {args.threads} threads, "
        f"clock {clock / 1e9 if clock else 0:.2f} GHz -> {(flops or 0) / 1e9:.0f} GFLOP/s peak"
    )
    header = (
        f"{'file':<26}{'GB':>6}{'decode meas':>12}{'est':>12}{'ratio':>7}"
        f"{'prefill meas':>14}{'est':>12}{'ratio':>7}"
    )
    print(header)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="canirun-speed-"))
    decode_ratios, prefill_ratios = [], []
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        layers = shape["real_layers"] if shape["real_layers"] <= 16 else args.layers
        arch = _arch(shape, layers)
        for ftype in args.types.split(","):
            path = _make(workdir, name, shape, layers, ftype)
            runs = [
                _time(path, args.threads, args.prompt, args.decode) for _ in range(args.repeats)
            ]
            prefill, dec = max(r[0] for r in runs), max(r[1] for r in runs)
            low, high, wbytes = _estimate(arch, ftype, args.prompt + args.decode // 2, bandwidth)
            mid = (low + high) / 2
            decode_ratios.append(dec / mid)
            p_est = _prefill_estimate(arch, flops, args.prompt) if flops else None
            if p_est:
                prefill_ratios.append(prefill / p_est)
            print(
                f"{path.stem[:25]:<26}{wbytes / 1e9:>6.2f}{dec:>12.2f}{f'{low:.2f}-{high:.2f}':>12}"
                f"{dec / mid:>7.2f}{prefill:>14.1f}{(p_est or 0):>12.1f}"
                f"{(prefill / p_est if p_est else 0):>7.2f}"
            )
    if decode_ratios:
        print(f"\ndecode measured/estimated: median {statistics.median(decode_ratios):.2f}")
    if prefill_ratios:
        print(f"prefill measured/estimated: median {statistics.median(prefill_ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
