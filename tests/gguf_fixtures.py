"""GGUF fixture repos, written with the `gguf` package's own GGUFWriter (llama.cpp's Python package):
the real header layout (magic, version, key/value metadata, tensor infos, alignment) of real
architectures, with tensor data *virtual* — the fake Hub serves the header region and reports the
full file size, zeros past it.

Derived, not copied: each model's keys and tensor shapes follow llama.cpp's converter
(convert_hf_to_gguf.py) for the model's published config.json (dimensions quoted below), and
the GGML type of each tensor in a quant file follows llama.cpp's quantizer (src/llama-quant.cpp
`llama_tensor_get_type`, as stored): a Q4_K_M / Q5_K_M file bumps `attn_v` and `ffn_down` to Q6_K on
the layers `use_more_bits(i, n)` picks (i < n/8, i >= 7n/8, or (i - n/8) % 3 == 2), the output
matrix (the token embedding when tied) is Q6_K below Q8_0, norms and 1-D tensors stay F32. Other
quant names reuse the base type of their name with the same output rule (a simplification, said so
in `QUANT_RULES`). The tokenizer is synthetic (`tokens` strings of ~7 bytes, `merges` of ~10: the
average lengths of Llama 3's) unless a fixture asks for a short one; `{arch}.vocab_size` is the real
vocabulary, as llama.cpp's converter writes it.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterable
from typing import Any

QUANT_RULES = {
    # quant name -> (base type, output type, bump attn_v / ffn_down with use_more_bits)
    "F16": ("F16", "F16", False), "BF16": ("BF16", "BF16", False), "Q8_0": ("Q8_0", "Q8_0", False),
    "Q6_K": ("Q6_K", "Q6_K", False), "Q5_K_M": ("Q5_K", "Q6_K", True), "Q5_K_S": ("Q5_K", "Q6_K", False),
    "Q4_K_M": ("Q4_K", "Q6_K", True), "Q4_K_S": ("Q4_K", "Q6_K", False), "Q4_0": ("Q4_0", "Q6_K", False),
    "Q4_1": ("Q4_1", "Q6_K", False), "Q5_0": ("Q5_0", "Q6_K", False), "Q5_1": ("Q5_1", "Q6_K", False),
    "Q3_K_L": ("Q3_K", "Q6_K", True), "Q3_K_M": ("Q3_K", "Q6_K", True), "Q3_K_S": ("Q3_K", "Q6_K", False),
    "Q2_K": ("Q2_K", "Q6_K", False), "IQ4_XS": ("IQ4_XS", "Q6_K", False), "IQ4_NL": ("IQ4_NL", "Q6_K", False),
    "IQ3_M": ("IQ3_S", "Q6_K", False), "IQ2_M": ("IQ2_S", "Q6_K", False), "Q6_K_L": ("Q6_K", "Q8_0", False),
}  # fmt: skip


def use_more_bits(i: int, n: int) -> bool:
    """llama.cpp src/llama-quant.cpp `use_more_bits`."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _type_for(
    quant: str, name: str, shape: tuple[int, ...], layer: int | None, n_layer: int, tied: bool
) -> str:
    base, out, bump = QUANT_RULES[quant]
    if (
        len(shape) == 1
        or name.endswith((".bias", "_norm.weight", "ffn_gate_inp.weight"))
        or "norm" in name.split(".")[-2]
    ):
        return "F32"
    if name in ("output.weight",) or (tied and name == "token_embd.weight"):
        return out
    if name == "token_embd.weight":
        return (
            base
            if base in ("F16", "BF16", "Q8_0")
            else "Q4_K"
            if base.startswith(("Q3", "Q2", "IQ"))
            else base
        )
    if (
        bump
        and layer is not None
        and (name.endswith("attn_v.weight") or name.endswith("ffn_down.weight"))
        and use_more_bits(layer, n_layer)
    ):
        return "Q6_K"
    return base


def _tokenizer(n_tokens: int, n_merges: int) -> tuple[list[str], list[str]]:
    tokens = [f"t{i:05d}" for i in range(n_tokens)]  # 6 bytes: ~ Llama 3's average token
    merges = [f"m{i:04d} x{i % 97:03d}" for i in range(n_merges)]  # 10 bytes
    return tokens, merges


