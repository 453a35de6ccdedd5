"""One contract suite for every store engine (docs/architecture.md: "One contract test suite runs unchanged
against both engines").

Each test runs twice: on a fresh SQLite file and on a real Elasticsearch server (the ``es_url``
session fixture of ``tests.support.es_harness``) under a fresh index prefix. The corpus below is our own
text. Expected answers are derived from the corpus by plain Python where possible, so a test states
the rule ("a since filter is inclusive", "facets count the matching clusters") rather than a
memorised result. Relevance scores are not compared; only their order within one answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.records import article_id
from pipeline.stores import open_store
from pipeline.stores.base import ClusterRef, SearchQuery, SearchResult, Store

# --------------------------------------------------------------------------------------
# corpus builder
# --------------------------------------------------------------------------------------

ACTORS = {
    "isil": ("actor:islamic-state", "Islamic State", "armed_group"),
    "sdf": ("actor:sdf", "Syrian Democratic Forces", "armed_group"),
    "un": ("actor:united-nations", "United Nations", "organisation"),
    "iraqi-army": ("actor:iraqi-army", "Iraqi Army", "military"),
    "syrian-gov": ("actor:syrian-government", "Government of Syria", "government"),
}
PLACES = {
    "raqqa": ("geonames:163915", "Raqqa", "city", "SY", 35.9528, 39.0079),
    "aleppo": ("geonames:170063", "Aleppo", "city", "SY", 36.2021, 37.1343),
    "damascus": ("geonames:170654", "Damascus", "city", "SY", 33.5102, 36.2913),
    "mosul": ("geonames:99072", "Mosul", "city", "IQ", 36.3350, 43.1189),
    "baghdad": ("geonames:98182", "Baghdad", "city", "IQ", 33.3406, 44.4009),
    "iraq": ("geonames:99237", "Iraq", "country", "IQ", 33.0, 44.0),
    "kyiv": ("geonames:703448", "Kyiv", "city", "UA", 50.4547, 30.5238),
    "nairobi": ("geonames:184745", "Nairobi", "city", "KE", -1.2833, 36.8167),
    "suva": ("geonames:2198148", "Suva", "city", "FJ", -18.1416, 178.4415),
    "apia": ("geonames:4035413", "Apia", "city", "WS", -13.8333, -171.7667),
}
SOURCES = {
    "wire": {"feed": "https://wireone.example/rss", "name": "Wire One", "domain": "wireone.example"},
    "courier": {
        "feed": "https://courier.example/feed.xml",
        "name": "Daily Courier",
        "domain": "courier.example",
    },
    "herald": {"feed": "https://herald.example/atom", "name": "Gulf Herald", "domain": "herald.example"},
}


def make_article(
    key: str,
    title: str,
    text: str,
    *,
    source: str = "wire",
    published: str | None = "2017-06-07T08:00:00+00:00",
    actors: tuple[str, ...] = (),
    places: tuple[str, ...] = (),
    language: str = "en",
    summary: str | None = None,
    cluster: str | None = None,
    duplicate_of: str | None = None,
    bands: tuple[str, ...] = (),
    content_hash: str | None = None,
) -> dict[str, Any]:
    """A record shaped as docs/architecture.md's Article (``cluster``/``duplicate_of`` are corpus keys)."""
    src = SOURCES[source]
    url = f"https://{src['domain']}/news/{key}"
    aid = article_id(url)
    return {
        "id": aid,
        "url": url,
        "source": dict(src),
        "title": title,
        "summary": summary if summary is not None else text.split(". ")[0] + ".",
        "text": text,
        "language": language,
        "published_at": published,
        "published_at_estimated": published is None,
        "fetched_at": "2017-06-20T00:00:00+00:00",
        "authors": ["Desk"],
        "feed_tags": ["world"],
        "feed_entry_id": url,
        "content_hash": content_hash or f"hash-{key}",
        "minhash": [hash((key, i)) % 2**32 for i in range(16)],
        "lsh_bands": list(bands) or [f"band-{key}"],
        "cluster_id": cluster or aid,
        "duplicate_of": duplicate_of,
        "actors": [
            {
                "id": ACTORS[a][0],
                "name": ACTORS[a][1],
                "kind": ACTORS[a][2],
                "mentions": [ACTORS[a][1]],
                "count": 1,
            }
            for a in actors
        ],
        "locations": [
            {
                "id": PLACES[p][0],
                "name": PLACES[p][1],
                "kind": PLACES[p][2],
                "country_code": PLACES[p][3],
                "lat": PLACES[p][4],
                "lon": PLACES[p][5],
                "mentions": [PLACES[p][1]],
                "count": 2,
            }
            for p in places
        ],
    }


