"""Elasticsearch-only behaviour of ElasticsearchStore, on the real session server (``es_url``).

What the shared contract suite cannot see: the index template, the aliases and the monthly
indices, routing of a re-indexed article to the index that already holds it, the mapping
that stray fields cannot grow, per-document bulk errors and retries through a loopback proxy
that fails on purpose.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

from pipeline.stores.base import SearchQuery
from pipeline.stores.elasticsearch import HIDDEN, ElasticsearchStore


def article(n: int, published: str | None = "2017-06-07T08:00:00+00:00", **extra: Any) -> dict[str, Any]:
    doc = {
        "id": f"art-{n}",
        "url": f"https://wire.example/{n}",
        "source": {"feed": "https://wire.example/rss", "name": "Wire", "domain": "wire.example"},
        "title": f"Story {n} about strikes near Raqqa",
        "summary": "A summary.",
        "text": f"Body of story {n}.",
        "language": "en",
        "published_at": published,
        "cluster_id": f"art-{n}",
        "duplicate_of": None,
        "actors": [],
        "locations": [
            {"id": "geonames:163915", "name": "Raqqa", "kind": "city", "country_code": "SY",
             "lat": 35.95, "lon": 39.01, "mentions": ["Raqqa"], "count": 1}
        ],
    }  # fmt: skip
    doc.update(extra)
    return doc


@pytest.fixture
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def store(es_url: str, es_prefix: str) -> Iterator[ElasticsearchStore]:
    s = ElasticsearchStore(es_url, prefix=es_prefix)
    s.setup()
    yield s
    s.close()


def index_of(es: Elasticsearch, alias: str, doc_id: str) -> list[str]:
    hits = es.search(index=alias, query={"ids": {"values": [doc_id]}})["hits"]["hits"]
    return [h["_index"] for h in hits]


def test_setup_is_idempotent_and_creates_template_and_aliases(
    store: ElasticsearchStore, es: Elasticsearch
) -> None:
    store.setup()  # a second time changes nothing and does not fail
    store.setup()
    template = es.indices.get_index_template(name=store.template)["index_templates"][0]["index_template"]
    assert template["index_patterns"] == store.index_patterns()
    assert store.read_alias in template["template"]["aliases"]
    assert template["template"]["mappings"]["dynamic"] in (False, "false")
    current = store.index_for(datetime.now(UTC))
    write = es.indices.get_alias(name=store.write_alias)
    assert list(write) == [current]
    assert write[current]["aliases"][store.write_alias]["is_write_index"] is True
    assert current in es.indices.get_alias(name=store.read_alias)
    assert es.indices.exists(index=store.feeds_index)


def test_articles_go_to_monthly_indices_behind_the_read_alias(
    store: ElasticsearchStore, es: Elasticsearch
) -> None:
    report = store.index([
        article(1, "2017-06-30T23:30:00-02:00"),  # 2017-07-01 01:30 UTC
        article(2, "2024-01-15T10:00:00Z"),
        article(3, None),
    ])  # fmt: skip
    assert (report.indexed, report.created, report.errors) == (3, 3, [])
    p = store.prefix
    assert index_of(es, store.read_alias, "art-1") == [f"{p}-2017.07"]
    assert index_of(es, store.read_alias, "art-2") == [f"{p}-2024.01"]
    assert index_of(es, store.read_alias, "art-3") == [store.index_for(datetime.now(UTC))]
    aliases = es.indices.get_alias(name=store.read_alias)
    assert {f"{p}-2017.07", f"{p}-2024.01"} <= set(aliases)
    assert store.count() == 3


def test_reindexing_with_another_month_keeps_one_document(
    store: ElasticsearchStore, es: Elasticsearch
) -> None:
    store.index([article(1, "2017-06-07T08:00:00Z")])
    report = store.index([article(1, "2019-03-01T08:00:00Z", title="Corrected story about a ceasefire")])
    assert (report.indexed, report.created, report.errors) == (1, 0, [])
    assert index_of(es, store.read_alias, "art-1") == [f"{store.prefix}-2017.06"]
    assert store.count() == 1
    got = store.get("art-1")
    assert got is not None
    assert got["published_at"] == "2019-03-01T08:00:00Z"
    assert store.search(SearchQuery(text="ceasefire")).total == 1
    assert store.search(SearchQuery(text="strikes")).total == 0


def test_stray_fields_are_kept_but_never_grow_the_mapping(
    store: ElasticsearchStore, es: Elasticsearch
) -> None:
    stray: dict[str, Any] = {"extra": {"deep": {"er": [1, 2, 3]}}, "x_anything": "v"}
    assert store.index([article(1, html="<p>raw page</p>", **stray)]).errors == []
    got = store.get("art-1")
    assert got is not None
    assert {k: got[k] for k in stray} == stray
    assert "html" not in got  # the raw page is never stored (UNSTORED_FIELDS)
    assert HIDDEN not in got
    mapping = es.indices.get_mapping(index=f"{store.prefix}-2017.06")[f"{store.prefix}-2017.06"]["mappings"]
    assert not {"html", "extra", "x_anything"} & set(mapping["properties"])
    # not indexed: a search for the stray text finds nothing
    assert store.search(SearchQuery(text="raw page")).total == 0


def test_signatures_are_stored_packed_and_read_back_as_lists(
    store: ElasticsearchStore, es: Elasticsearch
) -> None:
    """A 32-bit MinHash goes into ``_source`` as base64 of 4 bytes a value (issue 15: ~1.7 KB of JSON
    -> 856 characters); every read path gives the list back; other lists are kept as given; a
    signature that is not a list is refused by name."""
    signature = [0, 7, 2**32 - 1] + [(i * 2654435761) % 2**32 for i in range(157)]
    wide = [1, 2, 2**40]
    report = store.index(
        [
            article(1, minhash=signature, content_hash="h1", lsh_bands=["b0:1"]),
            article(2, minhash=wide),
            article(3, minhash="not a list"),
        ]
    )
    assert [e["id"] for e in report.errors] == ["art-3"]
    assert "minhash" in report.errors[0]["error"]
    raw = es.get(index=f"{store.prefix}-2017.06", id="art-1")["_source"]["minhash"]
    assert isinstance(raw, str)
    assert len(raw) == 856
    assert es.get(index=f"{store.prefix}-2017.06", id="art-2")["_source"]["minhash"] == wide
    assert store.get("art-1")["minhash"] == signature  # type: ignore[index]
    assert store.get("art-2")["minhash"] == wide  # type: ignore[index]
    assert store.find_content_hashes(["h1"])["h1"].signature == signature
    assert [r.signature for r in store.find_band_keys(["b0:1"])["b0:1"]] == [signature]
    assert [a["minhash"] for a in store.articles_after(None, 10)] == [signature, wide]


def test_per_document_errors_are_counted_not_dropped(store: ElasticsearchStore) -> None:
    bad_point = article(2)
    bad_point["locations"] = [dict(bad_point["locations"][0], lat=135.0)]  # latitude out of range
    bad_bool = article(3, published_at_estimated="perhaps")
    report = store.index([article(1), bad_point, bad_bool, {"title": "no id"}, article(4, "yesterday")])
    assert report.indexed == 1
    assert sorted(str(e["id"]) for e in report.errors) == ["None", "art-2", "art-3", "art-4"]
    by_id = {e["id"]: e["error"] for e in report.errors}
    assert "HTTP 400" in by_id["art-2"]
    assert "HTTP 400" in by_id["art-3"]
    assert "yesterday" in by_id["art-4"]
    assert store.known_ids(["art-1", "art-2", "art-3", "art-4"]) == {"art-1"}


def test_the_text_analyzer_stems_english(store: ElasticsearchStore, es: Elasticsearch) -> None:
    store.index([article(1)])
    # the full distribution's analysis-common module, or the plugin esserver installs
    assert store.analysis_kind in ("english", "newswire")
    text = "The Kurds' strikes hit Raqqa's café"
    tokens = es.indices.analyze(index=f"{store.prefix}-2017.06", analyzer="news_text", text=text)["tokens"]
    assert [t["token"] for t in tokens] == ["kurd", "strike", "hit", "raqqa", "cafe"]
    assert store.search(SearchQuery(text="strike")).total == 1


def test_paging_cursor_carries_a_point_in_time(store: ElasticsearchStore) -> None:
    store.index([article(n, f"2017-06-{1 + n:02d}T08:00:00Z") for n in range(5)])
    first = store.search(SearchQuery(sort="date", limit=2))
    assert first.next_after is not None
    assert first.next_after[0] == "pit"
    store.index([article(99, "2017-06-30T08:00:00Z")])  # written after the first page
    seen = [h["id"] for h in first.hits]
    after: list[Any] | None = first.next_after
    while after:
        page = store.search(SearchQuery(sort="date", limit=2, after=after))
        seen += [h["id"] for h in page.hits]
        after = page.next_after
    # the point in time was opened before art-99 existed: the later pages do not show it
    assert seen == [f"art-{n}" for n in (4, 3, 2, 1, 0)]
    with pytest.raises(ValueError, match="invalid search cursor"):
        store.search(SearchQuery(after=["nonsense"]))


# --- retries through a proxy that fails on purpose ----------------------------------------


class FailingProxy:
    """A loopback HTTP proxy to the real server that answers ``status`` to the first
    ``fail`` bulk requests (``fail=-1``: every bulk request)."""

    def __init__(self, upstream: str, status: int, fail: int) -> None:
        self.upstream = urlsplit(upstream)
        self.status, self.fail, self.bulk_calls = status, fail, 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "_bulk" in self.path:
                    proxy.bulk_calls += 1
                    if proxy.fail < 0 or proxy.bulk_calls <= proxy.fail:
                        payload = json.dumps({"error": {"type": "overloaded", "reason": "failing on purpose"},
                                              "status": proxy.status}).encode()  # fmt: skip
                        self.send_response(proxy.status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("X-Elastic-Product", "Elasticsearch")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                conn = http.client.HTTPConnection(
                    proxy.upstream.hostname or "", proxy.upstream.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# 1,200 articles: one batch sent as concurrent bulk streams, each retried on its own
@pytest.mark.parametrize(("status", "n"), [(429, 20), (503, 20), (429, 1200)])
def test_bulk_retries_with_backoff_then_succeeds(es_url: str, es_prefix: str, status: int, n: int) -> None:
    proxy = FailingProxy(es_url, status=status, fail=2)
    store = ElasticsearchStore(proxy.url, prefix=es_prefix)
    try:
        store.setup()
        report = store.index([article(i) for i in range(n)])
        assert (report.indexed, report.created, report.errors) == (n, n, [])
        assert proxy.bulk_calls >= 3
        assert store.count() == n
    finally:
        store.close()
        proxy.close()


def test_bulk_failures_that_persist_are_reported_per_document(es_url: str, es_prefix: str) -> None:
    proxy = FailingProxy(es_url, status=429, fail=-1)
    store = ElasticsearchStore(proxy.url, prefix=es_prefix)
    try:
        store.setup()
        report = store.index([article(n) for n in range(5)])
        assert report.indexed == 0
        assert sorted(e["id"] for e in report.errors) == [f"art-{n}" for n in range(5)]
        assert all("429" in e["error"] for e in report.errors)
        assert store.count() == 0
    finally:
        store.close()
        proxy.close()


def test_clusters_across_batches_and_calls(
    store: ElasticsearchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member written before its representative stands in for it, then is demoted; entries are
    recorded once whether the two meet in one batch, in later batches of one call, or in later calls."""
    import pipeline.stores.elasticsearch as es_module

    monkeypatch.setattr(es_module, "BATCH_DOCS", 2)  # force several batches per call
    rep = article(1)
    members = [article(n, duplicate_of="art-1", cluster_id="art-1",
                       source={"feed": "f", "name": f"Paper {n}", "domain": f"p{n}.example"})
               for n in (2, 3, 4)]  # fmt: skip
    store.index([members[0]])  # an earlier call: the member stands in for its cluster
    assert [h["id"] for h in store.search(SearchQuery(text="raqqa")).hits] == ["art-2"]
    # one call, three batches: [member 3, filler] [filler, rep] [member 4, filler]
    report = store.index([members[1], article(10), article(11), rep, members[2], article(12)])
    assert report.errors == []
    hits = store.search(SearchQuery(text="raqqa", limit=50)).hits
    assert "art-1" in {h["id"] for h in hits}
    assert not {"art-2", "art-3", "art-4"} & {h["id"] for h in hits}
    stored = store.get("art-1")
    assert stored is not None
    assert sorted(e["id"] for e in stored["also_published_by"]) == ["art-2", "art-3", "art-4"]
    assert {e["source"]["name"] for e in stored["also_published_by"]} == {"Paper 2", "Paper 3", "Paper 4"}
    store.index([members[0], rep])  # re-indexing adds nothing twice and keeps the entries
    again = store.get("art-1")
    assert again is not None
    assert len(again["also_published_by"]) == 3
    assert [m["id"] for m in store.cluster_members("art-1")][0] == "art-1"
    assert store.search(SearchQuery(text="raqqa", collapse=False, limit=50)).total == 7


