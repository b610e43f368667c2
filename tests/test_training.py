"""Training memory: the pure formulas (bytes derived by hand here), sharding arithmetic through the CLI,
bad combinations, and the measured-vs-estimated table the README carries."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.fit import training as fit_training
from hubmem.memory import training
from hubmem.model.architecture import Architecture
from hubmem.model.tensors import CheckpointCounts
from scripts import compare_measured, docs

from .helpers import cli_json


def arch(**over) -> Architecture:
    """A GPT-style layer as Korthikanti et al. count it: h = a·d, k = a, plain MLP with i = 4h."""
    base = dict(
        model_type="gpt2",
        architectures=(),
        hidden_size=1024,
        intermediate_size=4096,
        num_layers=24,
        num_heads=16,
        num_kv_heads=16,
        head_dim=64,
        max_context=2048,
        vocab_size=50000,
        tie_word_embeddings=True,
        dtype=None,
        gated_mlp=False,
        layer_types=("full",) * 24,
    )
    base.update(over)
    return Architecture(**base)


def counts(parameters: int, **components: int) -> CheckpointCounts:
    c = CheckpointCounts()
    c.parameters = parameters
    c.by_component = components or {"attention": parameters}
    c.linear_params = parameters
    return c


# --- optimizer states, LoRA, NF4 -------------------------------------------------------------


def test_optimizer_states_per_parameter():
    n = 1_000_000
    assert training.optimizer_state_bytes("adamw", n, 4, [])[0] == 8_000_000  # exp_avg + exp_avg_sq, fp32
    assert training.optimizer_state_bytes("adamw", n, 2, [])[0] == 4_000_000  # pure bf16: states like params
    assert training.optimizer_state_bytes("sgd", n, 4, [])[0] == 0
    assert training.optimizer_state_bytes("sgd-momentum", n, 4, [])[0] == 4_000_000
    # 8-bit: 2 bytes + one fp32 absmax per 2048 values per state: ceil(1e6 / 2048) = 489 blocks.
    assert training.optimizer_state_bytes("adamw-8bit", n, 4, [])[0] == 2_000_000 + 2 * 4 * 489


def test_adafactor_factors_matrices_and_keeps_vectors_whole():
    # two 10×20 matrices (400 elements) + 30 one-dimensional parameters: (2·(10 + 20) + 30) × 4 bytes.
    assert training.optimizer_state_bytes("adafactor", 430, 4, [(10, 20, 2)])[0] == (60 + 30) * 4


def test_lora_parameters_of_llama_3_8b_at_rank_16():
    """PEFT prints 'trainable params: 41,943,040' for Llama-3-8B, r=16 on all seven projections:
    per layer 16·(4096+4096)·2 (q, o) + 16·(1024+4096)·2 (k, v) + 16·(14336+4096)·3 (gate, up, down)."""
    llama = arch(
        hidden_size=4096, intermediate_size=14336, num_layers=32, num_heads=32, num_kv_heads=8,
        head_dim=128, gated_mlp=True,
    )  # fmt: skip
    per_layer = 16 * 8192 * 2 + 16 * 5120 * 2 + 16 * 18432 * 3
    assert per_layer == 1_310_720
    assert training.lora_parameters(llama, 16, training.LORA_MODULES) == 41_943_040
    assert training.lora_parameters(llama, 8, ("q", "v")) == 32 * 8 * (8192 + 5120)
    # a plain MLP has no gate: the target adds nothing
    assert training.lora_parameters(arch(), 4, ("gate",)) == 0


def test_nf4_double_quant_is_4_127_bits_per_weight():
    n = 64 * 256 * 2  # two second-level blocks
    assert training.nf4_bytes(n) == n // 2 + n // 64 + 4 * 2
    assert training.nf4_bytes(n) * 8 / n == pytest.approx(4 + 8 / 64 + 32 / (64 * 256))
    assert training.nf4_bytes(1) == 1 + 1 + 4  # ceil everywhere: one value still costs its block


# --- activations --------------------------------------------------------------------------------


def test_korthikanti_constant_34_plus_5as_over_h():
    """The paper's §4.1 case: 16-bit, softmax in 16-bit, both dropouts: s·b·h·(34 + 5·a·s/h) per layer."""
    s, b, h, a = 512, 2, 1024, 16
    layer = training.layer_activations(
        arch(), b=b, s=s, e=2, attn="eager", attn_dropout=True, hidden_dropout=True, softmax_bytes=2
    )
    assert layer.per_gpu(1) == s * b * h * 34 + 5 * a * s * s * b


