"""Parse stage: a feed document (bytes) -> article records.

Contract
--------
:func:`parse_feed` ``(body, *, url, feed_name=None, fetched_at=None, headers=None, language=None,
feed_tags=None) -> ParsedFeed``. It never raises on bad input: a document that yields no
entries and is not a well-formed feed comes back with ``error`` set, a recovered ill-formed
one with ``warnings``. Messages name the entry (position and title) and the cause, not the
feed: every caller prefixes the feed URL it knows (``f"{url}: {message}"``).

- Dialects: everything feedparser reads (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, CDF) plus JSON Feed
  1.0/1.1, which feedparser 6.0 does not read: JSON is detected and mapped here.
- feedparser's ``bozo`` flag becomes a warning when entries were recovered, an error when
  none were. feedparser always gets the body as a stream, never a string, so it can never
  be made to fetch a URL or open a local file named in the body.
- ``ttl_seconds``: RSS ``<ttl>`` (minutes), else ``sy:updatePeriod``/``sy:updateFrequency``,
  else None. ``title``: the feed's title.
- One record per entry (field names as docs/architecture.md "Records"): ``id`` (``article_id`` of the
  canonical link, else of the entry id), ``url`` (canonical; relative links resolved against
  xml:base / the feed URL), ``feed_entry_id``, ``title`` (plain text), ``summary`` (plain text
  of the summary), ``html`` (the fullest content: content:encoded / Atom content / JSON
  content_html, else the summary), ``published_at`` (UTC ISO 8601 from published, else
  updated, in any zone), ``published_at_estimated`` (true when the entry had no usable date:
  ``fetched_at`` is used), ``fetched_at``, ``source`` {feed, name, domain}, ``authors``,
  ``feed_tags`` (configured tags then entry categories, no repeats), ``language`` (ISO 639-1,
  entry then feed declaration, then the configured one; None when nobody declared it).
- ``source.domain`` is the host of the article link without ``www.`` (the publisher, also
  for aggregator feeds), else of the feed's site link, else of the feed URL.
- An entry with neither a link nor an id is skipped with a warning naming it (title or
  position). Links that are not http(s) are ignored (the entry id is used).
"""

from __future__ import annotations

import calendar
import contextlib
import email.utils
import html as htmllib
import io
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from pipeline.clean import html_to_text, normalize_text
from pipeline.language import normalize_language
from pipeline.records import Record, article_id, canonical_url, parse_iso
from pipeline.redaction import redact

log = logging.getLogger(__name__)

#: ``sy:updatePeriod`` values in seconds.
UPDATE_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000, "yearly": 31536000}
#: Dates more than this far after the fetch time are treated as wrong (mis-declared zones, typos).
MAX_FUTURE = timedelta(days=2)


