"""Never harm the machine, never lose what the user had (issue 10, items 1 and 2).

The RAM bandwidth test is sized to a small share of the memory really free
here and skipped when that is too little; every worker count is bounded by the
usable cores and the free memory; --output and $GITHUB_STEP_SUMMARY write only
regular files, and everything else is refused with exit 2, left as it was.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from canirun import fleet
from canirun.cli import app
from canirun.hardware import Host, bandwidth, probe
from tests.fakes.fake_nvml import FakeNvml

runner = CliRunner()
MIB = 2**20
GIB = 2**30
HARDWARE = Path(__file__).parent / "data" / "workstation.json"


# -- 1. the RAM bandwidth test ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("available", "limit", "used", "unknown", "expected"),
    [
        (64 * GIB, None, None, False, 256 * MIB),  # a big machine: the 256 MiB cap
        (1 * GIB, None, None, False, 128 * MIB),  # 1/8 of what is free
        (64 * GIB, 500 * MIB, 300 * MIB, False, None),  # the issue's 500 MiB cgroup
        (64 * GIB, 200 * MIB, 60 * MIB, False, None),  # the issue's 200 MiB cgroup
        (64 * GIB, 4 * GIB, 3 * GIB, False, 128 * MIB),  # 1 GiB of room left
        (64 * GIB, 4 * GIB, None, False, None),  # usage unreadable: do not guess
        (64 * GIB, None, None, True, None),  # limit unreadable: do not guess
        (None, None, None, False, None),  # available RAM unreadable
        (300 * MIB, None, None, False, None),  # a small VM without a cgroup
        (64 * GIB, 4 * GIB, 5 * GIB, False, None),  # usage over the limit (reclaim)
    ],
)
def test_memory_budget(
    available: int | None, limit: int | None, used: int | None, unknown: bool, expected: int | None
) -> None:
    """10 cases: the budget is 1/8 of the room, at most 256 MiB, none below 64 MiB or unknown."""
    budget, why = bandwidth.memory_budget(available, limit, used, limit_unknown=unknown)
    assert budget == expected
    assert (why is None) == (budget is not None)


@settings(max_examples=300, deadline=None)
@given(
    available=st.none() | st.integers(0, 2**50),
    limit=st.none() | st.integers(0, 2**50),
    used=st.none() | st.integers(0, 2**50),
)
def test_fuzz_memory_budget_never_exceeds_a_share_of_the_room(
    available: int | None, limit: int | None, used: int | None
) -> None:
    """300 cases: whatever the figures, the test takes at most 1/8 of what is free."""
    budget, _ = bandwidth.memory_budget(available, limit, used)
    if budget is None:
        return
    assert available is not None
    room = available if limit is None else min(available, limit - (used if used else 0))
    assert limit is None or used is not None
    assert bandwidth.MIN_TOTAL <= budget <= min(bandwidth.MAX_TOTAL, room // 8)


def _cgroup_tree(root: Path, memory_max: str, memory_current: str | None, cpu_max: str) -> None:
    files = {
        "proc/self/cgroup": "0::/job\n",
        "proc/self/mountinfo": "1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "sys/fs/cgroup/job/memory.max": memory_max,
        "sys/fs/cgroup/job/cpu.max": cpu_max,
    }
    if memory_current is not None:
        files["sys/fs/cgroup/job/memory.current"] = memory_current
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("memory_max", "memory_current", "reason"),
    [
        (str(500 * MIB), str(300 * MIB), "only 200 MiB"),
        (str(200 * MIB), str(60 * MIB), "only 140 MiB"),
        (str(8 * GIB), None, "memory use could not be read"),
        ("garbage", str(MIB), "limit could not be read"),
    ],
)
def test_the_copy_test_is_skipped_where_memory_is_short(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    memory_max: str,
    memory_current: str | None,
    reason: str,
) -> None:
    """4 containers: nothing is allocated, and a probe note says why."""

    def must_not_run(*_: object) -> None:
        raise AssertionError("the copy test ran in a container without room for it")

    monkeypatch.setattr(bandwidth, "measure_ram_bandwidth", must_not_run)
    _cgroup_tree(tmp_path, memory_max, memory_current, "max 100000")
    host = probe(
        tmp_path / "models", root=tmp_path, nvml=FakeNvml(), env={}, measure_bandwidth=True
    )
    assert host.hardware.memory.bandwidth_bytes_per_s is None
    notes = [i.message for i in host.issues if i.source == "bandwidth"]
    assert len(notes) == 1
    assert reason in notes[0]


@pytest.mark.parametrize(("cpu_max", "threads"), [("100000 100000", 1), ("150000 100000", 2)])
def test_the_copy_test_uses_the_cores_the_quota_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, threads: int
) -> None:
    """2 quotas: one thread per usable core (a 1.5-core quota runs two), within the budget."""
    seen: list[tuple[int, int]] = []
    real = bandwidth.measure_ram_bandwidth

    def spy(budget: int, cores: int) -> bandwidth.Measurement:
        seen.append((budget, cores))
        return real(budget, cores, rounds=1)

    monkeypatch.setattr(bandwidth, "measure_ram_bandwidth", spy)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)))
    _cgroup_tree(tmp_path, str(64 * GIB), str(GIB), cpu_max)
    host = probe(
        tmp_path / "models", root=tmp_path, nvml=FakeNvml(), env={}, measure_bandwidth=True
    )
    budget, cores = seen[0]
    assert cores == threads
    assert budget <= min(bandwidth.MAX_TOTAL, host.hardware.memory.available_bytes // 8)
    assert host.hardware.memory.bandwidth_bytes_per_s


def test_the_copy_test_measures_with_every_thread_at_once() -> None:
    """A real measurement: each thread copies its own buffers, all inside the budget."""
    result = bandwidth.measure_ram_bandwidth(bandwidth.MIN_TOTAL, 4, rounds=2)
    assert result.bytes_per_s is not None
    assert result.bytes_per_s > 10**8
    assert 1 <= result.threads <= 4
    assert result.buffer_bytes <= bandwidth.MIN_TOTAL


def test_the_copy_test_never_starts_more_threads_than_the_cap() -> None:
    pairs = bandwidth._buffers(bandwidth.MAX_TOTAL, 10_000)
    assert len(pairs) <= bandwidth.MAX_THREADS
    assert sum(len(a) + len(b) for a, b in pairs) <= bandwidth.MAX_TOTAL


def test_a_copy_test_without_threads_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pids limit that refuses threads: the measurement is skipped, not a crash."""

    def refuse(*_: object, **__: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(bandwidth.threading.Thread, "start", refuse)
    result = bandwidth.measure_ram_bandwidth(bandwidth.MIN_TOTAL, 2)
    assert result.bytes_per_s is None
    assert result.note
    assert "threads" in result.note


# -- 1. worker processes ----------------------------------------------------------------------


@functools.cache
def _small_report() -> str:
    """A real `check` report (fleet reads check reports too): small, so many copies are cheap."""
    args = ["check", "llama3:8b", "--json", "--ram-bandwidth", "off", "--hardware", str(HARDWARE)]
    return runner.invoke(app, args).stdout


def _reports(folder: Path, count: int) -> None:
    for i in range(count):
        data = json.loads(_small_report())
        data["machine"]["hostname"] = f"host-{i}"
        (folder / f"r{i}.json").write_text(json.dumps(data))


# A folder large enough that the old reader would have started worker processes.
MANY = 65


def test_fleet_reads_in_its_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker processes: on a machine shared with others, fleet takes one core."""

    def no_fork(*_: object, **__: object) -> None:
        raise AssertionError("fleet started a process")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(subprocess, "Popen", no_fork)
    _reports(tmp_path, MANY)
    merged = fleet.merge(fleet.expand([str(tmp_path)]))
    assert len(merged.machines) == MANY


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not Path("/dev/shm").is_dir(),
    reason="needs root and unshare for a private mount namespace",
)
def test_fleet_with_a_really_read_only_dev_shm(tmp_path: Path) -> None:
    """A real read-only tmpfs over /dev/shm in a private mount namespace."""
    _reports(tmp_path, MANY)
    src = Path(__file__).resolve().parent.parent / "src"
    script = (
        "mount -t tmpfs -o ro tmpfs /dev/shm || exit 77; "
        f"PYTHONPATH={src} {sys.executable} -m canirun fleet --format csv {tmp_path}"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False
    )
    if done.returncode == 77:
        pytest.skip("mounting is not allowed here")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"host-{MANY - 1}" in done.stdout


# -- 2. --output and the job summary ---------------------------------------------------------


@pytest.fixture(scope="module")
def fleet_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    _reports(folder, 1)
    return folder / "r0.json"


def _snapshot(path: Path) -> tuple[int, bytes | None, str | None]:
    info = os.lstat(path)
    content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
    link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    return info.st_mode, content, link


def _target(kind: str, tmp: Path) -> Path:
    """Make something at tmp/<kind> that --output must not replace."""
    path = tmp / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "read-only":
        path.write_text("keep me")
        path.chmod(0o444)
    elif kind == "hard-linked":
        path.write_text("keep me")
        os.link(path, tmp / "other-name")
    elif kind == "link-to-directory":
        (tmp / "d").mkdir()
        path.symlink_to(tmp / "d")
    elif kind == "dangling-link":
        path.symlink_to(tmp / "nothing")
    elif kind == "link-loop":
        path.symlink_to(tmp / "loop2")
        (tmp / "loop2").symlink_to(path)
    elif kind == "link-to-read-only":
        (tmp / "ro").write_text("keep me")
        (tmp / "ro").chmod(0o444)
        path.symlink_to(tmp / "ro")
    return path


REFUSED = [
    "directory",
    "fifo",
    "read-only",
    "hard-linked",
    "link-to-directory",
    "dangling-link",
    "link-loop",
    "link-to-read-only",
]


@pytest.mark.parametrize("kind", REFUSED)
@pytest.mark.parametrize(
    "command", [["hardware"], ["check", "llama3:8b", "--hardware", str(HARDWARE)], ["fleet"]]
)
def test_output_refuses_what_is_not_a_regular_file(
    tmp_path: Path, kind: str, command: list[str], fleet_report: Path
) -> None:
    """24 cases: exit 2, one line naming --output, and the thing left exactly as it was."""
    target = _target(kind, tmp_path)
    before = {p.name: _snapshot(p) for p in tmp_path.iterdir()}
    args = [*command, str(fleet_report)] if command == ["fleet"] else command
    result = runner.invoke(app, [*args, "--output", str(target)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"canirun: error: --output {target}")
    assert result.stderr.count("\n") == 1
    assert {p.name: _snapshot(p) for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full", "/dev/zero"])
def test_output_refuses_device_nodes(device: str) -> None:
    """3 devices: as root, -o /dev/null used to become a regular file."""
    if not Path(device).exists():
        pytest.skip(f"no {device}")
    before = os.stat(device)
    result = runner.invoke(app, ["hardware", "--output", device])
    assert result.exit_code == 2
    assert "character device" in result.stderr
    after = os.stat(device)
    assert stat.S_ISCHR(after.st_mode)
    assert after.st_ino == before.st_ino


def test_output_replaces_a_file_keeping_owner_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o604)
    if os.geteuid() == 0:
        os.chown(target, 4321, 4321)
    assert runner.invoke(app, ["hardware", "--output", str(target)]).exit_code == 0
    info = target.stat()
    assert json.loads(target.read_text())["kind"] == "hardware"
    assert info.st_mode & 0o7777 == 0o604
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (4321, 4321)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_output_writes_through_a_symlink(tmp_path: Path) -> None:
    """The link stays a link; the file it points to gets the report, its mode kept."""
    real = tmp_path / "store" / "latest.json"
    real.parent.mkdir()
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "report.json"
    link.symlink_to(real)
    assert runner.invoke(app, ["hardware", "--output", str(link)]).exit_code == 0
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert json.loads(real.read_text())["kind"] == "hardware"
    assert real.stat().st_mode & 0o777 == 0o640


def test_output_refuses_to_change_the_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of another user that we may write to but not chown: refused, kept."""
    target = tmp_path / "theirs.json"
    target.write_text("theirs")
    real_stat = os.stat

    def other_owner(path: object, *args: object, **kwargs: object) -> os.stat_result:
        info = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if str(path) == str(target):
            fields = list(info)
            fields[4] = info.st_uid + 1
            return os.stat_result(fields)
        return info

    def no_chown(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "stat", other_owner)
    monkeypatch.setattr(os, "fchown", no_chown)
    result = runner.invoke(app, ["hardware", "--output", str(target)])
    assert result.exit_code == 2
    assert "another user" in result.stderr
    assert target.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.json"]


def test_output_creates_missing_folders_with_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "site" / "nightly" / "index.json"
    umask = os.umask(0o027)
    try:
        assert runner.invoke(app, ["hardware", "--output", str(target)]).exit_code == 0
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o640
    assert target.parent.stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize(
    "name",
    [
        "x" * 300,  # a name longer than NAME_MAX
        "/".join(["d" * 250] * 20) + "/r.json",  # a path longer than PATH_MAX
        "file/r.json",  # a folder that is a file
    ],
)
def test_output_paths_that_cannot_exist(tmp_path: Path, name: str) -> None:
    """3 cases: names too long, a parent that is a file: one line, exit 2."""
    (tmp_path / "file").write_text("mine")
    result = runner.invoke(app, ["hardware", "--output", str(tmp_path / name)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("canirun: error: --output ")
    assert result.stderr.count("\n") == 1
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_the_job_summary_is_appended_only_to_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """3 cases: a FIFO (would block for ever), a folder, /dev/null: refused at once."""
    target = Path("/dev/null") if kind == "device" else _target(kind, tmp_path)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    result = runner.invoke(
        app, ["check", "llama3:8b", "--hardware", str(HARDWARE), "--github-summary"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"canirun: error: --github-summary {target}: is ")


def test_the_job_summary_keeps_what_was_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ["check", "llama3:8b", "--hardware", str(HARDWARE), "--github-summary"]
    assert runner.invoke(app, args).exit_code == 0
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert "Llama 3" in text


# -- the copy test's figure, kept per machine (issue 14: a CI gate must not flap) -----------


def _probe_keeping(tmp_path: Path, cache: Path, refresh: bool = False) -> Host:
    """Probe the fixture tree with the copy test, keeping its figure in `cache`."""
    return probe(
        tmp_path / "models",
        root=tmp_path,
        nvml=FakeNvml(),
        env={},
        measure_bandwidth=True,
        bandwidth_cache=cache,
        refresh_bandwidth=refresh,
    )


def test_the_kept_figure_is_reused_until_asked_to_measure_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First run measures and keeps; the next reuses (no copy test); refresh measures again."""
    from canirun.hardware import bandwidth_cache

    figures = iter([11 * 10**9, 22 * 10**9])
    runs: list[int] = []

    def fake(budget: int, cores: int) -> bandwidth.Measurement:
        runs.append(cores)
        return bandwidth.Measurement(next(figures), 1, 2 * budget)

    monkeypatch.setattr(bandwidth, "measure_ram_bandwidth", fake)
    _cgroup_tree(tmp_path, str(64 * GIB), str(GIB), "max 100000")
    cache = tmp_path / "cache" / "ram-bandwidth.json"

    def rated(refresh: bool = False) -> tuple[int | None, str | None]:
        host = _probe_keeping(tmp_path, cache, refresh)
        memory = host.hardware.memory
        return memory.bandwidth_bytes_per_s, memory.bandwidth_source

    assert rated() == (11 * 10**9, "measured")
    assert cache.is_file()
    value, source = rated()
    assert len(runs) == 1  # the second run did not copy anything
    assert value == 11 * 10**9
    assert source is not None
    assert source.startswith("measured 20")
    assert source.endswith(", kept")
    assert rated(refresh=True) == (22 * 10**9, "measured")
    assert rated()[0] == 22 * 10**9  # the new figure replaced the old one
    assert len(runs) == 2
    assert not list(cache.parent.glob(".*.tmp"))  # written atomically, nothing left over
    data = bandwidth_cache._read(cache)
    assert [v["bytes_per_s"] for v in data.values()] == [22 * 10**9]


def test_a_kept_figure_is_only_this_machines_and_not_too_old(tmp_path: Path) -> None:
    from datetime import timedelta

    from canirun.hardware import bandwidth_cache as bc

    path = tmp_path / "bw.json"
    now = bc.now_utc()
    here = bc.machine_key("box", "EPYC 9654", 16, 64 * GIB)
    assert bc.keep(here, 50 * 10**9, now, path) is None
    assert bc.lookup(here, now, path) == bc.Kept(50 * 10**9, bc._iso(now))
    # Another machine sharing the home directory, or this one with fewer cores or less RAM.
    for other in (
        bc.machine_key("other", "EPYC 9654", 16, 64 * GIB),
        bc.machine_key("box", "EPYC 9654", 8, 64 * GIB),
        bc.machine_key("box", "EPYC 9654", 16, 32 * GIB),
    ):
        assert bc.lookup(other, now, path) is None
    assert bc.lookup(here, now + timedelta(days=bc.MAX_AGE_DAYS + 1), path) is None
    assert bc.lookup(here, now - timedelta(days=1), path) is None  # from the future: clock moved


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"format": 1, "machines": []}',
        '{"format": 999, "machines": {}}',
        '{"format": 1, "machines": {"k": {"bytes_per_s": "fast", "measured_at": "x"}}}',
        '{"format": 1, "machines": {"k": {"bytes_per_s": true, "measured_at": "2026-01-01"}}}',
        '{"format": 1, "machines": {"k": {"bytes_per_s": 5, "measured_at": "yesterday"}}}',
        '{"format": 1, "machines": {"k": {"bytes_per_s": 5, "measured_at": "2026-12-01T00:00"}}}',
        "[" * 100_000,
    ],
)
def test_a_damaged_cache_is_ignored_and_replaced(tmp_path: Path, content: str) -> None:
    from canirun.hardware import bandwidth_cache as bc

    path = tmp_path / "bw.json"
    path.write_text(content)
    now = bc.now_utc()
    assert bc.lookup("k", now, path) is None
    assert bc.keep("k", 7 * 10**9, now, path) is None
    assert bc.lookup("k", now, path) == bc.Kept(7 * 10**9, bc._iso(now))


def test_an_unwritable_cache_is_a_note_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setattr(
        bandwidth,
        "measure_ram_bandwidth",
        lambda budget, cores: bandwidth.Measurement(9 * 10**9, 1, budget),
    )
    _cgroup_tree(tmp_path, str(64 * GIB), str(GIB), "max 100000")
    host = _probe_keeping(tmp_path, blocker / "ram-bandwidth.json")
    assert host.hardware.memory.bandwidth_bytes_per_s == 9 * 10**9
    notes = [i.message for i in host.issues if i.source == "bandwidth"]
    assert len(notes) == 1
    assert notes[0].startswith("RAM bandwidth not kept:")
    assert blocker.read_text().startswith("a file")
