"""An unknown is never enough: every figure the probe could not read, made unknown,
never yields a verdict that the worst value it could have had would not back.

Property: for a host H and one figure f, if H with f unknown gives a runnable
verdict for a model at a precision, then H with f at its worst possible value
gives a runnable verdict at least as good. Worst values: GPU free memory 0; GPU
total memory far above the free memory (headroom and vLLM's cap then take it
all); compute capability 3.0; every OS and CPU architecture in turn; Docker not
usable; a cgroup that already uses its whole limit; a cgroup limit of 0.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from canirun.catalog import load_catalog
from canirun.cli import app
from canirun.errors import InputError
from canirun.estimate.capacity import capacity
from canirun.estimate.frameworks import framework_status
from canirun.estimate.rate import Options, rate_variant
from canirun.estimate.results import RUNNABLE, Result, rank
from canirun.hardware.cgroup import read_cgroup_limits
from canirun.hardware.model import Cpu, Docker, Gpu, Hardware, Host, Memory, OsInfo
from canirun.options import gate_flag

CATALOG = load_catalog(user_dir=False)
GIB = 2**30
runner = CliRunner()
# A spread of kinds and sizes: small and large LLMs, Docker-only AlphaFold 2,
# Linux-only AlphaFold 3, diffusion, speech, an embedding model.
VARIANTS = [
    v
    for v in (
        "llama-3-8b",
        "llama-3-70b",
        "mistral-7b-v0.1",
        "alphafold-2-monomer",
        "alphafold-3-default",
        "stable-diffusion-xl-base",
        "whisper-large-v3",
        "all-minilm-l6-v2",
    )
    if v in CATALOG.variant_by_id
]


def make_host(
    *, ram: int, vram: int, free: int, total: int | None, cc: str | None, docker: bool | None
) -> Host:
    return Host(
        Hardware(
            cpu=Cpu(logical_cores=16, arch="x86_64"),
            memory=Memory(total_bytes=ram, available_bytes=ram, cgroup_version=2),
            gpus=(
                Gpu(
                    vendor="nvidia",
                    name="Some Unlisted Accelerator",
                    memory_total_bytes=total,
                    memory_free_bytes=free,
                    index=0,
                    compute_capability=cc,
                    memory_bandwidth_bytes_per_s=900 * 10**9,
                ),
            )
            if vram
            else (),
            os=OsInfo(system="Linux", machine="x86_64", docker=Docker(cli=docker, daemon=docker)),
        )
    )


def results(h: Host) -> dict[tuple[str, str | None], Result]:
    cap = capacity(h, CATALOG.gpus, ram_bandwidth=80 * 10**9)
    out = {}
    for vid in VARIANTS:
        for r in rate_variant(CATALOG.variant_by_id[vid], CATALOG, cap, Options()):
            out[(vid, r.precision)] = r
    return out


def assert_backed(unknown: Host, worst: list[Host]) -> None:
    got = results(unknown)
    for case in worst:
        bound = results(case)
        for key, r in got.items():
            if r.verdict not in RUNNABLE:
                continue
            w = bound.get(key)
            assert w is not None, key
            assert w.verdict in RUNNABLE, (key, r.verdict, r.reasons)
            assert rank(w.verdict) <= rank(r.verdict), (key, r.verdict, w.verdict)


def _gpu(h: Host, **changes: object) -> Host:
    g = replace(h.hardware.gpus[0], **changes)  # type: ignore[arg-type]
    return replace(h, hardware=replace(h.hardware, gpus=(g,)))


def _memory(h: Host, **changes: object) -> Host:
    m = replace(h.hardware.memory, **changes)  # type: ignore[arg-type]
    return replace(h, hardware=replace(h.hardware, memory=m))


def _os(h: Host, **changes: object) -> Host:
    o = replace(h.hardware.os, **changes)  # type: ignore[arg-type]
    return replace(h, hardware=replace(h.hardware, os=o))


sizes = st.integers(min_value=1, max_value=160).map(lambda g: g * GIB)
FIGURES = ("gpu-total", "gpu-free", "cc", "os", "arch", "docker", "cgroup-used", "cgroup-limit")


@settings(max_examples=60, deadline=None)
@given(ram=sizes, vram=sizes, figure=st.sampled_from(FIGURES))
def test_an_unknown_figure_never_beats_its_worst_value(ram: int, vram: int, figure: str) -> None:
    base = make_host(ram=ram, vram=vram, free=vram, total=vram, cc="8.9", docker=True)
    if figure == "gpu-total":
        unknown, worst = (
            _gpu(base, memory_total_bytes=None),
            [_gpu(base, memory_total_bytes=vram * 100)],
        )
    elif figure == "gpu-free":
        unknown, worst = _gpu(base, memory_free_bytes=None), [_gpu(base, memory_free_bytes=0)]
    elif figure == "cc":
        unknown, worst = _gpu(base, compute_capability=None), [_gpu(base, compute_capability="3.0")]
    elif figure == "os":
        unknown = _os(base, system=None)
        worst = [_os(base, system=s) for s in ("Linux", "Darwin", "Windows")]
    elif figure == "arch":
        unknown = replace(
            _os(base, machine=None),
            hardware=replace(_os(base, machine=None).hardware, cpu=Cpu(logical_cores=16)),
        )
        worst = [
            replace(base, hardware=replace(base.hardware, cpu=Cpu(logical_cores=16, arch=a)))
            for a in ("x86_64", "arm64")
        ]
    elif figure == "docker":
        unknown = _os(base, docker=Docker(cli=None, daemon=None))
        worst = [_os(base, docker=Docker(cli=True, daemon=False))]
    elif figure == "cgroup-used":
        limited = _memory(base, limit_bytes=ram // 2, limit_used_bytes=0)
        unknown = _memory(limited, limit_used_bytes=None)
        worst = [_memory(limited, limit_used_bytes=ram // 2)]
    else:
        unknown = _memory(base, limit_unreadable=True)
        worst = [_memory(base, limit_bytes=0, limit_used_bytes=0)]
    assert_backed(unknown, worst)


# -- the examples of issue 10, item 4 -------------------------------------------------------


def test_gpu_total_unknown_is_not_a_fit_even_with_free_memory_known() -> None:
    h = make_host(ram=8 * GIB, vram=24 * GIB, free=24 * GIB, total=None, cc="8.9", docker=True)
    r = results(h)
    assert all(x.verdict != "gpu" for x in r.values())
    assert any("total memory unknown" in " ".join(x.reasons) for x in r.values())


def test_vllm_cap_needs_the_total() -> None:
    """vLLM plans with 92 % of the total: free memory alone cannot bound that."""
    h = make_host(ram=8 * GIB, vram=80 * GIB, free=80 * GIB, total=None, cc="9.0", docker=True)
    cap = capacity(h, CATALOG.gpus)
    (r,) = rate_variant(
        CATALOG.variant_by_id["llama-3-8b"],
        CATALOG,
        cap,
        Options(framework="vllm", precisions=("fp16",)),
    )
    assert r.verdict == "unknown"


def test_cgroup_usage_unreadable_is_not_zero() -> None:
    m = Memory(total_bytes=64 * GIB, available_bytes=60 * GIB, limit_bytes=8 * GIB)
    assert m.usable_bytes is None


def test_cgroup_limit_unreadable_is_not_no_limit(tmp_path: Path) -> None:
    from tests.test_cgroup import v1_tree, v2_tree

    for tree in (v2_tree(tmp_path / "v2", memory_max="lots"), v1_tree(tmp_path / "v1", limit="?")):
        limits = read_cgroup_limits(tree)
        assert limits.memory_limit is None
        assert limits.memory_limit_unreadable
    m = Memory(total_bytes=64 * GIB, available_bytes=60 * GIB, limit_unreadable=True)
    assert m.usable_bytes is None


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root reads unreadable files anyway")
def test_cgroup_limit_file_without_read_permission(tmp_path: Path) -> None:
    from tests.test_cgroup import v2_tree

    tree = v2_tree(tmp_path, memory_max=str(4 * GIB))
    files = list(tree.rglob("memory.max"))
    for f in files:
        f.chmod(0)
    assert read_cgroup_limits(tree).memory_limit_unreadable


def test_compute_capability_unknown_does_not_pass_a_minimum() -> None:
    h = make_host(ram=4 * GIB, vram=80 * GIB, free=80 * GIB, total=80 * GIB, cc=None, docker=True)
    r = results(h)
    on_gpu = [x for x in r.values() if x.verdict in ("gpu", "multi-gpu", "offload")]
    # Only frameworks the catalog states no minimum for may place on that GPU.
    assert all(
        not CATALOG.framework_by_id[x.framework or ""].min_compute_capability for x in on_gpu
    )
    assert any("compute capability unknown" in " ".join(x.reasons) for x in r.values())
    # A GPU the table knows gets its compute capability from there (RTX 4090: 8.9).
    known = _gpu(h, name="NVIDIA GeForce RTX 4090")
    assert any(x.verdict == "gpu" for x in results(known).values())


@pytest.mark.parametrize("cc", ["abc", "².²", "", "8.", "1" * 50])
def test_garbled_compute_capability_is_unknown_not_a_crash(cc: str) -> None:
    h = make_host(ram=4 * GIB, vram=80 * GIB, free=80 * GIB, total=80 * GIB, cc=cc, docker=True)
    for x in results(h).values():
        if x.verdict == "gpu":
            assert not CATALOG.framework_by_id[x.framework or ""].min_compute_capability


def test_os_unknown_linux_only_frameworks_do_not_pass() -> None:
    h = _os(make_host(ram=64 * GIB, vram=0, free=0, total=0, cc=None, docker=True), system=None)
    cap = capacity(h, CATALOG.gpus)
    tgi = CATALOG.framework_by_id["tgi"]
    assert framework_status(tgi, cap).runs_here is None
    llama = CATALOG.framework_by_id["llama.cpp"]
    assert framework_status(llama, cap).runs_here is True  # runs on every OS


def test_docker_unknown_docker_only_frameworks_do_not_pass(tmp_path: Path) -> None:
    h = make_host(
        ram=512 * GIB, vram=80 * GIB, free=80 * GIB, total=80 * GIB, cc="9.0", docker=None
    )
    cap = capacity(h, CATALOG.gpus)
    assert framework_status(CATALOG.framework_by_id["alphafold"], cap).runs_here is None
    for r in rate_variant(CATALOG.variant_by_id["alphafold-2-monomer"], CATALOG, cap):
        assert r.verdict not in RUNNABLE, r
    # ... and the CI gate does not pass on it.
    import json

    from canirun.envelope import envelope

    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(envelope(h, "hardware")))
    out = runner.invoke(
        app,
        [
            "check",
            "alphafold 2",
            "--hardware",
            str(hw),
            "--require",
            "gpu",
            "--ram-bandwidth",
            "off",
        ],
    )
    assert out.exit_code == 1, out.output


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0.0])
def test_min_tps_must_be_finite_and_positive(value: float) -> None:
    with pytest.raises(InputError):
        gate_flag(None, value, False)


def test_min_tps_nan_on_the_command_line() -> None:
    out = runner.invoke(app, ["check", "llama3:8b", "--min-tps", "nan"])
    assert out.exit_code == 2
    assert "--min-tps" in out.stderr


def test_mig_instances_that_cannot_be_listed_are_unknown_not_empty() -> None:
    from canirun.hardware.nvidia import probe_gpus
    from tests.fakes import fake_nvml as f

    gpu = f.a100_mig()
    gpu.errors["nvmlDeviceGetMaxMigDeviceCount"] = f.NVML_ERROR_UNKNOWN
    gpus, issues = probe_gpus(f.FakeNvml([gpu]), {})
    h = make_host(ram=GIB, vram=0, free=0, total=0, cc=None, docker=True)
    h = replace(h, hardware=replace(h.hardware, gpus=gpus))
    cap = capacity(h, CATALOG.gpus)
    assert cap.gpus[0].free_bytes is None
    assert issues


def test_unknown_free_disk_is_said() -> None:
    h = make_host(ram=64 * GIB, vram=0, free=0, total=0, cc=None, docker=True)
    r = results(h)[("llama-3-8b", "Q4_K_M")]
    assert r.disk_fits is None
    assert any("free disk space unknown" in line for line in r.reasons)
