"""`make fuzz`: mutated config.json files, safetensors headers and GGUF headers through hubmem, in-process.

Each case takes a real fixture (fixtures/repos/*), mutates its config.json (wrong types, negatives,
huge integers, floats, NaN, lists, nested objects, deleted keys, another family's fields) and/or the
header of its weights (shapes, offsets, dtypes, entries, the length prefix, the file size), parses
them as hubmem parses what it reads (`hubmem.hub.fetch.parse_config`,
`hubmem.hub.header_check.parse_file_start` as for a local file or a Range read, or the sharded
endpoint's answer through `hubmem.hub.client.parse_sharded`) and estimates inference (and every
fourth case training). Config cases count from the fixture's own headers when it has at most 20,000
tensors (DeepSeek-V3's 92k cost ~0.5 s a case unmutated) or from config.json; three in ten normalise
through transformers itself rather than the generated config table (hubmem/model/config_table.py), as
when the installed transformers is not the table's. One case in seven is a GGUF header of a real
architecture (tests/gguf_fixtures.py) with mutated keys and tensor infos under hostile llama.cpp /
Ollama options, one in ten a `serve` plan (vLLM or SGLang) of a mutated config under hostile engine
options (scripts/fuzz_engines.py). The bar: every case ends in a typed `HubmemError` with a
documented exit code other than 1 and a one-line message, or in a result whose every byte figure is
a non-negative int (GGUF and serve: every number of its JSON non-negative and finite; vLLM's KV budget
may be negative in a plan that does not start, shown as "short by"); no case takes a second of CPU.

    python -m scripts.fuzz [--cases 20000] [--seed 0]     (from the repository root)

prints the figures (cases, typed errors per exit code, uncaught exceptions by site, negative or
non-integer figures, hangs, cases over 1 s of CPU, the slowest case) and exits 1 if any case broke
the bar.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import signal
import struct
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hubmem import errors
from hubmem.hub import fetch as hub
from hubmem.hub.header_check import parse_file_start
from hubmem.jobs.estimate import estimate_snapshot
from hubmem.jobs.results import InferenceEstimate
from hubmem.model.config_check import RULES
from hubmem.output.estimate import render_estimate

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "repos"
SLOW_S = 1.0
HEADER_FIXTURE_MAX_TENSORS = 2_000  # header cases rebuild and reparse the whole header each time
HEADERS_MAX_TENSORS = 20_000

NAN, INF = float("nan"), float("inf")


def deep(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"a": value}
    return value


HOSTILE: list[Any] = [
    None, True, False, 0, 1, 2, 3, 7, -1, -2, -8, -(10**5), 10**5, 10**5 + 1, 10**8, 10**8 + 1,
    2**31, 2**63, 10**30, -(10**30), 10**300, 0.0, 0.5, 1.5, 2.0, 4096.0, -2.0, 1e30, 1e308, NAN, INF,
    -INF, "", "x", "4096", "llama", "mamba", "t5", "bfloat16", "line\nbreak", "a" * 5000, [], [0], [1],
    [1, 2], [-1], [10**30], ["x"], [[]], [None], [1.5], list(range(64)), {}, {"a": 1},
    {"hidden_size": -1}, {"model_type": ["x"]}, deep(40), deep(3),
]  # fmt: skip
# Fields hubmem reads and fields real configs carry that change the path a config takes.
FIELDS = sorted(
    {*RULES, "is_encoder_decoder", "multi_query", "new_decoder_architecture", "use_sliding_window",
     "is_decoder", "hidden_act", "feed_forward_proj", "quantization_config", "rope_scaling"}
)  # fmt: skip


def load_fixtures() -> list[tuple[str, dict, dict | None]]:
    out = []
    for folder in sorted(FIXTURES.iterdir()):
        config = folder / "config.json"
        if not config.is_file():
            continue
        layout_path = folder / "layout.json"
        layout = json.loads(layout_path.read_text()) if layout_path.is_file() else None
        out.append((folder.name, json.loads(config.read_text()), layout))
    return out


def tensor_count(layout: dict) -> int:
    return sum(len(f["tensors"]) for f in layout["files"].values())


def layout_headers(layout: dict) -> dict[str, dict[str, tuple[str, tuple[int, ...]]]]:
    return {
        name: {t[0]: (t[1], tuple(t[2])) for t in spec["tensors"]} for name, spec in layout["files"].items()
    }


# --------------------------------------------------------------------------------------------
# config.json mutations


def sections(config: dict) -> list[dict]:
    """The config and every object nested in it (where a mutation may land)."""
    out, stack = [], [config]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(v for v in node.values() if isinstance(v, dict))
    return out


def mutate_config(rng: random.Random, config: dict, others: list[dict]) -> dict | bytes:
    config = json.loads(json.dumps(config))  # a deep copy
    for _ in range(rng.randint(1, 4)):
        node = rng.choice(sections(config))
        op = rng.random()
        if op < 0.35 and node:  # replace an existing field's value
            node[rng.choice(list(node))] = copy.deepcopy(rng.choice(HOSTILE))
        elif op < 0.6:  # set a field hubmem reads
            node[rng.choice(FIELDS)] = copy.deepcopy(rng.choice(HOSTILE))
        elif op < 0.75 and node:  # delete a field
            del node[rng.choice(list(node))]
        elif op < 0.85:  # a field from another family, as it is there
            other = rng.choice(others)
            key = rng.choice(list(other))
            node[key] = copy.deepcopy(other[key])
        elif op < 0.92:  # another family's model_type
            node["model_type"] = rng.choice(others).get("model_type", "llama")
        elif node:  # a value nudged: off by one, doubled, negated
            key = rng.choice(list(node))
            value = node[key]
            if isinstance(value, int) and not isinstance(value, bool):
                node[key] = rng.choice([value - 1, value + 1, value * 2, -value, value * 10**6])
    if rng.random() < 0.01:  # deeper than any parser's stack, as bytes
        return b'{"model_type": "llama", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return config


def config_bytes(config: dict | bytes) -> bytes:
    if isinstance(config, bytes):
        return config
    try:
        return json.dumps(config).encode()
    except (ValueError, RecursionError):  # a value json cannot write: a text config instead
        return b'{"model_type": "llama"}'


# --------------------------------------------------------------------------------------------
# safetensors header mutations


def header_of(layout: dict) -> tuple[dict, int]:
    """One header holding every tensor of the layout, offsets consecutive, and its data size."""
    from hubmem.dtypes import SAFETENSORS_BITS

    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for spec in layout["files"].values():
        for name, dtype, shape in spec["tensors"]:
            nbytes = math.prod(shape) * SAFETENSORS_BITS[dtype] // 8
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
    return header, offset


SHAPE_VALUES: list[Any] = [-1, 0, 1, 2**31, 2**64, 10**30, 1.5, "2", True, None, [2], 10**12 + 1]


def mutate_header(rng: random.Random, header: dict, data_size: int) -> tuple[bytes, int]:
    """(the file's first bytes, the file's size) for a mutated header."""
    header = json.loads(json.dumps(header))
    for _ in range(rng.randint(1, 3)):
        names = [
            n
            for n, v in header.items()
            if n != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
        ]
        name = rng.choice(names) if names else None
        entry = header.get(name) if name else None
        op = rng.random()
        if entry is None or not all(k in entry for k in ("shape", "data_offsets")):
            op = 0.95
        elif (
            not isinstance(entry["shape"], list)
            or not isinstance(entry["data_offsets"], list)
            or len(entry["data_offsets"]) != 2
        ):
            op = 0.55
        if op < 0.2:  # one dimension
            if entry["shape"]:
                entry["shape"][rng.randrange(len(entry["shape"]))] = rng.choice(SHAPE_VALUES)
            else:
                entry["shape"] = [rng.choice(SHAPE_VALUES)]
        elif op < 0.3:  # the whole shape
            entry["shape"] = rng.choice([[], [10**15, 10**15], [10**30], [1] * 5000, "x", None, {}])
        elif op < 0.5:  # offsets: shifted, overlapping another tensor, beyond the file, odd types
            begin, end = entry["data_offsets"]
            other = header[rng.choice(names)]["data_offsets"]
            entry["data_offsets"] = rng.choice(
                [
                    [begin + 1, end + 1],
                    [end, begin],
                    [data_size, data_size + end - begin],
                    list(other),
                    [other[0] + 1, other[0] + 1 + end - begin],
                    [begin, end, end],
                    [begin],
                    [-1, end],
                    [begin, float(end)],
                    "0,8",
                ]
            )
        elif op < 0.6:  # dtype
            entry["dtype"] = rng.choice(["F32", "F64", "U8", "I32", "F4", "Q4", "f32", "", 32, None, ["F32"]])
        elif op < 0.7:  # the entry itself
            header[name] = rng.choice([None, 1, "x", [], {}, {"dtype": "F32"}, {"shape": [1]}])
        elif op < 0.8:  # drop tensors (down to none)
            for n in rng.sample(names, k=rng.randint(1, len(names))):
                header.pop(n, None)
        elif op < 0.9:  # a tensor with extreme values everywhere
            header[f"model.layers.{'9' * rng.choice([3, 30, 5000])}.mlp.weight"] = {
                "dtype": "BF16",
                "shape": [10**18, 10**18],
                "data_offsets": [0, 2 * 10**36],
            }
        else:
            header["__metadata__"] = rng.choice([None, 1, [], {"format": 1}, {"x": {"y": [1]}}])
    raw = json.dumps(header).encode()
    file_size = 8 + len(raw) + data_size
    op = rng.random()
    if op < 0.05:
        raw = raw[: rng.randrange(len(raw) + 1)]  # truncated
    elif op < 0.08:
        raw = rng.choice(
            [b"{not json", b"[]", b"null", b"\xff\xfe", b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"]
        )
        file_size = 8 + len(raw)
    elif op < 0.12:
        file_size = rng.choice([0, 4, 8 + len(raw), file_size - 1, file_size // 2])  # the data cut short
    length = len(raw)
    if rng.random() < 0.03:
        length = rng.choice([0, length + 1, 2**63, 25_000_001])  # a lying length prefix
    return struct.pack("<Q", length) + raw, file_size


def hub_header(start: bytes, file_size: int, filename: str) -> dict:
    """The tensors of a file's header as the sharded endpoint's answer carries it, read as the Hub path
    reads that answer (`hubmem.hub.client.parse_sharded`, the file's size from the file list). (The
    Range path, `client.file_start`, ends in `parse_file_start` as a local file does.)"""
    from hubmem.hub import client

    answer = b'{"index": {}, "headers": {"' + filename.encode() + b'": ' + (start[8:] or b"null") + b"}}"
    return client.parse_sharded(answer, "fuzz", {filename: file_size})[filename]


# --------------------------------------------------------------------------------------------
# one case


def byte_figures(est: Any) -> Iterator[tuple[str, Any]]:
    """Every byte figure of an estimate: per row weights, KV cache, activations, overhead, total (and
    the training terms), per-token KV, per-sequence state, the download."""
    for row in est.rows:
        key = getattr(row, "precision", None) or row.regime
        names = (
            ("weights", "kv_cache", "activations", "overhead", "total")
            if isinstance(est, InferenceEstimate)
            else (
                "weights",
                "gradients",
                "optimizer",
                "master",
                "activations",
                "logits",
                "overhead",
                "host",
                "total",
            )
        )
        for name in names:
            yield f"{key}.{name}", getattr(row, name)
        for term in row.terms:
            yield f"{key}.term {term.name}", term.bytes
    if isinstance(est, InferenceEstimate):
        yield from (("kv_bytes_per_token." + k, v) for k, v in est.kv_bytes_per_token.items())
        yield from (("state_bytes_per_sequence." + k, v) for k, v in est.state_bytes_per_sequence.items())
    yield "download_bytes", est.download_bytes
    yield "parameters", est.counts.parameters


def bad_figures(est: Any) -> list[str]:
    return [f"{k}={v!r}" for k, v in byte_figures(est) if type(v) is not int or v < 0]


class Hang(BaseException):
    """Raised by the watchdog in a case that runs past HANG_S."""


HANG_S = 10.0


def _alarm(signum: int, frame: Any) -> None:
    raise Hang()


def run_case(snapshot_of: Any, train: str | None, fallback: bool = False) -> tuple[str, str]:
    """('ok' | 'typed' | 'uncaught' | 'bad' | 'hang', detail) for one case; `snapshot_of()` makes the
    snapshot (or it is a `Job`); `fallback`: configs normalised through transformers itself, not the
    generated table. A case is stopped after HANG_S seconds (SIGALRM, where the platform has it)."""
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        with transformers_fallback(fallback):
            return outcome(snapshot_of, train)
    except Hang as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "/hubmem/" in f.filename]
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        return "hang", f"Hang at {where}: over {HANG_S:.0f} s"
    finally:
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)


def outcome(snapshot_of: Any, train: str | None = None) -> tuple[str, str]:
    """`run_case` without the time limit (the hypothesis properties in tests/ call it): 'ok' | 'typed'
    (a one-line HubmemError) | 'uncaught' (anything else, an internal or multi-line error) | 'bad'."""
    try:
        if isinstance(snapshot_of, Job):  # a GGUF or serve case: the job yields its bad figures
            bad = [f"{k}={v!r}" for k, v in snapshot_of.run()]
        else:
            est = estimate_snapshot(snapshot_of(), train=train)
            bad = bad_figures(est)
            if not bad:
                render_estimate(est, "table")
                render_estimate(est, "json")
        if bad:
            return "bad", "; ".join(bad[:3])
        return "ok", ""
    except errors.HubmemError as e:
        if e.exit_code == errors.InternalError.exit_code:
            return "uncaught", f"InternalError: {e}"
        if "\n" in str(e) or "\r" in str(e):
            return "uncaught", f"multi-line {type(e).__name__}: {str(e)[:80]!r}"
        return "typed", str(e.exit_code)
    except Exception as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "/hubmem/" in f.filename]
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        return "uncaught", f"{type(e).__name__} at {where}: {str(e)[:80]}"


class Job:
    """A case that is a whole job (GGUF plan, serve plan): `run()` lists (figure, value) for each bad
    figure."""

    def __init__(self, run: Any) -> None:
        self._run = run

    def run(self) -> list[tuple[str, Any]]:
        return list(self._run())


class transformers_fallback:
    """Within it, config normalisation goes through transformers itself, as when the generated table
    (hubmem/model/config_table.py) does not match the installed transformers."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def __enter__(self) -> None:
        from hubmem.model import architecture

        self.saved = architecture.usable_table
        if self.on:
            architecture.usable_table = lambda: None

    def __exit__(self, *exc: object) -> None:
        from hubmem.model import architecture

        architecture.usable_table = self.saved


