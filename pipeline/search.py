"""From what a person types to a :class:`~pipeline.stores.base.SearchQuery`.

Contract: :func:`build_query` turns user-facing values (an actor or location name in
any spelling, a date such as ``2017-06-07``, ``monday``, ``3d`` or ``yesterday``, a
point ``lat,lon,km``, a box ``top,left,bottom,right``) into a structured query. Names
are resolved through the tagger's own gazetteer, so ``--actor ISIS`` and ``--actor
"Islamic State"`` mean the same entity. An actor the gazetteer does not know is searched
under the id the tagger gives names found only by its statistical NER; an unknown place
is an error. Every bad value raises :class:`QueryError` naming the option and the value;
stores never see unvalidated user input. Dates given as a day (``2017-06-07`` or ``20170607``)
are inclusive: ``--until`` runs to the day's end. Languages must be ISO 639-1 codes and countries
ISO 3166-1 alpha-2 codes (:func:`check_codes`, pycountry). What the user should know about how a
name was searched (a capital searched as its government, an unknown actor and close names) is
kept in ``SearchQuery.notes`` (:func:`unknown_actor_notes`): the CLI prints them, the API answers them as
``notes``.

Limits (:func:`check_limits`, the one validation layer both stores rely on): a text query
of at most :data:`MAX_QUERY_CHARS` characters, :data:`MAX_QUERY_TERMS` words,
:data:`MAX_QUERY_PREFIXES` ``prefix*`` words and :data:`MAX_QUERY_DEPTH` nested
parentheses; at most :data:`MAX_FILTER_VALUES` values per repeatable filter; dates between
:data:`MIN_DATE` and :data:`MAX_DATE`; ``--near``/``--bbox`` latitudes in -90..90,
longitudes in -180..180 and a finite positive radius. Messages quote at most
:data:`SHOWN_CHARS` characters of a value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.records import parse_iso
from pipeline.redaction import redact
from pipeline.stores.base import Article, SearchQuery, SearchResult

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
RELATIVE = re.compile(r"^(\d+)\s*(h|d|w)$")
DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")  # 2017-06-07 or the compact 20170607

MAX_QUERY_CHARS = 1000
MAX_QUERY_TERMS = 64
MAX_QUERY_PREFIXES = 16
MAX_QUERY_DEPTH = 8
MAX_FILTER_VALUES = 50
MIN_DATE = datetime(1900, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
SHOWN_CHARS = 60
_WORD = re.compile(r"\w+\*?")


class QueryError(ValueError):
    """A search option has a value that cannot be used; the message says which and why."""


def shown(value: str) -> str:
    """``value`` quoted for a message, cut to :data:`SHOWN_CHARS` characters."""
    return repr(value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…")


def check_limits(text: str, **lists: Sequence[str]) -> None:
    """Raise :class:`QueryError` when the text query or a repeatable filter is beyond the
    module's limits (``lists``: option name without dashes -> its values)."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query: {len(text)} characters; at most {MAX_QUERY_CHARS} are allowed")
    words = _WORD.findall(text)
    if len(words) > MAX_QUERY_TERMS:
        raise QueryError(f"query: {len(words)} terms; at most {MAX_QUERY_TERMS} are allowed")
    prefixes = sum(1 for w in words if w.endswith("*"))
    if prefixes > MAX_QUERY_PREFIXES:
        raise QueryError(f"query: {prefixes} prefix* terms; at most {MAX_QUERY_PREFIXES} are allowed")
    depth = deepest = 0
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif not quoted and char == ")":
            depth = max(0, depth - 1)
    if deepest > MAX_QUERY_DEPTH:
        raise QueryError(f"query: parentheses nested {deepest} deep; at most {MAX_QUERY_DEPTH} are allowed")
    for name, values in lists.items():
        if len(values) > MAX_FILTER_VALUES:
            raise QueryError(f"--{name}: {len(values)} values; at most {MAX_FILTER_VALUES} are allowed")


def _in_range(when: datetime, option: str, value: str) -> datetime:
    if not MIN_DATE <= when <= MAX_DATE:
        raise QueryError(f"{option}: {shown(value)} is outside {MIN_DATE:%Y-%m-%d} .. {MAX_DATE:%Y-%m-%d}")
    return when


def parse_when(value: str, option: str, now: datetime | None = None, end_of_day: bool = False) -> datetime:
    """A point in time (UTC) from ISO 8601, ``today``, ``yesterday``, a weekday or ``3d``/``12h``/``2w``,
    between :data:`MIN_DATE` and :data:`MAX_DATE`."""
    try:
        return _in_range(_parse_when(value, option, now, end_of_day), option, value)
    except OverflowError:
        raise QueryError(
            f"{option}: {shown(value)} is outside {MIN_DATE:%Y-%m-%d} .. {MAX_DATE:%Y-%m-%d}"
        ) from None


