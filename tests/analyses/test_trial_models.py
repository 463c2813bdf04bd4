"""The models of the example trial (data/raw/examples/trial/): truth recovered, R agreement, API.

The trial's headline is the baseline-adjusted difference deep − sham at the primary visit from
the visit-level MMRM ``y ~ baseline + visit * arm + covariates`` with an unstructured residual
covariance across visits and Kenward-Roger df (:func:`pipeline.analyses.plans.change_plan`);
the trajectory model is secondary.
"""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from rcompare import assert_rel, assert_sig, check_against, check_mmrm_against_gls, parse_r

from pipeline import api
from pipeline.analyses import plans as an
from pipeline.analyses.run import combine, headline, primary_visit, run_analyses, study_plans
from pipeline.demo.trial import PRIMARY_VISIT, TRUE_EFFECTS
from pipeline.schemas.identity import AnalysisKind

ROOT = Path(__file__).resolve().parents[2]
TRIAL = ROOT / "data" / "raw" / "examples" / "trial" / "analysis.toml"


@pytest.fixture(scope="module")
def trial():
    return api.load_study(TRIAL)


@pytest.fixture(scope="module")
def change_fits(trial):
    settings = trial.config.model
    return {
        outcome: an.fit_plan(an.change_plan(trial.data, outcome, "arm", settings), tests=False)
        for outcome in TRUE_EFFECTS
    }


def test_the_true_effects_lie_in_the_95_percent_intervals(change_fits):
    # truth: pipeline.demo.trial.TRUE_EFFECTS (the generating model's deep − sham at each visit)
    for outcome, truths in TRUE_EFFECTS.items():
        contrasts = change_fits[outcome].contrasts.set_index("visit")
        for visit, truth in truths.items():
            row = contrasts.loc[visit]
            assert row["ci_low"] <= truth <= row["ci_high"], (outcome, visit, row.to_dict())


def test_the_primary_visit_is_the_declared_one(trial):
    assert primary_visit(trial.data, trial.config.study) == PRIMARY_VISIT == 1


def _rows_csv(plan: an.ModelPlan, path: Path) -> Path:
    rows = plan.rows.copy()
    for column in rows.columns:
        if isinstance(rows[column].dtype, pd.CategoricalDtype):
            rows[column] = rows[column].astype(str)
    rows.to_csv(path, index=False)
    return path


