"""Code shape: no function in ``pipeline/`` is longer than ``MAX_LINES`` lines, and every function that
ruff's complexity checks (``C901``, ``PLR0912``, ``PLR0915``) are silenced for, is one of the exceptions
listed with its reason in docs/decisions.md ("Functions allowed to be long or complex"), which names no
function that no longer exists."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECISIONS = ROOT / "docs" / "decisions.md"
HEADING = "## Functions allowed to be long or complex"
MAX_LINES = 80
SHAPE_CODES = re.compile(r"#\s*noqa:[^#\n]*\b(?:C901|PLR0912|PLR0915)\b")


def allowed() -> set[str]:
    """The ``path::qualified.name`` entries of the section, as written in backticks."""
    text = DECISIONS.read_text(encoding="utf-8")
    assert HEADING in text, f"{DECISIONS} lacks the section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`((?:pipeline|bench|tests)/[\w/]+\.py::[\w.]+)`", section))


def functions(folder: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, list[str]]]:
    """Every function and method under ``folder`` as (``path::qualified.name``, node, source lines)."""
    for path in sorted((ROOT / folder).rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        rel = path.relative_to(ROOT).as_posix()

        def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    yield from walk(child, f"{prefix}{child.name}.")
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{prefix}{child.name}", child
                    yield from walk(child, f"{prefix}{child.name}.")

        for name, node in walk(ast.parse("\n".join(lines), filename=rel), ""):
            yield f"{rel}::{name}", node, lines


def length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    assert node.end_lineno is not None
    return node.end_lineno - node.lineno + 1


def test_no_long_functions_in_pipeline_but_the_listed_ones() -> None:
    listed = allowed()
    long = {
        f"{key} ({length(node)} lines)"
        for key, node, _ in functions("pipeline")
        if length(node) > MAX_LINES and key not in listed
    }
    assert not long, f"split these, or list them with a reason in {DECISIONS.name}: {sorted(long)}"


def test_every_silenced_complexity_check_is_listed() -> None:
    listed = allowed()
    silenced = set()
    for folder in ("pipeline", "bench", "tests"):
        for key, node, lines in functions(folder):
            # the noqa sits on the line ruff reports: the one with the function's name
            if SHAPE_CODES.search(lines[node.lineno - 1]) and key not in listed:
                silenced.add(key)
    assert not silenced, f"list these with a reason in {DECISIONS.name}: {sorted(silenced)}"


def test_the_list_names_only_functions_that_exist() -> None:
    existing = {key for folder in ("pipeline", "bench", "tests") for key, _, _ in functions(folder)}
    stale = allowed() - existing
    assert not stale, f"these no longer exist: remove them from {DECISIONS.name}: {sorted(stale)}"


def test_the_checks_see_a_long_function_and_a_silenced_one() -> None:
    # the parsing above must find what it looks for, or the tests above pass for nothing
    assert "pipeline/api.py::create_app" in allowed()
    sizes = {key: length(node) for key, node, _ in functions("pipeline")}
    assert sizes["pipeline/api.py::create_app"] > MAX_LINES
    assert SHAPE_CODES.search("def f():  # noqa: C901, PLR0912 - a dispatcher")
    assert not SHAPE_CODES.search("x = 1  # noqa: E501")
