"""Clean stage: fragments and whole pages -> text; headline, boilerplate and unicode rules; records."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest

from pipeline.clean import (
    clean_html,
    clean_records,
    decode_page,
    extract_article,
    extract_body,
    is_whole_page,
    normalize_text,
    remove_repeated_headlines,
)
from pipeline.language import detect_language, normalize_language

PAGES = Path(__file__).parent / "data" / "pages"
ARTICLE_URL = "https://www.lanternpost.test/world/2025/04/water-pumps-kessra"


def read(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


# --- fragments -----------------------------------------------------------------------------------


def test_paragraphs_kept_with_one_blank_line_between() -> None:
    text = clean_html("<div><p>First  para\n graph.</p><p>Second one.</p>Tail text<br><br>After breaks</div>")
    assert text == "First para graph.\n\nSecond one.\n\nTail text\n\nAfter breaks"


def test_single_br_is_a_line_break_inside_a_paragraph() -> None:
    assert clean_html("<p>Line one<br/>Line two</p><p>Next</p>") == "Line one\nLine two\n\nNext"


def test_scripts_styles_nav_forms_and_share_boilerplate_removed() -> None:
    html = """
    <nav><a href="/">Home</a> <a href="/world">World</a></nav>
    <style>p { color: red }</style>
    <p>The council met on Friday.</p>
    <script>var x = "<p>not text</p>";</script>
    <div class="article-share-bar"><a>Facebook</a> <a>Twitter</a></div>
    <ul class="social-links"><li>Follow</li></ul>
    <form><input value="search"><button>Go</button></form>
    <p>Facebook Twitter Email</p>
    <p>Share on WhatsApp</p>
    <p>Advertisement</p>
    <div id="newsletter-signup"><p>Get our daily email</p></div>
    <p>Follow us on Instagram for more</p>
    <aside role="complementary"><p>Related: other things</p></aside>
    <p>It approved the budget.</p>
    <p>The post Council approves budget appeared first on Town Crier.</p>
    """
    assert clean_html(html) == "The council met on Friday.\n\nIt approved the budget."


def test_words_that_merely_contain_boilerplate_names_survive() -> None:
    html = (
        '<div class="shareholder-report"><p>Shareholders voted.</p></div>'
        '<div class="header-adaptive"><p>Ok.</p></div>'
    )
    assert clean_html(html) == "Shareholders voted.\n\nOk."


def test_entities_unescaped_including_double_escaped_ones() -> None:
    html = "<p>Fish &amp; chips &mdash; &#8220;cheap&#8221; at &pound;5 &amp;amp; rising&amp;#8230;</p>"
    assert clean_html(html) == "Fish & chips — “cheap” at £5 & rising…"


def test_unicode_normalised_nbsp_zero_width_and_controls() -> None:
    decomposed = "Cafe\u0301"  # e + combining acute
    html = (
        f"<p>{decomposed}\u00a0au\u200b lait\u2009ici\x07 \ufeffok\u00ad</p><p>\u00a0</p><p>می\u200cخواهم</p>"
    )
    text = clean_html(html)
    assert text == "Café au lait ici ok\n\nمی\u200cخواهم"  # ZWNJ is spelling in Persian: kept
    assert unicodedata.is_normalized("NFC", text)


def test_plain_text_input_keeps_its_paragraphs() -> None:
    assert clean_html("One line.\n\n\nTwo &amp; three.\n") == "One line.\n\nTwo & three."


def test_empty_and_whitespace_html_give_empty_text() -> None:
    assert clean_html("") == ""
    assert clean_html("<p> &nbsp; </p><script>x()</script>") == ""


# --- headlines ------------------------------------------------------------------------------------


def test_wire_story_repeated_headlines_removed_without_a_title() -> None:
    text = clean_html(read("wire_fragment.html"))
    assert text.startswith("A fragile ceasefire held overnight in Tarvel’s eastern districts")
    assert "Ceasefire holds in Tarvel as talks resume" not in text
    assert "Share this article" not in text
    assert "appeared first on" not in text
    assert text.endswith("no heavy shelling was reported.")
    assert "\u200b" not in text
    assert "\u00a0" not in text


def test_title_line_and_title_glued_to_first_paragraph_removed() -> None:
    title = "Rains cut roads to the northern valleys"
    html = (
        f"<h2>{title.upper()}</h2><p>{title}: Heavy rains cut the two roads on Sunday.</p>"
        f"<p>Crews expect to reopen them by Tuesday.</p><p>{title}</p>"
    )
    assert (
        clean_html(html, title=title)
        == "Heavy rains cut the two roads on Sunday.\n\nCrews expect to reopen them by Tuesday."
    )


def test_short_titles_are_not_stripped_from_the_start_of_a_sentence() -> None:
    assert clean_html("<p>Fire crews arrived at noon.</p>", title="Fire") == "Fire crews arrived at noon."


def test_consecutive_duplicate_paragraphs_collapse_but_distant_repeats_stay() -> None:
    paragraphs = ["Alpha said yes.", "Alpha said yes.", "Beta said no.", "Alpha said yes."]
    assert remove_repeated_headlines(paragraphs) == ["Alpha said yes.", "Beta said no.", "Alpha said yes."]


# --- whole pages ----------------------------------------------------------------------------------


def test_page_detection() -> None:
    assert is_whole_page(read("article.html"))
    assert is_whole_page("<?xml version='1.0'?>\n<!-- x --><html><body>x</body></html>")
    assert not is_whole_page("<p>Just a <b>fragment</b></p>")


def test_extract_article_text_metadata_date_and_canonical() -> None:
    article = extract_article(read("article.html"), ARTICLE_URL)
    text = article["text"]
    assert text.startswith("Engineers restored the two main water pumps in Kessra district on Thursday")
    assert text.endswith("funded by a grant from a regional development bank.")
    assert text.count("\n\n") == 4  # five paragraphs
    for junk in (
        "Home",
        "Share on Facebook",
        "Power cuts spread north",
        "All rights reserved",
        "2010",
        "By Tomas",
    ):
        assert junk not in text
    assert "Water pumps restored in Kessra district" not in text  # the h1 headline
    assert article["title"] == "Water pumps restored in Kessra district"
    assert article["authors"] == ["Tomas Rinaldi"]
    # 09:20 at +03:00, from the article:published_time meta, not the scripts' 2010/2011 dates
    assert article["published_at"] == "2025-04-18T06:20:00Z"
    # rel=canonical beats og:url; host lower-cased, utm_* and fragment dropped, page=1 kept
    assert article["canonical_url"] == "https://www.lanternpost.test/world/2025/04/water-pumps-kessra?page=1"


def test_date_is_never_taken_from_script_code_and_og_url_is_resolved() -> None:
    article = extract_article(read("article_scriptdate.html"), "https://city.example.test/x/y")
    assert article["published_at"] is None
    assert article["canonical_url"] == "https://city.example.test/culture/night-market"
    assert article["text"].startswith("After a two-year pause the night market is back")
    assert "Night market returns" not in article["text"]


@pytest.mark.parametrize(
    "extractor", ["trafilatura", "trafilatura-fast", "trafilatura-recall", "readability", "rules"]
)
def test_every_extractor_finds_the_body_and_drops_the_chrome(extractor: str) -> None:
    text = extract_body(read("article.html"), ARTICLE_URL, extractor=extractor)  # type: ignore[arg-type]
    assert "spare parts had to be brought in from the capital" in text
    assert "Council budget approved" not in text
    assert "All rights reserved" not in text


def test_clean_html_on_a_whole_page_extracts_the_article() -> None:
    text = clean_html(read("article.html"), url=ARTICLE_URL)
    assert text.startswith("Engineers restored")
    assert "Privacy" not in text


def test_page_wrapped_fragment_too_short_for_the_extractor_still_gives_text() -> None:
    html = "<html><head><title>T</title></head><body><p>Short item body.</p></body></html>"
    assert clean_html(html) == "Short item body."


def test_decode_page_uses_meta_charset_and_http_header() -> None:
    body = '<html><head><meta charset="windows-1252"></head><body><p>Café “quoted”</p></body></html>'
    raw = body.encode("cp1252")
    assert "Café “quoted”" in decode_page(raw)
    latin = "<html><body><p>Señor</p></body></html>".encode("latin-1")
    assert "Señor" in decode_page(latin, "text/html; charset=ISO-8859-1")


# --- records --------------------------------------------------------------------------------------


def test_clean_records_adds_text_title_language_and_keeps_fields_in_order() -> None:
    records: list[dict[str, Any]] = [
        {
            "id": "a",
            "html": read("wire_fragment.html"),
            "title": "Ceasefire holds in Tarvel as talks resume",
            "url": "https://x.test/a",
            "extra": {"kept": True},
        },
        {
            "id": "b",
            "html": "<p>Die Regierung hat am Montag in Berlin neue Regeln für den Hafen beschlossen.</p>",
        },
        {"id": "c", "summary": "no html here"},
        {
            "id": "d",
            "html": read("article.html"),
            "url": ARTICLE_URL,
            "published_at": "2025-06-01T00:00:00Z",
            "published_at_estimated": True,
            "authors": [],
        },
        {
            "id": "e",
            "html": "<p>Ein kurzer Text auf Deutsch, aber erklärt als Englisch.</p>",
            "language": "en",
        },
        {"id": "f", "html": "<p>x</p>", "error": "fetch: 500"},
    ]
    out = list(clean_records(records))
    assert [r["id"] for r in out] == ["a", "b", "c", "d", "e", "f"]
    a, b, c, d, e, f = out
    assert a["title"] == "Ceasefire holds in Tarvel as talks resume"
    assert a["extra"] == {"kept": True}
    assert a["text"].startswith("A fragile ceasefire")
    assert a["language"] == "en"
    assert "error" not in a
    assert b["language"] == "de"
    assert b["title"] == ""
    assert c["error"]
    assert "no html" in c["error"]
    assert c["summary"] == "no html here"
    assert d["title"] == "Water pumps restored in Kessra district"  # taken from the page
    assert d["published_at"] == "2025-04-18T06:20:00Z"
    assert d["published_at_estimated"] is False
    assert d["authors"] == ["Tomas Rinaldi"]
    assert d["url"] == ARTICLE_URL
    assert e["language"] == "en"  # declared language is kept
    assert f == records[5]  # failed upstream: untouched


def test_clean_records_keeps_the_feed_date_and_the_summary_when_the_page_is_thin() -> None:
    page = "<html><head><title>Subscribe</title></head><body><p>Please log in.</p></body></html>"
    summary = (
        "Officials confirmed on Monday that the northern border crossing will reopen for trucks next week."
    )
    (out,) = clean_records(
        [
            {
                "id": "p",
                "html": page,
                "summary": summary,
                "title": "Border crossing to reopen",
                "published_at": "2025-01-01T00:00:00Z",
                "published_at_estimated": False,
            }
        ]
    )
    assert out["text"] == summary
    assert out["published_at"] == "2025-01-01T00:00:00Z"


def test_extract_article_leaves_out_the_fields_not_asked_for() -> None:
    page = read("article.html")
    full = extract_article(page, ARTICLE_URL)
    part = extract_article(page, ARTICLE_URL, fields={"text", "title"})
    assert (part["text"], part["title"]) == (full["text"], full["title"])
    assert full["authors"] == ["Tomas Rinaldi"]
    assert full["published_at"] == "2025-04-18T06:20:00Z"
    assert full["canonical_url"]
    assert (part["authors"], part["published_at"], part["canonical_url"]) == ([], None, None)
    only_date = extract_article(page, ARTICLE_URL, fields={"published_at"})
    assert only_date["published_at"] == full["published_at"]
    assert only_date["authors"] == []
    with pytest.raises(ValueError, match="byline"):
        extract_article(page, ARTICLE_URL, fields={"text", "byline"})


def test_clean_records_looks_up_on_the_page_only_what_the_record_lacks() -> None:
    (out,) = clean_records(
        [
            {
                "id": "u",
                "html": read("article.html"),
                "authors": ["Harbour Desk"],
                "published_at": "2025-04-19T10:00:00Z",
                "published_at_estimated": False,
            }
        ]
    )
    assert out["url"] == "https://www.lanternpost.test/world/2025/04/water-pumps-kessra?page=1"  # canonical
    assert out["authors"] == ["Harbour Desk"]
    assert out["published_at"] == "2025-04-19T10:00:00Z"
    assert out["text"].startswith("Engineers restored the two main water pumps")


def test_a_record_that_breaks_the_cleaner_gets_an_error_and_the_rest_go_on() -> None:
    out = list(clean_records([{"id": "bad", "html": 12345}, {"id": "ok", "html": "<p>fine text here</p>"}]))
    assert out[0]["error"]
    assert out[0]["id"] == "bad"
    assert out[1]["text"] == "fine text here"
    assert "error" not in out[1]


# --- language -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("en-US", "en"),
        ("EN", "en"),
        ("fr_CA", "fr"),
        ("eng", "en"),
        ("ger", "de"),
        ("German", "de"),
        ("zh-Hant-TW", "zh"),
        ("", None),
        ("xx-klingon", None),
        ("und", None),
        (None, None),
    ],
)
def test_normalize_language(tag: str | None, code: str | None) -> None:
    assert normalize_language(tag) == code


def test_detect_language() -> None:
    assert (
        detect_language("Les forces soutenues par la coalition progressent dans la ville depuis mardi.")
        == "fr"
    )
    arabic = "قال مسؤولون إن القوات تقدمت في المدينة صباح اليوم"
    assert detect_language(arabic) == "ar"
    assert (
        detect_language("US-backed fighters gained ground against the group in the city on Wednesday.")
        == "en"
    )
    assert detect_language("ok") is None
    assert detect_language("12345 67890 !!!") is None
    assert detect_language("") is None


def test_normalize_text_is_idempotent() -> None:
    once = normalize_text("a\u00a0b &amp;amp; c\u200b")
    assert once == normalize_text(once) or "&" in once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a  b\u2028c\td\u00a0 e\u200bf", "a b c d ef"),  # runs, separators, tab, no-break, zero-width
        ("one space each\nand a line", "one space each\nand a line"),
        ("tail \u2029", "tail "),
        ("x\u3000\u3000y \x01 z", "x y z"),  # a control character between spaces leaves one space
    ],
)
def test_normalize_text_spaces(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_canonical_link_rel_is_a_token_in_any_case() -> None:
    head = (
        '<link rel="canonicalx" href="/wrong-1"><link rel="stylesheet" href="/wrong-2">'
        '<link rel="canonical" href=""><meta property="og:url" content="/from-og">'
        '<link rel=" Alternate\tCANONICAL " href="/quay-repaired">'
    )
    page = (
        f"<!DOCTYPE html><html><head><title>Quay wall repaired</title>{head}</head><body><article><p>"
        + "Workers finished repairing the collapsed section of the quay wall on Tuesday afternoon. " * 4
        + "</p></article></body></html>"
    )
    article = extract_article(page, "https://port.example.test/news/x")
    assert article["canonical_url"] == "https://port.example.test/quay-repaired"  # links before og:url
    without_link = page.replace("Alternate\tCANONICAL", "alternate")
    assert extract_article(without_link, "https://port.example.test/news/x")["canonical_url"] == (
        "https://port.example.test/from-og"
    )


def test_json_ld_date_is_metadata_and_is_read() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>Quay wall repaired</title>"
        '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle", '
        '"headline": "Quay wall repaired", "datePublished": "2024-11-05T16:45:00-05:00"}</script>'
        "</head><body><article><p>"
        + "Workers finished repairing the collapsed section of the quay wall on Tuesday afternoon. " * 4
        + "</p></article></body></html>"
    )
    article = extract_article(page, "https://port.example.test/news/quay")
    assert article["published_at"] == "2024-11-05T21:45:00Z"
    assert article["canonical_url"] is None


def test_clean_as_a_jsonl_filter_keeps_order_and_reports_failures() -> None:
    import io
    import json

    from pipeline.records import run_filter

    lines = [
        json.dumps({"id": "1", "html": "<p>Erste Meldung des Tages aus dem Rathaus der Stadt.</p>"}),
        "not json",
        json.dumps({"id": "2"}),
        json.dumps({"id": "3", "html": "<p>Third &amp; last</p>", "title": "T"}),
    ]
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_filter(clean_records, io.StringIO("\n".join(lines) + "\n"), stdout, stderr, name="clean")
    out = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert code == 1
    assert [o.get("id") for o in out] == ["1", None, "2", "3"]
    assert out[0]["language"] == "de"
    assert out[0]["text"].startswith("Erste Meldung")
    assert "error" in out[1]
    assert "error" in out[2]
    assert out[3]["text"] == "Third & last"
    assert out[3]["title"] == "T"
    assert "2" in stderr.getvalue()


@pytest.mark.parametrize(
    "page",
    [
        "<!DOCTYPE html>\n<html><head></head><body><p>High water at 06:12.</p></body></html>",
        "<html><body><p>Low\x01 water\x0b at 12:30\ufffe.</p></body></html>",
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/x.dtd">\n'
        "<html><body><p>Neap\x1f tide.</p></body></html>",
        '<html lang="en"/>\n<head></head><body><p>Spring tide.</p></body>',
    ],
)
def test_page_repairs_are_trafilaturas(page: str) -> None:
    from trafilatura.utils import repair_faulty_html

    from pipeline.clean import _repaired

    repaired = _repaired(page, page[:50].lower())
    assert repaired == repair_faulty_html(page, page[:50].lower())
    assert not any(char in repaired for char in "\x01\x0b\x1f\ufffe")  # characters XML cannot hold


FERRY_BODY = (
    "<p>"
    + "The ferry operator published a new winter timetable for the island routes on Friday. " * 3
    + "</p>"
)


def test_icons_styles_and_noscript_text_never_reach_the_author_or_the_text() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>Ferry timetable changes</title>"
        "<style>.byline{color:red}</style></head><body><article><h1>Ferry timetable changes</h1>"
        '<div class="byline"><svg viewBox="0 0 8 8"><title>Pencil icon</title><path d="M0 0"/></svg>'
        "Rosa Lindgren</div>"
        + FERRY_BODY
        + "<p>Tickets<noscript> (enable scripts to buy online)</noscript> are sold at the quay.</p>"
        "</article></body></html>"
    )
    article = extract_article(page, "https://ferries.example.test/news/timetable")
    assert article["authors"] == ["Rosa Lindgren"]  # the svg's <title> is no part of the name
    assert article["text"].endswith(
        "on Friday.\n\nTickets are sold at the quay."
    )  # text after <noscript> kept
    assert "color:red" not in article["text"]
    assert "enable scripts" not in article["text"]


def test_settings_json_gives_metadata_but_never_a_date() -> None:
    page = (
        "<!DOCTYPE html><html><head>"
        '<script type="application/settings+json">{"@context": "https://schema.org", "@type": "NewsArticle", '
        '"headline": "Ferry timetable changes", "datePublished": "2012-03-04T05:06:07Z"}</script>'
        "</head><body><article>" + FERRY_BODY + "</article></body></html>"
    )
    article = extract_article(page, "https://ferries.example.test/news/timetable")
    assert article["title"] == "Ferry timetable changes"  # trafilatura's metadata step reads it
    assert article["published_at"] is None  # script code, not JSON-LD: never a date source
    assert article["text"].startswith("The ferry operator published a new winter timetable")


def test_without_trafilaturas_internals_the_same_article_comes_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parse and pre-strip use trafilatura 2.0's internals (its repairs, its list of elements it deletes);
    a version that moves them gets its own loader and cleaning instead, with the same result."""
    import trafilatura.settings
    import trafilatura.utils

    page = read("article.html")
    expected = extract_article(page, ARTICLE_URL)
    monkeypatch.delattr(trafilatura.utils, "FAULTY_HTML")  # read by the repairs (_repaired)
    monkeypatch.delattr(trafilatura.settings, "MANUALLY_CLEANED")
    assert extract_article(page, ARTICLE_URL) == expected
    assert expected["text"]
