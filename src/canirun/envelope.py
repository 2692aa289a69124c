"""The report's common envelope, built without pydantic.

``canirun hardware --json`` must start fast, so it serialises the probe's
dataclasses directly; ``canirun.report`` declares the same shape as pydantic
models (a test keeps the two identical).
"""

from __future__ import annotations

import time
from typing import Any

from canirun import __version__
from canirun.hardware.model import Host, to_jsonable

# Bump the minor version for additive changes, the major one for anything that
# can break a reader. `canirun schema` prints the JSON Schema of this version.
SCHEMA_VERSION = "1.1"


def now_utc() -> str:
    """ISO-8601 UTC timestamp to the second, e.g. 2026-11-29T17:25:09Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def envelope(
    host: Host, kind: str, created_at: str | None = None, *, partial: bool = False
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "tool": {"name": "canirun", "version": __version__},
        "created_at": created_at or now_utc(),
        "basis": host.basis,
        "partial": partial,
        "machine": to_jsonable(host.machine),
        "hardware": to_jsonable(host.hardware),
        "probe_issues": [to_jsonable(i) for i in host.issues],
    }
