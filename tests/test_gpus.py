"""The accelerator catalogue: exact capacities, name lookup, memory sizes, the smallest fitting GPU."""

from __future__ import annotations

import importlib.resources
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hubmem.fit import gpus
from hubmem.fit.gpus import (
    CATALOGUE,
    COMMON,
    Gpu,
    UnknownGpuError,
    catalogue_rows,
    find_gpu,
    smallest_fitting,
)
from hubmem.units import parse_memory

GIB = 1024**3
MIB = 1024**2
ROOT = str(Path(__file__).resolve().parents[1])


# --- capacities -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("t4-16gb", 17_179_869_184),
        ("rtx4090-24gb", 25_769_803_776),
        ("a100-40gb", 42_949_672_960),
        ("a100-80gb", 85_899_345_920),
        ("h100-80gb", 85_899_345_920),
        ("h100-nvl-94gb", 100_931_731_456),
        ("h200-141gb", 151_397_597_184),
        ("b200-180gb", 193_273_528_320),
        ("gb200-186gb", 199_715_979_264),
        ("mi300x-192gb", 206_158_430_208),
        ("mi325x-256gb", 274_877_906_944),
        ("mi250x-64gb", 68_719_476_736),
        ("tpu-v5e", 17_179_869_184),
        ("tpu-v5p", 102_005_473_280),
    ],
)
def test_memory_bytes_are_exact(key: str, expected: int) -> None:
    assert find_gpu(key).memory_bytes == expected


@pytest.mark.parametrize(
    ("key", "reported"),
    [
        # Totals the drivers report (nvidia-smi memory.total; rocm-smi VRAM Total Memory).
        ("a100-40gb", "40960MiB"),
        ("a100-80gb", "81920MiB"),
        ("h100-80gb", "81559MiB"),
        ("h100-nvl-94gb", "95830MiB"),
        ("h200-141gb", "143771MiB"),
        ("b200-180gb", "183359MiB"),
        ("gb200-186gb", "189471MiB"),
        ("mi300x-192gb", "205822885888B"),
    ],
)
def test_vendor_gb_means_gib_as_the_drivers_show(key: str, reported: str) -> None:
    # The driver never reports more than the card has, and always more than the decimal reading
    # of the vendor's "GB" figure: so that figure is GiB, and at most ~1 GiB goes to the driver.
    gpu = find_gpu(key)
    shown = parse_memory(reported)
    decimal_reading = gpu.memory_bytes // GIB * 10**9
    assert decimal_reading < shown <= gpu.memory_bytes
    assert gpu.memory_bytes - shown <= GIB


def test_catalogue_is_ordered_by_memory_with_common_cards_first_in_a_tie() -> None:
    sizes = [g.memory_bytes for g in CATALOGUE]
    assert sizes == sorted(sizes)
    assert [g.key for g in CATALOGUE if g.memory_bytes == 24 * GIB] == [
        "l4-24gb",
        "rtx4090-24gb",
        "a10g-24gb",
        "a10-24gb",
        "rtx3090-24gb",
    ]


def test_catalogue_entries_are_complete_and_unique() -> None:
    assert len({g.key for g in CATALOGUE}) == len(CATALOGUE)
    assert len({g.name for g in CATALOGUE}) == len(CATALOGUE)
    for gpu in CATALOGUE:
        assert gpu.source, gpu.key
        assert gpu.vendor in {"NVIDIA", "AMD", "Google", "Apple"}, gpu.key
        assert gpu.memory_bytes % GIB == 0, gpu.key
    assert all(g in CATALOGUE for g in COMMON)
    assert [g.key for g in COMMON][:3] == ["t4-16gb", "l4-24gb", "rtx4090-24gb"]


def test_catalogue_covers_the_devices_people_ask_about() -> None:
    for name in [
        "h100-80gb", "h100-pcie-80gb", "h100-nvl-94gb", "h200-141gb", "b200-180gb", "gb200-186gb",
        "a100-40gb", "a100-80gb", "l40s-48gb", "l40-48gb", "l4-24gb", "a10g-24gb", "a10-24gb",
        "rtx-a6000-48gb", "rtx6000-ada-48gb", "rtx3090-24gb", "rtx4090-24gb", "rtx5090-32gb",
        "v100-16gb", "v100-32gb", "t4-16gb", "mi300x-192gb", "mi325x-256gb", "mi250x-64gb",
        "tpu-v4", "tpu-v5e", "tpu-v5p",
    ]:  # fmt: skip
        assert find_gpu(name).key == name


