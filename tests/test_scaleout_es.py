"""Scale-out on Elasticsearch: a three-node cluster loses a node while articles are indexed.

The cluster is real (three processes of the harness's distribution, :mod:`tests.support.es_cluster`);
the store is given all three URLs. Ingestion (the store API, batches) and searches keep going
while one node is stopped; at the end the stored ids are exactly the corpus.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from elasticsearch.helpers import scan

from pipeline.devtools.esserver import EsServerError
from pipeline.stores.base import SearchQuery
from pipeline.stores.elasticsearch import ElasticsearchStore

pytestmark = [pytest.mark.integration, pytest.mark.long]

CORPUS = 3000
BATCH = 100


def article(n: int) -> dict[str, Any]:
    return {
        "id": f"node-loss-{n}",
        "url": f"https://wire.example/node-loss/{n}",
        "source": {"feed": "https://wire.example/rss", "name": "Wire", "domain": "wire.example"},
        "title": f"Report {n}: convoy reaches the valley",
        "summary": "Short summary of the report.",
        "text": f"Body of report {n}, written for the node-loss test.",
        "language": "en",
        "published_at": f"2026-{1 + n % 12:02d}-05T08:00:00+00:00",  # spread over 12 monthly indices
        "cluster_id": f"node-loss-{n}",
        "duplicate_of": None,
        "actors": [],
        "locations": [],
    }


def test_ingestion_and_search_survive_losing_a_node() -> None:
    from tests.support.es_cluster import LocalCluster

    try:
        cluster = LocalCluster(nodes=3, heap="256m").start()
    except (EsServerError, OSError) as exc:
        pytest.skip(f"three-node cluster could not start: {exc}")
    try:
        store = ElasticsearchStore(cluster.store_url, prefix="scale")
        store.setup()
        errors: list[str] = []
        searches: list[int] = []
        stop_searching = threading.Event()

        def search_loop() -> None:
            while not stop_searching.is_set():
                try:
                    searches.append(store.search(SearchQuery(text="convoy", limit=5)).total)
                except Exception as exc:  # noqa: BLE001 - every failure is a finding
                    errors.append(f"search: {exc!r}")
                time.sleep(0.05)

        searcher = threading.Thread(target=search_loop)
        searcher.start()
        stopped_at = None
        started = time.monotonic()
        for first in range(0, CORPUS, BATCH):
            report = store.index([article(n) for n in range(first, first + BATCH)])
            errors += [f"index: {e}" for e in report.errors]
            if first == CORPUS // 3:
                stopped_at = len(searches)
                cluster.stop_node(2)  # the store was given all three URLs
        elapsed = time.monotonic() - started
        stop_searching.set()
        searcher.join(60)

        assert stopped_at is not None
        assert errors == []
        assert len(searches) > stopped_at, "searches went on after the node stopped"
        assert searches[-1] > 0
        assert store.count() == CORPUS
        ids = {hit["_id"] for hit in scan(store.client, index=store.read_alias, _source=False)}
        assert ids == {article(n)["id"] for n in range(CORPUS)}
        health = store.client.cluster.health()
        assert health["number_of_nodes"] == 2
        print(f"\n{CORPUS} articles in {elapsed:.1f} s with a node stopped at 1/3; {len(searches)} searches")
        store.close()
    finally:
        cluster.stop()
