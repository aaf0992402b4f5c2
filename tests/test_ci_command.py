"""CI runs exactly the README's test command (with the gpu-compile extra, so the GPU compile tier runs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^python -m pip install -e \"\.\[[^\]]*\]\" && python -m pytest$", readme, re.MULTILINE)
    assert len(commands) == 1, commands
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert commands[0] in ci
    assert "gpu-compile" in commands[0] and "test" in commands[0]
