"""No import cycle inside the package: every import points down the pipeline's layers.

The import-linter contract in ``pyproject.toml`` (``make lint``) checks the layers; this test
checks what a layer list cannot: that no group of modules imports itself round, whatever layer
they are in. Imports made inside functions count (a deferred import still ties two modules);
those under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wagtail_publish_hooks"
NAME = PACKAGE.name


def package_modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.relative_to(PACKAGE).parts:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(path: Path, package: str) -> set[str]:
    """The absolute names ``path`` imports, anywhere in it but under ``if TYPE_CHECKING:``:
    for ``from x import y``, ``x.y`` (which is a module, or a name in module ``x``)."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    annotations_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (running a module's parent packages too)."""
    modules = package_modules()

    def containing_module(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for name in imported_names(path, package):
            target = containing_module(name)
            while target and target != NAME:
                if target != module and not module.startswith(target + "."):
                    targets.add(target)
                target = target.rpartition(".")[0]
        graph[module] = targets
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of more than one module that import each other round (Tarjan's algorithm,
    iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_the_graph_sees_deferred_imports_and_skips_annotations():
    graph = import_graph()
    # Deferred (function-level) imports count...
    assert f"{NAME}.outbox" in graph[f"{NAME}.custom_events"]
    # ...and ``from package import module`` names the module, not the package.
    assert f"{NAME}.registry" in graph[f"{NAME}.apps"]
    # Imports for annotations only do not (operational names the worker's ``Outcome`` only in
    # annotations).
    assert f"{NAME}.worker" not in graph[f"{NAME}.operational"]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_inside_the_package():
    cycles = strongly_connected(import_graph())
    assert not cycles, "Modules that import each other round: " + "; ".join(
        ", ".join(group) for group in cycles
    )
