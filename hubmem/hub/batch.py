"""Run one call per item on `jobs` threads and hand back each outcome as it lands.

An outcome is ``(index, result)``; an exception becomes the result: a `HubmemError` as raised,
anything else as ``HubmemError("internal error: …")``, so one bad item never stops the others.
Threads are daemons, so requests in flight never hold up the exit (Ctrl-C, an error).

All in this process. Until 2026-12 the threads ran in forked helper processes, one per 8 jobs, so that
`hubmem audit` used both cores of a 2-core machine. Once the fetch path lost its per-repo thread pools
and cache re-encoding (hubmem.hub.pool, hubmem.hub.fetch), the helpers no longer paid: the 200-repo
bench at 50 ms (scripts/bench.py, alternating runs, load ~5) took 1.62 s wall and 6.7 ms of CPU per
repo on threads here against 1.82 s and 7.8 ms with helpers, whose forks, pipes and pickled snapshots
cost more than the second core gave back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

from hubmem import errors

Outcome = tuple[int, Any]  # (index, result or HubmemError)
POLL_SECONDS = 0.2  # waits are timed, so that Ctrl-C is seen promptly


def outcomes(
    items: Sequence[Any], call: Callable[[Any], Any], *, jobs: int
) -> Generator[Outcome, None, None]:
    """Starts `call(item)` for every item now; yields each outcome as it finishes (any order). Stop
    iterating (break, an exception, Ctrl-C) or close the generator to stop: no further item is started."""
    if jobs < 1:
        raise errors.InvalidInputError("--jobs must be at least 1")
    return _start_threads(items, call, min(jobs, len(items)), _local_claims(len(items)), threading.Event())


def guarded(call: Callable[[Any], Any], item: Any) -> Any:
    """call(item), or the exception it raised as a HubmemError."""
    try:
        return call(item)
    except errors.HubmemError as e:
        return e
    except Exception as e:  # a bug on one item must not sink the batch
        return errors.InternalError.of(e)  # 'internal error: <type>: <first line>', exit 1


def _local_claims(count: int) -> Callable[[], int | None]:
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(count):
        todo.put(i)

    def claim() -> int | None:
        try:
            return todo.get_nowait()
        except queue.Empty:
            return None

    return claim


def _start_threads(
    items: Sequence[Any],
    call: Callable[[Any], Any],
    threads: int,
    claim: Callable[[], int | None],
    stop: threading.Event,
) -> Generator[Outcome, None, None]:
    """Starts `threads` daemon workers; yields their outcomes until every worker is out of items."""
    done: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()

    def worker() -> None:
        try:
            while not stop.is_set():
                i = claim()
                if i is None:
                    return
                done.put((i, guarded(call, items[i])))
        finally:
            done.put(None)  # this worker is finished

    for _ in range(threads):
        threading.Thread(target=worker, name="hubmem-worker", daemon=True).start()
    return _collect(done, threads, stop)


def _collect(
    done: queue.SimpleQueue[Outcome | None], threads: int, stop: threading.Event
) -> Generator[Outcome, None, None]:
    finished = 0
    try:
        while finished < threads:
            try:
                outcome = done.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if outcome is None:
                finished += 1
            else:
                yield outcome
    finally:
        stop.set()  # workers finish the item in hand (daemons: never waited for) and take no other
