"""The labelled wire sets (tests/data/wire/*.jsonl) are well formed: the truth bench/bench_wire.py measures
against.

Each line is one article ``{"id", "region", "title", "text", "published_at", "locations", "actors"}``; each
label has ``name``, ``kind`` and ``country_code`` (an ISO 3166-1 alpha-2 code known to pycountry, ``XK`` for
Kosovo as GeoNames uses it, or null). A label's NAME is what an analyst types; it must be written in the title
or text (same normal form, whole words) unless the label lists ``mentions``: the surface forms the text uses
for it instead ("Kiev" for Kyiv, "Moscow" for the Russian government), each of which must then be in the text.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pycountry
import pytest

from pipeline.tag.normalize import norm_key

WIRE = Path(__file__).resolve().parent / "data" / "wire"
SETS = sorted(p for p in WIRE.glob("*.jsonl"))
REGIONS = {"Africa", "Asia", "Europe", "North America", "South America", "Oceania", "Antarctica"}
LOCATION_KINDS = {
    "country",
    "admin1",
    "admin2",
    "admin3",
    "city",
    "region",
    "sea",
    "river",
    "lake",
    "mountain",
    "island",
    "facility",
    "park",
}
ACTOR_KINDS = {
    "government",
    "person",
    "organisation",
    "armed_group",
    "military",
    "party",
    "company",
    "intergovernmental",
    "media",
}
EXTRA_CODES = {"XK"}  # Kosovo: not in ISO 3166-1, used by GeoNames


def read(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def valid_code(code: Any) -> bool:
    return (
        code is None
        or code in EXTRA_CODES
        or (isinstance(code, str) and len(code) == 2 and pycountry.countries.get(alpha_2=code) is not None)
    )


def written_in(name: str, text_key: str) -> bool:
    """``name`` occurs in a text whose normal form is ``text_key`` (space-padded), as whole words."""
    key = norm_key(name)
    return bool(key) and f" {key} " in text_key


def problems(article: dict[str, Any]) -> list[str]:  # noqa: C901, PLR0912 - a flat list of independent checks on one article
    """Everything wrong with one labelled article (empty when it is well formed)."""
    out: list[str] = []
    aid = article.get("id", "?")
    for field, typ in (
        ("id", str),
        ("region", str),
        ("title", str),
        ("text", str),
        ("published_at", str),
        ("locations", list),
        ("actors", list),
    ):
        if not isinstance(article.get(field), typ):
            out.append(f"{aid}: field {field!r} missing or not a {typ.__name__}")
    if out:
        return out
    if article["region"] not in REGIONS:
        out.append(f"{aid}: region {article['region']!r} is not one of {sorted(REGIONS)}")
    words = len(article["text"].split())
    if not 120 <= words <= 350:
        out.append(f"{aid}: text has {words} words, not 120-350")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", article["published_at"]):
        out.append(f"{aid}: published_at {article['published_at']!r} is not YYYY-MM-DDTHH:MM:SSZ")
    else:
        datetime.fromisoformat(article["published_at"].replace("Z", "+00:00"))
    text_key = f" {norm_key(article['title'] + ' ' + article['text'])} "
    for field, kinds in (("locations", LOCATION_KINDS), ("actors", ACTOR_KINDS)):
        seen: set[tuple[str, str, Any]] = set()
        for label in article[field]:
            name = label.get("name")
            if not isinstance(name, str) or not name.strip():
                out.append(f"{aid}: {field} label without a name: {label}")
                continue
            if set(label) - {"name", "kind", "country_code", "mentions"} or not {
                "kind",
                "country_code",
            } <= set(label):
                out.append(f"{aid}: {name}: label fields must be name, kind, country_code (+ mentions)")
            if label.get("kind") not in kinds:
                out.append(f"{aid}: {name}: kind {label.get('kind')!r} is not one of {sorted(kinds)}")
            if not valid_code(label.get("country_code")):
                out.append(
                    f"{aid}: {name}: country_code {label.get('country_code')!r} is not ISO 3166-1 alpha-2"
                )
            ident = (norm_key(name), label.get("kind"), label.get("country_code"))
            if ident in seen:
                out.append(f"{aid}: {name}: labelled twice in {field}")
            seen.add(ident)
            mentions = label.get("mentions")
            if mentions is not None:
                if not isinstance(mentions, list) or not mentions:
                    out.append(f"{aid}: {name}: mentions must be a non-empty list")
                    continue
                out.extend(
                    f"{aid}: {name}: mention {m!r} is not in the text"
                    for m in mentions
                    if not written_in(m, text_key)
                )
            elif not written_in(name, text_key):
                out.append(f"{aid}: {name}: not in the text, and the label lists no mentions")
    return out


@pytest.mark.parametrize("path", SETS, ids=[p.name for p in SETS])
def test_wire_set_is_well_formed(path: Path) -> None:
    articles = read(path)
    ids = [a.get("id") for a in articles]
    assert len(ids) == len(set(ids)), "duplicate article ids"
    found = [p for a in articles for p in problems(a)]
    assert not found, "\n".join(found)


def test_dev_set_covers_every_continent() -> None:
    articles = read(WIRE / "dev.jsonl")
    assert len(articles) >= 80
    assert {a["region"] for a in articles} == REGIONS
    kinds = {label["kind"] for a in articles for label in a["locations"]}
    assert {
        "country",
        "admin1",
        "city",
        "sea",
        "river",
        "lake",
        "mountain",
        "island",
        "facility",
        "region",
    } <= kinds


def test_checks_catch_bad_labels() -> None:
    good = read(WIRE / "dev.jsonl")[0]
    assert problems(good) == []
    bad = json.loads(json.dumps(good))
    bad["locations"].append({"name": "Timbuktu", "kind": "city", "country_code": "ML"})  # not in the text
    bad["actors"].append(
        {"name": "Ruritania", "kind": "government", "country_code": "QQ", "mentions": ["Strelsau"]}
    )
    bad["locations"][0]["kind"] = "planet"
    found = "\n".join(problems(bad))
    assert "Timbuktu: not in the text" in found
    assert "'QQ' is not ISO" in found
    assert "mention 'Strelsau' is not in the text" in found
    assert "kind 'planet'" in found