RELEVEL = {"arm": "sham", "diagnosis": "nonspecific", "sex": "female", "visit_c": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("outcome", list(TRUE_EFFECTS))
def test_the_headline_agrees_with_gls_and_emmeans(trial, gls_r, tmp_path, outcome):
    """R: nlme::gls(y ~ baseline + visit_c * arm + age + sex + diagnosis + symptom_weeks,
    correlation = corSymm(form = ~ visit | patient_id), weights = varIdent(form = ~ 1 |
    visit_c), method = "REML") on the rows the pipeline used, and contrast(emmeans(fit, "arm",
    by = "visit_c", mode = "df.error"), "trt.vs.ctrl") (tests/r/gls_plan.R): the
    baseline-adjusted difference deep − sham at each visit, the fixed effects, SEs and LS means
    to 4 significant digits, the covariance across visits to 3."""
    plan = an.change_plan(trial.data, outcome, "arm", trial.config.model)
    result = an.fit_plan(plan, tests=False)
    assert result.fit.n_obs == len(plan.rows) and result.fit.structure == "us"
    relevel = {k: v for k, v in RELEVEL.items() if k in plan.rows}
    ref = gls_r(
        _rows_csv(plan, tmp_path / "rows.csv"),
        f"{plan.response} ~ {plan.rhs}",
        "arm",
        "visit_c",
        "patient_id",
        relevel=relevel,
    )
    check_mmrm_against_gls(result, ref, "arm")
    assert len(result.contrasts) == 2


@pytest.mark.slow
def test_the_random_intercept_version_still_agrees_with_lmertest(trial, lmer_r, tmp_path):
    """R: lmerTest::lmer(rmdq ~ baseline + visit_c * arm + age + sex + diagnosis + symptom_weeks
    + (1 | patient_id), REML = TRUE, bobyqa rhoend 1e-12): the plan without its residual
    covariance (``repeated=()``) is the random-intercept model the plan used before the MMRM."""
    plan = replace(an.change_plan(trial.data, "rmdq", "arm", trial.config.model), repeated=())
    result = an.fit_plan(plan, tests=False)
    formula = f"{plan.response} ~ {plan.rhs} + (1 | patient_id)"
    relevel = {k: v for k, v in RELEVEL.items() if k in plan.rows}
    ref = parse_r(lmer_r(_rows_csv(plan, tmp_path / "rows.csv"), formula, True, relevel=relevel))
    assert ref["n_obs"] == result.fit.n_obs == len(plan.rows)
    check_against(result.fit, ref)


def test_analyses_are_named_by_comparison_and_outcome(trial):
    plans = study_plans(trial.data, trial.config.model, trial.config.study)
    names = {(p.analysis, p.outcome) for p in plans}
    assert ("trajectory_arm", "rmdq") in names and ("change_arm", "psfs") in names
    assert not any(p.analysis.startswith(("session", "joint")) for p in plans)
    assert headline(trial.config.study.comparison("arm")).kind is AnalysisKind.CHANGE


def test_the_primary_family_is_the_difference_at_the_primary_visit(trial, change_fits):
    arm = trial.config.study.comparison("arm")
    results = list(change_fits.values())
    tables = combine(results, (arm,), PRIMARY_VISIT)
    primary = tables["contrasts"][tables["contrasts"]["family"] == "primary"]
    assert sorted(primary["outcome"]) == ["psfs", "rmdq"]
    assert (primary["visit"] == PRIMARY_VISIT).all() and primary["p_holm"].notna().all()


def test_api_fits_any_declared_outcome_and_comparison(trial, change_fits):
    result = api.fit(
        "change", trial.data, outcome="rmdq", group="arm", settings=trial.config.model, tests=False
    )
    assert (result.analysis, result.outcome) == ("change_arm", "rmdq")
    pd.testing.assert_frame_equal(result.contrasts, change_fits["rmdq"].contrasts)
    with pytest.raises(ValueError, match="unknown group 'depthx'; these data hold"):
        api.fit("change", trial.data, outcome="rmdq", group="depthx")
    with pytest.raises(ValueError, match="unknown outcome 'nrs'; these data hold rmdq, psfs"):
        api.fit("change", trial.data, outcome="nrs", group="arm")


def test_fit_formula_is_the_engine_for_any_fixed_effects(trial):
    plan = an.change_plan(trial.data, "rmdq", "arm", trial.config.model)
    fit = api.fit_formula(plan.rows, f"rmdq ~ {plan.rhs}", "(1 | patient_id)")
    ours = an.fit_plan(replace(plan, repeated=()), tests=False).fit.fixed_effects
    pd.testing.assert_frame_equal(fit.fixed_effects, ours)
    # R: lmer(Reaction ~ Days + (Days | Subject), sleepstudy): 251.4051 and 10.4673, SE 6.825
    # and 1.546, REML criterion 1743.628 (SAP §5)
    sleep = pd.read_csv(ROOT / "tests" / "fixtures" / "sleepstudy.csv")
    slope = api.fit_formula(sleep, "Reaction ~ Days", "(1 + Days | Subject)")
    table = slope.fixed_effects.set_index("term")
    for term, estimate, se in (("Intercept", 251.4051, 6.825), ("Days", 10.4673, 1.546)):
        assert_sig(table.loc[term, "estimate"], estimate, 6, term)
        assert_sig(table.loc[term, "std_err"], se, 4, term)
    assert_rel(slope.criterion, 1743.628, 1e-6, "REML criterion")
    with pytest.raises(ValueError, match="unsupported random part"):
        api.fit_formula(trial.data, "rmdq ~ arm", "(weeks || patient_id)")
    with pytest.raises(ValueError, match="column 'pain' is not in the data"):
        api.fit_formula(trial.data, "pain ~ arm")


def test_a_three_arm_run_fits_every_arm_against_the_reference(trial):
    data = trial.data.copy()
    third = data["patient_id"].isin(data["patient_id"].drop_duplicates().iloc[::3])
    arms = data["arm"].astype(str).where(~third, "usual care")
    data["arm"] = pd.Categorical(arms, categories=["sham", "deep", "usual care"])
    results = run_analyses(
        [an.change_plan(data, "rmdq", "arm", trial.config.model)], "satterthwaite", workers=1
    )
    contrasts = results[0].contrasts
    assert set(contrasts["contrast"].str.partition(",")[0]) == {
        "deep − sham",
        "usual care − sham",
    }
