"""The DAGs under real Airflow: import checks, task graph, ``dag.test()`` runs into real Elasticsearch.

Needs an interpreter with Airflow installed (``pip install -e '.[airflow]'``). Without it
the module is skipped locally and fails in CI (``CI=true``): a missing Airflow is never a
silent skip there.

Airflow state lives in a temporary ``AIRFLOW_HOME`` (SQLite metadata DB, migrated once per
session); the ``newswire_es`` pool is created there as ``airflow-init`` does in compose.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
SAMPLES = ROOT / "config" / "samples"

if "airflow" not in sys.modules:  # Airflow reads its home when first imported
    _HOME = tempfile.mkdtemp(prefix="newswire-airflow-")
    os.environ["AIRFLOW_HOME"] = _HOME
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"

try:
    import airflow  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the interpreter
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError(f"Airflow is required in CI: {exc}") from exc
    pytest.skip(f"Airflow is not installed in this interpreter ({exc})", allow_module_level=True)

pytestmark = pytest.mark.airflow

AIRFLOW_HOME = Path(os.environ["AIRFLOW_HOME"])


def _airflow_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """A migrated metadata DB and the index pool, in the session's AIRFLOW_HOME."""
    _airflow_cli("db", "migrate")
    _airflow_cli("pools", "set", "newswire_es", "2", "bounds concurrent writes to Elasticsearch")
    yield AIRFLOW_HOME
    if str(AIRFLOW_HOME).startswith(tempfile.gettempdir()):
        shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


def load_dagbag() -> tuple[Any, list[warnings.WarningMessage]]:
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(DAGS))
    return bag, list(caught)


# --- import and shape -------------------------------------------------------------------


def test_dags_import_without_errors_or_warnings() -> None:
    bag, caught = load_dagbag()
    assert bag.import_errors == {}
    ours = [w for w in caught if str(ROOT) in (w.filename or "") or "newswire" in str(w.message)]
    assert not ours, [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in ours]
    assert set(bag.dag_ids) >= {"news_ingest", "news_maintenance"}


def test_dag_files_import_cleanly_under_warnings_as_errors() -> None:
    """A fresh interpreter with ``-W error`` parses both files (no deprecations anywhere)."""
    code = (
        "import runpy, sys\n"
        f"for f in ('news_ingest.py', 'news_maintenance.py'): runpy.run_path(r'{DAGS}/' + f)\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_ingest_dag_shape() -> None:
    bag, _ = load_dagbag()
    dag = bag.dags["news_ingest"]
    ids = {t.task_id for t in dag.tasks}
    assert ids == {"plan", "feeds.fetch", "feeds.process", "feeds.index", "reconcile", "publish_stats"}

    def down(task_id: str) -> set[str]:
        return set(dag.get_task(task_id).downstream_task_ids)

    assert down("plan") == {"feeds.fetch", "publish_stats"}
    assert down("feeds.fetch") == {"feeds.process"}
    assert down("feeds.process") == {"feeds.index"}
    assert down("feeds.index") == {"reconcile", "publish_stats"}
    assert down("reconcile") == {"publish_stats"}
    # the three stages of a group are mapped together (one mapped task group per feed group)
    group = dag.task_group_dict["feeds"]
    assert type(group).__name__ == "MappedTaskGroup"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.schedule == "*/15 * * * *"
    assert dag.timetable.expression == "*/15 * * * *"
    assert {"newswire", "ingest"} <= set(dag.tags)
    assert "staging" in (dag.doc_md or "")
    for t in dag.tasks:
        assert t.execution_timeout is not None
        if t.task_id != "publish_stats":  # it only sums counts; it fails on purpose when a group failed
            assert t.retries >= 1
            assert t.retry_exponential_backoff
            assert t.max_retry_delay
    assert dag.get_task("feeds.index").pool == "newswire_es"
    assert dag.get_task("reconcile").trigger_rule == "all_done"
    outlets = dag.get_task("publish_stats").outlets
    assert [a.name for a in outlets] == ["news_index"]


def test_schedule_and_groups_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSWIRE_SCHEDULE", "@hourly")
    monkeypatch.setenv("NEWSWIRE_INDEX_POOL", "es_small")
    bag, _ = load_dagbag()
    dag = bag.dags["news_ingest"]
    assert dag.schedule == "@hourly"
    assert dag.get_task("feeds.index").pool == "es_small"


def test_maintenance_dag_shape() -> None:
    bag, _ = load_dagbag()
    dag = bag.dags["news_maintenance"]
    assert {t.task_id for t in dag.tasks} == {
        "feed_health",
        "check_feeds",
        "cleanup_staging",
        "index_housekeeping",
    }
    assert all(not t.upstream_task_ids for t in dag.tasks)  # independent checks
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.doc_md


# --- dag.test() into real Elasticsearch ---------------------------------------------------


def _expected() -> dict[str, Any]:
    return yaml.safe_load((SAMPLES / "EXPECTED.yaml").read_text())


def _feeds_file(tmp_path: Path, feed_server: Any, prefix: str, extra: Sequence[dict[str, Any]] = ()) -> Path:
    """The sample feeds, served over HTTP on loopback, plus ``extra`` feeds."""
    samples = yaml.safe_load((SAMPLES / "feeds.yaml").read_text())["feeds"]
    base = feed_server.serve_dir(SAMPLES, prefix)
    feeds = []
    for f in samples:
        f = dict(f)
        f["url"] = base + f["url"].removeprefix("file:")
        feeds.append(f)
    feeds.extend(extra)
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"feeds": feeds}))
    return path


