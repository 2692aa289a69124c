"""Cross-field checks on the shipped catalog, learned from errors other tools ship
(a 40-layer Qwen3-8B, MoE models whose "active" exceeds the total, a head count that
does not divide the hidden size, a file size from another precision, a 10M context that
is really a rope-scaled maximum)."""

from __future__ import annotations

import pytest

from canirun.catalog import load_catalog
from canirun.estimate.precision import PRECISIONS
from canirun.estimate.weights import weights

CATALOG = load_catalog(user_dir=False)
REFS = list(CATALOG.variants())
ARCHS = [r for r in REFS if r.variant.arch is not None]

# Contexts above 10M tokens are almost always a mistake (a rope factor multiplied in); each one
# allowed here was checked by hand against its source.
TEN_MILLION = 10_000_000
REVIEWED_HUGE_CONTEXTS = {
    # Llama 4 Scout: config max_position_embeddings 10,485,760 and the card's "10M"; stored as
    # the extended context (pre/post-trained at 256K), rated only with --extended-context.
    ("llama-4-scout", "extended_context"): 10_485_760,
}


@pytest.mark.parametrize("ref", [r for r in REFS if r.variant.params], ids=lambda r: r.id)
def test_total_parameters_are_at_least_the_active_ones(ref) -> None:  # type: ignore[no-untyped-def]
    p = ref.variant.params
    assert p.active is None or p.active <= p.total, ref.id
    arch = ref.variant.arch
    if p.active is not None and arch is not None:
        assert arch.experts, f"{ref.id}: active parameters without experts"


@pytest.mark.parametrize("ref", ARCHS, ids=lambda r: r.id)
def test_heads_and_head_dim_agree_with_hidden(ref) -> None:  # type: ignore[no-untyped-def]
    a = ref.variant.arch
    if a.head_dim is None:
        assert a.hidden % a.heads == 0, f"{ref.id}: {a.hidden} hidden / {a.heads} heads"
    elif a.head_dim != a.hidden // a.heads:
        # An explicit head_dim that differs must be said so in the entry (Qwen3, Gemma,
        # Mistral Nemo, MLA's query/key width), not be a typo.
        said = " ".join(
            t or "" for t in (a.note, ref.variant.notes, ref.model.notes)
        ) + CATALOG_TEXT.get(ref.model.id, "")
        assert "head_dim" in said, f"{ref.id}: head_dim {a.head_dim} != {a.hidden // a.heads}"
    assert (a.kv_heads <= a.heads and a.heads % a.kv_heads == 0) or a.is_mla, ref.id


@pytest.mark.parametrize("ref", [r for r in ARCHS if r.variant.arch.experts], ids=lambda r: r.id)
def test_expert_counts_are_consistent(ref) -> None:  # type: ignore[no-untyped-def]
    a = ref.variant.arch
    assert a.experts >= 2
    assert a.experts_per_token <= a.experts
    assert a.shared_experts <= a.experts_per_token + 1
    assert a.dense_layers < a.layers
    assert ref.variant.params.active is not None, f"{ref.id}: MoE without active params"


@pytest.mark.parametrize(
    "ref", [r for r in ARCHS if r.variant.files and r.variant.params], ids=lambda r: r.id
)
def test_file_sizes_match_params_times_bits(ref) -> None:  # type: ignore[no-untyped-def]
    """Every published file is within a plausible bits-per-weight band of its precision,
    and close enough to canirun's formula that the estimator uses it."""
    total = ref.variant.params.total
    for f in ref.variant.files:
        p = PRECISIONS.get(f.precision) or PRECISIONS.get(f.precision.lower())
        if p is None:
            continue
        bpw = f.size_bytes * 8 / total
        # GGUF mixes types (Q4_K_M ~4.9), quantised checkpoints keep embeddings in 16 bits,
        # and some checkpoints store a tied head twice: hence the band, not equality.
        assert 0.6 * p.bits <= bpw <= 1.6 * p.bits + 1, f"{ref.id} {f.precision}: {bpw:.2f} bpw"
        w = weights(ref.model, ref.variant, p)
        assert w is not None
        assert w.rejected is None or "far off" in (f.note or "") or "stores" in (f.note or ""), (
            f"{ref.id}: {w.rejected}"
        )


@pytest.mark.parametrize("ref", ARCHS, ids=lambda r: r.id)
def test_contexts_above_ten_million_are_flagged(ref) -> None:  # type: ignore[no-untyped-def]
    a = ref.variant.arch
    model = ref.id.removesuffix(f"-{ref.variant.key}")
    for field in ("max_context", "extended_context"):
        value = getattr(a, field)
        if value is not None and value > TEN_MILLION:
            key = (f"{model}-{ref.variant.key}" if model else ref.id, field)
            assert REVIEWED_HUGE_CONTEXTS.get((ref.id, field)) == value, (
                f"{key}: {value:,} tokens is above 10M: check the source (a rope factor "
                "multiplied into max_position_embeddings?) and add it to REVIEWED_HUGE_CONTEXTS"
            )
    if a.extended_context is not None:
        assert a.extended_context > a.max_context
        assert a.extended_how, f"{ref.id}: say how the extended context is reached"


def _file_texts() -> dict[str, str]:
    """Each model's TOML file header comments count as saying it (head_dim notes)."""
    from importlib import resources

    out: dict[str, str] = {}
    data = resources.files("canirun.catalog") / "data"
    for path in data.iterdir():
        if not path.name.endswith(".toml"):
            continue
        text = path.read_text(encoding="utf-8")
        for model in CATALOG.models:
            if f'id = "{model.id}"' in text:
                out[model.id] = text.split("[[model]]", 1)[0]
    return out


CATALOG_TEXT = _file_texts()
