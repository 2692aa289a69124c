"""Models on disk: GGUF and safetensors headers read exactly, rated like catalog models."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from canirun.catalog import gguf_file, load_catalog
from canirun.catalog.gguf_file import GgufError, read_gguf
from canirun.catalog.gguf_model import gguf_model
from canirun.catalog.hf_folder import hf_folder_model
from canirun.catalog.local_model import ModelFileError
from canirun.catalog.schema import Arch
from canirun.cli import app
from canirun.estimate import gguf as recipe
from canirun.estimate.kv import kv_cache_bytes
from canirun.report import CheckReport
from tests.model_files import (
    TINY,
    hf_folder,
    llama_metadata,
    llama_tensors,
    tiny_gguf,
    write_gguf,
    write_safetensors,
)
from tests.test_cli_commands import WORKSTATION

runner = CliRunner()
GIB = 2**30
# The CLI tests' workstation, without CPU flags (so no framework's ISA rule applies).
BOX = {**WORKSTATION, "cpu": {"logical_cores": 16, "arch": "x86_64"}}


@pytest.fixture
def box(tmp_path: Path) -> Path:
    path = tmp_path / "box.json"
    path.write_text(json.dumps(BOX))
    return path


def check(*args: str):
    return runner.invoke(app, ["check", *args, "--ram-bandwidth", "off"])


def check_json(*args: str) -> CheckReport:
    result = check(*args, "--json")
    assert result.exit_code == 0, result.output
    return CheckReport.model_validate_json(result.stdout)


MIXED = {
    "default": "Q4_K",
    "attn_v": "Q6_K",
    "ffn_down": "Q6_K",
    "output": "Q6_K",
    "attn_k": "Q8_0",
}


# --- the GGUF reader against llama.cpp's own -----------------------------------------


def test_reader_agrees_with_gguf_reader_on_every_tensor(tmp_path: Path) -> None:
    from gguf import GGUFReader

    path = tmp_path / "mixed.gguf"
    meta = llama_metadata(TINY, **{"general.file_type": 15})
    meta["tokenizer.ggml.tokens"] = [f"t{i}" for i in range(TINY.vocab)]
    meta["tokenizer.ggml.scores"] = [0.5] * TINY.vocab
    write_gguf(path, "llama", meta, llama_tensors(TINY, MIXED))
    with path.open("rb") as f:
        mine = read_gguf(f, path.stat().st_size)
    theirs = GGUFReader(path)
    assert [(t.name, t.type_name, t.shape, t.bytes) for t in mine.tensors] == [
        (t.name, t.tensor_type.name, tuple(int(d) for d in t.shape), int(t.n_bytes))
        for t in theirs.tensors
    ]
    assert mine.data_offset == theirs.data_offset
    assert mine.get("llama.block_count") == 4
    assert mine.get("tokenizer.ggml.tokens") == gguf_file.ArrayInfo(8, TINY.vocab)


@pytest.mark.parametrize("chunk", [9, 64, 1000, 1 << 20])
def test_reader_is_the_same_whatever_the_buffer_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    path = tmp_path / "vocab.gguf"
    meta = llama_metadata(TINY)
    meta["tokenizer.ggml.tokens"] = [f"token-{i}" * (i % 7) for i in range(TINY.vocab)]
    meta["tokenizer.ggml.merges"] = [f"a{i} b{i}" for i in range(3000)]
    write_gguf(path, "llama", meta, llama_tensors(TINY))
    with path.open("rb") as f:
        expected = read_gguf(f, path.stat().st_size)
    monkeypatch.setattr(gguf_file, "CHUNK", chunk)
    with path.open("rb") as f:
        got = read_gguf(f, path.stat().st_size)
    assert got == expected


def test_weights_are_the_exact_sum_of_the_tensors(tmp_path: Path) -> None:
    from gguf import GGUFReader

    path = tmp_path / "m.gguf"
    write_gguf(path, "llama", llama_metadata(TINY), llama_tensors(TINY, MIXED))
    model = gguf_model(path)
    reader = GGUFReader(path)
    assert model.weights_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    per_layer = [
        sum(int(t.n_bytes) for t in reader.tensors if t.name.startswith(f"blk.{i}."))
        for i in range(TINY.layers)
    ]
    assert model.layer_bytes == tuple(per_layer)
    assert model.params == sum(int(t.n_elements) for t in reader.tensors)
    assert model.precision == "Q4_K"  # no general.file_type: the type of most weights


def test_a_split_set_is_read_whole_from_any_part(tmp_path: Path, box: Path) -> None:
    whole = tmp_path / "whole.gguf"
    write_gguf(whole, "llama", llama_metadata(TINY), llama_tensors(TINY))
    parts = write_gguf(
        tmp_path / "split.gguf",
        "llama",
        llama_metadata(TINY),
        llama_tensors(TINY),
        split_max_tensors=12,
    )
    assert len(parts) == 4
    assert parts[1].name == "split-00002-of-00004.gguf"
    from_second = gguf_model(parts[1])
    assert from_second.weights_bytes == gguf_model(whole).weights_bytes
    assert from_second.files == tuple(str(p) for p in parts)
    assert from_second.arch == gguf_model(whole).arch
    parts[2].unlink()
    result = check(str(parts[0]), "--hardware", str(box))
    assert result.exit_code == 2
    assert "1 of 4 parts missing (split-00003-of-00004.gguf)" in result.stderr


# --- the estimate for a file equals the catalog's for the same shapes ---------------


def _recipe_file(tmp_path: Path, model_id: str, ftype: str) -> tuple[Path, Arch]:
    """A GGUF file with a catalog model's published shapes, typed by llama.cpp's recipe."""
    from gguf.constants import LlamaFileType

    arch = load_catalog().variant_by_id[model_id].variant.arch
    assert arch is not None
    assert arch.gguf_arch
    names = {"token_embd": "token_embd.weight", "output": "output.weight"}
    tensors = []
    for t, kind in recipe.tensor_types(arch, arch.gguf_arch, ftype):
        name = names.get(t.category) or f"blk.{t.layer}.{t.category}.weight"
        tensors.append((name, (t.ncols, t.elements // t.ncols), kind))
    for i in range(arch.layers):
        tensors += [(f"blk.{i}.attn_norm.weight", (arch.hidden,), "F32")]
        tensors += [(f"blk.{i}.ffn_norm.weight", (arch.hidden,), "F32")]
    tensors.append(("output_norm.weight", (arch.hidden,), "F32"))
    meta = llama_metadata(arch, arch.gguf_arch, name=model_id)
    meta["general.file_type"] = int(LlamaFileType[f"MOSTLY_{ftype}"])
    if arch.sliding_window:
        meta[f"{arch.gguf_arch}.attention.sliding_window"] = arch.sliding_window
    path = tmp_path / f"{model_id}.{ftype}.gguf"
    write_gguf(path, arch.gguf_arch, meta, tensors)
    return path, arch


@pytest.mark.parametrize(
    ("model_id", "ftype"),
    [("llama-3-8b", "Q6_K"), ("gemma-2-9b", "Q5_K_M"), ("mistral-7b", "Q3_K_M")],
)
def test_a_file_with_a_catalog_models_shapes_gets_the_catalog_estimate(
    tmp_path: Path, box: Path, model_id: str, ftype: str
) -> None:
    path, arch = _recipe_file(tmp_path, model_id, ftype)
    model = gguf_model(path)
    assert model.weights_bytes == recipe.gguf_weight_bytes(arch, arch.gguf_arch or "", ftype)
    assert model.arch is not None
    assert model.arch.local_layers == (arch.local_layers if model_id != "mistral-7b" else 0)
    for ctx in ("4096", "8192"):
        report = check_json(model_id, str(path), "-p", ftype, "--hardware", str(box), "--ctx", ctx)
        catalog, local = (r for r in report.results if r.framework == "llama.cpp")
        assert local.memory is not None
        assert catalog.memory is not None
        assert local.memory.kv_cache_bytes == catalog.memory.kv_cache_bytes
        assert local.memory.overhead_bytes == catalog.memory.overhead_bytes
        # The catalog counts each norm twice (F32 in the file and again as a 16-bit
        # "non-decoder" parameter): at most that much above the exact file.
        doubled = (2 * arch.layers + 1) * arch.hidden * 2 + 2 * arch.hidden * arch.layers * 2
        assert 0 <= catalog.memory.weights_bytes - local.memory.weights_bytes <= doubled
        assert local.verdict == catalog.verdict
        summaries = {s.model_id: s for s in report.summary}
        assert (
            summaries[local.model_id].max_context_tokens
            == summaries[catalog.model_id].max_context_tokens
        )


def _mla_metadata(arch: Arch, name: str) -> dict[str, object]:
    """The keys llama.cpp's converter writes for DeepSeek-V2/V3 since its MLA support
    (convert_hf_to_gguf.py, DeepseekV2Model: MQA over the latent, per-head *_mla widths)."""
    a, latent, rope = "deepseek2", arch.kv_lora_rank or 0, arch.qk_rope_head_dim or 0
    return {
        "general.name": name,
        f"{a}.block_count": arch.layers,
        f"{a}.context_length": arch.max_context,
        f"{a}.embedding_length": arch.hidden,
        f"{a}.feed_forward_length": arch.dense_intermediate,
        f"{a}.expert_feed_forward_length": arch.intermediate,
        f"{a}.expert_count": arch.experts,
        f"{a}.expert_used_count": arch.experts_per_token,
        f"{a}.expert_shared_count": arch.shared_experts,
        f"{a}.leading_dense_block_count": arch.dense_layers,
        f"{a}.attention.head_count": arch.heads,
        f"{a}.attention.head_count_kv": 1,
        f"{a}.attention.q_lora_rank": arch.q_lora_rank,
        f"{a}.attention.kv_lora_rank": latent,
        f"{a}.attention.key_length": latent + rope,
        f"{a}.attention.value_length": latent,
        f"{a}.attention.key_length_mla": arch.effective_head_dim,
        f"{a}.attention.value_length_mla": arch.v_head_dim,
        f"{a}.rope.dimension_count": rope,
        f"{a}.vocab_size": arch.vocab,
    }


def test_an_mla_file_gets_deepseeks_latent_kv_cache(tmp_path: Path, box: Path) -> None:
    """A GGUF with DeepSeek-V3's published shapes, keyed as llama.cpp writes MLA files: the
    KV cache is the latent (kv_lora_rank + rope per token per layer), as for the catalog
    entry, and the runtime's overheads agree with the catalog's."""
    arch = load_catalog().variant_by_id["deepseek-v3-671b"].variant.arch
    assert arch is not None
    assert arch.is_mla
    path = tmp_path / "DeepSeek-V3-Q4_K_M.gguf"
    tensors = [("token_embd.weight", (arch.hidden, arch.vocab), "Q4_K")]
    from gguf.constants import LlamaFileType

    meta = _mla_metadata(arch, "DeepSeek V3") | {
        "general.file_type": int(LlamaFileType.MOSTLY_Q4_K_M)
    }
    write_gguf(path, "deepseek2", meta, tensors)
    model = gguf_model(path)
    assert model.arch is not None, model.arch_missing
    got = model.arch
    assert (got.kv_lora_rank, got.qk_rope_head_dim, got.v_head_dim) == (512, 64, 128)
    assert (got.effective_head_dim, got.kv_heads, got.dense_layers) == (192, 128, 3)
    for ctx in (4096, 32768):
        expected = kv_cache_bytes(arch, ctx, runtime="llama.cpp")
        assert kv_cache_bytes(got, ctx, runtime="llama.cpp") == expected
        assert expected == arch.layers * (512 + 64) * ctx * 2
    report = check_json("deepseek-v3-671b", str(path), "-p", "Q4_K_M", "--hardware", str(box))
    catalog, local = report.results
    assert [r.framework for r in report.results] == [catalog.framework] * 2, report.results
    assert local.memory is not None
    assert catalog.memory is not None
    assert local.memory.kv_cache_bytes == catalog.memory.kv_cache_bytes
    assert local.memory.overhead_bytes == catalog.memory.overhead_bytes


# --- Hugging Face folders -----------------------------------------------------------------


def test_a_sharded_folder_sums_every_shard_exactly(tmp_path: Path, box: Path) -> None:
    data = hf_folder(tmp_path / "m", TINY, shards=3)
    model = hf_folder_model(tmp_path / "m")
    assert model.weights_bytes == data
    assert len(model.files) == 3
    assert model.precision == "bf16"
    assert model.arch is not None
    assert (model.arch.layers, model.arch.kv_heads, model.arch.max_context) == (4, 2, 8192)
    report = check_json(str(tmp_path / "m"), "--hardware", str(box))
    (result,) = report.results
    assert result.memory is not None
    assert result.memory.weights_bytes == data
    assert result.memory.kv_cache_bytes == kv_cache_bytes(model.arch, 4096)
    assert result.format == "safetensors"
    assert result.precision == "bf16"
    assert report.matches[0].how == "file"


def test_a_missing_shard_is_one_clear_line(tmp_path: Path, box: Path) -> None:
    hf_folder(tmp_path / "m", TINY, shards=2)
    (tmp_path / "m" / "model-00002-of-00002.safetensors").unlink()
    result = check(str(tmp_path / "m"), "--hardware", str(box))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "1 of 2 shards missing (model-00002-of-00002.safetensors)" in result.stderr


def test_a_sentence_transformers_folder_is_an_embedding_model(tmp_path: Path, box: Path) -> None:
    folder = tmp_path / "st"
    folder.mkdir()
    config = {
        "model_type": "bert",
        "num_hidden_layers": 6,
        "hidden_size": 384,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "max_position_embeddings": 512,
        "vocab_size": 30522,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modules.json").write_text("[]")
    n = write_safetensors(
        folder / "model.safetensors", {"embeddings.word_embeddings.weight": ("F32", (30522, 384))}
    )
    (result,) = check_json(str(folder), "--hardware", str(box)).results
    assert result.kind == "embedding"
    assert result.precision == "fp32"
    assert result.memory is not None
    assert result.memory.weights_bytes == n
    assert (
        result.framework == "sentence-transformers" or "sentence-transformers" in result.frameworks
    )


def test_a_diffusers_folder_sums_its_components(tmp_path: Path, box: Path) -> None:
    folder = tmp_path / "sd"
    (folder / "unet").mkdir(parents=True)
    (folder / "vae").mkdir()
    (folder / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusionPipeline",
                "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
                "scheduler": ["diffusers", "PNDMScheduler"],
            }
        )
    )
    a = write_safetensors(
        folder / "unet" / "diffusion_pytorch_model.safetensors", {"w": ("F16", (1000, 1000))}
    )
    # Both the default and an fp16 variant: only one copy is counted.
    write_safetensors(
        folder / "unet" / "diffusion_pytorch_model.fp16.safetensors", {"w": ("F16", (1000, 1000))}
    )
    b = write_safetensors(
        folder / "vae" / "diffusion_pytorch_model.safetensors", {"w": ("F16", (300, 100))}
    )
    (result,) = check_json(str(folder), "--hardware", str(box)).results
    assert result.kind == "diffusion"
    assert result.memory is not None
    assert result.memory.weights_bytes == a + b


# --- unknown architectures ----------------------------------------------------------------


def _mystery(path: Path, **meta: object) -> Path:
    tensors = [
        ("blk.0.w.weight", (4096, 4096), "Q8_0"),
        ("token_embd.weight", (4096, 32000), "Q8_0"),
    ]
    write_gguf(path, "mystery", {"mystery.block_count": 1, **meta}, tensors)
    return path


def test_an_unknown_architecture_has_exact_weights_and_an_unknown_kv_cache(
    tmp_path: Path, box: Path
) -> None:
    path = _mystery(tmp_path / "mystery.gguf")
    (result,) = check_json(str(path), "--hardware", str(box)).results
    assert result.verdict == "unknown"
    assert result.memory is not None
    assert result.memory.weights_bytes == (4096 * 4096 + 4096 * 32000) // 32 * 34
    assert result.memory.kv_cache_bytes is None
    assert result.memory.total_bytes is None
    assert "KV cache unknown: no mystery.embedding_length in the GGUF metadata" in result.reasons


def test_an_unknown_kv_cache_is_too_big_when_the_weights_alone_do_not_fit(tmp_path: Path) -> None:
    path = _mystery(tmp_path / "mystery.gguf")
    small = tmp_path / "small.json"
    small.write_text(
        json.dumps(
            {
                "memory": {"total_bytes": GIB // 4},
                "cpu": {"arch": "x86_64"},
                "os": {"system": "Linux", "machine": "x86_64"},
            }
        )
    )
    (result,) = check_json(str(path), "--hardware", str(small)).results
    assert result.verdict == "too-big"


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ({"mystery.attention.kv_lora_rank": 512}, "an MLA file from before llama.cpp's MLA"),
        (
            {
                "mystery.attention.kv_lora_rank": 512,
                "mystery.attention.key_length_mla": 192,
                "mystery.attention.indexer.head_count": 64,
            },
            "sparse-attention indexer",
        ),
        ({"mystery.ssm.state_size": 16}, "recurrent (state-space) layers"),
        ({"mystery.attention.head_count_kv": [0, 8]}, "layers without attention"),
    ],
)
def test_attention_the_formula_does_not_cover_is_named(
    tmp_path: Path, box: Path, meta: dict[str, object], reason: str
) -> None:
    path = _mystery(tmp_path / "m.gguf", **meta)
    (result,) = check_json(str(path), "--hardware", str(box)).results
    assert result.verdict == "unknown"
    assert any(reason in r for r in result.reasons), result.reasons


def test_per_layer_arrays_take_the_largest_and_say_so(tmp_path: Path, box: Path) -> None:
    path = tmp_path / "varied.gguf"
    meta = llama_metadata(TINY)
    meta["llama.attention.head_count_kv"] = [2, 4, 2, 2]
    write_gguf(path, "llama", meta, llama_tensors(TINY))
    model = gguf_model(path)
    assert model.arch is not None
    assert model.arch.kv_heads == 4
    assert any("varies by layer" in n for n in model.notes)


# --- bad files: one line, exit 2, bounded -------------------------------------------------


def _header(n_tensors: int, n_keys: int, rest: bytes = b"") -> bytes:
    import struct

    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_keys) + rest


BAD_FILES = {
    "empty.gguf": (b"", "too short to be a GGUF file"),
    "wrong-magic.gguf": (b"GGML" + bytes(40), "not a GGUF file (wrong magic)"),
    "version-9.gguf": (b"GGUF" + (9).to_bytes(4, "little") + bytes(40), "GGUF version 9"),
    "2-60-tensors.gguf": (_header(2**60, 0, bytes(64)), "claims 1,152,921,504,606,846,976 tensors"),
    "many-keys.gguf": (_header(0, 2**40, bytes(64)), "metadata keys, more than the file can hold"),
    "huge-string.gguf": (
        _header(
            0,
            1,
            (3).to_bytes(8, "little")
            + b"key"
            + (8).to_bytes(4, "little")
            + (10 * 10**9).to_bytes(8, "little"),
        ),
        "claims 10,000,000,000 bytes, beyond the end of the file",
    ),
    "huge-array.gguf": (
        _header(
            0,
            1,
            (3).to_bytes(8, "little")
            + b"arr"
            + (9).to_bytes(4, "little")
            + (8).to_bytes(4, "little")
            + (2**50).to_bytes(8, "little"),
        ),
        "claims 1,125,899,906,842,624 strings",
    ),
    "weights.safetensors": (
        (2**62).to_bytes(8, "little") + b"{}",
        "not a safetensors file (header length",
    ),
    "notjson.safetensors": ((4).to_bytes(8, "little") + b"{{{{", "the header is not JSON"),
    "random.bin": (os.urandom(64), "not a GGUF, safetensors file or model folder"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_one_line_and_exit_2(tmp_path: Path, box: Path, name: str) -> None:
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    result = check(str(path), "--hardware", str(box))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"canirun: error: check: {path}: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert message in result.stderr


def test_a_truncated_gguf_names_the_truncation(tmp_path: Path, box: Path) -> None:
    path = tiny_gguf(tmp_path / "t.gguf")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = check(str(path), "--hardware", str(box))
    assert result.exit_code == 2
    assert "truncated: tensor blk.1" in result.stderr


def test_folders_fifos_and_missing_paths(tmp_path: Path, box: Path) -> None:
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "fifo.gguf")
    cases = {
        str(tmp_path / "empty"): "no config.json here, not a model folder",
        str(tmp_path / "fifo.gguf"): "not a regular file",
        str(tmp_path / "missing.gguf"): "no such file or folder",
        "./nope/": "no such file or folder",
    }
    for query, message in cases.items():
        result = check(query, "--hardware", str(box))
        assert result.exit_code == 2, (query, result.output)
        assert message in result.stderr, result.stderr


def test_a_catalog_name_that_ends_like_a_file_is_the_catalog_s(
    tmp_path: Path, box: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AlphaFold 3's alias "af3.bin" is its parameter file's name: with no such file here
    it is the catalog entry, not a missing file; a file of that name wins when it exists."""
    monkeypatch.chdir(tmp_path)
    named = check("af3.bin", "--hardware", str(box), "--json")
    assert named.exit_code in (0, 1), named.output
    assert json.loads(named.stdout)["summary"][0]["model_id"].startswith("alphafold-3")
    assert check("not-in-the-catalog.bin", "--hardware", str(box)).exit_code == 2
    (tmp_path / "af3.bin").write_bytes(b"not a model")
    on_disk = check("af3.bin", "--hardware", str(box))
    assert on_disk.exit_code == 2
    assert "af3.bin" in on_disk.stderr


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_damage_to_a_header_is_a_gguf_error(tmp_path: Path, data: st.DataObject) -> None:
    import io

    path = tmp_path / "fuzz.gguf"
    if not path.exists():
        meta = llama_metadata(TINY)
        meta["tokenizer.ggml.tokens"] = [f"t{i}" for i in range(50)]
        write_gguf(path, "llama", meta, llama_tensors(TINY))
    raw = bytearray(path.read_bytes()[:4000])
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    blob = bytes(raw[:cut])
    size = data.draw(st.sampled_from([len(blob), path.stat().st_size]))
    with contextlib.suppress(GgufError):
        read_gguf(io.BytesIO(blob), size)


