"""Run hf-mem (a peer, bench-only) against the fake Hub: `python -m scripts.hfmem_loopback --model-id ID`.

hf-mem 0.5.6 builds its URLs on the Hub's public host (hf_mem/run.py) and ignores HF_ENDPOINT, so its
HTTP client's transport is wrapped: a request to that host goes to HF_ENDPOINT instead, which must be a
loopback address, and a request to any other non-loopback host is refused before it is sent. The Hub's
host is taken from huggingface_hub's own default endpoint, not written here.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import constants

HUB_HOST = urlsplit(constants._HF_DEFAULT_ENDPOINT).hostname


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


TARGET = urlsplit(os.environ.get("HF_ENDPOINT", ""))
if not _loopback(TARGET.hostname):
    raise SystemExit(f"HF_ENDPOINT must be a loopback address, got {TARGET.hostname!r}")


class LoopbackTransport(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host == HUB_HOST:
            request.url = request.url.copy_with(scheme=TARGET.scheme, host=TARGET.hostname, port=TARGET.port)
            request.headers["Host"] = TARGET.netloc
        elif not _loopback(request.url.host):
            raise httpx2.ConnectError(
                f"refused: {request.url.host} is not a loopback address", request=request
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


_init = httpx2.AsyncClient.__init__


def _wrapped_init(self: httpx2.AsyncClient, *args: Any, **kwargs: Any) -> None:
    kwargs.pop("http2", None)  # the fake Hub speaks HTTP/1.1 over plain TCP
    _init(self, *args, **kwargs)
    self._transport = LoopbackTransport(self._transport)
    self._mounts = {}  # no proxy transports: nothing may leave loopback


httpx2.AsyncClient.__init__ = _wrapped_init  # type: ignore[method-assign]

if __name__ == "__main__":
    from hf_mem.cli import main

    main()
