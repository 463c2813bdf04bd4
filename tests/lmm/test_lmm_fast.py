"""The engine's fast path against its references: exact derivatives, statsmodels, lme4.

The fast path (``FAST_ROUTES``: L-BFGS-B on lme4's criterion with its exact gradient, Newton
refinement, exact Jacobian of the covariance) must reproduce

* the numerical derivatives of the same criterion (five-point and Richardson stencils);
* statsmodels MixedLM's optimum (the ``powell+bfgs`` route) and the derivative-free numpy
  route, on unbalanced clinic data with dropout and missed visits;
* R's lme4 / lmerTest live, at the plan's tolerances (fixed effects and SEs to 4 significant
  digits, variance components to 3, Satterthwaite df within 1 %), for a random intercept and
  a random intercept and slope, REML and ML, and with a site random intercept;

and hand over to statsmodels (or, for the site model statsmodels cannot fit, to the numpy
Powell route) when its optimum is singular or fails lme4's gradient check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clinic_models import (
    CLINIC_FIXED,
    CLINIC_RELEVEL,
    fit_fast,
    r_formula,
    simulate_clinic,
    write_and_reload,
)
from rcompare import assert_rel, assert_sig, check_against, parse_r

from pipeline.lmm import blas
from pipeline.lmm import optim as lmm_optim
from pipeline.lmm.blocks import apply_blocks, block_weights, sandwich_sum, sum_blocks
from pipeline.lmm.data import prepare_data
from pipeline.lmm.deviance import (
    GroupedCrossproducts,
    NestedCrossproducts,
    hessian_richardson,
    jacobian_richardson,
)
from pipeline.lmm.fit import FAST_ROUTES, LmmFit, fit_lmm
from pipeline.lmm.optim import criterion_gradient, newton_refine, numpy_powell

VISIT_FIXED = (
    "C(visit, Treatment('w00')) * C(depth, Treatment('superficial'))"
    " + C(chronicity, Treatment('acute'))"
)
CASES = {
    "slope-REML": (CLINIC_FIXED, "weeks", True),
    "slope-ML": (CLINIC_FIXED, "weeks", False),
    "intercept-REML": (VISIT_FIXED, None, True),
    "intercept-ML": (VISIT_FIXED, None, False),
}


@pytest.fixture(scope="module")
def multisite(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    data = simulate_clinic(200, seed=11, slope_sd=0.1)
    rng = np.random.default_rng(4)
    site_of = {p: f"S{rng.integers(0, 7)}" for p in data["patient"].unique()}
    shift = {f"S{k}": v for k, v in enumerate(rng.normal(0.0, 0.5, 7))}
    data["site"] = data["patient"].map(site_of)
    data["nrs"] = (data["nrs"] + data["site"].map(shift)).round(3)
    path = tmp_path_factory.mktemp("fast_sites") / "multisite.csv"
    return write_and_reload(data, path), path


def _design(data: pd.DataFrame, q: int) -> tuple[np.ndarray, ...]:
    deep = (data["depth"] == "deep").to_numpy(float)
    weeks = data["weeks"].to_numpy(float)
    x = np.column_stack([np.ones(len(data)), weeks, deep, deep * weeks])
    z = np.column_stack([np.ones(len(data)), weeks])[:, :q]
    codes = pd.factorize(data["patient"], sort=True)[0]
    return data["nrs"].to_numpy(float), x, z, codes


# ---------------------------------------------------------------------------------------------
# the algebra


@pytest.mark.parametrize("q", [1, 2, 3])
def test_block_weights_equal_dense_linear_algebra(q: int) -> None:
    rng = np.random.default_rng(q)
    zs = [rng.normal(size=(n, q)) for n in rng.integers(1, 7, 40)]
    gram = np.stack([z.T @ z for z in zs], axis=2)  # (q, q, g)
    lam = np.tril(rng.normal(size=(q, q)))
    logdet, h = block_weights(gram, lam)
    dense_m = [np.eye(q) + lam.T @ (z.T @ z) @ lam for z in zs]
    assert logdet == pytest.approx(sum(np.linalg.slogdet(m)[1] for m in dense_m), rel=1e-12)
    for i, m in enumerate(dense_m):
        np.testing.assert_allclose(h[:, :, i], lam @ np.linalg.inv(m) @ lam.T, atol=1e-12)
    rows = rng.normal(size=(q, len(zs), 5))
    applied = apply_blocks(h, rows)
    for i in range(len(zs)):
        np.testing.assert_allclose(applied[:, i], h[:, :, i] @ rows[:, i], atol=1e-12)
    np.testing.assert_allclose(
        sum_blocks(rows, applied), sum(rows[:, i] @ applied[:, i].T for i in range(len(zs)))
    )
    np.testing.assert_allclose(
        sandwich_sum(gram, h),
        sum(gram[:, :, i] @ h[:, :, i] @ gram[:, :, i] for i in range(len(zs))),
    )


@pytest.mark.parametrize("q", [1, 2])
@pytest.mark.parametrize("nested", [False, True], ids=["patients", "sites"])
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_exact_derivatives_equal_numerical_ones(
    multisite: tuple[pd.DataFrame, Path], q: int, nested: bool, reml: bool
) -> None:
    data, _ = multisite
    y, x, z, codes = _design(data, q)
    theta = np.array([0.9, -0.03, 0.12])[: q * (q + 1) // 2]
    if nested:
        gc = NestedCrossproducts(y, x, z, codes, pd.factorize(data["site"])[0])
        theta = np.r_[theta, 0.45]
    else:
        gc = GroupedCrossproducts(y, x, z, codes)
    crit, grad = gc.criterion_and_gradient(theta, reml)
    assert crit == pytest.approx(gc.profiled_deviance(theta, reml), rel=1e-13)
    numerical = criterion_gradient(gc, theta, reml)
    np.testing.assert_allclose(grad, numerical, rtol=0, atol=1e-6 * np.abs(numerical).max())

    varpar = np.r_[theta, 0.93]
    dev_grad = jacobian_richardson(lambda v: gc.deviance(v, reml), varpar)
    np.testing.assert_allclose(
        gc.deviance_gradient(varpar, reml), dev_grad, rtol=0, atol=1e-7 * np.abs(dev_grad).max()
    )
    jac = jacobian_richardson(gc.vcov_beta, varpar)
    np.testing.assert_allclose(gc.vcov_jacobian(varpar), jac, rtol=0, atol=1e-7 * np.abs(jac).max())


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_gradient_route_reaches_the_powell_optimum_and_newton_fixes_it(
    clinic: tuple[pd.DataFrame, Path], reml: bool
) -> None:
    """From lme4's start, L-BFGS-B (log-scale diagonal, exact gradient) and derivative-free
    Powell land on the same optimum; Newton steps then make theta independent of the path."""
    data, _ = clinic
    gc = GroupedCrossproducts(*_design(data, 2))
    start = np.array([1.0, 0.0, 1.0])
    fast, fast_ok, _ = lmm_optim.numpy_gradient_route(gc, reml, start)
    slow, slow_ok, _ = numpy_powell(gc, reml, start)
    assert fast_ok and slow_ok
    assert fast[2] > 0.01  # not trapped at the saddle theta_22 = 0 (gradient 0 there)
    assert gc.profiled_deviance(fast, reml) <= gc.profiled_deviance(slow, reml) + 1e-8
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    np.testing.assert_allclose(fast, newton_refine(gc, reml, slow), rtol=0, atol=1e-10)
    assert np.abs(gc.criterion_and_gradient(fast, reml)[1]).max() < 1e-6


def test_blas_is_single_threaded_inside_and_restored_after() -> None:
    controls = blas._controls()
    before = [get() for get, _ in controls]
    with blas.single_threaded():
        assert all(get() == 1 for get, _ in controls)
    assert [get() for get, _ in controls] == before


# ---------------------------------------------------------------------------------------------
# against statsmodels and lme4


def _same_fit(a: LmmFit, b: LmmFit, fe_rtol: float, vc_rtol: float) -> None:
    np.testing.assert_allclose(a.params, b.params, rtol=fe_rtol)
    np.testing.assert_allclose(a.fixed_effects.std_err, b.fixed_effects.std_err, rtol=fe_rtol)
    np.testing.assert_allclose(a.fixed_effects.df, b.fixed_effects.df, rtol=1e-4)
    va = a.variance_components["variance"].fillna(a.variance_components["correlation"])
    vb = b.variance_components["variance"].fillna(b.variance_components["correlation"])
    np.testing.assert_allclose(va, vb, rtol=vc_rtol)
    assert a.criterion == pytest.approx(b.criterion, abs=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_reproduces_statsmodels_and_lme4(
    clinic: tuple[pd.DataFrame, Path], lmer_r, case: str
) -> None:
    """R: lmerTest::lmer(<formula>, REML, bobyqa rhoend 1e-12) on the same unbalanced rows;
    statsmodels: MixedLM.fit(method="powell") then method="bfgs" (the powell+bfgs route)."""
    data, csv = clinic
    assert data.groupby("patient").size().nunique() > 3  # dropout and missed visits
    fixed, slope, reml = CASES[case]
    fast = fit_fast(data, fixed, slope, reml)
    assert fast.optimizer == FAST_ROUTES[0] and fast.converged and fast.fallback is None
    assert list(fast.optimizer_trials.route) == [FAST_ROUTES[0]]  # statsmodels not needed

    statsmodels = fit_lmm(
        data, "nrs", fixed, "patient", random_slope=slope, reml=reml, routes=("powell+bfgs",)
    )
    assert statsmodels.optimizer.startswith("powell+bfgs")
    _same_fit(fast, statsmodels, fe_rtol=1e-6, vc_rtol=1e-4)

    ref = parse_r(
        lmer_r(csv, r_formula(fixed, slope), reml, relevel={**CLINIC_RELEVEL, "visit": "w00"})
    )
    check_against(fast, ref)
    assert fast.criterion <= ref["criterion"] + 1e-7


@pytest.mark.slow
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_fast_path_with_site_intercept_matches_lme4(
    multisite: tuple[pd.DataFrame, Path], lmer_r, reml: bool
) -> None:
    """R: lmerTest::lmer(nrs ~ weeks * depth + (1 | site) + (1 + weeks | patient), REML),
    bobyqa rhoend 1e-12: statsmodels cannot fit it; the gradient route alone must."""
    data, csv = multisite
    fast = fit_fast(data, CLINIC_FIXED, "weeks", reml, site="site")
    assert fast.optimizer == FAST_ROUTES[0] and fast.converged and not fast.boundary
    powell = fit_lmm(
        data, "nrs", CLINIC_FIXED, "patient", random_slope="weeks", reml=reml, site="site"
    )
    assert powell.optimizer.startswith("numpy-powell")
    _same_fit(fast, powell, fe_rtol=1e-5, vc_rtol=1e-3)
    formula = "nrs ~ weeks * depth + chronicity + (1 | site) + (1 + weeks | patient)"
    ref = parse_r(lmer_r(csv, formula, reml, relevel=CLINIC_RELEVEL))
    check_against(fast, ref)
    assert_sig(fast.sigma, ref["sigma"], 4, "sigma")


# ---------------------------------------------------------------------------------------------
# hand-over to the statsmodels routes


def test_singular_fast_fit_is_confirmed_by_statsmodels_before_the_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A zero slope variance: the fast optimum is singular, so the statsmodels routes run on
    the slope model before it is dropped for a random intercept (SAP section 5)."""
    data = simulate_clinic(60, seed=7, slope_sd=0.0)
    built = []
    original = lmm_optim._statsmodels_model

    def spy(prep, group, random_slope, recorder, label):
        built.append(random_slope)
        return original(prep, group, random_slope, recorder, label)

    monkeypatch.setattr(lmm_optim, "_statsmodels_model", spy)
    fit = fit_fast(data, "weeks * C(depth, Treatment('superficial'))", "weeks", True)
    assert "weeks" in built  # statsmodels fitted the slope model
    assert fit.fallback is not None and fit.random_slope is None
    reference = fit_lmm(
        data, "nrs", "weeks * C(depth, Treatment('superficial'))", "patient", "weeks"
    )
    _same_fit(fit, reference, fe_rtol=1e-6, vc_rtol=1e-4)


