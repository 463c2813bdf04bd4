"""An ML refit started at the REML optimum: Newton's method first (pipeline.lmm.optim).

From a related fit's optimum the ``numpy-lbfgsb`` route tries Newton's method before L-BFGS-B.
It must reach the optimum the route reaches from lme4's start (the same criterion and
``theta`` to the precision of the Newton refinement both end with), with fewer evaluations of
the criterion; from a start where Newton cannot converge the route falls back to L-BFGS-B and
still reaches it.
"""

from __future__ import annotations

import numpy as np
import pytest
from clinic_models import CLINIC_FIXED, simulate_clinic

from pipeline.lmm import deviance as lmm_deviance
from pipeline.lmm import optim as lmm_optim
from pipeline.lmm.fit import FAST_ROUTES, fit_lmm


@pytest.fixture(scope="module")
def clinic():  # type: ignore[no-untyped-def]
    return simulate_clinic(300, seed=11, slope_sd=0.15)


def _counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the criterion's evaluations and the L-BFGS-B runs."""
    calls = {"evaluations": 0, "lbfgsb": 0}
    original = lmm_deviance.GroupedCrossproducts._criterion_and_gradient
    minimize = lmm_optim.scipy.optimize.minimize

    def counting(self, theta, reml):  # type: ignore[no-untyped-def]
        calls["evaluations"] += 1
        return original(self, theta, reml)

    def counting_minimize(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["lbfgsb"] += 1
        return minimize(*args, **kwargs)

    monkeypatch.setattr(lmm_deviance.GroupedCrossproducts, "_criterion_and_gradient", counting)
    monkeypatch.setattr(lmm_optim.scipy.optimize, "minimize", counting_minimize)
    return calls


def _ml(data, start=None):  # type: ignore[no-untyped-def]
    kw = {"routes": FAST_ROUTES, "random_slope": "weeks", "reml": False}
    return fit_lmm(data, "nrs", CLINIC_FIXED, "patient", start=start, **kw)


def test_ml_refit_from_the_reml_optimum_reaches_the_same_optimum_sooner(clinic, monkeypatch):
    reml = fit_lmm(clinic, "nrs", CLINIC_FIXED, "patient", random_slope="weeks", routes=FAST_ROUTES)
    calls = _counted(monkeypatch)
    cold = _ml(clinic)
    cold_evaluations = calls["evaluations"]
    calls.update(evaluations=0, lbfgsb=0)
    warm = _ml(clinic, start=reml.theta)
    assert calls["lbfgsb"] == 0  # Newton's method alone
    assert warm.converged and cold.converged
    assert warm.criterion == pytest.approx(cold.criterion, rel=1e-13, abs=1e-9)
    np.testing.assert_allclose(warm.theta, cold.theta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(warm.params, cold.params, rtol=1e-8, atol=1e-10)
    assert calls["evaluations"] < cold_evaluations


def test_a_warm_start_newton_cannot_use_falls_back_to_lbfgsb(clinic, monkeypatch):
    # far from the optimum the Hessian is not positive definite or the steps do not lower
    # the gradient: the route goes on with L-BFGS-B and reaches the optimum all the same
    cold = _ml(clinic)
    calls = _counted(monkeypatch)
    far = _ml(clinic, start=np.array([5.0, 3.0, 0.01]))
    assert calls["lbfgsb"] >= 1
    assert far.converged
    assert far.criterion == pytest.approx(cold.criterion, rel=1e-13, abs=1e-9)
    np.testing.assert_allclose(far.theta, cold.theta, rtol=1e-7, atol=1e-9)
