"""The shipped catalog: valid, complete for the landscape table, sourced, consistent."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from canirun.catalog import load_catalog
from canirun.catalog.loader import user_catalog_dir
from canirun.errors import InputError
from canirun.estimate.params import decoder_params
from canirun.resolve import resolve

CATALOG = load_catalog(user_dir=False)

# Every model the landscape table (shared/000_ce1fe51a456165c3.txt) names, as it names them.
LANDSCAPE = [
    "LLaMA 2",
    "LLaMA 3",
    "Mistral",
    "Mixtral",
    "Falcon 40B",
    "Falcon 180B",
    "BLOOM",
    "Gemma",
    "MPT",
    "GPT-4o",
    "GPT-3.5",
    "Claude 3",
    "Gemini 1.5",
    "Cohere Command R+",
    "IBM Granite",
    "Code LLaMA",
    "Codestral",
    "StarCoder",
    "WizardCoder",
    "PolyCoder",
    "Stable Diffusion",
    "Meta SAM",
    "Google Imagen",
    "DINOv2",
    "DALL·E",
    "Whisper",
    "Meta MMS",
    "WaveNet",
    "AudioLM",
    "ElevenLabs TTS",
    "Kosmos-2",
    "IDEFICS",
    "AlphaFold",
    "BioGPT",
    "Med-PaLM 2",
    "Sentence-BERT",
    "E5",
    "OpenAI Embeddings",
    "Cohere Embeddings",
]

LANDSCAPE_FRAMEWORKS = [
    "ollama",
    "vllm",
    "llama.cpp",
    "tgi",
    "text-generation-webui",
    "automatic1111",
    "comfyui",
    "diffusers",
    "whisper.cpp",
    "speechbrain",
    "transformers",
    "alphafold",
    "sentence-transformers",
    "hf-inference-endpoints",
    "langchain-local-embeddings",
]


@pytest.mark.parametrize("name", LANDSCAPE)
def test_every_landscape_model_resolves(name: str) -> None:
    assert resolve(name, CATALOG).matches, f"{name!r} finds nothing in the catalog"


@pytest.mark.parametrize("fid", LANDSCAPE_FRAMEWORKS)
def test_every_landscape_framework_is_catalogued(fid: str) -> None:
    assert fid in CATALOG.framework_by_id


def test_ids_are_unique() -> None:
    ids = [ref.id for ref in CATALOG.variants()]
    assert len(ids) == len(set(ids))
    assert len({m.id for m in CATALOG.models}) == len(CATALOG.models)


def test_every_figure_names_a_real_source() -> None:
    for model in CATALOG.models:
        for where, figure in model.figures():
            url = model.sources.get(figure.source, figure.source)
            assert url.startswith("https://"), f"{model.id} {where}: {figure.source!r}"


def test_every_framework_and_gpu_has_a_source() -> None:
    for fw in CATALOG.frameworks:
        assert fw.sources.get(fw.source, fw.source).startswith("https://"), fw.id
    for gpu in CATALOG.gpus:
        assert gpu.source.startswith("https://")


def test_locally_hostable_models_have_params_and_frameworks() -> None:
    for ref in CATALOG.variants():
        if ref.model.access in ("open-weights", "on-request"):
            assert ref.variant.params is not None, ref.id
    for model in CATALOG.models:
        if model.access == "open-weights" and model.id != "alphafold-3":
            assert model.frameworks, model.id


def test_api_only_models_say_where_they_are_hosted() -> None:
    api = [m for m in CATALOG.models if m.access in ("api-only", "retired")]
    assert {"gpt-4o", "claude-3", "gemini-1.5", "dall-e", "imagen"} <= {m.id for m in api}
    for model in api:
        assert model.api is not None
        assert model.api.hosts


def test_retired_models_are_dated_and_name_a_successor() -> None:
    retired = {m.id: m for m in CATALOG.models if m.access == "retired"}
    assert {"dall-e", "imagen"} <= set(retired)
    for model in retired.values():
        assert model.lifecycle is not None
        assert model.lifecycle.status == "retired"
        assert model.lifecycle.successor
    imagen = retired["imagen"]
    dates = {v.key: v.lifecycle.date for v in imagen.variants if v.lifecycle}
    assert dates["1"] == dates["2"] == "2025-09-24"


def test_landscape_corrections_are_explained() -> None:
    for model_id in ("command-r-plus", "granite-3.1"):
        model = next(m for m in CATALOG.models if m.id == model_id)
        assert model.access == "open-weights"
        assert model.notes


@pytest.mark.parametrize(
    "ref", [r for r in CATALOG.variants() if r.variant.arch and r.variant.params], ids=str
)
def test_decoder_parameters_agree_with_the_architecture(ref) -> None:  # type: ignore[no-untyped-def]
    arch, params = ref.variant.arch, ref.variant.params
    implied = decoder_params(arch) + sum(c.params for c in ref.variant.components)
    if ref.model.kind == "vlm":
        assert implied / params.total == pytest.approx(1, rel=0.05), ref.id
    else:
        assert decoder_params(arch) / params.total == pytest.approx(1, rel=0.04), ref.id


def test_mixture_of_experts_have_active_params() -> None:
    for ref in CATALOG.variants():
        arch = ref.variant.arch
        if arch is not None and arch.experts:
            assert ref.variant.params is not None
            assert ref.variant.params.active is not None
            assert ref.variant.params.active < ref.variant.params.total


def test_gpu_table_covers_the_common_cards() -> None:
    names = " ".join(g.name for g in CATALOG.gpus)
    for card in ("H100", "A100", "RTX 4090", "RTX 3090", "L4", "T4", "MI300X", "M2 Ultra"):
        assert card in names, card


# -- user extension ---------------------------------------------------------------

USER_MODEL = """
[[model]]
id = "tiny-test-lm"
name = "Tiny Test LM"
family = "tiny"
category = "foundation"
task = "text-generation"
kind = "llm"
access = "open-weights"
license = "MIT"
modalities = ["text"]
frameworks = ["llama.cpp"]
sources = { card = "https://example.org/tiny" }