def _write(
    arch: str, kv: list[tuple[str, Any, str]], tensors: list[tuple[str, tuple[int, ...], str]]
) -> bytes:
    """The bytes gguf.GGUFWriter writes for these keys and tensor infos (header, KV data, tensor infos)."""
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter

    w = GGUFWriter(path=None, arch=arch)
    for key, value, kind in kv:
        {
            "u32": w.add_uint32, "i32": w.add_int32, "f32": w.add_float32, "str": w.add_string, "bool": w.add_bool,
            "arr": w.add_array, "u64": w.add_uint64,
        }[kind](key, value)  # fmt: skip
    for name, shape, type_name in tensors:
        t = GGMLQuantizationType[type_name]
        block, size = GGML_QUANT_SIZES[t]
        n = 1
        for d in shape:
            n *= d
        nbytes = n // block * size
        np_shape = tuple(reversed(shape))
        if t in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            w.add_tensor_info(
                name, np_shape, np.dtype(np.float32 if t == GGMLQuantizationType.F32 else np.float16), nbytes
            )
        else:
            byte_shape = (*np_shape[:-1], np_shape[-1] // block * size)
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=t)
    fd, path = tempfile.mkstemp(suffix=".gguf")
    os.close(fd)
    try:
        w.write_header_to_file(path=path)
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        w.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


@functools.cache
def _tokenizer_kv(arch: str, n_tokens: int, n_merges: int) -> tuple[int, bytes]:
    """(key count, KV bytes) of the tokenizer keys, written once by gguf.GGUFWriter and spliced into each
    quant file (llama-quantize copies them byte for byte too): the writer's output less its 24-byte
    header and the general.architecture entry it always writes first."""
    tokens, merges = _tokenizer(n_tokens, n_merges)
    kv = [("tokenizer.ggml.model", "gpt2", "str"), ("tokenizer.ggml.tokens", tokens, "arr"),
          ("tokenizer.ggml.token_type", [1] * n_tokens, "arr"), ("tokenizer.ggml.merges", merges, "arr")]  # fmt: skip
    raw = _write(arch, kv, [])
    arch_entry = 8 + len("general.architecture") + 4 + 8 + len(arch.encode())
    return len(kv), raw[24 + arch_entry :]