# --- usable memory ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "usable_mib"),
    [
        # torch.cuda.get_device_properties().total_memory in public logs (printed as bytes // 2**20)
        ("t4-16gb", 15_102),
        ("rtx4090-24gb", 24_563),
        ("a100-40gb", 40_536),
        ("h100-80gb", 81_089),
        ("h200-141gb", 143_156),
        # the rules, worked by hand: capacity in MiB x the ratio measured on a card of the same kind
        ("l4-24gb", 22_653),  # 24,576 x 15,102/16,384
        ("l40s-48gb", 45_306),  # 49,152 x 15,102/16,384
        ("rtx3090-24gb", 24_563),  # 24,576 x 24,563/24,576
        ("a100-80gb", 81_072),  # 81,920 x 40,536/40,960
        ("b200-180gb", 182_412),  # 184,320 x 40,536/40,960
        ("v100-16gb", 16_214),  # 16,384 x 40,536/40,960 = 16,214.4, rounded down
    ],
)
def test_usable_memory(key: str, usable_mib: int) -> None:
    gpu = find_gpu(key)
    assert gpu.usable_bytes // MIB == usable_mib
    assert gpu.usable_bytes < gpu.memory_bytes


def test_usable_is_below_what_nvidia_smi_shows() -> None:
    # nvidia-smi's memory.total (test_vendor_gb_means_gib_as_the_drivers_show) is more than torch gets.
    for key, smi_mib in [
        ("h100-80gb", 81_559),
        ("h200-141gb", 143_771),
        ("l4-24gb", 23_034),
        ("l40s-48gb", 46_068),
    ]:
        assert find_gpu(key).usable_bytes < smi_mib * MIB


def test_the_issue_s_accelerators_are_all_there() -> None:
    names = ["h100", "h100-nvl", "h200", "b200", "a100-40gb", "a100-80gb", "l40s", "l4", "a10g", "rtx3090",
             "4090", "rtx 5090", "v100-16gb", "v100-32gb", "t4", "mi300x", "tpu v4", "tpu-v5e"]  # fmt: skip
    found = [find_gpu(n) for n in names]
    assert [g.memory_bytes // GIB for g in found] == [80, 94, 141, 180, 40, 80, 48, 24, 24, 24, 24, 32, 16, 32,
                                                      16, 192, 32, 16]  # fmt: skip
    assert all(g.source for g in found)


# --- lookup -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("h100", "h100-80gb"),
        ("H100-80GB", "h100-80gb"),
        ("NVIDIA H100 80GB HBM3", "h100-80gb"),
        ("h100 pcie", "h100-pcie-80gb"),
        ("H100 NVL", "h100-nvl-94gb"),
        ("a100-80gb", "a100-80gb"),
        ("A100_80GB", "a100-80gb"),
        ("a100 80gb", "a100-80gb"),
        ("A100-80GiB", "a100-80gb"),
        ("a100-80", "a100-80gb"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
        ("a100", "a100-40gb"),
        ("v100", "v100-16gb"),
        ("Tesla V100-SXM2-32GB", "v100-32gb"),
        ("4090", "rtx4090-24gb"),
        ("rtx4090", "rtx4090-24gb"),
        ("rtx-4090", "rtx4090-24gb"),
        ("NVIDIA GeForce RTX 4090", "rtx4090-24gb"),
        ("a10g", "a10g-24gb"),
        ("A10", "a10-24gb"),
        ("l40", "l40-48gb"),
        ("L40S", "l40s-48gb"),
        ("a6000", "rtx-a6000-48gb"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx6000-ada-48gb"),
        ("mi300x", "mi300x-192gb"),
        ("AMD Instinct MI300X", "mi300x-192gb"),
        ("mi250x", "mi250x-64gb"),
        ("tpu-v5e", "tpu-v5e"),
        ("v5litepod", "tpu-v5e"),
        ("TPU v5 lite", "tpu-v5e"),
        ("tpu_v5p", "tpu-v5p"),
        ("b200", "b200-180gb"),
        ("gb200", "gb200-186gb"),
        ("H200 NVL", "h200-141gb"),
    ],
)
def test_find_gpu_accepts_each_spelling(name: str, key: str) -> None:
    assert find_gpu(name).key == key


def test_every_key_and_alias_finds_its_own_entry() -> None:
    for gpu in CATALOGUE:
        for name in (gpu.key, *gpu.aliases, gpu.key.upper(), gpu.key.replace("-", " ")):
            assert find_gpu(name) is gpu, name


