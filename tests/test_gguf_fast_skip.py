"""The fast skip over GGUF string arrays gives the exact walk's answer, for any file.

``gguf_file`` skips tokenizer arrays (hundreds of thousands of strings) with
numpy, keeping only links that each string's own length field proves, and
reads tensor records straight from its buffer. Here every shortcut is compared
with the careful reads it replaces (``exact()`` turns them off): real-shaped
files, files built to fool a marker search, damaged and truncated files (the
same error, word for word), any buffer and window size; and a file built to
defeat the shortcut costs a bounded amount of extra work.
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canirun.catalog import gguf_file
from canirun.catalog.gguf_file import GgufError, GgufHeader, read_gguf
from tests.model_files import TINY, llama_metadata, llama_tensors, write_gguf


@contextlib.contextmanager
def knobs(**values: int) -> Iterator[None]:
    saved = {name: getattr(gguf_file, name) for name in values}
    try:
        for name, value in values.items():
            setattr(gguf_file, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(gguf_file, name, value)


@contextlib.contextmanager
def exact() -> Iterator[None]:
    """Only the careful reads: the walk over every length field, field-by-field records."""
    saved = gguf_file.FAST_SKIP, gguf_file._record_in_buffer
    gguf_file.FAST_SKIP = False
    gguf_file._record_in_buffer = lambda cur: None
    try:
        yield
    finally:
        gguf_file.FAST_SKIP, gguf_file._record_in_buffer = saved


def outcome(blob: bytes, size: int | None = None) -> GgufHeader | str:
    """The header read from ``blob``, or the error's message."""
    try:
        return read_gguf(io.BytesIO(blob), len(blob) if size is None else size)
    except GgufError as exc:
        return f"GgufError: {exc}"


def both(blob: bytes, size: int | None = None, **values: int) -> tuple[Any, Any]:
    with knobs(**values):
        fast = outcome(blob, size)
        with exact():
            slow = outcome(blob, size)
    return fast, slow


# --- GGUF files built byte by byte (any bytes in a string, any count) --------------------


def _str(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


def string_array(key: str, items: Sequence[bytes]) -> bytes:
    body = b"".join(_str(s) for s in items)
    return _str(key.encode()) + struct.pack("<IIQ", 9, 8, len(items)) + body


def u32(key: str, value: int) -> bytes:
    return _str(key.encode()) + struct.pack("<II", 4, value)


def tensor_infos(shapes: Sequence[tuple[int, ...]]) -> tuple[bytes, int]:
    """F32 tensors, packed at 32-byte offsets; returns the records and the data size."""
    out, offset = b"", 0
    for i, shape in enumerate(shapes):
        out += _str(f"blk.{i}.weight".encode()) + struct.pack(
            f"<I{len(shape)}QIQ", len(shape), *shape, 0, offset
        )
        n = 4
        for d in shape:
            n *= d
        offset += -(-n // 32) * 32
    return out, offset


def gguf_blob(kvs: Sequence[bytes], shapes: Sequence[tuple[int, ...]] = ((8, 2), (16,))) -> bytes:
    infos, data = tensor_infos(shapes)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), len(kvs)) + b"".join(kvs) + infos
    return head + bytes(-len(head) % 32 + data)


def vocab_blob(tokens: Sequence[bytes], merges: Sequence[bytes] = ()) -> bytes:
    kvs = [u32("llama.block_count", 2), string_array("tokenizer.ggml.tokens", tokens)]
    if merges:
        kvs.append(string_array("tokenizer.ggml.merges", merges))
    kvs.append(u32("general.alignment", 32))
    return gguf_blob(kvs)


def llama3_like(n: int) -> list[bytes]:
    """Byte-level BPE entries as Llama 3 stores them: mostly short, a few long ones."""
    out = [f"tok{i}".encode() for i in range(n)]
    for i in range(0, n, 997):
        out[i] = "Ġ".encode() * (i % 180)  # up to 358 bytes: past what one byte holds
    return out


# The bytes a marker search would take for what follows an array, inside a string.
NEXT_KEY = _str(b"tokenizer.ggml.merges") + struct.pack("<IIQ", 9, 8, 3)
FAKE_TAIL = u32("general.alignment", 32) + tensor_infos([(8, 2), (16,)])[0]
FAKE_LENGTH = struct.pack("<Q", 5) + b"abcde"


