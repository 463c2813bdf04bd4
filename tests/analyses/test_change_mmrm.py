"""The plan's visit-level model is the MMRM (SAP §4.2 and §4.6), for any comparison and outcome.

The engine's numbers are checked against R elsewhere (tests/lmm/test_mmrm_r.py: nlme::gls,
glmmTMB, pbkrtest, emmeans); here the plan must carry them into its tables unchanged, follow
the configured fallback order and df method, say which structure it used and why, and put the
trial's primary-visit difference into the Holm family.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import api
from pipeline.analyses import plans as pl
from pipeline.analyses.run import combine, primary_visit
from pipeline.config.options import ModelSettings
from pipeline.lmm import mmrm as engine
from pipeline.lmm.marginal import holm
from pipeline.lmm.mmrm import MmrmFit
from pipeline.report.sections.methods import mmrm_structure_text
from pipeline.schemas.identity import ContrastKind, Family
from pipeline.schemas.outputs import check_output

ROOT = Path(__file__).resolve().parents[2]
TRIAL = ROOT / "data" / "raw" / "examples" / "trial" / "analysis.toml"


@pytest.fixture(scope="module")
def trial():
    return api.load_study(TRIAL)


def test_trial_change_model_is_the_mmrm_with_kenward_roger(trial):
    settings = trial.config.model
    plan = pl.change_plan(trial.data, "rmdq", "arm", settings)
    assert plan.repeated == ("us", "toeph", "ar1h", "csh", "cs")
    assert plan.repeated_df == "kenward-roger"
    result = pl.fit_plan(plan)
    fit = result.fit
    assert isinstance(fit, MmrmFit) and fit.df_method == "kenward-roger"
    assert fit.structure == "us" and result.formula.endswith("across visits: unstructured")
    # the differences at each visit are the engine's (Kenward-Roger SE and df), unchanged
    own = fit.visit_differences("arm", "deep", "sham")
    table = result.contrasts
    assert (table["kind"] == ContrastKind.VISIT).all()
    assert table["visit"].tolist() == [1, 2]
    np.testing.assert_allclose(table["estimate"], own["estimate"], rtol=1e-12)
    np.testing.assert_allclose(table["std_err"], own["std_err"], rtol=1e-12)
    np.testing.assert_allclose(table["df"], own["df"], rtol=1e-12)
    # LS means per visit and group, as the engine's (emmeans' equal weights)
    means = fit.lsmeans("arm")
    np.testing.assert_allclose(
        result.emmeans["estimate"].to_numpy(), means["estimate"].to_numpy(), rtol=1e-12
    )
    # covariance across the two post-baseline visits, and the structures tried
    vc = result.variance_components
    assert vc["term"].tolist() == ["visit 1", "visit 2", "visit 1 × visit 2"]
    np.testing.assert_allclose(vc["variance"].iloc[0], fit.covariance[None].iloc[0, 0])
    trials = result.covariance_structures
    assert trials["structure"].tolist() == ["us"] and trials["used"].tolist() == [True]
    for name, frame in result.tables.items():
        check_output(name, frame)
    diag = result.diagnostics.iloc[0]
    assert diag["random_effects"] == "none (residual covariance: unstructured)"
    assert diag["fallback"] == ""


def test_df_method_and_structures_follow_the_settings(trial):
    settings = replace(
        trial.config.model, mmrm_structures=("csh", "cs"), mmrm_df_method="satterthwaite"
    )
    result = pl.fit_plan(pl.change_plan(trial.data, "psfs", "arm", settings))
    assert result.fit.structure == "csh" and result.fit.df_method == "satterthwaite"
    own = result.fit.visit_differences("arm", "deep", "sham")
    np.testing.assert_allclose(result.contrasts["df"], own["df"], rtol=1e-12)


def test_primary_visit_difference_joins_the_holm_family(trial):
    settings = trial.config.model
    study = trial.config.study
    results = [
        pl.fit_plan(pl.change_plan(trial.data, o.name, "arm", settings), tests=False)
        for o in study.outcomes
    ]
    visit = primary_visit(trial.data, study)
    assert visit == 1
    tables = combine(results, study.comparisons, visit)
    contrasts = tables["contrasts"]
    primary = contrasts[contrasts["family"] == Family.PRIMARY]
    assert primary["visit"].tolist() == [1, 1]
    assert sorted(primary["outcome"]) == ["psfs", "rmdq"]
    np.testing.assert_allclose(primary["p_holm"], holm(primary["p_value"].to_numpy()))
    assert contrasts.loc[contrasts["family"] == Family.SECONDARY, "p_holm"].isna().all()
    assert len(tables["covariance_structures"]) == 2


def test_fallback_is_followed_and_named_in_the_methods(demo_data, monkeypatch):
    real = engine._fit_structure

    def unstructured_fails(data, name, reml, sigma0):
        lik, theta, hess, ok, message = real(data, name, reml, sigma0)
        if name == "us":
            return lik, theta, hess, False, "the Hessian of the criterion is singular"
        return lik, theta, hess, ok, message

    monkeypatch.setattr(engine, "_fit_structure", unstructured_fails)
    settings = ModelSettings(random_slope=False)
    result = pl.fit_plan(pl.change_plan(demo_data, "nrs", "depth", settings), tests=False)
    fit = result.fit
    assert fit.structure == "toeph"
    trials = result.covariance_structures
    assert trials["structure"].tolist() == ["us", "toeph"]
    assert trials["converged"].tolist() == [False, True]
    assert trials["used"].tolist() == [False, True]
    assert trials["aic"].notna().all()  # the failed structure was fitted: its AIC is reported
    diag = result.diagnostics.iloc[0]
    assert diag["random_effects"] == "none (residual covariance: heterogeneous Toeplitz)"
    assert "unstructured did not converge" in diag["fallback"]
    assert "heterogeneous Toeplitz" in result.formula
    (text,) = mmrm_structure_text({"covariance_structures": trials})
    assert "Change from baseline, depth, nrs: heterogeneous Toeplitz" in text
    assert "unstructured (the Hessian of the criterion is singular)" in text
    assert f"AIC {trials['aic'].iloc[1]:.1f}" in text


def test_a_site_random_intercept_becomes_a_fixed_site_effect(demo_data):
    settings = ModelSettings(random_slope=False, site="random")
    plan = pl.change_plan(demo_data, "odi", "twitch", settings)
    assert plan.site is None and "site" in plan.variables
    assert any("site as a fixed effect" in note for note in plan.notes)
    # the trajectory model keeps its site random intercept
    assert pl.trajectory_plan(demo_data, "odi", "twitch", settings).site == "site"


def test_observational_group_with_no_patients_in_a_level_is_not_estimable(demo_data):
    settings = ModelSettings(random_slope=False)
    data = demo_data.copy()
    data["depth"] = pd.Categorical(["superficial"] * len(data), categories=["superficial", "deep"])
    result = pl.fit_plan(pl.change_plan(data, "nrs", "depth", settings))
    assert result.fit is None
    assert result.diagnostics["status"].iloc[0] == "not estimable"
    assert result.covariance_structures.empty


def test_the_fitted_mmrm_of_each_comparison_and_outcome_is_exposed(trial):
    from pipeline.analyses.run import mmrm_fits

    settings = trial.config.model
    results = [
        pl.fit_plan(pl.change_plan(trial.data, "rmdq", "arm", settings), tests=False),
        pl.fit_plan(pl.trajectory_plan(trial.data, "rmdq", "arm", settings), tests=False),
    ]
    fits = mmrm_fits(results)
    assert list(fits) == [("arm", "rmdq")]
    assert fits[("arm", "rmdq")] is results[0].fit


def test_a_declared_design_report_describes_the_mmrm(trial):
    from pipeline.report import design

    text = " ".join(design.methods(trial.config, {}, {}))
    assert "mixed models for repeated measures (MMRM)" in text
    assert "unstructured → heterogeneous Toeplitz" in text
    assert "Kenward–Roger degrees of freedom" in text


def test_a_trial_with_one_post_baseline_visit_gets_the_analysis_of_covariance(trial):
    import statsmodels.formula.api as smf

    data = trial.data.loc[trial.data["visit"] < 2]
    plan = pl.change_plan(data, "rmdq", "arm", trial.config.model)
    assert "visit_c" not in plan.rhs and plan.reduced == ()
    result = pl.fit_plan(plan)
    assert result.diagnostics["status"].iloc[0] == "ok"
    (row,) = result.contrasts.itertuples()
    # closed form: with one visit the REML MMRM is ordinary least squares (the ANCOVA), its
    # Kenward-Roger df the residual df n - p
    ols = smf.ols(f"rmdq ~ {plan.rhs}", data=result.rows).fit()
    assert row.estimate == pytest.approx(ols.params["arm[T.deep]"], rel=1e-8)
    assert row.std_err == pytest.approx(ols.bse["arm[T.deep]"], rel=1e-6)
    assert row.df == pytest.approx(ols.df_resid, rel=1e-6)
    assert row.visit == 1


def test_a_restored_mmrm_rebuilds_its_rows_only_when_they_are_used(trial, monkeypatch):
    from pipeline.analyses.cache import portable, restore

    plan = pl.change_plan(trial.data, "rmdq", "arm", trial.config.model)
    fitted = pl.fit_plan(plan, tests=False)
    prepared = []
    real = engine.prepare_mmrm
    monkeypatch.setattr(engine, "prepare_mmrm", lambda *a, **k: prepared.append(1) or real(*a, **k))
    restored = restore(portable(fitted), plan)
    fit = restored.fit
    assert prepared == [] and fit.covariance_parameters.equals(fitted.fit.covariance_parameters)
    # the first use rebuilds the rows, design and likelihood once, with the same numbers
    pd.testing.assert_frame_equal(fit.lsmeans("arm"), fitted.fit.lsmeans("arm"))
    assert prepared == [1]
    pd.testing.assert_frame_equal(
        fit.visit_differences("arm", "deep", "sham"),
        fitted.fit.visit_differences("arm", "deep", "sham"),
    )
    pd.testing.assert_frame_equal(
        fit.with_df_method("satterthwaite").fixed_effects,
        fitted.fit.with_df_method("satterthwaite").fixed_effects,
    )
    assert prepared == [1] and len(fit.rows) == len(fitted.fit.rows)
    assert portable(restored).fit.rows is None  # a cache entry never carries the rows
