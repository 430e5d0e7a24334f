"""The project's import graph (issue 15): no cycles, every module imports on its own, and
the case validator stays free of the FEM stack.

- The graph is read from the source: every ``import`` / ``from ... import`` of a project module
  in solver/ and meshes/, at module level and inside functions (a function-level import hides
  a cycle from Python, not from this test); imports under ``if TYPE_CHECKING:`` are skipped
  (they never run); the lazy exports of ``meshes/__init__.py`` (``_LAZY_EXPORTS``) count as
  imports of their submodules. Any strongly connected component of more than one module fails.
- Each module is imported in a fresh interpreter (an import that only works after another
  module was imported first fails here).
- ``bioheat validate`` of a spine case, ``bioheat schema`` and ``bioheat sweep plan`` run in a
  fresh interpreter and must not import dolfinx, petsc4py or gmsh.

Serial only (no mesh); the subprocesses are independent of MPI.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mpi4py import MPI

if MPI.COMM_WORLD.size > 1:  # pragma: no cover
    pytest.skip("serial: starts its own interpreters", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("solver", "meshes")
FEM_STACK = ("dolfinx", "petsc4py", "gmsh")

# Edges still owned by another change; each must name it. The lead removes them at merge.
KNOWN_EDGES: set[tuple[str, str]] = set()

# Modules that must import without the FEM stack: the case schema and loader, the CLI and
# the pure parts of meshes/ that the validator uses.
LIGHT_MODULES = (
    "meshes", "meshes.cavities", "meshes.spine_dimensions",
    "solver.case_checks", "solver.case_errors", "solver.case_loader", "solver.cli", "solver.config",
    "solver.errors", "solver.file_checks", "solver.inputs", "solver.limits", "solver.optics",
    "solver.outdir", "solver.overrides", "solver.tissues", "solver.sweep.cli", "solver.sweep.plan",
    "solver.sweep.spec",
)


def project_modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is package)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            out[".".join(parts)] = (path, is_pkg)
    return out


def _absolute(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_edges(modules: dict[str, tuple[Path, bool]]) -> dict[str, dict[str, list[int]]]:
    """module -> {imported project module: [line numbers]}."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, dict[str, list[int]]] = {}
    for mod, (path, is_pkg) in modules.items():
        out = edges.setdefault(mod, {})
        tree = ast.parse(path.read_text(), filename=str(path))

        def add(target: str | None, line: int) -> None:
            if target and target != mod:
                out.setdefault(target, []).append(line)

        def visit(node: ast.AST) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                if isinstance(child, ast.Import):
                    for alias in child.names:
                        add(known(alias.name), child.lineno)
                elif isinstance(child, ast.ImportFrom):
                    target = _absolute(mod, is_pkg, child.level, child.module)
                    for alias in child.names:
                        sub = f"{target}.{alias.name}"
                        add(known(sub if sub in modules else target), child.lineno)
                elif (isinstance(child, ast.Assign) and len(child.targets) == 1
                      and getattr(child.targets[0], "id", None) == "_LAZY_EXPORTS"):
                    for sub in set(ast.literal_eval(child.value).values()):
                        add(known(f"{mod}.{sub}"), child.lineno)
                visit(child)

        visit(tree)
    return edges


def cycles(edges: dict[str, dict[str, list[int]]], ignore=frozenset()) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    graph = {a: [b for b in bs if (a, b) not in ignore] for a, bs in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph.get(w, ()))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def _describe(comp: list[str], edges) -> str:
    lines = [" <-> ".join(comp)]
    for a in comp:
        for b, where in edges[a].items():
            if b in comp:
                lines.append(f"  {a} -> {b} (lines {where})")
    return "\n".join(lines)


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b": [1]}, "b": {"c": [2]}, "c": {"a": [3]}, "d": {"a": [4]}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles(edges, ignore={("c", "a")}) == []


def test_function_level_imports_are_edges(tmp_path):
    """A cycle hidden in a function body is still a cycle here."""
    pkg = tmp_path / "solver"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    mods = {"solver": (pkg / "__init__.py", True), "solver.a": (pkg / "a.py", False),
            "solver.b": (pkg / "b.py", False)}
    assert cycles(import_edges(mods)) == [["solver.a", "solver.b"]]


def test_import_graph_has_no_cycles():
    modules = project_modules()
    edges = import_edges(modules)
    for a, b in KNOWN_EDGES:  # an allowance that no longer exists must be removed
        assert b in edges.get(a, {}), f"{a} -> {b} is gone: remove it from KNOWN_EDGES"
    found = cycles(edges, ignore=KNOWN_EDGES)
    assert not found, "import cycles:\n" + "\n".join(_describe(c, edges) for c in found)


def _fresh(code: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SPINE_LITT_FAULT", None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


_PROBE = (
    "import importlib, json, sys\n"
    "importlib.import_module({name!r})\n"
    "print(json.dumps(sorted(m for m in {stack!r} if m in sys.modules)))\n"
)


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(project_modules())
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(names, pool.map(lambda n: _fresh(_PROBE.format(name=n, stack=FEM_STACK)), names)))
    failed = {n: r.stderr.strip().splitlines()[-1:] for n, r in results.items() if r.returncode != 0}
    assert not failed, failed
    heavy = {n: json.loads(r.stdout.strip().splitlines()[-1]) for n, r in results.items()}
    assert {n: heavy[n] for n in LIGHT_MODULES if heavy[n]} == {}
    # the check can fail: the FEM modules do load the stack
    assert heavy["meshes.loading"] == ["dolfinx", "gmsh", "petsc4py"]


def _cli_modules(argv: list[str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    code = (
        "import json, sys\n"
        "from solver.cli import main\n"
        f"rc = main({argv!r})\n"
        f"print(json.dumps([rc, sorted(m for m in {FEM_STACK!r} if m in sys.modules)]))\n"
    )
    r = _fresh(code)
    assert r.returncode == 0, r.stderr
    rc, loaded = json.loads(r.stdout.strip().splitlines()[-1])
    assert rc == 0, r.stdout + r.stderr
    return r, loaded


def test_validate_of_a_spine_case_imports_no_fem_stack():
    r, loaded = _cli_modules(["validate", "cases/spine/T8_lytic_intact.toml"])
    assert "valid case 'T8_lytic_intact'" in r.stdout
    assert not any(m in loaded for m in FEM_STACK), loaded


def test_schema_and_sweep_plan_import_no_fem_stack(tmp_path):
    _, loaded = _cli_modules(["schema"])
    assert loaded == []
    r, loaded = _cli_modules(["sweep", "plan", "cases/sweeps/T8_safety_map.toml", "--out", str(tmp_path / "sweep")])
    assert "9 distinct run(s)" in r.stdout and loaded == []
