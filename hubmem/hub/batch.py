"""Run one call per item on `jobs` threads and hand back each outcome as it lands.

Where it helps (`helper_count`: Linux, two or more CPUs, more than one item or `overlap`, and no
other thread running yet) the threads run in forked helper processes (one per 8 jobs, at most one
per CPU), so the calls (for `hubmem audit`: HTTP and safetensors header parsing, bound by one
interpreter lock each) and what the caller does with each outcome (estimating, transformers'
import) use every core instead of one. The helpers take the next item from a shared counter as
each thread is free; outcomes come back pickled over one pipe per helper. Elsewhere the same
threads run in this process.

An outcome is ``(index, result)``; an exception becomes the result: a `HubmemError` as raised,
anything else as ``HubmemError("internal error: …")``, so one bad item never stops the others.
Threads are daemons and the helpers are killed when the caller stops reading (Ctrl-C, an error), so
requests in flight never hold up the exit.

Helpers die with their caller, however it ends (SIGTERM, SIGHUP, SIGKILL, the OOM killer): each asks
the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), watches its parent's pid as a
fallback, and only the caller holds the read end of a helper's pipe, so a write to a dead caller fails
at once (EPIPE) instead of blocking on a full pipe (tests/test_parent_death.py).
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

from hubmem import errors

Outcome = tuple[int, Any]  # (index, result or HubmemError)
POLL_SECONDS = 0.2  # waits are timed, so that Ctrl-C is seen promptly


def outcomes(
    items: Sequence[Any],
    call: Callable[[Any], Any],
    *,
    jobs: int,
    overlap: bool = False,
    light: bool = False,
) -> Generator[Outcome, None, None]:
    """Starts `call(item)` for every item now; yields each outcome as it finishes (any order).

    `overlap`: the caller has work of its own meanwhile (transformers' import), so a helper pays even
    for a single item. Stop iterating (break, an exception, Ctrl-C) or close the generator to stop:
    no further item is started.

    `light`: the calls are expected to be cheap (a re-run's commit probes, hubmem.jobs.stored): threads
    here, as a helper would spend more setting up than it saves (its own HTTP client, ~0.26 s of imports
    and TLS set-up after the fork, measured with cProfile) on calls that mostly wait on the network.
    """
    if jobs < 1:
        raise errors.InvalidInputError("--jobs must be at least 1")
    count = 0 if light else helper_count(len(items), jobs, overlap=overlap)
    if count:
        return _from_helpers(items, call, jobs, count)
    return _start_threads(items, call, min(jobs, len(items)), _local_claims(len(items)), threading.Event())


# A thread spends most of a repo's time waiting on round trips (~3 × latency) and a few ms on CPU:
# about 8 of them keep one interpreter busy (scripts/bench.py), so there is one helper per 8 jobs.
JOBS_PER_HELPER = 8


def helper_count(items: int, jobs: int, *, overlap: bool = False) -> int:
    """How many helper processes to fork: one per JOBS_PER_HELPER jobs, at most one per CPU, none
    for a single item or a single CPU. Linux only, where fork is the default start method (macOS
    system libraries are not fork-safe), and only from a process running no other thread: a lock
    another thread holds at the fork stays held forever in the child (a program calling the audit
    API from its own threads, or a test process serving the fake Hub, gets threads here instead)."""
    if items < (1 if overlap else 2) or sys.platform != "linux" or threading.active_count() > 1:
        return 0
    cpus = len(os.sched_getaffinity(0))
    return 0 if cpus < 2 else max(1, min(cpus, jobs // JOBS_PER_HELPER, items))


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


def _shared_claims(counter: Any, count: int) -> Callable[[], int | None]:
    """Claims from a counter in shared memory: the helpers take the next item as each is free."""

    def claim() -> int | None:
        with counter.get_lock():
            i = counter.value
            if i >= count:
                return None
            counter.value = i + 1
            return i

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


def _from_helpers(
    items: Sequence[Any], call: Callable[[Any], Any], jobs: int, count: int
) -> Generator[Outcome, None, None]:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    threads = -(-jobs // count)
    helpers: list[Any] = []
    readers: list[Any] = []
    for _ in range(count):
        receive, send = context.Pipe(duplex=False)
        helper = context.Process(
            target=_helper_main,
            # the read ends it inherits (its own, its elder siblings'), for it to close
            args=(send, [*readers, receive], os.getpid(), items, call, threads, counter),
            name="hubmem-fetch",
            daemon=True,
        )
        helper.start()
        send.close()  # each helper holds its pipe's only writer: its exit ends our reads
        helpers.append(helper)
        readers.append(receive)
    return _receive(helpers, readers, len(items))


def _helper_main(
    send: Any,
    inherited: list[Any],
    parent: int,
    items: Sequence[Any],
    call: Callable[[Any], Any],
    threads: int,
    counter: Any,
) -> None:
    watched = not _set_parent_death_signal()
    if os.getppid() != parent:  # it died between the fork and the line above: no signal will come
        os._exit(PARENT_GONE)
    for reader in inherited:  # only the caller reads: its death must break this helper's pipe
        reader.close()
    threading.Thread(target=_watch_parent, args=(parent, watched), name="hubmem-watch", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's: it stops the helpers
    outcomes = _start_threads(items, call, threads, _shared_claims(counter, len(items)), threading.Event())
    try:
        for i, result in outcomes:
            try:
                send.send((i, result))
            except OSError:
                raise
            except Exception as e:  # a result pickle cannot carry: that item's error, not a traceback
                send.send((i, errors.HubmemError(f"internal error: {type(e).__name__}: {e}")))
    except OSError:  # BrokenPipeError: the caller stopped reading
        outcomes.close()


PARENT_GONE = 70  # exit status of a helper that saw its parent die (nobody is left to read it)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _set_parent_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); False where it cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        arg = ctypes.c_ulong
        return int(libc.prctl(_PR_SET_PDEATHSIG, arg(signal.SIGKILL), arg(0), arg(0), arg(0))) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, often: bool) -> None:
    """End this helper once its parent is gone (it is then re-parented: getppid() changes), whatever the
    other threads are blocked in. The fallback where PR_SET_PDEATHSIG is unavailable (polled every
    POLL_SECONDS then), and a backstop where it is."""
    while True:
        time.sleep(POLL_SECONDS if often else 1.0)
        if os.getppid() != parent:
            os._exit(PARENT_GONE)


def _receive(helpers: list[Any], readers: list[Any], count: int) -> Generator[Outcome, None, None]:
    from multiprocessing.connection import wait

    pending = set(range(count))
    open_readers = list(readers)
    try:
        while pending and open_readers:
            ready: list[Any] = wait(open_readers, timeout=POLL_SECONDS)
            for reader in ready:
                try:
                    i, result = reader.recv()
                except EOFError:  # that helper is done, or died (killed, out of memory)
                    open_readers.remove(reader)
                    continue
                pending.discard(i)
                yield i, result
        if pending:  # items a helper claimed and never sent
            codes = []
            for helper in helpers:
                helper.join()
                codes.append(str(helper.exitcode))
            lost = errors.HubmemError(
                f"internal error: a fetch process ended (exit codes {', '.join(codes)})"
            )
            for i in sorted(pending):
                yield i, lost
    finally:
        for helper in helpers:
            if helper.is_alive():
                helper.kill()
            helper.join()
        for reader in readers:
            reader.close()
