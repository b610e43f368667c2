"""Units of memory: the byte multiples hubmem counts in, and the one parser of memory sizes.

A leaf module (standard library only): imported at CLI start-up and by every layer.

Vendors and users write both kinds of unit, so both are exact here: ``GB`` is decimal (10**9 bytes),
``GiB`` binary (2**30). Tables show one of `UNITS` (``--units``); JSON and CSV keep raw bytes.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MiB = 2**20
GiB = 2**30
GB = 10**9

# The units a table can be shown in (``--units``), each with its size in bytes and how a table says so.
UNITS: dict[str, int] = {"GiB": GiB, "GB": GB}


def round_up(n: int, multiple: int) -> int:
    """`n` rounded up to a multiple of `multiple` (a padded vocabulary, an aligned allocation)."""
    return -(-n // multiple) * multiple


UNIT_NOTES: dict[str, str] = {"GiB": "GiB = 1024³ bytes", "GB": "GB = 10⁹ bytes"}

_DECIMAL = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15}
_BINARY = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50}
# Kubernetes' binary suffixes (``Gi``) are unambiguous, so they are accepted too.
_SUFFIXES: dict[str, int] = {**_DECIMAL, **_BINARY, **{u[:2]: f for u, f in _BINARY.items()}}
_MEMORY_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")


def parse_memory(text: str) -> int:
    """Bytes in a memory size such as ``"24GiB"``, ``"80 GB"``, ``"81559MiB"`` or ``"1.5TB"``.

    ``KB/MB/GB/TB/PB`` are decimal (10**9 for GB), ``KiB/MiB/GiB/TiB/PiB`` (or ``Ki/Mi/Gi/Ti/Pi``)
    binary (2**30 for GiB); units are case-insensitive. A number without a unit, or with a bare
    ``K/M/G/T/P`` (``24G``: docker means GiB, Kubernetes GB), is refused rather than guessed.
    Fractions are rounded to the nearest byte, half up.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_memory() takes a string, not {type(text).__name__}")
    match = _MEMORY_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a memory size: {text!r} (write e.g. 24GiB or 80GB)")
    number, unit = match.group(1), match.group(2)
    if not unit:
        raise ValueError(
            f"memory size {text.strip()!r} needs a unit: "
            f"{number}GiB (x 1024**3 bytes) or {number}GB (x 10**9 bytes)?"
        )
    if unit.lower() in ("k", "m", "g", "t", "p"):
        prefix = unit.upper()
        raise ValueError(
            f"memory size {text.strip()!r} has an ambiguous unit: "
            f"write {number}{prefix}iB (binary) or {number}{prefix}B (decimal)"
        )
    if unit.lower() not in _SUFFIXES:
        raise ValueError(
            f"unknown unit {unit!r} in memory size {text.strip()!r}; "
            "use B, KB, MB, GB, TB, PB (steps of 1000) or KiB, MiB, GiB, TiB, PiB (steps of 1024)"
        )
    exact = Fraction(number) * _SUFFIXES[unit.lower()]
    return math.floor(exact + Fraction(1, 2))
