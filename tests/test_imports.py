"""The import graph of dse's own modules (every import statement, also those inside
functions): no cycle, and no import against the layering (a lower layer never imports a higher
one). Read from the source with ast, so a lazy import that would hide a cycle counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import dse

ROOT = Path(dse.__file__).parent

#: (importer prefix, imported prefix) pairs that must not occur: the data flows one way,
#: from specs and cost models up through the IR and the solvers to the entry points
FORBIDDEN = [
    ("dse.models", "dse.ir"),
    ("dse.models", "dse.solver"),
    ("dse.models", "dse.llm"),
    ("dse.specs", "dse.ir"),
    ("dse.specs", "dse.solver"),
    ("dse.specs", "dse.llm"),
    ("dse.ir", "dse.solver"),
    ("dse.ir", "dse.llm"),
    ("dse.solver", "dse.llm"),
    ("dse.solver", "dse.backends"),
    ("dse.llm", "dse.backends"),
    *[(low, "dse.api") for low in ("dse.models", "dse.specs", "dse.ir", "dse.solver",
                                   "dse.llm", "dse.backends", "dse.devices", "dse.plan",
                                   "dse.optimize", "dse.explore")],
    *[(low, "dse.explore") for low in ("dse.solver", "dse.llm", "dse.ir", "dse.models")],
    *[(low, "dse.optimize") for low in ("dse.solver", "dse.llm", "dse.ir", "dse.models")],
]
CLI_IMPORTERS = ("dse.cli", "dse.__main__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The dse modules ``name`` imports anywhere in its source (``from a import b``: the
    module ``a.b`` where that is a module, else ``a``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "dse")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "dse":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {n: {m for m in imports_of(n, p, known) if m in known} for n, p in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``g`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_upward_import() -> None:
    bad = sorted(f"{a} imports {b} (no {low} module may import {high})"
                 for a, deps in graph().items() for b in deps
                 for low, high in FORBIDDEN if under(a, low) and under(b, high))
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_cli() -> None:
    bad = sorted(f"{a} imports {b}" for a, deps in graph().items() for b in deps
                 if under(b, "dse.cli") and not any(under(a, c) for c in CLI_IMPORTERS))
    assert not bad, "\n".join(bad)


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_function_level_imports_count(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from dse.ir import graph\n    import dse.api\n")
    known = {"dse.ir", "dse.ir.graph", "dse.api"}
    assert imports_of("dse.models.x", src, known) == {"dse.ir.graph", "dse.api"}
