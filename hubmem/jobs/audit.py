"""Batch audit: many repo ids at once, one row each, in input order; one bad repo never stops the rest.

The fetches run on `--jobs` threads (hubmem.hub.batch: in a forked helper process where a second CPU
can run it), sharing huggingface_hub's HTTP session (one connection pool) and hubmem's metadata
cache; each estimate is made in the calling thread as its fetch lands. Workers are daemons and the
helper is killed on Ctrl-C, so it returns at once with the rows that finished, instead of waiting
for requests in flight to time out.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from hubmem import errors
from hubmem.fit.verdicts import Target, Verdict
from hubmem.hub import batch
from hubmem.hub import fetch as hub
from hubmem.jobs.check import judged_key
from hubmem.jobs.estimate import estimate_snapshot
from hubmem.jobs.options import InferenceOptions, TrainingOptions
from hubmem.jobs.results import InferenceEstimate, TrainingEstimate
from hubmem.jobs.snapshot import start_warm_up
from hubmem.memory import inference as memory

# Each repo spends 2-3 round trips waiting on the network and ~10 ms of CPU, so at 50 ms latency the
# audit is bound by how many repos are in flight. Measured on 2 cores (200 bench repos, fake Hub at
# 50 ms, alternating runs, 2026-12-04): 16 jobs 2.06-2.45 s, 32 jobs 1.27-2.06 s (median ~1.5 s), 48
# 1.18-1.28 s, 64 1.10-1.23 s, at the same CPU. 32: most of the gain, at half the requests in flight of
# 64 (the Hub rate-limits a client: --max-rps paces it, a 429 pauses every worker). Two helper
# processes of 16 threads (hubmem.hub.batch), each repo at most 2 connections at a time (8 for a
# sharded repo without the Hub's single-request header endpoint) on each pool's 100.
DEFAULT_JOBS = 32
# The most: beyond a few hundred threads the fetches only queue on the HTTP pools (100 connections
# each) while every thread costs its stack; a million (`-j 1000000`) would never start.
MAX_JOBS = 256


def parse_id_lines(text: str) -> list[str]:
    """Repo ids from a file's text: one per line; `#` starts a comment; blank lines are skipped."""
    ids = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    return ids


def read_ids(args: Iterable[str], files: Iterable[str], stdin: TextIO) -> list[str]:
    """Ids from the arguments, then from each file (`-` is stdin, also as an argument)."""
    ids: list[str] = []
    stdin_text: str | None = None

    def from_stdin() -> list[str]:
        nonlocal stdin_text
        if stdin_text is None:
            stdin_text = stdin.read()
        return parse_id_lines(stdin_text)

    for arg in args:
        ids.extend(from_stdin() if arg == "-" else [arg])
    for name in files:
        if name == "-":
            ids.extend(from_stdin())
            continue
        try:
            ids.extend(parse_id_lines(Path(name).read_text()))
        except (OSError, UnicodeDecodeError) as e:
            raise errors.InvalidInputError(f"cannot read repo ids from '{name}': {e}") from e
    if not ids:
        raise errors.InvalidInputError("no repo ids given (arguments, -f FILE, or - for stdin)")
    return ids


