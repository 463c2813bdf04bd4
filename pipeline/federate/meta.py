"""Random-effects meta-analysis of clinic-level estimates, as ``metafor::rma`` computes it.

``random_effects_meta(yi, sei)`` reproduces ``metafor::rma(yi, sei = sei, method = "REML",
test = "knha")``:

* ``tau^2`` by REML, Fisher scoring as metafor (step ``(Y'PPY - tr P) / tr(PP)``, halved
  while it would make ``tau^2`` negative), to a change below 1e-12;
* the pooled estimate with the Hartung-Knapp-Sidik-Jonkman standard error
  ``sqrt(s2w / sum w)``, ``s2w = sum w (y - mu)^2 / (k - 1)`` (not truncated at 1, metafor's
  default), and a t interval with ``k - 1`` df;
* Cochran's ``Q`` (fixed-effect weights) and metafor's ``I^2 = tau^2 / (tau^2 + s^2)`` with the
  typical within-clinic variance ``s^2 = (k - 1) sum w / ((sum w)^2 - sum w^2)``;
* the 95 % prediction interval ``mu +- t_{k-1} sqrt(se^2 + tau^2)`` (``predict.rma``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["MetaResult", "random_effects_meta"]


@dataclass(frozen=True)
class MetaResult:
    """A random-effects meta-analysis (REML, Hartung-Knapp-Sidik-Jonkman).

    Attributes
    ----------
    k : int
        Number of clinics.
    estimate, std_err : float
        Pooled estimate and its HKSJ standard error.
    df : int
        ``k - 1``.
    ci_low, ci_high : float
        95 % confidence interval.
    p_value : float
        Two-sided t test of estimate = 0.
    tau2 : float
        Between-clinic variance (REML).
    i2 : float
        ``I^2`` in percent.
    q : float
        Cochran's Q.
    q_p_value : float
        p of Q on ``k - 1`` df.
    pi_low, pi_high : float
        95 % prediction interval for a new clinic's effect.
    """

    k: int
    estimate: float
    std_err: float
    df: int
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    q: float
    q_p_value: float
    pi_low: float
    pi_high: float


def _reml_tau2(y: np.ndarray, v: np.ndarray, tol: float = 1e-12, max_iter: int = 1000) -> float:
    """REML ``tau^2`` by metafor's Fisher scoring from the DerSimonian-Laird start."""
    w = 1.0 / v
    mu_fe = float(w @ y / w.sum())
    q = float(w @ (y - mu_fe) ** 2)
    k = y.size
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    for _ in range(max_iter):
        w = 1.0 / (v + tau2)
        pmat = np.diag(w) - np.outer(w, w) / w.sum()
        py = pmat @ y
        adj = (float(py @ py) - float(np.trace(pmat))) / float(np.sum(pmat * pmat))
        while tau2 + adj < 0:
            adj /= 2.0
        tau2 += adj
        if abs(adj) < tol:
            break
    return float(tau2)


def random_effects_meta(yi: Sequence[float], sei: Sequence[float]) -> MetaResult:
    """Pool clinic estimates by REML random-effects meta-analysis with the HKSJ interval.

    Parameters
    ----------
    yi : sequence of float
        Clinic estimates.
    sei : sequence of float
        Their standard errors (positive).

    Returns
    -------
    MetaResult
        As ``metafor::rma(yi, sei = sei, method = "REML", test = "knha")``.

    Raises
    ------
    ValueError
        With fewer than 2 clinics or a non-positive standard error.
    """
    y = np.asarray(yi, dtype=float)
    se = np.asarray(sei, dtype=float)
    if y.size < 2 or y.shape != se.shape:
        raise ValueError("a meta-analysis needs at least 2 estimates with one SE each")
    if not np.all(np.isfinite(y)) or not np.all(se > 0):
        raise ValueError("estimates must be finite and standard errors positive")
    v = se**2
    k = y.size
    tau2 = _reml_tau2(y, v)
    w = 1.0 / (v + tau2)
    mu = float(w @ y / w.sum())
    s2w = float(w @ (y - mu) ** 2) / (k - 1)
    std_err = float(np.sqrt(s2w / w.sum()))
    crit = float(stats.t.ppf(0.975, k - 1))
    w_fe = 1.0 / v
    mu_fe = float(w_fe @ y / w_fe.sum())
    q = float(w_fe @ (y - mu_fe) ** 2)
    typical = (k - 1) * w_fe.sum() / (w_fe.sum() ** 2 - (w_fe**2).sum())
    pred_se = float(np.sqrt(std_err**2 + tau2))
    return MetaResult(
        k=k,
        estimate=mu,
        std_err=std_err,
        df=k - 1,
        ci_low=mu - crit * std_err,
        ci_high=mu + crit * std_err,
        p_value=float(2.0 * stats.t.sf(abs(mu / std_err), k - 1)) if std_err > 0 else 0.0,
        tau2=tau2,
        i2=float(100.0 * tau2 / (tau2 + typical)),
        q=q,
        q_p_value=float(stats.chi2.sf(q, k - 1)),
        pi_low=mu - crit * pred_se,
        pi_high=mu + crit * pred_se,
    )
