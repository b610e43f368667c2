"""Fetch what the estimate needs — config.json, the file list, safetensors headers — never weights.

Every Hub call goes through huggingface_hub's client (auth, HF_ENDPOINT, offline mode, typed
errors), the requests HfApi's methods make, made by `hubmem.hub.client` without importing HfApi.
Round trips per model, measured against the test server (see scripts/bench.py):

    phase 1, concurrently:  model info (HfApi.model_info(files_metadata=True))  1 request  (sha, files + sizes)
                            GET config.json                                    1 request
    phase 2:  single file:  Range GET (parse_safetensors_file_metadata)        1 request (2 if header > 100 kB)
              sharded:      GET safetensors-metadata (..._sharded_...)         1 request for all shards (main only);
                            fallback: GET index + one Range GET per shard, in parallel
    (the Hub answers a Range GET of an LFS file with a redirect: +1 request to its CDN per file)

Whatever was fetched is stored under $HF_HOME/hubmem/ keyed by commit sha, so a repeat run for a
commit makes no request at all and HF_HUB_OFFLINE=1 works for anything fetched before.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from hubmem import errors
from hubmem.acyclic import collector_paused
from hubmem.hub import bounded, client, header_check, pool

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
DEFAULT_TIMEOUT = 10.0
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_BEARER_RE = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx")

T = TypeVar("T")
Headers = dict[str, dict[str, tuple[str, tuple[int, ...]]]]


@dataclass
class RepoSnapshot:
    """Everything hubmem reads about one repo at one revision. Plain data, JSON-serialisable."""

    repo_id: str
    revision: str | None  # as asked for
    sha: str | None  # commit it resolved to (None for a local folder)
    config: dict
    files: dict[str, int | None]  # path -> size in bytes
    headers: Headers = field(default_factory=dict)  # safetensors file -> tensor -> (dtype, shape)
    weights_format: str = "safetensors"  # safetensors | pytorch | gguf | none
    source: str = "hub"  # hub | cache | local
    notes: list[str] = field(default_factory=list)
    gguf: dict[str, dict] = field(default_factory=dict)  # .gguf file -> header record (hub.gguf_fetch)

    def weight_files(self) -> dict[str, int | None]:
        return {p: s for p, s in self.files.items() if p.endswith(_WEIGHT_SUFFIXES)}

    def to_json(self) -> dict:
        # shallow, not dataclasses.asdict (its deep copy of DeepSeek-V3's ~92k header tuples took
        # 3.8 s): json writes the (dtype, shape) tuples as arrays as they are
        return {f.name: getattr(self, f.name) for f in fields(self)}


def is_local(repo: str) -> bool:
    return os.path.isdir(repo) or repo.lower().endswith(".gguf") and os.path.isfile(repo)


def clean_token(token: str | None) -> str | None:
    """The token to send, kept secret first (`errors.keep_secret`: no error can echo it, trimmed or not).

    None: huggingface_hub's own (HF_TOKEN, else the saved login). A given token is trimmed of
    surrounding whitespace, as huggingface_hub trims HF_TOKEN and the saved token (a trailing newline
    from `$(cat file)` or a secrets store is not part of it); one that is then empty, or is not a bearer
    token (RFC 6750's b64token: no space, quote, comma or control character, which also keeps it
    unescaped, hence redactable, in JSON, CSV and repr), is an InvalidInputError (exit 3), never echoed."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise errors.InvalidInputError(f"--token must be a string, not {type(token).__name__}")
    errors.keep_secret(token)
    cleaned = token.strip()
    if not cleaned:
        raise errors.InvalidInputError(
            "--token is empty", hint="leave it out to use HF_TOKEN or the saved login"
        )
    if not _BEARER_RE.match(cleaned):
        raise errors.InvalidInputError(
            "--token is not a bearer token (letters, digits and -._~+/ then any =, RFC 6750)"
        )
    return cleaned


