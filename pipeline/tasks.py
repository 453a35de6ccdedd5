"""Airflow-free task functions: one ingestion pass split into idempotent steps.

Contract
--------
Every function here takes and returns small JSON-able values only (feed URLs, staging
keys, counts), so an orchestrator can pass them through XCom; the articles themselves
travel through the staging area (:mod:`pipeline.staging`). No function imports Airflow;
``dags/`` only wires them together. The same steps run in tests and by hand.

Steps of one run (``run_id`` names the staging folder):

1. :func:`plan_groups` — the feeds file -> non-empty groups of feed URLs
   (:func:`pipeline.config.group_feeds`: a feed stays in the same group every run).
2. :func:`fetch_group` — fetch + parse the group's feeds (conditional GET with the stored
   ETag/Last-Modified), drop entries already stored, fetch article pages where needed
   (:func:`pipeline.run.new_entries`, the step the CLI run uses too); writes
   ``fetched/<group>.jsonl`` and ``feeds/<group>.json`` (per-feed status, errors and the
   *pending* feed state). Nothing is written to the store.
3. :func:`process_group` — clean -> dedupe -> tag (``pipeline.run.process``); writes
   ``processed/<group>.jsonl``. Reads the store (dedupe lookups) but writes nothing to it.
4. :func:`index_group` — writes the processed articles (idempotent by article id), and
   only then commits each feed's state (validators + health), so a feed is never marked
   as seen before its articles are stored.
5. :func:`reconcile_run` — merges near-duplicate clusters that parallel groups split
   (``pipeline.dedupe.reconcile``; idempotent).
6. :func:`publish_stats` — sums the groups' counts and writes ``stats.json``.

Idempotency: staging files are replaced atomically, store writes are keyed by article id,
and feed state is committed last; so clearing and re-running any step, or a whole run,
neither duplicates nor loses an article.

Settings are :func:`pipeline.settings.get_settings` (the DAGs' fields too); the store is a URL
or a :class:`StoreAccess` (URL + credentials of an Airflow connection) given to
:func:`pipeline.stores.open_store`, never the environment.

Error isolation: a feed that cannot be fetched or parsed, or one article that fails a
stage, is *recorded* (``errors`` in the counts, ``error`` on the staged line, the feed's
health in the store) and the group goes on; the step itself fails only on a group-wide
problem (store unreachable, staging unwritable), and then only that group's task fails.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipeline.records import stable_hash
from pipeline.redaction import redact
from pipeline.settings import Settings, get_settings
from pipeline.staging import Staging, open_staging, staging_root_setting

log = logging.getLogger(__name__)

#: Key in a feed's stored state naming the run/group whose index step committed it last.
COMMITTED_BY = "committed_by"

#: At most this many error messages are carried in one group's counts (the rest are counted).
MAX_ERRORS_IN_COUNTS = 20


# --- Airflow settings (fields of pipeline.settings.Settings) -------------------------------


def default_args(settings: Settings | None = None) -> dict[str, Any]:
    """Airflow ``default_args`` shared by the DAGs: retries with exponential back-off, a timeout."""
    settings = settings or get_settings()
    return {
        "owner": "newswire",
        "retries": settings.task_retries,
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=settings.max_retry_delay_seconds),
        "execution_timeout": timedelta(minutes=settings.task_timeout_minutes),
    }


def schedule_value(value: str) -> str | None:
    """A schedule setting for Airflow: ``none`` (or empty) means manual/external triggers only."""
    return None if value.strip().lower() in ("", "none", "null") else value


def store_url_from_connection(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """An Elasticsearch store URL from an Airflow connection's fields (no credentials in it).

    ``host`` may carry a scheme (``https://es.example:9200``); otherwise ``schema``
    (``http``/``https``, default ``http``) and ``port`` (default 9200) complete it.
    """
    if not host:
        raise ValueError("the Elasticsearch connection has no host")
    if "://" in host:
        scheme, _, rest = host.partition("://")
    else:
        scheme, rest = (schema or "http"), host
    if scheme not in ("http", "https"):
        scheme = "http"
    rest = rest.rstrip("/")
    if port and ":" not in rest.rsplit("]", 1)[-1]:
        rest = f"{rest}:{port}"
    elif ":" not in rest.rsplit("]", 1)[-1]:
        rest = f"{rest}:9200"
    return f"{scheme}://{rest}"


@dataclass(frozen=True)
class StoreAccess:
    """A store URL with the credentials to use it (from an Airflow connection).

    Handed to the task functions in the task's own process, so the password never enters a
    URL, a log line, XCom or the environment; ``repr`` hides it.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


#: What the task functions take as ``store_url``: a URL, a :class:`StoreAccess`, or None (``NEWSWIRE_STORE``).
StoreTarget = str | StoreAccess | None


def airflow_store(conn_id: str) -> StoreAccess | None:
    """The store of Airflow connection ``conn_id`` (type ``elasticsearch``): URL, login and password.

    Called inside a running Airflow task only (imports Airflow lazily). ``None`` (no such
    connection) means: use ``NEWSWIRE_STORE`` with ``NEWSWIRE_ES_USERNAME``/``_PASSWORD``. A
    connection without a login means no credentials, whatever the environment says.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        log.info("no Airflow connection %r: using NEWSWIRE_STORE", conn_id)
        return None
    return StoreAccess(
        url=store_url_from_connection(conn.host, conn.port, conn.schema),
        username=conn.login or "",
        password=conn.password or "",
    )


def airflow_staging() -> Staging:
    """The staging area as an Airflow ``ObjectStoragePath`` (a local folder becomes ``file://``)."""
    root = staging_root_setting()
    if "://" not in root:
        root = Path(root).resolve().as_uri()
    return open_staging(root)


# --- helpers ------------------------------------------------------------------------------


def _staging(staging: Any) -> Staging:
    return staging if isinstance(staging, Staging) else open_staging(staging)


def _open_store(store_url: StoreTarget) -> Any:
    from pipeline.stores import open_store

    if isinstance(store_url, StoreAccess):
        return open_store(store_url.url, username=store_url.username, password=store_url.password)
    return open_store(store_url or get_settings().store)


def _feeds_file(feeds_file: str | Path | None) -> Path:
    return Path(feeds_file) if feeds_file else get_settings().feeds_file


def group_key(group: list[str]) -> str:
    """A stable name for a group of feed URLs (same feeds -> same name, any order)."""
    return "g" + stable_hash("\n".join(sorted(group)))


def _keys(run_id: str, group: str) -> dict[str, str]:
    return {
        "fetched": Staging.key(run_id, "fetched", group),
        "feeds": Staging.key(run_id, "feeds", group).removesuffix(".jsonl") + ".json",
        "processed": Staging.key(run_id, "processed", group),
    }


def _run_and_group(key: str) -> tuple[str, str]:
    parts = key.split("/")  # runs/<run>/<stage>/<group>.jsonl
    if len(parts) != 4 or parts[0] != "runs":
        raise ValueError(f"not a staging key of this pipeline: {key!r}")
    return parts[1], parts[3].rsplit(".", 1)[0]


# --- 1. plan ------------------------------------------------------------------------------


def plan_groups(feeds_file: str | Path | None = None, n_groups: int = 4) -> list[list[str]]:
    """The enabled feeds of ``feeds_file`` split into at most ``n_groups`` non-empty groups of URLs.

    Raises :class:`pipeline.config.ConfigError` (naming file, line and field) on a bad file.
    """
    from pipeline.config import group_feeds, load_feeds

    feeds = load_feeds(_feeds_file(feeds_file))
    return [[f.url for f in group] for group in group_feeds(feeds, n_groups) if group]


# --- 2. fetch + parse ---------------------------------------------------------------------


def fetch_group(
    group: list[str],
    run_id: str,
    staging: Any = None,
    feeds_file: str | Path | None = None,
    store_url: StoreTarget = None,
) -> dict[str, Any]:
    """Fetch and parse one group's feeds into ``runs/<run>/fetched/<group>.jsonl``.

    Returns ``{"path": key, "group": name, "counts": {...}}``. A feed that fails is recorded
    (``counts.feed_errors``, its error messages) and the others go on.
    """
    from pipeline.config import load_feeds
    from pipeline.fetch import fetch_feeds
    from pipeline.run import FeedStats, new_entries, record_feed_failure

    settings = get_settings()
    st = _staging(staging)
    name = group_key(group)
    keys = _keys(run_id, name)
    configured = {f.url: f for f in load_feeds(_feeds_file(feeds_file))}
    missing = [u for u in group if u not in configured]
    feeds = [configured[u] for u in group if u in configured]
    store = _open_store(store_url)
    try:
        previous = {f.url: store.get_feed_state(f.url) for f in feeds}
        entries: list[dict[str, Any]] = []
        feed_reports: list[dict[str, Any]] = []
        for url in missing:
            feed_reports.append(
                {
                    "url": url,
                    "name": url,
                    "status": "removed",
                    "fetched": 0,
                    "errors": [f"{redact(url)}: no longer in the feeds file"],
                    "warnings": [],
                    "state": None,
                }
            )
        for result in fetch_feeds([(f.url, previous[f.url]) for f in feeds], settings):
            feed = configured[result.url]
            stats = FeedStats(name=feed.name, url=feed.url, status=result.status)
            fresh: list[dict[str, Any]] = []
            try:
                for chunk in new_entries(feed, result, store, stats, settings):
                    fresh.extend(chunk)
            except Exception as exc:  # one feed's bug must not end the group
                log.exception("feed %s failed", redact(feed.url))
                record_feed_failure(feed, stats, exc)
                fresh = []
            entries.extend(fresh)
            report = stats.as_dict()
            report["new_entries"] = len(fresh)
            report["state"] = result.state if stats.status != "error" else None
            feed_reports.append(report)
            for err in stats.errors:
                log.warning("feed error: %s", err)
    finally:
        store.close()
    n = st.write_jsonl(keys["fetched"], entries)
    st.write_json(keys["feeds"], {"group": name, "feeds": feed_reports})
    errors = [e for r in feed_reports for e in r["errors"]]
    counts = {
        "feeds": len(group),
        "feed_errors": sum(1 for r in feed_reports if r["errors"]),
        "entries": sum(int(r["fetched"]) for r in feed_reports),
        "new_entries": n,
        "errors": errors[:MAX_ERRORS_IN_COUNTS],
    }
    log.info(
        "group %s: %d feeds, %d new entries, %d feeds with errors", name, len(group), n, counts["feed_errors"]
    )
    return {"path": keys["fetched"], "group": name, "counts": counts}


# --- 3. clean + dedupe + tag --------------------------------------------------------------


def process_group(path: str, staging: Any = None, store_url: StoreTarget = None) -> dict[str, Any]:
    """clean -> dedupe -> tag the fetched file ``path`` into ``processed/<group>.jsonl``.

    Returns ``{"path": key, "group": name, "counts": {records, failed, errors}}``; records
    that fail a stage are written with an ``error`` field (the index step skips them).
    """
    from pipeline.run import process

    st = _staging(staging)
    run, group = _run_and_group(path)
    out_key = _keys(run, group)["processed"]
    records = list(st.read_jsonl(path))
    store = _open_store(store_url)
    try:
        processed = process(records, store) if records else []
    finally:
        store.close()
    st.write_jsonl(out_key, processed)
    failed = [r for r in processed if r.get("error")]
    for r in failed:
        log.warning("article %s failed: %s", r.get("url") or r.get("id"), r["error"])
    counts = {
        "records": len(processed),
        "failed": len(failed),
        "duplicates": sum(1 for r in processed if r.get("duplicate_of")),
        "errors": [f"{r.get('url') or r.get('id')}: {r['error']}" for r in failed][:MAX_ERRORS_IN_COUNTS],
    }
    return {"path": out_key, "group": group, "counts": counts}


# --- 4. index + commit feed state ---------------------------------------------------------


def index_group(path: str, staging: Any = None, store_url: StoreTarget = None) -> dict[str, Any]:
    """Index the processed file ``path``, then commit the group's feed states.

    Returns the group's counts: ``{group, path, feeds, feed_errors, entries, indexed, new,
    created, duplicates, failed, errors}`` — the same on every attempt (``new`` counts the
    run's new articles; ``created`` the documents this attempt created). Raises (so the
    task retries) when the store rejects documents; feed state is then left uncommitted
    and the next attempt redoes the work. A feed's state records ``committed_by`` =
    ``<run>/<group>`` so a re-run of the same step does not count its articles twice.
    """
    from pipeline.run import FeedStats, feed_state_after

    st = _staging(staging)
    run, group = _run_and_group(path)
    marker = f"{run}/{group}"
    feeds_meta = st.read_json(_keys(run, group)["feeds"])
    records = list(st.read_jsonl(path))
    good = [r for r in records if not r.get("error")]
    failed = [r for r in records if r.get("error")]
    store = _open_store(store_url)
    try:
        store.setup()
        report = store.index(good)
        if report.errors:
            sample = "; ".join(f"{e.get('id')}: {e.get('error')}" for e in report.errors[:5])
            raise RuntimeError(f"store rejected {len(report.errors)} of {len(good)} articles: {sample}")
        new_by_feed: Counter[str] = Counter()
        dup_by_feed: Counter[str] = Counter()
        errors_by_feed: dict[str, list[str]] = defaultdict(list)
        for r in good:
            feed = (r.get("source") or {}).get("feed", "")
            new_by_feed[feed] += 1
            if r.get("duplicate_of"):
                dup_by_feed[feed] += 1
        for r in failed:
            feed = (r.get("source") or {}).get("feed", "")
            errors_by_feed[feed].append(f"{r.get('url') or r.get('id')}: {r['error']}")
        for meta in feeds_meta["feeds"]:
            url = meta["url"]
            shown = redact(url)  # what articles' source.feed holds
            stats = FeedStats(
                name=meta["name"],
                url=url,
                status=meta["status"],
                fetched=meta["fetched"],
                new=new_by_feed[shown],
                duplicates=dup_by_feed[shown],
                errors=list(meta["errors"]) + errors_by_feed[shown],
                warnings=list(meta.get("warnings", [])),
                poll_seconds=meta.get("poll_seconds"),
            )
            if meta["status"] == "removed":
                continue  # left the feeds file between plan and fetch: nothing to commit
            previous = store.get_feed_state(url)
            if previous and previous.get(COMMITTED_BY) == marker:
                continue  # an earlier attempt of this very step committed it (health counted once)
            state = feed_state_after(meta.get("state") or {}, previous, stats)
            state[COMMITTED_BY] = marker
            store.put_feed_state(url, state)
    finally:
        store.close()
    errors = [e for m in feeds_meta["feeds"] for e in m["errors"]] + [
        f"{r.get('url') or r.get('id')}: {r['error']}" for r in failed
    ]
    return {
        "group": group,
        "path": path,
        "feeds": len(feeds_meta["feeds"]),
        "feed_errors": sum(1 for m in feeds_meta["feeds"] if m["errors"]),
        "entries": sum(int(m["fetched"]) for m in feeds_meta["feeds"]),
        "indexed": report.indexed,
        "new": len(good),  # fetch dropped stored ids: every good record is new to the store this run
        "created": report.created,  # documents this attempt created (0 when re-run)
        "duplicates": sum(dup_by_feed.values()),
        "failed": len(failed),
        "errors": errors[:MAX_ERRORS_IN_COUNTS],
    }


# --- 5. reconcile clusters split by parallel groups ---------------------------------------


def group_results(results: Any) -> list[dict[str, Any] | None]:
    """The per-group counts a mapped task group hands downstream, as a list.

    Airflow 3.3 gives a downstream task the bare value instead of a one-item sequence when
    the mapped group expanded to exactly one instance (apache/airflow#59008): a dict here
    is that single group's counts, ``None`` means no group reported.
    """
    if results is None:
        return []
    if isinstance(results, dict):
        return [results]
    return [r if isinstance(r, dict) else None for r in results]


def reconcile_run(paths: Iterable[str], staging: Any = None, store_url: StoreTarget = None) -> dict[str, int]:
    """Merge near-duplicate clusters that parallel groups created for the same story.

    ``paths`` are processed staging keys (from :func:`index_group`'s counts); missing files
    (a group that failed) are skipped. Idempotent (see :func:`pipeline.dedupe.reconcile`).
    """
    from pipeline.dedupe import reconcile

    st = _staging(staging)
    articles: list[dict[str, Any]] = []
    for key in paths:
        if st.exists(key):
            articles.extend(r for r in st.read_jsonl(key) if not r.get("error"))
    if not articles:
        return {"checked": 0, "merged": 0, "renamed": 0, "rewritten": 0}
    store = _open_store(store_url)
    try:
        rep = reconcile(store, articles)
    finally:
        store.close()
    return {"checked": rep.checked, "merged": rep.merged, "renamed": rep.renamed, "rewritten": rep.rewritten}


# --- 6. statistics ------------------------------------------------------------------------

SUMMED = ("feeds", "feed_errors", "entries", "indexed", "new", "created", "duplicates", "failed")


def publish_stats(
    counts: Iterable[dict[str, Any] | None],
    run_id: str | None = None,
    staging: Any = None,
    expected_groups: int | None = None,
) -> dict[str, Any]:
    """Sum the groups' counts; write ``runs/<run>/stats.json`` when ``run_id`` is given.

    ``None`` entries (groups whose tasks failed) count as ``failed_groups``; so does the
    difference to ``expected_groups``.
    """
    counts = list(counts)
    done = [c for c in counts if c]
    total: dict[str, Any] = {k: sum(int(c.get(k, 0)) for c in done) for k in SUMMED}
    total["groups"] = len(done)
    total["failed_groups"] = (len(counts) - len(done)) + max(0, (expected_groups or 0) - len(counts))
    total["errors"] = [e for c in done for e in c.get("errors", [])][:MAX_ERRORS_IN_COUNTS]
    if run_id:
        _staging(staging).write_json(f"runs/{_safe(run_id)}/stats.json", total)
    log.info(
        "run %s: %d groups (%d failed), %d feeds (%d with errors), %d new articles, %d duplicates",
        run_id,
        total["groups"],
        total["failed_groups"],
        total["feeds"],
        total["feed_errors"],
        total["new"],
        total["duplicates"],
    )
    return total


def _safe(run_id: str) -> str:
    from pipeline.staging import safe_name

    return safe_name(run_id)


# --- maintenance --------------------------------------------------------------------------


def feed_health_report(
    feeds_file: str | Path | None = None, store_url: StoreTarget = None, failing_after: int = 3
) -> dict[str, Any]:
    """Per-feed health from the store; ``failing`` lists feeds with ``failing_after``+ failures in a row."""
    from pipeline.config import load_feeds
    from pipeline.feedhealth import health_row

    feeds = load_feeds(_feeds_file(feeds_file))
    with _open_store(store_url) as store:
        rows = []
        for f in feeds:
            row = health_row(f, store.get_feed_state(f.url))
            del row["new_per_day"]  # the DAG report keeps its own fields
            row["url"] = redact(row["url"])
            row["last_error"] = redact(str(row["last_error"])) if row["last_error"] else None
            rows.append(row)
    failing = [r["name"] for r in rows if r["consecutive_failures"] >= failing_after]
    for r in rows:
        if r["consecutive_failures"]:
            log.warning(
                "feed %s: %d failures in a row, last error: %s",
                r["name"],
                r["consecutive_failures"],
                r["last_error"],
            )
    return {
        "feeds": len(rows),
        "failing": failing,
        "never_polled": [r["name"] for r in rows if r["status"] == "never polled"],
        "rows": rows,
    }


def cleanup_staging(retention_days: int, staging: Any = None) -> dict[str, Any]:
    """Delete staging run folders older than ``retention_days``; return their names."""
    removed = _staging(staging).cleanup(timedelta(days=retention_days))
    return {"removed": removed, "count": len(removed)}


def check_feeds(feeds_file: str | Path | None = None) -> dict[str, Any]:
    """Fetch and parse every configured feed now (stores nothing); list the ones that fail."""
    from pipeline.config import load_feeds
    from pipeline.feedhealth import check_feeds as check_now

    failed: list[dict[str, str]] = []
    ok = 0
    for url, error, _entries in check_now(load_feeds(_feeds_file(feeds_file))):
        if error:
            failed.append({"url": redact(url), "error": redact(error)})
        else:
            ok += 1
    for f in failed:
        log.warning("feed check failed: %s: %s", f["url"], f["error"])
    return {"ok": ok, "failed": failed}


def index_housekeeping(store_url: StoreTarget = None, retention_months: int = 0) -> dict[str, Any]:
    """Store housekeeping: ``setup`` (template, aliases) and ``Store.housekeeping`` (on
    Elasticsearch, dropping monthly indices older than ``retention_months``; 0 keeps all)."""
    store = _open_store(store_url)
    try:
        store.setup()
        result: dict[str, Any] = {"store": type(store).__name__, "dropped": []}
        result.update(store.housekeeping(retention_months=retention_months))
        return result
    finally:
        store.close()
