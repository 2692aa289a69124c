"""Run the estimator over the catalog for one machine and assemble the report.

The glue between layers: it reads nothing itself except what the caller
passes (a host, a catalog, options), so the CLI stays thin and tests can call
it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from canirun.catalog.loader import Catalog, VariantRef
from canirun.envelope import envelope
from canirun.estimate.capacity import Capacity, ClusterNode, capacity
from canirun.estimate.frameworks import FrameworkStatus, framework_status
from canirun.estimate.placement import (
    GPU_HEADROOM_MIN,
    GPU_HEADROOM_SHARE,
    RAM_HEADROOM_MIN,
    RAM_HEADROOM_SHARE,
)
from canirun.estimate.rate import Options, rate_variant, summarize
from canirun.estimate.results import RATING_RECORDS, RUNNABLE, Result, Summary
from canirun.hardware.model import Host
from canirun.options import Gate
from canirun.records import evolve
from canirun.units import format_bytes

NO_GATE = Gate()
if TYPE_CHECKING:
    # The report models and name resolution are imported where they are used: `canirun
    # frameworks` needs neither, `scan` no name resolution (issue 15, start-up time).
    from canirun.catalog.local_model import LocalModel
    from canirun.hardware.cluster import Cluster
    from canirun.report import CheckReport, LocalReport, ScanReport
    from canirun.report_json import Pending
    from canirun.resolve import Match

HEADROOM = (
    f"kept free: {GPU_HEADROOM_SHARE:.0%} of each GPU (at least {format_bytes(GPU_HEADROOM_MIN)}), "
    f"{RAM_HEADROOM_SHARE:.0%} of usable RAM (at least {format_bytes(RAM_HEADROOM_MIN)})"
)


class Rated(msgspec.Struct, frozen=True):
    ref: VariantRef
    results: list[Result]
    summary: Summary


def machine_capacity(
    host: Host,
    catalog: Catalog,
    *,
    ram_bandwidth: int | None = None,
    cluster: Cluster | None = None,
) -> Capacity:
    installed = frozenset(host.hardware.software.frameworks or ())
    cap = capacity(
        host,
        catalog.gpus,
        installed=installed,
        ram_bandwidth=ram_bandwidth,
        backends=catalog.backends,
    )
    if cluster is None:
        return cap
    nodes = tuple(
        ClusterNode(name, capacity(h, catalog.gpus, backends=catalog.backends).gpus)
        for name, h in cluster.nodes
    )
    return msgspec.structs.replace(cap, nodes=nodes)


def cluster_info(cluster: Cluster | None) -> dict[str, Any] | None:
    """The report's `assumptions.cluster` (report.ClusterInfo), as data like the rest of the
    assumptions: validated where the report is, written as JSON without pydantic."""
    if cluster is None:
        return None
    nodes = []
    for name, h in cluster.nodes:
        gpus = h.hardware.gpus
        nodes.append(
            {
                "name": name,
                "gpus": len(gpus),
                "gpu": gpus[0].name if gpus else None,
                "gpu_memory_bytes": gpus[0].memory_total_bytes if gpus else None,
            }
        )
    notes = (
        "multi-node layouts follow vLLM: tensor parallel within a node, pipeline parallel "
        "across nodes, Ray as the executor; the network between nodes is assumed fast enough "
        "(InfiniBand or RoCE) and its latency is not in the speed estimate",
        *cluster.notes,
    )
    return {"source": cluster.source, "nodes": tuple(nodes), "notes": notes}


def rate_all(
    refs: Iterable[VariantRef],
    catalog: Catalog,
    cap: Capacity,
    opts: Options,
    per_ref: dict[str, Options] | None = None,
    workers: int = 1,
) -> list[Rated]:
    """Rate each variant; `per_ref` overrides the options for some (a tag's quant).
    ``workers`` > 1: shared out to that many processes where fanout finds it safe (the
    same answers, in the same order)."""

    def rate_one(ref: VariantRef) -> tuple[list[Result], Summary]:
        these = (per_ref or {}).get(ref.id, opts)
        results = rate_variant(ref, catalog, cap, these)
        return results, summarize(ref, results, catalog, cap, these)

    refs = list(refs)
    answers = _mapped(rate_one, refs, workers, RATING_RECORDS)
    return [Rated(ref, *answer) for ref, answer in zip(refs, answers, strict=True)]


def _mapped(fn: Any, refs: list[VariantRef], workers: int, records: tuple[type, ...] = ()) -> Any:
    if workers < 2:
        return [fn(ref) for ref in refs]
    from canirun.fanout import map_in_order

    return map_in_order(fn, refs, workers, records)


def framework_statuses(catalog: Catalog, cap: Capacity, workers: int = 1) -> list[FrameworkStatus]:
    """`canirun frameworks`: each framework's status and the variants it runs here. Only
    the results are needed, not each variant's summary (its largest-context search)."""
    from canirun.estimate.rate import serving_frameworks

    refs = list(catalog.variants())
    found = _mapped(lambda ref: serving_frameworks(ref, catalog, cap), refs, workers)
    serves: dict[str, list[str]] = {f.id: [] for f in catalog.frameworks}
    for ref, fids in zip(refs, found, strict=True):
        for fid in sorted(fids):
            serves.setdefault(fid, []).append(ref.id)
    return _with_models(catalog, cap, serves)


def statuses(catalog: Catalog, cap: Capacity, rated: list[Rated]) -> list[FrameworkStatus]:
    return _statuses(catalog, cap, [(item.summary.model_id, item.results) for item in rated])


def _statuses(
    catalog: Catalog, cap: Capacity, rated: list[tuple[str, list[Result]]]
) -> list[FrameworkStatus]:
    serves: dict[str, list[str]] = {f.id: [] for f in catalog.frameworks}
    for model_id, results in rated:
        runnable = {fw for r in results if r.verdict in RUNNABLE for fw in r.frameworks}
        for fid in runnable:
            serves.setdefault(fid, []).append(model_id)
    return _with_models(catalog, cap, serves)


def _with_models(
    catalog: Catalog, cap: Capacity, serves: dict[str, list[str]]
) -> list[FrameworkStatus]:
    out = []
    for fw in catalog.frameworks:
        status = framework_status(fw, cap)
        out.append(evolve(status, models=tuple(serves.get(fw.id, ()))))
    return out


def assumptions(
    cap: Capacity, opts: Options, host: Host, cluster: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The report's `assumptions` (report.Assumptions), as data: validated where the report
    is, and written as JSON without pydantic (report_json)."""
    memory = host.hardware.memory
    source = (
        "flag"
        if cap.ram_bandwidth_bytes_per_s != memory.bandwidth_bytes_per_s
        else memory.bandwidth_source
    )
    notes = [
        "context is capped at each model's native (trained) maximum; it is never raised to "
        "it by default, and a rope-scaled (YaRN) extension counts only with --extended-context",
        "KV cache sized per runtime: llama.cpp keeps n_swa + 512 cells for sliding-window "
        "layers (the whole context with --swa-full), vLLM and Transformers the window; MLA "
        "models cache the latent in llama.cpp and vLLM, full keys and values in Transformers",
        "decode speed = usable bandwidth x efficiency 0.5-0.6 / bytes read per token "
        "(active weights + KV cache at the full context)",
    ]
    if opts.workload.kv_cache_type in ("q8_0", "q4_0"):
        notes.append("a quantized KV cache needs flash attention in llama.cpp, so it is assumed on")
    notes += runtime_default_notes(opts)
    if source == "measured":
        notes.append(
            "RAM bandwidth: a copy test measured here on every usable core at once, "
            "as multi-threaded runtimes read memory; kept for this machine's next runs"
        )
    elif source and source.startswith("measured "):
        notes.append(
            f"RAM bandwidth: this machine's copy test ({source}): the figure kept from its "
            "last measurement on every usable core, so estimates stay put; "
            "--ram-bandwidth measure measures again"
        )
    return {
        "workload": opts.workload,
        "precisions": opts.precisions or (),
        "headroom": HEADROOM,
        "ram_bandwidth_bytes_per_s": cap.ram_bandwidth_bytes_per_s,
        "ram_bandwidth_source": source if cap.ram_bandwidth_bytes_per_s else None,
        "frameworks_installed": tuple(sorted(cap.installed)),
        "notes": tuple(notes),
        "cluster": cluster,
    }


def rate_local_models(
    items: Iterable[tuple[str, LocalModel]], catalog: Catalog, cap: Capacity, opts: Options
) -> list[Rated]:
    """Models read from files, each under its model id; files already on disk need no room."""
    items = list(items)
    if not items:
        return []  # a scan or a check by name: the local-file rating is not even imported
    from canirun.estimate.local import local_ref, rate_local

    rated = []
    for model_id, local in items:
        here = (
            cap
            if local.path.startswith(("http://", "https://"))
            else msgspec.structs.replace(cap, disk_free_bytes=None)
        )
        results, summary = rate_local(local, catalog, here, opts, model_id)
        rated.append(Rated(local_ref(local, catalog), results, summary))
    return rated


def runtime_default_notes(opts: Options) -> list[str]:
    """The runtime defaults the estimates follow, each with the version it applies from."""
    from canirun.catalog.rules import runtime_defaults

    followed = [d for d in runtime_defaults().default if not d.used.startswith("not followed")]
    if opts.workload.flash_attention is not None:
        followed = [d for d in followed if d.setting != "flash_attn"]
        state = "on" if opts.workload.flash_attention else "off"
        lines = [f"flash attention {state} (set on the command line)"]
    else:
        lines = []
    text = "; ".join(f"{d.framework} {d.setting} = {d.value} (since {d.since})" for d in followed)
    return [*lines, f"runtime defaults assumed: {text}"]


def _scan_data(
    host: Host,
    catalog: Catalog,
    opts: Options,
    ram_bandwidth: int | None,
    refs: Iterable[VariantRef] | None,
    kind: str,
    gate: Gate,
    cluster: Cluster | None = None,
    per_ref: dict[str, Options] | None = None,
    local: Iterable[tuple[str, LocalModel]] = (),
    workers: int = 1,
) -> tuple[dict[str, object], list[Rated]]:
    from canirun.options import meets

    cap = machine_capacity(host, catalog, ram_bandwidth=ram_bandwidth, cluster=cluster)
    variants = catalog.variants() if refs is None else refs
    rated = rate_all(variants, catalog, cap, opts, per_ref, workers)
    rated += rate_local_models(local, catalog, cap, opts)
    met = None
    if gate.active:
        # The gate is decided here, once: the exit code and every format (JUnit too) agree.
        rated = [
            msgspec.structs.replace(
                r, summary=evolve(r.summary, requirement_met=meets(r.results, gate))
            )
            for r in rated
        ]
        verdicts = [bool(r.summary.requirement_met) for r in rated]
        met = all(verdicts) if gate.every else any(verdicts)
    data = {
        # A check or local report, or a scan limited to some precisions or one framework,
        # is partial (it does not rate the whole catalog).
        **envelope(host, kind, partial=kind != "scan" or bool(opts.precisions or opts.framework)),
        "assumptions": assumptions(cap, opts, host, cluster_info(cluster)),
        "frameworks": statuses(catalog, cap, rated),
        "summary": [r.summary for r in rated],
        "requirement": gate.describe(
            {"scan": "model of the catalog", "local": "model found here"}.get(kind, "matched model")
        ),
        "requirement_met": met,
        "results": [res for r in rated for res in r.results],
    }
    return data, rated


def scan_report(
    host: Host,
    catalog: Catalog,
    opts: Options,
    *,
    ram_bandwidth: int | None = None,
    gate: Gate = NO_GATE,
    cluster: Cluster | None = None,
    workers: int = 1,
) -> tuple[Pending[ScanReport], list[Rated]]:
    """Every catalog model rated, as a report validated only when read (the command line
    writes its JSON from the data: report_json.Pending; the Python API reads ``.model``).
    ``workers``: processes the rating may use (``fanout.usable_workers``); the same report."""
    from canirun.report_json import Pending

    data, rated = _scan_data(
        host, catalog, opts, ram_bandwidth, None, "scan", gate, cluster, workers=workers
    )
    report: Pending[ScanReport] = Pending("ScanReport", data)
    return report, rated


def resolve_queries(queries: list[str], catalog: Catalog) -> list[tuple[str, Match]]:
    """Every query's matches, in order, without repeats; an unknown query is bad input."""
    from canirun.errors import InputError
    from canirun.local_eval import is_repo_id
    from canirun.resolve import resolve

    seen: set[str] = set()
    out: list[tuple[str, Match]] = []
    for query in queries:
        if not query.strip():
            raise InputError("check: an empty model name")
        found = resolve(query, catalog)
        if not found.matches:
            hint = f"; did you mean: {', '.join(found.suggestions)}?" if found.suggestions else ""
            if is_repo_id(query):
                hint += "; add --online to read it from the Hugging Face Hub"
            raise InputError(f"check: no model matches {query!r}{hint} (see `canirun list`)")
        for match in found.matches:
            if match.ref.id not in seen:
                seen.add(match.ref.id)
                out.append((query, match))
    return out


def _named_precisions(matched: list[tuple[str, Match]], opts: Options) -> dict[str, Options]:
    """A tag such as llama3:8b-instruct-q4_K_M rates that precision only; --precision wins."""
    if opts.precisions:
        return {}
    return {
        m.ref.id: msgspec.structs.replace(opts, precisions=(m.precision,))
        for _, m in matched
        if m.precision
    }


def check_report(
    host: Host,
    catalog: Catalog,
    opts: Options,
    queries: list[str],
    gate: Gate,
    *,
    ram_bandwidth: int | None = None,
    cluster: Cluster | None = None,
    online: bool = False,
    workers: int = 1,
) -> tuple[Pending[CheckReport], list[Rated]]:
    """The models the queries name (files and Hub repos too), as `canirun check` rates
    them: a report validated only when read (report_json.Pending)."""
    from canirun import local_eval
    from canirun.report_json import Pending
    from canirun.resolve import join_spec_words, vocabulary

    files: list[tuple[str, LocalModel, str]] = []
    names: list[str] = []
    queries = join_spec_words(queries, local_eval.is_path_query)
    for q in queries:
        if local_eval.is_path_query(q, lambda: vocabulary(catalog)):
            files.append((q, local_eval.read_query(q), "file"))
        elif online and local_eval.is_repo_id(q):
            files.append((q, local_eval.read_hub(q), "hub"))
        else:
            names.append(q)
    matched = resolve_queries(names, catalog) if names or not files else []
    ids = local_eval.unique_ids([local.name for _, local, _ in files])
    refs = [m.ref for _, m in matched]
    local = list(zip(ids, (f[1] for f in files), strict=True))
    named = _named_precisions(matched, opts)
    data, rated = _scan_data(
        host,
        catalog,
        opts,
        ram_bandwidth,
        refs,
        "check",
        gate,
        cluster,
        named,
        local,
        workers,
    )
    report: Pending[CheckReport] = Pending(
        "CheckReport",
        {
            **data,
            "query": tuple(queries),
            "matches": [
                {
                    "query": q,
                    "model_id": m.ref.id,
                    "how": m.how,
                    "precision": m.precision,
                    "note": m.note,
                }
                for q, m in matched
            ]
            + [
                {"query": q, "model_id": i, "how": how}
                for i, (q, _, how) in zip(ids, files, strict=True)
            ],
        },
    )
    return report, rated


def local_report(
    host: Host,
    catalog: Catalog,
    opts: Options,
    env: Mapping[str, str],
    models_dirs: tuple[Path, ...],
    *,
    ram_bandwidth: int | None = None,
    cache: bool = True,
    gate: Gate = NO_GATE,
    cluster: Cluster | None = None,
) -> tuple[LocalReport, list[Rated]]:
    """`canirun local`: find the models on this machine, read their headers, rate each."""
    import time

    from canirun import local_eval
    from canirun.report import LocalReport

    start = time.perf_counter()
    search = local_eval.search_local(env, models_dirs)
    read = local_eval.read_all(search, cache=cache)
    seconds = time.perf_counter() - start
    ids = local_eval.unique_ids([local.name for _, local in read])
    items = list(zip(ids, (local for _, local in read), strict=True))
    data, rated = _scan_data(
        host, catalog, opts, ram_bandwidth, [], "local", gate, cluster, local=items
    )
    found = [
        {
            "model_id": model_id,
            "store": f.store,
            "path": local.path,
            "format": local.format,
            "architecture": local.architecture,
            "precision": local.precision,
            "weights_bytes": local.weights_bytes,
            "files": len(local.files),
        }
        for model_id, (f, local) in zip(ids, read, strict=True)
    ]
    report = LocalReport.model_validate(
        {
            **data,
            "searched": tuple(search.searched),
            "found": found,
            "skipped": [{"path": s.path, "reason": s.reason} for s in search.skipped],
            "seconds": round(seconds, 3),
        }
    )
    return report, rated
