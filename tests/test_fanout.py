"""Rating shared out to forked workers (canirun.fanout): the same answers in the same order,
a failed worker costs only time, and no fork where it is not safe."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from canirun import fanout

ROOT = Path(__file__).resolve().parents[1]
ON_LINUX = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")

# Run in a fresh interpreter: one thread, so fanout may fork (pytest's process may hold
# threads other tests started). Every fork is counted, so a comparison that forked
# nothing fails instead of passing.
PRELUDE = """
import json, os, sys
real_fork = os.fork
forks = []
def counted_fork():
    pid = real_fork()
    if pid:
        forks.append(pid)
    return pid
os.fork = counted_fork
from canirun import fanout
PARENT = os.getpid()
"""

SAME_REPORTS = """
from canirun.estimate.rate import Options
from canirun.evaluate import framework_statuses, machine_capacity, scan_report
from tests.test_report_json import CATALOG, HOSTS
same = {}
for name, machine in HOSTS.items():
    one = scan_report(machine, CATALOG, Options(), ram_bandwidth=80 * 10**9, workers=1)[0]
    two = scan_report(machine, CATALOG, Options(), ram_bandwidth=80 * 10**9, workers=2)[0]
    cap = machine_capacity(machine, CATALOG)
    statuses = framework_statuses(CATALOG, cap, 2) == framework_statuses(CATALOG, cap, 1)
    same_time = {**two.data, "created_at": one.data["created_at"]}  # a second may pass
    two = type(two)(two.model_name, same_time)
    same[name] = [one.json_bytes() == two.json_bytes(), statuses, len(two.data["results"])]
print(json.dumps({"same": same, "forks": len(forks)}))
"""

MAPPED = """
def square(x):
    return x * x
checked = 0
for n in (0, 1, 47, 48, 49, 100, 1001):
    for workers in (2, 3, 4):
        assert fanout.map_in_order(square, range(n), workers) == [x * x for x in range(n)], n
        checked += 1
def fails_in_a_worker(x):
    if os.getpid() != PARENT:
        raise RuntimeError("a worker's failure")
    return -x
assert fanout.map_in_order(fails_in_a_worker, range(200), 2) == [-x for x in range(200)]
def killed_in_a_worker(x):
    if os.getpid() != PARENT and x % 7 == 3:
        os.kill(os.getpid(), 9)
    return x + 1
assert fanout.map_in_order(killed_in_a_worker, range(300), 3) == [x + 1 for x in range(300)]
def fails_here(x):
    if os.getpid() == PARENT:
        raise ValueError("the parent's own failure")
    return x
try:
    fanout.map_in_order(fails_here, range(200), 2)
    raise AssertionError("the parent's error was not raised")
except ValueError:
    pass
try:  # the workers were stopped and reaped: no child is left
    os.waitpid(-1, os.WNOHANG)
    left = True
except ChildProcessError:
    left = False
