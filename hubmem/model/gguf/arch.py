"""GGUF keys and tensor infos -> the `Architecture` the safetensors path uses (so KV, SSM state and
MoE logic is shared) and exact counts: parameters and bytes per GGML type, per layer.

Key names are the gguf package's (`gguf.constants.Keys`: `{arch}.block_count`, `.embedding_length`,
`.feed_forward_length`, `.attention.head_count[_kv]`, `.attention.key_length` / `value_length`,
`.context_length`, `.expert_count` / `expert_used_count`, `.attention.sliding_window`, `.ssm.*`,
`.attention.kv_lora_rank`); their meaning and defaults are llama.cpp's `llama_model::load_hparams`
(src/llama-model.cpp): key_length defaults to embedding_length / head_count, head_count_kv to
head_count, and per-layer values may be arrays (`get_key_or_arr`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hubmem.errors import MalformedGGUFError
from hubmem.model.architecture import Architecture
from hubmem.model.config_check import MAX_DIMENSION, MAX_EXPERTS, MAX_LAYERS
from hubmem.model.gguf import reader
from hubmem.model.moe import MoE
from hubmem.model.variants import MLA, MLP_ONLY, SSM

# GGUF general.architecture -> the transformers model_type of the same family (for the summary and
# the shared per-family rules; an unknown architecture keeps its GGUF name)
MODEL_TYPES = {
    "llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen3moe": "qwen3_moe", "qwen2moe": "qwen2_moe",
    "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3_text", "phi3": "phi3", "mistral3": "mistral3",
    "deepseek2": "deepseek_v3", "mamba": "mamba", "mamba2": "mamba2", "jamba": "jamba",
    "falcon-h1": "falcon_h1", "granitehybrid": "granitemoehybrid", "nemotron_h": "nemotron_h", "gpt-oss": "gpt_oss", "olmo2": "olmo2",
}  # fmt: skip
# llama.cpp src/llama-model.cpp load_hparams: gemma3 `hparams.set_swa_pattern(6)` (5 sliding, 1 full),
# gemma2 `set_swa_pattern(2)`; files may instead carry `attention.sliding_window_pattern`
SWA_PATTERN_DEFAULTS = {"gemma3": 6, "gemma2": 2}
BLOCK_RE = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class LayerKV:
    """What one layer keeps per token in llama.cpp's cache (llama_hparams::n_embd_k_gqa / n_embd_v_gqa):
    K and V row widths in elements (V 0 for MLA: the latent is cached once, as K), sliding or not."""

    k_width: int
    v_width: int
    sliding: bool


@dataclass(frozen=True)
class GGUFModel:
    quant: str
    paths: tuple[str, ...]
    file_bytes: int | None  # sum of the files' sizes (None when the listing has no sizes)
    gguf_arch: str  # general.architecture
    name: str | None  # general.name
    architecture: Architecture
    parameters: int  # Σ elements of every tensor (exact)
    params_by_type: dict[str, int]  # GGML type name -> elements
    bytes_by_type: dict[str, int]  # GGML type name -> bytes (ne / block × type size)
    tensors_by_type: dict[str, int]  # GGML type name -> tensors (llama.cpp's "type q4_K: 168 tensors")
    tensor_bytes: int
    layer_bytes: tuple[int, ...]  # bytes of blk.{i}.* per layer
    output_bytes: int  # output.weight + output_norm (llama.cpp's "output layer", on the last device)
    embedding_bytes: int  # token_embd (llama.cpp keeps the input embedding in host memory)
    other_bytes: int  # any other non-layer tensor
    layer_kv: tuple[LayerKV, ...]
    repeating_parameters: int  # Σ elements of blk.* (llama.cpp's "repeating layers ... B parameters")
    state_f32_elements: int  # per sequence: llama.cpp recurrent state r + s, f32 (0 without SSM layers)
    vocab_size: int
    context_length: int | None
    routed_expert_params: int
    projector: tuple[str, int] | None = None  # (path, bytes of its tensors) of the mmproj attached
    # (name, bytes, CUDA row padding) of every tensor: what a GPU copies of one held in host memory
    # (ggml-cuda.cu get_alloc_size pads a quantized row of ne[0] % 512 elements to the next 512)
    tensor_table: tuple[tuple[str, int, int], ...] = ()
    requests: int = 0
    bytes_read: int = 0

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.tensor_bytes / self.parameters if self.parameters else 0.0

    @property
    def active_parameters(self) -> int:
        moe = self.architecture.moe
        if moe is None or not self.routed_expert_params:
            return self.parameters
        return (
            self.parameters
            - self.routed_expert_params * (moe.num_experts - moe.experts_per_token) // moe.num_experts
        )


def _get(kv: dict, key: str, default: Any = None) -> Any:
    return kv.get(key, default)


def _shown(value: Any) -> str:
    """A value for a one-line message: repr (control characters escaped), cut at 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _is_count(value: Any, high: int = MAX_DIMENSION) -> bool:
    return type(value) is int and 0 <= value <= high


