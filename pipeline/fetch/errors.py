"""Errors of one fetch, and how an HTTP status is named in messages.

Contract: :class:`FetchError` is the failure of one URL; its message never repeats the URL
(the caller prefixes the redacted URL) and it carries ``http_status``, ``retry_after``,
``headers`` and ``timed_out`` for the feed state. :class:`UnsafeAddressError` is a refusal
by the safety policy and is never retried. :func:`_reason` renders ``HTTP 404 Not Found``.
"""

from __future__ import annotations


class FetchError(Exception):
    """A failure of one URL; the message does not repeat the URL (the caller prefixes it)."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        unsafe: bool = False,
        headers: dict[str, str] | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.http_status = http_status
        self.retry_after = retry_after
        self.unsafe = unsafe
        self.headers = headers or {}


class UnsafeAddressError(FetchError):
    """Refused by the safety policy (scheme or address); never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, unsafe=True)


def _reason(status: int) -> str:
    try:
        from http import HTTPStatus

        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"
