"""Clean stage: HTML (a feed fragment or a whole web page) -> plain article text.

Contract
--------
- :func:`clean_html` ``(html, *, url=None, title=None) -> str``: plain text, one paragraph per
  block, paragraphs separated by one blank line. Scripts, styles, forms, navigation, share/
  social/newsletter/advert boilerplate are removed; the headline repeated in the body is
  removed (a paragraph equal to the title, the headline repeated at the top of the body, or
  the title glued in front of the first paragraph); entities are unescaped (also the
  double-escaped ``&amp;amp;`` kind feeds produce); text is NFC with no-break spaces turned
  into spaces, zero-width characters and control characters dropped and whitespace collapsed.
  When ``html`` is a whole web page the main article is extracted first (:func:`extract_article`).
- :func:`extract_article` ``(page_html, url, *, fields=ARTICLE_FIELDS) -> dict`` with ``text``, ``title``,
  ``published_at`` (UTC ISO 8601 or None), ``authors`` (list), ``canonical_url`` (or None); the last
  three are looked for only when named in ``fields`` (else None / [] / None). The page is parsed
  once (as trafilatura's loader parses it) and what never holds text, metadata or a date
  (``<script>`` other than JSON-LD, ``<style>``, ``<svg>``, ``<noscript>``) is removed from the
  tree at once; title and authors, date and canonical URL read that tree, then the elements
  trafilatura's cleaning would delete anyway go, and the body extractor consumes it (every
  later pass walks a smaller tree: same output on the 91 benchmark pages for two thirds of
  the CPU-seconds with the steps below; issue 15). The body comes from trafilatura with ``favor_precision``,
  tables and ``fast=True`` (no fallback comparison with readability/jusText), picked in
  ``bench/bench_extract.py`` on both quality and speed: over the whole product path F1 0.971
  at 49 pages per CPU-second against 0.975 at 27 with the fallback (issue 15: within 0.005
  F1 and much faster wins; readability-lxml scored 0.959, our own BeautifulSoup rules 0.885);
  the others stay selectable (``extractor=``).
  The date comes from htmldate over the page's metadata and markup with every ``<script>``
  except JSON-LD removed first, so a date is never read from script code. Authors found in the
  markup (no author in the meta tags or JSON-LD) come from trafilatura's ``extract_author``
  rules. The canonical URL
  comes from ``<link rel=canonical>`` then ``og:url`` (resolved, then normalised by
  :func:`pipeline.records.canonical_url`).
- :func:`decode_page` ``(body, content_type) -> str`` decodes a fetched page with the charset
  :func:`page_charset` picks: BOM, HTTP ``charset``, ``<meta>`` charset anywhere in ``<head>``,
  strict UTF-8, then a detector over the first 64 KB only (a detector over whole pages cost a
  third of a run's CPU; issue 15).
- :func:`clean_records` maps records one to one, in order (the filter contract): it adds
  ``text``, ``title`` (a given title is kept, otherwise the page's), and ``language`` (via
  :mod:`pipeline.language` unless already set). When ``html`` is a whole page it also fills
  what the feed lacked (and looks only for that on the page): ``published_at`` (when missing or
  estimated; then ``published_at_estimated`` becomes false), ``authors`` (when empty), ``url`` (when missing,
  from the page's canonical URL; an existing ``url`` and the ``id`` are never changed). When the
  page yields less text than the feed's ``summary`` (paywall, consent wall), the summary is the
  text. A record without ``html``, or whose page yields no text, comes back with an ``error``
  field; it is never dropped. Records that arrive with an ``error`` pass through untouched.

Why some of this is hand-written: BeautifulSoup/lxml parse, but no maintained library turns a
*feed fragment* into paragraph text with the headline and share-button rules a newsroom needs
(trafilatura and readability are tuned for whole pages and drop short fragments), so the
block walker and the boilerplate/headline rules below are ours.
"""

from __future__ import annotations

import contextlib
import copy
import html as htmllib
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from bs4 import BeautifulSoup
from bs4.element import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag
from lxml import etree

from pipeline.records import Record, canonical_url

log = logging.getLogger(__name__)

Extractor = Literal["trafilatura", "trafilatura-fast", "trafilatura-recall", "readability", "rules"]
#: The extractor used by :func:`extract_article` (chosen by bench/bench_extract.py).
DEFAULT_EXTRACTOR: Extractor = "trafilatura-fast"

# ---------------------------------------------------------------------------------------------
# text normalisation

