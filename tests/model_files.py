"""Model files the tests write: GGUF headers with real shapes, safetensors headers, stores.

GGUF files are written with ``gguf.GGUFWriter`` (llama.cpp's own writer) with
the tensor data left as a sparse hole, so a file with a 1B model's real shapes
has its real size but takes no disk space and no time to write.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from canirun.catalog.schema import Arch

Tensor = tuple[str, Sequence[int], str]  # name, ne (row length first), ggml type name


def write_gguf(
    path: Path,
    arch: str,
    metadata: dict[str, Any],
    tensors: Iterable[Tensor],
    *,
    split_max_tensors: int = 0,
) -> list[Path]:
    """A GGUF file (or split set) with these keys and tensor infos; data left sparse."""
    import numpy as np
    from gguf import GGUFWriter
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    writer = GGUFWriter(path, arch, split_max_tensors=split_max_tensors)
    for key, value in metadata.items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        elif isinstance(value, str):
            writer.add_string(key, value)
        else:
            writer.add_array(key, value)
    sizes: list[int] = []
    for name, ne, type_name in tensors:
        qtype = GGMLQuantizationType[type_name]
        block, block_bytes = GGML_QUANT_SIZES[qtype]
        elements = 1
        for d in ne:
            elements *= d
        nbytes = elements // block * block_bytes
        sizes.append(nbytes)
        writer.add_tensor_info(name, list(reversed(ne)), np.dtype(np.float32), nbytes, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    assert writer.fout is not None
    paths = writer.format_shard_names(path)
    for fout, part in zip(writer.fout, writer.tensors, strict=True):
        start = -(-fout.tell() // 32) * 32
        data = sum(-(-ti.nbytes // 32) * 32 for ti in part.values())
        fout.truncate(start + data)  # a sparse hole where the weights would be
    writer.close()
    return paths


def llama_tensors(arch: Arch, types: dict[str, str] | None = None) -> list[Tensor]:
    """The tensors llama.cpp's converter writes for a llama-style model, at one type each."""
    t = {"default": "F16", "norm": "F32", **(types or {})}
    hd = arch.effective_head_dim
    q, kv, h, ff = arch.heads * hd, arch.kv_heads * hd, arch.hidden, arch.intermediate
    out: list[Tensor] = [("token_embd.weight", (h, arch.vocab), t.get("token_embd", t["default"]))]
    for i in range(arch.layers):
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", (h,), t["norm"]),
            (b + "attn_q.weight", (h, q), t.get("attn_q", t["default"])),
            (b + "attn_k.weight", (h, kv), t.get("attn_k", t["default"])),
            (b + "attn_v.weight", (h, kv), t.get("attn_v", t["default"])),
            (b + "attn_output.weight", (q, h), t.get("attn_output", t["default"])),
            (b + "ffn_norm.weight", (h,), t["norm"]),
            (b + "ffn_gate.weight", (h, ff), t.get("ffn_gate", t["default"])),
            (b + "ffn_up.weight", (h, ff), t.get("ffn_up", t["default"])),
            (b + "ffn_down.weight", (ff, h), t.get("ffn_down", t["default"])),
        ]
    out.append(("output_norm.weight", (h,), t["norm"]))
    if not arch.tied_embeddings:
        out.append(("output.weight", (h, arch.vocab), t.get("output", t["default"])))
    return out


def llama_metadata(arch: Arch, gguf_arch: str = "llama", **extra: Any) -> dict[str, Any]:
    a = gguf_arch
    meta: dict[str, Any] = {
        "general.name": extra.pop("name", "Tiny Llama"),
        f"{a}.block_count": arch.layers,
        f"{a}.context_length": arch.max_context,
        f"{a}.embedding_length": arch.hidden,
        f"{a}.feed_forward_length": arch.intermediate,
        f"{a}.attention.head_count": arch.heads,
        f"{a}.attention.head_count_kv": arch.kv_heads,
        f"{a}.attention.key_length": arch.effective_head_dim,
        f"{a}.attention.value_length": arch.effective_head_dim,
        f"{a}.vocab_size": arch.vocab,
    }
    meta.update(extra)
    return meta


TINY = Arch(
    source="test",
    layers=4,
    hidden=256,
    heads=8,
    kv_heads=2,
    intermediate=512,
    vocab=1024,
    max_context=8192,
    gguf_arch="llama",
)


def tiny_gguf(path: Path, **kw: Any) -> Path:
    """A 4-layer llama-style F16 file with real (small) shapes."""
    write_gguf(path, "llama", llama_metadata(TINY, **kw), llama_tensors(TINY))
    return path


