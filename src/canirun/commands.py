"""The bodies of `scan`, `check` and `frameworks`, and what they share, without typer.

``canirun.cli`` declares the options (typer) and calls these with every parsed value;
``canirun.entry`` calls them for the commonest plain argument lists with only the flags
it recognised, so ``api.prepare``'s defaults apply to the rest. Both ways run the same code
and end in the same exit codes. The defaults that are more than "not given" are the
constants here, which the typer declarations and ``api.prepare`` use too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from canirun.errors import InputError

EXIT_OK, EXIT_UNMET = 0, 1
CTX, SEQUENCES, KV_CACHE, PREFER = 4096, 1, "f16", "balanced"
FORMATS = ("text", "json", "markdown", "junit")


def load_catalog(extra: Sequence[Path] | None) -> Any:
    """The catalog, with the shipped and user files' warnings as lines on stderr."""
    from canirun.catalog import load_catalog as load
    from canirun.errors import one_line
    from canirun.output.files import say

    catalog = load(tuple(str(p) for p in extra or ()))
    for warning in catalog.warnings:
        say(one_line(f"canirun: warning: {warning}"))
    return catalog


def tool() -> dict[str, str]:
    from canirun import __version__

    return {"name": "canirun", "version": __version__}


def json_text(report: Any) -> str:
    from canirun import jsonsafe

    return jsonsafe.dumps_model(report, indent=2) + "\n"


# The command line spells an empty list option as None; prepare takes a sequence.
_LISTS = ("catalog_files", "gpu", "precision")


def setup(**flags: Any) -> tuple[Any, Any, Any, int | None, Any]:
    """(catalog, host, rating options, RAM bandwidth given, cluster) from the common flags:
    ``api.prepare``'s keywords as the command line passes them (None for an empty list
    option); a flag not given takes prepare's default, the one the typer options show."""
    from canirun.api import prepare

    given: dict[str, Any] = {k: (v or ()) if k in _LISTS else v for k, v in flags.items()}
    p = prepare(**given)
    return p.catalog, p.host, p.options, p.ram_bandwidth, p.cluster


def output_choice(fmt: str | None, as_json: bool, github_summary: bool) -> str:
    """The output format the flags ask for; called before any probing, so that a bad
    flag fails at once instead of after the scan."""
    import os

    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if as_json and fmt not in (None, "json"):
        raise InputError(f"--json and --format {fmt} ask for two different outputs")
    if github_summary and not os.environ.get("GITHUB_STEP_SUMMARY"):
        raise InputError(
            "--github-summary: GITHUB_STEP_SUMMARY is not set (outside GitHub Actions?)"
        )
    return "json" if as_json else (fmt or "text")


def _ci_format(fmt: str, report: Any) -> str:
    """Markdown or JUnit XML, imported only when asked for (XML is slow to import)."""
    from canirun.output import ci_formats

    if fmt == "markdown":
        return ci_formats.render_markdown(report)
    return ci_formats.render_junit(report)


def deliver(
    report: Any,
    *,
    fmt: str | None,
    as_json: bool,
    output: Path | None,
    github_summary: bool,
    text: Callable[[], str],
) -> None:
    """Render the report in the chosen format to stdout, --output and the job summary."""
    import os

    from canirun.output.files import append_text, emit, write_atomic
    from canirun.report_json import Pending

    chosen = output_choice(fmt, as_json, github_summary)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    pending = report if isinstance(report, Pending) else None

    def model() -> Any:  # a pending report is validated only for the formats that read it
        return pending.model if pending else report

    def as_json_text() -> str | bytes:
        # A pending report's JSON stays UTF-8 bytes to the file or stdout (issue 15).
        return pending.json_bytes() + b"\n" if pending else json_text(report)

    rendered: dict[str, Callable[[], str | bytes]] = {
        "json": as_json_text,
        "markdown": lambda: _ci_format("markdown", model()),
        "junit": lambda: _ci_format("junit", model()),
        "text": text,
    }
    body = rendered[chosen]()
    if output is not None:
        write_atomic(output, body if chosen != "text" else rendered["json"]())
    if github_summary and summary_file:
        append_text(Path(summary_file), _ci_format("markdown", model()), "--github-summary")
    emit(body)


