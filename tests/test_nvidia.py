"""NVIDIA probe scenarios against the scripted fake NVML (no GPU or driver needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from canirun.hardware.nvidia import peak_bandwidth, probe_gpus
from tests.fakes import fake_nvml as f
from tests.fakes.fake_nvml import FakeGpu, FakeNvml, a100_mig

SRC = str(Path(__file__).resolve().parent.parent / "src")


def probe(nvml: FakeNvml, env: dict[str, str] | None = None):
    return probe_gpus(nvml, env or {})


def test_library_missing_is_an_info_issue_not_a_crash() -> None:
    gpus, issues = probe(FakeNvml(init_error=f.NVML_ERROR_LIBRARY_NOT_FOUND))
    assert gpus == ()
    assert len(issues) == 1
    assert issues[0].severity == "info"
    assert "no NVIDIA driver" in issues[0].message


def test_driver_not_loaded_is_a_warning() -> None:
    gpus, issues = probe(FakeNvml(init_error=f.NVML_ERROR_DRIVER_NOT_LOADED))
    assert gpus == ()
    assert issues[0].severity == "warning"
    assert "not loaded" in issues[0].message


@pytest.mark.parametrize("code", f.ALL_ERRORS)
def test_every_init_error_becomes_one_readable_issue(code: int) -> None:
    gpus, issues = probe(FakeNvml(init_error=code))
    assert gpus == ()
    assert len(issues) == 1
    assert issues[0].message
    assert issues[0].source == "nvml"


def test_one_gpu_every_figure() -> None:
    nvml = FakeNvml([FakeGpu()])
    (gpu,), issues = probe(nvml)
    assert issues == ()
    assert gpu.name == "NVIDIA GeForce RTX 4090"
    assert gpu.index == 0
    assert gpu.memory_total_bytes == 25_757_220_864
    assert gpu.memory_free_bytes == 24_000_000_000
    assert gpu.compute_capability == "8.9"
    assert gpu.driver_version == "550.54.15"
    assert gpu.cuda_version == "12.4"
    assert gpu.memory_bandwidth_bytes_per_s == 1_008_096_000_000  # NVIDIA: 1008 GB/s
    assert gpu.memory_bandwidth_source == "nvml"
    assert (gpu.pcie_generation, gpu.pcie_width) == (4, 16)
    assert gpu.mig_enabled is False
    assert nvml.init_calls == nvml.shutdown_calls == 1


def test_two_different_gpus_keep_their_own_figures() -> None:
    small = FakeGpu(
        name="NVIDIA GeForce RTX 3060",
        uuid="GPU-22222222-0000-0000-0000-000000000000",
        total=12_884_901_888,
        free=12_000_000_000,
        cc=(8, 6),
        bus_width=192,
        mem_clock=7501,
        pcie=(4, 16),
    )
    gpus, _ = probe(FakeNvml([FakeGpu(), small]))
    assert [g.name for g in gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3060"]
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[1].compute_capability == "8.6"
    assert gpus[1].memory_bandwidth_bytes_per_s == 360_048_000_000  # NVIDIA: 360 GB/s


def test_mig_enabled_lists_instances() -> None:
    (gpu,), _ = probe(FakeNvml([a100_mig()]))
    assert gpu.mig_enabled is True
    assert [m.memory_total_bytes for m in gpu.mig_devices] == [42_949_672_960] * 2
    assert gpu.mig_devices[0].uuid == "MIG-11111111-aaaa-bbbb-cccc-000000000001"


def test_a_field_not_supported_leaves_only_that_figure_unknown() -> None:
    gpu = FakeGpu(errors={"nvmlDeviceGetMemoryBusWidth": f.NVML_ERROR_NOT_SUPPORTED})
    (probed,), issues = probe(FakeNvml([gpu]))
    assert probed.memory_bus_width_bits is None
    assert probed.memory_bandwidth_bytes_per_s is None  # never a guess
    assert probed.memory_total_bytes == gpu.total
    assert [i.severity for i in issues] == ["info"]
    assert "memory bus width" in issues[0].message


def test_a_gpu_lost_mid_probe_drops_that_gpu_only() -> None:
    lost = FakeGpu(
        uuid="GPU-33333333-0000-0000-0000-000000000000",
        errors={"nvmlDeviceGetCudaComputeCapability": f.NVML_ERROR_GPU_IS_LOST},
    )
    nvml = FakeNvml([lost, FakeGpu()])
    gpus, issues = probe(nvml)
    assert [g.index for g in gpus] == [1]
    assert any("GPU 0 was lost" in i.message for i in issues)
    assert nvml.shutdown_calls == 1


def test_a_gpu_that_cannot_be_opened_is_reported() -> None:
    broken = FakeGpu(errors={"nvmlDeviceGetHandleByIndex": f.NVML_ERROR_NO_PERMISSION})
    gpus, issues = probe(FakeNvml([broken]))
    assert gpus == ()
    assert "GPU 0 could not be opened" in issues[0].message


def test_device_count_failure() -> None:
    gpus, issues = probe(FakeNvml([FakeGpu()], count_error=f.NVML_ERROR_UNKNOWN))
    assert gpus == ()
    assert "device count" in issues[0].message


@pytest.mark.parametrize("code", f.ALL_ERRORS)
def test_any_error_on_any_field_never_raises(code: int) -> None:
    # What each failing call leaves unknown (None), and how the issue names it.
    fields = {
        "nvmlDeviceGetName": ("name", "GPU 0 name: "),
        "nvmlDeviceGetUUID": ("uuid", "GPU 0 UUID: "),
        "nvmlDeviceGetMemoryInfo": ("memory_total_bytes", "GPU 0 memory: "),
        "nvmlDeviceGetMaxClockInfo": (None, "GPU 0 max memory clock: "),
        "nvmlDeviceGetMaxPcieLinkWidth": (None, "GPU 0 PCIe width: "),
        "nvmlDeviceGetMigMode": (None, "GPU 0 MIG mode: "),
    }
    healthy = probe(FakeNvml([FakeGpu()]))[0][0]
    for name, (attr, prefix) in fields.items():
        gpus, issues = probe(FakeNvml([FakeGpu(errors={name: code})]))
        if code == f.NVML_ERROR_GPU_IS_LOST:
            # A lost GPU is dropped and said so, whichever call noticed it.
            assert gpus == ()
            assert "was lost while probing" in issues[0].message
            continue
        assert len(gpus) == 1  # one failing call never hides the GPU
        assert issues[0].message.startswith(prefix)
        assert f._NAMES[code] in issues[0].message
        if attr == "name":
            assert gpus[0].name == "NVIDIA GPU"  # a placeholder, never another model's name
        elif attr is not None:
            assert getattr(gpus[0], attr) is None
            assert getattr(healthy, attr) is not None


def _two() -> FakeNvml:
    return FakeNvml(
        [
            FakeGpu(uuid="GPU-aaaa0000-0000-0000-0000-000000000000"),
            FakeGpu(name="NVIDIA L4", uuid="GPU-bbbb0000-0000-0000-0000-000000000000"),
        ]
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", [1]),
        ("1,0", [1, 0]),
        ("GPU-bbbb", [1]),
        ("", []),
        ("-1", []),
        ("0,7,1", [0]),  # CUDA stops at the first entry that matches nothing
        ("GPU-", []),  # an ambiguous prefix matches nothing
    ],
)
def test_cuda_visible_devices(value: str, expected: list[int]) -> None:
    gpus, issues = probe(_two(), {"CUDA_VISIBLE_DEVICES": value})
    assert [g.index for g in gpus] == expected
    if len(expected) < 2:
        assert any("hides" in i.message for i in issues)


def test_cuda_visible_devices_index_order_note_for_mixed_gpus() -> None:
    _, issues = probe(_two(), {"CUDA_VISIBLE_DEVICES": "0"})
    assert any("PCI bus order" in i.message for i in issues)
    _, issues = probe(_two(), {"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert not any("PCI bus order" in i.message for i in issues)


def test_cuda_visible_devices_selects_one_mig_instance() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "MIG-11111111-aaaa-bbbb-cccc-000000000002"}
    (gpu,), _ = probe(FakeNvml([a100_mig()]), env)
    assert [m.memory_free_bytes for m in gpu.mig_devices] == [40_000_000_000]


@pytest.mark.parametrize(
    ("bus", "clock", "vendor_gb_s"),
    [
        (5120, 2619, 3350),  # H100 SXM5: 3.35 TB/s
        (5120, 1593, 2039),  # A100 80GB SXM: 2,039 GB/s
        (4096, 877, 900),  # V100: 900 GB/s
        (256, 5001, 320),  # T4: 320 GB/s
        (192, 6251, 300),  # L4: 300 GB/s
        (384, 9751, 936),  # RTX 3090: 936 GB/s
    ],
)
def test_peak_bandwidth_matches_vendor_figures(bus: int, clock: int, vendor_gb_s: int) -> None:
    computed = peak_bandwidth(bus, clock)
    assert computed is not None
    assert computed / 1e9 == pytest.approx(vendor_gb_s, rel=0.01)


def test_peak_bandwidth_unknown_inputs() -> None:
    assert peak_bandwidth(None, 1000) is None
    assert peak_bandwidth(256, 0) is None


NVML_CHILD = """
import sys
from canirun.hardware import nvidia
nvidia._dlopen("libc.so.6")
try:
    nvidia._dlopen("libcanirun-no-such-library.so.1")
except OSError:
    print("missing")
missing = nvidia._nvml_library_missing()
print("ctypes" in sys.modules)
import ctypes
try:
    ctypes.CDLL("libnvidia-ml.so.1")
    loads = True
except OSError:
    loads = False
print(missing == (not loads))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="NVML's Linux library name")
def test_the_nvml_library_is_looked_for_without_importing_ctypes() -> None:
    """``nvidia._dlopen`` loads a library as ``ctypes.CDLL`` does, through ctypes' C module
    only (importing ctypes costs ~1.2 ms of every probe): a missing one is an OSError, and
    the answer is ctypes'."""
    done = subprocess.run(
        [sys.executable, "-c", NVML_CHILD],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert done.stdout.split() == ["missing", "False", "True"]
