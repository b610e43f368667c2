"""A fake Hugging Face Hub on loopback HTTP, for hubmem's tests, demo and benchmark.

It speaks the subset of the Hub's HTTP API that ``huggingface_hub`` (2.x, httpx2 client) uses to read
metadata, the way the real Hub speaks it, so that the library's real code runs against it: Range requests,
``X-Error-Code`` error headers, LFS redirects to a CDN, ETags and commit headers for the cache.
Standard library only (``http.server``), so ``python tests/fakehub.py`` works without test dependencies.

Repos come from fixture directories (``fixtures/repos/<org>__<name>/`` with ``layout.json``, see
``FakeHub.load_fixtures``) or from code (``FakeHub.add_repo``). Safetensors files are synthesized from the
layout: the real byte layout (8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8), followed by *virtual* zeros for the tensor data, which are never materialised.

Endpoints (``{repo}`` is ``org/name`` or ``name``):

- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: model_info (``?blobs=true`` adds file
  sizes and LFS info to ``siblings``; ``?expand=...`` keeps only the listed properties).
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: files. Regular files answer 200/206 with ``ETag`` (git blob
  sha1), ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges``. LFS files (weights, or > 10 MB) answer
  302 to the CDN origin (a second port, so a different origin, like ``cdn-lfs.hf.co``) with
  ``X-Linked-Size`` and ``X-Linked-Etag``, unless ``cdn_redirect=False``.
- ``GET /cdn/...`` on the CDN port: the bytes, no auth (the URL is "signed").
- ``GET /api/models/{repo}/safetensors-metadata/{index}``: every shard header in one response
  (main only; sharded repos only; answers a plain 404 when ``sharded_endpoint`` is off).
- ``GET /api/models/{repo}/tree/{rev}[/{path}]``, ``POST /api/models/{repo}/paths-info/{rev}``,
  ``GET /api/whoami-v2``.
- ``GET /api/models?author=&search=&filter=&sort=&limit=&expand=``: the listing ``list_models`` pages
  through, ``page_size`` items a page (default 1,000) with the next page in a ``Link: <...>; rel="next"``
  header (an opaque ``cursor``), as the Hub paginates; ``filter`` (repeatable) matches tags, the pipeline
  tag or the library, all of them; ``search`` a substring of the id (any case); ``sort`` downloads, likes,
  trendingScore, lastModified or createdAt, descending; without ``expand`` each item has the Hub's default
  listing fields (no ``sha``), with it only ``_id``, ``id`` and the listed properties. Private repos are
  listed only to their token.
- ``GET /api/collections/{namespace}/{slug}``: a collection added with ``add_collection``, its items as
  the Hub answers them (``_id``, ``id``, ``type``, ``position``, and for models ``author``, ``downloads``,
  ``lastModified``, ``likes``, ``private``, ``repoType``, ``gated``, ``pipeline_tag``; no ``sha``).

Errors follow the real Hub (see ``hf_raise_for_status``): a missing or private repo answers
``X-Error-Code: RepoNotFound`` with status 401 when no token is sent and 404 when one is (the Hub cannot say
"private" to strangers); a gated repo's files answer ``GatedRepo`` (401 without a token, 403 with a token
that has no access) while its model_info stays public; unknown revision ``RevisionNotFound`` (404); missing
file ``EntryNotFound`` (404, with ``X-Repo-Commit``); an unknown token 401 "Invalid credentials in
Authorization header".

Fixture layout keys used here: ``files`` (safetensors files: ``metadata`` and ``tensors`` as
``[name, dtype, shape]``, data offsets contiguous in that order), ``index`` (name of the index file to
synthesize: ``{"metadata": {"total_size": <data bytes>}, "weight_map": ...}``), ``other_files``
(name -> size, served as zeros), ``dtype_sizes`` (bytes per element of dtypes unknown here, else 1) and
``hub``: ``gated`` (``"auto"``/``"manual"``), ``private``, ``token`` (the one that opens a gated or private
repo, default ``hf_test_token``), ``revisions`` (extra names; each resolves to its own sha),
``sharded_endpoint`` (False: 404 for this repo), model_info overrides (``tags``, ``library_name``,
``downloads``, ``likes``, ``pipeline_tag``, ``createdAt``, ``lastModified``; ``trendingScore`` for the listing).
Every repo's sha is ``sha1(repo_id)`` (``sha1(repo_id + "#" + commit)`` with ``hub.commit``, a later commit); ``main`` and the sha resolve. Every repo also has a ``.gitattributes``, as on the Hub.

Every request is logged on arrival (``requests``, ``filter``, ``count``, ``weights_downloads``,
``clear_log``); faults can be injected (``latency_ms``, ``fail``, ``hang``, ``hold``: held until the test
calls the fault's ``release()``); ``reset`` clears both.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import math
import signal
import struct
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

#: Tokens the fake Hub knows, with their user names. ``hf_test_token`` is the one that opens gated and
#: private repos unless a repo names another one in ``hub.token``.
TEST_TOKEN = "hf_test_token"
OTHER_TOKEN = "hf_other_token"
KNOWN_TOKENS = {TEST_TOKEN: "test-user", OTHER_TOKEN: "other-user"}

#: Bits per element of each safetensors dtype (sub-byte types F4/F6 are packed).
DTYPE_BITS = {
    "F64": 64, "I64": 64, "U64": 64,
    "F32": 32, "I32": 32, "U32": 32,
    "F16": 16, "BF16": 16, "I16": 16, "U16": 16,
    "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "I8": 8, "U8": 8, "BOOL": 8,
    "F6_E2M3": 6, "F6_E3M2": 6, "F4": 4,
}  # fmt: skip

#: ``parse_safetensors_file_metadata`` speculatively asks for ``bytes=0-100000``: reading that much of a
#: safetensors file is header probing, not a weights download, even when the header is shorter.
PROBE_BYTES = 100_001

#: Files the Hub's default ``.gitattributes`` stores with LFS (a subset), and files counted as weights.
LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".pkl",
    ".model", ".npy", ".npz", ".tflite", ".ot", ".zip", ".tar", ".gz", ".arrow", ".parquet",
)  # fmt: skip
WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".gguf",
    ".h5",
    ".msgpack",
    ".onnx",
    ".pkl",
)
LFS_THRESHOLD = 10 * 1000 * 1000  # the Hub refuses regular (non-LFS) files above 10 MB

#: A full GET of a weights file streams zeros, but at most this much before the connection is dropped, so
#: that a code path that downloads weights by mistake fails fast instead of writing gigabytes.
WEIGHTS_STREAM_CAP = 4 * 1024 * 1024

DEFAULT_DATE = "2024-01-01T00:00:00.000Z"
#: Items per page of ``GET /api/models`` (the Hub does not document its own; huggingface_hub follows the
#: ``Link`` header whatever the size, and hubmem assumes nothing about it).
LIST_PAGE_SIZE = 1000
#: The listing's sort keys (``list_models(sort=...)`` sends these) and the model_info field each orders by.
LIST_SORTS = {"downloads": "downloads", "likes": "likes", "trendingScore": "trendingScore",
              "lastModified": "lastModified", "createdAt": "createdAt"}  # fmt: skip
_API_SUBPATHS = {"revision", "tree", "paths-info", "safetensors-metadata", "resolve", "refs", "commits"}


# --------------------------------------------------------------------------------------------------------
# Repo contents


def dtype_nbytes(dtype: str, numel: int, dtype_sizes: Mapping[str, int] | None = None) -> int:
    """Bytes taken by ``numel`` elements of ``dtype`` (sub-byte dtypes packed; unknown: ``dtype_sizes`` or 1)."""
    bits = DTYPE_BITS.get(dtype)
    if bits is None:
        return numel * int((dtype_sizes or {}).get(dtype, 1))
    return (numel * bits + 7) // 8


def build_safetensors_header(
    tensors: Iterable[tuple[str, str, list[int]]] | Iterable[list[Any]],
    metadata: Mapping[str, str] | None = None,
    dtype_sizes: Mapping[str, int] | None = None,
) -> tuple[bytes, int]:
    """Return (first bytes of the file: length prefix + padded JSON header, number of data bytes).

    Offsets are laid out contiguously in the order given, as ``safetensors.serialize`` would.
    """
    # json.dumps(header, separators=(",", ":")) of {"__metadata__": ..., name: {"dtype", "shape",
    # "data_offsets"}, ...}, written entry by entry (the dict and its encoding cost DeepSeek-V3's 92k
    # tensors a second; a repeated name keeps its first place and its last value, as in a dict)
    entries: dict[str, str] = {}
    if metadata is not None:
        entries["__metadata__"] = json.dumps(dict(metadata), separators=(",", ":"))
    offset = 0
    bits_of, prod, quote = DTYPE_BITS.get, math.prod, json.encoder.encode_basestring_ascii
    for name, dtype, shape in tensors:
        bits = bits_of(dtype)
        numel = prod(shape)
        nbytes = (numel * bits + 7) // 8 if bits else dtype_nbytes(dtype, numel, dtype_sizes)
        dims = (
            json.dumps(list(shape), separators=(",", ":"))
            if set(map(type, shape)) - {int}
            else f"[{','.join(map(str, shape))}]"
        )
        entries[name] = (
            f'{{"dtype":{quote(dtype)},"shape":{dims},"data_offsets":[{offset},{offset + nbytes}]}}'
        )
        offset += nbytes
    raw = ("{" + ",".join(f"{quote(k)}:{v}" for k, v in entries.items()) + "}").encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header with spaces to a multiple of 8
    return struct.pack("<Q", len(raw)) + raw, offset


def _index_json(total_size: int, weight_map: Mapping[str, str]) -> bytes:
    """``json.dumps({"metadata": {"total_size": ...}, "weight_map": ...}, indent=2)``, byte for byte, as
    transformers writes a shard index; built here because ``indent`` makes json use its pure-Python
    encoder, seconds for the 92k entries of DeepSeek-V3's index."""
    quote_ = json.encoder.encode_basestring_ascii  # what json.dumps uses for str (ensure_ascii)
    entries = ",\n".join(f"    {quote_(k)}: {quote_(v)}" for k, v in weight_map.items())
    weights = "{\n" + entries + "\n  }" if weight_map else "{}"
    text = f'{{\n  "metadata": {{\n    "total_size": {int(total_size)}\n  }},\n  "weight_map": {weights}\n}}'
    return text.encode()


