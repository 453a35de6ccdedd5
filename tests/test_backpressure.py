"""Back-pressure (issue 14): 429 and 503 from Elasticsearch and from feeds, nothing lost.

`newswire run --once` runs as a subprocess against the real Elasticsearch test server behind a
:class:`~tests.support.faultproxy.FaultProxy` that answers some requests itself (whole requests
with 429/503, single bulk documents with 429), over loopback feeds of originals and syndicated
copies (clusters matter). A clean run into SQLite gives the expected store (:func:`_snapshot`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import get_settings
from pipeline.stores import open_store
from tests.support.faultproxy import FaultProxy
from tests.support.feedserver import FeedServer, rss
from tests.test_reliability import _snapshot, _stories_feed

STORIES = 24  # per feed: originals and their copies


def _feeds_file(tmp_path: Path, feeds: list[tuple[str, str]]) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n"
        + "".join(f"  - name: {name}\n    url: {url}\n    full_text: false\n" for name, url in feeds)
    )
    return path


def _story_feeds(feed_server: FeedServer, unique_path: Callable[[str], str]) -> list[tuple[str, str]]:
    copies_doc = _stories_feed("copies", STORIES, 12, " More to follow.")
    copies = feed_server.add(unique_path("copies.xml"), copies_doc)
    originals = feed_server.add(
        unique_path("originals.xml"), _stories_feed("originals", STORIES, 9, ""), delay=0.5
    )  # the copies are indexed first: the run's reconcile names each cluster after its original
    return [("copies", copies), ("originals", originals)]


def _run(feeds_file: Path, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--once", "--feeds", str(feeds_file), "--store", store],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )


@pytest.fixture
def clean_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], dict[str, Any]]:
    """``clean(feeds_file)``: the snapshot of a fault-free run into SQLite."""
    monkeypatch.setenv("NEWSWIRE_SPACY_MODEL", "")  # gazetteer only: the faults, not NER, are under test

    def clean(feeds_file: Path) -> dict[str, Any]:
        url = f"sqlite:///{tmp_path / 'clean.db'}"
        done = _run(feeds_file, url)
        assert done.returncode == 0, done.stderr
        expected = _snapshot(url)
        assert len(expected) == 2 * STORIES
        assert sum(1 for v in expected.values() if not v[1]) == STORIES  # every copy joined its original
        return expected

    return clean


@pytest.fixture
def es_store(es_url: str, es_prefix: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEWSWIRE_INDEX_PREFIX", es_prefix)
    get_settings.cache_clear()
    store = open_store(es_url)
    store.setup()
    store.close()
    return es_url


@pytest.mark.slow
def test_transient_429_and_503_are_waited_out_and_the_store_equals_a_clean_run(
    feed_server: FeedServer,
    unique_path: Any,
    tmp_path: Path,
    clean_store: Callable[[Path], dict[str, Any]],
    es_store: str,
) -> None:
    feeds_file = _feeds_file(tmp_path, _story_feeds(feed_server, unique_path))
    expected = clean_store(feeds_file)
    with FaultProxy(es_store) as proxy:
        # the first feed's bulk: 503, then 429, then a third of its documents 429 one by one;
        # searches (known ids, duplicate lookups): 503 and 429 now and then
        proxy.reject(503, ("_bulk",), first=1)
        proxy.reject(429, ("_bulk",), first=1)
        proxy.reject_documents(every=3, first=8)
        proxy.reject(503, ("_search",), every=3, first=2)
        proxy.reject(429, ("_search",), every=4, first=2)
        done = _run(feeds_file, proxy.url)
        injected, rejected_documents = proxy.injected, proxy.rejected_documents
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"{2 * STORIES} new articles from 2 feeds; 0 feeds had errors" in done.stdout, done.stdout
    assert injected == {(503, "_bulk"): 1, (429, "_bulk"): 1, (503, "_search"): 2, (429, "_search"): 2}
    assert rejected_documents == 8
    assert _snapshot(es_store) == expected  # same ids, clusters, representatives, publisher lists
    assert open_store(es_store).count() == 2 * STORIES  # nothing twice


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "rejected"),
    [(429, "bulk"), (503, "bulk"), (429, "writes")],
    ids=["429-bulk", "503-bulk", "429-every-write"],
)
def test_persistent_rejection_fails_each_feed_once_and_the_healed_run_completes(
    status: int,
    rejected: str,
    feed_server: FeedServer,
    unique_path: Any,
    tmp_path: Path,
    clean_store: Callable[[Path], dict[str, Any]],
    es_store: str,
) -> None:
    """Every bulk request (``bulk``), or every document write (``writes``: bulk and single
    documents, so the journal and the feed state too), is rejected for the whole run."""
    feeds = _story_feeds(feed_server, unique_path)
    feeds_file = _feeds_file(tmp_path, feeds)
    expected = clean_store(feeds_file)
    with FaultProxy(es_store) as proxy:
        if rejected == "bulk":
            proxy.reject(status, ("_bulk",))
        else:
            proxy.reject(status, ("_bulk", "_doc", "_create", "_update"), methods=("PUT", "POST"))
        failed = _run(feeds_file, proxy.url)
        injected = sum(n for (code, _), n in proxy.injected.items() if code == status)
        assert injected >= 5  # the write of the batch (both feeds' articles in one bulk), tried 5 times
        assert failed.returncode == 1, (failed.stdout, failed.stderr)
        assert "Traceback" not in failed.stderr, failed.stderr
        lines = failed.stderr.splitlines()
        for name, _ in feeds:
            (line,) = [x for x in lines if x.startswith(f"{name}: ")]
            assert str(status) in line, line
            if rejected == "bulk":
                assert f"{STORIES} articles not stored" in line, line
        assert len(lines) == 2, failed.stderr
        assert "0 new articles from 2 feeds; 2 feeds had errors" in failed.stdout, failed.stdout
        store = open_store(es_store)
        for _, url in feeds:  # not marked seen: the next run reads the whole feed again
            state = store.get_feed_state(url)
            if rejected == "writes":
                assert state is None
            else:  # the failure is recorded, not the document's hash or validators
                assert state is not None
                assert state["health"]["status"] == "error"
                assert "body_hash" not in state, state
                assert "etag" not in state, state
        assert store.count() == 0
        proxy.heal()
        healed = _run(feeds_file, proxy.url)
    assert healed.returncode == 0, healed.stderr
    assert f"{2 * STORIES} new articles from 2 feeds; 0 feeds had errors" in healed.stdout, healed.stdout
    assert _snapshot(es_store) == expected
    assert store.count() == 2 * STORIES
    store.close()


@pytest.mark.parametrize("status", [429, 503])
def test_a_feed_answering_with_retry_after_fails_alone_and_is_read_whole_once_it_recovers(
    status: int, feed_server: FeedServer, unique_path: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSWIRE_SPACY_MODEL", "")
    recovered = False

    def limited(req: Any) -> None:
        if recovered:
            req.send_plain(200, rss("limited", 5), content_type="application/rss+xml")
        else:  # longer than any wait inside one fetch: the fetch gives up at once
            req.send_plain(status, b"slow down\n", {"Retry-After": "3600"})

    feeds = [
        ("good0", feed_server.add(unique_path("good0.xml"), rss("good0", 4))),
        ("limited", feed_server.add_handler(unique_path("limited.xml"), limited)),
        ("good1", feed_server.add(unique_path("good1.xml"), rss("good1", 4))),
    ]
    feeds_file = _feeds_file(tmp_path, feeds)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = _run(feeds_file, url)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr, first.stderr
    (line,) = first.stderr.splitlines()
    assert line.startswith(f"limited: {feeds[1][1]}: "), line
    assert str(status) in line, line
    assert "Retry-After 3600s" in line, line
    assert "8 new articles from 3 feeds; 1 feeds had errors" in first.stdout, first.stdout
    store = open_store(url)
    assert "body_hash" not in (store.get_feed_state(feeds[1][1]) or {})
    recovered = True
    second = _run(feeds_file, url)
    assert second.returncode == 0, second.stderr
    assert "5 new articles from 3 feeds; 0 feeds had errors" in second.stdout, second.stdout
    again = _run(feeds_file, url)
    assert again.returncode == 0, again.stderr
    assert "0 new articles from 3 feeds" in again.stdout, again.stdout
    from pipeline.stores.base import SearchQuery

    hits = store.search(SearchQuery(collapse=False, limit=100, facets=False, highlight=False)).hits
    urls = sorted(h["url"] for h in hits)
    assert urls == sorted(
        [f"http://example.org/good{g}/{i}" for g in (0, 1) for i in range(4)]
        + [f"http://example.org/limited/{i}" for i in range(5)]
    )  # every article once
    store.close()
