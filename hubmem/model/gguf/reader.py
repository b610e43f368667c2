"""A bounded GGUF header parser: the key/value metadata and the tensor-info table, never the tensor data.

The layout is llama.cpp's (ggml/src/gguf.cpp, `gguf_init_from_file_impl`; gguf-py 0.19
`gguf/gguf_reader.py` reads the same): little-endian

    u32 magic "GGUF" · u32 version · u64 tensor_count · u64 kv_count
    kv_count × (string key · u32 value type · value)      string = u64 length + UTF-8 bytes
    tensor_count × (string name · u32 n_dims · n_dims × u64 ne · u32 ggml type · u64 offset)
    padding to general.alignment (default 32), then the tensor data

The constants (magic, versions, value types, `GGMLQuantizationType` and its block sizes) come from the
`gguf` package, llama.cpp's own Python package; value types are decoded with the numpy scalar table
of its `GGUFReader`. `GGUFReader` itself maps the whole file and builds a numpy view per tensor and
per array element, so it cannot read a header-only prefix fetched by HTTP Range; this parser walks
the same structure over any `read(offset, n)` source and checks every count and length against
llama.cpp's own bounds before it reads, so a corrupt header costs a clear error, not gigabytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hubmem.errors import MalformedGGUFError, UnknownDtypeError

# llama.cpp ggml/src/gguf.cpp bounds (b6xxx): GGML_MAX_DIMS 4 dimensions; a tensor's element count
# must fit int64 (`INT64_MAX/info.t.ne[1] <= info.t.ne[0]` ...). The others are hubmem's, generous
# for every published file (gemma-3: 262 144 tokens; DeepSeek-V3: 1 025 tensors; Llama 3: 280 147
# merges; longest chat templates ~ 40 kB): a header past them is corrupt, not a model.
MAX_DIMS = 4
MAX_TENSORS = 1_000_000
MAX_KVS = 100_000
MAX_STRING = 16 * 1024**2
MAX_ARRAY = 16 * 1024**2
MAX_HEADER = 256 * 1024**2  # bytes of header the parser is willing to walk
SMALL_ARRAY = 4096  # arrays up to this many elements keep their values (per-layer head counts, ...)
# read sizing (estimates only: a short read is followed by another, a long one costs bytes): a tensor
# info is 8 + name + 4 + 8·dims + 4 + 8 bytes, ~60 for llama.cpp's names ("blk.27.ffn_down.weight");
# another quant file's keys around its tokenizer differ from the first file's by a few hundred bytes
# at most (general.file_type is fixed-size; quantize.imatrix.* strings come and go)
TENSOR_INFO_GUESS = 64
HINT_SLACK = 4096
MAX_SIZED_READ = 16 * 1024**2  # the largest estimate one read follows (Gemma 3's 262k tokens: ~4 MB)
STRING_TYPE, ARRAY_TYPE = 8, 9  # gguf.GGUFValueType.STRING / ARRAY (checked against the package below)


class NeedBytes(Exception):
    """The source has no bytes at [offset, offset + n): the header is truncated there."""

    def __init__(self, offset: int, n: int) -> None:
        super().__init__(f"{n} bytes at offset {offset}")
        self.offset, self.n = offset, n


@dataclass(frozen=True)
class ArrayInfo:
    """A large array's element type and count, kept instead of its values (tokenizer tokens, merges)."""

    type: int
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    ggml_type: int  # gguf.GGMLQuantizationType value
    shape: tuple[int, ...]  # ggml order: ne[0] (the contiguous row length) first
    offset: int  # relative to the data section

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class GGUFHeader:
    version: int
    kv: dict[str, Any]  # small values as Python values; large arrays as ArrayInfo
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int  # where tensor data starts (header bytes, padding included)
    # runs of large arrays by their first key: hints for the next file of the same repo
    spans: dict[str, Run] = field(default_factory=dict)


