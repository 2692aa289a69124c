"""The ``canirun`` command line: thin typer commands over the layers below.

Start-up time matters, so every command imports what it uses inside its body.
Exit codes: 0 ran (and any requirement was met), 1 a requirement was not met,
2 bad input or usage, 130 interrupted, 141 output pipe closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from canirun import commands
from canirun.errors import InputError, PipeClosed, one_line

EXIT_OK, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_PIPE = 0, 2, 130, 141


class _Commands(TyperGroup):
    """Every command's errors end here: bad input is one line on stderr and exit 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        # --help and --version print while the context is made.
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            raise PipeClosed from None

    def invoke(self, ctx: Any) -> Any:
        from canirun.output.files import say, silence_stdout

        try:
            return super().invoke(ctx)
        except InputError as exc:
            say(f"canirun: error: {exc}")
            raise typer.Exit(EXIT_INPUT) from None
        except (PipeClosed, BrokenPipeError):
            silence_stdout()
            raise typer.Exit(EXIT_PIPE) from None

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's main, with its usage errors as one line and every outcome an exit code."""

        def run() -> Any:
            return TyperGroup.main(
                self, args, prog_name, complete_var, standalone_mode=False, **extra
            )

        code = _outcome(run)
        if standalone_mode:
            raise SystemExit(code)
        return code


def _click_exceptions() -> Any:
    """typer 0.27+ vendors click as typer._click; older typer uses click itself."""
    import importlib

    from typer import core

    module = getattr(core, "_click", None) or importlib.import_module("click")
    return module.exceptions


def _usage_error(exc: Any, errors: Any) -> int:
    """click's usage errors as one line (click prints four); `canirun` alone: the help."""
    from canirun.output.files import say

    message = str(exc.format_message())
    if isinstance(exc, getattr(errors, "NoArgsIsHelpError", ())):
        say(message)
        return EXIT_INPUT
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "canirun"
    where = f" (see '{command} --help')"
    say(f"canirun: error: {one_line(message)}{where}")
    return EXIT_INPUT


def _outcome(run: Any) -> int:
    from canirun.output.files import say, silence_stdout

    errors = _click_exceptions()
    try:
        result = run()
    except errors.ClickException as exc:
        return _usage_error(exc, errors)
    except typer.Abort:
        return EXIT_INTERRUPTED
    except PipeClosed:
        silence_stdout()
        return EXIT_PIPE
    except InputError as exc:  # raised while the context is made (--version's output)
        say(f"canirun: error: {exc}")
        return EXIT_INPUT
    return result if isinstance(result, int) else EXIT_OK


