"""Search's resolver (:mod:`pipeline.tag.resolver`): the same ids as the full tagger for a user's spellings,
read from the compact lookup file, so that ``newswire search --actor --location`` neither imports spaCy nor
loads the full gazetteer (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.records import article_id
from pipeline.stores import open_store
from pipeline.tag import Tagger, get_resolver
from pipeline.tag.gazetteer import ALT, Entity, Gazetteer, NameEntry, name_prefixes
from pipeline.tag.normalize import norm_key
from pipeline.tag.resolver import GazetteerLookup, Resolver, write_lookup

ROOT = Path(__file__).resolve().parent.parent
SPELLINGS = ["ISIS", "Daesh", "Raqqa", "Raqa", "Russia", "Washington", "United States", "Kharkiv", "Goma"]
MORE = ["Georgia", "Alexandria", "Damascus", "Kaliningrad Oblast", "Daraa province", "geonames:163843", "zzq"]


@pytest.fixture(scope="module")
def full() -> Tagger:
    return Tagger(spacy_model="")


@pytest.mark.parametrize("name", SPELLINGS + MORE)
def test_the_lookup_resolves_as_the_full_tagger(full: Tagger, name: str) -> None:
    resolver = get_resolver()
    assert not isinstance(resolver.gaz, Gazetteer)  # the lookup file, not the unpickled gazetteer
    assert resolver.resolve_actor(name) == full.resolve_actor(name)
    assert resolver.resolve_location(name) == full.resolve_location(name)
    assert resolver.state_for(name) == full.state_for(name)
    for eid in resolver.resolve_actor(name) + resolver.resolve_location(name)[:3]:
        assert resolver.entity(eid) == full.entity(eid)
        assert resolver.entity_name(eid) == full.entity_name(eid)


def test_known_spellings_resolve() -> None:
    resolver = get_resolver()
    for name in SPELLINGS:
        assert resolver.resolve_actor(name) or resolver.resolve_location(name), name
    assert resolver.resolve_actor("Daesh") == resolver.resolve_actor("ISIS")
    assert resolver.resolve_location("Raqa")[0] == resolver.resolve_location("Raqqa")[0]
    assert resolver.resolve_actor("zzq") == []
    assert resolver.entity("actor:nobody-at-all") is None


def test_lookup_round_trip_of_a_small_gazetteer(tmp_path: Path) -> None:
    """Everything the rules read survives the file: targets and their flags, entities, the small tables."""
    country = Entity("g:1", "Freedonia", "country", "location", "FD", 1.5, -2.25, 900_000, True, ())
    town = Entity("g:2", "Port Vale", "city", "location", "FD", None, None, 20_000, False, ("g:3", "g:1"))
    gov = Entity("a:1", "Government of Freedonia", "government", "actor", "FD")
    names = {
        norm_key("Freedonia"): NameEntry(norm_key("Freedonia"), [("g:1", 0)], (True,)),
        norm_key("Port Vale"): NameEntry(norm_key("Port Vale"), [("g:2", ALT)], (True, True)),
    }
    gaz = Gazetteer(
        {e.id: e for e in (country, town, gov)},
        names,
        name_prefixes(names),
        {"FD": "a:1"},
        {"g:2": "FD"},
        {},
        {"FD": "g:1"},
        digest="abc",
    )
    path = tmp_path / "lookup.sqlite"
    write_lookup(gaz, path)
    lookup = GazetteerLookup(path)
    assert lookup.entities["g:2"] == town
    assert lookup.entities.get("g:1") == country
    assert "g:9" not in lookup.entities
    assert lookup.names.get("nowhere") is None
    assert lookup.names.get("port vale").targets == [("g:2", ALT)]
    assert (lookup.government_of, lookup.capitals, lookup.country_place) == (
        {"FD": "a:1"},
        {"g:2": "FD"},
        {"FD": "g:1"},
    )
    resolver = Resolver(lookup)
    assert resolver.resolve_actor("Port Vale") == ["a:1"]  # a capital means its government
    assert resolver.state_for("Freedonia") == "Government of Freedonia"
    assert resolver.resolve_location("Freedonia") == ["g:1"]


def test_search_reads_neither_spacy_nor_the_full_gazetteer(full: Tagger, tmp_path: Path) -> None:
    """``newswire search --actor --location`` in a fresh process: the right story, found through the
    lookup file."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    stories = [
        (
            "https://harbour-gazette.example/a",
            "Islamic State fighters left Raqqa on Tuesday, residents said.",
        ),
        ("https://harbour-gazette.example/b", "Russian forces shelled Kharkiv overnight, the mayor said."),
    ]
    records = [
        {
            "id": article_id(u),
            "url": u,
            "title": t,
            "text": t,
            "language": "en",
            "source": {"name": "Harbour Gazette"},
        }
        for u, t in stories
    ]
    tagged = list(full.tag_records(records))
    assert "actor:islamic-state" in {a["id"] for a in tagged[0]["actors"]}
    store = open_store(url)
    try:
        assert store.index(tagged).errors == []
    finally:
        store.close()
    get_resolver()  # the lookup file exists before the child runs (written from the pickle if it was missing)
    code = (
        "import json, sys\n"
        "code = 0\n"
        "from pipeline.cli import main\n"
        "sys.argv = ['newswire', 'search', '--actor', 'ISIS', '--location', 'Raqa', '--json']\n"
        f"sys.argv += ['--store', {url!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "from pipeline.tag import gazetteer\n"
        "facts = {'exit': code, 'spacy': 'spacy' in sys.modules, 'full_loads': gazetteer.FULL_LOADS}\n"
        "print(json.dumps(facts),"
        " file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    facts = json.loads(done.stderr.strip().splitlines()[-1])
    assert facts == {"exit": 0, "spacy": False, "full_loads": 0}, done.stderr
    hits = json.loads(done.stdout)["hits"]
    assert [h["id"] for h in hits] == [tagged[0]["id"]]


def test_did_you_mean_over_the_actor_names_matches_the_full_gazetteer(full: Tagger) -> None:
    """Close names for an unknown ``--actor`` come from the lookup's actor names, ranked as over all
    names."""
    from pipeline.suggest import Suggester

    over_all = Suggester(full.gaz)
    actors = get_resolver().actor_gazetteer()
    assert not isinstance(actors, Gazetteer)
    assert len(actors.names) < len(full.gaz.names) / 10
    over_actors = Suggester(actors)
    for prefix in ("Hezbollahh"[:n] for n in (10, 9, 5, 3)):
        assert over_actors.suggest("actor", prefix, 10) == over_all.suggest("actor", prefix, 10), prefix
    for prefix in ("Islamic", "ISI", "Russian gov", "Kurdistan"):
        assert over_actors.suggest("actor", prefix, 10) == over_all.suggest("actor", prefix, 10), prefix


def test_an_unreadable_lookup_file_is_rewritten(full: Tagger, tmp_path: Path) -> None:
    """A lookup file that is not a database (a torn copy, another version's junk) is written anew from the
    gazetteer's pickle, and answers as before."""
    from pipeline.settings import get_settings
    from pipeline.tag.gazetteer import CITY_MIN_POPULATION, gazetteer_digest
    from pipeline.tag.resolver import lookup_path, open_lookup

    settings = get_settings()
    digest = gazetteer_digest(settings.actors_file, CITY_MIN_POPULATION)
    cache = tmp_path / "tag"
    cache.mkdir()
    (cache / f"gazetteer-{digest}.pickle").symlink_to(
        settings.cache_dir / "tag" / f"gazetteer-{digest}.pickle"
    )
    path = lookup_path(cache, digest)
    path.write_bytes(b"not a database at all")
    view = open_lookup(settings.actors_file, cache)
    assert isinstance(view, GazetteerLookup)
    assert path.read_bytes().startswith(b"SQLite format 3")
    assert Resolver(view).resolve_actor("Daesh") == full.resolve_actor("Daesh")