def _git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _parse_header(raw: bytes) -> dict[str, Any] | None:
    """A safetensors header's JSON, parsed afresh. What the Hub computes from headers is kept instead (the
    dtype totals, the sharded endpoint's answer), as the real Hub serves header metadata from its own
    store: the fake's CPU shares this machine's two cores with the client a benchmark measures. Parsed
    headers are not kept: a million live objects made every full garbage collection of the test process
    cost 0.3 s (the run's gen-2 collections took 12 s)."""
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


@functools.cache  # small values, one per distinct header (scripts/bench.py's repo copies share them)
def _dtype_totals(raw: bytes) -> dict[str, int] | None:
    """Elements per dtype in one safetensors header (the Hub's `safetensors.parameters` per file)."""
    header = _parse_header(raw)
    if header is None:
        return None
    totals: dict[str, int] = {}
    for name, tensor in header.items():
        if name != "__metadata__":
            try:
                count = math.prod(tensor["shape"])
            except (TypeError, OverflowError, KeyError):
                return None  # shape not numbers: the Hub leaves such a file out of its summary
            totals[tensor["dtype"]] = totals.get(tensor["dtype"], 0) + int(count)
    return totals


def _header_bytes(head: bytes, header_end: int) -> bytes | None:
    return head[8:header_end] if 8 < header_end <= len(head) else None


def _header_of(head: bytes, header_end: int) -> dict[str, Any] | None:
    raw = _header_bytes(head, header_end)
    return None if raw is None else _parse_header(raw)


