"""Property: any bytes given to the GGUF parser give a typed error or a header whose figures are finite
and non-negative (never another exception, never an unbounded read)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hubmem.errors import MalformedGGUFError, UnknownDtypeError
from hubmem.model.gguf import reader
from tests import gguf_fixtures

HEAD, _ = gguf_fixtures.header_bytes(
    [("general.architecture", "llama", "str"), ("llama.block_count", 1, "u32"), ("a.list", [1, 2, 3], "arr")],
    [("blk.0.attn_norm.weight", (64,), "F32"), ("blk.0.attn_q.weight", (256, 64), "Q4_K")],
    None,
)


def parse(raw: bytes) -> reader.GGUFHeader:
    return reader.parse_header(lambda offset, n: raw[offset : offset + max(n, 4096)], "'x.gguf'")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(HEAD) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(HEAD)),
)
def test_mutated_headers_fail_typed_or_parse(mutations, cut):
    raw = bytearray(HEAD)
    for i, b in mutations:
        raw[i] = b
    try:
        h = parse(bytes(raw[:cut] if cut < len(HEAD) // 2 else raw))
    except (MalformedGGUFError, UnknownDtypeError, reader.NeedBytes):
        return
    assert h.data_offset >= 0 and all(reader.tensor_nbytes(t) >= 0 for t in h.tensors)
    assert reader.data_bytes(h) >= 0


# the same mutations as `make fuzz` (scripts/fuzz_engines.py), a bounded number per CI run
SPECS = None


def _specs():
    global SPECS
    if SPECS is None:
        from scripts import fuzz_engines

        SPECS = fuzz_engines.gguf_specs()
    return SPECS


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.randoms(use_true_random=False))
def test_mutated_gguf_keys_and_options_plan_typed_or_sound(rng):
    """Mutated key values / tensor infos of real-architecture GGUF files, hostile llama.cpp options: a
    typed one-line error, or an estimate whose every number is non-negative and finite."""
    from scripts import fuzz_engines
    from scripts.fuzz import Job, outcome

    job = None
    while job is None:
        job = fuzz_engines.gguf_case(rng, _specs())
    kind, detail = outcome(Job(job))
    assert kind in ("ok", "typed"), detail
