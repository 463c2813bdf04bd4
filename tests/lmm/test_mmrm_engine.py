"""The MMRM engine without R: closed forms on balanced complete data, derivatives, fallback.

On balanced complete data with visit-specific effects (``y ~ visit * (arm + baseline)``) and an
unstructured Sigma, the MMRM is multivariate regression: the GLS estimate at each visit is
that visit's ordinary least squares, ``Sigma`` is the residual cross-product over ``n - q``
(REML), and the visit contrast's t statistic is exact with ``n - q`` df (``q`` columns per
visit). Kenward-Roger and Satterthwaite must both return ``n - q`` there (Kenward & Roger
1997, section 5: the approximation reproduces exact F tests), and the sandwich covariance
must equal each visit's HC0 covariance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.analyses.simulated_trial import simulate_mmrm_trial
from pipeline.lmm.covariance import STRUCTURES, get_structure
from pipeline.lmm.data import ModelDataError
from pipeline.lmm.likelihood import Likelihood
from pipeline.lmm.mmrm import fit_mmrm
from pipeline.lmm.patterns import prepare_mmrm

ARM = "C(arm, Treatment('control'))"


@pytest.fixture(scope="module")
def balanced() -> pd.DataFrame:
    data = simulate_mmrm_trial(15, 4, 0.3, dropout=0.0, missed=0.0, seed=5)
    return data.assign(visit_f=pd.Categorical(data["visit"]))


def _per_visit_ols(data: pd.DataFrame, visit: int) -> tuple[float, float, float, int]:
    """Arm effect, its classical SE, its HC0 SE and the residual df from one visit's OLS."""
    rows = data[data["visit"] == visit]
    z = np.column_stack(
        [np.ones(len(rows)), (rows["arm"] == "active").to_numpy(float), rows["baseline"]]
    )
    y = rows["y"].to_numpy()
    coef, *_ = np.linalg.lstsq(z, y, rcond=None)
    resid = y - z @ coef
    dof = len(y) - z.shape[1]
    bread = np.linalg.inv(z.T @ z)
    classical = bread * (resid @ resid) / dof
    hc0 = bread @ (z.T * resid**2) @ z @ bread
    return coef[1], float(np.sqrt(classical[1, 1])), float(np.sqrt(hc0[1, 1])), dof


@pytest.mark.parametrize("df_method", ["kenward-roger", "satterthwaite"])
def test_balanced_complete_data_give_exact_df_and_ols(balanced, df_method: str) -> None:
    fit = fit_mmrm(
        balanced,
        "y",
        f"visit_f * ({ARM} + baseline)",
        "visit_f",
        "patient",
        "us",
        df_method=df_method,
    )
    diffs = fit.visit_differences("arm", "active", "control")
    for visit, row in zip(range(1, 5), diffs.itertuples(), strict=True):
        estimate, se, _, dof = _per_visit_ols(balanced, visit)
        assert dof == 27
        assert row.estimate == pytest.approx(estimate, rel=1e-7)
        assert row.std_err == pytest.approx(se, rel=1e-6)
        assert row.df == pytest.approx(dof, rel=1e-5)