@functools.lru_cache(maxsize=16)  # answers are bytes, cheap to keep; bench's copies of a repo share them
def _sharded_answer(
    filename: str, index: bytes, safetensors: tuple[tuple[str, bytes, int], ...]
) -> tuple[int, bytes | str]:
    """(200, body) of ``/api/models/{repo}/safetensors-metadata/{filename}`` for the index file's bytes and
    the repo's safetensors files as (path, head, header_end), or (400, the error message)."""
    try:
        parsed = json.loads(index)
        shards = sorted(set(parsed["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        return 400, f"{filename} is not a valid safetensors index"
    files = {path: (head, header_end) for path, head, header_end in safetensors}
    headers = []
    for shard in shards:
        raw = _header_bytes(*files[shard]) if shard in files else None
        if raw is None or _parse_header(raw) is None:
            return 400, f"Could not parse the safetensors header of {shard}"
        # each header's JSON as the file holds it (its padding is JSON whitespace): the same document as
        # json.dumps of the parsed headers, without re-encoding DeepSeek-V3's 92k entries
        headers.append(json.dumps(shard).encode() + b":" + raw)
    metadata = json.dumps(parsed.get("metadata", {})).encode()
    return 200, b'{"index":{"metadata":' + metadata + b'},"headers":{' + b",".join(headers) + b"}}"


@dataclass(frozen=True)
class RepoFile:
    """One file of a repo. Its bytes are ``head`` followed by ``size - len(head)`` zeros (never stored)."""

    path: str
    size: int
    head: bytes
    header_end: int  # bytes [0, header_end) are metadata; a safetensors file's tensor data starts here
    lfs: bool
    weights: bool
    oid: str  # git blob id: of the content (regular files) or of the LFS pointer (LFS files)
    sha256: str | None = None  # LFS only. Synthesized files get a stable fake, not the hash of the zeros.
    pointer_size: int | None = None

    @classmethod
    def make(cls, repo_id: str, path: str, head: bytes, size: int | None = None) -> RepoFile:
        size = len(head) if size is None else size
        if size < len(head):
            raise ValueError(f"{path}: size {size} smaller than its {len(head)} known bytes")
        name = path.lower()
        weights = name.endswith(WEIGHT_SUFFIXES)
        lfs = name.endswith(LFS_SUFFIXES) or size > LFS_THRESHOLD
        header_end = len(head) if name.endswith(".gguf") else 0  # a GGUF's known bytes are its header region
        if name.endswith(".safetensors"):
            header_end = size
            if len(head) >= 8:
                header_end = min(size, 8 + struct.unpack("<Q", head[:8])[0])
        if not lfs:
            content = head + bytes(size - len(head))
            return cls(path, size, head, header_end, False, weights, _git_blob_sha1(content))
        sha256 = hashlib.sha256(f"{repo_id}/{path}:{size}:".encode() + head).hexdigest()
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
        return cls(path, size, head, header_end, True, weights, _git_blob_sha1(pointer), sha256, len(pointer))

    @property
    def etag(self) -> str:
        return self.sha256 if self.sha256 is not None else self.oid

    def read(self, start: int, stop: int) -> bytes:
        """Bytes [start, stop)."""
        stop = min(stop, self.size)
        known = self.head[start:stop]
        return known + bytes(max(0, stop - max(start, len(self.head))))

    def safetensors_header(self) -> dict[str, Any] | None:
        """The parsed JSON header, or None when the file is not a well-formed safetensors file."""
        return _header_of(self.head, self.header_end)

    def dtype_totals(self) -> dict[str, int] | None:
        """Elements per dtype over this file's tensors, or None when it is not a safetensors file."""
        return self._totals

    @functools.cached_property
    def _totals(self) -> dict[str, int] | None:
        # once per file: model_info sums every file's totals on each request, and re-parsing the headers
        # there (once more files than _parse_header keeps had been read: DeepSeek-V3 alone has 163)
        # cost the test suite seconds
        if _header_bytes(self.head, self.header_end) is None:
            return None
        return _dtype_totals(self.head[8 : self.header_end])

    def tensor_bytes(self, start: int, stop: int) -> int:
        """Bytes of [start, stop) that are weight data: past a safetensors file's header, any byte of .bin/...."""
        if not self.weights:
            return 0
        first = (
            max(start, self.header_end) if self.path.lower().endswith((".safetensors", ".gguf")) else start
        )
        return max(0, stop - first)

    def is_weights_read(self, start: int, stop: int, ranged: bool) -> bool:
        """Whether serving bytes [start, stop) amounts to downloading weights rather than reading metadata."""
        if not self.weights or stop <= start:
            return False
        if self.path.lower().endswith(".gguf"):
            return not ranged or start >= self.header_end  # a Range read that starts in the header region
        if not self.path.lower().endswith(".safetensors"):
            return True  # .bin/.pt...: any content is weights
        if not ranged or start >= self.header_end:
            return True
        return stop > max(self.header_end, PROBE_BYTES)


@dataclass
class Repo:
    repo_id: str
    sha: str
    files: dict[str, RepoFile]
    layout: dict[str, Any]  # the layout it was built from, less its "files" (kept as the files' headers)
    hub: dict[str, Any]
    config: dict[str, Any] | None  # parsed config.json, None when absent or not valid JSON
    revisions: dict[str, str]  # revision name (and each commit sha) -> commit sha
    # reply bodies computed once per repo (a repo never changes: add_repo replaces it), as the real Hub
    # serves header metadata from its own store: DeepSeek-V3's shard headers are 12 MB of JSON
    replies: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    @property
    def gated(self) -> bool | str:
        return self.hub.get("gated", False) or False

    @property
    def private(self) -> bool:
        return bool(self.hub.get("private", False))

    @property
    def token(self) -> str | None:
        """The token that opens this repo (gated or private); None for public repos."""
        if self.gated or self.private:
            return self.hub.get("token", TEST_TOKEN)
        return None


_GITATTRIBUTES = "".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES
).encode()


def build_repo(
    repo_id: str,
    *,
    layout: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes] | None = None,
    config: Mapping[str, Any] | bytes | str | None = None,
    hub: Mapping[str, Any] | None = None,
) -> Repo:
    """Build a repo from a layout (see the module docstring of fixtures) plus raw files that override it."""
    layout = dict(layout or {})
    hub_flags = {**(layout.get("hub") or {}), **(hub or {})}
    dtype_sizes = layout.get("dtype_sizes") or {}
    out: dict[str, RepoFile] = {".gitattributes": RepoFile.make(repo_id, ".gitattributes", _GITATTRIBUTES)}

    weight_map: dict[str, str] = {}
    total_data = 0
    for fname, spec in (layout.get("files") or {}).items():
        tensors = [(t[0], t[1], t[2]) for t in spec.get("tensors", [])]
        head, data = build_safetensors_header(tensors, spec.get("metadata"), dtype_sizes)
        out[fname] = RepoFile.make(repo_id, fname, head, len(head) + data)
        total_data += data
        weight_map.update({name: fname for name, _, _ in tensors})
    if layout.get("index"):
        out[layout["index"]] = RepoFile.make(repo_id, layout["index"], _index_json(total_data, weight_map))
    for fname, size in (layout.get("other_files") or {}).items():
        out[fname] = RepoFile.make(repo_id, fname, b"", int(size))
    file_sizes = hub_flags.get("file_sizes") or {}  # GGUF: header bytes served, the rest virtual zeros
    for fname, content in (files or {}).items():
        out[fname] = RepoFile.make(repo_id, fname, bytes(content), file_sizes.get(fname))
    if config is not None:
        raw = config.encode() if isinstance(config, str) else config
        if not isinstance(raw, bytes):
            raw = json.dumps(raw, indent=2).encode()
        out["config.json"] = RepoFile.make(repo_id, "config.json", raw)

    parsed_config = None
    if "config.json" in out:
        try:
            parsed_config = json.loads(out["config.json"].head)
        except (UnicodeDecodeError, ValueError):
            parsed_config = None
        if not isinstance(parsed_config, dict):
            parsed_config = None

    # ``hub["commit"]``: a name for a later commit of the repo (e.g. "2"), which moves main to a new sha
    sha = _sha1(repo_id) if hub_flags.get("commit") is None else _sha1(f"{repo_id}#{hub_flags['commit']}")
    revisions = {"main": sha, sha: sha}
    for name in hub_flags.get("revisions") or []:
        revisions[name] = revisions[_sha1(f"{repo_id}@{name}")] = _sha1(f"{repo_id}@{name}")
    settings = {k: v for k, v in layout.items() if k != "files"}  # the tensors live on in the headers
    return Repo(repo_id, sha, dict(sorted(out.items())), settings, hub_flags, parsed_config, revisions)


def repo_id_from_dirname(name: str) -> str:
    """``org__name`` -> ``org/name`` (the first ``__`` is the slash); a name without ``__`` stays as is."""
    org, sep, rest = name.partition("__")
    return f"{org}/{rest}" if sep else name


def load_fixture_repo(directory: Path) -> Repo:
    """A fixture directory: ``layout.json`` describes the weights; every other file is served verbatim."""
    repo_id = repo_id_from_dirname(directory.name)
    try:
        layout = json.loads((directory / "layout.json").read_text())
    except ValueError as e:
        raise ValueError(f"{directory / 'layout.json'}: invalid JSON: {e}") from e
    if layout.get("repo_id", repo_id) != repo_id:
        raise ValueError(
            f"{directory}: layout.json says repo_id {layout['repo_id']!r}, directory says {repo_id!r}"
        )
    files = {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "layout.json"
    }
    return build_repo(repo_id, layout=layout, files=files)


class PendingRepo:
    """A fixture repo that is built on first use (``FakeHub(..., lazy=True)``), once: snapshots share it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._repo: Repo | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> Repo | None:
        return self._repo

    def get(self) -> Repo:
        with self._lock:
            if self._repo is None:
                self._repo = load_fixture_repo(self.directory)
            return self._repo

    def opens_with(self, token: str) -> bool:
        """Whether ``token`` is this repo's own (``hub.token``). Built only when its layout.json names a
        token at all: a bare scan of the file, not the seconds of building every fixture."""
        if self._repo is None and b'"token"' not in (self.directory / "layout.json").read_bytes():
            return False
        return self.get().token == token


class BuiltLater(PendingRepo):
    """A repo built by a function on first use (``FakeHub.add_lazy``), e.g. GGUF headers written by the
    ``gguf`` package (tests/gguf_fixtures.py), which this module does not import."""

    def __init__(self, build: Any) -> None:
        super().__init__(Path("."))
        self._build = build

    def get(self) -> Repo:
        with self._lock:
            if self._repo is None:
                self._repo = self._build()
            return self._repo

    def opens_with(self, token: str) -> bool:
        return self._repo is not None and self._repo.token == token


def _repo_of(entry: Repo | PendingRepo) -> Repo:
    return entry.get() if isinstance(entry, PendingRepo) else entry


# --------------------------------------------------------------------------------------------------------
# Request log and faults


@dataclass
class LoggedRequest:
    method: str
    path: str  # percent-decoded path, e.g. "/test/tiny/resolve/main/config.json"
    query: str
    range: str | None  # the Range header as sent
    status: int  # 0 while the request is still being held (latency, hang)
    server: str  # "hub" or "cdn"
    token: str | None  # bearer token sent, if any
    file: str | None = None  # repo path of the file whose bytes were served
    span: tuple[int, int] | None = None  # [start, stop) of the file bytes served (GET only)
    weights: bool = False  # the body fetched weights (see RepoFile.is_weights_read)
    weight_file_bytes: int = 0  # bytes of a weight file the body carried (GET only)
    tensor_bytes: int = 0  # of those, weight data (RepoFile.tensor_bytes): what a header probe reads past
    arrived: float = field(default_factory=time.monotonic)  # time.monotonic() on arrival
    answered: float = 0.0  # time.monotonic() once the answer was chosen (after the latency)
    sent: int = 0  # body bytes written to the socket (a hostile answer's: what the client was offered)

    @property
    def url(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


@dataclass
class Fault:
    substring: str
    method: str | None
    status: int | None = None  # fail: answer this status
    seconds: float = 0.0  # hang: wait this long, then answer normally
    remaining: int | None = None  # None: forever
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    mode: str | None = None  # hostile: "ignore-range", "endless", "drip", "drip-headers" (FakeHub.hostile)
    interval: float = 1.0  # drip: seconds between two bytes
    gate: threading.Event | None = None  # hold: answer normally once set (`release`)

    def release(self) -> None:
        """A held request (FakeHub.hold) is answered now, and later ones are not held."""
        assert self.gate is not None, "only a hold is released"
        self.gate.set()

    def matches(self, method: str, url: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.substring in url and (self.method is None or self.method == method)


@dataclass
class _Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: RepoFile | None = None  # when set, the body is file bytes [start, stop)
    start: int = 0
    stop: int = 0
    ranged: bool = False


def _json_reply(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> _Reply:
    return _Reply(
        status, [("Content-Type", "application/json; charset=utf-8"), *headers], json.dumps(payload).encode()
    )


def _error(
    status: int, message: str, code: str | None = None, extra: Iterable[tuple[str, str]] = ()
) -> _Reply:
    headers = [("X-Error-Message", message), *extra]
    if code is not None:
        headers.append(("X-Error-Code", code))
    return _json_reply(status, {"error": message}, headers)


def _parse_range(value: str, size: int) -> tuple[int, int] | None | str:
    """``bytes=a-b`` -> (start, stop) clipped to the file; None: ignore the header; "unsatisfiable": 416."""
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            return (max(0, size - suffix), size) if suffix > 0 and size > 0 else "unsatisfiable"
        start = int(first)
        stop = size if last == "" else min(size, int(last) + 1)
    except ValueError:
        return None
    if start >= size or stop <= start:
        return "unsatisfiable"
    return start, stop


# --------------------------------------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx2 expects; every reply carries Content-Length
    server_version = "FakeHub/1.0"
    disable_nagle_algorithm = (
        True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls
    )
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence the stderr access log
        pass

    def do_GET(self) -> None:
        self.server.hub._serve(self, "GET", self.server.role)

    def do_HEAD(self) -> None:
        self.server.hub._serve(self, "HEAD", self.server.role)

    def do_POST(self) -> None:
        self.server.hub._serve(self, "POST", self.server.role)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # concurrent audits open many connections at once (the default backlog is 5)

    def __init__(self, address: tuple[str, int], hub: FakeHub, role: str) -> None:
        super().__init__(address, _Handler)
        self.hub = hub
        self.role = role

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that died mid-request (a killed process: its sockets reset) is no server error: only
        the others are printed, as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeHub:
    """A fake Hub server: ``FakeHub(fixtures_dir).start()``, then point ``HF_ENDPOINT`` at ``hub.url``.

    Args:
        fixtures_dir: load every subdirectory holding a ``layout.json`` (optional).
        lazy: build each fixture repo when a request first names it, not in the constructor (building
            all of them takes seconds; a test run or a demo may need one).
        latency_ms: delay applied to every request (hub and CDN), settable later as ``hub.latency_ms``.
        sharded_endpoint: serve ``/api/models/{repo}/safetensors-metadata/...`` (else a plain 404).
        cdn_redirect: answer LFS files with a 302 to the CDN port, as the real Hub does.
    """

    def __init__(
        self,
        fixtures_dir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        sharded_endpoint: bool = True,
        cdn_redirect: bool = True,
        lazy: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self._defaults = {
            "latency_ms": latency_ms,
            "sharded_endpoint": sharded_endpoint,
            "cdn_redirect": cdn_redirect,
        }
        self.latency_ms = latency_ms
        self.sharded_endpoint = sharded_endpoint
        self.cdn_redirect = cdn_redirect
        self._repos: dict[str, Repo | PendingRepo] = {}
        self._collections: dict[str, dict[str, Any]] = {}
        self.page_size = LIST_PAGE_SIZE
        self._log: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._wake = threading.Event()  # set to cut every pending latency/hang sleep short (reset, stop)
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        if fixtures_dir is not None:
            self.load_fixtures(fixtures_dir, lazy=lazy)

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> FakeHub:
        if self._servers:
            return self
        self._servers = [_Server((self.host, self.port), self, "hub"), _Server((self.host, 0), self, "cdn")]
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fakehub-{server.role}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._wake.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        self._wake = threading.Event()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The endpoint to use as ``HF_ENDPOINT``, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self._servers[0].server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://{self.host}:{self._servers[1].server_address[1]}"

    # -- repos --------------------------------------------------------------------------------------------

    def load_fixtures(self, fixtures_dir: str | Path, *, lazy: bool = False) -> list[str]:
        """Add every ``<org>__<name>/`` directory that holds a ``layout.json``; return the repo ids.

        ``lazy``: each repo is built when first asked for (a bad layout then answers 500, not ValueError)."""
        added = []
        for directory in sorted(Path(fixtures_dir).iterdir()):
            if (directory / "layout.json").is_file():
                entry = PendingRepo(directory) if lazy else load_fixture_repo(directory)
                repo_id = repo_id_from_dirname(directory.name) if lazy else _repo_of(entry).repo_id
                with self._lock:
                    self._repos[repo_id] = entry
                added.append(repo_id)
        return added

    @property
    def repos(self) -> dict[str, Repo]:
        """Every repo, by id (builds the lazy fixture repos not built yet)."""
        with self._lock:
            entries = dict(self._repos)
        return {repo_id: _repo_of(entry) for repo_id, entry in entries.items()}

    def repo_ids(self) -> list[str]:
        with self._lock:
            return list(self._repos)

    def repo(self, repo_id: str) -> Repo | None:
        """The repo of that id (built now if it is a lazy fixture not built yet), or None."""
        with self._lock:
            entry = self._repos.get(repo_id)
        return None if entry is None else _repo_of(entry)

    def add_repo(
        self,
        repo_id: str,
        *,
        files: Mapping[str, bytes] | None = None,
        layout: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | bytes | str | None = None,
        hub: Mapping[str, Any] | None = None,
    ) -> Repo:
        """Add (or replace) a repo built from a layout dict, raw files and a config (dict, or raw bytes).

        ``files`` override what the layout synthesizes, e.g. ``{"model.safetensors": b"..."}`` for a
        truncated header. ``hub`` holds the repo's flags: ``gated`` (``"auto"``/``"manual"``), ``private``,
        ``token``, ``revisions`` (extra revision names), ``sharded_endpoint`` (False: that endpoint 404s
        for this repo), and model_info overrides (``tags``, ``library_name``, ``downloads``, ``likes``,
        ``pipeline_tag``, ``createdAt``, ``lastModified``).
        """
        repo = build_repo(repo_id, layout=layout, files=files, config=config, hub=hub)
        with self._lock:
            self._repos[repo_id] = repo
        return repo

    def add_lazy(self, repo_id: str, build: Any) -> None:
        """Add a repo that ``build()`` (returning a ``Repo``, e.g. from ``build_repo``) makes on first use."""
        with self._lock:
            self._repos[repo_id] = BuiltLater(build)

    def remove_repo(self, repo_id: str) -> None:
        with self._lock:
            self._repos.pop(repo_id, None)

    def add_collection(
        self, slug: str, items: Iterable[str | tuple[str, str]], *, title: str = "", private: bool = False
    ) -> dict[str, Any]:
        """Add a collection (``slug`` as the Hub spells it: ``namespace/title-<24 hex>``); each item a repo id
        (a model) or ``(type, id)`` (``"dataset"``, ``"space"``, ``"paper"``, ``"model"``). Cleared by ``reset``."""
        entries = [("model", i) if isinstance(i, str) else (i[0], i[1]) for i in items]
        collection = {
            "slug": slug,
            "title": title or slug.split("/")[-1],
            "private": private,
            "items": entries,
        }
        with self._lock:
            self._collections[slug] = collection
        return collection

    def snapshot_repos(self) -> dict[str, Repo | PendingRepo]:
        """The repo table as it is now, for ``restore_repos`` (lazy entries stay lazy, and shared)."""
        with self._lock:
            return dict(self._repos)

    def restore_repos(self, snapshot: Mapping[str, Repo | PendingRepo]) -> None:
        with self._lock:
            self._repos = dict(snapshot)

    def sha(self, repo_id: str, revision: str = "main") -> str:
        """The commit sha a revision of a repo resolves to."""
        repo = self.repo(repo_id)
        if repo is None:
            raise KeyError(repo_id)
        return repo.revisions[revision]

    # -- faults -------------------------------------------------------------------------------------------

    def fail(
        self,
        path_substring: str,
        status: int,
        times: int | None = 1,
        *,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer ``status`` to the next ``times`` requests whose path (and query) contains the substring.

        ``times=None``: every matching request. ``headers`` are added (e.g. ``Retry-After``, ``X-Error-Code``).
        """
        fault = Fault(path_substring, method, status=status, remaining=times, headers=dict(headers or {}))
        with self._lock:
            self._faults.append(fault)
        return fault

    def hang(
        self, path_substring: str, seconds: float, times: int | None = None, *, method: str | None = None
    ) -> Fault:
        """Hold matching requests for ``seconds`` before answering them normally (to trigger client timeouts);
        ``reset`` cuts the hold short and answers 404, so nothing held outlives its test."""
        fault = Fault(path_substring, method, seconds=seconds, remaining=times)
        with self._lock:
            self._faults.append(fault)
        return fault

    def hold(self, path_substring: str, *, method: str | None = None) -> Fault:
        """Hold matching requests until the test calls ``release()`` on the returned fault, then answer them
        normally (a request to wait for, not a timing); ``reset`` cuts the hold short and answers 404."""
        fault = Fault(path_substring, method, gate=threading.Event())
        with self._lock:
            self._faults.append(fault)
        return fault

    def hostile(
        self,
        path_substring: str,
        mode: str,
        times: int | None = None,
        *,
        method: str | None = None,
        interval: float = 1.0,
    ) -> Fault:
        """Answer matching requests as a hostile (or broken) server would (issue 11):

        - ``"ignore-range"``: the whole file with a 200, as if no Range had been sent, with no cap on weights;
        - ``"endless"``: the answer's status and body, without Content-Length, followed by ``0`` bytes that
          never end (until the client hangs up, ``reset``, or 64 GiB);
        - ``"drip"``: the answer as usual, its body one byte every ``interval`` seconds;
        - ``"drip-headers"``: the same from the status line on, headers included.

        ``sent`` in the request log says how many body bytes the socket took before the client hung up."""
        if mode not in ("ignore-range", "endless", "drip", "drip-headers"):
            raise ValueError(f"unknown hostile mode {mode!r}")
        fault = Fault(path_substring, method, remaining=times, mode=mode, interval=interval)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_log(self) -> None:
        """Forget the logged requests (faults and settings stay)."""
        with self._lock:
            self._log.clear()

    def reset(self) -> None:
        """Clear the request log and the faults; restore latency and switches to the constructor's values."""
        with self._lock:
            self._log.clear()
            self._faults.clear()
            self.latency_ms = self._defaults["latency_ms"]
            self.sharded_endpoint = self._defaults["sharded_endpoint"]
            self.cdn_redirect = self._defaults["cdn_redirect"]
            self.page_size = LIST_PAGE_SIZE
            self._collections.clear()
            wake, self._wake = self._wake, threading.Event()
        wake.set()

    # -- request log --------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def filter(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        server: str | None = None,
    ) -> list[LoggedRequest]:
        """Logged requests matching every given criterion (``path``: substring of path + query)."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and (path is None or path in r.url)
            and (status is None or r.status == status)
            and (server is None or r.server == server)
        ]

    def count(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        server: str | None = None,
    ) -> int:
        return len(self.filter(method, path, status=status, server=server))

    def round_trips(self, requests: list[LoggedRequest] | None = None) -> int:
        """Sequential round trips in the log (or in `requests`, e.g. one repo's): the longest chain of
        requests each sent after the one before it was answered (what latency multiplies; concurrent
        requests share one round trip)."""
        done = sorted(
            (r for r in (self.requests if requests is None else requests) if r.answered),
            key=lambda r: r.arrived,
        )
        depth: list[int] = []
        for i, r in enumerate(done):
            depth.append(1 + max((depth[j] for j in range(i) if done[j].answered <= r.arrived), default=0))
        return max(depth, default=0)

    def weights_downloads(self) -> list[LoggedRequest]:
        """Requests that fetched tensor data: a safetensors GET without Range, or reaching past the header
        (beyond the 100,001-byte probe huggingface_hub makes), or any GET of .bin/.pt/.gguf/... contents."""
        return [r for r in self.requests if r.weights]

    # -- HTTP ---------------------------------------------------------------------------------------------

    def _serve(self, handler: _Handler, method: str, role: str) -> None:
        raw_path, _, query = handler.path.partition("?")
        path = unquote(raw_path)
        url = path + (f"?{query}" if query else "")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        auth = handler.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        range_header = handler.headers.get("Range")

        with self._lock:
            latency, wake = self.latency_ms, self._wake
            # Logged on arrival (status 0 while held by latency or a hang), completed in place once answered;
            # a request still pending when the log is cleared is not logged again.
            entry = LoggedRequest(method, path, query, range_header, 0, role, token)
            self._log.append(entry)
            hang = next((f for f in self._faults if f.seconds and f.matches(method, url)), None)
            held = next((f for f in self._faults if f.gate is not None and f.matches(method, url)), None)
            fail = next((f for f in self._faults if f.status is not None and f.matches(method, url)), None)
            hostile = next((f for f in self._faults if f.mode is not None and f.matches(method, url)), None)
            for fault in (hang, fail, hostile, held):
                if fault is not None:
                    fault.hits += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
        if latency:
            wake.wait(latency / 1000)
        reset_while_held = hang is not None and wake.wait(hang.seconds)
        while held is not None and held.gate is not None and not held.gate.wait(0.02):
            if wake.is_set():
                reset_while_held = True
                break

        if reset_while_held:
            # the test that set the hang is over: a final 404 (never retried) ends the client's pipeline
            # instead of letting it go on into the next test's request log
            reply = _error(404, "fake Hub reset while this request was held", "RepoNotFound")
        elif fail is not None:
            reply = _error(
                fail.status or 500, f"Injected failure ({fail.status})", extra=fail.headers.items()
            )
        else:
            try:
                ignore_range = hostile is not None and hostile.mode == "ignore-range"
                reply = self._route(
                    method, role, raw_path, query, body, token, None if ignore_range else range_header
                )
            except Exception as e:  # a bug in the fake must show up as a 500, not as a dropped connection
                reply = _error(500, f"fakehub internal error: {type(e).__name__}: {e}")

        with self._lock:
            entry.status = reply.status
            entry.answered = time.monotonic()
            if reply.file is not None:
                entry.file = reply.file.path
                if method == "GET":
                    entry.span = (reply.start, reply.stop)
                    entry.weights = reply.file.is_weights_read(reply.start, reply.stop, reply.ranged)
                    if reply.file.weights:
                        entry.weight_file_bytes = reply.stop - reply.start
                        entry.tensor_bytes = reply.file.tensor_bytes(reply.start, reply.stop)
        try:
            if hostile is not None and hostile.mode != "ignore-range":
                self._write_hostile(handler, method, reply, hostile, entry, wake)
            else:
                self._write(handler, method, reply, entry.weights and hostile is None, entry)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            handler.close_connection = True

    def _write_hostile(
        self, handler: _Handler, method: str, reply: _Reply, fault: Fault, entry: LoggedRequest, wake: Any
    ) -> None:
        body = (
            reply.body
            if reply.file is None
            else reply.file.read(reply.start, min(reply.stop, reply.start + (1 << 20)))
        )
        handler.close_connection = True
        if fault.mode == "drip-headers":
            head = f"HTTP/1.1 {reply.status} Dripping\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in reply.headers
            )
            raw = (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
            for i in range(len(raw)):
                if wake.wait(fault.interval):
                    return
                handler.wfile.write(raw[i : i + 1])
                handler.wfile.flush()
                entry.sent += 1
            return
        handler.send_response(reply.status)
        for key, value in reply.headers:
            handler.send_header(key, value)
        if fault.mode == "drip":
            handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if method == "HEAD":
            return
        if fault.mode == "drip":
            for i in range(len(body)):
                if wake.wait(fault.interval):
                    return
                handler.wfile.write(body[i : i + 1])
                handler.wfile.flush()
                entry.sent += 1
            return
        handler.wfile.write(body)
        entry.sent += len(body)
        filler = b"0" * (1 << 20)
        while entry.sent < 64 << 30 and not wake.is_set():
            handler.wfile.write(filler)
            entry.sent += len(filler)

    def _write(
        self, handler: _Handler, method: str, reply: _Reply, weights: bool, entry: LoggedRequest | None = None
    ) -> None:
        length = reply.stop - reply.start if reply.file is not None else len(reply.body)
        handler.send_response(reply.status)
        for key, value in reply.headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        if method == "HEAD":
            return
        if reply.file is None:
            handler.wfile.write(reply.body)
            return
        position, sent = reply.start, 0
        while position < reply.stop:
            if weights and sent >= WEIGHTS_STREAM_CAP:
                handler.close_connection = True  # drop it: nobody should download weights from here
                return
            chunk = reply.file.read(position, min(reply.stop, position + 1024 * 1024))
            handler.wfile.write(chunk)
            position += len(chunk)
            sent += len(chunk)
            if entry is not None:
                entry.sent = sent

    def _route(
        self,
        method: str,
        role: str,
        raw_path: str,
        query: str,
        body: bytes,
        token: str | None,
        rng: str | None,
    ) -> _Reply:
        segments = [unquote(s) for s in raw_path.strip("/").split("/")] if raw_path.strip("/") else []
        params = parse_qs(query, keep_blank_values=True)
        if role == "cdn":
            if method in ("GET", "HEAD") and len(segments) >= 4 and segments[0] == "cdn":
                return self._cdn(segments[1], segments[2], "/".join(segments[3:]), rng)
            return _error(404, "Not Found")
        if token is not None and not self._known_token(token):
            return _error(401, "Invalid credentials in Authorization header")
        if segments[:2] == ["api", "whoami-v2"]:
            if token is None:
                return _error(401, "Invalid credentials in Authorization header")
            return _json_reply(200, self._whoami(token))
        if segments == ["api", "agent-harnesses"] and method == "GET":
            # huggingface_hub >= 2.4 utils/_detect_agent.py: the registry its user agent reads when
            # telemetry is on (HF_HUB_DISABLE_TELEMETRY unset), fetched at most once a day; the Hub's
            # shape with no harness listed
            return _json_reply(200, {"standardEnvVars": ["AI_AGENT", "AGENT"], "harnesses": {}})
        if segments == ["api", "models"] and method == "GET":
            return self._list_models(raw_path, params, token)
        if segments[:2] == ["api", "collections"] and len(segments) >= 4 and method == "GET":
            return self._collection("/".join(segments[2:]), token)
        if segments[:2] == ["api", "models"] and len(segments) > 2:
            repo_id, rest = self._split_repo(segments[2:])
            return self._api(method, repo_id, rest, params, body, token)
        if len(segments) >= 4 and method in ("GET", "HEAD"):
            for n in (1, 2):
                if len(segments) >= n + 3 and segments[n] == "resolve":
                    repo_id = "/".join(segments[:n])
                    return self._resolve(repo_id, segments[n + 1], "/".join(segments[n + 2 :]), token, rng)
        return _error(404, "Not Found")

    def _known_token(self, token: str) -> bool:
        if token in KNOWN_TOKENS:
            return True
        with self._lock:
            entries = list(self._repos.values())
        return any(e.opens_with(token) if isinstance(e, PendingRepo) else e.token == token for e in entries)

    def _whoami(self, token: str) -> dict[str, Any]:
        name = KNOWN_TOKENS.get(token, "repo-token-user")
        return {
            "type": "user",
            "name": name,
            "fullname": name,
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "fakehub", "role": "read"}},
        }

    def _split_repo(self, segments: list[str]) -> tuple[str, list[str]]:
        with self._lock:
            repos = set(self._repos)
        if len(segments) >= 2 and f"{segments[0]}/{segments[1]}" in repos:
            return f"{segments[0]}/{segments[1]}", segments[2:]
        if segments[0] in repos:
            return segments[0], segments[1:]
        if len(segments) >= 2 and segments[1] not in _API_SUBPATHS:
            return f"{segments[0]}/{segments[1]}", segments[2:]
        return segments[0], segments[1:]

    def _lookup(self, repo_id: str, token: str | None, *, files: bool) -> Repo | _Reply:
        """The repo if this token may read it (``files``: its contents, else its model_info), or an error."""
        repo = self.repo(repo_id)
        not_found = _error(
            401 if token is None else 404,
            "Invalid username or password." if token is None else "Repository not found",
            "RepoNotFound",
        )
        if repo is None or (repo.private and token != repo.token):
            return not_found
        if files and repo.gated and token != repo.token:
            if token is None:
                message = (
                    f"Access to model {repo_id} is restricted. You must have access to it and be authenticated "
                    "to access it. Please log in."
                )
                return _error(401, message, "GatedRepo")
            message = f"Access to model {repo_id} is restricted and you are not in the authorized list."
            return _error(403, message, "GatedRepo")
        return repo

    @staticmethod
    def _revision(repo: Repo, revision: str) -> str | _Reply:
        sha = repo.revisions.get(revision)
        if sha is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    # -- /api/models ----------------------------------------------------------------------------------------

    def _api(
        self,
        method: str,
        repo_id: str,
        rest: list[str],
        params: dict[str, list[str]],
        body: bytes,
        token: str | None,
    ) -> _Reply:
        if method == "GET" and (not rest or (rest[0] == "revision" and len(rest) == 2)):
            repo = self._lookup(repo_id, token, files=False)
            if isinstance(repo, _Reply):
                return repo
            sha = self._revision(repo, rest[1] if rest else "main")
            if isinstance(sha, _Reply):
                return sha
            return _json_reply(200, self._model_info(repo, sha, params))
        if method == "GET" and len(rest) >= 2 and rest[0] == "tree":
            return self._tree(repo_id, rest[1], "/".join(rest[2:]), params, token)
        if method == "POST" and len(rest) == 2 and rest[0] == "paths-info":
            form = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
            return self._paths_info(repo_id, rest[1], form, token)
        if method == "GET" and len(rest) >= 2 and rest[0] == "safetensors-metadata":
            return self._sharded_metadata(repo_id, "/".join(rest[1:]), token)
        return _error(404, "Not Found")

    def _model_info(self, repo: Repo, sha: str, params: dict[str, list[str]]) -> dict[str, Any]:
        blobs = params.get("blobs", ["false"])[-1].lower() in ("1", "true")
        hub = repo.hub
        config = repo.config
        info: dict[str, Any] = {
            "_id": _sha1(repo.repo_id)[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
            "sha": sha,
            "lastModified": hub.get("lastModified", DEFAULT_DATE),
            "createdAt": hub.get("createdAt", DEFAULT_DATE),
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": hub.get("downloads", 0),
            "likes": hub.get("likes", 0),
            "library_name": hub.get("library_name", "transformers"),
            "tags": hub.get("tags", self._tags(repo)),
            "pipeline_tag": hub.get("pipeline_tag"),
            "siblings": [self._sibling(f, blobs) for f in repo.files.values()],
            "spaces": [],
            "usedStorage": sum(f.size for f in repo.files.values()),
        }
        if config is not None:
            subset = {k: config[k] for k in ("architectures", "model_type") if k in config}
            quant = config.get("quantization_config")
            if isinstance(quant, dict) and "quant_method" in quant:
                subset["quantization_config"] = {"quant_method": quant["quant_method"]}
            info["config"] = subset
        safetensors = self._safetensors_summary(repo)
        if safetensors is not None:
            info["safetensors"] = safetensors
        if "securityStatus" in params:
            info["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": []}
        expand = params.get("expand", []) + params.get("expand[]", [])
        if expand:
            info = {k: v for k, v in info.items() if k in ("_id", "id") or k in expand}
            if "siblings" in info:
                info["siblings"] = [{"rfilename": s["rfilename"]} for s in info["siblings"]]
        return info

    @staticmethod
    def _tags(repo: Repo) -> list[str]:
        tags = ["transformers"]
        if any(p.endswith(".safetensors") for p in repo.files):
            tags.append("safetensors")
        if repo.config is not None and isinstance(repo.config.get("model_type"), str):
            tags.append(repo.config["model_type"])
        return tags

    @staticmethod
    def _sibling(f: RepoFile, blobs: bool) -> dict[str, Any]:
        if not blobs:
            return {"rfilename": f.path}
        sibling: dict[str, Any] = {"rfilename": f.path, "blobId": f.oid, "size": f.size}
        if f.lfs:
            sibling["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
        return sibling

    @staticmethod
    def _safetensors_summary(repo: Repo) -> dict[str, Any] | None:
        """As the Hub computes it: every tensor's element count, summed per dtype over all safetensors files."""
        parameters: dict[str, int] = {}
        found = False
        for f in repo.files.values():
            if not f.path.endswith(".safetensors"):
                continue
            totals = f.dtype_totals()
            if totals is None:
                continue
            found = True
            for dtype, count in totals.items():
                parameters[dtype] = parameters.get(dtype, 0) + count
        if not found:
            return None
        return {"parameters": parameters, "total": sum(parameters.values())}

    @staticmethod
    def _entry(f: RepoFile) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": f.oid, "size": f.size, "path": f.path}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
        return entry

    def _tree(
        self, repo_id: str, revision: str, folder: str, params: dict[str, list[str]], token: str | None
    ) -> _Reply:
        repo = self._lookup(repo_id, token, files=True)
        if isinstance(repo, _Reply):
            return repo
        sha = self._revision(repo, revision)
        if isinstance(sha, _Reply):
            return sha
        recursive = params.get("recursive", ["false"])[-1].lower() in ("1", "true")
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for f in repo.files.values():
            if not f.path.startswith(prefix):
                continue
            parts = f.path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):  # folders on the way
                if depth > 1 and not recursive:
                    break
                sub = prefix + "/".join(parts[:depth])
                entries.setdefault(sub, {"type": "directory", "oid": _sha1(sub), "size": 0, "path": sub})
            if recursive or len(parts) == 1:
                entries[f.path] = self._entry(f)
        if prefix and not entries:
            return _error(404, f"{folder} does not exist on {revision}", "EntryNotFound")
        return _json_reply(200, [entries[k] for k in sorted(entries)])

    def _paths_info(
        self, repo_id: str, revision: str, form: dict[str, list[str]], token: str | None
    ) -> _Reply:
        repo = self._lookup(repo_id, token, files=True)
        if isinstance(repo, _Reply):
            return repo
        sha = self._revision(repo, revision)
        if isinstance(sha, _Reply):
            return sha
        result = []
        for p in form.get("paths", []):
            p = p.strip("/")
            if p in repo.files:
                result.append(self._entry(repo.files[p]))
            elif any(name.startswith(p + "/") for name in repo.files):
                result.append({"type": "directory", "oid": _sha1(p), "size": 0, "path": p})
        return _json_reply(200, result)

    def _sharded_metadata(self, repo_id: str, filename: str, token: str | None) -> _Reply:
        repo = self._lookup(repo_id, token, files=True)
        if isinstance(repo, _Reply):
            return repo
        if not self.sharded_endpoint or repo.hub.get("sharded_endpoint", True) is False:
            return _error(404, "Not Found")
        key = f"safetensors-metadata/{filename}"
        body = repo.replies.get(key)
        if body is None:
            index_file = repo.files.get(filename)
            if index_file is None:
                return _error(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", repo.sha)])
            safetensors = tuple(
                (f.path, f.head, f.header_end) for f in repo.files.values() if f.path.endswith(".safetensors")
            )
            status, answer = _sharded_answer(filename, index_file.read(0, index_file.size), safetensors)
            if isinstance(answer, str):
                return _error(status, answer)
            body = repo.replies[key] = answer
        return _Reply(200, [("Content-Type", "application/json; charset=utf-8")], body)

    # -- listings -----------------------------------------------------------------------------------------

    def _list_models(self, raw_path: str, params: dict[str, list[str]], token: str | None) -> _Reply:
        """``GET /api/models``: filter, sort, then one page from the cursor, the next page in a Link header."""
        author = params.get("author", [""])[-1]
        search = params.get("search", [""])[-1].lower()
        wanted = params.get("filter", []) + params.get("filter[]", [])
        sort = params.get("sort", [""])[-1]
        if sort and sort not in LIST_SORTS:
            return _error(400, f"Invalid sort parameter: {sort}")
        try:
            limit = int(params["limit"][-1]) if "limit" in params else None
            cursor = params.get("cursor", [""])[-1]
            offset = int(json.loads(base64.urlsafe_b64decode(cursor))["offset"]) if cursor else 0
        except (ValueError, KeyError, TypeError):
            return _error(400, "Invalid limit or cursor")
        with self._lock:
            ids = list(self._repos)
        # only what the id already rules out stays unbuilt (lazy fixtures cost their build)
        ids = [i for i in ids if (not author or i.split("/")[0] == author) and search in i.lower()]
        repos = [r for r in (self.repo(i) for i in ids) if r is not None]
        repos = [r for r in repos if not r.private or token == r.token]
        infos = [
            {**self._model_info(r, r.sha, {}), "trendingScore": r.hub.get("trendingScore", 0)} for r in repos
        ]
        infos = [
            i
            for i in infos
            if all(f in i["tags"] or f in (i["pipeline_tag"], i["library_name"]) for f in wanted)
        ]
        if sort:
            infos.sort(key=lambda i: i.get(LIST_SORTS[sort]) or 0, reverse=True)
        size = min(limit, self.page_size) if limit else self.page_size
        page = infos[offset : offset + size]
        expand = params.get("expand", []) + params.get("expand[]", [])
        listed = "_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag"
        listed += "library_name", "createdAt", "modelId"  # the Hub's default listing fields (no sha)
        keep = ("_id", "id", *expand) if expand else listed
        items = [{k: v for k, v in i.items() if k in keep} for i in page]
        for item in items:
            if "siblings" in item:  # a listing names the files; sizes come with model_info(blobs) only
                item["siblings"] = [{"rfilename": s["rfilename"]} for s in item["siblings"]]
        headers: list[tuple[str, str]] = []
        if offset + size < len(infos):
            query = [(k, v) for k, values in params.items() if k != "cursor" for v in values]
            next_cursor = base64.urlsafe_b64encode(json.dumps({"offset": offset + size}).encode()).decode()
            headers.append(
                ("Link", f'<{self.url}{raw_path}?{urlencode([*query, ("cursor", next_cursor)])}>; rel="next"')
            )
        return _json_reply(200, items, headers)

    def _collection(self, slug: str, token: str | None) -> _Reply:
        with self._lock:
            collection = self._collections.get(slug)
        if collection is None or collection["private"] and token is None:
            return _error(404, "Collection not found")
        items = []
        for position, (kind, item_id) in enumerate(collection["items"]):
            item: dict[str, Any] = {"_id": _sha1(f"{slug}:{item_id}")[:24], "id": item_id, "type": kind,
                                    "position": position}  # fmt: skip
            repo = self.repo(item_id) if kind == "model" else None
            if repo is not None:
                info = self._model_info(repo, repo.sha, {})
                item.update({k: info[k] for k in ("author", "downloads", "lastModified", "likes", "private",
                                                  "gated", "pipeline_tag")})  # fmt: skip
                item["repoType"] = "model"
            items.append(item)
        namespace = slug.split("/")[0]
        return _json_reply(
            200,
            {
                "slug": slug,
                "title": collection["title"],
                "description": None,
                "owner": {"name": namespace, "type": "org", "isHf": False, "fullname": namespace},
                "items": items,
                "lastUpdated": DEFAULT_DATE,
                "position": 0,
                "private": collection["private"],
                "theme": "indigo",
                "upvotes": 0,
                "isUpvotedByUser": False,
            },
        )

    # -- files ----------------------------------------------------------------------------------------------

    def _resolve(self, repo_id: str, revision: str, path: str, token: str | None, rng: str | None) -> _Reply:
        repo = self._lookup(repo_id, token, files=True)
        if isinstance(repo, _Reply):
            return repo
        sha = self._revision(repo, revision)
        if isinstance(sha, _Reply):
            return sha
        f = repo.files.get(path)
        if f is None:
            return _error(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", sha)])
        common = [("X-Repo-Commit", sha), ("ETag", f'"{f.etag}"'), ("Accept-Ranges", "bytes")]
        if f.lfs:
            common += [("X-Linked-Size", str(f.size)), ("X-Linked-Etag", f'"{f.etag}"')]
            if self.cdn_redirect:
                location = (
                    f"{self.cdn_url}/cdn/{quote(repo_id, safe='')}/{sha}/{quote(path)}?X-Amz-Signature=fake"
                )
                body = f"Found. Redirecting to {location}".encode()
                return _Reply(302, [*common, ("Location", location), ("Content-Type", "text/plain")], body)
        return self._file_reply(f, common, rng)

    def _cdn(self, repo_key: str, sha: str, path: str, rng: str | None) -> _Reply:
        repo = self.repo(repo_key)
        if repo is None or sha not in repo.revisions.values() or path not in repo.files:
            return _Reply(403, [("Content-Type", "text/plain")], b"AccessDenied")
        f = repo.files[path]
        headers = [
            ("ETag", f'"{f.etag}"'),
            ("Accept-Ranges", "bytes"),
            ("Content-Disposition", f'inline; filename="{path.rsplit("/", 1)[-1]}"'),
        ]
        return self._file_reply(f, headers, rng)

    @staticmethod
    def _file_reply(f: RepoFile, headers: list[tuple[str, str]], rng: str | None) -> _Reply:
        content_type = "application/json" if f.path.endswith(".json") else "application/octet-stream"
        headers = [*headers, ("Content-Type", content_type)]
        span = _parse_range(rng, f.size) if rng else None
        if span == "unsatisfiable":
            return _Reply(416, [*headers, ("Content-Range", f"bytes */{f.size}")])
        if isinstance(span, tuple):
            start, stop = span
            headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{f.size}"))
            return _Reply(206, headers, file=f, start=start, stop=stop, ranged=True)
        return _Reply(200, headers, file=f, start=0, stop=f.size)


# --------------------------------------------------------------------------------------------------------
# Standalone: python tests/fakehub.py [--port N] [--latency-ms 50] [--fixtures DIR]


def main(argv: list[str] | None = None) -> int:
    default_fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "repos"
    parser = argparse.ArgumentParser(description="Serve fixture repos as a fake Hugging Face Hub.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every request")
    parser.add_argument(
        "--fixtures", type=Path, default=default_fixtures, help=f"default: {default_fixtures}"
    )
    parser.add_argument(
        "--no-sharded-endpoint", action="store_true", help="404 the safetensors-metadata route"
    )
    parser.add_argument("--no-cdn-redirect", action="store_true", help="serve LFS files without a 302")
    args = parser.parse_args(argv)

    hub = FakeHub(
        args.fixtures,
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        sharded_endpoint=not args.no_sharded_endpoint,
        cdn_redirect=not args.no_cdn_redirect,
        lazy=True,  # the URL is printed at once; each repo is built when first asked for
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # `kill`, and background jobs (SIGINT ignored)
    try:  # from before the URL is out: a Ctrl-C as soon as it is read still stops cleanly
        hub.start()
        print(hub.url, flush=True)  # first line of stdout: the endpoint, for scripts
        print(
            f"fakehub: {len(hub.repo_ids())} repos from {args.fixtures}, CDN at {hub.cdn_url}",
            file=sys.stderr,
        )
        print(f"fakehub: export HF_ENDPOINT={hub.url}  (Ctrl-C to stop)", file=sys.stderr, flush=True)
        stop.wait()
    except KeyboardInterrupt:  # Ctrl-C
        pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
