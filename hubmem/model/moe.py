"""Mixture of experts: which layers route tokens to experts, how many experts a token uses, and
the parameters active per token.

Every family names the same few facts differently; `parse_moe` reads them from the config dict
(plain JSON, nothing executed) into one `MoE` spec:

- experts E: `n_routed_experts` (DeepSeek), `num_local_experts` (Mixtral, gpt-oss, Llama 4),
  `num_experts` (Qwen2/3-MoE, Qwen3-Next), `moe_num_experts` (ERNIE 4.5);
- experts per token k: `num_experts_per_tok`, `experts_per_token` (gpt-oss), `moe_k` (ERNIE);
- expert width: `moe_intermediate_size`, else `intermediate_size` (Mixtral, gpt-oss, Llama 4);
- shared experts: `n_shared_experts` × moe width (DeepseekV3MoE), `moe_num_shared_experts` ×
  moe width (Ernie4_5_MoeSparseMoeBlock), `shared_expert_intermediate_size` (Qwen2-MoE,
  Qwen3-Next), one expert of `intermediate_size` (Llama4TextMoe.shared_expert);
- MoE layers, as each transformers decoder layer decides (cited per rule in `_moe_layers`).

Active parameters per token (what one token's forward pass multiplies by): every parameter except
the routed experts a token does not visit. Each MoE layer holds E equally sized routed experts
and a token visits k of them, so

    active = parameters − routed_expert_parameters × (E − k) / E

(shared experts, router, dense layers, attention, embeddings, norms and lm_head are all active).
This is how the published figures are defined: Mixtral "47B total, 13B active" (Jiang et al. 2024
§2.1), DeepSeek-V3 "671B total, 37B activated" (DeepSeek-V3 report §1), Qwen3-30B-A3B "30.5B
total, 3.3B activated" (model card), gpt-oss-20b "21B total, 3.6B active" (model card).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MoE:
    num_experts: int  # routed experts per MoE layer (E)
    experts_per_token: int  # routed experts each token visits (k)
    expert_intermediate_size: int  # width of one routed expert's MLP
    shared_intermediate_size: int  # total width of the always-active shared expert(s), 0 if none
    moe_layers: tuple[int, ...]  # indexes of the decoder layers whose MLP is an MoE block
    dense_intermediate_size: int  # width of the MLP of the other (dense) layers
    layer_rule: str  # the config fields that chose `moe_layers`, for the summary

    @property
    def routed_share_inactive(self) -> tuple[int, int]:
        """(E − k, E): the fraction of routed-expert parameters a token leaves unused."""
        return self.num_experts - self.experts_per_token, self.num_experts

    def token_mlp_widths(self, num_layers: int) -> tuple[int, ...]:
        """Intermediate width one token's MLP computes, per kind of layer present.

        MoE layer: k routed experts + the shared expert(s), k·i_moe + i_shared (vLLM fused_moe
        allocates its intermediate caches as [tokens, k, 2·i_moe] and [tokens·k, i_moe]); dense
        layers (first_k_dense_replace, mlp_only_layers, ...): their own intermediate_size.
        """
        widths = [self.experts_per_token * self.expert_intermediate_size + self.shared_intermediate_size]
        if len(self.moe_layers) < num_layers:
            widths.append(self.dense_intermediate_size)
        return tuple(widths)

    def describe(self, num_layers: int) -> str:
        """'8 of 128 experts (768 wide) in 48 of 48 layers' (+ shared experts when present)."""
        text = (
            f"{self.experts_per_token} of {self.num_experts} experts ({self.expert_intermediate_size} wide) "
            f"in {len(self.moe_layers)} of {num_layers} layers"
        )
        if self.shared_intermediate_size:
            text += f" + shared {self.shared_intermediate_size} wide"
        return text


def _int(source: dict, *names: str) -> int | None:
    for name in names:
        value = source.get(name)
        if isinstance(value, list) and value and isinstance(value[0], int):
            value = value[0]  # ERNIE-VL lists one count per modality; the text experts come first
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def parse_moe(raw: dict[str, Any], num_layers: int, intermediate_size: int) -> MoE | None:
    """The MoE spec of a (text) config dict, or None for a dense model."""
    experts = _int(raw, "n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
    top_k = _int(raw, "num_experts_per_tok", "experts_per_token", "moe_k", "moe_topk")
    if not experts or experts < 2 or not top_k:
        return None
    expert_width = _int(raw, "moe_intermediate_size") or intermediate_size
    dense_width = _int(raw, "intermediate_size_mlp") or intermediate_size  # Llama 4 names both
    shared = 0
    if n := _int(raw, "n_shared_experts", "moe_num_shared_experts"):
        shared = n * expert_width  # DeepseekV3MoE / Ernie4_5_MoeSparseMoeBlock: one MLP n× as wide
    elif width := _int(raw, "shared_expert_intermediate_size"):
        shared = width  # Qwen2MoeSparseMoeBlock / Qwen3NextSparseMoeBlock.shared_expert
    elif str(raw.get("model_type", "")).startswith("llama4"):
        shared = intermediate_size  # Llama4TextMoe.shared_expert = Llama4TextMLP(config) (intermediate_size)
    layers, rule = _moe_layers(raw, num_layers)
    return MoE(
        num_experts=experts,
        experts_per_token=min(top_k, experts),
        expert_intermediate_size=expert_width,
        shared_intermediate_size=shared,
        moe_layers=layers,
        dense_intermediate_size=dense_width,
        layer_rule=rule,
    )


def _moe_layers(raw: dict, num_layers: int) -> tuple[tuple[int, ...], str]:
    """Indexes of the MoE layers, by the rule of the family whose fields the config carries."""
    layers = range(num_layers)
    if isinstance(raw.get("moe_layers"), list):  # Llama 4 (explicit list)
        chosen = [i for i in raw["moe_layers"] if isinstance(i, int) and 0 <= i < num_layers]
        return tuple(chosen), "moe_layers"
    if "first_k_dense_replace" in raw or "moe_layer_freq" in raw:
        # DeepseekV3DecoderLayer / vLLM deepseek_v2.py: MoE when n_routed_experts and
        # layer_idx >= first_k_dense_replace and layer_idx % moe_layer_freq == 0.
        first = _int(raw, "first_k_dense_replace") or 0
        freq = _int(raw, "moe_layer_freq") or 1
        return tuple(i for i in layers if i >= first and i % freq == 0), (
            f"first_k_dense_replace={first}, moe_layer_freq={freq}"
        )
    if "moe_layer_start_index" in raw or "moe_layer_interval" in raw:
        # Ernie4_5_MoeDecoderLayer: MoE when (i + 1) % moe_layer_interval == 0 and
        # moe_layer_start_index <= i <= moe_layer_end_index (default: the last layer).
        start = _int(raw, "moe_layer_start_index") or 0
        end = _int(raw, "moe_layer_end_index")
        end = num_layers - 1 if end is None or end < 0 else end
        step = _int(raw, "moe_layer_interval") or 1
        return tuple(i for i in layers if (i + 1) % step == 0 and start <= i <= end), (
            f"moe_layer_start_index={start}, moe_layer_interval={step}"
        )
    if "interleave_moe_layer_step" in raw:
        # Llama4TextConfig: moe_layers = range(step - 1, num_hidden_layers, step).
        step = _int(raw, "interleave_moe_layer_step") or 1
        return tuple(range(step - 1, num_layers, step)), f"interleave_moe_layer_step={step}"
    if "decoder_sparse_step" in raw or "mlp_only_layers" in raw:
        # Qwen2MoeDecoderLayer / Qwen3MoeDecoderLayer: MoE when layer_idx not in mlp_only_layers
        # and (layer_idx + 1) % decoder_sparse_step == 0.
        dense = set(raw.get("mlp_only_layers") or [])
        step = _int(raw, "decoder_sparse_step") or 1
        return tuple(i for i in layers if i not in dense and (i + 1) % step == 0), (
            f"decoder_sparse_step={step}, mlp_only_layers={sorted(dense)}"
        )
    return tuple(layers), "every layer"  # Mixtral, gpt-oss


def active_parameters(parameters: int, routed_expert_parameters: int, moe: MoE) -> int:
    """parameters − routed × (E − k) / E (module docstring). Exact: the routed total is E equal experts."""
    inactive, experts = moe.routed_share_inactive
    return parameters - routed_expert_parameters * inactive // experts
