"""Fetch what the estimate needs — config.json, the file list, safetensors headers — never weights.

Every Hub call goes through huggingface_hub (auth, HF_ENDPOINT, cache, offline mode, retries,
typed errors). Round trips per model, measured against the test server (see scripts/bench.py):

    phase 1, concurrently:  model_info(files_metadata=True)   1 request  (sha, file list + sizes)
                            GET config.json                    1 request
    phase 2:  single file:  parse_safetensors_file_metadata    1 Range GET (2 if header > 100 kB)
              sharded:      get_sharded_safetensors_metadata   1 GET for all shards (main only);
                            fallback: GET index + one Range GET per shard, in parallel
    (the Hub answers a Range GET of an LFS file with a redirect: +1 request to its CDN per file)

Whatever was fetched is stored under $HF_HOME/hubmem/ keyed by commit sha, so a repeat run for a
commit makes no request at all and HF_HUB_OFFLINE=1 works for anything fetched before.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from hubmem import errors
from hubmem.hub import header_check

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
DEFAULT_TIMEOUT = 10.0
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
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

    def weight_files(self) -> dict[str, int | None]:
        return {p: s for p, s in self.files.items() if p.endswith(_WEIGHT_SUFFIXES)}

    def to_json(self) -> dict:
        # shallow, not dataclasses.asdict (its deep copy of DeepSeek-V3's ~92k header tuples took
        # 3.8 s): json writes the (dtype, shape) tuples as arrays as they are
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict) -> RepoSnapshot:
        d = dict(d)
        d["headers"] = {f: {n: (dt, tuple(sh)) for n, (dt, sh) in t.items()} for f, t in d["headers"].items()}
        return cls(**d)


def is_local(repo: str) -> bool:
    return os.path.isdir(repo)


def fetch(
    repo: str, *, revision: str | None = None, token: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> RepoSnapshot:
    """The snapshot of a Hub repo id or a local folder. Raises `errors.HubmemError` subclasses only."""
    if is_local(repo):
        return read_local(repo)
    from huggingface_hub import constants
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as e:
        raise errors.InvalidInputError(
            f"'{repo}' is neither a Hub repo id (org/name) nor a local folder"
        ) from e

    # The cache is read only where it can answer: parsing a large cached header costs milliseconds,
    # thrown away whenever the Hub answers (a branch may have moved).
    offline = constants.is_offline_mode()
    if offline or revision is not None and _SHA_RE.match(revision):
        cached = _cache_load(repo, revision)
        if cached is not None:
            return cached  # offline, or a commit: it never changes, no request needed
        if offline:
            raise errors.OfflineNotCachedError(
                f"offline mode (HF_HUB_OFFLINE=1) and '{_ref(repo, revision)}' was never fetched",
                hint="run once online first",
            )
    try:
        snapshot = _fetch_online(repo, revision, token, timeout)
    except (errors.HubConnectionError, errors.HubTimeoutError):
        cached = _cache_load(repo, revision)
        if cached is None:
            raise
        cached.notes.append("the Hub could not be reached: using metadata cached earlier")
        return cached
    _cache_store(snapshot)
    return snapshot


def _ref(repo: str, revision: str | None) -> str:
    return f"{repo}@{revision}" if revision else repo


def _fetch_online(repo: str, revision: str | None, token: str | None, timeout: float) -> RepoSnapshot:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    # a pool per repo: leaving the block waits for every request it started, also after an error,
    # so none is left running into the next repo's or the caller's time
    with ThreadPoolExecutor(max_workers=8) as pool:
        info_future = pool.submit(
            with_retries, api.model_info, repo, revision=revision, files_metadata=True, timeout=timeout
        )
        config_future = pool.submit(get_small_file, api, repo, "config.json", revision, token, timeout)
        try:
            info = info_future.result()
        except Exception as e:
            raise translate(e, repo, revision) from e
        files = {s.rfilename: s.size for s in (info.siblings or [])}
        if "config.json" not in files:
            raise errors.ConfigNotFoundError(
                f"'{_ref(repo, revision)}' has no config.json (files: {_summarise_files(files)})"
            )
        weights_format, plan = plan_weight_files(files)
        try:
            # in this thread while config.json is in flight; shard reads are the pool's leaf tasks
            headers = (
                _remote_headers(api, pool, repo, info.sha, revision, plan, token, timeout, files)
                if plan
                else {}
            )
            config_bytes = config_future.result()
        except errors.HubmemError:
            raise
        except Exception as e:
            raise translate(e, repo, revision) from e
    config = parse_config(config_bytes, f"'{_ref(repo, revision)}'")
    return RepoSnapshot(
        repo_id=repo,
        revision=revision,
        sha=info.sha,
        config=config,
        files=files,
        headers=headers,
        weights_format=weights_format,
        source="hub",
    )


# Transient statuses worth another try (huggingface_hub's own default for http_backoff).
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_WAITS = (0.5, 1.0, 2.0)  # seconds before the 2nd, 3rd and 4th attempt
_sleep = time.sleep  # replaced by the tests


def with_retries(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a huggingface_hub function, retrying 429/5xx answers (model_info and the safetensors
    header readers make a single attempt; hf_hub_download's http_backoff waits 1+2+4+8+8 s, too
    long for a metadata tool). Honours a Retry-After of up to 10 s."""
    from huggingface_hub.errors import HfHubHTTPError

    for wait in (*RETRY_WAITS, None):
        try:
            return fn(*args, **kwargs)
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if wait is None or status not in RETRY_STATUSES:
                raise
            retry_after = e.response.headers.get("Retry-After", "") if e.response is not None else ""
            _sleep(min(float(retry_after), 10.0) if retry_after.isdigit() else wait)
    raise AssertionError("unreachable")  # pragma: no cover


