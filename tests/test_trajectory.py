"""The trajectory model of SAP §4.1 as the pipeline fits it, against lme4/lmerTest."""

from pathlib import Path

import pandas as pd
import pytest
from factories import write_config
from rcompare import check_against, parse_r

from pipeline.config import ModelSettings, load_config
from pipeline.derive import analysis_dataset
from pipeline.ingest import read_raw_tables
from pipeline.lmm import ModelDataError
from pipeline.trajectory import fit_trajectory, model_rows
from pipeline.validate import validate_study

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "raw" / "demo"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    inputs = {name: DEMO / f"{name}.csv" for name in ("patients", "sessions", "assessments")}
    config = load_config(write_config(tmp_path_factory.mktemp("cfg"), inputs))
    v = validate_study(read_raw_tables(inputs))
    return analysis_dataset(
        v.valid("patients"), v.valid("sessions"), v.valid("assessments"), config
    )


def test_demo_trajectory_agrees_with_lmertest(demo_data, lmer_r, tmp_path):
    """R: lmerTest::lmer(nrs ~ weeks * depth + chronicity + (1 + weeks | patient_id),
    REML = TRUE), default lmerControl, depth and chronicity relevelled to superficial and acute,
    on the same rows; summary(fit)$coefficients and VarCorr(fit)."""
    result = fit_trajectory(demo_data, "nrs", "nrs", "depth", ModelSettings())
    rows = model_rows(demo_data, "nrs", "depth", "weeks", ("chronicity",))
    csv = tmp_path / "demo_rows.csv"
    rows.assign(depth=rows["depth"].astype(str), chronicity=rows["chronicity"].astype(str)).to_csv(
        csv, index=False
    )
    ref = parse_r(
        lmer_r(
            csv,
            "nrs ~ weeks * depth + chronicity + (1 + weeks | patient_id)",
            True,
            tight=False,
            relevel={"depth": "superficial", "chronicity": "acute"},
        )
    )
    assert ref["n_obs"] == result.fit.n_obs == len(rows)
    check_against(result.fit, ref)
    assert result.fit.criterion <= ref["criterion"] + 1e-7


def test_sessions_time_axis_and_intercept_only(demo_data):
    settings = ModelSettings(time_axis="sessions", random_slope=False, df_method="z")
    result = fit_trajectory(demo_data, "nrs", "nrs", "depth", settings)
    assert "sessions_completed:depth[T.deep]" in set(result.fixed_effects["term"])
    assert result.diagnostics.loc[0, "random_effects"] == "intercept"
    assert (result.fixed_effects["df"] == float("inf")).all()
    assert result.formula.endswith("(1 | patient)")


def test_no_usable_rows_is_a_clear_model_data_error(demo_data):
    with pytest.raises(ModelDataError, match="no assessment has all of nrs, weeks, depth"):
        fit_trajectory(demo_data.assign(nrs=float("nan")), "nrs", "nrs", "depth", ModelSettings())


def test_model_rows_drop_missing_and_unused_levels(demo_data):
    rows = model_rows(demo_data, "odi", "twitch", "weeks", ("chronicity", "sex"))
    assert rows[["odi", "twitch", "chronicity", "sex"]].notna().all().all()
    assert "subacute" not in rows["chronicity"].cat.categories  # no subacute patients in the demo
    assert list(rows["twitch"].cat.categories) == ["no twitch", "twitch"]
    assert isinstance(rows["sex"].dtype, pd.CategoricalDtype)
