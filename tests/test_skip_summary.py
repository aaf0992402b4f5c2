"""The test run prints one line per distinct skip reason, with its count (tests/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SAMPLE = '''
import pytest

@pytest.mark.parametrize("n", range(3))
def test_a(n):
    pytest.skip("no GPU: a long reason with the install hint")

def test_b():
    pytest.skip("no GPU: a long reason with the install hint")

@pytest.mark.skip(reason="another reason")
def test_c():
    pass

def test_d():
    pass
'''


def test_one_line_per_reason_with_its_count(tmp_path):
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfExX",
                           "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert lines == ["SKIPPED [4] no GPU: a long reason with the install hint", "SKIPPED [1] another reason"]
    assert "skipped, by reason" in proc.stdout and "1 passed, 5 skipped" in proc.stdout
