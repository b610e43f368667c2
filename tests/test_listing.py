"""Listing sources of `hubmem audit` (--author, --search, --filter, --sort, --limit, --collection): the
requests of huggingface_hub's list_models / get_collection (hubmem.hub.listing) against the fake Hub's
listing and collection endpoints (pages chained by `Link` headers, `expand=`), what each costs in
requests, and the pool's 429 back-off on every page."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import hubmem
from hubmem.cli import main
from hubmem.hub import fetch as hub
from hubmem.hub import pace
from hubmem.hub.listing import Listed, ListingQuery, list_repos

from .helpers import config, layout

TINY = "test/tiny"
SLUG = "acme/favourites-0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    monkeypatch.setattr(hub, "_sleep", lambda s: None)


def add_acme(fake_hub, count: int = 5) -> list[str]:
    """acme/m0 .. acme/m{count-1}: the tiny model, m{i} with i·10 downloads and (count - i) likes."""
    ids = []
    for i in range(count):
        tags = [
            "transformers",
            "safetensors",
            "llama",
            "text-generation" if i % 2 == 0 else "feature-extraction",
        ]
        fake_hub.add_repo(
            f"acme/m{i}",
            layout=layout(TINY),
            config=config(TINY),
            hub={
                "downloads": i * 10,
                "likes": count - i,
                "tags": tags,
                "lastModified": f"2024-0{i + 1}-01T00:00:00.000Z",
            },
        )
        ids.append(f"acme/m{i}")
    fake_hub.add_repo("other/m9", layout=layout(TINY), config=config(TINY))
    return ids


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["audit", *args], input=input)


def rows(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_author_listing_pages_by_link_header_and_carries_shas(fake_hub):
    ids = add_acme(fake_hub)
    fake_hub.page_size = 2  # 5 repos: pages of 2, 2, 1, each named by the previous one's Link header
    listed = list_repos(ListingQuery(author="acme"))
    assert listed == [
        Listed(i, fake_hub.sha(i), f"2024-0{n + 1}-01T00:00:00+00:00") for n, i in enumerate(ids)
    ]
    pages = fake_hub.filter("GET", "/api/models?")
    assert [r.url.count("cursor=") for r in pages] == [0, 1, 1]
    assert all(
        "expand=sha" in r.url and "expand=lastModified" in r.url and "author=acme" in r.url for r in pages
    )
    assert all(r.status == 200 for r in pages)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """Sleeps recorded, not slept: each moves the pool's clock (hubmem.hub.pace.clock) on instead."""
    now = [1000.0]
    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(pace, "clock", lambda: now[0])
    monkeypatch.setattr(hub, "_sleep", sleep)
    pace.configure(None)
    return recorded


