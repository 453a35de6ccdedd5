"""Parse stage: every dialect, dates and zones, links, ids, bozo handling (fixtures in tests/data/pages)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.parse import ParsedFeed, parse_feed
from pipeline.records import article_id, canonical_url

PAGES = Path(__file__).parent / "data" / "pages"
FETCHED = datetime(2025, 6, 5, 12, 0, tzinfo=UTC)


def parse(name: str, **kwargs: object) -> ParsedFeed:
    url = str(kwargs.pop("url", f"https://feeds.example.test/{name}"))
    body = (PAGES / name).read_bytes()
    return parse_feed(body, url=url, fetched_at=FETCHED, **kwargs)  # type: ignore[arg-type]


def by_title(result: ParsedFeed) -> dict[str, dict]:
    return {e["title"]: e for e in result.entries}


def test_rss20_entry_fields_links_and_tags() -> None:
    result = parse("rss20.xml", feed_name="Harbour Wire", feed_tags=["world", "maritime"])
    assert result.error is None
    assert result.title == "Harbour Wire & Partners"
    assert result.ttl_seconds == 45 * 60
    convoy = by_title(result)["Aid convoy reaches Port Selwyn after three-day delay"]
    # relative link resolved against the feed URL; utm_*, fbclid and the fragment dropped; id=42 kept
    assert convoy["url"] == "https://feeds.example.test/world/aid-convoy-port-selwyn?id=42"
    assert convoy["id"] == article_id(url=convoy["url"])
    assert convoy["feed_entry_id"] == "hw-2025-0042"
    # -0500 normalised to UTC
    assert convoy["published_at"] == "2025-03-04T02:15:00Z"
    assert convoy["published_at_estimated"] is False
    assert convoy["fetched_at"] == "2025-06-05T12:00:00Z"
    assert convoy["authors"] == ["Amira Haddad"]
    assert convoy["feed_tags"] == ["world", "maritime", "Humanitarian"]  # no case-only repeats
    assert convoy["source"] == {
        "feed": "https://feeds.example.test/rss20.xml",
        "name": "Harbour Wire",
        "domain": "feeds.example.test",
    }
    assert convoy["language"] == "en"
    # the fullest content wins over the description, entities are decoded once in the summary
    assert "three days later than planned" in convoy["html"]
    assert "<script" not in convoy["html"]
    assert convoy["summary"] == "Trucks carrying food & medicine arrived on Monday."


def test_rss20_dates_in_odd_forms_zones_and_bad_dates() -> None:
    result = parse("rss20.xml")
    entries = by_title(result)
    # "2025-03-04 06:00:00 +0530" is not RFC 822: read anyway, zone applied
    ferry = entries["Ferry services suspended as storm nears the coast"]
    assert ferry["published_at"] == "2025-03-04T00:30:00Z"
    assert ferry["published_at_estimated"] is False
    assert ferry["source"]["domain"] == "harbourwire.test"
    quota = entries["Fishermen protest new quota rules"]
    assert quota["published_at"] == "2025-06-05T12:00:00Z"
    assert quota["published_at_estimated"] is True
    assert any("sometime last week" in w for w in result.warnings)
    tides = entries["Tide tables for the week"]  # year 2100: not believed
    assert tides["published_at_estimated"] is True
    assert any("in the future" in w and "Tide tables" in w for w in result.warnings)


def test_entry_without_link_or_id_is_skipped_with_a_warning_naming_it() -> None:
    result = parse("rss20.xml")
    titles = [e["title"] for e in result.entries]
    assert "Orphan entry with nothing to point at" not in titles
    assert any(
        "Orphan entry with nothing to point at" in w and "neither link nor id" in w for w in result.warnings
    )
    assert len(result.entries) == 5


def test_guid_permalink_and_id_only_entries() -> None:
    entries = by_title(parse("rss20.xml"))
    master = entries["Harbour master retires after forty years"]
    assert master["url"] == "https://www.harbourwire.test/people/harbour-master"
    tides = entries["Tide tables for the week"]
    assert tides["url"] is None
    assert tides["id"] == article_id(entry_id="hw-tides-0310")
    assert tides["feed_entry_id"] == "hw-tides-0310"


def test_rss091_without_dates_uses_fetch_time_and_declared_language() -> None:
    result = parse("rss091.xml")
    assert result.error is None
    assert len(result.entries) == 2
    bridge = result.entries[0]
    assert bridge["url"] == "http://www.valley-gazette.test/news/bridge-reopens.html"
    assert bridge["published_at_estimated"] is True
    assert bridge["published_at"] == "2025-06-05T12:00:00Z"
    assert "Café owners" in bridge["summary"]  # ISO-8859-1 document, numeric entity
    assert bridge["language"] == "en"  # en-gb -> en
    assert bridge["source"]["name"] == "Valley Gazette"  # no configured name: the feed title


def test_rss10_rdf_dates_sy_update_period_and_creator() -> None:
    result = parse("rss10.rdf")
    assert result.ttl_seconds == 3600 // 4
    strike = result.entries[0]
    assert strike["url"] == "https://rundschau.example.test/welt/hafen-streik-101.html"
    assert strike["published_at"] == "2025-03-14T07:30:00Z"
    assert strike["authors"] == ["Petra Lang"]
    assert strike["feed_tags"] == ["Wirtschaft"]
    assert strike["language"] == "de"


def test_atom03_issued_date_and_escaped_content() -> None:
    result = parse("atom03.xml")
    assert result.error is None
    (entry,) = result.entries
    assert entry["title"] == "Le marché aux poissons déménage"
    assert entry["published_at"] == "2025-02-10T08:00:00Z"
    assert entry["feed_entry_id"] == "tag:courrier-port.example.test,2025:marche"
    assert entry["language"] == "fr"
    assert "<p>" in entry["html"]


def test_atom10_xml_base_xhtml_content_languages_and_updated_only() -> None:
    result = parse("atom10.xml")
    assert result.error is None
    assert not result.warnings
    assert result.title == "Northern Desk Dispatches"  # type="html" title as plain text
    pass_, bus, id_only = result.entries
    assert pass_["url"] == "https://northern-desk.example.test/news/mountain-pass-closed"  # xml:base
    assert pass_["published_at"] == "2025-05-01T22:45:00Z"  # updated only, +09:00
    assert pass_["authors"] == ["Kenji Sato", "Lena Berg"]
    assert pass_["feed_tags"] == ["Weather"]
    assert "three metres deep" in pass_["html"]  # xhtml content beats the text summary
    assert pass_["summary"] == "The pass will stay closed & crews are clearing drifts."
    assert bus["language"] == "es"  # entry xml:lang beats the feed's
    assert bus["published_at"] == "2025-05-01T21:00:00Z"  # published beats updated
    assert id_only["url"] is None
    assert id_only["id"] == article_id(entry_id="urn:uuid:3333-id-only")
    assert id_only["published_at_estimated"] is True


def test_json_feed_11() -> None:
    result = parse("feed.json", url="https://delta-monitor.example.test/feed.json", feed_tags=["rivers"])
    assert result.error is None
    assert result.title == "Delta Monitor"
    levels, clinic, bulletin = result.entries
    assert levels["url"] == "https://delta-monitor.example.test/reports/river-levels"
    assert levels["published_at"] == "2025-06-01T20:30:00Z"
    assert levels["authors"] == ["Ines Duarte"]
    assert levels["feed_tags"] == ["rivers", "floods", "delta"]
    assert 'href="https://delta-monitor.example.test/maps/levels"' in levels["html"]
    assert levels["summary"] == "Water levels dropped overnight."
    assert clinic["language"] == "pt"
    assert clinic["authors"] == ["Delta Monitor Staff"]  # feed-level authors inherited
    assert clinic["html"] == "<p>The clinic saw 140 patients.</p><p>It returns next month.</p>"
    assert bulletin["url"] is None
    assert bulletin["published_at_estimated"] is True
    assert any("Nothing to identify this item" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty document"),
        (b"   \n", "empty document"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "invalid JSON feed"),
        (b'{"hello": "world"}', "not a JSON Feed"),
        (b"[1, 2, 3]", "not a JSON Feed"),
    ],
)
def test_bad_documents_give_a_clear_error(body: bytes, fragment: str) -> None:
    result = parse_feed(body, url="https://bad.example.test/feed", fetched_at=FETCHED)
    assert result.entries == []
    assert result.error is not None
    assert fragment in result.error


def test_html_page_instead_of_a_feed_is_an_error() -> None:
    result = parse("notafeed.html", headers={"Content-Type": "text/html; charset=utf-8"})
    assert result.entries == []
    assert result.error
    assert "not a feed" in result.error


def test_truncated_feed_recovers_entries_with_a_warning() -> None:
    body = (PAGES / "rss20.xml").read_bytes()
    cut = body[: body.index(b"<title>Fishermen")]
    result = parse_feed(cut, url="https://feeds.example.test/cut.xml", fetched_at=FETCHED)
    assert result.error is None
    assert [e["title"] for e in result.entries][:2] == [
        "Aid convoy reaches Port Selwyn after three-day delay",
        "Ferry services suspended as storm nears the coast",
    ]
    assert any("not well-formed" in w and "recovered" in w for w in result.warnings)


def test_truncated_feed_with_no_entries_is_an_error() -> None:
    body = (PAGES / "rss20.xml").read_bytes()
    cut = body[: body.index(b"<item>") + 20]
    result = parse_feed(cut, url="https://feeds.example.test/cut.xml", fetched_at=FETCHED)
    assert result.entries == []
    assert result.error
    assert "not well-formed" in result.error


def test_wrong_charset_header_still_decodes() -> None:
    body = (PAGES / "rss091.xml").read_bytes()  # ISO-8859-1 bytes
    result = parse_feed(
        body,
        url="https://feeds.example.test/x",
        headers={"Content-Type": "application/rss+xml"},
        fetched_at=FETCHED,
    )
    assert result.entries
    assert "Café" in result.entries[0]["summary"]


def test_body_naming_a_url_or_path_is_never_fetched_or_opened() -> None:
    for body in (b"http://127.0.0.1:9/feed.xml", str(PAGES / "rss20.xml").encode()):
        result = parse_feed(body, url="https://feeds.example.test/x", fetched_at=FETCHED)
        assert result.entries == []
        assert result.error


def test_ids_are_stable_and_equal_across_dialects_for_the_same_link() -> None:
    first = parse("rss10.rdf").entries[0]
    again = parse("rss10.rdf").entries[0]
    assert first["id"] == again["id"]
    tracked = "https://Rundschau.example.test:443/welt/hafen-streik-101.html?utm_source=rss#top"
    assert first["id"] == article_id(url=canonical_url(tracked))


def test_records_are_json_serialisable() -> None:
    for name in ("rss091.xml", "rss10.rdf", "rss20.xml", "atom03.xml", "atom10.xml", "feed.json"):
        for entry in parse(name).entries:
            assert json.loads(json.dumps(entry)) == entry


def test_naive_fetched_at_is_taken_as_utc_and_ttl_absent_is_none() -> None:
    result = parse_feed(
        (PAGES / "rss091.xml").read_bytes(), url="https://f.test/x", fetched_at=datetime(2025, 1, 2, 3, 4, 5)
    )
    assert result.entries[0]["fetched_at"] == "2025-01-02T03:04:05Z"
    assert result.ttl_seconds is None


def test_cdf_channel() -> None:
    result = parse("channel.cdf", url="https://almanac.example.test/channel.cdf")
    assert result.error is None
    assert result.title == "Harbour Almanac"
    (entry,) = result.entries
    assert entry["url"] == "https://almanac.example.test/notes/lighthouse.html"
    assert entry["published_at"] == "2025-02-03T22:00:00Z"
    assert entry["summary"] == "The lamp at the east lighthouse was replaced on Monday."


@pytest.mark.parametrize(
    ("channel_xml", "ttl"),
    [
        ("<ttl>0</ttl><sy:updatePeriod>daily</sy:updatePeriod>", 86400),
        (
            "<ttl>soon</ttl><sy:updatePeriod>weekly</sy:updatePeriod>"
            "<sy:updateFrequency>7</sy:updateFrequency>",
            86400,
        ),
        ("<sy:updatePeriod>fortnightly</sy:updatePeriod>", None),
        ("<ttl>5</ttl><sy:updatePeriod>daily</sy:updatePeriod>", 300),
    ],
)
def test_ttl_and_syndication_period(channel_xml: str, ttl: int | None) -> None:
    body = (
        '<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel><title>T</title>'
        f"{channel_xml}<item><link>https://t.test/a</link></item></channel></rss>"
    ).encode()
    assert parse_feed(body, url="https://t.test/rss", fetched_at=FETCHED).ttl_seconds == ttl


def test_configured_language_is_the_last_resort() -> None:
    declared = parse("rss10.rdf", language="fr").entries[0]
    assert declared["language"] == "de"  # the feed says German
    undeclared = parse("channel.cdf", language="en-GB").entries[0]
    assert undeclared["language"] == "en"
    assert parse("channel.cdf").entries[0]["language"] is None


def test_non_http_links_are_ignored_in_favour_of_the_entry_id() -> None:
    body = (
        b'<rss version="2.0"><channel><title>T</title>'
        b"<item><title>Script link</title><link>javascript:alert(1)</link><guid>guid-7</guid></item>"
        b"<item><title>Mail link</title><link>mailto:desk@t.test</link></item>"
        b"</channel></rss>"
    )
    result = parse_feed(body, url="https://t.test/rss", fetched_at=FETCHED)
    assert [(e["url"], e["feed_entry_id"]) for e in result.entries] == [(None, "guid-7")]
    assert any("Mail link" in w for w in result.warnings)


def test_relative_links_inside_content_are_resolved_against_the_document_base() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://base.example.test/section/">'
        b"<title>B</title><entry><id>urn:x:1</id><title>Rel</title><link href="
        b'"story-1"/><content type="html">&lt;p&gt;See &lt;a href="../maps/a.html"&gt;map&lt;/a&gt; and '
        b'&lt;img src="/img/b.png"&gt;&lt;/p&gt;</content></entry></feed>'
    )
    (entry,) = parse_feed(body, url="https://feeds.example.test/atom", fetched_at=FETCHED).entries
    assert entry["url"] == "https://base.example.test/section/story-1"
    assert 'href="https://base.example.test/maps/a.html"' in entry["html"]
    assert 'src="https://base.example.test/img/b.png"' in entry["html"]


def test_nul_bytes_never_reach_url_or_feed_entry_id() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {
                "id": "tag:a\u0000b",
                "url": "https://example.org/a\u0000b",
                "title": "one",
                "content_text": "x",
            },
            {"id": "only-id\u0000", "title": "two", "content_text": "y"},
        ],
    }
    parsed = parse_feed(json.dumps(doc).encode(), url="https://example.org/feed.json")
    assert len(parsed.entries) == 2, parsed.warnings
    for entry in parsed.entries:
        assert "\x00" not in entry["feed_entry_id"], entry
    linked, bare = parsed.entries
    assert "\x00" not in linked["url"]
    assert linked["url"].startswith("https://example.org/a")
    assert linked["id"] == article_id(url=linked["url"])
    assert bare["url"] is None
    assert bare["feed_entry_id"] == "only-id"
    assert bare["id"] == article_id(entry_id="only-id")
