"""Shared pytest wiring: the real-server fixtures live in their own plugin modules.

- ``tests.support.es_harness``: a real Elasticsearch server (official integ-test zip) -> ``es_url``.
- ``tests.support.feedserver``: a loopback HTTP server that serves fixtures and misbehaves on purpose.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.es_harness", "tests.support.feedserver"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own default store and staging dir; settings are re-read."""
    from pipeline.settings import get_settings

    monkeypatch.setenv("NEWSWIRE_STORE", f"sqlite:///{tmp_path / 'newswire.db'}")
    monkeypatch.setenv("NEWSWIRE_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("NEWSWIRE_ALLOW_HOSTS", '["127.0.0.1", "localhost", "::1"]')
    if "NEWSWIRE_TEST_SPACY_MODEL" in os.environ:
        monkeypatch.setenv("NEWSWIRE_SPACY_MODEL", os.environ["NEWSWIRE_TEST_SPACY_MODEL"])
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The URL of an empty store, once per engine: SQLite in tmp_path, or the real
    Elasticsearch server under an index prefix of this test's own."""
    from pipeline.settings import get_settings

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    es_url = request.getfixturevalue("es_url")
    monkeypatch.setenv("NEWSWIRE_INDEX_PREFIX", request.getfixturevalue("es_prefix"))
    get_settings.cache_clear()
    yield es_url


#: Modules whose every test drives a real server process (browser, Airflow, an Elasticsearch of their own).
INTEGRATION_MODULES = {
    "test_page",
    "test_dags_airflow",
    "test_es_server",
    "test_celery_airflow",
    "test_scaleout_es",
    "test_load",
}


def _is_integration(item: pytest.Item) -> bool:
    if item.path.stem in INTEGRATION_MODULES:
        return True
    if "es_url" in getattr(item, "fixturenames", ()):  # the harness's Elasticsearch, directly or not
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "elasticsearch" in callspec.params.values()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests that need a real server ``integration``; leave ``long`` tests out unless asked for
    (``pytest -m long``, any ``-m`` naming it, or NEWSWIRE_LONG=1). See docs/testing.md."""
    for item in items:
        if _is_integration(item):
            item.add_marker(pytest.mark.integration)
    if "long" in (config.option.markexpr or "") or os.environ.get("NEWSWIRE_LONG") == "1":
        return
    kept = [item for item in items if item.get_closest_marker("long") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
