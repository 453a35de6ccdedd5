"""Ingestion passes and watch mode (pipeline/run.py) against feeds on the loopback server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import FeedConfig
from pipeline.run import ingest, next_poll_delay, watch
from pipeline.settings import get_settings
from pipeline.stores import open_store
from pipeline.stores.sqlite import SQLiteStore
from tests.support.feedserver import FeedServer, rss


class CountingStore(SQLiteStore):
    """The real SQLite store, noting how many articles each index() call wrote."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[int] = []

    def index(self, articles: Any) -> Any:
        batch = list(articles)
        self.calls.append(len(batch))
        return super().index(batch)


def with_ttl(doc: bytes, minutes: int) -> bytes:
    return doc.replace(b"<description>Test feed", f"<ttl>{minutes}</ttl><description>Test feed".encode(), 1)


def test_poll_timing_follows_ttl_interval_and_failures(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path
) -> None:
    ttl_url = feed_server.add(unique_path("ttl.xml"), with_ttl(rss("ttlfeed", 2), 45))
    plain_url = feed_server.add(unique_path("plain.xml"), rss("plainfeed", 2))
    broken_url = feed_server.add(unique_path("broken.xml"), b"gone", status=404)
    feeds = [
        FeedConfig(name="ttl", url=ttl_url, full_text=False),
        FeedConfig(name="plain", url=plain_url, interval=600, full_text=False),
        FeedConfig(name="broken", url=broken_url, interval=600),
    ]
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    settings = get_settings()
    report = ingest(feeds, store, settings)
    by_name = {f.name: f for f in report.feeds}
    assert by_name["ttl"].new == 2
    assert by_name["plain"].new == 2
    assert by_name["broken"].errors
    assert "404" in by_name["broken"].errors[0]

    def delay(feed: FeedConfig) -> float:
        return next_poll_delay(feed, store.get_feed_state(feed.url), settings)

    assert delay(feeds[0]) == 45 * 60  # the feed's <ttl> wins over the global interval
    assert delay(feeds[1]) == 600  # no ttl: the feed's configured interval
    assert delay(feeds[2]) == 1200  # one failure: doubled
    ingest([feeds[2]], store, settings)
    assert delay(feeds[2]) == 2400
    health = store.get_feed_state(broken_url)["health"]  # type: ignore[index]
    assert health["consecutive_failures"] == 2
    assert "404" in health["last_error"]
    store.close()


def test_watch_polls_again_and_stores_nothing_twice(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path
) -> None:
    url = feed_server.add(unique_path("w.xml"), rss("watchfeed", 3))
    feed = FeedConfig(name="w", url=url, interval=1, full_text=False)
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    seen: list[Any] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        import time

        time.sleep(seconds)

    watch([feed], store, get_settings(), on_feed=seen.append, max_passes=2, sleep=sleep)
    assert [s.new for s in seen] == [3, 0]
    assert len(sleeps) == 1
    assert 0.5 <= sleeps[0] <= 1.5
    assert store.count() == 3
    store.close()


def test_feeds_are_written_in_batches_and_a_slow_feed_holds_nobody_back(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path
) -> None:
    """New entries of several feeds go to the store in one write (issue 15: one bulk request and one
    refresh per batch, not per feed); a slow feed's wait never keeps the others' articles unwritten for
    more than BATCH_WAIT; each feed is marked seen only with its own articles stored, and counted alone."""
    from pipeline.run import BATCH_WAIT

    fast = [feed_server.add(unique_path(f"fast{i}.xml"), rss(f"fast{i}", 3)) for i in range(5)]
    stored_when_slow_answered: list[int] = []
    store = CountingStore(tmp_path / "b.db")
    store.setup()

    def slow_handler(req: Any) -> None:
        import time

        time.sleep(3 * BATCH_WAIT)
        stored_when_slow_answered.append(store.count())
        req.send_plain(200, rss("slow", 2), content_type="application/rss+xml")

    slow = feed_server.add_handler(unique_path("slow.xml"), slow_handler)
    feeds = [FeedConfig(name=f"f{i}", url=u, full_text=False) for i, u in enumerate(fast)]
    feeds.append(FeedConfig(name="slow", url=slow, full_text=False))
    report = ingest(feeds, store)
    assert {f.name: f.new for f in report.feeds} == {**{f"f{i}": 3 for i in range(5)}, "slow": 2}
    assert store.calls == [15, 2]  # the five fast feeds in one write, the slow one later
    assert stored_when_slow_answered == [15]  # written while the slow feed was still coming
    assert all(store.get_feed_state(u) is not None for u in [*fast, slow])
    store.close()


