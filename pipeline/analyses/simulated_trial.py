"""Simulated two-arm trials with repeated visits, MAR dropout and missed visits (for the MMRM).

Used by the MMRM agreement tests, the coverage simulation (:mod:`pipeline.analyses.
stat_validation`) and the speed benchmark (``benchmarks/mmrm.py``): data that do *not* look
balanced, since balanced complete data hide bugs (SAP section 6).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_mmrm_trial", "trial_sigma"]


def trial_sigma(n_visits: int, sd_first: float = 1.0, sd_last: float = 1.6) -> np.ndarray:
    """Return an unstructured-looking covariance: rising SDs, correlations decaying unevenly.

    Parameters
    ----------
    n_visits : int
        Number of visits.
    sd_first, sd_last : float
        Standard deviations at the first and last visit (linear in between).

    Returns
    -------
    numpy.ndarray
        ``n_visits x n_visits`` positive-definite matrix.
    """
    sd = np.linspace(sd_first, sd_last, n_visits)
    idx = np.arange(n_visits)
    lag = np.abs(idx[:, None] - idx[None, :])
    corr = 0.25 + 0.6 * 0.7**lag + 0.05 * (idx[:, None] + idx[None, :] == 1)
    np.fill_diagonal(corr, 1.0)
    return corr * sd[:, None] * sd[None, :]


def simulate_mmrm_trial(
    n_per_arm: int,
    n_visits: int = 6,
    effect: float | np.ndarray = 0.0,
    *,
    dropout: float = 0.08,
    missed: float = 0.05,
    sigma: np.ndarray | None = None,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """One simulated trial in long format (attended visits only).

    The outcome at visit ``t`` is ``1 + 0.3 t - 0.5 * arm * effect_t + 0.6 * baseline`` plus a
    multivariate normal error with covariance ``sigma``. Dropout is missing at random: after
    each attended visit the patient leaves with probability ``dropout * 2 * logistic(y - 2)``
    (higher outcomes leave more often, so complete cases are biased and likelihood is not).
    Each remaining visit is missed intermittently with probability ``missed``.

    Parameters
    ----------
    n_per_arm : int
        Patients per arm.
    n_visits : int, default 6
        Post-baseline visits.
    effect : float or numpy.ndarray, default 0.0
        Treatment minus control difference at each visit (scalar: the same at all).
    dropout, missed : float
        Dropout hazard scale and intermittent missed-visit probability.
    sigma : numpy.ndarray, optional
        Error covariance (default :func:`trial_sigma`).
    seed : int or numpy.random.Generator
        Random seed or generator.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient, arm ("control"/"active"), site ("a"/"b"/"c"), visit (1..T),
        baseline, y``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = 2 * n_per_arm
    sigma = trial_sigma(n_visits) if sigma is None else np.asarray(sigma, dtype=float)
    diff = np.broadcast_to(np.asarray(effect, dtype=float), (n_visits,))
    arm = np.repeat([0, 1], n_per_arm)
    baseline = rng.normal(5.0, 1.0, n)
    site = rng.integers(0, 3, n)
    visits = np.arange(1, n_visits + 1)
    mean = 1.0 + 0.3 * visits[None, :] + 0.6 * baseline[:, None] + arm[:, None] * diff[None, :]
    y = mean + rng.standard_normal((n, n_visits)) @ np.linalg.cholesky(sigma).T
    seen = np.ones((n, n_visits), dtype=bool)
    active = np.ones(n, dtype=bool)
    for t in range(1, n_visits):
        hazard = dropout * 2.0 / (1.0 + np.exp(-(y[:, t - 1] - mean[:, t - 1])))
        active &= ~(seen[:, t - 1] & (rng.random(n) < hazard))
        seen[:, t] = active & (rng.random(n) >= missed)
    seen[:, 0] |= ~seen.any(axis=1)  # everyone has at least one visit
    pid, vid = np.nonzero(seen)
    return pd.DataFrame(
        {
            "patient": pid + 1,
            "arm": np.where(arm[pid] == 1, "active", "control"),
            "site": np.array(["a", "b", "c"])[site[pid]],
            "visit": visits[vid],
            "baseline": baseline[pid],
            "y": y[pid, vid],
        }
    )
