"""Where a GGUF header's large string arrays end, found by Range probes instead of walking their strings.

A GGUF header has no length field, and its tokenizer arrays are most of it (Llama 3: 128,256 tokens
and 280,147 merges, 7.3 of its 7.8 MB): each a run of `u64 length + bytes` strings, walkable only
string by string. But such a run has a shape a probe can see: a chain of little-endian u64 lengths
whose high bytes are zero, each followed by that many bytes and the next length. In llama.cpp's own
vocabulary files (models/ggml-vocab-*.gguf, 19 tokenizers, in the llama.cpp that llama-cpp-python
0.3.36 vendors) every token and merge is 1 to 1,025 bytes, none empty; what follows an array is not
such a chain for long (token types and scores are i32/f32 with non-zero high bytes; keys are followed
by a u32 type and a value; tensor data is not strings, and the test server's zeros are empty strings,
refused here). So:

- a 4 KiB probe at x is *inside* a string array when a chain of at least 16 strings, three in four
  non-empty, starts within its first 2 KiB and runs to its end;
- every string takes at least its 8-byte length, so the array ends at or past start + 8 × count;
  from there probes step 4 × count bytes (no more than the i32 token-type array of the same count that
  llama.cpp's converters write after the tokens: convert_hf_to_gguf.py `_set_vocab_gpt2`,
  `_set_vocab_sentencepiece`, so a step never lands past the array after it) until one is not inside,
  then bisect down to 16 KiB and walk the chain from the last inside probe to where it breaks;
- the array ends where one of the last chain elements starts: the key after the array is itself a
  length-prefixed string, then its u32 type and value break the chain. Candidates are those elements
  that read as a GGUF key (printable ASCII, then a u32 value type), the last first.

None of this is trusted: `Search` gives the parser (reader.parse_header `find_end`) one candidate per
array, and a parse is accepted only if every key, every tensor info and llama.cpp's offset rule parse
(gguf.cpp: each tensor at the aligned running sum of the ones before it) and the data section then
ends exactly at the file's size from the listing (llama-quantize and gguf-py's writer pad every tensor,
the last one too: src/llama-quant.cpp `zeros(fout, GGML_PAD(new_size, align) - new_size)`; a file
without the last pad is accepted as well). A wrong candidate misaligns everything after it, so the next
candidate is tried (deepest array first); when none fits, or the probes or bytes run past their
budget, the caller walks the header whole (hub.gguf_fetch.parse_source).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from hubmem.errors import MalformedGGUFError, UnknownDtypeError
from hubmem.model.gguf import reader

PROBE = 4096  # bytes of one probe
MAX_ELEMENT = 4096  # the longest string a chain may hold (llama.cpp's vocab files: 1,025)
SYNC_SPAN = 2048  # a chain must start this close to a probe's start (past one long string)
MIN_CHAIN = 16  # strings a probe must see to call its place inside an array
FINAL = 16 * 1024  # bisect until the bracket is this small, then walk it
MAX_WALK = 256 * 1024  # the most one walk to an array's end reads
CANDIDATES = 16  # chain elements, from the last, that may be the key after the array
MAX_KEY = 256  # the longest key a candidate may start with (llama.cpp's are under 64)
MAX_PROBES = 64  # probes per file
MAX_ATTEMPTS = 32  # parses per file
MAX_NEW = 1024**2  # bytes one parse attempt may fetch in one read (a misread length, not a tail)
MAX_BYTES = 4 * 1024**2  # bytes a whole search may fetch
MIN_COUNT = 32 * 1024  # smaller arrays (at least 288 KB: 9 bytes a string) are walked: cheaper than probes

# probe(offset, n): the file's bytes [offset, offset + n), fewer only at its end (hub.gguf_fetch.RangeSource)
Probe = Callable[[int, int], bytes]


class NotFound(Exception):
    """The search gave up (no candidate left, or past a budget): walk the header instead."""


def chain(buf: bytes | memoryview, o: int) -> tuple[list[int], bool]:
    """(starts of the length-prefixed strings from `o`, whether a length over MAX_ELEMENT stopped them);
    False when the buffer ran out first."""
    starts: list[int] = []
    while o + 8 <= len(buf):
        (n,) = struct.unpack_from("<Q", buf, o)
        if n > MAX_ELEMENT:
            return starts, True
        if o + 8 + n > len(buf):
            return starts, False
        starts.append(o)
        o += 8 + n
    return starts, False


def synced(buf: bytes) -> int | None:
    """Where in `buf` a chain of strings starts that runs to its end (None: not inside a string array)."""
    for o in range(min(SYNC_SPAN, len(buf) - 8)):
        if buf[o + 3 : o + 8] != b"\0\0\0\0\0":  # a length's high bytes are zero (the fast refusal)
            continue
        starts, broke = chain(buf, o)
        if broke or len(starts) < MIN_CHAIN:
            continue
        empty = sum(1 for s in starts if buf[s : s + 8] == b"\0" * 8)
        if empty * 4 <= len(starts):
            return o
    return None


def key_at(buf: bytes, s: int, types: set[int]) -> bool:
    """Whether `buf[s:]` reads as a GGUF key: a u64 length, printable ASCII, a u32 value type."""
    if s + 8 > len(buf):
        return False
    (n,) = struct.unpack_from("<Q", buf, s)
    if not 1 <= n <= MAX_KEY or s + 8 + n + 4 > len(buf):
        return False
    key = buf[s + 8 : s + 8 + n]
    return all(0x21 <= b < 0x7F for b in key) and struct.unpack_from("<I", buf, s + 8 + n)[0] in types


class Search:
    """The end of each large string array of one header, one candidate at a time: `end` is the parser's
    `find_end`; `advance` moves to the next combination after a failed parse (the deepest array first)."""

    def __init__(self, probe: Probe, size: int) -> None:
        self.probe, self.size = probe, size
        self.probes = 0
        self.candidates: dict[tuple[int, int], list[int]] = {}  # (start, count) -> ends, best first
        self.choice: dict[tuple[int, int], int] = {}
        self.met: list[tuple[int, int]] = []  # the arrays the last parse met, in order
        _, _, scalars, _ = reader.tables()
        self.types = {*scalars, reader.STRING_TYPE, reader.ARRAY_TYPE}

    def end(self, start: int, count: int) -> int | None:
        """The position after the array of `count` strings whose first length is at `start` (None: walk it)."""
        if count < MIN_COUNT:
            return None
        key = (start, count)
        self.met.append(key)
        if key not in self.candidates:
            self.candidates[key] = self._find(start, count)
        i = self.choice.get(key, 0)
        if i >= len(self.candidates[key]):
            raise NotFound
        return self.candidates[key][i]

    def advance(self) -> bool:
        """The next combination of candidates; False when every one has been tried."""
        while self.met:
            key = self.met.pop()
            nxt = self.choice.get(key, 0) + 1
            if nxt < len(self.candidates[key]):
                self.choice[key] = nxt
                return True
            self.choice.pop(key, None)
        return False

    def _inside(self, x: int) -> int | None:
        """The chain start of a probe at x, or None (not inside a string array)."""
        self.probes += 1
        if self.probes > MAX_PROBES:
            raise NotFound
        o = synced(self.probe(x, PROBE))
        return None if o is None else x + o

    def _find(self, start: int, count: int) -> list[int]:
        inside, outside = start, None  # the array's first length is at `start`: a chain start, exactly
        x, step = start + 8 * count, max(4 * count, FINAL)
        while outside is None:
            if x >= self.size:
                outside = self.size
                break
            at = self._inside(x)
            if at is None:
                outside = x
            else:
                inside, x = at, x + step
        while outside - inside > FINAL:
            mid = (inside + outside) // 2
            at = self._inside(mid)
            if at is None:
                outside = mid
            else:
                inside = at
        length = outside - inside + PROBE
        while True:  # walk the chain from the last inside probe until it breaks
            buf = self.probe(inside, length)
            starts, broke = chain(buf, 0)
            if broke:
                break
            if len(buf) < length or length >= MAX_WALK:
                return []
            length *= 2
        return [inside + s for s in reversed(starts[-CANDIDATES:]) if key_at(buf, s, self.types)]


def exact_size(header: reader.GGUFHeader, size: int) -> bool:
    """Whether the tensor infos describe a data section that ends at the file's size (with or without
    the last tensor's padding)."""
    end = header.data_offset + reader.data_bytes(header)
    last = reader.tensor_nbytes(header.tensors[-1]) if header.tensors else 0
    return size in (end, end - (-(-last // header.alignment) * header.alignment - last))


def parse(
    read: reader.Read,
    probe: Probe,
    fetched: Callable[[], int],
    where: str,
    size: int,
    hints: dict[str, reader.Run] | None = None,
) -> reader.GGUFHeader | None:
    """A header parsed with its string arrays located by `probe` and accepted only when it fits the file
    exactly (see the module's text), or None: the caller walks the header instead. `fetched()`: the bytes
    the source has fetched so far (the budget's meter)."""
    search = Search(probe, size)
    base = fetched()

    def bounded(offset: int, n: int) -> bytes:
        # an attempt on a wrong candidate reads lengths out of the strings: never a long read for them
        if n > MAX_NEW or fetched() - base > MAX_BYTES:
            raise NotFound
        return read(offset, n)

    for _ in range(MAX_ATTEMPTS):
        search.met = []
        try:
            header = reader.parse_header(bounded, where, hints, find_end=search.end)
            if exact_size(header, size):
                return header
        except NotFound:
            if search.probes > MAX_PROBES or fetched() - base > MAX_BYTES:
                return None
        except (MalformedGGUFError, UnknownDtypeError, reader.NeedBytes):
            pass
        if not search.advance():
            return None
    return None
