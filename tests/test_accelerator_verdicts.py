"""The probe facade on every machine kind, and the verdicts a user of each would expect.

Machines come from the recorded fixtures in tests/fixtures/hardware/ (SOURCES.md in
each); what-if machines from the catalog's GPU table.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canirun.cli import app
from canirun.hardware import amd, probe
from canirun.hardware.model import Host, Memory, to_jsonable
from tests.fakes import fake_nvml as f
from tests.fakes.fake_nvml import FakeGpu, FakeNvml
from tests.test_accelerators import FIX, fake_runner

GIB = 2**30
runner = CliRunner()
NO_NVML = FakeNvml(init_error=f.NVML_ERROR_LIBRARY_NOT_FOUND)


def _probe_fixture(folder: str, tmp_path: Path, **kw) -> Host:  # type: ignore[no-untyped-def]
    return probe(tmp_path / "models", root=FIX / folder, env={}, **kw)


def _as_file(host: Host, tmp_path: Path, memory: Memory) -> Path:
    """The probed machine as a hardware file, with that machine's RAM (not this box's)."""
    hw = dataclasses.replace(host.hardware, memory=memory)
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(to_jsonable(hw)))
    return path


def _check(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["check", *args, "--json", "--ram-bandwidth", "off"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_facade_linux_finds_the_amd_card_and_keeps_nvml_quiet(tmp_path: Path) -> None:
    host = _probe_fixture("amd-rx7900xtx", tmp_path, nvml=NO_NVML, system_name="linux")
    (gpu,) = host.hardware.gpus
    assert (gpu.vendor, gpu.arch, gpu.index) == ("amd", "gfx1100", 0)
    assert any(i.source == "nvml" for i in host.issues)


def test_facade_numbers_other_vendors_after_nvidia(tmp_path: Path) -> None:
    host = _probe_fixture(
        "amd-rx7900xtx",
        tmp_path,
        nvml=FakeNvml([FakeGpu(), FakeGpu(uuid="GPU-2")]),
        system_name="linux",
    )
    assert [(g.vendor, g.index) for g in host.hardware.gpus] == [
        ("nvidia", 0),
        ("nvidia", 1),
        ("amd", 2),
    ]


def test_a_crashing_backend_is_one_issue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("sysfs exploded")

    monkeypatch.setattr(amd, "probe_amd", boom)
    host = _probe_fixture("amd-rx7900xtx", tmp_path, nvml=NO_NVML, system_name="linux")
    assert host.hardware.gpus == ()
    assert any("sysfs exploded" in i.message for i in host.issues)


def test_facade_darwin_uses_the_command_runner(tmp_path: Path) -> None:
    host = probe(tmp_path, env={}, system_name="darwin", run=fake_runner("apple-m2-max-64gb"))
    (gpu,) = host.hardware.gpus
    assert gpu.vendor == "apple"
    assert gpu.usable_memory_bytes == 51539607552
    assert (host.hardware.cpu.performance_cores, host.hardware.cpu.efficiency_cores) == (8, 4)


def test_facade_jetson_when_nvml_finds_nothing(tmp_path: Path) -> None:
    host = _probe_fixture("jetson-agx-orin", tmp_path, nvml=NO_NVML, system_name="linux")
    (gpu,) = host.hardware.gpus
    assert gpu.unified_memory is True
    assert gpu.memory_total_bytes == host.hardware.memory.total_bytes


def test_gb10_memory_not_supported_falls_back_to_system_ram(tmp_path: Path) -> None:
    gb10 = FakeGpu(
        name="NVIDIA GB10",
        cc=(12, 1),
        errors={"nvmlDeviceGetMemoryInfo": f.NVML_ERROR_NOT_SUPPORTED},
    )
    host = probe(tmp_path, root=tmp_path, env={}, nvml=FakeNvml([gb10]), system_name="linux")
    (gpu,) = host.hardware.gpus
    assert gpu.unified_memory is True
    assert gpu.memory_total_bytes == host.hardware.memory.total_bytes
    assert gpu.memory_source is not None
    assert "not supported" in gpu.memory_source


def test_a_dgpu_whose_memory_read_fails_is_not_called_unified(tmp_path: Path) -> None:
    broken = FakeGpu(errors={"nvmlDeviceGetMemoryInfo": f.NVML_ERROR_UNKNOWN})
    host = probe(tmp_path, root=tmp_path, env={}, nvml=FakeNvml([broken]), system_name="linux")
    (gpu,) = host.hardware.gpus
    assert gpu.unified_memory is False
    assert gpu.memory_total_bytes is None


# --- verdicts ---------------------------------------------------------------


def test_llama3_70b_q4km_on_the_gpu_of_a_128gb_m3_max() -> None:
    data = _check("llama 3 70b", "-p", "Q4_K_M", "--gpu", "M3 Max")
    row = data["results"][0]
    assert row["verdict"] == "gpu"
    assert data["hardware"]["memory"]["total_bytes"] == 128 * GIB  # the Mac's, not this host's


def test_the_same_on_a_36gb_m3_pro_is_too_big_for_its_gpu() -> None:
    row = _check("llama 3 70b", "-p", "Q4_K_M", "--gpu", "M3 Pro")["results"][0]
    assert row["verdict"] != "gpu"


def test_a_memory_size_apple_does_not_sell_is_refused() -> None:
    result = runner.invoke(app, ["check", "llama 3 8b", "--gpu", "M3 Max 40GB"])
    assert result.exit_code == 2
    assert "comes with" in result.output


def test_m3_max_64gb_plans_with_three_quarters_of_64() -> None:
    data = _check("llama 3 70b", "-p", "Q4_K_M", "--gpu", "M3 Max 64GB")
    (gpu,) = data["hardware"]["gpus"]
    assert gpu["memory_total_bytes"] == 64 * GIB
    assert data["results"][0]["verdict"] == "gpu"  # 41.7 GiB within 48 GiB


def test_mixtral_q4km_partly_offloaded_on_a_24gb_radeon_with_rocm(tmp_path: Path) -> None:
    host = _probe_fixture("amd-rx7900xtx", tmp_path, nvml=NO_NVML, system_name="linux")
    path = _as_file(host, tmp_path, Memory(total_bytes=64 * GIB, available_bytes=60 * GIB))
    data = _check("mixtral 8x7b", "-p", "Q4_K_M", "--hardware", str(path))
    row = data["results"][0]
    assert row["verdict"] == "offload"
    assert row["framework"] in ("llama.cpp", "ollama")
    # 27 with llama.cpp's default flash attention (auto: on), 26 with it off.
    assert "27 of 32 layers" in row["reasons"][0]
    assert "rocm" in row["reasons"][0]
    status = {s["id"]: s for s in data["frameworks"]}
    assert (
        "GPU 0 (AMD Radeon RX 7900 XTX)" in status["vllm"]["devices"]
    )  # gfx1100 is on vLLM's list


def test_7b_on_the_gtt_budget_of_a_ryzen_ai_max(tmp_path: Path) -> None:
    host = _probe_fixture("amd-strix-halo", tmp_path, nvml=NO_NVML, system_name="linux")
    # 124 GiB: the 128 GB machine less its carve-out (SOURCES.md); 100 GiB available.
    # The GPU is probed with that machine's RAM, not this test box's.
    ram = Memory(total_bytes=124 * GIB, available_bytes=100 * GIB)
    gpus, _ = amd.probe_amd(
        FIX / "amd-strix-halo", ram_total=ram.total_bytes, ram_available=ram.available_bytes, env={}
    )
    host = dataclasses.replace(host, hardware=dataclasses.replace(host.hardware, gpus=gpus))
    path = _as_file(host, tmp_path, ram)
    row = _check("llama 3.1 8b", "-p", "Q4_K_M", "--hardware", str(path))["results"][0]
    assert row["verdict"] == "gpu"
    assert any("unified" in r or "GPU" in r for r in row["reasons"])


def test_a_gfx_target_outside_the_rocm_lists_falls_back_to_vulkan_or_cpu(tmp_path: Path) -> None:
    host = _probe_fixture("amd-rx7900xtx", tmp_path, nvml=NO_NVML, system_name="linux")
    gpu = dataclasses.replace(host.hardware.gpus[0], arch="gfx1034")  # RX 6400/6500 class
    host = dataclasses.replace(host, hardware=dataclasses.replace(host.hardware, gpus=(gpu,)))
    path = _as_file(host, tmp_path, Memory(total_bytes=64 * GIB, available_bytes=60 * GIB))
    data = _check("llama 3.1 8b", "-p", "Q4_K_M", "--hardware", str(path))
    status = {s["id"]: s for s in data["frameworks"]}
    assert status["vllm"]["devices"] == ["CPU"]
    assert "do not ship gfx1034" in status["vllm"]["reasons"][0]
    # Ollama's ROCm build lacks gfx1034 too, but its Vulkan backend takes the card.
    assert "GPU 0 (AMD Radeon RX 7900 XTX)" in status["ollama"]["devices"]


def test_apple_gpu_is_not_offered_to_cuda_only_frameworks() -> None:
    data = _check("whisper large", "--gpu", "M2 Max")
    status = {s["id"]: s for s in data["frameworks"]}
    assert status["openai-whisper"]["devices"] == ["CPU"]
    assert any(d.startswith("GPU 0") for d in status["whisper.cpp"]["devices"])  # Metal
    assert any(d.startswith("GPU 0") for d in status["transformers"]["devices"])  # MPS


def test_dgx_spark_what_if_runs_70b_on_its_gpu() -> None:
    row = _check("llama 3 70b", "-p", "Q4_K_M", "--gpu", "dgx spark")["results"][0]
    assert row["verdict"] == "gpu"


# --- canirun hardware on each machine kind ------------------------------------

MACHINES = {
    # fixture: (probe kwargs, RAM of that machine, expected text fragments)
    "amd-rx7900xtx": (
        {"nvml": NO_NVML, "system_name": "linux"},
        64 * GIB,
        ["AMD Radeon RX 7900 XTX · 24.0 GiB", "gfx1100", "96 CUs", "960 GB/s (published)", "rocm"],
    ),
    "amd-strix-halo": (
        {"nvml": NO_NVML, "system_name": "linux"},
        124 * GIB,
        ["AMD Radeon 8060S Graphics", "unified memory", "gfx1151", "GPU budget: 96.0 GiB"],
    ),
    "intel-arc-a770": (
        {"nvml": NO_NVML, "system_name": "linux"},
        32 * GIB,
        ["Intel Arc A770 · 16.0 GiB", "Xe-HPG", "560 GB/s (published)", "sycl"],
    ),
    "jetson-agx-orin": (
        {"nvml": NO_NVML, "system_name": "linux"},
        61 * GIB,
        ["NVIDIA Jetson AGX Orin", "unified memory", "compute 8.7", "205 GB/s (published)"],
    ),
}


@pytest.mark.parametrize("folder", sorted(MACHINES))
def test_canirun_hardware_shows_memory_budget_arch_and_bandwidth(
    folder: str, tmp_path: Path
) -> None:
    kwargs, ram, expected = MACHINES[folder]
    host = _probe_fixture(folder, tmp_path, **kwargs)
    path = _as_file(host, tmp_path, Memory(total_bytes=ram, available_bytes=ram))
    result = runner.invoke(app, ["hardware", "--hardware", str(path)])
    assert result.exit_code == 0, result.output
    for fragment in expected:
        assert fragment in result.output, (fragment, result.output)


def test_canirun_hardware_json_of_a_mac_keeps_every_source(tmp_path: Path) -> None:
    host = probe(tmp_path, env={}, system_name="darwin", run=fake_runner("apple-m1-16gb"))
    path = _as_file(host, tmp_path, Memory(total_bytes=16 * GIB, available_bytes=9 * GIB))
    result = runner.invoke(app, ["hardware", "--hardware", str(path), "--json"])
    gpu = json.loads(result.output)["hardware"]["gpus"][0]
    assert gpu["usable_memory_source"] == "metal:recommendedMaxWorkingSetSize"
    assert gpu["memory_bandwidth_source"] == "catalog (Apple M1 (16GB))"
    assert gpu["memory_bandwidth_bytes_per_s"] == 68_250_000_000


def test_mps_cannot_run_fp8_weights_but_runs_fp16() -> None:
    fp8 = _check("llama 3.1 8b", "-p", "fp8", "--gpu", "M3 Max")["results"][0]
    # No Apple GPU runtime has fp8, and no CPU runtime in the capability table runs
    # fp8 weights either (rules/capabilities.toml), so it does not run here at all.
    assert fp8["verdict"] == "unsupported"
    assert any("fp8" in reason for reason in fp8["reasons"])
    fp16 = _check("llama 3.1 8b", "-p", "fp16", "--gpu", "M3 Max")["results"][0]
    assert fp16["verdict"] == "gpu"


def test_backend_choice_refuses_a_precision_with_the_reason() -> None:
    from canirun.catalog import load_catalog
    from canirun.estimate.backends import choose

    catalog = load_catalog()
    transformers = catalog.framework_by_id["transformers"]
    refused = choose("apple", "apple9", (), transformers, catalog.backends, "fp8")
    assert refused.usable is False
    assert refused.reason is not None
    assert "cannot run fp8" in refused.reason
    ok = choose("apple", "apple9", (), transformers, catalog.backends, "fp16")
    assert (ok.usable, ok.backend) == (True, "mps")


def test_ollamas_per_gpu_reserve_follows_the_backend_not_a_word_in_its_text() -> None:
    from canirun.catalog import load_catalog
    from canirun.estimate.runtime import gpu_reserve

    ollama = load_catalog().framework_by_id["ollama"]
    assert gpu_reserve(ollama, "cuda") == 457 * 2**20
    assert gpu_reserve(ollama, "rocm") == 457 * 2**20
    assert gpu_reserve(ollama, "metal") == 512 * 2**20


def test_device_cost_on_metal_uses_metals_reserve() -> None:
    data = _check("llama 3.1 8b", "-p", "Q4_K_M", "--gpu", "M1", "--framework", "ollama")
    row = data["results"][0]
    assert row["verdict"] == "gpu"
    assert any("via metal" in r for r in row["reasons"])


def test_two_unified_machines_are_not_one_gpu_pair() -> None:
    result = runner.invoke(app, ["check", "llama 3 8b", "--gpu", "2x M3 Max"])
    assert result.exit_code == 2
    assert "one memory pool" in result.output


def test_vram_cannot_resize_a_unified_chip() -> None:
    result = runner.invoke(app, ["check", "llama 3 8b", "--gpu", "M3 Max", "--vram", "24GB"])
    assert result.exit_code == 2
    assert "--ram" in result.output


def test_ram_resizes_the_unified_pool() -> None:
    data = _check("llama 3 70b", "-p", "Q4_K_M", "--gpu", "M4 Max", "--ram", "48GiB")
    (gpu,) = data["hardware"]["gpus"]
    assert gpu["memory_total_bytes"] == 48 * GIB
    assert gpu["name"] == "Apple M4 Max, 40-core GPU (48GB)"
    # 3/4 of 48 GiB = 36 GiB: a 41.7 GiB model no longer fits the GPU.
    assert data["results"][0]["verdict"] != "gpu"
