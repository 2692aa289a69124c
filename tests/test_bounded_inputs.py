"""Never hang, never read without bound, never a traceback (issue 10, items 3 and 5).

Every input a user names (--hardware, --catalog, catalog.d, fleet files and
globs, numeric flags, environment variables) is tried as a FIFO, a device, a
loop, too big, too deep, too long, out of range: each ends at once with exit 2
and one line (or, in a fleet, a skipped file), never a hang or a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from canirun import fleet, inputs
from canirun.catalog import load_catalog
from canirun.cli import app
from canirun.errors import InputError
from canirun.fleet import MachineReport, Skipped, read_report
from canirun.hardware.file import load_hardware_file
from canirun.hardware.nvidia import probe_gpus
from tests.fakes import fake_nvml as f
from tests.fakes.fake_nvml import FakeGpu, FakeNvml

runner = CliRunner()
GIB = 2**30
DATA = Path(__file__).parent / "data"
HARDWARE = DATA / "workstation.json"
USER_MODEL = (DATA / "user_model.toml").read_text()


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


class Hung(BaseException):
    """Not an OSError (TimeoutError is one): no `except OSError` in canirun may swallow it."""


@contextlib.contextmanager
def no_hang(seconds: float = 20) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block blocks: SIGALRM interrupts a read."""

    def expired(*_: object) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_line_error(result, *names: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("canirun: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for name in names:
        assert name in result.stderr


def _special(kind: str, tmp: Path, name: str = "input.json") -> Path:
    path = tmp / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "zero":
        return Path("/dev/zero")
    elif kind == "link-loop":
        path.symlink_to(tmp / "other")
        (tmp / "other").symlink_to(path)
    elif kind == "too-big":
        with path.open("wb") as handle:  # sparse: costs nothing on disk
            handle.truncate(inputs.HARDWARE_LIMIT + 1)
    elif kind == "missing":
        pass
    return path


SPECIAL = ["fifo", "directory", "zero", "link-loop", "too-big", "missing"]


@pytest.mark.parametrize("kind", SPECIAL)
def test_hardware_file_that_is_not_a_file(tmp_path: Path, kind: str) -> None:
    """6 cases: a FIFO or /dev/zero used to hang for ever."""
    path = _special(kind, tmp_path)
    with no_hang():
        result = runner.invoke(app, ["check", "llama3:8b", "--hardware", str(path)])
    one_line_error(result, f"--hardware {path}")


@pytest.mark.parametrize("kind", SPECIAL)
def test_catalog_file_that_is_not_a_file(tmp_path: Path, kind: str) -> None:
    """6 cases, through --catalog."""
    path = _special(kind, tmp_path, "extra.toml")
    with no_hang():
        result = runner.invoke(
            app, ["check", "llama3:8b", "--ram-bandwidth", "off", "--catalog", str(path)]
        )
    one_line_error(result, f"catalog file {path}")


@pytest.mark.parametrize("kind", ["fifo", "link-loop", "too-big"])
def test_catalog_d_entry_that_is_not_a_file(tmp_path: Path, kind: str) -> None:
    """3 cases, in the user's catalog.d (where nobody named the file on the command line)."""
    folder = tmp_path / "config" / "canirun" / "catalog.d"
    folder.mkdir(parents=True)
    _special(kind, folder, "x.toml")
    with no_hang():
        result = runner.invoke(app, ["list"])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("kind", SPECIAL[:-1])
def test_fleet_file_that_is_not_a_file(tmp_path: Path, kind: str) -> None:
    """5 cases: skipped with a reason, never read."""
    path = _special(kind, tmp_path, "r.json")
    with no_hang():
        result = read_report(path) if kind != "directory" else Skipped(str(path), "a directory")
    assert isinstance(result, Skipped)
    assert result.reason


@pytest.mark.parametrize("kind", ["fifo", "zero", "link-loop", "too-big"])
def test_cluster_folder_with_what_is_not_a_file(tmp_path: Path, kind: str) -> None:
    """4 cases, in a --cluster folder: never read; a report too big is refused in one line."""
    (tmp_path / "node1.json").write_text(HARDWARE.read_text())
    path = _special(kind, tmp_path, "node2.json")
    if kind == "zero":
        (tmp_path / "node2.json").symlink_to(path)
    args = ["check", "llama3:8b", "--ram-bandwidth", "off", "--cluster", str(tmp_path)]
    with no_hang():
        result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if kind == "too-big":
        one_line_error(result, "--cluster", "node2.json", "more than")
    else:
        assert result.exit_code == 0, result.output


def test_fleet_skips_a_fifo_in_a_folder(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "stuck.json")
    with no_hang():
        result = runner.invoke(app, ["fleet", str(tmp_path)])
    assert result.exit_code == 2
    assert "FIFO" in result.stderr


def _loop_tree(root: Path, depth: int = 3) -> int:
    """Folders `depth` deep, each with three links back up; one report per folder."""
    root.mkdir()
    here = root
    for level in range(depth):
        here = here / f"level{level}"
        here.mkdir()
        (here / f"r{level}.json").write_text("{}")
        (here / "up").symlink_to("..")
        (here / "self").symlink_to(".")
        (here / "top").symlink_to(root)
    return depth


@pytest.mark.parametrize(
    "pattern", ["{root}/**/*.json", "{root}/level0/**/r*.json", "{root}", "{root}/**"]
)
def test_symlink_loops_under_a_fleet_glob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    """4 patterns: every real folder is listed once, however many links lead back."""
    reports = _loop_tree(tmp_path / "tree")
    calls: list[str] = []
    real_scandir = os.scandir

    def counting(path: object) -> object:
        calls.append(str(path))
        return real_scandir(path)  # type: ignore[call-overload]

    monkeypatch.setattr(fleet.os, "scandir", counting)
    with no_hang():
        found = fleet.expand([pattern.format(root=tmp_path / "tree")])
    assert len(calls) <= reports + 1
    names = sorted({Path(os.path.realpath(p)).name for p in found})
    assert len(found) == len(names)  # each real file once
    assert set(names) <= {f"r{i}.json" for i in range(reports)}


def test_a_loop_of_file_links_in_a_fleet_folder(tmp_path: Path) -> None:
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    (tmp_path / "b.json").symlink_to(tmp_path / "a.json")
    with no_hang():
        result = runner.invoke(app, ["fleet", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.count("a loop of symbolic links") == 2
    assert result.stderr.endswith(
        "canirun: error: fleet: none of the 2 files is a readable report\n"
    )


@settings(max_examples=60, deadline=None)
@given(
    links=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.sampled_from(["dir", "file"])),
        max_size=8,
    )
)
def test_fuzz_trees_of_links(links: list[tuple[int, int, str]]) -> None:
    """60 random trees of 6 folders and up to 8 links (loops included): a linear walk."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = [root / "d0"]
        for i in range(1, 6):
            folders.append(folders[(i - 1) // 2] / f"d{i}")
        for i, folder in enumerate(folders):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"r{i}.json").write_text("{}")
        for n, (src, dst, kind) in enumerate(links):
            target = folders[dst] if kind == "dir" else folders[dst] / f"r{dst}.json"
            with contextlib.suppress(FileExistsError):
                (folders[src] / f"link{n}{'.json' if kind == 'file' else ''}").symlink_to(target)
        with no_hang(10):
            found = fleet.expand([str(root / "d0"), f"{root}/**/*.json"])
        real = {os.path.realpath(p) for p in found}
        assert len(real) == len(found)
        assert {Path(p).name for p in real} == {f"r{i}.json" for i in range(6)}


@pytest.mark.parametrize(
    "pattern", ["**/*.json", "a/**/*.json", "a/*/*.json", "**/x?.json", "a/**/b/*.json"]
)
def test_globs_match_what_glob_matches_without_loops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    """5 patterns: on a tree without links, the loop-safe ** finds what glob.glob finds."""
    import glob

    for rel in ["a/x1.json", "a/b/x2.json", "a/b/c/y.json", "z.json", "a/.hidden/x3.json"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    monkeypatch.chdir(tmp_path)
    expected = sorted(p for p in glob.glob(pattern, recursive=True) if p.endswith(".json"))
    assert sorted(str(p) for p in fleet._glob(pattern)) == expected


# -- sizes and ranges ------------------------------------------------------------------------


def test_a_catalog_entry_with_a_million_layers_is_refused_at_once(tmp_path: Path) -> None:
    """The issue's example: layers = 1000000 ran past 120 s."""
    path = tmp_path / "big.toml"
    arch = (
        "arch = { layers = 1000000, hidden = 4096, heads = 32, kv_heads = 8, intermediate = 14336,"
        ' vocab = 128256, max_context = 8192, source = "card" }\n'
    )
    path.write_text(USER_MODEL + arch)
    began = time.monotonic()
    result = runner.invoke(app, ["check", "tiny", "--catalog", str(path), "--ram-bandwidth", "off"])
    assert time.monotonic() - began < 10
    one_line_error(result, "arch.layers", "less than or equal to 1024")


BOUNDS = {
    "layers": 1024,
    "hidden": 2**20,
    "heads": 4096,
    "kv_heads": 4096,
    "head_dim": 4096,
    "intermediate": 2**20,
    "vocab": 2**22,
    "max_context": 2**27,
    "sliding_window": 2**27,
}


def _arch(**values: int) -> str:
    base = {
        "layers": 32,
        "hidden": 4096,
        "heads": 32,
        "kv_heads": 8,
        "intermediate": 14336,
        "vocab": 128256,
        "max_context": 8192,
    }
    base.update(values)
    if "sliding_window" in values or "local_layers" in values:
        base.setdefault("sliding_window", 4096)
    body = ", ".join(f"{k} = {v}" for k, v in base.items())
    return f'arch = {{ {body}, source = "card" }}\n'


@pytest.mark.parametrize("field", sorted(BOUNDS))
def test_catalog_arch_ranges(tmp_path: Path, field: str) -> None:
    """9 fields, each at its bound (rated in seconds) and one past it (refused)."""
    most = BOUNDS[field]
    extra = {"heads": most} if field == "kv_heads" else {}
    path = tmp_path / "edge.toml"
    path.write_text(USER_MODEL + _arch(**{field: most, **extra}))
    began = time.monotonic()
    result = runner.invoke(
        app, ["check", "tiny", "--catalog", str(path), "--ram-bandwidth", "off", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert time.monotonic() - began < 20
    path = tmp_path / "past.toml"
    path.write_text(USER_MODEL + _arch(**{field: most + 1, **extra}))
    one_line_error(runner.invoke(app, ["list", "--catalog", str(path)]), f"arch.{field}", f"{most}")


@fuzz(120)
@given(
    values=st.fixed_dictionaries(
        {},
        optional={
            name: st.integers(-5, 2 * most) | st.integers(-(10**400), 10**400)
            for name, most in BOUNDS.items()
        },
    ),
    ctx=st.integers(1, 2**27),
)
def test_fuzz_catalog_arch_values(
    values: dict[str, int], ctx: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """120 cases: any architecture numbers load and rate in seconds, or are refused."""
    path = tmp_path_factory.mktemp("cat") / "fuzz.toml"
    path.write_text(USER_MODEL + _arch(**values))
    began = time.monotonic()
    result = runner.invoke(
        app,
        ["check", "tiny", "--catalog", str(path), "--ram-bandwidth", "off", "--ctx", str(ctx)],
    )
    assert time.monotonic() - began < 20
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2:
        one_line_error(result, "fuzz.toml")


@pytest.mark.parametrize(
    ("hardware", "where"),
    [
        ({"cpu": {"logical_cores": 10**6}}, "cpu.logical_cores"),
        ({"memory": {"total_bytes": 2**61}}, "memory.total_bytes"),
        ({"memory": {"total_bytes": 10**400}}, "memory.total_bytes"),
        ({"disk": {"free_bytes": 2**62}}, "disk.free_bytes"),
        (
            {"gpus": [{"vendor": "nvidia", "name": "X", "memory_total_bytes": 2**61}]},
            "gpus.0.memory_total_bytes",
        ),
        ({"gpus": [{"vendor": "nvidia", "name": "X", "memory_total_bytes": 1}] * 300}, "gpus"),
        ({"memory": {"total_bytes": 1.5e308 * 10}}, "memory.total_bytes"),
    ],
)
def test_hardware_file_ranges(tmp_path: Path, hardware: dict[str, object], where: str) -> None:
    """7 cases: figures no machine has are refused with the field named."""
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(hardware))
    one_line_error(runner.invoke(app, ["check", "llama3:8b", "--hardware", str(path)]), where)


# -- nesting and huge integers -----------------------------------------------------------------


def _nested(depth: int, suffix: str) -> str:
    if suffix == ".toml":
        return "a = " + "[" * depth + "]" * depth + "\n"
    return '{"cpu": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [65, 500, 5000, 100_000])
@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_deeply_nested_hardware_files(tmp_path: Path, depth: int, suffix: str) -> None:
    """8 cases: RecursionError used to escape as a traceback."""
    path = tmp_path / f"hw{suffix}"
    path.write_text(_nested(depth, suffix))
    one_line_error(runner.invoke(app, ["check", "llama3:8b", "--hardware", str(path)]), str(path))


@pytest.mark.parametrize("depth", [65, 500, 5000])
def test_deeply_nested_catalogs(tmp_path: Path, depth: int) -> None:
    """3 cases: 500 levels were enough for a traceback."""
    path = tmp_path / "deep.toml"
    path.write_text(
        USER_MODEL.replace(
            "[[model.variants]]", f"notes2 = {'[' * depth}{']' * depth}\n[[model.variants]]"
        )
    )
    one_line_error(runner.invoke(app, ["list", "--catalog", str(path)]), str(path))


@pytest.mark.parametrize("depth", [65, 5000, 100_000])
def test_deeply_nested_fleet_reports(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"summary": ' + "[" * depth + "]" * depth + "}")
    result = read_report(path)
    assert isinstance(result, Skipped)
    assert "nested" in result.reason


@pytest.mark.parametrize("digits", [400, 4300, 4301, 5000])
def test_huge_integers_in_every_file(tmp_path: Path, digits: int) -> None:
    """4 sizes x 4 places: hardware JSON and TOML, a catalog, a fleet report."""
    number = "9" * digits
    hw_json = tmp_path / "hw.json"
    hw_json.write_text('{"cpu": {"logical_cores": ' + number + "}}")
    hw_toml = tmp_path / "hw.toml"
    hw_toml.write_text(f"[memory]\ntotal_bytes = {number}\n")
    for path in (hw_json, hw_toml):
        one_line_error(runner.invoke(app, ["check", "llama", "--hardware", str(path)]), str(path))
    catalog = tmp_path / "cat.toml"
    catalog.write_text(USER_MODEL.replace("1_000_000_000", number))
    one_line_error(runner.invoke(app, ["list", "--catalog", str(catalog)]), str(catalog))
    report = tmp_path / "r.json"
    report.write_text('{"schema_version": "1.0", "n": ' + number + "}")
    assert isinstance(read_report(report), Skipped)


NUMERIC_FLAGS = ["--ctx", "--sequences", "--batch", "--resolution", "--seq-len", "--min-tps"]
SIZE_FLAGS = ["--vram", "--ram", "--ram-bandwidth"]


@pytest.mark.parametrize("digits", [20, 400, 4301, 5000])
@pytest.mark.parametrize("flag", [*NUMERIC_FLAGS, *SIZE_FLAGS, "--gpu"])
def test_huge_numbers_in_flags(flag: str, digits: int) -> None:
    """40 cases: a result or one line, never OverflowError or ValueError."""
    number = "8" * digits
    value = {"--gpu": f"{number}x H100", "--ram-bandwidth": f"{number}GB/s"}.get(
        flag, f"{number}GB" if flag in SIZE_FLAGS else number
    )
    args = ["check", "llama3:8b", "sdxl", "--hardware", str(HARDWARE), flag, value]
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2:
        one_line_error(result)
        assert len(result.stderr) < 1200  # a 5,000-digit value is cut in the middle


@fuzz(150)
@given(
    flag=st.sampled_from(NUMERIC_FLAGS),
    number=st.integers(-(10**30), 10**30) | st.integers(-(10**500), 10**500) | st.just(2**27),
)
def test_fuzz_numeric_flags(flag: str, number: int) -> None:
    """150 cases: any integer in any numeric flag: a result (0/1) or one line (2)."""
    args = ["check", "llama3:8b", "sdxl", "alphafold", "--hardware", str(HARDWARE)]
    result = runner.invoke(app, [*args, flag, str(number)])
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2:
        one_line_error(result)


# -- compute capabilities ------------------------------------------------------------------------

CC_STRINGS = ["abc", "².²", "8", "8.", ".9", "", "8.9.1", "٨.٩", "9" * 5000 + ".0", "8.9 ", "-1.0"]


@pytest.mark.parametrize("cc", CC_STRINGS)
def test_bad_compute_capability_in_a_hardware_file(tmp_path: Path, cc: str) -> None:
    """11 cases: int("²") used to raise in the framework check."""
    gpu = {
        "vendor": "nvidia",
        "name": "X",
        "memory_total_bytes": 24 * GIB,
        "compute_capability": cc,
    }
    path = tmp_path / "hw.json"
    path.write_text(json.dumps({"memory": {"total_bytes": 64 * GIB}, "gpus": [gpu]}))
    one_line_error(
        runner.invoke(app, ["check", "llama3:8b", "--hardware", str(path)]),
        "gpus.0.compute_capability",
    )


@pytest.mark.parametrize("cc", CC_STRINGS)
def test_bad_compute_capability_in_a_catalog(tmp_path: Path, cc: str) -> None:
    """11 cases, in a [[gpu]] entry."""
    path = tmp_path / "gpu.toml"
    path.write_text(
        f'[[gpu]]\nid = "x1"\nname = "X1"\nvendor = "nvidia"\nmemory = "24 GiB"\n'
        f'bandwidth = "1 TB/s"\ncompute_capability = {json.dumps(cc)}\n'
        'source = "https://example.org/x1"\n'
    )
    one_line_error(runner.invoke(app, ["gpus", "--catalog", str(path)]), "compute_capability")


@fuzz(200)
@given(cc=st.text(max_size=8))
def test_fuzz_compute_capability(cc: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """200 cases: any string: rated (when it reads as 'major.minor') or refused in one line."""
    gpu = {
        "vendor": "nvidia",
        "name": "X",
        "memory_total_bytes": 24 * GIB,
        "compute_capability": cc,
    }
    path = tmp_path_factory.mktemp("cc") / "hw.json"
    path.write_text(json.dumps({"memory": {"total_bytes": 64 * GIB}, "gpus": [gpu]}))
    try:
        load_hardware_file(path)
    except InputError as exc:
        assert "\n" not in str(exc)  # noqa: PT017
        return
    result = runner.invoke(app, ["check", "llama3:8b", "--hardware", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "value", ["²", "٣", "9" * 5000, "-1", "abc", "GPU-", "MIG-", "0,²", "", ",,,", "0x1"]
)
def test_odd_cuda_visible_devices(value: str) -> None:
    """11 values: int("²") used to escape from the device filter."""
    nvml = FakeNvml([FakeGpu(), FakeGpu(name="NVIDIA L4", uuid="GPU-bbbb")])
    gpus, _ = probe_gpus(nvml, {"CUDA_VISIBLE_DEVICES": value})
    assert len(gpus) <= 2


@settings(max_examples=150, deadline=None)
@given(value=st.text(max_size=12))
def test_fuzz_cuda_visible_devices(value: str) -> None:
    """150 cases: any CUDA_VISIBLE_DEVICES filters without raising."""
    nvml = FakeNvml([FakeGpu(), FakeGpu(name="NVIDIA L4", uuid="GPU-bbbb")])
    gpus, _ = probe_gpus(nvml, {"CUDA_VISIBLE_DEVICES": value})
    assert len(gpus) <= 2


# -- NVML answers about the whole driver ---------------------------------------------------------

ERRORS = [f.NVML_ERROR_GPU_IS_LOST, f.NVML_ERROR_UNKNOWN, f.NVML_ERROR_NOT_SUPPORTED,
          f.NVML_ERROR_NO_PERMISSION, f.NVML_ERROR_TIMEOUT, f.NVML_ERROR_UNINITIALIZED]  # fmt: skip
SYSTEM_CALLS = ["nvmlDeviceGetCount", "nvmlSystemGetDriverVersion",
                "nvmlSystemGetCudaDriverVersion_v2"]  # fmt: skip


@pytest.mark.parametrize("code", ERRORS)
@pytest.mark.parametrize("function", SYSTEM_CALLS)
def test_nvml_system_calls_failing(function: str, code: int, fake_nvml) -> None:  # type: ignore[no-untyped-def]
    """18 faults: GPU_IS_LOST at the device count or driver version used to be a traceback."""
    if function == "nvmlDeviceGetCount":
        nvml = FakeNvml([FakeGpu()], count_error=code)
    else:
        nvml = FakeNvml([FakeGpu()], system_errors={function: code})
    fake_nvml(nvml)
    result = runner.invoke(app, ["hardware", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert any(i["source"] == "nvml" for i in data["probe_issues"])
    assert nvml.shutdown_calls == 1
    if function != "nvmlDeviceGetCount":
        assert [g["name"] for g in data["hardware"]["gpus"]] == [FakeGpu().name]


def test_a_device_count_no_machine_has(fake_nvml) -> None:  # type: ignore[no-untyped-def]
    class Corrupt(FakeNvml):
        def nvmlDeviceGetCount(self) -> int:
            return 2**31

        def nvmlDeviceGetHandleByIndex(self, index: int) -> object:
            raise f.NVMLError(f.NVML_ERROR_GPU_IS_LOST)

    with no_hang():
        gpus, issues = probe_gpus(Corrupt(), {})
    assert gpus == ()
    assert len(issues) <= 1024


# -- paths that raise, homes that are not there ------------------------------------------------

LONG_NAME = "n" * 300
LONG_PATH = "/".join(["p" * 250] * 20)


@pytest.mark.parametrize("name", [LONG_NAME, LONG_PATH])
@pytest.mark.parametrize(
    "args",
    [
        ["check", "llama3:8b", "--ram-bandwidth", "off", "--models-dir", "{}"],
        ["check", "llama3:8b", "--hardware", "{}"],
        ["list", "--catalog", "{}"],
        ["fleet", "{}"],
        ["fleet", "{}/*.json"],
        ["fleet", "{}/**/*.json"],
        ["hardware", "--output", "{}"],
        ["check", "llama3:8b", "--ram-bandwidth", "off", "--cluster", "{}"],
    ],
)
def test_names_too_long(tmp_path: Path, args: list[str], name: str) -> None:
    """16 cases: ENAMETOOLONG from a path check used to escape from --models-dir."""
    filled = [a.replace("{}", str(tmp_path / name)) for a in args]
    result = runner.invoke(app, filled)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        one_line_error(result)


@pytest.mark.parametrize(
    "variable", ["HF_HUB_CACHE", "HF_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"]
)
@pytest.mark.parametrize("value", [LONG_PATH, "/dev/null/x", "relative/dir", "\t"])
def test_odd_environment_paths(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """16 cases: directories from the environment that cannot exist."""
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, ["check", "llama3:8b", "--ram-bandwidth", "off", "--json"])
    assert result.exit_code == 0, result.output


def test_no_home_and_no_passwd_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """platformdirs raised RuntimeError for every catalog command in such a container."""
    import pwd

    def no_entry(uid: int) -> None:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    for variable in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    load_catalog.cache_clear()
    for args in (["scan", "--ram-bandwidth", "off"], ["list"], ["gpus"], ["frameworks"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output, result.exception)


def _as_nobody(argsets: list[list[str]]) -> list[tuple[int, str]]:
    """Run the CLI in a forked child as uid 54321 (no passwd entry, no HOME)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
                os.environ.pop(name, None)
            os.setgid(54321)
            os.setuid(54321)
            out = []
            for args in argsets:
                load_catalog.cache_clear()
                result = runner.invoke(app, args)
                ok = result.exception is None or isinstance(result.exception, SystemExit)
                detail = result.stderr[-300:] if ok else repr(result.exception)
                out.append((result.exit_code if ok else -1, detail))
            os.write(write_end, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return [tuple(x) for x in json.loads(b"".join(chunks))]  # type: ignore[misc]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_unreadable_parents_as_a_user_without_a_passwd_entry() -> None:
    """A real uid without an entry, paths under a folder it may not enter (EACCES)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        _unreadable_parents(Path(tmp))


def _unreadable_parents(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    (locked / "inner").mkdir(parents=True)
    (locked / "inner" / "r.json").write_text("{}")
    (locked / "hw.json").write_text(HARDWARE.read_text())
    locked.chmod(0o700)
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:  # the child must reach tmp_path itself
        if parent.stat().st_mode & 0o001 == 0:
            pytest.skip(f"{parent} is not searchable by other users")
    cases = [
        ["check", "llama3:8b", "--ram-bandwidth", "off", "--models-dir", f"{locked}/inner/m"],
        ["check", "llama3:8b", "--hardware", f"{locked}/hw.json"],
        ["list", "--catalog", f"{locked}/x.toml"],
        ["fleet", f"{locked}/inner"],
        ["fleet", f"{locked}/**/*.json"],
        ["hardware", "--output", f"{locked}/out/r.json"],
        ["scan", "--ram-bandwidth", "off"],
        ["list"],
    ]
    for args in cases:  # as root first: once it is nobody, the child cannot import modules
        load_catalog.cache_clear()
        runner.invoke(app, [a.replace("/out/", "/root-out/") for a in args])
    results = _as_nobody(cases)
    assert len(results) == len(cases)
    for args, (code, stderr) in zip(cases, results, strict=True):
        assert code in (0, 2), (args, code, stderr)
        if code == 2:
            assert stderr.startswith("canirun: error: "), (args, stderr)
            assert stderr.count("\n") == 1, (args, stderr)
    assert [code for code, _ in results[-2:]] == [0, 0]


# -- fuzzing whole files ---------------------------------------------------------------------

extreme_numbers = (
    st.integers(-(10**30), 10**30)
    | st.integers(2**62, 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.just(10**400)
)
hardware_numbers = st.fixed_dictionaries(
    {},
    optional={
        "cpu": st.dictionaries(
            st.sampled_from(["logical_cores", "physical_cores", "usable_cores"]), extreme_numbers
        ),
        "memory": st.dictionaries(
            st.sampled_from(
                [
                    "total_bytes",
                    "available_bytes",
                    "limit_bytes",
                    "limit_used_bytes",
                    "bandwidth_bytes_per_s",
                ]
            ),
            extreme_numbers,
        ),
        "gpus": st.lists(
            st.fixed_dictionaries(
                {"vendor": st.just("nvidia"), "name": st.sampled_from(["NVIDIA H100", "X"])},
                optional={
                    "memory_total_bytes": extreme_numbers,
                    "memory_free_bytes": extreme_numbers,
                    "compute_capability": st.sampled_from(["8.9", "abc", "².²", "10.0"]),
                },
            ),
            max_size=3,
        ),
    },
)


@fuzz(200)
@given(data=hardware_numbers)
def test_fuzz_hardware_numbers(
    data: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """200 cases: extreme numbers anywhere: a result, or one line naming the file."""
    path = tmp_path_factory.mktemp("hw") / "hw.json"
    path.write_text(json.dumps(data))
    result = runner.invoke(app, ["check", "llama3:8b", "--hardware", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2:
        one_line_error(result, str(path))


def _check_report() -> dict[str, object]:
    args = ["check", "llama3:8b", "--json", "--ram-bandwidth", "off", "--hardware", str(HARDWARE)]
    data: dict[str, object] = json.loads(runner.invoke(app, args).stdout)
    return data


REPORT = _check_report()


def _paths(value: object, where: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [where]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:3]):
            out += _paths(item, (*where, i))
    return out


REPORT_PATHS = _paths(REPORT)[1:]


@fuzz(200)
@given(
    where=st.sampled_from(REPORT_PATHS),
    value=extreme_numbers | st.text(max_size=5) | st.none() | st.just([[[[]]]]) | st.just({}),
)
def test_fuzz_fleet_report_values(
    where: tuple[object, ...], value: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """200 cases: one value of a real report replaced by anything: read or skipped."""
    data = json.loads(json.dumps(REPORT))
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path_factory.mktemp("fleet") / "r.json"
    path.write_text(json.dumps(data))
    result = read_report(path)
    assert isinstance(result, (MachineReport, Skipped))
