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

import functools
import io
import struct
from typing import IO, Any

from canirun.records import Record, record

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
# The fast skip over string arrays (``_Runs``); False leaves only the exact
# walk, which the tests compare it with.
FAST_SKIP = True
RUN_WINDOW = 1 << 16  # bytes a first try looks at; doubles while runs fill it
RUN_MIN_WINDOW = 1 << 12  # twice the last run, but at least this
RUN_MAX_WINDOW = 1 << 18  # 256 KiB: its scratch arrays stay in a core's cache
# A try costs about what the exact walk takes for a hundred strings: one that
# proves fewer than this doubles the walk before the next.
RUN_MIN_STRINGS = 256
RUN_MAX_BACKOFF = 4096

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


@record(slots=True)
class ArrayInfo(Record):
    """A metadata array too long to keep (a tokenizer's tokens): its type and length."""

    item_type: int
    length: int


@record(slots=True)
class TensorInfo(Record):
    name: str
    type_name: str  # ggml type: Q4_K, F16, ...
    shape: tuple[int, ...]  # ne[0] first, as the file stores it
    elements: int
    bytes: int
    offset: int  # from the start of the data section


@record(slots=True)
class GgufHeader(Record):
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
        self.buf: bytes | bytearray = b""
        self.store: bytearray | None = None  # what buf reads into, for files
        self.start = 0  # file offset of buf[0]
        self.off = 0  # position within buf
        self.runs: _Runs | None = None  # the fast skip over string arrays, made when needed

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
        # Read again from here rather than join what is left to what comes next:
        # one copy of each megabyte, not two.
        self.start, self.off = self.pos, 0
        self.stream.seek(self.start)
        self.buf = self._read(min(max(n, CHUNK), self.size - self.start))
        if len(self.buf) < n:
            raise GgufError(f"truncated: {what} runs past the end of the file")

    def _read(self, n: int) -> bytes | bytearray:
        """Up to ``n`` bytes from here: a file's go into one buffer, reused (fresh memory
        for every megabyte costs more than the copy); other streams just read."""
        if not isinstance(self.stream, (io.BufferedIOBase, io.FileIO)):
            return self.stream.read(n)
        if self.store is None or len(self.store) != n:
            self.store = bytearray(n)
        got = self.stream.readinto(self.store)
        if got < n:
            del self.store[got:]
        return self.store

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

    def take(self, n: int, what: str) -> bytes | bytearray:
        self.need(n, what)
        out = self.buf[self.off : self.off + n]
        self.off += n
        return out

    def string(self, what: str, limit: int) -> bytes | bytearray | None:
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
        """Skip ``count`` strings quickly: a tokenizer holds hundreds of thousands.

        Runs of strings proven by their own length fields are skipped at numpy
        speed (``_Runs``); the exact walk (``_walk_strings``) takes over for
        whatever that cannot prove (a long or empty string, a buffer's end), so
        the result, and any error, is the walk's own.
        """
        left = count
        pace = _Pace()
        while left:
            if FAST_SKIP and pace.slow == 1:
                if self.runs is None:
                    self.runs = _Runs()
                end = min(len(self.buf), self.off + pace.window)
                off, done = self.runs.skip(self.buf, self.off, end, left)
                pace.after(done, off - self.off)
                self.off = off
                left -= done
                if not left:
                    return
            left -= self._walk_strings(min(left, pace.slow) if FAST_SKIP else left, what)
            pace.walked()

    def _walk_strings(self, count: int, what: str) -> int:
        """Skip ``count`` strings one length field at a time; returns ``count``."""
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
                return count
            if off <= end:  # this string's text crosses the end of the buffer
                length = unpack(buf, off)[0]
                self.off = off + 8
                self.skip(length, what)
                left -= 1
            else:  # its length field does
                self.need(8, what)
        return count


class _Pace:
    """When to try ``_Runs.skip`` and over how many bytes, so that a file built to
    defeat it (a string it cannot prove every few entries) costs little more than
    the exact walk: a run that proves few strings doubles the walk before the next
    try, and the window follows the length of the runs that are proven."""

    def __init__(self) -> None:
        self.window = RUN_WINDOW
        self.slow = 1  # strings the exact walk takes before the next try
        self.backoff = 1

    def after(self, done: int, nbytes: int) -> None:
        if nbytes * 2 >= self.window:  # the run filled the window: look further next time
            self.window = min(self.window * 2, RUN_MAX_WINDOW)
        else:  # it stopped at a string it could not prove: size the window to the run
            self.window = max(RUN_MIN_WINDOW, nbytes * 2)
        if done >= RUN_MIN_STRINGS:
            self.backoff = 1
        else:
            self.backoff = min(self.backoff * 2, RUN_MAX_BACKOFF)
            self.slow = self.backoff

    def walked(self) -> None:
        self.slow = 1