def test_later_batches_update_a_representative_without_losing_concurrent_writes(
    store: ElasticsearchStore, es: Elasticsearch, es_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicates in later batches of one call extend their representative's list from the call's
    memory (a write guarded by ``if_seq_no``); a change made by another writer in between makes
    that guard fail, and the store then reads the stored document instead of overwriting it."""
    import pipeline.stores.elasticsearch as es_module

    monkeypatch.setattr(es_module, "BATCH_DOCS", 2)

    def dup(n: int, of: str) -> dict[str, Any]:
        return article(n, duplicate_of=of, cluster_id=of,
                       source={"feed": "f", "name": f"Paper {n}", "domain": f"p{n}.example"})  # fmt: skip

    def stream() -> Iterator[dict[str, Any]]:
        yield from (article(1), article(5), dup(2, "art-1"), dup(6, "art-5"))
        # another writer changes art-5 between our batches
        es.update(index=f"{es_prefix}-2017.06", id="art-5", doc={"feed_tags": ["edited elsewhere"]})
        yield from (dup(3, "art-1"), dup(7, "art-5"), dup(4, "art-1"))

    report = store.index(stream())
    assert report.errors == []
    assert report.indexed == 7
    one, five = store.get("art-1"), store.get("art-5")
    assert one is not None
    assert five is not None
    assert sorted(e["id"] for e in one["also_published_by"]) == ["art-2", "art-3", "art-4"]
    assert sorted(e["id"] for e in five["also_published_by"]) == ["art-6", "art-7"]
    assert five["feed_tags"] == ["edited elsewhere"]  # not overwritten by the call's older copy
    assert {h["id"] for h in store.search(SearchQuery(text="raqqa", limit=50)).hits} == {"art-1", "art-5"}


def test_housekeeping_moves_the_write_alias_and_drops_old_months(
    store: ElasticsearchStore, es: Elasticsearch
) -> None:
    store.index([article(1, "2017-06-07T08:00:00+00:00"), article(2, "2026-10-02T08:00:00+00:00")])
    prefix = store.prefix
    assert es.indices.exists(index=f"{prefix}-2017.06")

    done = store.housekeeping(retention_months=12, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert done == {"write_index": f"{prefix}-2027.03", "dropped": [f"{prefix}-2017.06"]}
    assert not es.indices.exists(index=f"{prefix}-2017.06")
    assert list(es.indices.get_alias(name=f"{prefix}-write").body) == [f"{prefix}-2027.03"]
    es.indices.refresh(index=prefix)
    assert store.count() == 1
    assert store.get("art-2") is not None

    again = store.housekeeping(retention_months=12, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert again["dropped"] == []
    assert store.housekeeping(retention_months=0, now=datetime(2030, 1, 1, tzinfo=UTC))["dropped"] == []


def test_indices_of_an_older_mapping_gain_the_hierarchy_fields(
    es_url: str, es_prefix: str, es: Elasticsearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mapping version 4 added ``locations.ancestors``: setup() puts it on existing indices, and a
    document written again (what ``newswire retag`` does) is then found through its ancestors."""
    import copy

    from pipeline.stores import elasticsearch as es_module

    old = copy.deepcopy(es_module.MAPPING)
    for name in ("ancestors", "admin1"):
        old["properties"]["locations"]["properties"].pop(name)
    old["properties"][HIDDEN]["properties"].pop("admin1_facet")
    old["_meta"]["newswire_mapping_version"] = 3
    monkeypatch.setattr(es_module, "MAPPING", old)
    monkeypatch.setattr(es_module, "MAPPING_VERSION", 3)
    goma = {
        "id": "geonames:216281",
        "name": "Goma",
        "kind": "city",
        "country_code": "CD",
        "ancestors": ["geonames:206938", "geonames:203312"],
        "admin1": {"id": "geonames:206938", "name": "North Kivu"},
    }
    doc = article(1, locations=[goma])
    before = ElasticsearchStore(es_url, prefix=es_prefix)
    before.setup()
    assert before.index([doc]).errors == []
    assert (
        before.search(SearchQuery(location_ids=[["geonames:203312"]])).total == 0
    )  # not indexed by version 3
    before.close()
    monkeypatch.undo()
    after = ElasticsearchStore(es_url, prefix=es_prefix)
    after.setup()
    try:
        index = f"{es_prefix}-2017.06"
        props = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert props["locations"]["properties"]["ancestors"] == {"type": "keyword"}
        meta = es.indices.get_index_template(name=after.template)["index_templates"][0]["index_template"][
            "_meta"
        ]
        assert meta["newswire_mapping_version"] == es_module.MAPPING_VERSION
        assert after.index([doc]).errors == []
        assert after.search(SearchQuery(location_ids=[["geonames:203312"]])).total == 1
        facet = after.search(SearchQuery()).facets["location_admin1"]
        assert facet == [{"key": "geonames:206938", "name": "North Kivu", "count": 1}]
    finally:
        after.close()


def test_a_run_s_later_calls_extend_a_representative_written_by_an_earlier_call(
    store: ElasticsearchStore, es: Elasticsearch, es_prefix: str
) -> None:
    """A representative written by an earlier ``index`` call of the same store (a run's earlier batch)
    is extended from the store's memory; a change by another writer, or the store's own cluster rewrite,
    in between is never overwritten by that memory."""

    def dup(n: int) -> dict[str, Any]:
        return article(n, duplicate_of="art-1", cluster_id="art-1",
                       source={"feed": "f", "name": f"Paper {n}", "domain": f"p{n}.example"})  # fmt: skip

    def ids() -> list[str]:
        stored = store.get("art-1")
        assert stored is not None
        return sorted(e["id"] for e in stored["also_published_by"])

    assert store.index([article(1)]).errors == []
    assert store.index([dup(2)]).errors == []
    assert ids() == ["art-2"]
    es.update(index=f"{es_prefix}-2017.06", id="art-1", doc={"feed_tags": ["edited elsewhere"]})
    assert store.index([dup(3)]).errors == []
    assert ids() == ["art-2", "art-3"]
    stored = store.get("art-1")
    assert stored is not None
    assert stored["feed_tags"] == ["edited elsewhere"]
    assert store.index([dup(4)]).errors == []
    rewrite = {"id": "art-1", "cluster_id": "art-1", "duplicate_of": None}
    assert store.rewrite_clusters([{**rewrite, "also_published_by": [{"id": "art-9"}]}]).errors == []
    assert store.index([dup(5)]).errors == []
    assert ids() == ["art-5", "art-9"]  # the rewritten list, then the new entry
    assert store.cluster_members("art-1")[0]["id"] == "art-1"


def test_content_hash_lookup_prefers_a_non_duplicate_then_the_earliest(store: ElasticsearchStore) -> None:
    """One article per hash: no duplicate first, then the earliest (undated last), then the smallest id."""
    day = "2017-06-07T"
    docs = [
        article(1, f"{day}06:00:00+00:00", content_hash="h", duplicate_of="art-9", cluster_id="art-9"),
        article(2, f"{day}09:00:00+00:00", content_hash="h"),
        article(3, f"{day}08:00:00+00:00", content_hash="h"),
        article(4, None, content_hash="h"),
        article(5, None, content_hash="undated"),
        article(6, None, content_hash="undated"),
        article(7, f"{day}09:00:00+00:00", content_hash="dups", duplicate_of="art-3", cluster_id="art-3"),
        article(8, f"{day}07:00:00+00:00", content_hash="dups", duplicate_of="art-2", cluster_id="art-2"),
        article(9, f"{day}07:00:00+00:00", content_hash="same", cluster_id="art-9"),
        article(10, f"{day}07:00:00+00:00", content_hash="same"),
    ]
    assert store.index(docs).errors == []
    found = store.find_content_hashes(["h", "undated", "dups", "same", "unknown"])
    assert {k: (r.id, r.cluster_id) for k, r in found.items()} == {
        "h": ("art-3", "art-3"),
        "undated": ("art-5", "art-5"),
        "dups": ("art-8", "art-2"),
        "same": ("art-10", "art-10"),
    }
