"""The ``outcomes`` command run as a user runs it, and the shape its errors must have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def outcomes(*args: object, cwd: Path | str = ROOT) -> subprocess.CompletedProcess:
    """Run ``outcomes <args>`` (``python -m pipeline.cli``) in ``cwd``; capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_sentence_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Assert exit code 2 and one line on stderr, no traceback, holding every fragment."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
