"""ElasticsearchStore: the product's index (the store contract of :mod:`pipeline.stores.base`).

Layout (``prefix`` defaults to ``news``):

- an index template ``<prefix>-articles`` over monthly indices ``<prefix>-YYYY.MM`` (the
  month of ``published_at``, UTC): one shard, mapping below, and every new monthly index
  joins the **read alias** ``<prefix>`` automatically (template ``aliases``);
- a **write alias** ``<prefix>-write`` on the current month's index: the destination of
  articles without a ``published_at``;
- a small index ``<prefix>-feeds`` for feed state (document id = hash of the feed URL).

Mapping: ``dynamic: false`` everywhere, so a stray field is kept in ``_source`` (``get`` returns what was
written) but never indexed and can never grow the mapping. Text fields ``title``/``summary``/``text`` use
the ``news_text`` analyzer (positions; highlights re-analyse the few hits shown, which costs less than
offsets on every write); ids, names, codes, source, language, tags, band keys, hashes and cluster fields are
``keyword``; dates are ``date``; ``minhash`` and ``also_published_by`` are stored only (``enabled: false``;
a 32-bit MinHash is written as base64 of :func:`~pipeline.stores.base.pack_signature`'s bytes, and read
back as the list of integers); ``_source`` is compressed with ``best_compression`` (zstd);
actors and locations are objects with keyword sub-fields (kept whole in ``_source`` for display);
``locations.ancestors`` is a keyword (the place hierarchy: a location filter matches ``locations.id`` OR
``locations.ancestors``) and ``locations.admin1`` is stored only (an object or a bare id). A hidden object
``x_newswire`` holds what is derived for search: ``point`` (``geo_point`` of every tagged location),
``actor_facet``/``location_facet``/``admin1_facet`` (``id<US>name`` keys so one terms aggregation gives a
bucket's id *and* display name; admin-1 by :func:`~pipeline.stores.base.admin1_of`) and ``rep`` (the
document is its cluster's representative). It is stripped from everything a caller sees.

Mapping versions: ``setup()`` stores :data:`MAPPING_VERSION` in the template's ``_meta``.
When it finds an older template it also adds the new fields to the existing monthly indices
(``put_mapping``: fields are only ever added); documents written before gain the derived
fields when they are written again (``newswire retag`` rewrites every document).

``news_text`` is the English chain (possessive, lower case, ASCII folding, stop words,
Porter stemming). ``setup()`` picks where its filters come from: the ``analysis-common``
module (the full distribution, docker-compose) or, on the integ-test distribution that
lacks it, the ``newswire-analysis`` plugin installed by :mod:`pipeline.devtools.esserver` (the same
Lucene filters). On a server with neither, lower case + stop words only (logged as a warning).

Writes (``index``): batches of :data:`BATCH_DOCS` articles. Per batch the store first
looks up which ids already exist (and in which monthly index) so a re-indexed article
whose ``published_at`` changed overwrites its stored copy instead of landing in a second
index: ``_id`` = article id, idempotent. ``elasticsearch.helpers.streaming_bulk`` sends
the batch (bounded by count and bytes; two concurrent streams; bodies encoded with orjson)
and retries 429/5xx, per request and per document, with exponential back-off; connection
failures are retried by
:meth:`ElasticsearchStore._bulk`; what still fails is reported in ``IndexReport.errors``
(never dropped). Every other request answered 429/502/503/504 (a full queue, a recovering node)
is sent again after a back-off (:class:`_BackoffTransport`); searches of the API are not retried.
Clusters follow the same rules as the SQLite store: a representative's
``also_published_by`` gains one entry per duplicate (an explicit list in the input is
authoritative, stored duplicates always count), a duplicate that moves to another cluster
leaves its old representative's list, and when a cluster's own article is missing (or is
itself a duplicate) its earliest member stands in as representative (an "election",
the only step that needs a refresh). A representative written earlier by this store object
(the last :data:`SOURCE_CACHE_DOCS` of the call, the last :data:`KEPT_SOURCES_DOCS` of earlier
calls: a run's earlier batches) is re-sent whole from memory with the new
list, guarded by ``if_seq_no``/``if_primary_term`` of that write: no search to locate it and no
realtime get, which can force a refresh of its shard (measured: ~20% of the server's CPU on bulk
loads); the store's own partial updates (election, ``rewrite_clusters``) drop the kept copy. Any
other representative, or one changed since (409), is read with a realtime multi-get and
changed with a partial ``doc`` update guarded by ``if_seq_no`` (the integ-test
distribution has no Painless). Earlier batches of the same call are known from memory;
the read alias is refreshed once at the end of each call. Feed and pipeline state are written without a
refresh (read back with realtime gets; ``all_feed_states`` refreshes the feeds index first).
Concurrent writers of the *same new* id with different months could still create two copies; the pipeline
writes one feed group per task, so this is accepted.

Search: ``simple_query_string`` (default operator AND) on ``title^3``, ``summary^2``,
``text``; every filter of :class:`SearchQuery` as a ``bool`` filter; collapse = filter on
``x_newswire.rep`` (one representative per cluster; this keeps ``search_after`` usable,
which Elasticsearch's field collapsing does not allow with other sorts); facets as terms
and ``date_histogram`` aggregations; an estimated ``published_at`` (``published_at_estimated``:
the fetch time of an undated item) is shown but counts as no date: outside every date
filter and the date histogram, after every dated article in date order; ``<mark>`` highlights;
paging with ``search_after`` and, once a second page is asked for, a point in time carried in the cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from typing import Any

from elastic_transport import Transport, TransportApiResponse
from elastic_transport.client_utils import DEFAULT
from elasticsearch import ApiError, ConnectionTimeout, Elasticsearch, NotFoundError, TransportError, helpers
from elasticsearch.serializer import OrjsonSerializer

from pipeline.clusters import (
    Placement,
    cluster_of,
    merge_publications,
    plan_batch,
    publication,
    representative_key,
)
from pipeline.records import parse_iso
from pipeline.stores.base import (
    CLUSTER_FIELDS,
    Article,
    ClusterRef,
    IndexReport,
    SearchQuery,
    SearchResult,
    SearchTimeout,
    admin1_of,
    country_name,
    pack_signature,
    stored_form,
    unpack_signature,
)

log = logging.getLogger(__name__)


class _QuietTransportRetries(logging.Filter):
    """The client logs every retried request at WARNING with its traceback; when the server
    is gone that is hundreds of tracebacks for one outage. Retries are logged at DEBUG
    with the node pool's back-off notes (their outcome reaches the caller as one error) and
    other records lose the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and str(record.msg).startswith(("Retrying request", "Node ")):
            return logging.getLogger("elastic_transport").isEnabledFor(logging.DEBUG)
        if not logging.getLogger("elastic_transport").isEnabledFor(logging.DEBUG):
            record.exc_info = None
            record.exc_text = None
        return True


for _name in ("elastic_transport.transport", "elastic_transport.node_pool"):
    if not any(isinstance(f, _QuietTransportRetries) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_QuietTransportRetries())

