"""The import graph of vyxops and its simulator, and its circles (issue 21): a test and bench/house.py read it.

An arrow is an import that runs: at the top of a module or inside a function (one placed there to
dodge a circle hides the circle without breaking it). Only ``if TYPE_CHECKING:`` imports, which
never run, are left out. A circle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vyxops", "vyxops_sandbox")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` runs)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend([node.test, *node.orelse])
            continue
        stack.extend(ast.iter_child_nodes(node))


def _base(me: str, package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative ones resolved against ``me``)."""
    if node.level == 0:
        return node.module or ""
    parts = me.split(".") if package else me.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def arrows_of(source: str, me: str, package: bool, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``me`` imports when it runs.

    ``from vyxops.fetch import frames`` is an arrow to ``vyxops.fetch.frames`` (a submodule), while
    ``from vyxops.core.errors import redact`` is an arrow to ``vyxops.core.errors``. A parent package an
    import loads on the way is not an arrow: ``vyxops/__init__.py`` stays light on purpose.
    """
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(me, package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {name for name in found if name in modules and name != me}


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    paths = [p for package in packages for p in sorted((root / package).rglob("*.py"))]
    modules = {module_name(p, root) for p in paths}
    return {
        module_name(p, root): arrows_of(p.read_text(encoding="utf-8"), module_name(p, root), is_package(p), modules)
        for p in paths
    }


def circles(graph: Mapping[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[tuple[str, ...]] = []

    def visit(start: str) -> None:  # iterative: the graph is deep enough to matter
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(tuple(sorted(component)))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def describe(component: tuple[str, ...], graph: Mapping[str, set[str]]) -> str:
    members = set(component)
    lines = [f"circle of {len(component)}: " + ", ".join(component)]
    lines += [f"  {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "\n".join(lines)
