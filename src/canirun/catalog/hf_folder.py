"""A Hugging Face model folder as a ``LocalModel``: config.json plus the safetensors headers.

A safetensors file starts with an 8-byte length and a JSON header naming every
tensor's dtype, shape and byte range, so the weights are exact without reading
them. Sharded checkpoints are found through ``model.safetensors.index.json``.
Diffusers folders (``model_index.json``) sum their components;
sentence-transformers folders (``modules.json``) are embeddings. PyTorch
``.bin`` checkpoints are not opened (unpacking them can run code): their file
sizes are used.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from canirun.catalog.local_model import LocalModel, ModelFileError, open_regular, read_json
from canirun.catalog.schema import Arch, Encoder, FileFormat, Kind
from canirun.records import Record, record

# The safetensors library refuses headers over 100 MB (MAX_HEADER_SIZE); so does canirun.
MAX_HEADER = 100_000_000
MAX_SHARDS = 10_000
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}
_PRECISION_OF_DTYPE = {
    "BF16": "bf16",
    "F16": "fp16",
    "F32": "fp32",
    "F64": "fp32",
    "F8_E4M3": "fp8",
    "F8_E5M2": "fp8",
    "I8": "int8",
    "U8": "int8",
}
ENCODER_TYPES = frozenset(
    {
        "bert",
        "roberta",
        "xlm-roberta",
        "mpnet",
        "distilbert",
        "deberta-v2",
        "electra",
        "nomic_bert",
        "modernbert",
        "new",
        "camembert",
    }
)
VISION_TYPES = frozenset(
    {"vit", "dinov2", "sam", "siglip_vision_model", "clip_vision_model", "convnext"}
)
SPEECH_TYPES = frozenset({"whisper", "wav2vec2", "hubert", "seamless_m4t", "speecht5"})
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")


@record(slots=True)
class Tensors(Record):
    """What the safetensors headers of one checkpoint hold."""

    bytes_by_dtype: dict[str, int]
    elements: int
    layer_bytes: dict[int, int]
    expert_bytes: int
    files: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.bytes_by_dtype.values())


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of one safetensors file, checked against the file's size."""
    stream, size = open_regular(path)
    with stream:
        head = stream.read(8)
        if len(head) < 8:
            raise ModelFileError(path, "truncated: shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER:
            raise ModelFileError(path, f"not a safetensors file (header length {length:,})")
        if length > size - 8:
            raise ModelFileError(
                path, f"truncated: the header claims {length:,} bytes, the file has {size - 8:,}"
            )
        raw = stream.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelFileError(path, "not a safetensors file (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "not a safetensors file (the header is not an object)")
    check_header(path, header, size - 8 - length)
    return header


def check_header(where: Path | str, header: dict[str, Any], room: int | None) -> None:
    """Every tensor entry well formed, its byte range matching its shape and within ``room``
    (the data section's size; None for headers from the Hub, already parsed there)."""
    for name, info in header.items():
        if name != "__metadata__":
            _check_tensor(where, name, info, room)


def _check_tensor(where: Path | str, name: str, info: Any, room: int | None) -> None:
    if not isinstance(info, dict):
        raise ModelFileError(where, f"tensor {name}: not a tensor entry")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise ModelFileError(where, f"tensor {name}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ModelFileError(where, f"tensor {name}: bad shape {shape!r}")
    if not (
        isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
    ):
        raise ModelFileError(where, f"tensor {name}: bad data_offsets {offsets!r}")
    begin, end = int(offsets[0]), int(offsets[1])
    if not 0 <= begin <= end:
        raise ModelFileError(where, f"tensor {name}: bad data_offsets {offsets!r}")
    if room is not None and end > room:
        raise ModelFileError(where, f"truncated: tensor {name} ends beyond the end of the file")
    elements = 1
    for d in shape:
        elements *= d
    if (end - begin) * 8 != elements * DTYPE_BITS[str(dtype)]:
        raise ModelFileError(where, f"tensor {name}: its byte range does not match its shape")


def read_tensors(files: Iterable[Path]) -> Tensors:
    return tensors_from_headers({str(p): safetensors_header(p) for p in files})


def tensors_from_headers(headers: dict[str, dict[str, Any]]) -> Tensors:
    """Bytes per dtype, per layer and in experts, from checked safetensors headers."""
    by_dtype: dict[str, int] = {}
    layers: dict[int, int] = {}
    elements = experts = 0
    for header in headers.values():
        for name, info in header.items():
            if name == "__metadata__":
                continue
            n = info["data_offsets"][1] - info["data_offsets"][0]
            by_dtype[info["dtype"]] = by_dtype.get(info["dtype"], 0) + n
            count = 1
            for d in info["shape"]:
                count *= d
            elements += count
            if ".experts." in name:
                experts += n
            m = _LAYER.search(name)
            if m and "vision" not in name and "visual" not in name:
                layers[int(m[1])] = layers.get(int(m[1]), 0) + n
    return Tensors(by_dtype, elements, layers, experts, tuple(headers))


def _shards(folder: Path, index_name: str, pattern: str) -> list[Path] | None:
    index = folder / index_name
    if index.is_file():
        data = read_json(index)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelFileError(index, "no weight_map")
        shards = sorted({str(v) for v in weight_map.values()})
        if len(shards) > MAX_SHARDS or any(
            "/" in s or "\\" in s or s.startswith(".") for s in shards
        ):
            raise ModelFileError(index, "implausible shard names in weight_map")
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ModelFileError(
                index, f"{len(missing)} of {len(shards)} shards missing ({missing[0]})"
            )
        return [folder / s for s in shards]
    found = sorted(folder.glob(pattern))
    return found or None


def checkpoint_files(folder: Path, prefer: str = "model") -> tuple[FileFormat, list[Path]] | None:
    """("safetensors", files) or ("pytorch", files) of the checkpoint in ``folder``."""
    for base in (prefer, "diffusion_pytorch_model", "model"):
        st = _shards(folder, f"{base}.safetensors.index.json", f"{base}*.safetensors")
        if st:
            plain = [p for p in st if not re.search(r"\.(fp16|bf16|fp32)\.safetensors$", p.name)]
            return "safetensors", plain or st
    anything = sorted(
        p for p in folder.glob("*.safetensors") if p.name != "consolidated.safetensors"
    )
    if anything:
        return "safetensors", anything
    if (folder / "consolidated.safetensors").is_file():
        return "safetensors", [folder / "consolidated.safetensors"]
    bins = _shards(folder, "pytorch_model.bin.index.json", "pytorch_model*.bin")
    if bins:
        return "pytorch", bins
    return None


def _bin_sizes(files: list[Path]) -> Tensors:
    total = 0
    for f in files:
        stream, size = open_regular(f)
        stream.close()
        total += size
    return Tensors({"?": total}, 0, {}, 0, tuple(str(f) for f in files))


def _weights(folder: Path, where: Path) -> tuple[FileFormat, Tensors]:
    found = checkpoint_files(folder)
    if found is None:
        raise ModelFileError(where, "no weights here (no *.safetensors or pytorch_model.bin)")
    fmt, files = found
    return fmt, (read_tensors(files) if fmt == "safetensors" else _bin_sizes(files))


def _precision(config: dict[str, Any], t: Tensors) -> str:
    q = config.get("quantization_config")
    if isinstance(q, dict):
        method = str(q.get("quant_method", "")).lower()
        bits = q.get("bits") or q.get("w_bit")
        if q.get("load_in_4bit") or bits == 4 or method in ("awq", "mxfp4"):
            return "int4" if method != "mxfp4" else "mxfp4"
        if q.get("load_in_8bit") or bits == 8:
            return "int8"
        if method == "fp8" or "fp8" in json.dumps(q).lower():
            return "fp8"
    known = {k: v for k, v in t.bytes_by_dtype.items() if k in _PRECISION_OF_DTYPE}
    if known:
        return _PRECISION_OF_DTYPE[max(known, key=lambda k: known[k])]
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "").lower()
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(dtype, "fp32")


def _num(cfg: dict[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    tc = config.get("text_config")
    if isinstance(tc, dict) and _num(tc, "num_hidden_layers", "n_layer", "num_layers"):
        return tc
    return config


def _unsupported(cfg: dict[str, Any]) -> str | None:
    if cfg.get("kv_lora_rank"):
        return "config.json kv_lora_rank: the MLA latent KV cache is not modelled yet"
    mt = str(cfg.get("model_type", ""))
    kinds = cfg.get("layer_types")
    recurrent = ("mamba", "rwkv", "jamba", "falcon_h1", "lfm2", "qwen3_next", "recurrent_gemma")
    if mt.startswith(recurrent) or (
        isinstance(kinds, list)
        and any("linear" in str(k) or "mamba" in str(k) or "conv" in str(k) for k in kinds)
    ):
        return f"{mt or 'this model'}: recurrent or linear-attention layers, not sized yet"
    return None


def decoder_arch(config: dict[str, Any], notes: list[str]) -> tuple[Arch | None, str | None]:
    from pydantic import ValidationError

    cfg = _text_config(config)
    reason = _unsupported(cfg)
    if reason:
        return None, reason
    layers = _num(cfg, "num_hidden_layers", "n_layer", "num_layers")
    hidden = _num(cfg, "hidden_size", "n_embd", "d_model")
    heads = _num(cfg, "num_attention_heads", "n_head")
    if layers is None or hidden is None or heads is None:
        key = (
            "num_hidden_layers"
            if layers is None
            else "hidden_size"
            if hidden is None
            else "num_attention_heads"
        )
        return None, f"no {key} in config.json"
    kv = _num(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv")
    if kv is None and (cfg.get("multi_query") or cfg.get("model_type") == "gpt_bigcode"):
        kv = 1
    experts = _num(cfg, "num_local_experts", "num_experts", "n_routed_experts")
    used = _num(cfg, "num_experts_per_tok", "moe_topk")
    ffn = (
        (_num(cfg, "moe_intermediate_size") if experts else None)
        or _num(cfg, "intermediate_size", "n_inner", "ffn_dim")
        or 4 * hidden
    )
    context = _num(cfg, "max_position_embeddings", "n_positions", "seq_length", "max_seq_len")
    vocab = _num(cfg, "vocab_size") or _num(config, "vocab_size")
    if context is None:
        return None, "no max_position_embeddings in config.json"
    if vocab is None:
        return None, "no vocab_size in config.json"
    window = _num(cfg, "sliding_window") if cfg.get("use_sliding_window", True) else None
    if window:
        notes.append("sliding-window layers are sized for the full context (an upper bound)")
    from canirun.catalog.constraints import validated

    try:
        arch = validated(
            Arch,
            dict(
                source="file",
                layers=layers,
                hidden=hidden,
                heads=heads,
                kv_heads=kv or heads,
                head_dim=_num(cfg, "head_dim"),
                intermediate=ffn,
                vocab=vocab,
                max_context=context,
                tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
                experts=experts if experts and used else None,
                experts_per_token=used if experts and used else None,
                sliding_window=window,
            ),
        )
    except ValidationError as exc:
        return None, f"inconsistent architecture numbers: {exc.errors()[0]['msg']}"
    return arch, None


def _encoder(cfg: dict[str, Any]) -> Encoder | None:
    from pydantic import ValidationError

    from canirun.catalog.constraints import validated

    fields = dict(
        source="file",
        layers=_num(cfg, "num_hidden_layers") or 0,
        hidden=_num(cfg, "hidden_size") or 0,
        heads=_num(cfg, "num_attention_heads") or 0,
        intermediate=_num(cfg, "intermediate_size") or 0,
        max_tokens=_num(cfg, "max_position_embeddings") or 0,
    )
    try:
        return validated(Encoder, fields)
    except ValidationError:
        return None


def _kind(config: dict[str, Any], sentence_transformers: bool) -> Kind:
    mt = str(config.get("model_type", "")).lower()
    if sentence_transformers or mt in ENCODER_TYPES:
        return "embedding"
    if mt in SPEECH_TYPES:
        return "speech"
    if mt in VISION_TYPES:
        return "vision"
    return "vlm" if isinstance(config.get("vision_config"), dict) else "llm"


def hf_folder_model(folder: Path, name: str | None = None) -> LocalModel:
    """Read a model folder (a download, a cache snapshot, a diffusers pipeline)."""
    if (folder / "model_index.json").is_file():
        return diffusers_model(folder, name)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelFileError(folder, "no config.json here (not a Hugging Face model folder)")
    config = read_json(cfg_path)
    if not isinstance(config, dict):
        raise ModelFileError(cfg_path, "not a JSON object")
    fmt, tensors = _weights(folder, folder)
    st = (folder / "modules.json").is_file() or (
        folder / "config_sentence_transformers.json"
    ).is_file()
    return build_model(
        config, tensors, fmt, name or folder.name, str(folder), sentence_transformers=st
    )


def build_model(
    config: dict[str, Any],
    tensors: Tensors,
    fmt: FileFormat,
    name: str,
    where: str,
    *,
    sentence_transformers: bool = False,
) -> LocalModel:
    """A ``LocalModel`` from a config.json and the checkpoint's headers (local or remote)."""
    if not tensors.total:
        raise ModelFileError(where, "the checkpoint holds no tensors")
    kind = _kind(config, sentence_transformers)
    notes: list[str] = []
    arch, missing, encoder = None, None, None
    if kind in ("llm", "vlm"):
        arch, missing = decoder_arch(config, notes)
    elif kind == "embedding":
        encoder = _encoder(config)
    if fmt == "pytorch":
        notes.append("pytorch .bin checkpoint: weights from the file sizes (not parsed)")
    layers = None
    if arch is not None and tensors.layer_bytes:
        layers = tuple(tensors.layer_bytes.get(i, 0) for i in range(arch.layers))
    used = arch.experts_per_token if arch else None
    active = 1.0
    if arch and arch.experts and used and tensors.expert_bytes:
        e = tensors.expert_bytes
        active = (tensors.total - e + e * used / arch.experts) / tensors.total
    return LocalModel(
        name=name,
        path=where,
        format=fmt,
        kind=kind,
        precision=_precision(config, tensors),
        weights_bytes=tensors.total,
        params=tensors.elements or tensors.total // 2,
        architecture=str(config.get("model_type") or "") or None,
        arch=arch,
        arch_missing=missing,
        encoder=encoder,
        layer_bytes=layers,
        active_fraction=active,
        files=tensors.files,
        notes=tuple(notes),
    )


def diffusers_model(folder: Path, name: str | None = None) -> LocalModel:
    index = read_json(folder / "model_index.json")
    if not isinstance(index, dict):
        raise ModelFileError(folder / "model_index.json", "not a JSON object")
    by_dtype: dict[str, int] = {}
    files: list[str] = []
    elements = 0
    for component, spec in index.items():
        sub = folder / component
        if component.startswith("_") or not isinstance(spec, list) or not sub.is_dir():
            continue
        found = checkpoint_files(sub, "diffusion_pytorch_model")
        if found is None:
            continue
        fmt, paths = found
        t = read_tensors(paths) if fmt == "safetensors" else _bin_sizes(paths)
        for k, v in t.bytes_by_dtype.items():
            by_dtype[k] = by_dtype.get(k, 0) + v
        elements += t.elements
        files += t.files
    if not files:
        raise ModelFileError(folder, "a diffusers folder without any component weights")
    t = Tensors(by_dtype, elements, {}, 0, tuple(files))
    return LocalModel(
        name=name or folder.name,
        path=str(folder),
        format="safetensors",
        kind="diffusion",
        precision=_precision({}, t),
        weights_bytes=t.total,
        params=elements or t.total // 2,
        architecture=str(index.get("_class_name") or "") or None,
        files=t.files,
    )