def header_bytes(
    kv: list[tuple[str, Any, str]],
    tensors: list[tuple[str, tuple[int, ...], str]],
    tokenizer: tuple[int, int] | None,
) -> tuple[bytes, int]:
    """(header bytes padded to the alignment, data bytes) of a GGUF file written by gguf.GGUFWriter.
    `kv`: (key, value, kind) with kind u32/f32/str/bool/arr; `tensors`: (name, ggml shape, type);
    `tokenizer`: (tokens, merges) of a synthetic tokenizer placed after the other keys."""
    import struct

    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    arch = next(v for k, v, _ in kv if k == "general.architecture")
    raw = _write(arch, [e for e in kv if e[0] != "general.architecture"], tensors)
    if tokenizer is not None:  # splice: [header][KV][tokenizer KV][tensor infos]
        n_tok, tok = _tokenizer_kv(arch, *tokenizer)
        empty = _write(arch, [e for e in kv if e[0] != "general.architecture"], [])
        magic_version, n_t, n_kv = raw[:8], *struct.unpack_from("<QQ", raw, 8)
        raw = magic_version + struct.pack("<QQ", n_t, n_kv + n_tok) + empty[24:] + tok + raw[len(empty) :]
    data = 0
    for _, shape, type_name in tensors:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
        n = 1
        for d in shape:
            n *= d
        data += -(-(n // block * size) // 32) * 32
    return raw + bytes(-len(raw) % 32), data


# --- architectures (dimensions from each model's config.json on the Hub) ---------------------------


def llama32_3b() -> dict[str, Any]:
    """meta-llama/Llama-3.2-3B-Instruct config.json: hidden_size 3072, intermediate_size 8192, 28 layers,
    24 heads, 8 KV heads, head_dim 128, vocab 128256, max_position_embeddings 131072, tied embeddings;
    llama.cpp adds rope_freqs.weight (64 F32, the llama3 RoPE scaling factors)."""
    L, h, i, kvw = 28, 3072, 8192, 1024
    tensors: list[tuple[str, tuple[int, ...], int | None]] = [
        ("token_embd.weight", (h, 128256), None),
        ("rope_freqs.weight", (64,), None),
    ]
    for il in range(L):
        b = f"blk.{il}."
        tensors += [(b + "attn_norm.weight", (h,), il), (b + "attn_q.weight", (h, h), il), (b + "attn_k.weight", (h, kvw), il),
                    (b + "attn_v.weight", (h, kvw), il), (b + "attn_output.weight", (h, h), il), (b + "ffn_norm.weight", (h,), il),
                    (b + "ffn_gate.weight", (h, i), il), (b + "ffn_up.weight", (h, i), il), (b + "ffn_down.weight", (i, h), il)]  # fmt: skip
    tensors.append(("output_norm.weight", (h,), None))
    kv = [("general.architecture", "llama", "str"), ("general.name", "Llama 3.2 3B Instruct", "str"),
          ("llama.block_count", L, "u32"), ("llama.context_length", 131072, "u32"), ("llama.embedding_length", h, "u32"),
          ("llama.feed_forward_length", i, "u32"), ("llama.attention.head_count", 24, "u32"),
          ("llama.attention.head_count_kv", 8, "u32"), ("llama.rope.freq_base", 500000.0, "f32"),
          ("llama.attention.layer_norm_rms_epsilon", 1e-5, "f32"), ("llama.attention.key_length", 128, "u32"),
          ("llama.attention.value_length", 128, "u32"), ("llama.vocab_size", 128256, "u32"),
          ("llama.rope.dimension_count", 128, "u32")]  # fmt: skip
    return {"kv": kv, "tensors": tensors, "n_layer": L, "tied": True}


def qwen3_30b_a3b() -> dict[str, Any]:
    """Qwen/Qwen3-30B-A3B config.json: hidden 2048, 48 layers, 32 heads, 4 KV heads, head_dim 128,
    128 experts, 8 per token, moe_intermediate_size 768, vocab 151936, max_position_embeddings 40960,
    untied; q_norm / k_norm per head."""
    L, h = 48, 2048
    tensors: list[tuple[str, tuple[int, ...], int | None]] = [("token_embd.weight", (h, 151936), None)]
    for il in range(L):
        b = f"blk.{il}."
        tensors += [(b + "attn_norm.weight", (h,), il), (b + "attn_q.weight", (h, 4096), il), (b + "attn_k.weight", (h, 512), il),
                    (b + "attn_v.weight", (h, 512), il), (b + "attn_output.weight", (4096, h), il),
                    (b + "attn_q_norm.weight", (128,), il), (b + "attn_k_norm.weight", (128,), il), (b + "ffn_norm.weight", (h,), il),
                    (b + "ffn_gate_inp.weight", (h, 128), il), (b + "ffn_gate_exps.weight", (h, 768, 128), il),
                    (b + "ffn_up_exps.weight", (h, 768, 128), il), (b + "ffn_down_exps.weight", (768, h, 128), il)]  # fmt: skip
    tensors += [("output_norm.weight", (h,), None), ("output.weight", (h, 151936), None)]
    kv = [("general.architecture", "qwen3moe", "str"), ("qwen3moe.block_count", L, "u32"), ("qwen3moe.context_length", 40960, "u32"),
          ("qwen3moe.embedding_length", h, "u32"), ("qwen3moe.feed_forward_length", 6144, "u32"),
          ("qwen3moe.attention.head_count", 32, "u32"), ("qwen3moe.attention.head_count_kv", 4, "u32"),
          ("qwen3moe.attention.key_length", 128, "u32"), ("qwen3moe.attention.value_length", 128, "u32"),
          ("qwen3moe.expert_count", 128, "u32"), ("qwen3moe.expert_used_count", 8, "u32"),
          ("qwen3moe.expert_feed_forward_length", 768, "u32"), ("qwen3moe.vocab_size", 151936, "u32")]  # fmt: skip
    return {"kv": kv, "tensors": tensors, "n_layer": L, "tied": False}


def qwen3_coder_30b_a3b() -> dict[str, Any]:
    """unsloth Qwen3-Coder-30B-A3B-Instruct-Q8_0.gguf, from the keys and tensor counts its llama.cpp b7342
    log prints (fixtures/reference/llamacpp_logs.json, code-index:28957180799): qwen3moe, 48 layers,
    embedding 2048, feed_forward_length 5472, 32 heads, 4 KV heads, key/value length 128, 128 experts,
    8 used, expert_feed_forward_length 768, no shared expert, context 262144, 151936 tokens, 579 tensors
    (f32 241, q8_0 338): Qwen3-30B-A3B's tensor shapes, with the Coder's keys."""
    spec = qwen3_30b_a3b()
    new = {"qwen3moe.context_length": 262144, "qwen3moe.feed_forward_length": 5472}
    kv = [(k, new.get(k, v), kind) for k, v, kind in spec["kv"]]
    kv.append(("qwen3moe.expert_shared_feed_forward_length", 0, "u32"))
    return {**spec, "kv": kv}


def qwen3_1_7b() -> dict[str, Any]:
    """A Qwen3-1.7B Q4_K_M file, from the keys and tensor counts its llama.cpp b7343 log prints
    (fixtures/reference/llamacpp_logs.json, code-index:56938398183): qwen3, 28 layers, embedding 2048,
    feed_forward_length 6144, 16 heads, 8 KV heads, key/value length 128, context 40960, 151936 tokens,
    311 tensors (f32 113: four norms per layer + output_norm; q4_K 169 + q6_K 29 = 7 matrices per layer
    + token_embd + an output.weight, which this file has although Qwen/Qwen3-1.7B's config ties them)."""
    L, h, i = 28, 2048, 6144
    tensors: list[tuple[str, tuple[int, ...], int | None]] = [("token_embd.weight", (h, 151936), None)]
    for il in range(L):
        b = f"blk.{il}."
        tensors += [(b + "attn_norm.weight", (h,), il), (b + "attn_q.weight", (h, 2048), il), (b + "attn_k.weight", (h, 1024), il),
                    (b + "attn_v.weight", (h, 1024), il), (b + "attn_output.weight", (2048, h), il),
                    (b + "attn_q_norm.weight", (128,), il), (b + "attn_k_norm.weight", (128,), il), (b + "ffn_norm.weight", (h,), il),
                    (b + "ffn_gate.weight", (h, i), il), (b + "ffn_up.weight", (h, i), il), (b + "ffn_down.weight", (i, h), il)]  # fmt: skip
    tensors += [("output_norm.weight", (h,), None), ("output.weight", (h, 151936), None)]
    kv = [("general.architecture", "qwen3", "str"), ("qwen3.block_count", L, "u32"), ("qwen3.context_length", 40960, "u32"),
          ("qwen3.embedding_length", h, "u32"), ("qwen3.feed_forward_length", i, "u32"),
          ("qwen3.attention.head_count", 16, "u32"), ("qwen3.attention.head_count_kv", 8, "u32"),
          ("qwen3.attention.key_length", 128, "u32"), ("qwen3.attention.value_length", 128, "u32"),
          ("qwen3.rope.freq_base", 1000000.0, "f32"), ("qwen3.attention.layer_norm_rms_epsilon", 1e-6, "f32")]  # fmt: skip
    return {"kv": kv, "tensors": tensors, "n_layer": L, "tied": False}


def gemma3_4b() -> dict[str, Any]:
    """google/gemma-3-4b-it text_config: hidden 2560, intermediate 10240, 34 layers, 8 heads, 4 KV heads,
    head_dim 256, sliding_window 1024 (5 local : 1 global, llama.cpp set_swa_pattern(6)), vocab 262208,
    context 131072, tied; four norms per layer plus q/k norms."""
    L, h, i = 34, 2560, 10240
    tensors: list[tuple[str, tuple[int, ...], int | None]] = [("token_embd.weight", (h, 262208), None)]
    for il in range(L):
        b = f"blk.{il}."
        tensors += [(b + "attn_norm.weight", (h,), il), (b + "attn_q.weight", (h, 2048), il), (b + "attn_k.weight", (h, 1024), il),
                    (b + "attn_v.weight", (h, 1024), il), (b + "attn_output.weight", (2048, h), il),
                    (b + "attn_q_norm.weight", (256,), il), (b + "attn_k_norm.weight", (256,), il),
                    (b + "post_attention_norm.weight", (h,), il), (b + "ffn_norm.weight", (h,), il),
                    (b + "ffn_gate.weight", (h, i), il), (b + "ffn_up.weight", (h, i), il), (b + "ffn_down.weight", (i, h), il),
                    (b + "post_ffw_norm.weight", (h,), il)]  # fmt: skip
    tensors.append(("output_norm.weight", (h,), None))
    kv = [("general.architecture", "gemma3", "str"), ("gemma3.block_count", L, "u32"), ("gemma3.context_length", 131072, "u32"),
          ("gemma3.embedding_length", h, "u32"), ("gemma3.feed_forward_length", i, "u32"),
          ("gemma3.attention.head_count", 8, "u32"), ("gemma3.attention.head_count_kv", 4, "u32"),
          ("gemma3.attention.key_length", 256, "u32"), ("gemma3.attention.value_length", 256, "u32"),
          ("gemma3.attention.sliding_window", 1024, "u32"), ("gemma3.vocab_size", 262208, "u32")]  # fmt: skip
    return {"kv": kv, "tensors": tensors, "n_layer": L, "tied": True}


def deepseek_v2_lite() -> dict[str, Any]:
    """deepseek-ai/DeepSeek-V2-Lite-Chat config.json: hidden 2048, 27 layers (first dense, intermediate
    10944), 16 heads, kv_lora_rank 512, no q_lora, qk_nope 128 + qk_rope 64, v_head_dim 128, 64 routed
    experts (6 per token, moe_intermediate_size 1408) + 2 shared, vocab 102400, context 163840.
    Current llama.cpp conversions (MLA): attn_k_b / attn_v_b split from kv_b_proj, key_length 576 =
    kv_lora_rank + rope with one KV head, key_length_mla 192 / value_length_mla 128."""
    L, h = 27, 2048
    tensors: list[tuple[str, tuple[int, ...], int | None]] = [("token_embd.weight", (h, 102400), None)]
    for il in range(L):
        b = f"blk.{il}."
        tensors += [(b + "attn_norm.weight", (h,), il), (b + "attn_q.weight", (h, 16 * 192), il),
                    (b + "attn_kv_a_mqa.weight", (h, 576), il), (b + "attn_kv_a_norm.weight", (512,), il),
                    (b + "attn_k_b.weight", (128, 512, 16), il), (b + "attn_v_b.weight", (512, 128, 16), il),
                    (b + "attn_output.weight", (16 * 128, h), il), (b + "ffn_norm.weight", (h,), il)]  # fmt: skip
        if il == 0:
            tensors += [
                (b + "ffn_gate.weight", (h, 10944), il),
                (b + "ffn_up.weight", (h, 10944), il),
                (b + "ffn_down.weight", (10944, h), il),
            ]
        else:
            tensors += [(b + "ffn_gate_inp.weight", (h, 64), il), (b + "ffn_gate_exps.weight", (h, 1408, 64), il),
                        (b + "ffn_up_exps.weight", (h, 1408, 64), il), (b + "ffn_down_exps.weight", (1408, h, 64), il),
                        (b + "ffn_gate_shexp.weight", (h, 2816), il), (b + "ffn_up_shexp.weight", (h, 2816), il),
                        (b + "ffn_down_shexp.weight", (2816, h), il)]  # fmt: skip
    tensors += [("output_norm.weight", (h,), None), ("output.weight", (h, 102400), None)]
    a = "deepseek2"
    kv = [("general.architecture", a, "str"), (f"{a}.block_count", L, "u32"), (f"{a}.context_length", 163840, "u32"),
          (f"{a}.embedding_length", h, "u32"), (f"{a}.feed_forward_length", 10944, "u32"),
          (f"{a}.attention.head_count", 16, "u32"), (f"{a}.attention.head_count_kv", 1, "u32"),
          (f"{a}.attention.key_length", 576, "u32"), (f"{a}.attention.value_length", 512, "u32"),
          (f"{a}.attention.key_length_mla", 192, "u32"), (f"{a}.attention.value_length_mla", 128, "u32"),
          (f"{a}.attention.kv_lora_rank", 512, "u32"), (f"{a}.rope.dimension_count", 64, "u32"),
          (f"{a}.leading_dense_block_count", 1, "u32"), (f"{a}.expert_count", 64, "u32"), (f"{a}.expert_used_count", 6, "u32"),
          (f"{a}.expert_shared_count", 2, "u32"), (f"{a}.expert_feed_forward_length", 1408, "u32"),
          (f"{a}.vocab_size", 102400, "u32")]  # fmt: skip
    return {"kv": kv, "tensors": tensors, "n_layer": L, "tied": False}


def mamba_130m() -> dict[str, Any]:
    """state-spaces/mamba-130m-hf config.json: hidden 768, 24 layers, intermediate 1536, state_size 16,
    conv_kernel 4, time_step_rank 48, vocab 50280, tied; no attention (head counts 0, as llama.cpp's
    converter writes for Mamba)."""
    L, h, d = 24, 768, 1536
    tensors: list[tuple[str, tuple[int, ...], int | None]] = [("token_embd.weight", (h, 50280), None)]
    for il in range(L):
        b = f"blk.{il}."
        tensors += [(b + "attn_norm.weight", (h,), il), (b + "ssm_in.weight", (h, 2 * d), il), (b + "ssm_conv1d.weight", (4, d), il),
                    (b + "ssm_conv1d.bias", (d,), il), (b + "ssm_x.weight", (d, 48 + 32), il), (b + "ssm_dt.weight", (48, d), il),
                    (b + "ssm_dt.bias", (d,), il), (b + "ssm_a", (16, d), il), (b + "ssm_d", (d,), il), (b + "ssm_out.weight", (d, h), il)]  # fmt: skip
    tensors.append(("output_norm.weight", (h,), None))
    kv = [("general.architecture", "mamba", "str"), ("mamba.block_count", L, "u32"), ("mamba.context_length", 1048576, "u32"),
          ("mamba.embedding_length", h, "u32"), ("mamba.feed_forward_length", 0, "u32"), ("mamba.attention.head_count", 0, "u32"),
          ("mamba.attention.head_count_kv", 0, "u32"), ("mamba.ssm.conv_kernel", 4, "u32"), ("mamba.ssm.inner_size", d, "u32"),
          ("mamba.ssm.state_size", 16, "u32"), ("mamba.ssm.time_step_rank", 48, "u32"), ("mamba.vocab_size", 50280, "u32")]  # fmt: skip
    return {"kv": kv, "tensors": tensors, "n_layer": L, "tied": True}


def nemotron_h_56b() -> dict[str, Any]:
    """nvidia/Nemotron-H-56B-Base-8K, from its config.json (fixtures/configs/nvidia__Nemotron-H-56B-Base-8K.json,
    verbatim): hidden 8192, 118 layers by `hybrid_override_pattern` (54 `M` Mamba-2 mixers, 10 `*` attention
    layers of 64 heads / 8 KV heads × 128, 54 `-` MLP-only layers: relu2 up/down of 32768, no gate),
    mamba_num_heads 256 × mamba_head_dim 64 = d_inner 16384, ssm_state_size 256, n_groups 8, conv_kernel
    4 (with a conv bias), vocab 131072, untied, context 8192. The GGUF keys and tensor shapes are the
    ones llama.cpp's converter writes and src/llama-model.cpp loads for LLM_ARCH_NEMOTRON_H: per-layer
    `head_count` / `head_count_kv` / `feed_forward_length` arrays (0 where a layer has no attention or
    no MLP: llama.cpp marks a layer recurrent iff n_head_kv(il) == 0 && n_ff(il) == 0); each layer an
    attn_norm; a mixer: ssm_in {n_embd, 2·d_inner + 2·n_group·d_state + n_head}, ssm_conv1d {d_conv,
    d_inner + 2·n_group·d_state} + bias, ssm_dt bias, ssm_a and ssm_d {1, n_head}, ssm_norm
    {d_inner / n_group, n_group}, ssm_out {d_inner, n_embd}."""
    import json
    from pathlib import Path

    cfg = json.loads(
        (
            Path(__file__).resolve().parent.parent
            / "fixtures"
            / "configs"
            / "nvidia__Nemotron-H-56B-Base-8K.json"
        ).read_text()
    )
    pattern = cfg["hybrid_override_pattern"]
    L, h, ff, vocab = (
        cfg["num_hidden_layers"],
        cfg["hidden_size"],
        cfg["intermediate_size"],
        cfg["vocab_size"],
    )
    heads, kv_heads, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["attention_head_dim"]
    n_ssm_head, d_state, groups, d_conv = (
        cfg["mamba_num_heads"],
        cfg["ssm_state_size"],
        cfg["n_groups"],
        cfg["conv_kernel"],
    )
    d_inner = n_ssm_head * cfg["mamba_head_dim"]
    conv_dim = d_inner + 2 * groups * d_state
    assert len(pattern) == L
    tensors: list[tuple[str, tuple[int, ...], int | None]] = [("token_embd.weight", (h, vocab), None)]
    for il, kind in enumerate(pattern):
        b = f"blk.{il}."
        tensors.append((b + "attn_norm.weight", (h,), il))
        if kind == "M":
            tensors += [(b + "ssm_in.weight", (h, 2 * d_inner + 2 * groups * d_state + n_ssm_head), il),
                        (b + "ssm_conv1d.weight", (d_conv, conv_dim), il), (b + "ssm_conv1d.bias", (conv_dim,), il),
                        (b + "ssm_dt.bias", (n_ssm_head,), il), (b + "ssm_a", (1, n_ssm_head), il),
                        (b + "ssm_d", (1, n_ssm_head), il), (b + "ssm_norm.weight", (d_inner // groups, groups), il),
                        (b + "ssm_out.weight", (d_inner, h), il)]  # fmt: skip
        elif kind == "*":
            tensors += [(b + "attn_q.weight", (h, heads * hd), il), (b + "attn_k.weight", (h, kv_heads * hd), il),
                        (b + "attn_v.weight", (h, kv_heads * hd), il), (b + "attn_output.weight", (heads * hd, h), il)]  # fmt: skip
        else:
            tensors += [(b + "ffn_up.weight", (h, ff), il), (b + "ffn_down.weight", (ff, h), il)]
    tensors += [("output_norm.weight", (h,), None), ("output.weight", (h, vocab), None)]
    a = "nemotron_h"
    kv = [("general.architecture", a, "str"), (f"{a}.block_count", L, "u32"),
          (f"{a}.context_length", cfg["max_position_embeddings"], "u32"), (f"{a}.embedding_length", h, "u32"),
          (f"{a}.feed_forward_length", [ff if k == "-" else 0 for k in pattern], "arr"),
          (f"{a}.attention.head_count", [heads if k == "*" else 0 for k in pattern], "arr"),
          (f"{a}.attention.head_count_kv", [kv_heads if k == "*" else 0 for k in pattern], "arr"),
          (f"{a}.attention.key_length", hd, "u32"), (f"{a}.attention.value_length", hd, "u32"),
          (f"{a}.ssm.conv_kernel", d_conv, "u32"), (f"{a}.ssm.inner_size", d_inner, "u32"),
          (f"{a}.ssm.state_size", d_state, "u32"), (f"{a}.ssm.time_step_rank", n_ssm_head, "u32"),
          (f"{a}.ssm.group_count", groups, "u32"), (f"{a}.vocab_size", vocab, "u32")]  # fmt: skip
    return {"kv": kv, "tensors": tensors, "n_layer": L, "tied": False}


# llama.cpp src/llama-quant.cpp: a row that is not a whole number of 256-element k-quant blocks falls
# back to a 32-block type (DeepSeek's attn_k_b rows are 128 wide)
FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "IQ4_NL", "IQ4_XS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ2_S": "IQ4_NL",
            "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}  # fmt: skip


def qwen2(
    L: int, h: int, i: int, heads: int, kv_heads: int, vocab: int, tied: bool, ctx: int = 32768
) -> dict[str, Any]:
    """A Qwen2 / Qwen2.5 model (llama.cpp arch qwen2): Llama's layout plus q, k, v biases (F32)."""
    kvw = kv_heads * (h // heads)
    tensors: list[tuple[str, tuple[int, ...], int | None]] = [("token_embd.weight", (h, vocab), None)]
    for il in range(L):
        b = f"blk.{il}."
        tensors += [(b + "attn_norm.weight", (h,), il), (b + "attn_q.weight", (h, h), il), (b + "attn_q.bias", (h,), il),
                    (b + "attn_k.weight", (h, kvw), il), (b + "attn_k.bias", (kvw,), il), (b + "attn_v.weight", (h, kvw), il),
                    (b + "attn_v.bias", (kvw,), il), (b + "attn_output.weight", (h, h), il), (b + "ffn_norm.weight", (h,), il),
                    (b + "ffn_gate.weight", (h, i), il), (b + "ffn_up.weight", (h, i), il), (b + "ffn_down.weight", (i, h), il)]  # fmt: skip
    tensors.append(("output_norm.weight", (h,), None))
    if not tied:
        tensors.append(("output.weight", (h, vocab), None))
    kv = [("general.architecture", "qwen2", "str"), ("qwen2.block_count", L, "u32"), ("qwen2.context_length", ctx, "u32"),
          ("qwen2.embedding_length", h, "u32"), ("qwen2.feed_forward_length", i, "u32"),
          ("qwen2.attention.head_count", heads, "u32"), ("qwen2.attention.head_count_kv", kv_heads, "u32"),
          ("qwen2.rope.freq_base", 1000000.0, "f32"), ("qwen2.attention.layer_norm_rms_epsilon", 1e-6, "f32")]  # fmt: skip
    return {"kv": kv, "tensors": tensors, "n_layer": L, "tied": tied, "vocab": vocab}


def qwen25_3b() -> dict[str, Any]:
    """Qwen/Qwen2.5-3B-Instruct config.json: hidden 2048, intermediate 11008, 36 layers, 16 heads,
    2 KV heads, vocab 151936, tied, max_position_embeddings 32768."""
    return qwen2(36, 2048, 11008, 16, 2, 151936, True)


def qwen25_coder_7b() -> dict[str, Any]:
    """Qwen/Qwen2.5-Coder-7B-Instruct config.json: hidden 3584, intermediate 18944, 28 layers, 28 heads,
    4 KV heads, vocab 152064, untied."""
    return qwen2(28, 3584, 18944, 28, 4, 152064, False)


def qwen25_14b() -> dict[str, Any]:
    """Qwen/Qwen2.5-14B-Instruct config.json: hidden 5120, intermediate 13824, 48 layers, 40 heads,
    8 KV heads, vocab 152064, untied."""
    return qwen2(48, 5120, 13824, 40, 8, 152064, False)


def typed_tensors(spec: dict[str, Any], quant: str) -> list[tuple[str, tuple[int, ...], str]]:
    out = []
    for name, shape, layer in spec["tensors"]:
        t = _type_for(quant, name, shape, layer, spec["n_layer"], spec["tied"])
        if t in FALLBACK and shape[0] % 256:
            t = FALLBACK[t]
        if name == "ssm_a" or name.endswith((".ssm_a", ".ssm_d", "ssm_conv1d.weight", "ssm_norm.weight")):
            t = "F32"  # llama.cpp keeps Mamba's A, D and conv kernel in F32 (too small / too sensitive to quantize)
        out.append((name, shape, t))
    return out


def quant_file(
    spec: dict[str, Any], quant: str, tokenizer: tuple[list[str], list[str]] | None
) -> tuple[bytes, int]:
    """(header bytes, full file size) of one quant file of `spec`."""
    kv = [*spec["kv"], ("general.file_type", 15 if quant == "Q4_K_M" else 7 if quant == "Q8_0" else 1, "u32"),
          ("general.quantization_version", 2, "u32")]  # fmt: skip
    head, data = header_bytes(kv, typed_tensors(spec, quant), tokenizer)
    return head, len(head) + data


def repo_files(
    spec: dict[str, Any], stem: str, quants: Iterable[str], tokenizer: tuple[int, int] = (8192, 8192)
) -> tuple[dict[str, bytes], dict[str, int]]:
    """({file: header bytes}, {file: full size}) for a repo with one file per quant: `{stem}-{quant}.gguf`."""
    files, sizes = {}, {}
    for q in quants:
        head, size = quant_file(spec, q, tokenizer)
        files[f"{stem}-{q}.gguf"] = head
        sizes[f"{stem}-{q}.gguf"] = size
    return files, sizes


LLAMA_QUANTS = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M")
BENCH_QUANTS = tuple(QUANT_RULES)[:20]


REPOS = {
    "bartowski/Llama-3.2-3B-Instruct-GGUF": (llama32_3b, "Llama-3.2-3B-Instruct", LLAMA_QUANTS),
    "unsloth/Qwen3-30B-A3B-GGUF": (qwen3_30b_a3b, "Qwen3-30B-A3B", ("Q4_K_M",)),
    "bartowski/google_gemma-3-4b-it-GGUF": (gemma3_4b, "google_gemma-3-4b-it", ("Q4_K_M", "Q8_0")),
    "bartowski/DeepSeek-V2-Lite-Chat-GGUF": (deepseek_v2_lite, "DeepSeek-V2-Lite-Chat", ("Q4_K_M",)),
    "hubmem-test/mamba-130m-GGUF": (mamba_130m, "mamba-130m", ("F16",)),
    "hubmem-test/Nemotron-H-56B-Base-8K-GGUF": (nemotron_h_56b, "Nemotron-H-56B-Base-8K", ("Q8_0",)),
    # the models of the published llama.cpp logs in fixtures/reference/llamacpp_logs.json
    "Qwen/Qwen2.5-3B-Instruct-GGUF": (qwen25_3b, "qwen2.5-3b-instruct", ("Q8_0",)),
    "bartowski/Qwen2.5-Coder-7B-Instruct-GGUF": (qwen25_coder_7b, "Qwen2.5-Coder-7B-Instruct", ("Q4_K_M",)),
    "bartowski/Qwen2.5-14B-Instruct-GGUF": (qwen25_14b, "Qwen2.5-14B-Instruct", ("Q4_K_M",)),
    # Qwen2.5-Coder-14B-Instruct has Qwen2.5-14B-Instruct's config dimensions (hidden 5120, 48 layers,
    # 40/8 heads, intermediate 13824, vocab 152064, untied): the same tensor shapes
    "bartowski/Qwen2.5-Coder-14B-Instruct-GGUF": (qwen25_14b, "Qwen2.5-Coder-14B-Instruct", ("Q3_K_S",)),
    "unsloth/Qwen3-1.7B-GGUF": (qwen3_1_7b, "Qwen3-1.7B", ("Q4_K_M",)),
    "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF": (
        qwen3_coder_30b_a3b,
        "Qwen3-Coder-30B-A3B-Instruct",
        ("Q8_0",),
    ),
    # the benchmark's listing: 20 quant files of one model, each with Llama 3's full-size tokenizer
    "hubmem-test/Llama-3.2-3B-20-quants-GGUF": (llama32_3b, "Llama-3.2-3B-Instruct", BENCH_QUANTS),
}
FULL_TOKENIZER = (
    128256,
    280147,
)  # Llama 3: tokens, merges (llama.cpp logs: arr[str,128256], arr[str,280147])
SMALL_TOKENIZER = (8192, 8192)  # more than reader.SMALL_ARRAY: still skipped by the hints


@functools.cache
def built_repo(repo_id: str, full_tokenizer: bool = False) -> tuple[dict[str, bytes], dict[str, int]]:
    """(header bytes per file, full size per file) of one fixture repo, built once per process."""
    spec, stem, quants = REPOS[repo_id]
    full = full_tokenizer or repo_id.startswith("hubmem-test/Llama-3.2-3B-20")
    return repo_files(spec(), stem, quants, FULL_TOKENIZER if full else SMALL_TOKENIZER)


def register(hub: Any, *, full_tokenizer: bool = False) -> list[str]:
    """Add every GGUF fixture repo to a FakeHub, each built when a request first names it."""
    from tests.fakehub import build_repo

    def builder(repo_id: str) -> Any:
        def build() -> Any:
            files, sizes = built_repo(repo_id, full_tokenizer)
            return build_repo(repo_id, files=files, hub={"file_sizes": sizes})

        return build

    for repo_id in REPOS:
        hub.add_lazy(repo_id, builder(repo_id))
    return list(REPOS)


def sparse_file(path: str | os.PathLike, kv: list, tensors: list) -> str:
    """A .gguf file of these keys and typed tensors whose data is a hole (truncate): the header is real,
    the gigabytes of weights cost no disk."""
    head, data = header_bytes(kv, tensors, None)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + data)
    return str(path)


def with_llama_keys(spec: dict, **values: tuple) -> list:
    """`spec`'s keys with `llama.<name>` (`__` for a dot) replaced or added as (value, kind)."""
    keys = {f"llama.{k.replace('__', '.')}": v for k, v in values.items()}
    kv = [(k, *keys.pop(k)) if k in keys else (k, v, kind) for k, v, kind in spec["kv"]]
    return kv + [(k, *v) for k, v in keys.items()]
