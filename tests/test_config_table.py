"""The generated table of transformers' config classes (hubmem/model/config_classes.json) is what the
installed transformers says, and normalising through it gives exactly what normalising through
transformers gives, for every real config in the repo (fixtures and ../shared/reference/configs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("name,config", [(n, c) for n, c in CONFIGS if c["model_type"] in BENCH_TYPES])
def test_common_models_need_no_transformers_import(name: str, config: dict) -> None:
    assert TABLE is not None
    hf = config_view.view(config, TABLE)
    assert hf is not None
    architecture._parse(config, hf, "table")  # raises NeedsTransformers if a derived field has no rule


def test_a_field_only_the_class_derives_is_read_through_transformers() -> None:
    """A class whose __post_init__ derives a field no rule reproduces: the view refuses to guess."""
    assert TABLE is not None
    unknown = {
        name: entry
        for name, entry in TABLE["classes"].items()
        if entry.get("derived") and None in entry["derived"].values()
    }
    assert unknown, "the table records fields no rule reproduces"
    name, entry = sorted(unknown.items())[0]
    field = next(f for f, rule in entry["derived"].items() if rule is None)
    view = config_view.ConfigView({}, name, TABLE)
    with pytest.raises(NeedsTransformers, match=field):
        getattr(view, field)


def test_parse_falls_back_to_transformers_when_the_view_cannot(monkeypatch) -> None:
    config = next(c for _, c in CONFIGS if c["model_type"] == "llama")

    def refuse(config: dict, table: dict) -> None:
        raise NeedsTransformers("LlamaConfig")

    monkeypatch.setattr(config_view, "view", refuse)
    arch = parse_architecture(config)
    assert arch.normalised_by.startswith("transformers ") and arch.normalised_by.endswith(" LlamaConfig")


def test_the_installed_version_is_read_as_importlib_metadata_reads_it() -> None:
    from importlib import metadata

    assert config_table.installed_transformers() == metadata.version("transformers")
