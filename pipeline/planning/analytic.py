"""Closed-form variances of the two primary contrasts, and power, n, effect and precision from them.

Two contrasts between a reference group ``a`` and a compared group ``b`` (allocation ratio
``lambda = n_b / n_a``) followed at the weeks ``t_0 = 0 < t_1 < ... < t_{J-1}``:

**Slope difference** (the trajectory model, random intercept and slope). With
``Sigma = Z G Z' + sigma^2 I``, ``Z = [1, t]``, the generalised least squares slope of one
patient seen at the first ``k + 1`` visits has information ``X_k' Sigma_k^{-1} X_k``
(``X_k = Z_k``). Diggle, Heagerty, Liang & Zeger (*Analysis of Longitudinal Data*, 2nd ed.
2002, §2.4) give the variance of the slope for complete data, ``[(X' Sigma^{-1} X)^{-1}]_{22}``
per patient; with monotone dropout the expected information of a patient is averaged over the
dropout patterns, ``M = sum_k pi_k X_k' Sigma_k^{-1} X_k`` with ``pi_k = r_k - r_{k+1}`` the
share whose last visit is ``k`` (``r`` the retention, ``r_0 = 1``, ``r_J = 0``), and the slope
of a group of ``n`` patients has variance ``[M^{-1}]_{22} / n`` (the same averaging as Lu, Luo &
Chen's formula below). The two groups' slopes are independent, so
``Var(slope_b - slope_a) = v_a / n_a + v_b / n_b``.

**Visit difference** (the baseline-adjusted MMRM at a primary visit). Lu, Luo & Chen (2008,
*Int. J. Biostatistics* 4(1), formula 3): with the covariance ``S`` of the analysed visits and
their retention ``r_1 >= ... >= r_m``, ``I = sum_j (r_j - r_{j+1}) [S_j^{-1}]`` (``S_j`` the
leading ``j x j`` block, padded with zeros) and the variance of a group's mean at visit ``v``
is ``[I^{-1}]_{vv} / n``. The pipeline's visit analysis adjusts for the baseline value, so ``S``
is the covariance of the post-baseline visits given the baseline (``S = Sigma_pp -
Sigma_p0 Sigma_00^{-1} Sigma_0p``).

Power is for a two-sided test at ``alpha / m`` (Bonferroni over a Holm family of ``m``
primary comparisons: Holm's first step, hence a lower bound of Holm's power). With
``distribution="z"`` the formulas are the published normal ones (``longpower``); with ``"t"``
the test is a t test with ``N - 2`` degrees of freedom and power from the noncentral t (Lu et
al.'s t version), closer to the small-sample Satterthwaite test the pipeline runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

__all__ = [
    "Contrast",
    "detectable_effect",
    "diggle_slope_variance",
    "group_sizes",
    "lu_luo_chen_phi",
    "marginal_covariance",
    "n_for_power",
    "power",
    "precision",
    "retention_from_hazards",
    "slope_contrast",
    "visit_contrast",
]

Distribution = Literal["z", "t"]


def marginal_covariance(
    weeks: np.ndarray, sd_intercept: float, sd_slope: float, correlation: float, sd_residual: float
) -> np.ndarray:
    """Covariance of one patient's outcomes at ``weeks`` under random intercept and slope.

    Parameters
    ----------
    weeks : numpy.ndarray
        Visit times.
    sd_intercept, sd_slope, correlation : float
        SDs of the random intercept and slope and their correlation.
    sd_residual : float
        Residual SD.

    Returns
    -------
    numpy.ndarray
        ``Z G Z' + sigma^2 I`` with ``Z = [1, weeks]``.
    """
    t = np.asarray(weeks, dtype=float)
    z = np.column_stack([np.ones_like(t), t])
    cov01 = correlation * sd_intercept * sd_slope
    g = np.array([[sd_intercept**2, cov01], [cov01, sd_slope**2]])
    return z @ g @ z.T + sd_residual**2 * np.eye(t.size)


def retention_from_hazards(hazards: np.ndarray) -> np.ndarray:
    """Retention at each visit from the dropout probability before each post-baseline visit.

    Parameters
    ----------
    hazards : numpy.ndarray
        ``h_j`` (``j = 1 .. J-1``): probability that a patient seen at visit ``j - 1`` is not
        seen at visit ``j`` or later.

    Returns
    -------
    numpy.ndarray
        ``r_0 = 1, r_j = prod_{k <= j} (1 - h_k)``, length ``J``.
    """
    return np.r_[1.0, np.cumprod(1.0 - np.asarray(hazards, dtype=float))]


def _pattern_shares(retention: np.ndarray) -> np.ndarray:
    r = np.r_[np.asarray(retention, dtype=float), 0.0]
    return r[:-1] - r[1:]


def diggle_slope_variance(
    weeks: np.ndarray, covariance: np.ndarray, retention: np.ndarray | None = None
) -> float:
    """Variance of one patient's GLS slope (Diggle et al. 2002 §2.4), averaged over dropout.

    Parameters
    ----------
    weeks : numpy.ndarray
        Visit times (first = baseline).
    covariance : numpy.ndarray
        Covariance of the outcomes at ``weeks``.
    retention : numpy.ndarray, optional
        Share of patients seen at each visit (non-increasing, first 1); None: complete data.

    Returns
    -------
    float
        ``[M^{-1}]_{22}`` with ``M = sum_k pi_k X_k' Sigma_k^{-1} X_k``; a group of ``n``
        patients has slope variance this over ``n``.
    """
    t = np.asarray(weeks, dtype=float)
    x = np.column_stack([np.ones_like(t), t])
    shares = _pattern_shares(np.ones(t.size) if retention is None else retention)
    info = np.zeros((2, 2))
    for k, share in enumerate(shares):
        if share <= 0:
            continue
        xs, cov = x[: k + 1], covariance[: k + 1, : k + 1]
        info += share * xs.T @ np.linalg.solve(cov, xs)
    return float(np.linalg.inv(info)[1, 1])


def lu_luo_chen_phi(covariance: np.ndarray, retention: np.ndarray, visit: int = -1) -> float:
    """Variance of a group's MMRM mean at one visit per patient (Lu, Luo & Chen 2008, formula 3).

    Parameters
    ----------
    covariance : numpy.ndarray
        Covariance (or correlation) of the analysed visits, ``m x m``.
    retention : numpy.ndarray
        Share of patients seen at each analysed visit (non-increasing).
    visit : int, default -1
        Index of the visit (default the last).

    Returns
    -------
    float
        ``[I^{-1}]_{vv}``, ``I = sum_j (r_j - r_{j+1}) [S_j^{-1}]``; with a correlation matrix
        this is Lu et al.'s variance inflation ``phi`` (1 for complete data at the last visit).
    """
    s = np.asarray(covariance, dtype=float)
    m = s.shape[0]
    info = np.zeros((m, m))
    for j, share in enumerate(_pattern_shares(retention)):
        if share <= 0:
            continue
        info[: j + 1, : j + 1] += share * np.linalg.inv(s[: j + 1, : j + 1])
    return float(np.linalg.inv(info)[visit, visit])


def group_sizes(n_total: float, allocation: float) -> tuple[float, float]:
    """Split ``N`` patients as ``n_a = N / (1 + lambda)`` and ``n_b = N lambda / (1 + lambda)``.

    Parameters
    ----------
    n_total : float
        Patients in both groups.
    allocation : float
        ``lambda = n_b / n_a`` (compared per reference patient).

    Returns
    -------
    tuple of float
        ``(n_a, n_b)``.
    """
    n_a = n_total / (1.0 + allocation)
    return n_a, n_total - n_a


@dataclass(frozen=True)
class Contrast:
    """Per-patient variances of a contrast's two group means, and how they combine.

    Attributes
    ----------
    kind : {"slope", "visit"}
        What is compared.
    var_a, var_b : float
        Variance contributed per patient of the reference and the compared group: the
        contrast's variance with ``n_a`` and ``n_b`` patients is ``var_a / n_a + var_b / n_b``.
    allocation : float
        ``n_b / n_a``.
    """

    kind: str
    var_a: float
    var_b: float
    allocation: float

    def std_err(self, n_total: float) -> float:
        """Return the standard error of the contrast with ``n_total`` patients in all.

        Parameters
        ----------
        n_total : float
            Patients in both groups.

        Returns
        -------
        float
            ``sqrt(var_a / n_a + var_b / n_b)``.
        """
        n_a, n_b = group_sizes(n_total, self.allocation)
        return float(np.sqrt(self.var_a / n_a + self.var_b / n_b))


def slope_contrast(
    weeks: np.ndarray,
    covariance: np.ndarray,
    retention_a: np.ndarray | None,
    retention_b: np.ndarray | None,
    allocation: float = 1.0,
) -> Contrast:
    """Slope difference between the groups (Diggle et al. 2002 §2.4, with retention).

    Parameters
    ----------
    weeks : numpy.ndarray
        Visit schedule (first = baseline).
    covariance : numpy.ndarray
        Outcome covariance at ``weeks`` (:func:`marginal_covariance`).
    retention_a, retention_b : numpy.ndarray or None
        Retention by visit in each group (None: complete).
    allocation : float
        ``n_b / n_a``.

    Returns
    -------
    Contrast
        Per-patient slope variances.
    """
    return Contrast(
        "slope",
        diggle_slope_variance(weeks, covariance, retention_a),
        diggle_slope_variance(weeks, covariance, retention_b),
        allocation,
    )


def visit_contrast(
    covariance: np.ndarray,
    retention_a: np.ndarray,
    retention_b: np.ndarray,
    visit: int,
    allocation: float = 1.0,
) -> Contrast:
    """Baseline-adjusted difference at one visit (Lu, Luo & Chen 2008, with retention).

    Parameters
    ----------
    covariance : numpy.ndarray
        Outcome covariance at every visit, baseline first.
    retention_a, retention_b : numpy.ndarray
        Retention at every visit (first = baseline = 1).
    visit : int
        Index of the primary visit in the schedule (>= 1).
    allocation : float
        ``n_b / n_a``.

    Returns
    -------
    Contrast
        Per-patient variances of the adjusted means at the visit, from the covariance of the
        post-baseline visits given the baseline.
    """
    s = np.asarray(covariance, dtype=float)
    conditional = s[1:, 1:] - np.outer(s[1:, 0], s[0, 1:]) / s[0, 0]
    index = visit - 1
    return Contrast(
        "visit",
        lu_luo_chen_phi(conditional, np.asarray(retention_a)[1:], index),
        lu_luo_chen_phi(conditional, np.asarray(retention_b)[1:], index),
        allocation,
    )


def _df(n_total: float) -> float:
    return max(n_total - 2.0, 1.0)


def _critical(alpha: float, distribution: Distribution, n_total: float) -> float:
    if distribution == "z":
        return float(stats.norm.ppf(1.0 - alpha / 2.0))
    return float(stats.t.ppf(1.0 - alpha / 2.0, _df(n_total)))


def power(
    contrast: Contrast,
    effect: float,
    n_total: float,
    alpha: float = 0.05,
    distribution: Distribution = "z",
) -> float:
    """Power of the two-sided test of the contrast.

    Parameters
    ----------
    contrast : Contrast
        Per-patient variances.
    effect : float
        True value of the contrast (its sign does not matter).
    n_total : float
        Patients in both groups.
    alpha : float
        Two-sided level (already divided by the family size when Bonferroni applies).
    distribution : {"z", "t"}
        Normal test (the published formulas), or t with ``N - 2`` df and noncentral t power.

    Returns
    -------
    float
        Probability of rejecting (both tails).
    """
    ncp = abs(effect) / contrast.std_err(n_total)
    crit = _critical(alpha, distribution, n_total)
    if distribution == "z":
        return float(stats.norm.sf(crit - ncp) + stats.norm.cdf(-crit - ncp))
    df = _df(n_total)
    lower = stats.nct.cdf(-crit, df, ncp)  # scipy returns NaN when this tail underflows
    return float(stats.nct.sf(crit, df, ncp) + (0.0 if np.isnan(lower) else lower))


def n_for_power(
    contrast: Contrast,
    effect: float,
    target: float = 0.8,
    alpha: float = 0.05,
    distribution: Distribution = "z",
) -> float:
    """Patients in both groups for the target power (not rounded).

    With ``"z"`` this is the closed form ``N`` with ``(z_{1-alpha/2} + z_{power})^2 Var = effect^2``
    (one tail, as the published formulas); with ``"t"`` the root of :func:`power`.

    Parameters
    ----------
    contrast : Contrast
        Per-patient variances.
    effect : float
        True value of the contrast.
    target : float
        Power wanted.
    alpha : float
        Two-sided level.
    distribution : {"z", "t"}
        As :func:`power`.

    Returns
    -------
    float
        Total number of patients (``inf`` when the effect is 0).
    """
    if effect == 0:
        return float("inf")
    unit = contrast.std_err(1.0) ** 2  # variance with one patient in all
    z = stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(target)
    n_z = float(unit * z**2 / effect**2)
    if distribution == "z":
        return n_z
    lo = max(n_z, 3.0)
    hi = lo * 2.0 + 10.0
    while power(contrast, effect, hi, alpha, "t") < target:
        hi *= 2.0
    if power(contrast, effect, lo, alpha, "t") >= target:
        return lo
    return float(optimize.brentq(lambda n: power(contrast, effect, n, alpha, "t") - target, lo, hi))


def detectable_effect(
    contrast: Contrast,
    n_total: float,
    target: float = 0.8,
    alpha: float = 0.05,
    distribution: Distribution = "z",
) -> float:
    """Smallest true contrast detected with the target power at ``n_total`` patients.

    Parameters
    ----------
    contrast : Contrast
        Per-patient variances.
    n_total : float
        Patients in both groups.
    target : float
        Power wanted.
    alpha : float
        Two-sided level.
    distribution : {"z", "t"}
        As :func:`power` (``"z"``: ``(z_{1-alpha/2} + z_{power}) SE``, one tail).

    Returns
    -------
    float
        The detectable effect (positive).
    """
    se = contrast.std_err(n_total)
    if distribution == "z":
        return float((stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(target)) * se)
    first = (stats.t.ppf(1.0 - alpha / 2.0, _df(n_total)) + stats.norm.ppf(target)) * se
    return float(
        optimize.brentq(
            lambda d: power(contrast, d, n_total, alpha, "t") - target, 1e-9 * se, 4.0 * first
        )
    )


def precision(
    contrast: Contrast, n_total: float, level: float = 0.95, distribution: Distribution = "t"
) -> float:
    """Return the expected half-width of the confidence interval of the contrast.

    Parameters
    ----------
    contrast : Contrast
        Per-patient variances.
    n_total : float
        Patients in both groups.
    level : float
        Confidence level.
    distribution : {"z", "t"}
        Normal or t (``N - 2`` df) quantile.

    Returns
    -------
    float
        ``q_{(1 + level) / 2} SE``.
    """
    return _critical(1.0 - level, distribution, n_total) * contrast.std_err(n_total)