print(json.dumps({"checked": checked, "forks": len(forks), "children_left": left}))
"""


COMMAND_LINE = """
import runpy
from canirun import entry
entry.end_now = lambda code: None  # print the count below before the process ends
sys.argv = ["canirun", *sys.argv[1:]]
try:
    runpy.run_module("canirun", run_name="__main__")
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps({"forks": len(forks), "workers": fanout.usable_workers()}), file=sys.stderr)
"""


def _env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != fanout.ENV}
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), **more}


def _run(script: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + script],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def _scan(**env: str) -> tuple[dict[str, object], dict[str, object]]:
    args = ["scan", "--json", "--ram-bandwidth", "off", "--hardware", "tests/data/workstation.json"]
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + COMMAND_LINE, *args],
        capture_output=True,
        text=True,
        env=_env(**env),
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    report.pop("created_at")
    return report, json.loads(done.stderr.splitlines()[-1])


@ON_LINUX
def test_the_command_line_shares_the_scan_out_and_writes_the_same_report() -> None:
    shared, how = _scan()
    alone, how_alone = _scan(CANIRUN_WORKERS="1")
    workers = how["workers"]
    assert isinstance(workers, int)
    assert how["forks"] == workers - 1  # one process per CPU here, up to 4, this one included
    assert how_alone["forks"] == 0
    assert shared == alone
    assert isinstance(shared["results"], list)
    assert len(shared["results"]) > 500


@ON_LINUX
def test_a_report_rated_by_workers_is_the_same_byte_for_byte() -> None:
    answer = _run(SAME_REPORTS)
    assert answer["forks"] == 6  # one worker per report and per framework listing
    same = answer["same"]
    assert isinstance(same, dict)
    assert len(same) == 3
    for name, (report_same, statuses_same, results) in same.items():
        assert report_same, name
        assert statuses_same, name
        assert results > 500, name


@ON_LINUX
def test_answers_come_back_in_order_whatever_fails_in_a_worker() -> None:
    answer = _run(MAPPED)
    assert answer["checked"] == 21
    # Fewer than 48 items never fork; 48 and 49 make 2 processes (24 items each at least),
    # 100 and 1001 as many as asked: 3 + 3 + 6 + 6 forks, then 1 + 2 + 1 for the failures.
    assert answer["forks"] == 22
    assert answer["children_left"] is False


def test_no_fork_while_another_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise AssertionError("forked with another thread running")

    monkeypatch.setattr(os, "fork", no_fork)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert fanout.usable_workers({}) == 1
        assert fanout.map_in_order(str, range(100), 4) == [str(x) for x in range(100)]
    finally:
        stop.set()
        other.join()


@pytest.mark.parametrize(
    ("value", "workers"),
    [("", 4), ("1", 1), ("0", 1), ("-2", 1), ("two", 1), ("3", 3), ("16", 8), (" 2 ", 2)],
)
def test_the_workers_variable(value: str, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "_can_fork", lambda: True)
    monkeypatch.setattr(fanout, "_cpus", lambda: 8)
    assert fanout.usable_workers({fanout.ENV: value}) == workers


def test_one_cpu_means_no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "_can_fork", lambda: True)
    monkeypatch.setattr(fanout, "_cpus", lambda: 1)
    assert fanout.usable_workers({}) == 1


def test_no_workers_but_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "_cpus", lambda: 8)
    monkeypatch.setattr(fanout, "_threads", lambda: 1)
    for system in ("darwin", "win32"):
        monkeypatch.setattr(sys, "platform", system)
        assert fanout.usable_workers({}) == 1
    monkeypatch.setattr(sys, "platform", "linux")
    assert fanout.usable_workers({}) == (4 if hasattr(os, "fork") else 1)


@pytest.mark.parametrize(("total", "n"), [(48, 2), (178, 2), (356, 4), (10**6, 4)])
def test_the_chunks_cover_every_item_once_and_fit_in_a_pipe(total: int, n: int) -> None:
    chunks = fanout._chunks(total, n)
    assert chunks[0][0] == 0
    assert chunks[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    assert len(chunks) <= fanout._MAX_CHUNKS
    assert len(chunks) * fanout._TOKEN <= 65536  # a pipe's default capacity
    assert len(chunks) >= min(total, 16 * n)  # enough for the processes to finish together


@pytest.mark.parametrize("machine", ["laptop", "RTX 4090", "2x 80 GB"])
def test_a_rating_answers_with_its_records_and_plain_values_only(machine: str) -> None:
    """A worker's answer may hold only the rating records (the reader refuses anything
    else, and its share is then rated again): every object of every variant's answer is
    one of them or a plain value, and each record is rebuilt from its fields."""
    from canirun.estimate.rate import Options
    from canirun.estimate.results import RATING_RECORDS
    from canirun.evaluate import machine_capacity, rate_all
    from tests.test_report_json import CATALOG, HOSTS

    cap = machine_capacity(HOSTS[machine], CATALOG)
    rated = rate_all(CATALOG.variants(), CATALOG, cap, Options())
    plain = (str, int, float, bool, type(None), list, tuple, frozenset)
    seen: set[type] = set()
    stack: list[object] = [x for r in rated for x in (*r.results, r.summary)]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple, frozenset)):
            stack += item
        elif type(item) in RATING_RECORDS:
            seen.add(type(item))
            rebuilt, fields = fanout._by_fields(item)
            assert rebuilt(*fields) == item
            stack += fields
        else:
            assert isinstance(item, plain), type(item)
    assert seen >= {RATING_RECORDS[i] for i in (0, 1, 3, 6)}  # memory, speed, result, summary