def _tables() -> tuple[int, tuple[int, ...], dict[int, tuple[str, int]], dict[int, tuple[int, int]]]:
    """(magic, versions, value type -> (struct code, size), ggml type -> (block size, type size)),
    from the gguf package."""
    import numpy as np
    from gguf.constants import GGML_QUANT_SIZES, GGUF_MAGIC, GGUFValueType
    from gguf.gguf_reader import READER_SUPPORTED_VERSIONS, GGUFReader

    assert GGUFValueType.STRING == STRING_TYPE and GGUFValueType.ARRAY == ARRAY_TYPE
    # struct's standard-size code of each numpy scalar (numpy's own `.char` of int64 is "l", which
    # struct's "<" reads as 4 bytes: every 64-bit key was misread)
    codes = {("u", 1): "B", ("i", 1): "b", ("u", 2): "H", ("i", 2): "h", ("u", 4): "I", ("i", 4): "i",
             ("u", 8): "Q", ("i", 8): "q", ("f", 4): "f", ("f", 8): "d", ("b", 1): "?"}  # fmt: skip
    scalars = {}
    for t, np_type in GGUFReader.gguf_scalar_to_np.items():
        dt = np.dtype(np_type)
        scalars[int(t)] = (codes[(dt.kind, dt.itemsize)], int(dt.itemsize))
    quant = {int(t): (int(b), int(s)) for t, (b, s) in GGML_QUANT_SIZES.items()}
    return int(GGUF_MAGIC), tuple(int(v) for v in READER_SUPPORTED_VERSIONS), scalars, quant


_TABLES: tuple[int, tuple[int, ...], dict[int, tuple[str, int]], dict[int, tuple[int, int]]] | None = None


def tables() -> tuple[int, tuple[int, ...], dict[int, tuple[str, int]], dict[int, tuple[int, int]]]:
    global _TABLES
    if _TABLES is None:
        _TABLES = _tables()
    return _TABLES


def type_name(ggml_type: int) -> str:
    from gguf.constants import GGMLQuantizationType

    try:
        return GGMLQuantizationType(ggml_type).name
    except ValueError:
        return f"type {ggml_type}"


def tensor_nbytes(t: TensorInfo) -> int:
    """Bytes of a tensor: ne / block size × type size (gguf.GGML_QUANT_SIZES; ggml_nbytes for a
    contiguous tensor: rows of ne[0] elements, ne[0] a multiple of the block size)."""
    block, size = tables()[3][t.ggml_type]
    return t.n_elements // block * size


# read(offset, n): at least n bytes from offset when the source has them (more is welcome: the cursor
# keeps whatever it is given as its window), fewer only where the source ends
Read = Callable[[int, int], bytes]