@dataclass
class ParsedFeed:
    """The outcome of parsing one feed document."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    ttl_seconds: int | None = None
    title: str | None = None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _strict_date(text: str) -> datetime | None:
    """ISO 8601 / RFC 3339 or RFC 822 read exactly (offsets such as +0530 included); else None."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        if (value := parse_iso(text)) is not None:
            return value
    try:
        return _aware(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _parse_date_text(text: str) -> datetime | None:
    """A date string in any form: strict forms first, then dateutil's general reader."""
    text = text.strip()
    if not text:
        return None
    value = _strict_date(text)
    if value is not None:
        return value
    from dateutil import parser as dateparser

    try:
        return _aware(dateparser.parse(text))
    except (ValueError, OverflowError, TypeError):
        return None


def _plain(value: str | None, *, is_html: bool = True) -> str:
    if not value:
        return ""
    if is_html:
        return " ".join(html_to_text(value).split())
    return " ".join(normalize_text(htmllib.unescape(value)).split())


def _domain(*urls: str | None) -> str | None:
    for candidate in urls:
        if not candidate:
            continue
        host = (urlsplit(candidate).hostname or "").lower().rstrip(".")
        if host:
            return host[4:] if host.startswith("www.") else host
    return None


def _http_link(link: str | None, base: str) -> str | None:
    if not link or not isinstance(link, str):
        return None
    link = link.strip()
    if not link:
        return None
    try:
        absolute = urljoin(base, link) if base else link
        scheme = urlsplit(absolute).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    try:
        return canonical_url(absolute)
    except ValueError:
        return None


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        item = " ".join(item.split())
        if item and item.casefold() not in seen:
            seen.add(item.casefold())
            out.append(item)
    return out


class _Context:
    """What every entry of one feed shares."""

    def __init__(
        self,
        url: str,
        feed_name: str | None,
        fetched_at: datetime,
        language: str | None,
        feed_tags: list[str] | None,
        max_entries: int | None = None,
    ) -> None:
        self.url = url
        self.max_entries = max_entries
        self.feed_name = feed_name
        self.fetched_at = fetched_at if fetched_at.tzinfo else fetched_at.replace(tzinfo=UTC)
        self.fetched_iso = _iso(self.fetched_at)
        self.config_language = normalize_language(language)
        self.feed_tags = list(feed_tags or [])
        self.feed_title: str | None = None
        self.feed_language: str | None = None
        self.site_link: str | None = None
        self.warnings: list[str] = []

    def capped(self, entries: list[Any]) -> list[Any]:
        """The first ``max_entries`` entries, with a warning naming the feed when there are more."""
        if self.max_entries is None or len(entries) <= self.max_entries:
            return entries
        self.warnings.append(
            f"feed {self.feed_name or self.url!r} lists {len(entries)} entries; only the first "
            f"{self.max_entries} are read (NEWSWIRE_MAX_ENTRIES_PER_FEED)"
        )
        return entries[: self.max_entries]

    def date(self, parsed: Any, raw: Any, label: str) -> datetime | None:
        """The entry date in UTC: exact forms of the raw text first (feedparser drops the minutes of
        offsets such as +0530 in non-RFC-822 strings), then feedparser's reading (it knows many
        odd and localised forms), then dateutil; None (with a warning) when nothing reads it."""
        raw = raw if isinstance(raw, str) else None
        value = _strict_date(raw) if raw else None
        if value is None and parsed:
            try:
                value = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                value = None
        if value is None and raw:
            value = _parse_date_text(raw)
            if value is None:
                self.warnings.append(f"{label}: unreadable date {raw!r}; fetch time used")
        if value is not None and value > self.fetched_at + MAX_FUTURE:
            self.warnings.append(f"{label}: date {raw or _iso(value)!r} is in the future; fetch time used")
            return None
        return value

    def record(
        self,
        *,
        link: str | None,
        entry_id: str | None,
        title: str,
        summary: str,
        html: str,
        published: datetime | None,
        authors: list[str],
        tags: list[str],
        language: str | None,
    ) -> Record:
        url = link
        entry_id = entry_id.replace("\x00", "").strip() or None if entry_id else None  # NUL never stored
        ident = article_id(url=url) if url else article_id(entry_id=entry_id)
        return {
            "id": ident,
            "url": url,
            "feed_entry_id": entry_id or url,
            "title": title,
            "summary": summary,
            "html": html,
            "published_at": _iso(published) if published else self.fetched_iso,
            "published_at_estimated": published is None,
            "fetched_at": self.fetched_iso,
            "source": {
                "feed": redact(self.url),  # a feed's password is never copied into its articles
                "name": self.feed_name or self.feed_title,
                "domain": _domain(url, self.site_link, self.url),
            },
            "authors": _dedupe(authors),
            "feed_tags": _dedupe(self.feed_tags + tags),
            "language": normalize_language(language) or self.feed_language or self.config_language,
        }


def _label(title: str, position: int) -> str:
    return f"entry {position} ({title[:80]!r})" if title else f"entry {position} (untitled)"


# ---------------------------------------------------------------------------------------------
# feedparser dialects


def _ttl(feed: Mapping[str, Any]) -> int | None:
    ttl = str(feed.get("ttl") or "").strip()
    if ttl.isdigit() and int(ttl) > 0:
        return int(ttl) * 60
    period = str(feed.get("sy_updateperiod") or "").strip().lower()
    if period in UPDATE_PERIODS:
        freq_text = str(feed.get("sy_updatefrequency") or "1").strip()
        frequency = int(freq_text) if freq_text.isdigit() and int(freq_text) > 0 else 1
        return max(1, UPDATE_PERIODS[period] // frequency)
    return None


def _detail_is_html(detail: Mapping[str, Any] | None) -> bool:
    kind = str((detail or {}).get("type") or "text/html").lower()
    return "html" in kind or "xml" in kind


def _entry_html(entry: Mapping[str, Any]) -> str:
    best = ""
    for content in entry.get("content") or []:
        value = content.get("value") or ""
        if not _detail_is_html(content):
            value = "".join(f"<p>{htmllib.escape(p)}</p>" for p in re.split(r"\n\s*\n", value) if p.strip())
        if len(value) > len(best):
            best = value
    if not best:
        summary = entry.get("summary") or ""
        if summary and not _detail_is_html(entry.get("summary_detail")):
            summary = "".join(
                f"<p>{htmllib.escape(p)}</p>" for p in re.split(r"\n\s*\n", summary) if p.strip()
            )
        best = summary
    return best


def _raw(entry: Mapping[str, Any], key: str) -> Any:
    """A key as stored, bypassing FeedParserDict's deprecated updated->published fallback."""
    return dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)


def _entry_link(entry: Mapping[str, Any], base: str) -> str | None:
    """The entry's article link: rel=alternate HTML links, then <link>, then a permalink guid.

    An RSS guid counts as the link only when it is an absolute http(s) URL: many feeds leave
    isPermaLink at its default for ids that are not URLs, and those must not be resolved into
    made-up addresses on the feed's host.
    """
    guid_is_link = bool(_raw(entry, "guidislink"))
    candidates: list[str] = []
    for link in entry.get("links") or []:
        if link.get("rel", "alternate") == "alternate" and "html" in str(link.get("type") or "text/html"):
            candidates.append(link.get("href") or "")
    if not guid_is_link:
        candidates.append(entry.get("link") or "")
    for candidate in candidates:
        found = _http_link(candidate, base)
        if found:
            return found
    entry_id = str(entry.get("id") or "").strip()
    if entry_id.lower().startswith(("http://", "https://")):
        return _http_link(entry_id, "")
    return None


_RELATIVE_REF_RE = re.compile(
    r"""(?:href|src)\s*=\s*["']?\s*(?![a-zA-Z][a-zA-Z0-9+.-]*:|//|#)""", re.IGNORECASE
)


def _resolved_html(html: str, base: str) -> str:
    return _absolute_links(html, base) if base and _RELATIVE_REF_RE.search(html) else html


def _entry_language(entry: Mapping[str, Any]) -> str | None:
    for key in ("content",):
        for content in entry.get(key) or []:
            if content.get("language"):
                return str(content["language"])
    for key in ("title_detail", "summary_detail"):
        detail = entry.get(key) or {}
        if detail.get("language"):
            return str(detail["language"])
    return str(entry["language"]) if entry.get("language") else None


def _parse_xml(body: bytes, ctx: _Context, headers: Mapping[str, str] | None, result: ParsedFeed) -> None:
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if response_headers:
        # with any header present feedparser flags a missing Content-Type as bozo
        response_headers.setdefault("content-type", "application/xml")
    # No Content-Location on purpose: feedparser would resolve bare guids into made-up URLs on
    # the feed's host. Relative links are resolved here, against xml:base and the feed URL (and
    # inside content by lxml, cheaper than feedparser's second sgmllib pass, which is off).
    # feedparser's HTML sanitiser stays on: ``html`` comes from untrusted feeds.
    response_headers.pop("content-location", None)
    parsed = feedparser.parse(
        io.BytesIO(body), response_headers=response_headers or None, resolve_relative_uris=False
    )
    feed = parsed.get("feed") or {}
    ctx.feed_title = _plain(feed.get("title"), is_html=_detail_is_html(feed.get("title_detail"))) or None
    ctx.feed_language = normalize_language(feed.get("language"))
    ctx.site_link = _http_link(feed.get("link"), ctx.url)
    result.title = ctx.feed_title
    result.ttl_seconds = _ttl(feed)
    entries = parsed.get("entries") or []
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        reason = f"{type(exc).__name__}: {exc}" if exc else "not well-formed"
        if not entries:
            kind = "not a feed" if not parsed.get("version") else "feed not well-formed"
            result.error = f"{kind} ({reason}); no entries"
            return
        ctx.warnings.append(f"feed not well-formed ({reason}); {len(entries)} entries recovered")
    elif not entries and not parsed.get("version") and not feed:  # CDF has no version; a channel is a feed
        result.error = "not a feed (no RSS, Atom, RDF or JSON Feed document found)"
        return
    _xml_entries(entries, ctx, result)
    if parsed.get("bozo") and not result.entries:
        result.error = f"feed not well-formed; {len(entries)} entries recovered but none has a link or an id"


def _xml_entries(entries: list[Any], ctx: _Context, result: ParsedFeed) -> None:
    for position, entry in enumerate(ctx.capped(entries), start=1):
        try:
            declared_base = str(
                (entry.get("title_detail") or entry.get("summary_detail") or {}).get("base") or ""
            )
            base = urljoin(ctx.url, declared_base) if declared_base else ctx.url
            title = _plain(entry.get("title"), is_html=_detail_is_html(entry.get("title_detail")))
            link = _entry_link(entry, base)
            entry_id = str(entry.get("id") or "").strip() or None
            if not link and not entry_id:
                ctx.warnings.append(f"{_label(title, position)} has neither link nor id; skipped")
                continue
            label = _label(title, position)
            published = None
            for key in ("published", "updated", "created"):
                if _raw(entry, key) or _raw(entry, key + "_parsed"):
                    published = ctx.date(_raw(entry, key + "_parsed"), _raw(entry, key), label)
                    if published is not None:
                        break
            authors = [a.get("name") or "" for a in entry.get("authors") or [] if isinstance(a, Mapping)]
            if not any(authors) and entry.get("author"):
                authors = [str(entry["author"])]
            tags = [
                str(t.get("label") or t.get("term") or "")
                for t in entry.get("tags") or []
                if isinstance(t, Mapping)
            ]
            summary_html = entry.get("summary") or ""
            result.entries.append(
                ctx.record(
                    link=link,
                    entry_id=entry_id,
                    title=title,
                    summary=_plain(summary_html, is_html=_detail_is_html(entry.get("summary_detail"))),
                    html=_resolved_html(_entry_html(entry), base),
                    published=published,
                    authors=[normalize_text(a) for a in authors],
                    tags=[normalize_text(htmllib.unescape(t)) for t in tags],
                    language=_entry_language(entry),
                )
            )
        except Exception as exc:  # one bad entry is a warning, the feed goes on
            log.warning("feed entry %s skipped", position, exc_info=True)
            ctx.warnings.append(f"entry {position}: skipped ({type(exc).__name__}: {exc})")


# ---------------------------------------------------------------------------------------------
# JSON Feed (https://www.jsonfeed.org/version/1.1/)


def _looks_like_json(body: bytes) -> bool:
    start = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return start.startswith((b"{", b"["))


def _absolute_links(fragment: str, base: str) -> str:
    """``fragment`` with relative href/src resolved against ``base`` (lxml does the work)."""
    import lxml.html

    if not base:
        return fragment
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
        root.make_links_absolute(base, resolve_base_href=False)
        text = lxml.html.tostring(root, encoding="unicode")
    except Exception:  # keep the original HTML when lxml cannot read it
        log.debug("lxml cannot read an HTML fragment; kept as it is", exc_info=True)
        return fragment
    return str(text[len("<div>") : -len("</div>")] if text.startswith("<div>") else text)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _json_authors(item: Mapping[str, Any]) -> list[str]:
    names = []
    for author in [*(item.get("authors") or []), item.get("author")]:
        if isinstance(author, Mapping) and author.get("name"):
            names.append(str(author["name"]))
        elif isinstance(author, str):
            names.append(author)
    return names


def _parse_json(body: bytes, ctx: _Context, result: ParsedFeed) -> None:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        result.error = f"invalid JSON feed ({exc})"
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        result.error = "JSON document is not a JSON Feed (no 'items' list)"
        return
    version = str(doc.get("version") or "")
    if "jsonfeed.org" not in version:
        ctx.warnings.append(f"JSON Feed without a jsonfeed.org version ({version!r})")
    base = ctx.url
    if isinstance(doc.get("feed_url"), str):
        base = urljoin(ctx.url, doc["feed_url"]) if ctx.url else doc["feed_url"]
    ctx.feed_title = _plain(doc.get("title"), is_html=False) or None
    ctx.feed_language = normalize_language(doc.get("language"))
    ctx.site_link = _http_link(doc.get("home_page_url"), base)
    result.title = ctx.feed_title
    feed_authors = _json_authors(doc)
    for position, item in enumerate(ctx.capped(doc["items"]), start=1):
        try:
            if not isinstance(item, Mapping):
                ctx.warnings.append(f"entry {position} is not a JSON object; skipped")
                continue
            title = _plain(str(item.get("title") or ""), is_html=False)
            link = _http_link(item.get("url"), base) or _http_link(item.get("external_url"), base)
            entry_id = str(item.get("id")).strip() if item.get("id") not in (None, "") else None
            if not link and not entry_id:
                ctx.warnings.append(f"{_label(title, position)} has neither link nor id; skipped")
                continue
            label = _label(title, position)
            published = None
            for key in ("date_published", "date_modified"):
                raw = item.get(key)
                if isinstance(raw, str) and raw.strip():
                    published = ctx.date(None, raw, label)
                    if published is not None:
                        break
            content_html = _str(item.get("content_html"))
            content_text = _str(item.get("content_text"))
            summary = _str(item.get("summary"))
            html = content_html or "".join(
                f"<p>{htmllib.escape(p)}</p>"
                for p in re.split(r"\n\s*\n", content_text or summary)
                if p.strip()
            )
            html = _resolved_html(html, link or base)
            tags = [str(t) for t in item.get("tags") or [] if isinstance(t, str | int | float)]
            result.entries.append(
                ctx.record(
                    link=link,
                    entry_id=entry_id,
                    title=title,
                    summary=_plain(summary, is_html=False) if summary else "",
                    html=html,
                    published=published,
                    authors=_json_authors(item) or feed_authors,
                    tags=tags,
                    language=item.get("language") if isinstance(item.get("language"), str) else None,
                )
            )
        except Exception as exc:  # one bad entry is a warning, the feed goes on
            log.warning("feed entry %s skipped", position, exc_info=True)
            ctx.warnings.append(f"entry {position}: skipped ({type(exc).__name__}: {exc})")


# ---------------------------------------------------------------------------------------------


def parse_feed(
    body: bytes,
    *,
    url: str,
    feed_name: str | None = None,
    fetched_at: datetime | None = None,
    headers: Mapping[str, str] | None = None,
    language: str | None = None,
    feed_tags: list[str] | None = None,
    max_entries: int | None = None,
) -> ParsedFeed:
    """Parse one feed document into records; never raises on bad input (see module doc).

    ``max_entries`` bounds the records made from one document (the first ones; a warning
    names the feed and how many it listed)."""
    ctx = _Context(url, feed_name, fetched_at or datetime.now(UTC), language, feed_tags, max_entries)
    result = ParsedFeed()
    if not isinstance(body, bytes | bytearray) or not body.strip():
        result.error = "empty document"
        return result
    try:
        if _looks_like_json(bytes(body)):
            _parse_json(bytes(body), ctx, result)
        else:
            _parse_xml(bytes(body), ctx, headers, result)
    except Exception as exc:  # a parser bug on one feed must not stop the others
        log.warning("feed parse failed", exc_info=True)
        result.error = f"cannot parse feed ({type(exc).__name__}: {exc})"
    result.warnings = list(dict.fromkeys(ctx.warnings))
    if result.error:
        result.entries = []
    return result
