"""The README's serve blocks (`<!-- generated-serve:NAME -->`): the `hubmem serve` examples and the
table of hubmem against published start-up logs. `python -m scripts.docs --write` rewrites them with the
other blocks; tests/test_serve_docs.py fails when one is stale."""

from __future__ import annotations

import re
from collections.abc import Callable

from scripts import compare_serve

Invoke = Callable[[list[str]], str]
BLOCK_RE = re.compile(
    r"(<!-- generated-serve:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end-serve:(?P=name) -->)", re.S
)
EXAMPLES = (
    ("meta-llama/Llama-3.1-8B", "--gpu", "4090", "--max-model-len", "32768"),
    ("Qwen/Qwen3-30B-A3B", "--gpu", "h200", "--num-gpus", "8"),
    ("deepseek-ai/DeepSeek-V3", "--gpu", "h200", "--num-gpus", "8"),
    ("meta-llama/Llama-3.1-8B", "--gpu", "4090"),
    ("deepseek-ai/DeepSeek-V3", "--engine", "sglang", "--gpu", "h200", "--num-gpus", "8"),
)


AUDIT = (
    "meta-llama/Llama-3.1-8B",
    "Qwen/Qwen3-8B",
    "mistralai/Mistral-7B-v0.1",
    "Qwen/Qwen3-30B-A3B",
    "meta-llama/Llama-3.1-70B",
)


def run(args: list[str]) -> str:
    """The CLI's stdout and its exit code when not 0 (a refusal is an example too)."""
    from click.testing import CliRunner

    from hubmem.cli import main

    result = CliRunner().invoke(main, args, terminal_width=120)
    assert result.exit_code in (0, 40), result.stderr
    return result.stdout + (f"(exit {result.exit_code})\n" if result.exit_code else "")


def blocks(invoke: Invoke) -> dict[str, str]:
    """`invoke` (the other blocks' CLI runner, pointed at the fake Hub) is not used: examples may refuse."""
    demo = "".join(f"$ hubmem serve {' '.join(args)}\n" + run(["serve", *args]) + "\n" for args in EXAMPLES)
    audit = ["audit", *AUDIT, "--engine", "vllm", "--gpu", "h100", "--max-model-len", "32768"]
    demo += f"$ hubmem {' '.join(audit)}\n" + run(audit)
    return {
        "serve-demo": "```\n" + demo.rstrip("\n") + "\n```\n",
        "serve-logs": compare_serve.table(compare_serve.comparison()),
    }


def current(readme: str) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in BLOCK_RE.finditer(readme)}


def render(readme: str, generated: dict[str, str]) -> str:
    return BLOCK_RE.sub(lambda m: m.group(1) + generated[m.group("name")] + m.group(4), readme)
