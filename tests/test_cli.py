"""The CLI end to end over loopback HTTP: exact output, formats, request counts, local folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

from hubmem.cli import main

from .helpers import config, fixture_dir

TINY = "test/tiny"
GIB = 1024**3


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return result


# Worked by hand from fixtures/repos/test__tiny: h 64, i 128, 2 layers, 4 heads, 2 KV heads, d 16, V 1000.
# Parameters 202,048; block Linear weights 2 × (64·64·2 + 32·64·2 + 3·128·64) = 73,728; kept 16-bit 128,320.
# KV at s=1024, 16-bit: 2 layers × 1024 × 2 × 2 × 16 × 2 = 262,144. Activations (16-bit): MLP phase
# (2·1024·64 + 3·1024·128) × 2 = 1,048,576 + fp32 logits 1000 × 4 = 1,052,576. The T4 (compute
# capability 7.5) has no FP8: transformers dequantizes an fp8 load to bf16 there, so the fp8 row's
# smallest card is the T4 at its bf16 cost (1,075,460,640 B < 14.75 GiB), said "(as bf16)".
TINY_CSV = """\
precision,weights_bytes,kv_cache_bytes,activations_bytes,overhead_bytes,total_bytes,fits_on
fp32,808192,524288,2101152,1073741824,1077175456,T4 16GB
bf16,404096,262144,1052576,1073741824,1075460640,T4 16GB
fp8,330424,262144,1052576,1073741824,1075386968,T4 16GB (as bf16)
int8,334464,262144,1052576,1073741824,1075391008,T4 16GB
int4,296064,262144,1052576,1073741824,1075352608,T4 16GB
"""


def test_csv_rows_are_exact_bytes(fake_hub):
    result = run(TINY, "--seq-len", "1024", "--format", "csv")
    assert result.stdout == TINY_CSV
    assert result.stderr == ""


def test_single_file_repo_costs_two_round_trips_and_no_weights(fake_hub):
    fake_hub.hang("/api/models/test/tiny?blobs", 2.0, times=1)  # the file list answers last
    run(TINY, "--format", "json")
    paths = sorted((r.method, r.path) for r in fake_hub.requests)
    # model_info, config.json, header Range GET + its CDN redirect target, and the guess of a sharded
    # index's headers (hubmem.hub.fetch._guess), which answers 404
    assert len(paths) == 5, paths
    assert fake_hub.count("GET", "/api/models/test/tiny?blobs") == 1
    assert fake_hub.count("GET", "/resolve/main/config.json") == 1
    assert [r.status for r in fake_hub.filter("GET", "/safetensors-metadata/")] == [404]
    # nothing waited for the file list (3 sequential round trips before the guesses, now the header's 2:
    # its Range GET and the CDN redirect's target)
    (info,) = fake_hub.filter("GET", "/api/models/test/tiny?blobs")
    assert all(r.arrived < info.answered for r in fake_hub.requests)
    assert fake_hub.weights_downloads() == []


def test_commit_pinned_rerun_makes_no_request(fake_hub):
    sha = fake_hub.sha(TINY)
    first = run(TINY, "--revision", sha, "--format", "json")
    fake_hub.reset()
    again = run(f"{TINY}@{sha}", "--format", "json")
    assert fake_hub.requests == []
    assert json.loads(again.stdout)["rows"] == json.loads(first.stdout)["rows"]


def test_json_keeps_integers_and_every_term(fake_hub):
    data = json.loads(run(TINY, "--seq-len", "1024", "--format", "json").stdout)
    assert data["parameters"]["parameters"] == 202_048
    assert data["parameters"]["stored_by_dtype"] == {"BF16": 202_048}
    assert data["architecture"]["num_kv_heads"] == 2 and data["architecture"]["head_dim"] == 16
    bf16 = next(r for r in data["rows"] if r["precision"] == "bf16")
    assert bf16["total"] == 1_075_460_640
    assert sum(t["bytes"] for t in bf16["terms"]) == bf16["total"]
    assert data["kv_bytes_per_token"]["bf16"] == 2 * 2 * 2 * 16 * 2
    assert data["settings"]["seq_len_source"] == "option"


def test_table_output_is_exact(fake_hub):
    result = run(
        TINY,
        "--seq-len",
        "1024",
        "--precision",
        "bf16",
        "--precision",
        "int4",
        "--units",
        "GB",
        "--overhead",
        "0GB",
    )
    sha = fake_hub.sha(TINY)[:7]
    assert (
        result.stdout
        == f"""\
