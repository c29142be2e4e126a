"""The package's floors (docs/architecture.md): each module imports only from floors below its own,
engines and presenters never import each other, and no two modules import each other in a circle.

Imports are read with ``ast`` from every file of ``graphgrad/``, lazy ones (inside functions) too,
so a new circle or an import up the floors fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "graphgrad"

FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("errors", "hooks", "shapes", "naming", "files", "node_rules", "graph", "ops", "autodiff", "feed", "arguments",
              "frontends", "models")),
    ("engines", ("interpret", "compiler", "symbolic", "jacobians")),
    ("presenters", ("printing", "drawing")),
    ("top", ("api", "optim", "checker", "costs")),
    ("facade", ("__init__", "__main__", "cli")),
]
"""Floor of each top-level module or package of graphgrad, lowest first."""

SAME_FLOOR = {("jacobians", "interpret"), ("drawing", "printing")}
"""Imports within the engines' or the presenters' floor that the layout allows: Jacobians are computed
by the interpreter, and the renderer writes its labels with the text printer. Otherwise engines
(and presenters) never import each other; the core, the top floor and the facade build on
themselves freely (but in no circle)."""


def unit(module: str) -> str:
    """``graphgrad.compiler.lowering`` -> ``compiler``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def floor(module: str) -> int:
    u = unit(module)
    for i, (_, units) in enumerate(FLOORS):
        if u in units:
            return i
    raise AssertionError(f"{module} is on no floor: add {u!r} to FLOORS (and to docs/architecture.md)")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    """module -> the graphgrad modules it imports (relative imports resolved, lazy ones included)."""
    mods = {module_name(p): p for p in ROOT.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [f"{target}.{a.name}" for a in node.names]
                found = [n for n in names if n in mods]  # `from . import engine` names a module
                deps.update(found or [target])
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        out[mod] = {d for d in deps if d in mods and d != mod}
    return out


IMPORTS = imports()


def test_every_module_is_on_a_floor():
    for mod in IMPORTS:
        floor(mod)


@pytest.mark.parametrize("mod", sorted(IMPORTS))
def test_imports_go_down_the_floors(mod):
    here = floor(mod)
    for dep in sorted(IMPORTS[mod]):
        there = floor(dep)
        assert there <= here, f"{mod} ({FLOORS[here][0]}) imports {dep} ({FLOORS[there][0]}), a higher floor"
        if there == here and unit(dep) != unit(mod) and FLOORS[here][0] in ("engines", "presenters"):
            assert (unit(mod), unit(dep)) in SAME_FLOOR, (
                f"{mod} imports {dep}: both are {FLOORS[here][0]}, which never import each other")


def test_no_circles():
    """No strongly connected component of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    circles: list[list[str]] = []
    counter = 0
    for start in sorted(IMPORTS):
        if start in index:
            continue
        work = [(start, iter(sorted(IMPORTS[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on_stack.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        circles.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = counter
                counter += 1
                stack.append(w)
                on_stack.add(w)
                work.append((w, iter(sorted(IMPORTS[w]))))
            elif w in on_stack:
                low[v] = min(low[v], index[w])
    assert not circles, "modules that import each other in a circle: " + "; ".join(map(", ".join, circles))


def test_the_checks_see_an_import():
    """The reader itself: a known import is found (a reader that finds none would pass everything)."""
    assert "graphgrad.graph" in IMPORTS["graphgrad.autodiff"]
    assert "graphgrad.compiler.lowering" in IMPORTS["graphgrad.compiler.function"]
