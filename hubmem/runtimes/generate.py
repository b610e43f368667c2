"""transformers `generate`: a prefill over the prompt, then one decode step per new token after the first.

Pure rules over the memory terms (no torch). A run that prompts with p tokens and generates n makes n
forwards: the prefill, whose last-position logits give the first new token, then n − 1 decode steps,
each feeding the token just chosen (generation/utils.py `_sample`: the loop stops when
`MaxLengthCriteria` sees p + n ids, so the n-th token is never fed back). Its cache holds p + n − 1
tokens at the last step (none is written for the n-th token), and `max_new_tokens=1` is the prefill
alone. The prefill transient is one layer over p tokens; the peak is the larger of the two phases
(and, with the legacy cache, of the first decode step).

- prefill (transformers >= 4.45 `generate`, generation/utils.py `_sample`): the prompt's KV (p tokens)
  + the larger of one layer's transient over p tokens (hubmem.memory.inference.activation_bytes) and
  the logits, which lm_head computes after the last layer has freed its temporaries: fp32 logits of
  the last position (`logits_to_keep=1`, then `.to(torch.float32)`).
- decode step (same file): the cache at p + n − 2 tokens grows by one, in place layer by layer
  (cache_utils.py DynamicLayer.update: `torch.cat` then the old tensor is dropped, so at most one
  layer's old K/V coexists with its new one: counted as its own term); the transient is one token's
  layer: eager attention scores b·a·(p + n − 1)·(e + 4) (fp32 softmax as eager_attention_forward).
- beams (`num_beams` k): `_expand_inputs_for_generation` repeat_interleaves input_ids *and*
  `encoder_outputs` by k before the first decoder forward, so every decoder term (self-attention KV,
  transients, logits) and an encoder-decoder's cross-attention KV are per beam (b·k sequences); the
  encoder itself runs once per input, before the expansion (`_prepare_encoder_decoder_kwargs_for_generation`),
  so its layer peak stays at b.
- legacy cache (`generate_cache="legacy"`): transformers 4.3x with tuple `past_key_values`
  (v4.38 generation/utils.py `greedy_search`): each step's forward builds a new tuple with
  `torch.cat((past_key, key))` while the loop still holds the previous step's `outputs` (its
  `past_key_values` and its `logits`, which `next_token_logits = outputs.logits[:, -1, :]` keeps
  whole); logits are computed for every position in the model dtype (no `logits_to_keep`); stored
  buffers (causal-mask `attn.bias`, `rotary_emb.inv_freq`) are loaded with the weights. GPT-NeoX
  (v4.38 modeling_gpt_neox.py GPTNeoXAttention): `value = qkv[..., 2 * head_size:].permute(...)` is a
  view of the fused query_key_value output, so the prefill's `present = (key, value)` pins 3h per
  token and layer for V (K is a new tensor after the rotary `torch.cat`) until the first decode
  step's `torch.cat` copies it. Llama and Mistral (v4.35 modeling_llama.py / modeling_mistral.py
  `LlamaForCausalLM.forward`: `logits = self.lm_head(hidden_states)` then `logits = logits.float()`)
  return fp32 logits: the lm_head output and its fp32 copy coexist (b·p·V·(e + 4)), and the fp32 one is
  what the loop holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hubmem.choices import GENERATE_CACHES  # noqa: F401  (dynamic | legacy)

if TYPE_CHECKING:
    from hubmem.memory.inference import InferenceSettings, Term
    from hubmem.model.architecture import Architecture
    from hubmem.model.tensors import CheckpointCounts

# model types whose legacy attention caches a view of the fused QKV projection (see module docstring)
FUSED_QKV_VIEW_TYPES = ("gpt_neox",)
# model types whose legacy (4.3x) causal-LM forward upcasts the logits to fp32 (see module docstring)
FP32_LOGITS_TYPES = ("llama", "mistral")


@dataclass(frozen=True)
class Phase:
    """One moment of a generate call: what is live then."""

    name: str
    tokens: int  # text tokens in the cache at this moment (image tokens excluded)
    kv: int  # the KV cache (self + cross attention) and recurrent state live at this moment
    transient: int  # the layer's temporaries, logits and any held copy, at this moment
    formula: str

    @property
    def total(self) -> int:
        return self.kv + self.transient


def peak(phases: list[Phase]) -> Phase:
    """The phase with the largest live memory (the first of equals: prefill wins a tie)."""
    best = phases[0]
    for phase in phases[1:]:
        if phase.total > best.total:
            best = phase
    return best


def self_kv(terms: Iterable[Term]) -> int:
    """The self-attention KV cache among cache terms (the part a decode step copies)."""
    return sum(t.bytes for t in terms if t.name == "kv_cache")


def generation_phases(
    arch: Architecture, precision: str, settings: InferenceSettings, e: int, counts: CheckpointCounts
) -> list[Phase]:
    """Prefill, and with new tokens the decode step(s) that can hold most, for one precision row.

    `settings` is a hubmem.memory.inference.InferenceSettings: seq_len = prompt + new tokens,
    prompt_len (None: the whole seq_len is prompt, no decode step), num_beams, generate_cache."""
    from dataclasses import replace

    from hubmem.memory.inference import activation_bytes, bnb_dequant, cache_terms

    b, beams = settings.batch, settings.num_beams
    seqs = b * beams
    img = settings.image_tokens
    prompt = settings.seq_len if settings.prompt_len is None else min(settings.prompt_len, settings.seq_len)
    new = settings.seq_len - prompt
    legacy = settings.generate_cache == "legacy"
    vocab = arch.vocab_size

    def caches(text_tokens: int) -> tuple[int, int]:
        """(all cache terms, self-attention KV) for seqs sequences at text_tokens (+ image tokens)."""
        terms = cache_terms(arch, precision, replace(settings, batch=seqs, seq_len=text_tokens))
        return sum(t.bytes for t in terms), self_kv(terms)

    # prefill over the prompt (+ image tokens), every sequence of every beam
    p = prompt + img
    act = activation_bytes(
        arch,
        batch=seqs,
        seq_len=p,
        e=e,
        attn=settings.attn,
        all_logits=settings.all_logits,
        encoder_len=settings.encoder_len,
    )
    if beams > 1 and act.encoder_phase:  # the encoder runs before the beam expansion: b inputs
        enc = activation_bytes(
            arch, batch=b, seq_len=p, e=e, attn=settings.attn, encoder_len=settings.encoder_len
        )
        act = replace(act, encoder_phase=enc.encoder_phase)
    upcast = 4 if legacy and arch.model_type in FP32_LOGITS_TYPES else 0  # `logits.float()`: + fp32 copy
    held_e = upcast or e  # bytes per logit the loop keeps from the previous step
    if legacy:
        act = replace(act, logits=seqs * p * vocab * (e + upcast))  # every position, model dtype (+ fp32)
    kv_p, self_p = caches(prompt)
    pinned = self_p if legacy and arch.model_type in FUSED_QKV_VIEW_TYPES else 0
    logits_note = (
        f"logits b·k·p·V·e = {seqs}·{p:,}·{vocab:,}·{e} (every position, model dtype)"
        if legacy and not upcast
        else f"logits b·k·p·V·(e + 4) = {seqs}·{p:,}·{vocab:,}·({e} + 4) (every position, + its fp32 copy)"
        if legacy
        else f"logits {act.logits:,}"
    )
    dq = bnb_dequant(counts, precision, settings, seqs * p)  # bitsandbytes 4-bit MatMul4Bit
    layer_peak = max(act.attention_phase, act.mlp_phase, act.ssm_phase, act.encoder_phase) + dq
    phases = [
        Phase(
            "prefill",
            prompt,
            kv_p + pinned,
            max(layer_peak, act.logits),
            f"KV at p={p:,} for b·k={seqs} sequences {kv_p:,}"
            + (f" + V views pinning the fused qkv output {pinned:,}" if pinned else "")
            + f" + layer peak max(attention {act.attention_phase:,}, mlp {act.mlp_phase:,}"
            + (f", encoder {act.encoder_phase:,}" if act.encoder_phase else "")
            + (f", ssm mixer {act.ssm_phase:,}" if act.ssm_phase else "")
            + ")"
            + (f" + dequantized 4-bit Linear {dq:,}" if dq else "")
            + f", then {logits_note} (after the last layer: max, not sum)",
        )
    ]
    if new < 2:  # max_new_tokens=1: the prefill's logits give the one new token; no decode step runs
        return phases

    def step(cached: int, held_kv: int, held_logits: int, name: str) -> Phase:
        """A decode step that reads `cached` text tokens and writes the next one."""
        t = cached + 1 + img
        one = activation_bytes(arch, batch=seqs, seq_len=1, e=e, attn="sdpa")
        scores = seqs * arch.num_heads * t * (e + 4) if settings.attn == "eager" else 0
        logits = seqs * vocab * ((e + upcast) if legacy else 4)
        one = replace(one, attention_phase=one.attention_phase + scores, logits=logits)
        kv_t, _ = caches(cached + 1)
        held = held_kv + held_logits
        dq_step = bnb_dequant(counts, precision, settings, seqs)  # one row per sequence: gemv at b·k = 1
        return Phase(
            name,
            cached + 1,
            kv_t,
            max(max(one.attention_phase, one.mlp_phase, one.ssm_phase) + dq_step, logits) + held,
            f"KV at {t:,} tokens {kv_t:,} + one token's layer max(attention {one.attention_phase:,}"
            + (f" incl. eager scores b·k·a·t·(e+4) = {seqs}·{arch.num_heads}·{t:,}·({e}+4)" if scores else "")
            + f", mlp {one.mlp_phase:,}"
            + (f", + dequantized 4-bit Linear {dq_step:,}" if dq_step else "")
            + f", then logits {logits:,})"
            + (f" + held {held:,} ({'previous cache' if held_kv else ''}" if held else "")
            + (" + previous logits" if held_logits and held_kv else "previous logits" if held_logits else "")
            + (")" if held else ""),
        )

    layers = max(1, arch.attention_layers)
    if legacy:
        # the loop holds the previous step's outputs: its whole past tuple, and its logits
        phases.append(step(prompt, self_p + pinned, seqs * p * vocab * held_e, "first decode step"))
        if new > 2:  # the last of the n − 1 decode steps reads p + n − 2 cached tokens
            _, self_prev = caches(prompt + new - 2)
            phases.append(step(prompt + new - 2, self_prev, seqs * vocab * held_e, "last decode step"))
    else:
        # DynamicLayer.update: torch.cat builds a layer's new K/V while its old one is alive
        _, self_prev = caches(prompt + new - 2)
        phases.append(step(prompt + new - 2, self_prev // layers, 0, "last decode step"))
    return phases
