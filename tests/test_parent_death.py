"""Fetch helpers die with their parent: killing only the `hubmem` process (as a CI runner, a subprocess
timeout or the OOM killer does) leaves no forked helper behind, whatever the signal, and no helper blocks
on a pipe nobody reads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hubmem.hub import batch

from .helpers import config, layout

TINY = "test/tiny"
ROOT = Path(__file__).resolve().parent.parent
SURVIVAL_LIMIT = 2.0  # seconds a helper may outlive its parent (issue 11's bar)

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2, reason="helpers are forked on Linux SMP only"
)


def children(pid: int) -> set[int]:
    """The live child processes of `pid`: every process whose parent it is, from each one's
    /proc/N/stat (its /proc/PID/task/TID/children lists "are only reliable if all of the child
    processes are stopped or frozen", proc(5): under load they missed running helpers)."""
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
    # the fallback alone: no PR_SET_PDEATHSIG, so only the helpers' watch on their parent ends them
    "watch-only": "import hubmem.hub.batch as b; b._set_parent_death_signal = lambda: False; ",
    # `hubmem REPO` forks a helper only when transformers must be imported beside the fetch: without a
    # usable table of its config classes (another transformers version than the table's)
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
        ("audit", signal.SIGKILL, "watch-only"),
        ("estimate", signal.SIGKILL, "no-table"),
    ],
    ids=["audit-TERM", "audit-KILL", "audit-HUP", "audit-KILL-watch-only", "estimate-KILL"],
)
def test_helpers_do_not_outlive_a_killed_parent(fake_hub, command, sig, prelude):
    repos = [f"acme/slow{i}" for i in range(6)]
    for repo in repos:
        fake_hub.add_repo(repo, layout=layout(TINY), config=config(TINY))
    fake_hub.hang("/acme/slow", 60)  # every request of every repo: the helpers sit in their fetches
    args = ["audit", *repos, "--format", "csv"] if command == "audit" else [repos[0]]
    proc = start([*args, "--timeout", "50"], PRELUDE[prelude])
    helpers: set[int] = set()
    try:
        # the helpers are forked and fetching once the Hub sees their requests
        in_flight = 2 if command == "audit" else 1
        assert wait_for(lambda: fake_hub.count(path="/acme/slow") >= in_flight, 60), "no request arrived"
        helpers = children(proc.pid)
        assert helpers, "no helper process was forked"
        assert proc.poll() is None
        os.kill(proc.pid, sig)  # the parent only, not its group
        killed = time.monotonic()
        proc.wait(timeout=10)
        gone = wait_for(lambda: not any(alive(h) for h in helpers), 5)
        survived = time.monotonic() - killed
        assert gone, (
            f"helpers {sorted(h for h in helpers if alive(h))} still running 5 s after the parent died"
        )
        assert survived < SURVIVAL_LIMIT, f"helpers outlived their parent by {survived:.2f} s"
    finally:
        for pid in helpers:  # whatever survived a failing run: by id, only what this test started
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _pipe_ends_for_reading() -> set[str]:
    """`pipe:[inode]` of every pipe this process holds open for reading."""
    ends = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            flags = next(
                int(line.split()[1], 8)
                for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines()
                if line.startswith("flags:")
            )
        except (FileNotFoundError, StopIteration):
            continue
        if target.startswith("pipe:") and flags & os.O_ACCMODE == os.O_RDONLY:
            ends.add(target)
    return ends


def test_no_helper_holds_a_read_end_of_a_helper_pipe(monkeypatch):
    """Only the parent may read a helper's pipe: when it dies, a helper's write fails at once (EPIPE)
    instead of blocking forever once the pipe is full because a sibling (or the helper itself) still
    holds a read end it inherited at the fork."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    made: list[str] = []
    real_pipe = context.Pipe

    def pipe(duplex: bool = True):
        receive, send = real_pipe(duplex)
        made.append(f"pipe:[{os.fstat(receive.fileno()).st_ino}]")
        return receive, send

    monkeypatch.setattr(context, "Pipe", pipe)
    monkeypatch.setattr(batch, "helper_count", lambda items, jobs, **kw: 3)
    seen = [set(r) for _, r in batch.outcomes(list(range(6)), lambda _: _pipe_ends_for_reading(), jobs=6)]
    assert len(made) == 3 and len(seen) == 6
    for ends in seen:
        assert not ends & set(made), f"a helper holds the read end of a helper pipe: {ends & set(made)}"
