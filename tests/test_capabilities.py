"""The capability table and the runtime defaults: complete, sourced, and the facts it encodes."""

from __future__ import annotations

import pytest

from canirun.catalog import load_catalog
from canirun.catalog.rules import Device, capabilities, runtime_defaults, supports


def test_every_entry_has_a_source_and_a_date() -> None:
    table = capabilities()
    assert table.entry
    for e in table.entry:
        assert table.sources[e.source].startswith("https://")
        assert e.checked >= "2026-01-01"
    for d in runtime_defaults().default:
        assert runtime_defaults().sources[d.source].startswith("https://")
        assert d.since


def test_every_local_framework_and_device_it_claims_is_covered() -> None:
    table = capabilities()
    for fw in load_catalog().frameworks:
        if not fw.local:
            continue
        for device in fw.accelerators:
            if device == "cpu" and not fw.cpu_only_ok:
                continue
            covered = [e for e in table.entry if fw.id in e.frameworks and e.device == device]
            assert covered, f"{fw.id} on {device} has no capability entry"


def test_every_framework_named_exists() -> None:
    ids = {f.id for f in load_catalog().frameworks}
    for e in capabilities().entry:
        assert set(e.frameworks) <= ids, e.frameworks


A100, H100, L4, T4, P40 = (Device("nvidia", cc) for cc in ("8.0", "9.0", "8.9", "7.5", "6.1"))
CPU = Device("cpu", cpu_flags=frozenset({"avx2"}))
CPU512 = Device("cpu", cpu_flags=frozenset({"avx2", "avx512f"}))
MAC = Device("apple")


@pytest.mark.parametrize(
    ("framework", "device", "precision", "family", "runs"),
    [
        ("vllm", H100, "fp8", "torch", True),  # native W8A8
        ("vllm", L4, "fp8", "torch", True),  # Ada: native
        ("vllm", A100, "fp8", "torch", True),  # W8A16 through FP8 Marlin
        ("vllm", T4, "bf16", "torch", False),  # bfloat16 needs 8.0
        ("vllm", P40, "fp16", "torch", False),  # below 7.5
        ("vllm", CPU, "int4", "torch", True),  # AWQ/GPTQ on x86
        ("vllm", CPU, "int8", "torch", False),  # W8A8 kernels need AVX-512
        ("vllm", CPU512, "int8", "torch", True),
        ("vllm", Device("cpu", cpu_flags=frozenset()), "bf16", "torch", False),  # no AVX2
        ("tgi", CPU, "int4", "torch", False),  # issue 14: "int4 with tgi on the CPU"
        ("tgi", A100, "fp8", "torch", False),  # --quantize fp8 is H100+
        ("transformers", MAC, "fp8", "torch", False),  # issue 14: no float8 on MPS
        ("transformers", MAC, "bf16", "torch", True),
        ("transformers", T4, "int8", "torch", True),  # LLM.int8 from 7.5
        ("transformers", P40, "int8", "torch", False),
        ("llama.cpp", P40, "Q4_K_M", "ggml", True),
        ("llama.cpp", MAC, "Q8_0", "ggml", True),
        ("openai-whisper", CPU, "fp16", "torch", False),  # falls back to fp32
        ("diffusers", CPU, "fp16", "torch", False),
        ("diffusers", T4, "fp8", "torch", True),  # layerwise casting needs no FP8 hardware
        ("vllm", Device("amd", arch="gfx942"), "fp8", "torch", True),
        ("vllm", Device("amd", arch="gfx1100"), "fp8", "torch", False),
        ("vllm", Device("amd"), "int4", "torch", False),  # no AWQ/GPTQ on AMD
    ],
)
def test_capability_facts(
    framework: str, device: Device, precision: str, family: str, runs: bool
) -> None:
    answer = supports(framework, device, precision, family)
    assert answer.runs is runs, answer.how
    if not runs:
        assert answer.how  # always says why


def test_a_refusal_names_the_condition() -> None:
    answer = supports("vllm", T4, "bf16", "torch")
    assert "8.0" in answer.how
    assert answer.source is not None
    assert answer.source.startswith("https://")


def test_an_unknown_framework_is_left_to_frameworks_toml() -> None:
    assert supports("mlx", MAC, "int4", "torch").runs


def test_llamacpp_defaults_name_their_version() -> None:
    fa = next(d for d in runtime_defaults().default if d.setting == "flash_attn")
    assert fa.value == "auto"
    assert "15434" in fa.since
