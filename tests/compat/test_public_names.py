"""Every public name of camadas 0.1 (commit c377ee7) still imports from where it imported then.

The list was taken from that tree (``tests/fixtures/public_names_v0.1.json``: names
defined in each module, re-exported by a package or listed in ``__all__``).
Files may move inside a package (the layout of 0.2 grouped ``layers/`` by
family); import paths people wrote may not break.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

NAMES = json.loads((Path(__file__).parents[1] / "fixtures" / "public_names_v0.1.json").read_text())


@pytest.mark.parametrize("module", sorted(NAMES))
def test_every_name_of_the_module_still_imports(module):
    mod = importlib.import_module(module)
    missing = [name for name in NAMES[module] if not hasattr(mod, name)]
    assert not missing, f"{module}: names gone since camadas 0.1: {missing}"


def test_the_fixture_is_not_empty():
    assert sum(len(v) for v in NAMES.values()) > 500 and len(NAMES) > 60


def test_moved_modules_are_the_same_objects():
    import layers.checkpoint
    import layers.dense

    import layers.core.dense
    import layers.saving.checkpoint

    assert layers.dense is layers.core.dense
    assert layers.checkpoint is layers.saving.checkpoint
    from layers.loss_base import Loss

    from layers.losses import Loss as Loss2

    assert Loss is Loss2


def test_the_book_import_line():
    from layers.base import Layer  # exactly as the book prints it

    assert Layer.__module__ == "layers.base"
