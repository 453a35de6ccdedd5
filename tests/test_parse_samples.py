"""Parse + clean over the project's own sample feeds (config/samples), checked against their answer key.

EXPECTED.yaml (written with the samples) fixes every article's id, canonical URL, title and date;
this checks that the parse and clean stages produce exactly those, and the hard cases it lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.clean import clean_records
from pipeline.parse import parse_feed

SAMPLES = Path(__file__).resolve().parent.parent / "config" / "samples"
pytestmark = pytest.mark.skipif(not (SAMPLES / "EXPECTED.yaml").exists(), reason="config/samples not present")


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return yaml.safe_load((SAMPLES / "EXPECTED.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def records(expected: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in expected["feeds"]:
        parsed = parse_feed((SAMPLES / name).read_bytes(), url=f"http://127.0.0.1:8000/{name}")
        assert parsed.error is None, name
        assert parsed.warnings == [], name
        for record in clean_records(parsed.entries):
            assert "error" not in record, (name, record.get("error"))
            out[record["id"]] = record
    return out


def test_every_article_has_the_expected_id_url_title_and_date(
    expected: dict[str, Any], records: dict[str, dict[str, Any]]
) -> None:
    assert len(records) == expected["total_articles"]
    for article in expected["articles"]:
        record = records[article["id"]]
        assert record["url"] == article["url"], article["key"]
        assert record["title"] == article["title"], article["key"]
        if article.get("published_at") is None:
            assert record["published_at_estimated"] is True, article["key"]
        else:
            assert record["published_at"] == article["published_at"], article["key"]
            assert record["published_at_estimated"] is False, article["key"]
        assert record["language"] == "en", article["key"]
        assert record["text"], article["key"]


def test_repeated_headlines_are_gone_from_the_text(
    expected: dict[str, Any], records: dict[str, dict[str, Any]]
) -> None:
    for case in expected["repeated_headline"]:
        record = records[case["id"]]
        first = record["text"].split("\n\n")[0]
        assert not first.casefold().startswith(record["title"].casefold()), case["key"]
        assert record["title"].casefold() not in record["text"].casefold(), case["key"]


def test_updated_only_and_undated_entries(
    expected: dict[str, Any], records: dict[str, dict[str, Any]]
) -> None:
    for case in expected["undated"]:
        assert records[case["id"]]["published_at_estimated"] is True
    for case in expected["updated_only"]:
        assert records[case["id"]]["published_at_estimated"] is False
