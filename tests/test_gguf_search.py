"""The first file of a GGUF repo has its tokenizer arrays located by Range probes (hubmem.model.gguf.locate),
not walked: the 20-quant listing's exact requests and bytes, the same header as the full walk, a decoy
candidate refused, and the full walk when nothing fits the file exactly."""

from __future__ import annotations

import functools

import pytest

from hubmem.errors import MalformedGGUFError
from hubmem.hub import fetch, gguf_fetch
from hubmem.model.gguf import locate, reader
from tests import gguf_fixtures

TWENTY = "hubmem-test/Llama-3.2-3B-20-quants-GGUF"
LEAD = "Llama-3.2-3B-Instruct-BF16.gguf"  # the first model by name: read alone, first


def walk(head: bytes) -> reader.GGUFHeader:
    return reader.parse_header(lambda o, n: head[o : o + max(n, 1 << 20)], "'x'")


def source(head: bytes, size: int) -> gguf_fetch.RangeSource:
    """A RangeSource over a header and its virtual zero data (what the fake Hub serves)."""

    def get(start: int, stop: int) -> tuple[bytes, int]:
        stop = min(stop, size)
        return head[start:stop] + bytes(max(0, stop - max(start, len(head)))), 1

    return gguf_fetch.RangeSource(get, size)


def test_a_20_quant_listing_reads_0_61_mb_in_84_requests(fake_hub):
    fake_hub.clear_log()
    snap = fetch.fetch(TWENTY)
    assert len(snap.gguf) == 20
    ranged = [r for r in fake_hub.requests if r.weight_file_bytes]
    # before: 70 requests, 7,806,490 bytes (the lead file walked: 11 requests, 7,348,685 bytes)
    assert len(fake_hub.requests) == 84 and sum(r.weight_file_bytes for r in ranged) == 613_301
    lead = snap.gguf[LEAD]
    # the lead file: its first 32 KiB, 11 probes and a 16 KiB walk per array (tokens, merges), the
    # tensor-info table; one Hub request (the redirect) and 24 CDN reads
    assert (lead["requests"], lead["bytes_read"]) == (25, 155_496)
    assert lead["bytes_read"] < lead["data_offset"] // 50
    for path, record in snap.gguf.items():
        if path != LEAD:  # the others jump over the lead file's tokenizer (its hints): unchanged
            assert (record["requests"], record["bytes_read"]) == (3, 24_095), path


def test_the_located_header_is_the_walked_one():
    files, sizes = gguf_fixtures.built_repo(TWENTY)
    head = files[LEAD]
    src = source(head, sizes[LEAD])
    got = gguf_fetch.parse_source(src.read, "'x'", sizes[LEAD], None, src)
    full = walk(head)
    assert (got.kv, got.tensors, got.spans, got.data_offset) == (
        full.kv,
        full.tensors,
        full.spans,
        full.data_offset,
    )
    assert got.kv["tokenizer.ggml.merges"] == reader.ArrayInfo(reader.STRING_TYPE, 280_147)
    assert src.stats.bytes_read == 155_496  # the same bytes as over HTTP


@functools.cache
def decoy_file() -> tuple[bytes, int, int]:
    """(header, size, where merges end) of a file whose last merges hold a decoy: `general.decoy`, then a
    4-byte string, read as a u32 key: a candidate for the end of the merges, before the real one."""
    spec = gguf_fixtures.llama32_3b()
    n = 40_000
    merges = [f"m{i:05d} x{i % 97:03d}" for i in range(n - 2)] + ["general.decoy", "abcd"]
    kv = [*spec["kv"], ("tokenizer.ggml.model", "gpt2", "str"),
          ("tokenizer.ggml.tokens", [f"t{i:05d}" for i in range(n)], "arr"),
          ("tokenizer.ggml.token_type", [1] * n, "arr"), ("tokenizer.ggml.merges", merges, "arr"),
          ("tokenizer.ggml.bos_token_id", 128000, "u32"), ("tokenizer.chat_template", "{{ messages }}", "str"),
          ("general.quantization_version", 2, "u32")]  # fmt: skip
    head, data = gguf_fixtures.header_bytes(kv, gguf_fixtures.typed_tensors(spec, "Q4_K_M"), None)
    return head, len(head) + data, head.index(b"tokenizer.ggml.bos_token_id") - 8


def test_a_decoy_in_the_merges_is_a_candidate_and_is_refused():
    head, size, merges_end = decoy_file()
    decoy = head.index(b"general.decoy") - 8
    src = source(head, size)
    search = locate.Search(src.probe, size)
    header = reader.parse_header(src.read, "'x'", None, find_end=search.end)
    assert locate.exact_size(header, size) and header.kv == walk(head).kv
    (merges,) = [c for k, c in search.candidates.items() if k[1] == 40_000 and merges_end in c]
    assert merges[:2] == [
        merges_end,
        decoy,
    ]  # the real key first (the last that reads as one), then the decoy
    # forced to end the merges at the decoy, the parse reads `general.decoy` = 0 as a u32 key, then the
    # real key's length and text as the next key's length: refused
    ends = {
        k: (decoy if k == (head.index(b"m00000") - 8, 40_000) else c[0]) for k, c in search.candidates.items()
    }
    with pytest.raises(MalformedGGUFError, match="^'x': a key claims a string of 117,648,351,841 bytes$"):
        reader.parse_header(src.read, "'x'", None, find_end=lambda s, n: ends.get((s, n)))


def test_a_header_that_does_not_fit_the_file_exactly_is_walked():
    """The tensor infos must end at the file's size for a located header to be accepted: with 32 bytes
    more in the file, every candidate is refused and the header is walked (its full 0.98 MB read)."""
    head, size, _ = decoy_file()
    src = source(head, size + 32)
    got = gguf_fetch.parse_source(src.read, "'x'", size + 32, None, src)
    assert got.kv == walk(head).kv
    tokens_and_merges = head.index(b"tokenizer.ggml.bos_token_id") - head.index(b"t00000")
    assert src.stats.bytes_read > tokens_and_merges - 4 * 40_000  # walked: every string read (types jumped)
    fits = source(head, size)
    assert gguf_fetch.parse_source(fits.read, "'x'", size, None, fits).kv == got.kv
    assert fits.stats.bytes_read < tokens_and_merges // 4


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.999])
def test_a_truncated_header_fails_as_the_walk_does(cut):
    """A header cut short (zeros past the cut, as the test server serves): no candidate fits, and the
    error is the full walk's, word for word."""
    head, size, _ = decoy_file()
    short = head[: int(len(head) * cut)]
    located, walked = source(short, size), source(short, size)
    with pytest.raises(MalformedGGUFError) as searched:
        gguf_fetch.parse_source(located.read, "'x'", size, None, located)
    with pytest.raises(MalformedGGUFError) as plain:
        gguf_fetch.parse_source(walked.read, "'x'", size, None)
    assert str(searched.value) == str(plain.value)
