"""The fake Hub behaves like the Hub for huggingface_hub's real code.

Each test runs a real huggingface_hub call over loopback HTTP and pins what the library did: the result,
the requests it made (method, server, Range, status), the typed error it raised, and how it retried.
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, constants, hf_hub_download, hf_hub_url
from huggingface_hub import model_info as module_level_model_info
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    NotASafetensorsRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
    SafetensorsParsingError,
)
from safetensors import safe_open

from .conftest import FIXTURE_REPOS
from .fakehub import (
    OTHER_TOKEN,
    TEST_TOKEN,
    FakeHub,
    PendingRepo,
    build_repo,
    load_fixture_repo,
    repo_id_from_dirname,
)

TINY = "test/tiny"
TINY_DIR = FIXTURE_REPOS / "test__tiny"
TINY_PARAMS = 202_048  # 1000*64 + 2 * (64*64 + 2*32*64 + 64*64 + 3*128*64 + 2*64) + 64 + 1000*64
TINY_DATA_BYTES = 2 * TINY_PARAMS  # all BF16


def tiny_layout() -> dict:
    return json.loads((TINY_DIR / "layout.json").read_text())


def trace(hub: FakeHub) -> list[tuple[str, str, str | None, int]]:
    return [(r.server, r.method, r.range, r.status) for r in hub.requests]


SHARDS = {
    "model-00001-of-00003.safetensors": [["embed.weight", "F16", [10, 10]]],
    "model-00002-of-00003.safetensors": [["layer.weight", "F32", [4, 8]], ["layer.bias", "F32", [8]]],
    "model-00003-of-00003.safetensors": [["head.mask", "U8", [3]]],
}
SHARDED_LAYOUT = {
    "files": {name: {"metadata": {"format": "pt"}, "tensors": tensors} for name, tensors in SHARDS.items()},
    "index": "model.safetensors.index.json",
}
SHARDED_DATA_BYTES = 10 * 10 * 2 + (4 * 8 + 8) * 4 + 3


# --- environment -----------------------------------------------------------------------------------------


def test_every_entry_point_targets_the_fake_hub_and_a_temporary_cache(fake_hub, tmp_path_factory):
    assert HfApi().endpoint == fake_hub.url
    assert hf_hub_url(TINY, "config.json") == f"{fake_hub.url}/test/tiny/resolve/main/config.json"
    assert module_level_model_info(TINY).id == TINY  # module-level functions use an HfApi made at import
    assert constants.HF_HUB_CACHE.startswith(str(tmp_path_factory.getbasetemp()))
    assert fake_hub.count() == 1


# --- model_info --------------------------------------------------------------------------------------------


def test_model_info_with_files_metadata_gives_sizes_and_the_hub_parameter_count(fake_hub):
    info = HfApi().model_info(TINY, files_metadata=True)

    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes["config.json"] == len((TINY_DIR / "config.json").read_bytes())
    assert sizes["README.md"] == 512
    header_length = sizes["model.safetensors"] - 8 - TINY_DATA_BYTES
    assert header_length > 0 and header_length % 8 == 0
    weights = next(s for s in info.siblings if s.rfilename == "model.safetensors")
    assert weights.lfs is not None and weights.lfs.size == sizes["model.safetensors"]
    assert len(weights.lfs.sha256) == 64
    assert next(s for s in info.siblings if s.rfilename == "config.json").lfs is None
    assert info.safetensors.parameters == {"BF16": TINY_PARAMS}
    assert info.safetensors.total == TINY_PARAMS
    assert info.sha == fake_hub.sha(TINY) == hashlib.sha1(b"test/tiny").hexdigest()
    assert info.config == {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    assert info.gated is False and info.private is False
    assert [(r.method, r.path, r.query, r.status) for r in fake_hub.requests] == [
        ("GET", "/api/models/test/tiny", "blobs=true", 200)
    ]


def test_model_info_without_files_metadata_lists_names_only(fake_hub):
    info = HfApi().model_info(TINY)
    assert sorted(s.rfilename for s in info.siblings) == [
        ".gitattributes",
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert {s.size for s in info.siblings} == {None}


def test_model_info_expand_keeps_only_the_requested_properties(fake_hub):
    info = HfApi().model_info(TINY, expand=["safetensors", "config"])
    assert info.safetensors.total == TINY_PARAMS
    assert info.config["model_type"] == "llama"
    assert info.siblings is None and info.sha is None


# --- files and the cache -------------------------------------------------------------------------------------


def test_hf_hub_download_fetches_once_then_serves_from_cache_even_offline(fake_hub, monkeypatch):
    expected = (TINY_DIR / "config.json").read_bytes()

    path = hf_hub_download(TINY, "config.json")
    assert Path(path).read_bytes() == expected
    assert path.startswith(constants.HF_HUB_CACHE)
    assert trace(fake_hub) == [("hub", "HEAD", None, 200), ("hub", "GET", None, 200)]

    fake_hub.reset()
    assert hf_hub_download(TINY, "config.json") == path
    assert trace(fake_hub) == [("hub", "HEAD", None, 200)]  # etag check only

    fake_hub.reset()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hf_hub_download(TINY, "config.json") == path
    assert fake_hub.count() == 0
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(TINY, "README.md")  # never downloaded
    assert fake_hub.count() == 0


def test_resolve_headers_are_those_the_cache_relies_on(fake_hub):
    content = (TINY_DIR / "config.json").read_bytes()
    client = httpx2.Client(base_url=fake_hub.url)
    response = client.head("/test/tiny/resolve/main/config.json")
    assert response.status_code == 200
    git_blob_sha1 = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    assert response.headers["ETag"] == f'"{git_blob_sha1}"'
    assert response.headers["X-Repo-Commit"] == fake_hub.sha(TINY)
    assert response.headers["Content-Length"] == str(len(content))

    response = client.get("/test/tiny/resolve/main/config.json", headers={"Range": "bytes=2-9"})
    assert response.status_code == 206
    assert response.content == content[2:10]
    assert response.headers["Content-Range"] == f"bytes 2-9/{len(content)}"

    response = client.get("/test/tiny/resolve/main/config.json", headers={"Range": "bytes=5000-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(content)}"

    response = client.head("/test/tiny/resolve/main/model.safetensors")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"{fake_hub.cdn_url}/cdn/")
    assert int(response.headers["X-Linked-Size"]) > TINY_DATA_BYTES


# --- safetensors headers -----------------------------------------------------------------------------------


def test_parse_safetensors_file_metadata_gives_the_layout_exactly_in_two_requests(fake_hub):
    meta = HfApi().parse_safetensors_file_metadata(TINY, "model.safetensors")

    expected = tiny_layout()["files"]["model.safetensors"]
    assert meta.metadata == {"format": "pt"}
    assert [[name, t.dtype, t.shape] for name, t in meta.tensors.items()] == expected["tensors"]
    offsets = [t.data_offsets for t in meta.tensors.values()]
    assert offsets[0][0] == 0 and offsets[-1][1] == TINY_DATA_BYTES
    assert all(a[1] == b[0] for a, b in zip(offsets, offsets[1:]))
    assert meta.parameter_count == {"BF16": TINY_PARAMS}
    # The Hub answers 302 to the CDN, which answers the Range (the library's speculative first 100 kB).
    assert trace(fake_hub) == [("hub", "GET", "bytes=0-100000", 302), ("cdn", "GET", "bytes=0-100000", 206)]
    assert fake_hub.weights_downloads() == []


def test_without_cdn_redirect_the_hub_answers_the_range_itself(fake_hub):
    fake_hub.cdn_redirect = False
    HfApi().parse_safetensors_file_metadata(TINY, "model.safetensors")
    assert trace(fake_hub) == [("hub", "GET", "bytes=0-100000", 206)]


def test_get_safetensors_metadata_on_a_sharded_repo_reads_each_header_by_range(fake_hub):
    fake_hub.add_repo("test/sharded", layout=SHARDED_LAYOUT)

    meta = HfApi().get_safetensors_metadata("test/sharded")

    assert meta.sharded is True
    assert meta.metadata == {"total_size": SHARDED_DATA_BYTES}
    assert meta.weight_map == {t[0]: shard for shard, tensors in SHARDS.items() for t in tensors}
    assert meta.parameter_count == {"F16": 100, "F32": 40, "U8": 3}
    assert meta.files_metadata["model-00002-of-00003.safetensors"].tensors["layer.bias"].data_offsets == (
        128,
        160,
    )
    # file_exists(model.safetensors) -> 404; file_exists(index) and hf_hub_download(index) -> HEAD, HEAD, GET;
    # then one Range GET per shard (302 + 206), in parallel.
    assert trace(fake_hub)[:4] == [
        ("hub", "HEAD", None, 404),
        ("hub", "HEAD", None, 200),
        ("hub", "HEAD", None, 200),
        ("hub", "GET", None, 200),
    ]
    assert (
        sorted(trace(fake_hub)[4:])
        == [("cdn", "GET", "bytes=0-100000", 206)] * 3 + [("hub", "GET", "bytes=0-100000", 302)] * 3
    )
    assert fake_hub.count() == 10
    assert fake_hub.weights_downloads() == []


def test_get_sharded_safetensors_metadata_takes_one_request_and_404s_when_switched_off(fake_hub):
    fake_hub.add_repo("test/sharded", layout=SHARDED_LAYOUT)
    api = HfApi()

    meta = api.get_sharded_safetensors_metadata("test/sharded")
    assert trace(fake_hub) == [("hub", "GET", None, 200)]
    assert (
        fake_hub.requests[0].path
        == "/api/models/test/sharded/safetensors-metadata/model.safetensors.index.json"
    )
    assert meta.metadata == {"total_size": SHARDED_DATA_BYTES}
    assert meta.files_metadata == api.get_safetensors_metadata("test/sharded").files_metadata

    fake_hub.reset()
    fake_hub.sharded_endpoint = False
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.get_sharded_safetensors_metadata("test/sharded")
    assert excinfo.value.response.status_code == 404
    assert not isinstance(excinfo.value, (RepositoryNotFoundError, EntryNotFoundError))

    fake_hub.reset()
    with pytest.raises(RemoteEntryNotFoundError):  # a single-file repo has no index
        api.get_sharded_safetensors_metadata(TINY)


def test_the_sharded_answer_is_computed_once_and_served_the_same_every_time(fake_hub):
    fake_hub.add_repo("test/sharded", layout=SHARDED_LAYOUT)
    api = HfApi()
    first = api.get_sharded_safetensors_metadata("test/sharded")
    assert list(fake_hub.repo("test/sharded").replies) == [
        "safetensors-metadata/model.safetensors.index.json"
    ]
    assert api.get_sharded_safetensors_metadata("test/sharded") == first
    fake_hub.sharded_endpoint = False  # the switch is checked before the stored answer
    with pytest.raises(HfHubHTTPError):
        api.get_sharded_safetensors_metadata("test/sharded")


def test_the_sharded_endpoint_answers_400_for_a_bad_index_or_shard_header(fake_hub):
    fake_hub.add_repo(
        "bad/index", layout=SHARDED_LAYOUT, files={"model.safetensors.index.json": b"{not json"}
    )
    truncated = {"model-00002-of-00003.safetensors": struct.pack("<Q", 1000) + b'{"layer.weight": {"dty'}
    fake_hub.add_repo("bad/shard", layout=SHARDED_LAYOUT, files=truncated)
    for repo, message in [
        ("bad/index", "model.safetensors.index.json is not a valid safetensors index"),
        ("bad/shard", "Could not parse the safetensors header of model-00002-of-00003.safetensors"),
    ]:
        response = httpx2.get(
            f"{fake_hub.url}/api/models/{repo}/safetensors-metadata/model.safetensors.index.json"
        )
        assert (response.status_code, response.headers["X-Error-Message"]) == (400, message)


def test_the_index_file_is_what_json_dumps_with_indent_2_writes():
    weight_map = {name: fname for fname, tensors in SHARDS.items() for name, _, _ in tensors}
    weight_map['blocks.0.\u00e9"quoted"'] = "model-00003-of-00003.safetensors"  # escaped as json does
    layout = {**SHARDED_LAYOUT, "files": {**SHARDED_LAYOUT["files"]}}
    layout["files"]["model-00003-of-00003.safetensors"] = {
        "tensors": [*SHARDS["model-00003-of-00003.safetensors"], ['blocks.0.\u00e9"quoted"', "BF16", [2]]]
    }
    index = {"metadata": {"total_size": SHARDED_DATA_BYTES + 4}, "weight_map": weight_map}
    got = build_repo("test/sharded", layout=layout).files["model.safetensors.index.json"]
    assert got.head == json.dumps(index, indent=2).encode()
    empty = build_repo("test/empty", layout={"index": "model.safetensors.index.json"})
    assert (
        empty.files["model.safetensors.index.json"].head
        == json.dumps({"metadata": {"total_size": 0}, "weight_map": {}}, indent=2).encode()
    )


def test_a_lazy_hub_builds_each_fixture_repo_when_a_request_first_names_it():
    fixture_ids = [
        repo_id_from_dirname(d.name) for d in sorted(FIXTURE_REPOS.iterdir()) if (d / "layout.json").is_file()
    ]
    with FakeHub(FIXTURE_REPOS, lazy=True) as hub:
        assert hub.repo_ids() == fixture_ids
        entries = hub.snapshot_repos()
        assert all(isinstance(e, PendingRepo) and e.built is None for e in entries.values())
        api = HfApi(endpoint=hub.url)
        info = api.model_info(TINY, files_metadata=True)
        assert info.safetensors.total == TINY_PARAMS
        with pytest.raises(HfHubHTTPError, match="Invalid credentials"):
            api.model_info(TINY, token="hf_not_a_real_token")  # no fixture names a token: none is built
        assert [k for k, e in entries.items() if e.built is not None] == [TINY]
        tiny, built = load_fixture_repo(TINY_DIR), hub.repo(TINY)  # as an eager hub builds it
        assert {p: (f.head, f.size, f.etag) for p, f in built.files.items()} == {
            p: (f.head, f.size, f.etag) for p, f in tiny.files.items()
        }
        hub.add_repo("test/extra", layout=tiny_layout())
        hub.restore_repos(entries)  # a snapshot keeps lazy entries lazy, and what they built
        assert hub.repo_ids() == fixture_ids and hub.repo(TINY) is built


def test_synthesized_bytes_are_a_valid_safetensors_file_and_downloading_it_is_logged(fake_hub):
    path = hf_hub_download(TINY, "model.safetensors")

    with safe_open(path, framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}
        got = [[name, f.get_slice(name).get_dtype(), f.get_slice(name).get_shape()] for name in f.keys()]
    assert sorted(got) == sorted(tiny_layout()["files"]["model.safetensors"]["tensors"])
    [download] = fake_hub.weights_downloads()
    assert (download.server, download.method, download.range, download.file) == (
        "cdn",
        "GET",
        None,
        "model.safetensors",
    )
    assert download.span == (0, Path(path).stat().st_size)


def test_programmatic_repos_cover_malformed_checkpoints(fake_hub):
    api = HfApi()
    fake_hub.add_repo(
        "bad/dtypes",
        layout={
            "files": {
                "model.safetensors": {
                    "tensors": [
                        ["a", "F8_XYZ", [4, 4]],
                        ["b", "F4", [4, 8]],
                        ["c", "WEIRD", [3]],
                        ["d", "BF16", [2]],
                    ]
                }
            },
            "dtype_sizes": {"F8_XYZ": 2},
        },
        config=b"{not json",
    )
    meta = api.parse_safetensors_file_metadata("bad/dtypes", "model.safetensors")
    assert meta.metadata == {}
    assert [t.data_offsets for t in meta.tensors.values()] == [(0, 32), (32, 48), (48, 51), (51, 55)]
    assert Path(hf_hub_download("bad/dtypes", "config.json")).read_bytes() == b"{not json"
    assert api.model_info("bad/dtypes").config is None  # the Hub shows no config it cannot parse

    fake_hub.add_repo("bad/huge-header", files={"model.safetensors": struct.pack("<Q", 30_000_000) + b"{}"})
    with pytest.raises(SafetensorsParsingError, match="too big"):
        api.parse_safetensors_file_metadata("bad/huge-header", "model.safetensors")

    fake_hub.add_repo("bad/truncated", files={"model.safetensors": struct.pack("<Q", 1000) + b'{"a": {"dty'})
    with pytest.raises(SafetensorsParsingError, match="not json"):
        api.parse_safetensors_file_metadata("bad/truncated", "model.safetensors")

    fake_hub.add_repo("bad/bin-only", layout={"other_files": {"pytorch_model.bin": 14_000_000_000}})
    with pytest.raises(NotASafetensorsRepoError):
        api.get_safetensors_metadata("bad/bin-only")
    sizes = {s.rfilename: s.size for s in api.model_info("bad/bin-only", files_metadata=True).siblings}
    assert sizes["pytorch_model.bin"] == 14_000_000_000
    assert fake_hub.weights_downloads() == []


# --- errors ----------------------------------------------------------------------------------------------


def test_unknown_repo_raises_repository_not_found_401_anonymous_404_authenticated(fake_hub):
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError) as excinfo:
        api.model_info("nobody/nothing")
    assert excinfo.value.response.status_code == 401  # the Hub cannot tell strangers "private" from "missing"
    with pytest.raises(RepositoryNotFoundError) as excinfo:
        api.model_info("nobody/nothing", token=TEST_TOKEN)
    assert excinfo.value.response.status_code == 404
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("nobody/nothing", "config.json")


def test_gated_repo_info_is_public_but_files_raise_gated_repo_error_without_access(fake_hub):
    fake_hub.add_repo("test/gated", layout=tiny_layout(), config=b"{}", hub={"gated": "auto"})
    api = HfApi()
    assert api.model_info("test/gated").gated == "auto"

    with pytest.raises(GatedRepoError) as excinfo:
        hf_hub_download("test/gated", "config.json")
    assert excinfo.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as excinfo:
        hf_hub_download("test/gated", "config.json", token=OTHER_TOKEN)
    assert excinfo.value.response.status_code == 403
    with pytest.raises(GatedRepoError):
        api.get_safetensors_metadata("test/gated")  # file_exists re-raises GatedRepoError

    assert Path(hf_hub_download("test/gated", "config.json", token=TEST_TOKEN)).read_bytes() == b"{}"
    assert api.parse_safetensors_file_metadata("test/gated", "model.safetensors", token=TEST_TOKEN).tensors


def test_private_repo_is_not_found_without_its_token(fake_hub):
    fake_hub.add_repo("test/private", layout=tiny_layout(), hub={"private": True})
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("test/private")
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("test/private", token=OTHER_TOKEN)
    assert HfApi(token=TEST_TOKEN).model_info("test/private").private is True


def test_an_unknown_token_is_rejected_as_invalid_credentials(fake_hub):
    with pytest.raises(HfHubHTTPError, match="Invalid credentials") as excinfo:
        HfApi().model_info(TINY, token="hf_not_a_real_token")
    assert excinfo.value.response.status_code == 401
    assert not isinstance(excinfo.value, RepositoryNotFoundError)


def test_revisions_main_the_sha_and_declared_names_resolve_others_raise(fake_hub):
    fake_hub.add_repo("test/revs", config={"model_type": "llama"}, hub={"revisions": ["v1.0"]})
    api = HfApi()
    sha = fake_hub.sha("test/revs")
    assert api.model_info("test/revs", revision=sha).sha == sha
    assert api.model_info("test/revs", revision="v1.0").sha == fake_hub.sha("test/revs", "v1.0") != sha
    assert json.loads(Path(hf_hub_download("test/revs", "config.json", revision="v1.0")).read_text()) == {
        "model_type": "llama"
    }
    with pytest.raises(RevisionNotFoundError):
        api.model_info("test/revs", revision="v2.0")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("test/revs", "config.json", revision="v2.0")


def test_missing_file_raises_entry_not_found(fake_hub):
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(TINY, "tokenizer.json")
    assert fake_hub.filter("HEAD")[0].status == 404
    assert HfApi().file_exists(TINY, "tokenizer.json") is False


# --- retries, timeouts, latency ----------------------------------------------------------------------------


def test_model_info_does_not_retry_a_503(fake_hub, hf_sleeps):
    fake_hub.fail("/api/models/test/tiny", 503, times=2)
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi().model_info(TINY)
    assert excinfo.value.response.status_code == 503
    assert fake_hub.count() == 1 and hf_sleeps == []


def test_parse_safetensors_file_metadata_does_not_retry_a_503(fake_hub, hf_sleeps):
    fake_hub.fail("/resolve/", 503)
    with pytest.raises(HfHubHTTPError):
        HfApi().parse_safetensors_file_metadata(TINY, "model.safetensors")
    assert fake_hub.count() == 1 and hf_sleeps == []


def test_hf_hub_download_retries_its_head_call_on_503(fake_hub, hf_sleeps):
    fake_hub.fail("/resolve/", 503, times=2)
    path = hf_hub_download(TINY, "README.md")
    assert Path(path).read_bytes() == bytes(512)
    # HEAD without retry fails -> not cached -> HEAD again with backoff: 503, wait 1 s, 200 -> GET.
    assert [(r.method, r.status) for r in fake_hub.requests] == [
        ("HEAD", 503),
        ("HEAD", 503),
        ("HEAD", 200),
        ("GET", 200),
    ]
    assert hf_sleeps == [1]


def test_hf_hub_download_gives_up_after_five_retries_with_local_entry_not_found(fake_hub, hf_sleeps):
    fake_hub.fail("/resolve/", 503, times=None)
    with pytest.raises(LocalEntryNotFoundError) as excinfo:
        hf_hub_download(TINY, "README.md")
    assert isinstance(excinfo.value.__cause__, HfHubHTTPError)
    assert isinstance(excinfo.value, EntryNotFoundError)  # beware: a connectivity failure, not a missing file
    assert fake_hub.count("HEAD") == 7 and fake_hub.count("GET") == 0
    assert hf_sleeps == [1, 2, 4, 8, 8]


def test_a_hanging_server_surfaces_as_httpx_read_timeout(fake_hub):
    fake_hub.hang("/api/models/test/tiny", seconds=5)
    started = time.perf_counter()
    with pytest.raises(httpx2.ReadTimeout):
        HfApi().model_info(TINY, timeout=0.2)
    with pytest.raises(httpx2.ReadTimeout):
        HfApi().get_sharded_safetensors_metadata(TINY, timeout=0.2)
    assert time.perf_counter() - started < 2
    assert [r.status for r in fake_hub.requests] == [0, 0]  # still held by the server when the client gave up


def test_a_request_held_when_the_hub_is_reset_ends_with_a_404(fake_hub):
    # what a test leaves hanging must not go on into the next test's request log
    import threading

    fake_hub.hang("/api/models/test/tiny", seconds=30)
    statuses: list[int] = []
    client = threading.Thread(
        target=lambda: statuses.append(
            httpx2.get(f"{fake_hub.url}/api/models/{TINY}", timeout=10).status_code
        )
    )
    started = time.perf_counter()
    client.start()
    while not fake_hub.requests:  # held by the server
        time.sleep(0.01)
    fake_hub.reset()
    client.join(5)
    assert statuses == [404] and time.perf_counter() - started < 5


def test_parse_safetensors_file_metadata_times_out_without_retry(fake_hub):
    fake_hub.hang("/resolve/", seconds=5)
    with pytest.raises(httpx2.ReadTimeout):
        HfApi().parse_safetensors_file_metadata(TINY, "model.safetensors", timeout=0.2)
    assert fake_hub.count() == 1


def test_hf_hub_download_retries_a_timed_out_head_call_once_with_a_longer_timeout(fake_hub, hf_sleeps):
    fake_hub.hang("/resolve/main/config.json", seconds=5, times=1)
    started = time.perf_counter()
    path = hf_hub_download(TINY, "config.json", etag_timeout=0.2)
    assert time.perf_counter() - started < 2
    assert Path(path).read_bytes() == (TINY_DIR / "config.json").read_bytes()
    assert [(r.method, r.status) for r in fake_hub.requests] == [("HEAD", 0), ("HEAD", 200), ("GET", 200)]
    assert hf_sleeps == []


def test_latency_applies_to_every_request(fake_hub):
    api = HfApi()
    started = time.perf_counter()
    api.parse_safetensors_file_metadata(TINY, "model.safetensors")
    fast = time.perf_counter() - started

    fake_hub.latency_ms = 150
    started = time.perf_counter()
    api.parse_safetensors_file_metadata(TINY, "model.safetensors")
    slow = time.perf_counter() - started
    assert slow >= 0.3  # two requests (hub 302, CDN 206), 150 ms each
    assert slow - fast >= 0.25


# --- standalone --------------------------------------------------------------------------------------------


def test_standalone_server_prints_its_url_then_serves_the_fixtures():
    root = Path(__file__).resolve().parent.parent
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, tests.fakehub; print('pytest' in sys.modules)"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout == "False\n"

    process = subprocess.Popen(
        [sys.executable, "tests/fakehub.py", "--latency-ms", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx2.get(f"{url}/api/models/test/tiny")
        assert response.json()["safetensors"]["total"] == TINY_PARAMS
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=5)
        assert process.returncode == 0, stderr


def test_tiny_fixture_parameter_count_matches_its_config():
    config = json.loads((TINY_DIR / "config.json").read_text())
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    d = h // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * d
    per_layer = h * h + 2 * kv * h + h * h + 3 * i * h + 2 * h
    expected = 2 * config["vocab_size"] * h + layers * per_layer + h
    assert expected == TINY_PARAMS
    assert sum(math.prod(t[2]) for t in tiny_layout()["files"]["model.safetensors"]["tensors"]) == TINY_PARAMS
