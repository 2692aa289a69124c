"""The console script. The commonest plain argument lists are answered without typer.

``canirun --version``, ``canirun hardware [--json]``, ``canirun frameworks [--json]``,
``canirun scan [--json]`` and ``canirun check QUERY [--json]`` (these two also with
``--ram-bandwidth VALUE`` or ``--ram-bandwidth=VALUE``) are what scripts and CI jobs run
most, and importing typer and building its app costs more than some of the answers
(issue 15's budgets). Exactly these argument lists take the short way: one query word
right after ``check``, each flag at most once, in either order, no value that starts
with ``-``. Anything else, including ``--help`` and any other flag, goes to
``canirun.cli``. Both ways call the same function (``show_hardware`` here, the bodies in
``canirun.commands``), with the same defaults, and end in the same exit codes (tests
compare them).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pathlib is imported by load_pathlib_plainly, or by the commands
    from pathlib import Path

EXIT_OK, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_PIPE = 0, 2, 130, 141
# pydantic's switch for its plugins (pydantic PR #8767, commit b14551637d7dee3a3658d2c2479
# 4ff37364c9db9; pydantic/plugin/_loader.py reads it at every lookup). Plugins are found,
# on the first schema build, by reading the entry points of every installed distribution.
PLUGINS_OFF = "PYDANTIC_DISABLE_PLUGINS"


# What answers without the catalog, hence without msgspec (see load_msgspec_plainly).
NO_CATALOG = ((), ("--version",), ("hardware",), ("--help",), ("-h",))
# What defines no record (the version) or goes to typer, which imports inspect anyway.
NO_RECORDS = ((), ("--version",), ("--help",), ("-h",))


def version_text() -> str:
    from canirun import __version__

    return f"canirun {__version__}\n"


def show_hardware(
    as_json: bool,
    output: Path | None = None,
    hardware_file: Path | None = None,
    models_dir: Path | None = None,
) -> None:
    """`canirun hardware`: what canirun sees here (or in a hardware file), as text or JSON."""
    from canirun import jsonsafe
    from canirun.catalog.compiled import shipped_detect_specs
    from canirun.envelope import envelope
    from canirun.hardware import load_host
    from canirun.output.files import emit, write_atomic

    detect = None if hardware_file is not None else shipped_detect_specs()
    host = load_host(hardware_file, models_dir, detect=detect)
    if any(not g.memory_bandwidth_bytes_per_s for g in host.hardware.gpus):
        from canirun.catalog import load_catalog
        from canirun.estimate.capacity import with_published_figures

        host = with_published_figures(host, load_catalog().gpus)
    text = jsonsafe.dumps(envelope(host, "hardware"), indent=2) + "\n"
    if output is not None:
        write_atomic(output, text)
    if as_json:
        emit(text)
    else:
        from canirun.output.hardware_text import render_hardware

        emit(render_hardware(host))


def _print_version() -> None:
    from canirun.output.files import emit

    emit(version_text())


def _frameworks(as_json: bool) -> None:
    from canirun import commands

    commands.frameworks(as_json=as_json)


Run = Callable[[], int | None]  # a command: its exit code, None for 0
SHORT_WAYS: dict[tuple[str, ...], Run] = {
    ("--version",): _print_version,
    ("hardware",): lambda: show_hardware(as_json=False),
    ("hardware", "--json"): lambda: show_hardware(as_json=True),
    ("frameworks",): lambda: _frameworks(as_json=False),
    ("frameworks", "--json"): lambda: _frameworks(as_json=True),
}
RATING_FLAG = "--ram-bandwidth"  # the one flag with a value that the short way takes


def _rating_flags(rest: tuple[str, ...]) -> dict[str, Any] | None:
    """``--json`` and ``--ram-bandwidth VALUE`` (or ``=VALUE``), each at most once, as
    keywords of commands.scan/check; None for anything else (typer parses it)."""
    flags: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--json" and "as_json" not in flags:
            flags["as_json"] = True
            i += 1
            continue
        if "ram_bandwidth" in flags:
            return None
        if arg == RATING_FLAG and i + 1 < len(rest):
            value, i = rest[i + 1], i + 2
        elif arg.startswith(RATING_FLAG + "="):
            value, i = arg.removeprefix(RATING_FLAG + "="), i + 1
        else:
            return None
        if not _plain(value):
            return None
        flags["ram_bandwidth"] = value
    return flags


def short_way(args: tuple[str, ...]) -> Run | None:
    """The command for an argument list the short way answers; None: typer's."""
    fixed = SHORT_WAYS.get(args)
    if fixed is not None:
        return fixed
    if args[:1] == ("check",) and len(args) > 1 and _plain(args[1]):
        command, queries, rest = "check", {"queries": [args[1]]}, args[2:]
    elif args[:1] == ("scan",):
        command, queries, rest = "scan", {}, args[1:]
    else:
        return None
    flags = _rating_flags(rest)
    if flags is None:
        return None
    keywords = {**queries, **flags}
    return lambda: _rate(command, keywords)


