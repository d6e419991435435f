"""The shape the codebase promises: short functions and a short README."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 60


def function_lengths(paths) -> list[tuple[int, str]]:
    """``(lines, "file:line name")`` for every function and method, longest first (def line to last line)."""
    out = []
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                out.append((node.end_lineno - node.lineno + 1, f"{where}:{node.lineno} {node.name}"))
    return sorted(out, reverse=True)


def test_function_lengths_are_counted_from_def_to_last_line(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    x = 1\n\n    return x\n\n\nclass C:\n    def g(self):\n        pass\n")
    assert [n for n, _ in function_lengths([src])] == [4, 2]


def test_every_function_in_the_package_and_benchmarks_is_at_most_60_lines():
    lengths = function_lengths(sorted((ROOT / "asr").rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")))
    print("longest functions:\n" + "\n".join(f"  {n:4d}  {where}" for n, where in lengths[:5]))
    too_long = [f"{where} ({n} lines)" for n, where in lengths if n > MAX_FUNCTION_LINES]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: " + "; ".join(too_long)


def test_readme_is_a_user_guide_of_at_most_200_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    print(f"README.md: {len(lines)} lines")
    assert len(lines) <= 200


def test_tests_mirror_the_package():
    """Every asr/ subpackage has a tests/ folder of the same name (and no test folder names a package that is gone)."""
    packages = {p.name for p in (ROOT / "asr").iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert packages - {"conf", "assets"} <= folders
    assert folders - packages <= {"reliability"}
