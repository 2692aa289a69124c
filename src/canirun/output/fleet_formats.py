"""The fleet matrix as Markdown, CSV, JSON and a self-contained HTML page.

The HTML page has no external assets and makes no network request: inline CSS
for the coloured cells, a few lines of inline JavaScript to filter by category
and sort by any column. Every text from a report is escaped.
"""

from __future__ import annotations

import csv
import html
import io
from collections import Counter

from canirun.envelope import now_utc
from canirun.estimate.results import RUNNABLE
from canirun.fleet import Fleet
from canirun.output import safe
from canirun.output.scan_text import CATEGORY_TITLES, VERDICT_TEXT
from canirun.report import FleetCell, FleetReport, FleetRow
from canirun.units import format_gib

_SHORT = VERDICT_TEXT
_COLOURS = {
    "gpu": "#2e7d32",
    "multi-gpu": "#558b2f",
    "multi-node": "#689f38",
    "offload": "#f9a825",
    "cpu": "#0277bd",
    "too-big": "#c62828",
    "unsupported": "#6d4c41",
    "api-only": "#6a1b9a",
    "unknown": "#757575",
}
_RANK = {v: i for i, v in enumerate(_SHORT)}


def fleet_report(fleet: Fleet) -> FleetReport:
    from canirun import __version__

    rows = []
    order = {c: i for i, c in enumerate(CATEGORY_TITLES)}
    models = sorted(fleet.models, key=lambda m: order.get(m[2], len(order)))  # stable in-category
    for model_id, name, category in models:
        cells = []
        for m in fleet.machines:
            cell = m.cells.get(model_id)
            if cell is not None:
                cells.append(
                    {
                        "machine": m.key,
                        "verdict": cell.verdict,
                        "precision": cell.precision,
                        "framework": cell.framework,
                        "tokens_per_second": cell.tokens_per_second,
                    }
                )
        rows.append({"model_id": model_id, "name": name, "category": category, "cells": cells})
    return FleetReport.model_validate(
        {
            "tool": {"name": "canirun", "version": __version__},
            "created_at": now_utc(),
            "machines": [
                {
                    "key": m.key,
                    "hostname": m.hostname,
                    "machine_id": m.machine_id,
                    "created_at": m.created_at,
                    "file": m.file,
                    "schema_version": m.schema_version,
                    "cpu": m.cpu,
                    "ram_bytes": m.ram_bytes,
                    "gpus": m.gpus,
                    "partial": m.partial,
                }
                for m in fleet.machines
            ],
            "rows": rows,
            "skipped": [{"file": s.file, "reason": s.reason} for s in fleet.skipped],
            "superseded": fleet.superseded,
            "partial_merged": fleet.partial_merged,
        }
    )


def _cell_text(cell: FleetCell | None) -> str:
    if cell is None:
        return ""
    text = _SHORT.get(cell.verdict, cell.verdict)
    runs = cell.verdict in RUNNABLE
    return f"{text} {cell.precision}" if cell.precision and runs else text


def _row_texts(report: FleetReport, row: FleetRow) -> list[str]:
    by_machine = {c.machine: c for c in row.cells}
    return [_cell_text(by_machine.get(m.key)) for m in report.machines]


def _labels(report: FleetReport) -> list[str]:
    """Hostnames, with a short machine id where two machines share one."""
    counts = Counter(m.hostname for m in report.machines)
    labels = [
        m.hostname if counts[m.hostname] < 2 else f"{m.hostname} ({(m.machine_id or '?')[:8]})"
        for m in report.machines
    ]
    return [
        f"{label} (partial)" if m.partial else label
        for label, m in zip(labels, report.machines, strict=True)
    ]


def render_markdown(report: FleetReport) -> str:
    labels = _labels(report)
    lines = ["## canirun fleet", ""]
    lines.append(
        f"{len(report.machines)} machines, {len(report.rows)} models; "
        f"{len(report.skipped)} files skipped, {report.superseded} older reports replaced, "
        f"{report.partial_merged} partial reports (checks) merged in."
    )
    cell = safe.markdown_cell
    header = " | ".join(cell(label) for label in labels)
    lines += ["", f"| Model | {header} |", "|---" * (len(labels) + 1) + "|"]
    for row in report.rows:
        texts = " | ".join(cell(t) for t in _row_texts(report, row))
        lines.append(f"| {cell(row.name)} | {texts} |")
    if report.skipped:
        lines += ["", "Skipped files:", ""]
        lines += [f"- `{safe.markdown_code(s.file)}`: {cell(s.reason)}" for s in report.skipped]
    return "\n".join(lines) + "\n"


