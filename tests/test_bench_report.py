"""bench/figures.py writes runs as JSON with their date, machine and command; bench/report.py turns
whatever JSON files exist into docs tables and keeps the hand-written text around them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.figures import BenchRecord, add_json_out
from bench.report import BEGIN, END, main, render


def test_record_keeps_history_newest_first_with_machine_and_command(tmp_path: Path) -> None:
    out = tmp_path / "out" / "bench_x.json"
    first = BenchRecord("bench_x", ["bench/bench_x.py", "--docs", "10"])
    first.figure("rate", 12.5, "docs/s", target=">= 10")
    first.write(out)
    second = BenchRecord("bench_x", ["bench/bench_x.py"])
    second.table("t", ["a", "b"], [[1, 2]])
    second.write(out)
    runs = json.loads(out.read_text())
    assert [r["command"] for r in runs] == ["python -m bench.bench_x", "python -m bench.bench_x --docs 10"]
    assert runs[1]["figures"] == [{"name": "rate", "value": 12.5, "unit": "docs/s", "target": ">= 10"}]
    assert runs[0]["machine"]["nproc"] >= 1
    assert runs[0]["machine"]["cpu"]
    assert runs[0]["date"] >= runs[1]["date"]
    assert second.write("") is None


def test_json_out_default_and_empty() -> None:
    ap = argparse.ArgumentParser()
    add_json_out(ap, "bench_y")
    assert ap.parse_args([]).json_out.endswith("bench/out/bench_y.json")
    assert ap.parse_args(["--json-out", ""]).json_out == ""


def test_report_renders_any_shape_and_keeps_hand_written_text(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    rec = BenchRecord("bench_a", ["bench/bench_a.py"])
    rec.figure("p95", 31.25, "ms", target="< 50")
    rec.table("latency", ["query", "p50"], [["text|actor", 1234.0]])
    rec.write(out / "bench_a.json")
    (out / "bench_b.json").write_text(json.dumps([{"name": "throughput", "value": 104, "unit": "art/s"}]))
    (out / "bench_c.json").write_text(json.dumps({"set": "dev", "systems": [{"f1": 0.5}]}))
    (out / "broken.json").write_text("{not json")
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        f"# Benchmarks\n\nintro by hand\n\n{BEGIN}\nold table\n{END}\n\n## History\n\nkept by hand\n"
    )
    assert main(["--out-dir", str(out), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "intro by hand" in text
    assert "kept by hand" in text
    assert "old table" not in text
    assert "| p95 | 31.25 | ms | < 50 |" in text
    assert "| text\\|actor | 1,234 |" in text  # a pipe in a cell is escaped, big floats grouped
    assert "| throughput | 104 | art/s |" in text
    assert "| systems[0].f1 | 0.5 |" in text
    assert "`python -m bench.bench_a`" in text
    assert "| bench_a | p95 | 31.25 ms | < 50 |" in text  # summary of figures with a target
    assert "broken" not in text


def test_report_without_files_says_so(tmp_path: Path) -> None:
    lines = render(tmp_path)
    assert lines[0] == BEGIN
    assert lines[-1] == END
    assert any("No figures yet" in line for line in lines)
