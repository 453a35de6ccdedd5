"""The core install works without the optional extras, and a missing extra is named in one clear line.

Each case runs in a child interpreter where importing elasticsearch, spaCy, FastAPI and uvicorn fails, as
on a machine with only ``pip install newswire``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BLOCK = """
import importlib.abc, sys
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"elasticsearch", "spacy", "fastapi", "uvicorn"}:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, _NotInstalled())
"""


def _run(code: str, *args: str, stdin: str = "", tmp: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NEWSWIRE_STORE=f"sqlite:///{tmp / 'core.db'}")
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_core_install_tags_from_the_gazetteer_without_spacy(tmp_path: Path) -> None:
    line = json.dumps({"id": "a", "text": "Shelling hit Kharkiv on Monday, officials in Ukraine said."})
    got = _run(
        "import sys; from pipeline.cli import main; sys.argv = ['newswire', 'tag']; main()",
        stdin=line + "\n",
        tmp=tmp_path,
    )
    assert got.returncode == 0, got.stderr
    record = json.loads(got.stdout)
    assert any("kharkiv" in (p.get("name") or "").lower() for p in record["locations"])
    assert "newswire[ner]" in got.stderr  # the log says why NER is off and what installs it


def test_missing_extras_are_named(tmp_path: Path) -> None:
    got = _run(
        "from pipeline.stores import open_store\nopen_store('http://127.0.0.1:9')",
        tmp=tmp_path,
    )
    assert got.returncode != 0
    assert "the Elasticsearch store needs 'elasticsearch': pip install 'newswire[es]'" in got.stderr
    served = _run(
        "import sys; from pipeline.cli import main; sys.argv = ['newswire', 'serve']; main()",
        tmp=tmp_path,
    )
    assert served.returncode == 2
    assert "pip install 'newswire[api]'" in served.stderr + served.stdout
    assert "Traceback" not in served.stderr
