"""`hubmem diff A B`: two repos, or one repo at two revisions; exact changed lines, JSON, errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

import hubmem
from hubmem.cli import main

from .helpers import config, layout

TINY = "test/tiny"
L8, L70 = "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B"


def run(*args: str):
    return CliRunner().invoke(main, ["diff", *args])


def test_two_models_show_what_changed(fake_hub):
    result = run(L8, L70, "--seq-len", "8192", "--precision", "bf16")
    assert result.exit_code == 0, result.output
    lines = [line.split("  ") for line in result.stdout.splitlines()]
    cells = {(c[0], c[1]): c[2:] for c in ([x for x in line if x.strip()] for line in lines) if len(c) >= 4}
    # the Hub's published totals: 8,030,261,248 (Llama-3.1-8B) and 70,553,706,496 (Llama-3.1-70B)
    assert [c.strip() for c in cells[("parameters", "total")]] == [
        "8,030,261,248", "70,553,706,496", "+62,523,445,248 (+778.6 %)"
    ]  # fmt: skip
    # config.json: hidden 4096 -> 8192, 32 -> 80 layers, 32 -> 64 heads; 8 KV heads both (not shown)
    assert [c.strip() for c in cells[("architecture", "hidden_size")]] == ["4096", "8192"]
    assert [c.strip() for c in cells[("architecture", "num_layers")]] == ["32", "80"]
    assert ("architecture", "num_kv_heads") not in cells
    # KV at bf16, 8192 tokens: 2·8·128·2 bytes × layers × 8192 = 1 GiB (32 layers) and 2.5 GiB (80 layers)
    assert [c.strip() for c in cells[("memory", "bf16/fp16 kv cache")]] == [
        "1.00 GiB",
        "2.50 GiB",
        "+1.50 GiB (+150.0 %)",
    ]
    assert result.stdout.splitlines()[:2] == [f"A  {L8} (6933238)", f"B  {L70} (55959cf)"]


def test_one_repo_at_two_revisions(fake_hub):
    fake_hub.add_repo("acme/tiny", layout=layout(TINY), config=config(TINY), hub={"revisions": ["v2"]})
    a, b = fake_hub.sha("acme/tiny"), fake_hub.sha("acme/tiny", "v2")
    result = run("acme/tiny", "@v2")
    assert result.stdout.splitlines()[:2] == [f"A  acme/tiny ({a[:7]})", f"B  acme/tiny@v2 ({b[:7]})"]
    assert result.stdout.splitlines()[5].split() == ["repo", "sha", a[:12], b[:12]]
    assert len(result.stdout.splitlines()) == 7  # the same files at both commits: only the sha differs
    data = json.loads(run("acme/tiny", "@v2", "--format", "json").stdout)
    assert data["changes"] == [{"section": "repo", "field": "sha", "a": a, "b": b, "delta": None}]
    assert data["same"] is False


def test_the_same_repo_twice_has_no_differences(fake_hub):
    result = run(TINY, TINY)
    assert (
        result.stdout.splitlines()[3]
        == "no differences: parameters, architecture, memory and download are the same"
    )
    assert hubmem.diff(TINY, TINY).same is True
    every = json.loads(run(TINY, TINY, "--all", "--format", "json").stdout)["lines"]
    assert {"section": "parameters", "field": "total", "a": 202048, "b": 202048, "delta": 0} in every


def test_errors_are_one_line(fake_hub):
    result = run(TINY, "nobody/nothing")
    assert (result.exit_code, result.stderr) == (
        10,
        "Error: repository 'nobody/nothing' not found (check the id; private repos need --token or HF_TOKEN)\n",
    )
    assert run(TINY, TINY, "--train", "full").exit_code == 2  # no such option for diff
