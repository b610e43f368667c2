"""`make demo` (scripts/demo.py) reports the bytes of weight files the fake Hub served, as its request log
records them (each GET's span of file bytes), split into safetensors header and tensor data."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def demo_report(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "args, served",
    [
        # test/tiny's model.safetensors: 8 + 2,168 header bytes (tensor data starts at 2,176) then 202,048
        # BF16 values (406,272 bytes). huggingface_hub's header probe is a GET of bytes=0-100000: 100,001 bytes,
        # 2,176 of header and 100,001 - 2,176 = 97,825 of tensor data (zeros, but weight data all the same).
        (
            ("test/tiny",),
            "100,001 bytes of weight files served: 2,176 of headers (safetensors, GGUF), 97,825 of tensor data",
        ),
        # the default demo repo is sharded: its headers come as JSON from the safetensors-metadata API,
        # no byte of a weight file is served
        ((), "0 bytes of weight files served: 0 of headers (safetensors, GGUF), 0 of tensor data"),
    ],
)
def test_demo_reports_the_weight_bytes_served(args, served):
    line = demo_report(*args)
    assert re.fullmatch(r"\(\d+ HTTP requests; (.*)\)", line), line
    assert line.endswith(f"; {served})")
