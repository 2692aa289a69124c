"""A GGUF file (or a split set, ``-00001-of-00003.gguf``) as a ``LocalModel``.

Weights are the exact sum of the stored tensors (``gguf_file``); the numbers
for the KV cache come from the file's metadata, the way llama.cpp reads them
(``{arch}.block_count``, ``{arch}.attention.head_count_kv``, key/value
lengths, per-layer arrays, sliding windows). What cannot be derived is named,
and the KV cache is then unknown rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from canirun.catalog.gguf_file import ArrayInfo, GgufError, GgufHeader, TensorInfo, read_gguf
from canirun.catalog.gguf_file import file_type_name as _file_type_name
from canirun.catalog.local_model import LocalModel, ModelFileError, open_regular
from canirun.catalog.schema import Arch, Encoder, Kind

SPLIT = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_LAYER = re.compile(r"^blk\.(\d+)\.")

# Encoder architectures llama.cpp runs for embeddings (no KV cache across calls).
ENCODERS = frozenset(
    {
        "bert",
        "nomic-bert",
        "nomic-bert-moe",
        "jina-bert-v2",
        "jina-bert-v3",
        "modern-bert",
        "neo-bert",
        "t5encoder",
    }
)
# Projector and adapter files: loaded next to a model, not models of their own.
NOT_MODELS = {"clip": "a vision/audio projector (mmproj)", "lora": "a LoRA adapter"}
# llama.cpp's sliding-window layers per architecture when the file has no
# sliding_window_pattern key: hparams.set_swa_pattern(n) in src/llama-model.cpp,
# i.e. n-1 of every n layers use the window.
SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "cohere2": 4, "gpt-oss": 2}


def split_parts(path: Path) -> list[Path]:
    """Every part of a split GGUF set, in order; just ``path`` when it is not split."""
    m = SPLIT.match(path.name)
    if m is None:
        return [path]
    count = int(m["count"])
    if count < 1 or count > 999:
        raise ModelFileError(path, f"a split set of {count} parts")
    digits = len(m["no"])
    parts = [
        path.with_name(f"{m['stem']}-{i:0{digits}d}-of-{m['count']}.gguf")
        for i in range(1, count + 1)
    ]
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise ModelFileError(
            path, f"split GGUF: {len(missing)} of {count} parts missing ({missing[0]})"
        )
    return parts


def read_header(path: Path) -> GgufHeader:
    stream, size = open_regular(path)
    try:
        with stream:
            return read_gguf(stream, size)
    except GgufError as exc:
        raise ModelFileError(path, str(exc)) from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read it: {exc.strerror or exc}") from None


def gguf_model(path: Path, name: str | None = None) -> LocalModel:
    """Read a GGUF file (all parts when split) into a ``LocalModel``."""
    parts = split_parts(path)
    headers = [read_header(p) for p in parts]
    return from_headers(
        headers, name or _display_name(parts[0]), str(parts[0]), tuple(str(p) for p in parts)
    )


def _display_name(path: Path) -> str:
    m = SPLIT.match(path.name)
    return m["stem"] if m else path.name.removesuffix(".gguf").removesuffix(".GGUF")


def from_headers(
    headers: list[GgufHeader], name: str, where: str, files: tuple[str, ...]
) -> LocalModel:
    meta = headers[0].metadata
    arch_name = meta.get("general.architecture")
    if not isinstance(arch_name, str) or not arch_name:
        raise ModelFileError(where, "no general.architecture in the GGUF metadata")
    if arch_name in NOT_MODELS:
        raise ModelFileError(where, f"{NOT_MODELS[arch_name]}, not a model: rate the model file")
    tensors = [t for h in headers for t in h.tensors]
    if not tensors:
        raise ModelFileError(where, "the GGUF file holds no tensors")
    total = sum(t.bytes for t in tensors)
    derived = Derive(meta, arch_name, tensors)
    kind: Kind = "embedding" if arch_name in ENCODERS else "llm"
    arch, missing = (None, None) if kind == "embedding" else derived.arch()
    return LocalModel(
        name=name,
        path=where,
        format="gguf",
        kind=kind,
        precision=_precision(meta, tensors),
        weights_bytes=total,
        params=sum(t.elements for t in tensors),
        architecture=arch_name,
        arch=arch,
        arch_missing=missing,
        encoder=derived.encoder() if kind == "embedding" else None,
        layer_bytes=_layer_bytes(tensors, derived.num("block_count")),
        active_fraction=_active_fraction(tensors, derived),
        files=files,
        notes=tuple(derived.notes),
    )


def _precision(meta: dict[str, Any], tensors: list[TensorInfo]) -> str:
    named = _file_type_name(meta.get("general.file_type"))
    if named:
        return named
    # No file type: the type holding most of the 2-D weights.
    by_type: dict[str, int] = {}
    for t in tensors:
        if len(t.shape) >= 2:
            by_type[t.type_name] = by_type.get(t.type_name, 0) + t.bytes
    return max(by_type, key=lambda k: by_type[k]) if by_type else tensors[0].type_name


def _layer_bytes(tensors: list[TensorInfo], layers: int | None) -> tuple[int, ...] | None:
    if not layers or layers > 10_000:
        return None
    per = [0] * layers
    for t in tensors:
        m = _LAYER.match(t.name)
        if m and int(m[1]) < layers:
            per[int(m[1])] += t.bytes
    return tuple(per) if any(per) else None


def _active_fraction(tensors: list[TensorInfo], d: Derive) -> float:
    count, used = d.num("expert_count"), d.num("expert_used_count")
    if not count or not used or used > count:
        return 1.0
    experts = sum(t.bytes for t in tensors if "_exps." in t.name)
    total = sum(t.bytes for t in tensors)
    return (total - experts + experts * used / count) / total if total else 1.0


class _Missing(Exception):
    pass


class Derive:
    """The decoder numbers from ``{arch}.*`` keys, with what was assumed said in notes."""

    def __init__(self, meta: dict[str, Any], arch: str, tensors: list[TensorInfo]) -> None:
        self.meta, self.a, self.tensors = meta, arch, tensors
        self.notes: list[str] = []

    def key(self, suffix: str) -> str:
        return f"{self.a}.{suffix}"

    def raw(self, suffix: str) -> Any:
        return self.meta.get(self.key(suffix))

    def num(self, suffix: str) -> int | None:
        value = self.raw(suffix)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
        return value

    def per_layer(self, suffix: str, pick: Callable[[list[int]], int] = max) -> int | None:
        """A scalar, or a per-layer array reduced with ``pick`` (the largest by default)."""
        value = self.raw(suffix)
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            if len(set(value)) > 1:
                self.notes.append(f"{self.key(suffix)} varies by layer: the largest is used")
            return pick(value)
        return self.num(suffix)

    def need(self, value: int | None, suffix: str) -> int:
        if not value:
            raise _Missing(f"no {self.key(suffix)} in the GGUF metadata")
        return value

    def vocab(self) -> int | None:
        tokens = self.meta.get("tokenizer.ggml.tokens")
        if isinstance(tokens, (ArrayInfo, list)):
            return tokens.length if isinstance(tokens, ArrayInfo) else len(tokens)
        if self.num("vocab_size"):
            return self.num("vocab_size")
        embd = next((t for t in self.tensors if t.name == "token_embd.weight"), None)
        return embd.shape[1] if embd is not None and len(embd.shape) == 2 else None

    def unsupported(self) -> str | None:
        """Attention the KV formula does not cover yet: the KV cache is then unknown."""
        if self.raw("attention.kv_lora_rank") and not self.num("attention.key_length_mla"):
            # Files converted before llama.cpp's MLA support (ggml-org/llama.cpp#12801) hold
            # attn_kv_b and no *_mla lengths: how today's llama.cpp caches them is not sized.
            return (
                f"{self.key('attention.kv_lora_rank')} without "
                f"{self.key('attention.key_length_mla')}: an MLA file from before llama.cpp's "
                "MLA support, whose KV cache is not modelled"
            )
        if self.raw("attention.indexer.head_count"):
            return (
                f"{self.key('attention.indexer.head_count')}: the sparse-attention indexer's "
                "cache (DeepSeek-V3.2) is not modelled yet"
            )
        if any(
            k.startswith((self.key("ssm."), self.key("wkv."), self.key("shortconv.")))
            for k in self.meta
        ):
            return (
                f"{self.a}: recurrent (state-space) layers, whose state canirun does not size yet"
            )
        kv = self.raw("attention.head_count_kv")
        if isinstance(kv, list) and any(v == 0 for v in kv):
            return (
                f"{self.key('attention.head_count_kv')}: layers without attention (a hybrid model)"
            )
        return None

    def window(self, layers: int) -> tuple[int | None, int]:
        window = self.num("attention.sliding_window")
        if not window:
            return None, 0
        pattern = self.raw("attention.sliding_window_pattern")
        if isinstance(pattern, list):
            return window, min(layers, sum(1 for v in pattern if v))
        n = pattern if isinstance(pattern, int) and pattern > 0 else SWA_PATTERN.get(self.a)
        if n is None:
            self.notes.append(
                f"{self.key('attention.sliding_window')} is set but no layer pattern is known: "
                "every layer is sized for the full context (an upper bound)"
            )
            return window, 0
        return window, sum(1 for il in range(layers) if il % n < n - 1)

    def arch(self) -> tuple[Arch | None, str | None]:
        from pydantic import ValidationError

        try:
            reason = self.unsupported()
            if reason:
                return None, reason
            return self._arch(), None
        except _Missing as exc:
            return None, str(exc)
        except ValidationError as exc:
            return None, f"inconsistent architecture numbers: {exc.errors()[0]['msg']}"

    def _arch(self) -> Arch:
        layers = self.need(self.num("block_count"), "block_count")
        hidden = self.need(self.num("embedding_length"), "embedding_length")
        heads = self.need(self.per_layer("attention.head_count"), "attention.head_count")
        kv_heads = self.per_layer("attention.head_count_kv") or heads
        k, v = self.num("attention.key_length"), self.num("attention.value_length")
        head_dim = None
        if k or v:
            k, v = k or v or 0, v or k or 0
            # One head_dim for K and V: their mean is exact when it is whole, else the larger.
            head_dim = (k + v) // 2 if (k + v) % 2 == 0 else max(k, v)
        ffn = self.per_layer("expert_feed_forward_length") or self.per_layer("feed_forward_length")
        experts, used = self.num("expert_count") or None, self.num("expert_used_count") or None
        if (experts is None) != (used is None):
            experts = used = None
        window, local = self.window(layers)
        fields: dict[str, Any] = {
            "source": "file",
            "layers": layers,
            "hidden": hidden,
            "heads": heads,
            "kv_heads": kv_heads,
            "head_dim": head_dim,
            "intermediate": self.need(ffn, "feed_forward_length"),
            "vocab": self.need(self.vocab(), "vocab_size"),
            "max_context": self.need(self.num("context_length"), "context_length"),
            "experts": experts,
            "experts_per_token": used,
            "sliding_window": window,
            "local_layers": local,
            "gguf_arch": self.a,
        }
        if experts:
            fields |= self._moe_layout()
        from canirun.catalog.constraints import validated

        return validated(Arch, fields | self._mla(heads))

    def _moe_layout(self) -> dict[str, Any]:
        """Dense leading layers and shared experts (DeepSeek, Kimi, GLM-4.5)."""
        out: dict[str, Any] = {}
        dense = self.num("leading_dense_block_count")
        if dense:
            out["dense_layers"] = dense
            if self.num("expert_feed_forward_length") and self.per_layer("feed_forward_length"):
                out["dense_intermediate"] = self.per_layer("feed_forward_length")
        shared = self.num("expert_shared_count")
        if shared:
            out["shared_experts"] = shared
            width = self.num("expert_shared_feed_forward_length")
            out |= {"shared_intermediate": width} if width else {}
        return out

    def _mla(self, heads: int) -> dict[str, Any]:
        """MLA as llama.cpp's converter writes it since ggml-org/llama.cpp#12801:
        key_length/value_length are the cached latent (kv_lora_rank + rope, kv_lora_rank, one
        KV head), key_length_mla/value_length_mla the per-head widths; canirun's Arch keeps the
        per-head form, as the catalog does from config.json (the cache is sized from the
        latent either way)."""
        latent = self.num("attention.kv_lora_rank")
        if not latent:
            return {}
        rope = self.need(self.num("rope.dimension_count"), "rope.dimension_count")
        return {
            "kv_lora_rank": latent,
            "q_lora_rank": self.num("attention.q_lora_rank") or None,
            "qk_rope_head_dim": rope,
            "head_dim": self.num("attention.key_length_mla"),
            "v_head_dim": self.need(
                self.num("attention.value_length_mla"), "attention.value_length_mla"
            ),
            "kv_heads": heads,
        }

    def encoder(self) -> Encoder | None:
        from pydantic import ValidationError

        from canirun.catalog.constraints import validated

        try:
            fields = dict(
                source="file",
                layers=self.need(self.num("block_count"), "block_count"),
                hidden=self.need(self.num("embedding_length"), "embedding_length"),
                heads=self.need(self.per_layer("attention.head_count"), "attention.head_count"),
                intermediate=self.need(
                    self.per_layer("feed_forward_length"), "feed_forward_length"
                ),
                max_tokens=self.need(self.num("context_length"), "context_length"),
            )
            return validated(Encoder, fields)
        except (_Missing, ValidationError):
            return None
