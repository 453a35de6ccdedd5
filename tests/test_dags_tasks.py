"""pipeline.tasks without Airflow: the steps of an ingestion run, idempotency, feed-error isolation.

Runs against both stores (SQLite and the session's real Elasticsearch), with the sample
feeds served by the loopback feed server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import tasks as T
from pipeline.staging import Staging

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "config" / "samples"


def _expected_total() -> int:
    return int(yaml.safe_load((SAMPLES / "EXPECTED.yaml").read_text())["total_articles"])


def write_feeds(
    tmp_path: Path, feed_server: Any, prefix: str, extra: list[dict[str, Any]] | None = None
) -> Path:
    samples = yaml.safe_load((SAMPLES / "feeds.yaml").read_text())["feeds"]
    base = feed_server.serve_dir(SAMPLES, prefix)
    feeds = [dict(f, url=base + f["url"].removeprefix("file:")) for f in samples]
    feeds.extend(extra or [])
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"feeds": feeds}))
    return path


def _all_articles(store_url: str) -> list[dict[str, Any]]:
    from pipeline.stores import open_store
    from pipeline.stores.base import SearchQuery

    store = open_store(store_url)
    try:
        res = store.search(
            SearchQuery(limit=1000, collapse=False, facets=False, highlight=False, sort="date")
        )
        return res.hits
    finally:
        store.close()


def _health(store_url: str, urls: list[str]) -> dict[str, dict[str, Any]]:
    from pipeline.stores import open_store

    store = open_store(store_url)
    try:
        return {
            u: dict(
                (store.get_feed_state(u) or {}).get("health") or {}, last_poll_at=None, last_success_at=None
            )
            for u in urls
        }
    finally:
        store.close()


def _run(
    groups: list[list[str]], run_id: str, staging: Staging, feeds: Path, store_url: str
) -> list[dict[str, Any]]:
    out = []
    for g in groups:
        f = T.fetch_group(g, run_id, staging, feeds_file=feeds, store_url=store_url)
        p = T.process_group(f["path"], staging, store_url=store_url)
        out.append(T.index_group(p["path"], staging, store_url=store_url))
    T.reconcile_run([c["path"] for c in out], staging, store_url=store_url)
    return out


@pytest.mark.slow
def test_steps_index_the_samples_and_rerunning_any_step_changes_nothing(
    store_url: str, tmp_path: Path, feed_server: Any, unique_path: Any
) -> None:
    feeds = write_feeds(tmp_path, feed_server, unique_path("samples"))
    staging = Staging(tmp_path / "staging")
    groups = T.plan_groups(feeds, 2)
    assert sum(len(g) for g in groups) == 4
    assert all(groups)

    # fetch and process write nothing to the store: feed state is committed by index only
    f = T.fetch_group(groups[0], "run-1", staging, feeds_file=feeds, store_url=store_url)
    p = T.process_group(f["path"], staging, store_url=store_url)
    from pipeline.stores import open_store

    store = open_store(store_url)
    try:
        assert all(store.get_feed_state(u) is None for u in groups[0])
        assert store.count() == 0
    finally:
        store.close()
    first = T.index_group(p["path"], staging, store_url=store_url)
    assert first["new"] == first["indexed"] > 0

    counts = [first] + _run(groups[1:], "run-1", staging, feeds, store_url)
    T.reconcile_run([c["path"] for c in counts], staging, store_url=store_url)
    total = T.publish_stats(counts, "run-1", staging, expected_groups=len(groups))
    articles = _all_articles(store_url)
    ids = [a["id"] for a in articles]
    assert len(ids) == len(set(ids)) == _expected_total() == total["new"]
    snapshot = {a["id"]: (a.get("cluster_id"), len(a.get("also_published_by") or [])) for a in articles}
    health = _health(store_url, [u for g in groups for u in g])
    assert sum(sum(h["new_per_day"].values()) for h in health.values()) == _expected_total()
    assert any(n for _, n in snapshot.values()), "no story recorded its other outlets"

    # clear-and-rerun process + index of every group (same run id, original fetched files)
    for c in counts:
        fetched = c["path"].replace("/processed/", "/fetched/")
        p = T.process_group(fetched, staging, store_url=store_url)
        again = T.index_group(p["path"], staging, store_url=store_url)
        assert again["created"] == 0
        assert again["indexed"] == c["indexed"]
        assert again["new"] == c["new"]
    # and fetch again: the committed feed state means nothing new comes in
    for g in groups:
        f = T.fetch_group(g, "run-1", staging, feeds_file=feeds, store_url=store_url)
        assert f["counts"]["new_entries"] == 0
    T.reconcile_run([c["path"] for c in counts], staging, store_url=store_url)
    assert _health(store_url, [u for g in groups for u in g]) == health  # counted once
    after = _all_articles(store_url)
    assert {a["id"]: (a.get("cluster_id"), len(a.get("also_published_by") or [])) for a in after} == snapshot


@pytest.mark.slow
def test_a_broken_feed_is_recorded_and_its_group_goes_on(
    tmp_path: Path, feed_server: Any, unique_path: Any
) -> None:
    store_url = f"sqlite:///{tmp_path / 'iso.db'}"
    broken = feed_server.add(unique_path("broken.xml"), "<rss><channel><item><title>cut", status=500)
    truncated = feed_server.add(unique_path("truncated.xml"), "<?xml version='1.0'?><rss><channel><item><ti")
    feeds = write_feeds(
        tmp_path,
        feed_server,
        unique_path("samples"),
        [
            {"name": "Broken", "url": broken, "full_text": False},
            {"name": "Truncated", "url": truncated, "full_text": False},
        ],
    )
    staging = Staging(tmp_path / "staging")
    one_group = T.plan_groups(feeds, 1)
    assert len(one_group) == 1
    assert len(one_group[0]) == 6
    counts = _run(one_group, "run-x", staging, feeds, store_url)
    total = T.publish_stats(counts, "run-x", staging)
    assert total["new"] == _expected_total()
    assert total["feed_errors"] >= 1
    assert any(broken in e for e in total["errors"]), total["errors"]

    from pipeline.stores import open_store

    store = open_store(store_url)
    try:
        bad = store.get_feed_state(broken) or {}
        assert bad["health"]["consecutive_failures"] == 1
        assert bad["health"]["last_error"]
        good_url = one_group[0][0] if one_group[0][0] not in (broken, truncated) else one_group[0][1]
        good_state = store.get_feed_state(good_url)
        assert good_state is not None
        assert good_state["health"]["consecutive_failures"] == 0
    finally:
        store.close()


def test_plan_groups_names_a_bad_feeds_file(tmp_path: Path) -> None:
    from pipeline.config import ConfigError

    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - name: x\n    url: ftp://nope/x\n")
    with pytest.raises(ConfigError, match="feeds.yaml:3"):
        T.plan_groups(bad, 2)


def test_cleanup_and_health_tasks(tmp_path: Path, feed_server: Any, unique_path: Any) -> None:
    feeds = write_feeds(tmp_path, feed_server, unique_path("samples"))
    store_url = f"sqlite:///{tmp_path / 'h.db'}"
    report = T.feed_health_report(feeds, store_url)
    assert report["feeds"] == 4
    assert len(report["never_polled"]) == 4
    assert report["failing"] == []
    staging = Staging(tmp_path / "staging")
    staging.write_jsonl(Staging.key("r", "fetched", "g"), [{"id": "1"}])
    assert T.cleanup_staging(7, staging)["count"] == 0
    assert T.cleanup_staging(-1, staging)["removed"] == ["r"]
    checked = T.check_feeds(feeds)
    assert checked["ok"] == 4
    assert checked["failed"] == []


def test_group_results_accepts_the_bare_value_of_a_single_mapped_group() -> None:
    one = {"path": "runs/r/processed/g1.jsonl", "new": 3}
    assert T.group_results(one) == [one]  # one mapped instance: Airflow passes the dict itself
    assert T.group_results([one, None]) == [one, None]
    assert T.group_results(None) == []
    stats = T.publish_stats(T.group_results(one))
    assert (stats["groups"], stats["new"], stats["failed_groups"]) == (1, 3, 0)


def test_connection_credentials_reach_the_store_and_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A StoreAccess's login is what the store sends (the loopback server only records the
    request; it is no Elasticsearch, so the step fails after it); the environment is untouched,
    and a connection without a login sends none although NEWSWIRE_ES_USERNAME is set."""
    import base64

    from pipeline.settings import get_settings
    from tests.support.feedserver import FeedServer

    monkeypatch.setenv("NEWSWIRE_ES_USERNAME", "env-user")
    monkeypatch.setenv("NEWSWIRE_ES_PASSWORD", "env-password")
    get_settings.cache_clear()
    with FeedServer() as server:
        for access in (
            T.StoreAccess(server.base, "conn-user", "conn-pw"),
            T.StoreAccess(server.base, "", ""),
        ):
            server.requests.clear()
            with pytest.raises(Exception):  # noqa: B017, PT011 - any client error: the server is not Elasticsearch
                T.index_housekeeping(access)
            sent = {s.headers.get("authorization") for s in server.requests}
            assert sent, "the store sent no request"
            if access.username:
                assert sent == {"Basic " + base64.b64encode(b"conn-user:conn-pw").decode()}
            else:
                assert sent == {None}
    assert (get_settings().es_username, get_settings().es_password) == ("env-user", "env-password")
