"""Optional dependencies: which extra installs what, and a clear error when one is missing.

Contract: :func:`require` imports a module that belongs to an optional extra, or raises
:class:`MissingExtra` (an ``ImportError``) whose message names the feature and the install command,
e.g. ``the Elasticsearch store needs 'elasticsearch': pip install 'newswire[es]'``. The core install
(``pip install newswire``) runs feeds -> clean -> dedupe -> gazetteer tagging -> SQLite and the CLI;
``[es]``, ``[ner]`` (spaCy), ``[api]`` (``newswire serve``), ``[airflow]``, ``[bench]`` and ``[dev]`` add
the rest (pyproject.toml lists them).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that installs each optional top-level module.
EXTRA_OF = {
    "elasticsearch": "es",
    "spacy": "ner",
    "fastapi": "api",
    "uvicorn": "api",
    "readability": "bench",
    "datasketch": "bench",
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""


def install_hint(module: str) -> str:
    """``pip install 'newswire[<extra>]'`` for a module of an extra."""
    return f"pip install 'newswire[{EXTRA_OF[module]}]'"


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` (a key of :data:`EXTRA_OF`) or raise :class:`MissingExtra` naming ``feature``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{feature} needs {module!r}: {install_hint(module)}") from exc
