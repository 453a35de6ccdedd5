"""Reliability under hostile input and faults (issue 14): bounded feeds, repair after a
killed run, a store that dies mid-run. Real parts only: the loopback feed server, SQLite in
tmp_path and the real Elasticsearch test server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import FeedConfig
from pipeline.run import ingest
from pipeline.settings import get_settings
from pipeline.stores import open_store
from tests.feedserver import FeedServer, rss


def _items(doc: bytes) -> bytes:
    return re.search(rb"<item>.*</item>", doc, re.S).group(0)  # type: ignore[union-attr]


# --- 8. feeds without bounds ---------------------------------------------------------------


def test_entries_per_feed_are_capped_with_a_warning_naming_the_feed(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSWIRE_MAX_ENTRIES_PER_FEED", "40")
    get_settings.cache_clear()
    url = feed_server.add(unique_path("big.xml"), rss("bigfeed", 3000))
    store = open_store(f"sqlite:///{tmp_path / 'cap.db'}")
    (stats,) = ingest([FeedConfig(name="big-one", url=url, full_text=False)], store).feeds
    assert (stats.fetched, stats.new, stats.errors) == (40, 40, [])
    assert store.count() == 40
    (warning,) = [w for w in stats.warnings if "entries" in w]
    assert "big-one" in warning and "3000" in warning and "40" in warning
    assert "NEWSWIRE_MAX_ENTRIES_PER_FEED" in warning
    store.close()


# --- 12. a link listed twice ---------------------------------------------------------------


def test_a_link_listed_twice_in_a_feed_counts_once(feed_server: FeedServer, unique_path: Any, tmp_path: Path) -> None:
    doc = rss("twice", 3)
    doc = doc.replace(b"</channel>", _items(doc) + b"</channel>")  # every item listed again
    url = feed_server.add(unique_path("twice.xml"), doc)
    store = open_store(f"sqlite:///{tmp_path / 'twice.db'}")
    report = ingest([FeedConfig(name="twice", url=url, full_text=False)], store)
    assert report.new == 3 and report.feeds[0].duplicates == 0
    assert store.count() == 3
    store.close()
