"""GPU backends other than NVML, against fixture trees and outputs of real machines.

Each fixture folder under tests/fixtures/hardware/ has a SOURCES.md naming where
every value came from.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from canirun.hardware import amd, apple, intel, jetson
from canirun.hardware.model import Memory

FIX = Path(__file__).parent / "fixtures" / "hardware"
GIB = 2**30


# --- AMD ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "name"),
    [
        (110000, "gfx1100"),
        (110001, "gfx1101"),
        (110003, "gfx1103"),
        (110501, "gfx1151"),
        (120001, "gfx1201"),
        (100300, "gfx1030"),
        (90010, "gfx90a"),
        (90012, "gfx90c"),
        (90402, "gfx942"),
        (0, None),
        (91600, None),  # minor 16 does not fit one hex digit
    ],
)
def test_gfx_names_as_ollama_derives_them(version: int, name: str | None) -> None:
    assert amd.gfx_name(version) == name


def test_radeon_rx_7900_xtx() -> None:
    gpus, issues = amd.probe_amd(
        FIX / "amd-rx7900xtx", ram_total=64 * GIB, ram_available=60 * GIB, env={}, page_size=4096
    )
    assert len(gpus) == 1  # card1-DP-1 is a connector, not a card
    g = gpus[0]
    assert g.name == "AMD Radeon RX 7900 XTX"
    assert g.memory_total_bytes == 25769803776
    assert g.memory_free_bytes == 25769803776 - 1048576
    assert g.arch == "gfx1100"
    assert g.gpu_cores == 96
    assert g.pci_address == "0000:86:00.0"
    assert g.unified_memory is False
    assert g.runtimes == ("rocm", "vulkan")
    assert g.runtime_version == "ROCm 7.1.1"
    assert g.kernel_driver == "amdgpu"
    assert g.memory_source
    assert "mem_info_vram_total" in g.memory_source
    assert not [i for i in issues if i.severity == "warning"]


def test_strix_halo_apu_counts_carve_out_plus_ttm_clamped_gtt() -> None:
    ram = 124 * GIB  # the 128 GB machine less its 4 GiB carve-out (SOURCES.md)
    gpus, _ = amd.probe_amd(
        FIX / "amd-strix-halo", ram_total=ram, ram_available=100 * GIB, env={}, page_size=4096
    )
    g = gpus[0]
    assert g.name == "AMD Radeon 8060S Graphics"
    assert g.unified_memory is True
    assert g.arch == "gfx1151"
    assert g.gpu_cores == 40
    assert g.shared_memory_bytes == 103079215104  # 25165824 pages x 4 KiB = 96 GiB
    assert g.memory_total_bytes == 4294967296 + 103079215104
    assert g.usable_memory_bytes == 98304 * 2**20  # what HIP printed on that machine
    assert g.usable_memory_source
    assert "kfd" in g.usable_memory_source


def test_gtt_is_clamped_by_ram_when_a_stale_ttm_limit_exceeds_it(tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(FIX / "amd-strix-halo", root)
    gpus, _ = amd.probe_amd(root, ram_total=64 * GIB, ram_available=60 * GIB, env={})
    assert gpus[0].shared_memory_bytes == 64 * GIB


def test_without_dev_kfd_rocm_is_not_offered_and_the_note_says_why(tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(FIX / "amd-rx7900xtx", root)
    (root / "dev/kfd").unlink()
    gpus, issues = amd.probe_amd(root, ram_total=None, ram_available=None, env={})
    assert gpus[0].runtimes == ("vulkan",)
    assert gpus[0].runtime_version is None
    assert any("/dev/kfd" in i.message for i in issues)


def test_hsa_override_is_reported(tmp_path: Path) -> None:
    env = {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}
    _, issues = amd.probe_amd(FIX / "amd-rx7900xtx", ram_total=None, ram_available=None, env=env)
    assert any("gfx1030" in i.message for i in issues)


def test_unreadable_kfd_node_is_a_note_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(FIX / "amd-rx7900xtx", root)
    props = root / "sys/class/kfd/kfd/topology/nodes/1/properties"
    props.chmod(0)
    try:
        if props.exists() and not _readable(props):
            gpus, issues = amd.probe_amd(root, ram_total=None, ram_available=None, env={})
            assert gpus[0].arch is None
            assert any("not readable" in i.message for i in issues)
    finally:
        props.chmod(0o644)


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    "broken", ["mem_info_vram_total", "device", "uevent", "mem_info_vram_used"]
)
def test_each_missing_sysfs_file_leaves_that_figure_unknown(tmp_path: Path, broken: str) -> None:
    root = tmp_path / "m"
    shutil.copytree(FIX / "amd-rx7900xtx", root)
    (root / "sys/class/drm/card1/device" / broken).unlink()
    gpus, _ = amd.probe_amd(root, ram_total=None, ram_available=None, env={})
    assert len(gpus) == 1
    if broken in ("mem_info_vram_total", "mem_info_vram_used"):
        assert gpus[0].memory_free_bytes is None


@pytest.mark.parametrize("garbage", ["", "lots", "0xZZ", "\0\0", "-5", "1 2 3"])
def test_garbage_in_sysfs_never_raises(tmp_path: Path, garbage: str) -> None:
    root = tmp_path / "m"
    shutil.copytree(FIX / "amd-strix-halo", root)
    for rel in (
        "sys/class/drm/card1/device/mem_info_gtt_total",
        "sys/module/ttm/parameters/pages_limit",
    ):
        (root / rel).write_text(garbage)
    (root / "sys/class/kfd/kfd/topology/nodes/1/properties").write_text(garbage)
    gpus, _ = amd.probe_amd(root, ram_total=GIB, ram_available=GIB, env={})
    assert len(gpus) == 1


def test_no_amd_card_means_no_gpu_and_no_noise(tmp_path: Path) -> None:
    assert amd.probe_amd(tmp_path, ram_total=None, ram_available=None, env={}) == ((), ())


# --- Apple ----------------------------------------------------------------


def fake_runner(folder: str, extra_sysctl: str = ""):  # type: ignore[no-untyped-def]
    """Replays a Mac's recorded outputs; a command without a recording fails."""
    base = FIX / folder

    def run(argv):  # type: ignore[no-untyped-def]
        argv = tuple(argv)
        if argv[0] == "sysctl":
            return (base / "sysctl.txt").read_text() + extra_sysctl
        if argv[:2] == ("system_profiler", "SPDisplaysDataType"):
            for name in ("system_profiler.json", "system_profiler.txt"):
                if (base / name).exists():
                    return (base / name).read_text()
            return None
        if argv[1:2] == ("-c",) and "recommendedMaxWorkingSetSize" in argv[2]:
            path = base / "metal.txt"
            return path.read_text() if path.exists() else None
        raise AssertionError(f"unexpected command {argv}")

    return run


