"""Names to ids: the rules that read a user's spelling, and a compact lookup file so search need not load the
full gazetteer.

Contract:

- :class:`Resolver` holds the rules (one home; :class:`pipeline.tag.Tagger` inherits them):
  ``resolve_actor(name)`` (a country or capital name means its government; ``state_for(name)`` says so),
  ``resolve_location(name)`` (most likely first; "<name> province/oblast" means the region),
  ``government_for(entity)``, ``entity_name(id)``, ``entity(id)``. It reads any :class:`GazetteerView`:
  ``names.get(key)``, ``entities.get(id)`` / ``entities[id]`` / ``id in entities``, ``government_of``,
  ``capitals``, ``country_place``.
- :class:`GazetteerLookup` is such a view over a read-only SQLite file (``resolver-<digest>-v<N>.sqlite``
  in the gazetteer's cache folder, beside the pickle; the digest is the gazetteer's): one row per normal-form
  name and per entity, in the pickle's packed string form, unpacked on read. Opening it costs milliseconds and
  a few MB, where unpickling the full gazetteer costs a second and ~500 MB.
- :func:`write_lookup` writes that file from a gazetteer; :func:`~pipeline.tag.gazetteer.load_gazetteer`
  calls it after each build, and :func:`open_lookup` writes it from the full gazetteer once when it is
  missing or unreadable (when it cannot be written, it resolves from the full gazetteer).
- :func:`get_resolver` is the process-wide resolver over the lookup file (no spaCy import, no full gazetteer):
  what search needs. ``pipeline.tag.gazetteer.FULL_LOADS`` counts full gazetteer loads in the process.
- :func:`unknown_actor_id` / :func:`unknown_place_id`: the ids of names the gazetteer lacks (one home for the
  scheme, shared by the tagger and search).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.tag.gazetteer import (
    ALT,
    CITY_MIN_POPULATION,
    Entity,
    Gazetteer,
    NameEntry,
    _pack,
    _unpack,
    _unpack_entity,
    gazetteer_digest,
    packed_entity,
    packed_name,
)
from pipeline.tag.lexicon import ADMIN_WORDS, FEATURE_HEADS, FEATURE_WORDS, GENERIC_PLACE_WORDS
from pipeline.tag.normalize import norm_key, slug
from pipeline.tag.places import importance, place_rank, region_for

log = logging.getLogger(__name__)

#: Bumped whenever the lookup file's layout changes (the file name carries it).
LOOKUP_VERSION = 2


class GazetteerView(Protocol):
    """What the resolving rules read of a gazetteer (the full :class:`Gazetteer` or a
    :class:`GazetteerLookup`)."""

    names: Any  # normal-form key -> NameEntry (``get``)
    entities: Any  # id -> Entity (``get``, ``[]``, ``in``)
    government_of: dict[str, str]
    capitals: dict[str, str]
    country_place: dict[str, str]


class Resolver:
    """Canonical ids for a user's spelling, over a :class:`GazetteerView` (see the module docstring)."""

    def __init__(self, gaz: GazetteerView) -> None:
        self.gaz = gaz
        self.extra: dict[str, Entity] = {}  # entities created while tagging (the Tagger's; empty here)

    def resolve_actor(self, name: str) -> list[str]:
        """Ids of actors a user's spelling can mean (``ISIS`` -> the Islamic State's id). A country or capital
        means its government (``Russia``, ``Washington``, ``Ankara``): see :meth:`government_for`."""
        found = self._resolve(name)
        out = [e.id for e in found if e.type == "actor"]
        for e in found:
            gov = self.government_for(e)
            if gov and gov not in out:
                out.append(gov)
        return out

    def state_for(self, name: str) -> str | None:
        """The government's name when a user's actor name is a country or capital and no actor's own name
        (``Russia`` -> "Russian government"), else None: what search says it searched for."""
        found = self._resolve(name)
        if any(e.type == "actor" for e in found):
            return None
        govs = [g for g in (self.government_for(e) for e in found) if g]
        return self.entity_name(govs[0]) if govs else None

    def government_for(self, place: Entity) -> str | None:
        """The government actor a country or capital stands for, or None."""
        if place.type != "location":
            return None
        if place.kind == "country" and place.country_code:
            return self.gaz.government_of.get(place.country_code)
        cc = self.gaz.capitals.get(place.id)
        return self.gaz.government_of.get(cc) if cc else None

    def resolve_location(self, name: str) -> list[str]:
        """GeoNames (or Wikidata) ids of places a user's spelling can mean, most likely first (``Raqa`` -> Ar
        Raqqah). Small towns that share the name of a country, region or city are left out: a search by
        ``Georgia`` means the country and the US state, not every village called Georgia."""
        gaz = self.gaz
        locs = [e for e in self._resolve(name) if e.type == "location"]
        words = name.split()
        if not locs and len(words) >= 2 and words[-1].lower() in ADMIN_WORDS:
            # "Kaliningrad Oblast", "Daraa province": the region a place of that name stands for
            base = self.resolve_location(" ".join(words[:-1]))[:1]  # the place the name most likely means
            ids = [region_for(gaz, gaz.entities[i]) for i in base if i in gaz.entities]
            locs = [gaz.entities[i] for i in ids if gaz.entities[i].kind in ("admin1", "admin2")]
        entry = gaz.names.get(norm_key(name.strip()))
        alt = frozenset(eid for eid, f in entry.targets if f & ALT) if entry else frozenset()
        named = {e.country_code for e in locs if e.id not in alt and e.country_code}
        if named:  # "Alexandria" means the places so named, not the old name of Mashhad, a city elsewhere
            locs = [
                e
                for e in locs
                if not (
                    e.id in alt
                    and e.kind == "city"
                    and e.population >= 100_000
                    and e.country_code not in named
                )
            ]
        locs.sort(key=lambda e: place_rank(e, gaz.capitals, alt), reverse=True)
        if locs and importance(locs[0], gaz.capitals) >= 2:
            top = locs[0].country_code
            locs = [
                e
                for e in locs
                if importance(e, gaz.capitals) >= 2
                or e.population >= 15_000
                or (e.kind == "admin2" and e.country_code == top)
            ]
        return [e.id for e in locs]

    def actor_gazetteer(self) -> Any:
        """The actors' names and entities (the whole gazetteer when it is in memory): what did-you-mean over
        actor names reads (:class:`pipeline.suggest.Suggester` takes it)."""
        actors = getattr(self.gaz, "actors", None)
        return actors() if actors is not None else self.gaz

    def entity_name(self, entity_id: str) -> str | None:
        """Canonical name of an id, or None."""
        e = self.entity(entity_id)
        return e.name if e else None

    def entity(self, entity_id: str) -> Entity | None:
        found: Entity | None = self.gaz.entities.get(entity_id)
        return found if found is not None else self.extra.get(entity_id)

    def _resolve(self, name: str) -> list[Entity]:
        name = name.strip()
        if not name:
            return []
        out: list[Entity] = []
        entry = self.gaz.names.get(norm_key(name))
        if entry is not None:
            out = [self.gaz.entities[eid] for eid, _ in entry.targets]
        if name.startswith(("actor:", "geonames:", "place:", "wikidata:", "ne:")):
            e = self.entity(name)
            out = [e] if e else out
        if not out:
            out = [
                e
                for e in (self.extra.get(unknown_actor_id(name)), self.extra.get(unknown_place_id(name)))
                if e
            ]
        return out