def test_korthikanti_tensor_parallel_10_plus_24_over_t():
    """§4.2.2 without sequence parallelism: s·b·h·(10 + 24/t + 5·a·s/(h·t))."""
    s, b, h, a, t = 512, 2, 1024, 16, 4
    layer = training.layer_activations(
        arch(), b=b, s=s, e=2, attn="eager", attn_dropout=True, hidden_dropout=True, softmax_bytes=2, tp=t
    )
    assert layer.per_gpu(t) == s * b * h * 10 + s * b * h * 24 // t + 5 * a * s * s * b // t


def test_sdpa_drops_the_s_squared_term_but_keeps_its_output_and_lse():
    s, b, h, a = 512, 2, 1024, 16
    layer = training.layer_activations(
        arch(), b=b, s=s, e=2, attn="sdpa", attn_dropout=True, hidden_dropout=True, softmax_bytes=4
    )
    assert layer.scores == 0
    assert layer.per_gpu(1) == s * b * h * 34 + 2 * s * b * h + 4 * b * a * s


def test_gqa_gated_mlp_without_dropout():
    """Llama-3-8B shapes in bf16 with SDPA: e·s·b·(4h + 2·a·d + 2·k·d + 4·i + a·d) + 4·b·a·s."""
    llama = arch(
        hidden_size=4096, intermediate_size=14336, num_heads=32, num_kv_heads=8, head_dim=128, gated_mlp=True
    )
    s, b = 2048, 1
    layer = training.layer_activations(
        llama, b=b, s=s, e=2, attn="sdpa", attn_dropout=False, hidden_dropout=False, softmax_bytes=4
    )
    expected = 2 * s * b * (4 * 4096 + 2 * 4096 + 2 * 1024 + 4 * 14336 + 4096) + 4 * b * 32 * s
    assert layer.per_gpu(1) == expected == 360_972_288  # 4096 · 88,064 + 262,144


def test_eager_scores_with_transformers_fp32_softmax():
    """16-bit eager attention in transformers: fp32 softmax (4 B) + the 16-bit copy the ·V matmul saves (2 B)."""
    s, b, a = 256, 1, 16
    layer = training.layer_activations(
        arch(), b=b, s=s, e=2, attn="eager", attn_dropout=False, hidden_dropout=False, softmax_bytes=4
    )
    assert layer.scores == b * a * s * s * 6


def test_simple_rule_of_the_s0_article():
    llama = arch(hidden_size=4096, intermediate_size=11008, num_layers=32)
    assert training.simple_activation_bytes(llama, b=1, s=2048, e=1, layers=32) == 989_855_744


def test_logits_and_loss_buffers():
    assert training.logits_bytes("causal-lm", b=2, s=10, vocab=100, e=2)[0] == 2 * 10 * 100 * 12
    assert training.logits_bytes("causal-lm", b=2, s=10, vocab=100, e=2, tp=4)[0] == 2 * 10 * 100 * 12 // 4
    assert training.logits_bytes("logits-sum", b=2, s=10, vocab=100, e=2)[0] == 2 * 10 * 100 * 2
    assert training.logits_bytes("classifier", b=2, s=10, vocab=100, e=2)[0] == 0


def test_dropout_read_from_config():
    assert training.dropout_from_config(
        {"attention_probs_dropout_prob": 0.1, "hidden_dropout_prob": 0.1}
    ) == (
        True,
        True,
    )
    assert training.dropout_from_config({"attention_dropout": 0.0}) == (False, False)
    assert training.dropout_from_config({"attn_pdrop": 0.1, "resid_pdrop": 0.0}) == (True, False)


# --- rows: regimes, checkpointing, sharding, pipeline ------------------------------------------------


def row(settings: training.TrainingSettings, regime: str, model: Architecture | None = None, n: int = 10**9):
    model = model or arch()
    shape = training.ModelShape(model, counts(n))
    return training.training_row(shape, regime, 512, settings)


