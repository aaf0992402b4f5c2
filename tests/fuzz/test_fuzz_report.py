"""tests/fuzz_report.py keeps running: one differential example per case, the catalogue, no checkpoint run."""

from __future__ import annotations

import pytest

from tests import fuzz_report


@pytest.mark.slow
def test_the_report_runs_and_finds_nothing(capsys):
    assert fuzz_report.main(["--examples", "1", "--skip-checkpoints"]) == 0
    out = capsys.readouterr().out
    assert "unclear message: 0; crashes: 0; silently accepted: 0" in out
    assert "mismatches: 0; errors: 0" in out or "PyTorch is not installed" in out


def test_the_report_refuses_a_bad_budget(capsys):
    with pytest.raises(SystemExit):
        fuzz_report.main(["--examples", "0"])
    assert "--examples must be >= 1" in capsys.readouterr().err
