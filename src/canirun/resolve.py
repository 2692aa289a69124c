"""Find catalog entries by the names people type.

"llama" gives the Llama family, "llama 70b" its 70B sizes, "llama3:8b" (an
Ollama tag, from the variants' `ollama.tags`), "meta-llama/Meta-Llama-3-8B" (a
Hugging Face id, also as an https://huggingface.co/ URL or an hf.co/...:QUANT
reference) or "whisper large" one entry or a few. Case, punctuation and spacing
do not matter, and "llama3" reads as "llama 3". A tag or file that names a quant
(``llama3:8b-instruct-q4_K_M``) also selects that precision. A query that
matches nothing gets the closest names a user can type for "did you mean".
Pure: it reads only the catalog it is given.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Callable

import msgspec

from canirun.catalog.loader import Catalog, VariantRef
from canirun.names import Reference, parse

_SEPARATORS = re.compile(r"[^a-z0-9.]+")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)")
_STRAY_DOTS = re.compile(r"(?<!\d)\.|\.(?!\d)")


def normalize(text: str) -> str:
    """Lower case, ASCII, one space between words, "llama3" -> "llama 3", "r+" -> "r plus"."""
    if not text.isascii():  # NFKD is the identity on ASCII, the catalog's usual case
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    lowered = text.lower().replace("+", " plus ")
    spaced = _STRAY_DOTS.sub(" ", _SEPARATORS.sub(" ", lowered))
    return " ".join(_LETTER_DIGIT.sub(" ", spaced).split())


class Match(msgspec.Struct, frozen=True):
    ref: VariantRef
    how: str  # "ollama tag", "hugging face id", "exact name", "model name", "family", "words"
    score: int
    precision: str | None = None  # named by the reference (an Ollama or GGUF quant)
    note: str | None = None  # what the reference was read as, a retargeted tag...


class Resolution(msgspec.Struct, frozen=True):
    query: str
    matches: tuple[Match, ...]
    suggestions: tuple[str, ...] = msgspec.field(default=())


def _variant_names(ref: VariantRef) -> list[str]:
    v = ref.variant
    names = [ref.id, v.name, *v.aliases]
    # A re-upload keeps the repository name: "Meta-Llama-3.1-8B-Instruct" alone finds it too.
    names += [a.rsplit("/", 1)[-1] for a in v.aliases if "/" in a]
    if v.hf_repo:
        names += [v.hf_repo, v.hf_repo.split("/")[-1]]
    if v.ollama:
        names += v.ollama.tags
    return names


def _model_names(ref: VariantRef) -> list[str]:
    m = ref.model
    return [m.id, m.name, *m.aliases]


class _Entry(msgspec.Struct, frozen=True):
    ref: VariantRef
    variant_names: frozenset[str]
    model_names: frozenset[str]
    family: str
    words: frozenset[str]


class _Index(msgspec.Struct, frozen=True):
    entries: list[_Entry]
    tags: dict[str, VariantRef]  # lower-cased Ollama tag -> the variant it pulls
    tag_spelling: dict[str, str]  # lower-cased Ollama tag -> as the library spells it
    display: dict[str, str]  # normalized name -> a spelling a user can type


def typed_names(ref: VariantRef) -> list[str]:
    """Every name of a variant and its model that the index normalises."""
    return [*_variant_names(ref), *_model_names(ref), ref.model.family, ref.variant.key]


def name_forms(catalog: Catalog) -> dict[str, str]:
    """Each name of the catalog and its normalised form (compiled.json keeps the shipped
    catalog's, scripts/compile_catalog.py)."""
    return {name: normalize(name) for ref in catalog.variants() for name in typed_names(ref)}


def _build(catalog: Catalog) -> _Index:
    # Names repeat across a model's variants (its name, family, aliases): each distinct
    # spelling is normalised once, and the shipped ones come normalised (Catalog.name_forms).
    known = catalog.name_forms

    @functools.cache
    def norm(name: str) -> str:
        found = known.get(name)
        return found if found is not None else normalize(name)

    entries = []
    tags: dict[str, VariantRef] = {}
    spelling: dict[str, str] = {}
    display: dict[str, str] = {}
    for ref in catalog.variants():
        vnames = frozenset(norm(n) for n in _variant_names(ref))
        mnames = frozenset(norm(n) for n in _model_names(ref))
        family = norm(ref.model.family)
        words: set[str] = set()
        for name in (*vnames, *mnames, family, norm(ref.variant.key)):
            words.update(name.split())
        entries.append(_Entry(ref, vnames, mnames, family, frozenset(words)))
        for tag in ref.variant.ollama.tags if ref.variant.ollama else ():
            tags[tag.lower()] = ref
            spelling[tag.lower()] = tag
        typed = [*_variant_names(ref)[1:], *_model_names(ref)[1:], ref.model.family]
        for name in typed:
            display.setdefault(norm(name), name)
    display.pop("", None)
    return _Index(entries, tags, spelling, display)


_CACHE: list[tuple[Catalog, _Index]] = []


def _index(catalog: Catalog) -> _Index:
    """Built once per catalog (check resolves a few names, a fuzz test thousands)."""
    if not _CACHE or _CACHE[0][0] is not catalog:
        _CACHE[:] = [(catalog, _build(catalog))]
    return _CACHE[0][1]


def _score(entry: _Entry, query: str, tokens: list[str]) -> tuple[int, str] | None:
    if query in entry.variant_names:
        return 100, "exact name"
    if query in entry.model_names:
        return 90, "model name"
    if query == entry.family:
        return 80, "family"
    if tokens and all(t in entry.words for t in tokens):
        # Prefer entries of the queried family, then the ones with fewer extra words.
        family_bonus = 10 if entry.family.split()[0] == tokens[0] else 0
        return 60 + family_bonus - min(len(entry.words), 20) // 4, "words"
    return None


# Words that are never a model on their own: a size (8b, 30b, a3b, e4b, 8x7b, 270m), a
# version (3, 3.1), a tuning suffix. Typed unquoted after a name they belong to it.
_SPEC_WORD = re.compile(
    r"^(?:[ae]?\d+(?:\.\d+)?[bmk]|\d+x\d+(?:\.\d+)?b|v?\d+(?:\.\d+)*|instruct|it|chat|base)$",
    re.IGNORECASE,
)


def join_spec_words(queries: list[str], keep: Callable[[str], bool]) -> list[str]:
    """``check qwen3 30b a3b`` means "qwen3 30b a3b": a query made only of size, version or
    tuning words joins the one before it, unless ``keep`` says either stands alone (a path)."""
    out: list[str] = []
    for query in queries:
        if out and _SPEC_WORD.match(query.strip()) and not keep(out[-1]) and not keep(query):
            out[-1] = f"{out[-1]} {query.strip()}"
        else:
            out.append(query)
    return out


def vocabulary(catalog: Catalog) -> list[str]:
    """Every name a user can type that finds something, as the catalog spells it."""
    return sorted(set(_index(catalog).display.values()))


def _by_name(index: _Index, query: str) -> list[Match]:
    norm = normalize(query)
    tokens = norm.split()
    matches = []
    for entry in index.entries:
        scored = _score(entry, norm, tokens)
        if scored is not None:
            matches.append(Match(entry.ref, scored[1], scored[0]))
    if matches and max(m.score for m in matches) >= 80:
        # A name or family hit: keep those, drop looser word matches.
        matches = [m for m in matches if m.score >= 80]
    return sorted(matches, key=lambda m: -m.score)


def _tag_note(ref: VariantRef, tag: str, candidate: str) -> str:
    ollama = ref.variant.ollama
    assert ollama is not None
    parts = [f"Ollama library as of {ollama.as_of}: {candidate} is {ref.variant.name}"]
    if candidate.lower() != tag.lower():
        parts.append(f"{tag!r} read as {candidate}")
    if ollama.retargeted:
        parts.append(ollama.retargeted)
    return "; ".join(parts)


def _by_reference(index: _Index, query: str, parsed: Reference) -> list[Match]:
    """A tag, id, URL or file: the first candidate name that the catalog knows."""
    if parsed.quant and parsed.precision is None:
        quant_note = f"{parsed.quant} is not a precision canirun sizes; every precision is shown"
    else:
        quant_note = None
    for candidate in parsed.candidates:
        ref = index.tags.get(candidate.lower()) if parsed.kind == "ollama" else None
        if ref is not None:
            said = _tag_note(ref, query.strip(), candidate)
            said = f"{said}; {quant_note}" if quant_note else said
            return [Match(ref, "ollama tag", 100, parsed.precision, said)]
        found = [m for m in _by_name(index, candidate) if m.score >= 90]
        if found:
            how = "hugging face id" if parsed.kind == "hf" else found[0].how
            read = None if candidate == parsed.candidates[0] else f"read as {candidate!r}"
            note = "; ".join(n for n in (read, quant_note) if n) or None
            return [Match(m.ref, how, m.score, parsed.precision, note) for m in found]
    return []


def _suggest(index: _Index, query: str, parsed: Reference) -> tuple[str, ...]:
    if parsed.kind == "ollama":
        names = index.tag_spelling | index.display
        key = parsed.candidates[0].lower()
    else:
        names = index.display
        key = normalize(query)
    close = difflib.get_close_matches(key, list(names), n=5, cutoff=0.6)
    return tuple(dict.fromkeys(names[c] for c in close))


def resolve(query: str, catalog: Catalog) -> Resolution:
    """The variants a typed name means: an Ollama tag, hf.co/URL or quant tag first (a
    tag's precision is kept on the match), else names, aliases and families scored by
    how exactly they match; no match gives the closest names as suggestions.
    """
    index = _index(catalog)
    parsed = parse(query)
    matches = _by_reference(index, query, parsed) if parsed.kind != "plain" else []
    if not matches:
        matches = _by_name(index, query)
    if matches:
        return Resolution(query, tuple(matches))
    return Resolution(query, (), _suggest(index, query, parsed))
