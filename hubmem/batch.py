"""Run one call per item on `jobs` threads and hand back each outcome as it lands.

Where it helps (Linux, two or more CPUs, more than one item) the threads run in a forked helper
process, so the calls (for `hubmem audit`: HTTP and safetensors header parsing, bound by one
interpreter lock) and whatever the caller does with each outcome (estimating, and transformers'
~1.7 s import) use two cores instead of one. The fork happens before this process starts any
thread; outcomes come back pickled over a pipe. Elsewhere the same threads run in this process.

An outcome is ``(index, result)``; an exception becomes the result: a `HubmemError` as raised,
anything else as ``HubmemError("internal error: …")``, so one bad item never stops the others.
Threads are daemons and the helper is killed when the caller stops reading (Ctrl-C, an error), so
requests in flight never hold up the exit.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

from . import errors

Outcome = tuple[int, Any]  # (index, result or HubmemError)
POLL_SECONDS = 0.2  # waits are timed, so that Ctrl-C is seen promptly


def outcomes(
    items: Sequence[Any], call: Callable[[Any], Any], *, jobs: int
) -> Generator[Outcome, None, None]:
    """Starts `call(item)` for every item now; yields each outcome as it finishes (any order).

    Stop iterating (break, an exception, Ctrl-C) to stop: no further item is started.
    """
    if jobs < 1:
        raise errors.InvalidInputError("--jobs must be at least 1")
    if fork_helps(len(items)):
        return _from_helper(items, call, jobs)
    return _threads(items, call, jobs)


def fork_helps(count: int) -> bool:
    """Whether a helper process pays: more than one item, and a second CPU to run it on. Linux only,
    where fork is the default start method (macOS libraries are not fork-safe)."""
    return count > 1 and sys.platform == "linux" and len(os.sched_getaffinity(0)) > 1


def guarded(call: Callable[[Any], Any], item: Any) -> Any:
    """call(item), or the exception it raised as a HubmemError."""
    try:
        return call(item)
    except errors.HubmemError as e:
        return e
    except Exception as e:  # a bug on one item must not sink the batch
        return errors.HubmemError(f"internal error: {type(e).__name__}: {e}")


def _threads(items: Sequence[Any], call: Callable[[Any], Any], jobs: int) -> Generator[Outcome, None, None]:
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(items)):
        todo.put(i)
    done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            done.put((i, guarded(call, items[i])))

    for _ in range(min(jobs, len(items))):
        threading.Thread(target=worker, name="hubmem-worker", daemon=True).start()
    return _drain(done, len(items), stop)


def _drain(
    done: queue.SimpleQueue[Outcome], count: int, stop: threading.Event
) -> Generator[Outcome, None, None]:
    try:
        for _ in range(count):
            while True:
                try:
                    outcome = done.get(timeout=POLL_SECONDS)
                    break
                except queue.Empty:
                    continue
            yield outcome
    finally:
        stop.set()  # workers finish the item in hand (daemons: never waited for) and take no other


def _from_helper(
    items: Sequence[Any], call: Callable[[Any], Any], jobs: int
) -> Generator[Outcome, None, None]:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    helper = context.Process(
        target=_helper_main, args=(send, items, call, jobs), name="hubmem-fetch", daemon=True
    )
    helper.start()
    send.close()  # the helper holds the only writer: its exit ends our reads
    return _receive(helper, receive, len(items))


def _helper_main(send: Any, items: Sequence[Any], call: Callable[[Any], Any], jobs: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's: it stops this process
    try:
        for outcome in _threads(items, call, jobs):
            send.send(outcome)
    except OSError:  # BrokenPipeError: the caller stopped reading
        pass


def _receive(helper: Any, receive: Any, count: int) -> Generator[Outcome, None, None]:
    pending = set(range(count))
    try:
        while pending:
            if not receive.poll(POLL_SECONDS):
                continue
            try:
                i, result = receive.recv()
            except EOFError:  # the helper died (killed, out of memory) before sending everything
                helper.join()
                lost = errors.HubmemError(
                    f"internal error: the fetch process ended (exit code {helper.exitcode})"
                )
                for i in sorted(pending):
                    yield i, lost
                return
            pending.discard(i)
            yield i, result
    finally:
        if helper.is_alive():
            helper.kill()
        helper.join()
        receive.close()
