"""hubmem's metadata cache ($HF_HOME/hubmem/metadata): what it keeps (the Hub's answers as received,
hubmem.hub.fetch `_cache_store`), that a commit read back equals the one fetched without a request, and
that a cache file cut short, altered or holding an echoed token is never used or never written."""

from __future__ import annotations

import pytest

from hubmem import errors
from hubmem.hub import fetch as hub

TINY = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"  # one model.safetensors: a Range GET's answer
SHARDED = "meta-llama/Llama-3.1-8B"  # sharded: the safetensors-metadata endpoint's answer


def cache_file(snapshot: hub.RepoSnapshot):
    return hub._repo_dir(snapshot.repo_id) / f"{snapshot.sha}{hub.CACHE_SUFFIX}"


@pytest.mark.parametrize("repo", [TINY, SHARDED])
def test_a_commit_read_back_equals_the_fetch_and_makes_no_request(fake_hub, repo):
    fetched = hub.fetch(repo)
    fake_hub.clear_log()
    again = hub.fetch(repo, revision=fetched.sha)
    assert fake_hub.requests == []
    assert again.source == "cache"
    assert (again.config, again.files, again.weights_format) == (
        fetched.config,
        fetched.files,
        fetched.weights_format,
    )
    assert again.headers == fetched.headers
    assert sum(len(t) for t in again.headers.values()) == sum(len(t) for t in fetched.headers.values()) > 0


def test_the_file_holds_the_answers_bytes_as_the_hub_sent_them(fake_hub):
    fetched = hub.fetch(TINY)
    data = cache_file(fetched).read_bytes()
    line, _, blob = data.partition(b"\n")
    # the one answer: the Range GET of model.safetensors, bytes 0-100000 (its header is shorter)
    served = fake_hub.repo(TINY).files["model.safetensors"].read(0, 100_001)
    assert blob == served
    assert b'"answers": [["model.safetensors", %d]]' % len(served) in line


@pytest.mark.parametrize("cut", [1, 100])
def test_a_cache_file_cut_short_is_fetched_again(fake_hub, cut):
    fetched = hub.fetch(TINY)
    path = cache_file(fetched)
    path.write_bytes(path.read_bytes()[:-cut])
    fake_hub.clear_log()
    again = hub.fetch(TINY, revision=fetched.sha)
    assert again.source == "hub" and again.headers == fetched.headers
    assert len(fake_hub.requests) >= 2


def test_an_altered_header_in_the_cache_is_checked_like_an_answer_and_fetched_again(fake_hub):
    fetched = hub.fetch(TINY)
    path = cache_file(fetched)
    data = path.read_bytes()
    altered = data.replace(b'"dtype":"BF16"', b'"dtype":"XX16"', 1)
    assert altered != data and len(altered) == len(data)
    path.write_bytes(altered)
    again = hub.fetch(TINY, revision=fetched.sha)
    assert again.source == "hub" and again.headers == fetched.headers


def test_an_answer_echoing_the_token_is_never_written(fake_hub, monkeypatch):
    token = "hf_EchoedSecret12345"
    errors.keep_secret(token)
    real = hub._fetch_online

    def echoing(*args, **kwargs):
        snapshot, answers = real(*args, **kwargs)
        return snapshot, [(name, raw + token.encode()) for name, raw in answers]

    monkeypatch.setattr(hub, "_fetch_online", echoing)
    fetched = hub.fetch(TINY)
    assert not cache_file(fetched).exists()


def test_a_forked_child_starts_its_own_request_threads():
    """hubmem.hub.pool after a fork (an audit's fetch helper): the parent's threads are not the child's, so
    the child starts its own instead of queueing work for threads it does not have."""
    import multiprocessing

    from hubmem.hub import pool

    with pool.scope(2) as requests:  # the parent's threads exist now
        assert requests.submit(lambda: 41 + 1).result(timeout=5) == 42

    def child(pipe):
        with pool.scope(2) as requests:
            pipe.send(requests.submit(lambda: 6 * 7).result(timeout=5))

    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=child, args=(send,))
    process.start()
    assert receive.poll(10) and receive.recv() == 42
    process.join(10)
    assert process.exitcode == 0
