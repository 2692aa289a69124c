"""One timed llama.cpp run for benchmarks/speed.py (a separate process per run).

    python benchmarks/speed_child.py '{"path": ..., "prompt": 128, "decode": 16, "long": 1024,
                                       "threads": 2}'

Loads the GGUF file on the CPU backend (no mmap), times a prompt of ``prompt`` tokens
(prefill), ``decode`` single tokens after it (decode at a short position), then fills the
context to ``long`` tokens and times ``decode`` tokens more (decode at a long position;
skipped when ``long`` is 0). A warm-up token is evaluated and dropped first, so the first
phase does not pay for the first graph allocation. Each phase records its wall time, the
process's CPU time (user + system) and the host's steal time, and the run records
os.getloadavg() before and after: a phase whose CPU time is well under threads x wall time
was sharing the cores. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _steal_seconds() -> float:
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    return int(fields[7]) / os.sysconf("SC_CLK_TCK") if len(fields) > 7 else 0.0


def main() -> int:
    spec = json.loads(sys.argv[1])
    import llama_cpp

    prompt, decode, long, threads = spec["prompt"], spec["decode"], spec["long"], spec["threads"]
    llm = llama_cpp.Llama(
        model_path=spec["path"],
        n_ctx=max(long, prompt + decode) + decode + 16,
        n_batch=prompt,
        n_ubatch=prompt,
        n_threads=threads,
        n_threads_batch=threads,
        use_mmap=False,
        flash_attn=bool(spec.get("flash_attn", False)),
        verbose=False,
    )
    tokens = [259 + (i * 7919) % 1000 for i in range(max(long, prompt + decode))]
    out: dict = {"load_before": os.getloadavg()[0], "threads": threads}
    steps: list[list[float]] = []
    llm.eval(tokens[:1])  # warm-up, then forget it
    llm.reset()

    def phase(name: str, work: Callable[[], None], count: int) -> None:
        cpu, steal, start = _cpu_seconds(), _steal_seconds(), time.perf_counter()
        work()
        wall = time.perf_counter() - start
        out[name] = {
            "tokens": count,
            "position": llm.n_tokens,
            "tps": count / wall,
            "wall_s": wall,
            "cpu_s": _cpu_seconds() - cpu,
            "steal_s": _steal_seconds() - steal,
        }
        if steps:
            times = sorted(steps.pop())
            out[name]["token_s"] = [round(t, 5) for t in times]
            out[name]["fastest_tps"] = 1 / times[0]
            out[name]["p25_tps"] = 1 / times[len(times) // 4]

    def generate() -> None:
        # Per-token times too: on a shared machine the fastest tokens are the ones that ran alone.
        times = []
        for i in range(decode):
            began = time.perf_counter()
            llm.eval([300 + i])
            times.append(time.perf_counter() - began)
        steps.append(times)

    for attempt in range(int(spec.get("prefill_repeats", 2))):
        llm.reset()
        phase(f"prefill_{attempt}", lambda: llm.eval(tokens[:prompt]), prompt)
    out["prefill"] = max(
        (v for k, v in out.items() if k.startswith("prefill_")), key=lambda v: v["tps"]
    )
    phase("decode_short", generate, decode)
    if long > llm.n_tokens + decode:
        llm.eval(tokens[llm.n_tokens : long - decode // 2])
        phase("decode_long", generate, decode)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
