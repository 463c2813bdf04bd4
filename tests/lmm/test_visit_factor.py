"""The MMRM likelihood from patients' covariate sums (pipeline.lmm.visit_factor).

A design ``visit * (arm + base)`` with patient-level ``arm`` and ``base`` is ``x_ia = M_a z_i``;
the likelihood then evaluates from ``q x q`` sums per visit pattern. Expected numbers are the
same likelihood evaluated from the full cross-products (``factor=False``, the definition in
``pipeline.lmm.patterns``), which the R comparisons of ``test_mmrm_r.py`` check against
``mmrm``/``glmmTMB``/``nlme``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.lmm import reference_based as rb
from pipeline.lmm.covariance import get_structure
from pipeline.lmm.likelihood import Likelihood
from pipeline.lmm.patterns import prepare_mmrm
from pipeline.lmm.visit_factor import visit_factor

FORMULA = "visit * (C(arm, Treatment('ctl')) + base)"


def _long(n: int = 240, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = 4
    arm = np.where(np.arange(n) % 3 == 0, "ctl", np.where(np.arange(n) % 3 == 1, "a", "b"))
    base = rng.normal(6, 2, n)
    y = (
        3
        + 0.4 * base[:, None]
        - np.arange(t)
        + rng.normal(size=(n, t)) @ np.tril(np.full((t, t), 0.6))
    )
    y[rng.random((n, t)) < 0.2] = np.nan  # intermittent: many visit patterns
    long = pd.DataFrame(
        {
            "pid": np.repeat(np.arange(n), t),
            "visit": np.tile(np.arange(t), n),
            "y": y.ravel(),
            "arm": np.repeat(arm, t),
            "base": np.repeat(base, t),
            "dose": rng.normal(size=n * t),  # changes between visits
        }
    ).dropna()
    long["visit"] = pd.Categorical(long["visit"], categories=range(t))
    return long


def _pair(long: pd.DataFrame, fixed: str, group: str | None = None, reml: bool = True):
    data = prepare_mmrm(long, "y", fixed, "visit", "pid", covariance_group=group)
    structures = [get_structure("us", data.n_visits)] * len(data.group_levels)
    return Likelihood(data, structures, reml), Likelihood(data, structures, reml, factor=False)


def _theta(lik: Likelihood, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.3, lik.n_theta)


def test_patient_level_design_factors_and_reproduces_every_row():
    data = prepare_mmrm(_long(), "y", FORMULA, "visit", "pid")
    factor = visit_factor(data)
    assert factor is not None
    assert factor.q == 4  # intercept, two arm columns, base
    rebuilt = np.einsum("npq,nq->np", factor.maps[data.visit_codes], factor.z)
    np.testing.assert_allclose(rebuilt, data.x, rtol=0, atol=1e-12)


def test_a_level_the_spread_of_rows_misses_still_factors(monkeypatch):
    # Each visit's map comes from an evenly spread sample of its rows; a level the sample
    # misses (here one patient of arm "b", away from the sampled rows) makes the sample's map
    # fail the check on that patient's rows, and least squares on all the rows gives the map.
    monkeypatch.setattr("pipeline.lmm.visit_factor._SAMPLE_ROWS", 8)
    long = _long(n=200)
    long["arm"] = np.where(long["pid"] == 101, "b", np.where(long["pid"] % 2 == 0, "ctl", "a"))
    data = prepare_mmrm(long, "y", FORMULA, "visit", "pid")
    factor = visit_factor(data)
    assert factor is not None
    rebuilt = np.einsum("npq,nq->np", factor.maps[data.visit_codes], factor.z)
    np.testing.assert_allclose(rebuilt, data.x, rtol=0, atol=1e-12)


def test_a_covariate_that_changes_between_visits_keeps_the_full_cross_products():
    lik, _ = _pair(_long(), FORMULA + " + dose")
    assert lik.factor is None
    assert lik.batches[0].xx is not None


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("group", [None, "arm"])
def test_factored_likelihood_equals_the_full_one(reml, group):
    factored, full = _pair(_long(), FORMULA, group, reml)
    assert factored.factor is not None and factored.batches[0].xx is None
    for seed in range(3):
        theta = _theta(full, seed)
        value, grad = factored.criterion_and_gradient(theta)
        want_value, want_grad = full.criterion_and_gradient(theta)
        assert value == pytest.approx(want_value, rel=1e-12)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-9 * np.abs(want_grad).max())
        got, want = factored.state(theta), full.state(theta)
        np.testing.assert_allclose(got.xtwx, want.xtwx, rtol=1e-11, atol=1e-11 * want.xtwx.max())
        np.testing.assert_allclose(got.beta, want.beta, rtol=1e-9, atol=1e-10)


def test_downdated_and_reweighted_factored_likelihoods_equal_the_full_ones():
    factored, full = _pair(_long(), FORMULA, "arm")
    data = full.data
    # two patients out of each pattern that has more, keyed by each likelihood's batches
    out = {i: pat.rows[:2] for i, pat in enumerate(data.patterns) if pat.rows.shape[0] > 2}
    assert len(out) > 3

    def removed(lik):
        return {
            (b_idx, j): out[i]
            for b_idx, batch in enumerate(lik.batches)
            for j, i in enumerate(batch.index)
            if i in out
        }

    weights = np.random.default_rng(1).integers(0, 4, data.n_subjects).astype(float)
    pairs = [
        (factored.downdated(removed(factored)), full.downdated(removed(full))),
        (factored.reweighted(weights), rb._WeightedCrossproducts(full).weighted(weights)),
    ]
    theta = _theta(full)
    for got, want in pairs:
        value, grad = got.criterion_and_gradient(theta)
        want_value, want_grad = want.criterion_and_gradient(theta)
        assert value == pytest.approx(want_value, rel=1e-12)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-9 * np.abs(want_grad).max())


def test_reweighting_needs_a_factored_likelihood():
    _, full = _pair(_long(), FORMULA)
    with pytest.raises(ValueError, match="factors by visit"):
        full.reweighted(np.ones(full.data.n_subjects))
