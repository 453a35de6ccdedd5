"""config/samples: the offline demo feeds parse, and their answer key (EXPECTED.yaml) tells the truth.

The key is written by hand; these tests re-derive what they can from the feed texts
(aliases present, copies really near-identical, dates) so that an edit to a sample that
silently invalidates the key fails here, not in the end-to-end search test.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
import yaml
from bs4 import BeautifulSoup

from pipeline.config import load_feeds
from pipeline.records import article_id, canonical_url

SAMPLES = Path(__file__).resolve().parent.parent / "config" / "samples"

IS_ALIASES = re.compile(r"\b(Islamic State|ISIL|ISIS|IS|Daesh)\b")
AFFILIATES = re.compile(r"Islamic State in the Greater Sahara")
RAQQA = re.compile(r"\b(Raqqa|Raqa|Ar-Raqqah|Raqqah|Rakka)\b")


def entry_text(entry: Any) -> str:
    html = entry["content"][0]["value"] if entry.get("content") else entry.get("summary", "")
    return " ".join(BeautifulSoup(html, "lxml").get_text(" ").split())


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return yaml.safe_load((SAMPLES / "EXPECTED.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    feeds = load_feeds(SAMPLES / "feeds.yaml")
    return {
        Path(urlsplit(f.url).path).name: feedparser.parse(Path(urlsplit(f.url).path).read_bytes())
        for f in feeds
    }


@pytest.fixture(scope="module")
def articles(parsed: dict[str, Any], expected: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """key -> {entry, text, file}, matched to the answer key by canonical URL."""
    by_url = {a["url"]: a["key"] for a in expected["articles"]}
    out = {}
    for name, feed in parsed.items():
        for entry in feed.entries:
            key = by_url[canonical_url(entry.link)]
            out[key] = {"entry": entry, "text": entry["title"] + "\n" + entry_text(entry), "file": name}
    return out


def test_sample_feeds_file_lists_every_sample(parsed: dict[str, Any]) -> None:
    on_disk = {p.name for p in SAMPLES.glob("*.xml")}
    assert set(parsed) == on_disk
    for feed in load_feeds(SAMPLES / "feeds.yaml"):
        assert feed.url.startswith("file:///")
        assert feed.full_text is False


def test_every_sample_parses_cleanly(parsed: dict[str, Any]) -> None:
    for name, feed in parsed.items():
        assert not feed.bozo, f"{name}: {feed.get('bozo_exception')}"
        assert feed.entries, name
    assert {feed.version for feed in parsed.values()} == {"rss20", "atom10", "rss10"}
    assert sum(len(feed.entries) for feed in parsed.values()) >= 30


def test_entries_are_complete_and_unique(parsed: dict[str, Any]) -> None:
    urls = set()
    for name, feed in parsed.items():
        domains = {urlsplit(e.link).hostname for e in feed.entries}
        assert len(domains) == 1, (name, domains)  # one fictional domain per outlet
        assert all(d and d.endswith(".example") for d in domains)
        for entry in feed.entries:
            assert entry.get("title"), name
            assert len(entry_text(entry).split()) >= 60, (name, entry.link)
            urls.add(canonical_url(entry.link))
    assert len(urls) == sum(len(f.entries) for f in parsed.values())


def test_answer_key_covers_every_article(
    parsed: dict[str, Any], expected: dict[str, Any], articles: dict
) -> None:
    keyed = expected["articles"]
    assert (
        expected["total_articles"]
        == len(keyed)
        == len(articles)
        == sum(len(f.entries) for f in parsed.values())
    )
    assert len({a["key"] for a in keyed}) == len(keyed)
    for a in keyed:
        assert a["id"] == article_id(a["url"])
        assert a["url"] == canonical_url(a["url"])
        got = articles[a["key"]]
        assert got["file"] == a["feed"]
        assert got["entry"].title == a["title"]
    for name, description in expected["feeds"].items():
        assert description.startswith(parsed[name].version)


def test_answer_key_dates_match_the_feeds(expected: dict[str, Any], articles: dict) -> None:
    undated = {u["key"] for u in expected["undated"]}
    for a in expected["articles"]:
        entry = articles[a["key"]]["entry"]
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        if a["key"] in undated:
            assert when is None
            assert a["published_at"] is None
            continue
        assert when is not None, a["key"]
        got = datetime.fromtimestamp(calendar.timegm(when), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert got == a["published_at"], a["key"]
    assert len(undated) == 1
    for u in expected["updated_only"]:
        entry = articles[u["key"]]["entry"]
        assert "published" not in entry
        assert entry.get("updated_parsed")


def test_search_answer_key_matches_the_texts(expected: dict[str, Any], articles: dict) -> None:
    queries = expected["queries"]
    keys = {name: {a["key"] for a in rows} for name, rows in queries.items()}
    for rows in queries.values():
        for row in rows:
            assert row["id"] == article_id(row["url"])
    for key, art in articles.items():
        text = art["text"]
        has_is = bool(IS_ALIASES.search(AFFILIATES.sub("", text)))
        has_raqqa = bool(RAQQA.search(text))
        assert (key in keys["islamic_state_and_raqqa"]) == (has_is and has_raqqa), key
        assert (key in keys["islamic_state_not_raqqa"]) == (has_is and not has_raqqa), key
        assert (key in keys["raqqa_not_islamic_state"]) == (has_raqqa and not has_is), key
        assert (key in keys["affiliate_only"]) == bool(AFFILIATES.search(text) and not has_is), key
    assert len(keys["islamic_state_and_raqqa"]) >= 6
    copies = {
        c["key"]
        for cluster in expected["clusters"].values()
        for c in cluster.get("near_copies", []) + cluster.get("exact_copies", [])
    }
    assert keys["islamic_state_and_raqqa_one_per_story"] == keys["islamic_state_and_raqqa"] - copies


def test_positive_articles_use_every_alias_and_spelling(expected: dict[str, Any], articles: dict) -> None:
    positives = [articles[a["key"]]["text"] for a in expected["queries"]["islamic_state_and_raqqa"]]
    actor_forms = {m for t in positives for m in IS_ALIASES.findall(t)}
    place_forms = {m for t in positives for m in RAQQA.findall(t)}
    assert actor_forms >= {"Islamic State", "ISIL", "ISIS", "IS", "Daesh"}
    assert place_forms >= {"Raqqa", "Raqa", "Ar-Raqqah"}
    # some positives can only be found through an alias: no canonical name in them at all
    assert any("Islamic State" not in t for t in positives)
    assert any("Raqqa" not in t for t in positives)


def shingles(text: str, k: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}


def containment(small: str, big: str) -> float:
    a, b = shingles(small), shingles(big)
    return len(a & b) / len(a)


def test_clusters_are_really_copies(expected: dict[str, Any], articles: dict) -> None:
    body = {k: entry_text(a["entry"]) for k, a in articles.items()}
    in_cluster = set()
    for cluster in expected["clusters"].values():
        original = cluster["original"]["key"]
        in_cluster.add(original)
        for copy in cluster.get("exact_copies", []):
            in_cluster.add(copy["key"])
            assert body[copy["key"]] == body[original]
            assert articles[copy["key"]]["entry"].title == articles[original]["entry"].title
        for copy in cluster.get("near_copies", []):
            in_cluster.add(copy["key"])
            assert body[copy["key"]] != body[original]
            assert containment(body[copy["key"]], body[original]) >= 0.7, copy["key"]
    # outside the clusters no two articles share much text
    for a, b in combinations(sorted(body), 2):
        if a in in_cluster and b in in_cluster and a.split("/")[0] == b.split("/")[0]:
            continue
        assert containment(body[a], body[b]) < 0.2, (a, b)
    assert len(expected["clusters"]["raqqa-wire"]["near_copies"]) >= 3
    # the original is the cluster's first article: the earliest published
    when = {a["key"]: a["published_at"] for a in expected["articles"]}
    for cluster in expected["clusters"].values():
        members = [c["key"] for c in cluster.get("near_copies", []) + cluster.get("exact_copies", [])]
        assert all(when[cluster["original"]["key"]] < when[m] for m in members)


def test_hard_cases_are_present(expected: dict[str, Any], articles: dict) -> None:
    for case in expected["not_a_place"]:
        text = entry_text(articles[case["key"]]["entry"])
        # at a sentence start (after a full stop or an opening quote, or first in the text)
        assert re.search(rf"(^|[.!?]\s+|[\"“]){case['word']}\b", text), case
    for case in expected["is_a_place"]:
        assert re.search(rf"\b{case['word']}\b", articles[case["key"]]["text"]), case
    for case in expected["typos"]:
        assert case["text"] in articles[case["key"]]["text"]
    for case in expected["metonymy"]:
        for form in case["forms"]:
            assert form in articles[case["key"]]["text"], (case["key"], form)
    for case in expected["repeated_headline"]:
        text = entry_text(articles[case["key"]]["entry"]).replace("\u2019", "'")
        title = articles[case["key"]]["entry"].title
        assert text.count(title) >= 2, case["key"]
    wire = articles["raqqa-wire"]["text"]
    for definition in ("Syrian Democratic Forces (SDF)", "Islamic State of Iraq and the Levant (ISIL)"):
        assert definition in wire
    assert re.search(r"\bAmed said\b", wire)  # surname-only after the full name
    for demonym in ("Kurdish fighters", "Russian jets"):
        assert demonym in wire
    raw = (SAMPLES / "northgate-herald.rss.xml").read_text(encoding="utf-8")
    assert "<![CDATA[" in raw
    assert "&#8217;" in raw
    assert "&nbsp;" in raw
    assert "<script" in raw
