"""One pool of daemon threads for the requests every fetch of this process makes beside its own.

A fetch asks for several things at once (the file list and config.json, a sharded repo's headers);
before, each fetch started a `ThreadPoolExecutor` of its own, and an audit of 2,000 repos started and
joined 2,000 of them (~0.4 ms of CPU per repo, measured with scripts/bench.py). Here one set of
threads, grown on demand up to `MAX_THREADS`, serves every fetch of the process, and each fetch works
through a `Scope`:

- at most `width` of a scope's requests run at a time (a sharded repo read shard by shard is 8
  connections, as before), the rest wait in the scope's own queue, not the pool's, so one large repo
  never holds up the others' requests;
- leaving a scope (`with pool.scope(8) as s:`) waits for every request it started, also after an
  error, so none is left running into the next repo's time or the caller's;
- the threads are daemons: a request in flight never holds up the interpreter's exit (a
  `ThreadPoolExecutor`'s threads are joined at exit, up to every request's timeout).

A call that waits on another of the pool's futures (a speculative guess, hubmem.hub.fetch._answer)
cannot starve it: the pool starts a thread whenever no idle one is left, and the futures a call may
wait on were queued before it (first in, first out).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_for_all
from typing import Any

# Requests in flight for the whole process: an audit's --jobs (at most 256) repos at one or two each,
# and the rest queue; more would only queue on huggingface_hub's connection pool (100 connections).
MAX_THREADS = 128

_Task = tuple[Future, Callable[..., Any], tuple, dict]


class _Pool:
    def __init__(self, max_threads: int) -> None:
        self._max = max_threads
        self._reset()

    def _reset(self) -> None:
        """No thread, nothing queued: a forked child (an audit's fetch helper, hubmem.hub.batch) has none
        of its parent's threads, only their counts, which would leave its tasks waiting for nobody."""
        self._todo: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0

    def run(self, future: Future, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        with self._lock:
            grow = self._idle == 0 and self._threads < self._max
            if grow:
                self._threads += 1
            else:
                self._idle -= 1  # this task's thread: one fewer idle for the next submit to count on
        self._todo.put((future, fn, args, kwargs))
        if grow:
            threading.Thread(target=self._work, name="hubmem-request", daemon=True).start()

    def _work(self) -> None:
        while True:
            future, fn, args, kwargs = self._todo.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as e:  # the caller's .result() raises it, as an executor's does
                    future.set_exception(e)
            del future, fn, args, kwargs  # a result is the caller's to keep, not this thread's
            with self._lock:
                self._idle += 1


_pool = _Pool(MAX_THREADS)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool._reset)


class Scope(Executor):
    """The requests of one fetch (`scope`): an `Executor`, so `submit` and `map` work as on a
    `ThreadPoolExecutor`."""

    def __init__(self, width: int) -> None:
        self._width = width
        self._lock = threading.Lock()
        self._running = 0
        self._waiting: deque[_Task] = deque()
        self._dispatched: set[Future] = set()  # handed to the pool (running, or queued there)
        self._started: list[Future] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        future.add_done_callback(self._finished)
        with self._lock:
            self._started.append(future)
            if self._running >= self._width:
                self._waiting.append((future, fn, args, kwargs))
                return future
            self._running += 1
            self._dispatched.add(future)
        _pool.run(future, fn, args, kwargs)
        return future

    def _finished(self, future: Future) -> None:
        with self._lock:
            if future not in self._dispatched:  # cancelled while it waited here: it never ran
                return
            self._dispatched.discard(future)
            self._running -= 1
            while self._waiting and self._waiting[0][0].cancelled():
                self._waiting.popleft()
            if not self._waiting:
                return
            task = self._waiting.popleft()
            self._running += 1
            self._dispatched.add(task[0])
        _pool.run(*task)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for every request this scope started (the queued ones are cancelled first with
        `cancel_futures`, as an executor leaving its block after an error would not)."""
        if cancel_futures:
            with self._lock:
                for future, *_ in self._waiting:
                    future.cancel()
        if wait:
            wait_for_all(self._started)


def scope(width: int) -> Scope:
    """A scope of at most `width` requests at a time; use as `with scope(8) as s:`."""
    return Scope(width)
