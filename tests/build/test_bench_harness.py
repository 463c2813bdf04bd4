"""The benchmarks' shared helpers: how runs are combined, what counts as the code measured, R.

The benchmarks are scripts that time things (``make bench``); these tests check only the
bookkeeping that decides what their published files say, never a time.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import harness  # noqa: E402


def test_combine_runs_takes_median_times_and_highest_peaks():
    runs = [
        {"label": "a", "seconds": 3.0, "peak": 10.0, "load": math.nan},
        {"label": "a", "seconds": 1.0, "peak": 30.0, "load": 1.5},
        {"label": "a", "seconds": 2.0, "peak": 20.0, "load": math.nan},
    ]
    row = harness.combine_runs(runs, ("seconds",), ("peak", "load"))
    assert row == {"label": "a", "seconds": 2.0, "peak": 30.0, "load": 1.5, "runs": 3}
    assert runs[-1]["seconds"] == 2.0 and "runs" not in runs[-1]  # the inputs are not modified


def test_combine_runs_of_missing_values_only_stays_missing():
    row = harness.combine_runs([{"t": 1.0, "peak": math.nan}] * 2, ("t",), ("peak",))
    assert math.isnan(row["peak"]) and row["runs"] == 2


def test_require_r_names_the_option_that_times_python_only(monkeypatch):
    monkeypatch.setattr(harness.shutil, "which", lambda name: None)
    assert harness.r_problem(("lme4",)) == "Rscript is not on PATH"
    with pytest.raises(SystemExit) as stop:
        harness.require_r(("lme4",), "benchmarks/models.py", "--skip-r")
    message = str(stop.value)
    assert message.startswith("benchmarks/models.py: R cannot be run here (Rscript is not on")
    assert message.rstrip().endswith("pass --skip-r to time Python only.")
    assert "\n" not in message


def test_commit_ignores_results_but_not_code(tmp_path, monkeypatch):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for path in ("pipeline/a.py", "reports/benchmarks/x.md", "README.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("1\n", encoding="utf-8")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    monkeypatch.setattr(harness, "ROOT", tmp_path)
    clean = harness.commit()
    assert clean and not clean.endswith("+changes")
    (tmp_path / "reports/benchmarks/x.md").write_text("2\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("2\n", encoding="utf-8")
    assert harness.commit() == clean  # results and docs are not the code measured
    (tmp_path / "pipeline/a.py").write_text("2\n", encoding="utf-8")
    assert harness.commit() == clean + "+changes"


def test_an_r_fit_that_stops_after_finished_runs_keeps_their_median(monkeypatch, tmp_path):
    import mmrm

    nan = math.nan
    runs = iter(
        [(10.0, 9.0, 1.5, ""), (12.0, 11.0, 1.5, ""), (900.0, nan, nan, "stopped at the timeout")]
    )
    monkeypatch.setattr(mmrm, "time_r", lambda *args: next(runs))
    seconds, cpu, criterion, note = mmrm.time_r_repeated(tmp_path, "gls", 900.0, tmp_path, 3)
    assert (seconds, cpu, criterion) == (11.0, 10.0, 1.5)
    assert note.startswith("run 3 of 3: stopped at the timeout") and "2 run(s)" in note
    runs = iter([(900.0, nan, nan, "stopped at the timeout")])  # the first run: a bound only
    assert mmrm.time_r_repeated(tmp_path, "gls", 900.0, tmp_path, 3)[0] == 900.0


def _dask_row(workers: int, wall: float) -> dict:
    return {
        "run": f"dask-{workers}w",
        "backend": "dask",
        "workers": workers,
        "runs": 3,
        "patients": 20_000,
        "wall_s": wall,
        "cpu_s": wall,
        "commit": "abc",
    }


def test_scale_projects_workers_only_when_the_second_worker_helped():
    import pandas as pd
    import scale

    helped = scale.summary(pd.DataFrame([_dask_row(1, 24.0), _dask_row(2, 20.0)]))
    assert "T(N) = 16 s + 8 s / N" in helped  # 24 = 16 + 8, 20 = 16 + 8 / 2
    slower = scale.summary(pd.DataFrame([_dask_row(1, 14.4), _dask_row(2, 15.1)]))
    assert "T(N)" not in slower and "No projection at 20,000 patients" in slower
    assert "(15.1 s) was not faster than the 1-worker run (14.4 s)" in slower
