"""The baselines of bench/bench_e2e.py (issue 15): the plain user script stores one row per feed entry (no
dedupe), the extraction child counts pages and CPU, and each measured child's peak RSS is its own."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import extract_cpu, plain_script
from bench.bench_e2e import rss
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parent.parent

PARAGRAPH = (
    "The harbour authority of {town} said on Tuesday that the northern pier would stay closed for repairs "
    "until the end of the month, after a storm damaged the concrete supports and two cranes. Fishing crews "
    "were moved to the southern basin, where the mooring fees were waived for the weeks of the works."
)


def article(town: str) -> bytes:
    body = "".join(f"<p>{PARAGRAPH.format(town=town)} Paragraph {k}.</p>" for k in range(4))
    return (
        f"<html><head><title>Pier closed in {town}</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>Pier closed in {town}</h1>{body}</article><footer>Contact us</footer></body></html>"
    ).encode()


def test_plain_script_stores_one_row_per_entry_without_dedupe(
    feed_server: FeedServer, unique_path: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    towns = ["Aberdeen", "Bergen", "Cadiz"]
    links = [
        feed_server.add(unique_path(f"{t}.html"), article(t), content_type="text/html; charset=utf-8")
        for t in towns
    ]
    items = [
        {"title": f"Pier closed in {t}", "link": link, "guid": link, "date": "Mon, 02 Nov 2026 08:00:00 GMT"}
        | {"summary": "Pier closed."}
        for t, link in zip(towns, links, strict=True)
    ]
    feeds = [
        feed_server.add(unique_path("a.xml"), rss("a", items[:2])),
        feed_server.add(unique_path("b.xml"), rss("b", items[1:])),  # Bergen in both feeds: stored twice
    ]
    db = tmp_path / "plain.db"
    assert plain_script.main(["--feeds", *feeds, "--db", str(db), "--spacy-model", ""]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["entries"] == 4
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT url, title, text, entities FROM articles").fetchall()
    conn.close()
    assert sorted(r[0] for r in rows) == sorted([links[0], links[1], links[1], links[2]])
    for url, title, text, entities in rows:
        town = towns[links.index(url)]
        assert title == f"Pier closed in {town}"
        assert f"The harbour authority of {town} said" in text
        assert "Contact us" not in text
        assert json.loads(entities) == []


def test_extract_cpu_counts_pages_and_cpu(tmp_path: Path) -> None:
    for town in ("Aberdeen", "Bergen"):
        (tmp_path / f"{town}.html").write_bytes(article(town))
    (tmp_path / "notes.txt").write_text("not a page")
    extract = extract_cpu.extractor("newswire")
    pages = extract_cpu.read_pages(tmp_path)
    assert len(pages) == 2
    assert "The harbour authority of Aberdeen said" in extract(*pages[0])


def test_measure_child_peak_rss_is_each_childs_own() -> None:
    """Measured from a small parent, as the bench is: Linux keeps a child's ``ru_maxrss`` across the
    fork and exec, so a child of this (large) test process would start at the test process's size."""
    code = (
        "import json, sys\n"
        "from bench.bench_e2e import measure_child\n"
        "big = measure_child([sys.executable, '-c', "
        "\"b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])\"], {})\n"
        "small = measure_child([sys.executable, '-c', \"print('ok')\"], {})\n"
        "print(json.dumps([big['exit_code'], small['exit_code'], small['stdout'].strip(), "
        "big['peak_rss_mb'], small['peak_rss_mb']]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    big_code, small_code, said, big_mb, small_mb = json.loads(done.stdout.strip().splitlines()[-1])
    assert (big_code, small_code, said) == (0, 0, "ok"), done.stderr
    assert big_mb > 300
    assert small_mb < 100  # not the 300 MB of the child before it
