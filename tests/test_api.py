"""The search API over a real socket: uvicorn on loopback, an httpx client, a SQLite store
filled once per module by the real pipeline from config/samples (answer key: EXPECTED.yaml).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from typer.testing import CliRunner

from pipeline.api import create_app
from pipeline.fetch import redact
from pipeline.search import PRIVATE_FIELDS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "config" / "samples"
EXPECTED = yaml.safe_load((SAMPLES / "EXPECTED.yaml").read_text())
ALL_COPIES = [a["id"] for a in EXPECTED["queries"]["islamic_state_and_raqqa"]]
ONE_PER_STORY = [a["id"] for a in EXPECTED["queries"]["islamic_state_and_raqqa_one_per_story"]]
RAQQA_CLUSTER = EXPECTED["clusters"]["raqqa-wire"]


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("uvicorn did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store filled by one real ingestion pass over the sample feeds."""
    from pipeline.config import load_feeds
    from pipeline.run import ingest
    from pipeline.settings import get_settings
    from pipeline.stores import open_store

    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'newswire.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEWSWIRE_STORE", url)
        if "NEWSWIRE_TEST_SPACY_MODEL" in os.environ:
            mp.setenv("NEWSWIRE_SPACY_MODEL", os.environ["NEWSWIRE_TEST_SPACY_MODEL"])
        get_settings.cache_clear()
        store = open_store()
        try:
            report = ingest(load_feeds(SAMPLES / "feeds.yaml"), store)
        finally:
            store.close()
        get_settings.cache_clear()
    assert report.failed == 0, [f.errors for f in report.feeds]
    return url


@pytest.fixture(scope="module")
def api(store_url: str) -> Iterator[httpx.Client]:
    """``pipeline.api:app`` (what docker-compose runs) with NEWSWIRE_STORE pointing at the store."""
    from pipeline.api import app
    from pipeline.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEWSWIRE_STORE", store_url)
        get_settings.cache_clear()
        with serving(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            get_settings.cache_clear()
            yield client
    get_settings.cache_clear()


def ids(payload: dict[str, Any]) -> list[str]:
    return [h["id"] for h in payload["hits"]]


@pytest.mark.slow
def test_health_counts_every_stored_article(api: httpx.Client, store_url: str) -> None:
    r = api.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "store": store_url, "articles": EXPECTED["total_articles"]}


def test_search_by_aliases_all_copies(api: httpx.Client) -> None:
    r = api.get("/search", params={"actor": "ISIL", "location": "Raqa", "all_copies": "true", "limit": 200})
    assert r.status_code == 200, r.text
    payload = r.json()
    assert set(payload) == {"total", "hits", "facets", "next_after"}
    assert payload["next_after"] is None  # every hit fits on this page
    assert sorted(ids(payload)) == sorted(ALL_COPIES)
    assert payload["total"] == len(ALL_COPIES)
    for hit in payload["hits"]:
        assert not set(PRIVATE_FIELDS) & set(hit), hit["id"]
    actor_counts = {b["key"]: b["count"] for b in payload["facets"]["actors"]}
    assert actor_counts["actor:islamic-state"] == len(ALL_COPIES)


def test_search_collapses_copies_by_default(api: httpx.Client) -> None:
    collapsed = api.get("/search", params={"actor": "ISIL", "location": "Raqa", "limit": 200}).json()
    assert len(collapsed["hits"]) < len(ALL_COPIES)
    assert sorted(ids(collapsed)) == sorted(ONE_PER_STORY)
    wire = next(h for h in collapsed["hits"] if h["id"] == RAQQA_CLUSTER["original"]["id"])
    assert {a["id"] for a in wire["also_published_by"]} == {c["id"] for c in RAQQA_CLUSTER["near_copies"]}


