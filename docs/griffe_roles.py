"""Griffe extension for the documentation: the docstrings' Sphinx roles become checked cross-references.

The docstrings are numpydoc with Sphinx roles (``:class:`~layers.base.Layer```,
``:meth:`step```). MkDocs renders Markdown, so before mkdocstrings parses them
each role is resolved the way Sphinx would (the name as written, then relative
to the object, its class, its module and parent packages, following re-exports)
and becomes an autorefs link ``[`Layer`][layers.base.Layer]``. A role that names
one of camadas's packages and resolves to nothing is a warning (an error in
the strict build); other unresolved roles (``:func:`time.perf_counter```) are
shown as code. ``Example`` sections are read as numpydoc's ``Examples``, and a
class's undocumented instance attributes (``self.x = ...`` in ``__init__``) are
left out of the pages.
"""

from __future__ import annotations

import logging
import re

import griffe

from camadas.packages import PACKAGES

PACKAGE_NAMES = ("camadas", *PACKAGES)
ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|data|attr|exc|obj|const):`([^`]+)`")
LOG = logging.getLogger("mkdocs.plugins.camadas.roles")


def _objects(obj):
    """``obj`` and every object inside it that is not an alias."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


def _rendered(obj) -> bool:
    """Whether the site has an anchor for ``obj`` (public path, on a generated module page)."""
    return not any(part.startswith("_") for part in obj.path.split("."))


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring of camadas's packages once they are all loaded."""

    def __init__(self):
        super().__init__()
        self._busy = False
        self._done = False

    def on_package(self, *, pkg, loader, **kwargs):
        if self._busy or self._done or pkg.name not in PACKAGE_NAMES:
            return
        self._busy = True
        try:
            for name in PACKAGE_NAMES:  # cross-package references need every package loaded
                if name not in loader.modules_collection:
                    loader.load(name)
            objects = [obj for name in PACKAGE_NAMES for obj in _objects(loader.modules_collection[name])]
            for obj in objects:
                if obj.is_class:  # undocumented ``self.x = ...`` of __init__: implementation, not API
                    for member in [m for m in obj.members.values() if not m.is_alias and m.is_attribute
                                   and m.labels == {"instance-attribute"} and m.docstring is None]:
                        obj.del_member(member.name)
            for obj in objects:
                if obj.docstring is not None:
                    obj.docstring.value = self._rewrite(obj.docstring.value, obj, loader)
        finally:
            self._busy = False
        self._done = True

    def _rewrite(self, text: str, obj, loader) -> str:
        text = re.sub(r"^(\s*)Example\n(\s*)-------$", r"\1Examples\n\2--------", text, flags=re.MULTILINE)
        return ROLE.sub(lambda match: self._link(match.group(2), obj, loader), text)

    def _link(self, target: str, obj, loader) -> str:
        short = target.startswith("~")
        name = target.lstrip("~.").removesuffix("()")
        shown = name.rpartition(".")[2] if short else name
        found = self._resolve(name, obj, loader)
        if found is not None:
            return f"[`{shown}`][{found}]"
        if name.split(".")[0] in PACKAGE_NAMES:
            LOG.warning(f"{obj.relative_filepath}:{obj.lineno}: {obj.path}: cross-reference {target!r} names "
                        "no documented object")
        return f"`{shown}`"

    @staticmethod
    def _resolve(name: str, obj, loader):
        scopes, scope = [], obj
        while scope is not None:
            if scope.is_module or scope.is_class:
                scopes.append(scope.path + ".")
            scope = scope.parent
        for candidate in (*(s + name for s in scopes), name):
            try:
                found = loader.modules_collection[candidate]
                if found.is_alias:
                    found = found.final_target
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            if _rendered(found):
                return found.path
        return None