def test_every_reader_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"w": ("F16", (10, 10))})
    from canirun.local_eval import read_path

    header = int.from_bytes(path.read_bytes()[:8], "little")
    with path.open("r+b") as f:
        f.truncate(8 + header + 150)
    with pytest.raises(ModelFileError, match=r"x\.safetensors: truncated: tensor w"):
        read_path(path)
    with path.open("r+b") as f:
        f.truncate(50)
    with pytest.raises(ModelFileError, match=r"truncated: the header claims \d+ bytes"):
        read_path(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps({"w": v}).encode()),
    ),
    extra=st.integers(0, 300),
)
def test_any_safetensors_header_is_read_or_refused_in_one_line(
    tmp_path: Path, header: bytes, extra: int
) -> None:
    from canirun.catalog.hf_folder import safetensors_header

    path = tmp_path / "f.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(extra))
    try:
        safetensors_header(path)
    except ModelFileError as exc:
        message = str(exc)
    else:
        return
    assert "\n" not in message


def test_a_moe_file_reads_only_the_active_experts_per_token(tmp_path: Path) -> None:
    arch = dataclasses.replace(TINY, experts=8, experts_per_token=2)
    tensors = [t for t in llama_tensors(arch) if "ffn_" not in t[0] or "norm" in t[0]]
    for i in range(arch.layers):
        for kind, ne in (("gate", (256, 512, 8)), ("up", (256, 512, 8)), ("down", (512, 256, 8))):
            tensors.append((f"blk.{i}.ffn_{kind}_exps.weight", ne, "Q8_0"))
    meta = llama_metadata(arch, **{"llama.expert_count": 8, "llama.expert_used_count": 2})
    path = tmp_path / "moe.gguf"
    write_gguf(path, "llama", meta, tensors)
    model = gguf_model(path)
    experts = sum(t_bytes for t_bytes in [256 * 512 * 8 // 32 * 34] * 3 * arch.layers)
    assert model.active_fraction == pytest.approx(
        (model.weights_bytes - experts + experts * 2 / 8) / model.weights_bytes
    )
    assert model.arch is not None
    assert (model.arch.experts, model.arch.experts_per_token) == (8, 2)
