"""The generated table of transformers' config classes (hubmem/model/config_classes.json) is what the
installed transformers says, and normalising through it gives exactly what normalising through
transformers gives, for every real config in the repo (fixtures and ../shared/reference/configs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hubmem.errors import MalformedConfigError
from hubmem.model import architecture, config_table, config_view
from hubmem.model.architecture import parse_architecture
from hubmem.model.config_view import BASE, NeedsTransformers

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILES = sorted(
    [
        *(ROOT / "fixtures" / "repos").glob("*/config.json"),
        *(ROOT / "fixtures" / "configs").glob("*.json"),
        *(ROOT.parent / "shared" / "reference" / "configs").glob("*.json"),
    ]
)
# The models `make bench` and the speed issue time: each must normalise without importing transformers.
BENCH_TYPES = ("llama", "qwen2", "qwen3", "qwen3_moe", "mistral", "deepseek_v3", "gpt2", "gemma3_text")


def _configs() -> list[tuple[str, dict]]:
    out = []
    for path in CONFIG_FILES:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "model_type" in data:
            out.append((f"{path.parent.name}/{path.name}", data))
    return out


CONFIGS = _configs()
TABLE = config_table.usable_table()


def test_the_packaged_table_is_for_the_installed_transformers() -> None:
    # `pip install -e '.[test]'` pins the transformers the table was generated from; a mismatch would
    # make every run import transformers (correct, but slow) and leave the table path untested.
    assert TABLE is not None, (
        f"config_classes.json is for transformers {json.loads(config_table.TABLE_PATH.read_text())['transformers']}, "
        f"installed is {config_table.installed_transformers()}: run `make config-table`"
    )


def test_every_model_type_maps_to_the_class_transformers_names() -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    assert TABLE is not None
    assert TABLE["types"] == dict(CONFIG_MAPPING_NAMES)


def test_the_legacy_layer_type_names_are_transformers_own() -> None:
    from transformers.configuration_utils import _LEGACY_LAYER_TYPE_REMAP

    assert TABLE is not None
    assert TABLE["layer_type_remap"] == _LEGACY_LAYER_TYPE_REMAP


@pytest.mark.parametrize(
    "class_name",
    sorted({TABLE["types"][c["model_type"]] for _, c in CONFIGS if c["model_type"] in TABLE["types"]}),
)
def test_regenerated_entry_equals_the_packaged_one(class_name: str) -> None:
    """Each class the repo's configs use, regenerated from the installed transformers: defaults,
    attribute map, sub-configs and derived fields (with the rule that reproduces each) are as shipped."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    assert TABLE is not None
    cls = CONFIG_MAPPING[next(t for t, n in TABLE["types"].items() if n == class_name)]
    base = TABLE["classes"][BASE]["defaults"]
    entry = config_table._class_entry(cls, base)
    # as generate() does: the views built while probing read this class's entry as it is being filled
    table = {**TABLE, "classes": {**TABLE["classes"], class_name: entry}}
    entry["derived"] = config_table._derived(cls, entry, table)
    assert json.loads(json.dumps(entry)) == TABLE["classes"][class_name]  # as written: tuples are lists


@pytest.mark.parametrize("name,config", CONFIGS, ids=[n for n, _ in CONFIGS])
def test_table_and_transformers_normalise_alike(name: str, config: dict, monkeypatch) -> None:
    through_table = parse_architecture(config)
    monkeypatch.setattr(architecture, "usable_table", lambda: None)
    through_transformers = parse_architecture(config)
    assert through_table == through_transformers


# The audit bench's models whose classes derive fields by rules beyond the common ones
# (config_rules.py): Falcon num_kv_heads, Llama 4 no_rope_layers -> layer_types, Nemotron-H
# hybrid_override_pattern -> layers_block_type, Qwen3-Next full_attention_interval -> layer_types.
RULE_TYPES = ("falcon", "llama4", "nemotron_h", "qwen3_next")