_DROP_CHARS = dict.fromkeys(
    [0x200B, 0x2060, 0xFEFF, 0x00AD, 0x180E, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E]
)
# ZWNJ (U+200C) and ZWJ (U+200D) are kept: they are spelling in Persian and Indic scripts and
# inside emoji sequences.
_SPACE_CHARS = {cp: " " for cp in [0x00A0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000, 0x0009]}
_TRANSLATE: dict[int, Any] = {**_DROP_CHARS, **_SPACE_CHARS}
#: any character :data:`_TRANSLATE` maps: ``str.translate`` looks every character up in a dict
#: (0.2 ms on an average article), a regex search finds that none is there in a fifteenth of that
_TRANSLATED_RE = re.compile("[" + "".join(re.escape(chr(cp)) for cp in sorted(_TRANSLATE)) + "]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES_RE = re.compile(r"[^\S\n]+")
#: the whitespace other than " " and "\n" that can be left after the translation and the control
#: characters' removal (the others are mapped to " " or dropped by then)
_LINE_SEPARATORS = ("\u2028", "\u2029")
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def normalize_text(text: str) -> str:
    """Unicode NFC, leftover entities unescaped, odd spaces -> space, zero-width/control dropped."""
    if "&" in text and _ENTITY_RE.search(text):
        text = _ENTITY_RE.sub(lambda m: htmllib.unescape(m.group(0)), text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    if _TRANSLATED_RE.search(text):
        text = text.translate(_TRANSLATE)
    text = _CONTROL_RE.sub("", text)
    # runs of spaces collapse to one; a lone " " needs no rewrite (the substitution was a match
    # per word gap), so the regex runs only when a run or an odd separator is there
    if "  " in text or any(sep in text for sep in _LINE_SEPARATORS):
        text = _SPACES_RE.sub(" ", text)
    return text


# ---------------------------------------------------------------------------------------------
# HTML -> paragraphs


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_BLOCK_TAGS = _words(
    "address article aside blockquote body caption center dd details dialog div dl dt fieldset "
    "figcaption figure footer h1 h2 h3 h4 h5 h6 header hgroup hr html li main nav ol p pre section "
    "summary table tbody thead tfoot tr ul"
)
_DROP_TAGS = _words(
    "script style noscript template iframe object embed svg canvas form button input select "
    "textarea nav menu head title meta link audio video source picture map area dialog"
)
_BOILERPLATE_TOKENS = _words(
    "share shares sharing sharebar sharetools social socials social-links newsletter subscribe "
    "subscription signup advert adverts advertisement advertising ad ads adslot adunit promo "
    "promos sponsored sponsor breadcrumb breadcrumbs cookie cookies consent comments comment-list "
    "nav navbar navigation menu sidebar popup modal toolbar recirc recirculation outbrain taboola "
    "related related-articles related-stories more-stories read-more print-only skip-link "
    "visually-hidden sr-only screen-reader-text"
)
_ROLE_DROP = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "dialog"})
_TOKEN_SPLIT_RE = re.compile(r"[\s_]+|(?<=[a-z])-(?=[a-z])")

_SOCIAL_WORDS = _words(
    "share tweet email e-mail print pin facebook twitter x linkedin whatsapp reddit telegram "
    "messenger copy link pinterest flipboard bluesky threads mastodon save comment comments on this "
    "article story the via"
)
_BOILERPLATE_LINE_RES = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^advertisement$",
        r"^(sponsored|promoted|paid)( content| post)?$",
        r"^the post .{1,300} appeared first on .{1,200}$",
        r"^(continue reading|read more|read the full (story|article)|click here to read)\b.{0,80}$",
        r"^(follow|like|join) us on\b.{0,80}$",
        r"^(sign up|subscribe)\b.{0,40}\b(newsletter|updates|alerts)\b.{0,60}$",
        r"^(related|more on this story|read also|see also|also read)"
        r"( (articles|stories|coverage|content))?:?$",
        r"^(share|share this|share this (article|story|page)|share on \w+)[:.!]?$",
        r"^skip to (main )?content$",
        r"^(image|photo|picture) (source|credit)s?:?.{0,80}$",
    )
]


def _is_boilerplate_element(tag: Tag) -> bool:
    attrs = tag.attrs or {}
    role = attrs.get("role")
    if isinstance(role, str) and role.lower() in _ROLE_DROP:
        return True
    if attrs.get("aria-hidden") == "true" or "hidden" in attrs:
        return True
    style = attrs.get("style")
    if isinstance(style, str) and re.search(r"display\s*:\s*none", style, re.IGNORECASE):
        return True
    names: list[str] = []
    classes = attrs.get("class")
    if isinstance(classes, list):
        names.extend(classes)
    elif isinstance(classes, str):
        names.append(classes)
    ident = attrs.get("id")
    if isinstance(ident, str):
        names.append(ident)
    for name in names:
        low = name.lower()
        if low in _BOILERPLATE_TOKENS:
            return True
        if any(tok in _BOILERPLATE_TOKENS for tok in _TOKEN_SPLIT_RE.split(low) if tok):
            return True
    return False