def cases(seed: int, count: int) -> Iterator[tuple[str, Any, str | None, bool]]:
    """(description, snapshot maker or Job, training mode, transformers fallback) per case."""
    rng = random.Random(seed)
    fixtures = load_fixtures()
    configs = [c for _, c, _ in fixtures]
    small = [
        (n, c, lay)
        for n, c, lay in fixtures
        if lay and sum(len(f["tensors"]) for f in lay["files"].values()) <= HEADER_FIXTURE_MAX_TENSORS
    ]
    # config cases on a fixture's own headers: those of up to HEADERS_MAX_TENSORS tensors (DeepSeek-V3's
    # 92k cost ~0.5 s a case unmutated, in count_tensors; its config is fuzzed with counts from itself)
    parsed = {
        n: layout_headers(lay) for n, _, lay in fixtures if lay and tensor_count(lay) <= HEADERS_MAX_TENSORS
    }
    built = {n: header_of(lay) for n, _, lay in small}
    from scripts import fuzz_engines

    specs = fuzz_engines.gguf_specs()
    served = [(n, c, parsed[n]) for n, c, _ in fixtures if n in parsed]
    for i in range(count):
        train = rng.choice([None, None, None, "full", "lora", "qlora"]) if i % 4 == 0 else None
        fallback = rng.random() < 0.3  # configs through transformers itself, not the generated table
        kind = rng.random()
        if kind < 0.5:  # config mutated; the fixture's own headers, or none (counts from config.json)
            name, config, layout = rng.choice(fixtures)
            mutated = mutate_config(rng, config, configs)
            headers = parsed.get(name, {}) if rng.random() < 0.5 else {}
            raw = config_bytes(mutated)

            def snapshot(name=name, raw=raw, headers=headers) -> hub.RepoSnapshot:
                cfg = hub.parse_config(raw, f"'{name}'")
                files = {f: None for f in headers} or {"model.safetensors": None}
                return hub.RepoSnapshot(name, None, None, cfg, files, headers or {})

            yield f"config {name}", snapshot, train, fallback
        elif kind < 0.75:  # header mutated (and, one case in five, the config too)
            name, config, layout = rng.choice(small)
            header, data_size = built[name]
            start, file_size = mutate_header(rng, header, data_size)
            raw = config_bytes(mutate_config(rng, config, configs) if rng.random() < 0.2 else config)

            read = parse_file_start if rng.random() < 0.5 else hub_header

            def snapshot(name=name, raw=raw, start=start, file_size=file_size, read=read) -> hub.RepoSnapshot:
                cfg = hub.parse_config(raw, f"'{name}'")
                headers = {"model.safetensors": read(start, file_size, "model.safetensors")}
                return hub.RepoSnapshot(name, None, None, cfg, {"model.safetensors": file_size}, headers)

            yield f"header {name}", snapshot, train, fallback
        elif kind < 0.9:  # a GGUF header mutated, hostile llama.cpp options
            job = None
            while job is None:  # a mutation the gguf package refuses to write: draw another
                job = fuzz_engines.gguf_case(rng, specs)
            yield "gguf", Job(job), None, False
        else:  # serve (vLLM / SGLang) on a mutated config, hostile engine options
            name, config, headers = rng.choice(served)
            raw = config_bytes(mutate_config(rng, config, configs) if rng.random() < 0.7 else config)

            def snapshot(name=name, raw=raw, headers=headers) -> hub.RepoSnapshot:
                cfg = hub.parse_config(raw, f"'{name}'")
                return hub.RepoSnapshot(name, None, None, cfg, dict.fromkeys(headers), headers)

            yield f"serve {name}", Job(fuzz_engines.serve_job(rng, snapshot)), None, fallback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kinds", default="config,header,gguf,serve", help="only these kinds of case (comma-separated)"
    )
    args = parser.parse_args(argv)
    wanted = set(args.kinds.split(","))

    import logging
    import warnings

    from hubmem.model.architecture import warm_up

    warm_up()  # transformers' import is no case's time
    warnings.simplefilter("ignore")  # transformers' FutureWarnings about mutated fields
    logging.getLogger("transformers").setLevel(logging.CRITICAL)
    outcomes: Counter[str] = Counter()
    exit_codes: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    examples: dict[str, str] = {}
    # CPU seconds decide "slow" (this process's own work; a busy machine stretches wall time, and the
    # watchdog stops a case after HANG_S seconds of wall time whatever it does); wall time is shown too
    slowest, slowest_case, slow, slowest_wall = 0.0, "", 0, 0.0
    kinds: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {k: Counter() for k in ("config", "header", "gguf", "serve")}
    start = time.perf_counter()
    drawn = (c for c in cases(args.seed, args.cases * 20) if c[0].split()[0] in wanted)
    for i, (what, snapshot, train, fallback) in zip(range(args.cases), drawn):
        kinds[what.split()[0]] += 1
        kinds["fallback"] += fallback
        t0, c0 = time.perf_counter(), time.process_time()
        outcome, detail = run_case(snapshot, train, fallback)
        took, wall = time.process_time() - c0, time.perf_counter() - t0
        slowest_wall = max(slowest_wall, wall)
        outcomes[outcome] += 1
        by_kind[what.split()[0]][outcome] += 1
        if outcome == "typed":
            exit_codes[detail] += 1
        elif outcome in ("uncaught", "bad", "hang"):
            key = f"{outcome}: {detail.split(':')[0]} {detail.split(' at ')[-1].split(':')[0:2]}"
            problems[key] += 1
            examples.setdefault(key, f"case {i} ({what}, train={train}): {detail}")
        if took > slowest:
            slowest, slowest_case = took, f"case {i} ({what}, train={train}, {outcome})"
        slow += took > SLOW_S
    total = time.perf_counter() - start
    print(
        f"cases: {sum(outcomes.values()):,} ({kinds['config']:,} config, {kinds['header']:,} safetensors header, "
        f"{kinds['gguf']:,} GGUF header + llama.cpp options, {kinds['serve']:,} serve; "
        f"{kinds['fallback']:,} through transformers, not the config table) in {total:.1f} s"
    )
    print(f"results with every byte figure a non-negative int: {outcomes['ok']:,}")
    print(
        f"typed errors: {outcomes['typed']:,} (exit code: count "
        + ", ".join(f"{c}: {n:,}" for c, n in sorted(exit_codes.items(), key=lambda kv: int(kv[0])))
        + ")"
    )
    print(
        "results / typed errors by kind: "
        + ", ".join(f"{k} {c['ok']:,} / {c['typed']:,}" for k, c in by_kind.items())
    )
    print(f"uncaught exceptions (or internal errors): {outcomes['uncaught']:,}")
    print(f"negative or non-integer figures: {outcomes['bad']:,}")
    print(f"hangs (stopped after {HANG_S:.0f} s): {outcomes['hang']:,}")
    print(
        f"cases over {SLOW_S:.0f} s of CPU: {slow:,}; slowest {slowest * 1000:.0f} ms CPU ({slowest_case}); "
        f"longest wall time {slowest_wall * 1000:.0f} ms"
    )
    for key, n in problems.most_common():
        print(f"  {n:6,}  {examples[key]}")
    return 1 if outcomes["uncaught"] or outcomes["bad"] or outcomes["hang"] or slow else 0


if __name__ == "__main__":
    sys.exit(main())
