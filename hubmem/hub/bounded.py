"""Bounded reads of whatever a server sends: a byte cap enforced while streaming, a total deadline per
request, and Range honoured on hubmem's side when a server ignores it.

Every GET hubmem makes goes through huggingface_hub's shared client and reads the answer whole
(`get_session().get(...)`, then `response.content`): hubmem.hub.client's `model_files`, `commit`,
`small_file`, `file_header` and `sharded_headers` (the requests of hf_api.py's `model_info`,
`parse_safetensors_file_metadata` and `get_sharded_safetensors_metadata`, huggingface_hub 2.4.0) and
hubmem.hub.listing's pages. httpx2 times each socket read, not the request. So a server that ignores
Range would make it buffer a whole weights file, an endless body would grow until MemoryError, and one
byte a second would never trip a read timeout. hubmem bounds those reads from below: two event hooks
on huggingface_hub's shared client (`get_session()`; httpx2 runs request hooks before sending and
response hooks once the headers arrived, before the body is read, `_client.py`
`_send_handling_redirects`) wrap the body of each answer, *only while `limits` is active in the
calling thread* (hubmem's `with_retries`): a program using huggingface_hub itself is not affected.

Per answer (each request of a redirect chain on its own):

- a Range request (``bytes=A-B``) reads at most B - A + 1 bytes; a 200 answer to it (the server ignored
  the header) is cut to those bytes as the server should have sent them (skipping A), and the
  connection is dropped: a 1 GB file costs 100 kB, not 1 GB;
- any other answer reads at most `MAX_ANSWER_BYTES`, counted both on the wire and after decoding (a
  gzip bomb is cut too); more is `AnswerTooLargeError`;
- the whole answer (headers, redirects excluded, and body) must arrive within the request's timeout
  (`--timeout`) counted from its start, checked at each chunk the server sends; later is an
  httpx2.ReadTimeout (retried like any timeout, then exit 21).

The status line and headers come before any hook runs: for those, the connections huggingface_hub's
client opens once the hooks are installed read through `_DeadlineStream` (the connection pool's network
backend wrapped, httpcore2 `_sync/connection_pool.py` `_network_backend`, httpcore2 2.16.2), whose
every socket read and write waits at most until the current request's deadline, so a server dripping
its headers one byte a second ends at the deadline too. A connection opened before the first
`limits` (by the program itself) keeps only the body's deadline.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

# The largest answer hubmem reads: the sharded-metadata answer of DeepSeek-V3 (163 shards, 92k tensors)
# is 12.7 MB, its index 9 MB, a model_info with every file's metadata well under 1 MB. Four times the
# largest, so a model twice DeepSeek-V3's tensor count still reads; peak RSS with a server sending an
# endless body stays under 300 MB (tests/test_bounded_io.py, make fuzz's server section).
MAX_ANSWER_BYTES = 64 * 1024 * 1024

_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d+)\s*-\s*(\d+)\s*$", re.IGNORECASE)
_state = threading.local()  # .timeout: seconds per request while `limits` is active; .deadline


class AnswerTooLargeError(Exception):
    """A server's answer was larger than hubmem reads (`MAX_ANSWER_BYTES`, or the Range asked for)."""

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(f"the answer to {url} is larger than {limit:,} bytes: refusing to read more")
        self.url, self.limit = url, limit


@contextmanager
def limits(timeout: float | None) -> Iterator[None]:
    """While active in this thread, every request huggingface_hub's shared client sends from it is
    bounded as the module says; `timeout` (seconds, None: no deadline) is each request's total."""
    install()
    previous = getattr(_state, "timeout", _OFF)
    _state.timeout = timeout
    try:
        yield
    finally:
        _state.timeout = previous


_OFF = object()


def install() -> None:
    """Add the two hooks to huggingface_hub's current shared client, once (a client made anew after a
    fork or `close_session()` gets them at the next `limits`)."""
    from huggingface_hub.utils import get_session

    client = get_session()
    for transport in (getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()):
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
    hooks = client.event_hooks
    if _on_request not in hooks["request"]:
        hooks["request"].append(_on_request)
    if _on_response not in hooks["response"]:
        hooks["response"].append(_on_response)


def _active() -> bool:
    return getattr(_state, "timeout", _OFF) is not _OFF


def _on_request(request: Any) -> None:
    _state.deadline = None  # whatever this thread sends next: bounded only when `limits` says so
    if not _active():
        return
    timeout = _state.timeout
    request.extensions["hubmem_deadline"] = None if timeout is None else time.monotonic() + float(timeout)
    _state.deadline = request.extensions["hubmem_deadline"]


def _clipped(timeout: float | None, what: str) -> float | None:
    """A socket wait of at most the time left to this thread's current request (`_on_request`)."""
    deadline = getattr(_state, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        import httpcore2

        error = httpcore2.ReadTimeout if what == "read" else httpcore2.WriteTimeout
        raise error("the answer did not arrive whole within the timeout")
    return left if timeout is None else min(timeout, left)


class _DeadlineBackend:
    """httpcore2's network backend whose streams are `_DeadlineStream`s."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> _DeadlineStream:
        return _DeadlineStream(self._inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _DeadlineStream:
        return _DeadlineStream(self._inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream:
    """A connection whose reads and writes end at the current request's deadline (httpcore2's
    NetworkStream interface: read, write, close, start_tls, get_extra_info)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clipped(timeout, "read"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clipped(timeout, "write"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> _DeadlineStream:
        return _DeadlineStream(self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _on_response(response: Any) -> None:
    request = response.request
    if "hubmem_deadline" not in request.extensions:  # not sent under `limits`
        return
    deadline = request.extensions["hubmem_deadline"]
    asked = _RANGE_RE.match(request.headers.get("range", ""))
    skip, limit, cut = 0, MAX_ANSWER_BYTES, False
    if asked is not None and int(asked.group(2)) >= int(asked.group(1)):
        start, stop = int(asked.group(1)), int(asked.group(2)) + 1
        limit, cut = stop - start, True
        if response.status_code == 200:  # Range ignored: the body starts at byte 0 of the file
            skip = start
    response.stream = _stream_class()(response.stream, str(request.url), deadline, skip, limit, cut, request)
    # the decoded size too (httpx2 caches the decoder it picks from Content-Encoding in _decoder)
    response._decoder = _BoundedDecoder(response._get_content_decoder(), str(request.url), limit)


@functools.cache
def _stream_class() -> type:
    """_BoundedStream as an httpx2.SyncByteStream (httpx2 checks; imported only once a request is made)."""
    import httpx2

    class _BoundedStream(httpx2.SyncByteStream):
        """The raw body: at most `skip` + `limit` bytes (`cut`: stop there silently, else fail past it),
        each chunk before the deadline."""

        def __init__(
            self, inner: Any, url: str, deadline: float | None, skip: int, limit: int, cut: bool, request: Any
        ) -> None:
            self._inner, self._url, self._deadline = inner, url, deadline
            self._skip, self._limit, self._cut, self._request = skip, limit, cut, request

        def __iter__(self) -> Iterator[bytes]:
            kept = 0
            for chunk in self._inner:
                if self._deadline is not None and time.monotonic() > self._deadline:
                    raise httpx2.ReadTimeout(
                        f"the answer to {self._url} did not arrive whole within the timeout",
                        request=self._request,
                    )
                if self._skip:
                    dropped = min(self._skip, len(chunk))
                    chunk, self._skip = chunk[dropped:], self._skip - dropped
                if kept + len(chunk) > self._limit:
                    if not self._cut:
                        raise AnswerTooLargeError(self._url, self._limit)
                    chunk = chunk[: self._limit - kept]
                kept += len(chunk)
                if chunk:
                    yield chunk
                if self._cut and kept >= self._limit:
                    return  # all that was asked for; iter_raw's close() drops the connection

        def close(self) -> None:
            self._inner.close()

    return _BoundedStream


class _BoundedDecoder:
    """httpx2's content decoder (identity, gzip, ...) whose output stops past `limit` bytes: its
    decode() yields the decoded pieces of each raw chunk as it inflates them."""

    def __init__(self, inner: Any, url: str, limit: int) -> None:
        self._inner, self._url, self._limit, self._out = inner, url, limit, 0

    def _counted(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self._out += len(piece)
            if self._out > self._limit:
                raise AnswerTooLargeError(self._url, self._limit)
            yield piece

    def decode(self, data: bytes) -> Iterator[bytes]:
        return self._counted(self._inner.decode(data))

    def flush(self) -> Iterator[bytes]:
        return self._counted(self._inner.flush())