@pytest.fixture
def ingest_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, es_url: str, es_prefix: str, airflow_db: Path
) -> dict[str, Any]:
    """Environment of one ingestion: ES via the Airflow connection, a fresh index prefix."""
    host, port = es_url.removeprefix("http://").rsplit(":", 1)
    conn = {"conn_type": "elasticsearch", "host": host, "port": int(port), "schema": "http"}
    monkeypatch.setenv("AIRFLOW_CONN_NEWSWIRE_ES", json.dumps(conn))
    # if the connection were ignored, articles would land in this SQLite file instead
    monkeypatch.setenv("NEWSWIRE_STORE", f"sqlite:///{tmp_path / 'wrong.db'}")
    monkeypatch.setenv("NEWSWIRE_INDEX_PREFIX", es_prefix)
    monkeypatch.setenv("NEWSWIRE_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("NEWSWIRE_GROUPS", "3")
    monkeypatch.setenv("NEWSWIRE_RETRY_DELAY_SECONDS", "1")
    monkeypatch.setenv("NEWSWIRE_MAX_RETRY_DELAY_SECONDS", "2")
    from pipeline.settings import get_settings

    get_settings.cache_clear()
    return {"es_url": es_url, "prefix": es_prefix, "staging": tmp_path / "staging", "tmp": tmp_path}


def _run_ingest(feeds_file: Path) -> Any:
    """``dag.test()`` of news_ingest over ``feeds_file`` (settings re-read, as in a fresh task process)."""
    from pipeline.settings import get_settings

    os.environ["NEWSWIRE_FEEDS_FILE"] = str(feeds_file)
    get_settings.cache_clear()
    try:
        return _dag_test()
    finally:
        os.environ.pop("NEWSWIRE_FEEDS_FILE", None)
        get_settings.cache_clear()


def _dag_test() -> Any:
    bag, _ = load_dagbag()
    assert bag.import_errors == {}
    return bag.dags["news_ingest"].test()


def _es_docs(es_url: str, prefix: str) -> list[dict[str, Any]]:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_url, request_timeout=30)
    try:
        client.indices.refresh(index=f"{prefix}*")
        resp = client.search(index=f"{prefix}*", size=1000, query={"exists": {"field": "title"}})
        return [dict(h["_source"], _id=h["_id"], _index=h["_index"]) for h in resp["hits"]["hits"]]
    finally:
        client.close()


def _stats(staging: Path, run_id: str) -> dict[str, Any]:
    from pipeline.staging import safe_name

    return json.loads((staging / "runs" / safe_name(run_id) / "stats.json").read_text())


