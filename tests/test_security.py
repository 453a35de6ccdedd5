"""What comes back out of newswire is safe: the failures of the security review (issue 14).

Each test attacks the real code path (the FastAPI app over a real uvicorn socket on both
stores, the CLI through typer's runner, the JSON Lines filters over real streams) with
hostile input of our own writing, and asserts what a user or operator would see.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pipeline.api import create_app
from pipeline.records import article_id
from pipeline.redaction import redact
from pipeline.stores import open_store
from pipeline.stores.base import SearchQuery
from tests.test_api import serving

HOSTILE_HTML = '<img src=x onerror="alert(1)"><script>steal()</script>'


def hostile_article(key: str, **extra: Any) -> dict[str, Any]:
    """An article whose stored text carries live markup next to the word ``kessra``."""
    url = f"https://hostile.example.test/news/{key}"
    aid = article_id(url)
    article: dict[str, Any] = {
        "id": aid,
        "url": url,
        "source": {
            "feed": "https://hostile.example.test/rss",
            "name": "Hostile Gazette",
            "domain": "hostile.example.test",
        },
        "title": f"Kessra pumps {HOSTILE_HTML} restored",
        "summary": f"Kessra water {HOSTILE_HTML} returns.",
        "text": f"Engineers in Kessra restarted the pumps {HOSTILE_HTML} on Tuesday & said <b>thanks</b>.",
        "language": "en",
        "published_at": "2025-04-02T08:00:00+00:00",
        "fetched_at": "2025-04-02T09:00:00+00:00",
        "cluster_id": aid,
        "duplicate_of": None,
        "actors": [],
        "locations": [],
    }
    article.update(extra)
    return article


@pytest.fixture
def api_over(store_url: str) -> Iterator[httpx.Client]:
    """The real app over an empty store of each engine (``store_url`` from conftest)."""
    app = create_app(store_url)
    with serving(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield client


def index(store_url: str, *articles: dict[str, Any]) -> None:
    store = open_store(store_url)
    try:
        report = store.index(articles)
        assert report.errors == []
    finally:
        store.close()


# --- 1. stored XSS through highlights ------------------------------------------------------


def test_highlights_escape_article_markup_and_keep_only_mark(api_over: httpx.Client, store_url: str) -> None:
    index(store_url, hostile_article("one"))
    r = api_over.get("/search", params={"q": "kessra"})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len(hits) == 1
    fragments = hits[0]["_highlight"]
    assert fragments
    joined = " ".join(fragments)
    tags = set(re.findall(r"<[^>]*>", joined))
    assert tags == {"<mark>", "</mark>"}, tags
    assert "&lt;img" in joined or "&lt;script" in joined  # the text is there, inert
    assert any(m.lower() == "kessra" for m in re.findall(r"<mark>(.*?)</mark>", joined))


# --- 2. passwords never leave the process; 3. data is never rich markup -----------------------

PASSWORD = "s3cret-pw-7781"


def rss(*items: tuple[str, str, str]) -> str:
    """An RSS 2.0 document of our own: (title, link, description) per item."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>Wed, 02 Apr 2025 08:00:00 GMT</pubDate><description>{d}</description></item>"
        for t, link, d in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Test desk</title>'
        f"<link>http://desk.example.test/</link><description>d</description>{body}</channel></rss>"
    )


STORY = (
    "Engineers in Kessra restarted the eastern water pumps on Tuesday after a week without supply. "
    "The district council said repairs to the main pipe would take another month."
)


@pytest.fixture
def credential_run(feed_server: Any, unique_path: Any, tmp_path: Any) -> dict[str, Any]:
    """A feeds file whose feeds carry a password: one that works, one that fails (404, its URL
    holding ``[/red]``), and the store they run into."""
    path = unique_path("feed.xml")
    feed_server.add(
        path,
        rss(
            ("[video] Kessra pumps [bold]restored[/bold]", "http://desk.example.test/kessra-pumps", STORY),
        ),
    )
    good = feed_server.url(path).replace("http://", f"http://alice:{PASSWORD}@")
    bad = feed_server.url(unique_path("missing[/red].xml")).replace("http://", f"http://alice:{PASSWORD}@")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        "feeds:\n"
        f"  - name: Failing [/red] desk\n    url: '{bad}'\n    full_text: false\n"
        f"  - name: Kessra desk\n    url: '{good}'\n    full_text: false\n"
    )
    return {"feeds": str(feeds), "store": f"sqlite:///{tmp_path / 'cred.db'}", "good": good}


def cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from pipeline.cli import app

    return CliRunner().invoke(app, list(args))


def test_a_run_with_credentials_prints_and_logs_no_password(
    credential_run: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    feeds, store = credential_run["feeds"], credential_run["store"]
    outputs: list[str] = []
    for args in (
        ("run", "--once", "--json", "--feeds", feeds, "--store", store),
        ("run", "--once", "--feeds", feeds, "--store", store),
        ("feeds", "status", "--json", "--feeds", feeds, "--store", store),
        ("feeds", "status", "--feeds", feeds, "--store", store),
        ("feeds", "check", "--feeds", feeds),
        ("search", "kessra", "--json", "--store", store),
        ("search", "kessra", "--store", store),
    ):
        result = cli(*args)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
            args,
            result.exception,
        )
        outputs.append(result.stdout + "\n" + result.stderr)
    joined = "\n".join(outputs)
    assert "alice:***@" in joined  # the URLs are shown, their password is not
    assert PASSWORD not in joined
    assert PASSWORD not in caplog.text
    report = json.loads(outputs[0].splitlines()[0])
    assert report["failed_feeds"] == 1
    assert report["new"] == 1

    opened = open_store(store)
    try:
        hit = opened.search(SearchQuery(text="kessra", limit=5)).hits[0]
        assert PASSWORD not in json.dumps(opened.get(hit["id"]))  # not even stored in the article
        assert hit["source"]["feed"] == redact(credential_run["good"])
    finally:
        opened.close()
    with serving(create_app(store)) as base:
        found = httpx.get(f"{base}/search", params={"q": "kessra"}).text
        article = httpx.get(f"{base}/articles/{hit['id']}").text
    assert "alice:***@" in found
    assert PASSWORD not in found + article


def test_data_is_never_rich_markup(credential_run: dict[str, Any]) -> None:
    feeds, store = credential_run["feeds"], credential_run["store"]
    result = cli("run", "--once", "--feeds", feeds, "--store", store)
    assert result.exit_code == 1, result.output  # one feed failed; the run finished and reported
    assert "missing[/red].xml" in result.stderr  # the error shows the URL as written
    assert "Failing [/red] desk" in result.stdout
    assert "Kessra desk" in result.stdout
    shown = cli("search", "kessra", "--store", store)
    assert shown.exit_code == 0, shown.output
    assert "[video] Kessra pumps [bold]restored[/bold]" in shown.stdout


@pytest.mark.parametrize(
    ("feeds_yaml", "store_url", "code"),
    [
        (f"feeds:\n  - name: x\n    url: 'ftp://alice:{PASSWORD}@files.example.test/feed.xml'\n", None, 2),
        (
            "feeds:\n  - name: x\n    url: 'http://127.0.0.1:9/feed.xml'\n",
            f"http://elastic:{PASSWORD}@127.0.0.1:9",
            1,
        ),
        ("feeds:\n  - name: x\n    url: 'http://127.0.0.1:9/feed.xml'\n", f"sqlite+x://u:{PASSWORD}@h/x", 2),
    ],
)
def test_configuration_errors_hide_passwords(
    tmp_path: Any, feeds_yaml: str, store_url: str | None, code: int
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(feeds_yaml)
    result = cli(
        "run", "--once", "--feeds", str(feeds), "--store", store_url or f"sqlite:///{tmp_path / 'x.db'}"
    )
    assert result.exit_code == code, result.output
    assert "error:" in result.stderr
    assert ":***@" in result.stderr
    assert PASSWORD not in result.output + result.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("ftp://alice:s3cret@files.example.test/x", "ftp://alice:***@files.example.test/x"),
        (
            "cannot open store http://elastic:p@ss@es:9200: refused",
            "cannot open store http://elastic:***@es:9200: refused",
        ),
        (
            "two: https://a:b@h1/ and http://c:d@h2:80/p?q=1",
            "two: https://a:***@h1/ and http://c:***@h2:80/p?q=1",
        ),
        ("https://user@host/x and mail bob@example.test", "https://user@host/x and mail bob@example.test"),
        ("http://host:8080/path@x", "http://host:8080/path@x"),
    ],
)
def test_redact_hides_every_password_in_a_text(text: str, shown: str) -> None:
    assert redact(text) == shown