def test_unverified_fast_optimum_escalates_to_statsmodels(
    clinic: tuple[pd.DataFrame, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the gradient route's optimum fails lme4's gradient check, the statsmodels routes
    (and numpy Powell) run and the best verified optimum is reported."""
    data, _ = clinic

    def stuck(gc, reml, start):  # an optimiser that stops at its start
        return np.asarray(start, dtype=float), False, "stopped"

    monkeypatch.setattr(lmm_optim, "numpy_gradient_route", stuck)
    fit = fit_fast(data, CLINIC_FIXED, "weeks", True)
    routes = list(fit.optimizer_trials.route)
    assert routes[:4] == ["numpy-lbfgsb", "powell+bfgs", "lbfgs", "numpy-powell"]
    assert not fit.optimizer.startswith("numpy-lbfgsb") and fit.converged
    monkeypatch.undo()
    _same_fit(fit, fit_fast(data, CLINIC_FIXED, "weeks", True), fe_rtol=1e-6, vc_rtol=1e-4)


def test_site_model_escalates_to_numpy_powell_not_statsmodels(
    multisite: tuple[pd.DataFrame, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = multisite

    def stuck(gc, reml, start):
        return np.asarray(start, dtype=float), False, "stopped"

    monkeypatch.setattr(lmm_optim, "numpy_gradient_route", stuck)
    fit = fit_fast(data, CLINIC_FIXED, "weeks", True, site="site")
    assert list(fit.optimizer_trials.route)[:2] == ["numpy-lbfgsb", "numpy-powell"]
    assert "powell+bfgs" not in set(fit.optimizer_trials.route)
    assert fit.optimizer.startswith("numpy-powell") and fit.converged


def test_fast_path_satterthwaite_equals_numerical_derivatives(
    clinic: tuple[pd.DataFrame, Path],
) -> None:
    """lmerTest's df from a numerical Hessian of the deviance and a numerical Jacobian of the
    covariance (Richardson, as numDeriv) equal the fast path's (exact gradient, exact
    Jacobian) to 1e-6."""
    data, _ = clinic
    fit = fit_fast(data, CLINIC_FIXED, "weeks", True)
    prep = prepare_data(data, "nrs", CLINIC_FIXED, "patient", "weeks")
    z = np.column_stack([np.ones(len(prep.y)), prep.frame["weeks"].to_numpy(float)])
    gc = GroupedCrossproducts(prep.y, prep.x.to_numpy(), z, prep.codes)
    varpar = np.r_[fit.theta, fit.sigma]
    hess = hessian_richardson(lambda v: gc.deviance(v, True), varpar)
    jac = jacobian_richardson(gc.vcov_beta, varpar)
    lmat = np.eye(len(fit.design_columns))
    var = np.einsum("ri,ij,rj->r", lmat, gc.vcov_beta(varpar), lmat)
    g = np.einsum("kij,ri,rj->rk", jac, lmat, lmat)
    df_numerical = 2 * var**2 / np.einsum("rk,kl,rl->r", g, 2 * np.linalg.inv(hess), g)
    for ours, theirs in zip(fit.fixed_effects["df"], df_numerical, strict=True):
        assert_rel(ours, theirs, 1e-6, "Satterthwaite df")