def test_an_alias_claimed_twice_is_refused() -> None:
    a = Gpu("A", "card-a", GIB, "NVIDIA", ("shared",), "test")
    b = Gpu("B", "card-b", GIB, "NVIDIA", ("Shared",), "test")
    with pytest.raises(AssertionError, match="'shared' is claimed by both card-a and card-b"):
        gpus._build_index([a, b])


def test_unknown_gpu_lists_close_matches() -> None:
    with pytest.raises(UnknownGpuError) as info:
        find_gpu("h1000")
    err = info.value
    assert isinstance(err, ValueError)
    assert err.name == "h1000"
    assert err.suggestions[0] == "h100-80gb"
    assert str(err).startswith("unknown GPU 'h1000'; did you mean: h100-80gb, ")


def test_unknown_gpu_with_a_wrong_size_suggests_the_real_sizes() -> None:
    expected = r"^unknown GPU 'a100-90gb'; did you mean: a100-80gb, a100-40gb"
    with pytest.raises(UnknownGpuError, match=expected):
        find_gpu("a100-90gb")


def test_unknown_gpu_without_anything_close() -> None:
    with pytest.raises(UnknownGpuError) as info:
        find_gpu("quantum toaster")
    assert info.value.suggestions == ()
    assert str(info.value) == "unknown GPU 'quantum toaster'; `hubmem gpus` lists the known ones"


def test_empty_gpu_name() -> None:
    with pytest.raises(UnknownGpuError, match="^no GPU name given"):
        find_gpu("  ")


@pytest.mark.parametrize(
    ("name", "candidates"),
    [
        ("rtx6000", ("rtx-a6000-48gb", "rtx6000-ada-48gb", "rtx-pro-6000-96gb")),
        ("RTX 6000", ("rtx-a6000-48gb", "rtx6000-ada-48gb", "rtx-pro-6000-96gb")),
        ("tpu v5", ("tpu-v5e", "tpu-v5p")),
    ],
)
def test_ambiguous_names_are_refused_with_the_candidates(name: str, candidates: tuple[str, ...]) -> None:
    with pytest.raises(UnknownGpuError) as info:
        find_gpu(name)
    assert info.value.ambiguous
    assert info.value.suggestions == candidates
    assert str(info.value) == f"GPU name {name!r} is ambiguous; say which: {', '.join(candidates)}"


# --- smallest_fitting -------------------------------------------------------------------------


def test_exactly_equal_fits() -> None:
    # A100 80GB (HBM rule): 81,920 MiB x 40,536/40,960 = 81,072 MiB; H100 PCIe ties, A100 is in COMMON.
    assert smallest_fitting(81_072 * MIB).key == "a100-80gb"
    assert smallest_fitting(143_156 * MIB).key == "h200-141gb"  # H200 as torch reports it


def test_one_byte_more_goes_to_the_next_size() -> None:
    assert smallest_fitting(81_072 * MIB + 1).key == "h100-80gb"  # 81,089 MiB, as torch reports it
    assert (
        smallest_fitting(81_089 * MIB + 1).key == "rtx-pro-6000-96gb"
    )  # 98,304 x 15,102/16,384 = 90,612 MiB
    assert smallest_fitting(81_089 * MIB + 1, catalogue=COMMON).key == "h200-141gb"
    assert smallest_fitting(143_156 * MIB + 1, catalogue=COMMON).key == "b200-180gb"


def test_a_vendor_80gb_model_does_not_fit_an_80gb_card() -> None:
    # 80 GiB is the H100's capacity, but the runtime hands out 81,089 MiB of its 81,920.
    assert smallest_fitting(80 * GIB, catalogue=COMMON).key == "h200-141gb"


def test_ties_go_to_the_common_card() -> None:
    # 24 GiB: L4, RTX 4090, A10G, A10 and RTX 3090 all qualify; L4 comes first in COMMON.
    assert smallest_fitting(17 * GIB).key == "l4-24gb"
    reversed_catalogue = tuple(g for g in reversed(CATALOGUE) if g.memory_kind != "unified")  # less the Macs
    assert smallest_fitting(17 * GIB, catalogue=reversed_catalogue).key == "l4-24gb"


def test_ties_outside_common_go_to_the_first_listed() -> None:
    l40 = find_gpu("l40")
    a6000 = find_gpu("a6000")
    assert smallest_fitting(44 * GIB, catalogue=[a6000, l40]) is a6000
    assert smallest_fitting(44 * GIB, catalogue=[l40, a6000]) is l40
    assert smallest_fitting(48 * GIB, catalogue=[l40, a6000]) is None  # ECC: 45,306 MiB usable


