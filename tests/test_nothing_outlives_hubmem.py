"""Nothing outlives a killed `hubmem`: an audit or an estimate fetches on threads of its own process
(hubmem.hub.batch, hubmem.hub.pool) and forks no helper, so killing only the `hubmem` process (as a CI
runner, a subprocess timeout or the OOM killer does) leaves nothing behind, whatever the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import config, layout

TINY = "test/tiny"
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def children(pid: int) -> set[int]:
    """The live child processes of `pid`: every process whose parent it is, from each one's
    /proc/N/stat (its /proc/PID/task/TID/children lists "are only reliable if all of the child
    processes are stopped or frozen", proc(5): under load they missed running children)."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:  # state, then ppid
            found.add(int(entry))
    return {c for c in found if alive(c)}


def alive(pid: int) -> bool:
    """Running (a zombie left for a reaper that never comes counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_for(predicate, seconds: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


PRELUDE = {
    "plain": "",
    # `hubmem REPO` without a usable table of its config classes: transformers imports beside the fetch
    "no-table": "import hubmem.jobs.snapshot as s; s.usable_table = lambda: None; ",
}


def start(args: list[str], prelude: str) -> subprocess.Popen:
    code = prelude + "import sys; from hubmem.cli import main; sys.argv[0] = 'hubmem'; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group, so that the test's clean-up can reach what survives
    )


@pytest.mark.parametrize(
    "command, sig, prelude",
    [
        ("audit", signal.SIGTERM, "plain"),
        ("audit", signal.SIGKILL, "plain"),
        ("audit", signal.SIGHUP, "plain"),
        ("estimate", signal.SIGKILL, "no-table"),
    ],
    ids=["audit-TERM", "audit-KILL", "audit-HUP", "estimate-KILL"],
)
def test_a_fetching_hubmem_has_no_child_process_and_leaves_none_when_killed(fake_hub, command, sig, prelude):
    repos = [f"acme/slow{i}" for i in range(6)]
    for repo in repos:
        fake_hub.add_repo(repo, layout=layout(TINY), config=config(TINY))
    fake_hub.hang("/acme/slow", 60)  # every request of every repo: the fetches sit waiting
    args = ["audit", *repos, "--format", "csv"] if command == "audit" else [repos[0]]
    proc = start([*args, "--timeout", "50"], PRELUDE[prelude])
    found: set[int] = set()
    try:
        in_flight = 6 if command == "audit" else 2  # every repo's first requests, or the model's
        assert wait_for(lambda: fake_hub.count(path="/acme/slow") >= in_flight, 60), "no request arrived"
        found = children(proc.pid)
        assert found == set(), f"hubmem forked {sorted(found)}"
        assert proc.poll() is None
        os.kill(proc.pid, sig)  # the process only, not its group
        assert proc.wait(timeout=10) == -sig
        assert children(proc.pid) == set()
    finally:
        for pid in found:  # whatever a failing run forked: by id, only what this test started
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
