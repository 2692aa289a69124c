"""`canirun local` over a cache of many models: time to find them and read their headers.

    PYTHONPATH=src:. python benchmarks/local_scan.py [--models 60] [--runs 5] [--python EXE ...]

Builds, under a temporary HOME, a Hugging Face cache of 7B-shaped safetensors
checkpoints (4 shards each), an Ollama store and an LM Studio folder of 8B-shaped
GGUF files with a real-sized tokenizer (128,256 tokens and 280,147 merges, as
Llama 3's), all sparse (real sizes, no disk used). Three ways to run, each a
fresh ``canirun local --json`` process:

- first: an empty header cache (a first run, which then writes the cache);
- no-cache: ``--no-cache`` (every header read, nothing written);
- warm: from the header cache the run before wrote.

For each, the median over the runs of the report's own "seconds" (finding +
reading headers, wall clock), of the CPU seconds of that same work (measured in
a separate process that runs exactly what the command times, lazy imports
included), and of the whole command's wall and CPU time. The files are in the
OS page cache (just written): "cold" means canirun's header cache, not the disk.
Budget (issue 13): under 1 s for the headers of 50+ models, on a first run too.
``--python`` runs the same tree through other interpreters (say, a venv with an
older canirun) in turn, so that before and after share the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.model_files import (
    hf_cache_model,
    llama_metadata,
    llama_tensors,
    ollama_store,
    write_gguf,
)

from canirun.catalog.gguf_file import read_gguf
from canirun.catalog.schema import Arch

BUDGET_S = 1.0
LLAMA_8B = Arch(
    source="config.json of meta-llama/Meta-Llama-3-8B",
    layers=32,
    hidden=4096,
    heads=32,
    kv_heads=8,
    intermediate=14336,
    vocab=128256,
    max_context=8192,
    gguf_arch="llama",
)


def _gguf(path: Path) -> Path:
    meta = llama_metadata(LLAMA_8B, **{"general.file_type": 15})
    meta["tokenizer.ggml.tokens"] = [f"tok{i}" for i in range(LLAMA_8B.vocab)]
    meta["tokenizer.ggml.token_type"] = [1] * LLAMA_8B.vocab
    meta["tokenizer.ggml.merges"] = [f"a{i} b{i}" for i in range(280_147)]
    write_gguf(path, "llama", meta, llama_tensors(LLAMA_8B, {"default": "Q4_K"}))
    return path


def build(home: Path, models: int) -> None:
    hub = home / ".cache" / "huggingface" / "hub"
    n_hf = models // 2
    for i in range(n_hf):
        hf_cache_model(hub, f"org/model-{i}", LLAMA_8B)
    template = _gguf(home / "template.gguf")
    size = template.stat().st_size
    with template.open("rb") as f:
        data_offset = read_gguf(f, size).data_offset
        f.seek(0)
        header = f.read(data_offset)
    for i in range(models - n_hf):
        blob = home / f"blob{i}"
        with blob.open("wb") as f:  # the header, then a sparse hole for the weights
            f.write(header)
            f.truncate(size)
        if i % 3:
            ollama_store(home / ".ollama" / "models", f"model{i}", "8b", blob)
        else:
            folder = home / ".lmstudio" / "models" / "pub" / f"repo{i}"
            folder.mkdir(parents=True, exist_ok=True)
            blob.rename(folder / f"model{i}-Q4_K_M.gguf")
    template.unlink()


# What `canirun local` times (evaluate.local_report), alone, with its CPU time.
PROBE = """
import os, sys, time
import canirun.cli, canirun.evaluate
from canirun import local_eval
cpu, wall = time.process_time(), time.perf_counter()
search = local_eval.search_local(os.environ, ())
read = local_eval.read_all(search, cache=sys.argv[1] == "cache")
print(time.process_time() - cpu, time.perf_counter() - wall, len(read))
"""
MODES = {"first": [], "no-cache": ["--no-cache"], "warm": []}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(python: str, mode: str, env: dict[str, str], home: Path) -> dict[str, float]:
    cache = home / ".cache" / "canirun"
    if mode == "first":
        shutil.rmtree(cache, ignore_errors=True)
    cmd = [python, "-m", "canirun", "local", "--json", "--ram-bandwidth", "off", *MODES[mode]]
    cpu, start = _children_cpu(), time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    sample = {"whole": time.perf_counter() - start, "whole_cpu": _children_cpu() - cpu}
    report = json.loads(out.stdout)
    sample["seconds"] = report["seconds"]
    sample["found"] = len(report["found"])
    sample["skipped"] = len(report["skipped"])
    if mode == "first":
        shutil.rmtree(cache, ignore_errors=True)
    probe = [python, "-c", PROBE, "nocache" if mode == "no-cache" else "cache"]
    got = subprocess.run(probe, env=env, capture_output=True, text=True, check=True).stdout.split()
    sample["cpu"] = float(got[0])
    return sample


def _median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", action="append", help="interpreters to compare")
    args = parser.parse_args()
    pythons = args.python or [sys.executable]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        start = time.perf_counter()
        build(home, args.models)
        print(f"built {args.models} models in {time.perf_counter() - start:.1f} s")
        env = {**os.environ, "HOME": str(home)}
        for var in ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "LLAMA_CACHE", "XDG_CACHE_HOME"):
            env.pop(var, None)
        samples = {(py, mode): [] for py in pythons for mode in MODES}
        for _ in range(args.runs):
            for py in pythons:  # in turn, so that each sees the same load
                for mode in MODES:
                    samples[py, mode].append(_run(py, mode, env, home))
    for py in pythons:
        first = samples[py, "first"][-1]
        print(f"{py}: found {first['found']:.0f} models, {first['skipped']:.0f} skipped;")
        print(f"  medians over {args.runs} runs   headers wall  headers CPU  command wall  CPU")
        for mode in MODES:
            got = samples[py, mode]
            print(
                f"  {mode:9s}"
                f"{_median(got, 'seconds') * 1000:18.0f} ms"
                f"{_median(got, 'cpu') * 1000:10.0f} ms"
                f"{_median(got, 'whole'):12.2f} s"
                f"{_median(got, 'whole_cpu'):7.2f} s"
            )
        worst = max(_median(samples[py, mode], "seconds") for mode in MODES)
        verdict = "within" if worst <= BUDGET_S else "OVER"
        found = f"{first['found']:.0f}"
        print(f"  budget: {verdict} {BUDGET_S:.0f} s for the headers of {found} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
