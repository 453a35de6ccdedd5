"""Clean and tag in worker processes (pipeline.workers): the same records out as in one process, in the same
order, and nothing lost when a worker dies. Gazetteer-only tagging (the spaCy path is the same code)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline import workers
from pipeline.settings import get_settings


@pytest.fixture
def gazetteer_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import pipeline.tag.tagger

    monkeypatch.setenv("NEWSWIRE_SPACY_MODEL", "")
    monkeypatch.setattr(pipeline.tag.tagger, "_TAGGER", None)  # this process's tagger: gazetteer only too
    get_settings.cache_clear()
    workers.shutdown()  # workers start with this environment
    yield
    workers.shutdown()
    get_settings.cache_clear()


def _records(n: int) -> list[dict[str, Any]]:
    towns = ["Raqqa", "Mosul", "Kano", "Goma", "Lviv", "Cox's Bazar", "Tripoli", "Kharkiv"]
    out = []
    for i in range(n):
        town = towns[i % len(towns)]
        html = (
            f"<p>Officials in {town} said on Tuesday that aid convoy {i} had reached the city.</p>"
            f"<p>The United Nations said the road from {town} stayed open overnight.</p>"
        )
        out.append(
            {"id": f"r{i}", "url": f"http://127.0.0.1/story/{i}", "title": f"Convoy {i}", "html": html}
        )
    out.insert(5, {"id": "broken", "url": "http://127.0.0.1/broken", "title": "no body"})  # clean fails
    return out


def _strip(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["id"],
            r.get("text"),
            r.get("error"),
            [a["id"] for a in r.get("actors", [])],
            [p["id"] for p in r.get("locations", [])],
        )
        for r in records
    ]


def test_workers_give_the_records_one_process_gives(gazetteer_only: None) -> None:
    records = _records(70)
    here = workers.clean_and_tag(records, workers=1)
    pooled = workers.clean_and_tag(records, workers=2)
    assert len(pooled) == len(records)
    assert _strip(pooled) == _strip(here)
    assert [r["id"] for r in pooled] == [r["id"] for r in records]
    broken = next(r for r in pooled if r["id"] == "broken")
    assert broken["error"].startswith("clean:")
    assert "actors" not in broken
    assert any("geonames:" in p["id"] for r in pooled for p in r.get("locations", []))
    assert workers._POOL is not None
    assert len(workers._POOL._processes) == 2


def test_a_killed_worker_loses_no_record(gazetteer_only: None, caplog: pytest.LogCaptureFixture) -> None:
    records = _records(40)
    expected = _strip(workers.clean_and_tag(records, workers=1))
    workers.clean_and_tag(records[:4], workers=2)  # start the pool
    assert workers._POOL is not None
    for pid in list(workers._POOL._processes):
        os.kill(pid, signal.SIGKILL)
    with caplog.at_level("WARNING", logger="pipeline.workers"):
        got = workers.clean_and_tag(records, workers=2)
    assert _strip(got) == expected
    assert "worker pool broke" in caplog.text
    # the next call starts a new pool and uses it
    assert _strip(workers.clean_and_tag(records, workers=2)) == expected
    assert workers._POOL is not None
    assert all(p.is_alive() for p in workers._POOL._processes.values())


def test_workers_exit_when_their_run_is_killed(tmp_path: Any) -> None:
    import subprocess
    import sys
    import time

    script = (
        "import os, sys\n"
        "from pipeline import workers\n"
        "workers.clean_and_tag([{'id': 'a', 'html': '<p>Aid reached Goma.</p>'}] * 4, workers=2)\n"
        "print(' '.join(str(p) for p in workers._POOL._processes), flush=True)\n"
        "sys.stdin.read()\n"
    )
    env = dict(os.environ, NEWSWIRE_SPACY_MODEL="")
    run = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert run.stdout is not None
    pids = [int(p) for p in run.stdout.readline().split()]
    assert len(pids) == 2
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 30
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in pids if os.path.exists(f"/proc/{p}") and "Z" not in _state(p)]
    assert alive == []


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
