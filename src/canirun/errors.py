"""The one exception type that means "the user gave us something we cannot use".

The CLI turns it into a single line on stderr and exit code 2. Every layer may
raise it; nothing below the CLI prints.
"""


class InputError(Exception):
    """Bad input: a file, flag or value the user supplied. The message names it."""


class PipeClosed(Exception):
    """stdout was closed by the reader (``canirun scan | head``): stop quietly."""