def test_m1_16gb() -> None:
    found = apple.probe_apple(fake_runner("apple-m1-16gb"), available=9 * GIB)
    g = found.gpu
    assert g is not None
    assert g.name == "Apple M1 (7-core GPU)"
    assert g.memory_total_bytes == 17179869184
    assert g.memory_free_bytes == 9 * GIB
    assert g.usable_memory_bytes == 11453251584
    assert g.usable_memory_source == "metal:recommendedMaxWorkingSetSize"
    assert g.arch == "apple7"
    assert g.gpu_cores == 7
    assert g.unified_memory is True
    assert "metal" in g.runtimes
    assert "mlx" in g.runtimes
    assert (found.performance_cores, found.efficiency_cores) == (4, 4)


def test_m2_max_64gb_from_text_system_profiler() -> None:
    found = apple.probe_apple(fake_runner("apple-m2-max-64gb"))
    g = found.gpu
    assert g is not None
    assert g.name == "Apple M2 Max (38-core GPU)"
    assert g.gpu_cores == 38
    assert g.arch == "apple8"
    assert g.usable_memory_bytes == 51539607552  # 3/4 of 64 GiB, as Metal reported
    assert (found.performance_cores, found.efficiency_cores) == (8, 4)


def test_m3_ultra_without_metal_uses_the_labelled_default() -> None:
    found = apple.probe_apple(fake_runner("apple-m3-ultra-96gb"))
    g = found.gpu
    assert g is not None
    assert g.usable_memory_bytes == 103079215104 * 3 // 4
    assert g.usable_memory_source
    assert g.usable_memory_source.startswith("estimate")
    assert (found.performance_cores, found.efficiency_cores) == (20, 8)
    assert any("Metal could not be asked" in i.message for i in found.issues)


def test_wired_limit_override_raises_the_budget_without_metal() -> None:
    # A scenario, not a recording: an admin ran `sudo sysctl iogpu.wired_limit_mb=90112`.
    run = fake_runner("apple-m3-ultra-96gb", "iogpu.wired_limit_mb: 90112\n")
    g = apple.probe_apple(run).gpu
    assert g is not None
    assert g.usable_memory_bytes == 90112 * 2**20
    assert g.usable_memory_source == "sysctl:iogpu.wired_limit_mb"


def test_wired_limit_above_ram_is_clamped() -> None:
    run = fake_runner("apple-m3-ultra-96gb", "iogpu.wired_limit_mb: 999999\n")
    g = apple.probe_apple(run).gpu
    assert g is not None
    assert g.usable_memory_bytes == 103079215104