def test_nothing_fits() -> None:
    assert smallest_fitting(288 * GIB + 1) is None
    assert smallest_fitting(192 * GIB + 1, catalogue=COMMON) is None
    assert smallest_fitting(1, catalogue=[]) is None


def test_zero_fits_the_smallest_card() -> None:
    assert smallest_fitting(0, catalogue=COMMON).key == "t4-16gb"


def test_smallest_fitting_refuses_negative_and_non_integer_sizes() -> None:
    with pytest.raises(ValueError, match="must be >= 0, got -1"):
        smallest_fitting(-1)
    with pytest.raises(TypeError, match="must be an int, not float"):
        smallest_fitting(1.5)  # type: ignore[arg-type]


# --- catalogue_rows ---------------------------------------------------------------------------


def test_catalogue_rows() -> None:
    rows = catalogue_rows()
    assert [r["key"] for r in rows] == [g.key for g in CATALOGUE]
    h100 = next(r for r in rows if r["key"] == "h100-80gb")
    assert h100["name"] == "H100 SXM 80GB"
    assert h100["memory_bytes"] == 85_899_345_920
    assert h100["memory_gib"] == 80.0
    assert h100["memory_gb"] == pytest.approx(85.89934592)
    assert h100["vendor"] == "NVIDIA"
    aliases = h100["aliases"]
    assert isinstance(aliases, list) and "h100" in aliases
    assert str(h100["source"]).startswith("NVIDIA H100 Tensor Core GPU datasheet")
    assert h100["common"] is True
    assert next(r for r in rows if r["key"] == "l40-48gb")["common"] is False


# --- the data file ----------------------------------------------------------------------------


def _data() -> dict:
    """catalogue.json as the package ships it, parsed afresh (not the cached catalogue)."""
    text = importlib.resources.files("hubmem.fit").joinpath(gpus.CATALOGUE_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def test_data_file_loads_and_every_entry_validates() -> None:
    data = _data()
    catalogue = gpus._parse_catalogue(data)
    assert [g.key for g in catalogue.gpus] == [raw["key"] for raw in data["gpus"]]
    assert catalogue.gpus == CATALOGUE and catalogue.common == COMMON
    by_key = {g.key: g for g in catalogue.gpus}
    assert by_key["h100-80gb"].memory_bytes == 85_899_345_920
    assert by_key["h100-80gb"].usable_bytes == 81_089 * MIB
    assert by_key["h200-141gb"].memory_bytes == 151_397_597_184
    assert by_key["t4-16gb"].usable_bytes == 15_102 * MIB
    assert by_key["l4-24gb"].usable_bytes == 22_653 * MIB  # the gddr-ecc rule
    assert by_key["mi300x-192gb"].memory_bytes == 206_158_430_208
    assert [g.key for g in COMMON] == [
        "t4-16gb", "l4-24gb", "rtx4090-24gb", "a10g-24gb", "a100-40gb", "l40s-48gb",
        "a100-80gb", "h100-80gb", "h200-141gb", "b200-180gb", "mi300x-192gb",
    ]  # fmt: skip
    assert catalogue.ambiguous["v5"] == ("tpu-v5e", "tpu-v5p")


def test_data_file_is_read_on_first_use() -> None:
    code = (
        "from hubmem.fit import gpus; assert gpus._catalogue.cache_info().currsize == 0; "
        "gpus.COMMON; assert gpus._catalogue.cache_info().currsize == 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": ROOT})


