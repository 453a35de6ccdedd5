"""Airports with an IATA code, from the ``airportsdata`` package, as places.

Contract: :func:`load_airports` yields one :class:`~pipeline.tag.sources.PlaceRecord` per airport that has an
IATA code (the ones news names: ~7,900), kind ``airport``, id ``icao:<ICAO code>`` (stable, unique), its
point, its country, and the country as ancestor. Names are the airport's name as the data writes it and the
forms news uses for it: without a parenthesised aside ("Ngurah Rai (Bali) International Airport" -> "Ngurah
Rai International Airport"), with and without "International", and for "<City>-<Name> Airport" the bare
"<City> <Name>" ("Paris Orly"). Codes are not names (three capitals are too often something else).

Data: ``airportsdata`` (MIT licence; airport data from public sources, see its README).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipeline.tag.sources import PlaceRecord
from pipeline.tag.sources.features import country_ids

_ASIDE = re.compile(r"\s*\([^)]*\)")
_SUFFIX = re.compile(r"\s+(?:International\s+)?Airport$")


def airport_names(name: str, city: str) -> tuple[str, ...]:
    """The forms news uses for an airport's name (see the module docstring)."""
    base = _ASIDE.sub("", name).strip()
    out = [base]
    core = _SUFFIX.sub("", base)
    if core != base and core:
        out += [f"{core} Airport", f"{core} International Airport"]
        if city and core.startswith(f"{city}-") and len(core) > len(city) + 3:
            out.append(core.replace("-", " ", 1))  # "Paris-Orly Airport" -> "Paris Orly"
    return tuple(dict.fromkeys(n for n in out if n != name))


def load_airports() -> Iterator[PlaceRecord]:
    import airportsdata

    countries = country_ids()
    for icao, a in airportsdata.load("ICAO").items():
        if not a.get("iata") or not a.get("name"):
            continue
        cc = a.get("country") or None
        gid = countries.get(cc or "")
        yield PlaceRecord(
            id=f"icao:{icao}",
            name=a["name"],
            kind="airport",
            country_code=cc,
            lat=float(a["lat"]),
            lon=float(a["lon"]),
            ancestors=(gid,) if gid else (),
            names=airport_names(a["name"], a.get("city") or ""),
        )


__all__ = ["airport_names", "load_airports"]
