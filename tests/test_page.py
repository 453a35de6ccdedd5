"""The search page in a real browser: Debian's headless Chromium driven by Selenium through the
system chromedriver (/usr/bin/chromedriver; nothing is downloaded), over a real ``newswire serve``
subprocess on a free loopback port, on both stores (the ``store_url`` fixture: SQLite, then the
real Elasticsearch of ``tests/support/es_harness.py``).

The stores are filled with articles written here, tagged by hand with real gazetteer ids (GeoNames
ids and coordinates of Ar Raqqah, Syria and Mosul; actor ids of config/actors.yaml). Without a
browser the tests are skipped, except in CI (``CI=true``) where a missing browser is a failure.
Screenshots are saved under each test's ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_SIZE = 20  # hits per page of the page (pipeline/web/app.js)

# (id, name, kind, country code, lat, lon) as in the gazetteer (GeoNames)
RAQQA = ("geonames:172955", "Ar Raqqah", "city", "SY", 35.95283, 39.00788)
SYRIA = ("geonames:163843", "Syria", "country", "SY", 33.5102, 36.29128)
MOSUL = ("geonames:99072", "Mosul", "city", "IQ", 36.335, 43.11889)
IS = ("actor:islamic-state", "Islamic State", "armed_group")
SDF = ("actor:syrian-democratic-forces", "Syrian Democratic Forces", "armed_group")
IRAQI_ARMY = ("actor:iraqi-army", "Iraqi Army", "military")
OUTLETS = [
    ("Cedar Ledger", "cedar-ledger.example"),
    ("Tidewater Courier", "tidewater-courier.example"),
    ("Basalt Review", "basalt-review.example"),
]
TOPICS = [
    "water trucks reach the eastern quarter",
    "a school reopens in two shifts",
    "bakeries ration flour",
    "mine clearance teams mark a road",
    "families queue at a clinic",
    "power returns to a pumping station",
    "a market reopens near the clock tower",
    "engineers inspect a damaged bridge",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(message: str) -> None:
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# ---- the corpus ----------------------------------------------------------------------------------------


def article(
    n: int,
    title: str,
    text: str,
    places: list[tuple[Any, ...]],
    actors: list[tuple[str, str, str]],
    day: int,
    outlet: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    name, domain = OUTLETS[outlet]
    aid = f"page{n:012d}"
    record = {
        "id": aid,
        "url": f"https://{domain}/story/{n}",
        "title": title,
        "text": text,
        "summary": text.split(". ")[0] + ".",
        "language": "en",
        "source": {"name": name, "domain": domain, "feed_url": f"https://{domain}/feed.xml"},
        "published_at": f"2017-06-{day:02d}T09:{n % 60:02d}:00+00:00",
        "published_at_estimated": False,
        "fetched_at": "2017-06-30T00:00:00+00:00",
        "content_hash": f"h{n}",
        "cluster_id": aid,
        "duplicate_of": None,
        "actors": [{"id": a[0], "name": a[1], "kind": a[2], "mentions": [a[1]], "count": 2} for a in actors],
        "locations": [
            {
                "id": p[0],
                "name": p[1],
                "kind": p[2],
                "country_code": p[3],
                "lat": p[4],
                "lon": p[5],
                "mentions": [p[1]],
                "count": 1,
            }
            for p in places
        ],
    }
    record.update(extra)
    return record


def journey_corpus() -> list[dict[str, Any]]:
    """25 stories on Raqqa with the SDF (one with an estimated date), 6 on Raqqa with the Islamic State
    only, 4 on Mosul, and a second outlet's copy of the first Raqqa story."""
    docs = []
    for n in range(25):
        topic = TOPICS[n % len(TOPICS)]
        docs.append(
            article(
                n,
                f"Raqqa dispatch {n + 1}: {topic}",
                f"In Raqqa, {topic}, residents told reporters on day {n + 1}. Syrian Democratic Forces "
                f"patrols "
                f"were seen nearby. Local officials in Syria said more help was needed.",
                [RAQQA, SYRIA],
                [SDF] + ([IS] if n % 3 == 0 else []),
                day=1 + n % 24,
                outlet=n % 3,
                published_at_estimated=(n == 7),
            )
        )
    for n in range(25, 31):
        docs.append(
            article(
                n,
                f"Islamic State cells still active around Raqqa, report {n - 24}",
                "Sleeper cells of the Islamic State attacked a checkpoint outside Raqqa overnight. Nobody "
                "claimed it.",
                [RAQQA],
                [IS],
                day=n - 20,
                outlet=1,
            )
        )
    for n in range(31, 35):
        docs.append(
            article(
                n,
                f"Mosul rebuilds its old city, part {n - 30}",
                "The Iraqi Army handed over a district of Mosul to civilian authorities. Rubble is still "
                "cleared by hand.",
                [MOSUL],
                [IRAQI_ARMY],
                day=n - 25,
                outlet=2,
            )
        )
    first = docs[0]
    copy = article(
        99,
        first["title"],
        first["text"],
        [RAQQA, SYRIA],
        [SDF, IS],
        day=2,
        outlet=2,
        cluster_id=first["id"],
        duplicate_of=first["id"],
    )
    docs.append(copy)
    return docs


