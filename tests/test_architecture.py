"""The package's import graph: data flows one way, so no module (or subpackage) imports back.

Every ``import`` counts, also those inside functions (a lazy import is still a dependency);
only ``if TYPE_CHECKING:`` blocks are left out, since they never run. A cycle found here is
reported as the chain of modules that closes it.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_resiliency"

# Package-level edges that still close a cycle, each with the change that removes it. The test
# fails when one disappears, so the entry is deleted with the fix.
KNOWN_PACKAGE_EDGES: set[tuple[str, str]] = set()  # none left: a new entry needs a reason and an owner


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imports(name: str, path: Path, is_package: bool, modules: set[str]) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
            if len(submodules) < len(node.names):  # names of the module itself, not only its submodules
                yield target
            yield from submodules


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module -> the package's modules it imports (a parent package's own import is implied, not counted)."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        graph[name] = frozenset(
            target
            for target in _imports(name, path, is_package, set(modules))
            if target in modules and target != name and not name.startswith(target + ".")
        )
    return graph


def cycles(graph: Mapping[str, Collection[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _subpackage(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _explain(component: list[str], graph: Mapping[str, Collection[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members]
    return "\n    ".join(edges)


def test_the_walker_sees_function_level_and_relative_imports() -> None:
    """The graph must see what the cycle tests rely on, or an empty result proves nothing."""
    graph = import_graph()
    assert "pytest_resiliency.ctk.item" in graph["pytest_resiliency.ctk.collect"]  # inside a method
    assert "pytest_resiliency.validate" in graph["pytest_resiliency.budget"]  # absolute, module level
    assert "pytest_resiliency.timeline" in graph["pytest_resiliency.experiment"]  # relative, module level
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_back() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles between modules:\n  " + "\n  ".join(_explain(c, graph) for c in found)


def test_no_subpackage_imports_back() -> None:
    """At the level of the architecture (faults, targets, load, report...): one direction."""
    graph = import_graph()
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if _subpackage(module) != _subpackage(target) and (module, target) not in KNOWN_PACKAGE_EDGES:
                packages.setdefault(_subpackage(module), set()).add(_subpackage(target))
    found = cycles(packages)
    details = []
    for component in found:
        members = set(component)
        details += [
            f"{a} -> {b}"
            for a in sorted(graph)
            for b in sorted(graph[a])
            if _subpackage(a) in members and _subpackage(b) in members and _subpackage(a) != _subpackage(b)
        ]
    assert not found, "import cycles between subpackages:\n  " + "\n  ".join(details)


def test_known_package_edges_still_exist() -> None:
    """An allowed edge that is gone must leave KNOWN_PACKAGE_EDGES too, so the list never hides a new one."""
    graph = import_graph()
    gone = [f"{m} -> {t}" for m, t in sorted(KNOWN_PACKAGE_EDGES) if t not in graph.get(m, frozenset())]
    assert not gone, "no longer imported, delete from KNOWN_PACKAGE_EDGES: " + ", ".join(gone)
