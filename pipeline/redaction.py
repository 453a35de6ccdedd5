"""Passwords never leave the process: the one rule that hides them.

Contract: :func:`redact` replaces the password of every URL in a text (a URL alone is a
text) by ``***``, keeping the user name: ``https://alice:s3cret@host/feed`` ->
``https://alice:***@host/feed``. Everything else is returned unchanged, so it is safe to
apply to any message, table cell, JSON document or log line. It is applied where data
leaves newswire: CLI output (:mod:`pipeline.cli`), API answers (:mod:`pipeline.api`),
log records (:class:`RedactingFilter`, installed by the CLI and the DAG tasks) and the
``source.feed`` stored in every article (:mod:`pipeline.run`), so a feed's credentials
are never copied into the store.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install_log_filter", "redact"]

#: ://user:password@ -- the password runs to the last "@" before the path (as urlsplit reads it).
#: Anchored on the literal "://", so the scan stays linear in the text (no scheme backtracking).
_USERINFO = re.compile(r"(?P<head>://[^\s/?#@:]*):(?P<password>[^\s/?#]*)@")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    if "@" not in text or "://" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m.group('head')}:***@", text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the formatted message (and exception text) of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Add a :class:`RedactingFilter` to every handler of ``logger`` (default: the root logger), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
