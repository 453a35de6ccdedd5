"""Benchmarks: each ``bench_<name>.py`` prints its figures and writes them to ``bench/out/<name>.json``.

Run them from the repository root as modules (``python -m bench.bench_wire``; ``make bench`` runs them all);
tests import the shared evaluation code from here too (``from bench.bench_tag import linking_accuracy``).
"""
