"""The leaf modules every layer shares: units of memory (`hubmem.units`) and dtypes (`hubmem.dtypes`)."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

from hubmem import dtypes, units
from hubmem.units import parse_memory

# --- leaf modules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("hubmem.errors", set()),
        ("hubmem.units", set()),
        ("hubmem.dtypes", {"hubmem.errors"}),
        # imported at CLI start-up: the standard library and the leaf modules only
        ("hubmem.fit.gpus", {"hubmem.units"}),
    ],
)
def test_leaf_modules_import_only_the_standard_library(module: str, allowed: set[str]) -> None:
    tree = ast.parse(Path(importlib.import_module(module).__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, f"{module} imports absolutely"
            imported.add(node.module)
    ours = {name for name in imported if name.split(".")[0] == "hubmem"}
    assert ours <= allowed
    assert {name.split(".")[0] for name in imported - ours} - {"__future__"} <= set(sys.stdlib_module_names)


def test_headers_are_read_without_the_model_code() -> None:
    tree = ast.parse(Path(importlib.import_module("hubmem.hub.fetch").__file__).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in modules if m and m.startswith("hubmem.model")]


# --- units ------------------------------------------------------------------------------------


def test_units() -> None:
    assert (units.MiB, units.GiB, units.GB) == (1_048_576, 1_073_741_824, 1_000_000_000)
    assert units.UNITS == {"GiB": 1024**3, "GB": 10**9}
    assert set(units.UNIT_NOTES) == set(units.UNITS)


# --- parse_memory -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24GiB", 25_769_803_776),
        ("24 GiB", 25_769_803_776),
        ("24gib", 25_769_803_776),
        ("24Gi", 25_769_803_776),
        ("24GB", 24_000_000_000),
        ("80GB", 80_000_000_000),
        ("81559MiB", 85_520_809_984),
        ("1.5TB", 1_500_000_000_000),
        ("1.5TiB", 1_649_267_441_664),
        ("0.5KiB", 512),
        ("512 B", 512),
        ("  2 MB ", 2_000_000),
        (".25GiB", 268_435_456),
        ("1.0000000005GB", 1_000_000_001),  # 1,000,000,000.5 rounds half up
    ],
)
def test_parse_memory(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


def test_gib_and_gb_differ() -> None:
    assert parse_memory("80GiB") - parse_memory("80GB") == 5_899_345_920


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("24", r"^memory size '24' needs a unit: 24GiB \(x 1024\*\*3 bytes\) or 24GB \(x 10\*\*9 bytes\)\?$"),
        ("24G", r"^memory size '24G' has an ambiguous unit: write 24GiB \(binary\) or 24GB \(decimal\)$"),
        ("1.5t", r"ambiguous unit: write 1.5TiB \(binary\) or 1.5TB \(decimal\)$"),
        ("24 GiBs", r"^unknown unit 'GiBs' in memory size '24 GiBs'"),
        ("lots", r"^not a memory size: 'lots'"),
        ("-1GB", r"^not a memory size: '-1GB'"),
        ("", r"^not a memory size: ''"),
    ],
)
def test_parse_memory_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_memory(text)


def test_parse_memory_wants_a_string() -> None:
    with pytest.raises(TypeError, match="takes a string, not int"):
        parse_memory(24)  # type: ignore[arg-type]


# --- dtypes -----------------------------------------------------------------------------------


def test_safetensors_bits() -> None:
    assert dtypes.safetensors_bits("BF16") == 16
    assert dtypes.safetensors_bits("F4") == 4
    assert dtypes.safetensors_bits("F8_E4M3") == 8
    assert len(dtypes.SAFETENSORS_BITS) == 20


def test_unknown_safetensors_dtype() -> None:
    from hubmem.errors import UnknownDtypeError

    with pytest.raises(UnknownDtypeError, match=r"^unknown safetensors dtype 'F12' \(known: BF16, BOOL, C64"):
        dtypes.safetensors_bits("F12")


def test_dtype_bytes_and_aliases() -> None:
    assert dtypes.DTYPE_BYTES["bfloat16"] == dtypes.DTYPE_BYTES["fp16"] == 2
    assert (dtypes.compute_dtype_bytes("fp32"), dtypes.compute_dtype_bytes("int4")) == (4, 2)
    from hubmem.memory.inference import PRECISIONS

    assert set(dtypes.PRECISION_ALIASES.values()) <= set(PRECISIONS)


def test_cli_choices_are_names_hubmem_accepts() -> None:
    """Every choice the CLI offers (hubmem.choices) is a value the library accepts and sizes."""
    from hubmem import choices
    from hubmem.jobs.options import InferenceOptions, normalise_precision

    for name in choices.PRECISIONS:
        normalise_precision(name)
    assert choices.JUDGED_PRECISIONS == ("auto", *choices.PRECISIONS)
    accepted = {"auto", dtypes.FP8_DS_MLA, *dtypes.DTYPE_BYTES}
    assert set(choices.KV_DTYPES) <= accepted
    assert set(choices.STATE_DTYPES) <= accepted - {dtypes.FP8_DS_MLA}
    for kv in choices.KV_DTYPES:
        InferenceOptions(kv_dtype=kv)
    for state in choices.STATE_DTYPES:
        InferenceOptions(state_dtype=state)
    assert choices.UNITS == tuple(units.UNITS)
