"""Turn command-line values into the typed inputs of the layers below.

Every bad value becomes an ``InputError`` that names the flag. Kept apart from
``cli.py`` so the CLI stays a list of typer declarations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import msgspec

from canirun.catalog.loader import Catalog
from canirun.errors import InputError
from canirun.estimate import precision as prec
from canirun.estimate.rate import Options
from canirun.estimate.results import Result, Workload, runs_at
from canirun.hardware.model import Host
from canirun.units import parse_rate, parse_size
from canirun.whatif import WhatIf

REQUIRE_LEVELS = ("gpu", "multi-gpu", "multi-node", "offload", "cpu")
# Upper bounds on counts, as in the catalog's schema: far above any real
# workload, low enough that every estimate stays exact and fast.
MAX_TOKENS = 2**27
MAX_COUNT = 2**16


SIZE_FORMS = "a number and a unit: 24GB, 16GiB, 512MiB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
RATE_FORMS = "a number and a unit per second: 80GB/s, 3.35TB/s, 500MB/s"
# Below these, a figure is a typo (a missing unit), not a machine.
MIN_MEMORY = 2**20
MIN_BANDWIDTH = 10**6
_HAS_UNIT = re.compile(r"[a-zA-Z]\s*(/\s*s)?\s*$")


def size_flag(flag: str, text: str | None) -> int | None:
    """A memory size from a flag: a unit is required (`--ram 64` is not 64 bytes)."""
    if text is None:
        return None
    if not _HAS_UNIT.search(text):
        raise InputError(f"{flag}: {text!r} has no unit; write {SIZE_FORMS}")
    try:
        value = parse_size(text)
    except ValueError as exc:
        raise InputError(f"{flag}: {exc}") from None
    if value < MIN_MEMORY:
        raise InputError(f"{flag}: {text!r} is less than 1 MiB; write {SIZE_FORMS}")
    return value


def bandwidth_flag(text: str | None) -> tuple[bool, int | None, bool]:
    """--ram-bandwidth: (measure here?, the user's figure, measure anew?). By default the
    figure kept from an earlier copy test on this machine is reused; 'measure' measures
    again (and keeps the new figure); 'off' skips both."""
    if text is None:
        return True, None, False
    if text.strip().lower() == "off":
        return False, None, False
    if text.strip().lower() == "measure":
        return True, None, True
    if not _HAS_UNIT.search(text):
        raise InputError(
            f"--ram-bandwidth: {text!r} has no unit; write {RATE_FORMS}; or measure, or off"
        )
    try:
        value = parse_rate(text) if "/" in text else parse_size(text)
    except ValueError as exc:
        raise InputError(
            f"--ram-bandwidth: {exc}; write {RATE_FORMS}; or measure, or off"
        ) from None
    if value < MIN_BANDWIDTH:
        raise InputError(f"--ram-bandwidth: {text!r} is less than 1 MB/s; write {RATE_FORMS}")
    return False, value, False


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
    import difflib  # for a bad --framework only

    close = difflib.get_close_matches(wanted, [f.id for f in catalog.frameworks], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else " (see `canirun frameworks`)"
    raise InputError(f"--framework: unknown framework {text!r}{hint}")


# What --kv-cache may ask for: f16 is each runtime's default 16-bit cache (fp32 with
# fp32 weights); the rest must be a type the framework offers (frameworks.toml).
KV_CHOICES = ("f16", "q8_0", "q4_0", "fp8")


def kv_flag(text: str) -> str:
    value = text.strip().lower()
    if value not in KV_CHOICES:
        raise InputError(f"--kv-cache: {text!r} is not one of {', '.join(KV_CHOICES)}")
    return value


class Gate(msgspec.Struct, frozen=True):
    """A CI requirement: the worst acceptable placement and/or a minimum speed."""

    level: str | None = None
    min_tps: float | None = None
    every: bool = False

    @property
    def active(self) -> bool:
        return self.level is not None or self.min_tps is not None

    def describe(self, of: str = "matched model") -> str | None:
        if not self.active:
            return None
        parts = []
        if self.level:
            parts.append(f"runs at {self.level} or better")
        if self.min_tps is not None:
            parts.append(f"at least {self.min_tps:g} tokens/s (low estimate)")
        scope = f"every {of}" if self.every else f"at least one {of}"
        return f"{scope} {' and '.join(parts)}"


def gate_flag(require: str | None, min_tps: float | None, every: bool) -> Gate:
    if require is not None and require not in REQUIRE_LEVELS:
        raise InputError(f"--require: {require!r} is not one of {', '.join(REQUIRE_LEVELS)}")
    if min_tps is not None and not (math.isfinite(min_tps) and min_tps > 0):
        raise InputError(f"--min-tps: {min_tps!r} must be a finite number more than zero")
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
    flash_attention: bool | None,
    extended_context: bool = False,
    swa_full: bool = False,
) -> Workload:
    for flag, value, most in (
        ("--ctx", ctx, MAX_TOKENS),
        ("--sequences", sequences, MAX_COUNT),
        ("--batch", batch, MAX_COUNT),
        ("--resolution", resolution, MAX_COUNT),
        ("--seq-len", seq_len, MAX_TOKENS),
    ):
        if value is not None and value < 1:
            raise InputError(f"{flag}: must be at least 1")
        if value is not None and value > most:
            raise InputError(f"{flag}: must be at most {most:,}")
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
        flash_attention=True if kv_type in ("q8_0", "q4_0") else flash_attention,
        extended_context=extended_context,
        swa_full=swa_full,
    )


PREFER = ("balanced", "quality", "speed")


def prefer_flag(text: str) -> str:
    value = text.strip().lower()
    if value not in PREFER:
        raise InputError(f"--prefer: {text!r} is not one of {', '.join(PREFER)}")
    return value


def rate_options(
    wl: Workload,
    precisions: Sequence[str],
    framework: str | None,
    catalog: Catalog,
    prefer: str = "balanced",
) -> Options:
    chosen = framework_flag(framework, catalog)
    fw = catalog.framework_by_id.get(chosen or "")
    decodes = fw is not None and bool({"llm", "vlm"} & set(fw.serves))
    if fw is not None and decodes and wl.kv_cache_type not in ("f16", *fw.kv_cache_types):
        offered = ", ".join(dict.fromkeys(("f16", *fw.kv_cache_types)))
        raise InputError(
            f"--kv-cache: {fw.name} has no {wl.kv_cache_type} KV cache (it offers {offered})"
        )
    return Options(
        workload=wl,
        precisions=precision_flag(precisions),
        framework=chosen,
        prefer=prefer_flag(prefer),
    )


def host_for(
    hardware: Path | None,
    models_dir: Path | None,
    what: WhatIf,
    catalog: Catalog,
    *,
    measure_bandwidth: bool,
    refresh_bandwidth: bool = False,
) -> Host:
    """The machine rated: probed here (the RAM copy test's figure kept per machine in the
    user cache, measured anew with ``refresh_bandwidth``), or read from a hardware file;
    then the what-ifs applied."""
    from canirun import whatif
    from canirun.hardware import load_host

    detect = [(f.id, f.detect.commands, f.detect.python) for f in catalog.frameworks]
    cache = None
    if measure_bandwidth and hardware is None:
        from canirun.hardware.bandwidth_cache import cache_file

        cache = cache_file()
    host = load_host(
        hardware,
        models_dir,
        measure_bandwidth=measure_bandwidth,
        detect=detect,
        bandwidth_cache=cache,
        refresh_bandwidth=refresh_bandwidth,
    )
    return whatif.apply(host, what, catalog.gpus)
