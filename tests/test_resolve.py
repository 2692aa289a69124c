"""Finding models by the names people type."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canirun.catalog import load_catalog
from canirun.resolve import normalize, resolve

CATALOG = load_catalog(user_dir=False)


def ids(query: str) -> list[str]:
    return [m.ref.id for m in resolve(query, CATALOG).matches]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Llama-3-8B", "llama 3 8b"),
        ("llama3:8b", "llama 3 8b"),
        ("meta-llama/Meta-Llama-3-8B", "meta llama meta llama 3 8b"),
        ("Command R+", "command r plus"),
        ("DALL·E", "dalle"),
        ("llama 3.1", "llama 3.1"),
        ("  WHISPER   large ", "whisper large"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_a_family_gives_its_entries_not_an_error() -> None:
    found = ids("llama")
    assert {"llama-2-7b", "llama-3-8b", "llama-3.1-405b"} <= set(found)
    assert all(i.startswith("llama-") for i in found)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("llama3:8b", ["llama-3-8b"]),
        ("meta-llama/Meta-Llama-3-8B", ["llama-3-8b"]),
        ("mixtral:8x7b", ["mixtral-8x7b"]),
        ("Llama3.1:70b", ["llama-3.1-70b"]),
        ("LLAMA-3-8B", ["llama-3-8b"]),
        ("codellama:34b", ["code-llama-34b"]),
    ],
)
def test_aliases_tags_and_hf_ids_find_one_entry(query: str, expected: list[str]) -> None:
    assert ids(query) == expected


def test_a_size_narrows_a_family() -> None:
    found = ids("llama 70b")
    assert set(found) >= {"llama-2-70b", "llama-3-70b", "llama-3.1-70b"}
    assert all("70b" in i for i in found)


@pytest.mark.parametrize(
    ("query", "family"),
    [
        ("whisper", "whisper"),
        ("stable diffusion", "stable-diffusion"),
        ("sam", "sam"),
        ("alphafold", "alphafold"),
    ],
)
def test_family_names(query: str, family: str) -> None:
    found = resolve(query, CATALOG).matches
    assert found
    assert any(m.ref.model.family == family for m in found)


def test_whisper_large() -> None:
    assert all("whisper-large" in i for i in ids("whisper large"))


def test_typos_get_suggestions_and_no_matches() -> None:
    result = resolve("lama", CATALOG)
    assert result.matches == ()
    assert "llama" in result.suggestions
    assert "whisper" in resolve("wisper", CATALOG).suggestions


def test_nonsense_has_no_matches_and_no_crash() -> None:
    assert resolve("zzzzqqq", CATALOG).matches == ()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_resolves_without_error(text: str) -> None:
    result = resolve(text, CATALOG)
    assert isinstance(result.matches, tuple)