@pytest.mark.parametrize(
    ("regime", "grad_dtype", "per_param"),
    [
        ("fp32", "fp32", 4 + 4 + 8),
        ("bf16", "fp32", 2 + 2 + 4),
        ("mixed", "fp32", 2 + 4 + 8 + 4),
        ("mixed", "16bit", 16),
    ],
)
def test_model_states_bytes_per_parameter(regime, grad_dtype, per_param):
    """fp32 16 B, pure 16-bit 8 B (torch.optim states like the parameter), mixed 18 B with torch.autocast's
    fp32 gradients (transformers model_memory_anatomy: 6 + 4 + 8) or 16 B with 16-bit ones (ZeRO §3.1)."""
    r = row(training.TrainingSettings(grad_dtype=grad_dtype), regime)
    assert r.weights + r.gradients + r.optimizer + r.master == per_param * 10**9


def test_gradient_checkpointing_keeps_layer_inputs_and_one_layer():
    plain = row(training.TrainingSettings(), "bf16")
    ckpt = row(training.TrainingSettings(grad_checkpointing=True), "bf16")
    one_layer = plain.activations // 24
    assert ckpt.activations == 24 * 2 * 512 * 1024 + one_layer


def test_lora_dropout_keeps_each_adapted_linears_dropped_input_and_mask():
    """PEFT `lora_B(lora_A(dropout(x)))`: per adapted Linear, the dropped-out copy lora_A saves (its input's
    bytes) and the bool mask, s·b·in·(bytes + 1). Layer h 1024, i 4096, s 512, b 1, targets q,v,o,down:
    q and v read the norm output, o (a·d = 1024) and down (i = 4096) a 16-bit one.
    bf16: 512·(1024·3 + 1024·3 + 1024·3 + 4096·3) = 512·21,504 = 11,010,048 per layer, × 24 layers.
    mixed (autocast over fp32): q, v inputs are fp32 norm outputs: 512·(1024·5·2 + 1024·3 + 4096·3)
    = 512·25,600 = 13,107,200. Checkpointed: one recomputed layer's worth. p = 0 (PEFT's nn.Identity): none."""
    targets = ("q", "v", "o", "down")
    base = training.TrainingSettings(mode="lora", lora_targets=targets)
    with_p = replace(base, lora_dropout=0.1)
    assert row(with_p, "bf16").activations - row(base, "bf16").activations == 24 * 11_010_048
    assert row(with_p, "mixed").activations - row(base, "mixed").activations == 24 * 13_107_200
    ckpt, ckpt_p = replace(base, grad_checkpointing=True), replace(with_p, grad_checkpointing=True)
    assert row(ckpt_p, "bf16").activations - row(ckpt, "bf16").activations == 11_010_048
    (act,) = [t for t in row(with_p, "bf16").terms if t.name == "activations"]
    assert "+ lora_dropout 0.1: s·b·Σ in·(bytes + 1 mask) = 512·1·(1024·(2 + 1) + " in act.formula


def test_lora_dropout_bad_values_exit_3(fake_hub):
    for args, message in (
        (("--train", "lora", "--lora-dropout", "1"), "Error: --lora-dropout takes a probability in [0, 1), not 1.0\n"),
        (("--train", "full", "--lora-dropout", "0.1"), "Error: --lora-dropout applies to --train lora or qlora, not full\n"),
    ):  # fmt: skip
        result = CliRunner().invoke(main, ["test/tiny", "--seq-len", "64", *args])
        assert result.exit_code == 3, result.output
        assert result.stderr == message


@pytest.mark.parametrize(
    ("zero", "per_gpu"),
    [(0, 2 + 2 + 12), (1, 2 + 2 + 12 / 8), (2, 2 + (2 + 12) / 8), (3, 16 / 8)],
)
def test_zero_stages_shard_the_16_bytes(zero, per_gpu):
    r = row(training.TrainingSettings(grad_dtype="16bit", gpus=8, zero=zero), "mixed")
    sharded = sum(t.bytes for t in r.terms if t.name in ("weights", "gradients", "optimizer", "master"))
    assert sharded == per_gpu * 10**9


def test_zero_3_keeps_deepspeed_s_buffers_beside_the_shards():
    """1e9 params in 24 one-block layers of 41,666,666 (no embeddings in these counts), bf16, N=8, DeepSpeed's
    defaults (hubmem.runtimes.sharded_training): a 5e8-element bf16 reduce bucket; persistent = the 1-D params
    config.json implies (these counts have no shapes; hubmem.model.config_counts: 2 norms per layer + the final
    norm, h wide: 49 × 1024 = 50,176); gathered = the trace's tail and prefetch (tests/test_sharded_training.py)."""
    r = row(training.TrainingSettings(gpus=8, zero=3), "bf16")
    terms = {t.name: t.bytes for t in r.terms}
    assert terms["reduce bucket"] == 500_000_000 * 2
    assert terms["persistent params"] == (24 * 2 + 1) * 1024 * 2
    assert r.weights == 2 * 10**9 // 8 + terms["persistent params"] + terms["gathered params"]
    assert r.gradients == 2 * 10**9 // 8 + terms["reduce bucket"]
    assert sum(t.bytes for t in r.terms) == r.total


