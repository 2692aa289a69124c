"""Read the references people paste: Ollama tags, Hugging Face ids and URLs, GGUF file names.

Pure string work, no catalog: each reference becomes the names worth looking up,
most specific first, and the precision it names, if any. Which model a name
means is catalog data (aliases, `hf_repo`, `ollama.tags`); this module only
knows the grammar of the references:

* Ollama: ``[namespace/]name:tag`` where the tag starts with the size and may end
  with a quant (``llama3:8b-instruct-q4_K_M``). ``ollama.com/library/...`` and
  ``registry.ollama.ai/library/...`` say the same thing.
* Hugging Face: ``org/repo``, ``hf.co/org/repo[:QUANT]`` (what ``ollama run`` takes)
  and ``https://huggingface.co/org/repo[/blob/<rev>/<file>.gguf]``. Re-uploads add
  suffixes to the original repository name (``-GGUF``, ``-AWQ``, ``-Instruct``), so
  those are peeled off one at a time.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from canirun.estimate.precision import PRECISIONS

Kind = Literal["ollama", "hf", "file", "plain"]

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_HF_HOSTS = ("huggingface.co/", "hf.co/", "www.huggingface.co/")
_OLLAMA_HOSTS = ("ollama.com/library/", "www.ollama.com/library/", "registry.ollama.ai/library/")
_OLLAMA_REF = re.compile(
    r"^(?:[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*:[a-z0-9][a-z0-9._-]*$", re.I
)
_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# A llama.cpp file type as quantizers and Ollama spell it: q4_K_M, Q8_0, IQ4_XS, fp16...
_QUANT = re.compile(r"^(?:i?q\d(?:_[a-z0-9]+)*|fp16|f16|bf16|fp32|f32)$", re.IGNORECASE)
# Suffixes that re-uploads add to a repository name, with the precision they imply.
_REPO_SUFFIXES: tuple[tuple[str, str | None], ...] = (
    ("-gguf", None),
    ("-awq", "int4"),
    ("-gptq-int4", "int4"),
    ("-gptq-int8", "int8"),
    ("-fp8", "fp8"),
    ("-bnb-4bit", None),
    ("-instruct", None),
    ("-it", None),
    ("-chat", None),
    ("-hf", None),
    ("-base", None),
)


class Reference(msgspec.Struct, frozen=True):
    """What a typed name asks for: names to look up, and a precision if it named one."""

    kind: Kind
    candidates: tuple[str, ...]
    precision: str | None = None  # a canirun precision name (Q4_K_M, F16, int4...)
    quant: str | None = None  # the quant as typed, also when canirun does not size it


def ggml_precision(quant: str) -> str | None:
    """The canirun name of a llama.cpp file type; Ollama's 'fp16' is the GGUF F16."""
    upper = quant.upper()
    name = {"FP16": "F16", "FP32": "F32"}.get(upper, upper)
    found = PRECISIONS.get(name)
    return found.name if found is not None and found.family == "ggml" else None


def _split_quant(stem: str) -> tuple[str, str | None]:
    """'8b-instruct-q4_K_M' -> ('8b-instruct', 'q4_K_M'); no quant -> (stem, None)."""
    head, sep, last = stem.rpartition("-")
    if not sep:
        head, sep, last = stem.rpartition(".")
    if sep and head and _QUANT.match(last):
        return head, last
    return stem, None


def _ollama(ref: str) -> Reference:
    name, _, tag = ref.removeprefix("library/").partition(":")
    bare, quant = _split_quant(tag)
    size = bare.split("-")[0]
    tags = dict.fromkeys([f"{name}:{tag}", f"{name}:{bare}", f"{name}:{size}"])
    return Reference("ollama", tuple(tags), ggml_precision(quant) if quant else None, quant)


def _repo_names(org: str | None, repo: str) -> tuple[list[str], str | None]:
    """The repository and the names it was derived from, and the precision its suffixes imply."""
    names: list[str] = []
    precision = None
    current = repo
    while True:
        names += [f"{org}/{current}", current] if org else [current]
        for suffix, implied in _REPO_SUFFIXES:
            if current.lower().endswith(suffix) and len(current) > len(suffix):
                current = current[: -len(suffix)]
                precision = precision or implied
                break
        else:
            return names, precision


def _hf(path: str) -> Reference:
    path = path.split("?", 1)[0].split("#", 1)[0].strip("/")
    parts = path.split("/")
    org, repo = parts[0], parts[1] if len(parts) > 1 else ""
    repo, _, quant_text = repo.partition(":")  # hf.co/org/repo:Q4_K_M (Ollama)
    quant: str | None = quant_text or None
    rest = parts[2:]
    if len(rest) >= 3 and rest[0] in ("blob", "resolve") and rest[-1].lower().endswith(".gguf"):
        quant = quant or _split_quant(rest[-1][: -len(".gguf")])[1]
    if not repo:
        return Reference("plain", (org,))
    names, implied = _repo_names(org, repo)
    precision = ggml_precision(quant) if quant else implied
    return Reference("hf", tuple(dict.fromkeys(names)), precision, quant)


def _gguf_file(name: str) -> Reference:
    stem, quant = _split_quant(name[: -len(".gguf")])
    names, _ = _repo_names(None, stem)
    return Reference(
        "file", tuple(dict.fromkeys(names)), ggml_precision(quant) if quant else None, quant
    )


def parse(text: str) -> Reference:
    """Classify a typed model reference; anything else is a plain name."""
    ref = _SCHEME.sub("", text.strip())
    lowered = ref.lower()
    for host in _HF_HOSTS:
        if lowered.startswith(host):
            return _hf(ref[len(host) :])
    for host in _OLLAMA_HOSTS:
        if lowered.startswith(host):
            ref = ref[len(host) :]
            break
    if " " in ref:
        return Reference("plain", (text,))
    if _OLLAMA_REF.match(ref):
        return _ollama(ref)
    if _HF_ID.match(ref):
        return _hf(ref)
    if lowered.endswith(".gguf") and "/" not in ref:
        return _gguf_file(ref)
    return Reference("plain", (text,))
