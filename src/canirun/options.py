"""Turn command-line values into the typed inputs of the layers below.

Every bad value becomes an ``InputError`` that names the flag. Kept apart from
``cli.py`` so the CLI stays a list of typer declarations.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from canirun.catalog.loader import Catalog
from canirun.errors import InputError
from canirun.estimate import precision as prec
from canirun.estimate.kv import KV_BYTES
from canirun.estimate.rate import Options
from canirun.estimate.results import Result, Workload, runs_at
from canirun.hardware.model import Host
from canirun.units import parse_rate, parse_size
from canirun.whatif import WhatIf

REQUIRE_LEVELS = ("gpu", "multi-gpu", "multi-node", "offload", "cpu")


def size_flag(flag: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = parse_size(text)
    except ValueError as exc:
        raise InputError(f"{flag}: {exc}") from None
    if value <= 0:
        raise InputError(f"{flag}: {text!r} must be more than zero")
    return value


def bandwidth_flag(text: str | None) -> tuple[bool, int | None]:
    """--ram-bandwidth: (measure here?, the user's figure). 'off' skips both."""
    if text is None:
        return True, None
    if text.strip().lower() == "off":
        return False, None
    try:
        value = parse_rate(text) if "/" in text else parse_size(text)
    except ValueError as exc:
        raise InputError(f"--ram-bandwidth: {exc}") from None
    if value <= 0:
        raise InputError(f"--ram-bandwidth: {text!r} must be more than zero")
    return False, value


def precision_flag(values: Sequence[str]) -> tuple[str, ...] | None:
    if not values:
        return None
    out = []
    for text in values:
        for part in text.split(","):
            found = prec.lookup(part)
            if found is None:
                known = ", ".join(prec.PRECISIONS)
                raise InputError(
                    f"--precision: unknown precision {part.strip()!r} (one of {known})"
                )
            out.append(found.name)
    return tuple(dict.fromkeys(out))


def framework_flag(text: str | None, catalog: Catalog) -> str | None:
    if text is None:
        return None
    wanted = text.strip().lower()
    for fw in catalog.frameworks:
        if wanted in {fw.id.lower(), fw.name.lower(), *(a.lower() for a in fw.aliases)}:
            return fw.id
    close = difflib.get_close_matches(wanted, [f.id for f in catalog.frameworks], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else " (see `canirun frameworks`)"
    raise InputError(f"--framework: unknown framework {text!r}{hint}")


def kv_flag(text: str) -> str:
    value = text.strip().lower()
    if value not in KV_BYTES:
        raise InputError(f"--kv-cache: {text!r} is not one of {', '.join(KV_BYTES)}")
    return value


@dataclass(frozen=True, slots=True)
class Gate:
    """A CI requirement: the worst acceptable placement and/or a minimum speed."""

    level: str | None = None
    min_tps: float | None = None
    every: bool = False

    @property
    def active(self) -> bool:
        return self.level is not None or self.min_tps is not None

    def describe(self) -> str | None:
        if not self.active:
            return None
        parts = []
        if self.level:
            parts.append(f"runs at {self.level} or better")
        if self.min_tps is not None:
            parts.append(f"at least {self.min_tps:g} tokens/s (low estimate)")
        scope = "every matched model" if self.every else "at least one matched model"
        return f"{scope} {' and '.join(parts)}"


def gate_flag(require: str | None, min_tps: float | None, every: bool) -> Gate:
    if require is not None and require not in REQUIRE_LEVELS:
        raise InputError(f"--require: {require!r} is not one of {', '.join(REQUIRE_LEVELS)}")
    if min_tps is not None and min_tps <= 0:
        raise InputError("--min-tps: must be more than zero")
    if every and require is None and min_tps is None:
        raise InputError("--all only applies together with --require or --min-tps")
    return Gate(require, min_tps, every)


def meets(results: Sequence[Result], gate: Gate) -> bool:
    """Does any result of one variant meet the gate? Unknown speed never meets it."""
    for r in results:
        if not runs_at(r.verdict, gate.level):
            continue
        if gate.min_tps is not None:
            speed = r.tokens_per_second
            if speed is None or speed.low is None or speed.low < gate.min_tps:
                continue
        return True
    return False


def workload(
    *,
    ctx: int,
    sequences: int,
    kv_cache: str,
    batch: int | None,
    resolution: int | None,
    seq_len: int | None,
    flash_attention: bool,
    extended_context: bool = False,
    swa_full: bool = False,
) -> Workload:
    for flag, value in (
        ("--ctx", ctx),
        ("--sequences", sequences),
        ("--batch", batch),
        ("--resolution", resolution),
        ("--seq-len", seq_len),
    ):
        if value is not None and value < 1:
            raise InputError(f"{flag}: must be at least 1")
    if resolution is not None and resolution % 8:
        raise InputError("--resolution: must be a multiple of 8 pixels")
    kv_type = kv_flag(kv_cache)
    return Workload(
        context_tokens=ctx,
        sequences=sequences,
        kv_cache_type=kv_type,
        batch=batch,
        resolution=resolution,
        seq_len=seq_len,
        # llama.cpp refuses a quantized V cache without flash attention
        # ("quantized V cache requires flash_attn", tests/reference/llamacpp-measured.toml).
        flash_attention=flash_attention or kv_type in ("q8_0", "q4_0"),
        extended_context=extended_context,
        swa_full=swa_full,
    )


def rate_options(
    wl: Workload, precisions: Sequence[str], framework: str | None, catalog: Catalog
) -> Options:
    return Options(
        workload=wl,
        precisions=precision_flag(precisions),
        framework=framework_flag(framework, catalog),
    )


def host_for(
    hardware: Path | None,
    models_dir: Path | None,
    what: WhatIf,
    catalog: Catalog,
    *,
    measure_bandwidth: bool,
) -> Host:
    from canirun import whatif
    from canirun.hardware import load_host

    detect = [(f.id, f.detect.commands, f.detect.python) for f in catalog.frameworks]
    host = load_host(hardware, models_dir, measure_bandwidth=measure_bandwidth, detect=detect)
    return whatif.apply(host, what, catalog.gpus)
