"""The bad-input catalogue (tests/fuzz/bad_inputs.py): every entry raises the expected error type with a
message naming the argument; never another exception (a crash) and never no error (a silent acceptance)."""

from __future__ import annotations

import logging

import pytest

from tests.fuzz.bad_inputs import answer, catalogue

CATALOGUE = catalogue()


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)  # fit's tqdm bars and callbacks' warnings are not the point here
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize("entry", CATALOGUE, ids=[entry.name for entry in CATALOGUE])
def test_bad_input_is_answered_clearly(entry):
    verdict, detail = answer(entry)
    assert verdict == "clear", f"{entry.name}: {verdict}: {detail} (expected {entry.pattern!r})"


def test_the_catalogue_is_large_and_names_are_unique():
    assert len(CATALOGUE) >= 600
    assert len({entry.name for entry in CATALOGUE}) == len(CATALOGUE)