model         test/tiny ({sha}) · hub · safetensors · download 0.00 GB in 1 file
parameters    202,048 exact (stored elements: BF16 202,048)
components    embeddings 64,000 · attention 24,576 · mlp 49,152 · norms 320 · lm_head 64,000
architecture  llama · hidden 64 · intermediate 128 (gated MLP) · layers 2 · heads 4 · kv heads 2 · head dim 16
              context 2,048 · vocab 1,000 · tied embeddings no · dtype bfloat16 · attention full
assumptions   batch 1 · seq 1,024 (option) · KV cache at each row's compute dtype · attention sdpa · overhead 0.00 GB/GPU

precision      weights GB    KV cache GB    activations GB    overhead GB    total GB  fits on
-----------  ------------  -------------  ----------------  -------------  ----------  ---------
bf16/fp16            0.00           0.00              0.00           0.00        0.00  T4 16GB
int4                 0.00           0.00              0.00           0.00        0.00  T4 16GB
GB = 10⁹ bytes; per GPU.
"""
    )


def test_explain_shows_each_term_with_its_formula(fake_hub):
    out = run(TINY, "--seq-len", "1024", "--precision", "bf16", "--explain").stdout
    assert "[bf16/fp16] total 1,075,460,640 bytes" in out
    assert "b × Σ_layers tokens × 2 × k × d × e = 1 × 2,048 × 2 × 2 × 16 × 2" in out
    assert "max(attention 524,288, mlp 1,048,576) + logits 4,000" in out
    assert "source: vLLM kv_cache_interface" in out


def test_eager_attention_adds_the_score_matrix(fake_hub):
    sdpa = json.loads(run(TINY, "--seq-len", "1024", "--precision", "bf16", "--format", "json").stdout)
    eager = json.loads(
        run(TINY, "--seq-len", "1024", "--precision", "bf16", "--attn", "eager", "--format", "json").stdout
    )
    # attention phase grows by b·a·s²·(e + 4) = 4 · 1024² · 6 and becomes the peak
    assert eager["rows"][0]["activations"] == (2 * 1024 * 64 + 2 * 1024 * 64) * 2 + 4 * 1024 * 1024 * 6 + 4000
    assert sdpa["rows"][0]["activations"] == 1_052_576


def test_default_seq_len_is_the_model_max_context(fake_hub):
    data = json.loads(run(TINY, "--format", "json").stdout)
    assert data["settings"]["seq_len"] == 2048
    assert data["settings"]["seq_len_source"] == "model max context"


def test_seq_len_beyond_context_warns_on_stderr(fake_hub):
    result = run(TINY, "--seq-len", "4096", "--format", "csv")
    assert result.stderr == "Warning: --seq-len 4,096 exceeds the model's max context 2,048\n"
    assert result.stdout.startswith("precision,")


def test_pytorch_only_repo_is_estimated_and_says_what_it_found(fake_hub):
    fake_hub.add_repo(
        "acme/binonly",
        layout={"other_files": {"pytorch_model.bin": 404_096 + 1_000}},
        config=config(TINY),
    )
    result = run("acme/binonly", "--format", "json")
    assert result.stderr == (
        "Warning: no safetensors weights in 'acme/binonly' (found: pytorch_model.bin); "
        "parameters estimated from config.json, not exact\n"
    )
    data = json.loads(result.stdout)
    assert data["parameters"]["exact"] is False
    assert (
        data["parameters"]["parameters"] == 202_048
    )  # the dense-decoder estimate matches the real count here
    assert data["weights_format"] == "pytorch"
    assert data["download_bytes"] == 405_096


@pytest.mark.parametrize(
    "args, message",
    [
        (("--precision", "int3"), "Error: Invalid value for '--precision': 'int3' is not one of"),
        (("--batch", "many"), "Error: Invalid value for '--batch': 'many' is not a valid integer"),
        (("--overhead", "12"), "Error: --overhead: memory size '12' needs a unit: 12GiB"),
        (("--gpu-memory", "lots"), "Error: --gpu-memory: not a memory size: 'lots'"),
        (
            ("--serving-factor", "nan"),
            "Error: --serving-factor must be a finite number of at least 1, not nan",
        ),
        (("--serving-factor", "0"), "Error: --serving-factor must be a finite number of at least 1, not 0.0"),
        (("--encoder-len", "10"), "Error: --encoder-len: 'llama' is not an encoder-decoder model"),
        (("--explain", "--format", "csv"), "Error: --explain prints text: use --format table or markdown"),
    ],
)
def test_every_bad_option_value_exits_3_with_one_line(fake_hub, args, message):
    """Whether click or hubmem rejects the value, it is the same documented exit code and one line."""
    result = CliRunner().invoke(main, [TINY, *args])
    assert result.exit_code == 3, (result.exit_code, result.stderr)
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_usage_mistakes_keep_click_s_exit_2(fake_hub):
    result = CliRunner().invoke(main, [TINY, "--no-such-option"])
    assert result.exit_code == 2
    assert "Error: No such option '--no-such-option'." in result.stderr


@pytest.mark.parametrize("sharded", [False, True])
def test_local_folder_reads_real_safetensors_files(tmp_path, fake_hub, sharded):
    """A folder written by the safetensors library itself gives the same counts as the Hub copy."""
    (tmp_path / "config.json").write_text((fixture_dir(TINY) / "config.json").read_text())
    layout = json.loads((fixture_dir(TINY) / "layout.json").read_text())
    tensors = {
        name: np.zeros(shape, dtype=np.float16)
        for name, _, shape in layout["files"]["model.safetensors"]["tensors"]
    }
    if sharded:
        names = sorted(tensors)
        halves = {
            "model-00001-of-00002.safetensors": names[:10],
            "model-00002-of-00002.safetensors": names[10:],
        }
        for shard, keys in halves.items():
            save_file({k: tensors[k] for k in keys}, str(tmp_path / shard))
        index = {"metadata": {}, "weight_map": {k: s for s, keys in halves.items() for k in keys}}
        (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    else:
        save_file(tensors, str(tmp_path / "model.safetensors"))
    data = json.loads(run(str(tmp_path), "--seq-len", "1024", "--format", "json").stdout)
    assert data["source"] == "local"
    assert data["parameters"]["stored_by_dtype"] == {"F16": 202_048}
    assert [r["total"] for r in data["rows"]][1] == 1_075_460_640
    assert fake_hub.requests == []


def test_the_cli_in_its_own_process_fetches_beside_the_transformers_import(fake_hub):
    """`hubmem REPO` as a real process: the estimate and the errors are the same as in-process. (It
    fetches in-process where the config-class table spares transformers' import, and through one forked
    helper, which it may fork as it runs no other thread yet, where that import runs beside the fetch.)"""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    probe = "import sys; from hubmem.hub import batch; sys.exit(batch.helper_count(1, 1, overlap=True))"
    helpers = subprocess.run([sys.executable, "-c", probe], env=env)
    linux_smp = sys.platform == "linux" and len(os.sched_getaffinity(0)) > 1
    assert helpers.returncode == (1 if linux_smp else 0)

    def hubmem(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "hubmem.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    ok = hubmem("test/tiny", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["parameters"]["parameters"] == 202_048
    missing = hubmem("nobody/nothing")
    assert missing.returncode == 10
    assert missing.stderr == (
        "Error: repository 'nobody/nothing' not found (check the id; private repos need --token or HF_TOKEN)\n"
    )


def console_script(*args: str):
    """The `hubmem` console script (pyproject.toml: hubmem.cli:run) as a real process."""
    import subprocess
    import sys

    code = "import sys; from hubmem.cli import run; sys.argv[0] = 'hubmem'; run()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_the_console_script_keeps_exit_codes_and_output_through_its_fast_exit():
    # run() leaves by os._exit after flushing: the whole output and each documented exit code survive it
    done = console_script("gpus", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == run("gpus", "--format", "json").stdout  # the whole document, byte for byte
    bad = console_script(TINY, "--seq-len", "0")
    assert bad.returncode == 3
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("Error: ")
    usage = console_script("--no-such-option")
    assert usage.returncode == 2  # click's usage error, as before
    assert console_script("--version").returncode == 0


def test_with_telemetry_on_the_agent_registry_is_read_once_a_day_before_the_requests(fake_hub, tmp_path):
    # huggingface_hub's default (telemetry on) reads the Hub's agent-harness registry for its user agent;
    # hubmem.hub.client.warm builds the headers once before the request threads start, so it is one
    # request (each of the first trip's four threads made its own before), then cached in HF_HOME a day
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_TELEMETRY"}
    env.update(HF_HOME=str(tmp_path), HF_ENDPOINT=fake_hub.url)
    for expected in ([200], []):  # a second process finds the registry in HF_HOME
        fake_hub.clear_log()
        done = subprocess.run(
            [sys.executable, "-m", "hubmem.cli", "meta-llama/Llama-3.1-8B", "--format", "json"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert [r.status for r in fake_hub.filter("GET", "/api/agent-harnesses")] == expected
