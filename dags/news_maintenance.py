"""
### news_maintenance — daily housekeeping for the newswire pipeline

Independent tasks, so one failing check never hides the others:

* `feed_health` — per-feed health from the store (last success, last error, failures in a
  row); feeds failing `3`+ polls in a row are listed in the log and the returned report.
* `check_feeds` — fetches and parses every configured feed now (stores nothing); fails the
  task when a configured feed no longer parses, so the run turns red for a person to look.
* `cleanup_staging` — deletes staging run folders older than `NEWSWIRE_STAGING_RETENTION_DAYS`.
* `index_housekeeping` — re-applies the index template and aliases (idempotent) and drops
  monthly indices older than `NEWSWIRE_INDEX_RETENTION_MONTHS` (0 keeps all).

All logic lives in `pipeline.tasks`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from pipeline import tasks as T
from pipeline.settings import get_settings

CFG = get_settings()


@dag(
    dag_id="news_maintenance",
    schedule=T.schedule_value(CFG.maintenance_schedule),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=T.default_args(CFG),
    tags=["newswire", "maintenance"],
    doc_md=__doc__,
)
def news_maintenance() -> None:
    @task
    def feed_health() -> dict[str, Any]:
        """Feed health report (see the DAG doc)."""
        return T.feed_health_report(None, store_url=T.airflow_store(CFG.es_conn_id))

    @task(retries=0)
    def check_feeds() -> dict[str, Any]:
        """Every configured feed still fetches and parses; fails listing the ones that do not."""
        report = T.check_feeds(None)
        if report["failed"]:
            lines = "\n".join(f"{f['url']}: {f['error']}" for f in report["failed"])
            raise RuntimeError(f"{len(report['failed'])} feeds do not parse:\n{lines}")
        return report

    @task
    def cleanup_staging() -> dict[str, Any]:
        """Delete staging runs past the retention period."""
        return T.cleanup_staging(CFG.staging_retention_days, T.airflow_staging())

    @task(pool=CFG.index_pool)
    def index_housekeeping() -> dict[str, Any]:
        """Template/aliases and monthly index retention."""
        return T.index_housekeeping(T.airflow_store(CFG.es_conn_id), CFG.index_retention_months)

    feed_health()
    check_feeds()
    cleanup_staging()
    index_housekeeping()


news_maintenance()
