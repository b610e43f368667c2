"""GGUF headers read by HTTP Range through huggingface_hub (URL building, auth, endpoint, session,
error mapping), or from local files; never the tensor data past a header.

A GGUF header has no length field: it ends where its tensor-info table does, after the key/value
metadata (the tokenizer's arrays are most of it: Llama 3's 128 256 tokens and 280 147 merges are
~7.3 MB). So a file is read in Range requests until the tensor-info table is complete: 32 KiB first,
then each read as large as the parser expects to walk (reader._Cursor.want: the rest of a string
array at the mean length of its strings so far, the tensor-info table at ~64 bytes a tensor), else
doubling from 4 KiB up to 2 MiB, each starting where the parser stopped; fixed-size arrays are jumped
over unread. A remote file's string arrays of 32k strings or more are not walked but located by 4 KiB
probes (hubmem.model.gguf.locate), the header accepted only when its tensor infos then end exactly at
the file's listed size; else it is walked as above.

The quant files of one repo share their tokenizer byte for byte (llama-quantize copies the
metadata of its input, src/llama-quant.cpp `gguf_set_kv`), so once one file of a repo is parsed
the byte length of its run of large arrays (tokens, token types, merges) is known: the other files'
reads jump over it (`reader.parse_header(hints=...)`) and cost two reads each, sized by the first
file (up to a little past where its run starts; its tail after the run). A hint that does not
fit a file shows as a malformed header, and that file is parsed again without hints.

Measured against the test server (scripts/bench.py, `make bench`): see README "GGUF repos".
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from hubmem import errors
from hubmem.model.gguf import locate, reader
from hubmem.model.gguf.files import group_files

FIRST_READ = 32 * 1024  # bytes: a header's first read, and the first read after a jump
MAX_READ = 2 * 1024 * 1024  # caps the overshoot past a header's end (its length is unknown until parsed)
AFTER_JUMP = 4 * 1024  # the first read after a jump (an array skipped unread), unless the parser sizes it
KEEP_STRING = 256  # metadata strings longer than this (chat templates) are not kept in the snapshot


@dataclass
class ReadStats:
    requests: int = 0  # HTTP requests, redirects included
    bytes_read: int = 0  # body bytes received


class RangeSource:
    """`read(offset, n)` over one remote file, in growing Range requests, each byte fetched once; a
    read returns all the contiguous bytes fetched from `offset` on (the parser's window)."""

    def __init__(
        self, get: Callable[[int, int], tuple[bytes, int]], size: int | None, first: int = FIRST_READ
    ) -> None:
        self._get = get  # (start, stop) -> (bytes, requests made)
        self.size = size
        self.chunks: list[tuple[int, bytes]] = []  # fetched (start, bytes), in fetch order
        self.stats = ReadStats()
        self._grow = first  # the first read's size: FIRST_READ, or what another file of the repo says
        self._last_stop = 0

    def read(self, offset: int, n: int) -> bytes:
        for i, (start, data) in enumerate(reversed(self.chunks)):
            if start <= offset <= start + len(data):
                if offset + n <= start + len(data):
                    return data[offset - start :]
                more = self._fetch(start + len(data), offset + n)  # extend the chunk, never refetch
                merged = data + more
                self.chunks[len(self.chunks) - 1 - i] = (start, merged)
                return merged[offset - start :]
        data = self._fetch(offset, offset + n)
        self.chunks.append((offset, data))
        return data

    def probe(self, offset: int, n: int) -> bytes:
        """Exactly the bytes [offset, offset + n) (fewer at the file's end), fetching only what no earlier
        read holds: the string-array search's probes (hubmem.model.gguf.locate)."""
        stop = offset + n if self.size is None else min(offset + n, self.size)
        for i, (start, data) in enumerate(self.chunks):
            if start <= offset <= start + len(data):
                if stop > start + len(data):
                    data += self._get_counted(start + len(data), stop)
                    self.chunks[i] = (start, data)
                return data[offset - start : stop - start]
        data = self._get_counted(offset, stop) if stop > offset else b""
        self.chunks.append((offset, data))
        return data

    def _get_counted(self, start: int, stop: int) -> bytes:
        data, requests = self._get(start, stop)
        self.stats.requests += requests
        self.stats.bytes_read += len(data)
        self._last_stop = start + len(data)
        return data

    def _fetch(self, offset: int, need: int) -> bytes:
        if offset > self._last_stop + self._grow:  # a jump over a skipped run: start small again
            self._grow = AFTER_JUMP
        # more than a default read asked for: the parser's estimate of what it will walk from here
        # (reader._Cursor.want), fetched as it is
        sized = need - offset > FIRST_READ
        stop = need if sized else max(need, offset + self._grow)
        if self.size is not None:
            stop = min(stop, self.size)
        if stop <= offset:
            return b""
        data = self._get_counted(offset, stop)
        # after an estimated read, what follows is small until the parser says otherwise (the next key,
        # and maybe a fixed-size array it will jump over unread)
        self._grow = AFTER_JUMP if sized else min(self._grow * 2, MAX_READ)
        return data


def parse_source(
    read: Callable[[int, int], bytes],
    where: str,
    size: int | None,
    hints: dict | None,
    source: RangeSource | None = None,
) -> reader.GGUFHeader:
    """Parse with hints; on a malformed result, once more without (a hint that did not fit). Without hints
    (or when they did not fit), a remote `source` of known size first has its large string arrays located
    by probes (hubmem.model.gguf.locate: accepted only when the header then fits the file exactly), and
    is walked whole when that fails: the walk's error, if any, is the one raised."""
    if hints:
        try:
            return _parse_checked(read, where, size, hints)
        except (errors.MalformedGGUFError, errors.UnknownDtypeError):
            pass
    if source is not None and size is not None:
        found = locate.parse(read, source.probe, lambda: source.stats.bytes_read, where, size)
        if found is not None:
            return found
    return _parse_checked(read, where, size, None)


def _parse_checked(
    read: Callable[[int, int], bytes], where: str, size: int | None, hints: dict | None
) -> reader.GGUFHeader:
    try:
        header = reader.parse_header(read, where, hints)
    except reader.NeedBytes as e:
        raise errors.MalformedGGUFError(
            f"{where}: GGUF header truncated at byte {e.offset:,}"
            + (f" (the file has {size:,})" if size is not None else "")
        ) from e
    if size is not None:
        end = header.data_offset + reader.data_bytes(header)
        last_pad = 0
        if header.tensors:
            t = header.tensors[-1]
            last_pad = -(
                -reader.tensor_nbytes(t) // header.alignment
            ) * header.alignment - reader.tensor_nbytes(t)
        if end - last_pad > size:
            raise errors.MalformedGGUFError(
                f"{where}: its tensor infos describe {end - last_pad:,} bytes, the file has {size:,}"
            )
    return header


def header_record(header: reader.GGUFHeader, size: int | None, stats: ReadStats) -> dict[str, Any]:
    """A header as plain JSON data for the snapshot (and its cache)."""
    kv: dict[str, Any] = {}
    for k, v in header.kv.items():
        if isinstance(v, reader.ArrayInfo):
            kv[k] = {"array_type": v.type, "count": v.count}
        elif isinstance(v, str) and len(v) > KEEP_STRING:
            continue
        elif isinstance(v, list) and v and isinstance(v[0], str) and len(v) > 64:
            kv[k] = {"array_type": reader.STRING_TYPE, "count": len(v)}
        else:
            kv[k] = v
    return {
        "version": header.version,
        "kv": kv,
        "tensors": [[t.name, t.ggml_type, list(t.shape)] for t in header.tensors],
        "alignment": header.alignment,
        "data_offset": header.data_offset,
        "size": size,
        "requests": stats.requests,
        "bytes_read": stats.bytes_read,
    }


def range_getter(
    url: str, token: str | None, timeout: float, retry: Callable[..., Any]
) -> Callable[[int, int], tuple[bytes, int]]:
    """`get(start, stop) -> (bytes, requests made)` for one Hub file URL, through huggingface_hub's
    session, auth headers and error mapping. The first read follows the Hub's redirect of an LFS file
    to its signed CDN URL; later reads go there at once (one request each instead of two) without the
    token, the signature being the credential there (huggingface_hub's downloads follow the same
    redirect); a CDN answer of 400 or more (an expired signature) sends that read back to the Hub's URL."""
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = build_hf_headers(token=token)
    cdn: list[str] = []

    def get(start: int, stop: int) -> tuple[bytes, int]:
        def ranged(target: str, hdrs: dict[str, str]) -> tuple[bytes, int, Any]:
            # streamed: a server that ignores Range (200) is cut off after the bytes asked for
            with get_session().stream(
                "GET", target, headers={**hdrs, "range": f"bytes={start}-{stop - 1}"}, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    return b"", 1 + len(response.history), response
                out = bytearray()
                for chunk in response.iter_bytes():
                    out += chunk
                    if len(out) >= stop - start:
                        break
                return bytes(out[: stop - start]), 1 + len(response.history), response

        def once() -> tuple[bytes, int]:
            made = 0
            if cdn:
                data, n, response = ranged(cdn[0], {"user-agent": headers["user-agent"]})
                made += n
                if response.status_code < 400:
                    return data, made
                cdn.clear()  # an expired signature, or a CDN that refuses: back to the Hub's URL
            data, n, response = ranged(url, headers)
            hf_raise_for_status(response)
            if response.history and str(response.url) != url:
                cdn[:] = [str(response.url)]
            return data, made + n

        result: tuple[bytes, int] = retry(once)
        return result

    return get


def remote_headers(
    pool: Executor,
    repo: str,
    sha: str | None,
    files: dict[str, int | None],
    token: str | None,
    timeout: float,
    retry: Callable[..., Any],
) -> dict[str, dict[str, Any]]:
    """Every .gguf file's header record, by path: one file first (its tokenizer spans become the
    hints), then the rest in parallel."""
    from hubmem.hub import client

    def source(path: str, first: int) -> RangeSource:
        get = range_getter(client.file_url(repo, path, sha), token, timeout, retry)
        return RangeSource(get, files.get(path), first)

    def one(path: str, hints: dict | None) -> tuple[str, dict[str, Any], dict]:
        # with hints, the first read ends a little past where the jump over the shared tokenizer starts
        first = min(r.start for r in hints.values()) + reader.HINT_SLACK if hints else FIRST_READ
        src = source(path, first)

        header = parse_source(src.read, f"'{path}'", files.get(path), hints, src)
        return path, header_record(header, files.get(path), src.stats), header.spans

    paths = sorted(p for p in files if p.lower().endswith(".gguf"))
    if not paths:
        return {}
    models, projectors = group_files(paths)
    # the first shard of the first model carries a tokenizer: read it alone, then the rest with hints
    lead = models[0].first if models else paths[0]
    first_path, first_record, spans = one(lead, None)
    out = {first_path: first_record}
    rest = [p for p in paths if p != lead]
    for path, record, _ in pool.map(lambda p: one(p, spans), rest):
        out[path] = record
    return dict(sorted(out.items()))


def local_headers(paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Header records of local .gguf files (name -> path on disk), read with ordinary file reads of the
    header region only."""
    out: dict[str, dict[str, Any]] = {}
    spans: dict | None = None
    for name, path in sorted(paths.items()):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise errors.MalformedGGUFError(f"'{path}' is not a regular file")
                stats = ReadStats()

                def read(offset: int, n: int, f: Any = f, stats: ReadStats = stats) -> bytes:
                    f.seek(offset)
                    data = f.read(max(n, 1024**2))
                    stats.requests += 1
                    stats.bytes_read += len(data)
                    return data

                header = parse_source(read, f"'{name}'", info.st_size, spans)
                spans = spans or header.spans
                out[name] = header_record(header, info.st_size, ReadStats())
        except OSError as e:
            raise errors.LocalFileError(f"cannot read '{path}': {e.strerror or type(e).__name__}") from e
    return out
