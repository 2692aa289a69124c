"""The architecture's import rules, checked on the source: data flows one way.

hardware/ -> catalog/ -> estimate/ -> report -> cli/output. ruff's banned-api
(TID251) flags the third-party imports in an editor; this test is the precise
rule, per module, and cannot be silenced by a per-file ignore.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import canirun

PACKAGE = Path(canirun.__file__).parent
TOP = ("cli", "api", "evaluate", "options", "fleet", "report", "output")
# What each layer must never import: anything downstream of it.
FORBIDDEN = {
    "hardware": ("catalog", "estimate", "resolve", "whatif", "envelope", *TOP),
    "catalog": ("estimate", "resolve", "whatif", "envelope", *TOP),
    "estimate": ("resolve", "whatif", "envelope", *TOP),
    "output": ("cli", "api", "evaluate", "options"),
}
# Third-party packages that belong to one place only.
OWNERS = {
    "pynvml": ("hardware/nvidia.py",),
    "typer": ("cli.py", "output/"),
    "rich": ("cli.py", "output/"),
    "click": ("cli.py", "output/"),
    "psutil": ("hardware/",),
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_layers_import_only_upstream(path: Path) -> None:
    layer = _rel(path).split("/")[0]
    banned = FORBIDDEN.get(layer, ())
    bad = sorted(
        name
        for name in _imports(path)
        if name.startswith("canirun.") and name.split(".")[1].removesuffix(".py") in banned
    )
    assert not bad, f"{_rel(path)} ({layer}/) imports downstream layers: {bad}"


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_third_party_imports_stay_with_their_owner(path: Path) -> None:
    rel = _rel(path)
    for name in _imports(path):
        owners = OWNERS.get(name.split(".")[0])
        if owners is not None:
            assert rel.startswith(owners), f"{rel} imports {name}; only {owners} may"


def test_the_rules_see_the_imports_they_police() -> None:
    # A rule over a walk that finds nothing would pass forever: make sure it finds them.
    assert "pynvml" in _imports(PACKAGE / "hardware" / "nvidia.py")
    assert "typer" in _imports(PACKAGE / "cli.py")
    assert any(n.startswith("canirun.catalog") for n in _imports(PACKAGE / "estimate" / "rate.py"))
