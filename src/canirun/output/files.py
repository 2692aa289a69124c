"""Writing output: to stdout without BrokenPipe noise, to files atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from pathlib import Path
from typing import Any

from canirun.errors import InputError, PipeClosed
from canirun.inputs import kind_of, os_reason


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush stays quiet."""
    stream = sys.stdout
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def emit(text: str | bytes) -> None:
    """Write to stdout (bytes: UTF-8 text). A reader that went away (``| head``) or a
    closed stdout (``>&-``) ends us quietly (exit 141); a stdout that cannot take the text
    (``>/dev/full``) is one line on stderr (exit 2)."""
    stream = sys.stdout
    if stream is None:  # started with stdout closed
        raise PipeClosed
    try:
        if isinstance(text, bytes):
            if _takes_utf8(stream):
                # Written as they are: decoding megabytes only to encode them again costs
                # milliseconds (issue 15).
                stream.flush()
                stream.buffer.write(text)
                stream.buffer.flush()
                return
            text = text.decode()
        try:
            stream.write(text)
        except UnicodeEncodeError:
            # A non-UTF-8 locale (LANG=C on an old system): keep the text readable.
            encoding = stream.encoding or "ascii"
            stream.write(text.encode(encoding, "replace").decode(encoding))
        stream.flush()
    except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
        silence_stdout()
        raise PipeClosed from None
    except OSError as exc:
        silence_stdout()
        if exc.errno == errno.EBADF:
            raise PipeClosed from None
        raise InputError(f"cannot write to standard output: {os_reason(exc)}") from None


def _takes_utf8(stream: Any) -> bool:
    """A text stream over a binary buffer that writes UTF-8, and "\\n" as it is (not on
    Windows, where a text stream writes "\\r\\n")."""
    buffer = getattr(stream, "buffer", None)
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
    return buffer is not None and encoding in ("utf-8", "utf8") and os.linesep == "\n"


def say(line: str) -> None:
    """One line on stderr; a closed or broken stderr loses the line, never the run."""
    stream = sys.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        stream.write(line + "\n")
        stream.flush()


def _existing(target: Path, flag: str) -> os.stat_result | None:
    """The stat of what ``target`` names (through symlinks), None when nothing is there.

    The rule for --output: a regular file (or a symlink to one) is replaced
    whole, keeping its owner and mode; a new name in a folder is created (with
    its missing parent folders); anything else is refused, so nothing the user
    had is turned into something else.
    """
    try:
        info = os.stat(target)
    except FileNotFoundError:
        if os.path.lexists(target):
            raise InputError(f"{flag} {target}: a symbolic link to nothing; not followed") from None
        return None
    except OSError as exc:
        raise InputError(f"{flag} {target}: cannot write it: {os_reason(exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{flag} {target}: is {kind_of(info.st_mode)}; only a file is written")
    if info.st_nlink > 1:
        raise InputError(
            f"{flag} {target}: has {info.st_nlink} hard links; replacing it would split them"
        )
    if not os.access(target, os.W_OK) or not info.st_mode & 0o222:
        raise InputError(f"{flag} {target}: is read-only; not replaced")
    return info


def _folder(target: Path, flag: str) -> Path:
    """The folder the file goes in, created (like ``mkdir -p``) when it is missing."""
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{flag} {target}: {folder} is not a directory") from None
    except OSError as exc:
        raise InputError(f"{flag} {target}: cannot create {folder}: {os_reason(exc)}") from None
    return folder


def _keep_owner_and_mode(fd: int, old: os.stat_result | None, target: Path, flag: str) -> None:
    if old is None:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        return
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        # Only root (or a member of the file's group) may do this; when it fails
        # the write is refused rather than change the file's owner.
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except OSError:
            raise InputError(
                f"{flag} {target}: belongs to another user; replacing it would change its owner"
            ) from None
    os.fchmod(fd, old.st_mode & 0o7777)


def write_atomic(path: Path, text: str | bytes, flag: str = "--output") -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half.

    The text goes to a temporary file in the same directory, is flushed to disk,
    then renamed over the target (the file a symlink points to, the link kept).
    On any failure the temporary file is removed and the target is left as it was.
    """
    given = Path(path)
    try:
        old = _existing(given, flag)
        target = Path(os.path.realpath(given)) if old is not None else given
    except ValueError as exc:  # a NUL byte in the name
        raise InputError(f"{flag} {path}: {exc}") from None
    folder = _folder(target, flag) if str(target.parent) else Path(".")
    try:
        import tempfile  # only when writing a file: it costs start-up time

        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot write in {folder}: {os_reason(exc)}") from None
    try:
        data = text if isinstance(text, bytes) else text.encode()  # UTF-8, "\n" kept
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            _keep_owner_and_mode(handle.fileno(), old, given, flag)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"{flag} {path}: cannot write it: {os_reason(exc)}") from None
        raise


def append_text(path: Path, text: str, flag: str) -> None:
    """Append to a file someone else owns (a CI job summary): never truncate it.

    Only a regular file (or a new one) is appended to: O_NONBLOCK keeps a FIFO
    from blocking the open, and anything but a regular file is refused.
    """
    with contextlib.suppress(OSError, ValueError):
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{flag} {path}: is {kind_of(mode)}; only a file is appended to")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot append to it: {os_reason(exc)}") from None
    except ValueError as exc:
        raise InputError(f"{flag} {path}: {exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{flag} {path}: is {kind_of(mode)}; only a file is appended to")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "a", encoding="utf-8", closefd=False) as handle:
            handle.write(text)
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot append to it: {os_reason(exc)}") from None
    finally:
        os.close(fd)