def test_m5_super_cores_count_as_performance_cores() -> None:
    values = apple.parse_sysctl(
        "hw.perflevel0.physicalcpu: 6\nhw.perflevel0.name: Super\n"
        "hw.perflevel1.physicalcpu: 12\nhw.perflevel1.name: Performance\n"
    )
    assert apple._cores(values) == (18, None)


@pytest.mark.parametrize("output", [None, "", "garbage", "{", '{"SPDisplaysDataType": 3}'])
def test_broken_command_output_is_a_note(output: str | None) -> None:
    def run(argv):  # type: ignore[no-untyped-def]
        if argv[0] == "sysctl":
            return (FIX / "apple-m1-16gb/sysctl.txt").read_text()
        return output

    found = apple.probe_apple(run)
    assert found.gpu is not None
    assert found.gpu.gpu_cores is None
    assert found.gpu.usable_memory_bytes == 17179869184 * 2 // 3


def test_intel_mac_has_no_apple_gpu() -> None:
    def run(argv):  # type: ignore[no-untyped-def]
        return (
            "machdep.cpu.brand_string: Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz\n"
            "hw.memsize: 17179869184\n"
        )

    found = apple.probe_apple(run)
    assert found.gpu is None


def test_rosetta_is_reported() -> None:
    found = apple.probe_apple(fake_runner("apple-m1-16gb", "sysctl.proc_translated: 1\n"))
    assert any("Rosetta" in i.message for i in found.issues)


def test_run_command_bounds_time_and_survives_missing_binaries() -> None:
    assert apple.run_command(["/nonexistent/command"]) is None
    assert (apple.run_command([sys.executable, "-c", "print('hi')"]) or "").strip() == "hi"


# --- Intel ----------------------------------------------------------------


def test_arc_a770_on_i915() -> None:
    gpus, issues = intel.probe_intel(FIX / "intel-arc-a770", ram_total=32 * GIB, ram_available=None)
    g = gpus[0]
    assert g.name == "Intel Arc A770"
    assert g.memory_total_bytes == 17179869184
    assert g.memory_source == "sysfs:i915 lmem_total_bytes"
    assert g.unified_memory is False
    assert g.arch == "Xe-HPG (Alchemist)"
    assert "sycl" in g.runtimes
    assert any("free memory" in i.message for i in issues)


