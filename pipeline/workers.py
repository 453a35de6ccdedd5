"""Worker processes for the CPU-bound stages: clean, then tag.

Contract: :func:`clean_and_tag` returns one record per record in, in the same order, each cleaned and,
when cleaning succeeded, tagged: exactly what ``clean_records`` then ``Tagger.tag_records`` give in this
process. Neither stage reads the store or another record, so they can run anywhere; dedupe, which reads
the store, stays with the caller (:func:`pipeline.run.process`).

With ``workers`` <= 1 everything runs in this process. With more, records go in chunks to a pool of that
many worker processes started from a clean ``forkserver`` (never a fork of a process that runs fetch
threads); each worker builds its tagger once, from the same settings (environment) as this process, and
keeps it for the life of the pool, which lasts until the interpreter exits. A pool that breaks (a worker
killed, out of memory) is logged and replaced, and the chunks it lost run in this process: no record is
lost or processed twice. Workers exit within a second of this process dying, however it dies (SIGKILL
included): each watches its owner's pid.
"""

from __future__ import annotations

import atexit
import logging
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pipeline.clean import clean_records

log = logging.getLogger(__name__)

Record = dict[str, Any]

#: Records per task sent to a worker: large enough to batch spaCy, small enough to balance the workers.
CHUNK = 32

_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def clean_and_tag_here(records: Iterable[Record]) -> list[Record]:
    """Clean then tag ``records`` in this process (what each worker runs on its chunk)."""
    from pipeline.tag import get_tagger

    cleaned = list(clean_records(records))
    tagged = iter(get_tagger().tag_records(r for r in cleaned if not r.get("error")))
    return [r if r.get("error") else next(tagged) for r in cleaned]


def _watch_owner(owner: int) -> None:
    """Worker initializer: exit as soon as the process that owns the pool is gone (a killed run must not
    leave workers holding a tagger's memory; the pool's own pipes do not tell them)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # pragma: no cover - the pid now belongs to another user's process
                os._exit(0)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def _pool(workers: int) -> ProcessPoolExecutor:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or workers != _POOL_SIZE:
            if _POOL is not None:
                _POOL.shutdown(cancel_futures=True)
            _POOL = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_watch_owner,
                initargs=(os.getpid(),),
            )
            _POOL_SIZE = workers
        return _POOL


def shutdown() -> None:
    """Stop the worker processes (also done at interpreter exit)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(cancel_futures=True)
            _POOL = None


atexit.register(shutdown)


def clean_and_tag(records: Iterable[Record], workers: int = 1) -> list[Record]:
    """Clean then tag ``records`` with ``workers`` processes (see the module docstring)."""
    batch = list(records)
    if workers <= 1 or len(batch) <= 1:
        return clean_and_tag_here(batch)
    size = max(1, min(CHUNK, math.ceil(len(batch) / workers)))
    chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
    pool = _pool(workers)
    try:
        futures = [pool.submit(clean_and_tag_here, chunk) for chunk in chunks]
    except BrokenProcessPool as exc:
        return _here_after(exc, batch)
    out: list[Record] = []
    for chunk, future in zip(chunks, futures, strict=True):
        try:
            out.extend(future.result())
        except BrokenProcessPool as exc:
            out.extend(_here_after(exc, chunk))
    return out


def _here_after(exc: BrokenProcessPool, records: list[Record]) -> list[Record]:
    """The pool broke: log it, drop it (the next call starts a new one) and process ``records`` here."""
    log.warning("worker pool broke (%s): %d records processed in the run's own process", exc, len(records))
    shutdown()
    return clean_and_tag_here(records)
