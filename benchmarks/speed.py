"""Decode and prefill speed: canirun's estimate against llama.cpp measured on this machine.

    python benchmarks/speed.py [--shapes llama-3.2-1b:16,mistral-7b:8] [--types Q4_K_M,Q8_0]
                               [--lock /tmp/llama.lock] [--from-json runs.jsonl]

Needs llama-cpp-python and gguf (a benchmark-only dependency, not canirun's):
``pip install llama-cpp-python==0.3.36 gguf numpy`` into any venv, then run this with that
venv's Python and ``PYTHONPATH=src``. GGUF files of the published widths are written with
random weights (scripts/measure_llamacpp.py's writer), quantised with llama.cpp itself, and
each timed in a fresh process (benchmarks/speed_child.py), under ``flock --lock`` when given so
that no other llama.cpp measurement runs at the same time:

- prefill: one batch of ``--prompt`` tokens, the faster of two;
- decode: ``--decode`` single tokens after the prompt (short position) and again after the
  context was filled to ``--long`` tokens (long position).

Each phase records the host's load average and the process's CPU time; a run whose decode had
less than 92 % of its threads' time, or started with a load above threads + 1, is repeated (up
to --attempts) and the fastest run is kept: other work on a shared machine only slows a run
down. Per-token times are kept too (the table shows the run's median token rate).

canirun's estimates are its own code paths: decode_speed() on a CPU placement with the GGUF
bytes of the per-tensor recipe, the KV cache at that position, the RAM bandwidth canirun
measures (or --ram-bandwidth), and llama.cpp's CPU work (decode_cycles) at the usable cores and
clock; prefill from with_prefill(). The clock is read from /proc/cpuinfo because VMs often
hide the maximum frequency. Not a test: it prints a table (and --out writes the runs as JSON
lines, which tests/reference/cpu-speed-measured.toml was written from).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

CHILD = Path(__file__).resolve().parent / "speed_child.py"
PHASES = ("prefill", "decode_short", "decode_long")
MIN_BUSY = 0.5  # reference rows need the phase's threads to have run at least half the time
# Widths too narrow for the matrix work to count: what is left is llama.cpp's fixed cost per
# token and layer (graph build, a thread barrier per graph node).
TINY = dict(
    hidden=256, heads=4, kv_heads=4, head_dim=64, ffn=512, vocab=2048, tied=True, real_layers=16
)


def shape_table() -> dict[str, dict]:
    from scripts.measure_llamacpp import SHAPES

    return {**SHAPES, "tiny": TINY}


def arch_of(shape: dict, layers: int):  # type: ignore[no-untyped-def]
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


def capacity_of(bandwidth: int, cores: float, clock_hz: float, flops: int | None):  # type: ignore[no-untyped-def]
    from canirun.estimate.capacity import Capacity

    return Capacity(
        gpus=(),
        ram_usable_bytes=None,
        ram_total_bytes=None,
        ram_bandwidth_bytes_per_s=bandwidth,
        disk_free_bytes=None,
        disk_path=None,
        os="linux",
        arch="x86_64" if os.uname().machine in ("x86_64", "AMD64") else "arm64",
        docker=None,
        cpu_flops_per_s=flops,
        cpu_cores=cores,
        cpu_clock_hz=round(clock_hz),
    )


def estimate(run: dict, cap) -> dict:  # type: ignore[no-untyped-def]
    """canirun's decode (per phase) and prefill estimates for one measured run."""
    from canirun.estimate.gguf import gguf_weight_bytes
    from canirun.estimate.kv import kv_cache_bytes
    from canirun.estimate.params import active_decoder_params
    from canirun.estimate.placement import Placement
    from canirun.estimate.speed import (
        CpuWork,
        attention_cycles,
        cpu_isa,
        decode_cycles,
        decode_speed,
        prefill_flops_per_token,
        with_prefill,
    )

    arch = arch_of(shape_table()[run["shape"]], run["layers"])
    weights = gguf_weight_bytes(arch, "llama", run["ftype"])
    cycles = decode_cycles(arch, "llama", run["ftype"], cpu_isa(cap.arch) or "x86")
    cap = capacity_of(
        cap.ram_bandwidth_bytes_per_s, run["threads"], cap.cpu_clock_hz, cap.cpu_flops_per_s
    )
    out = {}
    for phase in ("decode_short", "decode_long"):
        if phase in run:
            position = run[phase]["position"]
            work = CpuWork(cycles, attention_cycles(arch, position), arch.layers)
            kv = kv_cache_bytes(arch, position)
            speed = decode_speed(Placement("cpu"), cap, weights, kv, work)
            assert speed is not None
            assert speed.low is not None
            assert speed.high is not None
            out[phase] = (speed.low, speed.high)
    if "prefill" not in run:
        return out
    prompt = run["prefill"]["tokens"]
    per_token = prefill_flops_per_token(
        active_decoder_params(arch), arch.layers, arch.heads * arch.effective_head_dim, prompt
    )
    base = decode_speed(Placement("cpu"), cap, weights, 0, CpuWork(cycles, 0, arch.layers))
    pre = with_prefill(base, Placement("cpu"), cap, per_token, prompt, run["ftype"])
    if pre is not None and pre.prefill_tokens_per_second:
        out["prefill"] = (pre.prefill_tokens_per_second, pre.prefill_tokens_per_second)
    return out


