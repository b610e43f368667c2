"""Run a command and measure its own peak RSS and CPU, for the tests and `make bench`.

Linux keeps a process's peak RSS (`ru_maxrss`) across exec, and a child created by fork or vfork starts
from its parent's: a command started directly from a pytest worker or the bench (a few hundred MB) would
report the caller's peak, not its own. So the command is started from a small launcher interpreter,
which forks it after its own exec: the command's peak then starts from the launcher's ~10 MB, and the
launcher reports the command's rusage (wait4: its own and its waited-for children's) on a pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

_LAUNCHER = """
import json, os, sys, time
report = int(sys.argv[1])
os.set_inheritable(report, False)
start = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        import ctypes  # PR_SET_PDEATHSIG = 1: the command dies with the launcher (a timeout kills that)
        ctypes.CDLL(None).prctl(1, 9)
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
end = time.monotonic()
code = os.waitstatus_to_exitcode(status)
os.write(report, json.dumps({"start": start, "end": end, "code": code, "maxrss_kib": usage.ru_maxrss,
                             "cpu": usage.ru_utime + usage.ru_stime}).encode())
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class Measured:
    returncode: int  # negative: killed by that signal
    stdout: str
    stderr: str
    peak_rss: int  # bytes, the command's own peak (and its children's)
    cpu: float  # seconds, user + system
    start: float  # time.monotonic() when the command was forked (comparable across processes)
    end: float  # ... and when it had exited


def run_measured(argv: list[str], **kwargs: Any) -> Measured:
    """subprocess.run(argv, capture_output=True, text=True, **kwargs) through the launcher."""
    read, write = os.pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, str(write), *argv],
            pass_fds=(write,),
            capture_output=True,
            text=True,
            **kwargs,
        )
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = json.loads(pipe.read() or b"null")
    if report is None:  # the launcher itself was killed (a timeout): no figures
        raise RuntimeError(f"launcher ended with {done.returncode} before the command did")
    return Measured(
        report["code"],
        done.stdout,
        done.stderr,
        report["maxrss_kib"] * 1024,
        report["cpu"],
        report["start"],
        report["end"],
    )


if __name__ == "__main__":  # python -m tests.measured CMD ...: the figures of one command
    m = run_measured(sys.argv[1:])
    print(
        f"exit {m.returncode}, peak RSS {m.peak_rss / 2**20:.0f} MiB, CPU {m.cpu:.2f} s, wall {m.end - m.start:.2f} s"
    )
