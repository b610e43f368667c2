"""One pace for every Hub call of the process and its forked fetch helpers (hubmem.hub.batch).

- A 429 answer (the Hub's rate limit) with `Retry-After: N` pauses *every* worker for N seconds, not only
  the one that got it: the next call of any thread, in any helper, waits until the pause is over
  (RFC 6585 §4: the client should wait that long before it sends any new request).
- `--max-rps R`: calls start at most R per second over the whole pool (each call reserves the next slot
  1/R seconds after the previous one).
- Every retried call (429, 5xx, a timeout) is counted, and the audit reports the count.

The state lives in shared memory created at import, i.e. before any helper forks, so a helper's pause is
the caller's and its siblings' too; `time.monotonic()` is the system-wide CLOCK_MONOTONIC on Linux, the
same clock in every process. The lock is held for a few arithmetic operations only, never while waiting.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable

_context = multiprocessing.get_context("fork" if sys.platform != "win32" else None)
# [0] no call before this monotonic time (a 429's pause); [1] the next free slot under --max-rps;
# [2] seconds between slots (0: no limit)
_times = _context.RawArray("d", 3)
_retried = _context.RawValue("q", 0)
_lock = _context.Lock()
clock: Callable[[], float] = time.monotonic  # replaced by the tests

MAX_RPS = 10_000.0


def configure(max_rps: float | None) -> None:
    """Start afresh: no pause, no calls counted, at most `max_rps` calls a second (None: no limit)."""
    with _lock:
        _times[0] = _times[1] = 0.0
        _times[2] = 0.0 if max_rps is None else 1.0 / max_rps
        _retried.value = 0


def wait_before_call() -> float:
    """Seconds this call must wait before it starts (0: go): the pool's pause, then its --max-rps slot,
    which it reserves."""
    with _lock:
        now = clock()
        start = max(now, _times[0])
        if _times[2]:
            start = max(start, _times[1])
            _times[1] = start + _times[2]
    return start - now


def pause_all(seconds: float) -> None:
    """A 429 said to wait: no worker starts a call for `seconds` from now (a longer pause stays)."""
    with _lock:
        _times[0] = max(_times[0], clock() + seconds)


def count_retry() -> None:
    with _lock:
        _retried.value += 1


def retried() -> int:
    """Calls retried since `configure`, in this process and its helpers."""
    return int(_retried.value)