def make(workdir: Path, name: str, layers: int, ftype: str, lock: list[str]) -> Path:
    from scripts.measure_llamacpp import write_gguf

    f16 = workdir / f"{name}-{layers}L-F16.gguf"
    if not f16.exists():
        write_gguf(f16.with_suffix(".part"), shape_table()[name], layers)
        f16.with_suffix(".part").rename(f16)
    if ftype == "F16":
        return f16
    out = workdir / f"{name}-{layers}L-{ftype}.gguf"
    if not out.exists():
        code = (
            "import llama_cpp, sys; p = llama_cpp.llama_model_quantize_default_params(); "
            f"p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_{ftype}; p.nthread = {os.cpu_count() or 1}; "
            f"sys.exit(llama_cpp.llama_model_quantize({str(f16)!r}.encode(), "
            f"{str(out) + '.part'!r}.encode(), p))"
        )
        subprocess.run([*lock, sys.executable, "-c", code], check=True)
        Path(f"{out}.part").rename(out)
    return out


def measure(path: Path, args: argparse.Namespace, threads: int, lock: list[str]) -> dict | None:
    spec = dict(
        path=str(path), prompt=args.prompt, decode=args.decode, long=args.long, threads=threads
    )
    best = None
    for attempt in range(args.attempts):
        done = subprocess.run(
            [*lock, sys.executable, str(CHILD), json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            continue
        run = json.loads(done.stdout.strip().splitlines()[-1])
        short = run["decode_short"]
        run["busy"] = round(short["cpu_s"] / short["wall_s"] / threads, 3)
        run["attempt"] = attempt
        if best is None or short["tps"] > best["decode_short"]["tps"]:
            best = run
        if run["busy"] > 0.92 and run["load_before"] < threads + 1:
            break
        time.sleep(args.pause)
    return best


def bandwidth_here(args: argparse.Namespace) -> int:
    if args.ram_bandwidth:
        return round(args.ram_bandwidth * 1e9)
    from canirun.hardware import probe

    # The probe's own test: a safe share of free memory, one thread per usable core.
    return probe(measure_bandwidth=True).hardware.memory.bandwidth_bytes_per_s or 0


def clock_hz() -> float:
    mhz = [
        float(line.split(":")[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("cpu MHz")
    ]
    return max(mhz) * 1e6


def table(runs: list[dict], bandwidth: int, clock: float, flops_per_cycle: int | None) -> None:
    from canirun.estimate.capacity import cpu_flops
    from canirun.hardware.cpu import parse_cpuinfo

    print(
        f"{'shape':<16}{'type':<10}{'thr':>4}{'phase':>14}{'measured':>10}{'estimated':>16}"
        f"{'ratio':>7}{'load':>6}{'busy':>6}"
    )
    ratios: dict[str, list[float]] = {"decode": [], "prefill": []}
    for run in best_runs(runs):
        flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text()).flags
        flops = cpu_flops(run["threads"], clock / 1e6, flags)
        if flops_per_cycle:
            flops = round(run["threads"] * clock * flops_per_cycle)
        cap = capacity_of(bandwidth, run["threads"], clock, flops)
        est = estimate(run, cap)
        for phase, (low, high) in est.items():
            data = run[phase]
            measured = rate(data)
            mid = (low + high) / 2
            ratio = measured / mid
            if run["shape"] != "tiny":  # "tiny" calibrates the fixed cost: not a prediction
                ratios["prefill" if phase == "prefill" else "decode"].append(ratio)
            where = "prefill" if phase == "prefill" else f"decode@{data['position']}"
            shown = f"{low:.3g}" if low == high else f"{low:.3g}-{high:.3g}"
            print(
                f"{run['shape'] + ':' + str(run['layers']):<16}"
                f"{run['ftype'] + ('+fa' if run.get('flash_attn') else ''):<10}"
                f"{run['threads']:>4}{where:>14}{measured:>10.3g}{shown:>16}{ratio:>7.2f}"
                f"{run[phase + '_load']:>6.1f}{run[phase + '_busy']:>6.2f}"
            )
    for kind, values in ratios.items():
        if values:
            print(
                f"{kind} measured/estimated: median {statistics.median(values):.2f}, "
                f"range {min(values):.2f}-{max(values):.2f} over {len(values)} runs"
            )


def rate(phase: dict) -> float:
    """A phase's measured rate: for decode the 25th-percentile token (the fastest quarter ran
    with the least interference on a shared machine), for prefill the faster batch."""
    return phase.get("p25_tps", phase["tps"])


def busy(run: dict, phase: str) -> float:
    """CPU time / threads / wall time of a phase: 1.0 when its threads ran throughout."""
    data = run[phase]
    return data["cpu_s"] / data["wall_s"] / run["threads"]


def best_runs(runs: list[dict]) -> list[dict]:
    """Per (shape, layers, type, threads, flash attention): the fastest run of each phase,
    among phases whose threads had the cores at least MIN_BUSY of the time."""
    best: dict[tuple, dict] = {}
    for run in runs:
        key = (
            run["shape"],
            run["layers"],
            run["ftype"],
            run["threads"],
            bool(run.get("flash_attn")),
        )
        kept = best.setdefault(key, {k: v for k, v in run.items() if not k.startswith(PHASES)})
        for phase in PHASES:
            if phase not in run or busy(run, phase) < MIN_BUSY:
                continue
            if phase not in kept or rate(run[phase]) > rate(kept[phase]):
                kept[phase] = run[phase]
                kept[f"{phase}_load"] = run["load_before"]
                kept[f"{phase}_busy"] = round(busy(run, phase), 3)
    return list(best.values())


def toml_rows(runs: list[dict]) -> str:
    """The best runs as TOML [[run]] tables (tests/reference/cpu-speed-measured.toml)."""
    lines = []
    for run in best_runs(runs):
        shape = shape_table()[run["shape"]]
        for phase in ("decode_short", "decode_long", "prefill"):
            if phase not in run:
                continue
            data = run[phase]
            fields = {
                "shape": run["shape"],
                **{k: shape[k] for k in ("hidden", "heads", "kv_heads", "head_dim", "ffn")},
                "vocab": shape["vocab"],
                "tied": shape["tied"],
                "layers": run["layers"],
                "type": run["ftype"],
                "threads": run["threads"],
                "flash_attn": bool(run.get("flash_attn", False)),
                "phase": "prefill" if phase == "prefill" else "decode",
                "position": data["position"] if phase != "prefill" else 0,
                "prompt": data["tokens"] if phase == "prefill" else 0,
                "tokens_per_s": round(rate(data), 3),
                "run_tokens_per_s": round(data["tps"], 3),
                "fastest_tokens_per_s": round(data.get("fastest_tps", data["tps"]), 3),
                "load": round(run[f"{phase}_load"], 2),
                "busy": round(run[f"{phase}_busy"], 2),
            }
            lines.append("[[run]]")
            for key, value in fields.items():
                shown = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
                lines.append(f"{key} = {shown}")
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="tiny:16,llama-3.2-1b:16,mistral-7b:8")
    parser.add_argument("--types", default="Q4_K_M,Q8_0")
    parser.add_argument("--threads", default=str(len(os.sched_getaffinity(0))))
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--decode", type=int, default=16)
    parser.add_argument("--long", type=int, default=1024, help="0: no long-position decode")
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--pause", type=float, default=20.0, help="seconds between attempts")
    parser.add_argument("--lock", help="run every llama.cpp process under flock on this file")
    parser.add_argument("--ram-bandwidth", type=float, help="GB/s; default: canirun measures")
    parser.add_argument("--flops-per-cycle", type=int, help="default: from this CPU's flags")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path, help="append the runs here as JSON lines")
    parser.add_argument("--from-json", type=Path, help="print the table of runs measured before")
    parser.add_argument("--toml", action="store_true", help="with --from-json: reference rows")
    args = parser.parse_args()
    bandwidth, clock = bandwidth_here(args), clock_hz()
    print(
        f"RAM bandwidth {bandwidth / 1e9:.1f} GB/s (canirun's all-core copy test), "
        f"clock {clock / 1e9:.2f} GHz"
    )
    if args.from_json:
        runs = [json.loads(line) for line in args.from_json.read_text().splitlines() if line]
        if args.toml:
            print(toml_rows(runs))
            return 0
        table(runs, bandwidth, clock, args.flops_per_cycle)
        return 0
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("llama-cpp-python is not installed: see the docstring", file=sys.stderr)
        return 0
    lock = ["flock", args.lock] if args.lock else []
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="canirun-speed-"))
    runs = []
    for item in args.shapes.split(","):
        name, layers = item.split(":")
        for ftype in args.types.split(","):
            path = make(workdir, name, int(layers), ftype, lock)
            for threads in (int(t) for t in args.threads.split(",")):
                run = measure(path, args, threads, lock)
                if run is None:
                    continue
                run.update(shape=name, layers=int(layers), ftype=ftype, threads=threads)
                run["file_bytes"] = path.stat().st_size
                runs.append(run)
                if args.out:
                    with args.out.open("a") as out:
                        out.write(json.dumps(run) + "\n")
    table(runs, bandwidth, clock, args.flops_per_cycle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
