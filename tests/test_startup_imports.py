"""What commands import: `canirun hardware` and `--version` no pydantic, no catalog schema;
`scan`, `check` and `frameworks` nothing they do not use, and their plain argument lists
not typer (issue 15, start-up time)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")
WORKSTATION = Path(__file__).resolve().parent / "data" / "workstation.json"

CHILD = """
import json, sys
from canirun import entry
from canirun.entry import main
entry.end_now = lambda code: None  # the child reports what it imported after the run
sys.argv = ["canirun", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
HEAVY = ("pydantic", "canirun.catalog.schema", "canirun.report", "typer", "hashlib",
         "importlib.metadata", "importlib.resources", "shutil", "msgspec", "inspect")
heavy = [m for m in HEAVY if m in sys.modules]
print(json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--version"], ["hardware", "--json"]])
def test_fast_commands_do_not_import_pydantic(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
    assert done.stdout.strip()


SHORT = """
import io, json, sys, contextlib
import canirun.hardware
from canirun import cli, entry
from pathlib import Path
fixed = canirun.hardware.load_host(Path(FIXTURE), None)
canirun.hardware.load_host = lambda *args, **kwargs: fixed  # the same machine both ways
out = {}
for name, run in (("short", entry.main), ("typer", cli.main)):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run(sys.argv[1:])
    out[name] = [code, buf.getvalue()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("args", [["--version"], ["hardware"], ["hardware", "--json"]])
def test_the_short_way_answers_as_typer_does(args: list[str], tmp_path: Path) -> None:
    """entry.main skips typer for exactly these argument lists: same text, same exit code
    (both ways see one fixed machine)."""
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_CONFIG_HOME": str(tmp_path)}
    child = SHORT.replace("FIXTURE", repr(str(WORKSTATION)))
    done = subprocess.run(
        [sys.executable, "-c", child, *args], capture_output=True, text=True, env=env, check=True
    )
    out = json.loads(done.stdout)
    assert out["short"][0] == out["typer"][0] == 0
    short, full = out["short"][1], out["typer"][1]
    if args == ["hardware", "--json"]:
        short, full = json.loads(short), json.loads(full)
        for report in (short, full):
            report.pop("created_at", None)  # written a moment apart
    assert short == full
    assert ("canirun " if args == ["--version"] else "RTX 4090") in out["short"][1]


def test_other_argument_lists_go_to_typer(capsys: pytest.CaptureFixture[str]) -> None:
    from canirun import entry

    assert ("hardware", "--output", "x") not in entry.SHORT_WAYS
    assert entry.main(["hardware", "--nope"]) == 2
    assert "--nope" in capsys.readouterr().err


# The short way's rating lists (entry.short_way): exactly these shapes, nothing near them.
SHORT_RATING = [
    ["scan"],
    ["scan", "--json"],
    ["scan", "--ram-bandwidth", "off"],
    ["scan", "--ram-bandwidth=off", "--json"],
    ["scan", "--json", "--ram-bandwidth", "80GB/s"],
    ["check", "llama"],
    ["check", "llama 3.1 8b", "--json"],
    ["check", "llama", "--json", "--ram-bandwidth", "off"],
    ["check", "llama", "--ram-bandwidth=measure"],
    ["frameworks"],
    ["frameworks", "--json"],
]
TO_TYPER = [
    [],
    ["scan", "--help"],
    ["scan", "-h"],
    ["scan", "--json", "--json"],
    ["scan", "--json=yes"],
    ["scan", "--ram-bandwidth"],
    ["scan", "--ram-bandwidth="],
    ["scan", "--ram-bandwidth", "--json"],
    ["scan", "--ram-bandwidth", "-1"],
    ["scan", "--ram-bandwidth", "off", "--ram-bandwidth", "off"],
    ["scan", "--ram-bandwidth=off", "--ram-bandwidth=off"],
    ["scan", "--format", "json"],
    ["scan", "-o", "report.json"],
    ["scan", "--require", "gpu"],
    ["scan", "extra"],
    ["check"],
    ["check", "--json"],
    ["check", "--json", "llama"],
    ["check", "", "--json"],
    ["check", "-"],
    ["check", "--", "llama"],
    ["check", "llama", "mistral"],
    ["check", "llama", "--help"],
    ["check", "llama", "--ctx", "8192"],
    ["check", "llama", "--json", "--min-tps", "5"],
    ["frameworks", "--help"],
    ["frameworks", "--json", "--json"],
    ["frameworks", "--ram-bandwidth", "off"],
    ["frameworks", "--gpu", "RTX 4090"],
    ["--version", "scan"],
    ["scna"],
]


def test_the_short_way_takes_exactly_its_argument_lists() -> None:
    from canirun import entry

    assert [a for a in SHORT_RATING if entry.short_way(tuple(a)) is None] == []
    assert [a for a in TO_TYPER if entry.short_way(tuple(a)) is not None] == []


@pytest.fixture
def one_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways see the same machine, and the short way may not fall back on typer."""
    import canirun.hardware
    from canirun import cli

    fixed = canirun.hardware.load_host(WORKSTATION, None)
    monkeypatch.setattr(canirun.hardware, "load_host", lambda *args, **kwargs: fixed)
    monkeypatch.setattr(cli, "app_for", lambda args: pytest.fail(f"went to typer: {args}"))


def _both_ways(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[tuple[Any, ...]]:
    """(exit code, stdout, stderr) of entry.main, then of typer (cli.main), in this process."""
    from canirun import cli, entry

    got = []
    code = entry.main(list(args))
    got.append((code, *capsys.readouterr()))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cli, "app_for", lambda _args: cli.app)  # the whole app, as typer sees it
        code = cli.main(list(args))
    got.append((code, *capsys.readouterr()))
    return got


def _without_timestamp(out: str) -> Any:
    if not out.startswith("{"):
        return out
    report = json.loads(out)
    report.pop("created_at", None)  # written a moment apart
    return report


BOTH_WAYS = [
    *[(a, 0) for a in SHORT_RATING if "measure" not in "".join(a)],
    (["check", "zzzz-no-such-model", "--json"], 2),
    (["scan", "--ram-bandwidth", "fast"], 2),
    (["check", "llama", "--ram-bandwidth=80"], 2),
]


@pytest.mark.parametrize(("args", "code"), BOTH_WAYS, ids=[" ".join(a) for a, _ in BOTH_WAYS])
@pytest.mark.usefixtures("one_machine")
def test_the_short_rating_ways_answer_as_typer_does(
    args: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """scan, check and frameworks without typer: the same stdout, stderr and exit code."""
    (short_code, short_out, short_err), (full_code, full_out, full_err) = _both_ways(args, capsys)
    assert short_code == full_code == code
    assert short_err == full_err
    assert _without_timestamp(short_out) == _without_timestamp(full_out)
    assert bool(short_out) == (code == 0)
    assert ("canirun: error: " in short_err) == (code == 2)


@pytest.mark.parametrize(("error", "code"), [(errno.EPIPE, 141), (errno.ENOSPC, 2)])
@pytest.mark.parametrize(
    "args", [["frameworks"], ["check", "llama", "--json"], ["scan", "--ram-bandwidth", "off"]]
)
@pytest.mark.usefixtures("one_machine")
def test_a_stdout_that_cannot_be_written_ends_the_same_both_ways(
    args: list[str],
    error: int,
    code: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_exit_codes import _Broken

    monkeypatch.setattr(sys, "stdout", _Broken(error))
    short, full = _both_ways(args, capsys)
    assert short == full
    assert short[0] == code
    assert (short[2] == "") == (code == 141)


CLOSED_READER_AT = """
import os, sys
read_end, write_end = os.pipe()
os.close(read_end)  # the reader is gone before canirun writes a byte (`| head` that exited)
os.dup2(write_end, 1)
from canirun.MODULE import main
CALL
"""
WAYS = {
    "entry": ("entry", "sys.exit(main(sys.argv[1:]))"),
    "cli": ("cli", "sys.exit(main(sys.argv[1:]))"),
    # As the console script calls it: the process's own arguments, ended by entry.end_now.
    "console script": ("entry", 'sys.argv = ["canirun", *sys.argv[1:]]\nsys.exit(main())'),
}


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("args", [["frameworks"], ["check", "llama", "--json"]])
def test_a_closed_pipe_is_141_quietly_both_ways(args: list[str], way: str, tmp_path: Path) -> None:
    """A real closed pipe, the short way (entry, also as the console script) and typer's."""
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    module, call = WAYS[way]
    child = CLOSED_READER_AT.replace("MODULE", module).replace("CALL", call)
    done = subprocess.run(
        [sys.executable, "-c", child, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stderr) == (141, "")


def test_builtin_sha256_is_sha256() -> None:
    import hashlib

    from canirun.sha import sha256

    for data in (b"", b"abc", bytes(range(256)) * 999):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()


RATING = """
import io, sys, contextlib
from canirun import entry
from canirun.entry import main
entry.end_now = lambda code: None  # the child reports what it imported after the run
sys.argv = ["canirun", *sys.argv[1:]]
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main()
modules = sorted(sys.modules)  # before this script's own json import
import json
from canirun.catalog import rules
# The catalog's records are validated only through constraints (a pydantic TypeAdapter).
built = [m for m in ("canirun.catalog.constraints",) if m in sys.modules]
report = sys.modules.get("canirun.report")
names = ("Assumptions", "ScanReport", "CheckReport") if report else ()
reports = [getattr(report, n) for n in names]
reports_built = [c.__name__ for c in reports if c.__pydantic_complete__]
loader = sys.modules.get("pydantic.plugin._loader")
print(json.dumps({"code": code, "out": len(out.getvalue()), "modules": modules,
                  "rules_pickle": rules.validated_tables() is not None, "built": built,
                  "reports_built": reports_built,
                  "plugins_looked_up": loader is not None and loader._plugins is not None}))
"""
# What each of these commands must not import (issue 15, start-up time): the other
# formats' renderers, name resolution where nothing is named, the multi-node planner
# without a cluster, the local-file readers for a name. Each was imported once.
NOT_FOR_JSON = (
    "canirun.output.ci_formats",
    "xml.etree.ElementTree",
    "canirun.output.safe",
    "canirun.report_more",  # the local, listing and fleet report models
    "canirun.catalog.constraints",  # the shipped catalog and rules arrive validated
    # The JSON is written from the data (report_json.Pending): neither the report models
    # nor pydantic, nor its plugin loader (importlib.metadata, email), are imported.
    "pydantic",
    "pydantic_core",
    "canirun.report",
    "pydantic.plugin._loader",
    "importlib.metadata",
    "email.message",
    # msgspec loads without typing_extensions (entry.load_msgspec_plainly), and the
    # user folders are the XDG ones without platformdirs (canirun.userdirs).
    "typing_extensions",
    "platformdirs",
    "platform",  # uuid (msgspec's) asks only platform.system() (entry._platform_stand_in)
    "shutil",  # PATH is searched by canirun.hardware.which
    # dataclasses loads without it (entry.load_dataclasses_plainly), the records have
    # docstrings and the schema's descriptions are cleaned only when a schema is built.
    "inspect",
    "ast",
    "tokenize",
    "pickle",  # the shipped pickles are read through the C module (loader._pickle_module)
    "json",  # the reports are written by msgspec (report_json), which reads its layout too
    # pathlib loads without it (entry.load_pathlib_plainly): only Path.as_uri uses it.
    "urllib.parse",
    "ipaddress",
    # msgspec loads without its introspection and JSON Schema modules (entry._msgspec_stand_ins)
    "msgspec.inspect",
    "msgspec._json_schema",
    "textwrap",
)
# Plain argument lists take the short way (canirun.entry): no command-line framework.
NO_TYPER = ("typer", "click", "canirun.cli")
# Neither way of `frameworks` needs these (the stand-ins of canirun.entry, the C pickle).
NOT_FOR_A_LISTING = (
    "inspect",
    "pickle",
    "json",
    "platform",
    "urllib.parse",
    "msgspec.inspect",
    "textwrap",
)
NOT_IMPORTED = {
    ("scan", "--json", "--ram-bandwidth", "off"): (
        *NO_TYPER,
        *NOT_FOR_JSON,
        "canirun.output.scan_text",
        "canirun.output.hardware_text",
        "canirun.resolve",
        "difflib",  # suggestions for a bad name only
        "canirun.names",
        "canirun.local_eval",
        "canirun.estimate.local",
        "canirun.catalog.local_model",
        "canirun.estimate.multinode",
    ),
    ("check", "llama", "--json", "--ram-bandwidth", "off"): (
        *NO_TYPER,
        *NOT_FOR_JSON,
        "canirun.output.check_text",
        "canirun.output.scan_text",
        "canirun.estimate.local",
        "canirun.catalog.local_model",
        "canirun.catalog.local_find",
        "canirun.estimate.multinode",
    ),
    # Validates nothing and writes no report model: pydantic is not even imported.
    ("frameworks",): (
        *NO_TYPER,
        "pydantic",
        "canirun.catalog.constraints",
        "canirun.report",
        "canirun.resolve",
        "canirun.estimate.multinode",
        "canirun.output.ci_formats",
        "pydantic.plugin._loader",
        "importlib.metadata",
        "email.message",
        *NOT_FOR_A_LISTING,
    ),
    # The listing's JSON is written from its data (commands.framework_listing_json).
    ("frameworks", "--json"): (
        *NO_TYPER,
        "pydantic",
        "pydantic_core",
        "canirun.catalog.constraints",
        "canirun.report",
        "canirun.report_more",
        "canirun.resolve",
        "canirun.estimate.multinode",
        "canirun.output.catalog_text",
        "importlib.metadata",
        *NOT_FOR_A_LISTING,
    ),
}


@pytest.mark.parametrize("args", list(NOT_IMPORTED), ids=lambda a: a[0])
def test_rating_commands_import_only_what_they_use(args: tuple[str, ...], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", RATING, *args], capture_output=True, text=True, env=env, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0
    assert seen["out"] > 0
    heavy = [m for m in NOT_IMPORTED[args] if m in seen["modules"]]
    assert heavy == []
    assert not seen["plugins_looked_up"]  # pydantic's entry-point scan (entry.PLUGINS_OFF)
    assert seen["reports_built"] == []  # scan and check --json: report_json.Pending
    if seen["rules_pickle"]:  # current for this pydantic and Python (test_capabilities)
        # The capability and runtime-defaults tables come validated from rules.pickle.
        assert seen["built"] == []
        assert "tomllib" not in seen["modules"]


@pytest.mark.parametrize(
    "args",
    [
        ("scan", "--ram-bandwidth=off"),
        ("check", "llama", "--ram-bandwidth", "off"),
        ("frameworks", "--json"),
    ],
    ids=" ".join,
)
def test_the_other_short_lists_do_not_import_typer(args: tuple[str, ...], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", RATING, *args], capture_output=True, text=True, env=env, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (seen["code"], seen["out"] > 0) == (0, True)
    assert [m for m in NO_TYPER if m in seen["modules"]] == []


def test_the_app_built_for_one_command_answers_as_the_whole_app(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """cli.main builds only the command named first (typer's set-up of all nine costs ~7 ms
    a start): each command's help and usage errors, and the exit codes, are the same."""
    from canirun import cli

    names = [cli._command_name(i) for i in cli.app.registered_commands]
    assert len(names) == len(set(names)) > 5
    for name in names:
        assert [cli._command_name(i) for i in cli.app_for([name]).registered_commands] == [name]
        for args in ([name, "--help"], [name, "--no-such-flag"], [name, "-h", "x"]):
            got = []
            for whole in (False, True):
                with monkeypatch.context() as m:
                    if whole:
                        m.setattr(cli, "app_for", lambda _args: cli.app)
                    code = cli.main(list(args))
                got.append((code, capsys.readouterr()))
            assert got[0] == got[1], args
            assert got[0][1].out or got[0][1].err
    for args in ([], ["--help"], ["--version", "scan"], ["scna"], ["hardware-x"]):
        assert cli.app_for(args) is cli.app


def test_the_command_line_turns_pydantic_plugins_off_for_its_run_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No scan of every installed distribution's entry points for pydantic plugins during
    a command; before and after it, and wherever the user set the switch, it is theirs."""
    from canirun import entry

    seen: list[str | None] = []
    monkeypatch.setattr(entry, "_run", lambda _args: seen.append(os.environ.get(entry.PLUGINS_OFF)))
    monkeypatch.delenv(entry.PLUGINS_OFF, raising=False)
    entry.main(["scan"])
    assert seen == ["__all__"]
    assert entry.PLUGINS_OFF not in os.environ  # the Python API afterwards: pydantic's default
    monkeypatch.setenv(entry.PLUGINS_OFF, "some-plugin")
    entry.main(["scan"])
    assert seen[-1] == os.environ[entry.PLUGINS_OFF] == "some-plugin"


PLAIN_MSGSPEC = """
import sys
from canirun.entry import load_msgspec_plainly
load_msgspec_plainly()
assert "msgspec" in sys.modules and "typing_extensions" not in sys.modules
import typing_extensions  # still importable afterwards (pydantic's, a user catalog's)
import msgspec
from typing import NotRequired, TypedDict
class Row(TypedDict):
    a: int
    b: NotRequired[str]
print(msgspec.json.decode(b'{"a": 1}', type=Row), typing_extensions.__name__)
"""


def _stand_in_script(script: str) -> list[str]:
    """The lines a stand-in test's script prints, run in a fresh interpreter (the
    stand-ins act only on modules not yet imported)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.splitlines()


def test_msgspec_is_loaded_without_typing_extensions_and_it_stays_importable() -> None:
    assert " ".join(_stand_in_script(PLAIN_MSGSPEC)).split() == ["{'a':", "1}", "typing_extensions"]


PLAIN_UUID = """
import os, sys
from canirun.entry import load_msgspec_plainly
load_msgspec_plainly()
assert "uuid" in sys.modules and "platform" not in sys.modules
import uuid
print(uuid._LINUX == (os.uname().sysname == "Linux"), uuid.uuid5(uuid.NAMESPACE_DNS, "a").hex)
import platform  # the real module, for everyone else
print(platform.system() == os.uname().sysname, hasattr(platform, "libc_ver"))
print(uuid.platform.machine() == platform.machine())  # uuid's stand-in reads the real one
"""


@pytest.mark.skipif(not hasattr(os, "uname"), reason="the stand-in is for POSIX only")
def test_msgspec_is_loaded_without_platform_and_uuid_still_works() -> None:
    assert " ".join(_stand_in_script(PLAIN_UUID)).split() == [
        "True",
        "4f3f289869e35a0d820ac4e87987dbce",  # uuid5(NAMESPACE_DNS, "a")
        "True",
        "True",
        "True",
    ]


PLAIN_DATACLASSES = """
import sys
from canirun.entry import load_dataclasses_plainly
load_dataclasses_plainly()
assert "dataclasses" in sys.modules and "inspect" not in sys.modules
import dataclasses
@dataclasses.dataclass
class Point:
    x: int
    y: int = 0
# A class without a docstring still gets dataclasses' own: the stand-in reads the real inspect.
print(Point.__doc__)
import inspect  # the real module, for everyone else
real = sys.modules["inspect"]
print(inspect.__name__, inspect is real, inspect.__spec__ is not None)
"""


def test_dataclasses_is_loaded_without_inspect_and_both_still_work() -> None:
    assert _stand_in_script(PLAIN_DATACLASSES) == ["Point(x: int, y: int = 0)", "inspect True True"]


PLAIN_PATHLIB = """
import sys
from canirun.entry import load_pathlib_plainly
load_pathlib_plainly()
assert "pathlib" in sys.modules and "urllib.parse" not in sys.modules
from pathlib import Path
print(Path("/a b/c").as_uri())  # the stand-in's quote_from_bytes reads the real module
import urllib.parse
print(urllib.parse is sys.modules["urllib.parse"], urllib.parse.__spec__ is not None)
print(urllib.parse.quote("a b"), urllib.parse.urlsplit("https://h/p").netloc)
"""


def test_pathlib_is_loaded_without_urllib_parse_and_both_still_work() -> None:
    assert _stand_in_script(PLAIN_PATHLIB) == ["file:///a%20b/c", "True True", "a%20b h"]


UNUSED_MSGSPEC = """
import sys
from canirun.entry import load_msgspec_plainly
load_msgspec_plainly()
unused = ("msgspec.inspect", "msgspec._json_schema", "textwrap")
print([m for m in unused if m in sys.modules])
import msgspec
print(msgspec.json.encode({"a": [1, 2.5]}).decode(), msgspec.json.schema(int))
print(msgspec.inspect.type_info(int))  # the stand-in reads the real module
import msgspec.inspect as mi
print(mi is sys.modules["msgspec.inspect"], mi.__spec__ is not None,
      [m for m in unused if m not in sys.modules])
"""


def test_msgspec_is_loaded_without_its_unused_modules_and_they_still_work() -> None:
    assert _stand_in_script(UNUSED_MSGSPEC) == [
        "[]",
        "{\"a\":[1,2.5]} {'type': 'integer'}",
        "IntType(gt=None, ge=None, lt=None, le=None, multiple_of=None)",
        "True True []",
    ]