def test_an_article_in_a_batch_in_flight_is_not_taken_again_from_another_feed(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """A full batch is cleaned and tagged while the next one fills: a second feed that lists an article of
    the batch in flight (not stored yet, so not a known id) must not add it again."""
    import time

    import pipeline.run

    monkeypatch.setattr(pipeline.run, "BATCH_ENTRIES", 4)
    first = feed_server.add(unique_path("first.xml"), rss("first", 4))
    shared_item = rss("first", 1).split(b"<item>")[1].split(b"</item>")[0]  # first's item 0, again
    second_doc = rss("second", 2).replace(b"<item>", b"<item>" + shared_item + b"</item><item>", 1)

    def late(req: Any) -> None:
        time.sleep(0.3)  # after the first feed's batch (4 entries: full) has gone in flight
        req.send_plain(200, second_doc, content_type="application/rss+xml")

    second = feed_server.add_handler(unique_path("second.xml"), late)
    feeds = [FeedConfig(name="first", url=first, full_text=False), FeedConfig(name="second", url=second)]
    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    report = ingest(feeds, store)
    assert {f.name: (f.new, f.errors) for f in report.feeds} == {"first": (4, []), "second": (2, [])}
    assert store.count() == 6
    assert all(store.get_feed_state(u) is not None for u in (first, second))
    store.close()


def test_a_batch_never_holds_more_than_batch_entries(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """A feed bigger than a batch is split across batches (memory: at most BATCH_ENTRIES pages held open)."""
    import pipeline.run

    monkeypatch.setattr(pipeline.run, "BATCH_ENTRIES", 4)
    url = feed_server.add(unique_path("big.xml"), rss("big", 10))
    store = CountingStore(tmp_path / "c.db")
    store.setup()
    report = ingest([FeedConfig(name="big", url=url, full_text=False)], store)
    assert report.feeds[0].new == 10
    assert store.calls == [4, 4, 2]
    assert store.count() == 10
    store.close()


def test_a_slow_site_s_pages_hold_back_no_other_feed(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path
) -> None:
    """Article pages are fetched in the background while the run indexes what it has: the articles of a
    feed that needs no page are stored while a slow site still answers for its pages (each page request
    here waits until they are; a run that waited for the pages first would wait 30 s and fail)."""
    import time

    store = CountingStore(tmp_path / "p.db")
    store.setup()
    counts_when_served: list[int] = []

    def slow_page(req: Any) -> None:
        deadline = time.monotonic() + 30
        while store.count() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        counts_when_served.append(store.count())
        body = "<p>The relief convoy reached the valley town at dawn, officials said on Monday.</p>" * 6
        page = f"<!doctype html><html><body><article>{body}</article></body></html>"
        req.send_plain(200, page.encode(), content_type="text/html; charset=utf-8")

    site = unique_path("site")
    for i in range(2):
        feed_server.add_handler(f"{site}/slow/{i}", slow_page)
    slow = feed_server.add(unique_path("slow.xml"), rss("slow", 2, base=feed_server.url(site)))
    fast = feed_server.add(unique_path("fast.xml"), rss("fast", 3))
    feeds = [
        FeedConfig(name="slow", url=slow, full_text=True),
        FeedConfig(name="fast", url=fast, full_text=False),
    ]
    report = ingest(feeds, store)
    assert counts_when_served == [3, 3]  # the fast feed's three articles were stored first
    assert {f.name: (f.new, f.errors) for f in report.feeds} == {"slow": (2, []), "fast": (3, [])}
    assert store.calls == [3, 2]
    texts = [a.get("text") or "" for a in store.articles_after(None, 10) if "/slow/" in a["url"]]
    assert len(texts) == 2
    assert all("relief convoy" in t for t in texts)  # each page's text, not the feed's summary
    assert all(store.get_feed_state(u) is not None for u in (slow, fast))
    store.close()


def test_pages_are_fetched_only_a_little_ahead_of_the_run(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """The background page thread fetches at most PAGES_AHEAD entries (plus a chunk) ahead of what the run
    took: a big feed on a fast site never has all its pages in memory while the store is slow."""
    import time

    import pipeline.run

    for name, value in (("BATCH_ENTRIES", 4), ("FEED_CHUNK", 4), ("PAGES_AHEAD", 4)):
        monkeypatch.setattr(pipeline.run, name, value)
    served: list[int] = []

    class SlowStore(CountingStore):
        def index(self, articles: Any) -> Any:
            self.calls.append(len(served))  # pages served when this write starts
            time.sleep(0.3)
            return SQLiteStore.index(self, list(articles))

    def page(req: Any) -> None:
        served.append(1)
        body = "<p>The harbour reopened on Tuesday after the storm, the port authority said.</p>" * 6
        req.send_plain(200, f"<!doctype html><html><body><article>{body}</article></body></html>".encode())

    site = unique_path("site")
    for i in range(40):
        feed_server.add_handler(f"{site}/big/{i}", page)
    url = feed_server.add(unique_path("big.xml"), rss("big", 40, base=feed_server.url(site)))
    store = SlowStore(tmp_path / "s.db")
    store.setup()
    report = ingest([FeedConfig(name="big", url=url, full_text=True)], store)
    assert report.feeds[0].new == 40
    assert store.count() == 40
    assert len(served) == 40
    # at the first write: its batch (4), the batch being prepared (4), and at most 4 + a chunk (4) ahead
    assert store.calls[0] <= 16
    store.close()