def _t4(**changes: object) -> dict:
    """The data file with its first entry (the T4) changed; a value None drops the field."""
    data = _data()
    entry = {**data["gpus"][0], **changes}
    data["gpus"][0] = {k: v for k, v in entry.items() if v is not None}
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"memory": None}, "no memory"),
        ({"tflops": "65"}, "unknown field 'tflops'"),
        ({"compute_capability": "7"}, "compute_capability '7' must be major.minor, e.g. 8.9"),
        ({"compute_capability": 7.5}, "compute_capability must be a string, not 7.5"),
        ({"dtypes": ["fp6"]}, "dtypes must be from bf16, fp8, fp4, not ['fp6']"),
        ({"dtypes": ["bf16"]}, "give compute_capability (NVIDIA) or dtypes (other vendors), one of them"),
        (
            {"compute_capability": None},
            "give compute_capability (NVIDIA) or dtypes (other vendors), one of them",
        ),
        ({"memory": 16}, "memory must be a string, not 16"),
        ({"memory": "16GB"}, "memory '16GB' must be in GiB"),
        ({"memory": "sixteen GiB"}, "memory: not a memory size: 'sixteen GiB'"),
        ({"memory": "0GiB"}, "memory '0GiB' must be above 0"),
        ({"reported": "17GiB"}, "reported '17GiB' must be above 0 and at most memory '16GiB'"),
        ({"reported": "15102"}, "reported: memory size '15102' needs a unit"),
        ({"memory_kind": "hbm3"}, "memory_kind 'hbm3' is not one of hbm, gddr-ecc, gddr"),
        ({"aliases": "t4"}, "aliases must be a list, not 't4'"),
        ({"aliases": ["t4", ""]}, "aliases must be non-empty strings"),
        ({"common": "yes"}, "common must be true or false, not 'yes'"),
        ({"source": " "}, "source is empty"),
    ],
)
def test_a_malformed_entry_is_refused_by_name(changes: dict, message: str) -> None:
    with pytest.raises(gpus.CatalogueError) as info:
        gpus._parse_catalogue(_t4(**changes))
    assert str(info.value).startswith(f"catalogue.json, GPU entry 1 (t4-16gb): {message}")


def test_malformed_catalogues_are_refused() -> None:
    data = _data()
    data["gpus"].append("h100")
    with pytest.raises(
        gpus.CatalogueError,
        match=rf"^catalogue.json, GPU entry {len(data['gpus'])}: expected an object, not 'h100'$",
    ):
        gpus._parse_catalogue(data)
    data = _data()
    data["gpus"].append({**data["gpus"][0], "aliases": []})
    with pytest.raises(gpus.CatalogueError, match=r"^catalogue.json: GPU key 't4-16gb' in several entries$"):
        gpus._parse_catalogue(data)
    with pytest.raises(
        gpus.CatalogueError, match=r"^catalogue.json: GPU name 'v100' is claimed by both t4-16gb"
    ):
        gpus._parse_catalogue(_t4(aliases=["v100"]))
    data = _data()
    data["ambiguous"]["a100"] = ["a100-40gb", "a100-80gb"]
    with pytest.raises(gpus.CatalogueError, match=r"ambiguous GPU name 'a100' is also an alias of a100-40gb"):
        gpus._parse_catalogue(data)
    data["ambiguous"] = {"v5": ["tpu-v5e", "tpu-v5x"]}
    with pytest.raises(gpus.CatalogueError, match=r"ambiguous name 'v5' must list two or more GPU keys"):
        gpus._parse_catalogue(data)
    with pytest.raises(gpus.CatalogueError, match=r'expected an object with a list of "gpus"'):
        gpus._parse_catalogue([])


def test_the_data_file_ships_in_the_package() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(ROOT) / "pyproject.toml").read_text())
    assert gpus.CATALOGUE_FILE in pyproject["tool"]["setuptools"]["package-data"]["hubmem.fit"]


# --- hubmem gpus ------------------------------------------------------------------------------


def test_gpus_command_csv_has_capacity_and_usable_bytes() -> None:
    import csv
    import io

    from click.testing import CliRunner

    from hubmem.cli import main

    result = CliRunner().invoke(main, ["gpus", "--format", "csv"])
    assert result.exit_code == 0 and result.stderr == ""
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["key"] for r in rows] == [g.key for g in CATALOGUE]
    h100 = next(r for r in rows if r["key"] == "h100-80gb")
    assert (h100["memory_bytes"], h100["usable_bytes"]) == ("85899345920", str(81_089 * MIB))
    assert h100["usable_source"] == "reported by the runtime (torch total_memory)"
    l4 = next(r for r in rows if r["key"] == "l4-24gb")
    assert l4["usable_bytes"] == str(22_653 * MIB)
    assert l4["usable_source"].startswith("gddr-ecc rule: capacity x 15,102/16,384")


def test_gpus_command_table() -> None:
    from click.testing import CliRunner

    from hubmem.cli import main

    result = CliRunner().invoke(main, ["gpus"])
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "key",
        "name",
        "memory",
        "GiB",
        "usable",
        "GiB",
        "compute",
        "vendor",
        "aliases",
        "source",
    ]
    h100 = next(line for line in lines if line.startswith("h100-80gb "))
    assert "H100 SXM 80GB" in h100 and "  80.0  " in h100 and "  79.19  " in h100  # 81,089 MiB
    assert len(lines) == 2 + len(CATALOGUE)
    assert result.stderr.startswith("usable = what torch reports as the device's total")
