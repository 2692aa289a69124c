"""`canirun local`: the models already on this machine, rated (registered by ``cli``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from canirun.cli import (
    BatchOpt,
    CatalogOpt,
    CtxOpt,
    FlashOpt,
    FormatOpt,
    FrameworkOpt,
    GithubOpt,
    GpuOpt,
    HardwareOpt,
    JsonFlag,
    KvOpt,
    OutputOpt,
    RamBandwidthOpt,
    RamOpt,
    SequencesOpt,
    VramOpt,
    _deliver,
    _setup,
)

DirsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--models-dir",
        help="Also look for GGUF files and model folders below DIR (repeatable).",
    ),
]
RequireOpt = Annotated[
    str | None,
    typer.Option(
        "--require",
        help="For --format junit: each model fails below this placement (gpu, multi-gpu, "
        "offload, cpu).",
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


def local(
    models_dir: DirsOpt = None,
    no_cache: NoCacheOpt = False,
    as_json: JsonFlag = False,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    github_summary: GithubOpt = False,
    require: RequireOpt = None,
    hardware_file: HardwareOpt = None,
    catalog_files: CatalogOpt = None,
    gpu: GpuOpt = None,
    vram: VramOpt = None,
    ram: RamOpt = None,
    ram_bandwidth: RamBandwidthOpt = None,
    ctx: CtxOpt = 4096,
    sequences: SequencesOpt = 1,
    kv_cache: KvOpt = "f16",
    batch: BatchOpt = None,
    flash_attention: FlashOpt = False,
    framework: FrameworkOpt = None,
) -> None:
    """Find the models already on this machine and rate each one.

    Looks in the Hugging Face cache (HF_HUB_CACHE / HF_HOME), Ollama's store
    (OLLAMA_MODELS), LM Studio's models folder, llama.cpp's cache (LLAMA_CACHE)
    and every --models-dir. Reads headers only; what cannot be read is skipped
    and counted.
    """
    import os

    from canirun import options

    level = options.gate_flag(require, None, False).level
    catalog, host, opts, bandwidth = _setup(
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
    )
    from canirun.evaluate import local_report
    from canirun.output.local_text import render_local
    from canirun.output.scan_text import use_colour

    report, _ = local_report(
        host,
        catalog,
        opts,
        os.environ,
        tuple(models_dir or ()),
        ram_bandwidth=bandwidth,
        cache=not no_cache,
    )
    _deliver(
        report,
        fmt=fmt,
        as_json=as_json,
        output=output,
        github_summary=github_summary,
        level=level,
        text=lambda: render_local(report, colour=use_colour()),
    )
