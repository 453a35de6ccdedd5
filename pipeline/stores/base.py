"""The store contract: one interface, two engines (SQLite and Elasticsearch).

A store keeps articles (plain dicts shaped as DESIGN.md's Article record) and the
pipeline's state (feed state, dedupe lookups). Every method here is implemented by
both :class:`~pipeline.stores.sqlite.SQLiteStore` and
:class:`~pipeline.stores.elasticsearch.ElasticsearchStore`; the contract tests in
``tests/test_store_contract.py`` run unchanged against both.

Rules every engine follows:
- ``index`` is idempotent by ``id``: writing the same article twice leaves one document.
- An article whose ``duplicate_of`` names another is stored too (with its ``cluster_id``),
  and the cluster representative's ``also_published_by`` gains ``{source, url,
  published_at, id}`` for it, once.
- ``search`` returns one hit per cluster (the representative) unless
  ``SearchQuery.collapse`` is False.
- Actor and location filters take canonical ids (``SearchQuery.actor_ids``) already
  resolved by :mod:`pipeline.search`; engines never interpret aliases.
- Every ``search`` is bounded in time: past ``store.search_timeout`` seconds (settings'
  ``search_timeout``) the engine stops it and raises :class:`SearchTimeout`; a timed-out
  search is never retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Article = dict[str, Any]


@dataclass
class SearchQuery:
    """A structured search. Every filter is optional; all given filters must match (AND).

    Within one list filter (``actor_ids``, ``location_ids``, ``sources``...) any value
    matches (OR), except ``actor_ids``/``location_ids`` where each group is one
    entity's id set: ``[["a", "b"], ["c"]]`` means (a OR b) AND c.
    """

    text: str = ""
    actor_ids: list[list[str]] = field(default_factory=list)
    location_ids: list[list[str]] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    sources: list[str] = field(default_factory=list)  # source.name or source.domain
    languages: list[str] = field(default_factory=list)
    country_codes: list[str] = field(default_factory=list)  # of tagged locations
    near: tuple[float, float, float] | None = None  # (lat, lon, radius_km)
    bbox: tuple[float, float, float, float] | None = None  # (top_lat, left_lon, bottom_lat, right_lon)
    sort: Literal["relevance", "date"] = "relevance"
    limit: int = 20
    after: list[Any] | None = None  # opaque cursor from SearchResult.next_after
    collapse: bool = True  # one hit per near-duplicate cluster
    facets: bool = True
    highlight: bool = True
    facet_size: int = 10


@dataclass
class SearchResult:
    """``total`` counts matching clusters when collapsing, documents otherwise.

    ``facets`` = {"actors": [{"key", "name", "count"}], "locations": [...],
    "sources": [...], "dates": [{"key": "YYYY-MM-DD", "count"}]}.
    Each hit is the stored article plus ``_score`` (float or None) and ``_highlight``
    (list of snippets with matches wrapped in ``<mark>``...``</mark>``).
    ``next_after`` is a cursor for the next page, or None when there is none.
    """

    total: int
    hits: list[Article]
    facets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    next_after: list[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "hits": self.hits, "facets": self.facets}


@dataclass
class IndexReport:
    """What one ``index`` call did: new documents, updated ones, per-document errors."""

    indexed: int = 0
    created: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"id", "error"}


class SearchTimeout(Exception):
    """A search ran past the store's ``search_timeout`` and was stopped (not retried)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the search took longer than {seconds:g} s and was stopped; narrow it down")
        self.seconds = seconds


@dataclass(frozen=True)
class ClusterRef:
    """A stored article as seen by dedupe lookups."""

    id: str
    cluster_id: str
    signature: list[int] | None = None  # MinHash values, when stored


class Store(Protocol):
    url: str
    search_timeout: float  # seconds a search may run (see SearchTimeout)

    def setup(self) -> None:
        """Create tables / index templates and aliases. Idempotent."""

    def index(self, articles: Iterable[Article]) -> IndexReport:
        """Write articles (idempotent by id) and update cluster representatives."""

    def get(self, article_id: str) -> Article | None: ...

    def count(self) -> int:
        """Number of stored documents (cluster members included)."""

    def search(self, query: SearchQuery) -> SearchResult: ...

    def cluster_members(self, cluster_id: str) -> list[Article]:
        """Every stored article of one cluster, the representative first."""

    # --- dedupe state -------------------------------------------------------------
    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of ``ids`` already stored."""

    def find_content_hashes(self, hashes: Iterable[str]) -> dict[str, ClusterRef]:
        """content_hash -> the earliest stored article with that hash."""

    def find_band_keys(self, keys: Iterable[str]) -> dict[str, list[ClusterRef]]:
        """LSH band key -> stored articles carrying it (with their signatures)."""

    # --- feed state ---------------------------------------------------------------
    def get_feed_state(self, feed_url: str) -> dict[str, Any] | None: ...

    def put_feed_state(self, feed_url: str, state: dict[str, Any]) -> None: ...

    def all_feed_states(self) -> dict[str, dict[str, Any]]: ...

    def close(self) -> None: ...
