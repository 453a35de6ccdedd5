"""Loader for the labelled near-duplicate set (``labelled.yaml`` beside this file).

``load_labelled()`` returns (records, different_pairs): records are article dicts in file
order (``id``, ``group``, ``kind``, ``title``, ``text``, ``url``, ``source``,
``published_at``), with derived copies materialised by the operations the YAML header
describes; different_pairs are the hard different-story (id, id) pairs.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
LABELLED = HERE / "labelled.yaml"


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.strip().split("\n\n") if p.strip()]


def _derive(base: dict[str, Any], spec: dict[str, Any]) -> str:
    paras = _paragraphs(base["text"])
    if "keep" in spec:
        paras = [paras[i] for i in spec["keep"]]
    if "drop" in spec:
        dropped = set(spec["drop"])
        paras = [p for i, p in enumerate(paras) if i not in dropped]
    text = "\n\n".join(paras)
    for old, new in spec.get("replace", []):
        if old not in text:
            raise ValueError(f"{spec['id']}: replace target not found: {old[:60]!r}")
        text = text.replace(old, new)
    paras = list(spec.get("prepend", [])) + _paragraphs(text) + list(spec.get("append", []))
    return "\n\n".join(paras)


def load_labelled(path: Path = LABELLED) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    by_id: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    for spec in data["records"]:
        if spec["id"] in by_id:
            raise ValueError(f"duplicate record id {spec['id']}")
        rec = {k: spec[k] for k in ("id", "group", "kind", "title", "url", "source", "published_at")}
        if "from" in spec:
            base = by_id[spec["from"]]
            if base["group"] != spec["group"]:
                raise ValueError(f"{spec['id']}: derived from another group")
            rec["text"] = _derive(base, spec)
        else:
            rec["text"] = "\n\n".join(_paragraphs(spec["text"]))
        by_id[rec["id"]] = rec
        records.append(rec)
    different = [(d["a"], d["b"]) for d in data["different"]]
    for a, b in different:
        if by_id[a]["group"] == by_id[b]["group"]:
            raise ValueError(f"different pair {a}/{b} is in one group")
    return records, different


def gold_pairs(records: list[dict[str, Any]]) -> set[frozenset[str]]:
    """Unordered id pairs that belong to one duplicate group."""
    return {frozenset((a["id"], b["id"])) for a, b in combinations(records, 2) if a["group"] == b["group"]}


def predicted_pairs(assignment: dict[str, str]) -> set[frozenset[str]]:
    """Unordered id pairs that share a cluster, from {id: cluster_id}."""
    clusters: dict[str, list[str]] = {}
    for rid, cid in assignment.items():
        clusters.setdefault(cid, []).append(rid)
    return {frozenset(p) for ids in clusters.values() for p in combinations(sorted(ids), 2)}


def prf(predicted: set[frozenset[str]], gold: set[frozenset[str]]) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1."""
    tp = len(predicted & gold)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(gold) if gold else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f
