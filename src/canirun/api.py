"""canirun as a library: the same answers as the CLI, as typed report objects.

``probe()``, ``scan()``, ``check()`` and ``local()`` return the pydantic models the ``--json``
output is made from (``report.model_dump(mode="json")`` is that JSON), so a
notebook or script reads ``report.summary`` instead of parsing text. Bad input
raises ``canirun.InputError`` with the same one-line message the CLI prints.
The names and keyword arguments here are stable within a schema major version.

Example::

    import canirun
    report = canirun.check("llama 3.1 8b", ctx=8192)
    for row in report.summary:
        print(row.model_id, row.verdict)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

import msgspec

# The command line's defaults, written once (canirun.commands).
from canirun.commands import CTX, KV_CACHE, PREFER, SEQUENCES

if TYPE_CHECKING:
    from canirun.catalog.loader import Catalog
    from canirun.estimate.rate import Options
    from canirun.hardware.cluster import Cluster
    from canirun.hardware.model import Host
    from canirun.report import CheckReport, HardwareReport, LocalReport, ScanReport

PathLike = str | os.PathLike[str]


class Flags(TypedDict, total=False):
    """The common keywords of ``scan``/``check``, named and typed as ``prepare``'s."""

    catalog_files: Sequence[PathLike]
    hardware_file: PathLike | None
    models_dir: PathLike | None
    gpu: Sequence[str]
    vram: str | None
    ram: str | None
    ram_bandwidth: str | None
    ctx: int
    sequences: int
    kv_cache: str
    batch: int | None
    resolution: int | None
    seq_len: int | None
    flash_attention: bool | None
    precision: Sequence[str]
    framework: str | None
    nodes: int | None
    cluster: PathLike | None
    ray: str | None


class Prepared(msgspec.Struct, frozen=True):
    """What every rating command starts from: catalog, machine, options."""

    catalog: Catalog
    host: Host
    options: Options
    ram_bandwidth: int | None
    cluster: Cluster | None = None


def prepare(
    *,
    catalog_files: Sequence[PathLike] = (),
    hardware_file: PathLike | None = None,
    models_dir: PathLike | None = None,
    gpu: Sequence[str] = (),
    vram: str | None = None,
    ram: str | None = None,
    ram_bandwidth: str | None = None,
    ctx: int = CTX,
    sequences: int = SEQUENCES,
    kv_cache: str = KV_CACHE,
    batch: int | None = None,
    resolution: int | None = None,
    seq_len: int | None = None,
    flash_attention: bool | None = None,
    extended_context: bool = False,
    swa_full: bool = False,
    precision: Sequence[str] = (),
    framework: str | None = None,
    nodes: int | None = None,
    cluster: PathLike | None = None,
    ray: str | None = None,
    prefer: str = PREFER,
) -> Prepared:
    """Turn the common flags of ``scan``/``check`` (as the CLI spells them) into inputs.

    ``ram_bandwidth`` is a figure such as "80GB/s", "measure" to run the short RAM
    copy test again (by default the figure kept from this machine's last test is
    reused, see hardware.bandwidth_cache), or "off" to skip it; it is never measured
    for another machine (``hardware_file`` or ``ram``), because this machine's speed
    says nothing about that one.
    ``nodes`` rates a cluster of that many machines like this one (after the
    what-ifs); ``cluster`` a folder with one report per node, whose largest node
    is the machine rated unless ``hardware_file`` or a what-if says otherwise;
    ``ray`` the nodes of a running Ray cluster ("auto" or its address), probed there.
    """
    from canirun import options
    from canirun.catalog import load_catalog
    from canirun.errors import InputError
    from canirun.whatif import WhatIf

    catalog = load_catalog(tuple(str(p) for p in catalog_files))
    what = WhatIf(
        gpus=tuple(gpu),
        vram=options.size_flag("--vram", vram),
        ram=options.size_flag("--ram", ram),
    )
    wl = options.workload(
        ctx=ctx,
        sequences=sequences,
        kv_cache=kv_cache,
        batch=batch,
        resolution=resolution,
        seq_len=seq_len,
        flash_attention=flash_attention,
        extended_context=extended_context,
        swa_full=swa_full,
    )
    opts = options.rate_options(wl, list(precision), framework, catalog, prefer)
    measure, bandwidth, refresh = options.bandwidth_flag(ram_bandwidth)
    given = [flag for flag, v in (("--nodes", nodes), ("--cluster", cluster), ("--ray", ray)) if v]
    if len(given) > 1:
        raise InputError(f"{' and '.join(given)} describe the cluster twice: give one")
    members: Cluster | None = None
    if cluster is not None or ray is not None:
        from canirun.hardware.cluster import largest, load_cluster, load_ray

        members = load_cluster(Path(cluster)) if cluster is not None else load_ray(str(ray))
        if hardware_file is None and not what.active:
            host = largest(members)
            return Prepared(catalog, host, opts, bandwidth, members)
    if what.ram is not None or hardware_file is not None:
        measure = False
    host = options.host_for(
        _path(hardware_file),
        _path(models_dir),
        what,
        catalog,
        measure_bandwidth=measure,
        refresh_bandwidth=refresh,
    )
    if nodes is not None:
        from canirun.hardware.cluster import identical_nodes

        members = identical_nodes(host, nodes)
    return Prepared(catalog, host, opts, bandwidth, members)


