"""The package layering: shared/ is a library, services are islands, nothing imports in a circle.

``shared`` (the library) imports no service and not ``optbot``; a service imports
``shared`` only, never another service nor ``optbot`` (the operator tooling, the top
layer). And no module imports itself round a circle: every import counts, at module
level, under ``TYPE_CHECKING`` or inside a function, because each is a dependency
that a refactoring must respect even when Python happens to tolerate it at run time.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from tests import source_ast

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "services", "optbot")
# Calls that import the module named by their first (string) argument.
DYNAMIC = {"import_module", "find_spec", "__import__"}


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # dotted module name as written, relative imports resolved
    names: tuple[str, ...] = ()  # ``from target import names``


def module_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages (``__init__`` = package)."""
    out: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(module: str, path: Path) -> Iterator[Import]:
    """Every import in the file, wherever it sits, including ``importlib`` by string."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(source_ast.parse_file(path)):
        if isinstance(node, ast.Import):
            yield from (Import(node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*parts, *([node.module] if node.module else [])])
            yield Import(node.lineno, target, tuple(a.name for a in node.names))
        elif isinstance(node, ast.Call) and _called(node) in DYNAMIC and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield Import(node.lineno, first.value)


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The first-party module an import loads: the longest known prefix of its name."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def _loads(imp: Import, modules: dict[str, Path]) -> Iterator[str]:
    """``from pkg import name`` loads ``pkg.name`` when that is a module, else ``pkg``."""
    subs = [f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in modules]
    yield from subs
    target = _resolve(imp.target, modules)
    if target is not None and (len(subs) < len(imp.names) or not imp.names):
        yield target


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, dict[str, int]]:
    """module -> {first-party module it imports: line of the first such import}."""
    modules = module_files(root, packages)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for imp in imports(name, path):
            for target in _loads(imp, modules):
                if target != name:
                    edges.setdefault(target, imp.line)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, int]], among: set[str] | None = None) -> list[str] | None:
    """One import circle (``among`` these modules) as a path, first module repeated last."""
    nodes = set(graph) if among is None else among
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(set(graph.get(node, {})) & nodes):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(nodes):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def tangles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The groups of modules that reach each other (strongly connected, more than one)."""
    reach = {n: _reachable(graph, n) for n in graph}
    groups: list[set[str]] = []
    for node in sorted(graph):
        group = {m for m in reach[node] if node in reach[m]} | {node}
        if len(group) > 1 and group not in groups:
            groups.append(group)
    return groups


def _reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, {}))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, {}))
    return seen


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One circle per tangle: each names a knot to cut."""
    return [c for g in tangles(graph) if (c := find_cycle(graph, g)) is not None]


def _describe(graph: dict[str, dict[str, int]]) -> str:
    """Each tangle's modules, then one circle through it, import by import."""
    out: list[str] = []
    for group in tangles(graph):
        cycle = find_cycle(graph, group) or []
        out.append(f"{len(group)} modules import each other: {', '.join(sorted(group))}")
        out += [f"  {a} -> {b}  (line {graph[a][b]})" for a, b in pairwise(cycle)]
    return "\n".join(out)


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``path:line -> target`` for each import under ``package`` of a forbidden name."""
    return [
        f"{path.relative_to(ROOT)}:{imp.line} -> {imp.target}"
        for name, path in module_files(ROOT, (package,)).items()
        for imp in imports(name, path)
        if imp.target.split(".")[0] in forbidden
    ]


def _module_paths(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """Strings that are a dotted path into a forbidden package: imports waiting to happen
    (the old registry named each service module so, for ``importlib`` to load)."""
    shape = re.compile(rf"^({'|'.join(forbidden)})(\.\w+)+$")
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} -> {node.value!r}"
        for path in module_files(ROOT, (package,)).values()
        for node in ast.walk(source_ast.parse_file(path))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and shape.match(node.value)
    ]


def test_shared_when_scanned_imports_no_service_and_not_the_operator_tooling() -> None:
    offenders = _offenders("shared", ("services", "optbot"))
    # a service module named by string too ("optbot.*" strings are logger names)
    offenders += _module_paths("shared", ("services",))
    assert offenders == [], "shared/ is library code only:\n" + "\n".join(offenders)


def test_services_when_scanned_import_no_other_service() -> None:
    graph = import_graph(ROOT)
    offenders = [
        f"{a} -> {b}"
        for a, edges in graph.items()
        if a.startswith("services.")
        for b in edges
        if b.startswith("services.") and b.split(".")[:2] != a.split(".")[:2]
    ]
    assert offenders == [], "services talk over Redis only:\n" + "\n".join(offenders)


def test_services_when_scanned_import_not_the_operator_tooling() -> None:
    offenders = _offenders("services", ("optbot",))
    assert offenders == [], "optbot/ is the top layer:\n" + "\n".join(offenders)


def test_packages_when_imports_followed_have_no_circle() -> None:
    graph = import_graph(ROOT)
    assert circles(graph) == [], "import circles:\n" + _describe(graph)


def test_registry_when_compared_with_the_roster_names_each_service_once() -> None:
    from optbot.registry import SERVICES
    from shared.contract import SERVICES as ROLES
    from shared.roster import START_ORDER

    assert [s.name for s in SERVICES] == list(START_ORDER)
    assert sorted(START_ORDER) == sorted(ROLES)
    assert all(s.available() for s in SERVICES)


# --- the scanner itself, on small packages written for the purpose ---------------------


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in {"pkg/__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


CIRCLES = {
    "function-local": {
        "pkg/session.py": "def dispatch():\n    from .handlers import TABLE\n",
        "pkg/handlers.py": "from .session import dispatch\nTABLE = {}\n",
    },
    "type-checking only": {
        "pkg/faults.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from pkg.server import Server\n",
        "pkg/server.py": "from pkg import faults\n",
    },
    "through the package": {
        "pkg/__init__.py": "from .server import Server\n",
        "pkg/server.py": "from pkg.sub import x\nclass Server: ...\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/x.py": "def f():\n    from .. import Server\n",
    },
    "by importlib": {
        "pkg/a.py": "import importlib\nB = importlib.import_module('pkg.b')\n",
        "pkg/b.py": "from pkg.a import B\n",
    },
}


@pytest.mark.parametrize("files", CIRCLES.values(), ids=CIRCLES.keys())
def test_cycle_finder_when_modules_import_in_a_circle_reports_the_path(
    tmp_path: Path, files: dict[str, str]
) -> None:
    graph = import_graph(_package(tmp_path, files), ("pkg",))
    [cycle] = circles(graph)
    assert cycle[0] == cycle[-1] and len(cycle) >= 3, graph
    assert all(b in graph[a] for a, b in pairwise(cycle))


def test_cycle_finder_when_imports_only_go_down_finds_none(tmp_path: Path) -> None:
    files = {
        "pkg/protocol.py": "import json\n",
        "pkg/session.py": "from typing import Protocol\nfrom .protocol import json\n",
        "pkg/handlers.py": "from . import session\nfrom .session import json\n",
        "pkg/server.py": "def run():\n    from pkg.handlers import session\n",
    }
    graph = import_graph(_package(tmp_path, files), ("pkg",))
    assert circles(graph) == [], graph
    assert graph["pkg.handlers"] == {"pkg.session": 1}
    assert graph["pkg.server"] == {"pkg.handlers": 2}
