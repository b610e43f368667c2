"""One pace for the whole pool (hubmem.hub.pace): a 429's Retry-After pauses every worker, in every forked
helper; --max-rps spaces calls; retried calls are counted and reported."""

from __future__ import annotations

import multiprocessing

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.hub import fetch as hub
from hubmem.hub import pace

from .helpers import config, layout

TINY = "test/tiny"


@pytest.fixture
def now(monkeypatch):
    t = [100.0]
    monkeypatch.setattr(pace, "clock", lambda: t[0])
    return t


def test_a_pause_holds_every_caller_until_it_ends(now):
    pace.configure(None)
    assert pace.wait_before_call() == 0
    pace.pause_all(3.0)
    assert [pace.wait_before_call() for _ in range(3)] == [3.0, 3.0, 3.0]  # any worker, each call
    pace.pause_all(1.0)  # a shorter pause does not cut the longer one
    now[0] += 2.5
    assert pace.wait_before_call() == 0.5
    now[0] += 0.5
    assert pace.wait_before_call() == 0


def test_max_rps_reserves_one_slot_per_call(now):
    pace.configure(4)
    assert [pace.wait_before_call() for _ in range(4)] == [0, 0.25, 0.5, 0.75]
    now[0] += 10  # idle: the next call goes at once, and the slots restart from it
    assert [pace.wait_before_call() for _ in range(2)] == [0, 0.25]
    pace.configure(None)


def _child() -> None:
    pace.pause_all(30.0)
    pace.count_retry()


def test_a_forked_helper_pauses_its_parent_too():
    pace.configure(None)
    child = multiprocessing.get_context("fork").Process(target=_child)
    child.start()
    child.join()
    assert child.exitcode == 0
    assert 29.0 < pace.wait_before_call() <= 30.0  # the child's pause, seen here through shared memory
    assert pace.retried() == 1
    pace.configure(None)
    assert (pace.wait_before_call(), pace.retried()) == (0, 0)


def test_a_429_pauses_the_other_workers_and_is_reported(fake_hub, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(hub, "_sleep", waits.append)
    for name in ("acme/m0", "acme/m1", "acme/m2"):
        fake_hub.add_repo(name, layout=layout(TINY), config=config(TINY))
    fake_hub.fail("/api/models/acme/m0", 429, times=1, headers={"Retry-After": "7"})
    for name in ("acme/m1", "acme/m2"):  # their file lists land after m0's 429
        fake_hub.hang(f"/api/models/{name}", 0.5, times=1)
    result = CliRunner().invoke(
        main, ["audit", "acme/m0", "acme/m1", "acme/m2", "--jobs", "3", "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == "Hub calls retried: 1 (429/5xx answers, timeouts).\n"
    assert fake_hub.count("GET", "/api/models/acme/m0") == 2  # the 429, then the answer
    # m0's retry and the header reads of m1 and m2 (the pause's sleeps are recorded, not slept)
    paused = [w for w in waits if 5.0 < w <= 7.0]
    assert len(paused) >= 3, waits
    header_reads = {r.path.split("/")[3] for r in fake_hub.filter("GET", "model.safetensors", server="cdn")}
    assert header_reads == {"m0", "m1", "m2"}


@pytest.mark.parametrize("value", ["0", "-1", "20000"])
def test_bad_max_rps_exits_3(fake_hub, value):
    result = CliRunner().invoke(main, ["audit", TINY, "--max-rps", value])
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: --max-rps must be a number above 0 and at most 10,000, not ")
    assert fake_hub.requests == []