def _plain(value: str) -> bool:
    """A value click would take as it is, and nothing an option could be mistaken for."""
    return bool(value) and not value.startswith("-")


def _rate(command: str, flags: dict[str, Any]) -> int:
    from canirun import commands

    run: Callable[..., int] = commands.scan if command == "scan" else commands.check
    return run(**flags)


def _guarded(run: Run) -> int:
    """The exit codes of cli._Commands: bad input one line and 2, a closed pipe 141."""
    from canirun.errors import InputError, PipeClosed
    from canirun.output.files import say, silence_stdout

    try:
        code = run()
    except InputError as exc:
        say(f"canirun: error: {exc}")
        return EXIT_INPUT
    except (PipeClosed, BrokenPipeError):
        silence_stdout()
        return EXIT_PIPE
    except KeyboardInterrupt:
        say("")  # click ends an interrupted line the same way
        return EXIT_INTERRUPTED
    return EXIT_OK if code is None else code


def main(argv: list[str] | None = None) -> int:
    """The console script's (and ``python -m canirun``'s) entry: the exit code of one
    command. ``argv`` None: the process's own arguments, and the process ends on return."""
    # One command is a short-lived run whose objects reference counting frees; the cyclic
    # collector would only walk the loaded catalog again and again (about a tenth of a
    # scan, issue 15), and peak memory is the same without it (benchmarks/fleet_merge.py).
    # Restored afterwards, for callers in the same process (tests, scripts).
    collecting = gc.isenabled()
    gc.disable()
    # A command validates nothing but canirun's own report models, yet pydantic's plugin
    # lookup reads every installed distribution's metadata on the first schema build
    # (measured: ~4 ms of a scan with 27 distributions installed, ~12 ms with 60; more
    # with more; issue 15). The command line turns plugins off for its own run only,
    # unless the user chose a setting; the variable is gone again afterwards, so the
    # Python API and later callers in this process find plugins as pydantic would.
    plugins_off = PLUGINS_OFF not in os.environ
    if plugins_off:
        os.environ[PLUGINS_OFF] = "__all__"
    args = tuple(sys.argv[1:] if argv is None else argv)
    if argv is None and args[:1] not in NO_RECORDS:
        load_pathlib_plainly()
        load_dataclasses_plainly()
    if argv is None and args[:1] not in NO_CATALOG:
        load_msgspec_plainly()
    try:
        code = _run(args)
    finally:
        if plugins_off:
            os.environ.pop(PLUGINS_OFF, None)
        if argv is None:
            # The process ends now. Shutdown runs full collections, which would walk every
            # object of the run (the catalog, the results): frozen, they are left out of
            # them and freed as usual (about 110 ms of a scan's wall time, issue 15).
            gc.freeze()
        if collecting:
            gc.enable()
    if argv is None:
        end_now(code)
    return code


