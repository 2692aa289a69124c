"""The machines and commands whose full output is kept in tests/golden/ (gzip).

The speed work must not change a single byte of what canirun says: each case runs
a command in-process with the clock fixed, and tests/test_golden.py compares its
output with the stored one. After an intended change (new catalog entries, a new
rule) regenerate them with ``PYTHONPATH=src python scripts/write_golden.py`` and
read the diff of what changed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
FIXED_TIME = "2026-12-01T00:00:00Z"
GIB = 2**30

# Hardware files: the shipped test workstation, a CPU-only laptop, an Apple Mac.
MACHINES: dict[str, dict[str, object]] = {
    "laptop": {
        "cpu": {"logical_cores": 8, "arch": "x86_64", "flags": ["avx2", "fma", "avx512f"]},
        "memory": {"total_bytes": 16 * GIB, "available_bytes": 12 * GIB},
        "gpus": [],
        "os": {"system": "Linux", "machine": "x86_64", "docker": {"cli": True}},
    },
    "mac": {
        "cpu": {"logical_cores": 12, "arch": "arm64", "flags": []},
        "memory": {"total_bytes": 96 * GIB},
        "gpus": [],
        "os": {"system": "Darwin", "machine": "arm64"},
    },
}

WS = "@workstation"  # tests/data/workstation.json
BW = ("--ram-bandwidth", "80GB/s")

CASES: dict[str, tuple[str, ...]] = {
    "scan-workstation": ("scan", "--json", "--hardware", WS, *BW),
    "scan-workstation-text": ("scan", "--hardware", WS, *BW),
    "scan-workstation-markdown": ("scan", "--format", "markdown", "--hardware", WS, *BW),
    "scan-laptop": ("scan", "--json", "--hardware", "@laptop", "--ram-bandwidth", "40GB/s"),
    "scan-mac": ("scan", "--json", "--hardware", "@mac", "--gpu", "M2 Max", *BW),
    "scan-2xa100-long": (
        "scan",
        "--json",
        "--hardware",
        WS,
        "--gpu",
        "2x A100 80GB",
        "--ram",
        "512GB",
        "--ctx",
        "32768",
        "--kv-cache",
        "q8_0",
        "--sequences",
        "4",
        *BW,
    ),
    "scan-h100-nodes": (
        "scan",
        "--json",
        "--hardware",
        WS,
        "--gpu",
        "8x H100",
        "--nodes",
        "2",
        "--ram",
        "1TB",
        "--ram-bandwidth",
        "off",
    ),
    "check-workstation": (
        "check",
        "llama",
        "mistral",
        "qwen",
        "whisper",
        "stable diffusion",
        "alphafold",
        "e5",
        "--json",
        "--hardware",
        WS,
        *BW,
    ),
    "check-workstation-text": (
        "check",
        "llama3:8b",
        "qwen2.5 7b",
        "--hardware",
        WS,
        "--explain",
        *BW,
    ),
    "check-laptop-gate": (
        "check",
        "llama 70b",
        "phi",
        "--json",
        "--hardware",
        "@laptop",
        "--require",
        "cpu",
        "--min-tps",
        "5",
        "--ram-bandwidth",
        "40GB/s",
    ),
    "check-4060-fp": (
        "check",
        "llama 8b",
        "gemma",
        "--json",
        "--hardware",
        WS,
        "--gpu",
        "RTX 4060",
        "-p",
        "fp16",
        "-p",
        "Q4_K_M",
        "-p",
        "int4",
        "-f",
        "vllm",
        *BW,
    ),
    "frameworks-workstation": ("frameworks", "--json", "--hardware", WS),
    "frameworks-mac": ("frameworks", "--json", "--hardware", "@mac"),
}


def hardware_files(folder: Path) -> dict[str, str]:
    files = {"@workstation": str(Path(__file__).parent / "data" / "workstation.json")}
    for name, data in MACHINES.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(data))
        files[f"@{name}"] = str(path)
    return files


def argv(case: str, files: dict[str, str]) -> list[str]:
    return [files.get(a, a) for a in CASES[case]]


@contextmanager
def fixed_clock() -> Iterator[None]:
    import canirun.envelope as envelope_module

    saved = envelope_module.now_utc
    envelope_module.now_utc = lambda: FIXED_TIME
    try:
        yield
    finally:
        envelope_module.now_utc = saved


def run_case(case: str, files: dict[str, str]) -> tuple[int, str]:
    """(exit code, stdout) of one case, run in this process with a fixed clock."""
    from typer.testing import CliRunner

    from canirun.catalog import load_catalog
    from canirun.cli import app

    load_catalog.cache_clear()
    with fixed_clock():
        result = CliRunner().invoke(app, argv(case, files))
    out = result.stdout
    for name, path in files.items():  # where the files lie is no part of the answer
        out = out.replace(path, name)
    return result.exit_code, out


def golden_path(case: str) -> Path:
    return GOLDEN / f"{case}.out.gz"


def read_golden(case: str) -> tuple[int, str]:
    text = gzip.decompress(golden_path(case).read_bytes()).decode()
    code, _, out = text.partition("\n")
    return int(code), out


def write_golden(case: str, code: int, out: str) -> None:
    # mtime=0: the same output gives the same bytes, so git sees no change.
    data = gzip.compress(f"{code}\n{out}".encode(), mtime=0)
    golden_path(case).write_bytes(data)
