"""Test harness: every test runs in an isolated HF environment; those that talk to the Hub get the fake Hub
(``tests/fakehub.py``).

Fixtures:

- ``fake_hub`` (function): the fake Hub, with its log, faults, latency and switches reset, and with the
  repos added or removed by the test restored afterwards; the endpoint points at it. Use it in every test
  that talks to the Hub (subprocesses included: ``HF_ENDPOINT`` is set too).
- ``fake_hub_server`` (session): the one ``FakeHub`` behind ``fake_hub``, serving every ``fixtures/repos/*/``
  holding a layout.json. Started when the first test asks for ``fake_hub`` (a run of tests that need no
  Hub never starts it); each fixture repo is built when a request first names it.
- ``hf_sleeps`` (function): the list of waits (seconds) huggingface_hub asked for between retries.
- ``no_stray_fetches`` (autouse): after each test (and after ``fake_hub`` released what it held), waits
  for hubmem's fetch threads that outlived their caller, see below.
- ``isolated_hf_env`` (autouse): the isolation below. Without ``fake_hub`` the endpoint is a loopback port
  that refuses every connection (bound, never listening), so a test that reaches for the Hub without
  asking for it fails at once, and nothing leaves the machine.

What must be patched, and why
-----------------------------
huggingface_hub copies its environment into ``huggingface_hub.constants`` *once, at import time*; the
library then reads those attributes (not ``os.environ``) at call time. Setting environment variables in a
test therefore changes nothing for an already imported library; the attributes must be patched too. The
environment variables are set as well, for subprocesses and for code that reads them directly.

- ``ENDPOINT``: ``HfApi()`` takes ``constants.ENDPOINT`` in its constructor (``self.endpoint``), so an
  ``HfApi`` built after the patch targets the fake Hub.
- ``HUGGINGFACE_CO_URL_TEMPLATE``: ``hf_hub_url`` (used by ``hf_hub_download``) formats this template,
  built from the endpoint at import; it is *not* derived from ``ENDPOINT`` at call time.
- ``huggingface_hub.hf_api.api.endpoint``: the module-level functions (``huggingface_hub.model_info``,
  ``get_safetensors_metadata``, ``parse_safetensors_file_metadata``, ...) are bound methods of one
  ``HfApi()`` created at import, whose endpoint was frozen then.
- ``HF_URL_HOSTS`` and ``utils._http._HUB_ORIGINS`` (frozen at import from ``ENDPOINT``): the hosts
  treated as the Hub, e.g. for following redirects with the auth header. Same-origin redirects are
  always followed; patched so the fake endpoint counts as the Hub, as it would with HF_ENDPOINT set.
- ``HF_HOME``, ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``HF_ASSETS_CACHE``, ``HUGGINGFACE_ASSETS_CACHE``,
  ``HF_XET_CACHE``, ``HF_TOKEN_PATH``, ``HF_STORED_TOKENS_PATH``: per-test temporary paths, so no test
  sees the user's cache or saved token (``get_token`` reads ``HF_TOKEN`` from ``os.environ`` at call time,
  then ``constants.HF_TOKEN_PATH``); ``_auth``'s in-process token caches are cleared.
- ``HF_HUB_OFFLINE`` = False (``is_offline_mode()`` returns it; tests of offline mode patch it to True).
- ``HF_HUB_DISABLE_TELEMETRY`` = True; ``HF_HUB_DISABLE_PROGRESS_BARS`` = True, also in
  ``huggingface_hub.utils.tqdm``, which imported the value by name.
- ``HF_HUB_DISABLE_XET`` = True: the fake Hub never sends ``X-Xet-Hash``, so hf_xet is never used anyway;
  this keeps it so even if a test builds such a response.

Fetch threads that outlive their test: hubmem's batch threads are daemons that finish the item in hand
after their caller stopped reading (Ctrl-C, an error), e.g. a request the fake Hub held until the test's
reset. Such a thread must be done before the next test starts: a test that forks helper processes from
this (multithreaded) process would copy the lock of huggingface_hub's HTTP pool while that thread holds
it, and the child, closing the inherited session after the fork, would wait on it forever.

Retries without waiting: ``utils._http.http_backoff`` (used by ``hf_hub_download``'s retry of its HEAD
call and by downloads) sleeps 1, 2, 4, 8, 8 s between its 5 retries; ``http_get`` sleeps 1 s before
resuming a broken download. Both modules' ``time`` is replaced by a stand-in whose ``sleep`` records the
wait (``hf_sleeps``) and returns at once, so retry tests are fast and can still assert the schedule.
``time.sleep`` elsewhere (the fake Hub's latency, the tests) is untouched.
"""

from __future__ import annotations

import gc
import importlib
import os
import socket
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .fakehub import FakeHub

FIXTURE_REPOS = Path(__file__).resolve().parent.parent / "fixtures" / "repos"


