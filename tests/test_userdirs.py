"""canirun.userdirs answers as platformdirs does, and without it where the XDG rules decide."""

from __future__ import annotations

import sys

import platformdirs
import pytest

from canirun import userdirs

VARIABLES = ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "ANDROID_DATA", "ANDROID_ROOT")
# (HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME); None: unset.
ENVIRONMENTS = [
    ("/home/ada", None, None),
    ("/home/ada/", None, None),
    ("/", None, None),
    ("/home/ada", "/srv/conf", "/srv/cache"),
    ("/home/ada", "/srv/conf/", "/srv//cache"),
    ("/home/ada", "", ""),
    ("/home/ada", "relative/conf", "relative/cache"),
    ("/home/ada", "  ", "\t"),
    (None, "/srv/conf", "/srv/cache"),
    ("relative-home", "/srv/conf", None),
]
# The cases the XDG rules settle without platformdirs: (config folder, cache folder).
FAST = {0: (1, 1), 1: (1, 1), 2: (1, 1), 3: (1, 1), 4: (1, 1), 8: (1, 1), 9: (1, 0)}


def _set(monkeypatch: pytest.MonkeyPatch, home: str | None, conf: str | None, cache: str | None):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in (("HOME", home), ("XDG_CONFIG_HOME", conf), ("XDG_CACHE_HOME", cache)):
        if value is not None:
            monkeypatch.setenv(name, value)


def _both(call):
    try:
        return call()
    except (RuntimeError, KeyError) as exc:
        return type(exc)


@pytest.mark.skipif(sys.platform != "linux", reason="the fast answers are Linux's")
@pytest.mark.parametrize("case", range(len(ENVIRONMENTS)))
def test_same_folders_as_platformdirs(monkeypatch: pytest.MonkeyPatch, case: int) -> None:
    _set(monkeypatch, *ENVIRONMENTS[case])
    assert _both(userdirs.user_config_dir) == _both(lambda: platformdirs.user_config_dir("canirun"))
    assert _both(userdirs.user_cache_dir) == _both(lambda: platformdirs.user_cache_dir("canirun"))


@pytest.mark.skipif(sys.platform != "linux", reason="the fast answers are Linux's")
@pytest.mark.parametrize("case", range(len(ENVIRONMENTS)))
def test_platformdirs_is_asked_only_where_the_rules_do_not_decide(
    monkeypatch: pytest.MonkeyPatch, case: int
) -> None:
    _set(monkeypatch, *ENVIRONMENTS[case])
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # importing it now fails
    for call, fast in zip(
        (userdirs.user_config_dir, userdirs.user_cache_dir), FAST.get(case, (0, 0)), strict=True
    ):
        if fast:
            assert call().endswith("/canirun")
        else:
            with pytest.raises(ImportError):
                call()


def test_android_is_left_to_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, "/home/ada", "/srv/conf", "/srv/cache")
    monkeypatch.setenv("ANDROID_DATA", "/data")
    monkeypatch.setenv("ANDROID_ROOT", "/system")
    monkeypatch.setitem(sys.modules, "platformdirs", None)
    with pytest.raises(ImportError):
        userdirs.user_cache_dir()


def test_other_platforms_are_left_to_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, "/Users/ada", None, None)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "platformdirs", None)
    with pytest.raises(ImportError):
        userdirs.user_config_dir()