def _is_boilerplate_line(line: str) -> bool:
    if len(line) > 400:
        return False
    if any(rx.match(line) for rx in _BOILERPLATE_LINE_RES):
        return True
    words = re.findall(r"[\w-]+", line.lower())
    # a row of share buttons: "Facebook Twitter Email", "Share on WhatsApp"
    return (
        0 < len(words) <= 10
        and all(w in _SOCIAL_WORDS for w in words)
        and (
            {"share", "tweet", "facebook", "twitter", "whatsapp", "linkedin", "email", "pinterest"}
            & set(words)
        )
        != set()
    )


_BLOCK_END = object()
_NEWLINES_RE = re.compile(r"[\r\n]+")


def _paragraphs_from_tag(root: Tag | BeautifulSoup, *, drop_boilerplate: bool = True) -> list[str]:
    """Walk the tree (iteratively: deep pages must not hit the recursion limit) into paragraphs."""
    return _paragraphs_from_blocks(_text_blocks(root, drop_boilerplate), drop_boilerplate)


def _text_blocks(root: Tag | BeautifulSoup, drop_boilerplate: bool) -> list[str]:
    """The text of each block element under ``root``, in document order (line breaks kept as newlines)."""
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append("".join(current))
            current.clear()

    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if item is _BLOCK_END:
            flush()
            continue
        if isinstance(item, NavigableString):
            if isinstance(item, (Comment, Declaration, Doctype, ProcessingInstruction)):
                continue
            current.append(_NEWLINES_RE.sub(" ", str(item)))  # source newlines are spaces in HTML
            continue
        if not isinstance(item, Tag):
            continue
        name = (item.name or "").lower()
        if name in _DROP_TAGS:
            continue
        if drop_boilerplate and item is not root and _is_boilerplate_element(item):
            continue
        if name == "br":
            current.append("\n")
            continue
        if name in ("td", "th"):
            current.append(" ")
        if name == "img":
            continue
        if name in _BLOCK_TAGS:
            flush()
            stack.append(_BLOCK_END)
        stack.extend(reversed(item.contents))
    flush()
    return blocks


def _paragraphs_from_blocks(blocks: list[str], drop_boilerplate: bool) -> list[str]:
    """Paragraphs of normalised block texts: runs of non-blank lines, boilerplate lines dropped."""
    paragraphs: list[str] = []
    for block in blocks:
        lines = [line.strip() for line in normalize_text(block).split("\n")]
        group: list[str] = []
        for line in [*lines, ""]:
            if line:
                if not (drop_boilerplate and _is_boilerplate_line(line)):
                    group.append(line)
            elif group:
                paragraphs.append("\n".join(group))
                group = []
    return paragraphs


def _plain_paragraphs(text: str) -> list[str]:
    """Paragraphs of a plain-text body (blank lines separate paragraphs)."""
    paragraphs = []
    for chunk in re.split(r"\n\s*\n", normalize_text(text)):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        if lines:
            paragraphs.append("\n".join(lines))
    return paragraphs


_TAG_RE = re.compile(r"<[A-Za-z!/][^>]*>")
_PAGE_RE = re.compile(
    r"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>])", re.I | re.S
)


def is_whole_page(html: str) -> bool:
    """True when ``html`` is a web page (doctype/<html> first, or a <head> and a <body>)."""
    if _PAGE_RE.match(html[:4096]):
        return True
    head = html[:20000].lower()
    return "<head" in head and "<body" in head


def html_to_paragraphs(html: str, *, drop_boilerplate: bool = True) -> list[str]:
    """Paragraphs of an HTML fragment (or of plain text, when it holds no tags)."""
    if not _TAG_RE.search(html):
        return [p for p in _plain_paragraphs(htmllib.unescape(html)) if not _is_boilerplate_line(p)]
    soup = BeautifulSoup(html, "lxml")
    return _paragraphs_from_tag(soup, drop_boilerplate=drop_boilerplate)


def html_to_text(html: str) -> str:
    """A feed fragment as plain text (no headline rules); used for titles and summaries."""
    return "\n\n".join(html_to_paragraphs(html))


# ---------------------------------------------------------------------------------------------
# repeated headlines

_WORD_RE = re.compile(r"\w+")


def _key(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.casefold()))


def _strip_prefix_words(paragraph: str, n_words: int) -> str:
    matches = list(_WORD_RE.finditer(paragraph))
    end = matches[n_words - 1].end()
    return paragraph[end:].lstrip(" \t\n-–—:|.,;").strip()


