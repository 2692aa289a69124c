"""``shutil.which`` for a command name, without importing ``shutil``.

Importing ``shutil`` loads ``bz2``, ``lzma`` and ``fnmatch``: ~3.5 ms of every command that
probes this machine (issue 15), for one function. On POSIX, for a bare command name (no
folder in it), this is Python 3.11's ``shutil.which`` line for line: ``$PATH`` (or
``os.confstr("CS_PATH")``, else ``os.defpath``, when unset), each folder once, the first
``folder/name`` that exists, is executable (``os.access`` with ``X_OK``) and is not a
folder. Anything else (Windows' ``PATHEXT`` rules, a name with a folder) is
``shutil.which``'s own answer. ``tests/test_which.py`` compares the two on the running
Python.
"""

from __future__ import annotations

import os
import sys


def which(name: str) -> str | None:
    """Where ``name`` runs from on PATH, as ``shutil.which(name)`` says."""
    if sys.platform == "win32" or os.path.dirname(name):
        import shutil

        return shutil.which(name)
    path = os.environ.get("PATH", None)
    if path is None:
        try:
            path = os.confstr("CS_PATH")
        except (AttributeError, ValueError):
            path = os.defpath
    if not path:
        return None
    seen = set()
    for folder in os.fsdecode(path).split(os.pathsep):
        if folder in seen:
            continue
        seen.add(folder)
        candidate = os.path.join(folder, name)
        if _runnable(candidate):
            return candidate
    return None


def _runnable(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path)
