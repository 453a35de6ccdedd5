"""Type-ahead over the tagger's gazetteer: the actors and places a typed prefix can mean.

Contract: :class:`Suggester` is built once from a gazetteer (any object with ``names``: normal-form
key -> entry with ``targets`` ``[(entity_id, flags)]``, and ``entities``: id -> entity with ``id``,
``name``, ``kind``, ``type`` (``"actor"`` or ``"location"``), ``country_code``, ``population``,
``curated``, ``lat``, ``lon``). :meth:`Suggester.suggest` normalises the prefix with the tagger's own
:func:`~pipeline.tag.normalize.norm_key`, so any spelling the tagger links ("Raqa", "al-Raqqah",
"ISIL") finds its entity, and answers at most ``limit`` entities of one type, each once:

- entities one of whose names *is* the prefix first; then entities whose canonical name starts with
  it; then entities with another name (an alias) starting with it;
- within each group, places by population (then curated before not), actors curated first (then by
  population); then the shorter matching name, then the canonical name.

Each answer is ``{"id", "name", "kind", "country_code", "match"}``, ``match`` being ``"name"`` when
the prefix starts the canonical name and ``"alias"`` when it starts another name of the entity.
A sorted key list per type is built once (about a second for a few hundred thousand names) and
searched by bisection; answers for short prefixes (which match thousands of names) are cached.

:func:`entity_info` describes entities by id (the page labels filters and places map points with it).
Nothing here imports FastAPI; :mod:`pipeline.api` exposes both as ``/suggest`` and ``/entities``.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_left
from functools import lru_cache
from typing import Any, Literal

from pipeline.tag.normalize import norm_key
from pipeline.tag.places import importance

Kind = Literal["actor", "location"]
KINDS: tuple[Kind, ...] = ("actor", "location")
MAX_LIMIT = 50
_SHORT = 2  # normal-form prefixes up to this length have their answers cached


def _rank(entity: Any, names: int, capitals: dict[str, str]) -> tuple[int, int, int]:
    """Higher is better: places by population, actors curated first; then the number of names
    the entity has (a well-known actor has many aliases)."""
    population = int(getattr(entity, "population", 0) or 0)
    curated = int(bool(getattr(entity, "curated", True)))
    if entity.type == "location":
        return (importance(entity, capitals), int(entity.kind == "city"), population)  # the tagger's order
    return (curated, names, population)


class Suggester:
    """Prefix search over one gazetteer (see the module docstring)."""

    def __init__(self, gaz: Any) -> None:
        self.gaz = gaz
        self._keys: dict[str, list[str]] = {}
        self._scores: dict[str, list[tuple[bool, tuple[int, int, int], int]]] = {}
        # per type: key -> best (is the entity's canonical name, rank) over the key's entities of that type
        best_of: dict[str, dict[str, tuple[bool, tuple[int, int, int]]]] = {k: {} for k in KINDS}
        canonical: dict[str, str] = {}
        entities = gaz.entities
        capitals = getattr(gaz, "capitals", {})
        name_count: dict[str, int] = {}
        for key in list(gaz.names):
            for eid, _flags in gaz.names[key].targets:
                name_count[eid] = name_count.get(eid, 0) + 1
        for key in list(gaz.names):
            for eid, _flags in gaz.names[key].targets:
                e = entities.get(eid)
                if e is None or e.type not in best_of:
                    continue
                if eid not in canonical:
                    canonical[eid] = norm_key(e.name)
                score = (canonical[eid] == key, _rank(e, name_count[eid], capitals))
                old = best_of[e.type].get(key)
                if old is None or score > old:
                    best_of[e.type][key] = score
        for kind, best in best_of.items():
            keys = sorted(best)
            self._keys[kind] = keys
            self._scores[kind] = [(*best[k], -len(k)) for k in keys]
        self._canonical = canonical
        self._name_count = name_count
        self._cached = lru_cache(maxsize=4096)(self._suggest)

    def suggest(self, kind: str, prefix: str, limit: int = 10) -> list[dict[str, Any]]:
        """At most ``limit`` (1-50) entities of ``kind`` whose names start with ``prefix``."""
        if kind not in KINDS:
            raise ValueError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit: {limit} is not between 1 and {MAX_LIMIT}")
        key = norm_key(prefix)
        if not key:
            return []
        if len(key) <= _SHORT:
            return [dict(d) for d in self._cached(kind, key, limit)]
        return list(self._suggest(kind, key, limit))

    def _suggest(self, kind: str, key: str, limit: int) -> tuple[dict[str, Any], ...]:
        keys, scores = self._keys[kind], self._scores[kind]
        lo = bisect_left(keys, key)
        hi = bisect_left(keys, key + "\uffff", lo)
        exact = lo < hi and keys[lo] == key  # the key equal to the prefix sorts first in its range
        # an entity can be reached by several names: take enough candidates to fill `limit` after merging
        rest = heapq.nlargest(limit * 3, range(lo + exact, hi), key=scores.__getitem__)
        out: list[dict[str, Any]] = []
        order: list[tuple[bool, bool, int, int, int, int, str]] = []
        seen: set[str] = set()
        for i in ([lo] if exact else []) + rest:
            k = keys[i]
            for eid, _flags in self.gaz.names[k].targets:
                e = self.gaz.entities.get(eid)
                if e is None or e.type != kind or eid in seen:
                    continue
                seen.add(eid)
                is_name = self._canonical.get(eid, "").startswith(key)
                rank = _rank(e, self._name_count.get(eid, 0), getattr(self.gaz, "capitals", {}))
                out.append(
                    {
                        "id": e.id,
                        "name": e.name,
                        "kind": e.kind,
                        "country_code": e.country_code,
                        "match": "name" if is_name else "alias",
                    }
                )
                order.append((k != key, not is_name, -rank[0], -rank[1], -rank[2], len(k), e.name))
        ranked = sorted(range(len(out)), key=order.__getitem__)
        return tuple(out[i] for i in ranked[:limit])


def entity_info(gaz: Any, ids: list[str]) -> list[dict[str, Any]]:
    """``{"id", "name", "type", "kind", "country_code", "lat", "lon"}`` for each known id, in order."""
    out = []
    for eid in dict.fromkeys(ids):
        e = gaz.entities.get(eid)
        if e is not None:
            out.append(
                {
                    "id": e.id,
                    "name": e.name,
                    "type": e.type,
                    "kind": e.kind,
                    "country_code": e.country_code,
                    "lat": e.lat,
                    "lon": e.lon,
                }
            )
    return out


_lock = threading.Lock()
_suggesters: dict[int, Suggester] = {}


def default_gazetteer() -> Any:
    """The gazetteer the API suggests from and describes ids with: the full one (no spaCy)."""
    from pipeline.tag.tagger import get_gazetteer

    return get_gazetteer()


def get_suggester(gaz: Any | None = None) -> Suggester:
    """The process-wide :class:`Suggester` over ``gaz`` (default: :func:`default_gazetteer`), built once."""
    if gaz is None:
        gaz = default_gazetteer()
    with _lock:
        found = _suggesters.get(id(gaz))
        if found is None or found.gaz is not gaz:
            found = _suggesters[id(gaz)] = Suggester(gaz)
        return found


__all__ = ["KINDS", "MAX_LIMIT", "Suggester", "default_gazetteer", "entity_info", "get_suggester"]