class _Runs:
    """Skips runs of strings at numpy speed, with scratch arrays kept over a file's arrays."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.size = 0
        self.zero = self.two = self.four = np.empty(0, bool)

    def _scratch(self, n: int) -> None:
        if n > self.size:
            np = self.np
            self.size = max(n, RUN_MAX_WINDOW)
            self.zero, self.two, self.four = (np.empty(self.size, bool) for _ in range(3))

    def skip(self, buf: bytes | bytearray, off: int, end: int, left: int) -> tuple[int, int]:
        """Skip up to ``left`` strings lying wholly in ``buf[off:end]``; returns the new
        offset and how many were skipped (maybe none).

        A string of 1 to 255 bytes (a tokenizer entry) starts with its length
        as 8 little-endian bytes: one byte that is not zero, then seven zeros.
        Every such pattern in the window is a candidate, and its length is then
        exactly that byte; a link from one candidate to the next is kept only
        when that length lands exactly on it. The run from ``off`` along kept
        links is therefore the exact walk's own, whatever else the window holds:
        bytes that merely look like a length field can only end the run early,
        never change where it goes.
        """
        np = self.np
        n = end - off
        if n < 16:
            return off, 0
        self._scratch(n)
        a = np.frombuffer(buf, np.uint8, n, off)
        zero = np.equal(a, 0, out=self.zero[:n])
        two = np.logical_and(zero[:-1], zero[1:], out=self.two[: n - 1])  # zeros at i, i+1
        four = np.logical_and(two[:-2], two[2:], out=self.four[: n - 3])  # at i .. i+3
        seven = np.logical_and(four[:-3], four[3:], out=self.two[: n - 6])  # at i .. i+6
        # a byte that is not zero, then seven zeros: seven[1:] and not zero[i]
        start = np.greater(seven[1:], zero[: n - 7], out=self.four[: n - 7])
        cand = np.flatnonzero(start)  # every one leaves room for its 8-byte length
        if not len(cand) or cand[0] != 0:
            return off, 0
        nxt = np.take(a, cand).astype(np.int64)  # where each candidate's string ends
        nxt += 8
        nxt += cand
        broken = np.flatnonzero(nxt[:-1] != cand[1:])
        last = int(broken[0]) if len(broken) else len(cand) - 1  # the run: cand[0..last]
        if last >= left:
            return off + int(cand[left]), left
        stop = int(nxt[last])
        if stop <= n:  # the run's last string ends inside the window too
            return off + stop, last + 1
        return off + int(cand[last]), last


def _text(raw: bytes | bytearray | None, what: str) -> str | None:
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


@functools.cache
def _type_tables() -> tuple[dict[int, tuple[str, int, int]], Any]:
    """ggml type id -> (name, block elements, block bytes), from the gguf package."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    table = {int(t): (t.name, *GGML_QUANT_SIZES[t]) for t in GGMLQuantizationType}
    return table, GGMLQuantizationType


def _tensor(cur: _Cursor, types: dict[int, tuple[str, int, int]], i: int) -> TensorInfo:
    record = _record_in_buffer(cur)
    if record is not None:
        return _tensor_info(types, *record)
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
    return _tensor_info(types, name, shape, type_id, offset)


_SHAPES = {n: struct.Struct(f"<{n}QIQ") for n in range(1, MAX_DIMS + 1)}


def _record_in_buffer(cur: _Cursor) -> tuple[str, tuple[int, ...], int, int] | None:
    """A tensor record read straight from the buffer (a few thousand per file), or None
    when any part of it needs the careful reads above: past the buffer or the header
    limit, an odd name or dimension count. Those reads then say what is wrong."""
    buf, off = cur.buf, cur.off
    if off + 8 > len(buf):
        return None
    (length,) = _U64.unpack_from(buf, off)
    dims_at = off + 8 + length
    if length > MAX_KEY_BYTES or dims_at + 4 > len(buf):
        return None
    (n_dims,) = _U32.unpack_from(buf, dims_at)
    if not 1 <= n_dims <= MAX_DIMS:
        return None
    fields = _SHAPES[n_dims]
    end = dims_at + 4 + fields.size
    if end > len(buf) or cur.start + end > MAX_HEADER_BYTES:
        return None
    try:
        name = buf[off + 8 : dims_at].decode("utf-8")
    except UnicodeDecodeError:
        return None
    *shape, type_id, offset = fields.unpack_from(buf, dims_at + 4)
    cur.off = end
    return name, tuple(shape), type_id, offset


def _tensor_info(
    types: dict[int, tuple[str, int, int]],
    name: str,
    shape: tuple[int, ...],
    type_id: int,
    offset: int,
) -> TensorInfo:
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
