"""Reading the files a user names, with bounds: never a hang, never an unbounded read.

Every input file (``--hardware``, ``--catalog``, ``catalog.d/*.toml``, fleet
reports) goes through ``read_bounded``: it must be a regular file (a FIFO would
block forever, ``/dev/zero`` never ends), and no bigger than a limit that is
generous for the real thing. Parsing catches what the parsers raise beyond
their documented errors: ``RecursionError`` for deeply nested documents and
the ``ValueError`` of integers past Python's 4,300-digit conversion limit.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Iterator
from typing import Any

from canirun.errors import InputError

MIB = 2**20
# A full scan report is 1.6 MiB today (a hardware file may be one); the shipped
# catalog is under 1 MiB of TOML. The limits leave room to grow tenfold.
HARDWARE_LIMIT = 32 * MIB
CATALOG_LIMIT = 16 * MIB
REPORT_LIMIT = 32 * MIB
# Nesting deeper than any canirun file, shallow enough for every parser and walker.
MAX_DEPTH = 64


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def os_reason(exc: OSError) -> str:
    """A short reason for an OSError; loops and over-long names get plain words."""
    if exc.errno == errno.ELOOP:
        return "a loop of symbolic links"
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long"
    return exc.strerror or str(exc)


class ReadRefused(Exception):
    """The file cannot be read safely; the message is the reason (no file name)."""


def read_limited(path: os.PathLike[str] | str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or ``ReadRefused``.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a
    writer; anything that is not a regular file is refused before it is read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ReadRefused(f"cannot read it: {os_reason(exc)}") from None
    except ValueError as exc:  # an embedded NUL byte in the name
        raise ReadRefused(f"cannot read it: {exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReadRefused(f"{kind_of(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise ReadRefused(f"{info.st_size:,} bytes, more than the {limit:,} allowed")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(MIB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # the file grew while we read it
            raise ReadRefused(f"more than the {limit:,} bytes allowed")
        return b"".join(chunks)
    except OSError as exc:
        raise ReadRefused(f"cannot read it: {os_reason(exc)}") from None
    finally:
        os.close(fd)


def read_bounded(path: os.PathLike[str] | str, limit: int, label: str) -> bytes:
    """``read_limited`` with the refusal as an ``InputError`` that starts with ``label``."""
    try:
        return read_limited(path, limit)
    except ReadRefused as exc:
        raise InputError(f"{label}: {exc}") from None


class ParseRefused(ValueError):
    """A document that parses badly in a way the parser does not itself report."""


def parse_json(data: bytes | str) -> Any:
    """json.loads, with every failure a ``ValueError`` and the numbers checked."""
    import json  # only where a user's JSON is read: a scan of this machine reads none

    try:
        value = json.loads(data)
    except RecursionError:
        raise ParseRefused(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, an integer over 4,300 digits
        if "Exceeds the limit" in str(exc):
            raise ParseRefused("an integer with thousands of digits") from None
        raise
    check_shape(value)
    return value


def parse_toml(text: str) -> Any:
    """tomllib.loads, with every failure a ``ValueError`` (TOMLDecodeError is one)."""
    import tomllib  # only where TOML is read: it is slow to import and most runs need none

    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise ParseRefused(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        if "Exceeds the limit" in str(exc):
            raise ParseRefused("an integer with thousands of digits") from None
        raise
    check_shape(value)
    return value


# Integers beyond int64 (and non-finite floats) mean nothing in a canirun file;
# refusing them here keeps OverflowError out of every calculation downstream.
_BIGGEST = 2**63


def _walk(value: Any) -> Iterator[tuple[str, Any, int]]:
    """(dotted path, leaf, depth) for every leaf, iteratively (no recursion limit)."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        where, item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            yield where, item, depth
            continue
        if depth >= MAX_DEPTH:
            raise ParseRefused(f"{where or 'top level'}: nested more than {MAX_DEPTH} levels deep")
        for key, child in children:
            path = f"{where}.{key}" if where else str(key)
            stack.append((path, child, depth + 1))


def check_shape(value: Any) -> None:
    """Refuse documents nested deeper than MAX_DEPTH and numbers no file means."""
    for where, leaf, _ in _walk(value):
        if isinstance(leaf, bool):
            continue
        if isinstance(leaf, int) and abs(leaf) >= _BIGGEST:
            raise ParseRefused(f"{where}: the number is too large")
        if isinstance(leaf, float) and not math.isfinite(leaf):
            token = "NaN" if math.isnan(leaf) else "Infinity"  # as JSON files spell them
            raise ParseRefused(f"{where}: {token} is not a finite number, which canirun needs")
