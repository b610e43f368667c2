"""hubmem's estimates against *measured* GPU memory, inference and training (`make compare`).

The measurements are the inference and training rows of the project's reference table
(`shared/reference/measured-public.csv`), copied here with their settings and sources. Each row is
run through the CLI (fake Hub on 127.0.0.1) with the assumptions the measurement implies, and the
table printed is: estimate, measured, error %, within the tolerance or not (±10 % inference totals,
±15 % training totals). README.md carries the same table as a generated block (`scripts/docs.py`),
and tests/test_training.py checks every error against the README's explanation.

Rows of the reference table left out, and why (the README says the same):
- bigcode/octocoder "long prompt" eager / flash rows: the prompt's token count is not published
  (10 × a system prompt whose tokenisation needs the tokenizer, which is not here); choosing one
  would fit the row.
- the three "overhead" rows (CUDA context alone): no model; they are the sources of --overhead.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024**2
MB = 10**6
GB = 10**9
TOLERANCE = 0.15  # training totals: within ±15 %
INFERENCE_TOLERANCE = 0.10  # inference totals: within ±10 %

BERT = "google-bert/bert-large-uncased"
PYTHIA = "EleutherAI/pythia-410m"  # same architecture and parameter count as the measured -deduped repo
# transformers docs (model_memory_anatomy, perf_train_gpu_one): V100 16GB, HF Trainer with a sequence
# classification head, NVML "GPU memory occupied" printed as info.used // 1024**2 (MiB), which includes the
# 1343 MiB CUDA context + kernels the same page measured alone. BERT of that era: eager attention, dropout 0.1.
BERT_ARGS = ("--seq-len", "512", "--attn", "eager", "--objective", "classifier", "--overhead", "cuda11")
# transformers docs gpt_neox.md SDPA training benchmark (fxmarty's benchmark_sdpa_training): model loaded in
# float16, no optimizer (model.zero_grad(); loss = logits.sum(); loss.backward()), peak
# torch.cuda.max_memory_allocated() × 1e-6 (decimal MB, no CUDA context).
PYTHIA_ARGS = (
    "--regime",
    "bf16",
    "--optimizer",
    "sgd",
    "--objective",
    "logits-sum",
    "--overhead",
    "allocated",
)


@dataclass(frozen=True)
class Measured:
    label: str
    repo: str
    args: tuple[str, ...]
    regime: str
    measured: float
    unit: int  # bytes per unit of `measured`
    unit_name: str
    job: str = "training"  # or "inference": `regime` is then the precision row read
    train_mode: str = "full"  # --train full | lora | qlora
    what_note: str = ""  # how it was measured, where not NVML used (MiB) / peak allocated (MB)

    @property
    def what(self) -> str:
        if self.what_note:
            return self.what_note
        return "NVML used" if self.unit == MIB else "peak allocated"

    @property
    def tolerance(self) -> float:
        return INFERENCE_TOLERANCE if self.job == "inference" else TOLERANCE

    @property
    def cli_args(self) -> list[str]:
        head = [self.repo] if self.job == "inference" else [self.repo, "--train", self.train_mode]
        return [*head, *self.args]


ROWS = (
    Measured(
        "bert fp32 AdamW b4",
        BERT,
        ("--regime", "fp32", "--micro-batch", "4", *BERT_ARGS),
        "fp32",
        14949,
        MIB,
        "MiB",
    ),
    Measured(
        "bert fp32 AdamW b1",
        BERT,
        ("--regime", "fp32", "--micro-batch", "1", *BERT_ARGS),
        "fp32",
        8681,
        MIB,
        "MiB",
    ),
    Measured(
        "bert fp32 AdamW b1 ckpt",
        BERT,
        ("--regime", "fp32", "--micro-batch", "1", "--grad-checkpointing", *BERT_ARGS),
        "fp32",
        6775,
        MIB,
        "MiB",
    ),
    Measured(
        "bert fp16 AMP AdamW b4",
        BERT,
        ("--regime", "mixed", "--micro-batch", "4", *BERT_ARGS),
        "mixed",
        13939,
        MIB,
        "MiB",
    ),
    Measured(
        "bert fp16 AMP AdamW b1 ckpt",
        BERT,
        ("--regime", "mixed", "--micro-batch", "1", "--grad-checkpointing", *BERT_ARGS),
        "mixed",
        7275,
        MIB,
        "MiB",
    ),
    Measured(
        "bert fp32 Adafactor b4",
        BERT,
        ("--regime", "fp32", "--micro-batch", "4", "--optimizer", "adafactor", *BERT_ARGS),
        "fp32",
        12295,
        MIB,
        "MiB",
    ),
    Measured(
        "bert fp16 AMP Adafactor b1 ckpt",
        BERT,
        (
            "--regime",
            "mixed",
            "--micro-batch",
            "1",
            "--grad-checkpointing",
            "--optimizer",
            "adafactor",
            *BERT_ARGS,
        ),
        "mixed",
        4847,
        MIB,
        "MiB",
    ),
    Measured(
        "bert fp32 8-bit Adam b4",
        BERT,
        ("--regime", "fp32", "--micro-batch", "4", "--optimizer", "adamw-8bit", *BERT_ARGS),
        "fp32",
        13085,
        MIB,
        "MiB",
    ),
    Measured(
        "bert fp16 AMP 8-bit Adam b1 ckpt",
        BERT,
        (
            "--regime",
            "mixed",
            "--micro-batch",
            "1",
            "--grad-checkpointing",
            "--optimizer",
            "adamw-8bit",
            *BERT_ARGS,
        ),
        "mixed",
        5363,
        MIB,
        "MiB",
    ),
    *(
        Measured(
            f"pythia-410m fp16 {attn} b{b} s{s}",
            PYTHIA,
            ("--micro-batch", str(b), "--seq-len", str(s), "--attn", attn, *PYTHIA_ARGS),
            "bf16",
            value,
            MB,
            "MB",
        )
        for attn, b, s, value in (
            ("eager", 1, 128, 1789.95),
            ("eager", 1, 1024, 4772.36),
            ("sdpa", 1, 1024, 2408.35),
            ("eager", 1, 2048, 13484.1),
            ("sdpa", 1, 2048, 3882.01),
            ("eager", 4, 512, 6290.58),
            ("sdpa", 4, 512, 3877.29),
            ("sdpa", 4, 2048, 12705.1),
        )
    ),
)

GIB = 1024**3
OCTOCODER = "bigcode/octocoder"
# huggingface/blog optimize-llm.md: A100 40GB, transformers 4.3x `pipeline` (greedy, max_new_tokens=60) on a
# ~20-token prompt ("Question: Please write a function in Python that transforms bytes to Giga bytes.\n\nAnswer:"),
# peak torch.cuda.max_memory_allocated() / 1024**3 (GiB, no CUDA context), GPTBigCode eager attention.
OCTOCODER_ARGS = (
    "--prompt-len", "20", "--new-tokens", "60", "--generate-cache", "legacy", "--attn", "eager", "--overhead", "allocated",
)  # fmt: skip
# transformers docs gpt_neox.md SDPA inference table (RTX 3080 Ti, PyTorch 2.2.1, float16): optimum's
# benchmark_bettertransformer.py `generate(min_new_tokens=max_token, max_new_tokens=max_token)` with
# --max_token's default 100 after a prompt of "Seq len" tokens, peak max_memory_allocated() × 1e-6 (MB);
# the transformers of that date kept GPT-NeoX's tuple past_key_values (legacy cache).
PYTHIA_GEN_ARGS = (
    "--new-tokens",
    "100",
    "--generate-cache",
    "legacy",
    "--overhead",
    "allocated",
    "--precision",
    "bf16",
)

INFERENCE_ROWS = (
    Measured(
        "octocoder bf16 generate",
        OCTOCODER,
        (*OCTOCODER_ARGS, "--precision", "bf16"),
        "bf16",
        29.0260648727417,
        GIB,
        "GiB",
        job="inference",
    ),
    Measured(
        "octocoder LLM.int8 generate",
        OCTOCODER,
        (*OCTOCODER_ARGS, "--precision", "bnb-int8"),
        "int8",
        15.219234466552734,
        GIB,
        "GiB",
        job="inference",
    ),
    Measured(
        "octocoder bnb fp4 generate",
        OCTOCODER,
        (*OCTOCODER_ARGS, "--precision", "fp4"),  # load_in_4bit defaults: fp4, no double quant, fp32 compute
        "fp4",
        9.543574333190918,
        GIB,
        "GiB",
        job="inference",
    ),
    Measured(
        "bert-large fp32 loaded",
        BERT,
        ("--precision", "fp32", "--seq-len", "1", "--overhead", "cuda11"),
        "fp32",
        2631,
        MIB,
        "MiB",
        job="inference",
    ),
    *(
        Measured(
            f"pythia-410m fp16 generate {attn} b{b} p{p}",
            PYTHIA,
            ("--batch", str(b), "--prompt-len", str(p), "--attn", attn, *PYTHIA_GEN_ARGS),
            "bf16",
            value,
            MB,
            "MB",
            job="inference",
        )
        for attn, b, p, value in (
            ("eager", 1, 128, 974.831),
            ("eager", 1, 2048, 1752.47),
            ("eager", 4, 2048, 4175.5),
            ("sdpa", 4, 2048, 4165.26),
        )
    ),
)
# litgpt tutorials/resource-tables.md (commit 8641822, 10/20/2023): 1× A100-SXM4-40GB, PyTorch 2.1.0,
# bitsandbytes 0.41.1, `--precision bf16-true`, "Max GPU RAM" = torch.cuda.max_memory_allocated() / 1e9
# (decimal GB, no CUDA context). Inference: generate/base.py's defaults, the prompt "What food do llamas
# eat?" (about 10 tokens) and max_new_tokens 50; `--quantize bnb.nf4[-dq]` goes through Lightning's
# BitsandbytesPrecision, which replaces every nn.Linear (lm_head too) with a 4-bit one computing in bf16.
LITGPT_GEN = ("--prompt-len", "10", "--new-tokens", "50", "--overhead", "allocated")
LITGPT_NF4 = ("--precision", "nf4", "--bnb-compute-dtype", "bf16", "--bnb-quantize-lm-head")
LLAMA2_7B, LLAMA2_13B, LLAMA2_70B, FALCON_40B = (
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf",
    "meta-llama/Llama-2-70b-hf",
    "tiiuae/falcon-40b",
)
LITGPT_INFERENCE = tuple(
    Measured(
        f"litgpt {name} {label} generate",
        repo,
        (*LITGPT_GEN, *(("--precision", "bf16") if label == "bf16" else LITGPT_NF4)),
        "bf16" if label == "bf16" else "nf4",
        value,
        GB,
        "GB",
        job="inference",
    )
    if label != "nf4-dq"
    else Measured(
        f"litgpt {name} {label} generate",
        repo,
        (*LITGPT_GEN, *LITGPT_NF4, "--bnb-double-quant"),
        "nf4",
        value,
        GB,
        "GB",
        job="inference",
    )
    for name, repo, label, value in (
        ("Llama-2-7b", LLAMA2_7B, "bf16", 13.52),
        ("Llama-2-7b", LLAMA2_7B, "nf4", 4.57),
        ("Llama-2-7b", LLAMA2_7B, "nf4-dq", 4.26),
        ("Llama-2-13b", LLAMA2_13B, "bf16", 26.21),
        ("Llama-2-13b", LLAMA2_13B, "nf4", 8.32),
        ("Llama-2-13b", LLAMA2_13B, "nf4-dq", 7.72),
        ("Llama-2-70b", LLAMA2_70B, "nf4-dq", 37.21),
        ("falcon-40b", FALCON_40B, "nf4", 26.55),
        ("falcon-40b", FALCON_40B, "nf4-dq", 24.63),
    )
)
# Training: finetune/lora.py's defaults of that commit: LoRA r 8 on the query and value projections
# (4,194,304 trainable for 7B = 32 × 2 × 8 × (4096 + 4096)), AdamW, no activation checkpointing,
# bf16-true weights; Alpaca's longest example is 1,304 Llama-2 tokens (the page), the peak's length.
LITGPT_LORA = (
    "--lora-rank",
    "8",
    "--lora-targets",
    "q,v",
    "--regime",
    "bf16",
    "--seq-len",
    "1304",
    "--overhead",
    "allocated",
    "--lora-dropout",
    "0.05",
    "--lora-fused-qkv",
)
LITGPT_TRAINING = tuple(
    Measured(
        f"litgpt {name} {mode} mb{b}",
        repo,
        ("--micro-batch", str(b), *LITGPT_LORA),
        "bf16",
        value,
        GB,
        "GB",
        train_mode=mode,
    )
    for name, repo, mode, b, value in (
        ("Llama-2-7b", LLAMA2_7B, "lora", 1, 21.30),
        ("Llama-2-7b", LLAMA2_7B, "lora", 2, 29.07),
        ("Llama-2-13b", LLAMA2_13B, "lora", 1, 38.12),
        ("Llama-2-7b", LLAMA2_7B, "qlora", 1, 13.84),  # bnb.nf4-dq: hubmem's qlora is NF4 + double quant
        ("Llama-2-13b", LLAMA2_13B, "qlora", 1, 22.55),
    )
)
# huggingface/optimum tests/benchmark/README.md "GPTQ benchmark" (commit 87fcf9f, 2023-11-01: AutoGPTQ 0.5.0,
# PyTorch 2.0.1, bitsandbytes 0.41.1, transformers 4.35, one A100-SXM4-80GB): benchmark_gptq.py --sweep runs
# Llama-2-13b-chat in fp16, TheBloke/Llama-2-13B-chat-GPTQ (4 bits, group 128, desc_act False) with the
# exllamav2 kernel, and bitsandbytes load_in_4bit (fp4, fp16 compute), greedy `generate` of exactly 512 new
# tokens after 512 random prompt tokens (`--prefill`: 1 new token). "Peak memory (MB)" is
# allocated_bytes.all.peak × 1e-6 + (nvidia-smi peak − reserved_bytes.all.peak): torch's peak plus the
# non-torch memory (CUDA context, extensions; memory_tracker.py polls `nvidia-smi --query-gpu=memory.used`).
# The script calls torch.cuda.is_available() at module level, before its first CUDA tensor: that initializes
# the driver (cudaGetDeviceCount -> cuInit) before PyTorch 2.0.1 sets CUDA_MODULE_LOADING=LAZY in
# torch.cuda._lazy_init, so modules load as the driver defaults, eagerly before CUDA 12.2 (cu117/cu118
# wheels of that date; pytorch#161103, #152695): `--overhead torch-eager` (the cuBLAS workspace is inside
# the allocator's peak from PyTorch 2.0 on, pytorch#95668). transformers 4.35's Llama ran eager attention
# with the tuple cache (`--generate-cache legacy`).
# The fixture meta-llama/Llama-2-13b-hf has the chat model's architecture and parameter count.
OPTIMUM_ARGS = (
    "--prompt-len",
    "512",
    "--generate-cache",
    "legacy",
    "--attn",
    "eager",
    "--overhead",
    "torch-eager",
)
OPTIMUM_PRECISION = {
    "fp16": ("bf16", ("--precision", "bf16")),
    "gptq exllamav2": ("gptq", ("--precision", "gptq", "--gptq-kernel", "exllamav2")),
    "bnb fp4": ("fp4", ("--precision", "fp4", "--bnb-compute-dtype", "fp16")),
}
OPTIMUM_GPTQ = tuple(
    Measured(
        f"optimum Llama-2-13b {name} {phase} b{b}",
        LLAMA2_13B,
        ("--batch", str(b), "--new-tokens", new, *OPTIMUM_ARGS, *OPTIMUM_PRECISION[name][1]),
        OPTIMUM_PRECISION[name][0],
        value,
        MB,
        "MB",
        job="inference",
        what_note="peak allocated + non-torch",
    )
    for name, values in (
        # "Peak memory (MB)" of generate b1, b16, then "Max memory (MB)" of prefill b1, b16
        ("fp16", (29152.98, 53986.51, 27999.54, 35871.88)),
        ("gptq exllamav2", (11313.75, 35740.95, 10260.35, 18104.44)),
        ("bnb fp4", (11018.36, 35532.37, 9952.65, 17737.95)),
    )
    for (phase, new, b), value in zip(
        (("generate", "512", 1), ("generate", "512", 16), ("prefill", "1", 1), ("prefill", "1", 16)), values
    )
)
# huggingface/peft docs/source/accelerate/deepspeed.md and fsdp.md (examples/sft/train.py through TRL's
# SFTTrainer): meta-llama/Llama-2-70b-hf, LoRA r 8 on all linear layers, --max_seq_len 2048 with packing (every
# sequence full), --bf16 True, gradient checkpointing, flash attention 2 (no s² tensor: `--attn sdpa`), AdamW,
# --lora_dropout 0.1;
# the per-GPU figure each page reads off nvidia-smi / W&B (NVML used: `--overhead torch-lazy[-sm90]`).
# ZeRO-3 LoRA: 8× H100 80GB, per-device batch 8: "64 GB (80%)", which is GiB (80 % of the 81,559 MiB NVML
# total is 63.7 GiB; 64e9 B would be 75 %). DeepSpeed's bf16 engine casts the fp32-loaded model to bf16.
# ZeRO-3 QLoRA (NF4, double quant, bf16 quant storage so ZeRO shards it) on 2× 40 GB, batch 2: "36.6 GB".
# FSDP FULL_SHARD QLoRA on 2 GPUs, batch 2, CPU offload disabled: "35.6 GB/GPU". The units of the last two
# are not stated: taken as written (1e9 B).
PEFT_ARGS = (
    "--lora-rank", "8", "--lora-targets", "q,k,v,o,gate,up,down", "--seq-len", "2048",
    "--grad-checkpointing", "--attn", "sdpa", "--regime", "bf16", "--lora-dropout", "0.1",
)  # fmt: skip
PEFT_TRAINING = tuple(
    Measured(
        f"peft Llama-2-70b {mode} {sharding} {gpus_label} mb{b}",
        LLAMA2_70B,
        ("--micro-batch", str(b), "--gpus", str(gpus), *shard_args, *PEFT_ARGS, "--overhead", overhead),
        "bf16",
        value,
        unit,
        unit_name,
        train_mode=mode,
        what_note="NVML used",
    )
    for mode, sharding, shard_args, gpus, gpus_label, b, overhead, value, unit, unit_name in (
        ("lora", "zero3", ("--zero", "3"), 8, "8×H100", 8, "torch-lazy-sm90", 64, GIB, "GiB"),
        ("qlora", "zero3", ("--zero", "3"), 2, "2×40GB", 2, "torch-lazy", 36.6, GB, "GB"),
        ("qlora", "fsdp", ("--fsdp", "full"), 2, "2 GPUs", 2, "torch-lazy", 35.6, GB, "GB"),
    )
)
ALL_ROWS = (*INFERENCE_ROWS, *LITGPT_INFERENCE, *OPTIMUM_GPTQ, *ROWS, *LITGPT_TRAINING, *PEFT_TRAINING)

Invoke = Callable[[list[str]], str]  # CLI args -> stdout


def command(row: Measured) -> str:
    return " ".join(["hubmem", *row.cli_args])


def comparison(invoke: Invoke, rows: tuple[Measured, ...] = ALL_ROWS) -> list[dict]:
    """One dict per measured row: estimate and measured in bytes, error as a fraction."""
    out = []
    for row in rows:
        data = json.loads(invoke([*row.cli_args, "--format", "json"]))
        if row.job == "inference":
            estimate = next(r for r in data["rows"] if r["precision"] == row.regime)["total"]
        else:
            estimate = next(r for r in data["training"]["rows"] if r["regime"] == row.regime)["total"]
        measured = round(row.measured * row.unit)
        error = (estimate - measured) / measured
        out.append(
            {
                "label": row.label,
                "job": row.job,
                "estimate": estimate,
                "measured": measured,
                "error": error,
                "within": abs(error) <= row.tolerance,
            }
        )
    return out


def hit_rate(results: list[dict]) -> str:
    """'23 of 25 rows within tolerance (inference 8 of 8 within ±10 %, training 15 of 17 within ±15 %)'."""

    def count(job: str | None) -> tuple[int, int]:
        rows = [r for r in results if job is None or r["job"] == job]
        return sum(r["within"] for r in rows), len(rows)

    (hit, n), (ih, i_n), (th, tn) = count(None), count("inference"), count("training")
    return (
        f"{hit} of {n} rows within tolerance ({hit / n:.0%}): inference {ih} of {i_n} within "
        f"±{INFERENCE_TOLERANCE:.0%}, training {th} of {tn} within ±{TOLERANCE:.0%}"
    )


def table(results: list[dict], rows: tuple[Measured, ...] = ALL_ROWS) -> str:
    from hubmem.output.tables import render_rows

    lines = [
        [
            r["label"],
            row.job,
            f"{row.measured:,} {row.unit_name} ({row.what})",
            f"{r['measured'] / MIB:,.0f}",
            f"{r['estimate'] / MIB:,.0f}",
            f"{r['error'] * 100:+.1f} %",
            "yes" if r["within"] else f"no (±{row.tolerance:.0%})",
        ]
        for r, row in zip(results, rows)
    ]
    headers = ["measured run", "job", "as published", "measured MiB", "hubmem MiB", "error", "within"]
    return render_rows(headers, lines, "markdown", numeric=(3, 4, 5)) + "\n" + hit_rate(results) + "\n"


def with_fake_hub(fn: Callable[[Invoke], str]) -> str:
    """Run `fn` with an invoke() that calls the CLI against the fixture repos on a loopback fake Hub."""
    from tests.fakehub import FakeHub

    hub = FakeHub(ROOT / "fixtures" / "repos", lazy=True).start()
    from tests import gguf_fixtures

    gguf_fixtures.register(hub)  # the GGUF repos (README "GGUF repos")
    os.environ.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=tempfile.mkdtemp(),
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_COLOR="1",
        COLUMNS="120",
    )
    os.environ.pop("HF_HUB_OFFLINE", None)
    from click.testing import CliRunner

    from hubmem.cli import main as cli

    def invoke(args: list[str]) -> str:
        result = CliRunner().invoke(cli, args, terminal_width=120)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    try:
        return fn(invoke)
    finally:
        hub.stop()


def main() -> int:
    def report(invoke: Invoke) -> str:
        lines = [table(comparison(invoke)), ""]
        lines += [f"{r.label}: {command(r)}" for r in ALL_ROWS]
        return "\n".join(lines) + "\n"

    sys.stdout.write(with_fake_hub(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