def _path(value: PathLike | None) -> Path | None:
    return None if value is None else Path(value)


def probe(
    *, hardware_file: PathLike | None = None, measure_bandwidth: bool = False
) -> HardwareReport:
    """This machine (or the one a hardware file describes), as `canirun hardware --json`."""
    from canirun.envelope import envelope
    from canirun.hardware import load_host
    from canirun.report import HardwareReport

    host = load_host(_path(hardware_file), None, measure_bandwidth=measure_bandwidth)
    return HardwareReport.model_validate(envelope(host, "hardware"))


def scan(**flags: Unpack[Flags]) -> ScanReport:
    """Every catalog model rated, as `canirun scan --json`; keywords as in ``prepare``."""
    from canirun.evaluate import scan_report

    p = prepare(**flags)
    report, _ = scan_report(
        p.host, p.catalog, p.options, ram_bandwidth=p.ram_bandwidth, cluster=p.cluster
    )
    return report.model


def check(
    query: str | Sequence[str],
    *,
    require: str | None = None,
    min_tps: float | None = None,
    every: bool = False,
    online: bool = False,
    **flags: Unpack[Flags],
) -> CheckReport:
    """The models a query names, as `canirun check QUERY --json`.

    A query that is a path rates that file or folder; ``online`` reads ORG/NAME
    queries from the Hugging Face Hub. ``require``/``min_tps``/``every`` are the CI
    gate; its outcome is ``report.requirement_met`` (None without a gate), never an
    exception.
    """
    from canirun import options
    from canirun.evaluate import check_report

    gate = options.gate_flag(require, min_tps, every)
    queries = [query] if isinstance(query, str) else list(query)
    p = prepare(**flags)
    report, _ = check_report(
        p.host,
        p.catalog,
        p.options,
        queries,
        gate,
        ram_bandwidth=p.ram_bandwidth,
        cluster=p.cluster,
        online=online,
    )
    return report.model


def local(
    *, models_dirs: Sequence[PathLike] = (), cache: bool = True, **flags: Unpack[Flags]
) -> LocalReport:
    """The models already on this machine, as `canirun local --json`."""
    from canirun.evaluate import local_report

    p = prepare(**flags)
    report, _ = local_report(
        p.host,
        p.catalog,
        p.options,
        os.environ,
        tuple(Path(d) for d in models_dirs),
        ram_bandwidth=p.ram_bandwidth,
        cache=cache,
    )
    return report
