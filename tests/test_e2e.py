"""End to end: sample feeds served on loopback -> `newswire run --once` -> `newswire search`.

The answer key is config/samples/EXPECTED.yaml (written with the sample feeds). The same
scenario runs on the embedded SQLite store and on the real Elasticsearch server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "config" / "samples"
EXPECTED = yaml.safe_load((SAMPLES / "EXPECTED.yaml").read_text())
RAQQA_IS = {a["id"] for a in EXPECTED["queries"]["islamic_state_and_raqqa"]}

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def served_feeds_file(server: FeedServer, tmp_path: Path, prefix: str) -> Path:
    """config/samples/feeds.yaml with each feed fetched over HTTP from the loopback server."""
    server.serve_dir(SAMPLES, prefix)
    config = yaml.safe_load((SAMPLES / "feeds.yaml").read_text())
    for feed in config["feeds"]:
        name = feed["url"].removeprefix("file:")
        feed["url"] = server.url(f"{prefix}/{name}")
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def search_ids(store: str, *args: str) -> tuple[set[str], dict[str, Any]]:
    code, stdout, stderr = cli("search", *args, "--store", store, "--json", "--all-copies", "--limit", "200")
    assert code == 0, stderr
    payload = json.loads(stdout)
    return {h["id"] for h in payload["hits"]}, payload


def test_run_twice_then_search_by_alias(
    feed_server: FeedServer, tmp_path: Path, store_url: str, unique_path: Any
) -> None:
    feeds = served_feeds_file(feed_server, tmp_path, unique_path("samples"))

    code, stdout, stderr = cli("run", "--once", "--feeds", str(feeds), "--store", store_url, "--json")
    assert code == 0, stderr
    first = json.loads(stdout)
    assert first["failed_feeds"] == 0
    assert first["new"] == EXPECTED["total_articles"]
    assert sum(f["duplicates"] for f in first["feeds"]) >= 3  # the syndicated copies

    code, stdout, stderr = cli("run", "--once", "--feeds", str(feeds), "--store", store_url, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["new"] == 0

    from pipeline.stores import open_store

    store = open_store(store_url)
    try:
        assert store.count() == EXPECTED["total_articles"]
    finally:
        store.close()

    # the queries: every alias spelling finds exactly the answer key's stories
    for actor, location in [
        ("Islamic State", "Raqqa"),
        ("ISIL", "Raqa"),
        ("Daesh", "Ar-Raqqah"),
        ("ISIS", "Raqqa"),
    ]:
        ids, _ = search_ids(store_url, "--actor", actor, "--location", location)
        assert ids == RAQQA_IS, (actor, location)

    # one hit per story by default, with the other outlets listed
    code, stdout, _ = cli("search", "--actor", "ISIL", "--location", "Raqa", "--store", store_url, "--json")
    collapsed = json.loads(stdout)
    wire = EXPECTED["clusters"]["raqqa-wire"]
    copies = {c["id"] for c in wire["near_copies"]}
    hit_ids = [h["id"] for h in collapsed["hits"]]
    assert wire["original"]["id"] in hit_ids
    assert not copies & set(hit_ids)
    original = next(h for h in collapsed["hits"] if h["id"] == wire["original"]["id"])
    assert copies <= {a["id"] for a in original["also_published_by"]}
    assert collapsed["facets"]["actors"]
    assert collapsed["facets"]["locations"]


def test_human_output_and_bad_input(feed_server: FeedServer, tmp_path: Path, unique_path: Any) -> None:
    feeds = served_feeds_file(feed_server, tmp_path, unique_path("samples"))
    broken = yaml.safe_load(feeds.read_text())
    broken["feeds"].append({"name": "Gone Missing", "url": feed_server.url(unique_path("missing.xml"))})
    feeds.write_text(yaml.safe_dump(broken))
    store = f"sqlite:///{tmp_path / 'h.db'}"

    code, stdout, stderr = cli("run", "--once", "--feeds", str(feeds), "--store", store)
    assert code == 1  # one feed failed, the others were ingested
    assert "Gone Missing" in stdout
    assert "total" in stdout
    assert "404" in stderr
    code, stdout, _ = cli("search", "--actor", "Islamic State", "--location", "Raqqa", "--store", store)
    assert code == 0
    assert "stories" in stdout

    code, _, stderr = cli("search", "--since", "next tuesday-ish", "--store", store)
    assert code == 2
    assert "--since" in stderr
    code, stdout, _ = cli("search", "--actor", "Nobody Atall Xyzzy", "--store", store, "--json")
    assert code == 0
    assert json.loads(stdout)["total"] == 0
    code, stdout, _ = cli("search", "--location", "Xyzzyville Qqq", "--store", store, "--json")
    assert code == 0
    assert json.loads(stdout)["total"] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "feeds:\n  - name: A\n    url: http://a.example/feed\n  - name: B\n    url: 42\n    colour: red\n"
    )
    code, _, stderr = cli("run", "--once", "--feeds", str(bad), "--store", store)
    assert code == 2
    assert "bad.yaml" in stderr
    assert ":6" in stderr.replace(" line ", ":")


@pytest.mark.slow
def test_filters_compose_over_json_lines(tmp_path: Path) -> None:
    """`newswire parse FILE | newswire clean | newswire dedupe | newswire tag` in real processes."""
    env = {**os.environ, "NEWSWIRE_STORE": f"sqlite:///{tmp_path / 'f.db'}"}

    def stage(args: list[str], data: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *args],
            input=data,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    parsed = stage(["parse", str(SAMPLES / "meridian-wire.atom.xml")], "")
    assert parsed.returncode == 0, parsed.stderr
    lines = parsed.stdout.splitlines()
    assert len(lines) == 9
    # a broken line in the middle comes back with an error, in place, and the exit code is 1
    data = "\n".join(lines[:4] + ["{not json"] + lines[4:]) + "\n"
    cleaned = stage(["clean"], data)
    assert cleaned.returncode == 1
    out = [json.loads(x) for x in cleaned.stdout.splitlines()]
    assert len(out) == 10
    assert "error" in out[4]
    assert all("text" in o for i, o in enumerate(out) if i != 4)
    good = "\n".join(json.dumps(o) for o in out if "error" not in o) + "\n"
    deduped = stage(["dedupe"], good)
    assert deduped.returncode == 0, deduped.stderr
    tagged = stage(["tag"], deduped.stdout)
    assert tagged.returncode == 0, tagged.stderr
    records = [json.loads(x) for x in tagged.stdout.splitlines()]
    assert [r["id"] for r in records] == [json.loads(x)["id"] for x in lines]
    assert all({"content_hash", "cluster_id", "actors", "locations"} <= r.keys() for r in records)
    raqqa = next(r for r in records if r["id"] == EXPECTED["clusters"]["raqqa-wire"]["original"]["id"])
    assert any(
        loc["name"].lower().endswith("raqqah") or "raqq" in loc["name"].lower() for loc in raqqa["locations"]
    )
    indexed = stage(["index"], tagged.stdout)
    assert indexed.returncode == 0, indexed.stderr
    assert "9 indexed" in indexed.stderr
