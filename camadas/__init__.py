"""camadas: the namespaced entry point to the library's packages.

``camadas.layers``, ``camadas.backend``, ``camadas.kernels``, ``camadas.optimizers``,
``camadas.models`` and ``camadas.bench`` are the very same module objects as the
top-level ``layers``, ``backend``, ... (``camadas.layers is layers``), imported on
first use after checking that they are camadas's own (:mod:`camadas.packages`);
``from camadas.layers import Dense`` and ``import camadas.layers.core.dense`` work
too. ``camadas.onnx.export`` writes a model to ONNX, ``camadas.__version__`` is
the installed version (or the source tree's ``pyproject.toml``'s).

Example
-------
>>> import camadas
>>> from camadas.layers import Dense
>>> camadas.layers.Dense is Dense
True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from .packages import MARKER, PACKAGES, ROOT, ForeignModuleError, require_own

__camadas__ = True

__all__ = ["MARKER", "PACKAGES", "ForeignModuleError", "__version__", "backend", "bench", "kernels", "layers", "models",
           "onnx", "optimizers", "require_own"]


class _PackageLoader(importlib.abc.Loader):
    """Loads ``camadas.<name>[.sub]`` as the module ``<name>[.sub]`` itself (after the ownership check)."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return None  # a placeholder; exec_module puts the real module in its place

    def exec_module(self, module):
        require_own("camadas", [self.target.partition(".")[0]])
        # The import system reads sys.modules[name] after exec_module, so the importer gets the real module.
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _PackageFinder(importlib.abc.MetaPathFinder):
    """Finds ``camadas.<package>`` and everything below it (before the path finder, which would copy them)."""

    def find_spec(self, fullname, path=None, target=None):
        head, _, rest = fullname.partition(".")
        if head != __name__ or rest.partition(".")[0] not in PACKAGES:
            return None
        return importlib.util.spec_from_loader(fullname, _PackageLoader(rest))


if not any(isinstance(finder, _PackageFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _PackageFinder())


def _version() -> str:
    """The installed distribution's version, else the source tree's ``pyproject.toml``'s, else ``0+unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("camadas")
    except PackageNotFoundError:
        pass
    try:
        import tomllib

        with open(ROOT / "pyproject.toml", "rb") as file:
            return tomllib.load(file)["project"]["version"]
    except (OSError, KeyError, ValueError):
        return "0+unknown"


def __getattr__(name: str):
    if name in PACKAGES or name == "onnx":
        return importlib.import_module(f"{__name__}.{name}")
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})

