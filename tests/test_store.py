"""`hubmem audit --db FILE`: the results database (schema, one row per repo × commit × settings), skipping
repos whose commit is unchanged (and what that costs in requests), `--report` without the network, a run
killed mid-way keeping its finished rows, two runs writing at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubmem
from hubmem.cli import main
from hubmem.hub import fetch as hub
from hubmem.store import db as store

from .helpers import config, layout

TINY = "test/tiny"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    monkeypatch.setattr(hub, "_sleep", lambda s: None)


def add_acme(fake_hub, count: int, **flags) -> list[str]:
    for i in range(count):
        fake_hub.add_repo(f"acme/m{i}", layout=layout(TINY), config=config(TINY), hub=dict(flags))
    return [f"acme/m{i}" for i in range(count)]


def run(*args: str):
    return CliRunner().invoke(main, ["audit", *args])


def table(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_schema_holds_every_column_of_the_json_row(fake_hub, tmp_path):
    from hubmem.jobs.audit import COLUMNS

    path = tmp_path / "audit.sqlite"
    assert run(TINY, "--db", str(path)).exit_code == 0
    names = [r[1] for r in table(path, "PRAGMA table_info(results)")]
    assert names[:22] == ["repo", "sha", "settings", *COLUMNS[2:]]
    assert names[22:] == ["kv_cache", "activations", "overhead", "label", "training", "last_modified", "hubmem_version", "computed_at", "checked_at",
                          "computed_run", "last_run", "position"]  # fmt: skip
    assert table(path, "PRAGMA journal_mode") == [("wal",)]
    assert table(path, "SELECT value FROM meta") == [(str(store.SCHEMA_VERSION),)]
    (row,) = table(
        path, "SELECT repo, sha, params, exact, status, label, hubmem_version, computed_run FROM results"
    )
    assert row == (TINY, fake_hub.sha(TINY), 202_048, 1, "ok", "bf16/fp16", "0.1.0", 1)


def test_unchanged_repos_are_reused_at_one_small_request_each(fake_hub, tmp_path):
    ids = add_acme(fake_hub, 3)
    path = str(tmp_path / "audit.sqlite")
    first = run(*ids, "nobody/nothing", "--db", path, "--format", "csv")
    assert first.exit_code == 30
    assert first.stderr.splitlines()[0] == f"{path}: 4 rows computed, 0 unchanged (reused), run 1."
    fake_hub.clear_log()
    second = run(*ids, "nobody/nothing", "--db", path, "--format", "csv")
    lines = second.stdout.splitlines()
    assert lines[0].endswith(",error,reused")
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["True", "True", "True", "False"]
    assert [line.rsplit(",", 1)[0] for line in lines] == [
        line.rsplit(",", 1)[0] for line in first.stdout.splitlines()
    ]
    # each stored repo: one model_info(expand=sha); the error row is fetched again (errors are never reused)
    assert sorted(r.url for r in fake_hub.requests if r.url.startswith("/api/models/acme")) == [
        f"/api/models/{i}?expand=sha" for i in ids
    ]
    assert second.stderr.splitlines()[0] == f"{path}: 1 rows computed, 3 unchanged (reused), run 2."
    # a new commit of m1 is computed again; the old commit's row stays as history
    fake_hub.add_repo("acme/m1", layout=layout(TINY), config=config(TINY), hub={"commit": "2"})
    third = run(*ids, "--db", path, "--format", "csv")
    assert third.stderr.splitlines()[0] == f"{path}: 1 rows computed, 2 unchanged (reused), run 3."
    assert table(path, "SELECT count(*) FROM results WHERE repo = 'acme/m1'") == [(2,)]
    assert table(path, "SELECT repo FROM results WHERE status = 'error'") == [("nobody/nothing",)]


def test_listed_commits_cost_no_request_and_other_settings_are_computed(fake_hub, tmp_path):
    add_acme(fake_hub, 4)
    path = str(tmp_path / "audit.sqlite")
    assert run("--author", "acme", "--db", path).exit_code == 0
    fake_hub.clear_log()
    again = run("--author", "acme", "--db", path)
    assert again.stderr == f"{path}: 0 rows computed, 4 unchanged (reused), run 2.\n"
    assert [r.url.split("?")[0] for r in fake_hub.requests] == ["/api/models"]
    other = run("--author", "acme", "--db", path, "--seq-len", "1024")  # new settings: a row of their own
    assert other.stderr == f"{path}: 4 rows computed, 0 unchanged (reused), run 3.\n"
    assert table(path, "SELECT count(DISTINCT settings), count(*) FROM results") == [(2, 8)]
    assert table(path, "SELECT count(*) FROM results WHERE last_modified = '2024-01-01T00:00:00+00:00'") == [
        (8,)
    ]


def test_report_prints_the_latest_run_without_the_network(fake_hub, tmp_path):
    ids = add_acme(fake_hub, 2)
    path = str(tmp_path / "audit.sqlite")
    audited = run(*ids, "nobody/nothing", "--db", path, "--gpu", "t4", "--format", "csv")
    fake_hub.clear_log()
    report = run("--db", path, "--report", "--format", "csv")
    assert fake_hub.requests == []
    assert (report.exit_code, report.stderr) == (30, "Error: 1 of 3 stored rows are errors\n")
    assert report.stdout == audited.stdout.replace(",False\n", ",True\n")
    shown = run("--db", path, "--report", "--units", "GB").stdout.splitlines()
    assert shown[0].split() == ["repo", "precision", "total", "GB", "fits", "1×", "T4", "16GB", "max", "seq", "len",
                                "status"]  # fmt: skip
    # bf16 at 2,048 tokens: 1,076,771,360 bytes of 15,835,594,752 usable: +14.76 GB free (tests/test_fit.py)
    assert shown[2].split() == ["acme/m0", "bf16/fp16", "1.08", "yes,", "+14.76", "GB", "free", "2,048", "(model",
                                "max)", "ok", "(reused)"]  # fmt: skip
    picked = run("--db", path, "--report", "--columns", "params,max_batch,status").stdout.splitlines()
    assert [line.split() for line in picked[2:4]] == [["acme/m0", "202,048", "5,622", "ok", "(reused)"],
                                                      ["acme/m1", "202,048", "5,622", "ok", "(reused)"]]  # fmt: skip


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--report"], 3, "--report prints a results database: give --db FILE"),
        (["--report", "--db", "{tmp}/none.sqlite"], 4, "--db '{tmp}/none.sqlite' does not exist"),
        (
            ["--report", "--db", "{tmp}/x.sqlite", TINY],
            3,
            "--report prints the stored rows and fetches nothing: give no repo ids",
        ),
        (
            [TINY, "--db", "{tmp}/junk.sqlite"],
            4,
            "--db '{tmp}/junk.sqlite' is not a hubmem results database: file is not a database",
        ),
        ([TINY, "--db", "{tmp}"], 4, "--db '{tmp}' is a directory, not a database file"),
    ],
)
def test_database_errors_are_one_line(fake_hub, tmp_path, args, code, message):
    (tmp_path / "junk.sqlite").write_bytes(b"not sqlite" * 100)
    result = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert (result.exit_code, result.stderr) == (code, f"Error: {message.replace('{tmp}', str(tmp_path))}\n")
    assert fake_hub.requests == []


def test_python_api_marks_reused_rows(fake_hub, tmp_path):
    ids = add_acme(fake_hub, 2)
    path = str(tmp_path / "audit.sqlite")
    assert [(r.ref, r.reused) for r in hubmem.audit(ids, db=path)] == [("acme/m0", False), ("acme/m1", False)]
    rows = list(hubmem.audit(ids, db=path))
    assert [(r.ref, r.reused, r.fields()["total"]) for r in rows] == [(i, True, 1_076_771_360) for i in ids]


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hubmem.cli", "audit", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_rows(path: Path, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            try:  # a reader while the run writes: it sees whole rows only
                if table(path, "SELECT count(*) FROM results WHERE params IS NOT NULL")[0][0] >= count:
                    return
            except sqlite3.OperationalError:  # the schema not created yet
                pass
        time.sleep(0.05)
    raise AssertionError(f"{count} rows never landed in {path}")


def test_a_killed_run_keeps_its_finished_rows(fake_hub, tmp_path):
    add_acme(fake_hub, 5)
    path = tmp_path / "audit.sqlite"
    fake_hub.hang("/api/models/acme/m2", 60)  # m2 never finishes in this run
    proc = cli("--author", "acme", "--db", str(path), "--jobs", "2")
    wait_for_rows(path, 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert table(path, "PRAGMA integrity_check") == [("ok",)]
    assert table(path, "SELECT repo, status, total FROM results ORDER BY repo") == [
        (f"acme/m{i}", "ok", 1_076_771_360) for i in (0, 1, 3, 4)
    ]
    assert table(path, "SELECT id, finished_at FROM runs") == [(1, None)]  # it never finished
    fake_hub.reset()
    again = run("--author", "acme", "--db", str(path))
    assert again.stderr == f"{path}: 1 rows computed, 4 unchanged (reused), run 2.\n"


def test_two_runs_at_once_both_land_whole(fake_hub, tmp_path):
    add_acme(fake_hub, 8)
    fake_hub.latency_ms = 20  # both runs are writing at the same time
    path = tmp_path / "audit.sqlite"
    first = cli(*[f"acme/m{i}" for i in range(0, 6)], "--db", str(path), "--format", "jsonl")
    second = cli(*[f"acme/m{i}" for i in range(2, 8)], "--db", str(path), "--format", "jsonl")
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    assert [len(out.splitlines()) for out, _ in outs] == [6, 6]
    assert table(path, "SELECT count(*), count(DISTINCT repo) FROM results WHERE status = 'ok'") == [(8, 8)]
    assert table(path, "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL AND repos = 6") == [(2,)]
    assert table(path, "PRAGMA integrity_check") == [("ok",)]


def test_the_commit_probe_is_model_infos_expand_sha_request(fake_hub):
    """hubmem.hub.client.commit makes HfApi.model_info(expand=["sha"])'s request, without importing HfApi,
    and reads the sha the way model_info does; a repo the Hub cannot answer for gives no commit (None)."""
    from huggingface_hub import HfApi

    from hubmem.hub import client
    from hubmem.hub.listing import current_commit

    fake_hub.add_repo("acme/m0", layout=layout(TINY), config=config(TINY), hub={"commit": "2"})
    assert client.commit("acme/m0", None, None, 5.0) == fake_hub.sha("acme/m0")
    assert client.commit("acme/m0", "main", None, 5.0) == fake_hub.sha("acme/m0")
    ours = [r.url for r in fake_hub.requests]
    fake_hub.clear_log()
    theirs = HfApi().model_info("acme/m0", revision="main", expand=["sha"]).sha
    assert theirs == fake_hub.sha("acme/m0")
    assert ours == ["/api/models/acme/m0?expand=sha", "/api/models/acme/m0/revision/main?expand=sha"]
    assert [r.url for r in fake_hub.requests] == ours[1:]  # the same request as huggingface_hub's
    assert current_commit("nobody/nothing", None, token=None, timeout=5.0) is None
    assert current_commit("acme/m0", "a" * 40, token=None, timeout=5.0) == "a" * 40  # no request for a sha
    assert fake_hub.count("GET", "/api/models/acme/m0") == 1


def test_a_rerun_probes_two_commits_per_job_at_once(fake_hub, tmp_path):
    """--jobs 1: a first run fetches one repo at a time (two requests in flight: model info and config.json);
    the re-run's probes, one request each, run two at a time (hubmem.jobs.stored.PROBES_PER_JOB). Held by
    the fake Hub until two are in flight: a third never starts before one is answered."""
    import threading

    ids = add_acme(fake_hub, 3)
    path = str(tmp_path / "audit.sqlite")
    assert [r.ok for r in hubmem.audit(ids, db=path, jobs=1)] == [True] * 3
    fake_hub.clear_log()
    gate = fake_hub.hold("?expand=sha")
    rows: list = []
    worker = threading.Thread(target=lambda: rows.extend(hubmem.audit(ids, db=path, jobs=1)), daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 60  # a guard, not a timing
        while len(fake_hub.filter("GET", "?expand=sha")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        probes = fake_hub.filter("GET", "?expand=sha")
        assert [r.status for r in probes] == [0, 0]  # two in flight, both held
    finally:
        gate.release()
    worker.join(60)
    assert [(r.ref, r.reused) for r in rows] == [(i, True) for i in ids]
    probes = fake_hub.filter("GET", "?expand=sha")
    assert sorted(r.path for r in probes) == [f"/api/models/{i}" for i in ids]
    third = max(probes, key=lambda r: r.arrived)
    assert third.arrived >= min(r.answered for r in probes if r is not third)  # sent once one was answered


def test_a_rerun_lists_an_author_holding_many_of_its_ids_instead_of_probing_each(
    fake_hub, tmp_path, monkeypatch
):
    # hubmem.hub.listing.commits_by_author, with its threshold lowered from 100 ids to 3
    from hubmem.hub import listing

    monkeypatch.setattr(listing, "AUTHOR_LISTING_MIN_IDS", 3)
    ids = add_acme(fake_hub, 4)
    path = str(tmp_path / "audit.sqlite")
    assert run(*ids, TINY, "--db", path, "--format", "csv").exit_code == 0
    fake_hub.clear_log()
    again = run(*ids, TINY, "--db", path, "--format", "csv")
    assert again.stderr.splitlines()[0] == f"{path}: 0 rows computed, 5 unchanged (reused), run 2."
    # acme's 4 ids: one page of /api/models?author=acme; test/tiny (one id of its author): its own probe
    assert sorted(r.url.split("&")[0] for r in fake_hub.requests) == [
        "/api/models/test/tiny?expand=sha",
        "/api/models?author=acme",
    ]


def test_an_author_listing_reads_one_page_per_hundred_ids_and_probes_what_it_did_not_reach(
    fake_hub, tmp_path, monkeypatch
):
    from hubmem.hub import listing

    monkeypatch.setattr(listing, "AUTHOR_LISTING_MIN_IDS", 3)
    fake_hub.page_size = 2  # acme's 4 models on 2 pages; 4 ids allow ceil(4 / 100) = 1 page
    ids = add_acme(fake_hub, 4)
    path = str(tmp_path / "audit.sqlite")
    assert run(*ids, "--db", path, "--format", "csv").exit_code == 0
    fake_hub.clear_log()
    again = run(*ids, "--db", path, "--format", "csv")
    assert again.stderr.splitlines()[0] == f"{path}: 0 rows computed, 4 unchanged (reused), run 2."
    listings = [r for r in fake_hub.requests if r.path == "/api/models"]
    probes = sorted(r.path for r in fake_hub.requests if r.url.endswith("?expand=sha"))
    assert len(listings) == 1 and len(probes) == 2  # the first page's 2 listed, the other 2 probed
