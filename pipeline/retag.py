"""Re-run the tagger over every stored article: ``newswire retag``.

Contract: :func:`retag` walks the store in ascending id order
(:meth:`~pipeline.stores.base.Store.articles_after`), ``batch`` articles at a time, tags each
batch with ``tagger.tag_records`` and writes back the articles whose ``actors``/``locations``
changed (``Store.index`` of the stored document with only those two fields replaced, so ids,
clusters, text, dates and publisher lists stay as they are, and each engine re-derives its
index fields: actor/location rows, ancestors, admin-1 and facet keys). After every batch the
progress ``{"version", "last_id", "done", ...}`` is saved with ``Store.put_state("retag", ...)``:

- an interrupted run (a crash, Ctrl-C, or ``max_batches`` reached) continues after
  ``last_id`` when started again with the same tagger version;
- a completed run is a no-op (``RetagResult.skipped``) until the tagger version changes;
- a different tagger version, or ``restart=True``, starts over from the first id.

The tagger version (:func:`tagger_version`) is the tagger's own ``version`` attribute when it
has one, else a digest of what decides its output: the source of :mod:`pipeline.tag`, the
actors file, the versions of the data packages behind the gazetteer and the spaCy model.
An article the tagger cannot tag (no text) keeps its tags and is counted in ``errors``; so is
an article the store refuses to write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.stores.base import Article, Store

STATE_KEY = "retag"
TAG_FIELDS = ("actors", "locations")


@dataclass
class RetagResult:
    """What one :func:`retag` call did (``processed``/``changed`` count this call only)."""

    version: str
    processed: int = 0  # articles tagged by this call
    changed: int = 0  # of them, written back with new tags
    batches: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"id", "error"}
    done: bool = False  # the walk reached the last stored article
    skipped: bool = False  # nothing to do: a completed run with this tagger version
    resumed_after: str | None = None  # the id this call continued after (None: from the start)
    last_id: str | None = None


def tagger_version(tagger: Any) -> str:
    """The tagger's ``version``: a short string that changes whenever its output can."""
    return str(tagger.version)


def _tag_input(article: Article) -> dict[str, Any]:
    """What the tagger reads (it copies its input; the stored article is not handed over)."""
    return {k: article.get(k) for k in ("id", "title", "text", "language") if k in article}


def retag(
    store: Store,
    tagger: Any,
    batch: int = 500,
    restart: bool = False,
    max_batches: int | None = None,
    on_batch: Callable[[RetagResult], None] | None = None,
) -> RetagResult:
    """Re-tag every stored article, resumably (see the module docstring).

    ``max_batches`` stops after that many batches (the run is then incomplete and the next call
    continues); ``on_batch`` is called with the running result after each batch.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    version = tagger_version(tagger)
    result = RetagResult(version=version)
    state = store.get_state(STATE_KEY)
    after: str | None = None
    if not restart and state and state.get("version") == version:
        if state.get("done"):
            result.done = result.skipped = True
            result.last_id = state.get("last_id")
            return result
        after = state.get("last_id")
    started_at = (state or {}).get("started_at") if after is not None else None
    progress: dict[str, Any] = {
        "version": version,
        "last_id": after,
        "done": False,
        "started_at": started_at or datetime.now(UTC).isoformat(),
        "processed": int((state or {}).get("processed") or 0) if after is not None else 0,
    }
    result.resumed_after = after
    store.put_state(STATE_KEY, progress)
    while max_batches is None or result.batches < max_batches:
        articles = store.articles_after(after, batch)
        if not articles:
            result.done = True
            break
        changed: list[Article] = []
        for article, tagged in zip(
            articles, tagger.tag_records(_tag_input(a) for a in articles), strict=True
        ):
            if tagged.get("error"):
                result.errors.append({"id": article["id"], "error": str(tagged["error"])})
                continue
            new = {name: tagged.get(name) or [] for name in TAG_FIELDS}
            if any(article.get(name) != new[name] for name in TAG_FIELDS):
                changed.append({**article, **new})
        if changed:
            report = store.index(changed)
            result.errors.extend(report.errors)
            failed = {e.get("id") for e in report.errors}
            result.changed += sum(1 for a in changed if a["id"] not in failed)
        result.processed += len(articles)
        result.batches += 1
        after = result.last_id = articles[-1]["id"]
        progress.update(last_id=after, processed=progress["processed"] + len(articles))
        store.put_state(STATE_KEY, progress)
        if on_batch is not None:
            on_batch(result)
        if len(articles) < batch:
            result.done = True
            break
    if result.done:
        progress.update(done=True, finished_at=datetime.now(UTC).isoformat())
        store.put_state(STATE_KEY, progress)
    return result
