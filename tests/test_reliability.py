"""Reliability: fuzzed inputs, injected hardware faults, output safety, odd environments.

Every fuzz test states its number of generated cases (hypothesis max_examples);
the invariant is always the same: no uncaught exception, and bad input is exit
code 2 with one line that names the input.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from canirun.catalog import load_catalog
from canirun.cli import app
from canirun.errors import InputError
from canirun.fleet import MachineReport, Skipped, read_report
from canirun.hardware import probe
from canirun.hardware.file import load_hardware_file
from canirun.hardware.nvidia import probe_gpus
from canirun.units import parse_size
from tests.fakes import fake_nvml as f
from tests.fakes.fake_nvml import FakeGpu, FakeNvml, a100_mig

runner = CliRunner()
GIB = 2**30
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SRC = Path(__file__).resolve().parent.parent / "src" / "canirun"


def one_line_error(result) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("canirun: error: ") or "Error:" in result.output
    assert "Traceback" not in result.output
    if result.stderr.startswith("canirun: error: "):
        assert result.stderr.count("\n") == 1


# -- fuzzing ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
hardware_like = st.fixed_dictionaries(
    {},
    optional={
        "cpu": st.dictionaries(
            st.sampled_from(["logical_cores", "flags", "model", "x"]), json_values
        ),
        "memory": st.dictionaries(st.sampled_from(["total_bytes", "available_bytes"]), json_values),
        "gpus": st.lists(
            st.dictionaries(st.sampled_from(["vendor", "name", "memory_total_bytes"]), json_values),
            max_size=3,
        ),
        "hardware": json_values,
    },
)


@FUZZ
@given(size=st.text(max_size=30))
def test_fuzz_size_strings(size: str) -> None:
    """150 cases: a size parses to bytes or fails with ValueError, nothing else."""
    try:
        assert parse_size(size) >= 0
    except ValueError as exc:
        assert str(exc)


@pytest.mark.parametrize("text", ["24GB", "1.5 TiB", "-3", "1e400", "", "GB", "10 parsecs", "∞"])
def test_named_size_strings(text: str) -> None:
    try:
        parse_size(text)
    except ValueError:
        return
    assert text in ("24GB", "1.5 TiB")


@FUZZ
@given(data=st.one_of(json_values, hardware_like))
def test_fuzz_hardware_files(data: object, tmp_path_factory: pytest.TempPathFactory) -> None:
    """150 cases: any JSON loads as a hardware file or is refused as bad input."""
    path = tmp_path_factory.mktemp("hw") / "hw.json"
    path.write_text(json.dumps(data))
    try:
        load_hardware_file(path)
    except InputError as exc:
        assert str(path) in str(exc)
        assert "\n" not in str(exc)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_fuzz_hardware_file_bytes(raw: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    """150 cases: arbitrary bytes, as JSON and as TOML."""
    for suffix in (".json", ".toml"):
        path = tmp_path_factory.mktemp("hw") / f"hw{suffix}"
        path.write_bytes(raw)
        try:
            load_hardware_file(path)
        except InputError as exc:
            assert str(path) in str(exc)


@FUZZ
@given(raw=st.binary(max_size=600) | json_values.map(lambda v: json.dumps(v).encode()))
def test_fuzz_fleet_report_files(raw: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    """150 cases: read_report never raises; junk is Skipped with a reason."""
    path = tmp_path_factory.mktemp("fleet") / "r.json"
    path.write_bytes(raw)
    result = read_report(path)
    assert isinstance(result, (Skipped, MachineReport))


def _valid_scan() -> str:
    hw = {"cpu": {"logical_cores": 4}, "memory": {"total_bytes": 16 * GIB}}
    return runner.invoke(
        app, ["scan", "--json", "--ram-bandwidth", "off", "--hardware", _write_tmp(hw)]
    ).stdout


def _write_tmp(data: object) -> str:
    import tempfile

    fd, name = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return name


@functools.cache
def _valid_scan_bytes() -> bytes:
    return _valid_scan().encode()


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 400_000), junk=st.binary(max_size=8))
def test_fuzz_damaged_reports(
    cut: int, junk: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """60 cases: a real report cut anywhere and garbled is refused or read whole, never half."""
    whole = _valid_scan_bytes()
    path = tmp_path_factory.mktemp("cut") / "r.json"
    damaged = whole[: cut % len(whole)] + junk
    path.write_bytes(damaged)
    result = read_report(path)
    if isinstance(result, MachineReport):
        json.loads(damaged)  # only a report that is still whole JSON is accepted


USER_MODEL = (Path(__file__).parent / "data" / "user_model.toml").read_text()


@FUZZ
@given(
    position=st.integers(0, len(USER_MODEL)),
    length=st.integers(0, 30),
    insert=st.text(max_size=10),
)
def test_fuzz_user_catalog_files(
    position: int, length: int, insert: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """150 cases: a valid user catalog file with a random slice replaced."""
    text = USER_MODEL[:position] + insert + USER_MODEL[position + length :]
    path = tmp_path_factory.mktemp("cat") / "user.toml"
    path.write_text(text)
    load_catalog.cache_clear()
    try:
        load_catalog((str(path),), user_dir=False)
    except InputError as exc:
        assert str(path) in str(exc)
        assert "\n" not in str(exc).strip()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(max_size=200) | st.text(alphabet="lamaxwhisp 0123456789:/-_", max_size=20))
def test_fuzz_model_queries(query: str) -> None:
    """80 cases: unicode, empty and long queries: a report (0) or bad input (2)."""
    result = runner.invoke(
        app, ["check", query, "--hardware", str(HARDWARE), "--ram-bandwidth", "off"]
    )
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        one_line_error(result)


HARDWARE = Path(__file__).parent / "data" / "workstation.json"
FLAG_VALUES = {
    "--ctx": st.sampled_from(["0", "-1", "1", "4096", "1e9", "abc", "99999999999"]),
    "--vram": st.sampled_from(["24GB", "0", "-3GB", "lots", "1e400", "1.5 TiB", ""]),
    "--ram": st.sampled_from(["64GiB", "0", "x", "512 MiB"]),
    "--gpu": st.sampled_from(["RTX 4090", "2x A100 80GB", "0x H100", "999x T4", "M2 Ultra", "?"]),
    "--precision": st.sampled_from(["Q4_K_M", "fp16", "Q9", "", "int4,fp8"]),
    "--framework": st.sampled_from(["llama.cpp", "ollama", "nope", "vllm"]),
    "--kv-cache": st.sampled_from(["f16", "q8_0", "bf17"]),
    "--require": st.sampled_from(["gpu", "cpu", "best"]),
    "--min-tps": st.sampled_from(["1", "0", "-5", "fast"]),
    "--resolution": st.sampled_from(["1024", "1001", "0"]),
    "--format": st.sampled_from(["json", "junit", "markdown", "yaml"]),
    "--ram-bandwidth": st.sampled_from(["off", "80GB/s", "slow"]),
}


@settings(max_examples=120, deadline=None)
@given(
    flags=st.lists(st.sampled_from(sorted(FLAG_VALUES)), max_size=4, unique=True).flatmap(
        lambda names: st.tuples(*(st.tuples(st.just(n), FLAG_VALUES[n]) for n in names))
    ),
    extra=st.sampled_from([[], ["--all"], ["--json"], ["--explain"]]),
)
def test_fuzz_flag_combinations(flags: tuple[tuple[str, str], ...], extra: list[str]) -> None:
    """120 cases: any mix of flags and values: a result (0/1) or one clear line (2)."""
    args = ["check", "llama3:8b", "--hardware", str(HARDWARE)]
    for name, value in flags:
        args += [name, value]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2:
        one_line_error(result)


# -- hardware fault injection ------------------------------------------------------------------

NVML_FUNCTIONS = [
    "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetName", "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetCudaComputeCapability",
    "nvmlDeviceGetMemoryBusWidth", "nvmlDeviceGetMaxClockInfo",
    "nvmlDeviceGetMaxPcieLinkGeneration", "nvmlDeviceGetMaxPcieLinkWidth",
    "nvmlDeviceGetMigMode", "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex",
]  # fmt: skip
ERRORS = [f.NVML_ERROR_NOT_SUPPORTED, f.NVML_ERROR_GPU_IS_LOST, f.NVML_ERROR_UNKNOWN,
          f.NVML_ERROR_NO_PERMISSION, f.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
          f.NVML_ERROR_TIMEOUT]  # fmt: skip


@pytest.mark.parametrize("code", ERRORS)
@pytest.mark.parametrize("function", NVML_FUNCTIONS)
def test_every_nvml_call_failing_every_way(function: str, code: int) -> None:
    """72 faults: each NVML call raising each error class."""
    faulty = a100_mig() if "Mig" in function else FakeGpu()
    faulty.errors[function] = code
    healthy = FakeGpu(name="NVIDIA L4", uuid="GPU-bbbb0000-0000-0000-0000-000000000000")
    nvml = FakeNvml([faulty, healthy])
    gpus, issues = probe_gpus(nvml, {})
    assert nvml.shutdown_calls == 1
    assert "NVIDIA L4" in [g.name for g in gpus]  # the other GPU is always reported
    assert issues or function == "nvmlDeviceGetMigDeviceHandleByIndex"
    for gpu in gpus:
        assert gpu.memory_total_bytes is None or gpu.memory_total_bytes > 0


@pytest.mark.parametrize(
    "code", [*ERRORS, f.NVML_ERROR_DRIVER_NOT_LOADED, f.NVML_ERROR_LIBRARY_NOT_FOUND]
)
def test_nvml_init_failing_leaves_the_rest_of_the_report(code: int, fake_nvml) -> None:
    fake_nvml(FakeNvml(init_error=code))
    result = runner.invoke(app, ["hardware", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["hardware"]["gpus"] == []
    assert data["hardware"]["memory"]["total_bytes"]
    assert any(i["source"] == "nvml" for i in data["probe_issues"])


def _write(root: Path, rel: str, text: str | bytes, mode: int | None = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    if mode is not None:
        path.chmod(mode)


@pytest.mark.parametrize(
    "files",
    [
        {},  # no /proc, no cgroups at all
        {
            "proc/cpuinfo": b"\xff\xfe\x00garbage",
            "proc/self/cgroup": "x",
            "proc/self/mountinfo": "y",
        },
        {
            "proc/self/cgroup": "0::/a",
            "proc/self/mountinfo": "1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "sys/fs/cgroup/a/memory.max": "\x00\x01",
        },
        {
            "proc/self/cgroup": "4:memory:/x",
            "proc/self/mountinfo": "1 2 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
            "sys/fs/cgroup/memory/x/memory.limit_in_bytes": "-5",
        },
        {"proc/1/cgroup": "\x00", "etc/os-release": "garbage without equals", "etc/machine-id": ""},
    ],
)
def test_broken_proc_and_cgroup_trees(tmp_path: Path, files: dict[str, str | bytes]) -> None:
    """5 fixture trees: missing, garbled and binary /proc and cgroup files."""
    for rel, text in files.items():
        _write(tmp_path, rel, text)
    host = probe(tmp_path / "models", root=tmp_path, nvml=FakeNvml(), env={})
    memory = host.hardware.memory
    assert memory.total_bytes  # psutil still reports the RAM
    assert memory.limit_bytes is None  # no limit made up from garbage (-5, binary, none)
    assert host.hardware.cpu.model is None  # garbled cpuinfo names no CPU
    assert host.machine.id is None  # an empty or missing machine-id is not an id
    assert any(i.source == "machine-id" for i in host.issues)
    if "sys/fs/cgroup/a/memory.max" in files:  # an unreadable limit is said, not dropped
        assert any(i.source == "cgroup" and "memory.max" in i.message for i in host.issues)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files anyway")
def test_unreadable_cgroup_files(tmp_path: Path) -> None:
    _write(tmp_path, "proc/self/cgroup", "0::/a")
    _write(tmp_path, "proc/self/mountinfo", "1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    _write(tmp_path, "sys/fs/cgroup/a/memory.max", "1000", mode=0)
    assert probe(root=tmp_path, nvml=FakeNvml(), env={}).hardware.memory.limit_bytes is None


@pytest.mark.parametrize(
    ("function", "said", "unknown"),
    [
        ("virtual_memory", "virtual memory: ", ("memory", "total_bytes")),
        ("swap_memory", "swap: ", ("memory", "swap_total_bytes")),
        ("cpu_count", "physical core count: ", ("cpu", "physical_cores")),
        ("cpu_freq", "CPU frequency: ", ("cpu", "max_frequency_mhz")),
        ("disk_usage", "disk usage of ", ("disk", "free_bytes")),
    ],
)
def test_psutil_raising(
    monkeypatch: pytest.MonkeyPatch, function: str, said: str, unknown: tuple[str, str]
) -> None:
    """5 faults: each psutil call raising leaves its figure unknown and says which call."""

    def boom(*_: object, **__: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(psutil, function, boom)
    host = probe(nvml=FakeNvml(), env={})
    issues = [i for i in host.issues if i.source == "psutil"]
    assert len(issues) == 1
    assert issues[0].message.startswith(said)
    assert "Input/output error" in issues[0].message
    group, name = unknown
    assert getattr(getattr(host.hardware, group), name) is None


def test_no_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(
        Path, "expanduser", lambda self: (_ for _ in ()).throw(RuntimeError("no home"))
    )
    host = probe(nvml=FakeNvml(), env={})
    assert host.hardware.disk.path is None
    assert any(i.source == "disk" for i in host.issues)


def test_read_only_home_does_not_matter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o500)
    monkeypatch.setenv("HOME", str(home))
    result = runner.invoke(app, ["check", "llama3:8b", "--hardware", str(HARDWARE)])
    assert result.exit_code == 0


# -- output safety ---------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_output_into_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    result = runner.invoke(app, ["hardware", "--output", str(folder / "r.json")])
    one_line_error(result)
    assert list(folder.iterdir()) == []


def test_a_failed_write_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text("the previous report\n")

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    result = runner.invoke(app, ["hardware", "--output", str(target)])
    one_line_error(result)
    assert "No space left" in result.stderr
    assert target.read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_an_existing_report_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    assert runner.invoke(app, ["hardware", "--output", str(target)]).exit_code == 0
    json.loads(target.read_text())
    assert target.stat().st_mode & 0o777 == 0o640


SLOW_SCAN = """
import signal, sys, time
import canirun.cli as cli
import canirun.evaluate as evaluate

