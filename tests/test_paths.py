"""File-system safety: revisions and file names are checked before they touch the file system, nothing
is written outside $HF_HOME/hubmem/, a local index cannot name files outside its folder, a folder that is
not a model fails without walking the tree, and local problems (unreadable files, HF_HOME not a folder)
are local errors (exit 4), never "cannot reach the Hub"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

from hubmem import errors
from hubmem.cli import main
from hubmem.hub import fetch as hub

from .helpers import config, fixture_dir, layout

TINY = "test/tiny"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    monkeypatch.setattr(hub, "_sleep", lambda s: None)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def hf_home() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME)


def tree(top: Path) -> set[Path]:
    return {p for p in top.rglob("*")}


def written_outside_hubmem(top: Path, before: set[Path]) -> set[Path]:
    """Paths that appeared under `top` (HF_HOME's parent) outside $HF_HOME/hubmem/."""
    cache = hf_home() / "hubmem"
    return {p for p in tree(top) - before if cache not in (p, *p.parents)}


def one_line_error(result, code: int, start: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr, result.stdout)
    assert result.stderr.startswith(f"Error: {start}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


# --------------------------------------------------------------------------------------------------
# Revisions and the cache


ESCAPES = ["../../../../escape", "..", "a/../../../../../escape", "/abs/escape", "refs/../../../../escape"]
BAD_REVISIONS = [*ESCAPES, ".hidden", "x.lock", "a b", "x\ny", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b"]
BAD_REVISIONS += ["@", "x@{u}", "a//b", "trailing/", "dot.", "\x00", "x" * 256]


@pytest.mark.parametrize("revision", BAD_REVISIONS)
def test_a_revision_git_would_refuse_is_invalid_input_before_any_request(fake_hub, revision):
    with pytest.raises(errors.InvalidInputError, match="invalid revision"):
        hub.fetch(TINY, revision=revision)
    assert fake_hub.requests == []


@pytest.mark.parametrize("revision", ESCAPES)
def test_no_revision_writes_outside_the_cache_even_if_the_hub_resolves_it(fake_hub, revision):
    """A Hub (or mirror) that answers for `../../x` used to make hubmem write refs/../../x."""
    fake_hub.add_repo("acme/escape", layout=layout(TINY), config=config(TINY), hub={"revisions": [revision]})
    top = hf_home().parent
    before = tree(top)
    for args in (["acme/escape", "--revision", revision], [f"acme/escape@{revision}"]):
        one_line_error(run(*args), 3, "invalid revision")
    audit = run("audit", f"acme/escape@{revision}", TINY, "--format", "json")
    assert audit.exit_code == 30
    assert [r["exit_code"] for r in json.loads(audit.stdout)] == [3, 0]
    assert written_outside_hubmem(top, before) == set()
    assert fake_hub.count(path="/acme/escape") == 0


def test_a_server_sha_that_is_not_a_sha_is_never_a_file_name(fake_hub, monkeypatch):
    real = hub._fetch_online

    def hostile(*args, **kwargs):
        snapshot, answers = real(*args, **kwargs)
        snapshot.sha = "../../../../escape-sha"
        return snapshot, answers

    monkeypatch.setattr(hub, "_fetch_online", hostile)
    top = hf_home().parent
    before = tree(top)
    assert hub.fetch(TINY).sha == "../../../../escape-sha"
    assert written_outside_hubmem(top, before) == set()
    assert not (hf_home() / "hubmem").exists()  # not cached at all


def test_a_ref_file_holding_something_else_than_a_sha_is_ignored(fake_hub, monkeypatch):
    hub.fetch(TINY)
    ref = hub._ref_file(hub._repo_dir(TINY), None)
    ref.write_text("../../../../etc/passwd")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(errors.OfflineNotCachedError):
        hub.fetch(TINY)


@pytest.mark.parametrize("revision", ["refs/pr/1", "feature/x", "v1.0", "release-2024.01"])
def test_pr_and_slashed_revisions_are_cached_and_work_offline(fake_hub, monkeypatch, revision):
    fake_hub.add_repo("acme/pr", layout=layout(TINY), config=config(TINY), hub={"revisions": [revision]})
    online = run(f"acme/pr@{revision}", "--format", "json")
    assert online.exit_code == 0, online.stderr
    sha = fake_hub.sha("acme/pr", revision)
    assert json.loads(online.stdout)["sha"] == sha
    ref = hf_home() / "hubmem" / "metadata" / "models--acme--pr" / "refs" / revision.replace("/", "%2F")
    assert ref.read_text() == sha
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    fake_hub.clear_log()
    offline = run("acme/pr", "--revision", revision, "--format", "json")
    assert offline.exit_code == 0, offline.stderr
    assert json.loads(offline.stdout)["source"] == "cache"
    assert json.loads(offline.stdout)["sha"] == sha
    assert fake_hub.requests == []


def test_refs_written_before_keep_their_names(fake_hub):
    """ "main" and plain branch names map to the same file names as before the encoding."""
    assert hub._ref_file(Path("d"), None) == Path("d/refs/main")
    assert hub._ref_file(Path("d"), "v1.0_rc-2") == Path("d/refs/v1.0_rc-2")
    assert hub._ref_file(Path("d"), "refs/pr/1") == Path("d/refs/refs%2Fpr%2F1")
    assert hub._ref_file(Path("d"), "a%2Fb") == Path("d/refs/a%252Fb")  # no two revisions share a file


# --------------------------------------------------------------------------------------------------
# HF_HOME that is not a folder


def local_env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    return {**env, "PYTHONPATH": str(ROOT), "HF_ENDPOINT": os.environ["HF_ENDPOINT"], "HF_HOME": home}


def test_hf_home_that_is_a_file_is_a_local_error(fake_hub, tmp_path):
    regular = tmp_path / "a-file"
    regular.write_text("not a folder")
    for home, message in [
        ("/dev/null", "Error: HF_HOME '/dev/null' is not a directory (point it at a folder, or unset it)\n"),
        (
            str(regular),
            f"Error: HF_HOME '{regular}' is not a directory (point it at a folder, or unset it)\n",
        ),
        ("/dev/null/below", "Error: cannot read '/dev/null/below/token' for 'test/tiny': Not a directory\n"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "hubmem.cli", TINY],
            env=local_env(home),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stderr) == (4, message), home
    assert regular.read_text() == "not a folder"


def test_hf_home_that_is_a_file_fails_audit_rows_and_check_locally(fake_hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HOME", "/dev/null")
    result = run("audit", TINY, "google-t5/t5-small", "--format", "json")
    assert result.exit_code == 30
    assert [r["exit_code"] for r in json.loads(result.stdout)] == [4, 4]
    one_line_error(run("check", TINY, "--gpu", "T4"), 4, "HF_HOME '/dev/null' is not a directory")


# --------------------------------------------------------------------------------------------------
# Local folders


def tiny_tensors() -> dict[str, np.ndarray]:
    spec = layout(TINY)["files"]["model.safetensors"]["tensors"]
    return {name: np.zeros(shape, dtype=np.float16) for name, _, shape in spec}


def model_folder(folder: Path, index: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text((fixture_dir(TINY) / "config.json").read_text())
    if index is None:
        save_file(tiny_tensors(), str(folder / "model.safetensors"))
    else:
        (folder / hub.INDEX_FILE).write_text(json.dumps({"metadata": {}, "weight_map": index}))
    return folder


@pytest.mark.parametrize(
    "shard",
    [
        "../outside.safetensors",
        "../../outside.safetensors",
        "sub/../../outside.safetensors",
        "OUTSIDE",  # an absolute path (filled in below)
        "./model.safetensors",
        "a//b.safetensors",
        "",
    ],
)
def test_a_local_index_cannot_name_files_outside_the_folder(tmp_path, fake_hub, shard):
    save_file(tiny_tensors(), str(tmp_path / "outside.safetensors"))  # readable, were it ever opened
    if shard == "OUTSIDE":
        shard = str(tmp_path / "outside.safetensors")
    folder = model_folder(tmp_path / "a" / "model", {"model.embed_tokens.weight": shard})
    shutil.copy(tmp_path / "outside.safetensors", tmp_path / "a" / "outside.safetensors")
    result = run(str(folder))
    one_line_error(result, 16, f"'{folder}': {hub.INDEX_FILE} names a shard outside the repo: ")
    with pytest.raises(errors.MalformedHeaderError):
        hub.read_local(str(folder))


def test_shards_in_subfolders_and_symlinked_blobs_still_read(tmp_path, fake_hub):
    """A Hub cache snapshot links its files to ../../blobs/: links are followed, only names are checked."""
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    save_file(tiny_tensors(), str(blobs / "abc123"))
    folder = model_folder(tmp_path / "snap", {"model.embed_tokens.weight": "weights/shard-1.safetensors"})
    (folder / "weights").mkdir()
    (folder / "weights" / "shard-1.safetensors").symlink_to(blobs / "abc123")
    result = run(str(folder), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["parameters"]["stored_by_dtype"] == {"F16": 202_048}


@pytest.mark.parametrize("path", ["/", "/tmp", "HOME"])
def test_a_folder_that_is_not_a_model_fails_at_once_without_walking_it(fake_hub, monkeypatch, path):
    path = os.path.expanduser("~") if path == "HOME" else path
    if os.path.exists(os.path.join(path, "config.json")):
        pytest.skip(f"{path} holds a config.json")

    def walker(real):
        def walk(top, *args, **kwargs):  # only the folder asked about: hubmem globs its own install too
            if Path(top).resolve() == Path(path).resolve():
                raise AssertionError("the folder was walked")
            return real(top, *args, **kwargs)

        return walk

    monkeypatch.setattr(Path, "rglob", walker(Path.rglob))
    monkeypatch.setattr(Path, "glob", walker(Path.glob))
    monkeypatch.setattr(os, "walk", walker(os.walk))
    # its top level alone is listed, for .gguf files (a folder of GGUF files is a model too)
    result = run(path)
    one_line_error(result, 13, f"local folder '{path}' has no config.json (not a model folder)")


def test_only_the_top_level_and_the_indexed_shards_are_listed(tmp_path, fake_hub, monkeypatch):
    folder = model_folder(tmp_path / "m")
    deep = folder / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "pytorch_model.bin").write_bytes(b"x" * 10)
    (folder / "original").mkdir()
    (folder / "original" / "consolidated.00.pth").write_bytes(b"x" * 10)

    def walk(*args, **kwargs):
        raise AssertionError("the folder was walked")

    monkeypatch.setattr(Path, "rglob", walk)
    snapshot = hub.read_local(str(folder))
    assert sorted(snapshot.files) == ["config.json", "model.safetensors"]


def test_a_fifo_never_blocks_the_read(tmp_path, fake_hub):
    """A named pipe where a file should be (config.json, a shard the index names) would block open()."""
    as_config = tmp_path / "c"
    as_config.mkdir()
    os.mkfifo(as_config / "config.json")
    as_shard = model_folder(tmp_path / "s", {"model.embed_tokens.weight": "model-1.safetensors"})
    os.mkfifo(as_shard / "model-1.safetensors")
    as_index = model_folder(tmp_path / "i")
    (as_index / "model.safetensors").unlink()
    os.mkfifo(as_index / hub.INDEX_FILE)  # not listed: the folder has no weights then
    for folder, code, message in [
        (as_config, 13, f"Error: local folder '{as_config}' has no config.json (not a model folder)\n"),
        (as_shard, 16, f"Error: '{as_shard}': 'model-1.safetensors' is not a regular file\n"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "hubmem.cli", str(folder)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,  # a blocked open would end here
        )
        assert (done.returncode, done.stderr) == (code, message)
    assert "model.safetensors.index.json" not in hub.read_local(str(as_index)).files


def test_a_directory_where_a_file_should_be(tmp_path, fake_hub):
    as_config = tmp_path / "c"
    (as_config / "config.json").mkdir(parents=True)
    one_line_error(run(str(as_config)), 13, f"local folder '{as_config}' has no config.json")
    as_shard = model_folder(tmp_path / "s", {"model.embed_tokens.weight": "model-1.safetensors"})
    (as_shard / "model-1.safetensors").mkdir()
    one_line_error(run(str(as_shard)), 16, f"'{as_shard}': 'model-1.safetensors' is not a regular file")


def test_a_config_larger_than_any_model_s_is_refused_unread(tmp_path, fake_hub, monkeypatch):
    monkeypatch.setattr(hub, "LOCAL_CONFIG_LIMIT", 1000)
    folder = model_folder(tmp_path / "m")
    (folder / "config.json").write_text(json.dumps({**config(TINY), "pad": "x" * 2000}))
    one_line_error(run(str(folder)), 14, f"'{folder / 'config.json'}' is larger than 0 MiB")


def test_a_permission_error_is_a_local_error_not_the_hub(tmp_path, fake_hub, monkeypatch):
    """Simulated, so that it holds as root too (the real thing: the test below)."""
    folder = model_folder(tmp_path / "m")
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith("config.json"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    one_line_error(run(str(folder)), 4, f"cannot read '{folder / 'config.json'}': Permission denied")


CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # linux/capability.h
PR_CAPBSET_DROP = 24  # linux/prctl.h


def drop_dac_capabilities() -> None:
    """In the child before exec: drop root's power to read any file from the capability bounding set,
    so the exec'd process has it neither permitted nor effective (capabilities(7): a root exec gets
    P'(permitted) = P(bounding) & F(permitted)); what `setpriv --bounding-set -dac_override,...`
    does. Raises OSError when the kernel refuses."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def unprivileged() -> dict:
    """subprocess keywords that run a child without the power to read a mode-000 file: nothing to do for
    an ordinary user (chmod 000 is enough), root's DAC override dropped before exec otherwise (.ci/run
    runs as root: it installs chromium with apt-get)."""
    return {} if os.geteuid() != 0 else {"preexec_fn": drop_dac_capabilities}


def test_the_unprivileged_child_cannot_read_a_mode_000_file(tmp_path):
    """The premise of the test below, as root or not: a mode-000 file is unreadable to the child, and
    readable to the same child given back its permissions."""
    target = tmp_path / "secret"
    target.write_text("x")
    target.chmod(0)
    probe = [sys.executable, "-c", f"open({str(target)!r}).read()"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60, **unprivileged())
        target.chmod(0o644)
        again = subprocess.run(probe, capture_output=True, text=True, timeout=60, **unprivileged())
    finally:
        target.chmod(0o644)
    assert done.returncode == 1 and done.stderr.strip().endswith(
        f"PermissionError: [Errno 13] Permission denied: '{target}'"
    )
    assert (again.returncode, again.stderr) == (0, "")


@pytest.mark.parametrize("unreadable", ["config.json", "model.safetensors", "shard", "index"])
def test_an_unreadable_file_is_a_local_error(tmp_path, fake_hub, unreadable):
    """The real thing, in a real process (as root: its DAC capabilities dropped, `unprivileged`)."""
    if unreadable in ("shard", "index"):
        folder = model_folder(tmp_path / "m", {"model.embed_tokens.weight": "model-1.safetensors"})
        save_file(tiny_tensors(), str(folder / "model-1.safetensors"))
        target = folder / ("model-1.safetensors" if unreadable == "shard" else hub.INDEX_FILE)
    else:
        folder = model_folder(tmp_path / "m")
        target = folder / unreadable
    target.chmod(0)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hubmem.cli", str(folder)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            **unprivileged(),
        )
    finally:
        target.chmod(0o644)
    assert (done.returncode, done.stderr) == (4, f"Error: cannot read '{target}': Permission denied\n")