@pytest.mark.parametrize("name,config", [(n, c) for n, c in CONFIGS if c["model_type"] in TABLE["types"]])
def test_every_repo_config_needs_no_transformers_import(name: str, config: dict) -> None:
    assert TABLE is not None
    hf = config_view.view(config, TABLE)
    assert hf is not None
    architecture._parse(config, hf, "table")  # raises NeedsTransformers if a derived field has no rule


def test_the_repo_configs_cover_the_bench_and_rule_types() -> None:
    assert {c["model_type"] for _, c in CONFIGS} >= {*BENCH_TYPES, *RULE_TYPES}


def test_normalising_every_repo_config_leaves_transformers_unimported() -> None:
    """In a fresh interpreter, parse_architecture over every fixture and reference config: after
    each, transformers is still not in sys.modules (the import is what the table saves)."""
    script = f"""
import json, sys
from pathlib import Path
from hubmem.model.architecture import parse_architecture
for path in {[str(p) for p in CONFIG_FILES]!r}:
    config = json.loads(Path(path).read_text())
    if isinstance(config, dict) and "model_type" in config:
        parse_architecture(config)
        if "transformers" in sys.modules:
            sys.exit("transformers imported by " + path)
print("done")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "done\n")


@pytest.mark.parametrize(
    "class_name,field,rule",
    [
        ("FalconConfig", "num_kv_heads", "= heads"),
        ("FalconConfig", "ffn_hidden_size", "4 * hidden"),
        ("Llama4TextConfig", "no_rope_layers", "every no_rope_layer_interval if empty"),
        ("Llama4TextConfig", "layer_types", "chunked on rope layers"),
        ("Llama4TextConfig", "moe_layers", "every interleave_moe_layer_step"),
        ("SmolLM3Config", "no_rope_layers", "every no_rope_layer_interval"),
        ("SmolLM3Config", "layer_types", "sliding on no-rope layers"),
        ("NemotronHConfig", "layers_block_type", "hybrid_override_pattern"),
        (
            "Qwen3NextConfig",
            "layer_types",
            "linear_attention / full_attention every full_attention_interval or 4",
        ),
        ("Qwen3NextConfig", "mlp_only_layers", "[] if None"),
        ("MinistralConfig", "layer_types", "sliding if sliding_window"),
        ("MiniMaxConfig", "layer_types", "full_attention / linear_attention every 2"),
        ("Gemma4TextConfig", "layer_types", "every 6, last full"),
        ("BeamConfig", "layer_types", "every 6, last full by default"),
        ("GraniteMoeHybridConfig", "layer_types", "all linear_attention"),
        ("DeepseekV2Config", "head_dim", "= qk_rope_head_dim"),
        ("DeepseekOcr2TextConfig", "head_dim", "always hidden // heads"),
        ("Qwen2MoeConfig", "sliding_window", "if use_sliding_window else 0"),
        ("Qwen2MoeConfig", "layer_types", "odd layers below max_window_layers"),
        ("GraniteSWAConfig", "layer_types", "full at i % 4 == 0"),
    ],
)
def test_the_rule_the_table_names_for_a_field(class_name: str, field: str, rule: str) -> None:
    """The rule generate() found for each field these classes derive (checked there on the probes)."""
    assert TABLE is not None
    assert TABLE["classes"][class_name]["derived"][field] == rule


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "falcon", "num_attention_heads": 16, "hidden_size": 1024},  # Falcon-7B style: MQA
        {"model_type": "falcon", "num_attention_heads": 16, "hidden_size": 1024, "multi_query": False},
        {
            "model_type": "falcon",
            "num_attention_heads": 16,
            "hidden_size": 1024,
            "new_decoder_architecture": True,
        },
        {
            "model_type": "falcon",
            "num_attention_heads": 16,
            "hidden_size": 1024,
            "new_decoder_architecture": True,
            "num_kv_heads": 4,
        },
        {"model_type": "llama4_text", "num_hidden_layers": 8, "no_rope_layer_interval": 2},
        {"model_type": "llama4_text", "num_hidden_layers": 8, "attention_chunk_size": None},
        {"model_type": "llama4_text", "num_hidden_layers": 4, "no_rope_layers": []},
        {"model_type": "llama4_text", "num_hidden_layers": 4, "no_rope_layers": [0, 1, 1, 0]},
        {"model_type": "smollm3", "num_hidden_layers": 8, "use_sliding_window": True, "sliding_window": 256},
        {"model_type": "nemotron_h", "hybrid_override_pattern": "M*-EM-M*"},
        {"model_type": "nemotron_h", "num_hidden_layers": 4},
        {"model_type": "qwen3_next", "num_hidden_layers": 12, "full_attention_interval": 3},
        {"model_type": "qwen3_next", "num_hidden_layers": 6},
        {"model_type": "ministral", "num_hidden_layers": 4, "sliding_window": 4096},
        {"model_type": "gemma4_text", "num_hidden_layers": 8},
        {"model_type": "deepseek_v2", "head_dim": 192, "qk_rope_head_dim": 64, "num_key_value_heads": None},
        {"model_type": "deepseek_ocr2_text", "head_dim": 100, "hidden_size": 1280, "num_attention_heads": 10},
        {
            "model_type": "qwen2_moe",
            "num_hidden_layers": 6,
            "use_sliding_window": True,
            "max_window_layers": 3,
        },
        {"model_type": "qwen2_moe", "sliding_window": 4096, "use_sliding_window": False},
        {"model_type": "granite_swa", "num_hidden_layers": 9},
        {
            "model_type": "gemma4_text",
            "num_hidden_layers": 3,
            "layer_types": ["full_attention", "sliding_attention", "sliding_attention"],
        },
        {
            "model_type": "granitemoehybrid",
            "num_hidden_layers": 4,
            "layer_types": ["mamba", "attention", "mamba", "mamba"],
        },
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items() if k != "model_type")[:60] or c["model_type"],
)
def test_a_rule_reads_what_the_class_derives(config: dict) -> None:
    """Configs beside the probes generate() checked the rules on: the view reads each field the
    class derives by a rule as the class does."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    assert TABLE is not None
    real = CONFIG_MAPPING[config["model_type"]](**{k: v for k, v in config.items() if k != "model_type"})
    hf = config_view.view(config, TABLE)
    assert hf is not None
    derived = TABLE["classes"][hf.class_name]["derived"]
    read = {f: getattr(hf, f) for f, rule in derived.items() if rule is not None}
    assert read == {f: getattr(real, f) for f in read}
    assert read  # each config reads at least one of them


