"""Clean and tag in worker processes (pipeline.workers): the same records out as in one process, in the same
order, with a clean worker (workers=1) or full workers (2), and nothing lost when a worker dies.
Gazetteer-only tagging (the spaCy path is the same code)."""

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


def _pool_size(kind: str) -> int:
    pool, _ = workers._POOLS[kind]
    return len(pool._processes or {})


@pytest.mark.parametrize("n", [1, 2])
def test_workers_give_the_records_one_process_gives(gazetteer_only: None, n: int) -> None:
    records = _records(70)
    here = workers.clean_and_tag(records, workers=0)
    assert workers._POOLS == {}  # 0: no process started
    preparing = workers.start(records, workers=n)  # returns before the work is done
    pooled = preparing.result()
    assert len(pooled) == len(records)
    assert _strip(pooled) == _strip(here)
    assert [r["id"] for r in pooled] == [r["id"] for r in records]
    broken = next(r for r in pooled if r["id"] == "broken")
    assert broken["error"].startswith("clean:")
    assert "actors" not in broken
    assert any("geonames:" in p["id"] for r in pooled for p in r.get("locations", []))
    kind = "clean" if n == 1 else "full"
    assert list(workers._POOLS) == [kind]
    assert _pool_size(kind) == n
    assert len(workers.pool_pids()) == n


def test_this_process_cleans_the_chunks_the_worker_has_not_started(gazetteer_only: None) -> None:
    records = _records(300)  # 10 chunks; the fresh worker needs a second to start: this process takes some
    here = workers.clean_and_tag(records, workers=0)
    preparing = workers.start(records, workers=1)
    chunks = len(preparing._chunks)
    pooled = preparing.result()
    assert 1 <= preparing.taken <= chunks - 1  # never the chunks a worker already holds
    assert _strip(pooled) == _strip(here)
    assert [r["id"] for r in pooled] == [r["id"] for r in records]
    assert all("html" not in r for r in pooled)
    full = workers.start(records, workers=2)  # full workers: taking one would load a tagger here
    assert _strip(full.result()) == _strip(here)
    assert full.taken == 0


def test_waiting_for_a_batch_this_process_cleans_the_next_batch_first(gazetteer_only: None) -> None:
    first, second = _records(300), [{**r, "id": f"{r['id']}-b"} for r in _records(300)]
    expected = [_strip(workers.clean_and_tag(batch, workers=0)) for batch in (first, second)]
    workers.shutdown()  # a fresh worker: it starts while this process already waits
    a = workers.start(first, workers=1)
    b = workers.start(second, workers=1)  # the run starts the next batch before it collects one
    got_a = a.result()
    assert b.taken >= 1  # taken back from the newest batch while waiting for the first
    got_b = b.result()
    assert [_strip(got_a), _strip(got_b)] == expected
    assert workers._WAITING == []  # both collected: nothing left to take back from


def test_a_clean_worker_never_loads_the_tagger(gazetteer_only: None, tmp_path: Any) -> None:
    """workers=1: the worker cleans only (no gazetteer, no spaCy: its memory stays small)."""
    workers.clean_and_tag(_records(4), workers=1)
    pool, _ = workers._POOLS["clean"]
    loaded = pool.submit(_loaded_modules).result()
    assert "pipeline.clean" in loaded
    assert not {"spacy", "pipeline.tag.gazetteer", "pipeline.tag.tagger"} & loaded


def _loaded_modules() -> set[str]:
    import sys

    return set(sys.modules)


@pytest.mark.parametrize("n", [1, 2])
def test_a_killed_worker_loses_no_record(
    gazetteer_only: None, caplog: pytest.LogCaptureFixture, n: int
) -> None:
    records = _records(40)
    expected = _strip(workers.clean_and_tag(records, workers=0))
    workers.clean_and_tag(records[:4], workers=n)  # start the pool
    for pid in workers.pool_pids():
        os.kill(pid, signal.SIGKILL)
    with caplog.at_level("WARNING", logger="pipeline.workers"):
        got = workers.clean_and_tag(records, workers=n)
    assert _strip(got) == expected
    assert "worker pool broke" in caplog.text
    # the next call starts a new pool and uses it
    assert _strip(workers.clean_and_tag(records, workers=n)) == expected
    assert len(workers.pool_pids()) == n
    pool, _ = next(iter(workers._POOLS.values()))
    assert all(p.is_alive() for p in pool._processes.values())


def test_workers_exit_when_their_run_is_killed(tmp_path: Any) -> None:
    import subprocess
    import sys
    import time

    script = (
        "import os, sys\n"
        "from pipeline import workers\n"
        "workers.clean_and_tag([{'id': 'a', 'html': '<p>Aid reached Goma.</p>'}] * 4, workers=2)\n"
        "print(' '.join(str(p) for p in workers.pool_pids()), flush=True)\n"
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


def _run_script(folder: Any, text: str) -> Any:
    """Run ``text`` as a script file (its own ``__main__``, gazetteer-only), to its end; it must exit 0."""
    import subprocess
    import sys

    script = folder / "script.py"
    script.write_text(text)
    env = dict(os.environ, NEWSWIRE_SPACY_MODEL="", PYTHONPATH=os.getcwd())
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300, cwd=folder
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_a_script_without_the_main_guard_still_gets_every_record(tmp_path: Any) -> None:
    """The default (one clean worker) in a script that lacks ``if __name__ == "__main__":``: the worker
    cannot start (it would re-run the script), so after one warning everything runs in the script's own
    process, every record tagged, and no further worker is tried."""
    done = _run_script(
        tmp_path,
        "from pipeline import workers\n"
        "html = '<p>Aid convoy {} reached Goma on Monday.</p>'\n"
        "records = [{'id': str(i), 'html': html.format(i)} for i in range(70)]\n"
        "for _ in range(3):\n"
        "    out = workers.clean_and_tag(records, workers=1)\n"
        "    print(sum(1 for r in out if r.get('locations')), flush=True)\n",
    )
    assert done.stdout.split() == ["70", "70", "70"]
    assert done.stderr.count("worker processes could not start") == 1


def test_a_daemon_process_cleans_and_tags_itself(tmp_path: Any) -> None:
    """Daemon processes (a multiprocessing pool's, some task runners') may not start children: the default
    clean worker is then skipped with one warning and the records are still cleaned and tagged."""
    done = _run_script(
        tmp_path,
        "import multiprocessing as mp\n"
        "def child():\n"
        "    from pipeline import workers\n"
        "    records = [{'id': str(i), 'html': '<p>Aid reached Goma on Monday.</p>'} for i in range(40)]\n"
        "    out = workers.clean_and_tag(records, workers=1)\n"
        "    print(len(out), sum(1 for r in out if r.get('locations')), flush=True)\n"
        "if __name__ == '__main__':\n"
        "    p = mp.get_context('fork').Process(target=child, daemon=True)\n"
        "    p.start()\n"
        "    p.join()\n"
        "    raise SystemExit(p.exitcode)\n",
    )
    assert done.stdout.split() == ["40", "40"]
    assert "daemonic processes are not allowed to have children" in done.stderr
    assert done.stderr.count("worker processes could not start") == 1


@pytest.mark.parametrize("n", [0, 1])
def test_pages_travel_as_utf8_and_do_not_come_back(gazetteer_only: None, n: int) -> None:
    """The batch held while a worker cleans keeps pages as UTF-8 bytes; every character survives (Cyrillic,
    Arabic, an emoji outside the BMP) and the cleaned record no longer carries the page."""
    page = (
        "<!DOCTYPE html><html><head><title>Київ — كييف</title></head><body><article>"
        "<h1>Київ — كييف</h1><p>Volunteers in Київ handed out blankets on Sunday 🧣 as the frost set in, "
        "the city council said in a statement.</p><p>Shelters near the river stayed open all night for "
        "families from the eastern districts, officials said.</p></article></body></html>"
    )
    records = [{"id": "k", "url": "http://127.0.0.1/kyiv", "html": page}]
    got = workers.start(records, workers=n).result()
    assert "html" not in got[0]
    assert "Київ handed out blankets on Sunday 🧣" in got[0]["text"]
    assert records[0]["html"] == page  # the caller's record is not changed
