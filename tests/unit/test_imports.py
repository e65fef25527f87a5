"""Every module of the collection's plugins/ imports first and alone, and their imports form no cycle.

A module that only imports after another one (a cycle between two modules, a name read from a module that
is still being imported) passes every test that happens to import the other one first: so each module is
imported in an interpreter of its own, as Ansible's loader imports a plugin. The modules are found by
walking plugins/, so a module added later is held to this too.
"""

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PLUGINS = ROOT / "plugins"
# pytest's pythonpath (pyproject.toml): the collection is importable as ansible_collections.netlab.lab.
COLLECTIONS = ROOT / ".collections"
PACKAGE = "ansible_collections.netlab.lab.plugins"


def module_name(path: Path) -> str:
    parts = path.relative_to(PLUGINS).with_suffix("").parts
    return ".".join((PACKAGE, *(parts[:-1] if parts[-1] == "__init__" else parts)))


MODULES = {module_name(path): path for path in sorted(PLUGINS.rglob("*.py"))}


def test_every_kind_of_plugin_is_found():
    kinds = {name.removeprefix(f"{PACKAGE}.").split(".")[0] for name in MODULES}
    assert {"plugin_utils", "filter", "callback", "action", "modules", "module_utils", "test"} <= kinds
    assert f"{PACKAGE}.plugin_utils.report.raw" in MODULES


def import_alone(name: str) -> subprocess.CompletedProcess:
    """``import name`` in a new interpreter (-I: no PYTHONPATH, no current directory) that sees the collection."""
    code = "import importlib, sys; sys.path.insert(0, sys.argv[1]); importlib.import_module(sys.argv[2])"
    return subprocess.run([sys.executable, "-I", "-c", code, str(COLLECTIONS), name], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def imported() -> dict[str, subprocess.CompletedProcess]:
    # A few interpreters at a time: each spends most of its time loading its imports.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(MODULES, pool.map(import_alone, MODULES), strict=True))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_module_imports_first_and_alone(name, imported):
    proc = imported[name]
    assert proc.returncode == 0, f"import {name} in a fresh interpreter failed:\n{proc.stderr}"


def imports_of(path: Path) -> set[str]:
    """The collection's modules a module imports, at its top or inside a function (a lazy import)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno}: a relative import")
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(PACKAGE)}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            # from <package> import <module>, or from <module> import <name>.
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                      for alias in node.names}
    return found


def test_the_imports_form_no_cycle():
    graph = {name: imports_of(path) & MODULES.keys() for name, path in MODULES.items()}
    assert graph[f"{PACKAGE}.plugin_utils.report.run_report"] >= {f"{PACKAGE}.plugin_utils.report.charts"}
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycles.append(path[path.index(name):])
            return
        for other in sorted(graph[name]):
            visit(other, [*path, name])

    for name in sorted(graph):
        visit(name, [])
    assert not cycles, "\n".join(sorted({" -> ".join([*cycle, cycle[0]]) for cycle in cycles}))
