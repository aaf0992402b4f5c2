"""Every public name of kernels.* in camadas 0.1 still imports from where it was (issue 16).

The list is ``tests/fixtures/public_names_v0.1.json`` (module -> names), taken
from the 0.1 tree. Moved modules are aliases of the new ones (the same module
objects), so attributes set or read through an old path reach the new module.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_NAMES = json.loads((ROOT / "tests" / "fixtures" / "public_names_v0.1.json").read_text())
KERNEL_MODULES = sorted(m for m in PUBLIC_NAMES if m == "kernels" or m.startswith("kernels."))


def test_the_fixture_lists_kernel_modules():
    assert "kernels.conv2d" in KERNEL_MODULES and "kernels.conv2d_gpu" in KERNEL_MODULES
    assert sum(len(PUBLIC_NAMES[m]) for m in KERNEL_MODULES) > 200


@pytest.mark.parametrize("module_name", KERNEL_MODULES)
def test_every_public_name_of_0_1_imports(module_name):
    for name in KERNEL_MODULES:  # as when the list was taken: every module imported first
        importlib.import_module(name)
    module = importlib.import_module(module_name)
    missing = [name for name in PUBLIC_NAMES[module_name] if not hasattr(module, name)]
    assert not missing, f"{module_name}: no longer has {missing}"


@pytest.mark.parametrize("old, new", [
    ("kernels.conv2d_gpu", "kernels.conv2d.gpu"),
    ("kernels.pool2d_gpu", "kernels.pool2d.gpu"),
    ("kernels.conv2d_registers", "kernels.conv2d.registers"),
    ("kernels.cuda_indexing", "kernels.cuda_launch"),
])
def test_moved_modules_are_the_same_objects(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_flat_names_forward_to_the_cpu_modules():
    from kernels import conv2d, pool2d

    assert conv2d.gemm_kf is conv2d.cpu.gemm_kf
    assert pool2d.max_pool2d_forward_kernel is pool2d.cpu.max_pool2d_forward_kernel
    with pytest.raises(AttributeError, match="no attribute 'not_a_kernel'"):
        conv2d.not_a_kernel  # noqa: B018


def test_no_import_cycle_and_no_gpu_import_in_kernels():
    """Each kernels module imports alone in a fresh process, without CuPy or numba.cuda."""
    modules = sorted({m.split(":")[0] for m in KERNEL_MODULES} | {
        "kernels.conv2d.cpu", "kernels.conv2d.gpu", "kernels.conv2d.reference", "kernels.pool2d.cpu",
        "kernels.pool2d.gpu", "kernels.pool2d.reference", "kernels.cuda_launch", "kernels.geometry"})
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'kernels' or m.startswith('kernels.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "    assert 'cupy' not in sys.modules and 'numba.cuda' not in sys.modules, name\n"
        "print('IMPORTS OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "IMPORTS OK" in result.stdout


def _module_level_imports(path: Path, package: str) -> set:
    """Modules of ``kernels`` that the file at ``path`` imports at module level (ast, no execution)."""
    import ast

    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "kernels" or name.startswith("kernels.")}


def test_kernels_module_graph_has_no_cycle():
    root = ROOT / "kernels"
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else ".".join(parts[:-1])
        modules[name] = path, package
    graph = {}
    for name, (path, package) in modules.items():
        graph[name] = {m for m in _module_level_imports(path, package) if m in modules and m != name}
    # importing a submodule first imports its package: that edge is not a cycle of ours
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [])
    assert "kernels.cuda_launch" in graph and "kernels.conv2d.gpu" in graph
