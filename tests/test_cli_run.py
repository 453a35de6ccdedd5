"""Ingestion passes and watch mode (pipeline/run.py) against feeds on the loopback server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import FeedConfig
from pipeline.run import ingest, next_poll_delay, watch
from pipeline.settings import get_settings
from pipeline.stores import open_store
from tests.support.feedserver import FeedServer, rss


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
