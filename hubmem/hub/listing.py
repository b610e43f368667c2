"""Repo ids from the Hub's listings: an author's (org's or user's) models, a search, tags, a collection.

Through huggingface_hub's own calls (its auth, endpoint, pagination and typed errors):

- `HfApi.list_models(author=, search=, filter=, sort=, limit=, expand=["sha", "lastModified"])`
  (huggingface_hub 2.4 `hf_api.py`): one GET of `/api/models` per page, the next page named by the
  answer's `Link: <...>; rel="next"` header (`utils/_pagination.py`), each page retried on 429/5xx by
  `http_backoff`. With `expand`, each item carries its commit `sha` and `lastModified`, so that an
  audit with a results database can tell an unchanged repo without a request of its own
  (hubmem.store). A `limit` stops the paging once that many items came (`islice`): no further page is
  asked for.
- `HfApi.get_collection(slug)`: one GET of `/api/collections/{slug}`; its model items name the repo
  only (the Hub sends no commit sha there), other items (datasets, Spaces, papers) are left out.

The sources combine: the listing query (author, search and tags together, as one `list_models`
call), then the collection's models, each repo once, in that order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from hubmem import errors

# `--sort` names -> list_models' sort values (huggingface_hub 2.4 `ModelSort_T`); the Hub orders
# each descending.
SORTS = {
    "downloads": "downloads",
    "likes": "likes",
    "trending": "trending_score",
    "lastModified": "last_modified",
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


def list_repos(query: ListingQuery, token: str | None = None) -> list[Listed]:
    """Every repo the query names, each once, in listing order (then the collection's). Raises
    HubmemError subclasses only."""
    query.check()
    seen: dict[str, Listed] = {}
    if query.asks_models:
        for listed in _models(query, token):
            seen.setdefault(listed.repo_id, listed)
    if query.collection:
        for listed in _collection(query.collection, query.limit, token):
            seen.setdefault(listed.repo_id, listed)
    return list(seen.values())


def _models(query: ListingQuery, token: str | None) -> Iterator[Listed]:
    from huggingface_hub import HfApi

    from hubmem.hub.fetch import translate

    try:
        models = HfApi(token=token).list_models(
            author=query.author,
            search=query.search,
            filter=list(query.filters) or None,
            sort=SORTS[query.sort] if query.sort else None,  # type: ignore[arg-type]
            limit=query.limit,
            expand=["sha", "lastModified"],
        )
        for info in models:
            modified = info.last_modified.isoformat() if info.last_modified is not None else None
            yield Listed(info.id, info.sha, modified)
    except errors.HubmemError:
        raise
    except Exception as e:
        raise _listing_error(translate(e, f"the listing {query.describe()}", None)) from e


def _collection(slug: str, limit: int | None, token: str | None) -> Iterator[Listed]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from hubmem.hub.fetch import translate

    try:
        collection = HfApi(token=token).get_collection(slug)
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status in (401, 404):
            raise errors.RepoNotFoundError(
                f"collection '{slug}' not found",
                hint="check the slug; private collections need --token or HF_TOKEN",
            ) from e
        raise _listing_error(translate(e, f"the collection {slug}", None)) from e
    except Exception as e:
        raise _listing_error(translate(e, f"the collection {slug}", None)) from e
    models = [item.item_id for item in collection.items if item.item_type == "model"]
    for repo_id in models[:limit]:
        yield Listed(repo_id)


def _listing_error(e: errors.HubmemError) -> errors.HubmemError:
    """translate() speaks of a repository; a listing that fails is not one (a 404 there: the author or
    the route is unknown to this Hub)."""
    if isinstance(e, errors.RepoNotFoundError):
        return errors.RepoNotFoundError(str(e.message).replace("repository ", "", 1))
    return e


def current_commit(repo: str, revision: str | None, *, token: str | None, timeout: float) -> str | None:
    """The commit `revision` (default: main) of `repo` is at: no request for a 40-hex commit, else one
    `model_info(expand=["sha"])` (the smallest answer the Hub gives: the id and the sha). None when the
    Hub cannot say (missing, gated, offline): the caller then fetches as usual, which reports why."""
    import re

    if revision is not None and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    from huggingface_hub import HfApi

    from hubmem.hub.fetch import with_retries

    try:
        info = with_retries(
            HfApi(token=token).model_info, repo, revision=revision, expand=["sha"], timeout=timeout
        )
    except Exception:
        return None
    return info.sha