def remove_repeated_headlines(paragraphs: list[str], title: str | None = None) -> list[str]:
    """Drop the headline where it repeats in the body; drop consecutive duplicate paragraphs.

    Headlines: the ``title``; and, with or without a title, a short first paragraph that is
    repeated right after it or glued in front of the next paragraph (wire copy does this).
    A paragraph equal to a headline goes; a paragraph that starts with a headline of 3+ words
    among the first paragraphs keeps only what follows the headline.
    """
    heads: set[str] = set()
    if title and _key(title):
        heads.add(_key(title))
    if len(paragraphs) > 1:
        first = _key(paragraphs[0])
        # a headline is short and is not a sentence (no full stop at the end)
        if first and len(first.split()) <= 30 and not paragraphs[0].rstrip().endswith("."):
            nxt = _key(paragraphs[1])
            if nxt == first or nxt.startswith(first + " "):
                heads.add(first)
    out: list[str] = []
    last_key = None
    for paragraph in paragraphs:
        key = _key(paragraph)
        if not key:
            if paragraph.strip():
                out.append(paragraph)
            continue
        if key in heads or key == last_key:
            continue
        if len(out) < 3:
            for head in sorted(heads, key=len, reverse=True):
                n = len(head.split())
                if n >= 3 and key.startswith(head + " "):
                    paragraph = _strip_prefix_words(paragraph, n)
                    key = _key(paragraph)
                    break
        if paragraph:
            out.append(paragraph)
            last_key = key
    return out


# ---------------------------------------------------------------------------------------------
# whole pages


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_HEADER_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_META_CHARSET_RE = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_XML_DECL_RE = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)", re.IGNORECASE)
#: Bytes of a page the charset detector reads (the last resort of :func:`decode_page`).
DETECT_BYTES = 64 * 1024


def _codec(label: str | bytes | None) -> str | None:
    """The Python codec of a charset label, or None when unknown. As browsers do (WHATWG
    Encoding), ISO-8859-1/ASCII labels mean windows-1252, and a UTF-16/32 label in an
    ASCII-compatible document (one without a BOM) means UTF-8."""
    if not label:
        return None
    import codecs

    if isinstance(label, bytes):
        label = label.decode("ascii", errors="ignore")
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    if name in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    if name.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return name


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _declared_in_head(body: bytes) -> str | None:
    """The charset an XML declaration or a ``<meta>`` anywhere in ``<head>`` declares."""
    if (m := _XML_DECL_RE.match(body[:1024])) and (codec := _codec(m.group(1))):
        return codec
    end = body.find(b"</head")
    if end < 0:
        end = body.lower().find(b"</head")
    head = body[: end if end >= 0 else DETECT_BYTES]
    for m in _META_CHARSET_RE.finditer(head):
        if codec := _codec(m.group(1)):
            return codec
    return None


def page_charset(body: bytes, content_type: str | None = None) -> str:
    """The codec a page's bytes are decoded with, cheapest evidence first: a byte-order mark,
    the HTTP ``charset``, an XML declaration or a ``<meta>`` charset anywhere in ``<head>``
    (a declared UTF-8 only when the bytes are valid UTF-8), strict UTF-8, then charset-normalizer over the
    first :data:`DETECT_BYTES` only (cut at a
    ``>`` so no character is split; a tie goes to windows-1252), else windows-1252."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec
    utf8 = _is_utf8(body)
    header = _HEADER_CHARSET_RE.search(content_type) if content_type else None
    for declared in (_codec(header.group(1)) if header else None, _declared_in_head(body)):
        # a declared UTF-8 that the bytes are not (a common server misconfiguration) is passed over
        if declared and (declared != "utf-8" or utf8):
            return declared
    if utf8:
        return "utf-8"
    from charset_normalizer import from_bytes

    sample = body[:DETECT_BYTES]
    if len(body) > DETECT_BYTES and (cut := sample.rfind(b">")) > 0:
        sample = sample[: cut + 1]
    results = from_bytes(sample)
    best = results.best()
    if best is None:
        return "cp1252"
    # single-byte codecs often tie (cp1250/cp1252/cp1257 decode accented Latin text equally
    # well): the tie goes to windows-1252, the web's default legacy encoding (WHATWG)
    if any(r.encoding == "cp1252" and r.chaos <= best.chaos for r in results):
        return "cp1252"
    return _codec(best.encoding) or "cp1252"


def decode_page(body: bytes, content_type: str | None = None) -> str:
    """An HTML page's text, decoded with :func:`page_charset` (undecodable bytes replaced)."""
    codec = page_charset(body, content_type)
    if codec in ("utf-8", "utf-16-le", "utf-16-be"):
        codec = {"utf-8": "utf-8-sig", "utf-16-le": "utf-16", "utf-16-be": "utf-16"}[codec]  # drop the BOM
    return body.decode(codec, errors="replace")


_PARSER: Any = None


def _html_parser() -> Any:
    """trafilatura's HTML parser settings (comments and processing instructions dropped), with a
    fixed element class: every element an ``lxml.html.HtmlElement`` as with lxml.html's parser,
    but chosen in C instead of by a Python lookup call for every element object lxml hands out
    (150,000 calls over the 91 benchmark pages; the form-control subclasses it would pick are
    never used here, and those elements are deleted before extraction)."""
    global _PARSER
    if _PARSER is None:
        from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction

        parser = etree.HTMLParser(
            collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True, remove_pis=True
        )
        parser.set_element_class_lookup(
            etree.ElementDefaultClassLookup(
                element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
            )
        )
        _PARSER = parser
    return _PARSER