def test_balanced_sandwich_is_per_visit_hc0(balanced) -> None:
    fit = fit_mmrm(
        balanced,
        "y",
        f"visit_f * ({ARM} + baseline)",
        "visit_f",
        "patient",
        "us",
        df_method="residual",
        robust=True,
    )
    diffs = fit.visit_differences("arm", "active", "control")
    for visit, row in zip(range(1, 5), diffs.itertuples(), strict=True):
        _, _, hc0, _ = _per_visit_ols(balanced, visit)
        assert row.std_err == pytest.approx(hc0, rel=1e-6)
        assert row.df == fit.n_obs - len(fit.design_columns)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_gradient_matches_finite_differences(name: str) -> None:
    data = simulate_mmrm_trial(12, 4, 0.2, seed=2)
    prep = prepare_mmrm(data, "y", f"C(visit) * {ARM} + baseline", "visit", "patient")
    structure = get_structure(name, 4)
    lik = Likelihood(prep, [structure], reml=True)
    rng = np.random.default_rng(0)
    theta = structure.start(np.cov(rng.normal(size=(50, 4)), rowvar=False) + np.eye(4))
    _, grad = lik.criterion_and_gradient(theta)
    for k in range(theta.size):
        step = np.zeros_like(theta)
        step[k] = 1e-6
        numeric = (lik.criterion(theta + step) - lik.criterion(theta - step)) / 2e-6
        assert grad[k] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_patterns_are_shared_and_copies_leave_ml_estimates_unchanged() -> None:
    data = simulate_mmrm_trial(30, 5, 0.5, seed=4)
    formula = f"C(visit) * {ARM} + baseline"
    fit = fit_mmrm(data, "y", formula, "visit", "patient", "us", reml=False, df_method="z")
    # four copies of every patient: the same patterns, so the ML estimates are unchanged, the
    # criterion's data part is four times as large and the SEs halve
    copies = pd.concat([data.assign(patient=data["patient"] + 1000 * k) for k in range(4)])
    fit4 = fit_mmrm(copies, "y", formula, "visit", "patient", "us", reml=False, df_method="z")
    assert fit4.n_patterns == fit.n_patterns < fit.n_subjects
    np.testing.assert_allclose(fit4.params, fit.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit4.covariance[None], fit.covariance[None], rtol=1e-5)
    np.testing.assert_allclose(fit4.fixed_effects.std_err * 2, fit.fixed_effects.std_err, rtol=1e-5)
    assert fit4.criterion == pytest.approx(4 * fit.criterion, rel=1e-9)


def test_fallback_reports_every_step() -> None:
    """Visits 1 and 4 never observed together: their unstructured covariance is not
    identified, so ``us`` fails and the next structure of the order is used."""
    data = simulate_mmrm_trial(40, 4, 0.5, dropout=0.0, missed=0.0, seed=8)
    first_half = data["patient"] % 2 == 0
    data = data[~((first_half & (data["visit"] == 4)) | (~first_half & (data["visit"] == 1)))]
    fit = fit_mmrm(data, "y", f"C(visit) * {ARM} + baseline", "visit", "patient")
    trials = fit.structure_trials
    assert trials["structure"].iloc[0] == "us" and not trials["converged"].iloc[0]
    assert fit.structure == trials["structure"].iloc[-1] != "us"
    assert any(w.startswith("fallback:") for w in fit.warnings)
    assert np.isfinite(fit.aic) and fit.aicc > fit.aic and np.isfinite(fit.bic)


def test_separate_covariance_per_group() -> None:
    data = simulate_mmrm_trial(25, 3, 0.4, seed=6)
    fit = fit_mmrm(
        data,
        "y",
        f"C(visit) * {ARM} + baseline",
        "visit",
        "patient",
        "us",
        covariance_group="arm",
    )
    assert set(fit.covariance) == {"active", "control"}
    assert len(fit.covariance_parameters) == 12
    shared = fit_mmrm(data, "y", f"C(visit) * {ARM} + baseline", "visit", "patient", "us")
    assert fit.criterion < shared.criterion  # more parameters, better fit


def test_user_errors_are_one_sentence() -> None:
    data = simulate_mmrm_trial(10, 3, seed=1)
    twice = pd.concat([data, data.iloc[[0]]])
    with pytest.raises(ModelDataError, match="more than once"):
        fit_mmrm(twice, "y", f"C(visit) * {ARM}", "visit", "patient", "us")
    with pytest.raises(ModelDataError, match="Robust"):
        fit_mmrm(data, "y", f"C(visit) * {ARM}", "visit", "patient", "us", robust=True)
    with pytest.raises(ModelDataError, match="Unknown covariance"):
        fit_mmrm(data, "y", f"C(visit) * {ARM}", "visit", "patient", "banded")
    with pytest.raises(ModelDataError, match="REML"):
        fit_mmrm(data, "y", f"C(visit) * {ARM}", "visit", "patient", "us", reml=False)


def test_package_docstring_example_runs() -> None:
    import doctest

    import pipeline.lmm

    result = doctest.testmod(pipeline.lmm, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0