app = typer.Typer(
    cls=_Commands,
    name="canirun",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the JSON report instead of text.")]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Also write the report to FILE, atomically (in --format; JSON when text).",
    ),
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
        from canirun.entry import version_text
        from canirun.output.files import emit

        emit(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Which AI models and serving frameworks can this machine host, and how?

    Exit codes: 0 success; 1 a --require/--min-tps gate (check, scan) was not met;
    2 bad input or usage; 130 interrupted; 141 the output pipe was closed.
    """


CatalogOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--catalog",
        help="An extra catalog file (same schema as the shipped one); can be repeated. "
        "Files in the user config dir's catalog.d/ are read too.",
    ),
]
CtxOpt = Annotated[
    int,
    typer.Option(
        "--ctx",
        help="Context length in tokens for text models (default 4096, capped at each "
        "model's maximum; never the maximum by default).",
    ),
]
PrecisionOpt = Annotated[
    list[str] | None,
    typer.Option("--precision", "-p", help="Only these precisions (Q4_K_M, F16, fp16, int4...)."),
]
FrameworkOpt = Annotated[
    str | None, typer.Option("--framework", "-f", help="Only this framework (llama.cpp, vllm...).")
]
GpuOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--gpu",
        help="What if this machine had these GPUs: 'RTX 4090', '2x A100 80GB' (repeatable; "
        "names from `canirun gpus`).",
    ),
]
VramOpt = Annotated[
    str | None, typer.Option("--vram", help="What if each GPU had this much memory (24GB, 16GiB).")
]
RamOpt = Annotated[str | None, typer.Option("--ram", help="What if the machine had this much RAM.")]
RamBandwidthOpt = Annotated[
    str | None,
    typer.Option(
        "--ram-bandwidth",
        help=(
            "RAM bandwidth for CPU speed, e.g. '80GB/s'; 'measure' runs the copy test again; "
            "'off'. Default: this machine's kept figure, else a ~0.1 s copy test."
        ),
    ),
]
SequencesOpt = Annotated[int, typer.Option("--sequences", help="Concurrent sequences (KV cache).")]
KvOpt = Annotated[str, typer.Option("--kv-cache", help="KV cache type: f16, q8_0, q4_0, fp8.")]
FlashOpt = Annotated[
    bool | None,
    typer.Option(
        "--flash-attention/--no-flash-attention",
        help="Flash attention on or off (default: each runtime's default; llama.cpp: on).",
    ),
]
PreferOpt = Annotated[
    str,
    typer.Option(
        "--prefer",
        help="What the recommendation favours: balanced (a usable speed, then the best "
        "quality), quality or speed.",
    ),
]
ExtendedOpt = Annotated[
    bool,
    typer.Option(
        "--extended-context",
        help="Allow contexts up to the rope-scaled (YaRN...) length the model card documents, "
        "not just the native one.",
    ),
]
SwaFullOpt = Annotated[
    bool,
    typer.Option(
        "--swa-full", help="llama.cpp --swa-full: sliding-window layers cache the whole context."
    ),
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch", help="Images or sentences per batch (default per kind).")
]
ResolutionOpt = Annotated[
    int | None, typer.Option("--resolution", help="Image side in pixels (diffusion).")
]
SeqLenOpt = Annotated[
    int | None,
    typer.Option("--seq-len", help="Residues (AlphaFold), or tokens per text (embeddings; 512)."),
]
NodesOpt = Annotated[
    int | None,
    typer.Option(
        "--nodes",
        help="What if there were N machines like this one (with --gpu/--ram): plan models "
        "across nodes as vLLM would (tensor parallel in a node, pipeline across).",
    ),
]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="A running Ray cluster ('auto' or its address): probe every node there and plan "
        "models across them. Needs the extra: pip install 'canirun-ai[ray]'.",
    ),
]
ClusterOpt = Annotated[
    Path | None,
    typer.Option(
        "--cluster",
        help="A folder with one report per node (`canirun hardware --json` of each): plan "
        "models across those nodes.",
    ),
]


HardwareOutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Also write the JSON report to FILE, atomically."),
]
FleetOutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", help="Write the matrix to FILE (in --format), atomically, not stdout."
    ),
]


@app.command()
def hardware(
    as_json: JsonFlag = False,
    output: HardwareOutputOpt = None,
    hardware_file: HardwareOpt = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Show what canirun sees on this machine: CPU, memory, disk, GPUs, OS."""
    from canirun.entry import show_hardware

    show_hardware(as_json, output, hardware_file, models_dir)


FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="text (default), json, markdown or junit; --output writes this format "
        "(JSON when text).",
    ),
]
GithubOpt = Annotated[
    bool,
    typer.Option(
        "--github-summary", help="Also append a Markdown summary to $GITHUB_STEP_SUMMARY."
    ),
]


