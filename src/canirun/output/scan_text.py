"""The terminal view of a scan or check: the best way to run each model here, by category.

Plain aligned text (readable in CI logs and pipes); colour only on a terminal
that wants it (not with NO_COLOR or TERM=dumb). Memory is GiB, speed tokens/s.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from canirun.estimate.frameworks import FrameworkStatus
from canirun.estimate.results import Result, Summary
from canirun.output import safe
from canirun.output.labels import CATEGORY_TITLES, VERDICT_TEXT
from canirun.units import format_gib

if TYPE_CHECKING:  # `canirun frameworks` renders with cut() and needs no report models
    from canirun.report import Assumptions, ScanReport

COLOURS = {
    "gpu": "32",
    "multi-gpu": "32",
    "multi-node": "32",
    "offload": "33",
    "cpu": "36",
    "too-big": "31",
    "unsupported": "31",
    "api-only": "35",
    "unknown": "33",
}


def use_colour(stream: object | None = None) -> bool:
    isatty = getattr(sys.stdout if stream is None else stream, "isatty", None)
    return bool(
        isatty
        and isatty()
        and "NO_COLOR" not in os.environ
        and os.environ.get("TERM", "") != "dumb"
    )


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def verdict_text(verdict: str, result: Result | None) -> str:
    text = VERDICT_TEXT[verdict]
    if verdict == "offload" and result and result.gpu_layers is not None:
        text += f" {result.gpu_layers}/{result.total_layers}"
    if verdict == "multi-gpu" and result and result.gpus:
        text = f"{len(result.gpus)} GPUs"
    if verdict == "multi-node" and result and result.parallel:
        p = result.parallel
        text = f"{p.nodes} nodes {p.tensor}x{p.pipeline}"
    if result is not None and result.disk_fits is False:
        text += ", no disk"
    return text


def _need(result: Result | None) -> str:
    if result is None or result.memory is None:
        return ""
    return format_gib(result.memory.total_bytes)


def speed_range(low: float, high: float) -> str:
    return f"{low:.0f}-{high:.0f}" if high >= 10 else f"{low:.1f}-{high:.1f}"


def _speed(result: Result | None) -> str:
    speed = result.tokens_per_second if result else None
    if speed is None or speed.low is None or speed.high is None:
        return ""
    return speed_range(speed.low, speed.high)


def _ctx(summary: Summary) -> str:
    return f"{summary.max_context_tokens:,}" if summary.max_context_tokens else ""


COLUMNS = (
    ("Model", 30),
    ("Runs here", 16),
    ("Precision", 9),
    ("Framework", 21),
    ("Needs", 10),
    ("Max context", 11),
    ("tok/s", 9),
)


def _row(cells: Iterable[str], colour: str | None = None) -> str:
    # Cells are made safe before colouring: our escape codes are the only ones left.
    parts = [
        f"{cut(safe.line(cell), width):<{width}}"
        for (_, width), cell in zip(COLUMNS, cells, strict=False)
    ]
    line = "  ".join(parts).rstrip()
    return f"\x1b[{colour}m{line}\x1b[0m" if colour else line


def _best_result(summary: Summary, results: dict[str, list[Result]]) -> Result | None:
    for r in results.get(summary.model_id, []):
        if r.precision == summary.precision and r.framework == summary.framework:
            return r
    rows = results.get(summary.model_id, [])
    return rows[0] if rows else None


def render_summary(report: ScanReport, *, colour: bool = False, why: bool = True) -> str:
    by_model: dict[str, list[Result]] = {}
    for r in report.results:
        by_model.setdefault(r.model_id, []).append(r)
    lines: list[str] = []
    for category, title in CATEGORY_TITLES.items():
        rows = [s for s in report.summary if s.category == category]
        if not rows:
            continue
        lines += ["", title, _row(c for c, _ in COLUMNS)]
        for s in rows:
            best = _best_result(s, by_model)
            cells = [
                s.name,
                verdict_text(s.verdict, best),
                s.precision or "",
                s.framework or "",
                _need(best),
                _ctx(s),
                _speed(best),
            ]
            lines.append(_row(cells, COLOURS[s.verdict] if colour else None))
            if why and s.reason:
                lines.append(f"    {cut(safe.line(s.reason), 110)}")
    return "\n".join(lines) + "\n"


def render_frameworks(statuses: Iterable[FrameworkStatus]) -> str:
    here, elsewhere = [], []
    for st in statuses:
        mark = " (installed)" if st.installed else ""
        if st.runs_here:
            here.append(f"{st.name}{mark}")
        else:
            elsewhere.append(f"{st.name}: {'; '.join(st.reasons) or 'unknown'}")
    lines = ["", "Frameworks that can run here: " + (", ".join(here) or "none")]
    if elsewhere:
        lines.append("Not here:")
        lines += [f"  {line}" for line in elsewhere]
    return "\n".join(safe.line(line) for line in lines) + "\n"


def render_assumptions(a: Assumptions) -> str:
    w = a.workload
    parts = [
        f"context {w.context_tokens:,} tokens (capped at each model's maximum)",
        f"{w.sequences} sequence{'s' if w.sequences != 1 else ''}",
        f"KV cache {w.kv_cache_type}",
    ]
    if w.resolution:
        parts.append(f"{w.resolution} px images")
    parts.append(f"batch {w.batch}" if w.batch else "batch 1 (32 sentences for embeddings)")
    text = "Assumed: " + ", ".join(parts) + f"; {a.headroom}."
    if a.ram_bandwidth_bytes_per_s:
        text += (
            f" RAM bandwidth {a.ram_bandwidth_bytes_per_s / 1e9:.0f} GB/s "
            f"({a.ram_bandwidth_source})."
        )
    return (
        "\n" + safe.line(text) + "\nMemory in GiB; tok/s is an estimated decode range. "
        "Details: --json or check --explain.\n"
    )


def render_requirement(report: ScanReport) -> str:
    """The gate's outcome, last, where a CI log reader looks; empty without a gate."""
    if report.requirement is None:
        return ""
    state = "met" if report.requirement_met else "NOT met"
    return safe.line(f"Requirement {state}: {report.requirement}.") + "\n"
