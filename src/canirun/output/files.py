"""Writing output: to stdout without BrokenPipe noise, to files atomically."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from canirun.errors import InputError, PipeClosed


def emit(text: str) -> None:
    """Write to stdout; a reader that went away (``| head``) ends us quietly."""
    try:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:
            # A non-UTF-8 locale (LANG=C on an old system): keep the text readable.
            encoding = sys.stdout.encoding or "ascii"
            sys.stdout.write(text.encode(encoding, "replace").decode(encoding))
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush stays quiet.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise PipeClosed from None


def write_atomic(path: Path, text: str, flag: str = "--output") -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half.

    The text goes to a temporary file in the same directory, is flushed to disk,
    then renamed over the target. On any failure the temporary file is removed
    and the target is left as it was.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{flag} {path}: directory {folder} does not exist")
    if target.is_dir():
        raise InputError(f"{flag} {path}: is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot write in {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            # Keep the permissions the user gave the file being replaced.
            with contextlib.suppress(OSError):
                os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"{flag} {path}: cannot write it: {exc.strerror or exc}") from None
        raise


def append_text(path: Path, text: str, flag: str) -> None:
    """Append to a file someone else owns (a CI job summary): never truncate it."""
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot append to it: {exc.strerror or exc}") from None