def ids_where(docs: list[dict[str, Any]], place: str | None = None, actor: str | None = None) -> set[str]:
    """Representatives (one per story, as the page shows them) with that place and actor."""
    return {
        d["id"]
        for d in docs
        if not d["duplicate_of"]
        and (place is None or place in {p["id"] for p in d["locations"]})
        and (actor is None or actor in {a["id"] for a in d["actors"]})
    }


# ---- a real server and a real browser ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def newswire_serve(store_url: str, log_path: Path) -> Iterator[str]:
    """``newswire serve`` in a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["NEWSWIRE_SPACY_MODEL"] = ""  # the server never tags: its gazetteer is all the page needs
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--store",
                store_url,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"newswire serve exited with {proc.returncode}:\n{log_path.read_text()}"
                    )
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"newswire serve did not answer in 60 s:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    """Headless Chromium through the system chromedriver (never a downloaded one)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None or not os.access(CHROMEDRIVER, os.X_OK):
        _unavailable("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium or ""
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--lang=en-US",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def indexed(store_url: str, docs: list[dict[str, Any]]) -> None:
    from pipeline.stores import open_store

    store = open_store(store_url)
    try:
        report = store.index(docs)
        assert not report.errors, report.errors
    finally:
        store.close()


def wait(driver: Any, condition: Any, timeout: float = 30, message: str = "") -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # the page redraws its lists on every search: an element read mid-redraw is looked up again
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message)


def hit_ids(driver: Any) -> list[str]:
    return [li.get_attribute("data-id") for li in driver.find_elements("css selector", "#hits > li.hit")]


def url_params(driver: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(driver.current_url).query)


# ---- the journey --------------------------------------------------------------------------------------


