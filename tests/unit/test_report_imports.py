"""solver.report draws from files only: neither it nor any project module it imports (at any
level, function-level imports included) imports the FEM stack. The import graph is the one of
tests/unit/test_import_graph.py (which also checks it has no cycles)."""

from __future__ import annotations

import ast

from tests.unit.test_import_graph import import_edges, project_modules

FEM_STACK = ("dolfinx", "petsc4py", "ufl", "basix")


def imports_fem(module: str) -> list[str]:
    """The FEM-stack packages ``module`` imports, itself or through the project modules it
    imports (at any level)."""
    modules = project_modules()
    edges = import_edges(modules)
    seen, todo, found = set(), [module], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for node in ast.walk(ast.parse(modules[m][0].read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            found |= {n.split(".")[0] for n in names if n.split(".")[0] in FEM_STACK}
        todo += sorted(edges.get(m, {}))
    return sorted(found)


def test_report_has_no_fem_dependency():
    """The report draws from files; plane sampling is on the FEM side (solver.sampling)."""
    assert imports_fem("solver.report") == []
    assert "dolfinx" in imports_fem("solver.sampling")  # the check can fail
