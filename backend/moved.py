"""Old module paths that still import after a file moved (``layers.dense`` -> ``layers.core.dense``).

Files inside a package may move; import paths people wrote may not break. A
package lists its moved modules once::

    from backend.moved import alias_modules
    alias_modules(__name__, {"dense": "layers.core.dense", ...})

and ``import layers.dense`` / ``from layers.dense import Dense`` then give the
*same module object* as ``layers.core.dense`` (no copy, no second import):
``sys.modules`` maps both names to it, and the old name is also set as an
attribute of the package. The new module is imported only when the old name
is first imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name by importing the new module and putting it in ``sys.modules`` under the old name."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return None  # a placeholder module; exec_module swaps it for the real one

    def exec_module(self, module):
        # The import system reads sys.modules[name] after exec_module, so the
        # real module (not the placeholder) is what the importer gets.
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds only the old names registered with :func:`alias_modules`."""

    def __init__(self):
        self.aliases = {}

    def find_spec(self, fullname, path=None, target=None):
        new = self.aliases.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new))


_FINDER = _AliasFinder()


def alias_modules(package: str, mapping: dict) -> None:
    """Make ``<package>.<old>`` import as the module named ``mapping[old]`` (a full dotted name).

    Parameters
    ----------
    package : str
        The package the old names live in (``__name__`` of its ``__init__``).
    mapping : dict of str -> str
        Old submodule name (relative, may be dotted) -> new full module name.
    """
    for old, new in mapping.items():
        _FINDER.aliases[f"{package}.{old}"] = new
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def moved_modules() -> dict:
    """Every registered old module name -> its new name (for tests and documentation)."""
    return dict(_FINDER.aliases)


def package_getattr(package: str):
    """A module-level ``__getattr__`` for ``package`` that imports a moved submodule on attribute access.

    ``import layers; layers.dense`` worked when ``layers/__init__.py`` imported
    ``.dense``; with ``__getattr__ = package_getattr(__name__)`` it still does.
    """

    def __getattr__(name):
        full = f"{package}.{name}"
        if full in _FINDER.aliases:
            return importlib.import_module(full)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