def test_search_by_place_then_actor_and_page_forward(chrome: Any, store_url: str, tmp_path: Path) -> None:  # noqa: PLR0915 - one user journey through the page, step by step
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    docs = journey_corpus()
    indexed(store_url, docs)
    in_raqqa = ids_where(docs, place=RAQQA[0])
    with_sdf = ids_where(docs, place=RAQQA[0], actor=SDF[0])
    assert len(with_sdf) > PAGE_SIZE  # the corpus must need a second page

    with newswire_serve(store_url, tmp_path / "serve.log") as base:
        d = chrome
        d.set_window_size(1280, 1000)
        d.get(f"{base}/")
        wait(
            d,
            lambda d: d.execute_script("return document.body.dataset.ready"),
            message="the page never rendered",
        )

        # type a spelling the gazetteer knows as an alias; pick the suggestion
        box = d.find_element(By.ID, "location-input")
        box.send_keys("Raqa")
        option = wait(
            d,
            lambda d: next(
                iter(d.find_elements(By.CSS_SELECTOR, f"#location-list li[data-id='{RAQQA[0]}']")), False
            ),
            timeout=60,
            message="no suggestion for Raqa",
        )
        assert option.find_element(By.CLASS_NAME, "s-name").text == RAQQA[1]
        option.click()

        wait(
            d,
            lambda d: (
                set(hit_ids(d))
                and set(hit_ids(d)) <= in_raqqa
                and d.find_element(By.ID, "summary").text.startswith(f"{len(in_raqqa)} stories")
            ),
            message="the Raqqa stories never showed",
        )
        assert url_params(d)["location"] == [RAQQA[0]]
        assert len(hit_ids(d)) == PAGE_SIZE
        chip = d.find_element(By.CSS_SELECTOR, f"#active .chip[data-value='{RAQQA[0]}']")
        assert RAQQA[1] in chip.text
        point = wait(
            d,
            lambda d: next(
                iter(d.find_elements(By.CSS_SELECTOR, f"#points circle[data-id='{RAQQA[0]}']")), False
            ),
            message="no Raqqa point on the map",
        )
        assert int(point.get_attribute("data-count")) == len(in_raqqa)
        assert float(point.get_attribute("r")) > 0
        # country outlines drawn from the packaged map; nothing loaded from anywhere but the server itself
        assert len(d.find_elements(By.CSS_SELECTOR, "#countries path")) > 150
        loaded = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert any(u.endswith("/countries-110m.json") for u in loaded)
        assert all(u.startswith(base) for u in loaded), [u for u in loaded if not u.startswith(base)]
        # the Raqqa story with a copy says so, and lists the other outlet
        first_story = docs[0]["id"]
        if first_story in hit_ids(d):
            also = d.find_element(By.CSS_SELECTOR, f"#hits li[data-id='{first_story}'] details.also")
            assert also.find_element(By.TAG_NAME, "summary").text == "also published by 1 outlet"
            also.find_element(By.TAG_NAME, "summary").click()
            assert OUTLETS[2][0] in also.find_element(By.CSS_SELECTOR, ".also-list").text
        d.save_screenshot(str(tmp_path / "page-raqqa.png"))

        # click an actor chip of a story
        d.find_element(By.CSS_SELECTOR, f"#hits .chip.actor[data-id='{SDF[0]}']").click()
        wait(
            d,
            lambda d: d.find_element(By.ID, "summary").text.startswith(f"{len(with_sdf)} stories"),
            message="the actor chip did not filter",
        )
        assert url_params(d)["actor"] == [SDF[1]]
        assert url_params(d)["location"] == [RAQQA[0]]
        page1 = hit_ids(d)
        assert len(page1) == PAGE_SIZE
        assert set(page1) <= with_sdf
        estimated = docs[7]["id"]
        if estimated in page1:
            assert (
                "estimated" in d.find_element(By.CSS_SELECTOR, f"#hits li[data-id='{estimated}'] .meta").text
            )

        # page forward: the rest of the stories, none repeated
        d.find_element(By.ID, "next").click()
        wait(d, lambda d: d.find_element(By.ID, "page-no").text == "page 2 of 2", message="no second page")
        wait(d, lambda d: len(hit_ids(d)) == len(with_sdf) - PAGE_SIZE)
        page2 = hit_ids(d)
        assert not set(page1) & set(page2)
        assert set(page1) | set(page2) == with_sdf
        assert d.find_element(By.ID, "next").is_displayed() is False
        d.save_screenshot(str(tmp_path / "page-2.png"))

        # Back returns to the first page; the URL alone reproduces it (shareable)
        d.back()
        wait(d, lambda d: hit_ids(d) == page1, message="Back did not show the first page again")
        shared = d.current_url
        d.get(shared)
        wait(d, lambda d: hit_ids(d) == page1, message="the URL did not reproduce the search")

        # a facet narrows too: the Islamic State among the Raqqa+SDF stories
        d.find_element(By.CSS_SELECTOR, f"#facet-actors button[data-key='{IS[0]}']").click()
        both = with_sdf & ids_where(docs, actor=IS[0])
        wait(d, lambda d: set(hit_ids(d)) == both, message="the actor facet did not filter")

        # a bar of the histogram narrows the dates to its day
        by_id = {doc["id"]: doc for doc in docs}
        day = min(by_id[i]["published_at"][:10] for i in both if not by_id[i]["published_at_estimated"])
        on_day = {i for i in both if by_id[i]["published_at"].startswith(day)}
        d.find_element(By.CSS_SELECTOR, f"#histogram rect[data-day='{day}']").click()
        wait(d, lambda d: set(hit_ids(d)) == on_day, message="the histogram bar did not filter")
        assert url_params(d)["since"] == [day]
        assert url_params(d)["until"] == [day]

        # the keyboard picks a suggestion too: an alias typed, Down, Enter -> the canonical actor
        d.get(f"{base}/?location={RAQQA[0]}")
        wait(d, lambda d: set(hit_ids(d)) and set(hit_ids(d)) <= in_raqqa)
        actor_box = d.find_element(By.ID, "actor-input")
        actor_box.send_keys("Daes")
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, f"#actor-list li[data-id='{IS[0]}']"), timeout=60)
        actor_box.send_keys(Keys.ARROW_DOWN, Keys.ARROW_UP, Keys.ENTER)
        wait(d, lambda d: url_params(d).get("actor") == [IS[1]], message="Enter did not pick the actor")
        assert actor_box.get_attribute("value") == ""
        with_is = ids_where(docs, place=RAQQA[0], actor=IS[0])
        wait(d, lambda d: d.find_element(By.ID, "summary").text.startswith(f"{len(with_is)} stories"))

        # phone width: one column, nothing wider than the screen
        d.set_window_size(390, 844)
        d.get(shared)
        wait(d, lambda d: hit_ids(d) == page1)
        overflow = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
        d.save_screenshot(str(tmp_path / "page-phone.png"))
        assert not d.find_element(By.ID, "since").is_displayed()  # secondary filters fold away on a phone
        d.find_element(By.ID, "more").click()
        assert d.find_element(By.ID, "since").is_displayed()
        d.set_window_size(1280, 1000)
    assert (tmp_path / "page-raqqa.png").stat().st_size > 10_000


