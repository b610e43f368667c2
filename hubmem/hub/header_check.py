"""Safetensors header entries, checked before anything counts them.

A header is JSON from outside (a Hub server, a local file): hubmem counts parameters from its
shapes and never reads the data, so an entry that does not describe real bytes would be counted as
if it did. Every entry must hold

- a dtype the format defines (`UnknownDtypeError`, exit code 17, otherwise);
- a shape of non-negative integers with at most MAX_TENSOR_ELEMENTS elements (no dimension above it);
- data_offsets [begin, end] with begin <= end, spanning exactly elements × dtype size bytes;
- a byte range inside the file's data section when the file size is known (a local file: exactly;
  a Hub file: its size from the file list, less the 8-byte length prefix), overlapping no other
  tensor's range;

and a file must hold at least one tensor. Each failure is one `MalformedHeaderError` (exit code 16)
naming the file and the tensor. The format's own reader (safetensors' Rust `Metadata::validate`)
checks the same and also rejects gaps between tensors; hubmem lets gaps pass, they change no count.

`read_local_header` reads a local file's header without huggingface_hub's parser, which multiplies
out any shape it is given (a 1,000-dimension shape of 4,000-digit integers takes a minute): here a
JSON integer in a header has at most MAX_INT_DIGITS digits, and no shape is multiplied out past the
element limit.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from hubmem import errors
from hubmem.acyclic import collector_paused
from hubmem.dtypes import SAFETENSORS_BITS, safetensors_bits

# 10^12 elements = 2 TB at 16 bits per tensor; the largest published tensors hold ~10^10 (Llama 4
# Maverick's fused experts 128 × 5,120 × 16,384), and the Hub stores files of at most 50 GB.
MAX_TENSOR_ELEMENTS = 10**12
# 10^15 bytes: no safetensors file comes near a petabyte; checked when the file size is unknown.
MAX_OFFSET = 10**15
# JSON integers in a header: the format's u64 has 20 digits.
MAX_INT_DIGITS = 20
SHOWN_CHARS = 80

Tensors = dict[str, tuple[str, tuple[int, ...]]]
Entry = tuple[str, Any, Any, Any]  # (name, dtype, shape, data_offsets) as the header gives them


def label(text: str) -> str:
    """A file or tensor name for a one-line message: control characters escaped, long names cut."""
    shown = text if text.isprintable() else repr(text)[1:-1]
    return shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 1] + "…"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _elements(shape: list[int]) -> int:
    """Elements of a shape of bounded non-negative ints, stopping once past the limit (so that a
    shape of a thousand large dimensions is never multiplied out)."""
    if len(shape) <= 4:
        return math.prod(shape)
    if 0 in shape:
        return 0
    n = 1
    for d in shape:
        n *= d
        if n > MAX_TENSOR_ELEMENTS:
            return n
    return n


@collector_paused()
def checked_tensors(filename: str, entries: Callable[[], Iterable[Entry]], data_size: int | None) -> Tensors:
    """(dtype, shape) per tensor after the checks in the module docstring. `entries()` iterates over
    the header's entries (a second time only to find an overlap); `data_size`: bytes after the header
    (None when the file size is unknown). The per-tensor hot loop of `hubmem audit`: the common case
    (entries in offset order, shapes of up to 4 dimensions) does no more than it must."""
    where = f"malformed safetensors header in '{label(filename)}'"
    limit = MAX_OFFSET if data_size is None else data_size
    out: Tensors = {}
    in_order, last_end = True, 0
    prod = math.prod
    for name, dtype, shape, offsets in entries():
        bits = SAFETENSORS_BITS.get(dtype) if type(dtype) is str else None
        bits = bits or safetensors_bits(label(str(dtype))[:40])  # UnknownDtypeError for anything else
        # shape and data_offsets: lists of non-negative ints, bools excluded (one pass: hot loop)
        if not (
            type(shape) is list
            and type(offsets) in (list, tuple)
            and len(offsets) == 2
            and not [v for v in (*shape, *offsets) if type(v) is not int or v < 0]
        ):
            raise errors.MalformedHeaderError(
                f"{where}: tensor '{label(name)}' has shape {_short(shape)} and data_offsets "
                f"{_short(list(offsets) if type(offsets) is tuple else offsets)}; both must be lists of "
                "non-negative integers"
            )
        n = prod(shape) if len(shape) <= 4 else _elements(shape)
        # n <= the limit bounds every dimension, except in a tensor with no elements
        if n > MAX_TENSOR_ELEMENTS or not n and max(shape, default=0) > MAX_TENSOR_ELEMENTS:
            raise errors.MalformedHeaderError(
                f"{where}: tensor '{label(name)}' has shape {_short(shape)}: more than "
                f"{MAX_TENSOR_ELEMENTS:,} elements (or a dimension above that)"
            )
        begin, end = offsets
        nbits = n * bits
        if end < begin or nbits % 8 == 0 and (end - begin) != nbits // 8:
            raise errors.MalformedHeaderError(
                f"{where}: tensor '{label(name)}' ({dtype} {_short(shape)}) spans {end - begin} bytes, "
                f"expected {nbits // 8}"
            )
        if end > limit:
            raise errors.MalformedHeaderError(
                f"{where}: tensor '{label(name)}' ends at byte {end:,} of the data, beyond "
                + (
                    f"the file's {data_size:,} data bytes"
                    if data_size is not None
                    else f"{MAX_OFFSET:,} bytes"
                )
            )
        if end > begin:
            if begin < last_end:
                in_order = False
            last_end = end
        out[name] = (dtype, tuple(shape))
    if not out:
        raise errors.MalformedHeaderError(f"{where}: it holds no tensors")
    if not in_order:  # some range starts before the previous one ends: sort, then find any overlap
        spans = sorted((b, e, name) for name, _, _, (b, e) in entries() if e > b)
        for (_, prev_end, prev), (begin, end, name) in zip(spans, spans[1:]):
            if begin < prev_end:
                raise errors.MalformedHeaderError(
                    f"{where}: tensor '{label(name)}' (bytes {begin:,}-{end:,}) overlaps tensor "
                    f"'{label(prev)}' (bytes up to {prev_end:,})"
                )
    return out


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text):,} digits")
    return int(text)


def header_entries(filename: str, header: Any) -> Iterator[Entry]:
    """The (name, dtype, shape, data_offsets) entries of a decoded header (`__metadata__` skipped)."""
    if not isinstance(header, dict):
        raise errors.MalformedHeaderError(
            f"malformed safetensors header in '{label(filename)}': not a JSON object"
        )
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (isinstance(entry, dict) and {"dtype", "shape", "data_offsets"} <= entry.keys()):
            raise errors.MalformedHeaderError(
                f"malformed safetensors header in '{label(filename)}': tensor '{label(name)}' is "
                f"{_short(entry)}, not an object with dtype, shape and data_offsets"
            )
        yield name, entry["dtype"], entry["shape"], entry["data_offsets"]


# A run of more digits than an integer may have, anywhere in the text: every digit mapped to "0" and
# everything else to " ", then one substring search (both in C: ~8 ms for the 12.7 MB of DeepSeek-V3's
# shard headers, where the regex [0-9]{21} takes ~100 ms and a parse_int call per integer 0.6 s).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * (MAX_INT_DIGITS + 1)


def has_long_digit_run(raw: bytes) -> bool:
    return _LONG_RUN in raw.translate(_DIGITS_ONLY)


@collector_paused()
def decode_header(raw: bytes, filename: str) -> Any:
    """JSON of a header, integers bounded to MAX_INT_DIGITS digits (checked one by one only when the text
    holds a longer run of digits, which a name may also hold)."""
    try:
        if not has_long_digit_run(raw):
            return json.loads(raw.decode("utf-8"))
        return json.loads(raw.decode("utf-8"), parse_int=_bounded_int)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, _bounded_int
        reason = label(str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise errors.MalformedHeaderError(
            f"malformed safetensors header in '{label(filename)}': not valid JSON ({reason})"
        ) from e


def read_local_header(path: Path, filename: str) -> Tensors:
    """The checked tensors of a local safetensors file (FileNotFoundError when it is missing)."""
    from huggingface_hub import constants

    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else 0
        raw = f.read(length) if length <= constants.SAFETENSORS_MAX_HEADER_LENGTH else b""
    return parse_file_start(prefix + raw, size, filename)


def check_header_length(length: int, filename: str) -> None:
    """A header's declared length within huggingface_hub's limit (SAFETENSORS_MAX_HEADER_LENGTH, 25 MB),
    checked before any byte of it is asked for."""
    from huggingface_hub import constants

    limit = constants.SAFETENSORS_MAX_HEADER_LENGTH
    if length > limit:
        raise errors.HeaderTooLargeError(
            f"refusing to parse safetensors header for '{label(filename)}': safetensors header is too big "
            f"({length:,} bytes; huggingface_hub's limit is {limit:,})"
        )


@collector_paused()
def parse_file_start(start: bytes, file_size: int | None, filename: str) -> Tensors:
    """The checked tensors of a safetensors file whose first bytes (the length prefix and as much of
    the header as there is) are `start`, of `file_size` bytes in all (None: unknown)."""
    if len(start) < 8:
        raise errors.MalformedHeaderError(
            f"'{label(filename)}' is too small to be a safetensors file "
            f"({len(start) if file_size is None else file_size} bytes)"
        )
    (length,) = struct.unpack("<Q", start[:8])
    check_header_length(length, filename)
    raw = start[8 : 8 + length]
    if len(raw) < length or file_size is not None and 8 + length > file_size:
        present = len(raw) if file_size is None else min(len(raw), max(file_size - 8, 0))
        raise errors.MalformedHeaderError(
            f"malformed safetensors header in '{label(filename)}': file is truncated "
            f"(header of {length:,} bytes, {present:,} present)"
        )
    header = decode_header(raw, filename)
    data_size = None if file_size is None else file_size - 8 - length
    return checked_tensors(filename, lambda: header_entries(filename, header), data_size)
