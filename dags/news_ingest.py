"""
### news_ingest — feeds to Elasticsearch, one group of feeds per mapped task

`plan` splits the feeds file (`NEWSWIRE_FEEDS_FILE`) into `NEWSWIRE_GROUPS` groups; each
group runs **fetch → process (clean, dedupe, tag) → index** as its own mapped task group,
so the grid shows which stage failed for which group, and a failing group never blocks
the others. `reconcile` then merges near-duplicate clusters that parallel groups split,
and `publish_stats` sums the counts and updates the `news_index` asset.

* Data between tasks: staging files under `NEWSWIRE_STAGING_DIR`
  (`runs/<run_id>/<stage>/<group>.jsonl`; local folder or `s3://`/`gs://` URL), never XCom
  (XCom carries staging keys and counts only).
* Feed errors are isolated inside the tasks: a broken feed is listed in the task log, in
  the `fetch`/`index` counts (`feed_errors`, `errors`) and in the feed's health
  (`newswire feeds status`); its group still succeeds.
* Idempotent: atomic staging writes, article-id keyed indexing, feed state committed after
  indexing. Clear any task or the whole run safely.
* Elasticsearch: Airflow connection `NEWSWIRE_ES_CONN_ID` (default `newswire_es`, type
  `elasticsearch`), else `NEWSWIRE_STORE`. Index tasks run in pool `NEWSWIRE_INDEX_POOL`.

All logic lives in `pipeline.tasks` (tested without Airflow); this file only wires it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from pipeline import tasks as T
from pipeline.settings import get_settings

CFG = get_settings()
NEWS_INDEX = Asset(name="news_index", uri="newswire://elasticsearch/news", group="newswire")


def _store() -> T.StoreAccess | None:
    return T.airflow_store(CFG.es_conn_id)


@dag(
    dag_id="news_ingest",
    schedule=T.schedule_value(CFG.schedule),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=CFG.task_timeout_minutes * 4),
    default_args=T.default_args(CFG),
    tags=["newswire", "ingest"],
    doc_md=__doc__,
)
def news_ingest() -> None:
    @task
    def plan() -> list[list[str]]:
        """Feeds file -> groups of feed URLs (a feed stays in its group across runs)."""
        return T.plan_groups(None, CFG.groups)

    @task
    def fetch(group: list[str]) -> dict[str, Any]:
        """Fetch + parse one group's feeds into staging; feed errors are recorded, not raised."""
        run_id = get_current_context()["run_id"]
        return T.fetch_group(group, run_id, T.airflow_staging(), store_url=_store())

    @task
    def process(fetched: dict[str, Any]) -> dict[str, Any]:
        """clean -> dedupe -> tag the group's staged entries."""
        return T.process_group(fetched["path"], T.airflow_staging(), store_url=_store())

    @task(pool=CFG.index_pool)
    def index(processed: dict[str, Any]) -> dict[str, Any]:
        """Index the group's articles, then commit its feeds' state."""
        return T.index_group(processed["path"], T.airflow_staging(), store_url=_store())

    @task_group
    def feeds(group: list[str]) -> Any:
        return index(process(fetch(group)))

    @task(trigger_rule="all_done")
    def reconcile(results: list[dict[str, Any] | None]) -> dict[str, int]:
        """Merge clusters that parallel groups split (over the groups that indexed)."""
        paths = [r["path"] for r in T.group_results(results) if r]
        return T.reconcile_run(paths, T.airflow_staging(), store_url=_store())

    @task(trigger_rule="all_done", outlets=[NEWS_INDEX], retries=0)
    def publish_stats(
        groups: list[list[str]] | None,
        results: list[dict[str, Any] | None] | None,
        reconciled: dict[str, int] | None,
    ) -> dict[str, Any]:
        """Sum the groups' counts into staging and the news_index asset event; fail if a group failed.

        Failing here (after publishing) keeps a run with a failed group red in the UI even
        though this final task runs whatever happened upstream.
        """
        context = get_current_context()
        stats = T.publish_stats(
            T.group_results(results),
            context["run_id"],
            T.airflow_staging(),
            expected_groups=len(groups or []),
        )
        stats["reconciled"] = reconciled
        context["outlet_events"][NEWS_INDEX].extra = {k: v for k, v in stats.items() if k != "errors"}
        if stats["failed_groups"] or reconciled is None:
            raise AirflowFailException(
                f"{stats['failed_groups']} of {len(groups or [])} feed groups failed"
                + ("; reconcile failed" if reconciled is None else "")
                + ": see their task logs"
            )
        return stats

    groups = plan()
    results = feeds.expand(group=groups)
    reconciled = reconcile(results)
    publish_stats(groups, results, reconciled)


news_ingest()
