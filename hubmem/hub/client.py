"""The Hub requests hubmem makes, over huggingface_hub's own HTTP client, without importing `HfApi`.

`huggingface_hub.hf_api` costs 0.2-0.4 s to import on a 2-core machine (it pulls in every API type),
more than the three or four requests a model needs take at 50 ms each, and hubmem uses five of its
methods' requests (the fetch's four and `audit --db`'s commit probe, `model_info(expand=["sha"])`), each
a thin wrapper over one GET. So these are the same GETs, made the way those methods make them
(huggingface_hub 2.4.0 `hf_api.py`), through the same pieces of huggingface_hub: the shared
client (`utils.get_session`: its connection pool, proxies, `HF_ENDPOINT`), the auth and user-agent
headers (`utils.build_hf_headers`: `HF_TOKEN`, the saved login), and the error mapping
(`utils.hf_raise_for_status`: `RepositoryNotFoundError`, `GatedRepoError`, ... from the answer's
`X-Error-Code`). Answers are read raw (bounded by `hubmem.hub.bounded` under `fetch.with_retries`) and
checked here, without building huggingface_hub's per-tensor `TensorInfo` objects: the 92k tensors of
DeepSeek-V3 go straight from JSON to hubmem's checked (dtype, shape) pairs.
"""

from __future__ import annotations

import functools
import json
import struct
from typing import Any
from urllib.parse import quote

from hubmem import errors
from hubmem.acyclic import collector_paused
from hubmem.hub import header_check
from hubmem.hub.header_check import Tensors

# huggingface_hub 2.4.0 hf_api.py parse_safetensors_file_metadata: the first 100 kB hold 97 % of headers,
# so one Range GET of 100,001 bytes usually reads the whole header; a longer one costs a second GET.
HEADER_PROBE_BYTES = 100_001


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT  # HF_ENDPOINT, as HfApi() and hf_hub_url use it


def file_url(repo: str, filename: str, revision: str | None) -> str:
    """hf_hub_url (file_download.py) for a model repo: {endpoint}/{repo}/resolve/{revision}/{filename}."""
    return f"{endpoint()}/{repo}/resolve/{quote(revision or 'main', safe='')}/{quote(filename)}"


def warm() -> None:
    """Import huggingface_hub's HTTP pieces and build its shared client now (~0.1 s of CPU), before the
    threads that make the requests start: beside them the import would hold the GIL they need.

    Also builds the headers once: with telemetry on (huggingface_hub's default), the first user agent of
    a process reads the Hub's agent-harness registry (utils/_detect_agent.py: cached a day in HF_HOME,
    else one GET of /api/agent-harnesses). Done here, that is one request; left to the request threads,
    each of the first trip's four would make its own, unlocked, before its real request."""
    from huggingface_hub.utils import build_hf_headers, get_session

    get_session()
    try:
        build_hf_headers()
    except Exception:  # an unreadable token file: the request's own headers report it, as before
        pass


@functools.cache
def _hf_http() -> tuple[Any, Any, Any]:
    """huggingface_hub's header builder, client getter and error mapping, looked up once: its lazy
    `utils` module imports on every attribute lookup (~0.03 ms a request, three lookups each)."""
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    return build_hf_headers, get_session, hf_raise_for_status


def get(url: str, token: str | None, timeout: float, *, range: str | None = None, params: Any = None) -> Any:
    """One GET through huggingface_hub's client and auth headers; its typed errors for a non-2xx answer.
    `range`: a Range header value; `params`: the query (a dict, a list value repeats its key)."""
    build_hf_headers, get_session, hf_raise_for_status = _hf_http()
    headers = build_hf_headers(token=token)
    if range is not None:
        headers["range"] = range
    response = get_session().get(url, headers=headers, timeout=timeout, params=params)
    hf_raise_for_status(response)
    return response


def _info_url(repo: str, revision: str | None) -> str:
    url = f"{endpoint()}/api/models/{repo}"
    return url if revision is None else url + f"/revision/{quote(revision, safe='')}"