def _parse_when(value: str, option: str, now: datetime | None, end_of_day: bool) -> datetime:
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
        return (
            now
            - {"h": timedelta(hours=amount), "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]
        )
    else:
        try:
            parsed = parse_iso(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise QueryError(
                f"{option}: {shown(value)} is not a date (use 2017-06-07, 2017-06-07T12:00Z, today, "
                "yesterday, a weekday, or 12h / 3d / 2w)"
            )
        is_date_only = DATE_ONLY.match(value.strip()) is not None
        if is_date_only and end_of_day:
            return parsed.replace(hour=23, minute=59, second=59, microsecond=999999)
        return parsed
    return day + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else day


def parse_floats(value: str, option: str, count: int) -> list[float]:
    """``count`` finite comma-separated numbers."""
    try:
        numbers = [float(p) for p in value.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        raise QueryError(f"{option}: {shown(value)} needs {count} comma-separated finite numbers")
    return numbers


def resolve(
    names: Sequence[str],
    resolver: Callable[[str], list[str]],
    option: str,
    fallback: Callable[[str], str] | None = None,
) -> list[list[str]]:
    """One id group per name. A name the gazetteer does not know becomes ``fallback(name)``
    (the id the tagger gives an actor or a place found only by statistical NER) or raises QueryError."""
    groups = []
    for name in names:
        if not name.strip():
            raise QueryError(f"{option}: empty name")
        ids = resolver(name)
        if not ids and fallback is not None:
            ids = [fallback(name)]
        if not ids:
            raise QueryError(f"{option}: no known place is called {shown(name)}")
        groups.append(ids)
    return groups


def check_codes(languages: Sequence[str], countries: Sequence[str]) -> None:
    """Raise :class:`QueryError` for a language that is not an ISO 639-1 code or a country that is
    not an ISO 3166-1 alpha-2 code (``english``, ``XX``): they would silently match nothing."""
    import pycountry

    for lang in languages:
        if lang and pycountry.languages.get(alpha_2=lang.strip().lower()) is None:
            named = pycountry.languages.get(name=lang.strip().title())
            hint = (
                f" (did you mean {named.alpha_2}?)" if named is not None and hasattr(named, "alpha_2") else ""
            )
            raise QueryError(f"--language: {shown(lang)} is not an ISO 639-1 language code{hint}")
    for code in countries:
        if code and (len(code.strip()) != 2 or pycountry.countries.get(alpha_2=code.strip().upper()) is None):
            raise QueryError(f"--country: {shown(code)} is not an ISO 3166-1 alpha-2 country code")


def unknown_actor_notes(names: Sequence[str], tagger: Any) -> list[str]:
    """For each ``--actor`` name the gazetteer does not know: a note saying so, the id it is searched
    under (the one the tagger gives a name found only by NER) and close names (:mod:`pipeline.suggest`)."""
    from difflib import SequenceMatcher

    from pipeline.suggest import get_suggester
    from pipeline.tag.tagger import unknown_actor_id

    notes = []
    for name in names:
        if tagger.resolve_actor(name):
            continue
        key = name.strip()
        close: list[dict[str, Any]] = []
        for n in range(len(key), 2, -1):
            close = get_suggester(tagger.actor_gazetteer()).suggest("actor", key[:n], 10)
            if close:
                break
        close.sort(key=lambda c: -SequenceMatcher(None, key.lower(), str(c["name"]).lower()).ratio())
        hint = f"; did you mean {', '.join(repr(c['name']) for c in close[:3])}?" if close else ""
        notes.append(
            f"--actor {shown(name)}: no known actor (searched as {unknown_actor_id(name)}, a name "
            f"found only by the tagger's NER){hint}"
        )
    return notes


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
    check_limits(
        text, actor=actors, location=locations, source=sources, language=languages, country=countries
    )
    check_codes(languages, countries)
    query = SearchQuery(text=text.strip(), sort=sort, limit=limit, collapse=collapse)  # type: ignore[arg-type]
    if actors or locations:
        from pipeline.tag import get_resolver
        from pipeline.tag.tagger import unknown_actor_id, unknown_place_id

        tagger = get_resolver()  # the lookup file: a search loads neither spaCy nor the full gazetteer
        query.actor_ids = resolve(actors, tagger.resolve_actor, "--actor", unknown_actor_id)
        for name in actors:
            state = tagger.state_for(name)
            if state is not None:
                query.notes.append(
                    f"--actor {shown(name)}: searched as {state} (a country or capital stands for it)"
                )
        query.notes.extend(unknown_actor_notes(actors, tagger))
        query.location_ids = resolve(locations, tagger.resolve_location, "--location", unknown_place_id)
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
            raise QueryError(f"--near: {shown(near)} is not lat,lon,km with a positive radius")
        query.near = (lat, lon, km)
    if bbox:
        top, left, bottom, right = parse_floats(bbox, "--bbox", 4)
        if not (-90 <= bottom <= 90 and -90 <= top <= 90 and -180 <= left <= 180 and -180 <= right <= 180):
            raise QueryError(f"--bbox: {shown(bbox)}: latitudes must be in -90..90, longitudes in -180..180")
        if top < bottom:
            raise QueryError(f"--bbox: {bbox!r}: top latitude is below bottom latitude")
        query.bbox = (top, left, bottom, right)
    return query


#: Fields the pipeline stores for its own use (dedupe state), never shown to users.
PRIVATE_FIELDS = ("minhash", "lsh_bands")


def public_article(article: Article) -> Article:
    """A copy of ``article`` without :data:`PRIVATE_FIELDS`, its ``source.feed`` password hidden
    (articles stored before feeds' credentials were kept out of the store)."""
    shown = {k: v for k, v in article.items() if k not in PRIVATE_FIELDS}
    source = shown.get("source")
    if isinstance(source, dict) and isinstance(source.get("feed"), str):
        shown["source"] = {**source, "feed": redact(source["feed"])}
    return shown


def search_payload(result: SearchResult, notes: Sequence[str] = ()) -> dict[str, Any]:
    """``{"total", "hits", "facets", "next_after"}`` as users see it (``newswire search --json`` and
    ``/search``); ``next_after`` is the opaque cursor of the next page (:mod:`pipeline.cursor`) or None;
    ``notes`` (present when there are some) say how names were read ("--actor Russia: searched as ...")."""
    from pipeline.cursor import encode_cursor

    payload = result.to_json()
    if notes:
        payload["notes"] = list(notes)
    payload["hits"] = [public_article(hit) for hit in payload["hits"]]
    payload["next_after"] = encode_cursor(result.next_after)
    return payload