def test_suggest_is_fast_and_ranks_exact_names_first(store_url: str, tmp_path: Path) -> None:
    with (
        newswire_serve(store_url, tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=60) as c,
    ):
        first = c.get("/suggest", params={"kind": "location", "prefix": "Raqa"})
        assert first.status_code == 200, first.text
        assert first.json()["suggestions"][0]["id"] == RAQQA[0]
        actor = c.get("/suggest", params={"kind": "actor", "prefix": "ISIL"}).json()["suggestions"]
        assert actor[0]["id"] == IS[0]
        assert actor[0]["match"] == "alias"
        assert c.get("/suggest", params={"kind": "weather", "prefix": "x"}).status_code == 422
        timings = []
        for prefix in ("a", "s", "Da", "Mos", "new y", "Raqqa"):
            t0 = time.perf_counter()
            r = c.get("/suggest", params={"kind": "location", "prefix": prefix})
            timings.append(time.perf_counter() - t0)
            assert r.status_code == 200
            assert r.json()["suggestions"]
        assert max(timings) < 0.2, timings  # over HTTP; the lookup itself is well under 20 ms


# ---- hostile articles -------------------------------------------------------------------------------


class _Sentinel(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sentinel() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every request: any request means injected code ran."""
    handler: type[_Sentinel] = type("Sentinel", (_Sentinel,), {"hits": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.hits
    finally:
        server.shutdown()
        server.server_close()


def hostile_corpus(s: str) -> list[dict[str, Any]]:
    title = (
        f"<script>fetch('{s}/title-script')</script>Raqqa siege "
        f"<img src=x onerror=\"fetch('{s}/title-img')\">"
    )
    text = (
        f'Raqqa <img src="{s}/body-img" onerror="alert(\'body\')"> was quiet. '
        f"<svg onload=\"fetch('{s}/body-svg')\"></svg> Raqqa <a href=\"javascript:alert('a')\">more</a>. "
        f"<iframe src=\"{s}/body-iframe\"></iframe> Raqqa </mark><script>alert('mark')</script>"
    )
    evil_actor = ("actor:evil", f"<img src={s}/actor-img onerror=alert('actor')>", "person")
    evil_place = (
        "geonames:172955",
        f"Raqqa<script>fetch('{s}/place')</script>",
        "city",
        "SY",
        35.95283,
        39.00788,
    )
    main = article(
        500,
        title,
        text,
        [evil_place],
        [evil_actor, IS],
        day=9,
        outlet=0,
        url=f"javascript:fetch('{s}/title-link')",
        summary=f"<iframe src='{s}/summary'></iframe>Raqqa summary",
    )
    main["source"] = {
        "name": f"<b onmouseover=\"fetch('{s}/source')\">Evil Outlet</b>",
        "domain": "evil.example",
    }
    copy = article(
        501,
        title,
        text,
        [evil_place],
        [IS],
        day=9,
        outlet=1,
        url=f"javascript:fetch('{s}/also-link')",
        cluster_id=main["id"],
        duplicate_of=main["id"],
    )
    return [main, copy]


def test_hostile_titles_and_bodies_never_run(
    chrome: Any, store_url: str, tmp_path: Path, sentinel: tuple[str, list[str]]
) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    base_s, requests = sentinel
    docs = hostile_corpus(base_s)
    indexed(store_url, docs)
    main = docs[0]
    with newswire_serve(store_url, tmp_path / "serve.log") as base:
        d = chrome
        d.set_window_size(1280, 1000)
        d.get(f"{base}/?q=Raqqa&location={RAQQA[0]}")
        wait(d, lambda d: hit_ids(d) == [main["id"]], message="the hostile story did not show")
        hit = d.find_element(By.CSS_SELECTOR, f"#hits li[data-id='{main['id']}']")
        # the markup is shown as text, exactly as written
        assert hit.find_element(By.CSS_SELECTOR, "h3").text == main["title"]
        assert "<b onmouseover=" in hit.find_element(By.CSS_SELECTOR, ".meta .source").text
        snippet = hit.find_element(By.CSS_SELECTOR, ".snippet")
        assert "<img src=" in snippet.text or "<iframe src=" in snippet.text, snippet.text
        assert snippet.find_elements(By.TAG_NAME, "mark")
        actor_chip = hit.find_element(By.CSS_SELECTOR, ".chip.actor[data-id='actor:evil']")
        assert actor_chip.text.startswith("<img src=")
        # no element came from article data: only our own tags inside the results
        tags = set(
            d.execute_script(
                "return [...document.querySelectorAll('#hits *')].map(e => e.tagName.toLowerCase())"
            )
        )
        assert tags <= {
            "li",
            "h3",
            "a",
            "span",
            "div",
            "p",
            "mark",
            "time",
            "details",
            "summary",
            "ul",
            "button",
        }, tags
        # a javascript: URL is never a link
        assert not hit.find_elements(By.CSS_SELECTOR, "a[href^='javascript']")
        hit.find_element(By.CSS_SELECTOR, "h3 > *").click()
        also = hit.find_element(By.CSS_SELECTOR, "details.also")
        also.find_element(By.TAG_NAME, "summary").click()
        also.find_element(By.CSS_SELECTOR, ".also-list li > *").click()
        ActionChains(d).move_to_element(hit.find_element(By.CSS_SELECTOR, ".meta .source")).perform()
        d.save_screenshot(str(tmp_path / "page-hostile-story.png"))
        actor_chip.click()  # filters by that name: the page reloads results with the hostile name as a chip
        wait(d, lambda d: "actor" in url_params(d))
        # no story carries an actor of that name: the page says so (no stories, or the API's reason)
        wait(
            d,
            lambda d: (
                d.find_element(By.ID, "summary").text == "No stories match."
                or d.find_element(By.ID, "error").is_displayed()
            ),
        )
        wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "#active .chip.actor").text.count("<img") == 1)
        time.sleep(1.0)  # give anything that was injected time to fire
        d.save_screenshot(str(tmp_path / "page-hostile.png"))
        with pytest.raises(NoAlertPresentException):
            d.switch_to.alert.text  # noqa: B018 (raises when no dialog is open)
        assert d.current_url.startswith(base)
    assert requests == [], f"injected code reached the sentinel: {requests}"