def _per_layer(kv: dict, key: str, n: int, default: int | None, where: str) -> list[int]:
    """A key that is one number for every layer or an array of one per layer (llama.cpp get_key_or_arr)."""
    value = kv.get(key, default)
    if value is None:
        raise MalformedGGUFError(f"{where}: GGUF lacks {key}")
    if isinstance(value, list):
        if len(value) != n or not all(_is_count(v) for v in value):
            raise MalformedGGUFError(
                f"{where}: {key} is not {n} per-layer counts from 0 to {MAX_DIMENSION:,}"
            )
        return [int(v) for v in value]
    if not _is_count(value):
        raise MalformedGGUFError(
            f"{where}: {key} = {_shown(value)} is not a count from 0 to {MAX_DIMENSION:,}"
        )
    return [int(value)] * n


def _positive(kv: dict, key: str, where: str, default: int | None = None, high: int = MAX_DIMENSION) -> int:
    value = kv.get(key, default)
    if type(value) is not int or not 1 <= value <= high:
        has = f"; it has {_shown(value)}" if key in kv else ""
        raise MalformedGGUFError(f"{where}: GGUF lacks a usable {key} (from 1 to {high:,}{has})")
    return int(value)


def _count(kv: dict, key: str, where: str, default: int, high: int = MAX_DIMENSION) -> int:
    """An optional count (0 allowed: "not set"): an integer from 0 to `high` (config.json's bounds,
    hubmem.model.config_check), else MalformedGGUFError naming the key and its value."""
    value = kv.get(key, default)
    if not _is_count(value, high):
        raise MalformedGGUFError(f"{where}: {key} = {_shown(value)} is not a count from 0 to {high:,}")
    return int(value)


def _cuda_pad(t: reader.TensorInfo) -> int:
    """ggml-cuda.cu ggml_backend_cuda_buffer_type_get_alloc_size: a quantized tensor whose rows are not a
    multiple of MATRIX_ROW_PADDING (512) elements gets the bytes of the missing elements of one row."""
    block, size = reader.tables()[3].get(t.ggml_type, (1, 0))
    ne0 = t.shape[0] if t.shape else 0
    if block <= 1 or not ne0 or ne0 % 512 == 0:
        return 0
    return (512 - ne0 % 512) // block * size