class _Table:
    """A read-only mapping over one (key, packed) table of the lookup file, unpacked and memoised on read."""

    def __init__(self, owner: GazetteerLookup, table: str, unpack: Any) -> None:
        self._owner, self._unpack = owner, unpack
        self._sql = f"SELECT packed FROM {table} WHERE key = ?"
        self._seen: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._seen:
            found = self._seen[key]
            return default if found is None else found
        row = self._owner.query(self._sql, key)
        found = None if row is None else self._unpack(key, row[0])
        if len(self._seen) > 100_000:  # a long-running server must not grow forever
            self._seen.clear()
        self._seen[key] = found
        return default if found is None else found

    def __getitem__(self, key: str) -> Any:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None


@dataclass
class ActorNames:
    """The names that can mean an actor (with only their actor targets) and those actors: a gazetteer for
    :class:`pipeline.suggest.Suggester` over actors, a few MB where the full one is hundreds."""

    names: dict[str, NameEntry]
    entities: dict[str, Entity]
    capitals: dict[str, str] = field(default_factory=dict)


class GazetteerLookup:
    """A :class:`GazetteerView` over the lookup file (see the module docstring); thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._actors: ActorNames | None = None
        self.names = _Table(self, "names", _unpack)
        self.entities = _Table(self, "entities", _unpack_entity)
        meta = {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}
        self.government_of: dict[str, str] = meta["government_of"]
        self.capitals: dict[str, str] = meta["capitals"]
        self.country_place: dict[str, str] = meta["country_place"]
        self.digest: str = meta["digest"]

    def actors(self) -> ActorNames:
        """The actors' names and entities, read once (a few tens of thousands of rows)."""
        with self._lock:
            if self._actors is None:
                names = {
                    k: _unpack(k, p) for k, p in self._conn.execute("SELECT key, packed FROM actor_names")
                }
                rows = self._conn.execute("SELECT key, packed FROM actor_entities")
                self._actors = ActorNames(names, {k: _unpack_entity(k, p) for k, p in rows})
            return self._actors

    def query(self, sql: str, key: str) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._conn.execute(sql, (key,)).fetchone()
            return row