# Garbage collection less often than CPython's default (700, 10, 10): the big checkpoints' estimates allocate
# millions of objects (DeepSeek-V3: a 12.7 MB JSON answer, 92k tensor records), and at the default
# thresholds each of them ran several full collections over everything alive (a DeepSeek-V3 estimate:
# 1.9 s -> 1.3 s). Collection itself is untouched; the CLI run in a subprocess keeps the defaults.
GC_THRESHOLDS = (50_000, 20, 20)


def pytest_configure(config: pytest.Config) -> None:
    gc.set_threshold(*GC_THRESHOLDS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_docs_models.py and test_docs.py first: they regenerate the README's blocks (the longest
    files by far), so under `make test`'s workers each starts one worker rather than ending it."""
    first = ("test_docs_models.py", "test_docs.py")
    items.sort(key=lambda item: first.index(item.path.name) if item.path.name in first else len(first))


@pytest.fixture(scope="session")
def fake_hub_server() -> Iterator[FakeHub]:
    with FakeHub(FIXTURE_REPOS, lazy=True) as hub:
        from tests import gguf_fixtures

        gguf_fixtures.register(hub)  # GGUF repos (tests/gguf_fixtures.py), built on first use
        yield hub


@pytest.fixture(scope="session")
def refusing_endpoint() -> Iterator[str]:
    """http://127.0.0.1:PORT where PORT is bound and never listened on: every connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def fake_hub(
    isolated_hf_env: list[float], fake_hub_server: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeHub]:
    """The fake Hub, freshly reset; repos the test adds or removes are restored afterwards."""
    use_endpoint(monkeypatch, fake_hub_server.url)
    snapshot = fake_hub_server.snapshot_repos()
    fake_hub_server.reset()
    yield fake_hub_server
    fake_hub_server.reset()
    fake_hub_server.restore_repos(snapshot)


@pytest.fixture
def hf_sleeps(isolated_hf_env: list[float]) -> list[float]:
    """Seconds huggingface_hub asked to sleep during this test (its retries do not really wait)."""
    return isolated_hf_env


@pytest.fixture(autouse=True)
def no_stray_fetches() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 10
    for thread in threading.enumerate():
        if thread.name == "hubmem-worker":  # hubmem.hub.batch's worker threads
            thread.join(max(0.0, deadline - time.monotonic()))


def _recording_time(record: list[float]) -> types.SimpleNamespace:
    """A stand-in for the ``time`` module whose ``sleep`` only records the requested wait."""
    namespace = types.SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    namespace.sleep = record.append
    return namespace


def use_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point huggingface_hub (and subprocesses, through HF_ENDPOINT) at ``endpoint``."""
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _http

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)
    monkeypatch.setattr(constants, "HF_URL_HOSTS", constants.HF_URL_HOSTS | {urlsplit(endpoint).hostname})
    monkeypatch.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(endpoint)})
    assert os.environ["HF_ENDPOINT"] == endpoint


@pytest.fixture(autouse=True)
def isolated_hf_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, refusing_endpoint: str
) -> list[float]:
    from huggingface_hub import constants, file_download
    from huggingface_hub.utils import _auth, _http

    hf_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not the class of that name

    home = tmp_path_factory.mktemp("hf_home")
    paths = {
        "HF_HOME": home,
        "HF_HUB_CACHE": home / "hub",
        "HUGGINGFACE_HUB_CACHE": home / "hub",
        "HF_ASSETS_CACHE": home / "assets",
        "HUGGINGFACE_ASSETS_CACHE": home / "assets",
        "HF_XET_CACHE": home / "xet",
        "HF_TOKEN_PATH": home / "token",
        "HF_STORED_TOKENS_PATH": home / "stored_tokens",
    }

    # The environment, for subprocesses and code reading os.environ.
    for name in ("HF_HOME", "HF_HUB_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE", "HF_TOKEN_PATH"):
        monkeypatch.setenv(name, str(paths[name]))
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    for name in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_OIDC_RESOURCE",
        "HF_OIDC_ID_TOKEN",
        "HUGGINGFACE_CO_STAGING",
        "HF_HUB_ETAG_TIMEOUT",
        "HF_HUB_DOWNLOAD_TIMEOUT",
        "HF_DEBUG",
        "FORCE_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)

    # What huggingface_hub already read from the environment at import time (see the module docstring).
    use_endpoint(monkeypatch, refusing_endpoint)  # fake_hub points it at the fake Hub
    for name, path in paths.items():
        monkeypatch.setattr(constants, name, str(path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    monkeypatch.setattr(hf_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(_auth, "_OAUTH_REFRESH_CACHE", None)
    monkeypatch.setattr(_auth, "_OIDC_TOKEN_CACHE", None)

    # No pause or --max-rps pace left over from another test's 429 (hubmem.hub.pace is process-wide).
    from hubmem.hub import pace

    pace.configure(None)

    # Retries record their waits instead of sleeping.
    sleeps: list[float] = []
    monkeypatch.setattr(_http, "time", _recording_time(sleeps))
    monkeypatch.setattr(file_download, "time", _recording_time(sleeps))

    return sleeps
