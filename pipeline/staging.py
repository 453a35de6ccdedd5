"""Staging area between pipeline tasks: JSON Lines files addressed by run id, stage and group.

Contract
--------
- A :class:`Staging` wraps one *root*: any path-like object with ``/``, ``open``, ``rename``,
  ``exists``, ``iterdir``, ``unlink``, ``mkdir`` and ``rmdir`` — a :class:`pathlib.Path` for
  local use, or Airflow's ``airflow.sdk.ObjectStoragePath`` (``file://``, ``s3://``,
  ``gs://``...) when tasks run on several machines. This module never imports Airflow at
  import time; :func:`open_staging` imports ``ObjectStoragePath`` lazily, only for a URL.
- Files are addressed by a *key* relative to the root:
  ``runs/<run key>/<stage>/<group>.jsonl`` (see :meth:`Staging.key`). Keys are plain
  strings, so tasks hand them to each other through XCom while the data stays here.
- :meth:`Staging.write_jsonl` is atomic: it writes ``<name>.tmp-<random>`` and renames it
  to the final name, so a reader sees either the whole previous file or the whole new one,
  never a partial file, and re-running a task simply replaces its output (idempotent).
  On object stores a rename is copy+delete; the final object still appears whole.
- Every run folder carries ``_run.json`` (``{"run_id", "created_at"}``) written on first
  use; :meth:`Staging.cleanup` removes run folders older than a retention period using that
  timestamp (object stores have no reliable directory mtimes), falling back to file mtimes.

Why hand-written: Airflow's ObjectStoragePath (fsspec/universal_pathlib) supplies the
storage backends; what it does not supply is the naming scheme, the atomic-replace write and
the retention rule, which are a few lines each.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RUNS = "runs"
RUN_MANIFEST = "_run.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(value: str) -> str:
    """A file-name-safe form of ``value`` (run ids contain ``:`` and ``+``)."""
    cleaned = _UNSAFE.sub("_", value).strip("._")
    if not cleaned:
        raise ValueError(f"cannot make a staging name from {value!r}")
    return cleaned


def open_staging(root: Any = None) -> Staging:
    """A :class:`Staging` for ``root``: a path-like, a local folder, or an object-storage URL.

    ``None`` means the ``NEWSWIRE_STAGING_DIR`` setting. A string with a scheme
    (``s3://bucket/prefix``, ``file:///srv/staging``) becomes an Airflow
    ``ObjectStoragePath`` (credentials from the Airflow connection named by the URL's
    ``conn_id@`` user part, as Airflow documents), or a ``upath.UPath`` when Airflow is not
    installed. A plain string becomes a :class:`pathlib.Path`.
    """
    if root is None:
        root = staging_root_setting()
    if isinstance(root, str):
        if "://" in root:
            try:
                from airflow.sdk import ObjectStoragePath
            except ImportError:  # pipeline used without Airflow: universal_pathlib if present
                if root.startswith("file://"):
                    return Staging(Path(root[len("file://") :]))
                from upath import UPath

                return Staging(UPath(root))
            return Staging(ObjectStoragePath(root))
        return Staging(Path(root))
    return Staging(root)


def staging_root_setting() -> str:
    """The configured staging root: a folder or an object-storage URL (``s3://bucket/prefix``)."""
    from pipeline.settings import get_settings

    return get_settings().staging_dir


class Staging:
    """JSON Lines files under one root, addressed by run id, stage and group."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Staging({self.root!s})"

    # --- naming ---------------------------------------------------------------------
    @staticmethod
    def key(run_id: str, stage: str, group: str) -> str:
        """``runs/<run>/<stage>/<group>.jsonl`` with unsafe characters replaced."""
        return f"{RUNS}/{safe_name(run_id)}/{safe_name(stage)}/{safe_name(group)}.jsonl"

    def path(self, key: str) -> Any:
        """The path object of ``key`` (a key from :meth:`key`, relative to the root)."""
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"staging key must be relative and inside the root: {key!r}")
        return self.root / key

    def run_dir(self, run_id: str) -> Any:
        return self.root / RUNS / safe_name(run_id)

    # --- read / write ---------------------------------------------------------------
    def _ensure_run(self, key: str) -> None:
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != RUNS:
            return
        run_dir = self.root / RUNS / parts[1]
        manifest = run_dir / RUN_MANIFEST
        if not manifest.exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            created = {"run_id": parts[1], "created_at": datetime.now(UTC).isoformat()}
            self._atomic_write_text(manifest, json.dumps(created) + "\n")

    def _atomic_write_text(self, final: Any, text: str) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f"{final.name}.tmp-{uuid.uuid4().hex}"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
        self._replace(tmp, final)

    @staticmethod
    def _replace(tmp: Any, final: Any) -> None:
        if hasattr(tmp, "replace"):
            try:
                tmp.replace(final)
                return
            except (NotImplementedError, AttributeError):
                pass
        if final.exists():  # rename over an existing object is not portable on every backend
            final.unlink()
        tmp.rename(final)

    def write_jsonl(self, key: str, records: Iterable[dict[str, Any]]) -> int:
        """Write ``records`` to ``key`` atomically (streaming); return the number of lines."""
        final = self.path(key)
        self._ensure_run(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f"{final.name}.tmp-{uuid.uuid4().hex}"
        n = 0
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                for record in records:
                    fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                    n += 1
        except BaseException:
            if tmp.exists():
                tmp.unlink()
            raise
        self._replace(tmp, final)
        return n

    def read_jsonl(self, key: str) -> Iterator[dict[str, Any]]:
        """Yield the records of ``key`` in order; a bad line raises ``ValueError`` naming it."""
        path = self.path(key)
        if not path.exists():
            raise FileNotFoundError(f"staging file not found: {path}")
        with path.open("r", encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: line {n}: invalid JSON: {exc.msg}") from exc

    def write_json(self, key: str, value: Any) -> None:
        """Write one JSON document atomically (small metadata such as feed states)."""
        self._ensure_run(key)
        self._atomic_write_text(self.path(key), json.dumps(value, ensure_ascii=False, default=str))

    def read_json(self, key: str) -> Any:
        with self.path(key).open("r", encoding="utf-8") as fh:
            return json.load(fh)

    def exists(self, key: str) -> bool:
        return bool(self.path(key).exists())

    # --- retention ------------------------------------------------------------------
    def runs(self) -> list[str]:
        """Names of the run folders present."""
        base = self.root / RUNS
        if not base.exists():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def run_created_at(self, run: str) -> datetime | None:
        run_dir = self.root / RUNS / run
        manifest = run_dir / RUN_MANIFEST
        try:
            with manifest.open("r", encoding="utf-8") as fh:
                return datetime.fromisoformat(json.load(fh)["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:  # no manifest: newest file mtime, where the backend reports one
            times = [t for t in (_mtime(p) for p in _walk_files(run_dir)) if t is not None]
            return datetime.fromtimestamp(max(times), UTC) if times else None
        except OSError:
            return None

    def cleanup(self, retention: timedelta, now: datetime | None = None) -> list[str]:
        """Delete run folders created more than ``retention`` ago; return their names."""
        now = now or datetime.now(UTC)
        removed = []
        for run in self.runs():
            created = self.run_created_at(run)
            if created is not None and now - created > retention:
                _remove_tree(self.root / RUNS / run)
                removed.append(run)
        return removed


def _walk_files(path: Any) -> Iterator[Any]:
    for child in path.iterdir():
        if child.is_dir():
            yield from _walk_files(child)
        else:
            yield child


def _mtime(path: Any) -> float | None:
    st = path.stat()
    if isinstance(st, dict):  # fsspec-style info
        value = st.get("mtime") or st.get("LastModified") or st.get("created")
        if isinstance(value, datetime):
            return value.timestamp()
        return float(value) if value is not None else None
    return float(st.st_mtime)


def _remove_tree(path: Any) -> None:
    if isinstance(path, Path):
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        path.rmdir(recursive=True)
    except TypeError:
        for child in _walk_files(path):
            child.unlink()
        path.rmdir()
