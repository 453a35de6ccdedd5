"""The paging cursor users carry between pages: an opaque URL-safe string.

Contract: :func:`encode_cursor` turns a store's ``SearchResult.next_after`` (a JSON list, or None
on the last page) into a string safe in a URL and a shell (base64url of its compact JSON, no
padding), or None; :func:`decode_cursor` gives the list back, or raises
:class:`~pipeline.search.QueryError` naming the option for anything that is not such a string.
Stores still check that a cursor belongs to the same sort (a ``ValueError`` from ``search``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

MAX_LENGTH = 4096  # an Elasticsearch point-in-time id plus sort values fits easily


def encode_cursor(after: list[Any] | None) -> str | None:
    """``next_after`` as an opaque string (None stays None)."""
    if after is None:
        return None
    raw = json.dumps(after, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, option: str = "--after") -> list[Any]:
    """The list an :func:`encode_cursor` string stands for; QueryError for anything else."""
    from pipeline.search import QueryError

    text = token.strip()
    try:
        if not text or len(text) > MAX_LENGTH:
            raise ValueError
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = None
    if not isinstance(value, list) or not value:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise QueryError(
            f"{option}: {shown!r} is not a paging cursor (pass next_after from the last page unchanged)"
        )
    return value


__all__ = ["decode_cursor", "encode_cursor"]