def test_arc_a770_on_xe_sums_tiles(tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(FIX / "intel-arc-a770", root)
    (root / "sys/class/drm/card0/lmem_total_bytes").unlink()
    tile = root / "sys/class/drm/card0/device/tile0"
    tile.mkdir()
    (tile / "physical_vram_size_bytes").write_text("0x400000000\n")  # igt reads it as hex
    uevent = root / "sys/class/drm/card0/device/uevent"
    uevent.write_text(uevent.read_text().replace("i915", "xe"))
    g = intel.probe_intel(root, ram_total=None, ram_available=None)[0][0]
    assert g.memory_total_bytes == 17179869184
    assert g.kernel_driver == "xe"


def test_iris_xe_igpu_shares_80_percent_of_ram() -> None:
    ram = 64 * GIB
    gpus, _ = intel.probe_intel(FIX / "intel-iris-xe-igpu", ram_total=ram, ram_available=40 * GIB)
    g = gpus[0]
    assert g.name == "Intel Iris Xe Graphics"
    assert g.unified_memory is True
    assert g.shared_memory_bytes == round(ram * 0.8)
    assert g.memory_free_bytes == 40 * GIB
    # llama.cpp #6382 saw 53705M on such a machine: within 3 % of the estimate.
    assert abs(g.shared_memory_bytes - 53705 * 2**20) / (53705 * 2**20) < 0.03


# --- Jetson -----------------------------------------------------------------


def test_jetson_agx_orin_gpu_is_system_ram() -> None:
    memory = Memory(total_bytes=61 * GIB, available_bytes=50 * GIB)
    gpus, issues = jetson.probe_jetson(FIX / "jetson-agx-orin", memory)
    g = gpus[0]
    assert g.name == "NVIDIA Jetson AGX Orin"
    assert g.vendor == "nvidia"
    assert g.unified_memory is True
    assert g.memory_total_bytes == 61 * GIB
    assert g.memory_free_bytes == 50 * GIB
    assert issues


def test_l4t_release_parsing(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R38 (release), REVISION: 2.2, GCID: 1\n")
    assert jetson.l4t_release(tmp_path) == "L4T R38.2.2"


def test_not_a_jetson(tmp_path: Path) -> None:
    assert jetson.probe_jetson(tmp_path, Memory()) == ((), ())


# --- Windows ----------------------------------------------------------------


def _registry():  # type: ignore[no-untyped-def]
    import json

    data = json.loads((FIX / "windows-registry/registry.json").read_text())

    def value(key: str, name: str) -> object:
        return data.get(key, {}).get(name)

    def subkeys(key: str) -> list[str]:
        prefix = key + "\\"
        return [k[len(prefix) :] for k in data if k.startswith(prefix)]

    return value, subkeys


def test_windows_gpus_from_the_registry_never_from_adapter_ram() -> None:
    from canirun.hardware import windows

    gpus, issues = windows.probe_windows_gpus(*_registry())
    by_name = {g.name: g for g in gpus}
    assert set(by_name) == {
        "AMD Radeon PRO V710",
        "AMD Radeon AI PRO R9700",
        "AMD Radeon 780M Graphics",
    }
    assert by_name["AMD Radeon PRO V710"].memory_total_bytes == 30064771072
    assert by_name["AMD Radeon PRO V710"].unified_memory is False
    # 4293918720 in a 32-bit value is saturation ("4 GiB or more"), not the size.
    assert by_name["AMD Radeon AI PRO R9700"].memory_total_bytes is None
    assert by_name["AMD Radeon AI PRO R9700"].driver_version == "32.0.31035.1003"
    assert by_name["AMD Radeon 780M Graphics"].unified_memory is True
    assert by_name["AMD Radeon 780M Graphics"].memory_total_bytes is None
    assert any("DXGI" in i.message for i in issues)


def test_windows_cpu_identity_and_flags() -> None:
    from canirun.hardware import windows

    registry, _ = _registry()
    identity = windows.read_windows_identity(registry, lambda pf: pf in (39, 40))
    assert identity.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert identity.vendor == "Intel"
    assert identity.flags == ("avx", "avx2")


def test_windows_facade(tmp_path: Path) -> None:
    from canirun.hardware import probe
    from tests.fakes import fake_nvml as f
    from tests.fakes.fake_nvml import FakeNvml

    nvml = FakeNvml(init_error=f.NVML_ERROR_LIBRARY_NOT_FOUND)
    host = probe(tmp_path, root=tmp_path, env={}, nvml=nvml, system_name="windows", run=_registry)
    assert [g.index for g in host.hardware.gpus] == [0, 1, 2]
    assert {g.vendor for g in host.hardware.gpus} == {"amd"}


class FakeAmdsmi:
    """amdsmi's functions as canirun calls them, for one card at 0000:86:00.0."""

    def __init__(self, name: str = "AMD Radeon RX 7900 XTX", fail_init: bool = False) -> None:
        self.name, self.fail_init, self.shut = name, fail_init, False

    def amdsmi_init(self) -> None:
        if self.fail_init:
            raise RuntimeError("AMDSMI_STATUS_INIT_ERROR")

    def amdsmi_shut_down(self) -> None:
        self.shut = True

    def amdsmi_get_processor_handles(self) -> list[str]:
        return ["h0"]

    def amdsmi_get_gpu_device_bdf(self, handle: str) -> str:
        return "0000:86:00.0"

    def amdsmi_get_gpu_asic_info(self, handle: str) -> dict[str, str]:
        return {"market_name": self.name}

    def amdsmi_get_gpu_driver_info(self, handle: str) -> dict[str, str]:
        return {"driver_name": "amdgpu", "driver_version": "6.16.6"}


def test_amdsmi_names_a_card_amdgpu_ids_lacks_and_gives_the_driver(tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(FIX / "amd-rx7900xtx", root)
    (root / "usr/share/libdrm/amdgpu.ids").unlink()
    smi = FakeAmdsmi()
    g = amd.probe_amd(root, ram_total=None, ram_available=None, env={}, amdsmi=smi)[0][0]
    assert g.name == "AMD Radeon RX 7900 XTX"
    assert g.driver_version == "6.16.6"
    assert smi.shut is True


def test_amdsmi_never_overrides_amdgpu_ids_and_its_failures_are_silent() -> None:
    smi = FakeAmdsmi(name="N/A")
    g = amd.probe_amd(FIX / "amd-rx7900xtx", ram_total=None, ram_available=None, env={}, amdsmi=smi)
    assert g[0][0].name == "AMD Radeon RX 7900 XTX"
    broken = FakeAmdsmi(fail_init=True)
    g = amd.probe_amd(
        FIX / "amd-rx7900xtx", ram_total=None, ram_available=None, env={}, amdsmi=broken
    )
    assert g[0][0].driver_version is None


def test_a_broken_amdsmi_install_is_no_amdsmi(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from canirun.hardware import amdsmi_names

    # Installed (a spec exists) but its import fails, as without ROCm's libamd_smi.so.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    assert amdsmi_names.load_amdsmi() is None
    assert capsys.readouterr().out == ""
