"""No import circle between the library's modules (the layout issue: ``pool2d`` and ``pool2d_gpu`` imported
each other).

The graph has an edge A -> B when module A imports module B at import time
(module level, outside functions; ``from . import x`` and ``from .x import y``
resolved as Python resolves them). A package's ``__init__`` importing its own
submodules is how a package is assembled, so the edges from a package to the
modules inside it are left out; a circle among the remaining edges (for
example ``a.cpu -> a.gpu -> a.cpu``) fails, naming every module on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backend", "kernels", "layers", "optimizers", "models", "camadas")


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the library's packages."""
    found = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _top_level_imports(tree: ast.Module):
    """Import nodes executed at import time: module level, and inside module-level if/try blocks."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try)):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            stack.extend(node.body)
            stack.extend(getattr(node, "orelse", []))
            stack.extend(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                stack.extend(handler.body)


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports at import time}``, restricted to the library's modules."""
    files = module_files()
    graph = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and not (is_package and target.startswith(name + ".")):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_library():
    graph = import_graph()
    assert "kernels.pool2d.cpu" in graph and "kernels.geometry" in graph["kernels.pool2d.cpu"]
    assert "backend.checks" in graph["layers.core.dense"] or "backend" in graph["layers.core.dense"]


def test_no_import_circle():
    found = cycles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_a_circle_is_found():
    assert cycles({"a.cpu": {"a.gpu"}, "a.gpu": {"a.cpu"}, "a": {"a.cpu"}}) == [["a.cpu", "a.gpu"]]