#: the characters trafilatura's ``INVALID_XML_CHARS`` removes before parsing
_INVALID_XML_CHARS = tuple(
    chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF)
)


def _repaired(page_html: str, beginning: str) -> str:
    """trafilatura's ``repair_faulty_html``, with its character-removing regex run only when
    one of those characters is there: 28 substring tests scan a page faster than the regex,
    which was a quarter of the parse's CPU and almost never finds anything."""
    from trafilatura.utils import DOCTYPE_TAG, FAULTY_HTML, INVALID_XML_CHARS

    if any(char in page_html for char in _INVALID_XML_CHARS):
        page_html = INVALID_XML_CHARS.sub("", page_html)
    if "doctype" in beginning:
        firstline, _, rest = page_html.partition("\n")
        page_html = DOCTYPE_TAG.sub("", firstline, count=1) + "\n" + rest
    for line in page_html[:4096].splitlines()[:4]:
        if "<html" in line and line.endswith("/>"):
            return FAULTY_HTML.sub(r"\1>", page_html, count=1)
    return page_html


def _lxml_tree(page_html: str) -> Any:
    """The page parsed once, as trafilatura's loader parses it (its repairs, its parser
    settings, its checks), so the body extractor can reuse the very tree it would have built;
    None when the page does not parse as HTML."""
    from lxml.html import fromstring

    beginning = page_html[:50].lower()
    try:  # trafilatura's internals, as of 2.0 (here and in _repaired): another version may move them
        from trafilatura.utils import is_dubious_html

        page_html = _repaired(page_html, beginning)
    except ImportError:  # then its own loader (a little slower, the same tree)
        return _trafilatura_loaded(page_html)
    tree = None
    for as_bytes in (False, True):
        try:  # the str first; as bytes when lxml refuses a str with an encoding declaration
            attempt = page_html.encode("utf-8", "surrogatepass") if as_bytes else page_html
            tree = fromstring(attempt, parser=_html_parser())
        except Exception:  # lxml raises several types on junk
            log.debug("lxml cannot read the page", exc_info=True)
            tree = None
            continue
        if tree is not None and len(tree) >= 1:
            break
    if tree is not None and is_dubious_html(beginning) and len(tree) < 2:
        return None  # not (well-formed) HTML
    return tree


def _trafilatura_loaded(page_html: str) -> Any:
    """The page parsed by trafilatura's own loader; None when it does not parse as HTML."""
    from trafilatura import load_html

    try:
        return load_html(page_html)
    except Exception:  # lxml raises several types on junk
        log.debug("lxml cannot read the page", exc_info=True)
        return None


_JSON_LD = "application/ld+json"
_SETTINGS_JSON = "application/settings+json"  # read by trafilatura's metadata step (as JSON-LD)
_DROPPED = "newswire-dropped"  # the tag given to elements before one strip_elements() call


def _strip_never_text(tree: Any) -> bool:
    """Remove, in place and keeping the text that follows them, the elements whose content is
    never article text, metadata or a date: ``<script>`` other than JSON-LD (and the JSON
    settings blocks the metadata step reads, removed by :func:`_strip_settings_json` after it),
    ``<style>``, ``<svg>`` and ``<noscript>``. trafilatura deletes them too, but only after its
    own copies and whole-tree XPath passes; removing them once up front makes every later pass
    (metadata, date, canonical URL, body) walk a smaller tree and spares the date a copy.
    True when JSON settings blocks were kept (for :func:`_strip_settings_json`)."""
    settings = False
    for script in tree.iter("script"):
        kind = script.get("type")
        if kind == _SETTINGS_JSON:
            settings = True
        elif (kind or "").strip().lower() != _JSON_LD:
            script.tag = _DROPPED
    etree.strip_elements(tree, _DROPPED, "style", "svg", "noscript", with_tail=False)
    return settings


def _strip_settings_json(tree: Any) -> None:
    """Remove the JSON settings ``<script>`` blocks kept for the metadata step (so the date
    never reads script code other than JSON-LD)."""
    for script in tree.iter("script"):
        if script.get("type") == _SETTINGS_JSON:
            script.tag = _DROPPED
    etree.strip_elements(tree, _DROPPED, with_tail=False)


