"""--explain's printed formulas evaluate to the bytes shown beside them."""

from __future__ import annotations

import re

import pytest

from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture
from hubmem.model.tensors import count_tensors

from . import helpers


def attention_formula(formula: str) -> str:
    """'(2·b·s·h + 2·b·s·a·d) × 2 + b·a·s²·(2 + 4)' out of the activations term's formula."""
    return re.search(r"attention = (.*?) \[attn=", formula).group(1)


def evaluate(expression: str, values: dict[str, int]) -> int:
    """The printed expression with its symbols replaced by the values (· and × are products, s² a square)."""
    text = expression.replace("·", "*").replace("×", "*").replace("²", "**2")
    text = re.sub(r"\b(d_qk|d_v|b|s|h|a|d|e)\b", lambda m: str(values[m.group(1)]), text)
    assert re.fullmatch(r"[0-9+*() ]+", text), text
    return eval(text)  # digits, +, *, parentheses only (checked above)


def attention_row(repo: str, attn: str, b: int, s: int) -> tuple[memory.InferenceRow, object]:
    arch = parse_architecture(helpers.config(repo))
    counts = count_tensors(helpers.headers(repo), helpers.config(repo))
    settings = memory.InferenceSettings(seq_len=s, batch=b, attn=attn)
    return memory.inference_row(arch, counts, "bf16", settings), arch


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_llama_attention_formula_evaluates_to_its_value(attn):
    """Llama-3.2-1B, bf16 (e = 2), b 2, s 512: h 2048, a 32, d 64.
    (2·2·512·2048 + 2·2·512·32·64) × 2 = (4,194,304 + 4,194,304) × 2 = 16,777,216; eager adds the e-byte scores
    and their fp32 softmax outside the × e: 2·32·512²·(2 + 4) = 100,663,296, 117,440,512 in all."""
    row, arch = attention_row("meta-llama/Llama-3.2-1B", attn, 2, 512)
    act = memory.activation_bytes(arch, batch=2, seq_len=512, e=2, attn=attn)
    assert act.attention_phase == (117_440_512 if attn == "eager" else 16_777_216)
    (term,) = [t for t in row.terms if t.name == "activations"]
    expression = attention_formula(term.formula)
    assert (
        evaluate(expression, {"b": 2, "s": 512, "h": 2048, "a": 32, "d": 64, "e": 2}) == act.attention_phase
    )
    assert f"attention {act.attention_phase:,}" in term.formula


def test_mla_eager_attention_formula_evaluates_to_its_value():
    """DeepSeek-V3, bf16, b 1, s 256: h 7168, a 128, d_qk = 128 + 64 = 192, d_v 128.
    (2·1·256·7168 + 1·256·128·(2·192 + 2·128)) × 2 = (3,670,016 + 20,971,520) × 2 = 49,283,072;
    + 1·128·256²·(2 + 4) = 50,331,648: 99,614,720."""
    row, arch = attention_row("deepseek-ai/DeepSeek-V3", "eager", 1, 256)
    act = memory.activation_bytes(arch, batch=1, seq_len=256, e=2, attn="eager")
    assert act.attention_phase == 99_614_720
    (term,) = [t for t in row.terms if t.name == "activations"]
    values = {"b": 1, "s": 256, "h": 7168, "a": 128, "d_qk": 192, "d_v": 128, "e": 2}
    assert evaluate(attention_formula(term.formula), values) == 99_614_720
