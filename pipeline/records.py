"""Article records: stable ids, canonical URLs and the JSON Lines filter contract.

Records are plain dicts (JSON objects) so that a filter keeps every field it does not
own. This module fixes the names docs/architecture.md gives them and the two rules that make
ids stable:

- :func:`canonical_url` lower-cases scheme and host, drops default ports, fragments and
  tracking parameters, and resolves a relative link against a base. IPv6 literals keep
  their brackets; a URL whose port is not a number in range raises :class:`ValueError`.
- :func:`article_id` is the first 16 hex digits of SHA-256 over the canonical URL
  (or over ``"entry:" + feed entry id`` when an entry has no link).

:func:`run_filter` is the one implementation of the filter contract used by every CLI
filter: one output line per input line, in order; a line that fails is written back
with an ``error`` field and the exit code becomes 1.

:func:`parse_iso` is the one ISO 8601 date reader of the stores, dedupe and search: surrounding
blanks and a ``Z``/``z`` suffix are accepted, a naive time is UTC, the result is UTC.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

log = logging.getLogger(__name__)

Record = dict[str, Any]

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gclsrc",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_ga",
        "_gl",
        "ref",
        "ref_src",
        "cmpid",
        "ito",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "ocid",
        "smid",
        "at_medium",
        "at_campaign",
        "spm",
        "share",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "hsa_", "oly_")
DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str, base: str | None = None) -> str:
    """The canonical form of ``url`` (resolved against ``base`` when relative); NUL bytes dropped."""
    url = url.replace("\x00", "").strip()
    if base:
        url = urljoin(base, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port  # ValueError for a port that is not a number in range: the caller skips the link
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if port and DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{netloc}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    path = parts.path or ("/" if scheme in DEFAULT_PORTS else "")
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def stable_hash(text: str) -> str:
    """16 hex digits of SHA-256: short, stable across runs and machines."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def article_id(url: str | None = None, entry_id: str | None = None) -> str:
    """Stable id of a story: from its canonical URL, else from its feed entry id."""
    if url:
        return stable_hash(canonical_url(url))
    if entry_id:
        return stable_hash("entry:" + entry_id.replace("\x00", "").strip())
    raise ValueError("an article needs a url or a feed entry id")


def parse_iso(value: Any) -> datetime | None:
    """UTC datetime of an ISO 8601 string or a datetime (None for None or ""); ValueError
    naming the value for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO 8601 date: {value!r}") from None
    else:
        raise ValueError(f"not an ISO 8601 date: {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_iso_or_none(value: Any) -> datetime | None:
    """:func:`parse_iso`, with None for a value it cannot read."""
    try:
        return parse_iso(value)
    except ValueError:
        return None


def read_jsonl(stream: IO[str]) -> Iterator[tuple[int, Record | None, str | None]]:
    """Yield (line number, record or None, error or None) for each non-blank line."""
    for n, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, None, f"line {n}: invalid JSON: {exc.msg} at column {exc.colno}"
            continue
        except RecursionError:
            yield n, None, f"line {n}: JSON nested too deeply"
            continue
        except ValueError as exc:  # e.g. an integer of more digits than Python converts
            yield n, None, f"line {n}: unreadable JSON: {exc}"
            continue
        if not isinstance(value, dict):
            yield n, None, f"line {n}: expected a JSON object, got {type(value).__name__}"
            continue
        if "id" in value and not isinstance(value["id"], str):
            yield n, None, f"line {n}: id must be a string, got {type(value['id']).__name__}"
            continue
        yield n, value, None


def dumps(record: Record) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)


def run_filter(
    stage: Callable[[Iterable[Record]], Iterable[Record]],
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    name: str = "filter",
) -> int:
    """Apply a record stage to JSON Lines, honouring the filter contract; return the exit code.

    ``stage`` maps records to records one to one, in order; a record it cannot process
    comes back with an ``error`` field. Lines that are not JSON objects (or whose ``id`` is
    not a string) never reach the stage: they are echoed as ``{"error": ..., "line": ...}``.
    Records that already carry an ``error`` (failed in an earlier filter) pass through
    untouched. When the stage raises on a batch, each record of it is retried alone and the
    ones that still raise come back with the exception as their ``error``.
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    failed = 0
    pending: list[Record] = []

    def run_stage(batch: list[Record]) -> list[Record]:
        try:
            return list(stage(batch))
        except Exception as exc:  # one record's failure must not end the stream
            if len(batch) == 1:
                log.warning("record %r failed", batch[0].get("id"), exc_info=True)
                return [{**batch[0], "error": f"{type(exc).__name__}: {exc}"}]
            return [out for record in batch for out in run_stage([record])]

    def flush() -> None:
        nonlocal failed
        for out in run_stage(pending):
            if out.get("error"):
                failed += 1
                print(f"newswire {name}: {out.get('id', '?')}: {out['error']}", file=stderr)
            stdout.write(dumps(out) + "\n")
        pending.clear()

    for n, record, error in read_jsonl(stdin):
        if error is not None:
            flush()
            failed += 1
            print(f"newswire {name}: {error}", file=stderr)
            stdout.write(dumps({"error": error, "line": n}) + "\n")
            continue
        assert record is not None
        if record.get("error"):  # failed upstream: pass through untouched, in order
            flush()
            stdout.write(dumps(record) + "\n")
            continue
        pending.append(record)
        if len(pending) >= 256:
            flush()
    flush()
    stdout.flush()
    return 1 if failed else 0
