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
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from canirun.envelope import now_utc
from canirun.estimate.results import RUNNABLE
from canirun.fleet import Cell, Fleet, MachineReport, Skipped
from canirun.output import safe
from canirun.output.labels import CATEGORY_TITLES, VERDICT_TEXT
from canirun.records import Record, record
from canirun.units import format_gib

if TYPE_CHECKING:
    from canirun.report import FleetReport

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


@record(slots=True)
class Matrix(Record):
    """The merged fleet as the renderers show it: models in category order (only one
    category with --category), each machine's cell read from its own column.

    Markdown, CSV and HTML render from this, never from the JSON report's models: a
    fleet of 1,000 machines has 178,000 cells, and building a pydantic object for
    each would cost more than reading the reports.
    """

    machines: Sequence[MachineReport]
    rows: tuple[tuple[str, str, str], ...]  # (model_id, name, category)
    skipped: Sequence[Skipped]
    superseded: int
    partial_merged: int
    created_at: str


def matrix(fleet: Fleet, category: str | None = None) -> Matrix:
    order = {c: i for i, c in enumerate(CATEGORY_TITLES)}
    models = sorted(fleet.models, key=lambda m: order.get(m[2], len(order)))  # stable in-category
    return Matrix(
        machines=fleet.machines,
        rows=tuple(m for m in models if category is None or m[2] == category),
        skipped=fleet.skipped,
        superseded=fleet.superseded,
        partial_merged=fleet.partial_merged,
        created_at=now_utc(),
    )


def _rows(view: Matrix) -> Iterator[dict[str, Any]]:
    """The JSON report's rows, as plain data, one at a time."""
    keys = [m.key for m in view.machines]
    for (model_id, name, category), cells in zip(view.rows, _rows_of_cells(view), strict=True):
        yield {
            "model_id": model_id,
            "name": name,
            "category": category,
            "cells": _cells_of(keys, cells),
        }


def _cells_of(keys: list[str], row: tuple[Cell | None, ...]) -> list[dict[str, Any]]:
    cells = []
    for key, cell in zip(keys, row, strict=True):
        if cell is not None:
            cells.append(
                {
                    "machine": key,
                    "verdict": cell.verdict,
                    "precision": cell.precision,
                    "framework": cell.framework,
                    "tokens_per_second": cell.tokens_per_second,
                }
            )
    return cells


def fleet_report(fleet: Fleet | Matrix, *, with_rows: bool = True) -> FleetReport:
    from canirun import __version__
    from canirun.report import FleetReport, FleetRow  # JSON only: the others need no models

    view = fleet if isinstance(fleet, Matrix) else matrix(fleet)
    rows = [FleetRow.model_validate(r) for r in _rows(view)] if with_rows else []
    return FleetReport.model_validate(
        {
            "tool": {"name": "canirun", "version": __version__},
            "created_at": view.created_at,
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
                for m in view.machines
            ],
            "rows": rows,
            "skipped": [{"file": s.file, "reason": s.reason} for s in view.skipped],
            "superseded": view.superseded,
            "partial_merged": view.partial_merged,
        }
    )


# In the indent-2 layout a newline and two spaces start a top-level key (JSON strings
# hold no raw newline), so this is the report's own `rows`, written empty.
_NO_ROWS = '\n  "rows": [],\n'


def render_json(view: Matrix) -> str:
    """The `fleet` JSON report: byte for byte ``jsonsafe.dumps_model(fleet_report(view),
    indent=2)`` and a newline, but built and written one row at a time, so that a
    fleet's 178,000 cells are never all pydantic objects at once (time and memory)."""
    from canirun import jsonsafe
    from canirun.report import FleetRow

    frame = jsonsafe.dumps_model(fleet_report(view, with_rows=False), indent=2)
    if not view.rows:
        return frame + "\n"
    before, marker, after = frame.partition(_NO_ROWS)
    if not marker:  # never in canirun's layout; the slow way still gives the same bytes
        return jsonsafe.dumps_model(fleet_report(view), indent=2) + "\n"
    parts = [before, '\n  "rows": [\n    ']
    for i, r in enumerate(_rows(view)):
        row = jsonsafe.dumps_model(FleetRow.model_validate(r), indent=2)
        parts += [",\n    " if i else "", row.replace("\n", "\n    ")]
    parts += ["\n  ],\n", after, "\n"]
    return "".join(parts)


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return ""
    text = _SHORT.get(cell.verdict, cell.verdict)
    runs = cell.verdict in RUNNABLE
    return f"{text} {cell.precision}" if cell.precision and runs else text


def _rows_of_cells(view: Matrix) -> Iterator[tuple[Cell | None, ...]]:
    """Each row's cells, machine by machine. Looked up one column at a time, then
    turned: row by row, every lookup would visit all the machines' tables, which
    for a large fleet no longer fit the CPU caches (3x the time at 700 models)."""
    ids = [model_id for model_id, _, _ in view.rows]
    columns = [[m.cells.get(model_id) for model_id in ids] for m in view.machines]
    return zip(*columns, strict=True) if columns else iter([()] * len(ids))


