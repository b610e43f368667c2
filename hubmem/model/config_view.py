"""A config dict read as transformers' config class would read it, from the generated table.

`view(config)` stands where `CONFIG_MAPPING[model_type](**config)` stood: attribute reads resolve
the class's `attribute_map` (GPT-2 `hidden_size` -> `n_embd`) and fall back to the class's field
defaults; sub-configs (`text_config`, ...) become views of their own class, as
`SubConfigSpec.create_subconfig` builds them; `get_text_config()` picks the text part as
`PreTrainedConfig.get_text_config` does (transformers 5.x configuration_utils.py). A field the class's
`__post_init__` derives is computed by the rule the table names for it (config_rules.py); one with no
rule raises NeedsTransformers when read, and the caller builds the real class instead.
tests/test_config_table.py checks, for every fixture config, that the result equals the one through
transformers.
"""

from __future__ import annotations

from typing import Any

from hubmem.model.config_rules import RULES, NeedsTransformers

__all__ = ["BASE", "ConfigView", "NeedsTransformers", "view"]

BASE = "PreTrainedConfig"  # the table's entry for the base class (config_table.generate)


# PreTrainedConfig.get_text_config: encoder names first, then decoder names
TEXT_CONFIG_NAMES = ("text_encoder", "decoder", "generator", "text_config")


class ConfigView:
    """Attribute access over one config dict and its class's defaults."""

    def __init__(
        self, raw: dict[str, Any], class_name: str, table: dict[str, Any], strict: bool = True
    ) -> None:
        classes = table["classes"]
        entry = classes[class_name]
        derived = entry.get("derived", {})
        if derived is None and strict:
            raise NeedsTransformers(class_name)  # the class cannot be built from its defaults
        self.class_name = class_name
        self._derived: dict[str, str | None] = derived or {}
        self._strict = strict
        amap: dict[str, str] = entry["attribute_map"]
        self._amap = amap
        # PreTrainedConfig.__post_init__ ends with remap_legacy_layer_types(config=self) (transformers 5.25
        # configuration_utils.py): legacy names in `layer_types` / `mtp_layer_types` ("mamba",
        # "attention", ...) become today's, by the map the table copies from transformers
        self._remap: dict[str, str] = table.get("layer_type_remap", {})
        self._remapped = {amap.get(n, n) for n in ("layer_types", "mtp_layer_types")}
        values = dict(classes[BASE]["defaults"])
        values.update(entry["defaults"])
        # dataclass fields first, then the aliases (set later through __setattr__, so they win)
        for key, value in raw.items():
            if key not in amap:
                values[key] = value
        for key, value in raw.items():
            if key in amap:
                values[amap[key]] = value
        for key, spec in entry["sub_configs"].items():
            sub = values.get(key)
            if sub is None and spec["optional"]:
                continue
            if sub is None:
                sub = spec["init_kwargs"]
            if not isinstance(sub, dict):
                raise TypeError(f"`{key}` must be a dict")
            sub_class = spec["class"]
            if sub_class is None:  # AutoConfig: by the sub-config's model_type, else the spec's
                model_type = sub.get("model_type", spec["model_type"])
                if model_type not in table["types"]:
                    raise ValueError(f"Unrecognized model type for subconfig: {model_type}")
                sub_class = table["types"][model_type]
            values[key] = ConfigView(sub, sub_class, table, strict)
        self._values = values

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        key = self._amap.get(name, name)
        value = self._read(name, key)
        if key in self._remapped and isinstance(value, list):
            return [self._remap.get(t, t) if isinstance(t, str) else t for t in value]
        return value

    def _read(self, name: str, key: str) -> Any:
        if key in self._derived:
            rule = self._derived[key]
            if rule is None:
                if self._strict:
                    raise NeedsTransformers(f"{self.class_name}.{key}")
            else:
                return RULES[key][rule](self._values.get(key), lambda n: getattr(self, n, None))
        if key in self._values:
            return self._values[key]
        raise AttributeError(name)

    def get_text_config(self) -> ConfigView:
        found = [n for n in TEXT_CONFIG_NAMES if self._values.get(n) is not None]
        if len(found) > 1:
            raise ValueError(f"Multiple valid text configs were found in the model config: {found}")
        if found and isinstance(self._values[found[0]], ConfigView):
            return self._values[found[0]]
        return self


def view(config: dict[str, Any], table: dict[str, Any]) -> ConfigView | None:
    """The view of `config` by its model_type's class, or None when the type is unknown."""
    model_type = config.get("model_type")
    class_name = table["types"].get(model_type) if isinstance(model_type, str) else None
    if class_name is None:
        return None
    try:
        return ConfigView({k: v for k, v in config.items() if k != "model_type"}, class_name, table)
    except (TypeError, ValueError) as e:  # transformers itself decides: it may build it, or reject it
        raise NeedsTransformers(class_name) from e
