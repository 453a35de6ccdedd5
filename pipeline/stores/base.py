"""The store contract: one interface, two engines (SQLite and Elasticsearch).

A store keeps articles (plain dicts shaped as docs/architecture.md's Article record) and the
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
- Place hierarchy: each item of an article's ``locations`` may carry ``ancestors`` (ids of
  the places containing it, nearest first: admin2, admin1, country) and ``admin1``, the
  admin-1 division containing it as ``{"id": ..., "name": ...}`` or null (a bare id string
  is accepted too, its name is then the id; a country or an admin-1 division itself has
  none). Records written before these fields existed lack them: missing means empty/null.
  A location id in ``SearchQuery.location_ids`` matches an article tagged with that place
  *or with any place whose ancestors contain it* (``Nigeria`` finds an article tagged only
  with Maiduguri); ``country_codes`` still compares the tagged places' ``country_code``.
- Roll-up facets (see :class:`SearchResult`): ``location_countries`` counts articles by
  their places' ``country_code``, ``location_admin1`` by the admin-1 division of their
  places (:func:`admin1_of`).
- Pipeline state besides feeds (``get_state``/``put_state``, e.g. the progress of
  ``newswire retag``) is one JSON object per key, separate from feed state.
- ``index`` never stores :data:`UNSTORED_FIELDS` (the raw page ``html`` a record carries
  from fetch to clean): search and display need ``text``, the fields and the facets, and the
  page was most of a document's size (issue 15). :func:`stored_form` is the one place this
  rule lives; no raw-page archive is kept.
- Every ``search`` is bounded in time: past ``store.search_timeout`` seconds (settings'
  ``search_timeout``) the engine stops it and raises :class:`SearchTimeout`; a timed-out
  search is never retried.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, Protocol

Article = dict[str, Any]

#: Record fields no engine stores: the raw page HTML (the clean stage's input).
UNSTORED_FIELDS = frozenset({"html"})


def stored_form(article: Article) -> Article:
    """A shallow copy of ``article`` without :data:`UNSTORED_FIELDS` (what ``index`` writes)."""
    return {k: v for k, v in article.items() if k not in UNSTORED_FIELDS}


def pack_signature(values: Any) -> bytes | None:
    """A MinHash signature as both stores keep it: 4 bytes a value, little-endian, when every value is
    an unsigned 32-bit integer (what :mod:`pipeline.dedupe` makes: 640 bytes instead of ~1.7 KB of
    JSON); None for anything else (stored as given)."""
    if isinstance(values, list) and all(type(v) is int and 0 <= v < 2**32 for v in values):
        return struct.pack(f"<{len(values)}I", *values)
    return None


def unpack_signature(data: bytes) -> list[int]:
    """The values :func:`pack_signature` packed."""
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def location_ancestors(location: dict[str, Any]) -> list[str]:
    """The string ids of a location's ``ancestors`` (empty when the record has none)."""
    found = location.get("ancestors")
    if not isinstance(found, list):
        return []
    return [a for a in found if isinstance(a, str) and a]


def admin1_of(location: dict[str, Any]) -> tuple[str, str] | None:
    """``(id, name)`` of the admin-1 division a location rolls up to, or None.

    The location's ``admin1`` (object or bare id); a location that *is* an admin-1
    division (``kind == "admin1"``) rolls up to itself. One rule for both engines.
    """
    value = location.get("admin1")
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        name = value.get("name")
        return value["id"], name if isinstance(name, str) and name else value["id"]
    if isinstance(value, str) and value:
        return value, value
    lid, name = location.get("id"), location.get("name")
    if location.get("kind") == "admin1" and isinstance(lid, str) and lid:
        return lid, name if isinstance(name, str) and name else lid
    return None


@lru_cache(maxsize=512)
def country_name(code: str) -> str:
    """Display name of an ISO 3166-1 alpha-2 code (pycountry's common name); the code when unknown."""
    import pycountry

    country = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    if country is None:
        return code
    return str(getattr(country, "common_name", None) or country.name)


@dataclass
class SearchQuery:
    """A structured search. Every filter is optional; all given filters must match (AND).

    Within one list filter (``actor_ids``, ``location_ids``, ``sources``...) any value
    matches (OR), except ``actor_ids``/``location_ids`` where each group is one
    entity's id set: ``[["a", "b"], ["c"]]`` means (a OR b) AND c. A location id also
    matches articles tagged with a place inside it (its id in that place's ``ancestors``).
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
    notes: list[str] = field(default_factory=list)  # how user names were read (for people; engines ignore it)
    facets: bool = True
    highlight: bool = True
    facet_size: int = 10


@dataclass
class SearchResult:
    """``total`` counts matching clusters when collapsing, documents otherwise.

    ``facets`` = {"actors": [{"key", "name", "count"}], "locations": [...],
    "location_countries": [...], "location_admin1": [...], "sources": [...],
    "dates": [{"key": "YYYY-MM-DD", "count"}]}. ``location_countries``: key = country
    code, name = the country's name (:func:`country_name`); ``location_admin1``: key =
    admin-1 id, name from the records (:func:`admin1_of`); each counts matching articles
    (clusters when collapsing) once per key, top N by count then key.
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


#: The fields :meth:`Store.clusters_members` returns of each member (``also_published_by``
#: may hold the member ids only).
CLUSTER_FIELDS = ("id", "cluster_id", "duplicate_of", "published_at", "also_published_by", "source", "url")


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

    def clusters_members(self, cluster_ids: Iterable[str]) -> dict[str, list[Article]]:
        """cluster id -> its stored members, with at least the fields :data:`CLUSTER_FIELDS`
        (what :func:`pipeline.dedupe.reconcile` reads); clusters with no member are absent."""

    def rewrite_clusters(self, changes: list[Article]) -> IndexReport:
        """Set ``cluster_id``, ``duplicate_of`` and ``also_published_by`` of stored articles
        (each change: ``{"id", "cluster_id", "duplicate_of", "also_published_by"}``); other
        fields are kept. The changes are searchable when the call returns."""

    def articles_after(self, after_id: str | None, size: int) -> list[Article]:
        """Up to ``size`` stored articles (cluster members included, as ``get`` returns them)
        whose id sorts after ``after_id`` (all when None), in ascending id order (code point
        order): a stable walk over the whole store, resumable from the last id seen."""

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

    def put_feed_states(self, states: Mapping[str, dict[str, Any]]) -> None:
        """``put_feed_state`` for several feeds (feed URL -> state) in one store write."""

    def all_feed_states(self) -> dict[str, dict[str, Any]]: ...

    # --- other pipeline state (never listed with the feeds) ---------------------------
    def get_state(self, key: str) -> dict[str, Any] | None: ...

    def put_state(self, key: str, state: dict[str, Any]) -> None:
        """Replace the state under ``key`` (visible to the next ``get_state`` at once)."""

    def housekeeping(self, retention_months: int = 0, now: datetime | None = None) -> dict[str, Any]:
        """Periodic upkeep (monthly indices and retention on Elasticsearch; nothing on SQLite).
        Idempotent. Returns what it did as a JSON object (``{}`` when nothing applies)."""

    def close(self) -> None: ...

    # ``with open_store(url) as store:`` closes the store on leaving the block.
    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...
