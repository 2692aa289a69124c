"""Read a GGUF file's header: its metadata and every tensor's type, shape and exact bytes.

Only the header is read, never the weights, so a 100 GB file takes
milliseconds. The type tables (block sizes, bytes per block, value types, file
types) are those of the ``gguf`` package, llama.cpp's own Python library; the
walk itself is done here rather than with ``gguf.GGUFReader`` because that
reader memory-maps the whole file and builds a numpy view per tokenizer entry
(seconds for a 150k vocabulary) and trusts every count in the file. This one
reads through a bounded buffer and refuses a header whose counts or lengths the
file cannot hold (a hostile "2^60 tensors" or a 10 GB string is one clear
error, read in constant memory).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO, Any

MAGIC = b"GGUF"
# Bounds whatever the file claims: llama.cpp's GGML_MAX_DIMS, and far above
# any real model (the largest GGUF files hold a few thousand tensors and a few
# dozen metadata keys besides the tokenizer).
MAX_DIMS = 4
MAX_TENSORS = 1_000_000
MAX_KEYS = 100_000
MAX_KEY_BYTES = 65_535
MAX_HEADER_BYTES = 512 * 2**20  # metadata + tensor infos, read in chunks
KEEP_STRING_BYTES = 4096  # longer values (chat templates) are skipped, not kept
KEEP_ARRAY_ITEMS = 4096  # per-layer arrays are kept; tokenizer arrays only counted
CHUNK = 1 << 20

_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
STRING, ARRAY = 8, 9
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")


class GgufError(ValueError):
    """The file is not a GGUF file canirun can read; the message says why."""


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """A metadata array too long to keep (a tokenizer's tokens): its type and length."""

    item_type: int
    length: int


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    type_name: str  # ggml type: Q4_K, F16, ...
    shape: tuple[int, ...]  # ne[0] first, as the file stores it
    elements: int
    bytes: int
    offset: int  # from the start of the data section


@dataclass(frozen=True, slots=True)
class GgufHeader:
    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    data_offset: int
    file_size: int

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


class _Cursor:
    """Sequential reads through a bounded buffer, with the file's size as the limit."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self.stream = stream
        self.size = size
        self.buf = b""
        self.start = 0  # file offset of buf[0]
        self.off = 0  # position within buf

    @property
    def pos(self) -> int:
        return self.start + self.off

    def need(self, n: int, what: str) -> None:
        if self.pos + n > self.size:
            raise GgufError(f"truncated: {what} runs past the end of the file")
        if self.pos + n > MAX_HEADER_BYTES:
            raise GgufError(f"the header is larger than {MAX_HEADER_BYTES // 2**20} MiB")
        if self.off + n <= len(self.buf):
            return
        rest = self.buf[self.off :]
        self.start, self.off = self.pos, 0
        want = max(n - len(rest), CHUNK)
        more = self.stream.read(min(want, self.size - self.start - len(rest)))
        self.buf = rest + more
        if len(self.buf) < n:
            raise GgufError(f"truncated: {what} runs past the end of the file")

    def unpack(self, fmt: struct.Struct, what: str) -> Any:
        self.need(fmt.size, what)
        (value,) = fmt.unpack_from(self.buf, self.off)
        self.off += fmt.size
        return value

    def skip(self, n: int, what: str) -> None:
        if self.pos + n > self.size:
            raise GgufError(f"truncated: {what} runs past the end of the file")
        if self.off + n <= len(self.buf):
            self.off += n
            return
        target = self.pos + n
        if target > MAX_HEADER_BYTES:
            raise GgufError(f"the header is larger than {MAX_HEADER_BYTES // 2**20} MiB")
        self.stream.seek(target)
        self.buf, self.start, self.off = b"", target, 0

    def take(self, n: int, what: str) -> bytes:
        self.need(n, what)
        out = self.buf[self.off : self.off + n]
        self.off += n
        return out

    def string(self, what: str, limit: int) -> bytes | None:
        """A length-prefixed string; None (skipped) when longer than ``limit``."""
        length = self.unpack(_U64, what)
        if self.pos + length > self.size:
            raise GgufError(
                f"truncated: {what} claims {length:,} bytes, beyond the end of the file"
            )
        if length > limit:
            self.skip(length, what)
            return None
        return self.take(length, what)

    def skip_strings(self, count: int, what: str) -> None:
        """Skip ``count`` strings quickly: a tokenizer holds hundreds of thousands."""
        unpack = _U64.unpack_from
        left = count
        while left:
            # The hot loop works on locals over the current buffer; it leaves to
            # need()/skip() only when a string crosses the buffer's end.
            buf, off = self.buf, self.off
            size, end = len(buf), len(buf) - 8
            while left and off <= end:
                nxt = off + 8 + unpack(buf, off)[0]
                if nxt > size:
                    break
                off = nxt
                left -= 1
            self.off = off
            if not left:
                return
            if off <= end:  # this string's text crosses the end of the buffer
                length = unpack(buf, off)[0]
                self.off = off + 8
                self.skip(length, what)
                left -= 1
            else:  # its length field does
                self.need(8, what)


def _text(raw: bytes | None, what: str) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise GgufError(f"{what} is not UTF-8") from None


def _value(cur: _Cursor, vtype: int, key: str) -> Any:
    if vtype in _SCALARS:
        return cur.unpack(struct.Struct(_SCALARS[vtype]), f"the value of {key}")
    if vtype == STRING:
        return _text(cur.string(f"the value of {key}", KEEP_STRING_BYTES), f"the value of {key}")
    if vtype != ARRAY:
        raise GgufError(f"metadata {key} has an unknown value type {vtype}")
    item = cur.unpack(_U32, f"the array type of {key}")
    length = cur.unpack(_U64, f"the array length of {key}")
    if item in _SCALARS:
        size = struct.calcsize(_SCALARS[item])
        if cur.pos + length * size > cur.size:
            raise GgufError(f"truncated: array {key} claims {length:,} items, beyond the file")
        if length <= KEEP_ARRAY_ITEMS:
            raw = cur.take(length * size, f"array {key}")
            return list(struct.unpack(f"<{length}{_SCALARS[item][1]}", raw))
        cur.skip(length * size, f"array {key}")
        return ArrayInfo(item, length)
    if item == STRING:
        if cur.pos + length * 8 > cur.size:
            raise GgufError(f"truncated: array {key} claims {length:,} strings, beyond the file")
        cur.skip_strings(length, f"array {key}")
        return ArrayInfo(item, length)
    raise GgufError(f"metadata {key} is an array of type {item}, which GGUF does not define")


def _metadata(cur: _Cursor, count: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(count):
        raw = cur.string(f"metadata key #{i + 1}", MAX_KEY_BYTES)
        if raw is None:
            raise GgufError(f"metadata key #{i + 1} is longer than {MAX_KEY_BYTES:,} bytes")
        key = _text(raw, f"metadata key #{i + 1}") or ""
        vtype = cur.unpack(_U32, f"the type of {key}")
        out[key] = _value(cur, vtype, key)
    return out


def _type_tables() -> tuple[dict[int, tuple[str, int, int]], Any]:
    """ggml type id -> (name, block elements, block bytes), from the gguf package."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    table = {int(t): (t.name, *GGML_QUANT_SIZES[t]) for t in GGMLQuantizationType}
    return table, GGMLQuantizationType


def _tensor(cur: _Cursor, types: dict[int, tuple[str, int, int]], i: int) -> TensorInfo:
    raw = cur.string(f"the name of tensor #{i + 1}", MAX_KEY_BYTES)
    if raw is None:
        raise GgufError(f"the name of tensor #{i + 1} is longer than {MAX_KEY_BYTES:,} bytes")
    name = _text(raw, f"the name of tensor #{i + 1}") or ""
    n_dims = cur.unpack(_U32, f"tensor {name}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise GgufError(f"tensor {name} claims {n_dims} dimensions (at most {MAX_DIMS})")
    shape = tuple(cur.unpack(_U64, f"tensor {name}") for _ in range(n_dims))
    type_id = cur.unpack(_U32, f"tensor {name}")
    offset = cur.unpack(_U64, f"tensor {name}")
    if type_id not in types:
        raise GgufError(f"tensor {name} has an unknown ggml type {type_id}")
    type_name, block, block_bytes = types[type_id]
    elements = 1
    for dim in shape:
        elements *= dim
    if elements >= 2**62:
        raise GgufError(f"tensor {name} claims {elements:,} elements")
    if shape[0] % block:
        raise GgufError(
            f"tensor {name}: a row of {shape[0]} is not a multiple of {type_name}'s block"
        )
    return TensorInfo(name, type_name, shape, elements, elements // block * block_bytes, offset)


def read_gguf(stream: IO[bytes], size: int) -> GgufHeader:
    """The header of a GGUF file of ``size`` bytes; ``GgufError`` when it is not one."""
    cur = _Cursor(stream, size)
    if size < 24:
        raise GgufError("too short to be a GGUF file")
    if cur.take(4, "the magic") != MAGIC:
        raise GgufError("not a GGUF file (wrong magic)")
    version = cur.unpack(_U32, "the version")
    if version not in (2, 3):
        raise GgufError(f"GGUF version {version} is not supported (2 and 3 are)")
    n_tensors = cur.unpack(_U64, "the tensor count")
    n_keys = cur.unpack(_U64, "the metadata count")
    room = size - cur.pos
    if n_tensors > MAX_TENSORS or n_tensors * 33 > room:
        raise GgufError(f"the header claims {n_tensors:,} tensors, more than the file can hold")
    if n_keys > MAX_KEYS or n_keys * 13 > room:
        raise GgufError(f"the header claims {n_keys:,} metadata keys, more than the file can hold")
    metadata = _metadata(cur, n_keys)
    types, _ = _type_tables()
    tensors = tuple(_tensor(cur, types, i) for i in range(n_tensors))
    align = metadata.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise GgufError(f"general.alignment {align!r} is not a power of two")
    data_offset = -(-cur.pos // align) * align
    _check_data(tensors, data_offset, size)
    return GgufHeader(version, metadata, tensors, data_offset, size)


def _check_data(tensors: tuple[TensorInfo, ...], data_offset: int, size: int) -> None:
    names: set[str] = set()
    room = size - data_offset
    for t in tensors:
        if t.name in names:
            raise GgufError(f"tensor {t.name} appears twice")
        names.add(t.name)
        if t.offset + t.bytes > room:
            raise GgufError(f"truncated: tensor {t.name} ends beyond the end of the file")


def file_type_name(code: Any) -> str | None:
    """general.file_type (llama_ftype) as llama.cpp names it: 15 -> "Q4_K_M"."""
    from gguf.constants import LlamaFileType

    if not isinstance(code, int):
        return None
    try:
        name = LlamaFileType(code).name
    except ValueError:
        return None
    if name == "GUESSED":
        return None
    return {"ALL_F32": "F32"}.get(name, name.removeprefix("MOSTLY_"))
