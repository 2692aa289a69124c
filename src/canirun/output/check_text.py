"""The terminal view of `canirun check`: every matched variant, every precision."""

from __future__ import annotations

from canirun.estimate.faster import speed_of
from canirun.estimate.results import RUNNABLE, Result, Summary
from canirun.output import safe
from canirun.output.scan_text import (
    COLOURS,
    cut,
    render_assumptions,
    render_requirement,
    speed_range,
    verdict_text,
)
from canirun.report import CheckReport, MatchInfo
from canirun.units import format_gib

_COLUMNS = (
    ("Precision", 10),
    ("Runs here", 16),
    ("Framework", 21),
    ("Needs", 10),
    ("GPU layers", 10),
    ("tok/s", 12),
)


def _cells(r: Result) -> list[str]:
    layers = f"{r.gpu_layers}/{r.total_layers}" if r.gpu_layers is not None else ""
    speed = r.tokens_per_second
    tps = ""
    if speed is not None and speed.low is not None and speed.high is not None:
        tps = speed_range(speed.low, speed.high)
    need = format_gib(r.memory.total_bytes) if r.memory else ""
    return [r.precision or "", verdict_text(r.verdict, r), r.framework or "", need, layers, tps]


def _row(cells: list[str], colour: str | None) -> str:
    # Cells are made safe before colouring: our escape codes are the only ones left.
    line = "  ".join(
        f"{cut(safe.line(c), w):<{w}}" for (_, w), c in zip(_COLUMNS, cells, strict=False)
    ).rstrip()
    line = "  " + line
    return f"\x1b[{colour}m{line}\x1b[0m" if colour else line


def _best_lines(s: Summary) -> list[str]:
    if s.verdict in RUNNABLE:
        where = {
            "gpu": "on the GPU",
            "multi-gpu": "across GPUs",
            "multi-node": "across nodes",
            "offload": "on GPU + RAM",
            "cpu": "on the CPU",
        }[s.verdict]
        ctx = f", up to {s.max_context_tokens:,} tokens of context" if s.max_context_tokens else ""
        lines = [f"  Recommended here: {s.precision} with {s.framework} {where}{ctx}."]
        return lines + [f"    - {why}" for why in s.why]  # each made safe as its own line
    return [f"  Verdict: {verdict_text(s.verdict, None)}. {s.reason}"]


def _quality_line(s: Summary, results: list[Result]) -> str | None:
    """The highest-quality option that runs, when the recommendation is another one."""
    top = s.best_quality
    if top is None or (top.precision, top.framework) == (s.precision, s.framework):
        return None
    row = next(
        (r for r in results if (r.precision, r.framework) == (top.precision, top.framework)), None
    )
    speed = speed_of(row) if row else None
    tps = f", {speed_range(*speed)} tok/s" if speed else ""
    where = verdict_text(top.verdict, row)
    return f"  Highest quality here: {top.precision} with {top.framework} ({where}{tps})."


def _faster_line(s: Summary) -> str | None:
    """The summary's quicker option (decided by estimate.faster), in words."""
    f = s.faster
    if f is None:
        return None
    return (
        f"  Faster here: {f.precision} with {f.framework}, {speed_range(f.low, f.high)} "
        f"tok/s (vs {speed_range(f.best_low, f.best_high)})."
    )


def _explain(r: Result) -> list[str]:
    lines = [f"  {r.precision or '-'} with {r.framework or '-'}:"]
    if r.memory:
        lines += [f"      {line}" for line in r.memory.breakdown]
        lines.append(
            f"      total {format_gib(r.memory.total_bytes)} = weights + KV cache + overhead"
        )
    lines += [f"      why: {reason}" for reason in r.reasons]
    speed = r.tokens_per_second
    if speed is not None:
        eff = f"{speed.efficiency[0]}-{speed.efficiency[1]}"
        if speed.low is not None and speed.bytes_per_token and not speed.bandwidth_bytes_per_s:
            # GPU + RAM: two bandwidths, named in the note.
            lines.append(
                f"      speed: {speed.bytes_per_token / 1e9:.2f} GB per token, {speed.note}; "
                f"x {eff} = {speed.low}-{speed.high} tok/s"
            )
        elif speed.low is not None and speed.device == "cpu" and speed.note:
            # CPU decode: memory, compute and fixed terms, all in the note.
            lines.append(f"      speed: {speed.low}-{speed.high} tok/s, {speed.note}")
        elif speed.low is not None and speed.bytes_per_token:
            bw = f"{(speed.bandwidth_bytes_per_s or 0) / 1e9:.0f} GB/s"
            lines.append(
                f"      speed: {bw} x {speed.efficiency[0]}-{speed.efficiency[1]} / "
                f"{speed.bytes_per_token / 1e9:.2f} GB per token = {speed.low}-{speed.high} tok/s"
                + (f" ({speed.note})" if speed.note else "")
            )
        elif speed.note:
            lines.append(f"      speed: {speed.note}")
        if speed.prefill_tokens_per_second is not None:
            lines.append(
                f"      prefill: {speed.prefill_note} = {speed.prefill_tokens_per_second:g} tok/s; "
                f"time to first token for {r.context_tokens or 0:,} tokens: "
                f"{speed.time_to_first_token_s:g} s (estimate)"
            )
        elif speed.prefill_note:
            lines.append(f"      prefill: {speed.prefill_note}")
    return lines


def _heading(match: MatchInfo, s: Summary) -> list[str]:
    if match.how in ("file", "hub"):
        origin = "read from the Hub" if match.how == "hub" else "read from the file"
        head = f"{s.name}  ({origin}: {match.query})"
    else:
        head = f"{s.name}  ({match.model_id}; {match.how} match for {match.query!r})"
    lines = ["", safe.line(head)]
    if match.precision:
        lines.append(safe.line(f"  precision {match.precision}, as the name says"))
    if match.note:
        lines.append(safe.line(f"  note: {match.note}"))
    return lines


def render_check(report: CheckReport, *, explain: bool = False, colour: bool = False) -> str:
    by_model: dict[str, list[Result]] = {}
    for r in report.results:
        by_model.setdefault(r.model_id, []).append(r)
    summaries = {s.model_id: s for s in report.summary}
    lines: list[str] = []
    for match in report.matches:
        s = summaries[match.model_id]
        results = by_model.get(match.model_id, [])
        lines += _heading(match, s)
        runnable = [r for r in results if r.precision is not None]
        if runnable:
            lines.append(_row([t for t, _ in _COLUMNS], None))
            for r in runnable:
                lines.append(_row(_cells(r), COLOURS[r.verdict] if colour else None))
        more = [*_best_lines(s), _quality_line(s, results) or "", _faster_line(s) or ""]
        if explain:
            for r in results:
                more += _explain(r)
            sources = results[0].sources if results else ()
            if sources:
                more.append("  sources: " + ", ".join(sources))
        lines += [safe.line(text) for text in more if text]
    return (
        "\n".join(lines)
        + "\n"
        + render_assumptions(report.assumptions)
        + render_requirement(report)
    )
