"""The cluster rules shared by the stores and :mod:`pipeline.dedupe` (one home for each).

- :func:`publication` builds the ``also_published_by`` entry of a member: ``{id, source, url,
  published_at}``.
- :func:`earliest_key` / :func:`representative_key` say which member leads: the earliest by
  ``published_at`` (a missing or unreadable date sorts last), then by id; the representative
  key puts first the article whose id is the cluster id, then articles that are no duplicate.
- :func:`merge_publications` merges ``also_published_by`` lists: one entry per member id (string
  ids only), a later list replaces the entry of an earlier one in place, ``drop`` ids are left out;
  :func:`append_publication` moves/adds one entry to the end.
- :func:`cluster_rewrite` is what :func:`pipeline.dedupe.reconcile` writes to make a set of
  members one cluster led by the earliest (only the members whose fields change).
- :func:`plan_batch` is the plan of one indexed batch: which clusters need a representative
  election (``touched``), which duplicates leave their old representative (``moved``) and which
  representatives gain entries for duplicates of the batch (``adds``). The stores execute it.

Pure functions: no store, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pipeline.records import parse_iso_or_none

_MIN_TIME = datetime.min.replace(tzinfo=UTC)


def publication(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The entry a duplicate adds to its representative's ``also_published_by``."""
    return {
        "id": doc.get("id"),
        "source": doc.get("source"),
        "url": doc.get("url"),
        "published_at": doc.get("published_at"),
    }


def cluster_of(doc: Mapping[str, Any]) -> str:
    """The cluster an article belongs to (its own id when it names none)."""
    return str(doc.get("cluster_id") or doc["id"])


def earliest_key(record: Mapping[str, Any]) -> tuple[bool, datetime, str]:
    """Sort key of "earliest": (no usable date, published_at as UTC, id); undated sorts last."""
    when = parse_iso_or_none(record.get("published_at"))
    return (when is None, when or _MIN_TIME, str(record.get("id") or ""))


def representative_key(doc: Mapping[str, Any], cluster: str | None = None) -> tuple[Any, ...]:
    """Sort key of the member that leads ``cluster``: the article whose id is the cluster id,
    then one that is no duplicate, then the earliest (:func:`earliest_key`)."""
    return (
        cluster is not None and doc.get("id") != cluster,
        doc.get("duplicate_of") is not None,
        *earliest_key(doc),
    )


def merge_publications(*lists: Any, drop: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """One entry per member id (dicts with a string ``id`` only); a later list replaces the entry
    of an earlier one where it stands; ids in ``drop`` are left out."""
    dropped = set(drop)
    merged: dict[str, dict[str, Any]] = {}
    for entries in lists:
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"] not in dropped:
                merged[entry["id"]] = entry
    return list(merged.values())


def append_publication(entries: Any, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """``entries`` with ``entry`` last (an older entry of the same id removed)."""
    kept = [e for e in entries or [] if not (isinstance(e, dict) and e.get("id") == entry["id"])]
    return [*kept, entry]


def cluster_rewrite(members: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``{"id", "cluster_id", "duplicate_of", "also_published_by"}`` changes that make ``members``
    one cluster: the earliest (:func:`earliest_key`) leads with every other member in its
    ``also_published_by`` (earliest first); the others name it in ``cluster_id`` and
    ``duplicate_of`` and list nobody. Members already so are left out."""
    ordered = sorted(members, key=earliest_key)
    if not ordered:
        return []
    head, others = ordered[0], ordered[1:]
    rep = head["id"]
    also = [publication(m) for m in others]
    changes: list[dict[str, Any]] = []
    if (
        head.get("cluster_id") != rep
        or head.get("duplicate_of") is not None
        or _ids(head.get("also_published_by")) != {a["id"] for a in also}
    ):
        changes.append({"id": rep, "cluster_id": rep, "duplicate_of": None, "also_published_by": also})
    for m in others:
        if m.get("cluster_id") != rep or m.get("duplicate_of") != rep or m.get("also_published_by"):
            changes.append({"id": m["id"], "cluster_id": rep, "duplicate_of": rep, "also_published_by": []})
    return changes


def _ids(items: Any) -> set[str]:
    return {str(i.get("id")) for i in items or () if isinstance(i, dict)}


class Placement(NamedTuple):
    """Where an article sits: its id, cluster, ``duplicate_of`` and ``published_at``."""

    id: str
    cluster: str
    duplicate_of: str | None
    published_at: Any


@dataclass
class BatchPlan:
    """What one indexed batch changes beyond writing its own documents."""

    touched: set[str] = field(default_factory=set)  # clusters whose representative is elected again
    moved: dict[str, set[str]] = field(default_factory=dict)  # old representative -> members leaving it
    adds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # representative -> new entries


def plan_batch(
    items: Iterable[tuple[Placement, Mapping[str, Any]]],
    stored: Mapping[str, Placement],
    reps_with_stored_members: Iterable[str] = (),
) -> BatchPlan:
    """The plan of a batch of (placement, document) pairs given the stored placements of the same
    ids. A representative with stored duplicates, a new non-duplicate in a foreign cluster, and
    both the old and new cluster of an article whose placement or date changed are elected
    again; a duplicate leaving its cluster, or becoming a representative, leaves its old
    representative's list; each duplicate of another article is added to its representative."""
    plan = BatchPlan(touched=set(reps_with_stored_members))
    for place, doc in items:
        old = stored.get(place.id)
        if old is None:
            if place.duplicate_of is None and place.cluster != place.id:
                plan.touched.add(place.cluster)
        else:
            if (old.cluster, old.duplicate_of, old.published_at) != (
                place.cluster,
                place.duplicate_of,
                place.published_at,
            ):
                plan.touched.update((old.cluster, place.cluster))
            if old.duplicate_of is not None and (old.cluster != place.cluster or place.duplicate_of is None):
                plan.moved.setdefault(old.cluster, set()).add(place.id)
        if place.duplicate_of is not None and place.cluster != place.id:
            plan.adds.setdefault(place.cluster, []).append(publication(doc))
    return plan