# --- 4. one IPv6-literal link must not empty a feed -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://[::1]:8080/a?utm_source=x&b=2", "http://[::1]:8080/a?b=2"),
        ("HTTPS://[2001:DB8::7]:443/story#top", "https://[2001:db8::7]/story"),
        ("http://[fe80::1%25eth0]/x", "http://[fe80::1%25eth0]/x"),
        ("http://user@[::1]/x", "http://user@[::1]/x"),
    ],
)
def test_canonical_url_keeps_ipv6_brackets(url: str, canonical: str) -> None:
    from pipeline.records import canonical_url

    assert canonical_url(url) == canonical
    assert canonical_url(canonical) == canonical  # canonical is a fixed point: ids are stable
    assert article_id(url) == article_id(canonical)


def test_one_bad_link_is_a_warning_for_that_entry_only() -> None:
    from pipeline.parse import parse_feed

    body = rss(
        ("Kessra pumps restored", "http://desk.example.test/kessra-pumps", STORY),
        ("Loopback story", "http://[::1]:8080/story", STORY),
        ("Odd port", "http://desk.example.test:99999999/odd", STORY),
        ("Harbour reopens", "http://desk.example.test/harbour", STORY),
    ).encode()
    parsed = parse_feed(body, url="http://desk.example.test/rss")
    assert parsed.error is None
    urls = [e["url"] for e in parsed.entries]
    assert "http://desk.example.test/kessra-pumps" in urls
    assert "http://desk.example.test/harbour" in urls
    assert "http://[::1]:8080/story" in urls
    assert len(parsed.entries) >= 3


def test_an_entry_the_parser_cannot_read_is_skipped_with_a_warning() -> None:
    from pipeline.parse import parse_feed

    items = [
        {"id": "a", "url": "http://desk.example.test/a", "title": "First", "content_text": STORY},
        {"id": "b", "url": "http://desk.example.test/b", "title": "Broken", "tags": 5, "content_text": STORY},
        {"id": "c", "url": "http://desk.example.test/c", "title": "Third", "content_text": STORY},
    ]
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "Desk", "items": items}
    parsed = parse_feed(json.dumps(doc).encode(), url="http://desk.example.test/feed.json")
    assert parsed.error is None
    assert [e["url"] for e in parsed.entries] == ["http://desk.example.test/a", "http://desk.example.test/c"]
    assert any(w.startswith("entry 2") and "skipped" in w for w in parsed.warnings), parsed.warnings


# --- 5. JSON Lines filters survive hostile lines ----------------------------------------------------


def good_line(key: str) -> str:
    return json.dumps(
        {
            "id": f"rec-{key}",
            "url": f"http://desk.example.test/{key}",
            "title": f"Kessra story {key}",
            "html": f"<p>{STORY}</p>",
            "text": STORY,
            "published_at": "2025-04-02T08:00:00+00:00",
            "source": {"name": "Desk", "domain": "desk.example.test"},
        }
    )


HOSTILE_LINES = [
    "[" * 100_000 + "]" * 100_000,  # RecursionError in the JSON decoder
    '{"id": "big", "n": ' + "7" * 5000 + "}",  # ValueError: integer string too long
    '{"id": {"nested": "object"}, "title": "x", "text": "y", "html": "<p>z</p>"}',  # TypeError in stores
    '{"id": ["a", "list"], "title": "x", "text": "y", "html": "<p>z</p>"}',
    '{"id": "deep", "x": ' + "[" * 5000 + "]" * 5000 + "}",
]


@pytest.mark.parametrize("command", [["clean"], ["dedupe"], ["index", "--store", "sqlite:///{tmp}/f.db"]])
def test_filters_answer_every_hostile_line_with_an_error_line(command: list[str], tmp_path: Any) -> None:
    lines = [good_line("first"), *HOSTILE_LINES, good_line("last")]
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, args, input="\n".join(lines) + "\n")
    assert result.exit_code == 1, (result.exception, result.stderr[-2000:])
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)  # one line out per line in, in order
    assert out[0]["id"] == "rec-first"
    assert out[-1]["id"] == "rec-last"
    assert not out[0].get("error")
    assert not out[-1].get("error")
    for record in out[1:-1]:
        assert isinstance(record.get("error"), str), record
        assert record["error"], record


