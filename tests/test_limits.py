"""Size limits of the package code (project issue 14): no module over MAX_MODULE_LINES lines,
no function or method (nested ones included) over MAX_FUNCTION_LINES lines, where a
function's length is ``end_lineno - lineno + 1`` of its ``def`` (docstring included,
decorators not)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "bali"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_offenders() -> list[str]:
    """``<path>: <n> lines`` of each module over the limit."""
    out = []
    for path in _modules():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out.append(f"{_name(path)}: {n} lines")
    return out


def function_offenders() -> list[str]:
    """``<path>:<line> <name>: <n> lines`` of each function over the limit."""
    out = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{_name(path)}:{node.lineno} {node.name}: {n} lines")
    return sorted(out)


def test_the_walk_finds_the_package():
    names = {_name(p) for p in _modules()}
    assert "src/bali/cli.py" in names and "src/bali/text/bern2.py" in names


def test_no_module_over_the_line_limit():
    offenders = module_offenders()
    assert not offenders, (f"modules over {MAX_MODULE_LINES} lines (split them):\n  "
                           + "\n  ".join(offenders))


def test_no_function_over_the_line_limit():
    offenders = function_offenders()
    assert not offenders, (f"functions over {MAX_FUNCTION_LINES} lines (split them):\n  "
                           + "\n  ".join(offenders))
