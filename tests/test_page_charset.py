"""Article pages are decoded right when the server sends no charset (issue 15, item 4).

The pages are served by the loopback :class:`tests.support.feedserver.FeedServer` as plain ``text/html``
and fetched through :func:`pipeline.run.add_full_text`, the path ``newswire run`` takes, so the
decoding under test is the product's: ``<meta>`` charset anywhere in ``<head>``, strict UTF-8,
then a detector over the page's first 64 KB. The texts are our own writing.
"""

from __future__ import annotations

from typing import Any

from pipeline.clean import DETECT_BYTES, clean_records, decode_page, page_charset
from pipeline.config import FeedConfig
from pipeline.run import FeedStats, add_full_text
from pipeline.settings import Settings
from tests.support.feedserver import FeedServer

STORY = (
    "Le maire de Genève a présenté vendredi un plan pour les écoles du quartier des Pâquis. "
    "Les élèves déjeuneront à la cantine rénovée dès la rentrée, a-t-il précisé. "
    "In München begrüßten die Bürgerinnen die Öffnung der neuen Straßenbahnlinie über die Isarbrücke. "
    "Señora Núñez, directora de la escuela, dijo que la reforma llegó tarde pero es bienvenida."
)
WORDS = (
    "Genève",
    "présenté",
    "Pâquis",
    "déjeuneront",
    "rénovée",
    "München",
    "begrüßten",
    "Straßenbahnlinie",
    "Núñez",
)


def page(story: str, head: str = "") -> str:
    paragraphs = "".join(f"<p>{s.strip()}.</p>" for s in story.split(". ") if s.strip())
    return (
        f"<!DOCTYPE html><html><head><title>Pâquis schools</title>{head}</head>"
        f"<body><article>{paragraphs}</article></body></html>"
    )


def fetched_html(server: FeedServer, path: str, body: bytes) -> str:
    """The page's HTML as the run stage decodes it, served as ``text/html`` with no charset."""
    url = server.add(path, body, content_type="text/html")
    settings = Settings(allow_hosts=["127.0.0.1"], respect_robots=False, max_retries=0)
    entries: list[dict[str, Any]] = [{"id": path, "url": url, "html": "<p>a short summary</p>"}]
    stats = FeedStats(name="charset", url=url)
    add_full_text(FeedConfig(name="charset", url=url, full_text=True), entries, stats, settings)
    assert stats.warnings == []
    html = entries[0]["html"]
    assert isinstance(html, str)
    assert html != "<p>a short summary</p>"
    return html


def assert_story_text(html: str) -> None:
    assert "\ufffd" not in html
    text = next(clean_records([{"id": "x", "html": html, "url": "http://127.0.0.1/x"}]))["text"]
    for word in WORDS:
        assert word in text


def test_utf8_page_without_any_declaration(feed_server: FeedServer, unique_path: Any) -> None:
    html = fetched_html(feed_server, unique_path("utf8.html"), page(STORY).encode("utf-8"))
    assert_story_text(html)


def test_latin1_page_declared_by_a_meta_late_in_head(feed_server: FeedServer, unique_path: Any) -> None:
    # the <meta> comes after several KB of other head content: it is read anywhere in <head>
    filler = "".join(
        f'<meta name="keyword-{i}" content="schools, city council, budget {i}">' for i in range(120)
    )
    body = page(
        STORY, head=filler + '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">'
    )
    raw = body.encode("latin-1")
    assert raw.find(b"charset=ISO") > 4096
    html = fetched_html(feed_server, unique_path("latin1.html"), raw)
    assert html == body
    assert_story_text(html)


def test_windows1252_page_without_any_declaration(feed_server: FeedServer, unique_path: Any) -> None:
    story = (
        STORY + " \u201cC\u2019est une bonne nouvelle\u201d, a déclaré l\u2019adjointe \u2013 sans réserve."
    )
    body = page(story)
    html = fetched_html(feed_server, unique_path("cp1252.html"), body.encode("cp1252"))
    assert html == body
    assert_story_text(html)


def test_evidence_order() -> None:
    latin = page(STORY, head='<meta charset="iso-8859-1">').encode("latin-1")
    assert page_charset(latin) == "cp1252"  # a Latin-1 label means windows-1252, as in browsers
    assert page_charset(latin, "text/html; charset=KOI8-R") == "koi8-r"  # the HTTP header beats the meta
    # a header or meta claiming UTF-8 for bytes that are not is passed over
    assert page_charset(page(STORY).encode("cp1252"), "text/html; charset=utf-8") != "utf-8"
    utf8 = page(STORY).encode("utf-8")
    assert page_charset(b"\xef\xbb\xbf" + utf8, "text/html; charset=iso-8859-1") == "utf-8"  # the BOM wins
    assert decode_page(b"\xef\xbb\xbf" + utf8) == page(STORY)
    # a multi-megabyte undeclared page is decoded whole although only its start is sniffed
    long_body = page(STORY * (3 * DETECT_BYTES // len(STORY)))
    assert decode_page(long_body.encode("cp1252")) == long_body
