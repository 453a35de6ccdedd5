"""Load on a real ``newswire serve``: concurrent clients while an ingestion runs (issue 14).

The driver is :func:`bench.bench_load.run_load` (real server process, real ``newswire run
--once`` processes over loopback feeds, real stores). The short variant (20 clients, 10 s)
runs in the ordinary suite on SQLite and Elasticsearch; the 50-client, 60-second variant is
marked ``long``. Every request must succeed and ``/health`` must stay fast while searches
queue: p95 under 50 ms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.bench_load import run_load

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEALTH_P95_MS = 50.0


def check(result: dict[str, Any]) -> None:
    assert result["search"]["errors"] == 0, result["search"]["first_errors"]
    assert result["health"]["errors"] == 0, result["health"]["first_errors"]
    assert result["search"]["requests"] > 0
    assert result["health"]["requests"] > 0
    assert result["ingestion_runs"] >= 1
    assert result["ingestion_failures"] == []
    assert result["articles_added"] > 0, "the ingestion ran while the clients searched"
    assert result["health"]["p95_ms"] < HEALTH_P95_MS, result["health"]


@pytest.mark.parametrize(
    ("clients", "seconds"),
    [pytest.param(20, 10.0, id="20x10s"), pytest.param(50, 60.0, id="50x60s", marks=pytest.mark.long)],
)
def test_load_on_sqlite(tmp_path: Path, clients: int, seconds: float) -> None:
    check(run_load(f"sqlite:///{tmp_path / 'load.db'}", clients, seconds))


@pytest.mark.parametrize(
    ("clients", "seconds"),
    [pytest.param(20, 10.0, id="20x10s"), pytest.param(50, 60.0, id="50x60s", marks=pytest.mark.long)],
)
def test_load_on_elasticsearch(es_url: str, es_prefix: str, clients: int, seconds: float) -> None:
    check(run_load(es_url, clients, seconds, prefix=es_prefix))