def test_fsdp_full_keeps_the_root_two_layer_units_and_one_unsharded_gradient():
    """FSDP FULL_SHARD per decoder layer: root unit (embeddings 2e8, not resharded after forward) + 2 layer units
    (BACKWARD_PRE) gathered, and one layer unit's gradient unsharded: layers (1.2e9 − 2e8) / 24 each, bf16."""
    shape = training.ModelShape(
        arch(), counts(1_200_000_000, embeddings=200_000_000, attention=1_000_000_000)
    )
    r = training.training_row(shape, "bf16", 512, training.TrainingSettings(gpus=4, fsdp="full"))
    unit = 1_000_000_000 // 24
    terms = {t.name: t.bytes for t in r.terms}
    assert terms["gathered units"] == (200_000_000 + 2 * unit) * 2
    assert terms["unsharded gradient"] == unit * 2
    assert r.weights == 1_200_000_000 * 2 // 4 + terms["gathered units"]
    assert r.gradients == 1_200_000_000 * 2 // 4 + unit * 2
    grad_op = training.training_row(shape, "bf16", 512, training.TrainingSettings(gpus=4, fsdp="grad-op"))
    # SHARD_GRAD_OP keeps every unit unsharded from forward to backward: whole weights, + the unit's gradient
    assert grad_op.weights == 1_200_000_000 * 2
    assert grad_op.gradients == 1_200_000_000 * 2 // 4 + unit * 2
    assert "reduce bucket" not in terms  # FSDP has no DeepSpeed bucket


def test_tensor_parallel_divides_model_states():
    r = row(training.TrainingSettings(tp=4), "fp32")
    assert (r.weights, r.gradients, r.optimizer) == (10**9, 10**9, 2 * 10**9)


