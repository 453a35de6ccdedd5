"""Type-ahead (:mod:`pipeline.suggest`): ranking over a small gazetteer written here, then speed and
spellings over the real one (the tagger's gazetteer, built or read from its cache)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pipeline.suggest import Suggester, entity_info
from pipeline.tag.normalize import norm_key


@dataclass
class Ent:
    id: str
    name: str
    kind: str
    type: str
    country_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    population: int = 0
    curated: bool = True


@dataclass
class Entry:
    targets: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Gaz:
    entities: dict[str, Ent]
    names: dict[str, Entry]


def small_gazetteer() -> Gaz:
    ents = [
        (
            Ent("p:1", "Marrow Bay", "city", "location", "AA", 1.0, 2.0, 50_000, False),
            ["Marrow Bay", "Old Harbour"],
        ),
        (Ent("p:2", "Marrowdale", "city", "location", "BB", 3.0, 4.0, 900_000, False), ["Marrowdale"]),
        (Ent("p:3", "Marr", "city", "location", "CC", 5.0, 6.0, 1_000, False), ["Marr"]),
        (
            Ent("p:4", "Oldmarsh", "city", "location", "AA", 7.0, 8.0, 5_000_000, False),
            ["Oldmarsh", "Marrowmere"],
        ),
        (Ent("a:1", "Marrow Front", "armed_group", "actor"), ["Marrow Front", "MF", "Front of Marrow"]),
        (Ent("a:2", "Marrow Council", "organisation", "actor", curated=False), ["Marrow Council"]),
        (Ent("a:3", "Marra Brigade", "armed_group", "actor"), ["Marra Brigade"]),
    ]
    gaz = Gaz({}, {})
    for ent, names in ents:
        gaz.entities[ent.id] = ent
        for n in names:
            gaz.names.setdefault(norm_key(n), Entry()).targets.append((ent.id, 0))
    return gaz


def names(found: list[dict[str, Any]]) -> list[str]:
    return [f["name"] for f in found]


def test_exact_then_canonical_prefix_by_population_then_aliases() -> None:
    s = Suggester(small_gazetteer())
    # "Marr" is exactly the name of the smallest place; then names starting with it, biggest first;
    # then the place reached only through an alias ("Marrowmere" of Oldmarsh), even though it is biggest
    assert names(s.suggest("location", "Marr")) == ["Marr", "Marrowdale", "Marrow Bay", "Oldmarsh"]
    assert [f["match"] for f in s.suggest("location", "Marr")] == ["name", "name", "name", "alias"]
    assert names(s.suggest("location", "old h")) == ["Marrow Bay"]  # an alias of two words


def test_actors_curated_first_and_only_of_the_asked_type() -> None:
    s = Suggester(small_gazetteer())
    assert names(s.suggest("actor", "marr")) == ["Marrow Front", "Marra Brigade", "Marrow Council"]
    assert names(s.suggest("actor", "MF")) == ["Marrow Front"]
    assert all(f["id"].startswith("p:") for f in s.suggest("location", "mar", limit=50))


def test_each_entity_once_and_limit() -> None:
    s = Suggester(small_gazetteer())
    found = s.suggest("actor", "front", limit=5)  # "Front of Marrow" is an alias of Marrow Front
    assert [f["id"] for f in found] == ["a:1"]
    assert len(s.suggest("location", "m", limit=2)) == 2
    assert s.suggest("location", "   ") == []
    assert s.suggest("location", "zzz") == []


@pytest.mark.parametrize(("kind", "limit"), [("planet", 10), ("actor", 0), ("actor", 51)])
def test_bad_kind_or_limit(kind: str, limit: int) -> None:
    with pytest.raises(ValueError, match="kind|limit"):
        Suggester(small_gazetteer()).suggest(kind, "mar", limit)


def test_entity_info_keeps_order_and_drops_unknown_ids() -> None:
    info = entity_info(small_gazetteer(), ["p:2", "nope", "a:1", "p:2"])
    assert [(i["id"], i["type"]) for i in info] == [("p:2", "location"), ("a:1", "actor")]
    assert (info[0]["lat"], info[0]["lon"], info[0]["country_code"]) == (3.0, 4.0, "BB")


@pytest.fixture(scope="module")
def real() -> Suggester:
    from pipeline.settings import get_settings
    from pipeline.tag.gazetteer import CITY_MIN_POPULATION, load_gazetteer

    settings = get_settings()
    return Suggester(load_gazetteer(settings.actors_file, settings.cache_dir / "tag", CITY_MIN_POPULATION))


@pytest.mark.parametrize(
    ("kind", "typed", "expected_id"),
    [
        ("location", "Raqa", "geonames:172955"),
        ("location", "al-Raqqah", "geonames:172955"),
        ("location", "Damasc", "geonames:170654"),
        ("actor", "ISIL", "actor:islamic-state"),
        ("actor", "Daesh", "actor:islamic-state"),
        ("actor", "Syrian Democratic F", "actor:syrian-democratic-forces"),
    ],
)
def test_spellings_the_tagger_links_are_suggested_first(
    real: Suggester, kind: str, typed: str, expected_id: str
) -> None:
    assert real.suggest(kind, typed)[0]["id"] == expected_id