@pytest.mark.slow
def test_dag_test_indexes_the_sample_feeds_and_isolates_a_broken_feed(
    ingest_env: dict[str, Any], feed_server: Any, unique_path: Any, tmp_path: Path
) -> None:
    broken = feed_server.add(unique_path("broken.xml"), "<rss><channel><item><title>cut", status=500)
    feeds_file = _feeds_file(
        tmp_path,
        feed_server,
        unique_path("samples"),
        [{"name": "Broken Feed", "url": broken, "full_text": False}],
    )
    dr = _run_ingest(feeds_file)
    assert dr.state == "success", dr.state

    expected = _expected()
    docs = _es_docs(ingest_env["es_url"], ingest_env["prefix"])
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)) == expected["total_articles"]
    wanted = {a["id"] for q in expected["queries"].values() for a in q}
    assert wanted <= set(ids)
    assert all(d["_id"] == d["id"] for d in docs)
    copies = [d for d in docs if d.get("duplicate_of")]
    assert copies, "near-copies of the wire stories were not clustered"
    assert not (tmp_path / "wrong.db").exists() or _sqlite_count(tmp_path / "wrong.db") == 0

    stats = _stats(ingest_env["staging"], dr.run_id)
    assert stats["new"] == expected["total_articles"]
    assert stats["feeds"] == 5
    assert stats["feed_errors"] == 1
    assert stats["failed_groups"] == 0
    assert any(broken in e for e in stats["errors"]), stats["errors"]

    from pipeline.stores import open_store

    store = open_store(ingest_env["es_url"])
    try:
        health = (store.get_feed_state(broken) or {}).get("health") or {}
        assert health.get("consecutive_failures") == 1
        good = store.get_feed_state(feeds_file_urls(feeds_file)[0]) or {}
        assert (good.get("health") or {}).get("consecutive_failures") == 0
    finally:
        store.close()

    # a second run over unchanged feeds adds nothing and duplicates nothing
    dr2 = _run_ingest(feeds_file)
    assert dr2.state == "success"
    again = _es_docs(ingest_env["es_url"], ingest_env["prefix"])
    assert sorted(d["id"] for d in again) == sorted(ids)
    assert _stats(ingest_env["staging"], dr2.run_id)["new"] == 0


def feeds_file_urls(path: Path) -> list[str]:
    from pipeline.config import load_feeds

    return [f.url for f in load_feeds(path)]


def _sqlite_count(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("select count(*) from articles").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def _watch_task_states(db: Path, task_id: str, on_retry: Any, stop: threading.Event) -> None:
    """Poll the metadata DB; call ``on_retry`` once when ``task_id`` is up for retry."""
    while not stop.is_set():
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            try:
                rows = con.execute("select state from task_instance where task_id = ?", (task_id,)).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            rows = []
        if any(r[0] == "up_for_retry" for r in rows):
            on_retry()
            return
        time.sleep(0.2)


@pytest.mark.slow
def test_index_task_that_fails_once_then_succeeds_on_retry_leaves_no_duplicate(
    ingest_env: dict[str, Any],
    feed_server: Any,
    unique_path: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Elasticsearch refuses writes to one monthly index until an index task is up for retry.

    The June 2017 index of the samples is created with a real write block
    (``index.blocks.write``), so each index task's first attempt writes its May articles and
    then fails on the June ones: partial progress, then an exception, as in a real outage.
    A watcher lifts the block when the metadata DB shows a retry pending; the retries
    complete the run. Result: each article once, each outlet listed once, feed state
    committed once.
    """
    from elasticsearch import Elasticsearch

    from pipeline.stores import open_store

    # one feed group, so the failing attempt holds the samples' few May articles whatever the URL hashes
    # (also the case where Airflow hands on a single mapped group's counts as a bare value)
    monkeypatch.setenv("NEWSWIRE_GROUPS", "1")
    feeds_file = _feeds_file(tmp_path, feed_server, unique_path("samples"))
    client = Elasticsearch(ingest_env["es_url"], request_timeout=30)
    open_store(ingest_env["es_url"]).close()  # template, aliases and the feeds index
    blocked = f"{ingest_env['prefix']}-2017.06"
    client.indices.create(index=blocked)
    client.indices.put_settings(index=blocked, settings={"index.blocks.write": True})
    written_before_retry: list[int] = []

    def lift() -> None:
        client.indices.refresh(index=f"{ingest_env['prefix']}-*")
        written_before_retry.append(int(client.count(index=f"{ingest_env['prefix']}-2017.05")["count"]))
        client.indices.put_settings(index=blocked, settings={"index.blocks.write": False})
        lifted.set()

    stop = threading.Event()
    lifted = threading.Event()
    watcher = threading.Thread(
        target=_watch_task_states, args=(AIRFLOW_HOME / "airflow.db", "feeds.index", lift, stop), daemon=True
    )
    watcher.start()
    try:
        dr = _run_ingest(feeds_file)
    finally:
        stop.set()
        watcher.join(timeout=10)
        client.options(ignore_status=404).indices.put_settings(
            index=blocked, settings={"index.blocks.write": False}
        )
        client.close()
    assert lifted.is_set(), "no index task went up for retry: the block did not make it fail"
    assert written_before_retry, "the failed attempt wrote nothing"
    assert written_before_retry[0] >= 1, "the failed attempt wrote nothing"
    assert dr.state == "success", dr.state

    tries = {(ti.task_id, ti.map_index): ti.try_number for ti in dr.get_task_instances()}
    assert max(n for (tid, _), n in tries.items() if tid == "feeds.index") >= 2
    assert all(n == 1 for (tid, _), n in tries.items() if tid in ("feeds.fetch", "feeds.process"))

    docs = _es_docs(ingest_env["es_url"], ingest_env["prefix"])
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)) == _expected()["total_articles"]
    for d in docs:  # a representative lists each other outlet once
        also = [a["id"] for a in d.get("also_published_by") or []]
        assert len(also) == len(set(also)), d["id"]
    store = open_store(ingest_env["es_url"])
    try:
        for url in feeds_file_urls(feeds_file):
            state = store.get_feed_state(url)
            assert state is not None
            health = state["health"]
            assert health["consecutive_failures"] == 0
            per_feed = sum(1 for d in docs if (d.get("source") or {}).get("feed") == url)
            assert sum(health["new_per_day"].values()) == per_feed  # the failed attempt counted nothing
    finally:
        store.close()
    assert _stats(ingest_env["staging"], dr.run_id)["new"] == _expected()["total_articles"]


# --- airflow standalone: the real scheduler, api-server, dag-processor and triggerer ---------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def _wait(what: str, check: Any, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"airflow standalone exited ({proc.returncode}) while waiting for {what}:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        value = check()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}:\n" + log.read_text(errors="replace")[-4000:]
    )


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the standalone's process group, wait until every member is gone, else SIGKILL it."""
    import signal

    def alive() -> bool:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    for sig, grace in ((signal.SIGTERM, 45.0), (signal.SIGKILL, 15.0)):
        if not alive():
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while alive() and time.monotonic() < deadline:
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.5)
            else:
                time.sleep(0.5)
    if proc.poll() is None:
        proc.wait(timeout=10)


@pytest.mark.slow
def server_env(
    tmp_path: Path, home: Path, port: int, es_url: str, es_prefix: str, feeds_file: Path
) -> dict[str, str]:
    """The environment of Airflow server processes on loopback running our DAGs into the harness's
    Elasticsearch (the settings every such test shares; each adds its executor's)."""
    host, es_port = es_url.removeprefix("http://").rsplit(":", 1)
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSWIRE_"))} | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # loopback-only test instance
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW_CONN_NEWSWIRE_ES": json.dumps(
            {"conn_type": "elasticsearch", "host": host, "port": int(es_port), "schema": "http"}
        ),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "NEWSWIRE_SCHEDULE": "none",
        "NEWSWIRE_MAINTENANCE_SCHEDULE": "none",
        "NEWSWIRE_FEEDS_FILE": str(feeds_file),
        "NEWSWIRE_INDEX_PREFIX": es_prefix,
        "NEWSWIRE_STORE": f"sqlite:///{tmp_path / 'wrong.db'}",
        "NEWSWIRE_STAGING_DIR": str(tmp_path / "staging"),
        "NEWSWIRE_ALLOW_HOSTS": os.environ.get("NEWSWIRE_ALLOW_HOSTS", '["127.0.0.1", "localhost"]'),
    }


