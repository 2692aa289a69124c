"""Reports for CI systems: Markdown (job summaries) and JUnit XML (test views).

JUnit has one test case per model variant: it passes when the model meets the
report's requirement (``--require``/``--min-tps``, decided in the report; without
one: runs here at all),
fails otherwise, and is skipped for API-only models, which no machine hosts.
GitHub, GitLab and Jenkins show these natively.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from canirun.estimate.results import RUNNABLE, Result, Summary
from canirun.output import safe
from canirun.output.labels import CATEGORY_TITLES
from canirun.output.scan_text import verdict_text
from canirun.report import ScanReport
from canirun.units import format_gib

_MD_HEADER = "| Model | Runs here | Precision | Framework | Needs | Max context | tok/s |"
_MD_RULE = "|---|---|---|---|---|---|---|"


def _best(summary: Summary, report: ScanReport) -> Result | None:
    for r in report.results:
        if (
            r.model_id == summary.model_id
            and r.precision == summary.precision
            and r.framework == summary.framework
        ):
            return r
    return None


def _cell(text: str) -> str:
    return safe.markdown_cell(text)


def _hardware_line(report: ScanReport) -> str:
    hw = report.hardware
    gpus = (
        ", ".join(f"{_cell(g.name)} ({format_gib(g.memory_total_bytes)})" for g in hw.gpus)
        or "no GPU"
    )
    cpu = _cell(hw.cpu.model or "unknown CPU")
    return (
        f"**{_cell(report.machine.hostname or 'this machine')}**: {cpu}, "
        f"{format_gib(hw.memory.total_bytes)} RAM, {gpus}"
    )


def render_markdown(report: ScanReport, title: str = "canirun") -> str:
    lines = [f"## {title}", "", _hardware_line(report), ""]
    if report.requirement:
        met = "met" if report.requirement_met else "NOT met"
        lines += [f"Requirement {met}: {_cell(report.requirement)}.", ""]
    for category, heading in CATEGORY_TITLES.items():
        rows = [s for s in report.summary if s.category == category]
        if not rows:
            continue
        lines += [f"### {heading}", "", _MD_HEADER, _MD_RULE]
        for s in rows:
            best = _best(s, report)
            speed = best.tokens_per_second if best else None
            tps = f"{speed.low:g}-{speed.high:g}" if speed and speed.low and speed.high else ""
            need = format_gib(best.memory.total_bytes) if best and best.memory else ""
            ctx = f"{s.max_context_tokens:,}" if s.max_context_tokens else ""
            cells = [
                s.name,
                verdict_text(s.verdict, best),
                s.precision or "",
                s.framework or "",
                need,
                ctx,
                tps,
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    w = report.assumptions.workload
    lines.append(
        f"Assumed: context {w.context_tokens:,} tokens (capped at each model's maximum), "
        f"{w.sequences} sequence(s), KV cache {w.kv_cache_type}; {report.assumptions.headroom}. "
        "Memory in GiB."
    )
    return "\n".join(lines) + "\n"


def _passes(summary: Summary) -> bool:
    """The report's own decision: the gate's when there is one, else "runs here"."""
    if summary.requirement_met is not None:
        return summary.requirement_met
    return summary.verdict in RUNNABLE


def _xml_safe(root: ET.Element) -> None:
    """Names and reasons come from catalogs and files: keep only what XML 1.0 allows."""
    for el in root.iter():
        if el.text:
            el.text = safe.xml(el.text)
        for key, value in el.attrib.items():
            el.set(key, safe.xml(value))


def render_junit(report: ScanReport) -> str:
    """JUnit XML: a suite per category, a case per model variant."""
    root = ET.Element("testsuites", name="canirun")
    wanted = report.requirement or "runs here"
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for category, heading in CATEGORY_TITLES.items():
        rows = [s for s in report.summary if s.category == category]
        if not rows:
            continue
        suite = ET.SubElement(root, "testsuite", name=heading)
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for s in rows:
            case = ET.SubElement(
                suite, "testcase", classname=f"canirun.{category}", name=s.model_id
            )
            counts["tests"] += 1
            detail = f"{s.name}: {s.verdict}"
            if s.precision:
                detail += f" ({s.precision} with {s.framework})"
            detail += f". {s.reason}"
            if s.verdict == "api-only":
                ET.SubElement(case, "skipped", message=detail)
                counts["skipped"] += 1
            elif not _passes(s):
                failure = ET.SubElement(case, "failure", message=f"does not meet: {wanted}")
                failure.text = detail
                counts["failures"] += 1
            else:
                ET.SubElement(case, "system-out").text = detail
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    _xml_safe(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
