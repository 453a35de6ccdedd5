"""``news_ingest`` under Airflow's CeleryExecutor: two workers, one killed mid-run (issue 14).

Real parts only: Debian's ``redis-server`` as the broker (a free loopback port, no disk),
Airflow's api-server, scheduler and dag-processor, two ``airflow celery worker`` processes
(concurrency 2, prefetch 1), real Elasticsearch (the session server) and the sample feeds over
loopback HTTP. The run is triggered through the REST API; as soon as the second worker has
received a task it is SIGKILLed with its children. Celery redelivers what it held (acks late,
visibility timeout 20 s), the scheduler fails what it was running once its heartbeat stops
(timeout 20 s) and the task retries on the other worker: the run succeeds and every sample
article is stored once. ``airflow standalone`` cannot be used: it forces the LocalExecutor.

Needs ``redis-server`` on PATH and ``apache-airflow-providers-celery`` (the ``airflow``
extra); skipped without them outside CI.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_dags_airflow import (  # sets AIRFLOW_HOME before Airflow is first imported
    _es_docs,
    _expected,
    _feeds_file,
    _free_port,
    _http,
    _stop_group,
    server_env,
)

try:
    import airflow.providers.celery  # noqa: F401  (the CeleryExecutor's provider)
except ImportError:  # pragma: no cover - depends on the install
    if os.environ.get("CI") == "true":  # in CI a missing part is a failure, never a skip
        raise
    pytest.skip("apache-airflow-providers-celery is not installed", allow_module_level=True)

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.long]


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(
    what: str, check: Any, timeout: float, procs: dict[str, subprocess.Popen[bytes]], logs: Path
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited ({proc.returncode}) while waiting for {what}:\n"
                    + (logs / f"{name}.log").read_text(errors="replace")[-4000:]
                )
        value = check()
        if value:
            return value
        time.sleep(1)
    tails = "\n".join(
        f"--- {p.name}\n" + p.read_text(errors="replace")[-2500:] for p in sorted(logs.glob("*.log"))
    )
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}:\n{tails}")


def _received(log: Path) -> int:
    """Tasks a worker was handed (Celery logs ``Task execute_workload[...] received``)."""
    return log.read_text(errors="replace").count("] received") if log.exists() else 0


def _in_flight(log: Path) -> int:
    """Tasks a worker was handed and has not finished (``succeeded in`` / ``raised``)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return text.count("] received") - text.count("] succeeded in") - text.count("] raised")


def test_news_ingest_on_two_celery_workers_survives_killing_one(
    es_url: str, es_prefix: str, feed_server: Any, unique_path: Any, tmp_path: Path
) -> None:
    redis = shutil.which("redis-server")
    if redis is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    feeds_file = _feeds_file(tmp_path, feed_server, unique_path("celery"))
    logs = tmp_path / "logs"
    logs.mkdir()
    redis_port, api_port = _free_port(), _free_port()
    env = server_env(tmp_path, tmp_path / "airflow-home", api_port, es_url, es_prefix, feeds_file) | {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{redis_port}/1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
        "NEWSWIRE_GROUPS": "4",
        "NEWSWIRE_TASK_RETRIES": "3",
        "NEWSWIRE_RETRY_DELAY_SECONDS": "2",
    }
    if "NEWSWIRE_SPACY_MODEL" in os.environ:
        env["NEWSWIRE_SPACY_MODEL"] = os.environ["NEWSWIRE_SPACY_MODEL"]
    airflow = [sys.executable, "-m", "airflow"]
    migrate = subprocess.run(
        [*airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["redis"] = _start(
            [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            env,
            logs / "redis.log",
        )
        procs["api-server"] = _start([*airflow, "api-server"], env, logs / "api-server.log")
        procs["scheduler"] = _start([*airflow, "scheduler"], env, logs / "scheduler.log")
        procs["dag-processor"] = _start([*airflow, "dag-processor"], env, logs / "dag-processor.log")
        for k in (1, 2):
            worker_env = env | {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port())}
            procs[f"worker{k}"] = _start(
                [*airflow, "celery", "worker", "--celery-hostname", f"w{k}@newswire", "--concurrency", "2"],
                worker_env,
                logs / f"worker{k}.log",
            )
        api = f"http://127.0.0.1:{api_port}/api/v2"
        _wait("the api-server", lambda: _http("GET", f"{api}/version")[0] == 200, 300, procs, logs)
        status, body = _http(
            "POST", f"{api}/pools", {"name": "newswire_es", "slots": 2, "description": "bounds ES writes"}
        )
        assert status in (200, 201), body
        _wait(
            "news_ingest to be parsed",
            lambda: _http("GET", f"{api}/dags/news_ingest")[0] == 200,
            300,
            procs,
            logs,
        )
        status, run = _http("POST", f"{api}/dags/news_ingest/dagRuns", {"logical_date": None})
        assert status in (200, 201), run
        run_id = run["dag_run_id"]

        def spread_and_busy() -> bool:  # both took tasks, and worker2 is running one right now
            w1, w2 = logs / "worker1.log", logs / "worker2.log"
            return _received(w1) >= 1 and _received(w2) >= 1 and _in_flight(w2) >= 1

        _wait("both workers to take tasks, worker2 busy", spread_and_busy, 600, procs, logs)
        received_before_kill = _received(logs / "worker2.log")
        received_by_w1 = _received(logs / "worker1.log")
        victim = procs.pop("worker2")
        os.killpg(victim.pid, signal.SIGKILL)  # the worker and the task processes it runs
        victim.wait(30)

        def finished() -> str | None:
            code, body = _http("GET", f"{api}/dags/news_ingest/dagRuns/{run_id}")
            state = body.get("state") if code == 200 and isinstance(body, dict) else None
            return state if state in ("success", "failed") else None

        state = _wait("the run to finish", finished, 900, procs, logs)
        _, tis = _http("GET", f"{api}/dags/news_ingest/dagRuns/{run_id}/taskInstances")
        summary = sorted(
            (t["task_id"], t["map_index"], t["state"], t["try_number"]) for t in tis["task_instances"]
        )
        assert state == "success", summary
        assert max(t[3] for t in summary) >= 2, "the task killed with worker2 ran again"
        print(
            f"\nbefore the kill: worker1 took {received_by_w1} tasks, worker2 {received_before_kill}; "
            f"worker1 took {_received(logs / 'worker1.log')} in all; task instances: {summary}"
        )
    finally:
        for proc in procs.values():
            _stop_group(proc)
    docs = _es_docs(es_url, es_prefix)
    assert len(docs) == len({d["id"] for d in docs}) == _expected()["total_articles"]