class _Cursor:
    def __init__(self, read: Read, where: str) -> None:
        self.read, self.where, self.pos = read, where, 0
        self.buf, self.buf_start = b"", 0
        # bytes the parser expects to walk from here (an estimate): the next read asks for that many at
        # once instead of growing step by step; 0 = no estimate
        self.want = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > MAX_HEADER:
            raise MalformedGGUFError(
                f"{self.where}: GGUF header runs past {MAX_HEADER // 1024**2} MiB: corrupt, or not a model"
            )
        start = self.pos - self.buf_start
        if start < 0 or start + n > len(self.buf):
            self.buf, self.buf_start, start = self.read(self.pos, max(n, self.want)), self.pos, 0
            self.want = 0
            if len(self.buf) < n:
                raise NeedBytes(self.pos, n)
        self.pos += n
        return self.buf[start : start + n]

    def unpack(self, code: str, size: int) -> Any:
        return struct.unpack("<" + code, self.take(size))[0]

    def u32(self) -> int:
        return int(self.unpack("I", 4))

    def u64(self) -> int:
        return int(self.unpack("Q", 8))

    def string(self, what: str) -> str:
        n = self.u64()
        if n > MAX_STRING:
            raise MalformedGGUFError(f"{self.where}: {what} claims a string of {n:,} bytes")
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedGGUFError(f"{self.where}: {what} is not UTF-8") from e

    def skip_strings(self, count: int, what: str) -> None:
        """Walk `count` strings without decoding them (the tokenizer's 128k tokens, 280k merges). When
        the window runs out, the next read asks for the rest of the array as estimated from the
        strings walked so far (their mean length × the strings left): one or two reads per array
        instead of a doubling series, and no more than the array past its end."""
        first = self.pos
        for i in range(count):
            start = self.pos - self.buf_start
            if 0 <= start and start + 8 <= len(self.buf):
                (n,) = struct.unpack_from("<Q", self.buf, start)
                self.pos += 8
            else:
                if i >= 64:  # capped: a corrupt count or length must not turn into one huge read
                    self.want = min((self.pos - first) * (count - i) // i, MAX_SIZED_READ)
                n = self.u64()
            if n > MAX_STRING:
                raise MalformedGGUFError(f"{self.where}: {what} claims a string of {n:,} bytes")
            self.pos += n


@dataclass(frozen=True)
class Run:
    """Consecutive large arrays of a header (tokens, token types, merges): where they start and end,
    and what they are, so that another file of the same repo can jump over them unread."""

    first: tuple[int, int]  # (element type, count) of the first array, checked before the jump
    nbytes: int  # from just after the first array's (type, count) to the end of the run
    keys: tuple[tuple[str, int, int], ...]  # (key, element type, count) of each array in the run
    # where the jump starts in the file it came from, and the bytes from the run's end to the end of
    # the tensor-info table there: another quant file's reads are sized by them (its first read ends
    # where its jump starts, the read after the jump covers its tail), give or take a few keys
    start: int = 0
    tail: int = 0


def parse_header(
    read: Read,
    where: str,
    hints: dict[str, Run] | None = None,
    find_end: Callable[[int, int], int | None] | None = None,
) -> GGUFHeader:
    """Parse a GGUF header from `read(offset, n)`.

    `hints` (first key -> Run, from `GGUFHeader.spans` of another file of the same repo): a run of
    large arrays that starts with that key, element type and count is jumped over unread (the quant
    files of one repo share their tokenizer); a wrong hint shows as a malformed header, and the caller
    parses again without hints. `find_end(start, count)` (hubmem.model.gguf.locate.Search.end): where a
    large string array whose first length is at `start` ends, located by probes instead of walked; None
    walks it. Raises MalformedGGUFError (truncated, corrupt, unknown version, absurd
    counts), UnknownDtypeError (a tensor type the gguf package does not know)."""
    magic_expected, versions, scalars, quant = tables()
    c = _Cursor(read, where)
    hints = hints or {}
    magic = c.u32()
    if magic != magic_expected:
        raise MalformedGGUFError(f"{where}: not a GGUF file (magic {magic:#010x})")
    version = c.u32()
    if version not in versions:
        raise MalformedGGUFError(
            f"{where}: GGUF version {version} is not one the gguf package reads ({', '.join(map(str, versions))})"
        )
    n_tensors, n_kv = c.u64(), c.u64()
    if n_tensors > MAX_TENSORS or n_kv > MAX_KVS:
        raise MalformedGGUFError(
            f"{where}: GGUF header claims {n_tensors:,} tensors and {n_kv:,} keys: corrupt"
        )
    kv: dict[str, Any] = {}
    spans: dict[str, Run] = {}
    run: list[tuple[str, int, int]] = []  # the large arrays just read, back to back
    run_start = 0
    i = 0
    while i < n_kv:
        key = c.string("a key")
        if key in kv:
            raise MalformedGGUFError(f"{where}: duplicate key {key[:80]!r}")  # gguf.cpp refuses it too
        vtype = c.u32()
        i += 1
        if vtype != ARRAY_TYPE:
            _close_run(run, run_start, c.pos - 4 - 8 - len(key.encode()), spans)
            run = []
            kv[key] = _scalar(c, key, vtype, scalars)
            continue
        etype, count = c.u32(), c.u64()
        if count > MAX_ARRAY:
            raise MalformedGGUFError(f"{where}: key {key[:80]!r} claims an array of {count:,} elements")
        hint = hints.get(key)
        if hint is not None and hint.first == (etype, count) and i - 1 + len(hint.keys) <= n_kv:
            c.pos += hint.nbytes
            c.want = min(hint.tail + HINT_SLACK, MAX_SIZED_READ)
            for k, t, n in hint.keys:
                if k in kv:
                    raise MalformedGGUFError(f"{where}: duplicate key {k[:80]!r}")
                kv[k] = ArrayInfo(t, n)
            i += len(hint.keys) - 1
            run = []
            continue
        if count <= SMALL_ARRAY:
            _close_run(run, run_start, c.pos - 12 - 4 - 8 - len(key.encode()), spans)
            run = []
            kv[key] = _small_array(c, key, etype, count, scalars)
            continue
        if not run:
            run_start = c.pos
        run.append((key, etype, count))
        if etype in scalars:
            c.pos += count * scalars[etype][1]  # fixed-size elements: skipped unread
        elif etype == STRING_TYPE:
            end = find_end(c.pos, count) if find_end is not None else None
            if end is None:
                c.skip_strings(count, f"an element of {key[:80]!r}")
            else:
                c.pos = end
        else:  # gguf.cpp: nested arrays are not supported
            raise MalformedGGUFError(f"{where}: key {key[:80]!r} is an array of type {etype}")
        kv[key] = ArrayInfo(etype, count)
    tensor_start = c.pos
    c.want = min(max(c.want, n_tensors * TENSOR_INFO_GUESS), MAX_SIZED_READ)
    tensors = []
    names = set()
    for _ in range(n_tensors):
        name = c.string("a tensor name")
        n_dims = c.u32()
        if not 1 <= n_dims <= MAX_DIMS:
            raise MalformedGGUFError(f"{where}: tensor {name[:80]!r} has {n_dims} dimensions (ggml: 1 to 4)")
        shape = tuple(c.u64() for _ in range(n_dims))
        ggml_type, offset = c.u32(), c.u64()
        if ggml_type not in quant:
            raise UnknownDtypeError(
                f"{where}: tensor {name[:80]!r} has GGML type {ggml_type}, unknown to the gguf package"
            )
        n = 1
        for d in shape:
            n *= d
        if n >= 2**63:
            raise MalformedGGUFError(f"{where}: tensor {name[:80]!r} claims shape {shape}")
        if shape[0] % quant[ggml_type][0]:  # gguf.cpp: ne[0] a multiple of the type's block size
            raise MalformedGGUFError(
                f"{where}: tensor {name[:80]!r} row of {shape[0]} is not a whole number of "
                f"{type_name(ggml_type)} blocks of {quant[ggml_type][0]}"
            )
        if name in names:
            raise MalformedGGUFError(f"{where}: duplicate tensor {name[:80]!r}")
        names.add(name)
        tensors.append(TensorInfo(name, ggml_type, shape, offset))
    _close_run(run, run_start, tensor_start, spans)
    alignment = kv.get("general.alignment", 32)
    if (
        not isinstance(alignment, int)
        or isinstance(alignment, bool)
        or alignment <= 0
        or alignment & (alignment - 1)
    ):
        raise MalformedGGUFError(f"{where}: general.alignment {alignment!r} is not a power of two")
    data_offset = -(-c.pos // alignment) * alignment
    _check_offsets(tensors, alignment, where)
    ends = {k: r.start + r.nbytes for k, r in spans.items()}
    spans = {k: replace(r, tail=c.pos - ends[k]) for k, r in spans.items()}
    return GGUFHeader(version, kv, tensors, alignment, data_offset, spans)


def _close_run(run: list[tuple[str, int, int]], start: int, end: int, spans: dict[str, Run]) -> None:
    """Record a finished run of large arrays (`start`: just after the first array's type and count)."""
    if run and any(t == STRING_TYPE for _, t, _ in run):  # runs worth a hint hold strings
        spans[run[0][0]] = Run((run[0][1], run[0][2]), end - start, tuple(run), start=start)


def _scalar(c: _Cursor, key: str, vtype: int, scalars: dict[int, tuple[str, int]]) -> Any:
    if vtype in scalars:
        code, size = scalars[vtype]
        return c.unpack(code, size)
    if vtype == STRING_TYPE:
        return c.string(f"the value of {key[:80]!r}")
    raise MalformedGGUFError(f"{c.where}: key {key[:80]!r} has value type {vtype}, not a GGUF type")


def _small_array(c: _Cursor, key: str, etype: int, count: int, scalars: dict[int, tuple[str, int]]) -> list:
    if etype in scalars:
        code, size = scalars[etype]
        return list(struct.unpack(f"<{count}{code}", c.take(count * size)))
    if etype == STRING_TYPE:
        return [c.string(f"an element of {key[:80]!r}") for _ in range(count)]
    raise MalformedGGUFError(f"{c.where}: key {key[:80]!r} is an array of type {etype}")


def _check_offsets(tensors: list[TensorInfo], alignment: int, where: str) -> None:
    """gguf.cpp checks each tensor's offset: aligned, and equal to the running sum of the padded sizes
    before it (`ti.offset != ctx->size` is an error there)."""
    expected = 0
    for t in tensors:
        if t.offset != expected:
            raise MalformedGGUFError(
                f"{where}: tensor {t.name[:80]!r} at data offset {t.offset:,}, expected {expected:,}: corrupt"
            )
        expected += -(-tensor_nbytes(t) // alignment) * alignment


def data_bytes(header: GGUFHeader) -> int:
    """Bytes of the data section the tensor infos describe (each tensor padded to the alignment)."""
    return sum(-(-tensor_nbytes(t) // header.alignment) * header.alignment for t in header.tensors)