_BAD_REVISION_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def check_revision(revision: str | None) -> str | None:
    """A branch, tag or commit name as git allows it (`git check-ref-format`: no `..`, no component
    starting with `.` or ending with `.lock`, no space, control character or ~^:?*[\\, no `@{`), at most
    255 characters, else an InvalidInputError (exit 3): `../../x` never reaches a URL or a cache path.
    `refs/pr/1` is fine (its cache file name is percent-encoded). An empty revision means the default."""
    if revision is None or revision == "":
        return None
    if not isinstance(revision, str):
        raise errors.InvalidInputError(f"--revision must be a string, not {type(revision).__name__}")
    parts = revision.split("/")
    if (
        len(revision) > 255
        or _BAD_REVISION_CHARS.search(revision)
        or "@{" in revision
        or revision == "@"
        or revision.endswith(".")
        or any(not part or part.startswith(".") or part.endswith(".lock") for part in parts)
    ):
        raise errors.InvalidInputError(
            f"invalid revision {revision[:100]!r}: not a branch, tag or commit name",
            hint="no '..', no part starting with '.', no spaces or any of ~^:?*[\\",
        )
    return revision


def _keep_implicit_token_secret() -> None:
    """HF_TOKEN or the saved login, which huggingface_hub sends when no token is given: secret too."""
    try:
        from huggingface_hub import get_token

        errors.keep_secret(get_token())
    except Exception:  # an unreadable token file: huggingface_hub will report it (redacted) itself
        pass


