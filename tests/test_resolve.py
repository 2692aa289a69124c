"""Finding models by the names people type."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripts.ollama_tags import ollama_shaped_aliases, rewrite

from canirun.catalog import load_catalog
from canirun.catalog.constraints import validated
from canirun.catalog.schema import CatalogFile
from canirun.estimate.precision import PRECISIONS
from canirun.names import parse
from canirun.resolve import normalize, resolve, vocabulary

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
    assert "llama" in [s.lower() for s in result.suggestions]
    assert "whisper" in [s.lower() for s in resolve("wisper", CATALOG).suggestions]


def test_nonsense_has_no_matches_and_no_crash() -> None:
    assert resolve("zzzzqqq", CATALOG).matches == ()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_resolves_without_error(text: str) -> None:
    result = resolve(text, CATALOG)
    assert result.query == text
    assert all(m.ref.id in CATALOG.variant_by_id for m in result.matches)
    assert not (result.matches and result.suggestions)  # suggestions only when none matched


# The names a new user typed in issue 11, with what they must find. Only entries that exist in
# this catalog are listed; a family must give at least these ids and only ids of that family.
NAMES_PEOPLE_TYPE = [
    # family and model names
    ("qwen", {"qwen-2.5-7b", "qwen-2.5-72b", "qwen-2.5-coder-7b"}),
    ("phi-4", {"phi-4-14b"}),
    ("phi4", {"phi-4-14b"}),
    ("llama 3.3", {"llama-3.3-70b"}),
    ("Llama 3.2", {"llama-3.2-1b", "llama-3.2-3b"}),
    ("mistral small", {"mistral-small-24b", "mistral-small-2409-22b"}),
    ("mistral nemo", {"mistral-nemo-12b"}),
    ("qwen2.5-coder", {"qwen-2.5-coder-1.5b", "qwen-2.5-coder-32b"}),
    ("phi 3.5 mini", {"phi-3.5-mini"}),
    # sizes
    ("qwen 7b", {"qwen-2.5-7b", "qwen-2.5-coder-7b"}),
    ("qwen2.5 0.5b", {"qwen-2.5-0.5b"}),
    ("qwen2.5 coder 32b", {"qwen-2.5-coder-32b"}),
    ("llama 3.2 1b", {"llama-3.2-1b"}),
    # Ollama tags, as the library spells them
    ("qwen2.5:7b", {"qwen-2.5-7b"}),
    ("qwen2.5:latest", {"qwen-2.5-7b"}),
    ("qwen2.5:72b", {"qwen-2.5-72b"}),
    ("qwen2.5-coder:32b", {"qwen-2.5-coder-32b"}),
    ("llama3.2", {"llama-3.2-1b", "llama-3.2-3b"}),
    ("llama3.2:latest", {"llama-3.2-3b"}),
    ("llama3.2:1b", {"llama-3.2-1b"}),
    ("llama3.3:latest", {"llama-3.3-70b"}),
    ("phi4:latest", {"phi-4-14b"}),
    ("phi3.5:3.8b", {"phi-3.5-mini"}),
    ("mistral-nemo:12b", {"mistral-nemo-12b"}),
    ("mistral-small:latest", {"mistral-small-24b"}),
    ("mistral-small:22b", {"mistral-small-2409-22b"}),
    ("llama3.1:latest", {"llama-3.1-8b"}),
    ("gemma2:27b", {"gemma-2-27b"}),
    ("library/qwen2.5:7b", {"qwen-2.5-7b"}),
    ("https://ollama.com/library/qwen2.5:14b", {"qwen-2.5-14b"}),
    # Hugging Face ids, suffixed re-uploads, URLs, hf.co references and GGUF files
    ("Qwen/Qwen2.5-7B-Instruct", {"qwen-2.5-7b"}),
    ("Qwen/Qwen2.5-7B-Instruct-GGUF", {"qwen-2.5-7b"}),
    ("Qwen/Qwen2.5-7B", {"qwen-2.5-7b"}),
    ("https://huggingface.co/Qwen/Qwen2.5-7B-Instruct", {"qwen-2.5-7b"}),
    ("https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/tree/main", {"qwen-2.5-7b"}),
    ("huggingface.co/meta-llama/Llama-3.3-70B-Instruct", {"llama-3.3-70b"}),
    ("google/gemma-2-9b-it", {"gemma-2-9b"}),
    ("bartowski/gemma-2-9b-it-GGUF", {"gemma-2-9b"}),
    ("microsoft/phi-4", {"phi-4-14b"}),
    ("mistralai/Mistral-Nemo-Instruct-2407", {"mistral-nemo-12b"}),
    ("Meta-Llama-3.1-8B-Instruct", {"llama-3.1-8b"}),
    ("Qwen2.5-Coder-14B-Instruct-Q4_K_M.gguf", {"qwen-2.5-coder-14b"}),
]


@pytest.mark.parametrize(("query", "expected"), NAMES_PEOPLE_TYPE)
def test_names_people_type(query: str, expected: set[str]) -> None:
    found = ids(query)
    assert expected <= set(found), (query, found)
    if len(expected) == 1 and (":" in query or "/" in query or query.endswith(".gguf")):
        # A tag, an id or a file is one model, never a family.
        assert found == sorted(expected), (query, found)


@pytest.mark.parametrize(
    ("query", "expected", "precision"),
    [
        ("llama3:8b-instruct-q4_K_M", "llama-3-8b", "Q4_K_M"),
        ("llama3.1:8b-instruct-q8_0", "llama-3.1-8b", "Q8_0"),
        ("qwen2.5:7b-instruct-q4_K_M", "qwen-2.5-7b", "Q4_K_M"),
        ("qwen2.5:7b-instruct-fp16", "qwen-2.5-7b", "F16"),
        ("phi4:14b-q4_K_M", "phi-4-14b", "Q4_K_M"),
        ("mistral-nemo:12b-instruct-2407-q6_K", "mistral-nemo-12b", "Q6_K"),
        ("hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M", "qwen-2.5-7b", "Q4_K_M"),
        ("hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q8_0", "llama-3.2-3b", "Q8_0"),
        ("hf.co/bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q5_K_M", "llama-3.1-8b", "Q5_K_M"),
        (
            "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct-GGUF/blob/main/"
            "qwen2.5-7b-instruct-q4_k_m.gguf",
            "qwen-2.5-7b",
            "Q4_K_M",
        ),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", "qwen-2.5-7b", "int4"),
    ],
)
def test_a_quant_in_the_name_selects_that_precision(
    query: str, expected: str, precision: str
) -> None:
    matches = resolve(query, CATALOG).matches
    assert [m.ref.id for m in matches] == [expected]
    assert matches[0].precision == precision


def test_a_quant_canirun_does_not_size_is_said_not_guessed() -> None:
    (match,) = resolve("qwen2.5:7b-instruct-q5_1", CATALOG).matches
    assert match.ref.id == "qwen-2.5-7b"
    assert match.precision is None
    assert match.note is not None
    assert "q5_1 is not a precision" in match.note


def test_a_tag_match_says_its_date_and_a_retargeted_tag_says_so() -> None:
    (match,) = resolve("mistral-small:latest", CATALOG).matches
    assert match.how == "ollama tag"
    assert match.note is not None
    assert "as of 2025-03" in match.note
    assert "22B Mistral Small 2409" in match.note


def test_tags_are_data_one_variant_per_tag() -> None:
    seen: dict[str, str] = {}
    for ref in CATALOG.variants():
        for tag in ref.variant.ollama.tags if ref.variant.ollama else ():
            assert tag not in seen, (tag, seen.get(tag), ref.id)
            seen[tag] = ref.id
            assert ids(tag) == [ref.id], tag
            # An Ollama tag is data in its own field, not also an alias.
            assert tag not in ref.variant.aliases
    assert len(seen) >= 60


def test_an_unknown_tag_suggests_tags_of_that_library() -> None:
    result = resolve("qwen2.5:8b", CATALOG)
    assert result.matches == ()
    assert "qwen2.5:7b" in result.suggestions


TAGS = {t for r in CATALOG.variants() for t in (r.variant.ollama.tags if r.variant.ollama else ())}


@pytest.mark.parametrize("query", ["qwen3:99b", "Qwen/Qwen9-7B", "mistral smal", "lama 3.3"])
def test_suggestions_are_names_a_user_can_type(query: str) -> None:
    result = resolve(query, CATALOG)
    assert result.suggestions
    for suggestion in result.suggestions:
        assert resolve(suggestion, CATALOG).matches, suggestion
        # Typeable: as the catalog spells it, not a normalised internal key.
        assert suggestion in set(vocabulary(CATALOG)) | TAGS


def test_every_vocabulary_name_resolves() -> None:
    names = vocabulary(CATALOG)
    assert len(names) > 500
    for name in names:
        assert resolve(name, CATALOG).matches, name


@pytest.mark.parametrize(
    ("text", "kind", "first"),
    [
        ("llama3:8b-instruct-q4_K_M", "ollama", "llama3:8b-instruct-q4_K_M"),
        ("registry.ollama.ai/library/qwen2.5:7b", "ollama", "qwen2.5:7b"),
        (
            "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct?x=1#top",
            "hf",
            "Qwen/Qwen2.5-7B-Instruct",
        ),
        (
            "hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M",
            "hf",
            "bartowski/Qwen2.5-7B-Instruct-GGUF",
        ),
        ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "file", "Qwen2.5-7B-Instruct"),
        ("llama 70b", "plain", "llama 70b"),
    ],
)
def test_parse_reads_the_reference_grammar(text: str, kind: str, first: str) -> None:
    parsed = parse(text)
    assert parsed.kind == kind
    assert parsed.candidates[0] == first


_REFERENCE_PARTS = st.sampled_from(
    [
        "qwen2.5",
        "llama3.2",
        "hf.co/",
        "https://huggingface.co/",
        "ollama.com/library/",
        "/",
        ":",
        "-",
        "q4_K_M",
        "7b",
        "-GGUF",
        "-Instruct",
        ".gguf",
        "blob/main/",
        " ",
        "latest",
        "Qwen",
        "?",
        "#",
        "::",
        "//",
        "é",
        "\x00",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_REFERENCE_PARTS, max_size=8).map("".join))
def test_reference_shaped_text_never_crashes_and_suggestions_resolve(text: str) -> None:
    result = resolve(text, CATALOG)
    assert not (result.matches and result.suggestions)
    for match in result.matches:
        assert match.ref.id in CATALOG.variant_by_id
        assert match.precision is None or match.precision in PRECISIONS
    for suggestion in result.suggestions:
        assert resolve(suggestion, CATALOG).matches, suggestion


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_suggestions_for_any_text_resolve(text: str) -> None:
    for suggestion in resolve(text, CATALOG).suggestions:
        assert resolve(suggestion, CATALOG).matches, suggestion


DATA = Path(__file__).resolve().parent.parent / "src/canirun/catalog/data"


def test_no_shipped_file_keeps_ollama_tags_in_aliases() -> None:
    for path in sorted(DATA.glob("*.toml")):
        found = ollama_shaped_aliases(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
        assert not found, (
            f"{found}: Ollama tags belong in the variant's dated `ollama` field; "
            "run `python scripts/ollama_tags.py --write --as-of YYYY-MM FILE` and check them"
        )


def _as_aliases(text: str) -> str:
    """code.toml as it was written before the `ollama` field: tags first in the aliases."""
    out, tags = [], None
    for line in text.split("\n"):
        if line.startswith("ollama = "):
            tags = tomllib.loads(line)["ollama"]["tags"]
            continue
        if line.startswith("aliases = ") and tags is not None:
            out.append(f"aliases = {json.dumps(tags + tomllib.loads(line)['aliases'])}")
            tags = None
            continue
        out.append(line)
    return "\n".join(out)


def test_the_move_script_round_trips_a_real_file() -> None:
    shipped = (DATA / "code.toml").read_text(encoding="utf-8")
    before = _as_aliases(shipped)
    assert ollama_shaped_aliases(tomllib.loads(before))
    after, changed = rewrite(before, "2025-03")
    parsed = validated(CatalogFile, tomllib.loads(after))
    original = validated(CatalogFile, tomllib.loads(shipped))
    tags = {
        f"{m.id}-{v.key}": (v.ollama.tags if v.ollama else None, v.aliases)
        for m in parsed.model
        for v in m.variants
    }
    want = {
        f"{m.id}-{v.key}": (v.ollama.tags if v.ollama else None, v.aliases)
        for m in original.model
        for v in m.variants
    }
    assert tags == want
    assert changed == sum(1 for t, _ in want.values() if t)
    moved = [v.ollama for m in parsed.model for v in m.variants if v.ollama]
    assert all(o.estimate and o.as_of == "2025-03" for o in moved)


def test_unquoted_size_and_version_words_belong_to_the_name_before_them() -> None:
    from canirun.resolve import join_spec_words

    def never(query: str) -> bool:
        return False

    assert join_spec_words(["qwen3", "30b", "a3b"], never) == ["qwen3 30b a3b"]
    assert join_spec_words(["llama", "3.1", "8B", "instruct"], never) == ["llama 3.1 8B instruct"]
    assert join_spec_words(["mixtral", "8x7b", "gemma", "3", "27b"], never) == [
        "mixtral 8x7b",
        "gemma 3 27b",
    ]
    # A first word stands alone; a path never joins, nor is joined.
    assert join_spec_words(["8b"], never) == ["8b"]
    is_path = {"./m.gguf"}.__contains__
    assert join_spec_words(["./m.gguf", "8b"], is_path) == ["./m.gguf", "8b"]
    assert join_spec_words(["llama", "phi4"], never) == ["llama", "phi4"]


def test_check_reads_an_unquoted_multi_word_name_as_one(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from canirun.cli import app

    hardware = Path(__file__).parent / "data" / "workstation.json"
    args = ["check", "qwen3", "30b", "a3b", "--json", "--hardware", str(hardware)]
    done = CliRunner().invoke(app, [*args, "--ram-bandwidth", "off"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert [m["model_id"] for m in report["matches"]] == ["qwen3-moe-30b-a3b"]
    assert report["matches"][0]["query"] == "qwen3 30b a3b"


def test_the_shipped_name_forms_are_what_normalize_gives() -> None:
    """compiled.json's name table must be current for the code too: a change to
    normalize() without scripts/compile_catalog.py would make check find other models."""
    from canirun.catalog.loader import load_catalog
    from canirun.resolve import name_forms

    catalog = load_catalog((), user_dir=False)
    assert catalog.name_forms, "the shipped catalog arrives with its names normalised"
    assert dict(catalog.name_forms) == name_forms(catalog), "run scripts/compile_catalog.py"


def test_a_user_entry_is_found_without_a_shipped_form(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from canirun.catalog.loader import load_catalog
    from tests.test_catalog import USER_MODEL

    path = tmp_path / "extra.toml"
    path.write_text(USER_MODEL)
    catalog = load_catalog((str(path),), user_dir=False)
    assert "Tiny Test LM" not in catalog.name_forms
    found = resolve("tiny test lm", catalog)
    assert [m.ref.id for m in found.matches][:1] == ["tiny-test-lm-1b"]
