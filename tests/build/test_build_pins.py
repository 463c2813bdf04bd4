"""The build is pinned and hashed, and `make report` leaves a clean tree (#13.9, 13.10)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config.settings import load_config

ROOT = Path(__file__).resolve().parents[2]


def makefile_pip_installs() -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if re.search(r"\bpip install\b", line)]


def test_pip_and_setuptools_are_pinned_and_hashed():
    lock = (ROOT / "requirements-build.lock").read_text(encoding="utf-8")
    for tool in ("pip", "setuptools"):
        match = re.search(
            rf"^{tool}==([\w.]+) \\\s*\n\s*--hash=sha256:([0-9a-f]{{64}})", lock, re.M
        )
        assert match, f"{tool} is not pinned with a hash in requirements-build.lock"
    installs = makefile_pip_installs()
    assert installs and all("--require-hashes" in line for line in installs[:2]), installs
    assert any("requirements-build.lock" in line for line in installs)
    assert not any("--upgrade" in line for line in installs)
    editable = [line for line in installs if " -e ." in line]
    assert editable and "--no-build-isolation" in editable[0]  # no unpinned setuptools fetched


def ignored(path: str) -> bool:
    done = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False)
    return done.returncode == 0


def test_every_output_of_make_report_is_an_ignored_file():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    config = load_config(ROOT / "analysis.toml")
    reports = config.outputs.reports.relative_to(ROOT).as_posix()
    processed = config.outputs.processed.relative_to(ROOT).as_posix()
    name = Path(reports).name
    outputs = [
        f"{reports}/outcomes.html",
        f"{reports}/outcomes.pdf",
        f"{reports}/manifest.json",
        f"{reports}/tables/fixed_effects.csv",
        f"{Path(reports).parent.as_posix()}/.{name}.lock",
        f"{Path(reports).parent.as_posix()}/.{name}.staging-{'0' * 32}/outcomes.html",
        f"{processed}/patients.parquet",
        f"{processed}/model_cache/{'0' * 64}.json",
        f"{processed}/quarantine/patients.csv",
        f"{processed}/run_log.csv",
        f"{Path(processed).parent.as_posix()}/.{Path(processed).name}.lock",
    ]
    assert [path for path in outputs if not ignored(path)] == []
    tracked = subprocess.run(
        ["git", "ls-files", reports], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""  # nothing committed where the run writes


def test_reference_tables_live_apart_and_carry_no_machine_dependent_column():
    expected = ROOT / "tests" / "expected" / "tables"
    names = sorted(p.name for p in expected.glob("*.csv"))
    assert "fixed_effects.csv" in names and "diagnostics.csv" in names
    assert "fit_seconds" not in pd.read_csv(expected / "diagnostics.csv").columns
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--expected tests/expected/tables" in makefile