def end_now(code: int) -> None:
    """End this process with ``code`` at once, when nothing is left for shutdown to do but
    free memory; else return, and the process ends as usual.

    Freeing every object of a scan (the catalog, the results, the modules) one by one
    takes ~18 ms of its ~270 ms (issue 15), and the kernel takes the memory back anyway.
    mypy ends its command-line runs the same way (``mypy/util.py``, ``hard_exit``). What
    shutdown would otherwise do, done or ruled out first: standard output and error are
    flushed (a failing flush leaves the ending to shutdown, which reports it as before);
    no ``atexit`` callback is registered (a library's clean-up, e.g. Ray's); no other
    thread runs (Python would wait for it). Files were written and closed by the command
    itself (``output.files.write_atomic``).
    """
    import atexit

    callbacks = getattr(atexit, "_ncallbacks", None)  # CPython's count of registrations
    threading = sys.modules.get("threading")  # not imported: no thread was started by it
    if callbacks is None or callbacks() or (threading and threading.active_count() > 1):
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def load_pathlib_plainly() -> None:
    """Import pathlib without urllib.parse, for a process that is one command.

    ``pathlib`` (3.11, 3.12) imports ``urllib.parse``, and with it ``ipaddress`` (~2.5 ms
    of every command, issue 15), only for ``Path.as_uri``'s ``quote_from_bytes``, which
    canirun never calls. While pathlib loads, a stand-in takes urllib.parse's place in
    ``sys.modules``: its ``quote_from_bytes`` and any other name read from it import the
    real module and answer from it, so ``as_uri`` works as before. The stand-in is removed
    at once, and every other ``import urllib.parse`` gets the real module. Nothing is done
    if either is already loaded.
    """
    if "pathlib" in sys.modules or "urllib.parse" in sys.modules:
        return
    import types

    stand_in = types.ModuleType("urllib.parse", "imports the real urllib.parse when first read")
    real = _real_module_reader("urllib.parse", stand_in)
    stand_in.__getattr__ = real  # type: ignore[method-assign]  # PEP 562
    stand_in.quote_from_bytes = _forward(real, "quote_from_bytes")  # type: ignore[attr-defined]
    sys.modules["urllib.parse"] = stand_in
    try:
        import pathlib  # noqa: F401
    finally:
        if sys.modules.get("urllib.parse") is stand_in:
            del sys.modules["urllib.parse"]


def load_dataclasses_plainly() -> None:
    """Import dataclasses without inspect, for a process that is one command.

    ``dataclasses`` imports ``inspect`` (with ast, dis and tokenize: ~4 ms of every
    command, issue 15) only to write a signature as the doc of a class that has none, and
    every canirun record has one (``records.record``). While dataclasses loads, a stand-in
    module takes inspect's place in ``sys.modules``: the first attribute read from it
    imports the real inspect and answers from it, so dataclasses behaves as before for any
    class. The stand-in is removed at once, and every other ``import inspect`` (typer's,
    pydantic's) gets the real module. Nothing is done if either is already loaded.
    """
    if "dataclasses" in sys.modules or "inspect" in sys.modules:
        return
    import types

    def real(name: str) -> Any:
        import importlib

        return getattr(importlib.import_module("inspect"), name)

    stand_in = types.ModuleType("inspect", "imports the real inspect when first read")
    stand_in.__getattr__ = real  # type: ignore[method-assign]  # PEP 562
    sys.modules["inspect"] = stand_in
    try:
        import dataclasses  # noqa: F401
    finally:
        del sys.modules["inspect"]