def _strip_cleaned_by_trafilatura(tree: Any) -> None:
    """Delete up front (text that follows kept, as trafilatura does) the elements trafilatura's
    own tree cleaning deletes with their content (navigation, footers, asides, forms' controls,
    media...), so its copies and whole-tree XPath passes before that cleaning walk a smaller
    tree. Left to it: ``<head>`` (its forum check reads JSON-LD there), ``<figure>`` (kept when
    it holds a table), ``<form>`` (kept when it holds most of the text) and ``<math>`` (its
    formulas are salvaged)."""
    try:  # trafilatura's internals, as of 2.0: another version may move them
        from trafilatura.settings import MANUALLY_CLEANED
    except ImportError:  # then trafilatura deletes them itself, later
        return
    keep = {"head", "figure", "form", "math"}
    etree.strip_elements(tree, *(tag for tag in MANUALLY_CLEANED if tag not in keep), with_tail=False)


def _page_date(tree: Any, url: str | None) -> str | None:
    """Publication date from metadata/markup only, read from a tree holding no script code
    (:func:`_strip_never_text` and :func:`_strip_settings_json` ran on it)."""
    from htmldate import find_date

    if tree is None:
        return None
    try:
        found = find_date(
            tree, extensive_search=False, original_date=True, outputformat="%Y-%m-%dT%H:%M:%S%z", url=url
        )
    except Exception:  # htmldate is best effort
        log.debug("htmldate failed", exc_info=True)
        return None
    if not found:
        return None
    try:
        value = datetime.strptime(found, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            value = datetime.strptime(found[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_CANONICAL_CASE = str.maketrans("CANONICAL", "canonical")  # XPath translate(@rel, 'CANONICAL', 'canonical')
_XML_SPACE_RE = re.compile(r"[ \t\r\n]+")  # XPath normalize-space's whitespace


def _rel_tokens(rel: str) -> list[str]:
    return _XML_SPACE_RE.split(rel.translate(_CANONICAL_CASE))


def _canonical_candidates(tree: Any) -> list[str]:
    """``//link[rel token 'canonical' (letters of CANONICAL folded)]/@href`` then
    ``//meta[@property='og:url' or @name='og:url']/@content``, in document order: one walk over
    the ``<link>`` and ``<meta>`` elements instead of two XPaths testing every element."""
    links: list[str] = []
    metas: list[str] = []
    for element in tree.getroottree().iter("link", "meta"):
        if element.tag == "link":
            rel, href = element.get("rel"), element.get("href")
            if rel is not None and href is not None and "canonical" in _rel_tokens(rel):
                links.append(href)
        elif "og:url" in (element.get("property"), element.get("name")):
            content = element.get("content")
            if content is not None:
                metas.append(content)
    return links + metas


def _page_canonical(tree: Any, url: str | None) -> str | None:
    if tree is None:
        return None
    candidates = _canonical_candidates(tree)
    for href in candidates:
        href = (href or "").strip()
        if not href:
            continue
        try:
            found = canonical_url(href, base=url)
        except ValueError:
            continue
        if found.startswith(("http://", "https://")):
            return found
    return None


def _page_metadata(tree: Any, with_authors: bool = True) -> tuple[str | None, list[str]]:
    """(title, authors) from the page metadata: the title and author steps of trafilatura's
    ``extract_metadata`` (meta tags, then JSON-LD, then the markup), without the rest of it
    (a second date search, site name, categories, tags, licence): 0.35 s instead of 0.87 s
    over the 91 benchmark pages, same titles and authors on every one (issue 15). Without
    ``with_authors`` the authors are not looked for (the markup search is a fifth of the
    product path's CPU on the pages that need it) and come back empty."""
    from trafilatura.metadata import examine_meta, extract_author, extract_meta_json, extract_title

    if tree is None:
        return None, []
    try:
        meta = examine_meta(tree)
        if meta.author and " " not in meta.author:  # as extract_metadata: one word is no name
            meta.author = None
        with contextlib.suppress(Exception):  # trafilatura's JSON-LD reader fails on odd data
            meta = extract_meta_json(tree, meta)
        if not meta.title:
            meta.title = extract_title(tree)
        if with_authors and not meta.author:
            meta.author = extract_author(tree)
        meta.clean_and_trim()
    except Exception:  # metadata is best effort
        log.debug("page metadata extraction failed", exc_info=True)
        return None, []
    title = normalize_text(meta.title).strip() if meta and meta.title else None
    authors: list[str] = []
    if with_authors and meta and meta.author:
        for name in re.split(r";|\s+and\s+", meta.author):
            name = normalize_text(name).strip()
            if name and name not in authors:
                authors.append(name)
    return title or None, authors


_CONTENT_HINT_RE = re.compile(
    r"article[-_]?body|story[-_]?body|entry[-_]?content|post[-_]?content|article[-_]?content|"
    r"article[-_]?text|story[-_]?content|main[-_]?content|body[-_]?text|content[-_]?body|articletext",
    re.IGNORECASE,
)


def _rules_extract(page_html: str) -> str:
    """Our own BeautifulSoup rules: a known article container, else the densest block of <p>."""
    soup = BeautifulSoup(page_html, "lxml")
    for tag in soup.find_all(["script", "style", "noscript", "template", "svg", "form", "nav", "footer"]):
        tag.decompose()
    candidates: list[Tag] = []
    candidates += soup.find_all(itemprop="articleBody")
    for tag in soup.find_all(True, attrs={"class": True}):
        classes = " ".join(tag.get("class") or [])
        if _CONTENT_HINT_RE.search(classes):
            candidates.append(tag)
    candidates += soup.find_all("article")
    best: Tag | None = None
    best_len = 0
    for tag in candidates:
        length = sum(len(p.get_text(" ", strip=True)) for p in tag.find_all("p"))
        if length > best_len:
            best, best_len = tag, length
    if best is None or best_len < 200:
        # densest parent of paragraphs
        scores: dict[int, tuple[Tag, int]] = {}
        for p in soup.find_all("p"):
            text = p.get_text(" ", strip=True)
            if len(text) < 40 or p.find_parent(["header", "aside"]):
                continue
            parent = p.parent
            if isinstance(parent, Tag):
                prev = scores.get(id(parent), (parent, 0))
                scores[id(parent)] = (parent, prev[1] + len(text))
        if scores:
            best = max(scores.values(), key=lambda pair: pair[1])[0]
    if best is None:
        best = soup.body or soup
    # link lists inside the article container (related links, tags) are boilerplate
    for tag in best.find_all(["ul", "ol", "div", "section", "table"]):
        if tag.decomposed:
            continue
        text_len = len(tag.get_text(" ", strip=True))
        link_len = sum(len(a.get_text(" ", strip=True)) for a in tag.find_all("a"))
        if text_len and link_len / text_len > 0.6:
            tag.decompose()
    return "\n\n".join(p for p in _paragraphs_from_tag(best) if len(p) > 1)


_TRAFILATURA_OPTIONS: dict[str, Any] = {}


def _trafilatura_options(extractor: str, url: str | None) -> Any:
    """trafilatura's settings for ``extractor`` (built once: reading its configuration on every
    call cost more than its tree copy), with this page's URL."""
    from trafilatura.settings import Extractor as Options

    template = _TRAFILATURA_OPTIONS.get(extractor)
    if template is None:
        precision = extractor != "trafilatura-recall"  # favor_precision scored best (bench_extract.py)
        template = _TRAFILATURA_OPTIONS[extractor] = Options(
            output_format="txt",
            fast=extractor == "trafilatura-fast",  # no fallback comparison with readability/jusText
            comments=False,
            tables=True,
            precision=precision,
            recall=not precision,
            dedup=False,
        )
    options = copy.copy(template)
    options.url = options.source = url
    return options


def _body_paragraphs(page_html: str, url: str | None, extractor: Extractor, tree: Any) -> list[str]:
    """The paragraphs of :func:`extract_body`."""
    if extractor in ("trafilatura", "trafilatura-fast", "trafilatura-recall"):
        import trafilatura

        if tree is not None:
            _strip_cleaned_by_trafilatura(tree)
        options = _trafilatura_options(extractor, url)
        text = trafilatura.extract(page_html if tree is None else tree, url=url, options=options)
        return _plain_paragraphs((text or "").replace("\n", "\n\n"))
    if extractor == "readability":
        from pipeline.extras import require

        Document = require("readability", "the readability extractor").Document

        summary = Document(page_html, url=url).summary(html_partial=True)
        return _plain_paragraphs("\n\n".join(html_to_paragraphs(summary)))
    if extractor == "rules":
        return _plain_paragraphs(_rules_extract(page_html))
    raise ValueError(f"unknown extractor {extractor!r}")


def extract_body(
    page_html: str, url: str | None = None, *, extractor: Extractor = DEFAULT_EXTRACTOR, tree: Any = None
) -> str:
    """The main article text of a page with one extractor (paragraphs separated by blank lines).

    ``tree`` (the page already parsed by lxml) spares trafilatura a second parse; it is
    changed in place, so it must be the caller's last use of it."""
    return "\n\n".join(_body_paragraphs(page_html, url, extractor, tree))


#: the fields of :func:`extract_article`; ``text`` and ``title`` are always looked for (the title
#: is one of the headlines cut from the text)
ARTICLE_FIELDS = frozenset({"text", "title", "published_at", "authors", "canonical_url"})


def extract_article(
    page_html: str,
    url: str,
    *,
    extractor: Extractor = DEFAULT_EXTRACTOR,
    fields: Iterable[str] = ARTICLE_FIELDS,
) -> dict[str, Any]:
    """Main article of a web page: {text, title, published_at, authors, canonical_url}.

    ``fields`` names the fields the caller uses: ``published_at``, ``authors`` or
    ``canonical_url`` left out are not looked for and come back None / [] / None (the
    caller's record already has them); ``text`` and ``title`` are always extracted."""
    wanted = frozenset(fields)
    if unknown := wanted - ARTICLE_FIELDS:
        known = ", ".join(sorted(ARTICLE_FIELDS))
        raise ValueError(f"extract_article: unknown fields {sorted(unknown)} (known: {known})")
    tree = _lxml_tree(page_html)  # the one parse: metadata, date and canonical read it, the body last
    settings = tree is not None and _strip_never_text(tree)
    title, authors = _page_metadata(tree, with_authors="authors" in wanted)
    if settings:  # a whole-tree pass only on the pages that have such blocks
        _strip_settings_json(tree)
    published_at = _page_date(tree, url) if "published_at" in wanted else None
    canonical = _page_canonical(tree, url) if "canonical_url" in wanted else None
    reuse = tree is not None and extractor.startswith("trafilatura")
    body = _body_paragraphs(page_html, url, extractor, tree if reuse else None)
    paragraphs = remove_repeated_headlines(body, title)
    return {
        "text": "\n\n".join(paragraphs),
        "title": title,
        "published_at": published_at,
        "authors": authors,
        "canonical_url": canonical,
    }


# ---------------------------------------------------------------------------------------------
# public stage


def _page_paragraphs(
    page_html: str, url: str | None, title: str | None, fields: Iterable[str] = ARTICLE_FIELDS
) -> tuple[list[str], dict[str, Any]]:
    """Paragraphs of a whole page's article (falling back to the page's own blocks when the
    extractor finds nothing, e.g. a feed item wrapped in <html><body>) and its metadata
    (``fields`` as :func:`extract_article`'s)."""
    article = extract_article(page_html, url or "", fields=fields)
    paragraphs = _plain_paragraphs(article["text"])
    if not paragraphs:
        paragraphs = html_to_paragraphs(page_html)
    return remove_repeated_headlines(paragraphs, title or article["title"]), article


def clean_html(html: str, *, url: str | None = None, title: str | None = None) -> str:
    """Plain text of ``html`` (a feed fragment or a whole page), paragraphs kept; see module doc."""
    if not html or not html.strip():
        return ""
    if is_whole_page(html):
        return "\n\n".join(_page_paragraphs(html, url, title)[0])
    return "\n\n".join(remove_repeated_headlines(html_to_paragraphs(html), title))


def _fields_to_fill(record: Record, url: str | None) -> set[str]:
    """The page fields :func:`_clean_one` can use for ``record``: the date, the authors and the
    URL only when the record lacks them (or its date is estimated); the others are not looked
    for (issue 15: the author markup search alone is a fifth of the extraction's CPU)."""
    fields = {"text", "title"}
    if not record.get("published_at") or record.get("published_at_estimated"):
        fields.add("published_at")
    if not record.get("authors"):
        fields.add("authors")
    if not url:
        fields.add("canonical_url")
    return fields


def _clean_one(record: Record) -> Record:
    out = dict(record)
    html = record.get("html")
    if not isinstance(html, str) or not html.strip():
        out["error"] = "clean: record has no html to clean"
        out.setdefault("text", "")
        return out
    url = record.get("url") if isinstance(record.get("url"), str) else None
    given_title = (
        record.get("title") if isinstance(record.get("title"), str) and record.get("title") else None
    )
    if is_whole_page(html):
        paragraphs, article = _page_paragraphs(html, url, given_title, _fields_to_fill(record, url))
        title = given_title or article["title"]
        text = "\n\n".join(paragraphs)
        summary = record.get("summary") if isinstance(record.get("summary"), str) else ""
        if summary and len(text) < len(summary):  # paywall or consent page: the feed said more
            text = "\n\n".join(remove_repeated_headlines(html_to_paragraphs(summary), title))
        if not text:
            out["error"] = "clean: no article text found in the page"
        if article["published_at"] and (
            not record.get("published_at") or record.get("published_at_estimated")
        ):
            out["published_at"] = article["published_at"]
            out["published_at_estimated"] = False
        if article["authors"] and not record.get("authors"):
            out["authors"] = article["authors"]
        if article["canonical_url"] and not url:
            out["url"] = article["canonical_url"]
    else:
        title = given_title or None
        text = "\n\n".join(remove_repeated_headlines(html_to_paragraphs(html), title))
    out["text"] = text
    out["title"] = normalize_text(title).strip() if title else (title or "")
    if not out.get("language"):
        from pipeline.language import detect_language

        out["language"] = detect_language(f"{out['title']}\n\n{text}")
    return out


def clean_records(records: Iterable[Record]) -> Iterator[Record]:
    """The clean stage over records (see module doc): one output per input, in order."""
    for record in records:
        if record.get("error"):
            yield record
            continue
        try:
            yield _clean_one(record)
        except Exception as exc:  # one bad record never stops the others
            log.warning("cleaning record %r failed", record.get("id"), exc_info=True)
            out = dict(record)
            out["error"] = f"clean: {type(exc).__name__}: {exc}"
            yield out
