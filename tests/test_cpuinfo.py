"""CPU identity and ISA flags from real /proc/cpuinfo samples."""

from __future__ import annotations

import pytest

from canirun.hardware.cpu import canonical_flags, parse_cpuinfo, read_darwin_identity
from tests.conftest import DATA


def sample(name: str) -> str:
    return (DATA / "cpuinfo" / name).read_text()


def test_intel_sapphire_rapids_reports_amx_and_avx512() -> None:
    cpu = parse_cpuinfo(sample("intel-sapphire-rapids.txt"))
    assert cpu.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu.vendor == "Intel"
    assert cpu.flags is not None
    for flag in ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni"):
        assert flag in cpu.flags
    assert {"amx_tile", "amx_bf16", "amx_int8"} <= set(cpu.flags)


def test_only_the_first_processor_block_is_read() -> None:
    cpu = parse_cpuinfo(sample("intel-sapphire-rapids.txt"))
    assert cpu.flags is not None
    assert "avx2" in cpu.flags  # the truncated second block does not override the first


def test_amd_epyc() -> None:
    cpu = parse_cpuinfo(sample("amd-epyc.txt"))
    assert cpu.vendor == "AMD"
    assert cpu.model == "AMD EPYC"
    assert cpu.flags == (
        "avx",
        "avx2",
        "avx512_bf16",
        "avx512_vnni",
        "avx512f",
        "avx_vnni",
        "f16c",
        "fma",
    )


def test_arm_neoverse_features_use_canonical_names() -> None:
    cpu = parse_cpuinfo(sample("arm-neoverse-v1.txt"))
    assert cpu.vendor == "ARM"
    assert cpu.model == "Neoverse-V1"
    assert cpu.flags == ("bf16", "dotprod", "i8mm", "neon", "sve")


def test_raspberry_pi_board_name_and_plain_neon() -> None:
    cpu = parse_cpuinfo(sample("arm-raspberry-pi-4.txt"))
    assert cpu.model == "Raspberry Pi 4 Model B Rev 1.4"
    assert cpu.flags == ("neon",)


def test_missing_flags_line_is_unknown_not_empty() -> None:
    cpu = parse_cpuinfo("processor : 0\nvendor_id : GenuineIntel\n")
    assert cpu.flags is None
    assert cpu.model is None


@pytest.mark.parametrize("text", ["", "garbage\x00\xff", ":::", "flags\n", "model name :"])
def test_garbage_never_raises(text: str) -> None:
    parse_cpuinfo(text)


def test_canonical_flags_ignore_unknown() -> None:
    assert canonical_flags(["sse2", "avx2", "asimddp", "made_up"]) == ("avx2", "dotprod")


def test_darwin_apple_silicon_via_sysctl() -> None:
    values = {
        "machdep.cpu.brand_string": "Apple M2 Max",
        "hw.optional.neon": "1",
        "hw.optional.arm.FEAT_DotProd": "1",
        "hw.optional.arm.FEAT_I8MM": "0",
        "hw.optional.arm.FEAT_BF16": "1",
    }
    cpu = read_darwin_identity(values.get)
    assert cpu.model == "Apple M2 Max"
    assert cpu.vendor == "Apple"
    assert cpu.flags == ("bf16", "dotprod", "neon")