BATCH_DOCS = 2000  # articles per write batch (lookup + bulk + representative updates)
BULK_CHUNK_DOCS = 500  # documents per _bulk request
BULK_CHUNK_BYTES = 8 * 1024 * 1024  # bytes per _bulk request
BULK_STREAMS = 2  # concurrent _bulk requests of one batch
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRIES = 4
INITIAL_BACKOFF = 0.5
#: streaming_bulk's retries of whole requests and single documents (429/5xx), with back-off
BULK_RETRIES: dict[str, Any] = {
    "max_retries": MAX_RETRIES,
    "initial_backoff": INITIAL_BACKOFF,
    "max_backoff": 8,
    "retry_on_status": tuple(RETRY_STATUSES),
}
PIT_KEEP_ALIVE = "2m"
HIDDEN = "x_newswire"
SEP = "\u001f"  # joins id and display name in facet keys
MAPPING_VERSION = 4  # 2: no postings offsets; 3: Porter chain on every server; 4: place hierarchy
LOOKUP_CHUNK = 1000
#: band keys per lookup query (index.max_terms_count is 65,536): a stored article matching keys of
#: several chunks is read once per chunk
BAND_KEYS_CHUNK = 50_000
SCAN_PAGE = 10000  # hits of the first page of an any-order scan (the server's default result window)
SOURCE_CACHE_DOCS = 5000  # representatives whose written _source an index() call keeps (see _CallMemory)
KEPT_SOURCES_DOCS = 1000  # of them, kept by the store for its next index() calls (a run's later batches)


class _BackoffTransport(Transport):
    """The store client's transport: a request answered with a busy status (429, 502, 503,
    504: a full queue, a node starting or recovering) is sent again after a back-off of
    :data:`INITIAL_BACKOFF` doubled per attempt (at most 8 s), up to :data:`MAX_RETRIES` times.

    elastic_transport sends a retried status again at once (its back-off covers connection
    errors only), which an overloaded cluster answers the same way. ``_bulk`` requests go out
    without status retries here: ``streaming_bulk`` retries them (whole or per document) with the
    same back-off. A request with ``retry_on_status=()`` (searches: bounded in time) is not retried.
    """

    def perform_request(self, method: str, target: str, **kwargs: Any) -> TransportApiResponse:
        given = kwargs.get("retry_on_status", DEFAULT)
        statuses = self.retry_on_status if given is DEFAULT else given
        inner = {**kwargs, "retry_on_status": ()}  # connection errors are still retried inside
        if not statuses or "/_bulk" in target.split("?", 1)[0]:
            return super().perform_request(method, target, **inner)
        for attempt in range(MAX_RETRIES + 1):
            resp = super().perform_request(method, target, **inner)
            if resp.meta.status not in statuses or attempt == MAX_RETRIES:
                return resp
            log.debug("%s %s answered %d; retrying", method, target, resp.meta.status)
            time.sleep(min(8.0, INITIAL_BACKOFF * 2**attempt))
        return resp


KEYWORD = {"type": "keyword"}
STORED_ONLY = {"type": "object", "enabled": False}


def _text_field() -> dict[str, Any]:
    return {"type": "text", "analyzer": "news_text"}


MAPPING: dict[str, Any] = {
    "dynamic": False,
    "_meta": {"newswire_mapping_version": MAPPING_VERSION},
    "properties": {
        "id": KEYWORD,
        "url": KEYWORD,
        "feed_entry_id": KEYWORD,
        "source": {
            "type": "object",
            "dynamic": False,
            "properties": {"feed": KEYWORD, "name": KEYWORD, "domain": KEYWORD},
        },
        "title": _text_field(),
        "summary": _text_field(),
        "text": _text_field(),
        "language": KEYWORD,
        "published_at": {"type": "date"},
        "published_at_estimated": {"type": "boolean"},
        "fetched_at": {"type": "date"},
        "authors": KEYWORD,
        "feed_tags": KEYWORD,
        "content_hash": KEYWORD,
        "minhash": STORED_ONLY,
        "lsh_bands": {"type": "keyword", "doc_values": False},
        "cluster_id": KEYWORD,
        "duplicate_of": KEYWORD,
        "also_published_by": STORED_ONLY,
        "actors": {
            "type": "object",
            "dynamic": False,
            "properties": {
                "id": KEYWORD,
                "name": KEYWORD,
                "kind": KEYWORD,
                "mentions": KEYWORD,
                "count": {"type": "integer"},
            },
        },
        "locations": {
            "type": "object",
            "dynamic": False,
            "properties": {
                "id": KEYWORD,
                "name": KEYWORD,
                "kind": KEYWORD,
                "country_code": KEYWORD,
                "mentions": KEYWORD,
                "count": {"type": "integer"},
                "lat": {"type": "float", "index": False},
                "lon": {"type": "float", "index": False},
                "ancestors": KEYWORD,
                "admin1": STORED_ONLY,
            },
        },
        HIDDEN: {
            "type": "object",
            "dynamic": False,
            "properties": {
                "point": {"type": "geo_point"},
                "actor_facet": KEYWORD,
                "location_facet": KEYWORD,
                "admin1_facet": KEYWORD,
                "rep": {"type": "boolean"},
            },
        },
    },
}

FEEDS_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {"url": KEYWORD, "updated_at": {"type": "date"}, "state": STORED_ONLY},
}


# The token filters of the ``english`` chain, by what the server offers: the full
# distribution's analysis-common module, or the newswire-analysis plugin that
# pipeline.devtools.esserver installs into the integ-test distribution (same Lucene filters).
ENGLISH_FILTERS: dict[str, dict[str, dict[str, str]]] = {
    "english": {
        "news_possessive": {"type": "stemmer", "language": "possessive_english"},
        "news_folding": {"type": "asciifolding"},
        "news_stemmer": {"type": "stemmer", "language": "english"},
    },
    "newswire": {
        "news_possessive": {"type": "newswire_possessive"},
        "news_folding": {"type": "newswire_asciifolding"},
        "news_stemmer": {"type": "newswire_porter_stem"},
    },
}


def english_analysis(kind: str) -> dict[str, Any]:
    """The ``news_text`` analyzer for a server that offers ``kind`` ("english", "newswire", "basic")."""
    filters: dict[str, Any] = {"news_stop": {"type": "stop", "stopwords": "_english_"}}
    if kind in ENGLISH_FILTERS:
        filters |= ENGLISH_FILTERS[kind]
        chain = ["news_possessive", "lowercase", "news_folding", "news_stop", "news_stemmer"]
    else:
        chain = ["lowercase", "news_stop"]
    return {
        "analyzer": {"news_text": {"type": "custom", "tokenizer": "standard", "filter": chain}},
        "filter": filters,
    }


def _merged_publications(
    source: dict[str, Any], rep_id: str, adds: dict[str, Any], removes: dict[str, set[str]]
) -> list[dict[str, Any]] | None:
    """A representative's ``also_published_by`` after this batch's additions and removals, or None when it
    does not change."""
    current = source.get("also_published_by")
    merged = merge_publications(current, adds.get(rep_id), drop=removes.get(rep_id, set()))
    return None if merged == (current or []) else merged


def _members_query(cluster_ids: list[str]) -> dict[str, Any]:
    """Every member of these clusters: ``cluster_id`` among them, or an article that is its own cluster (no
    ``cluster_id`` yet) whose id is among them."""
    return {
        "bool": {
            "should": [
                {"terms": {"cluster_id": cluster_ids}},
                {
                    "bool": {
                        "filter": [{"ids": {"values": cluster_ids}}],
                        "must_not": [{"exists": {"field": "cluster_id"}}],
                    }
                },
            ]
        }
    }


def _text_query(text: str) -> dict[str, Any]:
    """The full-text part of a search: every word (``and``), title and summary weigh more."""
    return {
        "simple_query_string": {
            "query": text,
            "fields": ["title^3", "summary^2", "text"],
            "default_operator": "and",
            "lenient": True,
        }
    }


def _sort(by_score: bool) -> list[Any]:
    """Relevance then id; or newest first, undated and estimated dates last, then id."""
    if by_score:
        return [{"_score": "desc"}, {"id": "asc"}]
    return [
        {"published_at_estimated": {"order": "asc", "missing": "_first"}},  # estimated dates last
        {"published_at": {"order": "desc", "missing": "_last"}},
        {"id": "asc"},
    ]


