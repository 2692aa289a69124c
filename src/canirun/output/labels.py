"""Words for categories and verdicts, shared by the renderers.

A module of its own so that renderers which need only these (the fleet matrix)
do not import the scan view and, through it, the catalog schema.
"""

from __future__ import annotations

CATEGORY_TITLES = {
    "foundation": "Foundation models (open weights)",
    "industry": "Industry models",
    "code": "Code",
    "vision": "Vision",
    "speech": "Speech and audio",
    "multimodal": "Multimodal",
    "science": "Science and medicine",
    "embeddings": "Embeddings and retrieval",
}
VERDICT_TEXT = {
    "gpu": "GPU",
    "multi-gpu": "multi-GPU",
    "multi-node": "multi-node",
    "offload": "GPU+RAM",
    "cpu": "CPU",
    "too-big": "too big",
    "unsupported": "unsupported",
    "api-only": "API only",
    "unknown": "unknown",
}
