"""Bad output flags fail before canirun probes anything or loads the catalog."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from canirun import api
from canirun.cli import app


@pytest.fixture
def no_probing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: object) -> None:
        raise AssertionError("probed or loaded the catalog before checking the flags")

    monkeypatch.setattr(api, "prepare", refuse)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "--format", "yaml"], "--format: 'yaml' is not one of"),
        (["check", "llama", "--format", "yaml"], "--format: 'yaml' is not one of"),
        (["scan", "--json", "--format", "markdown"], "ask for two different outputs"),
        (["check", "llama", "--github-summary"], "GITHUB_STEP_SUMMARY is not set"),
    ],
)
def test_bad_output_flags_fail_before_probing(
    no_probing: None, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