# --- safetensors ---------------------------------------------------------------

_ST_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I8": 1, "U8": 1, "F8_E4M3": 1, "I64": 8}


def write_safetensors(path: Path, tensors: dict[str, tuple[str, Sequence[int]]]) -> int:
    """A safetensors file (8-byte header length, JSON header, sparse data); its data bytes."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = _ST_BYTES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return offset


def hf_config(arch: Arch, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": arch.layers,
        "hidden_size": arch.hidden,
        "num_attention_heads": arch.heads,
        "num_key_value_heads": arch.kv_heads,
        "intermediate_size": arch.intermediate,
        "vocab_size": arch.vocab,
        "max_position_embeddings": arch.max_context,
        "tie_word_embeddings": arch.tied_embeddings,
        "torch_dtype": "bfloat16",
    }
    config.update(extra)
    return config


def hf_tensors(arch: Arch, dtype: str = "BF16") -> dict[str, tuple[str, Sequence[int]]]:
    """Transformers' Llama tensor names and (out, in) shapes."""
    hd = arch.effective_head_dim
    q, kv, h, ff = arch.heads * hd, arch.kv_heads * hd, arch.hidden, arch.intermediate
    out: dict[str, tuple[str, Sequence[int]]] = {
        "model.embed_tokens.weight": (dtype, (arch.vocab, h))
    }
    for i in range(arch.layers):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = (dtype, (h,))
        out[p + "self_attn.q_proj.weight"] = (dtype, (q, h))
        out[p + "self_attn.k_proj.weight"] = (dtype, (kv, h))
        out[p + "self_attn.v_proj.weight"] = (dtype, (kv, h))
        out[p + "self_attn.o_proj.weight"] = (dtype, (h, q))
        out[p + "post_attention_layernorm.weight"] = (dtype, (h,))
        out[p + "mlp.gate_proj.weight"] = (dtype, (ff, h))
        out[p + "mlp.up_proj.weight"] = (dtype, (ff, h))
        out[p + "mlp.down_proj.weight"] = (dtype, (h, ff))
    out["model.norm.weight"] = (dtype, (h,))
    if not arch.tied_embeddings:
        out["lm_head.weight"] = (dtype, (arch.vocab, h))
    return out


def hf_folder(folder: Path, arch: Arch = TINY, *, shards: int = 1, dtype: str = "BF16") -> int:
    """config.json plus safetensors (sharded with an index when shards > 1); data bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(hf_config(arch)))
    tensors = list(hf_tensors(arch, dtype).items())
    if shards == 1:
        return write_safetensors(folder / "model.safetensors", dict(tensors))
    total = 0
    weight_map = {}
    per = -(-len(tensors) // shards)
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = dict(tensors[s * per : (s + 1) * per])
        total += write_safetensors(folder / name, part)
        weight_map.update(dict.fromkeys(part, name))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return total


# --- stores ------------------------------------------------------------------


def ollama_store(root: Path, name: str, tag: str, blob_from: Path) -> Path:
    """An Ollama store (manifests/registry.ollama.ai/library/NAME/TAG + blobs/sha256-...)."""
    import hashlib

    digest = hashlib.sha256(name.encode() + tag.encode()).hexdigest()
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    blob = blobs / f"sha256-{digest}"
    blob_from.rename(blob)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:0",
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": f"sha256:{digest}",
                "size": blob.stat().st_size,
            },
            {"mediaType": "application/vnd.ollama.image.license", "digest": "sha256:1", "size": 10},
        ],
    }
    where = root / "manifests" / "registry.ollama.ai" / "library" / name
    where.mkdir(parents=True, exist_ok=True)
    (where / tag).write_text(json.dumps(manifest))
    return blob


def hf_cache_model(hub: Path, repo: str, arch: Arch = TINY, revision: str = "abc123") -> Path:
    """models--ORG--NAME/{blobs,refs,snapshots/REV} with the snapshot files as symlinks."""
    base = hub / ("models--" + repo.replace("/", "--"))
    staging = base / "staging"
    hf_folder(staging, arch)
    blobs = base / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    snap = base / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(staging.iterdir())):
        blob = blobs / f"blob{i}"
        f.rename(blob)
        (snap / f.name).symlink_to(Path("../../blobs") / blob.name)
    staging.rmdir()
    (base / "refs").mkdir(exist_ok=True)
    (base / "refs" / "main").write_text(revision)
    return snap
