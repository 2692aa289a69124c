"""A scan's JSON goes to stdout and --output as the UTF-8 bytes it was written in (issue 15:
decoding megabytes only to encode them again costs milliseconds): the same text arrives,
in order, whatever the stream."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from canirun import jsonsafe
from canirun.output import files

TEXT = '{\n  "name": "é — 模型",\n  "n": 1\n}\n'


def _stream(encoding: str) -> tuple[io.TextIOWrapper, io.BytesIO]:
    raw = io.BytesIO()
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="\n"), raw


def test_utf8_bytes_reach_a_utf8_stdout_as_they_are_after_what_was_written_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream, raw = _stream("utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    stream.write("before\n")  # still in the text layer's buffer
    files.emit(TEXT.encode())
    assert raw.getvalue() == b"before\n" + TEXT.encode()


def test_a_stdout_in_another_encoding_gets_the_text_readable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream, raw = _stream("ascii")
    monkeypatch.setattr(sys, "stdout", stream)
    files.emit(TEXT.encode())
    assert raw.getvalue() == TEXT.encode("ascii", "replace")


def test_a_stdout_without_a_buffer_gets_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    files.emit(TEXT.encode())
    assert stream.getvalue() == TEXT


@pytest.mark.parametrize(
    "text",
    ["plain", "a\x85b", "\x7f", "\u2028\u2029", "\x80\x9f\xa0é", "模型\x9f", "\x1b[31m"],
)
def test_control_escapes_in_bytes_are_the_text_ones(text: str) -> None:
    assert jsonsafe.escape_control_bytes(text.encode()) == jsonsafe.escape_controls(text).encode()


def test_an_output_file_gets_the_bytes(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    files.write_atomic(target, TEXT.encode())
    assert target.read_bytes() == TEXT.encode()
    files.write_atomic(target, "again\n")
    assert target.read_bytes() == b"again\n"
