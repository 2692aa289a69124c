"""Which serving frameworks are installed here: commands on PATH, Python distributions.

The catalog says how to recognise each framework; the caller passes those
hints in as plain data, so the hardware layer does not depend on the catalog.
Docker images are not checked (that would need the daemon).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence

from canirun.hardware.which import which

# (framework id, commands on PATH, Python distribution names)
DetectSpec = tuple[str, Sequence[str], Sequence[str]]

_RUNS = re.compile(r"[-_.]+")


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: llama_cpp.python == llama-cpp-python."""
    return _RUNS.sub("-", name).lower()


def installed_distributions() -> frozenset[str]:
    """The normalised names of the distributions on sys.path.

    The same metadata folders importlib.metadata's path finder looks for (``NAME-VERSION.
    dist-info``, ``NAME[-VERSION...].egg-info``), read with one listing per sys.path entry:
    importing importlib.metadata (email, zipfile, csv...) and asking it name by name cost
    about 20 ms of a 130 ms ``canirun hardware``. A test holds this to importlib.metadata.
    """
    names = set()
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except (OSError, ValueError):
            # Not a folder (a zip), or one this user may not list (a venv under someone
            # else's 0700 folder): whatever is in there cannot be run by this user either.
            continue
        for item in listing:
            stem, _, suffix = item.rpartition(".")
            if suffix in ("dist-info", "egg-info") and stem:
                names.add(normalise(stem.split("-", 1)[0]))
    return frozenset(names)


def _has_distribution(name: str, installed: frozenset[str]) -> bool:
    return normalise(name) in installed


def installed_frameworks(specs: Iterable[DetectSpec]) -> frozenset[str]:
    installed = installed_distributions()
    found = set()
    for fid, commands, distributions in specs:
        if any(which(c) for c in commands) or any(
            _has_distribution(d, installed) for d in distributions
        ):
            found.add(fid)
    return frozenset(found)
