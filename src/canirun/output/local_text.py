"""The terminal view of `canirun local`: where it looked, each model found, what was skipped."""

from __future__ import annotations

from canirun.output import safe
from canirun.output.scan_text import render_assumptions, render_requirement, render_summary
from canirun.report import LocalReport

SHOW_SKIPPED = 10


def render_local(report: LocalReport, *, colour: bool = False) -> str:
    lines = ["Looked in:"]
    lines += [safe.line(f"  {where}") for where in report.searched] or [
        "  (no model folders on this machine)"
    ]
    count = len(report.found)
    lines.append(
        f"Found {count} model{'s' if count != 1 else ''} in {report.seconds:.2f} s "
        f"(headers only); {len(report.skipped)} skipped."
    )
    text = "\n".join(lines) + "\n"
    if report.found:
        text += render_summary(report, colour=colour)
    if report.skipped:
        shown = [safe.line(f"  {s.path}: {s.reason}") for s in report.skipped[:SHOW_SKIPPED]]
        more = len(report.skipped) - SHOW_SKIPPED
        if more > 0:
            shown.append(f"  ... and {more} more (see --json)")
        text += "\nSkipped:\n" + "\n".join(shown) + "\n"
    return text + render_assumptions(report.assumptions) + render_requirement(report)
