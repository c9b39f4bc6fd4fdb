"""The code keeps its shape (issue 13): no function in cstor/, services/ or launcher/
above cyclomatic complexity 15 (radon), no Python module there above 400 lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cstor", "services", "launcher")
MAX_COMPLEXITY = 15
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def _blocks(path: Path) -> list[Any]:
    """radon's functions, classes and methods of a module, closures included."""
    pending = list(cc_visit(path.read_text(encoding="utf-8")))
    found = []
    while pending:
        block = pending.pop()
        found.append(block)
        pending.extend(getattr(block, "closures", []))
    return found


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_packages_have_modules_to_check() -> None:
    # Given the packages; Then the checks below see their modules (not an empty list).
    names = {_name(path) for path in _modules()}
    assert "cstor/s3/copier.py" in names
    assert "services/transfer/copying.py" in names


def test_no_function_is_above_the_complexity_limit() -> None:
    # Given every function and method of cstor/ and services/
    too_complex = [
        f"{_name(path)}:{block.lineno} {block.fullname} ({block.complexity})"
        for path in _modules()
        for block in _blocks(path)
        if block.complexity > MAX_COMPLEXITY
    ]
    # Then none is above the limit
    assert too_complex == []


def test_no_module_is_above_the_line_limit() -> None:
    # Given every Python module of cstor/ and services/
    too_long = [
        f"{_name(path)} ({lines} lines)"
        for path in _modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    # Then none is above the limit
    assert too_long == []
