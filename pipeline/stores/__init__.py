"""Stores: open one by URL.

Contract: :func:`open_store` maps a store URL to an engine and calls its ``setup()``:

- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (or ``sqlite:///~/x.db``)
  -> :class:`~pipeline.stores.sqlite.SQLiteStore`, creating the parent folders;
  ``sqlite:///:memory:`` is an in-memory store (tests, one process only).
- ``http(s)://host:port`` -> :class:`~pipeline.stores.elasticsearch.ElasticsearchStore`
  (imported only then, so SQLite users never load the Elasticsearch client), with the
  index prefix from :mod:`pipeline.settings` and credentials given to :func:`open_store`
  (default: from :mod:`pipeline.settings`); several nodes of one cluster are comma-separated
  (``http://127.0.0.1:9200,http://127.0.0.1:9201``).
- anything else raises :class:`ValueError` naming the URL.

``None`` means the configured default (``NEWSWIRE_STORE``).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import get_settings
from pipeline.stores.base import Store

__all__ = ["open_store", "sqlite_path"]


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (``:memory:`` kept as is)."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"store URL {url!r}: a SQLite store URL looks like sqlite:///path/to/newswire.db")
    path = url[len("sqlite:///") :]
    if not path:
        raise ValueError(f"store URL {url!r} has no file path (sqlite:///path/to/newswire.db)")
    if path == ":memory:":
        return path
    return str(Path(path).expanduser())


def open_store(url: str | None = None, *, username: str | None = None, password: str | None = None) -> Store:
    """The store at ``url`` (default: settings.store), set up and ready to use.

    ``username``/``password`` are Elasticsearch credentials passed in by the caller (an Airflow
    connection, say); when not given, ``NEWSWIRE_ES_USERNAME``/``NEWSWIRE_ES_PASSWORD`` apply.
    Every store is a context manager: ``with open_store(url) as store:`` closes it.
    """
    settings = get_settings()
    url = (url or settings.store).strip()
    lower = url.lower()
    store: Store
    if lower.startswith("sqlite:"):
        from pipeline.stores.sqlite import SQLiteStore

        path = sqlite_path(url)
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(
                    f"store URL {url!r}: cannot create folder {Path(path).parent}: {exc}"
                ) from exc
        store = SQLiteStore(path, url=url, search_timeout=settings.search_timeout)
    elif lower.startswith(("http://", "https://")):
        from pipeline.extras import require

        require("elasticsearch", "the Elasticsearch store")
        from pipeline.stores.elasticsearch import ElasticsearchStore

        store = ElasticsearchStore(
            url,
            prefix=settings.index_prefix,
            username=username if username is not None else settings.es_username,
            password=password if password is not None else settings.es_password,
            search_timeout=settings.search_timeout,
        )
    else:
        raise ValueError(
            f"unsupported store URL {url!r}: use sqlite:///path/to/newswire.db or http(s)://host:port"
        )
    try:
        store.setup()
    except Exception:
        store.close()
        raise
    return store
