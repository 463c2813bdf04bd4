"""Cox model with Efron ties on the data's distinct rows (pipeline.describe.cox).

Expected numbers: statsmodels ``PHReg(time, X, status, ties="efron").fit()`` on the same rows
(patient by patient), which ``test_sessions_to_response.py`` checks against R's
``coxph(ties = "efron")`` through :func:`cox_model`.
"""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.duration.hazard_regression import PHReg

from pipeline.describe.cox import cox_efron


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    a = rng.integers(0, 2, n)
    x = np.column_stack([g == 1, g == 2, a]).astype(float)
    time = np.minimum(rng.geometric(0.25 * np.exp(x @ [0.4, -0.3, 0.6])), 8).astype(float)
    status = rng.random(n) < 0.7
    return time, status, x


@pytest.mark.parametrize(("n", "seed"), [(60, 1), (800, 2), (5000, 3)])
def test_efron_fit_equals_statsmodels_phreg(n, seed):
    time, status, x = _data(n, seed)
    want = PHReg(time, x, status=status.astype(float), ties="efron").fit()
    got = cox_efron(time, status, x)
    np.testing.assert_allclose(got.params, want.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got.bse, want.bse, rtol=1e-8)
    assert got.loglik == pytest.approx(want.llf, rel=1e-12)


def test_a_covariate_constant_among_the_patients_makes_the_information_singular():
    time, status, x = _data(200, 4)
    x[:, 2] = 0.0
    with pytest.raises(np.linalg.LinAlgError):
        cox_efron(time, status, x)


def test_a_group_whose_events_all_come_first_has_an_infinite_coefficient():
    # R: coxph(Surv(t, s) ~ g) warns "Loglik converged before variable 1; coefficient may be
    # infinite" when every event of group 1 precedes every event of group 0
    time = np.array([1, 1, 2, 2, 3, 5, 6, 7, 8, 9], dtype=float)
    status = np.ones(10, dtype=bool)
    g = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=float)[:, None]
    fit = cox_efron(time, status, g)
    assert fit.infinite.tolist() == [True]
    mixed = cox_efron(time, status, np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0.0])[:, None])
    assert mixed.infinite.tolist() == [False]