def model_files(
    repo: str, revision: str | None, token: str | None, timeout: float
) -> tuple[str | None, dict]:
    """(commit sha, {path: size or None}) of a repo: `HfApi.model_info(files_metadata=True)`'s request,
    GET /api/models/{repo}[/revision/{revision}]?blobs=true (hf_api.py model_info)."""
    info = _json(
        get(_info_url(repo, revision), token, timeout, params={"blobs": True}).content, "model info", repo
    )
    siblings = info.get("siblings") if isinstance(info, dict) else None
    sha = info.get("sha") if isinstance(info, dict) else None
    if not isinstance(siblings, list) or not (sha is None or isinstance(sha, str)):
        raise _malformed("model info", repo, "no list of files")
    files: dict[str, int | None] = {}
    for s in siblings:
        name = s.get("rfilename") if isinstance(s, dict) else None
        if not isinstance(name, str):
            raise _malformed("model info", repo, "a file entry without a name")
        size = s.get("size")
        files[name] = size if type(size) is int and size >= 0 else None
    return sha, files


def commit(repo: str, revision: str | None, token: str | None, timeout: float) -> str:
    """The commit sha `revision` (default: main) of a repo is at: `HfApi.model_info(expand=["sha"])`'s
    request, GET /api/models/{repo}[/revision/{revision}]?expand=sha (hf_api.py model_info), the smallest
    answer the Hub gives (`{"_id", "id", "sha"}`)."""
    info = _json(
        get(_info_url(repo, revision), token, timeout, params={"expand": ["sha"]}).content, "model info", repo
    )
    sha = info.get("sha") if isinstance(info, dict) else None
    if not isinstance(sha, str) or not sha:
        raise _malformed("model info", repo, "no commit sha")
    return sha


def small_file(repo: str, filename: str, revision: str | None, token: str | None, timeout: float) -> bytes:
    """A small repo file's bytes (config.json, the shard index): one GET of its resolve URL. hf_hub_download
    would add a HEAD round trip for its blob cache; hubmem caches the parsed metadata itself, by commit."""
    return bytes(get(file_url(repo, filename, revision), token, timeout).content)


def file_start(repo: str, filename: str, revision: str | None, token: str | None, timeout: float) -> bytes:
    """A safetensors file's length prefix and header (for header_check.parse_file_start) by Range GETs,
    as parse_safetensors_file_metadata reads it (hf_api.py): bytes 0-100000, then bytes 8-(length+7)
    when the header is longer."""
    url = file_url(repo, filename, revision)
    start = bytes(get(url, token, timeout, range=f"bytes=0-{HEADER_PROBE_BYTES - 1}").content)
    if len(start) >= 8:
        (length,) = struct.unpack("<Q", start[:8])
        header_check.check_header_length(length, filename)
        if 8 + length > len(start):
            rest = bytes(get(url, token, timeout, range=f"bytes=8-{length + 7}").content)
            start = start[:8] + rest
    return start


def sharded_answer(repo: str, index: str, token: str | None, timeout: float) -> bytes:
    """Every shard's header in one request: GET /api/models/{repo}/safetensors-metadata/{index}
    (hf_api.py get_sharded_safetensors_metadata; the Hub answers it for `main` only), whose answer is
    {"index": ..., "headers": {shard: header}}."""
    url = f"{endpoint()}/api/models/{repo}/safetensors-metadata/{quote(index, safe='/')}"
    return bytes(get(url, token, timeout).content)


@collector_paused()  # ~1M containers: hubmem.acyclic
def parse_sharded(raw: bytes, repo: str, sizes: dict) -> dict[str, Tensors]:
    """The checked tensors per shard of the sharded endpoint's answer (`sharded_answer`). `sizes`: file
    sizes from the file list."""
    answer = header_check.decode_header(raw, f"{repo} (shard headers)")
    headers = answer.get("headers") if isinstance(answer, dict) else None
    if not isinstance(headers, dict) or not headers:
        raise errors.MalformedHeaderError(f"the shard headers of '{repo}' are not an object of shard headers")
    out = {}
    for shard, header in headers.items():
        size = sizes.get(shard)
        data_size = size - 8 if isinstance(size, int) and size >= 8 else None  # header length unknown here
        out[shard] = header_check.checked_tensors(
            shard, functools.partial(header_check.header_entries, shard, header), data_size
        )
    return out


def _json(raw: bytes, what: str, repo: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise _malformed(what, repo, "not valid JSON") from e


def _malformed(what: str, repo: str, why: str) -> errors.HubmemError:
    return errors.HubServerError(f"the Hub's {what} for '{repo}' is malformed: {why}")
