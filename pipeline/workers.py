"""Where the CPU-bound stages run: clean, then tag, in this process or in worker processes.

Contract: :func:`start` takes a batch of records and returns at once a :class:`Preparing`, whose
:meth:`~Preparing.result` gives one record per record in, in the same order, each cleaned and, when
cleaning succeeded, tagged: exactly what ``clean_records`` then ``Tagger.tag_records`` give in one
process, less the page ``html`` (nothing after clean reads it; stores never keep it). The caller may
drop its own references to the records once started: the batch is held here, pages as UTF-8 bytes.
Neither stage reads the store or another record, so they can run anywhere and while the caller does
something else (the run fetches the next batch and indexes the previous one); dedupe, which reads
the store, stays with the caller (:func:`pipeline.run.process`). :func:`clean_and_tag` is start + result.

``workers`` (``NEWSWIRE_WORKERS``) says where:
- 0: everything in this process, when the result is asked for;
- 1 (default): cleaning in one worker process, which needs no tagger (~100 MB), tagging here as the
  cleaned records come back: extraction and tagging, the two largest costs of a run, use both cores;
  while this process waits for the worker it cleans the batch's chunks the worker has not started;
- N >= 2: clean and tag in N worker processes, each with its own tagger (its gazetteer and model: the
  memory of a run's tagger per worker).

Worker processes start from a clean ``forkserver`` (never a fork of a process that runs fetch threads),
build what they need once and live until the interpreter exits. A pool that breaks (a worker killed,
out of memory) is logged and replaced, and the chunks it lost run in this process: no record is lost
or processed twice. Workers exit within a second of this process dying, however it dies (SIGKILL
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
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pipeline.clean import clean_records

log = logging.getLogger(__name__)

Record = dict[str, Any]

#: Records per task sent to a worker: large enough to batch spaCy, small enough to balance the workers
#: and to let tagging here start while the worker cleans the next chunk.
CHUNK = 32

_POOLS: dict[str, tuple[ProcessPoolExecutor, int]] = {}  # "clean" or "full" -> (pool, its size)
_POOL_LOCK = threading.Lock()
_WORKED: set[str] = set()  # kinds of pool that have finished a task in this process
_UNUSABLE: set[str] = set()  # kinds whose first pool broke before finishing any: not tried again


def clean_here(records: Iterable[Record]) -> list[Record]:
    """Clean ``records`` in this process (what a clean worker runs on its chunk); the page ``html``
    may come as UTF-8 bytes (:func:`start` packs it so) and does not come back: once the text is
    extracted nothing reads it (stores never keep it), and a page weighs tens of times its text."""
    out = list(clean_records({**r, "html": r["html"].decode()} if _packed(r) else r for r in records))
    for record in out:
        record.pop("html", None)
    return out


def _packed(record: Record) -> bool:
    return isinstance(record.get("html"), bytes)


def _pack(record: Record) -> Record:
    """``record`` with its page as UTF-8 bytes: half the memory of a Python string of a page with any
    non-Latin-1 character (two or four bytes a character), for the batch held while a worker cleans it."""
    html = record.get("html")
    return {**record, "html": html.encode("utf-8", "surrogatepass")} if isinstance(html, str) else record


def tag_here(cleaned: list[Record]) -> list[Record]:
    """Tag the records of ``cleaned`` that cleaning did not fail, in this process; order kept."""
    from pipeline.tag import get_tagger

    tagged = iter(get_tagger().tag_records(r for r in cleaned if not r.get("error")))
    return [r if r.get("error") else next(tagged) for r in cleaned]


def clean_and_tag_here(records: Iterable[Record]) -> list[Record]:
    """Clean then tag ``records`` in this process (what a full worker runs on its chunk)."""
    return tag_here(clean_here(records))


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


def _pool(kind: str, size: int) -> ProcessPoolExecutor:
    """The pool of ``kind`` with ``size`` processes, started (or restarted at a new size) on demand."""
    with _POOL_LOCK:
        pool, running = _POOLS.get(kind, (None, 0))
        if pool is None or running != size:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            pool = ProcessPoolExecutor(
                max_workers=size,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_watch_owner,
                initargs=(os.getpid(),),
            )
            _POOLS[kind] = (pool, size)
        return pool


def pool_pids() -> list[int]:
    """The pids of the running worker processes (of every pool)."""
    with _POOL_LOCK:
        return [pid for pool, _ in _POOLS.values() for pid in list(pool._processes or {})]


def shutdown() -> None:
    """Stop the worker processes (also done at interpreter exit)."""
    with _POOL_LOCK:
        for pool, _ in _POOLS.values():
            pool.shutdown(cancel_futures=True)
        _POOLS.clear()


atexit.register(shutdown)


class _Here(Future[list[Record]]):
    """A chunk this process took back from the workers (no worker had started it) and cleaned itself."""


_WAITING: list[weakref.ref[Preparing]] = []  # clean-worker batches not yet collected, oldest first
_WAITING_LOCK = threading.Lock()


class Preparing:
    """A batch on its way through clean and tag; :meth:`result` waits for it (once)."""

    def __init__(
        self,
        chunks: list[list[Record]],
        futures: list[Future[list[Record]] | None],
        here: Callable[[list[Record]], list[Record]],
        then: Callable[[list[Record]], list[Record]],
        kind: str = "",
    ) -> None:
        self._chunks, self._futures, self._here, self._then = chunks, futures, here, then
        self._kind = kind
        self.taken = 0  # chunks this process took back from the workers and cleaned itself
        if kind == "clean":  # full workers: taking a chunk back would load a whole tagger into this process
            with _WAITING_LOCK:
                _WAITING.append(weakref.ref(self))

    def result(self) -> list[Record]:
        """The records, cleaned and tagged, in the order they came in. While a chunk's worker is not done,
        this process takes back the last chunk no worker has started (of the newest batch first: the run
        starts the next batch before it collects this one) and cleans it itself: when the worker is the
        slower side, both cores work until the batch is done."""
        out: list[Record] = []
        try:
            for i, chunk in enumerate(self._chunks):
                while (future := self._futures[i]) is not None and not future.done() and _take_back(self, i):
                    pass
                out.extend(self._then(self._collect(i, chunk)))
        finally:
            with _WAITING_LOCK:
                _WAITING[:] = [ref for ref in _WAITING if ref() not in (None, self)]
        return out

    def _collect(self, i: int, chunk: list[Record]) -> list[Record]:
        """Chunk ``i`` cleaned (and tagged, by full workers): its worker's result, else cleaned here."""
        while (future := self._futures[i]) is not None:
            try:
                done = future.result()
            except CancelledError as exc:
                if self._futures[i] is not future:  # taken back meanwhile: wait for that instead
                    continue
                _broke(self._kind, exc, len(chunk))  # cancelled: a broken pool was shut down
            except BrokenProcessPool as exc:
                _broke(self._kind, exc, len(chunk))
            else:
                if not isinstance(future, _Here):
                    _WORKED.add(self._kind)
                return done
            break
        return self._here(chunk)


