"""The engine fitted from schedule-grouped sufficient statistics equals the row-level fit.

Data unlike the demo: seven irregular visit times, a three-level factor, a numeric covariate
that varies within patients, many missing visits. The reference is the engine's own row-level
fit (:func:`pipeline.lmm.fit_lmm`, itself checked against lme4 / lmerTest in test_lmm.py), so
agreement is required to 1e-8 relative, not to R's printed digits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

from pipeline.lmm import FAST_ROUTES, fit_lmm
from pipeline.lmm.deviance import GroupedCrossproducts, NestedCrossproducts
from pipeline.lmm.sufficient import (
    NestedSufficientCrossproducts,
    SufficientCrossproducts,
    combine_statistics,
    fit_sufficient,
    schedule_statistics,
)

TIMES = np.array([0.0, 0.5, 1.5, 3.0, 5.0, 9.0, 14.0])
RHS = "t * arm + dose + C(centre)"


def _data(n: int, seed: int, slope_sd: float = 0.15) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        keep = rng.random(TIMES.size) > 0.35
        keep[0] = True
        arm = rng.choice(["a", "b", "c"])
        centre = int(rng.integers(4))
        b0, b1 = rng.normal(0.0, 2.0), rng.normal(0.0, slope_sd)
        effect = {"a": 0.0, "b": -0.3, "c": 0.2}[arm]
        for t in TIMES[keep]:
            dose = rng.gamma(2.0, 1.0)
            y = 20.0 + effect * t - 0.8 * t + 0.5 * dose + centre + b0 + b1 * t
            rows.append((f"id{i:04d}", t, arm, dose, centre, y + rng.normal(0.0, 1.5)))
    frame = pd.DataFrame(rows, columns=["pid", "t", "arm", "dose", "centre", "y"])
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows unordered


def _design(frame: pd.DataFrame, slope: bool = True):
    x = patsy.dmatrix(RHS, frame, return_type="dataframe")
    z = np.c_[np.ones(len(frame)), frame["t"]] if slope else np.ones((len(frame), 1))
    codes = pd.factorize(frame["pid"], sort=True)[0]
    return frame["y"].to_numpy(), x, z, codes


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))


def test_criterion_gradient_and_jacobian_equal_the_row_level_engine():
    y, x, z, codes = _design(_data(120, 1))
    stats, _ = schedule_statistics(y, x.to_numpy(), z, codes)
    assert len(stats.z) < 120  # patients really share schedules
    rows = GroupedCrossproducts(y, x.to_numpy(), z, codes)
    sums = SufficientCrossproducts(stats)
    for theta in (np.array([1.0, 0.1, 0.3]), np.array([0.4, -0.2, 0.05])):
        for reml in (True, False):
            c1, g1 = rows.criterion_and_gradient(theta, reml)
            c2, g2 = sums.criterion_and_gradient(theta, reml)
            assert abs(c1 - c2) <= 1e-12 * abs(c1)
            np.testing.assert_allclose(g2, g1, rtol=1e-9, atol=1e-9 * np.abs(g1).max())
        varpar = np.r_[theta, 1.7]
        np.testing.assert_allclose(
            sums.vcov_jacobian(varpar), rows.vcov_jacobian(varpar), rtol=1e-9, atol=1e-14
        )
        np.testing.assert_allclose(
            sums.deviance_gradient(varpar, True), rows.deviance_gradient(varpar, True), rtol=1e-9
        )


@pytest.mark.parametrize("slope", [True, False])
def test_fit_from_statistics_equals_fit_of_all_rows(slope):
    frame = _data(150, 2)
    ref = fit_lmm(
        frame, "y", RHS, group="pid", random_slope="t" if slope else None, routes=FAST_ROUTES
    )
    y, x, z, codes = _design(frame, slope)
    # split the patients in three "clinics" and pool their statistics
    parts = []
    for k in range(3):
        mask = (codes % 3) == k
        parts.append(schedule_statistics(y[mask], x.to_numpy()[mask], z[mask], codes[mask])[0])
    pooled = combine_statistics(parts)
    names = ("(Intercept)", "t") if slope else ("(Intercept)",)
    fit = fit_sufficient(pooled, list(x.columns), "pid", names)
    assert fit.fallback is None and ref.fallback is None
    cols = ["estimate", "std_err", "df"]
    assert _rel(fit.fixed_effects[cols], ref.fixed_effects[cols]) < 1e-8
    vc = ["variance", "std_dev"]
    assert _rel(fit.variance_components[vc].dropna(), ref.variance_components[vc].dropna()) < 1e-8
    assert abs(fit.criterion - ref.criterion) < 1e-8 * abs(ref.criterion)
    if slope:
        assert (
            _rel(
                fit.variance_components["correlation"].dropna(),
                ref.variance_components["correlation"].dropna(),
            )
            < 1e-8
        )
        lmat = np.zeros((1, x.shape[1]))
        lmat[0, list(x.columns).index("t:arm[T.b]")] = 1.0
        lmat[0, list(x.columns).index("arm[T.b]")] = 14.0
        mine = fit.contrast(lmat, ["b - a at t = 14"]).iloc[0]
        theirs = ref.contrast(lmat[0]).iloc[0]
        assert _rel(mine[cols].to_numpy(), theirs[cols].to_numpy()) < 1e-8


def test_statistics_do_not_depend_on_how_patients_are_split():
    y, x, z, codes = _design(_data(60, 3))
    whole, _ = schedule_statistics(y, x.to_numpy(), z, codes)
    halves = [
        schedule_statistics(y[m], x.to_numpy()[m], z[m], codes[m])[0]
        for m in (codes < 30, codes >= 30)
    ]
    pooled = combine_statistics(halves)
    assert sorted(map(len, pooled.z)) == sorted(map(len, whole.z))
    np.testing.assert_allclose(pooled.xtx, whole.xtx, rtol=1e-13)
    assert pooled.n_groups.sum() == whole.n_groups.sum() == 60
    sums = SufficientCrossproducts(pooled)
    theta = np.array([0.8, 0.05, 0.2])
    ref = SufficientCrossproducts(whole).criterion_and_gradient(theta, True)[0]
    assert abs(sums.criterion_and_gradient(theta, True)[0] - ref) < 1e-10 * abs(ref)


def test_mapped_statistics_equal_statistics_of_the_mapped_design():
    y, x, z, codes = _design(_data(40, 4))
    stats, _ = schedule_statistics(y, x.to_numpy(), z, codes)
    rng = np.random.default_rng(0)
    t = rng.normal(size=(x.shape[1], x.shape[1] + 2))
    direct, _ = schedule_statistics(y, x.to_numpy() @ t, z, codes)
    mapped = stats.mapped(t)
    np.testing.assert_allclose(mapped.xtx, direct.xtx, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(mapped.sum_aa, direct.sum_aa, rtol=1e-10, atol=1e-6)


def test_singular_slope_falls_back_as_the_row_level_fit():
    frame = _data(80, 5, slope_sd=0.0)
    ref = fit_lmm(frame, "y", RHS, group="pid", random_slope="t", routes=FAST_ROUTES)
    y, x, z, codes = _design(frame)
    stats = schedule_statistics(y, x.to_numpy(), z, codes)[0]
    fit = fit_sufficient(stats, list(x.columns), "pid", ("(Intercept)", "t"))
    assert (fit.fallback is None) == (ref.fallback is None)
    cols = ["estimate", "std_err"]
    assert _rel(fit.fixed_effects[cols], ref.fixed_effects[cols]) < 1e-6


def test_conditional_modes_are_refused():
    y, x, z, codes = _design(_data(10, 6))
    sums = SufficientCrossproducts(schedule_statistics(y, x.to_numpy(), z, codes)[0])
    with pytest.raises(ValueError, match="own data"):
        sums.conditional_modes(np.array([1.0, 0.0, 1.0]), np.zeros(x.shape[1]))


def _by_site(frame: pd.DataFrame):
    rhs = "t * arm + dose"
    x = patsy.dmatrix(rhs, frame, return_type="dataframe")
    z = np.c_[np.ones(len(frame)), frame["t"]]
    y = frame["y"].to_numpy()
    codes = pd.factorize(frame["pid"], sort=True)[0]
    sites = frame["centre"].to_numpy()
    parts = [
        schedule_statistics(
            y[sites == s], x.to_numpy()[sites == s], z[sites == s], codes[sites == s]
        )[0]
        for s in range(4)
    ]
    return rhs, x, z, y, codes, sites, combine_statistics(parts, sites=True)


def test_site_random_intercept_from_statistics_equals_the_row_level_engine():
    frame = _data(150, 7)
    rhs, x, z, y, codes, sites, stats = _by_site(frame)
    rows = NestedCrossproducts(y, x.to_numpy(), z, codes, sites)
    sums = NestedSufficientCrossproducts(stats)
    for theta in (np.array([1.0, 0.1, 0.3, 0.5]), np.array([0.4, -0.2, 0.05, 1.2])):
        for reml in (True, False):
            c1, g1 = rows.criterion_and_gradient(theta, reml)
            c2, g2 = sums.criterion_and_gradient(theta, reml)
            assert abs(c1 - c2) <= 1e-12 * abs(c1)
            np.testing.assert_allclose(g2, g1, rtol=1e-9, atol=1e-9 * np.abs(g1).max())
        varpar = np.r_[theta, 1.3]
        jac = rows.vcov_jacobian(varpar)
        np.testing.assert_allclose(sums.vcov_jacobian(varpar), jac, rtol=1e-9, atol=1e-12)

    ref = fit_lmm(frame, "y", rhs, group="pid", random_slope="t", site="centre", routes=FAST_ROUTES)
    fit = fit_sufficient(stats, list(x.columns), "pid", ("(Intercept)", "t"), site="centre")
    cols = ["estimate", "std_err", "df"]
    assert _rel(fit.fixed_effects[cols], ref.fixed_effects[cols]) < 1e-8
    vc = ["variance", "std_dev"]
    assert _rel(fit.variance_components[vc].dropna(), ref.variance_components[vc].dropna()) < 1e-8
    assert list(fit.variance_components["group"]) == list(ref.variance_components["group"])
