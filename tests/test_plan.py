"""Running the plan: parallel workers give the sequential numbers, in the plan's order."""

from pathlib import Path

import pandas as pd
import pytest
from factories import write_config

from pipeline import plan as pl
from pipeline.config import ModelSettings, load_config
from pipeline.derive import analysis_dataset
from pipeline.ingest import read_raw_tables
from pipeline.validate import validate_study

DEMO = Path(__file__).resolve().parents[1] / "data" / "raw" / "demo"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    inputs = {name: DEMO / f"{name}.csv" for name in ("patients", "sessions", "assessments")}
    config = load_config(write_config(tmp_path_factory.mktemp("cfg"), inputs))
    v = validate_study(read_raw_tables(inputs))
    return analysis_dataset(
        v.valid("patients"), v.valid("sessions"), v.valid("assessments"), config
    )


def _without_times(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["fit_seconds"], errors="ignore")


def test_parallel_run_equals_sequential_run(demo_data):
    settings = ModelSettings(df_method="z", random_slope=False)
    plans = pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[:5]
    sequential = pl.run_analyses(plans, "z", workers=1)
    seen = []
    parallel = pl.run_analyses(plans, "z", lambda i, n, p: seen.append((i, n, p)), workers=2)

    assert [(i, n) for i, n, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert [p.analysis for *_, p in seen] == [p.analysis for p in plans]
    assert [r.analysis for r in parallel] == [p.analysis for p in plans]
    for plan, seq, par in zip(plans, sequential, parallel, strict=True):
        for name in seq.tables:
            pd.testing.assert_frame_equal(
                _without_times(seq.tables[name]), _without_times(par.tables[name])
            )
        # the design information (not picklable) is rebuilt for contrasts after the run
        rows = plan.rows.head(20)
        assert par.fit.design_matrix(rows) == pytest.approx(seq.fit.design_matrix(rows))


def test_default_workers_is_bounded_by_plans_and_cores():
    assert pl.default_workers(1) == 1
    assert 1 <= pl.default_workers(100) <= 100