def test_a_llama3_sized_tokenizer_is_read_as_the_walk_reads_it() -> None:
    tokens, merges = llama3_like(30_000), [f"a{i} b{i}".encode() for i in range(40_000)]
    fast, slow = both(vocab_blob(tokens, merges))
    assert isinstance(fast, GgufHeader)
    assert fast == slow
    assert fast.get("tokenizer.ggml.tokens") == gguf_file.ArrayInfo(8, 30_000)
    assert fast.get("tokenizer.ggml.merges") == gguf_file.ArrayInfo(8, 40_000)


def test_the_shortcut_does_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a comparison of the walk with itself: on a real tokenizer the exact walk
    takes only the strings the shortcut cannot prove (the long ones, buffer ends)."""
    walked: list[int] = []
    walk = gguf_file._Cursor._walk_strings

    def counting(self: gguf_file._Cursor, count: int, what: str) -> int:
        walked.append(count)
        return walk(self, count, what)

    monkeypatch.setattr(gguf_file._Cursor, "_walk_strings", counting)
    assert isinstance(outcome(vocab_blob(llama3_like(100_000))), GgufHeader)
    assert sum(walked) < 100_000 / 200


@pytest.mark.parametrize(
    "tokens",
    [
        [b"a" * 255, b"b" * 256, b"c" * 257, b"d" * 1000] * 50,  # one byte, then more
        [b"", b"", b"x", b""] * 100,  # empty strings: eight zero bytes each
        [b"\x00", b"\x00" * 7, b"a\x00b", b"\x00" * 300, b"z"] * 100,  # zeros in the text
        [NEXT_KEY, b"t", FAKE_TAIL, b"u" * 9, FAKE_LENGTH] * 200,  # what a marker search takes
        [FAKE_LENGTH * 30, bytes(range(256))] * 100,
        [bytes([i % 256]) * (i % 300) for i in range(5000)],
        ([b"x"] * 255 + [b"y" * 400] + [b"x"] * 256) * 3,  # either side of RUN_MIN_STRINGS
    ],
    ids=["long", "empty", "zeros", "markers", "fake-lengths", "every-length", "edges"],
)
@pytest.mark.parametrize("chunk", [9, 100, 4096, 1 << 20])
def test_strings_built_to_mislead_give_the_walks_answer(tokens: list[bytes], chunk: int) -> None:
    merges = list(reversed(tokens))
    fast, slow = both(vocab_blob(tokens, merges), CHUNK=chunk)
    assert isinstance(fast, GgufHeader)
    assert fast == slow


def test_a_whole_fake_header_inside_a_token_is_not_taken_for_the_real_one() -> None:
    """A string that holds a complete, consistent rest of a header (the next key, the
    alignment, tensor records for the file's own data) fools any search for markers
    followed by validation; the reader never looks for markers."""
    fake_infos, _ = tensor_infos([(4,), (4,)])  # different tensors, also valid here
    fake = u32("general.alignment", 32) + fake_infos + bytes(64)
    tokens = [b"tok"] * 500 + [fake] + [b"tok"] * 500
    header = outcome(vocab_blob(tokens))
    assert isinstance(header, GgufHeader)
    assert [t.shape for t in header.tensors] == [(8, 2), (16,)]
    assert header.get("tokenizer.ggml.tokens") == gguf_file.ArrayInfo(8, 1001)
    assert header == both(vocab_blob(tokens))[1]


@pytest.mark.parametrize("high", [16, 24, 40, 56])
def test_a_length_is_never_read_from_its_low_byte_alone(high: int) -> None:
    """A length of 5 + 2**high starts like a 5-byte string, and the bytes 5 in look like
    more strings: a reader trusting the low byte would walk into the text. Whether the
    string is really that long (2**16) or runs past the end (the rest), the same answer."""
    text = b"AAAAA" + FAKE_LENGTH * 40 + b"x"
    length = 5 + 2**high
    real = text + bytes(length - len(text)) if high == 16 else text
    body = b"".join(_str(t) for t in [b"tok"] * 300)
    body += struct.pack("<Q", length) + real + b"".join(_str(t) for t in [b"tok"] * 300)
    array = _str(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 601) + body
    blob = gguf_blob([u32("llama.block_count", 2), array])
    fast, slow = both(blob)
    assert fast == slow
    assert isinstance(fast, GgufHeader) == (high == 16)


TOKEN = st.one_of(
    st.binary(min_size=1, max_size=16),
    st.binary(max_size=0),
    st.binary(min_size=250, max_size=270),
    st.integers(1, 24).map(lambda n: b"\x00" * n),
    st.sampled_from([NEXT_KEY, FAKE_TAIL, FAKE_LENGTH, b"\x01" + b"\x00" * 7]),
)
SETTINGS = st.fixed_dictionaries(
    {
        "CHUNK": st.sampled_from([9, 64, 1000, 1 << 16]),
        "RUN_WINDOW": st.sampled_from([16, 100, 4096]),
        "RUN_MIN_WINDOW": st.sampled_from([16, 4096]),
        "RUN_MAX_WINDOW": st.sampled_from([4096, 1 << 18]),
        "RUN_MIN_STRINGS": st.sampled_from([1, 8, 64]),
        "RUN_MAX_BACKOFF": st.sampled_from([2, 4096]),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(TOKEN, max_size=600),
    common=st.integers(0, 3000),
    knob=SETTINGS,
)
def test_any_string_array_is_skipped_as_the_walk_skips_it(
    tokens: list[bytes], common: int, knob: dict[str, int]
) -> None:
    """300 arrays of any bytes (empty, long, zero-filled, fake length fields, fake
    keys and tensor records), mixed with runs of ordinary tokens, at any buffer and
    window size and pacing: the same header."""
    mixed = [f"t{i}".encode() for i in range(common)]
    for i, token in enumerate(tokens):
        mixed.insert((i * 7919) % (len(mixed) + 1), token)
    fast, slow = both(vocab_blob(mixed, tokens), **knob)
    assert isinstance(slow, GgufHeader)
    assert fast == slow


@settings(max_examples=300, deadline=None)
@given(data=st.data(), knob=SETTINGS)
def test_any_damage_gives_the_same_header_or_the_same_error(
    data: st.DataObject, knob: dict[str, int]
) -> None:
    """300 damaged files (bytes changed, the file cut short, a size that lies): the
    fast reader and the careful one agree on the header or on the error, word for word."""
    tokens = [f"t{i}".encode() for i in range(data.draw(st.integers(0, 400)))]
    tokens += data.draw(st.lists(TOKEN, max_size=20))
    raw = bytearray(vocab_blob(tokens, tokens[::-1]))
    for _ in range(data.draw(st.integers(0, 10))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.sampled_from([0, 1, 7, 8, 9, 0xFF, raw[at] ^ 0x80]))
    cut = data.draw(st.integers(0, len(raw)))
    blob = bytes(raw[:cut])
    size = data.draw(st.sampled_from([len(blob), len(raw), len(raw) + 4096]))
    fast, slow = both(blob, size, **knob)
    assert fast == slow


# --- files written by llama.cpp's own writer -------------------------------------------


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
def test_files_from_gguf_writer_read_the_same(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "vocab.gguf"
    meta = llama_metadata(TINY, **{"general.file_type": 15})
    meta["tokenizer.ggml.tokens"] = [f"token-{i}" * (i % 40) for i in range(TINY.vocab)]
    meta["tokenizer.ggml.merges"] = [f"a{i} b{i}\x00" for i in range(3000)]
    meta["tokenizer.ggml.token_type"] = [1] * TINY.vocab
    write_gguf(path, "llama", meta, llama_tensors(TINY, {"default": "Q4_K"}))
    blob = path.read_bytes()
    fast, slow = both(blob, CHUNK=chunk)
    assert isinstance(fast, GgufHeader)
    assert fast == slow


# --- bounded work whatever the file ------------------------------------------------------


def _work(blob: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Tries of the shortcut, and bytes they looked at, to read ``blob``."""
    tries, looked = [0], [0]
    skip = gguf_file._Runs.skip

    def counting(self: Any, buf: Any, off: int, end: int, left: int) -> tuple[int, int]:
        tries[0] += 1
        looked[0] += end - off
        return skip(self, buf, off, end, left)

    monkeypatch.setattr(gguf_file._Runs, "skip", counting)
    assert isinstance(outcome(blob), GgufHeader)
    return tries[0], looked[0]


@pytest.mark.parametrize(
    "period",
    [1, 2, 255, 256, 257, 1000],
    ids=lambda p: f"a-long-string-every-{p}",
)
def test_a_file_built_to_defeat_the_shortcut_costs_bounded_work(
    monkeypatch: pytest.MonkeyPatch, period: int
) -> None:
    """Strings the shortcut cannot prove, placed to waste as many tries as possible:
    the tries stay few per string and look at a few times the array's bytes at most,
    so the cost stays near the exact walk's."""
    n = 60_000
    tokens = [b"y" * 300 if i % period == 0 else b"x" for i in range(n)]
    blob = vocab_blob(tokens)
    tries, looked = _work(blob, monkeypatch)
    assert tries <= n / 128 + 64
    assert looked <= 3 * len(blob) + tries * gguf_file.RUN_MIN_WINDOW + 16 * gguf_file.RUN_WINDOW