@app.command()
def scan(
    as_json: JsonFlag = False,
    output: OutputOpt = None,
    hardware_file: HardwareOpt = None,
    models_dir: ModelsDirOpt = None,
    catalog_files: CatalogOpt = None,
    gpu: GpuOpt = None,
    vram: VramOpt = None,
    ram: RamOpt = None,
    ram_bandwidth: RamBandwidthOpt = None,
    ctx: CtxOpt = commands.CTX,
    sequences: SequencesOpt = commands.SEQUENCES,
    kv_cache: KvOpt = commands.KV_CACHE,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    seq_len: SeqLenOpt = None,
    flash_attention: FlashOpt = None,
    extended_context: ExtendedOpt = False,
    swa_full: SwaFullOpt = False,
    prefer: PreferOpt = commands.PREFER,
    precision: PrecisionOpt = None,
    framework: FrameworkOpt = None,
    nodes: NodesOpt = None,
    cluster: ClusterOpt = None,
    ray: RayOpt = None,
    fmt: FormatOpt = None,
    github_summary: GithubOpt = False,
    require: Annotated[
        str | None,
        typer.Option(
            "--require",
            help="Gate: the worst acceptable placement (gpu, multi-gpu, offload, cpu). Exit 1 "
            "when no model runs that well, in every format; in JUnit each model below it fails.",
        ),
    ] = None,
) -> None:
    """Rate every model in the catalog for this machine, grouped by category."""
    code = commands.scan(**locals())
    if code:
        raise typer.Exit(code)


RequireOpt = Annotated[
    str | None,
    typer.Option(
        "--require",
        help="CI gate: the worst acceptable placement, one of gpu, multi-gpu, offload, cpu. "
        "Exit 1 when no matched model (or not every one, with --all) runs that well.",
    ),
]
MinTpsOpt = Annotated[
    float | None,
    typer.Option("--min-tps", help="CI gate: at least this many tokens/s (the low estimate)."),
]
AllOpt = Annotated[bool, typer.Option("--all", help="The gate must hold for every matched model.")]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Show each estimate's formula, inputs and sources.")
]
QueriesArg = Annotated[
    list[str],
    typer.Argument(
        help="Model names (llama, 'llama 70b', llama3:8b, whisper...) or paths: a GGUF file, "
        "a model folder."
    ),
]


@app.command()
def check(
    queries: QueriesArg,
    as_json: JsonFlag = False,
    output: OutputOpt = None,
    explain: ExplainOpt = False,
    require: RequireOpt = None,
    min_tps: MinTpsOpt = None,
    every: AllOpt = False,
    hardware_file: HardwareOpt = None,
    models_dir: ModelsDirOpt = None,
    catalog_files: CatalogOpt = None,
    gpu: GpuOpt = None,
    vram: VramOpt = None,
    ram: RamOpt = None,
    ram_bandwidth: RamBandwidthOpt = None,
    ctx: CtxOpt = commands.CTX,
    sequences: SequencesOpt = commands.SEQUENCES,
    kv_cache: KvOpt = commands.KV_CACHE,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    seq_len: SeqLenOpt = None,
    flash_attention: FlashOpt = None,
    extended_context: ExtendedOpt = False,
    swa_full: SwaFullOpt = False,
    prefer: PreferOpt = commands.PREFER,
    precision: PrecisionOpt = None,
    framework: FrameworkOpt = None,
    nodes: NodesOpt = None,
    cluster: ClusterOpt = None,
    ray: RayOpt = None,
    fmt: FormatOpt = None,
    github_summary: GithubOpt = False,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Read ORG/NAME[:QUANT] queries from the Hugging Face Hub (headers only).",
        ),
    ] = False,
) -> None:
    """Can this machine run these models? Every precision, the best framework, the reasons.

    A query that is a path rates that file or folder (a GGUF file, a Hugging Face
    model folder, a cache entry) from its own headers, at its own precision.

    Exit codes: 0 ran (and the --require/--min-tps gate, if any, was met); 1 the gate
    was not met; 2 an unknown model or bad input.
    """
    code = commands.check(**locals())
    if code:
        raise typer.Exit(code)


CategoryOpt = Annotated[
    str | None,
    typer.Option(
        "--category",
        help="foundation, industry, code, vision, speech, multimodal, science, embeddings.",
    ),
]
TaskOpt = Annotated[str | None, typer.Option("--task", help="e.g. text-generation, embeddings.")]
LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Only models whose weights can be downloaded (open, or on request) to run "
        "locally; whether this machine can run them: `canirun scan`.",
    ),
]
ApiOpt = Annotated[bool, typer.Option("--api", help="Only models used through an API.")]


