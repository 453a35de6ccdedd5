"""The wheel carries the default config (actors, gazetteer, samples); config_dir() finds it installed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "-q",
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=out,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (whl,) = out.glob("newswire-*.whl")
    return whl


def test_wheel_carries_every_default_config_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    config = ROOT / "config"
    needed = [p.relative_to(config).as_posix() for p in config.rglob("*") if p.is_file()]
    assert needed
    missing = [n for n in needed if f"pipeline/config_data/{n}" not in names]
    assert not missing, missing


def test_config_dir_resolves_to_the_installed_package_data(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "from pipeline.settings import config_dir, get_settings;"
        "d = config_dir(); print(d); print(get_settings().actors_file.is_file());"
        "print(sorted(p.name for p in (d / 'actors').glob('*.yaml')) != [])"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    env = {k: v for k, v in env.items() if not k.startswith("NEWSWIRE_")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    where, actors_ok, lists_ok = done.stdout.split()
    assert Path(where).resolve() == (target / "pipeline" / "config_data").resolve()
    assert actors_ok == "True"
    assert lists_ok == "True"


def test_the_lock_pins_every_declared_dependency() -> None:
    """`make install` installs from requirements/ci.lock only: a dependency added to pyproject.toml but not to
    the lock (`make lock`) would be missing on a fresh machine."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra

    def name(requirement: str) -> str:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match, requirement
        return re.sub(r"[-_.]+", "-", match.group(0)).lower()

    lock = (ROOT / "requirements" / "ci.lock").read_text(encoding="utf-8")
    pinned = {name(line) for line in lock.splitlines() if re.match(r"[A-Za-z0-9]", line) and "==" in line}
    wanted = {name(r) for r in declared} - {"newswire"}
    assert wanted - pinned == set(), "run `make lock`"
