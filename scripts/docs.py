"""Generated blocks of README.md: `python -m scripts.docs --write` (make docs) rewrites them, and
tests/test_docs.py fails when one is stale. Every number in those blocks comes from the code."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from scripts import compare_measured
from tests.fakehub import repo_id_from_dirname

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK_RE = re.compile(r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end:(?P=name) -->)", re.S)

Invoke = Callable[[list[str]], str]  # CLI args -> stdout (the caller points HF_ENDPOINT at the fake Hub)

S2_MEASURED_GB = {"fp32": 3.21, "bf16": 1.60, "int8": 0.89}
MOE_MODELS = [
    "mistralai/Mixtral-8x7B-v0.1",
    "Qwen/Qwen3-30B-A3B",
    "baidu/ERNIE-4.5-21B-A3B-Thinking",
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
    "deepseek-ai/DeepSeek-V3",
]


AUDIT_EXAMPLE = [
    "Qwen/Qwen2.5-7B-Instruct",
    "meta-llama/Llama-3.1-8B",
    "mistralai/Mistral-7B-v0.1",
    "google/gemma-2-9b",
    "tiiuae/falcon-40b",
    "meta-llama/Llama-3.1-70B",
]
# The check example's free space is this figure, not the build machine's (which changes every run).
EXAMPLE_FREE_BYTES = 500 * 10**9
TRAINING_DEMO = ("meta-llama/Llama-3.1-8B", "--train", "full", "--seq-len", "4096", "--grad-checkpointing")
SHARDED_DEMO = (
    "meta-llama/Llama-3.1-70B", "--train", "full", "--regime", "mixed", "--seq-len", "4096", "--grad-checkpointing",
    "--gpus", "16", "--zero", "3", "--micro-batch", "2",
)  # fmt: skip


# One estimate per model serves the model, family and MoE tables: its bf16 row and its row as stored
# (an estimate of a big checkpoint costs a second or more: fetching and counting DeepSeek-V3's 92k tensors).
TABLE_ARGS = ("--format", "json", "--precision", "bf16", "--precision", "stored", "--seq-len", "8192")


def table_estimate(invoke: Invoke, repo: str) -> dict:
    return json.loads(invoke([repo, *TABLE_ARGS]))


def row_of(d: dict, precision: str) -> dict:
    (row,) = (r for r in d["rows"] if r["precision"] == precision)
    return row


def fenced(text: str, lang: str = "") -> str:
    return f"```{lang}\n{text.rstrip()}\n```\n"


def _memoised(invoke: Invoke) -> Invoke:
    seen: dict[tuple[str, ...], str] = {}

    def cached(args: list[str]) -> str:
        if tuple(args) not in seen:
            seen[tuple(args)] = invoke(args)
        return seen[tuple(args)]

    return cached


def blocks(invoke: Invoke) -> dict[str, str]:
    """Every generated block of the README, by name."""
    return {**usage_blocks(invoke), **model_blocks(invoke)}


# The blocks that tabulate the fixture models (every model's estimate, DeepSeek-V3's and Qwen3-Next's
# the longest): tests/test_docs_models.py checks them, tests/test_docs.py the others, each on a worker.
MODEL_BLOCKS = ("models", "families", "moe-models")


BARS_DEMO = ("Qwen/Qwen2.5-7B-Instruct", "--seq-len", "32768", "--gpu", "4090")


def usage_blocks(invoke: Invoke) -> dict[str, str]:
    """The examples, help texts and reference tables."""
    invoke = _memoised(invoke)
    from hubmem.errors import exit_code_table
    from hubmem.output.tables import render_rows

    out: dict[str, str] = {}
    out["demo"] = fenced(
        "$ hubmem Qwen/Qwen2.5-7B-Instruct --seq-len 32768\n"
        + invoke(["Qwen/Qwen2.5-7B-Instruct", "--seq-len", "32768"])
    )
    out["help"] = fenced("$ hubmem estimate --help\n" + invoke(["estimate", "--help"]))
    out.update(fit_blocks(invoke))
    out["exit-codes"] = render_rows(
        ["exit code", "error", "meaning"], [list(r) for r in exit_code_table()], "markdown"
    )
    out["input-limits"] = input_limits()
    from hubmem.store.db import SCHEMA

    out["db-schema"] = fenced(SCHEMA.strip() + "\n", "sql")
    shown = invoke([*BARS_DEMO, "--bars"])
    drawn = shown.split("per GPU.\n\n", 1)[1].split("\n\n", 1)[0]  # the bars, between the two tables
    out["bars"] = fenced(f"$ hubmem {' '.join(BARS_DEMO)}\n…\n{drawn}\n…\n")

    s2 = json.loads(invoke(["openai-community/gpt2-large", "--format", "json"]))
    by = {r["precision"]: r["weights"] for r in s2["rows"]}
    rows = []
    for precision, measured in S2_MEASURED_GB.items():
        est = by[precision] / 1e9
        rows.append(
            [precision, f"{measured:.2f}", f"{est:.3f}", f"{(est - measured) / measured * 100:+.1f} %"]
        )
    out["s2"] = render_rows(
        ["precision", "measured GB (S2)", "hubmem weights GB", "error"], rows, "markdown", numeric=(1, 2, 3)
    )

    out["training-demo"] = fenced(
        f"$ hubmem {' '.join(TRAINING_DEMO)}\n"
        + invoke(list(TRAINING_DEMO))
        + f"\n$ hubmem {' '.join(SHARDED_DEMO)}\n"
        + invoke(list(SHARDED_DEMO))
    )
    out["measured"] = compare_measured.table(compare_measured.comparison(invoke))
    out.update(gguf_blocks(invoke))
    return out


GGUF_DEMO = ("bartowski/Llama-3.2-3B-Instruct-GGUF", "-c", "8192", "--gpu", "4090")


def gguf_blocks(invoke: Invoke) -> dict[str, str]:
    """The README's "GGUF repos" section: the demo, the published llama.cpp figures, the reads."""
    from scripts import gguf_bench, gguf_reference

    return {
        "gguf-demo": fenced(f"$ hubmem {' '.join(GGUF_DEMO)}\n" + invoke(list(GGUF_DEMO))),
        "gguf-explain": fenced(
            "$ hubmem bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M -c 8192 -ngl 20 --explain\n"
            + invoke(["bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M", "-c", "8192", "-ngl", "20", "--explain"])
        ),
        "gguf-reference": gguf_reference.table(gguf_reference.comparison(invoke)),
        "gguf-reads": gguf_bench.table(gguf_bench.reads()),
    }


