"""One model's snapshot for the estimate, serve and check jobs: fetched with what can overlap its round
trips (hubmem.hub.fetch does the fetching; this module only arranges what runs beside it)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hubmem.errors import HubmemError
from hubmem.hub import fetch as hub
from hubmem.model import architecture as arch_mod
from hubmem.model.config_table import usable_table


def fetch_snapshot(
    repo: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    timeout: float = hub.DEFAULT_TIMEOUT,
    beside: bool = False,
    prefer_gguf: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> hub.RepoSnapshot:
    """A repo's metadata, fetched while `meanwhile()` (the caller's next imports) runs in this thread once
    the requests are in flight (hub.fetch) and, when normalisation needs it, transformers' config
    machinery imports. Raises HubmemError. The fetch asks for its likeliest headers beside the file list
    (`hub.fetch(speculate=True)`): one model's wall time is its round trips.

    `beside` (the CLI): when transformers must be imported (no usable table of its config classes,
    model/config_table.py), fetch in a forked helper process where hubmem.hub.batch finds one pays, so
    that the fetch and transformers' import run on two cores. Library callers fetch in-process (their
    threads make forking unsafe).
    """

    def fetch(ref: str, then: Callable[[], object] | None = None) -> hub.RepoSnapshot:
        return hub.fetch(
            ref,
            revision=revision,
            token=token,
            timeout=timeout,
            prefer_gguf=prefer_gguf,
            speculate=True,
            meanwhile=then,
        )

    if not beside or usable_table() is not None:  # nothing to overlap: a helper would only cost its fork
        start_warm_up()
        return fetch(repo, meanwhile)
    from hubmem.hub import batch

    stream = batch.outcomes([repo], fetch, jobs=1, overlap=True)  # forks first: no thread may run before it
    start_warm_up()
    if meanwhile is not None:
        meanwhile()
    ((_, fetched),) = list(stream)
    if isinstance(fetched, HubmemError):
        raise fetched
    return fetched


def start_warm_up() -> None:
    """Import transformers' config machinery (~1.7 s) in a background thread, so that it overlaps the
    network round trips of `hub.fetch` (one call serves a whole audit) — only when normalisation will
    need it: with the generated table of config classes (model/config_table.py) it does not, and an
    import nobody waits for would only take CPU from the fetch."""
    if usable_table() is not None:
        return

    def quiet() -> None:
        try:
            arch_mod.warm_up()
        except Exception:  # the real import happens again (and reports) when it is needed
            pass

    threading.Thread(target=quiet, daemon=True).start()
