"""The security page's tables name the tests that try each promise: every one named must exist.

A test renamed or removed without the page following would leave a promise that nothing shows.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "explanation" / "security.md"

#: `file.py::name` starts a run of references; a following `::name` continues in the same file.
REFERENCE = re.compile(r"`(?P<file>[\w/]+\.py)?(?:::(?P<name>\w+))?`")


def named_tests() -> list[tuple[str, str | None]]:
    references: list[tuple[str, str | None]] = []
    for line in PAGE.read_text().splitlines():
        if not line.startswith("|") and "tests/" not in line:
            continue
        current: str | None = None
        for match in REFERENCE.finditer(line):
            file, name = match.group("file"), match.group("name")
            if file is None and name is None:
                continue
            if file is not None:
                current = file
            if current is None or not (current.startswith("test") or "tests/" in current):
                continue
            references.append((current, name))
    return references


def find_test_file(name: str) -> Path:
    path = ROOT / name
    if path.is_file():
        return path
    matches = sorted((ROOT / "tests").rglob(Path(name).name))
    assert len(matches) == 1, f"{name}: {len(matches)} files of that name under tests/"
    return matches[0]


def defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def test_the_page_names_tests():
    # Guards the parser: a page whose references it no longer finds would pass vacuously.
    assert len(named_tests()) >= 30


def test_every_test_the_security_page_names_exists():
    missing = []
    for file, name in named_tests():
        path = find_test_file(file)
        if name is not None and name not in defined_names(path):
            missing.append(f"{file}::{name}")
    assert missing == []