def corpus() -> dict[str, dict[str, Any]]:
    """Twelve stories, one of them syndicated by two more sources (a cluster of three)."""
    arts: dict[str, dict[str, Any]] = {}

    def add(key: str, *args: Any, **kw: Any) -> None:
        for ref in ("cluster", "duplicate_of"):
            if kw.get(ref):
                kw[ref] = arts[kw[ref]]["id"]
        arts[key] = make_article(key, *args, **kw)

    strike_text = (
        "Coalition aircraft carried out a wave of air strikes on Raqqa overnight. Fighters of the Syrian "
        "Democratic Forces advanced into two western neighbourhoods, a spokesman said. Residents reported "
        "heavy shelling near the old city walls and said families were fleeing towards the river."
    )
    add(
        "strike",
        "Air strikes pound Raqqa as SDF fighters advance",
        strike_text,
        actors=("sdf", "isil"),
        places=("raqqa",),
        published="2017-06-07T08:00:00+00:00",
        bands=("b-strike-1", "b-strike-2"),
        content_hash="hash-strike",
    )
    add(
        "strike-courier",
        "Air strikes pound Raqqa as SDF fighters advance",
        strike_text + " More follows.",
        source="courier",
        actors=("sdf", "isil"),
        places=("raqqa",),
        published="2017-06-07T10:30:00+00:00",
        cluster="strike",
        duplicate_of="strike",
        bands=("b-strike-1", "b-courier"),
        content_hash="hash-strike-c",
    )
    add(
        "strike-herald",
        "Air strikes hit Raqqa as SDF fighters advance",
        strike_text,
        source="herald",
        actors=("sdf", "isil"),
        places=("raqqa",),
        published="2017-06-07T12:00:00+00:00",
        cluster="strike",
        duplicate_of="strike",
        bands=("b-strike-2",),
        content_hash="hash-strike",
    )
    add(
        "convoy",
        "Aid convoy reaches besieged district of Aleppo",
        "A United Nations convoy of forty lorries delivered flour and medicine to an eastern district of "
        "Aleppo. Aid workers said the road had been closed for eleven weeks.",
        actors=("un",),
        places=("aleppo",),
        published="2017-06-08T09:15:00+00:00",
    )
    add(
        "mosul",
        "Iraqi troops retake the old city of Mosul",
        "Soldiers of the Iraqi Army raised a flag over the old city of Mosul after weeks of street battles "
        "with Islamic State militants. Engineers began clearing explosives from the alleys.",
        source="courier",
        actors=("iraqi-army", "isil"),
        places=("mosul", "iraq"),
        published="2017-06-09T14:00:00+00:00",
    )
    add(
        "water",
        "Water shortages in Baghdad as heatwave grips Iraq",
        "Temperatures above fifty degrees left neighbourhoods of Baghdad without running water. The ministry "
        "blamed failing pumps and asked residents to store water at night.",
        source="herald",
        places=("baghdad", "iraq"),
        published="2017-06-10T06:45:00+00:00",
    )
    add(
        "raqqa-fr",
        "Les combats continuent à Raqqa",
        "Les combattants ont progressé dans la vieille ville de Raqqa malgré une forte résistance, selon "
        "un porte-parole.",
        language="fr",
        actors=("sdf",),
        places=("raqqa",),
        published="2017-06-11T16:20:00+00:00",
    )
    add(
        "talks",
        "Ceasefire talks open in Kyiv",
        "Negotiators met in Kyiv under United Nations auspices to discuss a ceasefire along the front line. "
        "Both delegations described the first session as businesslike.",
        actors=("un",),
        places=("kyiv",),
        published="2017-06-12T11:00:00+00:00",
    )
    add(
        "drought",
        "Drought threatens harvest near Nairobi",
        "Farmers outside Nairobi said the long rains had failed for a second season. Maize prices in local "
        "markets doubled within a month.",
        source="courier",
        places=("nairobi",),
        published="2017-06-13T07:30:00+00:00",
    )
    add(
        "cyclone",
        "Cyclone damages villages in Fiji and Samoa",
        "A tropical cyclone tore roofs from houses near Suva before turning east towards Apia. Officials "
        "opened evacuation centres in schools.",
        source="herald",
        places=("suva", "apia"),
        published="2017-06-14T22:10:00+00:00",
    )
    add(
        "analysis",
        "Analysis: what comes after the battle for Raqqa",
        "When the fighting in Raqqa ends, the hardest questions begin: who governs the city, who rebuilds "
        "the bridges, and whether Islamic State cells will return.",
        actors=("isil",),
        places=("raqqa",),
        published=None,
    )
    add(
        "shelling",
        "Damascus residents describe night of shelling",
        "Residents of eastern Damascus described a night of shelling that the Government of Syria said "
        "targeted rebel positions. Hospitals treated dozens of wounded.",
        source="courier",
        actors=("syrian-gov",),
        places=("damascus",),
        published="2017-06-15T05:00:00+00:00",
    )
    return arts


