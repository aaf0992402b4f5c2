"""Checked values of the benchmark command line: argparse types that refuse bad input before any run.

Each function takes the option's text and returns the value, or raises
``argparse.ArgumentTypeError`` with what was expected and what was received,
which argparse turns into a usage error (exit status 2) before the benchmark
starts: no traceback, and no half-finished run that fails at the end because
its output path cannot be written.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from .common import parse_sizes


def _int(text) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text) -> int:
    """An integer >= 1 (repeat counts, epochs, layer sizes)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def nonnegative_int(text) -> int:
    """An integer >= 0 (retries, sample images)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def seed(text) -> int:
    """A random seed: an integer in [0, 2^32) (what NumPy's and PyTorch's generators accept everywhere)."""
    value = _int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer between 0 and 2^32 - 1, got {value}")
    return value


def positive_float(text) -> float:
    """A finite number > 0 (seconds, learning rates)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


#: Largest element count ``--sizes`` accepts (2^34 float32 elements are 64 GiB per array).
MAX_SIZE = 1 << 34


def sizes(text) -> list:
    """Element counts (``"2^16,2^20"``, see :func:`bench.common.parse_sizes`), each at most :data:`MAX_SIZE`."""
    try:
        values = parse_sizes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--sizes: ")) from None
    too_large = [v for v in values if v > MAX_SIZE]
    if too_large:
        raise argparse.ArgumentTypeError(f"expected at most 2^34 elements per size, got {too_large[0]:,}")
    return values


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable_directory(directory: Path, what: str, text: str) -> None:
    existing = _nearest_existing(directory)
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{what} {text!r}: {existing} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{what} {text!r}: the directory {existing} is not writable")


def output_file(text) -> str:
    """A file the run can write at the end: not a directory, in a directory that exists or can be made."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file path, got the directory {text!r}")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"the file {text!r} exists and is not writable")
    _check_writable_directory(path.parent.resolve(), "file", text)
    return text


def output_dir(text) -> str:
    """A directory the run can write into: existing and writable, or creatable."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a directory, got the file {text!r}")
    _check_writable_directory(path.resolve(), "directory", text)
    return text