def lookup_path(cache_dir: Path, digest: str) -> Path:
    """Where the lookup file of the gazetteer with ``digest`` lives."""
    return Path(cache_dir) / f"resolver-{digest}-v{LOOKUP_VERSION}.sqlite"


def write_lookup(gaz: Gazetteer, path: Path) -> None:
    """Write the lookup file of ``gaz`` at ``path`` (atomically) and remove older lookup files beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".sqlite.tmp")
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp)
        with conn:
            conn.execute("CREATE TABLE names (key TEXT PRIMARY KEY, packed TEXT NOT NULL) WITHOUT ROWID")
            conn.execute("CREATE TABLE entities (key TEXT PRIMARY KEY, packed TEXT NOT NULL) WITHOUT ROWID")
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                "CREATE TABLE actor_names (key TEXT PRIMARY KEY, packed TEXT NOT NULL) WITHOUT ROWID"
            )
            conn.execute(
                "CREATE TABLE actor_entities (key TEXT PRIMARY KEY, packed TEXT NOT NULL) WITHOUT ROWID"
            )
            actors = {}
            for k, e in dict.items(gaz.entities):
                packed = packed_entity(e)
                if _unpack_entity(k, packed).type == "actor":
                    actors[k] = packed
            conn.executemany("INSERT INTO actor_entities VALUES (?, ?)", actors.items())
            conn.executemany("INSERT INTO actor_names VALUES (?, ?)", _actor_names(gaz, actors))
            conn.executemany(
                "INSERT INTO names VALUES (?, ?)",
                ((k, packed_name(n)) for k, n in dict.items(gaz.names)),
            )
            conn.executemany(
                "INSERT INTO entities VALUES (?, ?)",
                ((k, packed_entity(e)) for k, e in dict.items(gaz.entities)),
            )
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("government_of", json.dumps(gaz.government_of)),
                    ("capitals", json.dumps(gaz.capitals)),
                    ("country_place", json.dumps(gaz.country_place)),
                    ("digest", json.dumps(gaz.digest)),
                ],
            )
        conn.close()
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    for stale in path.parent.glob("resolver-*.sqlite"):
        if stale != path:
            stale.unlink(missing_ok=True)


def _actor_names(gaz: Gazetteer, actors: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(key, packed entry with only its actor targets) for every name that can mean an actor."""
    for k, n in dict.items(gaz.names):
        entry = n if isinstance(n, NameEntry) else _unpack(k, packed_name(n))
        targets = [(eid, f) for eid, f in entry.targets if eid in actors]
        if targets:
            yield k, _pack(NameEntry(k, targets, entry.cap_mask, entry.demonym, entry.common))