def load_msgspec_plainly() -> None:
    """Import msgspec without typing_extensions, for a process that is one command.

    msgspec 0.18-0.23 (``msgspec/_utils.py``) tries ``typing_extensions`` first for
    ``get_type_hints``, ``Required`` and ``NotRequired`` and falls back to ``typing``;
    importing typing_extensions costs ~8 ms of every command (issue 15), and canirun
    declares no type with it (on Python 3.11+ its ``Required``/``NotRequired`` are
    ``typing``'s). A ``None`` entry in ``sys.modules`` makes that import fail for the
    moment msgspec loads; the entry is removed at once, so a later ``import
    typing_extensions`` (pydantic's, a user catalog's) works as usual. Nothing is done
    if either module is already loaded: the process is then not canirun's alone.
    """
    if "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]
    platform = _platform_stand_in()
    unused = _msgspec_stand_ins()
    try:
        import msgspec  # noqa: F401
    finally:
        del sys.modules["typing_extensions"]
        if platform is not None and sys.modules.get("platform") is platform:
            del sys.modules["platform"]
        for name, stand_in in unused.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


def _msgspec_stand_ins() -> dict[str, Any]:
    """Stand-ins for the msgspec modules canirun never uses, while msgspec loads.

    ``msgspec/__init__.py`` imports ``msgspec.inspect`` (type introspection) and
    ``msgspec.json`` imports ``msgspec._json_schema`` (JSON Schema generation, with
    ``textwrap``): ~2.5 ms of every command (issue 15) for functions canirun never calls.
    Each stand-in imports the real module when a name is first read from it (and
    ``msgspec.json.schema`` / ``schema_components`` when called), so msgspec behaves as
    before for any caller. Nothing is stood in for a module already loaded.
    """
    import types

    out: dict[str, Any] = {}
    for name in ("msgspec.inspect", "msgspec._json_schema"):
        if name in sys.modules:
            continue
        stand_in = types.ModuleType(name, f"imports the real {name} when first read")
        stand_in.__getattr__ = _real_module_reader(name, stand_in)  # type: ignore[method-assign]
        out[name] = stand_in
    schema = out.get("msgspec._json_schema")
    if schema is not None:
        # msgspec.json does `from ._json_schema import schema, schema_components`.
        real = schema.__getattr__
        for attr in ("schema", "schema_components"):
            setattr(schema, attr, _forward(real, attr))
    sys.modules.update(out)
    return out


def _real_module_reader(name: str, stand_in: Any) -> Any:
    """A stand-in's ``__getattr__`` (PEP 562): the attribute of the real module ``name``,
    imported at the first read (the stand-in leaves ``sys.modules`` first)."""

    def real(attr: str) -> Any:
        if attr.startswith("__"):  # the import system asks for __path__ and such
            raise AttributeError(attr)
        import importlib

        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)

    return real


def _forward(real: Any, attr: str) -> Any:
    """A function that calls the real module's ``attr`` (read through ``real``)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return real(attr)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attr
    return call


def _platform_stand_in() -> Any:
    """A stand-in for ``platform`` while msgspec loads, or None (already loaded; no uname).

    msgspec imports ``uuid``, which on Linux imports ``platform`` only to ask
    ``platform.system()`` (``uuid.py``, 3.11-3.13); ``platform`` compiles a dozen regular
    expressions as it loads, ~2 ms of every command (issue 15), and canirun asks
    ``os.uname`` itself (``hardware.system``). On POSIX ``platform.system()`` is
    ``os.uname().sysname``; the stand-in answers that, and any other name it is asked
    imports the real module and answers from it, so uuid behaves as before whatever it reads.
    """
    if "platform" in sys.modules or "uuid" in sys.modules or not hasattr(os, "uname"):
        return None
    import types

    stand_in = types.ModuleType("platform", "imports the real platform when first read")

    def real(name: str) -> Any:
        import importlib

        if sys.modules.get("platform") is stand_in:
            del sys.modules["platform"]
        return getattr(importlib.import_module("platform"), name)

    stand_in.system = lambda: os.uname().sysname  # type: ignore[attr-defined]
    stand_in.__getattr__ = real  # type: ignore[method-assign]  # PEP 562
    sys.modules["platform"] = stand_in
    return stand_in


def _run(args: tuple[str, ...]) -> int:
    short = short_way(args)
    if short is not None:
        return _guarded(short)
    from canirun.cli import main as full

    return full(list(args))
