"""No function in dse/ over 150 lines (read with ast: nested functions count on their own and
inside the function that holds them)."""

from __future__ import annotations

import ast
from pathlib import Path

import dse

ROOT = Path(dse.__file__).parent
LIMIT = 150


def long_functions(root: Path = ROOT, limit: int = LIMIT) -> list[tuple[str, int]]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = (node.end_lineno or node.lineno) - first + 1
                if lines > limit:
                    out.append((f"{path.relative_to(root.parent)}:{node.lineno} {node.name}",
                                lines))
    return out


def test_no_function_over_150_lines() -> None:
    too_long = long_functions()
    assert not too_long, "functions over 150 lines: " + ", ".join(
        f"{name} ({n} lines)" for name, n in too_long)


def test_the_check_sees_long_functions(tmp_path: Path) -> None:
    def function(name: str, lines: int) -> str:  # a def line and lines - 1 statements
        return f"def {name}():\n" + "".join(f"    x{i} = {i}\n" for i in range(lines - 1))

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text(function("short", LIMIT) + "\n\nclass C:\n"
                              + function("long", LIMIT + 1).replace("\n", "\n    ")
                              .replace("def ", "    def ", 1))
    assert long_functions(pkg) == [(f"pkg/m.py:{LIMIT + 4} long", LIMIT + 1)]
