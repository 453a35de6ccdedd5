"""The author named in a page's markup: trafilatura's ``extract_author`` rules, evaluated in Python.

Contract
--------
:func:`markup_author` ``(tree) -> str | None`` returns what ``trafilatura.metadata.extract_author``
returns for the same lxml tree (trafilatura 2.3): on a copy of the page, the comment, sidebar,
title, date, quote, figure and ``<time>`` elements its ``AUTHOR_DISCARD_XPATHS`` name are deleted
(the text after each kept), then the first of its three ``AUTHOR_XPATHS`` that finds an element
whose text is 3 to 119 characters long gives the author, normalised by trafilatura's
``normalize_authors``. The tree passed in is not changed.

Why: trafilatura evaluates those five XPath expressions with EXSLT ``re:test`` predicates, and
lxml calls back into Python for every ``re:test`` on every element: 5.3 ms per page over the 91
benchmark pages, the largest single cost of the metadata step (issue 15). The same predicates
tested in one Python pass per expression cost a fraction of that. The rules below are a
transcription of trafilatura's expressions (``trafilatura/xpaths.py``); ``tests/test_clean.py``
checks them against ``extract_author`` on pages that exercise every branch, so an upgrade of
trafilatura that changes them fails the tests instead of drifting silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from lxml import etree

Predicate = Callable[[Any], bool]

_DISCARD_TAGS = frozenset({"a", "div", "section", "span"})
_DISCARD_ID_RE = re.compile(r"^comments|comment-?list|ProductReviews")
_DISCARD_CLASS_RE = re.compile(
    r"^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram|"
    r"article-(?:share|support)|print|category|meta-date|meta-reviewer"
)

_SPECIFIC_TAGS = frozenset({"a", "address", "div", "link", "p", "span", "strong"})
_SPECIFIC_CLASS_RE = re.compile(r"author-?name|AuthorName|authorName")
_GENERIC_TAGS = frozenset({"a", "div", "h3", "h4", "p", "span"})
_GENERIC_ID_RE = re.compile(r"author|zuozhe|bianji|xiaobian")
_GENERIC_CLASS_RE = re.compile(
    r"author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name"
)
_ANY_ID_RE = re.compile(r"[Aa]uthor")
_ANY_CLASS_RE = re.compile(r"[Aa]uthor|screenname|writer|[Bb]yline")


def _discarded(elem: Any) -> bool:
    """AUTHOR_DISCARD_XPATHS[0]: comment, sidebar, title, date... containers."""
    if elem.tag not in _DISCARD_TAGS:
        return False
    ident, cls = elem.get("id") or "", elem.get("class") or ""
    return (
        ident == "comments"
        or cls in ("comments", "title", "date")
        or _DISCARD_ID_RE.search(ident) is not None
        or _DISCARD_CLASS_RE.search(cls) is not None
        or "Figure" in (elem.get("data-component") or "")
    )


def _string_value(elem: Any) -> str:
    return "".join(elem.itertext())


def _specific(elem: Any) -> bool:
    """AUTHOR_XPATHS[0]: rel/id/class/itemprop ``author`` and the like, or an ``<author>``."""
    if elem.tag == "author":
        return True
    if elem.tag not in _SPECIFIC_TAGS:
        return False
    get = elem.get
    return (
        get("rel") == "author"
        or get("id") == "author"
        or get("class") == "author"
        or get("itemprop") == "author name"
        or any(_string_value(child) == "me" for child in elem.iterchildren("rel"))
        or get("data-testid") in ("AuthorCard", "AuthorURL")
        or _SPECIFIC_CLASS_RE.search(get("class") or "") is not None
    )


def _generic(elem: Any) -> bool:
    """AUTHOR_XPATHS[1]: bylines, user names, author-ish ids and classes on common tags."""
    if elem.tag not in _GENERIC_TAGS:
        return False
    cls = elem.get("class") or ""
    return (
        cls in ("byline", "username", "byl", "BBL")
        or "author" in (elem.get("itemprop") or "")
        or _GENERIC_ID_RE.search(elem.get("id") or "") is not None
        or _GENERIC_CLASS_RE.search(cls) is not None
    )


def _any(elem: Any) -> bool:
    """AUTHOR_XPATHS[2], the last resort: any element with a byline/author/writer mark."""
    return (
        "Byline" in (elem.get("data-component") or "")
        or "author" in (elem.get("itemprop") or "")
        or _ANY_ID_RE.search(elem.get("id") or "") is not None
        or _ANY_CLASS_RE.search(elem.get("class") or "") is not None
    )


_AUTHOR_RULES: tuple[Predicate, ...] = (_specific, _generic, _any)


def _delete(elem: Any) -> None:
    """trafilatura's ``delete_element``: the element goes, the text after it stays."""
    from trafilatura.xml import delete_element

    delete_element(elem)


def markup_author(tree: Any) -> str | None:
    """The author trafilatura's ``extract_author`` finds in ``tree`` (see the module doc)."""
    from trafilatura.json_metadata import normalize_authors
    from trafilatura.utils import trim

    subtree = deepcopy(tree)
    for elem in [e for e in subtree.iterdescendants(etree.Element) if _discarded(e)]:
        _delete(elem)
    for elem in list(subtree.iter("time", "figure")):
        _delete(elem)
    elements = list(subtree.iter(etree.Element))
    for rule in _AUTHOR_RULES:
        for elem in elements:
            if not rule(elem):
                continue
            content = trim(" ".join(elem.itertext()))
            if content and 2 < len(content) < 120:
                return normalize_authors(None, content)
    return None
