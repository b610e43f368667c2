"""The audit results database: one SQLite file (the standard library's `sqlite3`), one row per
(repo, commit sha, settings), every figure of the audit's JSON row, plus errors, times and the hubmem
version.

Safe to share:
- write-ahead logging (`PRAGMA journal_mode=WAL`, SQLite's "wal.html"): readers see the last committed
  state and never a half-written row, and read while a run writes;
- each finished row is committed in its own transaction as it lands, so a run that crashes or is
  killed keeps every row it finished (the rest are computed by the next run);
- two runs at once: SQLite lets one writer in at a time and the other waits for the lock
  (`timeout=BUSY_SECONDS`), so both runs' rows land, whole.

The schema (`SCHEMA`) is documented in the README ("Results database").
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hubmem import errors

SCHEMA_VERSION = 1
BUSY_SECONDS = 60.0  # how long a writer waits for another run's transaction before failing

# The audit row's columns (hubmem.jobs.audit.COLUMNS) with their SQLite types.
FIGURES = {
    "params": "INTEGER",
    "active_params": "INTEGER",
    "exact": "INTEGER",  # 0/1
    "dtype": "TEXT",
    "context": "INTEGER",
    "precision": "TEXT",
    "weights": "INTEGER",
    "total": "INTEGER",
    "kv_per_token": "INTEGER",
    "fits_on": "TEXT",
    "fits": "INTEGER",  # 0/1, NULL without --gpu
    "headroom": "INTEGER",
    "gpus_needed": "INTEGER",
    "max_seq_len": "INTEGER",
    "max_batch": "INTEGER",
    "download": "INTEGER",
    "status": "TEXT",  # ok | error
    "exit_code": "INTEGER",
    "error": "TEXT",
}
BOOLEAN = ("exact", "fits")
PARTS = ("kv_cache", "activations", "overhead")  # hubmem.jobs.audit.AuditRow.parts
_FIGURE_COLUMNS = ",\n    ".join(f"{name} {kind}" for name, kind in FIGURES.items())  # the JSON row's figures

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,           -- sha256 of the settings JSON, first 16 hex digits
    json TEXT NOT NULL              -- options, judged precision, GPUs, hubmem version
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,       -- UTC, ISO 8601
    finished_at TEXT,               -- NULL: still running, or it crashed
    settings TEXT NOT NULL REFERENCES settings(key),
    hubmem_version TEXT NOT NULL,
    repos INTEGER NOT NULL,         -- ids asked for
    computed INTEGER NOT NULL DEFAULT 0,
    reused INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,  -- Hub requests answered 429/5xx and tried again
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results (
    repo TEXT NOT NULL,             -- as given: org/name or org/name@revision
    sha TEXT NOT NULL,              -- the commit; '' for an error before any commit was known
    settings TEXT NOT NULL REFERENCES settings(key),
    {_FIGURE_COLUMNS},
    kv_cache INTEGER,               -- the row's other terms (bytes); NULL for a training row
    activations INTEGER,            -- (training: with the logits buffers)
    overhead INTEGER,
    label TEXT,                     -- the precision row's label (bf16/fp16, ...)
    training INTEGER NOT NULL DEFAULT 0,
    last_modified TEXT,             -- the Hub's lastModified, when a listing said
    hubmem_version TEXT NOT NULL,
    computed_at TEXT NOT NULL,      -- when the figures were computed (UTC)
    checked_at TEXT NOT NULL,       -- when a run last found this commit current (UTC)
    computed_run INTEGER NOT NULL REFERENCES runs(id),
    last_run INTEGER NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL,      -- the row's place in last_run's input
    PRIMARY KEY (repo, sha, settings)
);
CREATE INDEX IF NOT EXISTS results_last_run ON results(last_run, position);
"""


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(settings).encode()).hexdigest()[:16]


def canonical(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)


