"""pytest plugin: a real Elasticsearch server for the whole test session.

Fixtures:
- ``es_server_url`` / ``es_url`` (session): the base URL of a running server. The official
  integ-test distribution is downloaded once (Maven, cached in ``~/.cache/newswire``),
  started on a free loopback port by :class:`pipeline.devtools.esserver.LocalElasticsearch` and
  stopped at the end of the session. ``NEWSWIRE_TEST_ES_URL=http://host:port`` reuses a
  running server instead (nothing is started or stopped then).
- ``es_prefix`` (function): a fresh index/alias prefix per test, so tests sharing the
  session server never see each other's documents; its indices are deleted afterwards.

When the server cannot start, the tests that need it fail with the exact error when
``CI=true`` (a missing server is never a skip in CI) and are skipped with it otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

_start_error: str | None = None


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    """Base URL of a real Elasticsearch server, shared by the session."""
    global _start_error
    reuse = os.environ.get("NEWSWIRE_TEST_ES_URL")
    if reuse:
        yield reuse.rstrip("/")
        return
    if _start_error is not None:
        _unavailable(_start_error)
    from pipeline.devtools.esserver import EsServerError, LocalElasticsearch

    try:
        server = LocalElasticsearch().start()
    except (EsServerError, OSError) as exc:
        _start_error = f"Elasticsearch test server could not start: {exc}"
        _unavailable(_start_error)
    try:
        yield server.url
    finally:
        server.stop()


def _unavailable(message: str) -> None:
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def es_prefix(es_url: str) -> Iterator[str]:
    """A unique index prefix for one test; everything under it is deleted afterwards."""
    from elasticsearch import Elasticsearch

    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    client = Elasticsearch(es_url, request_timeout=30)
    try:
        client.options(ignore_status=404).indices.delete(index=f"{prefix}*", expand_wildcards="all")
        client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}*")
    finally:
        client.close()