ARTS = corpus()
IDS = {key: a["id"] for key, a in ARTS.items()}
KEYS = {a["id"]: key for key, a in ARTS.items()}
MEMBERS = {"strike-courier", "strike-herald"}  # duplicates of "strike"
REPS = [k for k in ARTS if k not in MEMBERS]


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A fresh, empty store of each engine, opened through ``open_store`` like the CLI does."""
    from pipeline.settings import get_settings

    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'contract' / 'newswire.db'}")
        yield s
        s.close()
        return
    es_url: str = request.getfixturevalue("es_url")
    prefix: str = request.getfixturevalue("es_prefix")  # fresh per test, deleted afterwards
    monkeypatch.setenv("NEWSWIRE_INDEX_PREFIX", prefix)
    get_settings.cache_clear()
    s = open_store(es_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def loaded(store: Store) -> Store:
    report = store.index(ARTS.values())
    assert report.errors == []
    return store


def run(store: Store, **kw: Any) -> SearchResult:
    kw.setdefault("limit", 100)
    return store.search(SearchQuery(**kw))


def keys(result: SearchResult) -> set[str]:
    return {KEYS[h["id"]] for h in result.hits}


def text_of(key: str) -> str:
    a = ARTS[key]
    return " ".join([a["title"], a["summary"], a["text"]]).lower()


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0087714 * math.asin(math.sqrt(a))


def when(key: str) -> datetime:
    published = ARTS[key]["published_at"]
    assert published is not None
    return datetime.fromisoformat(published)


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------


def test_index_then_get_returns_the_article(store: Store) -> None:
    report = store.index(ARTS.values())
    assert (report.indexed, report.created, report.errors) == (len(ARTS), len(ARTS), [])
    assert store.count() == len(ARTS)
    for key in ("convoy", "analysis", "strike-herald"):
        assert store.get(IDS[key]) == ARTS[key]
    stored = store.get(IDS["strike"])
    assert stored is not None
    assert {k: v for k, v in stored.items() if k != "also_published_by"} == ARTS["strike"]
    assert store.get("no-such-article") is None


def test_the_raw_page_html_is_not_stored(store: Store) -> None:
    page = "<html><body><p>Full page of the convoy story, with its navigation and adverts.</p></body></html>"
    report = store.index([dict(ARTS["convoy"], html=page)])
    assert (report.indexed, report.errors) == (1, [])
    stored = store.get(IDS["convoy"])
    assert stored is not None
    assert "html" not in stored
    assert stored == ARTS["convoy"]  # everything else is kept as written
    assert run(store, text="adverts").total == 0


def test_reindexing_is_idempotent(store: Store) -> None:
    store.index(ARTS.values())
    before = run(store, text="raqqa", facets=True)
    again = store.index(ARTS.values())
    assert (again.indexed, again.created, again.errors) == (len(ARTS), 0, [])
    assert store.count() == len(ARTS)
    rep = store.get(IDS["strike"])
    assert rep is not None
    assert sorted(e["id"] for e in rep["also_published_by"]) == sorted(IDS[k] for k in MEMBERS)
    after = run(store, text="raqqa", facets=True)
    assert after.total == before.total
    assert after.facets == before.facets
    # a changed copy replaces the stored one (no second document, the new text is searchable)
    changed = dict(ARTS["drought"], title="Drought and locusts threaten harvest near Nairobi")
    assert store.index([changed]).created == 0
    assert store.count() == len(ARTS)
    assert keys(run(store, text="locusts")) == {"drought"}
    assert run(store, text="locusts -drought").total == 0


def test_bad_documents_are_reported_and_the_others_written(store: Store) -> None:
    bad_date = dict(ARTS["talks"], published_at="the day after tomorrow")
    no_id = {k: v for k, v in ARTS["drought"].items() if k != "id"}
    report = store.index([ARTS["convoy"], bad_date, no_id, ARTS["water"]])
    assert report.indexed == 2
    assert len(report.errors) == 2
    assert {e["id"] for e in report.errors} == {IDS["talks"], None}
    assert all(e["error"] for e in report.errors)
    assert store.known_ids(IDS.values()) == {IDS["convoy"], IDS["water"]}


def test_duplicates_arriving_before_their_representative_are_recorded(store: Store) -> None:
    store.index([ARTS["strike-courier"]])
    store.index([ARTS["strike"], ARTS["strike-herald"]])
    rep = store.get(IDS["strike"])
    assert rep is not None
    entries = rep["also_published_by"]
    assert sorted(e["id"] for e in entries) == sorted(IDS[k] for k in MEMBERS)
    courier = next(e for e in entries if e["id"] == IDS["strike-courier"])
    assert courier["url"] == ARTS["strike-courier"]["url"]
    assert courier["published_at"] == ARTS["strike-courier"]["published_at"]
    assert courier["source"]["name"] == "Daily Courier"


def publishers(store: Store, key_or_id: str) -> set[str]:
    stored = store.get(IDS.get(key_or_id, key_or_id))
    assert stored is not None
    return {e["id"] for e in stored.get("also_published_by") or []}


def test_earliest_duplicate_stands_in_for_a_missing_representative(store: Store) -> None:
    # both copies arrive, their representative ("strike") is not stored (yet)
    store.index([ARTS["strike-herald"], ARTS["strike-courier"]])
    assert keys(run(store, text="raqqa")) == {"strike-courier"}  # the earlier of the two
    assert run(store, text="raqqa").total == 1
    store.index([ARTS["strike"]])
    assert keys(run(store, text="raqqa")) == {"strike"}
    assert publishers(store, "strike") == {IDS[k] for k in MEMBERS}


def test_rewriting_clusters_replaces_publisher_lists(loaded: Store) -> None:
    """What pipeline.dedupe.reconcile does when it merges two clusters: every member is re-indexed
    with the new cluster_id, the new representative with its complete also_published_by."""
    rep, absorbed = ARTS["strike"], ARTS["raqqa-fr"]
    loaded.index([dict(ARTS["analysis"], cluster_id=absorbed["id"], duplicate_of=absorbed["id"])])
    assert publishers(loaded, "raqqa-fr") == {IDS["analysis"]}
    members = [ARTS["strike-courier"], ARTS["strike-herald"], absorbed, ARTS["analysis"]]
    entries = [
        {"id": m["id"], "source": m["source"], "url": m["url"], "published_at": m["published_at"]}
        for m in members
    ]
    rewrite = [dict(rep, also_published_by=entries)] + [
        dict(m, cluster_id=rep["id"], duplicate_of=rep["id"], also_published_by=[]) for m in members
    ]
    for _ in range(2):  # idempotent: the second rewrite changes nothing
        report = loaded.index(rewrite)
        assert (report.created, report.errors) == (0, [])
        assert publishers(loaded, "strike") == {m["id"] for m in members}
        assert publishers(loaded, "raqqa-fr") == set()
        assert {m["id"] for m in loaded.cluster_members(rep["id"])} == {rep["id"]} | {
            m["id"] for m in members
        }
        assert loaded.cluster_members(absorbed["id"]) == []
        assert keys(run(loaded, text="raqqa")) == {"strike"}
        assert keys(run(loaded, text="raqqa", collapse=False)) == {
            "strike",
            "strike-courier",
            "strike-herald",
            "raqqa-fr",
            "analysis",
        }


def test_clusters_are_read_and_rewritten_in_one_call_each(loaded: Store) -> None:
    """``clusters_members`` and ``rewrite_clusters``, what reconcile uses: the same merge as
    above as partial changes; every other field of the rewritten articles is kept."""
    rep, absorbed = ARTS["strike"], ARTS["raqqa-fr"]
    found = loaded.clusters_members([rep["id"], absorbed["id"], "no-such-cluster"])
    assert set(found) == {rep["id"], absorbed["id"]}
    assert {m["id"] for m in found[rep["id"]]} == {rep["id"]} | {IDS[k] for k in MEMBERS}
    assert all({"id", "cluster_id", "published_at", "source", "url"} <= set(m) for m in found[rep["id"]])
    members = [ARTS["strike-courier"], ARTS["strike-herald"], absorbed]
    entries = [
        {"id": m["id"], "source": m["source"], "url": m["url"], "published_at": m["published_at"]}
        for m in members
    ]
    changes = [
        {"id": rep["id"], "cluster_id": rep["id"], "duplicate_of": None, "also_published_by": entries}
    ] + [
        {"id": m["id"], "cluster_id": rep["id"], "duplicate_of": rep["id"], "also_published_by": []}
        for m in members
    ]
    report = loaded.rewrite_clusters(changes)
    assert report.errors == []
    assert publishers(loaded, "strike") == {m["id"] for m in members}
    assert loaded.cluster_members(absorbed["id"]) == []
    # searchable at once: raqqa-fr is no longer a representative
    assert keys(run(loaded, text="raqqa")) == {k for k in REPS if "raqqa" in text_of(k)} - {"raqqa-fr"}
    moved = loaded.get(absorbed["id"])
    assert moved is not None
    assert moved["duplicate_of"] == rep["id"]
    assert moved["title"] == absorbed["title"]
    assert moved.get("locations") == absorbed.get("locations")
    assert set(loaded.clusters_members([rep["id"]])[rep["id"]][0]) >= {"id", "cluster_id"}


# --------------------------------------------------------------------------------------
# text search
# --------------------------------------------------------------------------------------


def test_text_search_matches_words_with_stemming(loaded: Store) -> None:
    expected = {k for k in REPS if "raqqa" in text_of(k)}
    assert keys(run(loaded, text="Raqqa")) == expected
    # Porter stemming: "strike" finds "strikes", "advancing" finds "advanced"/"advance"
    assert keys(run(loaded, text="strike")) == {"strike"}
    assert keys(run(loaded, text="advancing")) == {"strike"}
    # all words must match (default operator AND), in any of title, summary and text
    assert keys(run(loaded, text="raqqa bridges")) == {"analysis"}
    assert keys(run(loaded, text="analysis bridges")) == {"analysis"}  # title word + body word
    assert run(loaded, text="raqqa nairobi").total == 0


def test_text_search_operators(loaded: Store) -> None:
    assert keys(run(loaded, text="mosul | aleppo")) == {"mosul", "convoy"}
    assert keys(run(loaded, text="raqqa -islamic")) == {k for k in REPS if "raqqa" in text_of(k)} - {
        "analysis"
    }
    assert keys(run(loaded, text="+raqqa +bridges")) == {"analysis"}
    assert keys(run(loaded, text='"old city"')) == {"strike", "mosul"}
    assert keys(run(loaded, text='"city old"')) == set()
    assert keys(run(loaded, text='"old city" -mosul')) == {"strike"}
    assert keys(run(loaded, text="(mosul | aleppo) flour")) == {"convoy"}
    assert keys(run(loaded, text="drough*")) == {"drought"}
    assert keys(run(loaded, text="cyclo* | ceasefire")) == {"cyclone", "talks"}
    # a pure negation means "everything except"
    assert keys(run(loaded, text="-raqqa")) == {k for k in REPS if "raqqa" not in text_of(k)}


def test_text_search_never_fails_on_odd_input(loaded: Store) -> None:
    odd = [
        '"',
        'raqqa "',
        '"raqqa',
        "(",
        ")",
        "((raqqa",
        "raqqa)",
        "*",
        "-",
        "+",
        "|",
        "||",
        "NEAR(",
        "AND",
        "OR raqqa",
        "NOT",
        "title:raqqa",
        "raqqa^2",
        "\\",
        "'",
        "rock'n'roll",
        "a\"b'c",
        "{}[]",
        "~",
        "raqqa~",
        '"old city"~2',
        "-(raqqa)",
        "@#$%",
        "ÅÄÖ",
        "0x00\x00",
        "raqqa -",
    ]
    for text in odd:
        result = run(loaded, text=text, facets=True)
        assert result.total >= len(result.hits), text
    assert keys(run(loaded, text='raqqa "')) == keys(run(loaded, text="raqqa"))
    assert keys(run(loaded, text="((raqqa")) == keys(run(loaded, text="raqqa"))


def test_stopwords_only_match_nothing(loaded: Store) -> None:
    assert run(loaded, text="the of and").total == 0
    assert keys(run(loaded, text="the battle for raqqa")) == keys(run(loaded, text="battle raqqa"))


def test_relevance_sort_orders_by_score(loaded: Store) -> None:
    result = run(loaded, text="raqqa")
    scores = [h["_score"] for h in result.hits]
    assert all(isinstance(s, float) for s in scores)
    assert scores == sorted(scores, reverse=True)


# --------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------


def with_actor(key: str, actor: str) -> bool:
    return any(a["id"] == ACTORS[actor][0] for a in ARTS[key]["actors"])


def with_place(key: str, place: str) -> bool:
    return any(loc["id"] == PLACES[place][0] for loc in ARTS[key]["locations"])


def test_actor_and_location_filters(loaded: Store) -> None:
    isil = ACTORS["isil"][0]
    assert keys(run(loaded, actor_ids=[[isil]])) == {k for k in REPS if with_actor(k, "isil")}
    # a group is one entity's ids (OR); groups are AND-ed
    assert keys(run(loaded, actor_ids=[[isil, "actor:unknown-alias"]])) == {
        k for k in REPS if with_actor(k, "isil")
    }
    assert keys(run(loaded, actor_ids=[[isil], [ACTORS["sdf"][0]]])) == {"strike"}
    raqqa = PLACES["raqqa"][0]
    assert keys(run(loaded, location_ids=[[raqqa]])) == {k for k in REPS if with_place(k, "raqqa")}
    assert keys(run(loaded, actor_ids=[[isil]], location_ids=[[raqqa]])) == {"strike", "analysis"}
    assert keys(run(loaded, actor_ids=[[isil]], location_ids=[[raqqa]], text="bridges")) == {"analysis"}
    assert keys(run(loaded, location_ids=[[PLACES["mosul"][0], PLACES["aleppo"][0]]])) == {"mosul", "convoy"}
    assert run(loaded, actor_ids=[["actor:nobody"]]).total == 0


def test_date_range_is_inclusive_and_skips_undated(loaded: Store) -> None:
    dated = [k for k in REPS if ARTS[k]["published_at"]]
    since, until = when("convoy"), when("talks")
    expected = {k for k in dated if since <= when(k) <= until}
    assert keys(run(loaded, since=since, until=until)) == expected
    assert {"convoy", "talks"} <= expected
    assert keys(run(loaded, since=since + timedelta(seconds=1), until=until - timedelta(seconds=1))) == (
        expected - {"convoy", "talks"}
    )
    assert keys(run(loaded, since=when("drought"))) == {k for k in dated if when(k) >= when("drought")}
    assert keys(run(loaded, until=when("strike"))) == {"strike"}  # "analysis" has no date
    # naive datetimes are UTC
    assert keys(run(loaded, since=since.replace(tzinfo=None), until=until.replace(tzinfo=None))) == expected


def test_source_language_and_country_filters(loaded: Store) -> None:
    by_source = {k for k in REPS if ARTS[k]["source"]["name"] == "Daily Courier"}
    assert keys(run(loaded, sources=["Daily Courier"])) == by_source
    assert keys(run(loaded, sources=["daily courier"])) == by_source  # case does not matter
    assert keys(run(loaded, sources=["courier.example"])) == by_source  # the domain works too
    assert keys(run(loaded, sources=["courier.example", "Gulf Herald"])) == {
        k for k in REPS if ARTS[k]["source"]["name"] in ("Daily Courier", "Gulf Herald")
    }
    assert keys(run(loaded, languages=["fr"])) == {"raqqa-fr"}
    assert keys(run(loaded, languages=["en"], text="raqqa")) == {"strike", "analysis"}
    iq = {k for k in REPS if any(loc["country_code"] == "IQ" for loc in ARTS[k]["locations"])}
    assert keys(run(loaded, country_codes=["IQ"])) == iq == {"mosul", "water"}
    assert keys(run(loaded, country_codes=["IQ", "KE"])) == iq | {"drought"}
    assert keys(run(loaded, country_codes=["SY"], sources=["Wire One"], languages=["en"])) == {
        "strike",
        "convoy",
        "analysis",
    }


def test_geo_distance_and_bounding_box(loaded: Store) -> None:
    lat, lon = PLACES["aleppo"][4], PLACES["aleppo"][5]
    to_raqqa = distance_km(lat, lon, PLACES["raqqa"][4], PLACES["raqqa"][5])
    assert keys(run(loaded, near=(lat, lon, 10.0))) == {"convoy"}
    assert keys(run(loaded, near=(lat, lon, to_raqqa * 0.97))) == {"convoy"}
    raqqa_stories = {k for k in REPS if with_place(k, "raqqa")}
    assert keys(run(loaded, near=(lat, lon, to_raqqa * 1.03))) == {"convoy"} | raqqa_stories
    # a box around northern Syria (top, left, bottom, right)
    assert keys(run(loaded, bbox=(37.0, 36.5, 35.5, 40.0))) == {"convoy"} | raqqa_stories
    # a box that crosses the antimeridian holds both Suva (178E) and Apia (171W)
    assert keys(run(loaded, bbox=(-10.0, 175.0, -20.0, -170.0))) == {"cyclone"}
    assert keys(run(loaded, bbox=(-10.0, 175.0, -20.0, 179.0))) == {"cyclone"}
    assert run(loaded, bbox=(-10.0, -179.0, -20.0, -175.0)).total == 0
    # geo combines with the other filters
    assert keys(run(loaded, near=(lat, lon, to_raqqa * 1.03), actor_ids=[[ACTORS["isil"][0]]])) == {
        "strike",
        "analysis",
    }


# --------------------------------------------------------------------------------------
# facets, highlights, sorting, paging, collapse
# --------------------------------------------------------------------------------------


def expected_entity_facet(matching: list[str], field: str, size: int) -> list[tuple[str, int]]:
    counts = Counter(e["id"] for k in matching for e in {x["id"]: x for x in ARTS[k][field]}.values())
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


def test_facets_count_the_matching_set(loaded: Store) -> None:
    for query in (
        SearchQuery(text="raqqa | baghdad | mosul"),
        SearchQuery(),
        SearchQuery(country_codes=["SY"]),
    ):
        query.limit, query.facets, query.facet_size = 100, True, 3
        result = loaded.search(query)
        matching = [KEYS[h["id"]] for h in result.hits]
        assert result.total == len(matching)
        f = result.facets
        for facet, field in (("actors", "actors"), ("locations", "locations")):
            assert [(b["key"], b["count"]) for b in f[facet]] == expected_entity_facet(matching, field, 3), (
                facet
            )
        names = {v[0]: v[1] for v in ACTORS.values()} | {v[0]: v[1] for v in PLACES.values()}
        assert all(b["name"] == names[b["key"]] for b in f["actors"] + f["locations"])
        sources = Counter(ARTS[k]["source"]["name"] for k in matching)
        expected_sources = sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        assert [(b["key"], b["count"]) for b in f["sources"]] == expected_sources
        days = Counter(ARTS[k]["published_at"][:10] for k in matching if ARTS[k]["published_at"])
        assert [(b["key"], b["count"]) for b in f["dates"]] == sorted(days.items())
    none = run(loaded, text="raqqa", facets=False)
    assert not any(none.facets.get(name) for name in ("actors", "locations", "sources", "dates"))


def test_highlights_mark_the_matched_words(loaded: Store) -> None:
    result = run(loaded, text="raqqa shelling")
    assert result.hits
    for hit in result.hits:
        fragments = hit["_highlight"]
        assert fragments, hit["id"]
        marked = [m.lower() for frag in fragments for m in re.findall(r"<mark>(.*?)</mark>", frag)]
        assert marked, marked
        assert all(("raqqa" in m) or ("shelling" in m) for m in marked), marked
        assert any("raqqa" in m for m in marked)
    assert all(h["_highlight"] == [] for h in run(loaded, text="raqqa", highlight=False).hits)
    assert all(not h["_highlight"] for h in run(loaded, location_ids=[[PLACES["raqqa"][0]]]).hits)


def test_sort_by_date_newest_first_and_undated_last(loaded: Store) -> None:
    result = run(loaded, sort="date")
    order = [KEYS[h["id"]] for h in result.hits]
    dated = sorted((k for k in REPS if ARTS[k]["published_at"]), key=when, reverse=True)
    assert order == dated + ["analysis"]
    raqqa = [KEYS[h["id"]] for h in run(loaded, text="raqqa", sort="date").hits]
    assert raqqa == [k for k in order if "raqqa" in text_of(k)]


def test_estimated_dates_are_shown_but_never_filtered_or_sorted_on(store: Store) -> None:
    """An undated feed item keeps its fetch time as an estimate for display only."""
    dated = make_article(
        "dated",
        "Port reopens after storm",
        "The port reopened on Tuesday.",
        published="2017-06-07T08:00:00+00:00",
    )
    older = make_article(
        "older",
        "Port closes before storm",
        "The port closed on Monday.",
        published="2017-06-06T08:00:00+00:00",
    )
    undated = make_article(
        "guess", "Port workers return", "Dockers returned to the port.", published="2017-06-07T20:00:00+00:00"
    )  # newest of the three, but a guess
    undated["published_at_estimated"] = True
    assert store.index([dated, older, undated]).errors == []
    key = {a["id"]: k for k, a in (("dated", dated), ("older", older), ("guess", undated))}
    day = datetime(2017, 6, 7, tzinfo=UTC)
    hits = run(store, since=day, until=day + timedelta(days=1)).hits
    assert [key[h["id"]] for h in hits] == ["dated"]
    by_date = run(store, sort="date")
    assert [key[h["id"]] for h in by_date.hits] == ["dated", "older", "guess"]
    shown = next(h for h in by_date.hits if key[h["id"]] == "guess")
    assert shown["published_at"].startswith("2017-06-07T20:00")
    assert shown["published_at_estimated"] is True
    assert [key[h["id"]] for h in run(store, text="port", sort="date").hits] == ["dated", "older", "guess"]
    days = {b["key"]: b["count"] for b in run(store, facets=True).facets["dates"]}
    assert days == {"2017-06-06": 1, "2017-06-07": 1}
    first = run(store, sort="date", limit=2)  # paging across the estimated one
    rest = run(store, sort="date", limit=2, after=first.next_after)
    assert [key[h["id"]] for h in first.hits + rest.hits] == ["dated", "older", "guess"]


def paging_corpus(n: int) -> list[dict[str, Any]]:
    start = datetime(2017, 7, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        words = " ".join(["bulletin"] * (1 + i % 4))
        out.append(
            make_article(
                f"bulletin-{i:03d}",
                f"Bulletin number {i}",
                f"{words}: situation report {i} from the field office.",
                source=("wire", "courier", "herald")[i % 3],
                published=(start + timedelta(hours=i // 3)).isoformat() if i % 11 else None,  # ties and gaps
            )
        )
    return out


@pytest.mark.parametrize("sort", ["date", "relevance"])
def test_deep_paging_visits_every_hit_once(store: Store, sort: str) -> None:
    docs = paging_corpus(61)
    store.index(docs)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        result = store.search(
            SearchQuery(text="bulletin", sort=sort, limit=7, after=after, facets=pages == 0)  # type: ignore[arg-type]
        )
        assert result.total == len(docs)
        seen.extend(h["id"] for h in result.hits)
        pages += 1
        assert pages <= 20
        if result.next_after is None or not result.hits:
            break
        after = result.next_after
    assert len(seen) == len(set(seen)) == len(docs)
    assert set(seen) == {d["id"] for d in docs}
    if sort == "date":
        by_id = {d["id"]: d for d in docs}
        stamps = [by_id[i]["published_at"] or "" for i in seen]
        dated = [s for s in stamps if s]
        assert dated == sorted(dated, reverse=True)
        assert stamps[len(dated) :] == [""] * (len(stamps) - len(dated))


def test_collapse_returns_one_hit_per_cluster_with_its_publishers(loaded: Store) -> None:
    collapsed = run(loaded, text="air strikes raqqa")
    assert [KEYS[h["id"]] for h in collapsed.hits] == ["strike"]
    assert collapsed.total == 1
    publishers = collapsed.hits[0]["also_published_by"]
    assert sorted(e["id"] for e in publishers) == sorted(IDS[k] for k in MEMBERS)
    assert {e["source"]["name"] for e in publishers} == {"Daily Courier", "Gulf Herald"}
    full = run(loaded, text="air strikes raqqa", collapse=False, facets=True)
    assert keys(full) == {"strike"} | MEMBERS
    assert full.total == 3
    assert {b["key"]: b["count"] for b in full.facets["sources"]} == {
        "Wire One": 1,
        "Daily Courier": 1,
        "Gulf Herald": 1,
    }
    assert run(loaded, collapse=False).total == len(ARTS)
    assert run(loaded).total == len(REPS)
    members = loaded.cluster_members(IDS["strike"])
    assert members[0]["id"] == IDS["strike"]
    assert {m["id"] for m in members} == {IDS["strike"]} | {IDS[k] for k in MEMBERS}
    assert [m["id"] for m in loaded.cluster_members(IDS["convoy"])] == [IDS["convoy"]]


# --------------------------------------------------------------------------------------
# pipeline state
# --------------------------------------------------------------------------------------


def test_feed_state_round_trip(store: Store) -> None:
    url = "https://wireone.example/rss"
    assert store.get_feed_state(url) is None
    assert store.all_feed_states() == {}
    state = {
        "etag": 'W/"abc"',
        "last_modified": "Wed, 07 Jun 2017 08:00:00 GMT",
        "health": {"consecutive_failures": 0, "new_per_day": {"2017-06-07": 4}, "note": "Raqqa – ok"},
    }
    store.put_feed_state(url, state)
    assert store.get_feed_state(url) == state
    store.put_feed_state(url, {"etag": '"def"'})  # replaces, does not merge
    store.put_feed_state("https://courier.example/feed.xml", {"etag": None})
    assert store.all_feed_states() == {
        url: {"etag": '"def"'},
        "https://courier.example/feed.xml": {"etag": None},
    }


def test_feed_states_are_saved_together(store: Store) -> None:
    """``put_feed_states`` is ``put_feed_state`` for each feed, in one write: each state replaces the stored
    one (never merged), the others are untouched, and an empty mapping writes nothing."""
    store.put_feed_state("https://wireone.example/rss", {"etag": '"old"', "note": "kept?"})
    store.put_feed_state("https://untouched.example/rss", {"etag": '"same"'})
    store.put_feed_states({})
    store.put_feed_states({
        "https://wireone.example/rss": {"etag": '"new"'},
        "https://courier.example/feed.xml": {"health": {"note": "Raqqa – ok"}},
    })  # fmt: skip
    assert store.get_feed_state("https://wireone.example/rss") == {"etag": '"new"'}
    assert store.get_feed_state("https://courier.example/feed.xml") == {"health": {"note": "Raqqa – ok"}}
    assert store.all_feed_states() == {
        "https://wireone.example/rss": {"etag": '"new"'},
        "https://courier.example/feed.xml": {"health": {"note": "Raqqa – ok"}},
        "https://untouched.example/rss": {"etag": '"same"'},
    }


def test_dedupe_lookups(loaded: Store) -> None:
    assert loaded.known_ids([IDS["convoy"], "unknown", IDS["strike-herald"]]) == {
        IDS["convoy"],
        IDS["strike-herald"],
    }
    assert loaded.known_ids([]) == set()
    found = loaded.find_content_hashes(["hash-strike", "hash-convoy", "hash-unknown"])
    assert set(found) == {"hash-strike", "hash-convoy"}
    # "strike" and "strike-herald" share a hash: the cluster's representative answers
    assert found["hash-strike"] == ClusterRef(IDS["strike"], IDS["strike"], ARTS["strike"]["minhash"])
    assert found["hash-convoy"] == ClusterRef(IDS["convoy"], IDS["convoy"], ARTS["convoy"]["minhash"])
    bands = loaded.find_band_keys(["b-strike-1", "b-strike-2", "b-courier", "band-water", "b-none"])
    assert set(bands) == {"b-strike-1", "b-strike-2", "b-courier", "band-water"}
    as_sets = {k: {(r.id, r.cluster_id) for r in refs} for k, refs in bands.items()}
    strike = IDS["strike"]
    assert as_sets["b-strike-1"] == {(strike, strike), (IDS["strike-courier"], strike)}
    assert as_sets["b-strike-2"] == {(strike, strike), (IDS["strike-herald"], strike)}
    assert as_sets["band-water"] == {(IDS["water"], IDS["water"])}
    assert all(r.signature == ARTS[KEYS[r.id]]["minhash"] for refs in bands.values() for r in refs)


# --------------------------------------------------------------------------------------
# place hierarchy, roll-up facets, retag
# --------------------------------------------------------------------------------------

# Ids are literal test data (GeoNames-style), not looked up: (id, name, kind, country, ancestors, admin1).
# ``admin1`` is the record's shape: {"id", "name"}, a bare id (accepted too) or None.
NIGERIA, BORNO, MAIDUGURI_LGA = "geonames:2328926", "geonames:2346794", "geonames:2331446"
DRC, NORTH_KIVU, SOUTH_KIVU = "geonames:203312", "geonames:206938", "geonames:205413"
HPLACES: dict[str, tuple[str, str, str, str, list[str], Any]] = {
    "nigeria": (NIGERIA, "Nigeria", "country", "NG", [], None),
    "borno": (BORNO, "Borno State", "admin1", "NG", [NIGERIA], None),
    "maiduguri": (
        "geonames:2331447",
        "Maiduguri",
        "city",
        "NG",
        [MAIDUGURI_LGA, BORNO, NIGERIA],
        {"id": BORNO, "name": "Borno State"},
    ),
    "drc": (DRC, "Democratic Republic of the Congo", "country", "CD", [], None),
    "north-kivu": (NORTH_KIVU, "North Kivu", "admin1", "CD", [DRC], None),
    "goma": (
        "geonames:216281",
        "Goma",
        "city",
        "CD",
        [NORTH_KIVU, DRC],
        {"id": NORTH_KIVU, "name": "North Kivu"},
    ),
    "bukavu": ("geonames:217831", "Bukavu", "city", "CD", [SOUTH_KIVU, DRC], SOUTH_KIVU),  # bare admin1 id
    "lagos": ("geonames:2332459", "Lagos", "city", "NG", [], None),  # written as an old record below
}


def hloc(place: str, old: bool = False) -> dict[str, Any]:
    pid, name, kind, cc, ancestors, admin1 = HPLACES[place]
    loc: dict[str, Any] = {
        "id": pid,
        "name": name,
        "kind": kind,
        "country_code": cc,
        "lat": None,
        "lon": None,
        "mentions": [name],
        "count": 1,
    }
    if not old:  # records written before the hierarchy existed lack both fields
        loc |= {"ancestors": ancestors, "admin1": admin1}
    return loc


def hierarchy_corpus() -> dict[str, dict[str, Any]]:
    stories = {
        "goma": (
            "Displaced families arrive in Goma",
            "Thousands of families reached Goma after a night of fighting in the hills to the north.",
            ["goma"],
        ),
        "kivu": (
            "Province of North Kivu extends curfew",
            "Authorities in North Kivu extended the evening curfew by a month.",
            ["north-kivu"],
        ),
        "bukavu": (
            "Lake ferry resumes service to Bukavu",
            "The ferry to Bukavu sailed again after repairs to its engine.",
            ["bukavu"],
        ),
        "maiduguri": (
            "Market reopens in Maiduguri",
            "Traders in Maiduguri reopened the main market after a week of closures.",
            ["maiduguri"],
        ),
        "nigeria": (
            "Nigeria announces new fuel prices",
            "The government of Nigeria announced new fuel prices for the coming quarter.",
            ["nigeria"],
        ),
        "lagos": (
            "Flooding in Lagos after heavy rain",
            "Streets in Lagos were flooded after a day of heavy rain.",
            ["lagos"],
        ),
        "both": (
            "Aid agencies compare Goma and Maiduguri",
            "Camps near Goma and Maiduguri face the same shortages of clean water.",
            ["goma", "maiduguri"],
        ),
    }
    arts: dict[str, dict[str, Any]] = {}
    for n, (key, (title, text, places)) in enumerate(stories.items()):
        art = make_article(f"h-{key}", title, text, published=f"2017-07-{n + 1:02d}T09:00:00+00:00")
        art["locations"] = [hloc(p, old=(key == "lagos")) for p in places]
        arts[key] = art
    # a second outlet's copy of "goma": one cluster, counted once by collapsed facets
    copy = make_article(
        "h-goma-copy",
        stories["goma"][0],
        stories["goma"][1],
        source="courier",
        published="2017-07-01T11:00:00+00:00",
        cluster=arts["goma"]["id"],
        duplicate_of=arts["goma"]["id"],
    )
    copy["locations"] = [hloc("goma")]
    arts["goma-copy"] = copy
    return arts


HARTS = hierarchy_corpus()
HKEYS = {a["id"]: key for key, a in HARTS.items()}
HREPS = [k for k in HARTS if k != "goma-copy"]


def hkeys(result: SearchResult) -> set[str]:
    return {HKEYS[h["id"]] for h in result.hits}


def inside(key: str, place_id: str) -> bool:
    """The rule: tagged with the place itself or with a place whose ancestors contain it."""
    return any(
        loc["id"] == place_id or place_id in loc.get("ancestors", []) for loc in HARTS[key]["locations"]
    )


@pytest.fixture
def hloaded(store: Store) -> Store:
    report = store.index([*ARTS.values(), *HARTS.values()])
    assert report.errors == []
    return store


def test_location_filter_includes_the_places_inside(hloaded: Store) -> None:
    for place_id in (NORTH_KIVU, SOUTH_KIVU, DRC, BORNO, NIGERIA, MAIDUGURI_LGA, HPLACES["goma"][0]):
        assert hkeys(run(hloaded, location_ids=[[place_id]])) == {k for k in HREPS if inside(k, place_id)}, (
            place_id
        )
    # an admin-1 division finds its city; the country finds the city tagged alone
    assert hkeys(run(hloaded, location_ids=[[NORTH_KIVU]])) == {"goma", "kivu", "both"}
    assert hkeys(run(hloaded, location_ids=[[NIGERIA]])) == {"maiduguri", "nigeria", "both"}
    # a sibling admin-1 division does not match
    assert hkeys(run(hloaded, location_ids=[[SOUTH_KIVU]])) == {"bukavu"}
    # groups are still AND-ed, ids in a group OR-ed
    assert hkeys(run(hloaded, location_ids=[[DRC], [NIGERIA]])) == {"both"}
    assert hkeys(run(hloaded, location_ids=[[SOUTH_KIVU, BORNO]])) == {"bukavu", "maiduguri", "both"}
    # records without ancestors: found by their own id and country code, not by the country's id
    lagos = HPLACES["lagos"][0]
    assert hkeys(run(hloaded, location_ids=[[lagos]])) == {"lagos"}
    assert "lagos" not in hkeys(run(hloaded, location_ids=[[NIGERIA]]))
    assert {KEYS.get(h["id"], HKEYS.get(h["id"])) for h in run(hloaded, country_codes=["NG"]).hits} == {
        k for k in HREPS if any(loc["country_code"] == "NG" for loc in HARTS[k]["locations"])
    }
    assert keys(run(hloaded, location_ids=[[PLACES["raqqa"][0]]])) == {
        k for k in REPS if with_place(k, "raqqa")
    }
    # collapse: the duplicate is found without collapsing, and the hierarchy applies to it too
    assert hkeys(run(hloaded, location_ids=[[DRC]], collapse=False)) >= {"goma", "goma-copy"}
    assert run(hloaded, location_ids=[[DRC]], text="ferry").total == 1


def test_roll_up_facets(hloaded: Store) -> None:
    from pipeline.stores.base import admin1_of, country_name

    for query in (
        SearchQuery(location_ids=[[DRC, NIGERIA]]),
        SearchQuery(),
        SearchQuery(text="goma | lagos"),
    ):
        query.limit, query.facets, query.facet_size = 100, True, 20
        result = hloaded.search(query)
        matching = [KEYS.get(h["id"]) or HKEYS[h["id"]] for h in result.hits]
        assert result.total == len(matching)
        docs = [ARTS[k] if k in ARTS else HARTS[k] for k in matching]
        countries = Counter(cc for d in docs for cc in {loc["country_code"] for loc in d["locations"]})
        assert [(b["key"], b["count"]) for b in result.facets["location_countries"]] == sorted(
            countries.items(), key=lambda kv: (-kv[1], kv[0])
        )
        assert all(b["name"] == country_name(b["key"]) for b in result.facets["location_countries"])
        admin1 = Counter(
            a[0] for d in docs for a in {admin1_of(loc) for loc in d["locations"]} if a is not None
        )
        assert [(b["key"], b["count"]) for b in result.facets["location_admin1"]] == sorted(
            admin1.items(), key=lambda kv: (-kv[1], kv[0])
        )
    nigeria = hloaded.search(SearchQuery(location_ids=[[NIGERIA]], limit=100)).facets
    assert {b["key"]: (b["name"], b["count"]) for b in nigeria["location_countries"]} == {
        "NG": ("Nigeria", 3),
        "CD": (country_name("CD"), 1),
    }
    kivu = hloaded.search(SearchQuery(location_ids=[[DRC]], limit=100)).facets["location_admin1"]
    # the admin-1 division itself counts under its own id; a city under its admin1; names from the records;
    # "goma" and its copy are one cluster: counted once
    assert {b["key"]: (b["name"], b["count"]) for b in kivu} == {
        NORTH_KIVU: ("North Kivu", 3),
        SOUTH_KIVU: (SOUTH_KIVU, 1),
        BORNO: ("Borno State", 1),
    }
    full = hloaded.search(SearchQuery(location_ids=[[DRC]], limit=100, collapse=False)).facets[
        "location_admin1"
    ]
    assert {b["key"]: b["count"] for b in full}[NORTH_KIVU] == 4
    assert hloaded.search(SearchQuery(text="nothing-matches-this")).facets["location_admin1"] == []


class KeywordTagger:
    """A small real tagger for retag tests: places by name in title + text, with the hierarchy."""

    def __init__(self, version: str, places: dict[str, tuple[str, str, str, str, list[str], Any]]) -> None:
        self.version = version
        self.places = places
        self.seen: list[str] = []  # ids of the records tagged, in order

    def tag_records(self, records: Any) -> Any:
        for record in records:
            self.seen.append(record["id"])
            out = dict(record)
            if not isinstance(record.get("text"), str):
                out["error"] = "tag: record has no 'text' string field"
            else:
                full = f"{record.get('title') or ''} {record['text']}"
                out["actors"] = []
                out["locations"] = [hloc(key) for key, place in self.places.items() if place[1] in full]
            yield out


def test_retag_in_batches_resumes_and_is_idempotent(store: Store) -> None:
    from pipeline.retag import STATE_KEY, retag

    # every story stored as an old record: no ancestors, Lagos-style
    old = {
        k: dict(
            a,
            locations=[
                hloc(p, old=True)
                for p in [key for key, v in HPLACES.items() if v[0] in {x["id"] for x in a["locations"]}]
            ],
        )
        for k, a in HARTS.items()
    }
    assert store.index(old.values()).errors == []
    assert hkeys(run(store, location_ids=[[NIGERIA]])) == {"nigeria"}
    before = {a["id"]: store.get(a["id"]) for a in old.values()}
    members_before = [m["id"] for m in store.cluster_members(HARTS["goma"]["id"])]
    tagger = KeywordTagger("v1", HPLACES)
    ids = sorted(before)

    # interrupted after two batches of three
    first = retag(store, tagger, batch=3, max_batches=2)
    assert (first.processed, first.batches, first.done, first.skipped) == (6, 2, False, False)
    assert tagger.seen == ids[:6]
    state = store.get_state(STATE_KEY)
    assert state is not None
    assert state["last_id"] == ids[5]
    assert state["done"] is False
    assert store.all_feed_states() == {}  # progress is not feed state
    # started again: continues after the last id, each article tagged once overall
    second = retag(store, tagger, batch=3)
    assert second.resumed_after == ids[5]
    assert second.done
    assert second.processed == len(ids) - 6
    assert tagger.seen == ids
    assert first.changed + second.changed == len(ids)
    # the new tags are stored and searchable with the hierarchy; nothing else changed
    for aid, stored_before in before.items():
        after = store.get(aid)
        assert after is not None
        assert stored_before is not None
        assert {k: v for k, v in after.items() if k != "locations"} == {
            k: v for k, v in stored_before.items() if k != "locations"
        }
        expected = [
            hloc(p) for p in tagger.places if tagger.places[p][1] in f"{after['title']} {after['text']}"
        ]
        assert after["locations"] == expected
    assert hkeys(run(store, location_ids=[[NIGERIA]])) == {"maiduguri", "nigeria", "both"}
    assert hkeys(run(store, location_ids=[[NORTH_KIVU]])) == {"goma", "kivu", "both"}
    assert [m["id"] for m in store.cluster_members(HARTS["goma"]["id"])] == members_before
    assert run(store).total == len(HREPS)
    # complete: a no-op until the tagger changes
    again = retag(store, tagger, batch=3)
    assert again.skipped
    assert again.processed == 0
    assert len(tagger.seen) == len(ids)
    # a new tagger version re-tags everything (same tags: nothing written)
    tagger.version = "v2"
    third = retag(store, tagger, batch=4)
    assert (third.processed, third.changed, third.done) == (len(ids), 0, True)
    # --restart starts over even when complete
    fourth = retag(store, tagger, batch=100, restart=True)
    assert (fourth.processed, fourth.batches, fourth.resumed_after) == (len(ids), 1, None)
    state = store.get_state(STATE_KEY)
    assert state is not None
    assert state["done"] is True
    assert state["version"] == "v2"
    # restart in the middle of a run: from the first id again
    tagger.version = "v3"
    retag(store, tagger, batch=2, max_batches=1)
    seen = len(tagger.seen)
    retag(store, tagger, batch=2, restart=True, max_batches=1)
    assert tagger.seen[seen:] == ids[:2]


def test_retag_reports_articles_it_cannot_tag(store: Store) -> None:
    from pipeline.retag import retag

    no_text = {k: v for k, v in HARTS["kivu"].items() if k != "text"}
    assert store.index([HARTS["goma"], no_text]).errors == []
    result = retag(store, KeywordTagger("v1", HPLACES), batch=10)
    assert result.done
    assert result.processed == 2
    assert [e["id"] for e in result.errors] == [no_text["id"]]
    assert store.get(no_text["id"]) == no_text  # kept as it was


def test_retag_command(store_url: str) -> None:
    """``newswire retag`` with the real tagger: tags equal what the tagger gives, a second run is a no-op."""
    from typer.testing import CliRunner

    from pipeline.cli import app as cli_app
    from pipeline.tag import get_tagger

    st = open_store(store_url)
    untagged = [dict(a, actors=[], locations=[]) for a in HARTS.values()]
    assert st.index(untagged).errors == []
    st.close()
    runner = CliRunner()
    result = runner.invoke(cli_app, ["retag", "--store", store_url, "--batch", "3"])
    assert result.exit_code == 0, result.output
    assert f"{len(untagged)} articles tagged" in result.output
    assert "complete" in result.output
    tagger = get_tagger()
    st = open_store(store_url)
    try:
        for art in untagged:
            stored = st.get(art["id"])
            assert stored is not None
            actors, locations = tagger.tag(art["text"], art["title"])
            assert (stored["actors"], stored["locations"]) == (actors, locations)
            assert {
                k: v for k, v in stored.items() if k not in ("actors", "locations", "also_published_by")
            } == {k: v for k, v in art.items() if k not in ("actors", "locations")}
        assert any(s["locations"] for s in (st.get(a["id"]) for a in untagged) if s)
    finally:
        st.close()
    again = runner.invoke(cli_app, ["retag", "--store", store_url])
    assert again.exit_code == 0
    assert "nothing to do" in again.output
    bad = runner.invoke(cli_app, ["retag", "--store", store_url, "--batch", "0"])
    assert bad.exit_code == 2
