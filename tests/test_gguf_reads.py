"""GGUF header reads against the fake Hub: how many requests and bytes each file of a repo costs.

The first file of a repo is walked whole (its tokenizer arrays have no length field), with reads sized
by the parser's estimate of what is left of each array; the other quant files jump over the shared
tokenizer with one read before the jump and one after it, sized by the first file's layout; every
read of a file after its first goes to the CDN URL the Hub redirected it to (one request, not two)."""

from __future__ import annotations

from hubmem.hub import fetch, gguf_fetch
from hubmem.model.gguf import reader

LLAMA = "bartowski/Llama-3.2-3B-Instruct-GGUF"


def test_each_quant_file_after_the_first_costs_two_reads_and_three_requests(fake_hub):
    fake_hub.clear_log()
    snap = fetch.fetch(LLAMA)
    ranged = [r for r in fake_hub.requests if r.weight_file_bytes]
    by_file: dict[str, list] = {}
    for r in ranged:
        by_file.setdefault(r.file, []).append(r)
    lead = "Llama-3.2-3B-Instruct-F16.gguf"  # the first file, read alone first
    assert sorted(by_file) == sorted(snap.gguf)
    for path, reads in by_file.items():
        record = snap.gguf[path]
        # one Hub request (answered by a redirect) for the file's first read, the CDN for every read
        hub_side = [r for r in fake_hub.requests if r.server == "hub" and path in r.path]
        assert len(hub_side) == 1, path
        assert record["requests"] == len(reads) + 1
        assert record["bytes_read"] == sum(r.weight_file_bytes for r in reads)
        if path == lead:
            continue
        # the others: up to a little past where the tokenizer starts, then the tail after it, each
        # sized by the lead file (its 4 KiB slack, HINT_SLACK, the only bytes past the header)
        assert len(reads) == 2, path
        assert reads[1].span[0] > reads[0].span[1]  # the tokenizer between them is never fetched
        assert sum(r.tensor_bytes for r in reads) <= reader.HINT_SLACK
        assert reads[0].span == (0, reads[0].span[1]) and reads[0].span[1] <= 2 * reader.HINT_SLACK


def test_the_lead_file_reads_no_more_than_its_header_and_one_estimate(fake_hub):
    fake_hub.clear_log()
    snap = fetch.fetch(LLAMA)
    lead = "Llama-3.2-3B-Instruct-F16.gguf"
    reads = [r for r in fake_hub.requests if r.weight_file_bytes and r.file == lead]
    # past the tensor-info table: at most the last read, a default-sized one (FIRST_READ) or the
    # estimate of the table (TENSOR_INFO_GUESS a tensor)
    past = sum(r.tensor_bytes for r in reads)
    assert 0 < past <= gguf_fetch.FIRST_READ + len(snap.gguf[lead]["tensors"]) * reader.TENSOR_INFO_GUESS
    # bytes fetched: the header region less the array skipped unread (token_type: 8,192 i32) but the
    # small read (AFTER_JUMP) that found its key, plus what went past the header
    header = snap.gguf[lead]["data_offset"]
    assert snap.gguf[lead]["bytes_read"] <= header - 8192 * 4 + gguf_fetch.AFTER_JUMP + past


def test_an_expired_cdn_url_sends_the_read_back_to_the_hub(fake_hub):
    from hubmem.hub import client

    url = client.file_url(LLAMA, "Llama-3.2-3B-Instruct-Q4_K_M.gguf", None)
    get = gguf_fetch.range_getter(url, None, 10.0, lambda f: f())
    first, n1 = get(0, 16)
    assert first[:4] == b"GGUF" and n1 == 2  # the Hub's 302, then the CDN
    again, n2 = get(4, 8)
    assert again == first[4:8] and n2 == 1  # straight to the CDN
    fake_hub.fail("X-Amz-Signature", 403, times=1)  # the signature has expired
    fake_hub.clear_log()
    third, n3 = get(8, 16)
    assert third == first[8:16] and n3 == 3  # the refused CDN read, the Hub's 302, the CDN again
    assert [(r.server, r.status) for r in fake_hub.requests] == [("cdn", 403), ("hub", 302), ("cdn", 206)]
    # no token is sent to the CDN
    assert all(r.token is None for r in fake_hub.requests if r.server == "cdn")