class ElasticsearchStore:
    """The Store protocol on Elasticsearch 9 (see the module docstring for the design)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "news",
        username: str | None = None,
        password: str | None = None,
        request_timeout: float = 60.0,
        search_timeout: float = 10.0,
    ) -> None:
        # several nodes of one cluster: comma-separated ("http://a:9200,http://b:9200"); the
        # client spreads requests over them and retries another node when one does not answer
        self.hosts = [h.strip().rstrip("/") for h in url.split(",") if h.strip()]
        self.url = ",".join(self.hosts)
        self.search_timeout = search_timeout
        self.prefix = prefix.lower()
        auth = (username, password or "") if username else None
        self.client = Elasticsearch(
            self.hosts,
            basic_auth=auth,
            request_timeout=request_timeout,
            max_retries=MAX_RETRIES,
            retry_on_timeout=True,
            retry_on_status=tuple(sorted(RETRY_STATUSES - {500})),  # with a back-off: _BackoffTransport
            transport_class=_BackoffTransport,
            serializer=OrjsonSerializer(),  # bulk bodies are most of the client's CPU: half with orjson
        )
        self.read_alias = self.prefix
        self.write_alias = f"{self.prefix}-write"
        self.template = f"{self.prefix}-articles"
        self.feeds_index = f"{self.prefix}-feeds"
        self.analysis_kind: str | None = None
        # representatives written by earlier index() calls: id -> (index, (_seq_no, _primary_term), _source)
        self._sources: OrderedDict[str, tuple[str, tuple[int, int], dict[str, Any]]] = OrderedDict()

    # --- naming -------------------------------------------------------------------------
    def index_for(self, when: datetime | None) -> str:
        """The monthly index of a UTC datetime (the write alias when there is none)."""
        if when is None:
            return self.write_alias
        return f"{self.prefix}-{when.year:04d}.{when.month:02d}"

    def index_patterns(self) -> list[str]:
        return [f"{self.prefix}-{d}*" for d in "0123456789"]

    # --- setup --------------------------------------------------------------------------
    def _detect_analysis(self) -> str:
        for kind, filters in ENGLISH_FILTERS.items():
            try:
                self.client.indices.analyze(
                    tokenizer="standard", filter=[filters["news_stemmer"]], text="strikes"
                )
                return kind
            except ApiError:
                continue
        log.warning(
            "Elasticsearch at %s has neither the analysis-common module nor the newswire-analysis plugin: "
            "text is indexed without stemming",
            self.url,
        )
        return "basic"

    def setup(self) -> None:
        """Index template, read/write aliases, the current month's index, the feeds index. Idempotent."""
        existing = self.client.options(ignore_status=404).indices.get_index_template(name=self.template)
        templates = existing.get("index_templates", []) if existing.meta.status == 200 else []
        meta = templates[0]["index_template"].get("_meta", {}) if templates else {}
        found_version = meta.get("newswire_mapping_version")
        if isinstance(found_version, int) and found_version >= 3 and meta.get("analysis"):
            self.analysis_kind = str(meta["analysis"])  # keep what the existing indices use
        else:
            self.analysis_kind = self._detect_analysis()
        self.client.indices.put_index_template(
            name=self.template,
            index_patterns=self.index_patterns(),
            priority=200,
            meta={"newswire_mapping_version": MAPPING_VERSION, "analysis": self.analysis_kind},
            template={
                "settings": {
                    "number_of_shards": 1,
                    "auto_expand_replicas": "0-1",
                    # stored fields (_source) compressed with zstd instead of LZ4: 26% smaller index
                    # (400 real articles, force-merged: 9.3 -> 6.9 KB each; docs/benchmarks.md)
                    "codec": "best_compression",
                    # the write path refreshes explicitly after each index() call
                    "refresh_interval": "5s",
                    "analysis": english_analysis(self.analysis_kind),
                },
                "mappings": MAPPING,
                "aliases": {self.read_alias: {}},
            },
        )
        if templates and found_version != MAPPING_VERSION:  # indices made by an older template
            self.client.indices.put_mapping(
                index=self.index_patterns(),
                allow_no_indices=True,
                ignore_unavailable=True,
                dynamic=MAPPING["dynamic"],
                properties=MAPPING["properties"],
                meta=MAPPING["_meta"],
            )
        current = self.index_for(datetime.now(UTC))
        self._create_index(current)
        if not self.client.indices.exists_alias(name=self.write_alias):
            try:
                self.client.indices.update_aliases(
                    actions=[{"add": {"index": current, "alias": self.write_alias, "is_write_index": True}}]
                )
            except ApiError as exc:  # a concurrent setup() won the race
                if not self.client.indices.exists_alias(name=self.write_alias):
                    raise RuntimeError(f"cannot create write alias {self.write_alias}: {exc}") from exc
        self._create_index(
            self.feeds_index,
            settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"},
            mappings=FEEDS_MAPPING,
        )

    def _create_index(self, name: str, **body: Any) -> None:
        if self.client.indices.exists(index=name):
            return
        try:
            self.client.indices.create(index=name, **body)
        except ApiError as exc:
            if "resource_already_exists_exception" not in str(exc):
                raise

    def housekeeping(self, retention_months: int = 0, now: datetime | None = None) -> dict[str, Any]:
        """Monthly upkeep: the write alias moves to this month's index, and monthly indices
        whose month is more than ``retention_months`` before this one are deleted (0 keeps
        all). Idempotent. Returns ``{"write_index", "dropped": [index names]}``."""
        now = now or datetime.now(UTC)
        current = self.index_for(now)
        self._create_index(current)
        found = self.client.options(ignore_status=404).indices.get_alias(name=self.write_alias)
        holders = sorted(found.body) if found.meta.status == 200 else []
        if holders != [current]:
            actions: list[dict[str, Any]] = [
                {"remove": {"index": i, "alias": self.write_alias}} for i in holders
            ]
            actions.append({"add": {"index": current, "alias": self.write_alias, "is_write_index": True}})
            self.client.indices.update_aliases(actions=actions)
        dropped: list[str] = []
        if retention_months > 0:
            monthly = re.compile(rf"^{re.escape(self.prefix)}-(\d{{4}})\.(\d{{2}})$")
            oldest_kept = now.year * 12 + now.month - 1 - retention_months
            names = self.client.indices.get(index=self.index_patterns(), allow_no_indices=True).body
            for name in sorted(names):
                m = monthly.match(name)
                if m and int(m.group(1)) * 12 + int(m.group(2)) - 1 < oldest_kept and name != current:
                    self.client.indices.delete(index=name)
                    dropped.append(name)
        if dropped:
            self._sources.clear()  # kept representatives may have been in them
        return {"write_index": current, "dropped": dropped}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ElasticsearchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers ------------------------------------------------------------------------
    @staticmethod
    def _strip(source: dict[str, Any]) -> Article:
        source.pop(HIDDEN, None)
        if isinstance(source.get("minhash"), str):
            source["minhash"] = _signature(source["minhash"])
        return source

    def _search(self, _client: Elasticsearch | None = None, **body: Any) -> dict[str, Any]:
        resp = (
            (_client or self.client)
            .options(ignore_status=404)
            .search(index=self.read_alias, ignore_unavailable=True, allow_no_indices=True, **body)
        )
        if resp.meta.status == 404:
            return {"hits": {"hits": [], "total": {"value": 0}}}
        return dict(resp)

    def _scan(
        self, query: dict[str, Any], source: list[str] | bool = True, any_order: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every matching document (id order), paged with search_after.

        ``any_order``: first one page in index order (``_doc``), which the server reads sequentially
        (~40% less server CPU than id order for hundreds of hits: stored fields are read block by block);
        only when it is full does the scan start again in id order."""
        if any_order:
            hits = self._search(query=query, size=SCAN_PAGE, sort=["_doc"], _source=source)["hits"]["hits"]
            if len(hits) < SCAN_PAGE:
                yield from hits
                return
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"query": query, "size": 5000, "sort": [{"id": "asc"}], "_source": source}
            if after is not None:
                body["search_after"] = after
            hits = self._search(**body)["hits"]["hits"]
            yield from hits
            if len(hits) < 5000:
                return
            after = hits[-1]["sort"]

    # --- writing ------------------------------------------------------------------------
    def index(self, articles: Iterable[Article]) -> IndexReport:
        report = IndexReport()
        memory = _CallMemory(self._sources)
        iterator = iter(articles)
        try:
            while True:
                batch = list(islice(iterator, BATCH_DOCS))
                if not batch:
                    break
                self._index_batch(batch, report, memory)
        finally:
            while len(self._sources) > KEPT_SOURCES_DOCS:  # the most recent stay for the next call
                self._sources.popitem(last=False)
            if memory.written:  # one refresh per call: the call's writes become searchable
                self.client.options(ignore_status=404).indices.refresh(
                    index=self.read_alias, ignore_unavailable=True
                )
        return report

    def _index_batch(self, batch: list[Article], report: IndexReport, memory: _CallMemory) -> None:
        """One batch, with the cluster rules of the SQLite store (see its module docstring).

        Earlier batches of the same call are not refreshed yet: what they wrote is taken from
        ``memory``; what earlier calls wrote is found by search; representative documents are
        read with realtime multi-gets. A refresh happens before a representative election only.
        """
        latest = self._latest(batch, report)
        if not latest:
            return
        ids = list(latest)
        existing = self._known(ids, memory)
        # representatives keep their stored publishers and gain those of already stored duplicates
        rep_ids = [aid for aid, (a, _) in latest.items() if not a.get("duplicate_of")]
        stored_members = self._members_of(rep_ids, memory, exclude=set(ids))
        docs: dict[str, dict[str, Any]] = {}
        for aid, (article, _) in latest.items():
            doc = stored_form(article)
            if (packed := pack_signature(doc.get("minhash"))) is not None:
                doc["minhash"] = base64.b64encode(packed).decode("ascii")  # 856 characters, not ~1.7 KB
            if not article.get("duplicate_of"):
                given = article.get("also_published_by")
                if not isinstance(given, list):
                    given = existing[aid]["entries"] if aid in existing else []
                entries = merge_publications(given, stored_members.get(aid, []), drop=[aid])
                if entries or "also_published_by" in article:
                    doc["also_published_by"] = entries
            docs[aid] = doc
        plan = plan_batch(
            (
                (Placement(aid, cluster_of(a), a.get("duplicate_of") or None, a.get("published_at")), a)
                for aid, (a, _) in latest.items()
            ),
            {
                aid: Placement(aid, old["cluster"], old["dup"], old["published_at"])
                for aid, old in existing.items()
            },
            stored_members,
        )
        for rep, added in list(plan.adds.items()):  # representatives in this batch: added before writing
            rep_doc = docs.get(rep)
            if rep_doc is not None and rep_doc.get("duplicate_of") in (None, rep):
                rep_doc["also_published_by"] = merge_publications(rep_doc.get("also_published_by"), added)
                del plan.adds[rep]
        actions: list[dict[str, Any]] = []
        for aid, doc in docs.items():
            index = existing[aid]["_index"] if aid in existing else self.index_for(latest[aid][1])
            doc[HIDDEN] = _derived(doc, not doc.get("duplicate_of") and cluster_of(doc) == aid)
            actions.append({"_op_type": "index", "_index": index, "_id": aid, "_source": doc})
        ok_ids = self._bulk(actions, report)
        self._remember(actions, ok_ids, plan.moved, memory)
        adds = {rep: [e for e in entries if e["id"] in ok_ids] for rep, entries in plan.adds.items()}
        touched = plan.touched | self._publications(adds, plan.moved, report, memory)
        if touched:
            self._elect(touched)

    @staticmethod
    def _latest(batch: list[Article], report: IndexReport) -> dict[str, tuple[Article, datetime | None]]:
        """id -> (article, parsed date) of a batch, the last copy of an id winning; bad ones reported."""
        latest: dict[str, tuple[Article, datetime | None]] = {}
        for article in batch:
            aid = article.get("id") if isinstance(article, dict) else None
            if not isinstance(aid, str) or not aid:
                report.errors.append(
                    {"id": aid if isinstance(aid, str) else None, "error": "article has no string 'id'"}
                )
                continue
            try:
                when = _parse_date(article.get("published_at"))
            except ValueError as exc:
                report.errors.append({"id": aid, "error": f"published_at: {exc}"})
                continue
            if article.get("minhash") is not None and not isinstance(article["minhash"], list):
                report.errors.append({"id": aid, "error": "minhash must be a list of integers"})
                continue
            latest.pop(aid, None)  # the same id twice in one batch: the last copy wins
            latest[aid] = (article, when)
        return latest

    @staticmethod
    def _remember(
        actions: list[dict[str, Any]],
        ok_ids: dict[str, tuple[int, int] | None],
        moved: dict[str, set[str]],
        memory: _CallMemory,
    ) -> None:
        """Record in ``memory`` what this batch wrote (later batches of the call read it there)."""
        for action in actions:
            aid = action["_id"]
            if aid not in ok_ids:
                continue
            written: dict[str, Any] = action["_source"]
            memory.written[aid] = {
                "_index": action["_index"],
                "entries": written.get("also_published_by"),
                "cluster": cluster_of(written),
                "dup": written.get("duplicate_of") or None,
                "published_at": written.get("published_at"),
                "seq": ok_ids[aid],
            }
            memory.remember(aid, written)
            if written.get("duplicate_of"):
                memory.members.setdefault(cluster_of(written), {})[aid] = publication(written)
            for old_cluster, member_ids in moved.items():
                if aid in member_ids and old_cluster != cluster_of(written):
                    memory.members.get(old_cluster, {}).pop(aid, None)

    def _bulk(self, actions: list[dict[str, Any]], report: IndexReport) -> dict[str, tuple[int, int] | None]:
        """Send actions; retry 429/5xx (per request and per document) and connection errors
        with exponential back-off; report what still fails. Returns the ids written with their
        ``(_seq_no, _primary_term)``.

        The actions go out as :data:`BULK_STREAMS` concurrent ``streaming_bulk`` streams over
        interleaved slices, so the server works on one request while the client encodes the
        next. Order between streams does not matter: a batch holds each id once.
        """
        ok: dict[str, tuple[int, int] | None] = {}
        todo = actions
        for attempt in range(MAX_RETRIES + 1):
            parts = (
                [todo[i::BULK_STREAMS] for i in range(BULK_STREAMS)]
                if len(todo) > BULK_CHUNK_DOCS
                else [todo]
            )
            with ThreadPoolExecutor(max_workers=len(parts)) as pool:
                outcomes = list(pool.map(self._stream, parts))
            failure: Exception | None = None
            seen: set[str] = set()
            for items, exc in outcomes:
                failure = failure or exc
                for success, item in items:
                    op, info = next(iter(item.items()))
                    doc_id = info.get("_id")
                    seen.add(doc_id)
                    if success:
                        seq, term = info.get("_seq_no"), info.get("_primary_term")
                        ok[doc_id] = (seq, term) if isinstance(seq, int) and isinstance(term, int) else None
                        if op == "index":
                            report.indexed += 1
                            if info.get("result") == "created":
                                report.created += 1
                    else:
                        report.errors.append(
                            {"id": doc_id, "error": _error_text(info.get("status"), info.get("error"))}
                        )
            if failure is None:
                return ok
            todo = [a for a in todo if a["_id"] not in seen]
            if attempt == MAX_RETRIES:
                for action in todo:
                    report.errors.append({"id": action["_id"], "error": f"bulk request failed: {failure}"})
                return ok
            log.warning("bulk request failed (%s); retrying %d documents", failure, len(todo))
            time.sleep(min(8.0, INITIAL_BACKOFF * 2**attempt))
        return ok

    def _stream(
        self, actions: list[dict[str, Any]]
    ) -> tuple[list[tuple[bool, dict[str, Any]]], Exception | None]:
        """One ``streaming_bulk`` over ``actions``: its per-document results, and the
        connection failure that cut it short (after the client's own retries), if any."""
        items: list[tuple[bool, dict[str, Any]]] = []
        try:
            for success, item in helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=BULK_CHUNK_DOCS,
                max_chunk_bytes=BULK_CHUNK_BYTES,
                **BULK_RETRIES,
                raise_on_error=False,
                raise_on_exception=False,
                yield_ok=True,
            ):
                items.append((success, item))
        except (TransportError, ApiError) as exc:
            return items, exc
        return items, None

    def _lookup(self, ids: list[str], fields: list[str] | bool) -> dict[str, dict[str, Any]]:
        """id -> search hit (``_index``, ``_source``) of stored articles (refreshed writes only)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            resp = self._search(query={"ids": {"values": chunk}}, size=len(chunk), _source=fields)
            for hit in resp["hits"]["hits"]:
                found[hit["_id"]] = hit
        return found

    def _known(self, ids: list[str], memory: _CallMemory) -> dict[str, dict[str, Any]]:
        """id -> {"_index", "entries", "cluster", "dup", "published_at"} of stored articles."""
        out = {i: memory.written[i] for i in ids if i in memory.written}
        fields = ["also_published_by", "cluster_id", "duplicate_of", "published_at"]
        for aid, hit in self._lookup([i for i in ids if i not in out], fields).items():
            src = hit.get("_source") or {}
            out[aid] = {
                "_index": hit["_index"],
                "entries": src.get("also_published_by"),
                "cluster": src.get("cluster_id") or aid,
                "dup": src.get("duplicate_of") or None,
                "published_at": src.get("published_at"),
            }
        return out

    def _members_of(
        self, rep_ids: list[str], memory: _CallMemory, exclude: set[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Stored duplicates (``duplicate_of`` set) of the clusters ``rep_ids``, minus ``exclude``."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for start in range(0, len(rep_ids), LOOKUP_CHUNK):
            chunk = rep_ids[start : start + LOOKUP_CHUNK]
            query = {
                "bool": {"filter": [{"terms": {"cluster_id": chunk}}, {"exists": {"field": "duplicate_of"}}]}
            }
            for hit in self._scan(query, ["id", "source", "url", "published_at", "cluster_id"]):
                src = hit["_source"]
                if src["id"] not in memory.written:  # rewritten in this call: memory is newer
                    out.setdefault(src["cluster_id"], {})[src["id"]] = publication(src)
        for rep_id in rep_ids:
            out.setdefault(rep_id, {}).update(memory.members.get(rep_id, {}))
        return {
            rep: [e for mid, e in members.items() if mid not in exclude and mid != rep]
            for rep, members in out.items()
            if any(mid not in exclude and mid != rep for mid in members)
        }

    def _publications(
        self,
        adds: dict[str, list[dict[str, Any]]],
        removes: dict[str, set[str]],
        report: IndexReport,
        memory: _CallMemory,
    ) -> set[str]:
        """Add/remove ``also_published_by`` entries of stored representatives (realtime
        multi-get, partial updates guarded by ``if_seq_no``). Returns the clusters whose
        representative is missing or is itself a duplicate (they need an election)."""
        wanted = [r for r in dict.fromkeys([*adds, *removes]) if adds.get(r) or removes.get(r)]
        if not wanted:
            return set()
        wanted = self._publications_from_memory(wanted, adds, removes, report, memory)
        indices = {r: memory.written[r]["_index"] for r in wanted if r in memory.written}
        for rep_id, hit in self._lookup([r for r in wanted if r not in indices], False).items():
            indices[rep_id] = hit["_index"]
        missing = {r for r in wanted if adds.get(r) and r not in indices}
        pending = [r for r in wanted if r in indices]
        for _attempt in range(MAX_RETRIES):
            if not pending:
                break
            docs = [
                {"_index": indices[r], "_id": r, "_source": ["also_published_by", "duplicate_of"]}
                for r in pending
            ]
            actions = []
            for got in self.client.mget(docs=docs)["docs"]:
                rep_id = got["_id"]
                src = got.get("_source") or {}
                if not got.get("found") or src.get("duplicate_of") not in (None, rep_id):
                    if adds.get(rep_id):
                        missing.add(rep_id)
                    continue
                merged = _merged_publications(src, rep_id, adds, removes)
                if merged is None:
                    continue
                actions.append(
                    {
                        "_op_type": "update",
                        "_index": got["_index"],
                        "_id": rep_id,
                        "if_seq_no": got["_seq_no"],
                        "if_primary_term": got["_primary_term"],
                        "doc": {"also_published_by": merged},
                    }
                )
                if rep_id in memory.written:
                    memory.written[rep_id]["entries"] = merged
                memory.sources.pop(rep_id, None)  # its stored _source no longer matches the cache
            conflicts: list[str] = []
            for success, item in helpers.streaming_bulk(
                self.client, actions, raise_on_error=False, raise_on_exception=False, **BULK_RETRIES
            ):
                info = item["update"]
                if success:
                    continue
                if info.get("status") == 409:
                    conflicts.append(info["_id"])
                else:
                    report.errors.append(
                        {
                            "id": info["_id"],
                            "error": "also_published_by update: "
                            + _error_text(info.get("status"), info.get("error")),
                        }
                    )
            pending = conflicts
        for rep_id in pending:
            report.errors.append(
                {"id": rep_id, "error": "also_published_by update: version conflicts persisted"}
            )
        return missing

    def _publications_from_memory(
        self,
        wanted: list[str],
        adds: dict[str, list[dict[str, Any]]],
        removes: dict[str, set[str]],
        report: IndexReport,
        memory: _CallMemory,
    ) -> list[str]:
        """The fast path of :meth:`_publications` for representatives this store wrote (this call
        or an earlier one) and still holds in ``memory.sources``: the whole document is re-sent with
        the new list, guarded by ``if_seq_no``/``if_primary_term`` of that write. No search to
        locate it and no realtime get (which can force a refresh of the shard). Returns the ids
        left for the multi-get path (not in memory, or changed since: version conflict)."""
        rest: list[str] = []
        actions: list[dict[str, Any]] = []
        for rep_id in wanted:
            cached = memory.sources.get(rep_id)
            if cached is None:
                rest.append(rep_id)
                continue
            index, (seq_no, term), source = cached
            merged = _merged_publications(source, rep_id, adds, removes)
            if merged is None:
                continue
            actions.append(
                {
                    "_op_type": "index",
                    "_index": index,
                    "_id": rep_id,
                    "if_seq_no": seq_no,
                    "if_primary_term": term,
                    "_source": {**source, "also_published_by": merged},
                }
            )
        if not actions:
            return rest
        by_id = {a["_id"]: a for a in actions}
        items, failure = self._stream(actions)
        if failure is not None:
            raise failure
        for success, item in items:
            info = next(iter(item.values()))
            rep_id = info.get("_id")
            action = by_id.get(rep_id)
            if action is None:
                continue
            seq, term = info.get("_seq_no"), info.get("_primary_term")
            known = memory.written.get(rep_id)
            if success:
                memory.sources.pop(rep_id, None)
                if known is not None:
                    known["entries"] = action["_source"]["also_published_by"]
                    known["seq"] = None
                if isinstance(seq, int) and isinstance(term, int):
                    memory.sources[rep_id] = (action["_index"], (seq, term), action["_source"])
                    if known is not None:
                        known["seq"] = (seq, term)
            else:
                memory.sources.pop(rep_id, None)
                if info.get("status") == 409:  # changed by someone else since our write: read it
                    rest.append(rep_id)
                else:
                    report.errors.append(
                        {
                            "id": rep_id,
                            "error": "also_published_by update: "
                            + _error_text(info.get("status"), info.get("error")),
                        }
                    )
        return rest

    def _elect(self, clusters: set[str]) -> None:
        """Exactly one representative per cluster: the cluster's own article if it is not a
        duplicate, else the earliest member (undated last, then id)."""
        self.client.options(ignore_status=404).indices.refresh(index=self.read_alias, ignore_unavailable=True)
        chunk = sorted(clusters)
        query = _members_query(chunk)
        by_cluster: dict[str, list[dict[str, Any]]] = {}
        for hit in self._scan(query, ["id", "cluster_id", "duplicate_of", "published_at", f"{HIDDEN}.rep"]):
            src = hit["_source"]
            by_cluster.setdefault(src.get("cluster_id") or src["id"], []).append(
                {**src, "_index": hit["_index"]}
            )
        actions = []
        for cluster, docs in by_cluster.items():
            winner = min(docs, key=partial(representative_key, cluster=cluster))["id"]
            for d in docs:
                want = d["id"] == winner
                if bool((d.get(HIDDEN) or {}).get("rep")) != want:
                    actions.append(
                        {
                            "_op_type": "update",
                            "_index": d["_index"],
                            "_id": d["id"],
                            "doc": {HIDDEN: {"rep": want}},
                        }
                    )
        if actions:
            for action in actions:  # their kept _source is no longer what is stored
                self._sources.pop(action["_id"], None)
            self._bulk(actions, IndexReport())
            self.client.options(ignore_status=404).indices.refresh(
                index=self.read_alias, ignore_unavailable=True
            )

    # --- reading ------------------------------------------------------------------------
    def get(self, article_id: str) -> Article | None:
        hits = self._search(query={"ids": {"values": [article_id]}}, size=1)["hits"]["hits"]
        return self._strip(hits[0]["_source"]) if hits else None

    def count(self) -> int:
        resp = self.client.options(ignore_status=404).count(
            index=self.read_alias, ignore_unavailable=True, allow_no_indices=True
        )
        return int(resp.get("count", 0)) if resp.meta.status == 200 else 0

    def cluster_members(self, cluster_id: str) -> list[Article]:
        resp = self._search(
            query=_members_query([cluster_id]),
            size=10000,
            sort=[
                {f"{HIDDEN}.rep": {"order": "desc"}},
                {"published_at": {"order": "asc", "missing": "_last"}},
                {"id": "asc"},
            ],
        )
        return [self._strip(h["_source"]) for h in resp["hits"]["hits"]]

    def clusters_members(self, cluster_ids: Iterable[str]) -> dict[str, list[Article]]:
        """One search (paged by 5000, 1000 clusters a query) with a ``_source`` filter."""
        wanted = sorted({c for c in cluster_ids if isinstance(c, str)})
        out: dict[str, list[Article]] = {}
        fields = [f for f in CLUSTER_FIELDS if f != "also_published_by"] + ["also_published_by.id"]
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            query = _members_query(chunk)
            for hit in self._scan(query, fields, any_order=True):
                src = hit["_source"]
                out.setdefault(src.get("cluster_id") or src["id"], []).append(src)
        return out

    def rewrite_clusters(self, changes: list[Article]) -> IndexReport:
        """Partial ``update`` actions (cluster fields and the representative flag) in one bulk
        call, located with one ids search, then one refresh."""
        report = IndexReport()
        by_id = {c["id"]: c for c in changes if isinstance(c.get("id"), str)}
        if not by_id:
            return report
        located = self._lookup(list(by_id), False)
        for aid in by_id:  # their kept _source is no longer what is stored
            self._sources.pop(aid, None)
        actions = []
        for aid, change in by_id.items():
            if aid not in located:
                report.errors.append({"id": aid, "error": "not stored"})
                continue
            dup = change.get("duplicate_of") or None
            cluster = change.get("cluster_id") or aid
            doc = {
                "cluster_id": cluster,
                "duplicate_of": dup,
                "also_published_by": change.get("also_published_by") or [],
                HIDDEN: {"rep": dup is None and cluster == aid},
            }
            actions.append({"_op_type": "update", "_index": located[aid]["_index"], "_id": aid, "doc": doc})
        ok = self._bulk(actions, report)
        report.indexed += len(ok)
        if ok:
            self.client.options(ignore_status=404).indices.refresh(
                index=self.read_alias, ignore_unavailable=True
            )
        return report

    def articles_after(self, after_id: str | None, size: int) -> list[Article]:
        size = max(0, int(size))
        if not size:
            return []
        body: dict[str, Any] = {"query": {"match_all": {}}, "size": size, "sort": [{"id": "asc"}]}
        if after_id is not None:
            body["search_after"] = [after_id]
        return [self._strip(h["_source"]) for h in self._search(**body)["hits"]["hits"]]

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        return set(self._lookup(wanted, False)) if wanted else set()

    def find_content_hashes(self, hashes: Iterable[str]) -> dict[str, ClusterRef]:
        """One hit per hash, chosen by the server (``collapse`` on ``content_hash``): first among the
        articles that are no duplicate, then among the others, the earliest (``published_at``, undated
        last; the server compares milliseconds), then the smallest id: the order of
        :func:`~pipeline.clusters.representative_key`. The copies of a story share its hash: reading
        them all (their ``_source``) cost the server ~4x more in an ingestion run."""
        wanted = list(dict.fromkeys(h for h in hashes if isinstance(h, str)))
        out: dict[str, ClusterRef] = {}
        is_dup = {"exists": {"field": "duplicate_of"}}
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            for dups in (False, True):
                todo = [h for h in chunk if h not in out]
                if not todo:
                    break
                query = {
                    "bool": {
                        "filter": [{"terms": {"content_hash": todo}}, *([is_dup] if dups else [])],
                        "must_not": [] if dups else [is_dup],
                    }
                }
                resp = self._search(
                    query=query,
                    size=len(todo),
                    collapse={"field": "content_hash"},
                    sort=[{"published_at": {"order": "asc", "missing": "_last"}}, {"id": "asc"}],
                    _source=["id", "content_hash", "cluster_id", "minhash"],
                )
                for hit in resp["hits"]["hits"]:
                    src = hit["_source"]
                    out[src["content_hash"]] = ClusterRef(
                        src["id"], src.get("cluster_id") or src["id"], _signature(src.get("minhash"))
                    )
        return out

    def find_band_keys(self, keys: Iterable[str]) -> dict[str, list[ClusterRef]]:
        wanted = list(dict.fromkeys(k for k in keys if isinstance(k, str)))
        out: dict[str, list[ClusterRef]] = {}
        for start in range(0, len(wanted), BAND_KEYS_CHUNK):  # one query for ~1,000 articles' keys
            chunk = wanted[start : start + BAND_KEYS_CHUNK]
            chunk_set = set(chunk)
            for hit in self._scan(
                {"terms": {"lsh_bands": chunk}}, ["id", "cluster_id", "minhash", "lsh_bands"], any_order=True
            ):
                src = hit["_source"]
                ref = ClusterRef(
                    src["id"], src.get("cluster_id") or src["id"], _signature(src.get("minhash"))
                )
                for key in set(src.get("lsh_bands") or ()) & chunk_set:
                    out.setdefault(key, []).append(ref)
        return out

    # --- feed state ---------------------------------------------------------------------
    @staticmethod
    def _feed_id(feed_url: str) -> str:
        return hashlib.sha256(feed_url.encode("utf-8")).hexdigest()

    def _read_state(self, doc_id: str) -> dict[str, Any] | None:
        """The ``state`` of one document of the feeds index (feed state or other pipeline state)."""
        try:
            resp = self.client.get(index=self.feeds_index, id=doc_id)
        except NotFoundError:
            return None
        state: dict[str, Any] = resp["_source"]["state"]
        return state

    def _write_state(self, doc_id: str, key_field: dict[str, str], state: dict[str, Any]) -> None:
        self.client.index(
            index=self.feeds_index,
            id=doc_id,
            document={**key_field, "state": state, "updated_at": datetime.now(UTC).isoformat()},
        )  # no refresh: reads are realtime gets; the rare listing (all_feed_states) refreshes first

    def get_feed_state(self, feed_url: str) -> dict[str, Any] | None:
        return self._read_state(self._feed_id(feed_url))

    def put_feed_state(self, feed_url: str, state: dict[str, Any]) -> None:
        self._write_state(self._feed_id(feed_url), {"url": feed_url}, state)

    def put_feed_states(self, states: Mapping[str, dict[str, Any]]) -> None:
        """One ``_bulk`` request (a run saves the feeds of a batch together), not retried: on any failure it
        raises, and the run saves each feed alone (``put_feed_state``, retried with back-off)."""
        if not states:
            return
        now = datetime.now(UTC).isoformat()
        operations: list[dict[str, Any]] = []
        for url, state in states.items():
            operations.append({"index": {"_index": self.feeds_index, "_id": self._feed_id(url)}})
            operations.append({"url": url, "state": state, "updated_at": now})
        resp = self.client.bulk(operations=operations)
        failed = [item["index"] for item in resp["items"] if item["index"].get("error")]
        if failed:
            first = _error_text(failed[0].get("status"), failed[0]["error"])
            raise RuntimeError(f"{len(failed)} feed states not saved, e.g. {first}")

    def all_feed_states(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        after: list[Any] | None = None
        # writes do not refresh (a run saves one state per feed): the listing makes them searchable
        self.client.options(ignore_status=404).indices.refresh(index=self.feeds_index)
        while True:  # documents without a url are other pipeline state (put_state)
            body: dict[str, Any] = {
                "size": 1000,
                "sort": [{"url": "asc"}],
                "query": {"exists": {"field": "url"}},
            }
            if after:
                body["search_after"] = after
            resp = self.client.options(ignore_status=404).search(index=self.feeds_index, **body)
            if resp.meta.status == 404:
                return out
            hits = resp["hits"]["hits"]
            for hit in hits:
                out[hit["_source"]["url"]] = hit["_source"]["state"]
            if len(hits) < 1000:
                return out
            after = hits[-1]["sort"]

    # --- other pipeline state: documents of the feeds index without a url ------------------
    def get_state(self, key: str) -> dict[str, Any] | None:
        return self._read_state(f"state:{key}")

    def put_state(self, key: str, state: dict[str, Any]) -> None:
        self._write_state(f"state:{key}", {"key": key}, state)

    # --- search -------------------------------------------------------------------------
    def _filters(self, q: SearchQuery) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = []
        for group in q.actor_ids:
            filters.append({"terms": {"actors.id": list(group)}} if group else {"match_none": {}})
        for group in q.location_ids:  # the place itself or any place it contains
            filters.append(
                {
                    "bool": {
                        "should": [
                            {"terms": {"locations.id": list(group)}},
                            {"terms": {"locations.ancestors": list(group)}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
                if group
                else {"match_none": {}}
            )
        if q.since is not None or q.until is not None:
            rng: dict[str, Any] = {}
            if q.since is not None:
                rng["gte"] = _iso(q.since)
            if q.until is not None:
                rng["lte"] = _iso(q.until)
            filters.append({"range": {"published_at": rng}})
            filters.append({"bool": {"must_not": {"term": {"published_at_estimated": True}}}})
        if q.sources:
            should = []
            for value in q.sources:
                value = value.strip()
                should.append({"term": {"source.name": {"value": value, "case_insensitive": True}}})
                should.append({"term": {"source.domain": {"value": value, "case_insensitive": True}}})
            filters.append({"bool": {"should": should, "minimum_should_match": 1}})
        if q.languages:
            filters.append({"terms": {"language": sorted({v.strip().lower() for v in q.languages})}})
        if q.country_codes:
            filters.append(
                {"terms": {"locations.country_code": sorted({c.strip().upper() for c in q.country_codes})}}
            )
        if q.near is not None:
            lat, lon, km = (float(v) for v in q.near)
            filters.append(
                {
                    "geo_distance": {
                        "distance": f"{km}km",
                        "distance_type": "arc",
                        f"{HIDDEN}.point": {"lat": lat, "lon": lon},
                    }
                }
            )
        if q.bbox is not None:
            top, left, bottom, right = (float(v) for v in q.bbox)
            filters.append(
                {
                    "geo_bounding_box": {
                        f"{HIDDEN}.point": {
                            "top_left": {"lat": top, "lon": left},
                            "bottom_right": {"lat": bottom, "lon": right},
                        }
                    }
                }
            )
        if q.collapse:
            filters.append({"term": {f"{HIDDEN}.rep": True}})
        return filters

    @classmethod
    def _hit(cls, raw: dict[str, Any], by_score: bool) -> Article:
        """A search hit as returned: the stored article with ``_score`` and ``_highlight``."""
        hit = cls._strip(raw["_source"])
        hit["_score"] = float(raw["_score"]) if by_score and raw.get("_score") is not None else None
        highlight = raw.get("highlight") or {}
        hit["_highlight"] = [
            frag for name in ("title", "summary", "text") for frag in highlight.get(name, [])
        ]
        return hit

    def search(self, query: SearchQuery) -> SearchResult:
        q = query
        text = (q.text or "").strip()
        bool_query: dict[str, Any] = {"filter": self._filters(q)}
        if text:
            bool_query["must"] = [_text_query(text)]
        by_score = q.sort == "relevance" and bool(text)
        mode = "relevance" if by_score else "date"
        sort = _sort(by_score)
        limit = max(0, int(q.limit))
        body: dict[str, Any] = {
            "query": {"bool": bool_query},
            "size": limit + 1,
            "sort": sort,
            "track_total_hits": True,
            "track_scores": by_score,
        }
        pit_id: str | None = None
        if q.after:
            pit_id, after_mode, values = _parse_cursor(q.after)
            if after_mode != mode:
                raise ValueError(f"search cursor {q.after!r} belongs to a {after_mode} sort, not {mode}")
            body["search_after"] = values
        if q.facets:
            body["aggs"] = _facet_aggs(q, text)
        if text and q.highlight:
            body["highlight"] = HIGHLIGHT
        # bounded in time: the shards stop at ``timeout``; the client gives up a little later,
        # never retries a timeout or a status, and closing the connection cancels the search task
        # on the server. With several nodes a refused connection (the node is down, the search never
        # started) is tried on the next node.
        body["timeout"] = f"{max(1, int(self.search_timeout * 1000))}ms"
        client = self.client.options(
            request_timeout=self.search_timeout + min(self.search_timeout, 5.0),
            max_retries=len(self.hosts) - 1,
            retry_on_timeout=False,
            retry_on_status=(),
        )
        try:
            if pit_id:
                body["pit"] = {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE}
                try:
                    resp = dict(client.search(**body))
                except NotFoundError as exc:
                    raise ValueError(f"search cursor expired (point in time closed): {exc}") from exc
            else:
                resp = self._search(client, **body)
        except ConnectionTimeout:
            raise SearchTimeout(self.search_timeout) from None
        if resp.get("timed_out"):
            raise SearchTimeout(self.search_timeout)
        raw_hits = resp["hits"]["hits"]
        more = len(raw_hits) > limit
        raw_hits = raw_hits[:limit]
        hits = [self._hit(raw, by_score) for raw in raw_hits]
        next_after: list[Any] | None = None
        if more and raw_hits:
            pit = resp.get("pit_id") or pit_id
            if pit is None:
                # like the search: a shard not ready (a monthly index just created) must not fail the
                # answer (issue 14's load test: 503 from open_reader_context during ingestion)
                pit = self.client.open_point_in_time(
                    index=self.read_alias,
                    keep_alive=PIT_KEEP_ALIVE,
                    ignore_unavailable=True,
                    allow_partial_search_results=True,
                )["id"]
            next_after = ["pit", pit, mode, *raw_hits[-1]["sort"][: len(sort)]]
        elif pit_id:
            self.client.options(ignore_status=404).close_point_in_time(id=resp.get("pit_id") or pit_id)
        facets = _facets(resp.get("aggregations") or {}) if q.facets else {}
        return SearchResult(
            total=int(resp["hits"]["total"]["value"]), hits=hits, facets=facets, next_after=next_after
        )


# --- module helpers ------------------------------------------------------------------------


class _CallMemory:
    """What earlier batches of one ``index`` call wrote (not searchable until the refresh)."""

    def __init__(self, sources: OrderedDict[str, tuple[str, tuple[int, int], dict[str, Any]]]) -> None:
        self.written: dict[str, dict[str, Any]] = {}  # id -> {"_index", "entries", "cluster", "dup", ...}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}  # cluster -> member id -> entry
        # the exact _source of the most recently written representatives (bounded), with the index and
        # ``(_seq_no, _primary_term)`` of that write: their ``also_published_by`` changes are sent as
        # whole-document writes guarded by it, without a realtime get (which refreshes the shard).
        # The store's own map: what earlier calls wrote serves a run's later batches the same way.
        self.sources = sources

    def remember(self, aid: str, source: dict[str, Any]) -> None:
        self.sources.pop(aid, None)
        seq = self.written.get(aid, {}).get("seq")
        if source.get("duplicate_of") or seq is None:
            return
        self.sources[aid] = (self.written[aid]["_index"], seq, source)
        while len(self.sources) > SOURCE_CACHE_DOCS:
            self.sources.popitem(last=False)


def _parse_date(value: Any) -> datetime | None:
    """UTC datetime of an ISO 8601 string (None for missing); ValueError names the bad value."""
    if value not in (None, "") and not isinstance(value, str):
        raise ValueError(f"not an ISO 8601 date: {value!r}")
    return parse_iso(value)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _signature(stored: Any) -> Any:
    """A stored ``minhash`` read back: base64 of :func:`~pipeline.stores.base.pack_signature`'s bytes,
    or the list as given (documents written before packing, or values that are not 32-bit)."""
    if isinstance(stored, str):
        try:
            return unpack_signature(base64.b64decode(stored, validate=True))
        except (binascii.Error, ValueError):
            return stored
    return stored


def _derived(article: Article, rep: bool) -> dict[str, Any]:
    actors = [a for a in article.get("actors") or () if isinstance(a, dict) and a.get("id")]
    locations = [loc for loc in article.get("locations") or () if isinstance(loc, dict) and loc.get("id")]
    points = []
    for loc in locations:
        lat, lon = loc.get("lat"), loc.get("lon")
        if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
            points.append({"lat": lat, "lon": lon})
    return {
        "rep": rep,
        "point": points,
        "actor_facet": sorted({f"{a['id']}{SEP}{a.get('name') or a['id']}" for a in actors}),
        "location_facet": sorted({f"{loc['id']}{SEP}{loc.get('name') or loc['id']}" for loc in locations}),
        "admin1_facet": sorted({f"{a1[0]}{SEP}{a1[1]}" for loc in locations if (a1 := admin1_of(loc))}),
    }


def _facet_aggs(q: SearchQuery, text: str) -> dict[str, Any]:
    """The aggregations behind :class:`SearchResult` facets."""
    terms: dict[str, Any] = {"size": max(1, int(q.facet_size))}
    if text or q.actor_ids or q.location_ids or q.near or q.bbox or q.sources:
        # a selective query matches few documents: collecting their values directly is 2-3x
        # faster than global ordinals (measured with bench/bench_es.py)
        terms["execution_hint"] = "map"
    return {
        "actors": {"terms": {"field": f"{HIDDEN}.actor_facet", **terms}},
        "locations": {"terms": {"field": f"{HIDDEN}.location_facet", **terms}},
        "location_countries": {"terms": {"field": "locations.country_code", **terms}},
        "location_admin1": {"terms": {"field": f"{HIDDEN}.admin1_facet", **terms}},
        "sources": {"terms": {"field": "source.name", **terms}},
        "dates": {
            "filter": {"bool": {"must_not": {"term": {"published_at_estimated": True}}}},
            "aggs": {
                "days": {
                    "date_histogram": {
                        "field": "published_at",
                        "calendar_interval": "day",
                        "min_doc_count": 1,
                        "format": "yyyy-MM-dd",
                    }
                }
            },
        },
    }


#: highlighting of text searches: article text escaped, only ``<mark>`` is markup
HIGHLIGHT: dict[str, Any] = {
    "pre_tags": ["<mark>"],
    "post_tags": ["</mark>"],
    "encoder": "html",  # article text escaped: only <mark> is markup
    "fields": {
        "title": {"number_of_fragments": 0},
        "summary": {"fragment_size": 200, "number_of_fragments": 1},
        "text": {"fragment_size": 160, "number_of_fragments": 2},
    },
}


def _facet_buckets(buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for bucket in buckets:
        key, _, name = str(bucket["key"]).partition(SEP)
        if key in seen:  # the same id under two display names: one bucket
            seen[key]["count"] += bucket["doc_count"]
            continue
        seen[key] = {"key": key, "name": name or key, "count": bucket["doc_count"]}
        out.append(seen[key])
    return sorted(out, key=lambda b: (-b["count"], b["key"]))


def _facets(aggs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        "actors": _facet_buckets(aggs.get("actors", {}).get("buckets", [])),
        "locations": _facet_buckets(aggs.get("locations", {}).get("buckets", [])),
        "location_countries": sorted(
            (
                {"key": b["key"], "name": country_name(b["key"]), "count": b["doc_count"]}
                for b in aggs.get("location_countries", {}).get("buckets", [])
            ),
            key=lambda b: (-b["count"], b["key"]),
        ),
        "location_admin1": _facet_buckets(aggs.get("location_admin1", {}).get("buckets", [])),
        "sources": [
            {"key": b["key"], "name": b["key"], "count": b["doc_count"]}
            for b in aggs.get("sources", {}).get("buckets", [])
        ],
        "dates": [
            {"key": b["key_as_string"], "count": b["doc_count"]}
            for b in (aggs.get("dates") or {}).get("days", {}).get("buckets", [])
            if b["doc_count"]
        ],
    }


def _parse_cursor(after: list[Any]) -> tuple[str | None, str, list[Any]]:
    if (
        isinstance(after, (list, tuple))
        and len(after) >= 4
        and after[0] == "pit"
        and isinstance(after[1], str)
        and after[2] in ("relevance", "date")
    ):
        return after[1], after[2], list(after[3:])
    raise ValueError(f"invalid search cursor {after!r}: pass SearchResult.next_after unchanged")


def _error_text(status: Any, error: Any) -> str:
    if isinstance(error, dict):
        reason = error.get("reason") or error.get("type") or str(error)
        caused = error.get("caused_by")
        if isinstance(caused, dict) and caused.get("reason"):
            reason = f"{reason}: {caused['reason']}"
        return f"HTTP {status}: {reason}"
    return f"HTTP {status}: {error}"


__all__ = ["ElasticsearchStore", "MAPPING", "english_analysis", "TransportError"]
