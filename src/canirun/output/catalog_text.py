"""Text views of the catalog: models, frameworks, GPUs."""

from __future__ import annotations

from collections.abc import Sequence

from canirun.catalog.schema import Framework, Gpu, Model
from canirun.estimate.frameworks import FrameworkStatus
from canirun.output import safe
from canirun.output.labels import CATEGORY_TITLES
from canirun.output.scan_text import cut
from canirun.units import format_gib


def _params(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def render_models(models: Sequence[Model]) -> str:
    lines: list[str] = []
    for category, title in CATEGORY_TITLES.items():
        rows = [m for m in models if m.category == category]
        if not rows:
            continue
        header = f"  {'id':<32}{'name':<34}{'params':>8} {'active':>7}  {'access':<13}licence"
        lines += ["", title, header]
        for m in rows:
            for v in m.variants:
                vid = f"{m.id}-{v.key}"
                params = _params(v.params.total if v.params else None)
                # Mixture of experts: parameters used per token; blank for dense models.
                active = _params(v.params.active) if v.params and v.params.active else ""
                name = f"{cut(safe.line(v.name), 33):<34}"
                lines.append(f"  {vid:<32}{name}{params:>8} {active:>7}  {m.access:<13}{m.license}")
    count = sum(len(m.variants) for m in models)
    lines += ["", f"{count} variants of {len(models)} models. Details and sources: --json."]
    return "\n".join(safe.line(line) for line in lines).lstrip("\n") + "\n"


def render_frameworks(frameworks: Sequence[Framework], statuses: Sequence[FrameworkStatus]) -> str:
    lines = []
    for fw, st in zip(frameworks, statuses, strict=True):
        state = {True: "runs here", False: "not here", None: "unknown"}[st.runs_here]
        installed = "installed" if st.installed else "not installed"
        lines.append(f"{fw.name} [{fw.id}]: {state}, {installed}")
        if st.devices:
            lines.append(f"    on: {', '.join(st.devices)}")
        lines += [f"    why: {r}" for r in st.reasons]
        if st.models:
            shown = ", ".join(st.models[:8]) + (
                f" and {len(st.models) - 8} more" if len(st.models) > 8 else ""
            )
            lines.append(f"    could serve here: {shown}")
    return "\n".join(safe.line(line) for line in lines) + "\n"


def render_gpus(gpus: Sequence[Gpu]) -> str:
    # One unit per column whatever the source wrote ("3.35 TB/s", "1008 GB/s", "80GB").
    lines = [f"{'name':<36}{'memory':>10}{'bandwidth':>12}  {'compute':<8}aliases"]
    for g in gpus:
        cc = g.compute_capability or "-"
        memory = format_gib(g.memory_bytes)
        bandwidth = f"{g.bandwidth_bytes_per_s / 1e9:,.0f} GB/s"
        name = cut(safe.line(g.name), 35)
        aliases = ", ".join(g.aliases[:3])
        lines.append(f"{name:<36}{memory:>10}{bandwidth:>12}  {cc:<8}{aliases}")
    lines.append("Memory in GiB (2^30 bytes), bandwidth in GB/s (10^9 bytes per second).")
    return "\n".join(safe.line(line) for line in lines) + "\n"
