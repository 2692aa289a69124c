"""Container limits from cgroup v1 and v2 fixture trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from canirun.hardware import probe
from canirun.hardware.cgroup import read_cgroup_limits
from canirun.hardware.model import Memory
from tests.fakes.fake_nvml import FakeNvml

GIB = 2**30
V1_UNLIMITED = "9223372036854771712"


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v2_tree(
    root: Path,
    *,
    memory_max: str = "max",
    cpu_max: str = "max 100000",
    parent_max: str | None = None,
    current: int = 2 * GIB,
    inactive_file: int = GIB // 2,
    cgroup_path: str = "/ci.slice/job-42",
) -> Path:
    write(root, "proc/self/cgroup", f"0::{cgroup_path}\n")
    write(
        root,
        "proc/self/mountinfo",
        "22 1 0:21 / / rw,relatime - overlay overlay rw\n"
        "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n",
    )
    leaf = "sys/fs/cgroup" + cgroup_path
    write(root, f"{leaf}/memory.max", memory_max + "\n")
    write(root, f"{leaf}/cpu.max", cpu_max + "\n")
    write(root, f"{leaf}/memory.current", f"{current}\n")
    write(root, f"{leaf}/memory.stat", f"anon 123\nfile 456\ninactive_file {inactive_file}\n")
    if parent_max is not None:
        parent = leaf.rsplit("/", 1)[0]
        write(root, f"{parent}/memory.max", parent_max + "\n")
    return root


def v1_tree(
    root: Path,
    *,
    limit: str = V1_UNLIMITED,
    quota: str = "-1",
    period: str = "100000",
    usage: int = 3 * GIB,
    inactive: int = GIB,
) -> Path:
    write(root, "proc/self/cgroup", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    write(
        root,
        "proc/self/mountinfo",
        "35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n",
    )
    mem = "sys/fs/cgroup/memory/docker/abc"
    cpu = "sys/fs/cgroup/cpu,cpuacct/docker/abc"
    write(root, f"{mem}/memory.limit_in_bytes", limit + "\n")
    write(root, f"{mem}/memory.usage_in_bytes", f"{usage}\n")
    write(root, f"{mem}/memory.stat", f"cache 10\ntotal_inactive_file {inactive}\n")
    write(root, f"{cpu}/cpu.cfs_quota_us", quota + "\n")
    write(root, f"{cpu}/cpu.cfs_period_us", period + "\n")
    return root


def test_v2_unlimited(tmp_path: Path) -> None:
    limits = read_cgroup_limits(v2_tree(tmp_path))
    assert limits.version == 2
    assert limits.memory_limit is None
    assert limits.cpu_quota is None


def test_v2_seven_gib_limit_and_working_set(tmp_path: Path) -> None:
    limits = read_cgroup_limits(v2_tree(tmp_path, memory_max=str(7 * GIB)))
    assert limits.memory_limit == 7 * GIB
    assert limits.memory_used == 2 * GIB - GIB // 2  # page cache that can be reclaimed is free


def test_v2_cpu_quota_one_and_a_half_cores(tmp_path: Path) -> None:
    limits = read_cgroup_limits(v2_tree(tmp_path, cpu_max="150000 100000"))
    assert limits.cpu_quota == pytest.approx(1.5)


def test_v2_a_parent_limit_binds_the_child(tmp_path: Path) -> None:
    tree = v2_tree(tmp_path, memory_max=str(7 * GIB), parent_max=str(4 * GIB))
    assert read_cgroup_limits(tree).memory_limit == 4 * GIB


def test_v2_inside_a_cgroup_namespace(tmp_path: Path) -> None:
    tree = v2_tree(tmp_path, memory_max=str(7 * GIB), cgroup_path="/")
    assert read_cgroup_limits(tree).memory_limit == 7 * GIB


def test_v2_garbage_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    limits = read_cgroup_limits(v2_tree(tmp_path, memory_max="lots", cpu_max="x y"))
    assert limits.memory_limit is None
    assert len(limits.problems) == 2


def test_v1_unlimited_is_none(tmp_path: Path) -> None:
    limits = read_cgroup_limits(v1_tree(tmp_path))
    assert limits.version == 1
    assert limits.memory_limit is None
    assert limits.cpu_quota is None


def test_v1_seven_gib_limit_and_quota(tmp_path: Path) -> None:
    limits = read_cgroup_limits(v1_tree(tmp_path, limit=str(7 * GIB), quota="150000"))
    assert limits.memory_limit == 7 * GIB
    assert limits.memory_used == 2 * GIB
    assert limits.cpu_quota == pytest.approx(1.5)


def test_no_cgroup_files_at_all(tmp_path: Path) -> None:
    limits = read_cgroup_limits(tmp_path)
    assert limits.version is None
    assert limits.memory_limit is None


def test_unreadable_mountinfo_lines_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "proc/self/mountinfo", "garbage\n1 2 3\n - cgroup2\n")
    write(tmp_path, "proc/self/cgroup", "nonsense\n")
    assert read_cgroup_limits(tmp_path).version is None


def test_probe_uses_the_container_limit_for_usable_memory(tmp_path: Path) -> None:
    tree = v2_tree(tmp_path, memory_max=str(7 * GIB), cpu_max="150000 100000")
    host = probe(tmp_path / "models", root=tree, nvml=FakeNvml(), env={})
    memory, cpu = host.hardware.memory, host.hardware.cpu
    if memory.total_bytes is not None and memory.total_bytes <= 7 * GIB:
        pytest.skip("this machine has less RAM than the fixture's limit")
    assert memory.limit_bytes == 7 * GIB
    assert memory.cgroup_version == 2
    assert memory.usable_bytes is not None
    assert memory.usable_bytes <= 7 * GIB - (2 * GIB - GIB // 2)
    assert cpu.quota_cores == pytest.approx(1.5)
    assert cpu.usable_cores == pytest.approx(min(1.5, float(cpu.logical_cores or 1.5)))


def test_usable_memory_is_the_smaller_of_host_and_container() -> None:
    roomy_host = Memory(
        total_bytes=1024 * GIB,
        available_bytes=900 * GIB,
        limit_bytes=2 * GIB,
        limit_used_bytes=GIB // 2,
    )
    assert roomy_host.usable_bytes == GIB + GIB // 2
    busy_host = Memory(
        total_bytes=16 * GIB, available_bytes=GIB, limit_bytes=8 * GIB, limit_used_bytes=0
    )
    assert busy_host.usable_bytes == GIB
    over = Memory(
        total_bytes=16 * GIB, available_bytes=8 * GIB, limit_bytes=GIB, limit_used_bytes=2 * GIB
    )
    assert over.usable_bytes == 0
    assert Memory(total_bytes=16 * GIB).usable_bytes is None
