"""Training runtime options: --loss-dtype (16-bit loss buffers) and PEFT --modules-to-save.

meta-llama/Llama-2-7b-hf: h 4096, i 11008, 32 layers, V 32,000, 6,738,415,616 parameters; embed_tokens
and lm_head 32,000 × 4,096 = 131,072,000 each (untied). LoRA r 16 on q,k,v,o,gate,up,down, per layer:
4 × 16·(4096 + 4096) + 3 × 16·(4096 + 11008) = 524,288 + 724,992 = 1,249,280; × 32 = 39,976,960."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hubmem.cli import main

LLAMA = "meta-llama/Llama-2-7b-hf"
ADAPTERS = 39_976_960
SAVED = 2 * 131_072_000


def terms(*args: str) -> dict[str, int]:
    result = CliRunner().invoke(
        main, [LLAMA, "--seq-len", "1024", "--regime", "bf16", "--overhead", "0GB", "--format", "json", *args]
    )
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["training"]["rows"]
    return {t["name"]: t["bytes"] for t in row["terms"]} | {"trainable": row["trainable_parameters"]}


def test_a_16_bit_loss_keeps_its_buffers_in_16_bit(fake_hub):
    # fp32 (transformers ForCausalLMLoss upcasts): b·s·V·(4 + 4 + 4) = 1·1024·32000·12 = 393,216,000;
    # 16bit (litgpt's bf16-true cross_entropy): b·s·V·(2 + 2 + 2) = 196,608,000
    assert terms("--train", "lora")["logits"] == 393_216_000
    assert terms("--train", "lora", "--loss-dtype", "16bit")["logits"] == 196_608_000


def test_modules_to_save_train_a_full_copy_of_the_embeddings_and_the_head(fake_hub):
    t = terms("--train", "lora", "--modules-to-save", "embed,lm_head")
    assert t["trainable"] == ADAPTERS + SAVED == 302_120_960
    # frozen base 6,738,415,616 × 2 + adapters 39,976,960 × 2 + the trained copies 262,144,000 × 2
    assert t["weights"] == (6_738_415_616 + ADAPTERS + SAVED) * 2 == 14_081_073_152
    assert t["gradients"] == 302_120_960 * 2
    assert t["optimizer"] == 2 * 302_120_960 * 2  # AdamW, two bf16 states in the bf16 regime
    plain = terms("--train", "lora")
    assert plain["trainable"] == ADAPTERS and plain["weights"] == (6_738_415_616 + ADAPTERS) * 2


def test_bad_training_runtime_options_exit_3(fake_hub):
    for args, message in (
        (
            ("--train", "full", "--modules-to-save", "embed"),
            "Error: --modules-to-save applies to --train lora or qlora, not full\n",
        ),
        (
            ("--train", "lora", "--modules-to-save", "embed,norm"),
            "Error: unknown --modules-to-save 'norm' (choose from embed,lm_head)\n",
        ),
        (
            (
                "--loss-dtype",
                "16bit",
            ),
            "Error: --loss-dtype applies to training: add --train full|lora|qlora\n",
        ),
    ):
        result = CliRunner().invoke(main, [LLAMA, "--seq-len", "64", *args])
        assert (result.exit_code, result.stderr) == (3, message), args