# A shell's background job starts with SIGINT ignored, and Python then keeps it so;
# a user at a terminal has the default, which is what this test is about.
signal.signal(signal.SIGINT, signal.default_int_handler)


def slow(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(30)


evaluate.scan_report = slow  # what `canirun scan` calls
raise SystemExit(cli.main(["scan", "--ram-bandwidth", "off"]))
"""


def test_ctrl_c_is_exit_130_without_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SCAN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"  # the scan is under way
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err


# -- security ---------------------------------------------------------------------------------


def test_no_network_connection_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family != socket.AF_UNIX:
            attempts.append(address)
            raise AssertionError(f"network connection to {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    for args in (["scan", "--json"], ["check", "llama", "whisper"], ["frameworks"], ["hardware"]):
        assert runner.invoke(app, args).exit_code == 0
    assert attempts == []


def test_no_shell_no_eval_no_unpickling_in_the_code() -> None:
    """One module may unpickle: the loader, for the package's own validated catalog and rule
    tables (which name their files, catalog.pickle and rules.pickle), through an unpickler
    that can build only the classes it is given (tested below)."""
    loader = SRC / "catalog" / "loader.py"
    codecache = SRC / "codecache.py"  # runs dataclass code: tested below
    fanout = SRC / "fanout.py"  # reads its own workers' answers: tested below
    skipped = (loader, codecache, fanout)
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py") if p not in skipped)
    assert "shell=True" not in code
    pickling = r"\b(?:import|from) c?_?pickle\b|\bc?_?pickle\.\w+\(|\bUnpickler\b|__reduce"
    for dangerous in (r"\beval\(", r"\bexec\(", pickling, r"yaml\.load\(", r"os\.system\("):
        assert not re.search(dangerous, code), dangerous
    text = loader.read_text()
    assert not re.search(r"pickle\.loads?\(|\bshell=True|\beval\(|\bexec\(", text)
    assert "def find_class" in text
    # fanout reads only what its forked workers write to a pipe it made, and through an
    # unpickler that builds only the record classes it is given.
    text = fanout.read_text()
    assert not re.search(r"pickle\.loads?\(|\bshell=True|\beval\(|\bexec\(", text)
    assert text.count("Unpickler") == 1  # the restricted one
    assert "def find_class" in text
    assert re.findall(r"os\.pipe\(\)", text) == ["os.pipe()", "os.pipe()"]


def test_a_workers_answer_can_build_only_the_records_it_is_given() -> None:
    import pickle

    from canirun import fanout
    from canirun.estimate.results import RATING_RECORDS, Parallel, Workload

    allowed = pickle.dumps([(0, [Parallel(tensor=2), frozenset({"a"}), (1.5, None)])])
    assert fanout._reader(allowed, RATING_RECORDS).load() == [
        (0, [Parallel(tensor=2), frozenset({"a"}), (1.5, None)])
    ]
    # A function, another class, a record the rating does not answer with: refused.
    for hostile in (os.system, Path("x"), Workload()):
        with pytest.raises(pickle.UnpicklingError, match="a worker's answer holds"):
            fanout._reader(pickle.dumps(hostile), RATING_RECORDS).load()


def test_the_code_table_is_read_only_from_the_package() -> None:
    """codecache executes code objects, so it reads them from one file only: the table
    built with the package (schema/records.codes), as trusted as the package's .py files;
    nothing outside the package (a user cache, the environment) can put code in."""
    from canirun import codecache

    text = (SRC / "codecache.py").read_text()
    # The imported package's own folder (an installed copy under CI, the source tree here).
    assert codecache.TABLE.parent == Path(codecache.__file__).resolve().parent / "schema"
    reads = re.findall(r"\b(?:open|read_bytes|read_text|marshal\.loads?)\(", text)
    assert reads == ["marshal.loads(", "read_bytes("], reads
    assert "marshal.loads(TABLE.read_bytes())" in text
    assert "environ" not in text
    assert "getenv" not in text
    # The stand-in, builtins', and run_code's call of the stand-in (records' own code).
    assert re.findall(r"\bexec\(", text) == ["exec(", "exec(", "exec("]


def test_the_catalog_unpickler_builds_nothing_but_catalog_entries() -> None:
    import pickle

    from canirun.catalog import loader, schema

    entry = schema.Detect(commands=["ollama"])
    assert loader._unpickle(pickle.dumps((entry, {"a": [1, 2.5, None]}, b"x"))) == (
        entry,
        {"a": [1, 2.5, None]},
        b"x",
    )
    for hostile in (os.system, print, pickle.loads, schema.parse_size, Path):
        with pytest.raises(pickle.UnpicklingError, match="not a catalog entry"):
            loader._unpickle(pickle.dumps(hostile))

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo owned",))

    with pytest.raises(pickle.UnpicklingError, match=r"(posix|nt)\.system"):
        loader._unpickle(pickle.dumps(Boom()))


def test_the_rules_unpickler_builds_nothing_but_rule_tables() -> None:
    import pickle

    from canirun.catalog import loader, rules, schema

    table = rules._from_toml()[0]
    stamp = rules.validated_stamp()
    raw = loader.stamped_pickle(stamp, {"capabilities.toml": table})
    found = loader.stamped_document(raw, stamp, rules, rules.Strict, "x holds", "rule table")
    assert found == {"capabilities.toml": table}
    # A catalog entry is not a rule table, and no function is reachable.
    for hostile in (schema.Detect(commands=["ollama"]), os.system, print, rules.capabilities):
        raw = loader.stamped_pickle(stamp, hostile)
        assert loader.stamped_document(raw, stamp, rules, rules.Strict, "x", "y") is None
        with pytest.raises(pickle.UnpicklingError, match="not a rule table"):
            loader.restricted_loads(pickle.dumps(hostile), rules, rules.Strict, "x", "rule table")


def test_paths_inside_reports_are_never_written(tmp_path: Path) -> None:
    data = json.loads(_valid_scan())
    target = tmp_path / "must-not-exist.txt"
    data["machine"]["hostname"] = str(target)
    data["hardware"]["disk"] = {"path": str(target), "measured_path": str(target)}
    (tmp_path / "r.json").write_text(json.dumps(data))
    for fmt in ("markdown", "csv", "json", "html"):
        assert (
            runner.invoke(app, ["fleet", str(tmp_path / "r.json"), "--format", fmt]).exit_code == 0
        )
    assert (
        runner.invoke(app, ["check", "llama3:8b", "--hardware", str(tmp_path / "r.json")]).exit_code
        == 0
    )
    assert not target.exists()


# -- odd environments -----------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canirun", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, check=False)  # fmt: skip


@pytest.mark.parametrize(
    "env",
    [
        {"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii"},
        {"TERM": "dumb"},
        {"COLUMNS": "20"},
        {"NO_COLOR": "1"},
    ],
)
def test_odd_terminals_and_locales(env: dict[str, str]) -> None:
    done = _cli(["check", "llama3:8b", "--hardware", str(HARDWARE)], env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "\x1b[" not in done.stdout


def test_windows_paths_in_a_hardware_file(tmp_path: Path) -> None:
    data = json.loads(HARDWARE.read_text())
    data["disk"] = {"path": "C:\\Users\\me\\.cache\\huggingface\\hub", "free_bytes": 10**12}
    path = tmp_path / "win.json"
    path.write_text(json.dumps(data))
    assert runner.invoke(app, ["check", "llama3:8b", "--hardware", str(path)]).exit_code == 0


@pytest.mark.parametrize(
    ("hardware", "expected"),
    [
        (
            {
                "cpu": {"logical_cores": 1},
                "memory": {"total_bytes": 8 * GIB, "swap_total_bytes": 0},
            },
            "cpu",
        ),
        ({"cpu": {"logical_cores": 128}, "memory": {"total_bytes": 2048 * GIB}}, "cpu"),
        (
            {
                "cpu": {"logical_cores": 64},
                "memory": {
                    "total_bytes": 1024 * GIB,
                    "available_bytes": 1000 * GIB,
                    "limit_bytes": 2 * GIB,
                    "limit_used_bytes": 0,
                },
            },
            "too-big",
        ),
        (
            {
                "memory": {"total_bytes": 512 * GIB},
                "gpus": [
                    {
                        "vendor": "nvidia",
                        "name": "NVIDIA H100 80GB HBM3",
                        "memory_total_bytes": 80 * GIB,
                        "compute_capability": "9.0",
                        "index": i,
                    }
                    for i in range(8)
                ],
            },
            "gpu",
        ),
    ],
)
def test_unusual_machines(tmp_path: Path, hardware: dict[str, object], expected: str) -> None:
    """1 CPU and no swap; 128 CPUs; 1 TiB of RAM in a 2 GiB container; 8 GPUs."""
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(hardware))
    result = runner.invoke(app, ["check", "llama3:8b", "-p", "Q4_K_M", "--json", "--hardware",
                                 str(path), "--ram-bandwidth", "off"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["verdict"] == expected


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_output_where_nothing_can_be_written() -> None:
    """A folder no one can create files in, even root (/proc)."""
    result = runner.invoke(app, ["hardware", "--output", "/proc/self/canirun.json"])
    one_line_error(result)
    assert "--output" in result.stderr
