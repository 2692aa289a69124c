"""A model file or folder on disk, described by its own headers: what the estimator rates.

Readers (``gguf_model``, ``hf_folder``) turn a GGUF file or a Hugging Face
folder into a ``LocalModel``: exact weight bytes (the sum of the stored
tensors), the architecture numbers the KV cache and runtime overheads need, and
when those cannot be derived, the missing field by name.
"""

from __future__ import annotations

import os
import stat
from dataclasses import field
from pathlib import Path
from typing import IO

from canirun.catalog.schema import Arch, Encoder, FileFormat, Kind
from canirun.records import Record, record


class ModelFileError(ValueError):
    """A file or folder that cannot be read as a model; ``str()`` names it and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@record(slots=True)
class LocalModel(Record):
    name: str  # as the user knows it: the file name, an Ollama tag, a repo id
    path: str  # the file or folder that was read
    format: FileFormat  # gguf, safetensors, pytorch
    kind: Kind  # llm, vlm, embedding, diffusion, speech, vision
    precision: str  # the file's own: Q4_K_M, IQ4_XS, bf16 ...
    weights_bytes: int  # exact: the sum of the stored tensors
    params: int  # elements stored (packed int4 counts as stored)
    architecture: str | None = None  # general.architecture or config.json model_type
    arch: Arch | None = None  # decoder numbers for the KV cache; None when not derivable
    arch_missing: str | None = None  # why ``arch`` is None (the missing field)
    encoder: Encoder | None = None
    layer_bytes: tuple[int, ...] | None = None  # exact bytes of each repeating layer
    active_fraction: float = 1.0  # share of the weights read per token (MoE)
    files: tuple[str, ...] = ()  # every file the weights were summed from
    notes: tuple[str, ...] = field(default=())

    @property
    def bits_per_weight(self) -> float:
        return self.weights_bytes * 8 / self.params if self.params else 0.0


# Bounded reads: what canirun reads from a user's file at most, whatever it says.
MAX_JSON_BYTES = 32 * 2**20


def open_regular(path: Path) -> tuple[IO[bytes], int]:
    """Open a regular file for reading (never a FIFO or device, which could block)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ModelFileError(path, f"cannot read it: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(path, "not a regular file")
    try:
        return path.open("rb"), st.st_size
    except OSError as exc:
        raise ModelFileError(path, f"cannot read it: {exc.strerror or exc}") from None


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> object:
    import json

    stream, size = open_regular(path)
    with stream:
        if size > limit:
            raise ModelFileError(path, f"{size:,} bytes is too large for a JSON file here")
        raw = stream.read(limit + 1)
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(path, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ModelFileError(path, "JSON nested too deeply") from None
