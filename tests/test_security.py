"""What comes back out of newswire is safe: the failures of the security review (issue 14).

Each test attacks the real code path (the FastAPI app over a real uvicorn socket on both
stores, the CLI through typer's runner, the JSON Lines filters over real streams) with
hostile input of our own writing, and asserts what a user or operator would see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pipeline.api import create_app
from pipeline.records import article_id
from pipeline.stores import open_store
from tests.test_api import serving

HOSTILE_HTML = '<img src=x onerror="alert(1)"><script>steal()</script>'


def hostile_article(key: str, **extra: Any) -> dict[str, Any]:
    """An article whose stored text carries live markup next to the word ``kessra``."""
    url = f"https://hostile.example.test/news/{key}"
    aid = article_id(url)
    article: dict[str, Any] = {
        "id": aid,
        "url": url,
        "source": {"feed": "https://hostile.example.test/rss", "name": "Hostile Gazette",
                   "domain": "hostile.example.test"},
        "title": f"Kessra pumps {HOSTILE_HTML} restored",
        "summary": f"Kessra water {HOSTILE_HTML} returns.",
        "text": f"Engineers in Kessra restarted the pumps {HOSTILE_HTML} on Tuesday & said <b>thanks</b>.",
        "language": "en",
        "published_at": "2025-04-02T08:00:00+00:00",
        "fetched_at": "2025-04-02T09:00:00+00:00",
        "cluster_id": aid,
        "duplicate_of": None,
        "actors": [],
        "locations": [],
    }
    article.update(extra)
    return article


@pytest.fixture
def api_over(store_url: str) -> Iterator[httpx.Client]:
    """The real app over an empty store of each engine (``store_url`` from conftest)."""
    app = create_app(store_url)
    with serving(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield client


def index(store_url: str, *articles: dict[str, Any]) -> None:
    store = open_store(store_url)
    try:
        report = store.index(articles)
        assert report.errors == []
    finally:
        store.close()


# --- 1. stored XSS through highlights ------------------------------------------------------


def test_highlights_escape_article_markup_and_keep_only_mark(api_over: httpx.Client, store_url: str) -> None:
    index(store_url, hostile_article("one"))
    r = api_over.get("/search", params={"q": "kessra"})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len(hits) == 1
    fragments = hits[0]["_highlight"]
    assert fragments
    joined = " ".join(fragments)
    tags = set(re.findall(r"<[^>]*>", joined))
    assert tags == {"<mark>", "</mark>"}, tags
    assert "&lt;img" in joined or "&lt;script" in joined  # the text is there, inert
    assert any(m.lower() == "kessra" for m in re.findall(r"<mark>(.*?)</mark>", joined))
