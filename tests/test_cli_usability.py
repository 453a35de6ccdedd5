"""The CLI and the API as a new user meets them (issue 13): no silent empty results, one clear
line when a store is down, the same 422 shape everywhere, output that survives a pipe.

Stores are real (SQLite files; Elasticsearch clients pointed at a closed port for "down"); the
API runs under a real uvicorn (``tests.test_api.serving``); the CLI runs in-process through
typer's runner, or as a subprocess where the process' own output (logging) is the subject.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from pipeline.cli import app, short_time
from pipeline.devtools.esserver import free_port, pick_port
from pipeline.records import article_id
from pipeline.search import QueryError, build_query, parse_when
from pipeline.stores import open_store
from tests.test_api import serving

ROOT = Path(__file__).resolve().parent.parent
LONG_URL = "https://harbour-gazette.example/news/2017/06/07/" + "-".join(
    ["port-authority-reopens-the-quay"] * 4
)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def article(key: str, title: str, url: str | None = None, **extra: Any) -> dict[str, Any]:
    url = url or f"https://harbour-gazette.example/news/{key}"
    return {
        "id": article_id(url), "url": url, "title": title, "text": f"{title}. The quay reopened at dawn.",
        "summary": title, "language": "en", "published_at": "2017-06-07T08:00:00+00:00",
        "published_at_estimated": False, "source": {"name": "Harbour "
                                                            "Gazette", "domain": "harbour-gazette.example"},
        "actors": [], "locations": [], **extra,
    }  # fmt: skip


@pytest.fixture
def one_story(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'one' / 'newswire.db'}"
    store = open_store(url)
    try:
        assert store.index([article("quay", "Quay reopens after the storm", url=LONG_URL)]).errors == []
    finally:
        store.close()
    return url


# --- dates ---------------------------------------------------------------------------------


def test_a_compact_iso_date_is_a_whole_day_like_the_dashed_one() -> None:
    assert parse_when("20170607", "--until", end_of_day=True) == parse_when(
        "2017-06-07", "--until", end_of_day=True
    )
    assert parse_when("20170607", "--until", end_of_day=True) == datetime(
        2017, 6, 7, 23, 59, 59, 999999, tzinfo=UTC
    )
    assert parse_when("20170607", "--since") == datetime(2017, 6, 7, tzinfo=UTC)
    q = build_query(until="20170607")
    assert q.until is not None
    assert q.until.hour == 23


def test_until_a_compact_date_finds_that_days_story(one_story: str) -> None:
    found = cli("search", "quay", "--until", "20170607", "--store", one_story)
    assert found.exit_code == 0, found.output
    assert found.output.startswith("1 story\n")


# --- codes and names ---------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "said"), [
    ("--language", "english", "not an ISO 639-1 language code (did you mean en?)"),
    ("--country", "XX", "not an ISO 3166-1 alpha-2 country code"),
    ("--country", "Syria", "not an ISO 3166-1 alpha-2 country code"),
])  # fmt: skip
def test_a_name_where_a_code_belongs_is_refused(option: str, value: str, said: str, one_story: str) -> None:
    with pytest.raises(QueryError, match=option):
        build_query(**{"languages" if option == "--language" else "countries": [value]})  # type: ignore[arg-type]
    result = cli("search", option, value, "--store", one_story)
    assert result.exit_code == 2
    assert said in result.output
    assert cli("search", "--language", "EN", "--country", "sy", "--store", one_story).exit_code == 0


def test_an_unknown_actor_is_said_with_close_names() -> None:
    notes = build_query(actors=["Hezbollahh militia"]).notes
    assert len(notes) == 1
    assert "no known actor" in notes[0]
    assert "searched as actor:hezbollahh-militia" in notes[0]
    assert "did you mean 'Hezbollah'" in notes[0]
    assert build_query(actors=["Islamic State"]).notes == []


def test_a_capital_as_actor_is_said_to_mean_its_government(one_story: str) -> None:
    from pipeline.tag import get_tagger

    tagger = get_tagger()
    gov = tagger.resolve_actor("Damascus")
    assert gov, "the tagger maps a capital to its government"
    result = CliRunner().invoke(app, ["search", "--actor", "Damascus", "--store", one_story])
    assert result.exit_code == 0, result.output
    assert f"--actor 'Damascus': searched as {tagger.entity_name(gov[0])}" in result.output


# --- stores that are not there ------------------------------------------------------------------


def test_a_store_file_that_does_not_exist_is_said_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "newswire.db"
    result = cli("search", "quay", "--store", f"sqlite:///{missing}")
    assert result.exit_code == 2
    assert "no such store" in result.output
    assert str(missing) in result.output
    assert not missing.exists()
    assert not missing.parent.exists()


def test_elasticsearch_down_is_one_line_from_the_cli() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "search", "quay", "--store", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot open store")
    assert f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_serve_with_a_bad_store_url_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "serve", "--store", "ftp://x"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: unsupported store URL 'ftp://x': use sqlite:///path/to/newswire.db or http(s)://host:port"
    ]


def test_the_api_answers_503_with_a_reason_when_elasticsearch_is_down(one_story: str) -> None:
    from pipeline.api import create_app
    from pipeline.stores.elasticsearch import ElasticsearchStore

    api = create_app(one_story)
    with serving(api) as base, httpx.Client(base_url=base, timeout=60) as client:
        assert client.get("/search", params={"q": "quay"}).status_code == 200
        opened = api.state.store
        api.state.store = ElasticsearchStore(
            f"http://127.0.0.1:{free_port()}", prefix="gone"
        )  # nothing listens
        try:
            r = client.get("/search", params={"q": "quay"})
            health = client.get("/health")
        finally:
            api.state.store.close()
            api.state.store = opened
    assert r.status_code == 503
    assert r.json()["detail"].startswith("store unavailable: ")
    assert "Connection" in r.json()["detail"]
    assert health.status_code == 503


# --- API shapes -----------------------------------------------------------------------------


def test_every_422_is_one_detail_string(one_story: str) -> None:
    from pipeline.api import create_app

    with serving(create_app(one_story)) as base, httpx.Client(base_url=base, timeout=60) as client:
        answers = [
            client.get("/search", params={"limit": "many"}),  # FastAPI's own validation
            client.get("/search", params={"all_copies": "perhaps"}),
            client.get("/suggest"),  # kind is required
            client.get("/search", params={"language": "english"}),  # build_query's
            client.get("/search", params={"limit": "0"}),
        ]
        notes = client.get("/search", params={"actor": "Hezbollahh militia"}).json()["notes"]
    for r in answers:
        assert r.status_code == 422
        body = r.json()
        assert list(body) == ["detail"], body
        assert isinstance(body["detail"], str), body
        assert body["detail"], body
    assert "limit" in answers[0].json()["detail"]
    assert "kind" in answers[2].json()["detail"]
    assert len(notes) == 1
    assert "no known actor" in notes[0]


# --- output ---------------------------------------------------------------------------------------


def test_one_story_and_piped_urls_stay_whole(one_story: str) -> None:
    result = cli("search", "quay", "--store", one_story)
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "1 story"
    assert LONG_URL in result.output.replace("\n  ", "  ")  # the URL is on one line
    assert any(LONG_URL in line for line in result.output.splitlines())


def test_estimated_dates_are_marked_in_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'est.db'}"
    store = open_store(url)
    store.index(
        [
            article(
                "guess",
                "Dockers return to the quay",
                published_at="2017-06-09T10:00:00+00:00",
                published_at_estimated=True,
            )
        ]
    )
    store.close()
    lines = cli("search", "dockers", "--store", url).output.splitlines()
    assert any("~2017-06-09 10:00 (estimated)" in line for line in lines), lines
    assert cli("search", "dockers", "--since", "2017-06-01", "--store", url).output.startswith("0 stories")


@pytest.mark.parametrize(
    "command",
    [
        ["search"],
        ["serve"],
        ["parse"],
        ["retag"],
        ["run"],
        ["feeds", "status"],
        ["es", "start"],
        ["dedupe"],
        ["index"],
    ],
)
def test_help_has_no_type_tags(command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert "<list[str]>" not in result.output
    assert "<str>" not in result.output
    assert "<int>" not in result.output
    assert "Options" in result.output


def test_feeds_status_is_whole_in_a_pipe_and_has_no_microseconds(tmp_path: Path) -> None:
    long_name = "Harbour Gazette — port, shipping and weather desk of the northern coast"
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f'feeds:\n  - name: "{long_name}"\n    url: "{LONG_URL}/rss"\n')
    url = f"sqlite:///{tmp_path / 'feeds.db'}"
    store = open_store(url)
    store.put_feed_state(f"{LONG_URL}/rss", {"health": {
        "status": "ok", "last_success_at": "2017-06-07T08:00:05.123456+00:00", "consecutive_failures": 0,
        "last_error": "HTTP 503 from the feed server of the harbour gazette after three retries",
    }})  # fmt: skip
    store.close()
    result = cli("feeds", "status", "--feeds", str(feeds), "--store", url)
    assert result.exit_code == 0, result.output
    assert long_name in result.output
    assert "HTTP 503 from the feed server of the harbour gazette after three retries" in result.output
    assert "2017-06-07 08:00:05Z" in result.output
    assert ".123456" not in result.output
    assert "…" not in result.output
    assert short_time("2017-06-07T10:00:05.5+02:00") == "2017-06-07 08:00:05Z"


# --- local Elasticsearch ----------------------------------------------------------------------------


def test_es_start_reuses_the_last_port_while_it_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from pipeline.settings import get_settings

    monkeypatch.setenv("NEWSWIRE_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    first = pick_port()
    (Path(get_settings().cache_dir) / "es-last-port").write_text(f"{first}\n")
    assert pick_port() == first
    assert pick_port(9555) == 9555
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", first))
        busy.listen()
        other = pick_port()
    assert other != first
    assert cli("es", "start", "--port", "70000").exit_code == 2


def test_es_stop_says_whether_something_was_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.settings import get_settings

    monkeypatch.setenv("NEWSWIRE_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    result = cli("es", "stop")
    assert result.exit_code == 0
    assert result.output.strip() == "no local Elasticsearch was running"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        (Path(get_settings().cache_dir) / "es-state.json").write_text(
            f'{{"pid": {sleeper.pid}, "port": 1, "url": "http://127.0.0.1:1"}}'
        )
        result = cli("es", "stop")
        assert result.output.strip() == "stopped the local Elasticsearch"
        assert sleeper.wait(30) is not None
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


# --- make demo ----------------------------------------------------------------------------------


def test_make_demo_installs_only_what_the_demo_needs(tmp_path: Path) -> None:
    """``make -n demo`` in a fresh checkout (no .venv): the commands it would run."""
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    plan = subprocess.run(["make", "-n", "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    commands = plan.stdout
    assert "pip install --quiet -e '.[ner]'" in commands
    assert "newswire run --once" in commands
    for unwanted in ("airflow", "[dev", "maven", "mvn", "chromium", "apt-get"):
        assert unwanted not in commands, unwanted
    assert ".demo/" in (ROOT / ".gitignore").read_text().splitlines()


# --- start-up (issue 15): processes that do not tag never import spaCy; `prepare` warms a machine ---------


@pytest.mark.parametrize("stage", ["clean", "dedupe"])
def test_stages_that_do_not_tag_never_import_spacy_nor_load_the_gazetteer(stage: str) -> None:
    line = '{"id": "a", "html": "<p>Flooding closed the port of Beira on Monday.</p>", "text": "Flooding."}'
    code = (
        "import json, sys\n"
        "from pipeline.cli import main\n"
        f"sys.argv = ['newswire', {stage!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "from pipeline.tag import gazetteer\n"
        "print(json.dumps([code, 'spacy' in sys.modules, gazetteer.FULL_LOADS]), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], input=line + "\n", capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.count("\n") == 1  # one line out for the line in
    assert done.stderr.strip().splitlines()[-1] == "[0, false, 0]", done.stderr


@pytest.mark.slow
def test_prepare_builds_the_caches_once_and_later_processes_read_them(tmp_path: Path) -> None:
    """On a fresh cache `newswire prepare` builds the gazetteer and the search lookup file (~45 s here,
    once); a second `prepare` and a tagging process read them from the cache."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NEWSWIRE_CACHE_DIR": str(tmp_path),
        "NEWSWIRE_SPACY_MODEL": "",
    }

    def prepare() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "prepare"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = prepare()
    assert "built and cached" in first
    assert "gazetteer only" in first
    assert list((tmp_path / "tag").glob("gazetteer-*.pickle"))
    assert list((tmp_path / "tag").glob("resolver-*.sqlite"))  # what search reads
    assert "read from the cache" in prepare()
    code = "from pipeline.tag import get_tagger\nprint(get_tagger().gaz.from_cache)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "True", done.stderr
