"""Imports that survive a real environment (issue 14, section 1).

* ``camadas`` is the namespaced entry point: ``camadas.layers is layers`` (the same
  module objects, imported lazily), ``from camadas.layers import Dense``,
  ``camadas.__version__``.
* A module named like one of camadas's packages that is not camadas's (a user's
  ``layers.py`` or ``backend/`` earlier on ``sys.path``; a foreign file pip merged
  into camadas's ``kernels/``) gives one ImportError naming the module, the file
  and the fix. These run in subprocesses with temporary folders on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import camadas
from camadas.packages import MARKER, PACKAGES, ForeignModuleError, require_own

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, *path_entries, cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -c code`` with ``path_entries`` (folders) first on PYTHONPATH, then nothing else of ours."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path_entries), "CAMADAS_DEVICE": "cpu"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=cwd or path_entries[0])


def last_error(proc: subprocess.CompletedProcess) -> str:
    """The final line of a traceback (the exception raised), after checking the process failed."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    return proc.stderr.strip().splitlines()[-1]


# --------------------------------------------------------------------------- #
# The namespaced entry point
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", PACKAGES)
def test_camadas_attribute_is_the_same_module(name):
    import importlib

    assert getattr(camadas, name) is importlib.import_module(name)
    assert getattr(importlib.import_module(name), MARKER) is True


def test_from_camadas_imports_give_the_same_objects():
    import layers
    import layers.core.dense
    from camadas.layers import Dense
    from camadas.layers.core.dense import Dense as DeepDense
    from camadas.optimizers import Adam

    import optimizers

    assert Dense is layers.Dense is DeepDense and Adam is optimizers.Adam
    assert sys.modules["camadas.layers"] is layers
    assert sys.modules["camadas.layers.core.dense"] is layers.core.dense


def test_version_from_metadata_or_pyproject():
    import tomllib

    version = camadas.__version__
    assert isinstance(version, str) and version[0].isdigit()
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        expected = installed("camadas")
    except PackageNotFoundError:
        expected = declared
    assert version == expected


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        camadas.nope  # noqa: B018


def test_import_camadas_is_light():
    """``import camadas`` imports none of the packages (they come on first use)."""
    proc = run_python("import sys, camadas; print(sorted(n for n in camadas.PACKAGES if n in sys.modules))", REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_namespaced_imports_in_a_fresh_process():
    code = ("from camadas.layers import Dense\nimport camadas, camadas.backend, layers, backend\n"
            "assert camadas.layers is layers and camadas.backend is backend and Dense is layers.Dense\n"
            "print(camadas.__version__)")
    proc = run_python(code, REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()[0].isdigit()


# --------------------------------------------------------------------------- #
# Shadowing and merged modules
# --------------------------------------------------------------------------- #
def test_require_own_accepts_camadas_packages():
    require_own("test", PACKAGES)  # no error


def test_user_backend_folder_before_ours(tmp_path):
    fake = tmp_path / "backend"
    fake.mkdir()
    (fake / "__init__.py").write_text("def helper():\n    return 1\n", encoding="utf-8")
    proc = run_python("import layers", tmp_path, REPO)
    error = last_error(proc)
    assert error.startswith("camadas.packages.ForeignModuleError: layers: the module 'backend' resolves to "
                            f"{fake / '__init__.py'}"), error
    assert "Fix: rename" in error
    assert proc.stderr.count("Error:") == 1, proc.stderr  # one error, not a chain of them


@pytest.mark.parametrize("statement", ["import camadas.layers", "from camadas.layers import Dense",
                                       "import camadas; camadas.layers", "import models"])
def test_user_layers_module_before_ours(tmp_path, statement):
    """The book tells readers to write their own ``layers``: a ``layers.py`` in their folder hides ours."""
    fake = tmp_path / "layers.py"
    fake.write_text("class Layer:\n    pass\n", encoding="utf-8")
    error = last_error(run_python(statement, tmp_path, REPO))
    assert "ForeignModuleError" in error and f"the module 'layers' resolves to {fake}" in error, error
    assert f"camadas's is {REPO / 'layers'}" in error and "Fix: rename" in error


def test_foreign_module_already_imported(tmp_path):
    fake = tmp_path / "layers.py"
    fake.write_text("X = 1\n", encoding="utf-8")
    error = last_error(run_python("import layers, camadas\ncamadas.layers", tmp_path, REPO))
    assert f"camadas: the module 'layers' is already imported from {fake}" in error, error


def test_foreign_file_merged_into_kernels(tmp_path):
    """PyPI's ``kernels`` installed beside camadas: pip writes its files into the same folder.

    A copy of camadas whose ``kernels/__init__.py`` is someone else's (it imports a
    module that is not installed): importing ``layers`` names that file instead of
    running it (no ModuleNotFoundError of the foreign package's dependency).
    """
    for name in ("camadas", "kernels"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("backend", "layers", "optimizers"):
        (tmp_path / name).symlink_to(REPO / name, target_is_directory=True)
    foreign = tmp_path / "kernels" / "__init__.py"
    foreign.write_text("import huggingface_hub_not_installed\n\ndef get_kernel(name):\n    pass\n",
                       encoding="utf-8")
    proc = run_python("import layers", tmp_path)
    error = last_error(proc)
    assert error.startswith(f"camadas.packages.ForeignModuleError: layers: {foreign} is not camadas's 'kernels' "
                            "package: another distribution installed files into camadas's folder"), error
    assert "Fix: pip install --force-reinstall camadas" in error and "huggingface" not in proc.stderr


def test_error_is_an_import_error():
    assert issubclass(ForeignModuleError, ImportError)