class ResultsDB:
    """One connection to the database at `path` (created with its schema when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            if Path(self.path).is_dir():
                raise errors.LocalFileError(f"--db '{self.path}' is a directory, not a database file")
            self.conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self._wal()
            self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a process crash
            self.conn.execute("PRAGMA foreign_keys=ON")
            # one transaction (executescript commits whatever is open first, then runs the script as is);
            # each statement IF NOT EXISTS / OR IGNORE: safe for two runs creating it at once
            self.conn.executescript(
                f"BEGIN IMMEDIATE; {SCHEMA}; INSERT OR IGNORE INTO meta VALUES ('schema_version', "
                f"'{SCHEMA_VERSION}'); COMMIT;"
            )
            found = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise errors.LocalFileError(f"--db '{self.path}' is not a hubmem results database: {e}") from e
        if found is None or found[0] != str(SCHEMA_VERSION):
            raise errors.LocalFileError(
                f"--db '{self.path}' has schema version {found[0] if found else '?'}, this hubmem "
                f"writes {SCHEMA_VERSION}",
                hint="use a new file",
            )

    def _wal(self) -> None:
        """PRAGMA journal_mode=WAL. Two runs creating the file at once can meet in a lock upgrade that
        SQLite answers "database is locked" at once, without waiting (its busy handler would deadlock
        there): tried again for up to BUSY_SECONDS."""
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.conn.close()

    def transaction(self) -> Any:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception): the write lock is taken at once, so
        two runs queue instead of failing half-way."""
        conn = self.conn

        class _Txn:
            def __enter__(self) -> None:
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind: Any, *rest: Any) -> None:
                conn.execute("COMMIT" if kind is None else "ROLLBACK")

        return _Txn()

    # -- runs ------------------------------------------------------------------------------------

    def start_run(self, settings: dict[str, Any], repos: int) -> int:
        key = settings_key(settings)
        with self.transaction():
            self.conn.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)", (key, canonical(settings)))
            cursor = self.conn.execute(
                "INSERT INTO runs (started_at, settings, hubmem_version, repos) VALUES (?, ?, ?, ?)",
                (utc_now(), key, settings.get("hubmem", "unknown"), repos),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(
        self, run: int, *, computed: int, reused: int, failed: int, retried: int, interrupted: bool
    ) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE runs SET finished_at = ?, computed = ?, reused = ?, failed = ?, retried = ?, "
                "interrupted = ? WHERE id = ?",
                (utc_now(), computed, reused, failed, retried, int(interrupted), run),
            )

    def run_info(self, run: int | None = None) -> dict[str, Any] | None:
        """A run (default: the latest) with its settings JSON parsed, or None when there is none."""
        query = "SELECT runs.*, settings.json AS settings_json FROM runs JOIN settings ON settings.key = runs.settings"
        row = self.conn.execute(
            query + (" WHERE runs.id = ?" if run is not None else " ORDER BY runs.id DESC LIMIT 1"),
            (run,) if run is not None else (),
        ).fetchone()
        if row is None:
            return None
        info = dict(row)
        info["settings_json"] = json.loads(info["settings_json"])
        return info

    # -- rows ------------------------------------------------------------------------------------

    def current(self, settings: dict[str, Any]) -> dict[str, str]:
        """repo -> the commit of its stored ok row under these settings, for every repo that has one
        (the most recently checked, when a repo has rows for several commits)."""
        rows = self.conn.execute(
            "SELECT repo, sha FROM results WHERE settings = ? AND status = 'ok' AND sha != '' ORDER BY checked_at",
            (settings_key(settings),),
        )
        return {repo: sha for repo, sha in rows}

    def put(
        self,
        values: dict[str, Any],
        *,
        settings: dict[str, Any],
        run: int,
        position: int,
        label: str | None,
        training: bool,
        last_modified: str | None = None,
        parts: dict[str, int | None] | None = None,
    ) -> None:
        """Store a freshly computed row (an error row replaces the repo's earlier error rows)."""
        key = settings_key(settings)
        now = utc_now()
        figures = [int(values[k]) if k in BOOLEAN and values[k] is not None else values[k] for k in FIGURES]
        with self.transaction():
            if values["status"] != "ok":
                self.conn.execute(
                    "DELETE FROM results WHERE repo = ? AND settings = ? AND status != 'ok'",
                    (values["repo"], key),
                )
            self.conn.execute(
                f"INSERT OR REPLACE INTO results (repo, sha, settings, {', '.join(FIGURES)}, {', '.join(PARTS)}, "
                "label, training, last_modified, hubmem_version, computed_at, checked_at, computed_run, last_run, "
                f"position) VALUES ({', '.join('?' * (len(FIGURES) + len(PARTS) + 12))})",
                (
                    values["repo"],
                    values["sha"] or "",
                    key,
                    *figures,
                    *((parts or {}).get(k) for k in PARTS),
                    label,
                    int(training),
                    last_modified,
                    settings.get("hubmem", "unknown"),
                    now,
                    now,
                    run,
                    run,
                    position,
                ),
            )

    def reuse(
        self, repo: str, sha: str, settings: dict[str, Any], *, run: int, position: int
    ) -> dict[str, Any] | None:
        """The stored row of (repo, sha, settings), marked as checked by this run; None when gone."""
        key = settings_key(settings)
        with self.transaction():
            self.conn.execute(
                "UPDATE results SET checked_at = ?, last_run = ?, position = ? WHERE repo = ? AND sha = ? AND settings = ?",
                (utc_now(), run, position, repo, sha, key),
            )
            row = self.conn.execute(
                "SELECT * FROM results WHERE repo = ? AND sha = ? AND settings = ?", (repo, sha, key)
            ).fetchone()
            # a repo now current at a commit: its older error rows are history no more
            self.conn.execute(
                "DELETE FROM results WHERE repo = ? AND settings = ? AND status != 'ok'", (repo, key)
            )
        return None if row is None else dict(row)

    def run_rows(self, run: int) -> Iterator[dict[str, Any]]:
        """The rows a run computed or found current, in its input order."""
        yield from (
            dict(r)
            for r in self.conn.execute("SELECT * FROM results WHERE last_run = ? ORDER BY position", (run,))
        )


def audit_values(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored row as hubmem.jobs.audit's plain values (booleans back to bool, '' sha to None)."""
    from hubmem.jobs.audit import COLUMNS

    values = {k: stored.get(k) for k in COLUMNS}
    values["sha"] = stored["sha"] or None
    for k in BOOLEAN:
        if values[k] is not None:
            values[k] = bool(values[k])
    return values