@dataclass(frozen=True)
class AuditRow:
    """One repo of an audit: its estimate and the judged row's plain values (`fields()`), or its error."""

    ref: str  # as given, e.g. "org/name@v1"
    estimate: InferenceEstimate | TrainingEstimate | None = None
    precision: str | None = None  # the judged precision, or the training regime
    verdict: Verdict | None = None
    error: errors.HubmemError | None = None
    values: dict[str, Any] = field(default_factory=dict)  # column -> plain value, computed once
    # a row read back from a results database (hubmem.store): no estimate, its row label and job kept
    reused: bool = False
    label: str | None = None
    training: bool = False
    # the judged row's terms beside `weights` and `total` (bytes): kv_cache (None for training),
    # activations (training: with the logits buffers), overhead; the HTML report's bars (hubmem.output.html)
    parts: dict[str, int | None] | None = None
    # rows of the same ref after this one: the other quant files of a GGUF repo (hubmem.jobs.gguf), each
    # a row of its own in every output; `expanded` lists them
    more: tuple[AuditRow, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def row_label(self) -> str:
        if self.estimate is None and self.label is not None:
            return self.label
        assert self.estimate is not None and self.precision is not None
        return self.estimate.row(self.precision).label

    @property
    def is_training(self) -> bool:
        return self.training or isinstance(self.estimate, TrainingEstimate)

    def fields(self) -> dict[str, Any]:
        """Plain values (bytes as ints, None when unknown) keyed by column name."""
        return dict(self.values)

    def to_dict(self) -> dict[str, Any]:
        return self.fields()

    def plain(self) -> AuditRow:
        """This row without its estimate and verdict (its label and job kept): what the table, the HTML
        report and the database read, a few hundred bytes, so an audit of many repos stays flat in memory."""
        if self.estimate is None and self.verdict is None:
            return self
        label = self.row_label if self.ok and self.estimate is not None else self.label
        return replace(self, estimate=None, verdict=None, label=label, training=self.is_training)


def expanded(row: AuditRow) -> list[AuditRow]:
    """The rows one ref gives: itself, then `more` (a GGUF repo's other quant files)."""
    return [replace(row, more=()), *row.more] if row.more else [row]


def fetch_listed(
    repo: str,
    revision: str | None,
    sha: str | None,
    *,
    token: str | None,
    timeout: float,
    prefer_gguf: bool = False,
) -> hub.RepoSnapshot:
    """hub.fetch, but a repo whose commit a listing named (`sha`) is answered from hubmem's metadata
    cache when that commit is there: no request at all (a commit never changes)."""
    if sha is not None and revision is None and not prefer_gguf:
        cached = hub._cache_load(repo, sha)
        if cached is not None:
            cached.revision = None
            return cached
    return hub.fetch(repo, revision=revision, token=token, timeout=timeout, prefer_gguf=prefer_gguf)


def settings_of(
    options: InferenceOptions | TrainingOptions, chosen: str | None, target: Target | None
) -> dict[str, Any]:
    """Everything an audit row's figures depend on besides the repo's commit: the job's validated options,
    the judged precision, the GPUs and hubmem's version (a new version may count differently)."""
    import dataclasses
    from importlib.metadata import PackageNotFoundError, version

    try:
        hubmem_version = version("hubmem")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        hubmem_version = "unknown"
    return {
        "job": "training" if isinstance(options, TrainingOptions) else "inference",
        "options": dataclasses.asdict(options),
        "precision": chosen or "auto",
        "target": None if target is None else dataclasses.asdict(target),
        "hubmem": hubmem_version,
    }


def _values(
    ref: str, est: InferenceEstimate | TrainingEstimate, key: str, verdict: Verdict | None
) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(COLUMNS)
    a, c = est.architecture, est.counts
    row = est.row(key)
    if isinstance(est, InferenceEstimate):
        kv_per_token = est.kv_bytes_per_token[key]
    else:  # a training regime's KV per token at its compute dtype (what generation would keep)
        kv_per_token = memory.kv_bytes_per_token(a, memory.compute_dtype_bytes(key))
    out.update(
        repo=ref,
        sha=est.sha,
        params=c.parameters,
        # MoE: parameters a token runs through (hubmem.model.moe); a dense model's are its total.
        active_params=est.active_parameters if est.active_parameters is not None else c.parameters,
        exact=c.exact,
        dtype=a.dtype
        or (max(c.stored_by_dtype, key=lambda d: c.stored_by_dtype[d]) if c.stored_by_dtype else None),
        context=a.max_context,
        precision=key,
        weights=row.weights,
        total=row.total,
        kv_per_token=kv_per_token,
        fits_on=est.fits_on[key],
        download=est.download_bytes,
        status="ok",
        exit_code=0,
    )
    trained = est.fit.get(key) if isinstance(est, TrainingEstimate) else None
    if trained is not None:  # --train --gpu: hubmem.fit.training.training_fit
        out.update(fits=trained.fits, headroom=trained.headroom_bytes, gpus_needed=trained.gpus_needed)
    if verdict is not None:
        out.update(
            fits=verdict.fits,
            headroom=verdict.headroom,
            gpus_needed=verdict.gpus_needed,
            max_seq_len=verdict.max_seq_len,
            max_batch=verdict.max_batch,
        )
    return out


def _parts(est: InferenceEstimate | TrainingEstimate, key: str) -> dict[str, int | None]:
    if isinstance(est, InferenceEstimate):
        r = est.row(key)
        return {"kv_cache": r.kv_cache, "activations": r.activations, "overhead": r.overhead}
    t = est.row(key)
    return {"kv_cache": None, "activations": t.activations + t.logits, "overhead": t.overhead}


def _error_row(ref: str, error: errors.HubmemError) -> AuditRow:
    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    values.update(repo=ref, status="error", exit_code=error.exit_code, error=str(error))
    return AuditRow(ref, error=error, values=values)


COLUMNS = (
    "repo",
    "sha",
    "params",
    "active_params",
    "exact",
    "dtype",
    "context",
    "precision",
    "weights",
    "total",
    "kv_per_token",
    "fits_on",
    "fits",
    "headroom",
    "gpus_needed",
    "max_seq_len",
    "max_batch",
    "download",
    "status",
    "exit_code",
    "error",
)


@dataclass
class AuditResult:
    rows: list[AuditRow]  # input order; only the finished ones when interrupted; none with keep=False
    total: int  # ids asked for
    interrupted: bool = False
    failed: list[AuditRow] = field(default_factory=list)  # the error rows, in input order
    finished: int = 0  # rows that finished


def audit_row(
    ref: str,
    fetched: hub.RepoSnapshot | errors.HubmemError,
    options: InferenceOptions | TrainingOptions,
    chosen: str | None = None,
    target: Target | None = None,
) -> AuditRow:
    """The row for one fetched repo (pure: no network); any failure becomes the row's error (a bug: exit 1).
    `options` and `chosen` as hubmem.jobs.check.judged_options makes them."""
    if isinstance(fetched, errors.HubmemError):
        return _error_row(ref, fetched)
    try:
        est = estimate_snapshot(fetched, options, target=target)
        key = judged_key(est, chosen)
        verdict = est.verdict(key) if isinstance(est, InferenceEstimate) else None
        return AuditRow(
            ref, est, key, verdict, values=_values(ref, est, key, verdict), parts=_parts(est, key)
        )
    except errors.HubmemError as e:
        return _error_row(ref, e)
    except Exception as e:  # a bug on one repo must not sink the batch
        return _error_row(ref, errors.InternalError.of(e))


def run_audit(
    refs: list[str],
    fetch: Callable[[str], hub.RepoSnapshot],
    evaluate: Callable[[str, hub.RepoSnapshot | errors.HubmemError], AuditRow],
    *,
    jobs: int = DEFAULT_JOBS,
    on_done: Callable[[AuditRow], None] | None = None,
    on_row: Callable[[AuditRow], None] | None = None,
    keep: bool = True,
    warm_up: bool = True,
) -> AuditResult:
    """`fetch(ref)` for every ref on `jobs` threads (in a helper process where that uses a second
    core: hubmem.hub.batch); `evaluate(ref, snapshot or error)` here, as each fetch lands, while
    transformers' import (`start_warm_up`) overlaps the first fetches.

    `on_done` runs here as each row finishes, in any order (progress bars); `on_row` in input order, as
    soon as the row and every row before it have finished (the CLI prints it then), so only the rows
    finished ahead of a slower one wait in memory. `keep`: collect the rows into the result (False: only
    the error rows, for a stream whose rows went out through `on_row`). Ctrl-C (or a KeyboardInterrupt
    raised by `on_done` or `on_row`) stops handing out work; the rows that finished go on in input order
    and the result says `interrupted`.
    """
    stream = _start_fetches(refs, fetch, jobs, warm_up)
    result = AuditResult([], len(refs))
    waiting: dict[int, AuditRow] = {}  # finished ahead of an earlier row
    next_index = 0

    def hand_on(i: int) -> None:  # a row leaves `waiting` once handed on: Ctrl-C meanwhile loses none
        for row in expanded(waiting[i]):  # a GGUF repo: a row per quant file
            if on_row is not None:
                on_row(row)
            if not row.ok:
                result.failed.append(row)
            if keep:
                result.rows.append(row)
        del waiting[i]
        result.finished += 1

    try:
        for i, fetched in stream:
            waiting[i] = row = evaluate(refs[i], fetched)
            while next_index in waiting:
                hand_on(next_index)
                next_index += 1
            if on_done is not None:  # after the rows it let out: a bar at n/N means they are printed
                on_done(row)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        stream.close()  # stops the workers (or the helper process) at once
    for i in sorted(waiting):  # interrupted: what finished after the first unfinished row
        hand_on(i)
    return result


def _start_fetches(
    refs: list[str], fetch: Callable[[str], hub.RepoSnapshot], jobs: int, warm_up: bool
) -> Generator[batch.Outcome, None, None]:
    """Every ref's fetch started (hubmem.hub.batch), then transformers' import (`start_warm_up`) beside
    them. `warm_up` False: few estimates are expected (a re-run, hubmem.jobs.stored), each imports what it
    needs, and its cheap probes run on threads here (`light`)."""
    hub.preload()  # shared by the helpers it forks
    stream = batch.outcomes(refs, fetch, jobs=jobs, light=not warm_up)  # forks first: no thread before it
    if warm_up:
        start_warm_up()
    return stream


def ordered_rows(
    refs: list[str],
    fetch: Callable[[str], hub.RepoSnapshot],
    evaluate: Callable[[str, hub.RepoSnapshot | errors.HubmemError], AuditRow],
    *,
    jobs: int = DEFAULT_JOBS,
    warm_up: bool = True,
) -> Iterator[AuditRow]:
    """The rows of `run_audit` as an iterator in input order: each as soon as it and every row before
    it have finished (the Python API's `hubmem.audit`). Closing it stops the fetches."""
    stream = _start_fetches(refs, fetch, jobs, warm_up)
    done: dict[int, AuditRow] = {}
    next_index = 0
    try:
        for i, fetched in stream:
            done[i] = evaluate(refs[i], fetched)
            while next_index in done:
                yield from expanded(done.pop(next_index))
                next_index += 1
    finally:
        stream.close()


def sort_rows(rows: list[AuditRow], key: str) -> list[AuditRow]:
    """Rows ordered by a column (`-column`: descending); error rows, and rows without a value, last."""
    descending = key.startswith("-")
    column = key.lstrip("-")
    if column not in COLUMNS:
        raise errors.InvalidInputError(f"cannot sort by '{column}' (choose from {', '.join(COLUMNS)})")
    valued = [r for r in rows if r.fields()[column] is not None]
    rest = [r for r in rows if r.fields()[column] is None]
    valued.sort(key=lambda r: r.fields()[column], reverse=descending)
    return valued + rest


def progress_bar(total: int, stream: TextIO = sys.stderr) -> Any:
    """A tqdm bar on `stream` when it is a terminal; a silent stand-in otherwise."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: a bar updated per repo needs none, and no thread
    # should run when the audit forks its fetch helper (hubmem.hub.batch)
    # mininterval 0: every finished row is drawn at once (tqdm's default 0.1 s skips an update that comes
    # sooner, and with no monitor thread the bar then shows 0/2 until the next row, however long that is)
    return tqdm(
        total=total, file=stream, unit="repo", disable=not stream.isatty(), leave=False, mininterval=0
    )