def model_blocks(invoke: Invoke) -> dict[str, str]:
    """The MODEL_BLOCKS tables."""
    from hubmem.output.tables import render_rows

    invoke = _memoised(invoke)  # the tables read the same estimates (DeepSeek-V3 costs ~1 s each time)
    out = {"models": model_table(invoke), "families": families(invoke)}
    moe_rows = []
    for repo in MOE_MODELS:
        d = table_estimate(invoke, repo)
        a, p, moe = d["architecture"], d["parameters"], d["architecture"]["moe"]
        moe_rows.append(
            [
                repo,
                f"{p['parameters']:,}",
                f"{p['active']:,}",
                f"{moe['experts_per_token']} of {moe['num_experts']}",
                f"{len(moe['moe_layers'])}/{a['num_layers']}",
                " · ".join(p["stored_by_dtype"]),
                f"{row_of(d, 'stored')['weights'] / 1024**3:,.2f}",
            ]
        )
    out["moe-models"] = render_rows(
        [
            "model",
            "parameters",
            "active per token",
            "experts",
            "MoE layers",
            "stored",
            "weights GiB as stored",
        ],
        moe_rows,
        "markdown",
        numeric=(1, 2, 6),
    )
    return out


def input_limits() -> str:
    """The config.json fields hubmem checks and what each accepts (hubmem.model.config_check), then the
    safetensors header limits (hubmem.hub.header_check)."""
    from hubmem import bounds
    from hubmem.hub import bounded, header_check
    from hubmem.model import config_check
    from hubmem.output.tables import render_rows

    rows = [list(r) for r in config_check.limits_table()]
    rows.append(
        [
            "safetensors header entries",
            "`shape`, `data_offsets`",
            f"non-negative integers of at most {header_check.MAX_INT_DIGITS} digits; at most "
            f"{header_check.MAX_TENSOR_ELEMENTS:,} elements (and each dimension) per tensor",
        ]
    )
    rows += bounds.limits_rows()
    rows.append(
        [
            "the Hub's answers",
            "every response body",
            f"at most {bounded.MAX_ANSWER_BYTES:,} bytes (decoded), or the Range asked for; whole within --timeout",
        ]
    )
    return render_rows(["checked", "fields", "accepted"], rows, "markdown")


def fit_blocks(invoke: Invoke) -> dict[str, str]:
    """The audit / fit / check examples and their --help."""
    from hubmem.hub import disk

    out = {}
    audit_args = [*AUDIT_EXAMPLE, "--gpu", "h100", "--seq-len", "8192", "--format", "markdown"]
    out["audit"] = fenced("$ hubmem audit " + " ".join(audit_args)) + "\n" + invoke(["audit", *audit_args])
    out["audit-help"] = fenced("$ hubmem audit --help\n" + invoke(["audit", "--help"]))
    fit_args = ["meta-llama/Llama-3.1-70B", "--gpu", "a100-80gb", "--num-gpus", "2", "--seq-len", "8192"]
    out["fit"] = fenced("$ hubmem " + " ".join(fit_args) + "\n…\n" + invoke(fit_args).split("\n\n")[-1])
    check_args = [
        "meta-llama/Llama-3.1-8B",
        "--gpu",
        "l4",
        "--seq-len",
        "8192",
        "--cache-dir",
        "/data/hf-cache",
    ]
    real_free = disk.free_bytes
    disk.free_bytes = lambda path: EXAMPLE_FREE_BYTES
    try:
        out["check"] = fenced(
            "$ hubmem check " + " ".join(check_args) + "\n" + invoke(["check", *check_args])
        )
    finally:
        disk.free_bytes = real_free
    out["check-help"] = fenced("$ hubmem check --help\n" + invoke(["check", "--help"]))
    out["gpus"] = fenced(
        "$ hubmem gpus --format csv | cut -d, -f1-4\n"
        + "\n".join(
            ",".join(line.split(",")[:4]) for line in invoke(["gpus", "--format", "csv"]).splitlines()
        )
    )
    return out


