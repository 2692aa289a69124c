"""The ``canirun`` command line: thin typer commands over the layers below.

Start-up time matters, so every command imports what it uses inside its body.
Exit codes: 0 ran (and any requirement was met), 1 a requirement was not met,
2 bad input or usage, 130 interrupted, 141 output pipe closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from canirun.errors import InputError, PipeClosed

if TYPE_CHECKING:
    from canirun.hardware.model import Host

EXIT_OK, EXIT_UNMET, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 130, 141


class _Commands(TyperGroup):
    """Every command's errors end here: bad input is one line on stderr and exit 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            typer.echo(f"canirun: error: {exc}", err=True)
            raise typer.Exit(EXIT_INPUT) from None
        except PipeClosed:
            raise typer.Exit(EXIT_PIPE) from None


app = typer.Typer(
    cls=_Commands,
    name="canirun",
    help="Which AI models and serving frameworks can this machine host, and how?",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the JSON report instead of text.")]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Also write the JSON report to FILE (atomically)."),
]
HardwareOpt = Annotated[
    Path | None,
    typer.Option(
        "--hardware",
        help="Use a hardware file (hand-written, or a report from another machine) "
        "instead of probing this one.",
    ),
]
ModelsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--models-dir",
        help="Where models are kept, for the disk check "
        "(default: the Hugging Face cache, HF_HUB_CACHE or HF_HOME/hub).",
    ),
]


def _version(value: bool) -> None:
    if value:
        from canirun import __version__

        typer.echo(f"canirun {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Which AI models and serving frameworks can this machine host, and how?

    Exit codes: 0 success; 1 a --require was not met; 2 bad input or usage;
    130 interrupted.
    """


def _host(
    hardware: Path | None, models_dir: Path | None, *, measure_bandwidth: bool = False
) -> Host:
    if hardware is not None:
        if models_dir is not None:
            raise InputError(
                "--models-dir measures this machine's disk; it cannot go with --hardware"
            )
        from canirun.hardware.file import load_hardware_file

        return load_hardware_file(hardware)
    from canirun.hardware import probe

    return probe(models_dir, measure_bandwidth=measure_bandwidth)


def _write_report(data: dict[str, object], as_json: bool, output: Path | None) -> None:
    import json

    from canirun.output.files import emit, write_atomic

    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is not None:
        write_atomic(output, text)
    if as_json:
        emit(text)


@app.command()
def hardware(
    as_json: JsonFlag = False,
    output: OutputOpt = None,
    hardware_file: HardwareOpt = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Show what canirun sees on this machine: CPU, memory, disk, GPUs, OS."""
    from canirun.envelope import envelope

    host = _host(hardware_file, models_dir)
    _write_report(envelope(host, "hardware"), as_json, output)
    if not as_json:
        from canirun.output.files import emit
        from canirun.output.hardware_text import render_hardware

        emit(render_hardware(host))


ContextOpt = Annotated[
    int,
    typer.Option(
        "--ctx",
        min=1,
        help="Context length in tokens for text models (default 4096, capped at each "
        "model's maximum; never the maximum by default).",
    ),
]
RamBandwidthOpt = Annotated[
    str | None,
    typer.Option(
        "--ram-bandwidth",
        help="RAM bandwidth for CPU speed estimates, e.g. '80GB/s' or 'off' "
        "(default: a ~0.1 s copy test).",
    ),
]


def _rate_options(ctx: int) -> object:
    from canirun.estimate.rate import Options
    from canirun.estimate.results import Workload

    return Options(workload=Workload(context_tokens=ctx))


def _ram_bandwidth(text: str | None) -> tuple[bool, int | None]:
    """(measure here?, bandwidth given by the user)."""
    if text is None:
        return True, None
    if text.strip().lower() == "off":
        return False, None
    from canirun.units import parse_rate, parse_size

    try:
        value = parse_rate(text) if "/" in text else parse_size(text)
    except ValueError as exc:
        raise InputError(f"--ram-bandwidth: {exc}") from None
    if value <= 0:
        raise InputError("--ram-bandwidth: must be positive")
    return False, value


@app.command()
def scan(
    as_json: JsonFlag = False,
    output: OutputOpt = None,
    hardware_file: HardwareOpt = None,
    models_dir: ModelsDirOpt = None,
    ctx: ContextOpt = 4096,
    ram_bandwidth: RamBandwidthOpt = None,
) -> None:
    """Rate every model in the catalog for this machine."""
    import json

    from canirun.catalog import load_catalog
    from canirun.evaluate import scan_report
    from canirun.output.files import emit, write_atomic

    measure, bandwidth = _ram_bandwidth(ram_bandwidth)
    host = _host(hardware_file, models_dir, measure_bandwidth=measure)
    report, _ = scan_report(host, load_catalog(), _rate_options(ctx), ram_bandwidth=bandwidth)  # type: ignore[arg-type]
    text = json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    if output is not None:
        write_atomic(output, text)
    if as_json:
        emit(text)
        return
    from canirun.output import scan_text
    from canirun.output.hardware_text import render_hardware

    emit(
        render_hardware(host)
        + scan_text.render_summary(report, colour=scan_text.use_colour())
        + scan_text.render_frameworks(report.frameworks)
        + scan_text.render_assumptions(report.assumptions)
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point: runs the app and maps every outcome to an exit code."""
    try:
        app(args=argv, prog_name="canirun")
    except SystemExit as exc:  # typer's standalone mode ends every run this way
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_INPUT)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK
