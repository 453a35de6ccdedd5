"""pipeline.staging and the Airflow-free helpers of pipeline.tasks (no Airflow needed)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.settings import Settings
from pipeline.staging import Staging, open_staging, safe_name
from pipeline.tasks import (
    StoreAccess,
    default_args,
    group_key,
    publish_stats,
    schedule_value,
    store_url_from_connection,
)


def test_keys_are_safe_and_stable() -> None:
    key = Staging.key("scheduled__2026-01-01T00:15:00+00:00", "fetched", "g1")
    assert key == "runs/scheduled__2026-01-01T00_15_00_00_00/fetched/g1.jsonl"
    assert Staging.key("manual__x", "processed", "g1") != Staging.key("manual__y", "processed", "g1")
    with pytest.raises(ValueError, match="cannot make"):
        safe_name("::")


def test_path_refuses_keys_outside_the_root(tmp_path: Path) -> None:
    st = Staging(tmp_path)
    for bad in ("/etc/passwd", "runs/../../x.jsonl"):
        with pytest.raises(ValueError, match="inside the root"):
            st.path(bad)


def test_write_then_read_round_trip_and_replace(tmp_path: Path) -> None:
    st = open_staging(str(tmp_path))
    key = Staging.key("run1", "fetched", "g1")
    records = [{"id": str(i), "title": f"Ünïcode {i}"} for i in range(5)]
    assert st.write_jsonl(key, iter(records)) == 5
    assert list(st.read_jsonl(key)) == records
    assert st.write_jsonl(key, records[:2]) == 2  # a re-run replaces, never appends
    assert list(st.read_jsonl(key)) == records[:2]
    leftovers = [p.name for p in (tmp_path / "runs" / "run1" / "fetched").iterdir()]
    assert leftovers == ["g1.jsonl"], leftovers
    manifest = json.loads((tmp_path / "runs" / "run1" / "_run.json").read_text())
    assert manifest["run_id"] == "run1"


def test_failed_write_keeps_the_previous_file_whole(tmp_path: Path) -> None:
    st = Staging(tmp_path)
    key = Staging.key("run1", "processed", "g1")
    st.write_jsonl(key, [{"id": "a"}, {"id": "b"}])

    def broken():
        yield {"id": "c"}
        raise RuntimeError("stage crashed mid-way")

    with pytest.raises(RuntimeError, match="mid-way"):
        st.write_jsonl(key, broken())
    assert [r["id"] for r in st.read_jsonl(key)] == ["a", "b"]
    assert sorted(p.name for p in st.path(key).parent.iterdir()) == ["g1.jsonl"]


def test_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    """While one thread rewrites a file repeatedly, a reader always sees a whole version."""
    st = Staging(tmp_path)
    key = Staging.key("run1", "fetched", "g1")
    st.write_jsonl(key, [{"id": str(i), "v": 0} for i in range(2000)])
    stop = threading.Event()

    def writer() -> None:
        v = 0
        while not stop.is_set():
            v += 1
            st.write_jsonl(key, [{"id": str(i), "v": v} for i in range(2000)])

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(30):
            rows = list(st.read_jsonl(key))
            assert len(rows) == 2000
            assert len({r["v"] for r in rows}) == 1
    finally:
        stop.set()
        t.join()


def test_bad_line_is_named(tmp_path: Path) -> None:
    st = Staging(tmp_path)
    key = Staging.key("r", "fetched", "g")
    st.path(key).parent.mkdir(parents=True)
    st.path(key).write_text('{"id": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"g\.jsonl: line 2"):
        list(st.read_jsonl(key))
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        list(st.read_jsonl("runs/r/fetched/missing.jsonl"))


def test_cleanup_removes_only_expired_runs(tmp_path: Path) -> None:
    st = Staging(tmp_path)
    st.write_jsonl(Staging.key("old", "fetched", "g"), [{"id": "1"}])
    st.write_jsonl(Staging.key("new", "fetched", "g"), [{"id": "2"}])
    old_manifest = tmp_path / "runs" / "old" / "_run.json"
    old_manifest.write_text(
        json.dumps({"run_id": "old", "created_at": (datetime.now(UTC) - timedelta(days=10)).isoformat()})
    )
    assert st.cleanup(timedelta(days=7)) == ["old"]
    assert st.runs() == ["new"]
    assert st.cleanup(timedelta(days=7)) == []
    # "now" far in the future: everything expires
    assert st.cleanup(timedelta(days=7), now=datetime.now(UTC) + timedelta(days=30)) == ["new"]
    assert st.runs() == []


def test_file_url_works_without_airflow(tmp_path: Path) -> None:
    st = open_staging(tmp_path.as_uri())
    key = Staging.key("r", "fetched", "g")
    st.write_jsonl(key, [{"id": "x"}])
    assert (tmp_path / "runs" / "r" / "fetched" / "g.jsonl").exists()


def test_group_key_ignores_order() -> None:
    assert group_key(["http://a/x", "http://b/y"]) == group_key(["http://b/y", "http://a/x"])
    assert group_key(["http://a/x"]) != group_key(["http://b/y"])


def test_airflow_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NEWSWIRE_SCHEDULE", "NEWSWIRE_GROUPS", "NEWSWIRE_TASK_RETRIES"):
        monkeypatch.delenv(var, raising=False)
    cfg = Settings()
    assert cfg.schedule == "*/15 * * * *"
    assert cfg.groups >= 1
    assert default_args(cfg)["retries"] == cfg.task_retries
    monkeypatch.setenv("NEWSWIRE_SCHEDULE", "@hourly")
    monkeypatch.setenv("NEWSWIRE_GROUPS", "7")
    monkeypatch.setenv("NEWSWIRE_TASK_RETRIES", "")  # set but empty (compose): the default
    cfg = Settings()
    assert (cfg.schedule, cfg.groups, cfg.task_retries) == ("@hourly", 7, 3)
    monkeypatch.setenv("NEWSWIRE_GROUPS", "many")
    with pytest.raises(ValidationError, match=r"groups\n.*integer.*'many'"):
        Settings()
    monkeypatch.setenv("NEWSWIRE_GROUPS", "0")
    with pytest.raises(ValidationError, match=r"groups\n.*greater than or equal to 1"):
        Settings()
    assert schedule_value(" None ") is None
    assert schedule_value("@daily") == "@daily"


def test_store_access_hides_the_password() -> None:
    access = StoreAccess("http://es:9200", "elastic", "s3cret-pw")
    assert "s3cret-pw" not in repr(access)
    assert "elastic" in repr(access)


def test_store_url_from_connection_fields() -> None:
    assert store_url_from_connection("es", 9201, "https") == "https://es:9201"
    assert store_url_from_connection("es") == "http://es:9200"
    assert store_url_from_connection("https://es.example:443/", None, None) == "https://es.example:443"
    with pytest.raises(ValueError, match="no host"):
        store_url_from_connection(None)


def test_publish_stats_sums_and_counts_failed_groups(tmp_path: Path) -> None:
    a = {
        "feeds": 2,
        "feed_errors": 1,
        "entries": 5,
        "indexed": 4,
        "new": 4,
        "duplicates": 1,
        "failed": 0,
        "errors": ["x: boom"],
    }
    b = {
        "feeds": 1,
        "feed_errors": 0,
        "entries": 3,
        "indexed": 3,
        "new": 2,
        "duplicates": 0,
        "failed": 1,
        "errors": [],
    }
    total = publish_stats([a, None, b], run_id="r1", staging=str(tmp_path), expected_groups=4)
    assert (total["feeds"], total["new"], total["indexed"], total["failed"]) == (3, 6, 7, 1)
    assert total["groups"] == 2
    assert total["failed_groups"] == 2
    assert total["errors"] == ["x: boom"]
    assert json.loads((tmp_path / "runs" / "r1" / "stats.json").read_text()) == total
