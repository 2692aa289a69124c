"""`canirun local` over a cache of many models: time to find them and read their headers.

    PYTHONPATH=src:. python benchmarks/local_scan.py [--models 60] [--runs 5]

Builds, under a temporary HOME, a Hugging Face cache of 7B-shaped safetensors
checkpoints (4 shards each), an Ollama store and an LM Studio folder of 8B-shaped
GGUF files with a real-sized tokenizer (128,256 tokens and 280,147 merges, as
Llama 3's), all sparse (real sizes, no disk used). Prints the median of the
report's own "seconds" (finding + reading headers) and of the whole command.
Budget (issue 13): under 1 s for the headers of 50+ models. Met from the header cache
(~25 ms for 60); a first run (or --no-cache) walks every GGUF tokenizer, ~0.1 s a file.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        start = time.perf_counter()
        build(home, args.models)
        print(f"built {args.models} models in {time.perf_counter() - start:.1f} s")
        env = {**os.environ, "HOME": str(home)}
        for var in ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "LLAMA_CACHE", "XDG_CACHE_HOME"):
            env.pop(var, None)
        cmd = [sys.executable, "-m", "canirun", "local", "--json", "--ram-bandwidth", "off"]
        samples: dict[str, list[float]] = {"cold": [], "warm": [], "whole": []}
        for _ in range(args.runs):
            for mode, extra in (("cold", ["--no-cache"]), ("warm", [])):
                start = time.perf_counter()
                out = subprocess.run(
                    cmd + extra, env=env, capture_output=True, text=True, check=True
                )
                if mode == "warm":
                    samples["whole"].append(time.perf_counter() - start)
                report = json.loads(out.stdout)
                samples[mode].append(report["seconds"])
        found, skipped = len(report["found"]), len(report["skipped"])
    cold, med = statistics.median(samples["cold"]), statistics.median(samples["warm"])
    print(f"found {found} models, {skipped} skipped; medians over {args.runs} runs:")
    print(f"finding + reading headers, every header read (--no-cache): {cold * 1000:.0f} ms")
    print(f"finding + reading headers, from the header cache: {med * 1000:.0f} ms")
    whole = statistics.median(samples["whole"])
    print(f"whole command (start-up, probe, rating), cached: {whole:.2f} s")
    verdict = "within" if med <= BUDGET_S else "OVER"
    print(f"budget: {verdict} {BUDGET_S:.0f} s for the headers of {found} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
