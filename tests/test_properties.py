"""Property-based tests (hypothesis) over config.json dicts and safetensors headers mutated from the
real fixtures: whatever comes in, hubmem ends in a typed error with a documented exit code (not 1,
one line) or in a result whose every byte figure is a non-negative integer.

Bounded and repeatable for CI: a fixed example count per test, `derandomize=True`, no example
database. `make fuzz` (scripts/fuzz.py) runs the same invariant over 20,000 cases."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubmem import errors
from hubmem.dtypes import SAFETENSORS_BITS
from hubmem.hub import fetch as hub
from hubmem.hub.header_check import parse_file_start
from hubmem.jobs.estimate import estimate_snapshot
from scripts.fuzz import FIELDS, byte_figures, header_of, layout_headers, load_fixtures, sections

CI = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL = 2_000  # tensors: larger fixtures make an example cost ~0.5 s, left to `make fuzz`
FIXTURES = [
    (name, config, layout)
    for name, config, layout in load_fixtures()
    if not layout or sum(len(f["tensors"]) for f in layout["files"].values()) <= SMALL
]
WITH_LAYOUT = [f for f in FIXTURES if f[2]]
HEADERS = {name: layout_headers(layout) for name, _, layout in WITH_LAYOUT}
BUILT = {
    name: header_of(layout)
    for name, _, layout in WITH_LAYOUT
    if name
    in (
        "test__tiny",
        "openai-community__gpt2",
        "google-t5__t5-small",
        "state-spaces__mamba-130m-hf",
        "meta-llama__Llama-3.2-1B",
    )
}


def assert_typed_error_or_sound_result(make_snapshot, train: str | None = None) -> None:
    try:
        est = estimate_snapshot(make_snapshot(), train=train)
    except errors.HubmemError as e:
        assert e.exit_code != errors.InternalError.exit_code, str(e)
        assert "\n" not in str(e) and "\r" not in str(e), str(e)
        return
    bad = [(name, value) for name, value in byte_figures(est) if type(value) is not int or value < 0]
    assert not bad, bad


# --------------------------------------------------------------------------------------------
# config.json

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2, -1, -8, 10**5, 10**5 + 1, 10**8, 10**8 + 1, 2**31, 2**63, 10**30, -(10**30)]),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["llama", "mamba", "t5", "jamba", "qwen3_next", "deepseek_v3", "falcon", "bert", "whisper"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=3),
    max_leaves=8,
)
# (which object of the config, which field, what happens to it)
mutations = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=50),
        st.one_of(st.sampled_from(FIELDS), st.integers(min_value=0, max_value=200)),
        st.one_of(st.just("delete"), values),
    ),
    min_size=1,
    max_size=4,
)


def mutated(config: dict, changes: list[tuple[int, Any, Any]]) -> dict:
    config = json.loads(json.dumps(config))
    for where, key, value in changes:
        node = sections(config)[where % len(sections(config))]
        if isinstance(key, int):  # an existing field of that object
            if not node:
                continue
            key = sorted(node)[key % len(node)]
        if value == "delete":
            node.pop(key, None)
        else:
            node[key] = json.loads(json.dumps(value))  # a copy, as JSON would give it
    return config


@CI
@given(
    fixture=st.sampled_from(FIXTURES),
    changes=mutations,
    with_headers=st.booleans(),
    train=st.sampled_from([None, None, "full", "lora", "qlora"]),
)
def test_mutated_configs_end_in_a_typed_error_or_sound_figures(fixture, changes, with_headers, train):
    name, config, layout = fixture
    raw = json.dumps(mutated(config, changes)).encode()
    headers = HEADERS.get(name, {}) if with_headers else {}

    def snapshot() -> hub.RepoSnapshot:
        files = {f: None for f in headers} or {"model.safetensors": None}
        return hub.RepoSnapshot(name, None, None, hub.parse_config(raw, name), files, headers)

    assert_typed_error_or_sound_result(snapshot, train)


@CI
@given(
    fixture=st.sampled_from(FIXTURES),
    field=st.sampled_from(
        [
            "num_hidden_layers",
            "hidden_size",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "intermediate_size",
            "max_position_embeddings",
            "vocab_size",
            "sliding_window",
            "num_local_experts",
            "num_experts_per_tok",
        ]
    ),
    value=st.integers(min_value=-(10**9), max_value=10**9),
)
def test_any_integer_dimension_ends_in_a_typed_error_or_sound_figures(fixture, field, value):
    name, config, _ = fixture
    raw = json.dumps({**config, field: value}).encode()
    assert_typed_error_or_sound_result(
        lambda: hub.RepoSnapshot(name, None, None, hub.parse_config(raw, name), {"model.safetensors": None})
    )


# --------------------------------------------------------------------------------------------
# safetensors headers

dims = st.one_of(
    st.integers(min_value=-3, max_value=5),
    st.sampled_from([2**31, 2**64, 10**12, 10**12 + 1, 10**15, 10**19]),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
header_values = st.one_of(
    dims,
    st.lists(dims, max_size=6),
    st.sampled_from(["F32", "BF16", "U8", "I32", "F4", "Q4", "", "f32"]),
    st.dictionaries(
        st.sampled_from(["dtype", "shape", "data_offsets"]), st.lists(dims, max_size=3), max_size=3
    ),
)
header_mutations = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10_000),  # which tensor
        st.sampled_from(
            ["dtype", "shape", "dim", "data_offsets", "begin", "end", "entry", "delete", "copy offsets"]
        ),
        header_values,
    ),
    min_size=1,
    max_size=4,
)


def mutated_header(header: dict, changes: list[tuple[int, str, Any]]) -> dict:
    header = json.loads(json.dumps(header))
    for index, what, value in changes:
        names = [n for n in header if n != "__metadata__"]
        if not names:
            break
        name = names[index % len(names)]
        entry = header[name]
        if what == "delete":
            del header[name]
        elif what == "entry" or not isinstance(entry, dict):
            header[name] = value
        elif what == "dim" and isinstance(entry.get("shape"), list) and entry["shape"]:
            entry["shape"][index % len(entry["shape"])] = value
        elif (
            what in ("begin", "end")
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
        ):
            entry["data_offsets"][what == "end"] = value
        elif what == "copy offsets":
            other = header[names[(index * 7 + 1) % len(names)]]
            if isinstance(other, dict) and "data_offsets" in other:
                entry["data_offsets"] = other["data_offsets"]
        elif what in ("dtype", "shape", "data_offsets"):
            entry[what] = value
    return header


@CI
@given(
    name=st.sampled_from(sorted(BUILT)),
    changes=header_mutations,
    size_change=st.sampled_from([0, 0, 0, -1, -8, 1, "half", "none"]),
    train=st.sampled_from([None, None, "full"]),
)
def test_mutated_headers_end_in_a_typed_error_or_sound_figures(name, changes, size_change, train):
    header, data_size = BUILT[name]
    raw = json.dumps(mutated_header(header, changes)).encode()
    file_size = 8 + len(raw) + data_size
    if size_change == "half":
        file_size //= 2
    elif size_change == "none":
        file_size = 8 + len(raw)
    else:
        file_size += size_change
    config = next(c for n, c, _ in WITH_LAYOUT if n == name)

    def snapshot() -> hub.RepoSnapshot:
        tensors = parse_file_start(struct.pack("<Q", len(raw)) + raw, file_size, "model.safetensors")
        return hub.RepoSnapshot(
            name, None, None, config, {"model.safetensors": file_size}, {"model.safetensors": tensors}
        )

    assert_typed_error_or_sound_result(snapshot, train)


@CI
@given(
    tensors=st.lists(
        st.tuples(
            st.sampled_from(sorted(SAFETENSORS_BITS)),
            st.lists(st.integers(min_value=0, max_value=64), max_size=4),
        ),
        min_size=1,
        max_size=20,
    ),
    order=st.randoms(use_true_random=False),
)
def test_a_well_formed_header_reads_back_whole(tensors, order):
    """The checks never reject a header the format allows (any dtype, empty and scalar shapes, any
    entry order): every tensor comes back with its dtype and shape."""
    header, offset, expected = {}, 0, {}
    for i, (dtype, shape) in enumerate(tensors):
        nbits = math.prod(shape) * SAFETENSORS_BITS[dtype]
        nbytes = -(-nbits // 8)
        header[f"t{i}"] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        expected[f"t{i}"] = (dtype, tuple(shape))
        offset += nbytes
    items = list(header.items())
    order.shuffle(items)
    raw = json.dumps({"__metadata__": {"format": "pt"}, **dict(items)}).encode()
    got = parse_file_start(struct.pack("<Q", len(raw)) + raw, 8 + len(raw) + offset, "model.safetensors")
    assert got == expected


SERVED = [(n, c, HEADERS[n]) for n, c, _ in WITH_LAYOUT]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.randoms(use_true_random=False), st.booleans())
def test_serve_with_mutated_configs_and_hostile_engine_options(rng, through_transformers):
    """vLLM / SGLang plans of mutated configs with hostile engine options (scripts/fuzz_engines.py, as
    `make fuzz`), normalised through the config table or transformers itself: a typed one-line error,
    or a plan whose every number is non-negative and finite (vLLM's KV budget is negative only in a
    plan that does not start)."""
    from scripts import fuzz_engines
    from scripts.fuzz import Job, config_bytes, mutate_config, outcome, transformers_fallback

    name, config, headers = rng.choice(SERVED)
    raw = config_bytes(mutate_config(rng, config, [c for _, c, _ in FIXTURES]))

    def snapshot() -> hub.RepoSnapshot:
        cfg = hub.parse_config(raw, f"'{name}'")
        return hub.RepoSnapshot(name, None, None, cfg, dict.fromkeys(headers), headers)

    with transformers_fallback(through_transformers):
        kind, detail = outcome(Job(fuzz_engines.serve_job(rng, snapshot)))
    assert kind in ("ok", "typed"), detail


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=30), st.integers(0, 10**30).map(lambda n: str(n).encode())), max_size=12
    )
)
def test_the_long_digit_run_scan_agrees_with_the_regex(parts):
    import re

    from hubmem.hub import header_check

    raw = b"".join(parts)
    expected = re.search(rb"[0-9]{%d}" % (header_check.MAX_INT_DIGITS + 1), raw) is not None
    assert header_check.has_long_digit_run(raw) is expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["model", "layers", "12", "3", "x1", "1x", "", "w1", "٣", "weight"]), max_size=8)
)
def test_name_templates_equal_the_lookbehind_rule(parts):
    import re

    from hubmem.model.tensors import name_template

    name = ".".join(parts)  # numbers in every position: first, last, consecutive, inside words
    assert name_template(name) == re.sub(r"(?<=\.)\d+(?=\.)", "#", name)