def test_pipeline_first_stage_holds_p_micro_batches_of_its_layers():
    """1F1B: stage 1 keeps p micro-batches in flight for its L/p layers = L layers' worth (Korthikanti §4.2.3);
    its parameters are the embeddings and L/p layers' blocks."""
    model = arch()
    shape = training.ModelShape(model, counts(1_200_000_000, embeddings=200_000_000, attention=1_000_000_000))
    one = training.training_row(shape, "bf16", 512, training.TrainingSettings())
    staged = training.training_row(shape, "bf16", 512, training.TrainingSettings(pp=4, gpus=4))
    assert staged.stage == "first"
    assert staged.activations == one.activations  # 4 micro-batches × 6 layers = 24 layers
    assert staged.weights == (1_000_000_000 * 6 // 24 + 200_000_000) * 2
    assert staged.logits == 0  # the loss lives on the last stage


def test_offload_moves_states_to_host():
    r = row(training.TrainingSettings(gpus=2, zero=2, offload="optimizer"), "mixed")
    assert r.optimizer == r.master == 0
    assert r.host == (8 + 4) * 10**9 // 2
    p = row(training.TrainingSettings(gpus=2, zero=3, offload="params"), "mixed")
    kept = sum(t.bytes for t in p.terms if t.name in ("gathered params", "persistent params"))
    assert p.weights == kept and p.gradients == 500_000_000 * 2  # the reduce bucket stays on the GPU
    assert p.host == (2 + 4 + 8 + 4) * 10**9 // 2
    assert sum(t.bytes for t in p.terms) == p.total


def test_qlora_base_is_nf4_and_only_adapters_train():
    model = arch()
    r = row(training.TrainingSettings(mode="qlora", lora_rank=8, lora_targets=("q", "v")), "bf16", model)
    adapters = 24 * 8 * (2048 + 2048)
    assert r.trainable == adapters
    assert r.weights == training.nf4_bytes(10**9) + adapters * 2
    assert r.gradients == adapters * 2 and r.optimizer == adapters * 4


# --- the CLI: seeds-independent sharding and errors ---------------------------------------------------


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def training_json(*args: str) -> dict:
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["training"]


def test_json_carries_every_term_and_settings(fake_hub):
    data = training_json("test/tiny", "--train", "full", "--seq-len", "128", "--gpus", "2", "--zero", "1")
    assert data["settings"]["data_parallel"] == 2 and data["settings"]["seq_len"] == 128
    assert [r["regime"] for r in data["rows"]] == ["fp32", "bf16", "mixed"]
    for r in data["rows"]:
        assert sum(t["bytes"] for t in r["terms"]) == r["total"]
        assert {t["name"] for t in r["terms"]} >= {
            "weights",
            "gradients",
            "optimizer",
            "master",
            "activations",
        }


def test_tiny_full_fine_tune_fp32_exact(fake_hub):
    """test/tiny: 202,048 params, h 64, i 128 gated, 2 layers, 4 heads, 2 KV heads, d 16, V 1000.
    fp32, AdamW, b 1, s 128, SDPA, no dropout, overhead 0:
    states 202,048 × 16; per layer 4·128·(4·64 + 2·64 + 2·32 + 4·128 + 64) + 4·4·128; logits 128·1000·12."""
    data = training_json(
        "test/tiny", "--train", "full", "--regime", "fp32", "--seq-len", "128", "--overhead", "0GB"
    )
    r = data["rows"][0]
    layer = 4 * 128 * (4 * 64 + 2 * 64 + 2 * 32 + 4 * 128 + 64) + 4 * 4 * 128
    assert r["weights"] + r["gradients"] + r["optimizer"] == 202_048 * 16
    assert r["activations"] == 2 * layer
    assert r["logits"] == 128 * 1000 * 12
    assert r["total"] == 202_048 * 16 + 2 * layer + 128 * 1000 * 12


def test_table_has_a_column_per_component(fake_hub):
    result = cli(
        "test/tiny",
        "--train",
        "lora",
        "--seq-len",
        "128",
        "--gpus",
        "2",
        "--zero",
        "2",
        "--offload",
        "optimizer",
    )
    assert result.exit_code == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("regime"))
    assert re.split(r"\s{2,}", header.strip()) == [
        "regime", "weights GiB", "gradients GiB", "optimizer GiB", "master GiB", "activations GiB",
        "logits GiB", "overhead GiB", "total GiB", "host RAM GiB", "fits on",
    ]  # fmt: skip
    assert "2 GPUs = tp 1 × pp 1 × dp 2 · ZeRO-2 · offload optimizer to host" in result.stdout


def test_explain_shows_each_term_with_formula(fake_hub):
    result = cli("test/tiny", "--train", "full", "--regime", "mixed", "--seq-len", "64", "--explain")
    assert result.exit_code == 0
    assert "Korthikanti et al. 2022" in result.stdout
    assert "202,048 × 4 B fp32 master" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--train", "full", "--zero", "2", "--fsdp", "full"),
            "--zero and --fsdp are alternatives: give one of them",
        ),
        (("--train", "full", "--tp", "3"), "--tp 3 does not divide the 4 attention heads"),
        (("--train", "full", "--gpus", "3", "--tp", "2"), "--gpus 3 is not divisible by --tp × --pp = 2"),
        (("--train", "full", "--pp", "3"), "--pp 3 exceeds the model's 2 layers"),
        (("--train", "lora", "--lora-rank", "0"), "--lora-rank must be at least 1"),
        (
            ("--train", "lora", "--lora-targets", "q,x"),
            "unknown --lora-targets 'x' (choose from q,k,v,o,gate,up,down)",
        ),
        (("--train", "full", "--micro-batch", "0"), "--micro-batch must be at least 1"),
        (("--train", "full", "--offload", "optimizer"), "--offload optimizer needs --zero 1-3 or --fsdp"),
        (
            ("--train", "full", "--gpus", "2", "--zero", "2", "--offload", "params"),
            "--offload params needs --zero 3 or --fsdp full (parameters must be sharded)",
        ),
        (
            (
                "--optimizer",
                "sgd",
            ),
            "--optimizer applies to training: add --train full|lora|qlora",
        ),
        (
            (
                "--gpus",
                "4",
            ),
            "--gpus applies to training: add --train full|lora|qlora",
        ),
        (("--train", "full", "--batch", "4"), "--batch is for inference; with --train use --micro-batch"),
        (("--train", "full", "--params", "0"), "--params must be at least 1"),
        (("--train", "full", "--params", "inf"), "--params must be a finite count, not 'inf'"),
        (
            ("--train", "full", "--kv-dtype", "fp8"),
            "--kv-dtype is for inference; with --train it does not apply",
        ),
        (
            ("--train", "full", "--serving-factor", "1.2"),
            "--serving-factor is for inference; with --train it",
        ),
        (
            ("--train", "full", "--all-logits"),
            "--all-logits is for inference; with --train it does not apply",
        ),
        (("--train", "full", "--state-dtype", "fp32"), "--state-dtype is for inference; with --train it"),
        (("--train", "full", "--lora-rank", "8"), "--lora-rank applies to --train lora or qlora, not full"),
        (("--train", "full", "--lora-targets", "q,v"), "--lora-targets applies to --train lora or qlora"),
        (
            (
                "--lora-rank",
                "8",
            ),
            "--lora-rank applies to training: add --train full|lora|qlora",
        ),
    ],
)
def test_bad_combinations_exit_3(fake_hub, args, message):
    result = cli("test/tiny", "--seq-len", "64", *args)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith(f"Error: {message}")