[[model.variants]]
key = "1b"
name = "Tiny 1B"
params = { total = 1_000_000_000, source = "card" }
"""


def test_user_catalog_dir_is_read(tmp_path: Path) -> None:
    folder = user_catalog_dir()
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text(USER_MODEL)
    catalog = load_catalog((), user_dir=True)
    assert "tiny-test-lm-1b" in catalog.variant_by_id


def test_extra_catalog_file(tmp_path: Path) -> None:
    path = tmp_path / "extra.toml"
    path.write_text(USER_MODEL)
    catalog = load_catalog((str(path),), user_dir=False)
    assert catalog.variant_by_id["tiny-test-lm-1b"].variant.params.total == 1_000_000_000


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("total = 1_000_000_000", "totl = 1_000_000_000"),
            "model 'tiny-test-lm': variants.0.params",
        ),
        (('kind = "llm"', 'kind = "robot"'), "model 'tiny-test-lm': kind"),
        (
            ('kind = "llm"', 'kind = "llm"\ncolour = "red"'),
            "model 'tiny-test-lm': colour: not a known key (misspelt?)",
        ),
        (('source = "card"', 'source = "nowhere"'), "not a key of `sources`"),
        (('frameworks = ["llama.cpp"]', 'frameworks = ["llamacpp2"]'), "unknown framework"),
        (("[[model.variants]]", "[[model.variants]"), "not valid TOML"),
    ],
)
def test_a_bad_user_file_names_file_entry_and_field(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(USER_MODEL.replace(*edit))
    with pytest.raises(InputError) as caught:
        load_catalog((str(path),), user_dir=False)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_a_user_entry_cannot_silently_replace_a_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "clash.toml"
    path.write_text(USER_MODEL.replace('id = "tiny-test-lm"', 'id = "llama-3"'))
    with pytest.raises(InputError, match="already defined in <shipped>"):
        load_catalog((str(path),), user_dir=False)


def test_an_unreadable_user_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read it"):
        load_catalog((str(tmp_path / "missing.toml"),), user_dir=False)


def test_the_precompiled_catalog_matches_the_toml() -> None:
    from canirun.catalog.loader import _precompiled, _shipped_files

    assert _precompiled(_shipped_files()) is not None, (
        "src/canirun/catalog/data/compiled.json is stale: run python scripts/compile_catalog.py"
    )


def test_the_precompiled_gguf_layouts_are_what_the_recipe_gives() -> None:
    """compiled.json's layouts spare a scan the recipe replay; they must be exactly what
    estimate.gguf computes today (a recipe change needs scripts/compile_catalog.py)."""
    from scripts.compile_catalog import gguf_layouts

    from canirun.estimate import gguf

    catalog = load_catalog(user_dir=False)
    assert catalog.gguf_layouts, "compiled.json has no GGUF layouts"
    assert catalog.gguf_layouts == gguf_layouts(catalog), (
        "compiled.json's GGUF layouts are stale: run python scripts/compile_catalog.py"
    )
    ref = catalog.variant_by_id["llama-3.1-8b"]
    arch = ref.variant.arch
    assert arch is not None
    assert arch.gguf_arch is not None
    gguf.seed_layouts(catalog)
    encoded = catalog.gguf_layouts[ref.id]["Q4_K_M"]
    assert list(gguf.file_layout(arch, arch.gguf_arch, "Q4_K_M")[1]) == list(
        gguf.decode_layout(encoded)[1]
    )
    assert len(gguf.decode_layout(encoded)[1]) == arch.layers == 32


def test_the_precompiled_decode_cycles_are_what_the_tensors_give() -> None:
    """compiled.json's decode cycles spare a scan the per-tensor costing; they must be
    exactly what estimate.speed computes today, and a scan must use them."""
    from scripts.compile_catalog import decode_cycles

    from canirun.estimate import gguf, speed

    catalog = load_catalog(user_dir=False)
    assert catalog.decode_cycles, "compiled.json has no decode cycles"
    assert catalog.decode_cycles == decode_cycles(catalog), (
        "compiled.json's decode cycles are stale: run python scripts/compile_catalog.py"
    )
    arch = catalog.variant_by_id["llama-3.1-8b"].variant.arch
    assert arch is not None
    assert arch.gguf_arch is not None
    gguf.seed_layouts(catalog)
    found, cycles = gguf.seeded_cycles(arch, arch.gguf_arch, "Q4_K_M")
    assert found
    assert cycles == catalog.decode_cycles["llama-3.1-8b"]["Q4_K_M"] > 0
    assert speed.decode_cycles(arch, arch.gguf_arch, "Q4_K_M", "x86") == cycles
    assert speed.decode_cycles(arch, arch.gguf_arch, "Q4_K_M", "arm") == cycles * speed.ARM_SCALE
    # A copy of the arch (a user file with the same shapes) is not the seeded one: worked out.
    copy = dataclasses.replace(arch)
    assert gguf.seeded_cycles(copy, arch.gguf_arch, "Q4_K_M") == (False, None)
    assert speed.decode_cycles(copy, arch.gguf_arch, "Q4_K_M", "x86") == cycles


def _pickled() -> tuple[dict[str, str], dict[str, object]]:
    import pickle
    from importlib import resources

    from canirun.catalog.loader import VALIDATED

    raw = resources.files("canirun.catalog").joinpath("data", VALIDATED).read_bytes()
    stamp, payload = pickle.loads(raw)
    return stamp, pickle.loads(payload)


def test_the_validated_pickle_is_current() -> None:
    """catalog.pickle spares every run the schema build and validation; it must be stamped
    with today's TOML and schema.py (an edit needs scripts/compile_catalog.py) and, under
    the Python it was written with, be what the loader uses."""
    from canirun.catalog.loader import _shipped_files, validated_document, validated_stamp

    files = _shipped_files()
    stamp, _ = _pickled()
    want = validated_stamp(files)
    assert (stamp["digest"], stamp["schema"]) == (want["digest"], want["schema"]), (
        "src/canirun/catalog/data/catalog.pickle is stale: run python scripts/compile_catalog.py"
    )
    if stamp["python"] == want["python"]:
        assert validated_document(files) is not None
    else:  # another Python: the loader validates the TOML instead
        assert validated_document(files) is None


def test_the_validated_pickle_is_what_validation_gives() -> None:
    """The pickled entries, layouts and cycles equal what the compiled JSON validates to, so
    a run from the pickle and a run from the TOML rate alike."""
    from canirun.catalog.loader import _parse, _shipped_files, compiled_document

    files = _shipped_files()
    compiled = compiled_document(files)
    assert compiled is not None
    _, document = _pickled()
    assert document["files"] == {n: _parse(n, t, compiled["files"][n]) for n, t in files}
    assert document["gguf_layouts"] == compiled["gguf_layouts"]
    assert document["decode_cycles"] == compiled["decode_cycles"]


def test_the_rule_tables_pickle_is_current_and_what_validation_gives() -> None:
    """rules.pickle spares every run the TOML parse and validation of capabilities.toml and
    runtime-defaults.toml; an edit to either, or to rules.py, needs compile_catalog.py."""
    import pickle

    from canirun.catalog import rules

    raw = rules._folder().joinpath(rules.VALIDATED).read_bytes()
    stamp, payload = pickle.loads(raw)
    want = rules.validated_stamp()
    assert (stamp["tables"], stamp["code"]) == (want["tables"], want["code"]), (
        "src/canirun/catalog/rules/rules.pickle is stale: run python scripts/compile_catalog.py"
    )
    assert pickle.loads(payload) == dict(zip(rules.TABLES, rules._from_toml(), strict=True))
    if stamp["python"] == want["python"]:
        assert rules.validated_tables() == rules._from_toml()


def test_stale_or_broken_rule_tables_are_validated_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    from canirun.catalog import rules

    with monkeypatch.context() as m:
        m.setattr(rules, "validated_stamp", lambda: {"tables": "other"})
        assert rules.validated_tables() is None
        m.setattr(rules, "VALIDATED", "capabilities.toml")  # not a pickle at all
        assert rules.validated_tables() is None
        m.setattr(rules, "VALIDATED", "no-such-file.pickle")
        assert rules.validated_tables() is None
        rules._tables.cache_clear()
        try:
            assert rules.capabilities() == rules._from_toml()[0]  # from the TOML instead
        finally:
            rules._tables.cache_clear()


def test_a_stale_or_broken_pickle_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from canirun.catalog import loader

    files = loader._shipped_files()
    edited = [(files[0][0], files[0][1] + "\n# edited\n"), *files[1:]]
    assert loader.validated_document(edited) is None
    with monkeypatch.context() as m:
        m.setattr(loader, "VALIDATED", "compiled.json")  # not a pickle at all
        assert loader.validated_document(files) is None
        m.setattr(loader, "VALIDATED", "no-such-file.pickle")
        assert loader.validated_document(files) is None
    monkeypatch.setattr(loader, "validated_stamp", lambda _files: {"schema": "other"})
    assert loader.validated_document(files) is None
    loader.load_catalog.cache_clear()
    try:
        catalog = loader.load_catalog(user_dir=False)  # validated from compiled.json instead
        assert catalog.variant_by_id["llama-3.1-8b"].variant.arch is not None
        assert catalog.decode_cycles
        assert catalog.gguf_layouts
    finally:
        loader.load_catalog.cache_clear()


def test_detect_json_is_current() -> None:
    """detect.json (the probe's framework specs) must be what compile_catalog.py writes
    today: an edited detect entry, or a framework added to another file, fails here."""
    import json

    from canirun.catalog.compiled import DETECT, _small_detect, detect_document
    from canirun.catalog.loader import _shipped_files

    stored = json.loads(
        (Path(__file__).parents[1] / "src/canirun/catalog/data" / DETECT).read_text()
    )
    assert stored == json.loads(json.dumps(detect_document(_shipped_files()))), (
        "src/canirun/catalog/data/detect.json is stale: run python scripts/compile_catalog.py"
    )
    assert _small_detect() is not None


def test_the_toml_is_used_when_the_precompiled_copy_is_stale() -> None:
    from canirun.catalog.loader import _precompiled, _shipped_files

    files = _shipped_files()
    edited = [(files[0][0], files[0][1] + "\n# edited\n"), *files[1:]]
    assert _precompiled(edited) is None
