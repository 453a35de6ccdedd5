"""From what a person types to a :class:`~pipeline.stores.base.SearchQuery`.

Contract: :func:`build_query` turns user-facing values (an actor or location name in
any spelling, a date such as ``2017-06-07``, ``monday``, ``3d`` or ``yesterday``, a
point ``lat,lon,km``, a box ``top,left,bottom,right``) into a structured query. Names
are resolved through the tagger's own gazetteer, so ``--actor ISIS`` and ``--actor
"Islamic State"`` mean the same entity. An actor the gazetteer does not know is searched
under the id the tagger gives names found only by its statistical NER; an unknown place
is an error. Every bad value raises :class:`QueryError` naming the option and the value;
stores never see unvalidated user input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.stores.base import Article, SearchQuery, SearchResult

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
RELATIVE = re.compile(r"^(\d+)\s*(h|d|w)$")


class QueryError(ValueError):
    """A search option has a value that cannot be used; the message says which and why."""


def parse_when(value: str, option: str, now: datetime | None = None, end_of_day: bool = False) -> datetime:
    """A point in time (UTC) from ISO 8601, ``today``, ``yesterday``, a weekday or ``3d``/``12h``/``2w``."""
    now = now or datetime.now(UTC)
    text = value.strip().lower()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day: datetime | None = None
    if text == "now":
        return now
    if text == "today":
        day = today
    elif text == "yesterday":
        day = today - timedelta(days=1)
    elif text in WEEKDAYS:  # the most recent such day (today counts)
        day = today - timedelta(days=(today.weekday() - WEEKDAYS.index(text)) % 7)
    elif m := RELATIVE.match(text):
        amount, unit = int(m.group(1)), m.group(2)
        return now - {"h": timedelta(hours=amount), "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]
    else:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(
                f"{option}: {value!r} is not a date (use 2017-06-07, 2017-06-07T12:00Z, today, "
                "yesterday, a weekday, or 12h / 3d / 2w)"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        is_date_only = len(value.strip()) == 10
        if is_date_only and end_of_day:
            return parsed + timedelta(days=1) - timedelta(microseconds=1)
        return parsed.astimezone(UTC)
    return day + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else day


def parse_floats(value: str, option: str, count: int) -> list[float]:
    try:
        numbers = [float(p) for p in value.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) != count:
        raise QueryError(f"{option}: {value!r} needs {count} comma-separated numbers")
    return numbers


def resolve(
    names: Sequence[str], resolver: Callable[[str], list[str]], option: str,
    fallback: Callable[[str], str] | None = None,
) -> list[list[str]]:
    """One id group per name. A name the gazetteer does not know becomes ``fallback(name)``
    (actors: the id the tagger gives a name found only by NER) or raises QueryError."""
    groups = []
    for name in names:
        if not name.strip():
            raise QueryError(f"{option}: empty name")
        ids = resolver(name)
        if not ids and fallback is not None:
            ids = [fallback(name)]
        if not ids:
            raise QueryError(f"{option}: no known place is called {name!r}")
        groups.append(ids)
    return groups


def build_query(
    text: str = "",
    actors: Sequence[str] = (),
    locations: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    sources: Sequence[str] = (),
    languages: Sequence[str] = (),
    countries: Sequence[str] = (),
    near: str | None = None,
    bbox: str | None = None,
    sort: str = "relevance",
    limit: int = 20,
    collapse: bool = True,
    now: datetime | None = None,
) -> SearchQuery:
    """Validate and resolve user values into a SearchQuery (see module docstring)."""
    if sort not in ("relevance", "date"):
        raise QueryError(f"--sort: {sort!r} is not one of relevance, date")
    if not 1 <= limit <= 1000:
        raise QueryError(f"--limit: {limit} is not between 1 and 1000")
    query = SearchQuery(text=text.strip(), sort=sort, limit=limit, collapse=collapse)  # type: ignore[arg-type]
    if actors or locations:
        from pipeline.tag import get_tagger
        from pipeline.tag.normalize import slug

        tagger = get_tagger()
        query.actor_ids = resolve(actors, tagger.resolve_actor, "--actor", lambda n: f"actor:{slug(n)}")
        query.location_ids = resolve(locations, tagger.resolve_location, "--location")
    if since:
        query.since = parse_when(since, "--since", now)
    if until:
        query.until = parse_when(until, "--until", now, end_of_day=True)
    if query.since and query.until and query.since > query.until:
        raise QueryError(f"--since {since} is after --until {until}")
    query.sources = [s for s in sources if s]
    query.languages = [lang.lower() for lang in languages if lang]
    query.country_codes = [c.upper() for c in countries if c]
    if near:
        lat, lon, km = parse_floats(near, "--near", 3)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and km > 0):
            raise QueryError(f"--near: {near!r} is not lat,lon,km with a positive radius")
        query.near = (lat, lon, km)
    if bbox:
        top, left, bottom, right = parse_floats(bbox, "--bbox", 4)
        if top < bottom:
            raise QueryError(f"--bbox: {bbox!r}: top latitude is below bottom latitude")
        query.bbox = (top, left, bottom, right)
    return query


#: Fields the pipeline stores for its own use (dedupe state), never shown to users.
PRIVATE_FIELDS = ("minhash", "lsh_bands")


def public_article(article: Article) -> Article:
    """A copy of ``article`` without :data:`PRIVATE_FIELDS`."""
    return {k: v for k, v in article.items() if k not in PRIVATE_FIELDS}


def search_payload(result: SearchResult) -> dict[str, Any]:
    """``{"total", "hits", "facets", "next_after"}`` as users see it (``newswire search --json`` and
    ``/search``); ``next_after`` is the opaque cursor of the next page (:mod:`pipeline.cursor`) or None."""
    from pipeline.cursor import encode_cursor

    payload = result.to_json()
    payload["hits"] = [public_article(hit) for hit in payload["hits"]]
    payload["next_after"] = encode_cursor(result.next_after)
    return payload
