"""transformers' config classes as data: each class's field defaults, `attribute_map` and sub-configs.

Importing transformers costs 0.8–2 s on a 2-core machine, more than everything else a run does, so
normalisation reads this table instead (`config_view.py`). The table is *generated* from the installed
transformers (`generate()`, run by `make config-table`) and shipped as package data
(`config_classes.json`); `tests/test_config_table.py` regenerates it and requires equality, and checks
that every fixture config normalises to the same architecture through the table as through
transformers itself. At run time the table is used only when it was generated from the transformers
version that is installed (`usable_table`); otherwise hubmem imports transformers as before.

Source: transformers 5.x `configuration_utils.PreTrainedConfig` (dataclass fields, `attribute_map`,
`sub_configs_defaults` / `SubConfigSpec`) and `models/auto/configuration_auto.CONFIG_MAPPING`.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from hubmem.model.config_rules import FIELD_PROBES, PROBES, RULES, NeedsTransformers
from hubmem.model.config_view import BASE, ConfigView  # BASE: the base class's defaults, stored once

TABLE_PATH = Path(__file__).with_name("config_classes.json")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _defaults(cls: Any) -> dict[str, Any]:
    """Every dataclass field's default that JSON can hold (a config.json value never is anything else)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        if _jsonable(value):
            out[f.name] = value
    return out


def _built(cls: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The fields of `cls(**kwargs)` after __post_init__, or None when the class refuses `kwargs`.
    The class gets a copy: some change a given list in place (Gemma4TextConfig sets layer_types[-1])."""
    import copy
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(cls(**copy.deepcopy(kwargs)).__dict__)
    except Exception:
        return None


def _derived(cls: Any, entry: dict[str, Any], table: dict[str, Any]) -> dict[str, str | None] | None:
    """The fields `cls.__post_init__` fills in or changes, found by building the class from its defaults
    and from each probe config and comparing with the view's reading: each field with the name of the
    rule (config_rules.RULES) that reproduces it on every probe, or None when no rule does (then only
    transformers knows). None as a whole when the class cannot be built from its defaults."""
    name = cls.__name__
    from_defaults = _built(cls, {})
    if from_defaults is None:
        return None
    fields = (set(entry["defaults"]) | set(table["classes"][BASE]["defaults"])) - set(entry["sub_configs"])

    def misses(kwargs: dict[str, Any], got: dict[str, Any], field: str) -> bool:
        try:
            view = ConfigView(kwargs, name, table, strict=False)
            want = got.get(field)
            return not _jsonable(want) or getattr(view, field, None) != want
        except (TypeError, ValueError, NeedsTransformers):
            return True

    entry["derived"] = {}
    try:
        ConfigView({}, name, table, strict=False)
    except (TypeError, ValueError):  # a sub-config the view cannot build (e.g. a timm backbone)
        return None

    def probed(probes: tuple[dict[str, Any], ...]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(kw, b) for kw in probes if (b := _built(cls, kw)) is not None]

    # the shared probes, then each derived field's own (config_rules.FIELD_PROBES), which may show more
    built = [({}, from_defaults), *probed(PROBES)]
    probed_for: set[str] = set()
    while True:
        changed = sorted({f for kw, got in built for f in fields if f in got and misses(kw, got, f)})
        more = [f for f in changed if f in FIELD_PROBES and f not in probed_for]
        if not more:
            break
        for f in more:
            probed_for.add(f)
            built += probed(FIELD_PROBES[f])
    out: dict[str, str | None] = dict.fromkeys(changed)
    for _ in changed:  # until no rule is found: a rule may read a field another rule derives
        progress = False
        for field in (f for f in changed if out[f] is None):
            for rule in RULES.get(field, {}):
                entry["derived"] = {**out, field: rule}
                if not any(misses(kw, got, field) for kw, got in built if field in got):
                    out[field], progress = rule, True
                    break
        if not progress:
            break
    entry["derived"] = out
    return out


def _class_entry(cls: Any, base: dict[str, Any]) -> dict[str, Any]:
    from transformers import AutoConfig

    defaults = _defaults(cls)
    subs = {}
    for key, spec in (getattr(cls, "sub_configs_defaults", None) or {}).items():
        auto = spec.config_class is AutoConfig or not hasattr(spec.config_class, "__dataclass_fields__")
        subs[key] = {
            "class": None if auto else spec.config_class.__name__,
            "model_type": spec.model_type,
            "init_kwargs": spec.init_kwargs if _jsonable(spec.init_kwargs) else {},
            "optional": bool(spec.optional),
        }
    return {
        "model_type": getattr(cls, "model_type", "") or "",
        "attribute_map": dict(cls.attribute_map),
        "defaults": {k: v for k, v in defaults.items() if k not in base or base[k] != v},
        "sub_configs": subs,
    }


def generate() -> dict[str, Any]:
    """The table, from the installed transformers (slow: imports every config class)."""
    import transformers
    from transformers.configuration_utils import PreTrainedConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    base = _defaults(PreTrainedConfig)
    classes: dict[str, Any] = {BASE: {"model_type": "", "attribute_map": {}, "defaults": base}}
    types: dict[str, str] = {}
    pending = []
    by_class: dict[str, Any] = {}
    for model_type in sorted(CONFIG_MAPPING.keys()):
        cls = CONFIG_MAPPING[model_type]
        types[model_type] = cls.__name__
        pending.append(cls)
    while pending:  # classes and the sub-config classes they name, each once
        cls = pending.pop()
        if cls.__name__ in classes:
            continue
        classes[cls.__name__] = _class_entry(cls, base)
        by_class[cls.__name__] = cls
        for spec in (getattr(cls, "sub_configs_defaults", None) or {}).values():
            if hasattr(spec.config_class, "__dataclass_fields__"):
                pending.append(spec.config_class)
    from transformers.configuration_utils import _LEGACY_LAYER_TYPE_REMAP

    table = {
        "transformers": transformers.__version__,
        "types": types,
        "classes": classes,
        "layer_type_remap": dict(_LEGACY_LAYER_TYPE_REMAP),
    }
    for name, cls in by_class.items():  # after every class is in: a view of a class reads its sub-configs
        classes[name]["derived"] = _derived(cls, classes[name], table)
    table["classes"] = dict(sorted(classes.items()))
    return table


def write(path: Path = TABLE_PATH) -> None:
    path.write_text(json.dumps(generate(), indent=0, sort_keys=True) + "\n")


def installed_transformers() -> str | None:
    """The installed transformers' version, from the name of its `transformers-X.Y.Z.dist-info` folder
    beside the package, which is where importlib.metadata reads it (without that module's ~25 ms
    import); through importlib.metadata when the folder is elsewhere (an editable install, an egg)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("transformers")  # locates the package, imports nothing
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    found = list(Path(spec.origin).parent.parent.glob("transformers-*.dist-info"))
    if len(found) == 1:
        return found[0].name[len("transformers-") : -len(".dist-info")]
    from importlib import metadata

    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def usable_table() -> dict[str, Any] | None:
    """The packaged table when it was generated from the installed transformers, else None."""
    try:
        table = json.loads(TABLE_PATH.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(table, dict) or table.get("transformers") != installed_transformers():
        return None
    return table