def test_a_stage_that_raises_fails_only_the_record_that_made_it_raise() -> None:
    import io

    from pipeline.records import run_filter

    def stage(records: Any) -> Any:
        for r in records:
            if r.get("text") == "boom":
                raise TypeError("cannot handle this one")
            yield {**r, "seen": True}

    lines = [json.dumps({"id": f"r{i}", "text": "boom" if i == 2 else "fine"}) for i in range(5)]
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_filter(stage, io.StringIO("\n".join(lines) + "\n"), stdout, stderr, name="test")
    out = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert code == 1
    assert [r["id"] for r in out] == [f"r{i}" for i in range(5)]
    assert [bool(r.get("error")) for r in out] == [False, False, True, False, False]
    assert "cannot handle this one" in out[2]["error"]
    assert all(r.get("seen") for i, r in enumerate(out) if i != 2)
    assert "r2" in stderr.getvalue()


# --- 6. search input limits: a clear 422 (API) / exit 2 (CLI), never a 500 --------------------------

ACTORS_2000 = [f"Unknown Group {i}" for i in range(2000)]
BAD_SEARCHES: list[tuple[dict[str, Any], str]] = [
    ({"since": "99999999999d"}, "--since"),
    ({"since": "99999999999h"}, "--since"),
    ({"until": "9999-12-31"}, "--until"),
    ({"since": "0001-01-01T00:00:00+05:00"}, "--since"),
    ({"q": "(" * 5000 + "kessra" + ")" * 5000}, "query"),
    ({"q": "kessra " * 3000}, "query"),
    ({"q": " ".join(f"w{i}*" for i in range(2750))}, "query"),
    ({"q": "k" * 20_000}, "query"),
    ({"actor": ACTORS_2000}, "--actor"),
    ({"source": [f"src{i}" for i in range(2000)]}, "--source"),
    ({"language": ["en"] * 500}, "--language"),
    ({"near": "91,10,5"}, "--near"),
    ({"near": "45,10,inf"}, "--near"),
    ({"near": "45,10,nan"}, "--near"),
    ({"bbox": "95,10,40,20"}, "--bbox"),
    ({"bbox": "50,-190,40,20"}, "--bbox"),
    ({"bbox": "50,10,40,nan"}, "--bbox"),
]


@pytest.mark.parametrize(("params", "option"), BAD_SEARCHES, ids=lambda v: str(v)[:40])
def test_hostile_search_input_is_a_clear_422(
    api_over: httpx.Client, params: dict[str, Any], option: str
) -> None:
    r = api_over.get("/search", params=params)
    assert r.status_code == 422, r.text[:500]
    detail = r.json()["detail"]
    assert isinstance(detail, str), detail[:500]
    assert option in detail, detail[:500]
    assert len(detail) < 400, detail[:500]


@pytest.mark.parametrize(("params", "option"), BAD_SEARCHES[:9], ids=lambda v: str(v)[:40])
def test_hostile_search_input_is_exit_2_in_the_cli(
    params: dict[str, Any], option: str, tmp_path: Any
) -> None:
    args = ["search", str(params.pop("q", "")), "--store", f"sqlite:///{tmp_path / 's.db'}"]
    for key, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            args += [f"--{key}", v]
    result = cli(*args)
    assert result.exit_code == 2, (result.exception, result.output[-500:])
    assert option in result.stderr


def test_searches_within_the_limits_still_answer(api_over: httpx.Client, store_url: str) -> None:
    index(store_url, hostile_article("one"))
    for params in (
        {"q": "(((kessra)))"},
        {"q": " ".join(["kessra"] * 20)},
        {"q": "kess*"},
        {"since": "3650d", "until": "2999-12-31", "q": "kessra"},
        {"near": "45,10,20000"},
        {"bbox": "90,-180,-90,180", "q": "kessra"},
        {"source": [f"src{i}" for i in range(20)] + ["Hostile Gazette"]},
    ):
        r = api_over.get("/search", params=params)
        assert r.status_code == 200, (params, r.text[:300])
    assert api_over.get("/search", params={"q": "kessra", "since": "3650d"}).json()["total"] == 1