def test_a_value_the_class_refuses_is_left_to_the_class(monkeypatch) -> None:
    """A Nemotron-H pattern with a block letter NemotronHConfig does not map: the rule refuses, the
    class is built, refuses the config too, and the config is read as a raw dict, exactly as without
    the table (here: an error, the raw dict lacking the Mamba fields the class would default)."""
    config = {
        "model_type": "nemotron_h",
        "hybrid_override_pattern": "M*X",
        "hidden_size": 1024,
        "num_hidden_layers": 3,
        "num_attention_heads": 8,
        "vocab_size": 1000,
    }
    assert TABLE is not None
    hf = config_view.view(config, TABLE)
    assert hf is not None
    with pytest.raises(NeedsTransformers, match="hybrid_override_pattern 'M\\*X'"):
        _ = hf.layers_block_type
    message = "config.json has nemotron_h SSM layers but no usable mamba_num_heads"
    with pytest.raises(MalformedConfigError, match=f"^{message}$"):
        parse_architecture(config)
    monkeypatch.setattr(architecture, "usable_table", lambda: None)
    with pytest.raises(MalformedConfigError, match=f"^{message}$"):
        parse_architecture(config)


def test_a_constant_rule_is_refused_where_the_class_reads_an_input() -> None:
    """Lfm2Config's default layer_types is all full attention, but it comes from full_attn_idxs: the
    probe that varies full_attn_idxs keeps "all full_attention" from being recorded for it."""
    assert TABLE is not None
    derived = TABLE["classes"]["Lfm2Config"]["derived"]
    assert derived["layer_types"] is None and derived["full_attn_idxs"] is None
