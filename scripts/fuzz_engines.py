"""`make fuzz`'s GGUF and engine cases (scripts/fuzz.py draws them): mutated GGUF headers through the
llama.cpp / Ollama plan with hostile llama.cpp options, and mutated configs through `serve`
(vLLM, SGLang) with hostile engine options.

GGUF cases take the real-architecture fixtures of tests/gguf_fixtures.py (written by the `gguf`
package's own GGUFWriter), mutate their key/value metadata (values replaced by hostile ones of every
GGUF type: negative i32, huge u64, NaN f32, strings, arrays; keys deleted; another family's key) and
tensor-info table (dimensions, GGML types, names past block_count, tensors dropped), and then,
one case in four, flip a few bytes of the written header. They are read as hubmem reads a .gguf file
(`hubmem.hub.gguf_fetch.parse_source` over the bytes, with the file's size) and planned
(`hubmem.jobs.gguf.gguf_estimate`, a GPU target one case in two). Every number in the estimate's JSON
must be a non-negative int or a finite non-negative float.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any

NAN, INF = float("nan"), float("inf")

# (value, GGUF kind): what a hostile file can hold in a key; the kinds GGUFWriter writes
GGUF_VALUES: list[tuple[Any, str]] = [
    (0, "u32"), (1, "u32"), (2, "u32"), (3, "u32"), (7, "u32"), (100_001, "u32"), (2**32 - 1, "u32"),
    (-1, "i32"), (-8, "i32"), (-(2**31), "i32"), (2**63, "u64"), (2**64 - 1, "u64"), (10**12, "u64"),
    (0.0, "f32"), (-1.0, "f32"), (1.5, "f32"), (NAN, "f32"), (INF, "f32"), (-INF, "f32"), (1e38, "f32"),
    (True, "bool"), (False, "bool"), ("", "str"), ("x", "str"), ("llama", "str"), ("line\nbreak", "str"),
    ("a" * 5000, "str"), ([], "arr"), ([0], "arr"), ([1, 2], "arr"), ([-1, 2], "arr"), (["x"], "arr"),
    (list(range(5000)), "arr"), ([1.5, NAN], "arr"),
]  # fmt: skip
GGML_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_K", "Q6_K", "Q4_0", "IQ4_NL", "Q2_K"]
DIMS: list[int] = [0, 1, 3, 31, 32, 256, 2**31, 2**40, 2**62, 2**64 - 1]


def gguf_specs() -> list[tuple[str, dict]]:
    from tests import gguf_fixtures as g

    return [
        ("llama", g.llama32_3b()),
        ("qwen3moe", g.qwen3_30b_a3b()),
        ("gemma3", g.gemma3_4b()),
        ("deepseek2", g.deepseek_v2_lite()),
        ("mamba", g.mamba_130m()),
    ]


def _per_layer_keys(spec: dict) -> list[str]:
    return [k for k, _, _ in spec["kv"]]


def mutate_gguf(rng: random.Random, spec: dict, others: list[dict]) -> tuple[list, list]:
    """(kv list, typed tensor list) of a mutated GGUF fixture."""
    from tests import gguf_fixtures as g

    kv = list(spec["kv"])
    tensors = g.typed_tensors(spec, rng.choice(["F16", "Q8_0", "Q4_K_M"]))
    arch = kv[0][1]
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.35:  # one key's value replaced
            i = rng.randrange(1, len(kv))
            kv[i] = (kv[i][0], *rng.choice(GGUF_VALUES))
        elif op < 0.45:  # a key deleted
            if len(kv) > 1:
                kv.pop(rng.randrange(1, len(kv)))
        elif op < 0.55:  # a key this family's reader looks for, hostile
            key = rng.choice(
                [
                    "attention.sliding_window", "attention.sliding_window_pattern", "attention.kv_lora_rank",
                    "attention.key_length_mla", "attention.value_length_mla", "attention.q_lora_rank",
                    "rope.dimension_count", "ssm.inner_size", "ssm.conv_kernel", "ssm.state_size",
                    "ssm.group_count", "ssm.time_step_rank", "expert_count", "expert_used_count",
                    "expert_feed_forward_length", "expert_shared_count", "expert_shared_feed_forward_length",
                    "leading_dense_block_count", "vocab_size", "context_length", "attention.head_count_kv",
                ]
            )  # fmt: skip
            kv = [e for e in kv if e[0] != f"{arch}.{key}"] + [(f"{arch}.{key}", *rng.choice(GGUF_VALUES))]
        elif op < 0.6:  # general.* keys
            key = rng.choice(["general.alignment", "split.count", "general.name"])
            kv = [e for e in kv if e[0] != key] + [(key, *rng.choice(GGUF_VALUES))]
        elif op < 0.65:  # another family's architecture
            other = rng.choice(others)
            kv[0] = ("general.architecture", other["kv"][0][1], "str")
        elif op < 0.8 and tensors:  # one tensor's dimension
            i = rng.randrange(len(tensors))
            name, shape, t = tensors[i]
            dims = list(shape)
            dims[rng.randrange(len(dims))] = rng.choice(DIMS)
            tensors[i] = (name, tuple(dims), t)
        elif op < 0.87 and tensors:  # one tensor's type
            i = rng.randrange(len(tensors))
            tensors[i] = (tensors[i][0], tensors[i][1], rng.choice(GGML_TYPES))
        elif op < 0.93 and tensors:  # a tensor past block_count, or an odd name
            name = rng.choice(
                ["blk.100000.attn_q.weight", "blk.99999999999999999999.x", "output.weight", "x"]
            )
            tensors.append((name, (rng.choice([1, 32, 256]),), "F32"))
        elif tensors:  # tensors dropped (down to none)
            for _ in range(rng.randint(1, len(tensors))):
                tensors.pop(rng.randrange(len(tensors)))
    return kv, tensors


def gguf_bytes(rng: random.Random, kv: list, tensors: list) -> tuple[bytes, int] | None:
    """(header bytes, file size) of a mutated header, a few bytes flipped one case in four; None when the
    gguf package itself refuses to write it (a value out of its type's range, a shape numpy refuses)."""
    from tests import gguf_fixtures as g

    try:
        head, data = g.header_bytes(kv, tensors, None)
    except Exception:
        return None
    size = len(head) + data
    if rng.random() < 0.25:
        raw = bytearray(head)
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        head = bytes(raw)
    if rng.random() < 0.05:
        head = head[: rng.randrange(len(head) + 1)]
    if rng.random() < 0.05:
        size = rng.choice([0, len(head) // 2, len(head)])
    return head, size


def llamacpp_options(rng: random.Random) -> dict[str, Any]:
    """Plain llama.cpp option values as the API takes them, each drawn from good and hostile ones."""
    choices: dict[str, list[Any]] = {
        "ctx_size": [None, 0, 1, 512, 4096, 131072, -1, 1 << 24, (1 << 24) + 1, 10**30, 1.5, True],
        "parallel": [1, 4, 0, -1, 1 << 20, (1 << 20) + 1, 2.0],
        "n_gpu_layers": [None, -1, 0, 1, 10, 999, -2, 10**30],
        "cache_type_k": ["f16", "q8_0", "q4_0", "f32", "x", "", "Q8_0"],
        "cache_type_v": ["f16", "q8_0", "q4_0", "bf16", "iq4_nl"],
        "flash_attn": ["auto", "on", "off", "x"],
        "ubatch_size": [512, 1, 0, 1 << 20, 3],
        "batch_size": [2048, 1, 0, 7],
        "tensor_split": [
            "3,1",
            "1",
            "0,0",
            "inf,1",
            "nan,1",
            "-1,2",
            "1e308,1e308",
            "x",
            "1,1,1,1,1,1,1,1,1",
        ],
        "overhead": ["512MiB", "0", "-1GiB", "infGiB", "1e300GiB", "x"],
        "runtime": [None, "llama.cpp", "ollama", "x"],
        "quant": [None, "Q4_K_M", "", "nope"],
        "swa_full": [False, True],
        "no_kv_offload": [False, True],
        "kv_unified": [False, True],
        "mmap": [True, False],
    }
    return {k: rng.choice(v) for k, v in choices.items() if rng.random() < 0.2}


def gguf_case(
    rng: random.Random, specs: list[tuple[str, dict]]
) -> Callable[[], Iterator[tuple[str, Any]]] | None:
    """One GGUF case: a job yielding every number of the estimate's JSON (and rendering it)."""
    name, spec = rng.choice(specs)
    kv, tensors = mutate_gguf(rng, spec, [s for _, s in specs])
    written = gguf_bytes(rng, kv, tensors)
    if written is None:
        return None
    head, size = written
    given = llamacpp_options(rng) if rng.random() < 0.5 else {}
    gpu = rng.choice([None, None, "t4", "h100", "rtx-4090"])
    num_gpus = rng.choice([1, 1, 1, 2, 4])
    path = f"{name}-Q4_K_M.gguf"

    def job() -> Iterator[tuple[str, Any]]:
        from hubmem.fit.verdicts import target
        from hubmem.hub import fetch as hub
        from hubmem.hub import gguf_fetch
        from hubmem.jobs.gguf import gguf_estimate, gguf_options
        from hubmem.output.gguf import render_gguf

        def read(offset: int, n: int) -> bytes:
            return head[offset : offset + max(n, 4096)]

        header = gguf_fetch.parse_source(read, f"'{path}'", size, None)
        record = gguf_fetch.header_record(header, size, gguf_fetch.ReadStats())
        snapshot = hub.RepoSnapshot(
            f"fuzz/{name}", None, None, {}, {path: size}, {}, weights_format="gguf", source="hub",
            gguf={path: record},
        )  # fmt: skip
        opts, quant = gguf_options(given)
        est = gguf_estimate(snapshot, opts, quant, target(gpu, None, num_gpus) if gpu else None)
        d = est.to_dict()
        render_gguf(est, "table", explain=True)
        render_gguf(est, "json")
        # -ngl -1: llama.cpp's "every layer", the option as given
        yield from ((k, v) for k, v in numbers(d, "") if not (k == ".options.n_gpu_layers" and v == -1))

    return job


def serve_options(rng: random.Random, engine: str) -> tuple[dict[str, Any], int | None]:
    """(engine options, --num-gpus) drawn from good and hostile values, as the API takes them."""
    if engine == "sglang":
        choices: dict[str, list[Any]] = {
            "mem_fraction_static": [0.9, 0.5, 0, 1, 1.5, NAN, INF, -0.1, 1e-300],
            "context_length": [None, 1, 4096, 0, -1, 10**9, 10**30],
            "chunked_prefill_size": [None, 1, 8192, 0, 10**9, 10**30],
            "max_running_requests": [None, 1, 0, 10**9],
            "tp": [1, 2, 3, 8, 10**6],
            "kv_cache_dtype": ["auto", "fp8_e4m3", "x"],
            "cuda_graph_max_bs": [1, 160, 0, 10**9],
            "dtype": ["auto", "bfloat16", "float32", "x"],
            "cuda_context": ["500MiB", "-1GiB", "infGiB", "1e300GiB"],
        }
    else:
        choices = {
            "max_model_len": [None, 1, 4096, "auto", -1, 0, -2, 10**9, 10**30, "x", 1.5],
            "gpu_memory_utilization": [0.9, 0.5, 0, 1, 1.5, NAN, INF, -0.1, 1e-300],
            "max_num_seqs": [1, 256, 0, 10**9, 10**30],
            "max_num_batched_tokens": [1, 8192, 0, 10**9, 10**30],
            "block_size": [16, 1, 7, 10**9],
            "tensor_parallel_size": [1, 2, 3, 8, 64, 10**6],
            "pipeline_parallel_size": [1, 2, 10**6],
            "kv_cache_dtype": ["auto", "fp8", "x"],
            "dtype": ["auto", "bf16", "float32", "x"],
            "enforce_eager": [False, True],
            "non_torch_memory": ["1GiB", "-1GiB", "infGiB", "1e300GiB", 0],
            "cuda_context": ["500MiB", "-1GiB", "infGiB", "1e300GiB"],
        }
    given = {k: rng.choice(v) for k, v in choices.items() if rng.random() < 0.15}
    return given, rng.choice([None, None, None, 1, 2, 16, 7, 0, 10**6])


def serve_job(rng: random.Random, snapshot_of: Callable[[], Any]) -> Callable[[], Iterator[tuple[str, Any]]]:
    """One serve case over a (mutated) snapshot: the plan's every number."""
    engine = rng.choice(["vllm", "vllm", "sglang"])
    given, num_gpus = serve_options(rng, engine)
    gpu = rng.choice(["t4", "h100", "h100", "a100-40gb", "a100-40gb", "rtx-4090", None])
    memory = rng.choice(["80GiB", "80GiB", "1MiB", "2GiB", "0", "-1GiB", "infGiB"]) if gpu is None else None

    def job() -> Iterator[tuple[str, Any]]:
        from hubmem.jobs import serve as sv
        from hubmem.output.serve import render_serve

        spec = sv.gpu_spec(gpu, memory)
        opts = sv.engine_options(num_gpus, given, engine)
        result = sv.serve_snapshot(snapshot_of(), engine, spec, opts)
        render_serve(result, "table", explain=True)
        render_serve(result, "json")
        d = result.to_dict()
        signed = set()
        if not result.plan.starts:  # vLLM's KV budget: negative when the engine does not start ("short by")
            signed = {f".plan.stages[{i}].kv_budget" for i in range(len(d["plan"]["stages"]))}
            signed |= {
                f".plan.terms[{i}].bytes"
                for i, t in enumerate(d["plan"]["terms"])
                if t["name"] == "kv_budget"
            }
        yield from ((k, v) for k, v in numbers(d, "") if k not in signed)

    return job


def numbers(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, number) for every number in a JSON-like value that is not a non-negative int or a finite
    non-negative float (the bar's "bad figures")."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from numbers(v, f"{path}[{i}]")
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if value < 0:
            yield path, value
    elif isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            yield path, value
    else:
        yield path, value
