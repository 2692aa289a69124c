"""Where canirun's user configuration and caches live: platformdirs' answer, quickly.

``platformdirs`` decides these folders for every platform, but importing it costs ~5-10 ms
(its Unix module loads ``tempfile``, which loads ``shutil``, ``random``, ``bz2``, ``lzma``),
and every catalog command asks for the config folder (``catalog.d``) before it can answer
(issue 15's start-up budgets). On Linux the common answers are fixed by the XDG Base
Directory specification, and platformdirs 3.x and 4.x give them identically:

- ``$XDG_CONFIG_HOME`` (or ``$XDG_CACHE_HOME``) when it is an absolute path;
- else, with no such variable set at all, ``$HOME/.config`` (``$HOME/.cache``) when
  ``HOME`` is an absolute path.

Exactly those two cases are answered here; everything else (macOS, Windows, Android,
an empty or relative variable, no usable HOME) is asked of platformdirs itself, so an
odd environment gets platformdirs' own answer or error. ``tests/test_userdirs.py``
compares both ways under each environment.
"""

from __future__ import annotations

import os
import posixpath
import sys

APP = "canirun"


def _linux_default(variable: str, home_folder: str) -> str | None:
    """The XDG answer for ``variable``, or None where platformdirs must decide."""
    if sys.platform != "linux" or hasattr(sys, "getandroidapilevel"):
        return None
    if os.environ.get("ANDROID_DATA") == "/data" and os.environ.get("ANDROID_ROOT") == "/system":
        return None  # platformdirs looks further for an Android app here
    value = os.environ.get(variable)
    if value is not None:
        return posixpath.join(value, APP) if posixpath.isabs(value) else None
    home = os.environ.get("HOME")
    if home is None or not posixpath.isabs(home):
        return None
    return posixpath.join(os.path.expanduser(f"~/{home_folder}"), APP)


def user_config_dir() -> str:
    """canirun's user configuration folder (platformdirs' ``user_config_dir``).

    Raises what platformdirs raises where it cannot tell (RuntimeError, KeyError).
    """
    fast = _linux_default("XDG_CONFIG_HOME", ".config")
    if fast is not None:
        return fast
    import platformdirs

    return platformdirs.user_config_dir(APP)


def user_cache_dir() -> str:
    """canirun's user cache folder (platformdirs' ``user_cache_dir``); raises as it does."""
    fast = _linux_default("XDG_CACHE_HOME", ".cache")
    if fast is not None:
        return fast
    import platformdirs

    return platformdirs.user_cache_dir(APP)