def get_small_file(api: Any, repo: str, filename: str, revision: str | None, token, timeout: float) -> bytes:
    """One GET of a small repo file (config.json, the shard index) through huggingface_hub's session,
    URL builder, auth headers and error mapping. hf_hub_download would add a HEAD round trip for its
    blob cache; hubmem caches the parsed metadata itself (see below), keyed by commit."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = hf_hub_url(repo, filename, revision=revision, endpoint=api.endpoint)

    def get() -> bytes:
        response = get_session().get(url, headers=build_hf_headers(token=token), timeout=timeout)
        hf_raise_for_status(response)
        return response.content

    return with_retries(get)


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
    api: Any,
    pool: ThreadPoolExecutor,
    repo: str,
    sha: str | None,
    revision: str | None,
    plan: list[str],
    token,
    timeout,
    sizes: dict[str, int | None] | None = None,
) -> Headers:
    """Headers of the planned files, with as few round trips as the server allows. `sizes`: file
    sizes from the file list, which bound each file's byte ranges."""
    from huggingface_hub.errors import HfHubHTTPError

    sizes = sizes or {}
    if plan == [INDEX_FILE]:
        if revision in (None, "main"):
            try:
                meta = _header_shape_checked(
                    f"the shard headers of '{repo}'",
                    with_retries,
                    api.get_sharded_safetensors_metadata,
                    repo,
                    token=token,
                    timeout=timeout,
                )
                return {f: _tensors(f, m, sizes.get(f)) for f, m in meta.files_metadata.items()}
            except HfHubHTTPError as e:
                if e.response is None or e.response.status_code not in (400, 404, 405, 501):
                    raise
            # server without the single-request endpoint (a mirror, an older Hub): read shard by shard
        plan = shards_from_index(get_small_file(api, repo, INDEX_FILE, sha, token, timeout), f"'{repo}'")

    def one(filename: str) -> tuple[str, dict]:
        meta = _header_shape_checked(
            f"'{filename}'",
            with_retries,
            api.parse_safetensors_file_metadata,
            repo,
            filename,
            revision=sha,
            token=token,
            timeout=timeout,
        )
        return filename, _tensors(filename, meta, sizes.get(filename))

    results = list(pool.map(one, plan)) if len(plan) > 1 else [one(plan[0])]
    return dict(results)