def test_search_answers_exactly_as_the_cli(api: httpx.Client, store_url: str) -> None:
    from pipeline.cli import app as cli_app

    result = CliRunner().invoke(
        cli_app,
        [
            "search",
            "Raqqa",
            "--actor",
            "Islamic State",
            "--since",
            "2017-06-01",
            "--until",
            "2017-06-30",
            "--sort",
            "date",
            "--limit",
            "5",
            "--store",
            store_url,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    r = api.get(
        "/search",
        params={
            "q": "Raqqa",
            "actor": "Islamic State",
            "since": "2017-06-01",
            "until": "2017-06-30",
            "sort": "date",
            "limit": 5,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(result.stdout)


def test_repeatable_parameters_are_or_within_a_list(api: httpx.Client) -> None:
    names = ["Meridian Wire", "Lantern Post"]
    both = api.get(
        "/search", params={"source": names, "all_copies": "1", "limit": 200}
    )  # ?source=..&source=..
    assert both.status_code == 200, both.text
    per_source = [
        api.get("/search", params={"source": n, "all_copies": "1", "limit": 200}).json() for n in names
    ]
    assert all(p["total"] > 0 for p in per_source)
    assert sorted(ids(both.json())) == sorted(ids(per_source[0]) + ids(per_source[1]))
    assert {h["source"]["name"] for h in both.json()["hits"]} == set(names)


@pytest.mark.parametrize(
    ("params", "option", "value"),
    [
        ({"since": "last tuesdayish"}, "--since", "last tuesdayish"),
        ({"until": "2017-13-45"}, "--until", "2017-13-45"),
        ({"limit": 5000}, "--limit", "5000"),
        ({"near": "36.0,39.0"}, "--near", "36.0,39.0"),
    ],
)
def test_bad_values_are_422_naming_the_option(
    api: httpx.Client, params: dict[str, Any], option: str, value: str
) -> None:
    r = api.get("/search", params=params)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    assert option in detail
    assert value in detail


def test_a_place_the_gazetteer_lacks_is_searched_not_refused(api: httpx.Client) -> None:
    r = api.get("/search", params={"location": "Nowhereville Qq"})
    assert r.status_code == 200
    assert r.json()["total"] == 0
    known = api.get("/search", params={"location": "Raqa", "all_copies": "true"})
    assert known.status_code == 200
    assert known.json()["total"] >= 8


def test_article_by_id_and_unknown_id(api: httpx.Client) -> None:
    wanted = RAQQA_CLUSTER["near_copies"][0]
    r = api.get(f"/articles/{wanted['id']}")
    assert r.status_code == 200
    article = r.json()
    assert (article["id"], article["url"]) == (wanted["id"], wanted["url"])
    assert article["cluster_id"] == RAQQA_CLUSTER["original"]["id"]
    assert not set(PRIVATE_FIELDS) & set(article)

    missing = api.get("/articles/0000000000000000")
    assert missing.status_code == 404
    assert "0000000000000000" in missing.json()["detail"]


def test_cluster_members_representative_first(api: httpx.Client) -> None:
    original = RAQQA_CLUSTER["original"]["id"]
    r = api.get(f"/clusters/{original}")
    assert r.status_code == 200
    body = r.json()
    members = [m["id"] for m in body["members"]]
    assert body["cluster_id"] == original
    assert members[0] == original
    assert sorted(members[1:]) == sorted(c["id"] for c in RAQQA_CLUSTER["near_copies"])
    assert api.get("/clusters/no-such-cluster").status_code == 404


def test_store_opened_at_startup_and_closed_at_shutdown(store_url: str) -> None:
    app = create_app(store_url)
    with serving(app) as base:
        store = app.state.store
        first = httpx.get(f"{base}/health").json()
        second = httpx.get(f"{base}/articles/{ALL_COPIES[0]}")
        assert app.state.store is store  # one store for the process, not one per request
        assert first["articles"] == EXPECTED["total_articles"]
        assert second.status_code == 200
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.count()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://elastic:s3cret@es.internal:9200", "http://elastic:***@es.internal:9200"),
        ("https://:tok@[::1]:9243/prefix", "https://:***@[::1]:9243/prefix"),
        ("http://localhost:9200", "http://localhost:9200"),
        ("sqlite:////var/lib/newswire/newswire.db", "sqlite:////var/lib/newswire/newswire.db"),
    ],
)
def test_health_never_shows_a_password(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_docs_and_openapi_describe_every_endpoint(api: httpx.Client) -> None:
    assert api.get("/docs").status_code == 200  # docker-compose's health check
    spec = api.get("/openapi.json").json()
    assert {"/health", "/search", "/articles/{article_id}", "/clusters/{cluster_id}"} <= set(spec["paths"])
    params = {p["name"] for p in spec["paths"]["/search"]["get"]["parameters"]}
    assert params == {
        "q",
        "actor",
        "location",
        "since",
        "until",
        "source",
        "language",
        "country",
        "near",
        "bbox",
        "sort",
        "limit",
        "all_copies",
        "after",
    }
    assert {"/suggest", "/entities"} <= set(spec["paths"])


def test_docs_work_offline(api: httpx.Client) -> None:
    """Swagger UI comes from the package (pipeline/web/vendor), not from a CDN."""
    html = api.get("/docs").text
    assert "cdn." not in html
    assert "https://" not in html.split("<body>")[0]
    for asset in (
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
    ):
        assert asset in html
        r = api.get(asset)
        assert r.status_code == 200, asset
        assert len(r.content) > 10_000, asset


def test_page_and_its_assets_are_served_under_500_kb(api: httpx.Client) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assets = ["/static/app.js", "/static/style.css", "/static/vendor/world-atlas/countries-110m.json"]
    for asset in assets[:2]:
        assert asset in page.text
    sizes = [len(page.content)]
    for asset in assets:
        r = api.get(asset)
        assert r.status_code == 200, asset
        sizes.append(len(r.content))
    assert sum(sizes) < 500_000, sizes


def test_paging_with_the_cursor_visits_every_story_once(api: httpx.Client) -> None:
    for sort in ("date", "relevance"):
        params: dict[str, Any] = {"q": "Raqqa" if sort == "relevance" else "", "sort": sort, "limit": 3}
        everything = api.get("/search", params={**params, "limit": 200}).json()
        seen: list[str] = []
        after = None
        for _ in range(50):
            page = api.get("/search", params={**params, **({"after": after} if after else {})})
            assert page.status_code == 200, page.text
            body = page.json()
            assert body["total"] == everything["total"]
            seen += ids(body)
            after = body["next_after"]
            if after is None:
                break
            assert isinstance(after, str)
            assert len(body["hits"]) == 3
        assert seen == ids(everything), sort


@pytest.mark.parametrize("after", ["not-a-cursor", "W10", "%%%"])
def test_a_bad_cursor_is_422_naming_the_option(api: httpx.Client, after: str) -> None:
    r = api.get("/search", params={"after": after})
    assert r.status_code == 422
    assert "--after" in r.json()["detail"]


def test_a_cursor_of_another_sort_is_422(api: httpx.Client) -> None:
    by_date = api.get("/search", params={"sort": "date", "limit": 2}).json()
    assert by_date["next_after"]
    r = api.get("/search", params={"q": "Raqqa", "sort": "relevance", "after": by_date["next_after"]})
    assert r.status_code == 422
    assert "--after" in r.json()["detail"]


def test_cli_pages_with_after(store_url: str) -> None:
    from pipeline.cli import app as cli_app

    runner = CliRunner()
    first = runner.invoke(
        cli_app, ["search", "--sort", "date", "--limit", "4", "--store", store_url, "--json"]
    )
    assert first.exit_code == 0, first.output
    one = json.loads(first.stdout)
    second = runner.invoke(
        cli_app,
        [
            "search",
            "--sort",
            "date",
            "--limit",
            "4",
            "--store",
            store_url,
            "--json",
            "--after",
            one["next_after"],
        ],
    )
    assert second.exit_code == 0, second.output
    two = json.loads(second.stdout)
    both = runner.invoke(
        cli_app, ["search", "--sort", "date", "--limit", "8", "--store", store_url, "--json"]
    )
    assert ids(one) + ids(two) == ids(json.loads(both.stdout))
    text = runner.invoke(cli_app, ["search", "--sort", "date", "--limit", "4", "--store", store_url])
    assert f"--after {one['next_after']}" in text.stdout
    bad = runner.invoke(cli_app, ["search", "--after", "nope", "--store", store_url])
    assert bad.exit_code == 2
    assert "--after" in bad.output


@pytest.mark.slow
def test_suggest_and_entities(api: httpx.Client) -> None:
    r = api.get("/suggest", params={"kind": "location", "prefix": "Raqa"})
    assert r.status_code == 200, r.text
    top = r.json()["suggestions"][0]
    assert top["name"] == "Ar Raqqah"
    assert top["country_code"] == "SY"
    assert api.get("/suggest", params={"kind": "actor", "prefix": ""}).json() == {"suggestions": []}
    assert api.get("/suggest", params={"kind": "planet", "prefix": "Ma"}).status_code == 422
    assert api.get("/suggest", params={"kind": "actor", "prefix": "Is", "limit": 0}).status_code == 422
    found = api.get("/entities", params={"id": [top["id"], "actor:islamic-state", "geonames:0"]}).json()[
        "entities"
    ]
    assert [e["id"] for e in found] == [top["id"], "actor:islamic-state"]
    assert found[0]["lat"]
    assert found[0]["lon"]
    assert found[1]["type"] == "actor"


def test_a_country_as_actor_is_searched_as_its_government_and_says_so(api: httpx.Client) -> None:
    r = api.get("/search", params={"actor": "United States", "all_copies": "true"})
    body = r.json()
    assert r.status_code == 200
    assert body["total"] >= 1
    assert body["notes"] == [
        "--actor 'United States': searched as United States government (a country or capital stands for it)"
    ]
    plain = api.get("/search", params={"actor": "Islamic State"}).json()
    assert "notes" not in plain  # an actor's own name needs no note