def scan(
    *,
    as_json: bool = False,
    output: Path | None = None,
    fmt: str | None = None,
    github_summary: bool = False,
    require: str | None = None,
    **flags: Any,
) -> int:
    """`canirun scan`: every catalog model rated here; the exit code (1: --require unmet)."""
    from canirun import options

    gate = options.gate_flag(require, None, False)
    output_choice(fmt, as_json, github_summary)
    catalog, host, opts, bandwidth, members = setup(**flags)
    from canirun.evaluate import scan_report
    from canirun.fanout import usable_workers

    pending, _ = scan_report(
        host,
        catalog,
        opts,
        ram_bandwidth=bandwidth,
        cluster=members,
        gate=gate,
        workers=usable_workers(),
    )

    def text() -> str:  # the text modules are imported only for text
        from canirun.output import scan_text
        from canirun.output.hardware_text import render_hardware

        report = pending.model
        return (
            render_hardware(host)
            + scan_text.render_summary(report, colour=scan_text.use_colour())
            + scan_text.render_frameworks(report.frameworks)
            + scan_text.render_assumptions(report.assumptions)
            + scan_text.render_requirement(report)
        )

    deliver(
        pending,
        fmt=fmt,
        as_json=as_json,
        output=output,
        github_summary=github_summary,
        text=text,
    )
    return EXIT_UNMET if pending.requirement_met is False else EXIT_OK


def check(
    queries: Sequence[str],
    *,
    as_json: bool = False,
    output: Path | None = None,
    explain: bool = False,
    require: str | None = None,
    min_tps: float | None = None,
    every: bool = False,
    fmt: str | None = None,
    github_summary: bool = False,
    online: bool = False,
    **flags: Any,
) -> int:
    """`canirun check QUERY...`: the models named, rated here; the exit code (1: a gate
    not met)."""
    from canirun import options

    gate = options.gate_flag(require, min_tps, every)
    output_choice(fmt, as_json, github_summary)
    catalog, host, opts, bandwidth, members = setup(**flags)
    from canirun.evaluate import check_report
    from canirun.fanout import usable_workers

    pending, _ = check_report(
        host,
        catalog,
        opts,
        list(queries),
        gate,
        ram_bandwidth=bandwidth,
        cluster=members,
        online=online,
        workers=usable_workers(),
    )

    def text() -> str:
        from canirun.output.check_text import render_check
        from canirun.output.scan_text import use_colour

        return render_check(pending.model, explain=explain, colour=use_colour())

    deliver(
        pending,
        fmt=fmt,
        as_json=as_json,
        output=output,
        github_summary=github_summary,
        text=text,
    )
    return EXIT_UNMET if pending.requirement_met is False else EXIT_OK


def framework_listing_json(catalog: Any, host: Any, found: Sequence[Any]) -> bytes:
    """`frameworks --json`: report.FrameworkListing's JSON, written without pydantic (its
    import would double the command's time); tests/test_report_json.py holds the two
    byte-equal."""
    from canirun.report_json import dump_bytes

    entries = [
        {"framework": f, "status": s} for f, s in zip(catalog.frameworks, found, strict=True)
    ]
    data = {"tool": tool(), "hardware": host.hardware, "frameworks": entries}
    return dump_bytes("FrameworkListing", data) + b"\n"


def frameworks(
    *,
    as_json: bool = False,
    hardware_file: Path | None = None,
    models_dir: Path | None = None,
    catalog_files: Sequence[Path] | None = None,
    gpu: Sequence[str] | None = None,
    vram: str | None = None,
    ram: str | None = None,
) -> None:
    """`canirun frameworks`: which serving frameworks can run here, which are installed,
    and what they could serve."""
    from canirun import options
    from canirun.evaluate import framework_statuses, machine_capacity
    from canirun.output.files import emit
    from canirun.whatif import WhatIf

    catalog = load_catalog(catalog_files)
    what = WhatIf(
        tuple(gpu or ()), options.size_flag("--vram", vram), options.size_flag("--ram", ram)
    )
    host = options.host_for(hardware_file, models_dir, what, catalog, measure_bandwidth=False)
    cap = machine_capacity(host, catalog)
    # In one process: finding what each framework serves takes ~20 ms, and on the 2-core VM
    # a worker gained nothing that held (interleaved runs: from 9 % faster to 14 % slower).
    found = framework_statuses(catalog, cap)
    if as_json:
        emit(framework_listing_json(catalog, host, found))
    else:
        from canirun.output.catalog_text import render_frameworks

        emit(render_frameworks(catalog.frameworks, found))
