"""Feed health and feed checks: one implementation for ``newswire feeds status|check`` and the
maintenance DAG.

Contract: :func:`health_row` turns a feed and its stored state into one row (raw values; callers
redact on output); :func:`check_feeds` fetches and parses every feed now, stores nothing, and
yields ``(url, error or None, entries)`` per feed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.config import FeedConfig


def health_row(feed: FeedConfig, state: dict[str, Any] | None) -> dict[str, Any]:
    """The health of ``feed`` from its stored state (``status`` is "never polled" without one)."""
    health = (state or {}).get("health") or {}
    per_day = health.get("new_per_day") or {}
    return {
        "name": feed.name,
        "url": feed.url,
        "status": health.get("status", "never polled"),
        "last_success_at": health.get("last_success_at"),
        "last_error": health.get("last_error"),
        "consecutive_failures": int(health.get("consecutive_failures", 0)),
        "new_per_day": round(sum(per_day.values()) / max(len(per_day), 1), 1),
    }


def check_feeds(feeds: list[FeedConfig]) -> Iterator[tuple[str, str | None, int]]:
    """Fetch and parse each feed now: ``(url, error or None, number of entries)``."""
    from pipeline.fetch import fetch_feeds
    from pipeline.parse import parse_feed

    for result in fetch_feeds([(f.url, None) for f in feeds]):
        if result.status != "ok":
            yield result.url, str(result.error or result.status), 0
            continue
        parsed = parse_feed(result.body, url=result.final_url or result.url, headers=result.headers)
        if parsed.error:
            yield result.url, str(parsed.error), 0
        else:
            yield result.url, None, len(parsed.entries)
