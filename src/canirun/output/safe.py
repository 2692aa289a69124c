"""Text from files made safe for where it is written: a terminal, XML, Markdown, CSV.

Model names come from user catalogs, GPU names and hostnames from hardware files
and other machines' reports: any of them may hold escape sequences, control
characters or markup. Each function here keeps the text readable and makes it
inert for one destination; the renderers apply them to everything they did not
write themselves.
"""

from __future__ import annotations

import re
from functools import cache


# C0 controls but newline, DEL, C1 controls (ESC's 8-bit twin CSI is \x9b),
# Unicode bidirectional overrides and isolates (text that reads backwards), and
# lone surrogates (not text at all: they cannot even be encoded).
@cache
def _terminal_unsafe() -> re.Pattern[str]:
    return re.compile(
        "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
    )


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: str) -> str:
    """Escape sequences and control characters shown as text (``\\x1b``), never obeyed."""
    if text.isprintable():
        # Nothing to escape: every character the pattern escapes is a control, format or
        # surrogate character, which str.isprintable refuses (tests/test_output_safety.py).
        # Most text is printable, and the pattern takes ~0.9 ms to compile (issue 15).
        return text
    return _terminal_unsafe().sub(_escape, text)


def line(text: str) -> str:
    """One line of terminal text: newlines shown as ``\\x0a`` too."""
    return terminal(text).replace("\n", "\\x0a")


@cache
def _xml_unsafe() -> re.Pattern[str]:
    """What XML 1.0 allows: tab, newline, carriage return, and the planes without
    surrogates and the two non-characters U+FFFE and U+FFFF. Compiled on first use
    (about 3 ms: a start of any text command would pay it for JUnit's sake)."""
    return re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml(text: str) -> str:
    """Only characters XML 1.0 allows; the rest as visible escapes."""
    return _xml_unsafe().sub(_escape, text)


def markdown_cell(text: str) -> str:
    """One table cell: no row or column break, no HTML."""
    flat = line(text.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))
    return flat.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def markdown_code(text: str) -> str:
    """Inline code: a backtick would end it early."""
    return line(text).replace("`", "'")


def csv_cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (OWASP's advice)."""
    if text.startswith(_FORMULA_START):
        return "'" + line(text)
    return line(text)