def _once(write: Callable[[Cell | None], str]) -> Callable[[Cell | None], str]:
    """``write``, each distinct cell written once: a fleet repeats few distinct cells
    thousands of times (the merge shares equal ones, all alive while rendering, so
    their ids name them)."""
    written: dict[int, str] = {}

    def text(cell: Cell | None) -> str:
        found = written.get(id(cell))
        if found is None:
            found = written[id(cell)] = write(cell)
        return found

    return text


def _labels(view: Matrix) -> list[str]:
    """Hostnames, with a short machine id where two machines share one."""
    counts = Counter(m.hostname for m in view.machines)
    labels = [
        m.hostname if counts[m.hostname] < 2 else f"{m.hostname} ({(m.machine_id or '?')[:8]})"
        for m in view.machines
    ]
    return [
        f"{label} (partial)" if m.partial else label
        for label, m in zip(labels, view.machines, strict=True)
    ]


def render_markdown(view: Matrix) -> str:
    labels = _labels(view)
    lines = ["## canirun fleet", ""]
    lines.append(
        f"{len(view.machines)} machines, {len(view.rows)} models; "
        f"{len(view.skipped)} files skipped, {view.superseded} older reports replaced, "
        f"{view.partial_merged} partial reports (checks) merged in."
    )
    cell = safe.markdown_cell
    header = " | ".join(cell(label) for label in labels)
    lines += ["", f"| Model | {header} |", "|---" * (len(labels) + 1) + "|"]
    text = _once(lambda c: cell(_cell_text(c)))
    for (_, name, _), cells in zip(view.rows, _rows_of_cells(view), strict=True):
        texts = " | ".join([text(c) for c in cells])
        lines.append(f"| {cell(name)} | {texts} |")
    if view.skipped:
        lines += ["", "Skipped files:", ""]
        lines += [f"- `{safe.markdown_code(s.file)}`: {cell(s.reason)}" for s in view.skipped]
    return "\n".join(lines) + "\n"


def render_csv(view: Matrix) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cell = safe.csv_cell
    writer.writerow([cell(t) for t in ("model_id", "name", "category", *_labels(view))])
    text = _once(lambda c: cell(_cell_text(c)))
    for (model_id, name, category), cells in zip(view.rows, _rows_of_cells(view), strict=True):
        texts = [text(c) for c in cells]
        writer.writerow([cell(model_id), cell(name), cell(category), *texts])
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


def _html_cell(cell: Cell | None) -> str:
    e = html.escape
    if cell is None:
        return '<td data-rank="99"></td>'
    tip = f"{cell.verdict}"
    if cell.precision:
        tip += f", {cell.precision} with {cell.framework}"
    if cell.tokens_per_second:
        tip += f", ~{cell.tokens_per_second:g} tok/s"
    colour = _COLOURS.get(cell.verdict, "#757575")
    rank = _RANK.get(cell.verdict, 98)
    return (
        f'<td class="v" data-rank="{rank}" style="background:{colour}" '
        f'title="{e(tip)}">{e(_cell_text(cell))}</td>'
    )


def render_html(view: Matrix) -> str:
    e = html.escape
    labels = _labels(view)
    head = ["<th>Model</th>", "<th>Category</th>"]
    for label, m in zip(labels, view.machines, strict=True):
        detail = f"{m.cpu or '?'}; {format_gib(m.ram_bytes)} RAM; {', '.join(m.gpus) or 'no GPU'}"
        detail += f"; report {m.created_at}"
        head.append(f'<th title="{e(detail)}">{e(label)}</th>')
    body = []
    td = _once(_html_cell)
    for (_, name, category), cells in zip(view.rows, _rows_of_cells(view), strict=True):
        tds = [
            f'<tr data-category="{e(category)}"><td>{e(name)}</td>',
            f"<td>{e(CATEGORY_TITLES.get(category, category))}</td>",
        ]
        tds += [td(c) for c in cells]
        tds.append("</tr>")
        body.append("".join(tds))
    options = "".join(
        f'<option value="{e(c)}">{e(t)}</option>'
        for c, t in CATEGORY_TITLES.items()
        if any(r[2] == c for r in view.rows)
    )
    legend = "".join(
        f'<span style="background:{_COLOURS[v]}">{e(t)}</span>' for v, t in _SHORT.items()
    )
    skipped = "".join(f"<li><code>{e(s.file)}</code>: {e(s.reason)}</li>" for s in view.skipped)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>canirun fleet</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>canirun fleet</h1><p>{len(view.machines)} machines, {len(view.rows)} models, "
        f"written {e(view.created_at)}; {len(view.skipped)} files skipped, "
        f"{view.superseded} older reports replaced, {view.partial_merged} partial reports "
        "(checks) merged in. Click a column to sort.</p>"
        f'<p><label>Category <select id="category"><option value="">all</option>{options}'
        f'</select></label></p><p class="legend">{legend}</p>'
        f'<table id="matrix"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        + (f"<h2>Skipped files</h2><ul>{skipped}</ul>" if skipped else "")
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )
