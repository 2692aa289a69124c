"""Find catalog entries by the names people type.

"llama" gives the Llama family, "llama 70b" its 70B sizes, "llama3:8b" (an
Ollama tag), "meta-llama/Meta-Llama-3-8B" (a Hugging Face id) or "whisper
large" one entry or a few. Case, punctuation and spacing do not matter, and
"llama3" reads as "llama 3". A query that matches nothing gets the closest
names for "did you mean". Pure: it reads only the catalog it is given.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field

from canirun.catalog.loader import Catalog, VariantRef

_SEPARATORS = re.compile(r"[^a-z0-9.]+")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)")
_STRAY_DOTS = re.compile(r"(?<!\d)\.|\.(?!\d)")


def normalize(text: str) -> str:
    """Lower case, ASCII, one space between words, "llama3" -> "llama 3", "r+" -> "r plus"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    lowered = ascii_text.lower().replace("+", " plus ")
    spaced = _STRAY_DOTS.sub(" ", _SEPARATORS.sub(" ", lowered))
    return " ".join(_LETTER_DIGIT.sub(" ", spaced).split())


@dataclass(frozen=True, slots=True)
class Match:
    ref: VariantRef
    how: str  # "exact name", "model name", "family", "words"
    score: int


@dataclass(frozen=True, slots=True)
class Resolution:
    query: str
    matches: tuple[Match, ...]
    suggestions: tuple[str, ...] = field(default=())


def _variant_names(ref: VariantRef) -> list[str]:
    v = ref.variant
    names = [ref.id, v.name, *v.aliases]
    if v.hf_repo:
        names += [v.hf_repo, v.hf_repo.split("/")[-1]]
    return names


def _model_names(ref: VariantRef) -> list[str]:
    m = ref.model
    return [m.id, m.name, *m.aliases]


@dataclass(frozen=True, slots=True)
class _Entry:
    ref: VariantRef
    variant_names: frozenset[str]
    model_names: frozenset[str]
    family: str
    words: frozenset[str]


def _index(catalog: Catalog) -> list[_Entry]:
    entries = []
    for ref in catalog.variants():
        vnames = frozenset(normalize(n) for n in _variant_names(ref))
        mnames = frozenset(normalize(n) for n in _model_names(ref))
        family = normalize(ref.model.family)
        words: set[str] = set()
        for name in (*vnames, *mnames, family, normalize(ref.variant.key)):
            words.update(name.split())
        entries.append(_Entry(ref, vnames, mnames, family, frozenset(words)))
    return entries


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


def vocabulary(catalog: Catalog) -> list[str]:
    """Every name a query can be compared with, for suggestions."""
    names: set[str] = set()
    for ref in catalog.variants():
        names.update(normalize(n) for n in (*_variant_names(ref), *_model_names(ref)))
        names.add(normalize(ref.model.family))
    return sorted(names)


def resolve(query: str, catalog: Catalog) -> Resolution:
    norm = normalize(query)
    tokens = norm.split()
    matches = []
    for entry in _index(catalog):
        scored = _score(entry, norm, tokens)
        if scored is not None:
            matches.append(Match(entry.ref, scored[1], scored[0]))
    if matches:
        if max(m.score for m in matches) >= 80:
            # A name or family hit: keep those, drop looser word matches.
            matches = [m for m in matches if m.score >= 80]
        matches.sort(key=lambda m: -m.score)
        return Resolution(query, tuple(matches))
    close = difflib.get_close_matches(norm, vocabulary(catalog), n=5, cutoff=0.6)
    return Resolution(query, (), tuple(close))
