"""The methods ``dataclass`` generates for canirun's records, compiled once with the shipped
catalog (``scripts/compile_catalog.py``) rather than on every run.

``dataclass`` writes each class's ``__init__``, ``__setattr__`` and ``__delattr__`` as
source text and compiles it with ``exec`` every time the class is defined: for canirun's
~50 records about 40 ms of every scan, check and ``frameworks`` (issue 15), more than
the rest of their imports. The text depends only on the class definition, so its code
can be compiled once: ``scripts/compile_catalog.py`` writes ``schema/records.codes``
(``write_table``), and while a record is defined ``compiling()`` lends ``dataclasses``
an ``exec`` that looks the text up there first.

- The code run is what ``exec`` compiles from the same text (same file name, no
  inherited ``__future__`` flags, optimisation off): the classes are the same.
- The table is read only from the installed package, as trusted as its ``.py`` files;
  nothing is written at run time.
- It holds code for one bytecode version (``importlib.util.MAGIC_NUMBER``). On another
  Python, under ``-O``, or for a text it lacks (a record changed since the table was
  built), the text is compiled as usual. ``tests/test_codecache.py`` keeps it current.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import marshal
import sys
from collections.abc import Iterator
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from types import CodeType
from typing import Any

TABLE = Path(__file__).resolve().parent / "schema" / "records.codes"


class _Table:
    def __init__(self) -> None:
        self.codes: dict[str, CodeType] | None = None  # read on first use
        self.compiled = 0  # texts this process compiled itself
        self.recording: dict[str, CodeType] | None = None  # write_table's texts

    def load(self) -> dict[str, CodeType]:
        if self.codes is None:
            self.codes = {}
            if sys.flags.optimize == 0:
                # A table that cannot be read, or is for another Python, only means
                # compiling as usual: it never stops a command.
                with contextlib.suppress(Exception):
                    magic, codes = marshal.loads(TABLE.read_bytes())
                    if magic == MAGIC_NUMBER and isinstance(codes, dict):
                        self.codes = codes
        return self.codes

    def exec(self, source: Any, globals: Any = None, locals: Any = None) -> None:
        """``exec``, with the code for a known text taken from the table."""
        if isinstance(source, str):
            code = self.load().get(source)
            if not isinstance(code, CodeType):
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.compiled += 1
            if self.recording is not None:
                self.recording[source] = code
            source = code
        builtins.exec(source, globals, locals)


_TABLE = _Table()


@contextlib.contextmanager
def compiling() -> Iterator[None]:
    """While it lasts, ``dataclasses`` compiles through the table. Only canirun's own
    record definitions run inside it; the stand-in behaves exactly like ``exec`` (a
    dataclass another thread defines meanwhile compiles through it too, to the same
    code)."""
    module: Any = dataclasses
    module.exec = _TABLE.exec
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del module.exec


def run_code(text: str, namespace: dict[str, Any]) -> None:
    """Run ``text`` in ``namespace`` through the table, for code canirun generates itself
    (``records``) while ``compiling()`` lasts: recorded by ``write_table`` like
    dataclass's."""
    _TABLE.exec(text, namespace)


def write_table(modules: list[str]) -> int:
    """Import ``modules`` in this process, which must not have defined any record yet, and
    write every text their records compiled to ``TABLE``; returns how many."""
    if "canirun.records" in sys.modules or sys.flags.optimize:
        raise RuntimeError("write_table needs a fresh interpreter without -O")
    _TABLE.codes, _TABLE.recording = {}, {}
    import importlib

    for name in modules:
        importlib.import_module(name)
    texts = dict(sorted(_TABLE.recording.items()))
    TABLE.write_bytes(marshal.dumps((MAGIC_NUMBER, texts)))
    return len(texts)
