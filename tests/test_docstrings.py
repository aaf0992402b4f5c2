"""Every public module, class, function and method of the library has a docstring (the house standard).

Public means: reachable from a package of the library (backend, kernels,
layers, optimizers, models, camadas) through modules and names that do not
start with an underscore, and defined in that module (re-exports are checked
where they are defined). A method counts as documented when it inherits a
docstring (``inspect.getdoc``), as an overriding hook does from its base.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

PACKAGES = ("backend", "kernels", "layers", "optimizers", "models", "camadas")


def public_modules():
    """Names of every public module below the library's packages."""
    names = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        names.append(top)
        for info in pkgutil.walk_packages(package.__path__, top + "."):
            if not any(part.startswith("_") for part in info.name.split(".")[1:]):
                names.append(info.name)
    return names


def undocumented(module_name: str) -> list[str]:
    """Public names of ``module_name`` (and methods of its classes) without a docstring."""
    module = importlib.import_module(module_name)
    missing = [] if (module.__doc__ or "").strip() else [f"{module_name} (module)"]
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                documentable = inspect.isfunction(member) or isinstance(member, (classmethod, staticmethod, property))
                if attr.startswith("_") or not documentable:
                    continue
                if not (inspect.getdoc(getattr(obj, attr)) or "").strip():
                    missing.append(f"{module_name}.{name}.{attr}")
    return missing


def test_the_walk_finds_the_library():
    modules = public_modules()
    assert "layers.core.dense" in modules and "optimizers.schedules" in modules and "kernels.conv2d" in modules
    assert len(modules) > 100, len(modules)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_docstring(package):
    missing = [name for module in public_modules() if module.split(".")[0] == package for name in undocumented(module)]
    assert not missing, "no docstring: " + ", ".join(missing)


def test_the_check_sees_a_missing_docstring(tmp_path, monkeypatch):
    (tmp_path / "camadas_doc_probe.py").write_text('"""A module."""\n\ndef documented():\n    """Yes."""\n\n'
                                                  'def bare():\n    pass\n\nclass Thing:\n    """A thing."""\n\n'
                                                  '    def method(self):\n        pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert undocumented("camadas_doc_probe") == ["camadas_doc_probe.bare", "camadas_doc_probe.Thing.method"]