def test_airflow_standalone_runs_news_ingest_triggered_through_the_rest_api(
    es_url: str, es_prefix: str, feed_server: Any, unique_path: Any, tmp_path: Path
) -> None:
    feeds_file = _feeds_file(tmp_path, feed_server, unique_path("samples"))
    home = tmp_path / "airflow-home"
    port = _free_port()
    env = server_env(tmp_path, home, port, es_url, es_prefix, feeds_file) | {
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "NEWSWIRE_GROUPS": "2",
    }
    for key in ("NEWSWIRE_SPACY_MODEL",):
        if key in os.environ:
            env[key] = os.environ[key]
    log = tmp_path / "standalone.log"
    api = f"http://127.0.0.1:{port}/api/v2"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait("the api-server", lambda: _http("GET", f"{api}/version")[0] == 200, 300, proc, log)
        status, body = _http(
            "POST",
            f"{api}/pools",
            {"name": "newswire_es", "slots": 2, "description": "bounds Elasticsearch writes"},
        )
        assert status in (200, 201), body
        _wait(
            "news_ingest to be parsed",
            lambda: _http("GET", f"{api}/dags/news_ingest")[0] == 200,
            180,
            proc,
            log,
        )
        status, run = _http("POST", f"{api}/dags/news_ingest/dagRuns", {"logical_date": None})
        assert status in (200, 201), run
        run_id = run["dag_run_id"]

        def finished() -> str | None:
            code, body = _http("GET", f"{api}/dags/news_ingest/dagRuns/{run_id}")
            state = body.get("state") if code == 200 and isinstance(body, dict) else None
            return state if state in ("success", "failed") else None

        state = _wait("the run to finish", finished, 600, proc, log)
        _, tis = _http("GET", f"{api}/dags/news_ingest/dagRuns/{run_id}/taskInstances")
        summary = sorted((t["task_id"], t["map_index"], t["state"]) for t in tis["task_instances"])
        assert state == "success", summary
        # feeds are grouped by a hash of their URL: 4 feeds fall into 1 or 2 groups (1 is the case
        # where Airflow hands the single group's counts on as a bare value, see tasks.group_results)
        from pipeline.tasks import plan_groups

        groups = len(plan_groups(feeds_file, 2))
        assert sum(1 for t in summary if t[0] == "feeds.index" and t[2] == "success") == groups
    finally:
        _stop_group(proc)
    docs = _es_docs(es_url, es_prefix)
    assert len(docs) == len({d["id"] for d in docs}) == _expected()["total_articles"]


def test_staging_on_airflow_object_storage_path(tmp_path: Path) -> None:
    """The staging area works unchanged on Airflow's ObjectStoragePath (file:// here, s3:// in production)."""
    from datetime import timedelta

    from airflow.sdk import ObjectStoragePath

    from pipeline.staging import Staging, open_staging

    st = open_staging(tmp_path.as_uri())
    assert isinstance(st.root, ObjectStoragePath)
    key = Staging.key("manual__2026-01-01T00:00:00+00:00", "fetched", "g1")
    assert st.write_jsonl(key, [{"id": "a"}, {"id": "b"}]) == 2
    assert st.write_jsonl(key, [{"id": "c"}]) == 1  # replaced, not appended
    assert [r["id"] for r in st.read_jsonl(key)] == ["c"]
    folder = tmp_path / "runs" / "manual__2026-01-01T00_00_00_00_00" / "fetched"
    assert sorted(p.name for p in folder.iterdir()) == ["g1.jsonl"]  # no temporary file left
    assert st.runs() == ["manual__2026-01-01T00_00_00_00_00"]
    assert st.cleanup(timedelta(days=1)) == []
    assert st.cleanup(timedelta(days=-1)) == ["manual__2026-01-01T00_00_00_00_00"]
    assert not (tmp_path / "runs" / "manual__2026-01-01T00_00_00_00_00").exists()
