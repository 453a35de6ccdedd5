"""The gazetteer's memory and load time in this process (issue 15); prints figures, it is not a test.

Usage: ``NEWSWIRE_CACHE_DIR=... python -m bench.gazetteer_memory [--parts]``. Loads the gazetteer from the
cache (run a tagger once first: a cold build is refused), then prints the load time, the resident memory it
holds over the imports after ``gc.collect()`` and glibc's ``malloc_trim(0)`` (freed arenas go back to the
system), and the process's peak (VmHWM) during the load, with how far the load peaks over the steady state.
``--parts`` also drops ``prefixes``, ``names`` and ``entities`` one by one and prints what each gave back (a
string shared by two parts is counted with the last one dropped).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import time


def status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, MB."""
    out: dict[str, float] = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def trim() -> None:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--parts", action="store_true", help="also what each part gives back when dropped")
    args = ap.parse_args()
    from pipeline.settings import get_settings
    from pipeline.tag import gazetteer

    settings = get_settings()
    trim()
    before = status()
    t0 = time.perf_counter()
    gaz = gazetteer.load_gazetteer(settings.actors_file, settings.cache_dir / "tag")
    seconds = time.perf_counter() - t0
    if not gaz.from_cache:
        raise SystemExit("the gazetteer was built, not loaded from the cache: run again")
    peak = status()["VmHWM"]
    trim()
    after = status()["VmRSS"]
    print(
        f"load {seconds:.2f} s; resident {after:.0f} MB, {after - before['VmRSS']:.0f} MB over the imports; "
        f"peak {peak:.0f} MB, {peak - after:.0f} MB over the steady state"
    )
    if args.parts:
        for part in ("prefixes", "names", "entities"):
            r0 = status()["VmRSS"]
            setattr(gaz, part, None)
            trim()
            print(f"  {part}: {r0 - status()['VmRSS']:.0f} MB")


if __name__ == "__main__":
    main()