# --- measured training memory vs the estimates ----------------------------------------------------


def test_measured_comparison_matches_the_readme(fake_hub):
    """Each row's error, recomputed now, is the one the README's generated table shows, and every row outside
    ±15 % has an explanation under its label in the README (the explanation names the row)."""
    from .test_docs import invoke

    results = compare_measured.comparison(invoke)
    readme = docs.README.read_text()
    block = next(m.group("body") for m in docs.BLOCK_RE.finditer(readme) if m.group("name") == "measured")
    for r in results:
        line = next(line for line in block.splitlines() if line.startswith(f"| {r['label']} "))
        assert f"{r['error'] * 100:+.1f} %" in line
        if not r["within"]:
            assert f"**{r['label']}**" in readme, (
                f"{r['label']} is outside its tolerance and the README does not explain it"
            )
    assert compare_measured.hit_rate(results) in block


def test_replicas_to_fit_is_the_smallest_zero3_degree():
    """bf16 AdamW on 1e9 params: 8 B/param sharded over N, plus what does not shrink with N (DeepSpeed's reduce
    bucket, persistent and still-gathered params, activations, logits, overhead). N = ceil(8e9 / (capacity − fixed))."""
    model = arch()
    shape = training.ModelShape(model, counts(10**9))
    settings = training.TrainingSettings(overhead_bytes=10**9)
    layer = training.layer_activations(
        model, b=1, s=512, e=2, attn="sdpa", attn_dropout=False, hidden_dropout=False, softmax_bytes=4
    )
    zero3 = training.training_row(shape, "bf16", 512, replace(settings, gpus=2, zero=3))
    terms = {t.name: t.bytes for t in zero3.terms}
    assert terms["reduce bucket"] == 500_000_000 * 2 and terms["persistent params"] == 50_176 * 2
    buffers = terms["reduce bucket"] + terms["persistent params"] + terms["gathered params"]
    fixed = buffers + 24 * layer.per_gpu(1) + 512 * 50000 * 12 + 10**9
    capacity = 6 * 10**9
    expected = -(-8 * 10**9 // (capacity - fixed))
    assert fit_training.replicas_to_fit(shape, "bf16", 512, settings, capacity) == expected
    assert (
        fit_training.replicas_to_fit(shape, "bf16", 512, settings, fixed) is None
    )  # never below the fixed part


def test_params_accepts_suffixes(fake_hub):
    six_b = training_json(
        "test/tiny", "--train", "full", "--regime", "fp32", "--seq-len", "8", "--params", "6B"
    )
    assert six_b["rows"][0]["weights"] == 24 * 10**9
    assert six_b["parameters_source"] == "option"
    m = training_json(
        "test/tiny", "--train", "full", "--regime", "fp32", "--seq-len", "8", "--params", "350M"
    )
    assert m["rows"][0]["weights"] == 1_400_000_000


def test_autocast_keeps_norm_inputs_and_outputs_in_fp32():
    """Mixed with fp32 gradients = torch.autocast over an fp32 model: the replicated 4h per layer are 4 bytes
    (layer_norm on autocast's fp32 list, fp32 residual stream); DeepSpeed-style 16-bit gradients keep them 16-bit."""
    amp = row(training.TrainingSettings(grad_dtype="fp32"), "mixed")
    deepspeed = row(training.TrainingSettings(grad_dtype="16bit"), "mixed")
    assert amp.activations - deepspeed.activations == 24 * (4 - 2) * 512 * 4 * 1024


def test_cli_choices_and_shown_defaults_are_the_library_s():
    """cli.py takes its choices from hubmem.choices and leaves defaults to the library (an option not
    given is not passed); the defaults `--help` shows must be the library's."""
    from hubmem.jobs.options import InferenceOptions

    params = {p.name: p for p in main.commands["estimate"].params}
    assert tuple(params["train"].type.choices) == training.TRAIN_MODES
    assert tuple(params["regimes"].type.choices) == tuple(training.REGIMES)
    assert tuple(params["optimizer"].type.choices) == training.OPTIMIZERS
    assert tuple(params["objective"].type.choices) == training.OBJECTIVES
    assert tuple(params["activation_rule"].type.choices) == training.ACTIVATION_RULES
    library = {**vars(InferenceOptions()), **vars(training.TrainingSettings())}
    library.update(overhead="1GiB", lora_targets=",".join(library["lora_targets"]))  # as the CLI writes them
    shown = {
        name: p.show_default
        for name, p in params.items()
        if isinstance(getattr(p, "show_default", None), str)
    }
    # the GGUF options (hubmem.runtimes.llamacpp): llama.cpp's defaults, and the runtime preset
    from hubmem.runtimes.llamacpp import LlamaCppOptions

    llama = LlamaCppOptions()
    library.update({k: v for k, v in vars(llama).items() if k != "overhead"}, runtime="llama.cpp")
    # --fit on|off and --fit-target in MiB, as llama.cpp writes them
    library.update(fit="on" if llama.fit else "off", fit_target=llama.fit_target // 1024**2)
    # 16 + --num-beams, --generate-cache, --bnb-compute-dtype, --loss-dtype, --gptq-kernel, --gpu-sms,
    # --nccl-channels, --lora-dropout + 13 llama.cpp options (--ngl-output among them)
    assert len(shown) == 24 + 13
    for name, text in shown.items():
        assert text == str(library[name]), name
    assert InferenceOptions().overhead == 1024**3


def test_gpu_verdict_per_training_regime(fake_hub):
    # Llama-3.2-1B full fine-tuning on a T4: each regime's per-GPU total against the T4's usable memory.
    from hubmem.fit.gpus import find_gpu

    t4 = find_gpu("t4")
    args = ["meta-llama/Llama-3.2-1B", "--train", "full", "--seq-len", "1024", "--gpu", "t4"]
    result = CliRunner().invoke(main, [*args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)["training"]
    totals = {r["regime"]: r["total"] for r in d["rows"]}
    fit = d["fit"]
    for regime, total in totals.items():
        assert fit[regime]["usable_bytes"] == t4.usable_bytes
        assert fit[regime]["headroom_bytes"] == t4.usable_bytes - total
        assert fit[regime]["fits"] == (total <= t4.usable_bytes)
    # fp32: 1,235,814,400 × 16 B of weights, gradients and AdamW states alone exceed a T4 (15 GiB usable)
    assert not fit["fp32"]["fits"]
    n = fit["fp32"]["gpus_needed"]
    assert fit["fp32"]["label"] == f"no: {n}× {t4.name} with ZeRO-3"
    # n is the smallest ZeRO-3 data-parallel degree whose per-GPU total fits: n fits, n − 1 does not
    for gpus, fits in ((n, True), (n - 1, False)):
        r = CliRunner().invoke(
            main, [*args, "--gpus", str(gpus), "--zero", "3", "--regime", "fp32", "--format", "json"]
        )
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["training"]["fit"]["fp32"]["fits"] is fits
    assert fit["bf16"]["fits"] and fit["bf16"]["label"] == f"yes: 1× {t4.name}"


def test_num_gpus_is_refused_with_train(fake_hub):
    result = CliRunner().invoke(main, ["test/tiny", "--train", "full", "--gpu", "t4", "--num-gpus", "2"])
    assert result.exit_code == 3
    assert result.stderr == "Error: with --train, --gpus N sets the number of GPUs (tp × pp × replicas)\n"


# --- mixture of experts ---------------------------------------------------------------------------


def moe_arch(num_layers: int, moe_layers: range, **moe_over) -> Architecture:
    from hubmem.model.moe import MoE

    spec = dict(
        num_experts=8,
        experts_per_token=2,
        expert_intermediate_size=14336,
        shared_intermediate_size=0,
        moe_layers=tuple(moe_layers),
        dense_intermediate_size=14336,
        layer_rule="test",
    )
    spec.update(moe_over)
    return arch(
        hidden_size=4096,
        intermediate_size=14336,
        num_heads=32,
        num_kv_heads=8,
        head_dim=128,
        gated_mlp=True,
        num_layers=num_layers,
        layer_types=("full",) * num_layers,
        moe=MoE(**spec),
    )


def test_moe_layer_keeps_top_k_expert_widths_routed_copies_and_router_probabilities():
    """Mixtral shapes, bf16, SDPA: the MLP term runs k·i_moe wide, each of the k copies keeps its gathered
    input and its down-projection output (2·k·e·s·b·h), the router its fp32 softmax (4·s·b·E)."""
    s, b, e, h = 1024, 1, 2, 4096
    mixtral = moe_arch(32, range(32))
    moe, dense = (
        training.layer_activations(
            mixtral,
            b=b,
            s=s,
            e=e,
            attn="sdpa",
            attn_dropout=False,
            hidden_dropout=False,
            softmax_bytes=4,
            moe_layer=flag,
        )  # fmt: skip
        for flag in (True, False)
    )
    attention = (
        e * s * b * (2 * 4096 + 2 * 8 * 128 + 4096) + 4 * b * 32 * s
    )  # Q, o_proj in, K, V, SDPA out, LSE
    assert dense.per_gpu(1) == e * s * b * 4 * h + attention + e * s * b * 4 * 14336
    assert moe.per_gpu(1) == (
        e * s * b * 4 * h + attention + e * s * b * 4 * (2 * 14336) + 2 * 2 * e * s * b * h + 4 * s * b * 8
    )
    assert moe.per_gpu(1) == 331_513_856


def test_mixtral_training_activations_through_the_cli(fake_hub):
    """32 MoE layers × the per-layer figure above, from the real Mixtral-8x7B checkpoint (no dropout in its config)."""
    out = cli_json("mistralai/Mixtral-8x7B-v0.1", "--train", "full", "--regime", "bf16", "--seq-len", "1024")
    row = out["training"]["rows"][0]
    assert row["activations"] == 32 * 331_513_856 == 10_608_443_392
    term = next(t for t in row["terms"] if t["name"] == "activations")
    assert term["formula"].startswith(
        "(32 MoE layers × 331,513,856 B) × 1 micro-batch(es) in flight; MoE layer = "
    )
    assert "top 2 of 8 experts" in term["formula"]


def test_dense_layers_of_an_moe_model_use_their_own_width_and_pipeline_stages_count_their_moe_layers():
    """DeepSeek-V3-like: 61 layers, the first 3 dense (first_k_dense_replace), 2 pipeline stages of 31."""
    deepseek = moe_arch(61, range(3, 61), dense_intermediate_size=18432)
    first = training._Layout("first", 0, 0, 31, 2, 1, 0)
    last = training._Layout("last", 0, 0, 31, 1, 1, 0)
    assert training._stage_moe_layers(deepseek, first) == 28
    assert training._stage_moe_layers(deepseek, last) == 31
    kw = dict(b=1, s=64, e=2, attn="sdpa", attn_dropout=False, hidden_dropout=False, softmax_bytes=4)
    dense = training.layer_activations(deepseek, **kw)
    plain = training.layer_activations(moe_arch(61, range(0), dense_intermediate_size=18432), **kw)
    assert dense.per_gpu(1) == plain.per_gpu(1)
    assert dense.sharded - training.layer_activations(
        moe_arch(61, range(3, 61)), **kw
    ).sharded == 2 * 64 * 4 * (18432 - 14336)


def test_readme_moe_activation_figures_are_the_formulas():
    """The README's Mixtral example: the MoE layer, 32 of them, and the dense reading it replaced."""
    from pathlib import Path

    kw = dict(b=1, s=1024, e=2, attn="sdpa", attn_dropout=False, hidden_dropout=False, softmax_bytes=4)
    moe = training.layer_activations(moe_arch(32, range(32)), moe_layer=True, **kw).per_gpu(1)
    plain = arch(
        hidden_size=4096, intermediate_size=14336, num_heads=32, num_kv_heads=8, head_dim=128, gated_mlp=True
    )
    dense = training.layer_activations(plain, **kw).per_gpu(1)
    assert dense == 180_486_144
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"{moe:,} B per layer, {32 * moe / 1e9:.1f} GB for 32 layers" in readme
    assert f"would give {dense:,} B" in readme