def _header_shape_checked(where: str, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """read(...) of safetensors headers, where JSON of the wrong shape (a tensor entry that is not an
    object, offsets that are not a list) is a malformed header: huggingface_hub turns only missing
    keys into SafetensorsParsingError, and lets TypeError and the like through."""
    try:
        return read(*args, **kwargs)
    except (TypeError, ValueError, AttributeError) as e:
        raise errors.MalformedHeaderError(
            f"malformed safetensors header in {where}: {_first_line(e)[:200]}"
        ) from e
    except RecursionError as e:  # json's parser recurses once per nested array or object
        raise errors.MalformedHeaderError(
            f"malformed safetensors header in {where}: nests arrays or objects too deeply to parse"
        ) from e
    except (OverflowError, MemoryError) as e:  # TensorInfo multiplies out any shape: [2**64, "x"]
        raise errors.MalformedHeaderError(
            f"malformed safetensors header in {where}: a shape that is not a list of integers"
        ) from e


def _tensors(
    filename: str, meta: Any, file_size: int | None = None
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """(dtype, shape) per tensor of huggingface_hub's metadata of one file, checked by
    hubmem.hub.header_check (`file_size`: the file's size in the Hub's file list, when it gives one;
    its header length is unknown here, so the data may end up to 8 bytes before the file does)."""

    def entries() -> Iterator[tuple[str, Any, Any, Any]]:
        return ((name, i.dtype, i.shape, i.data_offsets) for name, i in meta.tensors.items())

    data_size = file_size - 8 if isinstance(file_size, int) and file_size >= 8 else None
    return header_check.checked_tensors(filename, entries, data_size)


def shards_from_index(raw: bytes, where: str) -> list[str]:
    """The shard files a `model.safetensors.index.json` names, each once."""
    try:
        return sorted(set(json.loads(raw)["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise errors.MalformedHeaderError(f"{where}: {INDEX_FILE} is not a valid safetensors index") from e


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


def read_local(folder: str) -> RepoSnapshot:
    """A downloaded snapshot or any folder with config.json + *.safetensors (headers read from disk)."""
    root = Path(folder)
    files: dict[str, int | None] = {
        str(p.relative_to(root)): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".cache" not in p.parts
    }
    if "config.json" not in files:
        raise errors.ConfigNotFoundError(f"local folder '{folder}' has no config.json")
    config = parse_config(_read_local_file(root, "config.json", folder), f"'{folder}'")
    weights_format, plan = plan_weight_files(files)
    if plan == [INDEX_FILE]:
        plan = shards_from_index(_read_local_file(root, INDEX_FILE, folder), f"'{folder}'")
    headers = {}
    for filename in plan:
        try:
            headers[filename] = header_check.read_local_header(root / filename, filename)
        except FileNotFoundError as e:
            raise errors.MalformedHeaderError(
                f"'{folder}': shard '{filename}' named by the index is missing"
            ) from e
        except OSError as e:
            raise _unreadable(folder, filename, e) from e
    return RepoSnapshot(
        repo_id=str(root.resolve()),
        revision=None,
        sha=None,
        config=config,
        files=files,
        headers=headers,
        weights_format=weights_format,
        source="local",
    )


def _read_local_file(root: Path, filename: str, folder: str) -> bytes:
    try:
        return (root / filename).read_bytes()
    except OSError as e:  # PermissionError, a folder named config.json, ...
        raise _unreadable(folder, filename, e) from e


def _unreadable(folder: str, filename: str, e: OSError) -> errors.HubmemError:
    reason = e.strerror or type(e).__name__
    return errors.InvalidInputError(
        f"cannot read '{header_check.label(filename)}' in local folder '{header_check.label(folder)}': {reason}"
    )


def _summarise_files(files: dict[str, Any], limit: int = 6) -> str:
    names = sorted(files)
    shown = ", ".join(names[:limit])
    return (shown + f", … {len(names) - limit} more") if len(names) > limit else (shown or "none")


def _header_error(e: Exception) -> errors.HubmemError:
    text = str(e)
    if "too big" in text:
        return errors.HeaderTooLargeError(text.replace("Failed to parse", "refusing to parse"))
    return errors.MalformedHeaderError(text)


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
        if isinstance(exc, hf.SafetensorsParsingError):
            return _header_error(exc)
        if isinstance(exc, httpx2.TimeoutException):
            return errors.HubTimeoutError(
                f"the Hub did not answer in time for '{ref}' ({type(exc).__name__})"
            )
        if isinstance(exc, hf.OfflineModeIsEnabled):
            return errors.OfflineNotCachedError(f"offline mode is enabled and '{ref}' is not cached")
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
# Metadata cache: $HF_HOME/hubmem/metadata/models--org--name/{sha}.json + refs/{revision}


def _cache_root() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "hubmem" / "metadata"


def _repo_dir(repo: str) -> Path:
    return _cache_root() / ("models--" + repo.replace("/", "--"))


def _cache_load(repo: str, revision: str | None) -> RepoSnapshot | None:
    repo_dir = _repo_dir(repo)
    sha = revision if revision and _SHA_RE.match(revision) else None
    if sha is None:
        ref = repo_dir / "refs" / (revision or "main")
        if not ref.is_file():
            return None
        sha = ref.read_text().strip()
    path = repo_dir / f"{sha}.json"
    try:
        snapshot = RepoSnapshot.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # unreadable or not hubmem's: fetched again
    snapshot.source, snapshot.revision = "cache", revision
    return snapshot


def _cache_store(snapshot: RepoSnapshot) -> None:
    if not snapshot.sha:
        return
    repo_dir = _repo_dir(snapshot.repo_id)
    try:
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        tmp = repo_dir / f".{snapshot.sha}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(snapshot.to_json()))
        tmp.replace(repo_dir / f"{snapshot.sha}.json")
        (repo_dir / "refs" / (snapshot.revision or "main")).write_text(snapshot.sha)
    except OSError:
        pass  # a read-only cache only costs the next run its round trips