def open_lookup(
    actors_file: Path, cache_dir: Path, min_population: int = CITY_MIN_POPULATION
) -> GazetteerView:
    """The lookup file of the current gazetteer, written from the full gazetteer when it is missing or
    unreadable. When it cannot be written (a read-only cache folder), the full gazetteer itself: slower, same
    answers."""
    from pipeline.tag.gazetteer import load_gazetteer

    path = lookup_path(cache_dir, gazetteer_digest(actors_file, min_population))
    if path.is_file():
        try:
            return GazetteerLookup(path)
        except (sqlite3.Error, KeyError, ValueError) as exc:
            log.warning("resolver lookup file %s unreadable (%s); rewriting it", path, exc)
    gaz = load_gazetteer(actors_file, cache_dir, min_population)  # writes the file after a build
    try:
        return GazetteerLookup(path)
    except (sqlite3.Error, KeyError, ValueError):
        pass
    try:
        write_lookup(gaz, path)
        return GazetteerLookup(path)
    except (OSError, sqlite3.Error) as exc:
        log.warning("cannot write resolver lookup file %s (%s); resolving from the full gazetteer", path, exc)
        return gaz


_RESOLVER: Resolver | None = None
_RESOLVER_LOCK = threading.Lock()


def get_resolver() -> Resolver:
    """The process-wide resolver over the lookup file of the settings' actors file: what search, notes and
    id descriptions need (names to ids, ids to names). No spaCy import, no full gazetteer load."""
    global _RESOLVER
    from pipeline.settings import get_settings

    with _RESOLVER_LOCK:
        if _RESOLVER is None:
            settings = get_settings()
            if not settings.actors_file.is_file():
                raise FileNotFoundError(f"actors file not found: {settings.actors_file}")
            _RESOLVER = Resolver(open_lookup(settings.actors_file, settings.cache_dir / "tag"))
        return _RESOLVER


def unknown_actor_id(name: str) -> str:
    """The id of an actor the gazetteer lacks (found by spaCy or defined in a text): ``actor:<slug>``. Search
    uses it for names it cannot resolve, so the scheme has this one home."""
    return f"actor:{slug(name)}"


def unknown_place_id(name: str) -> str:
    """The id of a place the gazetteer lacks: ``place:<slug of its normal form>`` without the generic words
    around the proper name, so that the spellings the normal form joins ("al-Jaili", "Jaili") and the ways
    news names a feature ("the Ibar river", "Ibar"; "Medupi power station", "Medupi") meet on one id."""
    words = norm_key(name).split()
    while len(words) > 1 and words[-1] in GENERIC_TAIL:
        words.pop()
    while len(words) > 1 and words[0] in GENERIC_HEAD:
        words.pop(0)
    return f"place:{slug(' '.join(words))}"


#: Normal forms of the generic words that name a feature's kind, not the feature.
GENERIC_TAIL = frozenset(
    norm_key(w)
    for w in (FEATURE_WORDS | FEATURE_HEADS | ADMIN_WORDS | GENERIC_PLACE_WORDS)
    | {
        "crater",
        "row",
        "peninsula",
        "lagoon",
        "gorge",
        "ravine",
        "glacier",
        "fault",
        "cable",
        "block",
        "lake",
        "mountain",
        "mount",
        "sea",
        "geothermal",
        "regency",
        "territory",
        "zone",
        "health",
        "area",
        "areas",
    }
)
GENERIC_HEAD = frozenset(norm_key(w) for w in ("lake", "mount", "port", "of", "gulf", "bay", "the"))
