"""Which serving frameworks are installed here: commands on PATH, Python distributions.

The catalog says how to recognise each framework; the caller passes those
hints in as plain data, so the hardware layer does not depend on the catalog.
Docker images are not checked (that would need the daemon).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from importlib import metadata

# (framework id, commands on PATH, Python distribution names)
DetectSpec = tuple[str, Sequence[str], Sequence[str]]


def _has_distribution(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    except (OSError, ValueError):
        # A sys.path entry this user may not list (a venv under someone else's 0700
        # folder): whatever is in there cannot be run by this user either.
        return False
    return True


def installed_frameworks(specs: Iterable[DetectSpec]) -> frozenset[str]:
    found = set()
    for fid, commands, distributions in specs:
        if any(shutil.which(c) for c in commands) or any(
            _has_distribution(d) for d in distributions
        ):
            found.add(fid)
    return frozenset(found)