def model_from_records(
    quant: str, records: list[tuple[str, dict[str, Any]]], projector: tuple[str, dict[str, Any]] | None = None
) -> GGUFModel:
    """One model from the header records of its file(s) (hubmem.hub.gguf_fetch.header_record), shard order."""
    path0, first = records[0]
    where = f"'{path0}'"
    kv = first["kv"]
    arch_name = kv.get("general.architecture")
    if not isinstance(arch_name, str) or not arch_name:
        raise MalformedGGUFError(f"{where}: GGUF lacks general.architecture")
    split_count = kv.get("split.count", 1)
    if isinstance(split_count, int) and split_count != len(records):
        raise MalformedGGUFError(
            f"{where}: split.count says {split_count} files, the repo has {len(records)}"
        )
    a = arch_name
    n_layer = _positive(kv, f"{a}.block_count", where, high=MAX_LAYERS)
    n_embd = _positive(kv, f"{a}.embedding_length", where)
    n_head = _per_layer(kv, f"{a}.attention.head_count", n_layer, 0, where)
    n_head_kv = (
        _per_layer(kv, f"{a}.attention.head_count_kv", n_layer, None, where)
        if f"{a}.attention.head_count_kv" in kv
        else list(n_head)
    )
    head0 = max(n_head) if n_head else 0
    key_len = _count(kv, f"{a}.attention.key_length", where, n_embd // head0 if head0 else 0)
    val_len = _count(kv, f"{a}.attention.value_length", where, key_len)
    n_ff = _per_layer(kv, f"{a}.feed_forward_length", n_layer, 0, where)

    tensors = [reader.TensorInfo(n, t, tuple(s), 0) for _, rec in records for n, t, s in rec["tensors"]]
    names = {t.name for t in tensors}
    params_by_type: dict[str, int] = {}
    bytes_by_type: dict[str, int] = {}
    count_by_type: dict[str, int] = {}
    layer_bytes = [0] * n_layer
    output = embedding = other = routed = repeating = 0
    table = []
    for t in tensors:
        nbytes = reader.tensor_nbytes(t)
        table.append((t.name, nbytes, _cuda_pad(t)))
        name = reader.type_name(t.ggml_type)
        params_by_type[name] = params_by_type.get(name, 0) + t.n_elements
        bytes_by_type[name] = bytes_by_type.get(name, 0) + nbytes
        count_by_type[name] = count_by_type.get(name, 0) + 1
        m = BLOCK_RE.match(t.name)
        if m:
            il = int(m.group(1))
            if il >= n_layer:
                raise MalformedGGUFError(f"{where}: tensor {t.name[:80]!r} is past block_count {n_layer}")
            layer_bytes[il] += nbytes
            repeating += t.n_elements
            if "_exps." in t.name:  # ffn_{gate,up,down}_exps: the routed experts (llama-arch.cpp names)
                routed += t.n_elements
        elif t.name.startswith(("output.", "output_norm.")):
            output += nbytes
        elif t.name.startswith("token_embd."):
            embedding += nbytes
        else:
            other += nbytes

    # sliding window layers: llama.cpp hparams.swa_layers (set_swa_pattern(n): every n-th layer full)
    window = _count(kv, f"{a}.attention.sliding_window", where, 0)
    pattern = kv.get(f"{a}.attention.sliding_window_pattern")
    if not (isinstance(pattern, list) or pattern is None or _is_count(pattern, MAX_LAYERS)):
        raise MalformedGGUFError(
            f"{where}: {a}.attention.sliding_window_pattern = {_shown(pattern)} is not a layer count or a list"
        )
    sliding = [False] * n_layer
    if isinstance(window, int) and window > 0:
        if isinstance(pattern, list) and len(pattern) == n_layer:
            sliding = [bool(p) for p in pattern]
        else:
            every = pattern if isinstance(pattern, int) and pattern > 0 else SWA_PATTERN_DEFAULTS.get(a, 0)
            sliding = (
                [bool(every) and il % every < every - 1 for il in range(n_layer)]
                if every
                else [True] * n_layer
            )

    mla = None
    kv_lora = _count(kv, f"{a}.attention.kv_lora_rank", where, 0)
    mla_path = f"{a}.attention.key_length_mla" in kv  # llama.cpp hparams.is_mla(): n_embd_head_k_mla != 0
    if kv_lora > 0:
        rope = _positive(kv, f"{a}.rope.dimension_count", where)
        k_mla = _count(kv, f"{a}.attention.key_length_mla", where, key_len)
        v_mla = _count(kv, f"{a}.attention.value_length_mla", where, val_len)
        q_lora = _count(kv, f"{a}.attention.q_lora_rank", where, 0)
        if k_mla < rope:
            raise MalformedGGUFError(
                f"{where}: {a}.attention.key_length_mla {k_mla:,} is shorter than its rope part {rope:,}"
            )
        mla = MLA(kv_lora, rope, k_mla - rope, v_mla, q_lora or None)

    # SSM layers: llama.cpp hparams.recurrent_layer (head_count_kv 0 in a hybrid; every layer of mamba)
    d_inner = _count(kv, f"{a}.ssm.inner_size", where, 0)
    ssm = None
    ssm_layers = [False] * n_layer
    state_elems = 0
    if d_inner > 0:
        d_conv = _positive(kv, f"{a}.ssm.conv_kernel", where)
        d_state = _positive(kv, f"{a}.ssm.state_size", where)
        n_group = _count(kv, f"{a}.ssm.group_count", where, 0)
        # llama.cpp load_hparams: Nemotron-H has MLP-only layers too (n_head_kv 0 and n_ff > 0), so a
        # layer is recurrent iff n_head_kv(il) == 0 && n_ff(il) == 0; other hybrids: iff n_head_kv == 0
        both = a in ("nemotron_h", "nemotron_h_moe")
        ssm_layers = [n_head_kv[il] == 0 and (not both or n_ff[il] == 0) for il in range(n_layer)]
        n_ssm = sum(ssm_layers)
        mamba2 = n_group > 0
        # llama_hparams::n_embd_r: (d_conv - 1) · (d_inner + 2 · n_group · d_state); n_embd_s: d_state · d_inner
        # (src/llama-hparams.cpp; Mamba-2 n_embd_s = d_state · d_inner too, as its heads × head_dim = d_inner)
        conv_dim = d_inner + 2 * n_group * d_state
        r, s = (d_conv - 1) * conv_dim, d_state * d_inner
        state_elems = n_ssm * (r + s)
        heads = _count(kv, f"{a}.ssm.time_step_rank", where, 0)
        temporal = (heads, d_inner // heads, d_state) if mamba2 and heads else (d_inner, d_state)
        ssm = SSM(
            "mamba2" if mamba2 else "mamba1",
            n_ssm,
            (d_conv - 1, conv_dim),
            temporal,
            conv_dim + d_inner + (heads if mamba2 else 0),  # in_proj: z, x, B, C (+ dt per head, Mamba-2)
            d_inner,
        )

    layer_types = tuple(
        "ssm"
        if ssm_layers[il]
        else MLP_ONLY
        if d_inner and n_head_kv[il] == 0  # a hybrid's layer with neither attention nor a mixer
        else "sliding"
        if sliding[il]
        else "full"
        for il in range(n_layer)
    )
    layer_kv = tuple(
        LayerKV(0, 0, False)
        if ssm_layers[il]
        else LayerKV(key_len * n_head_kv[il], 0 if mla_path else val_len * n_head_kv[il], sliding[il])
        for il in range(n_layer)
    )

    moe = None
    n_expert = _count(kv, f"{a}.expert_count", where, 0, MAX_EXPERTS)
    if n_expert > 1:
        used = _positive(kv, f"{a}.expert_used_count", where, high=n_expert)
        exp_ff = _count(kv, f"{a}.expert_feed_forward_length", where, n_ff[0])
        shared = _count(kv, f"{a}.expert_shared_count", where, 0, MAX_EXPERTS) * _count(
            kv, f"{a}.expert_shared_feed_forward_length", where, exp_ff
        )
        dense = _count(kv, f"{a}.leading_dense_block_count", where, 0, MAX_LAYERS)
        moe_layers = tuple(il for il in range(n_layer) if f"blk.{il}.ffn_gate_inp.weight" in names) or tuple(
            range(dense, n_layer)
        )
        moe = MoE(n_expert, used, exp_ff, shared, moe_layers, n_ff[0], "GGUF ffn_gate_inp tensors")

    # the logits width: the output matrix's rows (the token embedding's when tied), as llama.cpp's
    # output tensor is n_embd × n_vocab; else {arch}.vocab_size or the tokenizer's token count
    out_t = next((t for t in tensors if t.name == "output.weight"), None) or next(
        (t for t in tensors if t.name == "token_embd.weight"), None
    )
    tokens = kv.get("tokenizer.ggml.tokens")
    vocab = (
        out_t.shape[1]
        if out_t is not None and len(out_t.shape) == 2
        else _count(kv, f"{a}.vocab_size", where, 0)
        or (
            tokens.get("count")
            if isinstance(tokens, dict)
            else len(tokens)
            if isinstance(tokens, list)
            else 0
        )
    )
    if not _is_count(vocab):
        raise MalformedGGUFError(f"{where}: a vocabulary of {_shown(vocab)} tokens")
    ctx = _count(kv, f"{a}.context_length", where, 0)
    attn_heads = [h for h in n_head if h]
    architecture = Architecture(
        model_type=MODEL_TYPES.get(a, a),
        architectures=(f"GGUF {a}",),
        hidden_size=n_embd,
        intermediate_size=max(n_ff) if n_ff else 0,
        num_layers=n_layer,
        num_heads=max(attn_heads) if attn_heads else 0,
        num_kv_heads=max((n_head_kv[il] for il in range(n_layer) if not ssm_layers[il]), default=0),
        head_dim=int(key_len),
        max_context=ctx if isinstance(ctx, int) and ctx > 0 else None,
        vocab_size=int(vocab or 0),
        tie_word_embeddings="output.weight" not in names,
        dtype=None,
        gated_mlp=any(".ffn_gate." in n or ".ffn_gate_exps." in n for n in names),
        layer_types=layer_types,
        sliding_window=window if isinstance(window, int) and window > 0 and any(sliding) else None,
        normalised_by=f"GGUF keys ({a})",
        mla=mla,
        ssm=ssm,
        moe=moe,
    )
    sizes = [rec.get("size") for _, rec in records]
    proj = None
    if projector is not None:
        ppath, prec = projector
        ptensors = [reader.TensorInfo(n, t, tuple(s), 0) for n, t, s in prec["tensors"]]
        proj = (ppath, sum(reader.tensor_nbytes(t) for t in ptensors))
    return GGUFModel(
        quant=quant,
        paths=tuple(p for p, _ in records),
        file_bytes=sum(sizes) if all(isinstance(s, int) for s in sizes) else None,  # type: ignore[arg-type]
        gguf_arch=a,
        name=kv.get("general.name") if isinstance(kv.get("general.name"), str) else None,
        architecture=architecture,
        parameters=sum(params_by_type.values()),
        params_by_type=dict(sorted(params_by_type.items())),
        bytes_by_type=dict(sorted(bytes_by_type.items())),
        tensors_by_type=dict(sorted(count_by_type.items())),
        tensor_bytes=sum(bytes_by_type.values()),
        layer_bytes=tuple(layer_bytes),
        output_bytes=output,
        embedding_bytes=embedding,
        other_bytes=other,
        layer_kv=layer_kv,
        repeating_parameters=repeating,
        state_f32_elements=state_elems,
        tensor_table=tuple(table),
        vocab_size=int(vocab or 0),
        context_length=architecture.max_context,
        routed_expert_params=routed,
        projector=proj,
        requests=sum(int(rec.get("requests", 0)) for _, rec in records),
        bytes_read=sum(int(rec.get("bytes_read", 0)) for _, rec in records),
    )
