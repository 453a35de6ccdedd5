"""Scale-out on Elasticsearch: a three-node cluster loses a node while articles are indexed.

The cluster is real (three processes of the harness's distribution, :mod:`tests.support.es_cluster`);
the store is given all three URLs. Ingestion and searches keep going while one node is stopped;
at the end the stored ids are exactly the corpus. Ingestion is the store API in batches
(:func:`test_ingestion_and_search_survive_losing_a_node`), or `newswire run --once` subprocesses
over loopback feeds (:func:`test_newswire_run_survives_losing_a_node`: the store then equals a
clean run's, clusters included).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch.helpers import scan

from pipeline.devtools.esserver import EsServerError
from pipeline.stores.base import SearchQuery
from pipeline.stores.elasticsearch import ElasticsearchStore
from tests.support.es_harness import _unavailable
from tests.support.feedserver import FeedServer, rss
from tests.test_reliability import _snapshot, _stories_feed

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


def _cluster() -> Any:
    """A started three-node cluster; one that cannot start fails in CI and is skipped elsewhere."""
    from tests.support.es_cluster import LocalCluster

    try:
        return LocalCluster(nodes=3, heap="256m").start()
    except (EsServerError, OSError) as exc:
        _unavailable(f"three-node cluster could not start: {exc}")


def test_ingestion_and_search_survive_losing_a_node() -> None:
    cluster = _cluster()
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


class _Searches:
    """A loop of searches through the store in a thread of its own, counting answers and errors."""

    def __init__(self, store: ElasticsearchStore, text: str) -> None:
        self.store, self.text = store, text
        self.totals: list[int] = []
        self.errors: list[str] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.done.is_set():
            try:
                self.totals.append(self.store.search(SearchQuery(text=self.text, limit=5)).total)
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.errors.append(f"search: {exc!r}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(60)


@pytest.fixture
def gated_feeds(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path
) -> Iterator[tuple[Path, list[str], threading.Event]]:
    """A feeds file: ``copies`` answers at once; ``originals`` and two wire feeds answer once the
    event is set (set: no wait). Yields the file, the feed URLs and the event."""
    released = threading.Event()

    def gated(doc: bytes) -> Any:
        def handler(req: Any) -> None:
            released.wait(300)
            req.send_plain(200, doc, content_type="application/rss+xml")

        return handler

    feeds = [
        ("copies", feed_server.add(unique_path("copies.xml"), _stories_feed("copies", 40, 12, " More.")))
    ]
    feeds.append(
        (
            "originals",
            feed_server.add_handler(
                unique_path("originals.xml"), gated(_stories_feed("originals", 40, 9, ""))
            ),
        )
    )
    feeds += [
        (f"wire{i}", feed_server.add_handler(unique_path(f"wire{i}.xml"), gated(rss(f"wire{i}", 60))))
        for i in range(2)
    ]
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n" + "".join(f"  - name: {n}\n    url: {u}\n    full_text: false\n" for n, u in feeds)
    )
    try:
        yield path, [u for _, u in feeds], released
    finally:
        released.set()


def _run(feeds_file: Path, store: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--once", "--feeds", str(feeds_file), "--store", store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_newswire_run_survives_losing_a_node(
    gated_feeds: tuple[Path, list[str], threading.Event], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`newswire run --once` into the three nodes (one comma-separated --store); node 3 is stopped
    after the first feed is stored, the other feeds come after. Exit 0, no error line, searches
    answered throughout, and the store equals a clean run's; a second run adds nothing."""
    from pipeline.settings import get_settings

    feeds_file, urls, released = gated_feeds
    monkeypatch.setenv("NEWSWIRE_SPACY_MODEL", "")
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    released.set()
    done = _run(feeds_file, clean)
    assert done.wait(600) == 0, done.communicate()
    expected = _snapshot(clean)
    assert len(expected) == 40 + 40 + 2 * 60
    released.clear()
    monkeypatch.setenv("NEWSWIRE_INDEX_PREFIX", "scale-run")
    get_settings.cache_clear()
    cluster = _cluster()
    with contextlib.ExitStack() as stack:
        stack.callback(cluster.stop)
        store = ElasticsearchStore(cluster.store_url, prefix="scale-run")
        store.setup()
        searches = _Searches(store, "harbour")
        started = time.monotonic()
        run = _run(feeds_file, cluster.store_url)
        stack.callback(searches.stop)
        stack.callback(run.kill)  # a no-op once it has ended
        deadline = time.monotonic() + 300
        while store.get_feed_state(urls[0]) is None:  # the first feed is stored and marked seen
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the first feed was not stored in 300 s"
            time.sleep(0.1)
        # every shard has its replica (auto_expand_replicas 0-1) before a node goes: a primary
        # whose replica is still being built is lost with its node (the index turns red)
        store.client.cluster.health(wait_for_status="green", timeout="120s")
        answered_before = len(searches.totals)
        cluster.stop_node(2)  # SIGTERM; the run and the searches were given all three URLs
        assert run.poll() is None, "the run ended before the node stopped"  # it waits for 3 feeds
        released.set()
        stdout, stderr = run.communicate(timeout=300)
        elapsed = time.monotonic() - started
        searches.stop()
        assert run.returncode == 0, (stdout, stderr)
        assert stderr.strip() == "", stderr
        assert searches.errors == []
        assert len(searches.totals) > answered_before, "searches went on after the node stopped"
        assert searches.totals[-1] > 0
        assert _snapshot(cluster.store_url) == expected  # every article once, clusters as a clean run's
        assert store.count() == len(expected)
        again = _run(feeds_file, cluster.store_url)
        out, err = again.communicate(timeout=600)
        assert again.returncode == 0, err
        assert f"0 new articles from {len(urls)} feeds" in out, out
        assert store.client.cluster.health()["number_of_nodes"] == 2
        print(
            f"\n`newswire run` of {len(expected)} articles with node 3 stopped after the first feed: "
            f"{elapsed:.1f} s; {len(searches.totals)} searches, "
            f"{len(searches.totals) - answered_before} after the stop"
        )
        store.close()
