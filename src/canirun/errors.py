"""The exceptions that mean "stop here, and tell the user in one line".

The CLI turns ``InputError`` into a single line on stderr and exit code 2.
Every layer may raise it; nothing below the CLI prints.
"""

import re
from functools import cache


@cache
def _control() -> re.Pattern[str]:
    # Compiled when a message is first written, not at every start (issue 15).
    return re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


_LONGEST = 1000  # characters; a 5,000-digit value is shown cut in the middle


def one_line(text: str) -> str:
    """Escape newlines and other control characters (say, from a key in a user's file)."""
    line = _control().sub(lambda m: repr(m.group())[1:-1], text)
    if len(line) > _LONGEST:
        half = _LONGEST // 2
        line = f"{line[:half]}…({len(line) - 2 * half:,} characters)…{line[-half:]}"
    return line


class InputError(Exception):
    """Bad input: a file, flag or value the user supplied. The message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class PipeClosed(Exception):
    """stdout was closed by the reader (``canirun scan | head``): stop quietly."""
