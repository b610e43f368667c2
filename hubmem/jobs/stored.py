"""`hubmem audit --db FILE`: an audit that keeps its rows in the results database (hubmem.store.db) and
skips every repo whose commit has not changed since its stored row.

Before the fetches start, the stored commits of this run's settings are read once (`current`). Then,
per repo, on the fetch workers: a repo with no stored row is fetched as usual; one with a stored row
asks for its current commit (none when a listing named it: hubmem.hub.listing; else one small
`model_info(expand=sha)` request, or none for a ref pinned to a commit) and, when it is the stored one,
the worker hands back `Unchanged` instead of fetching. Here, as each outcome lands, an `Unchanged` repo's
row is read back (marked `reused`), any other is estimated and stored at once (its own transaction), and
only the row's plain values are kept: memory stays flat however many repos.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from hubmem import errors
from hubmem.jobs.audit import MAX_JOBS, AuditResult, AuditRow, expanded, ordered_rows, run_audit
from hubmem.store.db import PARTS, ResultsDB, audit_values

PROBES_PER_JOB = 2


@dataclass(frozen=True)
class Unchanged:
    """A fetch worker's answer for a repo still at its stored commit (picklable: helpers send it)."""

    sha: str


class StoredAudit:
    """Wraps an audit plan (hubmem.api.AuditPlan): its fetch skips unchanged repos, its evaluation
    stores each row. `finish()` records the run's counts."""

    def __init__(self, plan: Any, db: ResultsDB, probe: Callable[[str], str | None]) -> None:
        self.plan, self.db, self.probe = plan, db, probe
        self.current = db.current(plan.settings)  # before any fork: the workers only read it
        self.run = db.start_run(plan.settings, len(plan.refs))
        self.position: dict[str, int] = {}
        for i, ref in enumerate(plan.refs):
            self.position.setdefault(ref, i)
        self.computed = self.reused = self.failed = 0
        # transformers' import overlaps the fetches only when there is something to fetch (a repo with
        # no stored row); a re-run of unchanged repos needs no estimate, so it skips the ~2 s import
        self.warm_up = any(ref not in self.current for ref in self.position)
        # A re-run of stored repos mostly probes: one small request per repo, where a fetch keeps two in
        # flight (model info and config.json at once, hubmem.hub.fetch). So it probes PROBES_PER_JOB ×
        # --jobs repos at once, as many requests in flight as --jobs fetches make, while the repos found
        # changed are still fetched at most --jobs at a time (`fetching`).
        self.threads = min(plan.jobs * PROBES_PER_JOB, MAX_JOBS) if not self.warm_up else plan.jobs
        self.fetching = threading.BoundedSemaphore(plan.jobs)

    def list_commits(self) -> None:
        """The stored repos' commits a listing can give for many at once (the plan's `list_commits`:
        hubmem.hub.listing.commits_by_author), before the probes ask for the rest one by one."""
        self.plan.list_commits([ref for ref in self.position if ref in self.current])

    def fetch(self, ref: str) -> Any:
        stored = self.current.get(ref)
        if stored is not None and self.probe(ref) == stored:
            return Unchanged(stored)
        with self.fetching:
            return self.plan.fetch(ref)

    def evaluate(self, ref: str, fetched: Any) -> AuditRow:
        position = self.position[ref]
        if isinstance(fetched, Unchanged):
            stored = self.db.reuse(ref, fetched.sha, self.plan.settings, run=self.run, position=position)
            if stored is not None:
                self.reused += 1
                return AuditRow(
                    ref,
                    precision=stored["precision"],
                    values=audit_values(stored),
                    reused=True,
                    label=stored["label"],
                    training=bool(stored["training"]),
                    parts={k: stored[k] for k in PARTS},
                )
            try:  # another run replaced it meanwhile: fetch it here after all
                fetched = self.plan.fetch(ref)
            except errors.HubmemError as e:
                fetched = e
        row: AuditRow = self.plan.evaluate(ref, fetched)
        listed = self.plan.listed.get(ref)
        kept = []
        for one in expanded(row):  # a GGUF repo's quant files: one stored row each, keyed REPO:QUANT
            label = one.row_label if one.ok else None
            self.db.put(
                one.values,
                settings=self.plan.settings,
                run=self.run,
                position=position,
                label=label,
                training=one.is_training,
                last_modified=listed.last_modified if listed is not None else None,
                parts=one.parts,
            )
            # only the plain values go on: the estimate (architecture, counts, rows) is dropped here
            kept.append(one.plain())
        self.computed += 1
        self.failed += not row.ok
        return replace(kept[0], more=tuple(kept[1:]))

    def finish(self, interrupted: bool = False, retried: int = 0) -> None:
        self.db.finish_run(
            self.run,
            computed=self.computed,
            reused=self.reused,
            failed=self.failed,
            retried=retried,
            interrupted=interrupted,
        )

    def run_all(
        self,
        on_done: Callable[[AuditRow], None] | None = None,
        on_row: Callable[[AuditRow], None] | None = None,
        keep: bool = True,
    ) -> AuditResult:
        """The audit (hubmem.jobs.audit.run_audit: `on_done`, `on_row`, `keep`), each row stored as it
        finishes, then the run's counts."""
        self.list_commits()
        result = run_audit(
            self.plan.refs,
            self.fetch,
            self.evaluate,
            jobs=self.threads,
            on_done=on_done,
            on_row=on_row,
            keep=keep,
            warm_up=self.warm_up,
        )
        from hubmem.hub import pace

        self.finish(result.interrupted, retried=pace.retried())
        return result

    def iterate(self) -> Iterator[AuditRow]:
        finished = False
        self.list_commits()
        try:
            yield from ordered_rows(
                self.plan.refs, self.fetch, self.evaluate, jobs=self.threads, warm_up=self.warm_up
            )
            finished = True
        finally:
            self.finish(interrupted=not finished)


def stored_rows(db: ResultsDB) -> tuple[list[AuditRow], dict[str, Any] | None]:
    """The latest run's rows, in its input order, and that run (None: the database holds no run)."""
    run = db.run_info()
    if run is None:
        return [], None
    rows = []
    for stored in db.run_rows(run["id"]):
        values = audit_values(stored)
        error = None if values["status"] == "ok" else errors.HubmemError(values["error"] or "")
        if error is not None:
            error.exit_code = values["exit_code"]
        rows.append(
            AuditRow(
                stored["repo"],
                precision=stored["precision"],
                error=error,
                values=values,
                reused=True,
                label=stored["label"],
                training=bool(stored["training"]),
                parts={k: stored[k] for k in PARTS},
            )
        )
    return rows, run


def report_rows(path: str) -> tuple[list[AuditRow], Any]:
    """`hubmem audit --db FILE --report`: the latest run's rows and its GPUs (a Target, or None)."""
    from pathlib import Path

    from hubmem.fit.verdicts import Target

    if not Path(path).is_file():
        raise errors.LocalFileError(f"--db '{path}' does not exist")
    db = ResultsDB(path)
    try:
        rows, run = stored_rows(db)
    finally:
        db.close()
    if run is None:
        raise errors.InvalidInputError(f"--db '{path}' holds no audit run yet")
    target = run["settings_json"].get("target")
    return rows, None if target is None else Target(**target)