# --- 7. every search is bounded in time --------------------------------------------------------------


def many_articles(n: int) -> list[dict[str, Any]]:
    return [
        hostile_article(f"bulk-{i}", title=f"Kessra pumps report {i}", text=f"{STORY} Report {i} of {n}.")
        for i in range(n)
    ]


def test_a_search_past_its_time_budget_stops_with_a_clear_error(store_url: str) -> None:
    from pipeline.stores.base import SearchTimeout

    store = open_store(store_url)
    try:
        assert store.index(many_articles(300)).errors == []
        store.search_timeout = 1e-6  # type: ignore[attr-defined]  # no search can finish in a microsecond
        started = time.monotonic()
        with pytest.raises(SearchTimeout, match="longer than"):
            store.search(SearchQuery(text="kessra OR pumps OR report*", limit=100))
        assert time.monotonic() - started < 10  # stopped, not retried
        store.search_timeout = 30.0  # type: ignore[attr-defined]
        assert store.search(SearchQuery(text="kessra", limit=5, collapse=False)).total == 300  # still usable
    finally:
        store.close()


def test_the_api_answers_503_when_a_search_runs_out_of_time(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.settings import get_settings

    index(store_url, *many_articles(300))
    monkeypatch.setenv("NEWSWIRE_SEARCH_TIMEOUT", "0.000001")
    get_settings.cache_clear()
    with serving(create_app(store_url)) as base:
        r = httpx.get(f"{base}/search", params={"q": "kessra OR pumps OR report*"}, timeout=60)
        health = httpx.get(f"{base}/health", timeout=60)
    assert r.status_code == 503, r.text[:300]
    assert "longer than" in r.json()["detail"]
    assert health.status_code == 200
    assert health.json()["articles"] == 300


def test_health_answers_while_a_search_holds_the_sqlite_connection(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    index(url, *many_articles(5))
    app = create_app(url)
    with serving(app) as base:
        held, release = threading.Event(), threading.Event()

        def long_search() -> None:  # what a search does for its whole run: hold the store's connection
            with app.state.store._lock:
                held.set()
                release.wait(30)

        worker = threading.Thread(target=long_search)
        worker.start()
        try:
            assert held.wait(10)
            started = time.monotonic()
            health = httpx.get(f"{base}/health", timeout=20)
            waited = time.monotonic() - started
        finally:
            release.set()
            worker.join()
    assert health.status_code == 200
    assert health.json()["articles"] == 5
    assert waited < 2.0


@pytest.mark.parametrize("text", ["a." * 200_000, "x://a:" * 100_000 + "@", ("http://u:" + "p" * 1000) * 200])
def test_redact_stays_fast_on_hostile_text(text: str) -> None:
    started = time.monotonic()
    redact(text)
    assert time.monotonic() - started < 1.0


def test_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    import io
    import logging

    from pipeline.redaction import install_log_filter

    stream = io.StringIO()
    logger = logging.getLogger("newswire-test-redaction")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        install_log_filter(logger)
        install_log_filter(logger)  # once per handler
        assert len(handler.filters) == 1
        logger.warning("feed %s failed", f"http://alice:{PASSWORD}@desk.example.test/rss")
        try:
            raise ConnectionError(f"cannot reach https://elastic:{PASSWORD}@es.example.test:9200")
        except ConnectionError:
            logger.exception("store down")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "http://alice:***@desk.example.test/rss" in text
    assert "elastic:***@es.example.test" in text
    assert PASSWORD not in text


def test_the_cli_search_past_its_time_budget_exits_1_with_the_reason(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.settings import get_settings

    url = f"sqlite:///{tmp_path / 'slow.db'}"
    index(url, *many_articles(300))
    monkeypatch.setenv("NEWSWIRE_SEARCH_TIMEOUT", "0.000001")
    get_settings.cache_clear()
    result = cli("search", "kessra OR pumps OR report*", "--store", url)
    assert result.exit_code == 1, result.output
    assert "longer than" in result.stderr
    assert "Traceback" not in result.output