# Architectures whose cache is not plain K/V in every layer (issue 3): bf16, batch 1, 8,192 tokens.
FAMILY_MODELS = [
    "deepseek-ai/DeepSeek-V3",
    "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "state-spaces/mamba-130m-hf",
    "openai/whisper-small",
    "google/flan-t5-base",
    "EbanLee/kobart-summary-v3",
]


def family(d: dict) -> str:
    """'llama', 'deepseek_v3 · MoE 8/256 · MLA', 'whisper · encoder-decoder', ... from the JSON estimate."""
    a = d["architecture"]
    parts = [a["model_type"]]
    if a.get("moe"):
        parts.append(f"MoE {a['moe']['experts_per_token']}/{a['moe']['num_experts']}")
    if a.get("mla"):
        parts.append("MLA")
    if a.get("ssm"):
        parts.append(
            f"{a['ssm']['kind']} state" + (" + attention" if d["kv_bytes_per_token"]["bf16"] else "")
        )
    if a.get("encoder"):
        parts.append("encoder-decoder")
    parts += list(a.get("towers") or ())
    return " · ".join(parts)


def model_table(invoke: Invoke) -> str:
    """Every fixture model the fake Hub serves: family, exact parameters (total / active per token),
    KV bytes per token and state per sequence at the default KV dtype (bf16 here), bf16 weights."""
    from hubmem.output.tables import render_rows

    repos = sorted(
        (repo_id_from_dirname(d.name) for d in (ROOT / "fixtures" / "repos").iterdir() if d.is_dir()),
        key=str.lower,
    )
    rows = []
    for repo in (r for r in repos if r != "test/tiny"):
        d = table_estimate(invoke, repo)
        p, bf16 = d["parameters"], row_of(d, "bf16")
        rows.append(
            [
                repo,
                family(d),
                f"{p['parameters']:,}",
                f"{p['active']:,}" if p.get("active") is not None else "= total",
                d["architecture"]["attention_pattern"],
                f"{d['kv_bytes_per_token']['bf16']:,}",
                f"{d['state_bytes_per_sequence']['bf16']:,}"
                if d["state_bytes_per_sequence"]["bf16"]
                else "-",
                f"{bf16['weights'] / 1024**3:,.2f}",
            ]
        )
    return render_rows(
        [
            "model",
            "family",
            "parameters",
            "active per token",
            "attention",
            "KV B/token",
            "state B/seq",
            "weights bf16 GiB",
        ],
        rows,
        "markdown",
        numeric=(2, 3, 5, 6, 7),
    )


def families(invoke: Invoke) -> str:
    from hubmem.output.tables import render_rows

    rows = []
    for repo in FAMILY_MODELS:
        d = table_estimate(invoke, repo)
        bf16 = row_of(d, "bf16")
        terms = {t["name"]: t["bytes"] for t in bf16["terms"]}
        cross = terms.get("cross_kv")
        rows.append(
            [
                repo,
                d["architecture"]["attention_pattern"],
                f"{d['kv_bytes_per_token']['bf16']:,}",
                f"{d['state_bytes_per_sequence']['bf16']:,}",
                f"{cross:,} ({d['settings']['encoder_len']:,} tokens)" if cross is not None else "-",
                f"{bf16['kv_cache'] / 1024**3:,.3f}",
            ]
        )
    return render_rows(
        ["model", "layers", "KV B/token", "state B/sequence", "cross-attention KV B", "KV + state GiB"],
        rows,
        "markdown",
        numeric=(2, 3, 5),
    )


def current_blocks(readme: str) -> dict[str, str]:
    """The README's generated blocks as they stand, by name."""
    return {m.group("name"): m.group("body") for m in BLOCK_RE.finditer(readme)}


def render(readme: str, generated: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        return m.group(1) + generated[m.group("name")] + m.group(4)

    return BLOCK_RE.sub(sub, readme)


def main() -> int:
    def rendered(invoke: Invoke) -> str:
        from scripts import serve_docs

        return serve_docs.render(render(README.read_text(), blocks(invoke)), serve_docs.blocks(invoke))

    text = compare_measured.with_fake_hub(rendered)
    if "--write" in sys.argv:
        README.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