def _take_back(waiter: Preparing, waiting_for: int) -> bool:
    """Take back from the workers the last chunk none has started, of the newest batch first (of the
    ``waiter``'s own, only chunks after ``waiting_for``), and clean it here; False when there is none."""
    with _WAITING_LOCK:
        batches = [p for ref in reversed(_WAITING) if (p := ref()) is not None]
    for batch in batches:
        last = waiting_for if batch is waiter else -1
        for j in range(len(batch._futures) - 1, last, -1):
            future = batch._futures[j]
            if future is None or isinstance(future, _Here):
                continue
            here = _Here()
            with _WAITING_LOCK:
                if not future.cancel():  # a worker holds it (or it is done)
                    continue
                batch._futures[j] = here
                batch.taken += 1
            here.set_running_or_notify_cancel()
            try:
                here.set_result(batch._here(batch._chunks[j]))
            except Exception as exc:  # its owner raises it, as it would have cleaning the chunk itself
                log.debug("cleaning %d records taken back failed", len(batch._chunks[j]), exc_info=True)
                here.set_exception(exc)
            return True
    return False


def _broke(kind: str, exc: BaseException, records: int) -> None:
    """A pool broke: drop it (the next batch starts a new one), unless it never worked in this process
    (e.g. a script without the ``if __name__ == "__main__":`` guard): then its kind is not tried again."""
    log.warning("worker pool broke (%s): %d records processed in the run's own process", exc, records)
    shutdown()
    if kind not in _WORKED and kind not in _UNUSABLE:
        _UNUSABLE.add(kind)
        log.warning(
            "worker processes could not start: cleaning and tagging in this process from now on (a script"
            ' that starts them needs the `if __name__ == "__main__":` guard; NEWSWIRE_WORKERS=0 says so)'
        )


def start(records: Iterable[Record], workers: int = 1) -> Preparing:
    """Start cleaning and tagging ``records`` with ``workers`` (see the module docstring); returns at once."""
    batch = list(records)
    task: Callable[[list[Record]], list[Record]]
    then: Callable[[list[Record]], list[Record]]
    if workers == 1:
        kind, task, then = "clean", clean_here, tag_here
    else:
        kind, task, then = "full", clean_and_tag_here, _same
    if workers <= 0 or not batch or kind in _UNUSABLE:
        return Preparing([batch], [None], clean_and_tag_here, _same)
    size = max(1, min(CHUNK, math.ceil(len(batch) / workers)))
    chunks = [[_pack(r) for r in batch[i : i + size]] for i in range(0, len(batch), size)]
    futures: list[Future[list[Record]] | None] = []
    for chunk in chunks:
        if kind in _UNUSABLE:
            futures.append(None)
            continue
        try:
            futures.append(_pool(kind, workers).submit(task, chunk))
        except Exception as exc:  # a broken pool (replaced), or none can start here (e.g. a daemon process)
            if getattr(multiprocessing.current_process(), "_inheriting", False):
                raise  # a worker re-running an unguarded script: it must stop here, not run the script
            log.debug("cannot hand %d records to a worker", len(chunk), exc_info=True)
            _broke(kind, exc, len(chunk))
            futures.append(None)
    here = clean_and_tag_here if workers >= 2 else clean_here
    return Preparing(chunks, futures, here, then, kind)


def _same(records: list[Record]) -> list[Record]:
    return records


def clean_and_tag(records: Iterable[Record], workers: int = 1) -> list[Record]:
    """Clean then tag ``records`` with ``workers`` (see the module docstring) and wait for them."""
    return start(records, workers).result()
