"""Repo ids from the Hub's listings: an author's (org's or user's) models, a search, tags, a collection.

The requests huggingface_hub's `HfApi.list_models` and `HfApi.get_collection` make (huggingface_hub 2.4
`hf_api.py`), made by hubmem.hub.client over huggingface_hub's client, auth headers and typed errors, and
each page under `fetch.with_retries`: the whole pool's 429 `Retry-After` pause and `--max-rps`
(hubmem.hub.pace), retries counted, answers bounded (hubmem.hub.bounded). huggingface_hub's own paging
(`utils/_pagination.py`) retries each page with its `http_backoff`, which neither pauses the other
workers nor counts its retries.

- `list_models(author=, search=, filter=, sort=, limit=, expand=["sha", "lastModified"])`: one GET of
  `/api/models` per page, the next page named by the answer's `Link: <...>; rel="next"` header (as
  `_pagination.py` follows it). With `expand`, each item carries its commit `sha` and `lastModified`,
  so that an audit with a results database can tell an unchanged repo without a request of its own
  (hubmem.store). A `limit` stops the paging once that many items came: no further page is asked for.
- `get_collection(slug)`: one GET of `/api/collections/{slug}`; its model items name the repo only (the
  Hub sends no commit sha there), other items (datasets, Spaces, papers) are left out.

The sources combine: the listing query (author, search and tags together, as one `list_models`
call), then the collection's models, each repo once, in that order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hubmem import errors

# `--sort` names -> the Hub's `sort` values, as list_models sends its `ModelSort_T` names (huggingface_hub
# 2.4 hf_api.py: trending_score -> trendingScore, last_modified -> lastModified); the Hub orders each
# descending.
SORTS = {
    "downloads": "downloads",
    "likes": "likes",
    "trending": "trendingScore",
    "lastModified": "lastModified",
}

MAX_LIMIT = 100_000


@dataclass(frozen=True)
class Listed:
    """One repo a listing named: its id, and its commit sha and last change when the listing said."""

    repo_id: str
    sha: str | None = None
    last_modified: str | None = None  # ISO 8601, as the Hub wrote it


@dataclass(frozen=True)
class ListingQuery:
    """What to list (the CLI's --author, --search, --filter, --sort, --limit, --collection)."""

    author: str | None = None
    search: str | None = None
    filters: tuple[str, ...] = field(default_factory=tuple)
    sort: str | None = None
    limit: int | None = None
    collection: str | None = None

    @property
    def asks_models(self) -> bool:
        return bool(self.author or self.search or self.filters)

    @property
    def empty(self) -> bool:
        return not self.asks_models and not self.collection

    def describe(self) -> str:
        parts = [f"--author {self.author}"] if self.author else []
        parts += [f"--search {self.search}"] if self.search else []
        parts += [f"--filter {f}" for f in self.filters]
        parts += [f"--collection {self.collection}"] if self.collection else []
        return " ".join(parts)

    def check(self) -> ListingQuery:
        """The query, or an InvalidInputError (exit 3) for a value the Hub would refuse or ignore."""
        if self.sort is not None and self.sort not in SORTS:
            raise errors.InvalidInputError(f"--sort takes one of {', '.join(SORTS)}, not '{self.sort}'")
        if self.sort is not None and not self.asks_models:
            raise errors.InvalidInputError("--sort orders a listing: give --author, --search or --filter")
        if self.limit is not None:
            if (
                isinstance(self.limit, bool)
                or not isinstance(self.limit, int)
                or not 1 <= self.limit <= MAX_LIMIT
            ):
                raise errors.InvalidInputError(
                    f"--limit must be a whole number from 1 to {MAX_LIMIT:,}, not {self.limit!r}"
                )
            if self.empty:
                raise errors.InvalidInputError(
                    "--limit caps a listing: give --author, --search, --filter or --collection"
                )
        for name, value in (
            ("--author", self.author),
            ("--search", self.search),
            ("--collection", self.collection),
        ):
            if value is not None and (not value.strip() or any(c in value for c in "\x00\n\r")):
                raise errors.InvalidInputError(f"{name} is empty or holds a control character")
        for tag in self.filters:
            if not tag.strip() or any(c in tag for c in "\x00\n\r"):
                raise errors.InvalidInputError("--filter is empty or holds a control character")
        if self.collection is not None and "/" not in self.collection:
            raise errors.InvalidInputError(
                f"--collection takes a slug as the Hub writes it (namespace/title-id), not '{self.collection}'"
            )
        return self


def list_repos(query: ListingQuery, token: str | None = None, timeout: float | None = None) -> list[Listed]:
    """Every repo the query names, each once, in listing order (then the collection's). `timeout`: seconds
    per page (default: a fetch's, hubmem.hub.fetch.DEFAULT_TIMEOUT). Raises HubmemError subclasses only."""
    from hubmem.hub.fetch import DEFAULT_TIMEOUT

    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    query.check()
    seen: dict[str, Listed] = {}
    if query.asks_models:
        for listed in _models(query, token, timeout):
            seen.setdefault(listed.repo_id, listed)
    if query.collection:
        for listed in _collection(query.collection, query.limit, token, timeout):
            seen.setdefault(listed.repo_id, listed)
    return list(seen.values())


def _models(
    query: ListingQuery, token: str | None, timeout: float, max_pages: int | None = None
) -> Iterator[Listed]:
    from hubmem.hub import client
    from hubmem.hub.fetch import translate, with_retries

    first: dict[str, Any] = {}  # hf_api.py list_models' query, in its order
    if query.filters:
        first["filter"] = list(query.filters)
    if query.author:
        first["author"] = query.author
    if query.search:
        first["search"] = query.search
    if query.sort:
        first["sort"] = SORTS[query.sort]
    if query.limit is not None:
        first["limit"] = query.limit
    first["expand"] = ["sha", "lastModified"]
    params: dict[str, Any] | None = first
    url: str | None = f"{client.endpoint()}/api/models"
    where = f"the listing {query.describe()}"
    count = pages = 0
    try:
        while url is not None and (max_pages is None or pages < max_pages):
            pages += 1
            response = with_retries(client.get, url, token, timeout=timeout, params=params)
            params = None  # the next page's link carries the query
            for item in _page(response.content, where):
                yield item
                count += 1
                if query.limit is not None and count >= query.limit:
                    return
            url = response.links.get("next", {}).get("url")
    except errors.HubmemError:
        raise
    except Exception as e:
        raise _listing_error(translate(e, where, None)) from e


def _page(raw: bytes, where: str) -> list[Listed]:
    """A page of `/api/models` with `expand=sha,lastModified`: [{"id", "sha", "lastModified"}, ...]."""
    from huggingface_hub.utils import parse_datetime

    try:
        items = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise errors.HubServerError(f"the Hub's answer for '{where}' is not valid JSON") from e
    if not isinstance(items, list):
        raise errors.HubServerError(f"the Hub's answer for '{where}' is not a list of models")
    out = []
    for item in items:
        repo_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(repo_id, str):
            raise errors.HubServerError(f"the Hub's answer for '{where}' holds a model without an id")
        sha = item.get("sha")
        modified = item.get("lastModified")
        try:  # as list_models' ModelInfo reads it, then ISO 8601 with its offset
            stamp = parse_datetime(modified).isoformat() if isinstance(modified, str) else None
        except ValueError:
            stamp = None
        out.append(Listed(repo_id, sha if isinstance(sha, str) else None, stamp))
    return out


def _collection(slug: str, limit: int | None, token: str | None, timeout: float) -> Iterator[Listed]:
    from huggingface_hub.errors import HfHubHTTPError

    from hubmem.hub import client
    from hubmem.hub.fetch import translate, with_retries

    where = f"the collection {slug}"
    url = f"{client.endpoint()}/api/collections/{quote(slug, safe='/')}"
    try:
        collection = json.loads(with_retries(client.get, url, token, timeout=timeout).content)
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status in (401, 404):
            raise errors.RepoNotFoundError(
                f"collection '{slug}' not found",
                hint="check the slug; private collections need --token or HF_TOKEN",
            ) from e
        raise _listing_error(translate(e, where, None)) from e
    except (ValueError, RecursionError) as e:
        raise errors.HubServerError(f"the Hub's answer for '{where}' is not valid JSON") from e
    except Exception as e:
        raise _listing_error(translate(e, where, None)) from e
    items = collection.get("items") if isinstance(collection, dict) else None
    if not isinstance(items, list):
        raise errors.HubServerError(f"the Hub's answer for '{where}' has no list of items")
    # hf_api.py CollectionItem: `id` names the repo, `type` says what it is
    models = [
        item["id"]
        for item in items
        if isinstance(item, dict) and item.get("type") == "model" and isinstance(item.get("id"), str)
    ]
    for repo_id in models[:limit]:
        yield Listed(repo_id)


def _listing_error(e: errors.HubmemError) -> errors.HubmemError:
    """translate() speaks of a repository; a listing that fails is not one (a 404 there: the author or
    the route is unknown to this Hub)."""
    if isinstance(e, errors.RepoNotFoundError):
        return errors.RepoNotFoundError(str(e.message).replace("repository ", "", 1))
    return e


# A re-run's commits by listing (hubmem.jobs.stored): an author holding at least AUTHOR_LISTING_MIN_IDS
# of the audit's stored ids is listed with expand=sha (one request per page of up to 1,000 models) instead
# of probed repo by repo, reading at most one page per IDS_PER_LISTING_PAGE of its ids: never more than
# one request per that many repos, whatever the author's size. Ids the pages did not reach are probed.
AUTHOR_LISTING_MIN_IDS = 100
IDS_PER_LISTING_PAGE = 100


def commits_by_author(refs: Iterable[str], *, token: str | None, timeout: float) -> dict[str, Listed]:
    """{repo id: Listed with its main commit} for the plain `org/name` refs (no `@revision`) whose author
    holds enough of them, from `list_models(author=...)` pages. A listing that fails gives nothing: the
    probes that would have run anyway report what is wrong."""
    from hubmem.hub.fetch import is_local

    by_author: dict[str, set[str]] = {}
    for ref in refs:
        if ref.count("/") == 1 and "@" not in ref and not is_local(ref):
            by_author.setdefault(ref.split("/")[0], set()).add(ref)
    found: dict[str, Listed] = {}
    for author, wanted in by_author.items():
        if len(wanted) < AUTHOR_LISTING_MIN_IDS:
            continue
        pages = -(-len(wanted) // IDS_PER_LISTING_PAGE)
        missing = set(wanted)
        try:
            for listed in _models(ListingQuery(author=author), token, timeout, max_pages=pages):
                if listed.repo_id in missing and listed.sha:
                    found[listed.repo_id] = listed
                    missing.discard(listed.repo_id)
                    if not missing:
                        break
        except errors.HubmemError:
            continue
    return found


def current_commit(repo: str, revision: str | None, *, token: str | None, timeout: float) -> str | None:
    """The commit `revision` (default: main) of `repo` is at: no request for a 40-hex commit, else one
    `client.commit` (model_info's request with `expand=sha`, the smallest answer the Hub gives: the id and
    the sha), retried as every fetch is. None when the Hub cannot say (missing, gated, offline): the caller
    then fetches as usual, which reports why."""
    import re

    if revision is not None and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    from hubmem.hub import client
    from hubmem.hub.fetch import with_retries

    try:
        return with_retries(client.commit, repo, revision, token, timeout=timeout)
    except Exception:
        return None
