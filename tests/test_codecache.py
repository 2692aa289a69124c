"""The records' compiled dataclass methods (canirun.codecache): the classes made from the
table are the ones ``dataclass`` makes, the shipped table is current, and a table that
cannot be used only means compiling."""

from __future__ import annotations

import dataclasses
import marshal
import os
import subprocess
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest

from canirun import codecache
from canirun.records import Record, record

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> codecache._Table:
    """A fresh table read from a file under tmp_path, in place of the process's own."""
    monkeypatch.setattr(codecache, "TABLE", tmp_path / "records.codes")
    fresh = codecache._Table()
    monkeypatch.setattr(codecache, "_TABLE", fresh)
    return fresh


def _define() -> type:
    @record(slots=True, kw_only=True)
    class Sample(Record):
        name: str
        size: int = 3
        tags: tuple[str, ...] = ()

    return Sample


def _check(made: type) -> None:
    one = made(name="a", size=4)
    assert (one.name, one.size, one.tags) == ("a", 4, ())
    assert made(name="a") == made(name="a", size=3) != made(name="b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.size = 5
    with pytest.raises(TypeError):
        made("a")  # keyword-only, as asked
    # What exec compiles from the text: records.py's `from __future__ import annotations`
    # does not leak in (it would make this annotation the string "_return_type").
    assert made.__init__.__annotations__["return"] is None


def test_classes_from_the_table_are_the_ones_dataclass_makes(
    table: codecache._Table, tmp_path: Path
) -> None:
    table.recording = {}
    _check(_define())  # compiled, and recorded
    assert table.compiled == 3  # __init__, __setattr__, __delattr__
    assert len(table.recording) == 3
    (tmp_path / "records.codes").write_bytes(marshal.dumps((MAGIC_NUMBER, table.recording)))
    reread = codecache._Table()
    codecache._TABLE = reread
    made = _define()
    assert reread.compiled == 0  # every text found in the table
    _check(made)
    assert not hasattr(dataclasses, "exec")  # lent only while a record is made


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not marshal \x00\xff",
        marshal.dumps([1, 2]),
        marshal.dumps((b"\x00\x00\r\n", {})),  # another Python's table
        marshal.dumps((MAGIC_NUMBER, {"x": 1})),
    ],
)
def test_a_table_that_cannot_be_used_only_means_compiling(
    table: codecache._Table, tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "records.codes").write_bytes(content)
    _check(_define())
    assert table.compiled == 3


def test_no_table_only_means_compiling(table: codecache._Table) -> None:
    _check(_define())
    assert table.compiled == 3


def test_the_shipped_table_is_current() -> None:
    """Every record of the package is made without compiling anything. Stale: run
    scripts/compile_catalog.py (after adding or changing a record class)."""
    magic, _ = marshal.loads(codecache.TABLE.read_bytes())
    if magic != MAGIC_NUMBER:
        pytest.skip("the table was built for another Python; this one compiles as usual")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from compile_catalog import record_modules
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    modules = record_modules()
    assert {"canirun.catalog.schema", "canirun.estimate.results"} <= set(modules)
    child = (
        f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
        "from canirun import codecache\nprint(codecache._TABLE.compiled)"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", child], env=env, capture_output=True, text=True, check=False
    )
    assert done.stdout.strip() == "0", (done.stdout, done.stderr[-2000:])


def test_write_table_needs_a_fresh_interpreter() -> None:
    with pytest.raises(RuntimeError, match="fresh interpreter"):
        codecache.write_table([])
