"""Gazetteer sources: one loader per data source, each yielding plain records.

Contract: a loader is a function that yields :class:`PlaceRecord` or :class:`ActorRecord` objects; it does no
matching and knows nothing of how names are matched. :mod:`pipeline.tag.gazetteer` builds the one gazetteer
from every loader's records (names to normal form, flags, the name prefixes matching walks, the cache). Ids
are stable: a stored article keeps the ids it was tagged with, so a loader never renames an id it has
published.

- ``PlaceRecord.id``: ``geonames:N`` wherever GeoNames has the place, else ``wikidata:Q...`` (physical
  features, regions, facilities that GeoNames data shipped on PyPI lacks).
- ``PlaceRecord.ancestors``: ids of the places that contain it, nearest first (admin2, admin1, country);
  search by a place also finds articles tagged with its descendants.
- ``ActorRecord.role``: for actors generated per country (``government``, ``head_of_state``, ``legislature``,
  ``armed_forces``, ``army``, ``navy``, ``air_force``, ``defence_ministry``, ``foreign_ministry``,
  ``interior_ministry``, ``central_bank``, ...); the tagger turns a country used as an agent into the actor
  with role ``government`` of that country.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PlaceRecord:
    """One place from a data source."""

    id: str
    name: str
    # country, admin1, admin2, city, continent, region, sea, river, lake, mountain, island, facility ...
    kind: str
    country_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    population: int = 0
    ancestors: tuple[str, ...] = ()  # nearest first
    names: tuple[str, ...] = ()  # alternate names (the canonical name not repeated)


@dataclass(slots=True)
class ActorRecord:
    """One actor from a data source."""

    id: str
    name: str
    kind: str  # person, organisation, armed_group, government, party, media, military, ...
    country_code: str | None = None
    aliases: tuple[str, ...] = ()  # other names and spellings
    acronyms: tuple[str, ...] = ()  # matched only when written in capitals
    seats: tuple[str, ...] = ()  # buildings whose name stands for the actor ("Kremlin")
    surnames: tuple[str, ...] = ()  # a bare surname safe to link anywhere (people)
    role: str | None = None  # for actors generated per country; see the module docstring


__all__ = ["ActorRecord", "PlaceRecord"]
