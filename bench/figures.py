"""Benchmark figures as JSON files: what a bench prints, with its date, machine and command.

Every ``bench/bench_*.py`` takes ``--json-out PATH`` (default ``bench/out/<name>.json``;
``--json-out ''`` writes nothing) and, besides printing its figures, writes them through
:class:`BenchRecord`. A file keeps the last ``HISTORY`` runs, newest first (a list of records).
``bench/report.py`` turns every ``bench/out/*.json`` into the tables of
``docs/benchmarks.md``, so a number in the docs always has a command and a date behind it.

Record shape (every key but ``bench`` optional for readers)::

    [{"bench": "bench_es", "date": "2026-12-06T10:12:00+00:00",
     "command": "python -m bench.bench_es --docs 100000",
     "machine": {"nproc": 2, "ram_gb": 23.4, "cpu": "...", "load": [1.2, 1.5, 1.9]},
     "figures": [{"name": "bulk indexing", "value": 3883, "unit": "docs/s", "target": "3,000"}],
     "tables": [{"title": "...", "columns": ["run", "docs/s"], "rows": [["fresh", 3266]]}],
     "notes": ["free text printed under the tables"]}, ...older runs]

``figures`` are single numbers (``name``, ``value``, ``unit``, plus any extra keys such as
``target`` or ``note``); ``tables`` are what the bench prints as tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "out"
HISTORY = 10  # runs kept per file, newest first


def add_json_out(parser: argparse.ArgumentParser, name: str) -> None:
    """Add ``--json-out`` (default ``bench/out/<name>.json``; empty string: no file)."""
    parser.add_argument(
        "--json-out",
        default=str(OUT_DIR / f"{name}.json"),
        help=f"write the figures as JSON here (default bench/out/{name}.json; '' for none)",
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """The machine a figure was measured on: cores, RAM, CPU model, Python, load average."""
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {
        "nproc": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "load": load,
    }


def command_line(argv: list[str] | None = None) -> str:
    """The command that produced the figures, as a person would type it again."""
    args = sys.argv if argv is None else argv
    script = _relative(args[0])
    if script.startswith("bench/") and script.endswith(".py"):  # benches run as modules (bench/__init__.py)
        script = "-m bench." + script[len("bench/") : -len(".py")]
    return "python " + " ".join([script, *(shlex.quote(a) for a in args[1:])])


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        return path


def previous_runs(path: Path) -> list[dict[str, Any]]:
    """The runs already recorded in ``path`` (a record or a list of records); none if unreadable."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    runs = old if isinstance(old, list) else [old]
    return [r for r in runs if isinstance(r, dict) and ("figures" in r or "tables" in r)]


class BenchRecord:
    """Collects one bench run's figures and tables and writes them as JSON."""

    def __init__(self, bench: str, argv: list[str] | None = None) -> None:
        self.data: dict[str, Any] = {
            "bench": bench,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command_line(argv),
            "machine": machine(),
            "figures": [],
            "tables": [],
            "notes": [],
        }

    def figure(self, name: str, value: float | int | str | None, unit: str = "", **extra: Any) -> None:
        """One number (``extra``: e.g. ``target="< 50 ms"``, ``note=...``)."""
        self.data["figures"].append({"name": name, "value": value, "unit": unit, **extra})

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        """One table, as printed."""
        self.data["tables"].append(
            {"title": title, "columns": list(columns), "rows": [list(r) for r in rows]}
        )

    def note(self, text: str) -> None:
        self.data["notes"].append(text)

    def write(self, path: str | os.PathLike[str] | None) -> Path | None:
        """Add this run to the JSON file (parents created), newest first, keeping the last
        ``HISTORY`` runs already there; ``None`` or ``''`` writes nothing."""
        if not path:
            return None
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.data["machine"]["load_end"] = (
            [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
        )
        runs = [self.data, *previous_runs(target)][:HISTORY]
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(runs, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(target)
        print(f"figures written to {target}", file=sys.stderr)
        return target
