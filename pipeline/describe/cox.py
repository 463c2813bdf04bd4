"""Cox proportional-hazards fit with Efron's ties, on the distinct rows of the data.

The sessions-to-response models (:mod:`pipeline.describe.sessions_to_response`) have a few
categorical covariates and a time that is a session count, so the data hold few distinct
``(time, status, covariates)`` rows however many patients there are. The partial likelihood
depends on the data only through those rows and their counts, so :func:`cox_efron` aggregates
first and then runs Newton-Raphson on the counts: the cost does not grow with the patients
(statsmodels' ``PHReg`` builds its risk sets with Python loops over every patient).

Efron's approximation (R ``coxph(ties = "efron")``, the default): at a time with ``d`` events,
risk-set sums ``S_R`` and event-set sums ``S_D``, the log partial likelihood gains

    sum_D x'beta - sum_{l=0}^{d-1} log(S0_R - (l/d) S0_D)

with ``S0 = sum w exp(x'beta)``, ``S1 = sum w exp(x'beta) x``, ``S2 = sum w exp(x'beta) x x'``.
Its gradient and information need, per time, only the scalar sums over ``l`` of ``1/den``,
``c/den``, ``1/den^2``, ``c/den^2`` and ``c^2/den^2`` (``c = l/d``), so a time with
thousands of tied events costs one vectorised sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CoxFit", "cox_efron"]

MAX_ITER = 30
"""Newton steps allowed (R's ``coxph.control(iter.max = 20)``, with room for halving)."""

TOLERANCE = 1e-10
"""Relative change of the log partial likelihood at which the fit has converged (R: 1e-9)."""

R_EPS = 1e-9
"""R's ``coxph.control(eps)``, the scale of its test for an infinite coefficient."""


@dataclass(frozen=True)
class CoxFit:
    """Estimates of :func:`cox_efron`.

    Attributes
    ----------
    params : numpy.ndarray
        Log hazard ratios.
    cov : numpy.ndarray
        Inverse observed information at ``params``.
    loglik : float
        Log partial likelihood at ``params``.
    iterations : int
        Newton steps taken.
    infinite : numpy.ndarray
        True for a coefficient still moving when the likelihood has converged (R's "coefficient
        may be infinite": every event of a group before, or after, all of the other's).
    """

    params: np.ndarray
    cov: np.ndarray
    loglik: float
    iterations: int
    infinite: np.ndarray

    @property
    def bse(self) -> np.ndarray:
        """Standard errors (square roots of the diagonal of ``cov``)."""
        return np.sqrt(np.diag(self.cov))


@dataclass(frozen=True)
class _Distinct:
    """The data's distinct rows at each event time, sorted by time."""

    x: np.ndarray  # (m, p) distinct covariate rows
    at_risk: np.ndarray  # (K, m): count of each distinct row still at risk at event time k
    events: np.ndarray  # (K, m): count of each distinct row with an event at time k
    d: np.ndarray  # (K,): events at time k


def _distinct(time: np.ndarray, status: np.ndarray, design: np.ndarray) -> _Distinct:
    x, pattern = np.unique(design, axis=0, return_inverse=True)
    pattern = pattern.ravel()
    m = x.shape[0]
    event_times = np.unique(time[status])
    # at risk at t: time >= t; counts per (event time, pattern) via cumulative counts by time
    order = np.searchsorted(event_times, time, side="right")  # event times <= each time
    counts = np.zeros((event_times.size + 1, m))
    np.add.at(counts, (order, pattern), 1.0)
    at_risk = np.cumsum(counts[::-1], axis=0)[::-1][1:]  # rows with order >= k + 1
    events = np.zeros((event_times.size, m))
    slot = np.searchsorted(event_times, time[status])
    np.add.at(events, (slot, pattern[status]), 1.0)
    return _Distinct(x, at_risk, events, events.sum(axis=1))


def _terms(data: _Distinct, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, its gradient and the observed information at ``beta``."""
    risk = np.exp(data.x @ beta)  # (m,)
    x = data.x
    s0_r, s0_d = data.at_risk @ risk, data.events @ risk  # (K,)
    s1_r, s1_d = (data.at_risk * risk) @ x, (data.events * risk) @ x  # (K, p)
    outer = x[:, :, None] * x[:, None, :]  # (m, p, p)
    s2_r = np.tensordot(data.at_risk * risk, outer, axes=1)  # (K, p, p)
    s2_d = np.tensordot(data.events * risk, outer, axes=1)
    loglik = float(np.sum(data.events @ (x @ beta)))
    grad = (data.events @ x).sum(axis=0)
    info = np.zeros((x.shape[1], x.shape[1]))
    for k, d in enumerate(data.d.astype(int)):
        c = np.arange(d) / d
        den = s0_r[k] - c * s0_d[k]
        inv, inv2 = 1.0 / den, 1.0 / den**2
        loglik -= float(np.sum(np.log(den)))
        grad -= s1_r[k] * inv.sum() - s1_d[k] * (c * inv).sum()
        a, b = s1_r[k], s1_d[k]
        info += s2_r[k] * inv.sum() - s2_d[k] * (c * inv).sum()
        info -= np.outer(a, a) * inv2.sum() + np.outer(b, b) * (c * c * inv2).sum()
        info += (np.outer(a, b) + np.outer(b, a)) * (c * inv2).sum()
    return loglik, grad, info


def cox_efron(time: np.ndarray, status: np.ndarray, design: np.ndarray) -> CoxFit:
    """Fit a Cox model with Efron's ties by Newton-Raphson from zero, as R's ``coxph``.

    Parameters
    ----------
    time : numpy.ndarray
        ``(n,)`` event or censoring times.
    status : numpy.ndarray
        ``(n,)`` True (or 1) for an event.
    design : numpy.ndarray
        ``(n, p)`` covariates (no intercept).

    Returns
    -------
    CoxFit

    Raises
    ------
    numpy.linalg.LinAlgError
        When the information matrix is singular at a step (a covariate without variation
        among the patients at risk).
    """
    status = np.asarray(status).astype(bool)
    data = _distinct(np.asarray(time, dtype=float), status, np.asarray(design, dtype=float))
    beta = np.zeros(data.x.shape[1])
    loglik, grad, info = _terms(data, beta)
    iterations = 0
    while iterations < MAX_ITER:
        iterations += 1
        step = np.linalg.solve(info, grad)
        new = beta + step
        new_loglik, new_grad, new_info = _terms(data, new)
        halvings = 0
        while not new_loglik >= loglik - 1e-12 * abs(loglik) and halvings < 20:
            step = step / 2.0
            new = beta + step
            new_loglik, new_grad, new_info = _terms(data, new)
            halvings += 1
        converged = abs(new_loglik - loglik) <= TOLERANCE * max(abs(loglik), 1.0)
        beta, loglik, grad, info = new, new_loglik, new_grad, new_info
        if converged:
            break
    # R's coxph.fit: the step still to take, against its tolerance and the coefficient's size
    still = np.abs(np.linalg.solve(info, grad))
    infinite = (still > R_EPS) & (still > np.sqrt(R_EPS) * np.abs(beta))
    return CoxFit(beta, np.linalg.inv(info), loglik, iterations, infinite)