@app.command("list")
def list_models(
    category: CategoryOpt = None,
    task: TaskOpt = None,
    local: LocalOpt = False,
    api: ApiOpt = False,
    as_json: JsonFlag = False,
    catalog_files: CatalogOpt = None,
) -> None:
    """List the catalog: every model and size, with its facts and their sources."""
    from canirun.catalog.query import filter_models
    from canirun.output.catalog_text import render_models
    from canirun.output.files import emit

    catalog = commands.load_catalog(catalog_files)
    models = filter_models(catalog, category=category, task=task, local=local, api=api)
    if as_json:
        from canirun.report import CatalogListing

        emit(commands.json_text(CatalogListing(tool=commands.tool(), models=models)))
    else:
        emit(render_models(models))


@app.command()
def frameworks(
    as_json: JsonFlag = False,
    hardware_file: HardwareOpt = None,
    models_dir: ModelsDirOpt = None,
    catalog_files: CatalogOpt = None,
    gpu: GpuOpt = None,
    vram: VramOpt = None,
    ram: RamOpt = None,
) -> None:
    """Which serving frameworks can run here, which are installed, and what they could serve."""
    commands.frameworks(**locals())


@app.command()
def gpus(as_json: JsonFlag = False, catalog_files: CatalogOpt = None) -> None:
    """The GPU table behind --gpu: memory, bandwidth, compute capability, with sources."""
    from canirun.output.catalog_text import render_gpus
    from canirun.output.files import emit

    catalog = commands.load_catalog(catalog_files)
    if as_json:
        from canirun.report import GpuListing

        emit(commands.json_text(GpuListing(tool=commands.tool(), gpus=catalog.gpus)))
    else:
        emit(render_gpus(catalog.gpus))


FLEET_FORMATS = ("markdown", "csv", "json", "html")


@app.command()
def fleet(
    paths: Annotated[
        list[str], typer.Argument(help="Report files, folders (their *.json) or globs.")
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="markdown (default), csv, json or html.")
    ] = "markdown",
    output: FleetOutputOpt = None,
    category: CategoryOpt = None,
) -> None:
    """Merge scan/check reports from many machines into one model x machine matrix.

    A machine is its hostname plus its hashed machine id: its newest full scan is
    the base, newer checks update the models they rated. What-if reports
    (--gpu/--vram/--ram), unreadable and foreign files are skipped with a warning
    and counted.
    """
    from canirun.fleet import expand, merge
    from canirun.output import fleet_formats
    from canirun.output.files import emit, say, write_atomic

    if fmt not in FLEET_FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(FLEET_FORMATS)}")
    merged = merge(expand(paths))

    for skipped in merged.skipped:
        say(f"canirun: warning: skipped {skipped.file}: {skipped.reason}")
    if not merged.machines:
        raise InputError(f"fleet: none of the {len(merged.skipped)} files is a readable report")
    if category is not None:
        from canirun.catalog.query import CATEGORIES

        if category not in CATEGORIES:
            raise InputError(f"--category: {category!r} is not one of {', '.join(CATEGORIES)}")
    view = fleet_formats.matrix(merged, category)
    render = {
        "markdown": fleet_formats.render_markdown,
        "csv": fleet_formats.render_csv,
        "json": fleet_formats.render_json,
        "html": fleet_formats.render_html,
    }[fmt]
    text = render(view)
    if output is not None:
        write_atomic(output, text)
        say(
            f"canirun: wrote {output}: {len(view.machines)} machines, {len(view.rows)} "
            f"models, {len(merged.skipped)} files skipped"
        )
    else:
        emit(text)


@app.command()
def schema() -> None:
    """Print the JSON Schema of every JSON canirun writes (reports, fleet, listings)."""
    import json

    from canirun.output.files import emit
    from canirun.report import report_schema

    emit(json.dumps(report_schema(), indent=2, sort_keys=True) + "\n")


DirsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--models-dir",
        help="Also look for GGUF files and model folders below DIR (repeatable).",
    ),
]
LocalRequireOpt = Annotated[
    str | None,
    typer.Option(
        "--require",
        help="Gate: the worst acceptable placement (gpu, multi-gpu, offload, cpu). Exit 1 "
        "when no model found here runs that well; in JUnit each model below it fails.",
    ),
]


NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Read every header again (the cache of what was read keeps only size and "
        "modification time of each file).",
    ),
]


@app.command("local")
def local(
    models_dir: DirsOpt = None,
    no_cache: NoCacheOpt = False,
    as_json: JsonFlag = False,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    github_summary: GithubOpt = False,
    require: LocalRequireOpt = None,
    hardware_file: HardwareOpt = None,
    catalog_files: CatalogOpt = None,
    gpu: GpuOpt = None,
    vram: VramOpt = None,
    ram: RamOpt = None,
    ram_bandwidth: RamBandwidthOpt = None,
    ctx: CtxOpt = commands.CTX,
    sequences: SequencesOpt = commands.SEQUENCES,
    kv_cache: KvOpt = commands.KV_CACHE,
    batch: BatchOpt = None,
    flash_attention: FlashOpt = None,
    framework: FrameworkOpt = None,
    nodes: NodesOpt = None,
    cluster: ClusterOpt = None,
    ray: RayOpt = None,
) -> None:
    """Find the models already on this machine and rate each one.

    Looks in the Hugging Face cache (HF_HUB_CACHE / HF_HOME), Ollama's store
    (OLLAMA_MODELS), LM Studio's models folder, llama.cpp's cache (LLAMA_CACHE)
    and every --models-dir. Reads headers only; what cannot be read is skipped
    and counted.
    """
    import os

    from canirun import options

    gate = options.gate_flag(require, None, False)
    catalog, host, opts, bandwidth, members = commands.setup(
        catalog_files=catalog_files,
        hardware_file=hardware_file,
        models_dir=None,
        gpu=gpu,
        vram=vram,
        ram=ram,
        ram_bandwidth=ram_bandwidth,
        ctx=ctx,
        sequences=sequences,
        kv_cache=kv_cache,
        batch=batch,
        resolution=None,
        seq_len=None,
        flash_attention=flash_attention,
        precision=None,
        framework=framework,
        nodes=nodes,
        cluster=cluster,
        ray=ray,
    )
    from canirun.evaluate import local_report

    report, _ = local_report(
        host,
        catalog,
        opts,
        os.environ,
        tuple(models_dir or ()),
        ram_bandwidth=bandwidth,
        cache=not no_cache,
        gate=gate,
        cluster=members,
    )
    commands.deliver(
        report,
        fmt=fmt,
        as_json=as_json,
        output=output,
        github_summary=github_summary,
        text=lambda: _local_text(report),
    )
    if report.requirement_met is False:
        raise typer.Exit(commands.EXIT_UNMET)


def _local_text(report: Any) -> str:
    from canirun.output.local_text import render_local
    from canirun.output.scan_text import use_colour

    return render_local(report, colour=use_colour())


def _command_name(info: Any) -> str:
    """The name typer gives a registered command (typer.main.get_command_name's rule)."""
    return str(info.name or info.callback.__name__.lower().replace("_", "-"))


def app_for(args: list[str]) -> typer.Typer:
    """The app, holding only the command that ``args`` name first, when they name one.

    typer turns every registered command into click's objects at each start (about 7 ms
    for all nine, 2 for one; issue 15), and only the named command can run: its options,
    help, errors and exit codes are the same either way. Anything else (no command, a
    root option first, an unknown name) gets the whole app, its help and suggestions."""
    import copy

    named = [i for i in app.registered_commands if args and _command_name(i) == args[0]]
    if len(named) != 1:
        return app
    one = copy.copy(app)
    one.registered_commands = named
    return one


def main(argv: list[str] | None = None) -> int:
    """Console entry point: runs the app and maps every outcome to an exit code."""
    import sys

    try:
        app_for(sys.argv[1:] if argv is None else argv)(args=argv, prog_name="canirun")
    except SystemExit as exc:  # typer's standalone mode ends every run this way
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_INPUT)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK
