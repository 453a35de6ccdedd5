"""Benchmark: type-ahead latency of ``/suggest`` without HTTP (pipeline.suggest over the real gazetteer).

Prints p50 / p95 / worst milliseconds per call over prefixes of 1-7 letters, for both kinds, after the index
is built (its build time is printed too). Target (issue 13): every suggestion < 20 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.figures import BenchRecord, add_json_out

PREFIXES = ("a", "s", "m", "ka", "al", "new", "san", "Raq", "Islamic", "x", "Bei", "Kinsh", "Hezb", "Mosc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="times each prefix is asked")
    add_json_out(parser, "bench_suggest")
    args = parser.parse_args(argv)
    from pipeline.settings import get_settings
    from pipeline.suggest import Suggester
    from pipeline.tag.gazetteer import CITY_MIN_POPULATION, load_gazetteer

    settings = get_settings()
    t0 = time.perf_counter()
    suggester = Suggester(
        load_gazetteer(settings.actors_file, settings.cache_dir / "tag", CITY_MIN_POPULATION)
    )
    suggester.suggest("location", "a")  # builds the index
    build = time.perf_counter() - t0
    times: list[float] = []
    for _ in range(args.rounds):
        for prefix in PREFIXES:
            for kind in ("location", "actor"):
                start = time.perf_counter()
                suggester.suggest(kind, prefix)
                times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p50, p95, worst = statistics.median(times), times[int(0.95 * (len(times) - 1))], times[-1]
    print(f"index load + build: {build:.2f} s; {len(times)} suggestions")
    print(f"p50 {p50:.2f} ms, p95 {p95:.2f} ms, worst {worst:.2f} ms (target < 20 ms)")
    record = BenchRecord("bench_suggest", argv)
    record.figure("suggest p50", round(p50, 2), "ms")
    record.figure("suggest p95", round(p95, 2), "ms", target="< 20 ms")
    record.figure("suggest worst", round(worst, 2), "ms")
    record.figure("load and index build", round(build, 2), "s")
    record.write(args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