def fetch(
    repo: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    prefer_gguf: bool = False,
    speculate: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> RepoSnapshot:
    """The snapshot of a Hub repo id or a local folder. Raises `errors.HubmemError` subclasses only.

    `prefer_gguf`: read the repo's GGUF headers even when it has config.json and safetensors too (a
    repo holding both formats: `--quant` or a llama.cpp option asks for its GGUF files).
    `speculate`: ask for the likeliest weight headers together with the file list rather than after it
    (`_guess`): one sequential round trip fewer, for one request more whose answer is a 404. For one
    model, whose wall time is its round trips; an audit, bound by its requests, leaves it off.
    `meanwhile`: the caller's next work (its imports), run in this thread once the first requests are
    in flight; not run when no request is made (a cached commit, a local folder)."""
    token = clean_token(token)
    if is_local(repo):
        return read_local(repo)
    if token is None:
        _keep_implicit_token_secret()
    from huggingface_hub import constants
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as e:
        raise errors.InvalidInputError(
            f"'{repo}' is neither a Hub repo id (org/name) nor a local folder"
        ) from e
    revision = check_revision(revision)  # before it names a cache file
    if os.path.exists(constants.HF_HOME) and not os.path.isdir(constants.HF_HOME):
        raise errors.LocalFileError(
            f"HF_HOME '{constants.HF_HOME}' is not a directory", hint="point it at a folder, or unset it"
        )

    kind = "gguf" if prefer_gguf else ""  # a repo's GGUF reading is cached beside its safetensors one
    # The cache is read only where it can answer: parsing a large cached header costs milliseconds,
    # thrown away whenever the Hub answers (a branch may have moved).
    offline = constants.is_offline_mode()
    if offline or revision is not None and _SHA_RE.match(revision):
        cached = _cache_load(repo, revision, kind)
        if cached is not None:
            return cached  # offline, or a commit: it never changes, no request needed
        if offline:
            raise errors.OfflineNotCachedError(
                f"offline mode (HF_HUB_OFFLINE=1) and '{_ref(repo, revision)}' was never fetched",
                hint="run once online first",
            )
    try:
        _warm()
        snapshot, answers = _fetch_online(repo, revision, token, timeout, prefer_gguf, speculate, meanwhile)
    except (errors.HubConnectionError, errors.HubTimeoutError):
        cached = _cache_load(repo, revision, kind)
        if cached is None:
            raise
        cached.notes.append("the Hub could not be reached: using metadata cached earlier")
        return cached
    _cache_store(snapshot, answers, kind)
    return snapshot


_warmed_in: int | None = None  # the process `_warm` ran in (a forked helper warms its own client)


def _warm() -> None:
    """Import what the request threads run (huggingface_hub's client, the pace) before they start: in
    them, or beside `meanwhile`, the imports would delay the first requests. Once per process: an
    audit's every fetch called it, ~0.2 ms each."""
    global _warmed_in
    if _warmed_in == os.getpid():
        return
    preload()
    client.warm()
    _warmed_in = os.getpid()


def preload() -> None:
    """Import what every fetch runs (~0.15 s of CPU) without opening anything: called before an audit
    forks its helpers (hubmem.hub.batch), they share these modules instead of each importing them."""
    import httpx2  # noqa: F401
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status  # noqa: F401

    from hubmem.hub import pace  # noqa: F401


def _ref(repo: str, revision: str | None) -> str:
    return f"{repo}@{revision}" if revision else repo


def _fetch_online(
    repo: str,
    revision: str | None,
    token: str | None,
    timeout: float,
    prefer_gguf: bool = False,
    speculate: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> tuple[RepoSnapshot, list[Answer]]:
    """The snapshot, and the Hub's answers its headers were parsed from (`Answer`), for the cache."""
    # the process's request threads (hubmem.hub.pool), 8 of this repo's requests at a time; leaving
    # the block waits for every request it started, also after an error, so none is left running into
    # the next repo's or the caller's time
    with pool.scope(8) as requests:
        config_future = requests.submit(
            with_retries, client.small_file, repo, "config.json", revision, token, timeout=timeout
        )
        info_future = (
            requests.submit(with_retries, client.model_files, repo, revision, token, timeout=timeout)
            if meanwhile is not None or speculate
            else None  # asked for in this thread: one hand-over to a request thread fewer
        )
        guesses = _guess(requests, repo, revision, token, timeout) if speculate and not prefer_gguf else {}
        if meanwhile is not None:
            meanwhile()  # the request threads only wait on the network now: little to share the GIL with
        try:
            if info_future is None:
                sha, files = with_retries(client.model_files, repo, revision, token, timeout=timeout)
            else:
                sha, files = info_future.result()
        except Exception as e:
            raise translate(e, repo, revision) from e
        has_gguf = any(p.lower().endswith(".gguf") for p in files)
        if has_gguf and ("config.json" not in files or prefer_gguf):
            from hubmem.hub import gguf_fetch  # a GGUF repo (llama.cpp / Ollama): headers by Range

            try:
                records = gguf_fetch.remote_headers(requests, repo, sha, files, token, timeout, with_retries)
            except errors.HubmemError:
                raise
            except Exception as e:
                raise translate(e, repo, revision) from e
            return RepoSnapshot(
                repo_id=repo, revision=revision, sha=sha, config={}, files=files,
                weights_format="gguf", source="hub", gguf=records,
            ), []  # fmt: skip
        if "config.json" not in files:
            raise errors.ConfigNotFoundError(
                f"'{_ref(repo, revision)}' has no config.json (files: {_summarise_files(files)})"
            )
        weights_format, plan = plan_weight_files(files)
        try:
            # in this thread while config.json is in flight; shard reads are request threads' leaf tasks
            answers = (
                _remote_headers(requests, repo, sha, revision, plan, token, timeout, files, guesses)
                if plan
                else []
            )
            headers = parse_answers(answers, repo, files)
            config_bytes = config_future.result()
        except errors.HubmemError:
            raise
        except Exception as e:
            raise translate(e, repo, revision) from e
    config = parse_config(config_bytes, f"'{_ref(repo, revision)}'")
    notes = []
    if has_gguf and weights_format == "safetensors":  # both formats: each on request, never added together
        n = sum(1 for p in files if p.lower().endswith(".gguf"))
        notes.append(
            f"'{repo}' also holds {n} GGUF file(s): --quant NAME (or a llama.cpp flag) estimates those"
        )
    return RepoSnapshot(
        repo_id=repo,
        revision=revision,
        sha=sha,
        config=config,
        files=files,
        headers=headers,
        weights_format=weights_format,
        source="hub",
        notes=notes,
    ), answers


# Transient statuses worth another try (huggingface_hub's own default for http_backoff).
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_WAITS = (0.5, 1.0, 2.0)  # seconds before the 2nd, 3rd and 4th attempt
_sleep = time.sleep  # replaced by the tests


def with_retries(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a huggingface_hub function, retrying 429/5xx answers, timeouts and dropped connections
    (model_info and the safetensors header readers make a single attempt; hf_hub_download's
    http_backoff waits 1+2+4+8+8 s, too long for a metadata tool): up to len(RETRY_WAITS) more
    attempts, RETRY_WAITS apart. Honours a Retry-After of up to 10 s, for every worker of the pool when
    the answer is a 429 (hubmem.hub.pace), and waits for --max-rps. Under load a slow answer or a
    reset connection is the common case (issue 11: 1 in 4 audits of 30 large repos lost rows to a
    single ReadTimeout), so a Hub that stays silent fails after 4 x --timeout + 3.5 s. A refused
    connection (nobody listening) gets one more attempt only.

    Each attempt runs under `bounded.limits(timeout)` (`timeout`: the call's own keyword): every
    answer is read up to a byte cap, within the timeout as a whole (hubmem.hub.bounded)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    from hubmem.hub import pace

    connect_retried = False
    for wait in (*RETRY_WAITS, None):
        try:
            return once(fn, *args, **kwargs)
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if wait is None or status not in RETRY_STATUSES:
                raise
            pace.count_retry()
            retry_after = e.response.headers.get("Retry-After", "") if e.response is not None else ""
            seconds = min(float(retry_after), 10.0) if retry_after.isdigit() else wait
            if status == 429:  # the Hub's rate limit is the whole client's: every worker waits
                pace.pause_all(seconds)
            else:
                _sleep(seconds)
        except httpx2.ConnectError:
            if connect_retried or wait is None:
                raise
            connect_retried = True
            pace.count_retry()
            _sleep(RETRY_WAITS[0])
        except _transport_errors():
            if wait is None:
                raise
            pace.count_retry()
            _sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def once(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """One attempt of `with_retries`: after any pause the pool owes (a 429 seen by any worker, --max-rps:
    hubmem.hub.pace), under `bounded.limits` (`timeout`: the call's own keyword)."""
    from hubmem.hub import pace

    paced = pace.wait_before_call()
    if paced > 0:
        _sleep(paced)
    with bounded.limits(kwargs.get("timeout")):
        return fn(*args, **kwargs)


def _transport_errors() -> tuple[type[Exception], ...]:
    """What `with_retries` tries again after besides an HTTP answer: a timeout, a dropped or refused
    connection (ConnectError is a NetworkError), a broken answer."""
    import httpx2

    return (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


def _transient(e: BaseException) -> bool:
    """An error `with_retries` would try again after: a 429/5xx answer or a transport error."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(e, HfHubHTTPError):
        return e.response is not None and e.response.status_code in RETRY_STATUSES
    return isinstance(e, _transport_errors())


def _guess(
    requests: Executor, repo: str, revision: str | None, token: str | None, timeout: float
) -> dict[str, Future]:
    """The weight headers most repos have, asked for beside the file list (`fetch(speculate=True)`), one
    attempt each: `model.safetensors`'s first bytes, and on `main` the shard headers of
    `model.safetensors.index.json` in one request (the Hub answers that endpoint for `main` only). The
    file list then says which guess holds; the other's 404 is the cost."""
    guesses = {
        SINGLE_FILE: requests.submit(
            once, client.file_start, repo, SINGLE_FILE, revision, token, timeout=timeout
        )
    }
    if revision in (None, "main"):
        guesses[INDEX_FILE] = requests.submit(
            once, client.sharded_answer, repo, INDEX_FILE, token, timeout=timeout
        )
    return guesses


def _answer(guesses: dict[str, Future], name: str, fn: Callable[..., T], *args: Any, timeout: float) -> T:
    """`fn(*args)`'s answer for the file `name`: the guess asked for it (`_guess`) unless that one failed as
    a retry would mend, else a call with retries."""
    guess = guesses.get(name)
    if guess is not None:
        try:
            return guess.result()
        except Exception as e:
            if not _transient(e):
                raise
    return with_retries(fn, *args, timeout=timeout)


def plan_weight_files(files: dict[str, Any]) -> tuple[str, list[str]]:
    """Which safetensors files to read: one coherent set, never duplicates.

    HF-format `model.safetensors` or its sharded index win; otherwise root-level `.safetensors`
    files other than a `consolidated.*` copy. Repos without safetensors report what they have.
    """
    if INDEX_FILE in files:
        return "safetensors", [INDEX_FILE]
    if SINGLE_FILE in files:
        return "safetensors", [SINGLE_FILE]
    root = sorted(p for p in files if p.endswith(".safetensors") and "/" not in p)
    preferred = [p for p in root if not p.startswith("consolidated")] or root
    if preferred:
        return "safetensors", preferred
    # PyTorch weights at the root are what `from_pretrained` loads: they win over GGUF exports.
    if any(p.endswith((".bin", ".pt", ".pth")) and "/" not in p for p in files):
        return "pytorch", []
    if any(p.endswith(".gguf") for p in files):
        return "gguf", []
    if any(p.endswith((".bin", ".pt", ".pth")) for p in files):
        return "pytorch", []
    return "none", []


def unreadable_weight_files(files: dict[str, Any], weights_format: str) -> dict[str, Any]:
    """The files a download of a repo without safetensors would pull, each copy once.

    PyTorch: the root-level `pytorch_model*.bin` set (with its index) when there is one, else the
    root-level .bin/.pt/.pth files; TensorFlow (`tf_model.h5`), Flax (`*.msgpack`), ONNX exports
    and `original/` copies are other formats of the same weights and are left out.
    GGUF: every root-level .gguf (one file per quantization; a download picks one).
    """
    root = {p: s for p, s in files.items() if "/" not in p}
    if weights_format == "gguf":
        return {p: s for p, s in root.items() if p.endswith(".gguf")}
    if weights_format == "pytorch":
        hf = {
            p: s
            for p, s in root.items()
            if p.startswith("pytorch_model") and p.endswith((".bin", ".bin.index.json"))
        }
        return hf or {p: s for p, s in root.items() if p.endswith((".bin", ".pt", ".pth"))}
    return {}


def _remote_headers(
    requests: Executor,
    repo: str,
    sha: str | None,
    revision: str | None,
    plan: list[str],
    token: str | None,
    timeout: float,
    sizes: dict[str, int | None],
    guesses: dict[str, Future],
) -> list[Answer]:
    """The Hub's answers holding the planned files' headers (`parse_answers` reads them), with as few
    round trips as the server allows. `sizes`: file sizes from the file list, which bound each file's
    byte ranges; `guesses`: answers asked for before the file list was known (`_guess`)."""
    from huggingface_hub.errors import HfHubHTTPError

    if plan == [INDEX_FILE]:
        if revision in (None, "main"):
            try:
                answer = _answer(
                    guesses, INDEX_FILE, client.sharded_answer, repo, INDEX_FILE, token, timeout=timeout
                )
                return [(INDEX_FILE, answer)]
            except HfHubHTTPError as e:
                status = e.response.status_code if e.response is not None else None
                # Any refusal of this one endpoint but auth (401/403: the shards would be refused too)
                # or a 5xx/429 that outlived its retries: a mirror or an older Hub without it, or one
                # that cannot answer for this repo (400). The per-shard reads below still can.
                if status is None or not (400 <= status < 500 or status == 501) or status in (401, 403, 429):
                    raise
            # server without the single-request endpoint (a mirror, an older Hub): read shard by shard
        index = with_retries(client.small_file, repo, INDEX_FILE, sha, token, timeout=timeout)
        plan = shards_from_index(index, f"'{repo}'")

    def one(filename: str) -> Answer:
        return filename, _answer(
            guesses, filename, client.file_start, repo, filename, sha, token, timeout=timeout
        )

    return list(requests.map(one, plan)) if len(plan) > 1 else [one(plan[0])]


# One answer of the Hub that holds safetensors headers: (INDEX_FILE, the sharded endpoint's answer:
# every shard's header), or (a safetensors file, its first bytes: the length prefix and the header).
Answer = tuple[str, bytes]


def parse_answers(answers: list[Answer], repo: str, sizes: dict[str, int | None]) -> Headers:
    """The checked tensors per file of the Hub's answers (`Answer`); `sizes`: the file list's sizes. The
    same for answers just received and answers read back from the cache."""
    headers: Headers = {}
    for name, raw in answers:
        if name == INDEX_FILE:
            headers.update(client.parse_sharded(raw, repo, sizes))
        else:
            headers[name] = header_check.parse_file_start(raw, sizes.get(name), name)
    return headers


def shards_from_index(raw: bytes, where: str) -> list[str]:
    """The shard files a `model.safetensors.index.json` names, each once: relative paths inside the repo
    (no `..`, `.` or empty part, not absolute), else a MalformedHeaderError."""
    try:
        shards = sorted(set(json.loads(raw)["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise errors.MalformedHeaderError(f"{where}: {INDEX_FILE} is not a valid safetensors index") from e
    for name in shards:
        if not isinstance(name, str) or "\x00" in name or any(p in ("", ".", "..") for p in name.split("/")):
            raise errors.MalformedHeaderError(
                f"{where}: {INDEX_FILE} names a shard outside the repo: {str(name)[:100]!r}"
            )
    return shards


def parse_config(raw: bytes, where: str) -> dict:
    try:
        config = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.MalformedConfigError(
            f"config.json of {where} is not valid JSON: {_first_line(e)}"
        ) from e
    except RecursionError as e:  # json's C parser recurses once per nested array or object
        raise errors.MalformedConfigError(
            f"config.json of {where} nests arrays or objects too deeply to parse"
        ) from e
    if not isinstance(config, dict):
        raise errors.MalformedConfigError(f"config.json of {where} is not a JSON object")
    return config


LOCAL_CONFIG_LIMIT = 16 * 1024**2  # bytes of a local config.json (real ones: under 100 kB)
LOCAL_INDEX_LIMIT = 64 * 1024**2  # bytes of a local shard index (DeepSeek-V3's: 9 MB)


def read_local(folder: str) -> RepoSnapshot:
    """A downloaded snapshot or any folder with config.json + *.safetensors (headers read from disk).

    Only the folder's top level is listed, plus the shards its index names (paths inside the folder:
    `shards_from_index`); a folder without config.json (`/`, a home directory) fails at once, without
    walking the tree. Unreadable files are a LocalFileError, files that are not regular files (a FIFO,
    a directory) malformed, so that nothing blocks on them."""

    root = Path(folder)
    if (
        folder.lower().endswith(".gguf")
        and _is_regular_file(root)
        or not _is_regular_file(root / "config.json")
    ):
        gguf = _local_gguf(root)
        if gguf is not None:
            return gguf
    if not _is_regular_file(root / "config.json"):
        raise errors.ConfigNotFoundError(f"local folder '{folder}' has no config.json (not a model folder)")
    raw = _read_local_file(root / "config.json", LOCAL_CONFIG_LIMIT, errors.MalformedConfigError)
    config = parse_config(raw, f"'{folder}'")
    files = _top_level_files(root)
    weights_format, plan = plan_weight_files(files)
    if plan == [INDEX_FILE]:
        raw = _read_local_file(root / INDEX_FILE, LOCAL_INDEX_LIMIT, errors.MalformedHeaderError)
        plan = shards_from_index(raw, f"'{folder}'")
    headers = {}
    for filename in plan:
        path = root / filename
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise errors.MalformedHeaderError(f"'{folder}': '{filename}' is not a regular file")
            files[filename] = info.st_size
            headers[filename] = header_check.read_local_header(path, filename)
        except FileNotFoundError as e:
            raise errors.MalformedHeaderError(
                f"'{folder}': shard '{filename}' named by the index is missing"
            ) from e
        except OSError as e:
            raise _local_error(e, path) from e
    return RepoSnapshot(
        repo_id=str(root.resolve()),
        revision=None,
        sha=None,
        config=config,
        files=dict(sorted(files.items())),
        headers=headers,
        weights_format=weights_format,
        source="local",
    )


def _local_gguf(root: Path) -> RepoSnapshot | None:
    """A local .gguf file, or a folder of them without config.json; None when there are none."""
    from hubmem.hub import gguf_fetch

    if _is_regular_file(root):
        paths = {root.name: str(root)}
    else:
        paths = {n: str(root / n) for n in _top_level_files(root) if n.lower().endswith(".gguf")}
    if not paths:
        return None
    records = gguf_fetch.local_headers(paths)
    return RepoSnapshot(
        repo_id=str(root.resolve()), revision=None, sha=None, config={},
        files={n: r["size"] for n, r in records.items()}, weights_format="gguf", source="local", gguf=records,
    )  # fmt: skip


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:  # the folder cannot be searched
        raise _local_error(e, path) from e


def _top_level_files(root: Path) -> dict[str, int | None]:
    """Regular files (symlinks followed, as in a Hub cache snapshot) at the top of `root`, by name."""
    files: dict[str, int | None] = {}
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                try:
                    if entry.is_file():
                        files[entry.name] = entry.stat().st_size
                except OSError:  # a dangling symlink, a file gone meanwhile
                    continue
    except OSError as e:
        raise _local_error(e, root) from e
    return files


def _read_local_file(path: Path, limit: int, malformed: type[errors.HubmemError]) -> bytes:
    """At most `limit` bytes of a regular file (opened non-blocking: a FIFO does not hang the read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise malformed(f"'{path}' is not a regular file")
            data = f.read(limit + 1)
    except OSError as e:
        raise _local_error(e, path) from e
    if len(data) > limit:
        raise malformed(f"'{path}' is larger than {limit // 1024**2} MiB: not a model's")
    return data


def _local_error(e: OSError, path: Path | str) -> errors.LocalFileError:
    return errors.LocalFileError(f"cannot read '{path}': {_os_reason(e)}")


def _os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _summarise_files(files: dict[str, Any], limit: int = 6) -> str:
    names = sorted(files)
    shown = ", ".join(names[:limit])
    return (shown + f", … {len(names) - limit} more") if len(names) > limit else (shown or "none")


def translate(e: BaseException, repo: str, revision: str | None) -> errors.HubmemError:
    """huggingface_hub / HTTP exceptions -> hubmem's typed errors (subclasses before parents)."""
    import httpx2
    from huggingface_hub import errors as hf

    if isinstance(e, errors.HubmemError):
        return e
    ref = _ref(repo, revision)
    chain = [e]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
        if len(chain) > 8:
            break
    for exc in chain:
        if isinstance(exc, hf.GatedRepoError):
            return errors.GatedRepoError(
                f"'{repo}' is gated",
                hint="accept its terms on the Hub page, then pass --token or set HF_TOKEN",
            )
        if isinstance(exc, hf.RepositoryNotFoundError):
            return errors.RepoNotFoundError(
                f"repository '{repo}' not found", hint="check the id; private repos need --token or HF_TOKEN"
            )
        if isinstance(exc, hf.RevisionNotFoundError):
            return errors.RevisionNotFoundError(f"revision '{revision}' not found in '{repo}'")
        if isinstance(exc, hf.RemoteEntryNotFoundError):
            return errors.ConfigNotFoundError(f"'{ref}': a file hubmem needs is missing ({_first_line(exc)})")
        if isinstance(exc, bounded.AnswerTooLargeError):
            return errors.HubServerError(
                f"the Hub's answer for '{ref}' is larger than {exc.limit:,} bytes: refusing to read more"
            )
        if isinstance(exc, httpx2.TimeoutException):
            return errors.HubTimeoutError(
                f"the Hub did not answer in time for '{ref}' ({type(exc).__name__})"
            )
        if isinstance(exc, hf.OfflineModeIsEnabled):
            return errors.OfflineNotCachedError(f"offline mode is enabled and '{ref}' is not cached")
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError) and exc.filename is not None:
            # a local file (HF_HOME/token, the cache) that huggingface_hub could not read: not the Hub
            return errors.LocalFileError(f"cannot read '{exc.filename}' for '{ref}': {_os_reason(exc)}")
        if isinstance(exc, (httpx2.ConnectError, httpx2.NetworkError, ConnectionError)):
            return errors.HubConnectionError(f"cannot reach the Hub for '{ref}': {_first_line(exc)}")
        if isinstance(exc, hf.HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else "?"
            return errors.HubServerError(f"the Hub answered HTTP {status} for '{ref}': {_first_line(exc)}")
    # Anything else is no network failure hubmem knows of: a bug (or a local problem huggingface_hub
    # did not type), reported as one, never as "cannot reach the Hub" (exit 22).
    return errors.InternalError(
        f"internal error while fetching '{ref}': {type(e).__name__}: {_first_line(e)[:200]}"
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---------------------------------------------------------------------------------------------
# Metadata cache: $HF_HOME/hubmem/metadata/models--org--name/{sha}.snapshot + refs/{revision}
#
# A `.snapshot` file holds one line of JSON (the snapshot without its headers, and the names and lengths
# of the Hub's answers that hold them), then those answers' bytes as the Hub sent them (`Answer`): they
# are written as received, not encoded again (JSON-encoding a header's tensors cost more than the rest
# of the write), and read back by the same parser as a fresh answer (`parse_answers`), so a cached
# header is checked as strictly as one just fetched.
CACHE_SUFFIX = ".snapshot"


def _cache_root() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "hubmem" / "metadata"


def _repo_dir(repo: str, kind: str = "") -> Path:
    return _cache_root() / ("models--" + repo.replace("/", "--") + (f"--{kind}" if kind else ""))


def _ref_file(repo_dir: Path, revision: str | None) -> Path:
    """refs/{revision}, percent-encoded to one file name ("refs/pr/1" -> "refs%2Fpr%2F1"; "main" as is):
    `check_revision` leaves no name that could leave the folder."""
    return repo_dir / "refs" / quote(revision or "main", safe="")


@collector_paused()  # a large header's tree: hubmem.acyclic
def _cache_load(repo: str, revision: str | None, kind: str = "") -> RepoSnapshot | None:
    repo_dir = _repo_dir(repo, kind)
    sha = revision if revision and _SHA_RE.match(revision) else None
    try:
        if sha is None:
            ref = _ref_file(repo_dir, revision)
            if not ref.is_file():
                return None
            sha = ref.read_text().strip()
            if not _SHA_RE.match(sha):
                return None
        data = (repo_dir / f"{sha}{CACHE_SUFFIX}").read_bytes()
        line, _, blobs = data.partition(b"\n")
        stored = json.loads(line)
        answers, at = [], 0
        for name, length in stored.pop("answers"):
            answers.append((name, blobs[at : at + length]))
            at += length
        if at != len(blobs):
            return None  # cut short or not hubmem's: fetched again
        stored["headers"] = {}
        snapshot = RepoSnapshot(**stored)
        snapshot.headers = parse_answers(answers, snapshot.repo_id, snapshot.files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, errors.HubmemError):
        return None  # unreadable or not hubmem's: fetched again
    snapshot.source, snapshot.revision = "cache", revision
    return snapshot


def _cache_store(snapshot: RepoSnapshot, answers: list[Answer], kind: str = "") -> None:
    if not snapshot.sha or not _SHA_RE.match(snapshot.sha):  # the server's sha names a file: only a sha
        return
    if any(secret in raw for secret in errors.secret_bytes() for _, raw in answers):
        return  # a server echoing the token into a header: never on disk (the line below is redacted)
    stored = snapshot.to_json()
    del stored["headers"]
    stored["answers"] = [[name, len(raw)] for name, raw in answers]
    repo_dir = _repo_dir(snapshot.repo_id, kind)
    try:
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        tmp = repo_dir / f".{snapshot.sha}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            f.write(errors.redact(json.dumps(stored)).encode())  # a server may echo the token
            f.write(b"\n")
            for _, raw in answers:
                f.write(raw)
        tmp.replace(repo_dir / f"{snapshot.sha}{CACHE_SUFFIX}")
        _ref_file(repo_dir, snapshot.revision).write_text(snapshot.sha)
    except OSError:
        pass  # a read-only cache only costs the next run its round trips
