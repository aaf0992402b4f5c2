"""camadas's top-level packages, and the check that the ones a package imports are camadas's own.

camadas keeps the book's import names (``from layers.base import Layer``), so
its packages are top-level modules (``backend``, ``kernels``, ``layers``, ...)
and other modules of the same name can hide them: a user's ``layers.py`` earlier
on ``sys.path``, or PyPI's ``kernels`` whose files pip merged into camadas's
folder. Each package marks itself (``__camadas__ = True``) and, before importing
a sibling, calls :func:`require_own`, which raises one :class:`ForeignModuleError`
naming the module, the file in the way and the fix, instead of a confusing
``cannot import name`` later. This module imports nothing of camadas.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

#: camadas's top-level packages (``camadas.<name>`` is the same module object as ``<name>``).
PACKAGES = ("backend", "kernels", "layers", "optimizers", "models", "bench")

#: The attribute every camadas package sets (to True) at the top of its ``__init__``.
MARKER = "__camadas__"

#: The folder that holds ``camadas/`` and the packages (site-packages, or the source checkout).
ROOT = Path(__file__).resolve().parent.parent


class ForeignModuleError(ImportError):
    """A module named like one of camadas's packages is not camadas's (it shadows it, or was merged into it)."""


def require_own(importer: str, names) -> None:
    """Check that each top-level module in ``names`` is camadas's own, without importing it.

    An already imported module must carry the marker attribute; one not imported
    yet must be found in camadas's folder (:data:`ROOT`) and its ``__init__.py``
    must set the marker (read as text, so a foreign file is never executed).

    Parameters
    ----------
    importer : str
        Who asks (a package name, or ``"camadas"``); it starts the error message.
    names : iterable of str
        Top-level module names from :data:`PACKAGES`.

    Raises
    ------
    ForeignModuleError
        A module is someone else's: the message names it, the file in the way and the fix.
    ImportError
        A package of camadas is missing altogether (a broken install).
    """
    for name in names:
        module = sys.modules.get(name)
        if module is not None:
            if getattr(module, MARKER, False) is True:
                continue
            found = _module_file(module)
        else:
            spec = importlib.util.find_spec(name)
            if spec is None:
                raise ImportError(f"{importer}: camadas's package {name!r} is missing from {ROOT}; "
                                  f"reinstall camadas (pip install --force-reinstall camadas)", name=name)
            found = _spec_file(spec)
            if found is not None and _in_own_folder(name, found) and _sets_marker(found):
                continue
        if found is not None and _in_own_folder(name, found):
            raise ForeignModuleError(_merged_message(importer, name, found), name=name, path=found)
        raise ForeignModuleError(_shadow_message(importer, name, found, imported=module is not None),
                                 name=name, path=found)


def _in_own_folder(name: str, found: str) -> bool:
    """Whether ``found`` lies in camadas's folder of package ``name``."""
    path = Path(found).resolve()
    return (ROOT / name).resolve() in (path, *path.parents)


def _module_file(module) -> str | None:
    return getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", ())), None)


def _spec_file(spec) -> str | None:
    """The file (``__init__.py`` or module) or, for a namespace package, the first folder a spec points to."""
    if spec.origin and spec.has_location:
        return spec.origin
    return next(iter(spec.submodule_search_locations or ()), None)


def _sets_marker(path: str) -> bool:
    """Whether the package ``__init__.py`` at ``path`` sets the marker (a sourceless ``.pyc`` passes)."""
    if path.endswith((".pyc", ".pyo")):
        return True
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:  # a folder (namespace package: camadas's always have an __init__.py) or unreadable
        return False
    return f"{MARKER} = True" in text


def _shadow_message(importer: str, name: str, found: str | None, imported: bool) -> str:
    state = "is already imported from" if imported else "resolves to"
    return (f"{importer}: the module {name!r} {state} {found}, which is not camadas's package "
            f"(camadas's is {ROOT / name}); it comes earlier on sys.path and hides camadas's. "
            f"Fix: rename {found} (one Python process holds one module named {name!r}), "
            f"or take its folder off sys.path/PYTHONPATH.")


def _merged_message(importer: str, name: str, found: str) -> str:
    owners = _other_distributions(name)
    owner = f" (also installed by: {', '.join(owners)})" if owners else ""
    fix = (f"pip uninstall {' '.join(owners)} && pip install --force-reinstall camadas" if owners
           else "pip install --force-reinstall camadas")
    return (f"{importer}: {found} is not camadas's {name!r} package: another distribution installed files into "
            f"camadas's folder{owner}; pip merges packages that share a name. "
            f"Fix: {fix}, or keep the two in separate environments.")


def _other_distributions(name: str) -> list[str]:
    """Installed distributions other than camadas that provide the top-level module ``name``."""
    from importlib.metadata import packages_distributions

    return sorted({d for d in packages_distributions().get(name, ()) if d.lower() != "camadas"})