def test_a_429_on_any_listing_page_pauses_the_pool_for_its_retry_after(fake_hub, waits):
    """Each page goes through hubmem's retries (hubmem.hub.pace): a 429's Retry-After pauses every worker
    (here: the next call waits it out), and the retry is counted and reported."""
    ids = add_acme(fake_hub)
    fake_hub.page_size = 2
    fake_hub.fail("cursor=", 429, times=1, headers={"Retry-After": "7"})  # the second page, once
    listed = list_repos(ListingQuery(author="acme"))
    assert [item.repo_id for item in listed] == ids
    pages = fake_hub.filter("GET", "/api/models?")
    assert [(r.url.count("cursor="), r.status) for r in pages] == [(0, 200), (1, 429), (1, 200), (1, 200)]
    assert waits == [7.0]  # the pool's pause, waited before the page is asked for again
    assert pace.wait_before_call() == 0 and pace.retried() == 1
    fake_hub.clear_log()
    fake_hub.fail("/api/models?", 429, times=1, headers={"Retry-After": "3"})
    result = run("--author", "acme", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert [r["repo"] for r in rows(result)] == ids
    assert result.stderr == "Hub calls retried: 1 (429/5xx answers, timeouts).\n"
    assert waits == [7.0, 3.0]


def test_a_collection_that_answers_429_is_retried_after_the_pause(fake_hub, waits):
    add_acme(fake_hub)
    fake_hub.add_collection(SLUG, [("model", "acme/m1"), ("dataset", "acme/data"), ("model", "acme/m3")])
    fake_hub.fail("/api/collections/", 429, times=2, headers={"Retry-After": "2"})
    listed = list_repos(ListingQuery(collection=SLUG))
    assert [item.repo_id for item in listed] == ["acme/m1", "acme/m3"]
    assert [r.status for r in fake_hub.filter("GET", "/api/collections/")] == [429, 429, 200]
    assert waits == [2.0, 2.0]
    assert pace.retried() == 2


def test_audit_of_an_author_makes_one_row_per_model_in_listing_order(fake_hub):
    ids = add_acme(fake_hub)
    result = run("--author", "acme", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [(r["repo"], r["sha"], r["status"]) for r in rows(result)] == [
        (i, fake_hub.sha(i), "ok") for i in ids
    ]
    assert fake_hub.count("GET", "/api/models?") == 1  # one page of up to 1,000


def test_sort_limit_search_and_filter_go_to_the_listing(fake_hub):
    add_acme(fake_hub)
    result = run("--author", "acme", "--sort", "downloads", "--limit", "2", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [r["repo"] for r in rows(result)] == ["acme/m4", "acme/m3"]  # 40 and 30 downloads
    (page,) = fake_hub.filter("GET", "/api/models?")
    assert "sort=downloads" in page.url and "limit=2" in page.url
    result = run("--author", "acme", "--sort", "likes", "--filter", "text-generation", "--format", "jsonl")
    assert [r["repo"] for r in rows(result)] == ["acme/m0", "acme/m2", "acme/m4"]  # likes 5, 3, 1
    result = run("--search", "M9", "--format", "jsonl")  # any case, every author
    assert [r["repo"] for r in rows(result)] == ["other/m9"]
    result = run("--author", "acme", "--sort", "lastModified", "--limit", "1", "--format", "jsonl")
    assert [r["repo"] for r in rows(result)] == ["acme/m4"]  # 2024-05-01, the latest


def test_listing_adds_to_given_ids_each_repo_once(fake_hub):
    add_acme(fake_hub, 3)
    result = run("acme/m1", TINY, "--author", "acme", "--format", "jsonl")
    assert [r["repo"] for r in rows(result)] == ["acme/m1", TINY, "acme/m0", "acme/m2"]


def test_collection_adds_its_models_only(fake_hub):
    add_acme(fake_hub, 3)
    fake_hub.add_collection(SLUG, ["acme/m2", ("dataset", "acme/data"), ("paper", "2307.09288"), TINY])
    result = run("--collection", SLUG, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [r["repo"] for r in rows(result)] == ["acme/m2", TINY]
    assert fake_hub.count("GET", f"/api/collections/{SLUG}") == 1
    result = run("--collection", SLUG, "--author", "acme", "--limit", "1", "--format", "jsonl")
    assert [r["repo"] for r in rows(result)] == [
        "acme/m0",
        "acme/m2",
    ]  # the listing's first, the collection's


def test_second_listing_run_costs_only_the_listing_when_nothing_changed(fake_hub):
    """The listing names each commit: a repo whose commit hubmem's metadata cache holds costs no request."""
    ids = add_acme(fake_hub)
    first = run("--author", "acme", "--format", "jsonl")
    assert first.exit_code == 0
    fake_hub.clear_log()
    second = run("--author", "acme", "--format", "jsonl")
    assert second.stdout == first.stdout
    assert [r.url.split("?")[0] for r in fake_hub.requests] == ["/api/models"]
    fake_hub.add_repo(
        "acme/m1", layout=layout(TINY), config=config(TINY), hub={"commit": "2"}
    )  # a new commit
    fake_hub.clear_log()
    third = run("--author", "acme", "--format", "jsonl")
    assert [r["sha"] for r in rows(third)] == [fake_hub.sha(i) for i in ids]
    assert {r.path.split("/")[4] for r in fake_hub.requests if r.path.startswith("/api/models/")} == {"m1"}


def test_listing_errors_are_one_line_with_their_exit_code(fake_hub):
    result = run("--collection", "acme/none-0123456789abcdef01234567")
    assert (result.exit_code, result.stderr) == (
        10,
        "Error: collection 'acme/none-0123456789abcdef01234567' not found "
        "(check the slug; private collections need --token or HF_TOKEN)\n",
    )
    result = run("--author", "nobody")
    assert (result.exit_code, result.stderr) == (3, "Error: the listing --author nobody matched no models\n")
    fake_hub.fail("/api/models?", 503, times=None)
    result = run("--author", "acme")
    assert result.exit_code == 20
    assert result.stderr.startswith("Error: the Hub answered HTTP 503 for 'the listing --author acme': ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sort", "likes", TINY], "--sort orders a listing: give --author, --search or --filter"),
        (["--limit", "0", "--author", "acme"], "--limit must be a whole number from 1 to 100,000, not 0"),
        (["--limit", "3", TINY], "--limit caps a listing: give --author, --search, --filter or --collection"),
        (
            ["--collection", "just-a-title"],
            "--collection takes a slug as the Hub writes it (namespace/title-id), not 'just-a-title'",
        ),
        (["--author", " "], "--author is empty or holds a control character"),
    ],
)
def test_bad_listing_options_exit_3_before_any_request(fake_hub, args, message):
    result = run(*args)
    assert (result.exit_code, result.stderr) == (3, f"Error: {message}\n")
    assert fake_hub.requests == []


def test_python_api_takes_the_listing_options(fake_hub):
    add_acme(fake_hub, 2)
    got = [(r.ref, r.ok) for r in hubmem.audit([], author="acme", list_sort="downloads")]
    assert got == [("acme/m1", True), ("acme/m0", True)]
