"""The reliability counts of issue 13: bad inputs answered clearly, hostile checkpoints refused, fuzz cases
against PyTorch and their mismatches.

Runs the generators of ``tests/fuzz`` with a bigger budget than the test suite::

    python tests/fuzz_report.py                       # 300 differential examples per case
    python tests/fuzz_report.py --examples 2000 --seed 7

* bad inputs: every entry of :mod:`tests.fuzz.bad_inputs`, counted as clear,
  unclear (right type, message not naming the argument), crash (another
  exception type) or accepted (no error);
* checkpoints: the cases of ``tests/layers/test_checkpoint_safety.py`` (hostile
  and malformed files, kill during save, stale temporaries), run with pytest;
* differential: every case of :mod:`tests.fuzz.differential` run ``--examples``
  times from a seeded generator (RuntimeWarnings count as failures), counting
  mismatches and other errors. Needs PyTorch.

Exits with status 1 when anything is not clear, refused or matching.
"""

from __future__ import annotations

import argparse
import collections
import logging
import pathlib
import sys
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bad_inputs() -> tuple[collections.Counter, list]:
    """Run the catalogue; return the verdict counts and the entries not answered clearly."""
    from tests.fuzz.bad_inputs import answer, catalogue

    counts, problems = collections.Counter(), []
    logging.disable(logging.WARNING)
    try:
        for entry in catalogue():
            verdict, detail = answer(entry)
            counts[verdict] += 1
            if verdict != "clear":
                problems.append(f"{verdict}: {entry.name}: {detail}")
    finally:
        logging.disable(logging.NOTSET)
    return counts, problems


class _Outcomes:
    """A pytest plugin counting the outcome of every test call, hostile-file cases apart from save cases."""

    def __init__(self):
        self.counts, self.failed = collections.Counter(), []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            kind = "save" if "save" in report.nodeid.split("::")[-1] else "file"
            self.counts[kind, report.outcome] += 1
            if report.outcome == "failed":
                self.failed.append(report.nodeid)


def checkpoints() -> _Outcomes:
    """Run tests/layers/test_checkpoint_safety.py (its slow kill-during-save case included)."""
    import pytest

    outcomes = _Outcomes()
    pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=--import-mode=importlib",
                 str(ROOT / "tests" / "layers" / "test_checkpoint_safety.py")], plugins=[outcomes])
    return outcomes


def differential(examples: int, seed: int) -> tuple[dict, list]:
    """Run every differential case ``examples`` times; return per-case counts and the first failures."""
    from tests.fuzz.differential import Mismatch, cases
    from tests.fuzz.draws import RandomDraw

    rows, problems = {}, []
    for number, case in enumerate(cases()):
        counts = collections.Counter()
        start = time.perf_counter()
        for i in range(examples):
            draw_seed = seed * 1_000_003 + number * 100_003 + i
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", RuntimeWarning)
                    case.run(RandomDraw(draw_seed))
                counts["match"] += 1
            except Mismatch as exc:
                counts["mismatch"] += 1
                if counts["mismatch"] <= 3:
                    problems.append(f"{case.name} (draw seed {draw_seed}): {exc}")
            except Exception as exc:  # noqa: BLE001 (a crash or a warning is a finding too)
                counts["error"] += 1
                if counts["error"] <= 3:
                    problems.append(f"{case.name} (draw seed {draw_seed}): {type(exc).__name__}: {exc}")
        rows[case.name] = (counts, time.perf_counter() - start)
    return rows, problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="differential examples per case (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the differential draws (default 0)")
    parser.add_argument("--skip-checkpoints", action="store_true", help="do not run the checkpoint cases")
    args = parser.parse_args(argv)
    if args.examples < 1 or args.seed < 0:
        parser.error("--examples must be >= 1 and --seed >= 0")
    status = 0

    counts, problems = bad_inputs()
    total = sum(counts.values())
    print(f"bad inputs tried: {total}; answered clearly: {counts['clear']}; unclear message: {counts['unclear']}; "
          f"crashes: {counts['crash']}; silently accepted: {counts['accepted']}")
    for line in problems:
        print("  " + line)
    status |= bool(problems)

    if not args.skip_checkpoints:
        outcomes = checkpoints()
        c = outcomes.counts
        files = sum(n for (kind, _), n in c.items() if kind == "file")
        saves = sum(n for (kind, _), n in c.items() if kind == "save")
        print(f"hostile or malformed checkpoint cases tried: {files}; refused with CheckpointError: "
              f"{c['file', 'passed']}; not refused: {c['file', 'failed']}; skipped: {c['file', 'skipped']}")
        print(f"save-safety cases (kill -9 during save, stale temporaries, unsavable layer): {saves}; "
              f"passed: {c['save', 'passed']}; failed: {c['save', 'failed']}; skipped: {c['save', 'skipped']}")
        for nodeid in outcomes.failed:
            print("  failed: " + nodeid)
        status |= bool(outcomes.failed)

    try:
        import torch
    except ImportError:
        print("differential fuzz against PyTorch: skipped (PyTorch is not installed)")
        return status
    rows, problems = differential(args.examples, args.seed)
    print(f"differential fuzz against PyTorch {torch.__version__} (float64 oracle), {args.examples} examples per "
          f"case, seed {args.seed}:")
    for name, (row, seconds) in rows.items():
        print(f"  {name:28s} run {sum(row.values()):6d}  mismatches {row['mismatch']:4d}  errors {row['error']:4d}"
              f"  ({seconds:.1f} s)")
    run = sum(sum(row.values()) for row, _ in rows.values())
    mismatches = sum(row["mismatch"] for row, _ in rows.values())
    errors = sum(row["error"] for row, _ in rows.values())
    print(f"fuzz cases run against PyTorch: {run} in {len(rows)} properties; mismatches: {mismatches}; "
          f"errors: {errors}")
    for line in problems:
        print("  " + line)
    status |= bool(problems)
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