def render_csv(report: FleetReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cell = safe.csv_cell
    writer.writerow([cell(t) for t in ("model_id", "name", "category", *_labels(report))])
    for row in report.rows:
        texts = (row.model_id, row.name, row.category, *_row_texts(report, row))
        writer.writerow([cell(t) for t in texts])
    return out.getvalue()


_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 6px;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0}td.v{color:#fff;text-align:center}
.legend span{display:inline-block;color:#fff;padding:2px 6px;margin-right:4px;border-radius:3px}
"""
_SCRIPT = """
const table=document.getElementById('matrix');
document.getElementById('category').addEventListener('change',e=>{
  for(const tr of table.tBodies[0].rows){
    tr.hidden=e.target.value!==''&&tr.dataset.category!==e.target.value;}});
table.tHead.addEventListener('click',e=>{
  const th=e.target.closest('th');if(!th)return;
  const col=th.cellIndex,asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
  const key=tr=>{const td=tr.cells[col];return td.dataset.rank!==undefined?
    Number(td.dataset.rank):td.textContent.toLowerCase();};
  const rows=[...table.tBodies[0].rows].sort((a,b)=>{const x=key(a),y=key(b);
    return (x<y?-1:x>y?1:0)*(asc?1:-1);});
  rows.forEach(r=>table.tBodies[0].appendChild(r));});
"""


def render_html(report: FleetReport) -> str:
    e = html.escape
    labels = _labels(report)
    head = ["<th>Model</th>", "<th>Category</th>"]
    for label, m in zip(labels, report.machines, strict=True):
        detail = f"{m.cpu or '?'}; {format_gib(m.ram_bytes)} RAM; {', '.join(m.gpus) or 'no GPU'}"
        detail += f"; report {m.created_at}"
        head.append(f'<th title="{e(detail)}">{e(label)}</th>')
    body = []
    for row in report.rows:
        tds = [
            f"<td>{e(row.name)}</td>",
            f"<td>{e(CATEGORY_TITLES.get(row.category, row.category))}</td>",
        ]
        by_machine = {c.machine: c for c in row.cells}
        for m in report.machines:
            cell = by_machine.get(m.key)
            if cell is None:
                tds.append('<td data-rank="99"></td>')
                continue
            tip = f"{cell.verdict}"
            if cell.precision:
                tip += f", {cell.precision} with {cell.framework}"
            if cell.tokens_per_second:
                tip += f", ~{cell.tokens_per_second:g} tok/s"
            colour = _COLOURS.get(cell.verdict, "#757575")
            rank = _RANK.get(cell.verdict, 98)
            tds.append(
                f'<td class="v" data-rank="{rank}" style="background:{colour}" '
                f'title="{e(tip)}">{e(_cell_text(cell))}</td>'
            )
        body.append(f'<tr data-category="{e(row.category)}">' + "".join(tds) + "</tr>")
    options = "".join(
        f'<option value="{e(c)}">{e(t)}</option>'
        for c, t in CATEGORY_TITLES.items()
        if any(r.category == c for r in report.rows)
    )
    legend = "".join(
        f'<span style="background:{_COLOURS[v]}">{e(t)}</span>' for v, t in _SHORT.items()
    )
    skipped = "".join(f"<li><code>{e(s.file)}</code>: {e(s.reason)}</li>" for s in report.skipped)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>canirun fleet</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>canirun fleet</h1><p>{len(report.machines)} machines, {len(report.rows)} models, "
        f"written {e(report.created_at)}; {len(report.skipped)} files skipped, "
        f"{report.superseded} older reports replaced, {report.partial_merged} partial reports "
        "(checks) merged in. Click a column to sort.</p>"
        f'<p><label>Category <select id="category"><option value="">all</option>{options}'
        f'</select></label></p><p class="legend">{legend}</p>'
        f'<table id="matrix"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        + (f"<h2>Skipped files</h2><ul>{skipped}</ul>" if skipped else "")
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )
