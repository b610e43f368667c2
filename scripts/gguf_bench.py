"""Requests and bytes read per GGUF repo (`make bench`, and the README's "GGUF repos" reads table).

Each GGUF fixture repo (tests/gguf_fixtures.py, every file with Llama 3's full-size tokenizer arrays:
128,256 tokens and 280,147 merges, ~7.3 MB of each header) is listed by `hubmem.hub.fetch.fetch` with
a cold cache against the fake Hub, which logs every request: the counts include the Hub's redirect of
each LFS file to its CDN (2 requests per Range read); "past headers" is what the last read of a
growing Range read (or a 32 KiB read after a jump) fetched beyond the end of a header.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

REPOS = [
    "bartowski/Llama-3.2-3B-Instruct-GGUF",
    "hubmem-test/Llama-3.2-3B-20-quants-GGUF",
    "unsloth/Qwen3-30B-A3B-GGUF",
    "bartowski/google_gemma-3-4b-it-GGUF",
]


def reads(latency_ms: float = 0.0) -> list[dict[str, Any]]:
    from tests import gguf_fixtures
    from tests.fakehub import FakeHub

    hub = FakeHub(latency_ms=latency_ms).start()
    gguf_fixtures.register(hub, full_tokenizer=True)
    saved = {k: os.environ.get(k) for k in ("HF_ENDPOINT", "HF_HOME")}
    from huggingface_hub import constants

    saved_consts = (constants.ENDPOINT, constants.HF_HOME, constants.HUGGINGFACE_CO_URL_TEMPLATE)
    out = []
    try:
        for repo in REPOS:
            hub.repo(repo)  # built before the clock starts
            with tempfile.TemporaryDirectory() as home:
                os.environ.update(HF_ENDPOINT=hub.url, HF_HOME=home)
                constants.ENDPOINT, constants.HF_HOME = hub.url, home
                constants.HUGGINGFACE_CO_URL_TEMPLATE = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
                from hubmem.hub import fetch

                hub.clear_log()
                start = time.perf_counter()
                snap = fetch.fetch(repo)
                seconds = time.perf_counter() - start
            log = hub.requests
            ranged = [r for r in log if r.weight_file_bytes]
            served = sum(r.weight_file_bytes for r in ranged)
            past = sum(r.tensor_bytes for r in ranged)
            out.append(
                {
                    "repo": repo,
                    "files": len(snap.gguf),
                    "requests": len(log),
                    "range_reads": len(ranged),
                    "bytes_read": served,
                    "header_bytes": sum(r["data_offset"] for r in snap.gguf.values()),
                    "past_headers": past,
                    "seconds": seconds,
                }
            )
    finally:
        hub.stop()
        constants.ENDPOINT, constants.HF_HOME, constants.HUGGINGFACE_CO_URL_TEMPLATE = saved_consts
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def table(rows: list[dict[str, Any]], with_time: bool = False) -> str:
    from hubmem.output.tables import render_rows

    headers = ["repo", "GGUF files", "requests", "Range reads", "MB read", "MB of headers", "MB past headers"]
    body = [
        [r["repo"], r["files"], r["requests"], r["range_reads"], f"{r['bytes_read'] / 1e6:.2f}",
         f"{r['header_bytes'] / 1e6:.2f}", f"{r['past_headers'] / 1e6:.2f}"]
        for r in rows
    ]  # fmt: skip
    if with_time:
        headers.append("seconds")
        for row, r in zip(body, rows):
            row.append(f"{r['seconds']:.3f}")
    return render_rows(
        headers, [[str(c) for c in row] for row in body], "markdown", numeric=(1, 2, 3, 4, 5, 6)
    )


def main() -> int:
    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 50.0
    print(f"GGUF header reads, cold cache, {latency:.0f} ms per request:")
    print(table(reads(latency), with_time=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
