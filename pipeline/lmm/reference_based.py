"""Reference-based conditional mean imputation (CMI) on an MMRM, with jackknife standard errors.

The method is Wolbers, Noci, Delmar, Gower-Page, Yiu and Bartlett (2022), "Standard and
reference-based conditional mean imputation", *Pharmaceutical Statistics* 21:1246-1257, as
R's ``rbmi`` implements it (``method_condmean(type = "jackknife")``):

1. The imputation model is an MMRM fitted to the observed data (:func:`pipeline.lmm.mmrm.fit_mmrm`).
2. Every missing value of patient ``i`` is replaced by its conditional mean given the patient's
   observed values, under a mean vector ``m_i`` chosen by the patient's strategy::

       y_M = m_M + Sigma[M, O] Sigma[O, O]^{-1} (y_O - m_O)

3. The completed data are analysed by an ANCOVA at each visit (OLS of the completed outcome on
   the group indicators and the baseline covariates).
4. The standard error is the leave-one-patient-out jackknife of steps 1-3,
   ``sqrt((n - 1) / n * sum_i (theta_(-i) - mean)^2)``, with normal CIs and p-values.
   For large studies the delete-a-group jackknife (Kott 2001, "The delete-a-group jackknife",
   *Journal of Official Statistics* 17(4):521-526) replaces it: the patients are split into
   ``G`` groups (:func:`jackknife_groups`), each replicate deletes one group, and the variance
   is ``(G - 1) / G * sum_g (theta_(-g) - mean)^2`` with ``G - 1`` degrees of freedom
   (:attr:`CmiResult.df`). With ``G = n`` (every patient a group) it is the leave-one-out
   jackknife, number for number.

Strategies (Carpenter, Roger and Kenward 2013, *J Biopharm Stat* 23:1352), for a patient of
group ``a`` whose intercurrent event (ICE) makes visits ``t, t+1, ...`` "post-ICE", with own-group
means ``mu_a`` and reference means ``mu_r`` (the same patient's covariates, the reference level):

* ``MAR``: ``m = mu_a``.
* ``J2R`` (jump to reference): ``m_j = mu_a,j`` before ``t``, ``mu_r,j`` from ``t`` on.
* ``CR`` (copy reference): ``m = mu_r`` at every visit.
* ``CIR`` (copy increments in reference): from ``t`` on, ``m_j = mu_a,t-1 + mu_r,j - mu_r,t-1``.
* ``LMCF`` (last mean carried forward): from ``t`` on, ``m_j = mu_a,t-1``.

When the ICE comes before the first post-baseline visit (``t = 0``) there is no on-treatment
mean to carry: CIR and LMCF then take the reference means (as J2R and CR do).

Covariance: by default one ``Sigma`` shared by the groups conditions every patient. When the
imputation MMRM has a separate ``Sigma`` per group (``fit_mmrm(..., covariance_group=group)``,
rbmi's ``same_cov = FALSE``), each patient's covariance follows their strategy as in rbmi
(Carpenter, Roger and Kenward 2013, section 4.3): MAR and LMCF their own group's ``T``, CR
the reference's ``R`` (for a patient with an ICE), and J2R and CIR the joint matrix of
pre-ICE visits ``a`` and post-ICE visits ``b``::

    [[T_aa,                    T_aa R_aa^-1 R_ab                                     ],
     [R_ba R_aa^-1 T_aa,       R_bb - R_ba R_aa^-1 (R_aa - T_aa) R_aa^-1 R_ab        ]]

(``T`` when there is no post-ICE visit, ``R`` when there is no pre-ICE one).

Theorems held by the tests
--------------------------
* When the imputation MMRM has every covariate interacted with visit
  (``visit * (group + baseline + covariates)``), MAR-CMI followed by the per-visit ANCOVA
  reproduces the MMRM's group difference exactly: the completed-data GLS score at the MMRM's
  ``(beta, Sigma)`` is the observed-data score (``Sigma^{-1}`` of the conditional-mean residual
  is ``[Sigma_OO^{-1} r_O, 0]``), which is zero, and with identical regressors at every visit
  the completed-data GLS is OLS visit by visit.
* With monotone dropout and no group-by-covariate interaction, the imputed value under J2R is the
  MAR one minus ``Delta_k`` (the MMRM's group difference at visit ``k``) for every non-reference
  patient missing at ``k``, so ``J2R = Delta_k (1 - b)`` where ``b`` is the group coefficient of
  the OLS of the "imputed at ``k``" indicator on the ANCOVA design; CR subtracts
  ``Delta_k - Sigma[k, O] Sigma[O, O]^{-1} Delta_O`` and CIR ``Delta_k - Delta_t-1``.

Speed: the jackknife reuses the full fit
-----------------------------------------
Leaving patient ``i`` out removes their rows from one visit pattern's cross-products
(:mod:`pipeline.lmm.patterns`), so each leave-one-out likelihood is the full one with one
pattern's ``XX``, ``XY``, ``YY`` and count downdated (no patsy, no new design). Each refit starts
at the full estimate and takes chord-Newton steps with the full fit's Hessian factorised once
(Cholesky) for all patients: the leave-one-out optimum is ``O(1/n)`` away, so a few steps
(one criterion-and-gradient evaluation each) reach a step below ``1e-9``; a refit that does not
settle falls back to L-BFGS-B from the warm start. A deleted group downdates the patterns of
all its patients (its optimum is ``O(1/G)`` away: a few more steps). A replicate's ANCOVA
needs only ``Z'Y`` of the completed data, which is linear in ``beta`` and in each visit
pattern's regression ``Sigma_OO^-1 Sigma_OM``: it is read off per-pattern sums formed once,
less what the deleted patients contribute (:class:`_AncovaSums`), so no replicate re-imputes
all ``n`` patients. The leave-one-out jackknife still costs ``n`` refits; the grouped one
``G``, whatever the size. The ANCOVA's leave-one-out coefficients use
the Sherman-Morrison downdate of ``(Z'Z)^{-1}``, and a tipping-point delta enters every estimate
linearly, so the whole delta grid is read off the jackknife without refitting.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
from scipy import optimize, stats

from pipeline.lmm.mmrm import MmrmFit

__all__ = [
    "STRATEGIES",
    "CmiData",
    "CmiResult",
    "MiResult",
    "conditional_mean_imputation",
    "jackknife_groups",
    "joint_sigma",
    "multiple_imputation",
    "strategy_means",
]

STRATEGIES = ("MAR", "J2R", "CR", "CIR", "LMCF")
"""Imputation strategies, in the order of the published table."""

STRATEGY_LABELS = {
    "MAR": "missing at random",
    "J2R": "jump to reference",
    "CR": "copy reference",
    "CIR": "copy increments in reference",
    "LMCF": "last mean carried forward",
}
"""Words for each strategy code."""

STEP_TOL = 1e-9
"""Largest chord-Newton step (optimiser scale) at which a leave-one-out refit has converged."""


@dataclass(frozen=True, eq=False)
class CmiData:
    """Patient-by-visit arrays of one conditional mean imputation.

    Attributes
    ----------
    y : numpy.ndarray
        ``(n, T)`` observed responses, NaN where missing (the values to impute).
    x_own : numpy.ndarray
        ``(n, T, p)`` imputation-model design of each patient at each visit, own group.
    x_ref : numpy.ndarray
        ``(n, T, p)`` the same with the group set to the reference level.
    z : numpy.ndarray
        ``(n, q)`` ANCOVA design (intercept, group indicators, baseline covariates).
    effect_columns : numpy.ndarray
        Columns of ``z`` holding the non-reference group indicators (one per level).
    level : numpy.ndarray
        ``(n,)`` group of each patient: 0 the reference, ``l`` the ``l``-th effect column.
    ice : numpy.ndarray
        ``(n,)`` index of the first post-ICE visit (``T`` when the patient had no ICE).
    fit_subject : numpy.ndarray
        ``(n,)`` the patient's subject code in the imputation fit, -1 when the fit has no row
        of theirs (no observed post-baseline value).
    cov_group : numpy.ndarray or None
        ``(n,)`` index of the patient's own covariance group in the fit (None: one shared
        ``Sigma``).
    cov_reference : int
        Index of the reference level's covariance group.
    """

    y: np.ndarray
    x_own: np.ndarray
    x_ref: np.ndarray
    z: np.ndarray
    effect_columns: np.ndarray
    level: np.ndarray
    ice: np.ndarray
    fit_subject: np.ndarray
    cov_group: np.ndarray | None = None
    cov_reference: int = 0

    @property
    def n(self) -> int:
        """Number of patients analysed."""
        return int(self.y.shape[0])

    @property
    def n_visits(self) -> int:
        """Number of visits."""
        return int(self.y.shape[1])


@dataclass(frozen=True, eq=False)
class CmiResult:
    """Estimates and leave-one-out estimates of :func:`conditional_mean_imputation`.

    Attributes
    ----------
    strategies : tuple of str
        Names of the per-patient strategy vectors analysed (rows of ``estimate``).
    estimate : numpy.ndarray
        ``(S, L, T)``: group difference (level ``l`` minus reference) at each visit.
    jackknife : numpy.ndarray
        ``(R, S, L, T)``: the same with each patient (``R = n``, leave-one-out) or each
        jackknife group (``R = G``, delete-a-group) left out.
    slope : numpy.ndarray
        ``(S, L, T, G)``: change in ``estimate`` per unit delta added to the imputed values of
        the patients of group ``g`` (``G`` groups, reference first).
    slope_jackknife : numpy.ndarray
        ``(R, S, L, T, G)``: the same, per jackknife replicate.
    imputed : numpy.ndarray
        ``(S, n, T)`` completed data of the full fit.
    n_refits : int
        Jackknife refits of the imputation model.
    n_fallback : int
        Refits that needed L-BFGS-B after the chord-Newton steps.
    max_newton_steps : int
        Largest number of chord-Newton steps taken by a refit.
    mean_newton_steps : float
        Mean number of chord-Newton steps per refit.
    leave_one_out : bool
        True when every patient is a jackknife replicate of their own (the leave-one-out
        jackknife, normal CIs); False for the delete-a-group jackknife (``t`` with ``R - 1``
        df, Kott 2001).
    """

    strategies: tuple[str, ...]
    estimate: np.ndarray
    jackknife: np.ndarray
    slope: np.ndarray
    slope_jackknife: np.ndarray
    imputed: np.ndarray
    n_refits: int
    n_fallback: int
    max_newton_steps: int
    mean_newton_steps: float
    leave_one_out: bool = True

    @property
    def replicates(self) -> int:
        """Jackknife replicates ``R``: patients (leave-one-out) or groups (delete-a-group)."""
        return int(self.jackknife.shape[0])

    @property
    def df(self) -> float:
        """Degrees of freedom of the jackknife SE: infinite (normal) or ``G - 1`` (grouped)."""
        return np.inf if self.leave_one_out else float(self.replicates - 1)

    def critical_value(self, level: float = 0.95) -> float:
        """Two-sided quantile of the CIs: normal, or ``t`` with :attr:`df` df when grouped."""
        q = 0.5 + level / 2
        return float(stats.norm.ppf(q) if np.isinf(self.df) else stats.t.ppf(q, self.df))

    def p_values(self, estimate: np.ndarray, std_err: np.ndarray) -> np.ndarray:
        """Two-sided p-values of ``estimate / std_err`` (NaN where the SE is zero)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(estimate) / std_err
            tail = stats.norm.sf(ratio) if np.isinf(self.df) else stats.t.sf(ratio, self.df)
        return np.where(std_err > 0, 2 * tail, np.nan)

    def std_err(self, delta: np.ndarray | float = 0.0) -> np.ndarray:
        """Jackknife SE of every estimate, with ``delta`` per group added to imputed values.

        ``sqrt((R - 1) / R * sum_r (theta_r - mean)^2)`` over the ``R`` replicates: patients
        (leave-one-out) or groups (delete-a-group, Kott 2001).

        Parameters
        ----------
        delta : float or array_like
            Scalar (every group) or ``(G,)`` deltas.

        Returns
        -------
        numpy.ndarray
            ``(S, L, T)``.
        """
        jk = self.jackknife + self.slope_jackknife @ self._delta(delta)
        n = jk.shape[0]
        dev = jk - jk.mean(axis=0)
        return np.sqrt((n - 1) / n * np.sum(dev**2, axis=0))

    def shifted(self, delta: np.ndarray | float = 0.0) -> np.ndarray:
        """Point estimates with ``delta`` per group added to the imputed values."""
        return self.estimate + self.slope @ self._delta(delta)

    def _delta(self, delta: np.ndarray | float) -> np.ndarray:
        g = self.slope.shape[-1]
        d = np.asarray(delta, dtype=float)
        return np.full(g, float(d)) if d.ndim == 0 else d

    def table(self, delta: np.ndarray | float = 0.0, level: float = 0.95) -> pd.DataFrame:
        """Tidy table: ``strategy, level, visit, estimate, std_err, ci_low, ci_high, p_value``.

        ``level`` and ``visit`` are positions (1-based level among the non-reference levels,
        0-based visit index); the caller names them.
        """
        est, se = self.shifted(delta), self.std_err(delta)
        z = self.critical_value(level)
        pv = self.p_values(est, se)
        rows = []
        for s, name in enumerate(self.strategies):
            for lv in range(est.shape[1]):
                for t in range(est.shape[2]):
                    e, sd = float(est[s, lv, t]), float(se[s, lv, t])
                    p = float(pv[s, lv, t])
                    rows.append([name, lv + 1, t, e, sd, e - z * sd, e + z * sd, p])
        return pd.DataFrame(
            rows,
            columns=[
                "strategy",
                "level",
                "visit",
                "estimate",
                "std_err",
                "ci_low",
                "ci_high",
                "p_value",
            ],
        )


def strategy_means(
    mu_own: np.ndarray, mu_ref: np.ndarray, ice: np.ndarray, strategy: np.ndarray
) -> np.ndarray:
    """Mean vector of each patient under their strategy (module docstring).

    Parameters
    ----------
    mu_own, mu_ref : numpy.ndarray
        ``(n, T)`` own-group and reference means of each patient (or ``(n, T, p)``: the
        designs of those means, giving the design of the strategy's means).
    ice : numpy.ndarray
        ``(n,)`` first post-ICE visit index (``T``: no ICE).
    strategy : numpy.ndarray
        ``(n,)`` strategy codes of :data:`STRATEGIES`.

    Returns
    -------
    numpy.ndarray
        ``(n, T)``.
    """
    return _StrategyRows(ice, strategy)(mu_own, mu_ref)


def _strategy_rows(code: str, own: np.ndarray, ref: np.ndarray, ice: np.ndarray) -> np.ndarray:
    """Return the means of patients who all follow ``code`` (trailing axes ride along)."""
    n, t = own.shape[:2]
    tail = (None,) * (own.ndim - 2)
    if code == "CR":
        return np.where((ice < t)[(slice(None), None, *tail)], ref, own)
    post = (np.arange(t)[None, :] >= ice[:, None])[(..., *tail)]
    if code == "J2R":
        return np.where(post, ref, own)
    last = np.clip(ice - 1, 0, t - 1)
    has_last = (ice > 0)[(slice(None), None, *tail)]
    rows = np.arange(n)
    own_last = own[rows, last][:, None]
    if code == "CIR":
        ref_last = ref[rows, last][:, None]
        return np.where(post, np.where(has_last, own_last + ref - ref_last, ref), own)
    return np.where(post, np.where(has_last, own_last, ref), own)  # LMCF


class _StrategyRows:
    """Which patients follow which strategy, sorted once for many ``beta``."""

    def __init__(self, ice: np.ndarray, strategy: np.ndarray):
        strategy = np.asarray(strategy)
        present = set(np.unique(strategy))
        unknown = present - set(STRATEGIES)
        if unknown:
            raise ValueError(f"unknown strategies {sorted(unknown)}: choose from {STRATEGIES}")
        self.ice = np.asarray(ice, dtype=int)
        self.rows = {
            code: np.flatnonzero(strategy == code)
            for code in STRATEGIES
            if code != "MAR" and code in present
        }

    def __call__(self, mu_own: np.ndarray, mu_ref: np.ndarray) -> np.ndarray:
        """Mean of every patient under their strategy, from own-group and reference means."""
        out = mu_own.copy()
        for code, rows in self.rows.items():
            out[rows] = _strategy_rows(code, mu_own[rows], mu_ref[rows], self.ice[rows])
        return out


def joint_sigma(own: np.ndarray, ref: np.ndarray, ice: int) -> np.ndarray:
    """Covariance of J2R and CIR with pre-ICE visits ``< ice`` (module docstring).

    Parameters
    ----------
    own, ref : numpy.ndarray
        ``(T, T)`` covariance of the patient's group (``T``) and of the reference (``R``).
    ice : int
        First post-ICE visit index.

    Returns
    -------
    numpy.ndarray
        ``(T, T)``.
    """
    t = own.shape[0]
    if ice >= t:
        return own
    if ice <= 0:
        return ref
    a, b = np.arange(ice), np.arange(ice, t)
    r_inv_t = np.linalg.solve(ref[np.ix_(a, a)], own[np.ix_(a, a)])  # R_aa^-1 T_aa
    r_inv_rab = np.linalg.solve(ref[np.ix_(a, a)], ref[np.ix_(a, b)])  # R_aa^-1 R_ab
    out = np.empty_like(own)
    out[np.ix_(a, a)] = own[np.ix_(a, a)]
    out[np.ix_(b, a)] = ref[np.ix_(b, a)] @ r_inv_t
    out[np.ix_(a, b)] = out[np.ix_(b, a)].T
    diff = ref[np.ix_(a, a)] - own[np.ix_(a, a)]
    out[np.ix_(b, b)] = ref[np.ix_(b, b)] - r_inv_rab.T @ diff @ r_inv_rab
    return out


def _sigma_key(code: str, ice: int, own: int, ref: int, t: int) -> tuple:
    """Name the matrix conditioning a patient: ``("own", g)``, ``("ref",)``, ``("joint", g, t)``."""
    if own == ref or ice >= t or code == "MAR":
        return ("own", own)
    if code == "CR" or ice <= 0:
        return ("ref",)
    if code == "LMCF":
        return ("own", own)
    return ("joint", own, ice)


def _mean_of(design: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``design @ beta`` for an ``(n, T, p)`` design, as one matrix-vector product.

    numpy multiplies a stack of matrices by a vector one matrix at a time; flattened, it is one
    BLAS call (at 100,000 patients a quarter of the time).
    """
    return (design.reshape(-1, design.shape[-1]) @ beta).reshape(design.shape[:-1])


class _Imputer:
    """Conditional means of the missing values, grouped by the patients' observed-visit sets."""

    def __init__(self, data: CmiData, strategies: Sequence[tuple[np.ndarray, np.ndarray]]):
        self.data = data
        self.strategies = [(np.asarray(s), np.asarray(ice, dtype=int)) for s, ice in strategies]
        self.strategy_rows = [_StrategyRows(ice, s) for s, ice in self.strategies]
        observed = ~np.isnan(data.y)
        keys = observed @ (1 << np.arange(data.n_visits))
        self.groups = []
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            obs = observed[rows[0]]
            if obs.all():
                continue
            self.groups.append((rows, np.flatnonzero(obs), np.flatnonzero(~obs)))
        self.missing = ~observed
        self.separate = data.cov_group is not None
        # Separate covariances: the patients of each (pattern, strategy) split by the matrix
        # that conditions them, fixed by the data, so worked out once for every refit.
        self.blocks: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple]]] = []
        if self.separate:
            t = data.n_visits
            for codes, ice in self.strategies:
                per = []
                for rows, obs, mis in self.groups:
                    keys_s = [
                        _sigma_key(
                            str(codes[r]),
                            int(ice[r]),
                            int(data.cov_group[r]),
                            data.cov_reference,
                            t,
                        )
                        for r in rows
                    ]
                    for k in dict.fromkeys(keys_s):
                        pick = rows[[kk == k for kk in keys_s]]
                        per.append((pick, obs, mis, k))
                self.blocks.append(per)

    def _means(self, beta: np.ndarray) -> np.ndarray:
        d = self.data
        mu_own = _mean_of(d.x_own, beta)
        mu_ref = _mean_of(d.x_ref, beta)
        return np.array([rows(mu_own, mu_ref) for rows in self.strategy_rows])  # (S, n, T)

    def _sigma(self, key: tuple, sigmas: np.ndarray) -> np.ndarray:
        if key[0] == "own":
            return sigmas[key[1]]
        if key[0] == "ref":
            return sigmas[self.data.cov_reference]
        return joint_sigma(sigmas[key[1]], sigmas[self.data.cov_reference], key[2])

    def complete(self, beta: np.ndarray, sigma: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Completed data ``(S, n, T)`` for the patients ``keep`` (others left NaN).

        ``sigma`` is ``(T, T)`` (shared) or ``(G, T, T)`` (one per covariance group).
        """
        d = self.data
        out = np.repeat(d.y[None], len(self.strategies), axis=0)
        means = self._means(beta)
        if self.separate:
            for s, blocks in enumerate(self.blocks):
                for rows, obs, mis, key in blocks:
                    rows = rows[keep[rows]]
                    if rows.size == 0:
                        continue
                    m = means[s, rows]
                    fill = m[:, mis]
                    if obs.size:
                        sig = self._sigma(key, sigma)
                        coef = np.linalg.solve(sig[np.ix_(obs, obs)], sig[np.ix_(obs, mis)])
                        fill = fill + (d.y[rows][:, obs] - m[:, obs]) @ coef
                    out[s, rows[:, None], mis[None, :]] = fill
            return out
        sigma = sigma[0] if sigma.ndim == 3 else sigma
        for rows, obs, mis in self.groups:
            rows = rows[keep[rows]]
            if rows.size == 0:
                continue
            m = means[:, rows]
            if obs.size:
                coef = np.linalg.solve(sigma[np.ix_(obs, obs)], sigma[np.ix_(obs, mis)])
                resid = d.y[rows][:, obs][None] - m[:, :, obs]
                fill = m[:, :, mis] + resid @ coef
            else:
                fill = m[:, :, mis]
            out[:, rows[:, None], mis[None, :]] = fill
        return out

    def add_noise(self, completed: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> None:
        """Add draws from each missing value's conditional normal distribution, in place."""
        if self.separate:
            z = rng.standard_normal(self.data.y.shape)  # shared by the strategies
            for s, blocks in enumerate(self.blocks):
                for rows, obs, mis, key in blocks:
                    sig = self._sigma(key, sigma)
                    completed[s, rows[:, None], mis[None, :]] += (
                        z[rows][:, mis] @ _conditional_chol(sig, obs, mis).T
                    )
            return
        sigma = sigma[0] if sigma.ndim == 3 else sigma
        for rows, obs, mis in self.groups:
            chol = _conditional_chol(sigma, obs, mis)
            noise = rng.standard_normal((rows.size, mis.size)) @ chol.T
            completed[:, rows[:, None], mis[None, :]] += noise[None]

    def cells(self) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, tuple | None]]:
        """Every ``(strategy, rows, obs, mis, sigma key)`` block the imputation fills."""
        if self.separate:
            return [
                (s, rows, obs, mis, key)
                for s, blocks in enumerate(self.blocks)
                for rows, obs, mis, key in blocks
            ]
        return [
            (s, rows, obs, mis, None)
            for s in range(len(self.strategies))
            for rows, obs, mis in self.groups
        ]

    def design(self, s: int, rows: np.ndarray) -> np.ndarray:
        """``(k, T, p)``: strategy ``s``'s mean of each cell of ``rows`` as a map of ``beta``."""
        d = self.data
        codes, ice = self.strategies[s]
        return strategy_means(d.x_own[rows], d.x_ref[rows], ice[rows], codes[rows])


class _AncovaSums:
    """``Z' Y`` of the completed data from per-block sums: no pass over the patients.

    A block's imputed values are ``M_mis beta + (y_obs - M_obs beta) C`` (``M`` the design of
    the strategy's means, ``C = Sigma_OO^-1 Sigma_OM``), linear in ``beta`` and in ``C``; so
    ``sum_i z_i y_i`` over the block is ``P_mis beta + (P_y - P_obs beta) C`` with the sums
    ``P_mis = sum_i z_i M_i,mis``, ``P_obs = sum_i z_i M_i,obs`` and ``P_y = sum_i z_i y_i,obs``
    formed once. A jackknife replicate evaluates them at its ``(beta, Sigma)`` and subtracts
    what its deleted patients contribute: ``O(blocks + deleted)`` instead of ``O(n)``.
    """

    def __init__(self, imputer: _Imputer):
        self.imputer = imputer
        d = imputer.data
        z = d.z
        y0 = np.where(np.isnan(d.y), 0.0, d.y)
        self.observed = np.einsum("nq,nt->qt", z, y0)  # observed cells, every strategy
        self.cells = imputer.cells()
        self.member = np.full((len(imputer.strategies), d.n), -1)  # each patient's block
        # the regressions C = Sigma_OO^-1 Sigma_OM the blocks need, one per (matrix, obs set)
        self.keys: list[tuple | None] = []  # the matrices conditioning the blocks
        names: dict[tuple, int] = {}
        self.coef_of = np.full(len(self.cells), -1)  # block -> its regression (-1: none)
        regressions = []  # (key position, obs, mis)
        for c, (_, _, obs, mis, key) in enumerate(self.cells):
            if key not in self.keys:
                self.keys.append(key)
            if obs.size == 0:
                continue
            name = (key, obs.tobytes())
            if name not in names:
                names[name] = len(regressions)
                regressions.append((self.keys.index(key), obs, mis))
            self.coef_of[c] = names[name]
        # regressions batched by the number of observed visits (the missing ones are the rest)
        self.solves = []  # (positions, key positions, obs (u, k), mis (u, T - k))
        sizes = np.array([obs.size for _, obs, _ in regressions], dtype=int)
        for k in np.unique(sizes):
            at = np.flatnonzero(sizes == k)
            self.solves.append(
                (
                    at,
                    np.array([regressions[i][0] for i in at]),
                    np.array([regressions[i][1] for i in at]),
                    np.array([regressions[i][2] for i in at]),
                )
            )
        self.n_regressions = len(regressions)
        # each block's sums, batched by its number of observed visits
        by_size: dict[int, list] = {}
        for c, (s, rows, obs, mis, _) in enumerate(self.cells):
            zr = z[rows]
            m = imputer.design(s, rows)  # (k, T, p)
            by_size.setdefault(obs.size, []).append(
                (
                    s,
                    mis,
                    self.coef_of[c],
                    np.einsum("kq,ktp->qtp", zr, m[:, mis]),
                    np.einsum("kq,ktp->qtp", zr, m[:, obs]),
                    zr.T @ d.y[rows][:, obs],
                )
            )
            self.member[s, rows] = c
        self.batches = []  # (strategy, mis, regression, P_mis, P_obs, P_y), stacked
        for parts in by_size.values():
            self.batches.append(tuple(np.array(col) for col in zip(*parts, strict=True)))

    def coefficients(self, sigma: np.ndarray) -> list[np.ndarray]:
        """Every regression ``Sigma_OO^-1 Sigma_OM`` at ``sigma`` (position ``coef_of``)."""
        imp = self.imputer
        shared = sigma[0] if sigma.ndim == 3 else sigma
        mats = np.array(
            [shared if key is None else imp._sigma(key, sigma) for key in self.keys]
        )  # (K, T, T)
        out: list[np.ndarray] = [np.empty(0)] * self.n_regressions
        for at, key, obs, mis in self.solves:
            kk = key[:, None, None]
            coef = np.linalg.solve(
                mats[kk, obs[:, :, None], obs[:, None, :]],
                mats[kk, obs[:, :, None], mis[:, None, :]],
            )
            for i, c in zip(at, coef, strict=True):
                out[i] = c
        return out

    def total(self, beta: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, list]:
        """``(S, q, T)``: ``Z' Y`` of all patients completed at ``(beta, Sigma)``; the coefs."""
        imp = self.imputer
        coefs = self.coefficients(sigma)
        out = np.broadcast_to(self.observed, (len(imp.strategies), *self.observed.shape)).copy()
        q = out.shape[1]
        for s, mis, reg, p_mis, p_obs, p_y in self.batches:
            fill = p_mis @ beta  # (B, q, T - k)
            if p_obs.shape[2]:
                c = np.array([coefs[i] for i in reg])  # (B, k, T - k)
                fill = fill + (p_y - p_obs @ beta) @ c
            np.add.at(out, (s[:, None, None], np.arange(q)[None, :, None], mis[:, None, :]), fill)
        return out, coefs

    def of(self, rows: np.ndarray, beta: np.ndarray, coefs: list) -> np.ndarray:
        """``(S, q, T)``: what the patients ``rows`` add to :meth:`total`, row by row."""
        imp = self.imputer
        d = imp.data
        zr = d.z[rows]
        y0 = np.where(np.isnan(d.y[rows]), 0.0, d.y[rows])
        out = np.broadcast_to(zr.T @ y0, (len(imp.strategies), zr.shape[1], d.n_visits)).copy()
        mu_own, mu_ref = d.x_own[rows] @ beta, d.x_ref[rows] @ beta
        for s, (codes, ice) in enumerate(imp.strategies):
            means = strategy_means(mu_own, mu_ref, ice[rows], codes[rows])  # (k, T)
            blocks = self.member[s, rows]
            for c in np.unique(blocks[blocks >= 0]):
                mine = blocks == c
                _, _, obs, mis, _ = self.cells[c]
                m = means[mine]
                fill = m[:, mis]
                if obs.size:
                    resid = d.y[rows[mine]][:, obs] - m[:, obs]
                    fill = fill + resid @ coefs[self.coef_of[c]]
                out[s][:, mis] += zr[mine].T @ fill
        return out


def _conditional_chol(sigma: np.ndarray, obs: np.ndarray, mis: np.ndarray) -> np.ndarray:
    """Cholesky factor of ``Sigma[M, M] - Sigma[M, O] Sigma[O, O]^{-1} Sigma[O, M]``."""
    cond = sigma[np.ix_(mis, mis)]
    if obs.size:
        cond = cond - sigma[np.ix_(mis, obs)] @ np.linalg.solve(
            sigma[np.ix_(obs, obs)], sigma[np.ix_(obs, mis)]
        )
    return np.linalg.cholesky(0.5 * (cond + cond.T))


class _LeaveOneOut:
    """Leave-one-out refits of the imputation MMRM from the full fit (module docstring)."""

    def __init__(self, fit: MmrmFit):
        lik = fit.likelihood
        if lik is None or fit._hessian is None:
            raise ValueError("the MMRM fit carries no likelihood (fit it with fit_mmrm)")
        self.lik = lik
        self.theta = np.asarray(fit.theta, dtype=float)
        self.chol = scipy.linalg.cho_factor(fit._hessian)
        data = lik.data
        self.where: dict[int, tuple[int, int, np.ndarray]] = {}
        for b_idx, batch in enumerate(lik.batches):
            for j, p_idx in enumerate(batch.index):
                pat = data.patterns[p_idx]
                subjects = data.subject_codes[pat.rows[:, 0]]
                for r, s in enumerate(subjects):
                    self.where[int(s)] = (b_idx, j, pat.rows[r])
        self.n_fallback = 0
        self.max_steps = 0
        self.steps = 0
        self.refits = 0

    def without(self, subject: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``beta`` and ``(G, T, T)`` Sigmas with ``subject`` left out (the full fit when -1).

        ``subject`` is one subject code or several (a deleted jackknife group); codes below
        zero are ignored, and when none is left the full fit is returned.
        """
        lik = self.lik
        subjects = [int(v) for v in np.atleast_1d(subject) if v >= 0]
        if not subjects:
            st = lik.state(self.theta)
            return st.beta, np.asarray(lik.sigmas(self.theta))
        by_pattern: dict[tuple[int, int], list[np.ndarray]] = {}
        for code in subjects:
            b_idx, j, rows = self.where[code]
            by_pattern.setdefault((b_idx, j), []).append(rows)
        loo = lik.downdated({key: np.stack(rows) for key, rows in by_pattern.items()})
        theta = self._solve(loo)
        st = loo.state(theta)
        return st.beta, np.asarray(loo.sigmas(theta))

    def _solve(self, loo: object) -> np.ndarray:
        theta = self.theta.copy()
        for step_no in range(1, 31):
            value, grad = loo.criterion_and_gradient(theta)  # type: ignore[attr-defined]
            if not np.isfinite(value):
                break
            step = scipy.linalg.cho_solve(self.chol, grad)
            theta = theta - step
            if np.max(np.abs(step)) < STEP_TOL:
                self.max_steps = max(self.max_steps, step_no)
                self.steps += step_no
                self.refits += 1
                return theta
        self.n_fallback += 1
        res = optimize.minimize(
            loo.criterion_and_gradient,  # type: ignore[attr-defined]
            self.theta,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 5000, "maxcor": 30, "ftol": 1e-15, "gtol": 1e-10},
        )
        return np.asarray(res.x, dtype=float)


def _ancova_pieces(z: np.ndarray, effect_columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group-effect weights ``W = C (Z'Z)^{-1} Z'`` ``(L, n)`` and ``A = (Z'Z)^{-1}``."""
    a = np.linalg.inv(z.T @ z)
    return (a @ z.T)[effect_columns], a


def conditional_mean_imputation(
    fit: MmrmFit,
    data: CmiData,
    strategies: Mapping[str, np.ndarray | tuple[np.ndarray, np.ndarray]],
    *,
    jackknife: bool = True,
    groups: np.ndarray | None = None,
) -> CmiResult:
    """Impute by conditional means under each strategy vector, analyse, and jackknife.

    Parameters
    ----------
    fit : MmrmFit
        The imputation model, fitted to the observed data with one shared covariance.
    data : CmiData
        The patients analysed and their designs (:func:`pipeline.analyses.missing_data` builds
        it from a study).
    strategies : mapping of str to numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        Name -> ``(n,)`` strategy code of each patient (:data:`STRATEGIES`), e.g. ``J2R`` for
        everyone, or a per-patient choice from the recorded intercurrent events; or a pair
        (codes, first post-ICE visit index) to use other events than ``data.ice``. Every
        vector shares the imputation fit, so the jackknife refits serve them all.
    jackknife : bool, default True
        Leave each patient (or group) out in turn (otherwise ``jackknife`` holds the full
        estimate once per replicate and the SEs are zero).
    groups : numpy.ndarray, optional
        ``(n,)`` delete-a-group jackknife group of each patient, codes ``0 .. G - 1`` each
        used (:func:`jackknife_groups`); default: every patient their own group, the
        leave-one-out jackknife. Groups of one patient each give the leave-one-out numbers.

    Returns
    -------
    CmiResult
    """
    names = tuple(strategies)
    pairs = [
        strategies[k] if isinstance(strategies[k], tuple) else (strategies[k], data.ice)
        for k in names
    ]
    imputer = _Imputer(data, pairs)  # type: ignore[arg-type]
    loo = _LeaveOneOut(fit)
    n = data.n
    weights, a_inv = _ancova_pieces(data.z, data.effect_columns)
    n_groups = len(data.effect_columns) + 1
    masks = np.stack(
        [imputer.missing & (data.level == g)[:, None] for g in range(n_groups)], axis=-1
    ).astype(float)  # (n, T, G)

    keep_all = np.ones(n, dtype=bool)
    beta, sigma = loo.without(-1)
    full = imputer.complete(beta, sigma, keep_all)  # (S, n, T)
    estimate = np.einsum("ln,snt->slt", weights, full)
    slope = np.einsum("ln,ntg->ltg", weights, masks)
    slope = np.broadcast_to(slope, (len(names), *slope.shape)).copy()

    if groups is None:
        members = [np.array([i]) for i in range(n)]
    else:
        labels = np.asarray(groups, dtype=int)
        if labels.shape != (n,) or labels.min() < 0:
            raise ValueError(f"groups must hold one code >= 0 per patient ({n})")
        order = np.argsort(labels, kind="stable")
        cuts = np.flatnonzero(np.diff(labels[order])) + 1
        members = np.split(order, cuts)
        if len(members) != labels.max() + 1:
            raise ValueError("groups must use every code from 0 to their largest")
    replicates = len(members)
    jk = np.broadcast_to(estimate, (replicates, *estimate.shape)).copy()
    jk_slope = np.broadcast_to(slope, (replicates, *slope.shape)).copy()
    if jackknife:
        zt_full = np.einsum("nq,snt->sqt", data.z, full)
        zt_mask = np.einsum("nq,ntg->qtg", data.z, masks)
        sums = _AncovaSums(imputer)
        for r, out in enumerate(members):
            subjects = data.fit_subject[out]
            if np.any(subjects >= 0):
                b_r, s_r = loo.without(subjects)
                everyone, coefs = sums.total(b_r, s_r)
                ztv = everyone - sums.of(out, b_r, coefs)
            else:  # the imputation fit is unchanged: downdate the full sums
                ztv = zt_full - np.einsum("kq,skt->sqt", data.z[out], full[:, out, :])
            z_out = data.z[out]
            if out.size == 1:  # Sherman-Morrison downdate of (Z'Z)^-1
                u = a_inv @ z_out[0]
                h = float(z_out[0] @ u)
                a_loo = a_inv + np.outer(u, u) / (1.0 - h)
            else:  # Woodbury: (Z'Z - Zg'Zg)^-1 = A + A Zg' (I - Zg A Zg')^-1 Zg A
                u = a_inv @ z_out.T
                inner = np.eye(out.size) - z_out @ u
                a_loo = a_inv + u @ np.linalg.solve(inner, u.T)
            c = a_loo[data.effect_columns]
            jk[r] = np.einsum("lq,sqt->slt", c, ztv)
            zt_mask_r = zt_mask - np.einsum("kq,ktg->qtg", z_out, masks[out])
            jk_slope[r] = np.einsum("lq,qtg->ltg", c, zt_mask_r)[None]
    return CmiResult(
        strategies=names,
        estimate=estimate,
        jackknife=jk,
        slope=slope,
        slope_jackknife=jk_slope,
        imputed=full,
        n_refits=sum(bool(np.any(data.fit_subject[m] >= 0)) for m in members) if jackknife else 0,
        n_fallback=loo.n_fallback,
        max_newton_steps=loo.max_steps,
        mean_newton_steps=loo.steps / max(loo.refits, 1),
        leave_one_out=replicates == n,
    )


def jackknife_groups(keys: Sequence[object], n_groups: int, seed: int = 0) -> np.ndarray:
    """Assign patients to delete-a-group jackknife groups by a stable, seeded hash.

    Each key (a patient's identifier) is hashed with ``seed`` (BLAKE2b, so the same on every
    machine and run, whatever the order of the rows); the patients are ranked by hash and
    dealt out in turn, rank ``k`` to group ``k mod G``, so that the groups are a random
    partition with sizes differing by at most one (Kott 2001's random groups).

    Parameters
    ----------
    keys : sequence
        One distinct identifier per patient.
    n_groups : int
        Groups ``G``; with ``G >= n`` every patient is a group (leave-one-out).
    seed : int, default 0
        Seed of the hash.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` group codes ``0 .. min(G, n) - 1``.
    """
    n = len(keys)
    if n_groups < 2:
        raise ValueError(f"a jackknife needs at least 2 groups, got {n_groups}")
    digests = [
        int.from_bytes(
            hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(), "big", signed=False
        )
        for k in keys
    ]
    # ties (equal hashes) are broken by the key itself, so the ranking is total
    order = sorted(range(n), key=lambda i: (digests[i], str(keys[i])))
    labels = np.empty(n, dtype=int)
    labels[np.asarray(order, dtype=int)] = np.arange(n) % min(n_groups, n)
    return labels


def build_cmi_data(
    fit: MmrmFit,
    patients: pd.DataFrame,
    y: np.ndarray,
    group: str,
    reference: object,
    ancova: str,
    ice: np.ndarray | None = None,
) -> CmiData:
    """Build the arrays of :func:`conditional_mean_imputation` from a fit and the patients.

    Parameters
    ----------
    fit : MmrmFit
        The imputation MMRM; its fixed effects must be built from patient-level columns of
        ``patients``, its visit column and the group. Its covariance is shared, or separate
        per level of ``group`` (``covariance_group=group``).
    patients : pandas.DataFrame
        One row per patient analysed, with ``fit.subject``, ``group`` and the covariates.
    y : numpy.ndarray
        ``(n, T)`` responses in ``fit.visit_levels`` order, NaN where missing.
    group : str
        The group column; ``reference`` its reference level.
    reference : object
        Reference level of ``group``.
    ancova : str
        patsy right-hand side of the per-visit analysis, e.g. ``"C(arm, Treatment('sham')) +
        base"`` (its group columns are those whose name starts with the group term).
    ice : numpy.ndarray, optional
        ``(n,)`` first post-ICE visit index (default: the visit after the last observed one).

    Returns
    -------
    CmiData
    """
    import patsy

    levels = list(fit.visit_levels)
    n, t = len(patients), len(levels)
    if y.shape != (n, t):
        raise ValueError(f"y has shape {y.shape}, expected {(n, t)}")
    grid = patients.loc[patients.index.repeat(t)].reset_index(drop=True)
    # (categoricals from their codes: built from values, each of the n x T cells is looked up)
    grid[fit.visit] = pd.Categorical.from_codes(np.tile(np.arange(t), n), categories=levels)
    x_own = fit.design_matrix(grid).reshape(n, t, -1)
    ref_grid = grid.copy()
    if isinstance(grid[group].dtype, pd.CategoricalDtype):
        categories = grid[group].cat.categories
        code = int(categories.get_indexer([reference])[0])  # (-1, missing: not a level)
        ref_grid[group] = pd.Categorical.from_codes(np.full(len(grid), code), categories=categories)
    else:
        ref_grid[group] = reference
    x_ref = fit.design_matrix(ref_grid).reshape(n, t, -1)
    zmat = patsy.dmatrix(ancova, patients, NA_action="raise", return_type="dataframe")
    names = list(zmat.columns)
    effect = np.array(
        [k for k, c in enumerate(names) if c.startswith(f"C({group}") or c.startswith(f"{group}[")]
    )
    if effect.size == 0:
        raise ValueError(f"the ANCOVA {ancova!r} has no column for {group!r}")
    values = patients[group].astype(object).to_numpy()
    labels = [names[k].rsplit("[T.", 1)[-1].rstrip("]") for k in effect]
    written = np.array([str(v) for v in values], dtype=object)  # (once, not once per label)
    level = np.zeros(n, dtype=int)
    for pos, lab in enumerate(labels, start=1):
        level[written == lab] = pos
    _, uniques = pd.factorize(fit.rows[fit.subject], sort=True)
    fit_subject = (
        pd.Index(np.asarray(uniques, dtype=object))
        .get_indexer(np.asarray(patients[fit.subject], dtype=object))
        .astype(int)
    )
    cov_group, cov_reference = None, 0
    if fit.covariance_group is not None:
        if fit.covariance_group != group:
            raise ValueError(
                f"the imputation model's covariance is separate by {fit.covariance_group!r}; "
                f"reference-based imputation needs it shared or separate by {group!r}"
            )
        cov_levels = [str(v) for v in fit.likelihood.data.group_levels]  # type: ignore[union-attr]
        lookup = {v: k for k, v in enumerate(cov_levels)}
        cov_group = np.array([lookup.get(str(v), -1) for v in values], dtype=int)
        if str(reference) not in lookup or np.any(cov_group < 0):
            raise ValueError(f"a level of {group!r} has no covariance of its own in the fit")
        cov_reference = lookup[str(reference)]
    if ice is None:
        observed = ~np.isnan(y)
        last = np.where(observed.any(axis=1), t - 1 - np.argmax(observed[:, ::-1], axis=1), -1)
        ice = np.where(last < t - 1, last + 1, t)
    return CmiData(
        y=np.asarray(y, dtype=float),
        x_own=x_own,
        x_ref=x_ref,
        z=zmat.to_numpy(dtype=float),
        effect_columns=effect,
        level=level,
        ice=np.asarray(ice, dtype=int),
        fit_subject=fit_subject,
        cov_group=cov_group,
        cov_reference=cov_reference,
    )


@dataclass(frozen=True, eq=False)
class MiResult:
    """Bootstrapped multiple imputation pooled by Rubin's rules (:func:`multiple_imputation`).

    Attributes
    ----------
    strategies : tuple of str
        Strategy vectors analysed.
    estimate, std_err, df : numpy.ndarray
        ``(S, L, T)``: Rubin's pooled estimate, ``sqrt(U + (1 + 1/M) B)`` and Barnard-Rubin's
        large-sample df ``(M - 1)(1 + U / ((1 + 1/M) B))^2``.
    draws : numpy.ndarray
        ``(M, S, L, T)`` estimate of each imputed data set.
    """

    strategies: tuple[str, ...]
    estimate: np.ndarray
    std_err: np.ndarray
    df: np.ndarray
    draws: np.ndarray


class _WeightedCrossproducts:
    """Each visit pattern's cross-products under per-patient weights (the bootstrap's).

    A pattern's stacked design ``X_p`` (one patient a row, ``k p`` columns) has low rank when
    the model holds only patient-level covariates and visit (``visit * (group + baseline +
    covariates)``: each patient's row is a fixed linear map of their ``c`` covariates), so
    ``X_p = X_p[:, J] B`` for ``r <= c`` columns ``J``, found once by a pivoted QR and checked
    on every row; then ``X_p' W X_p = B' (X_p[:, J]' W X_p[:, J]) B`` costs ``r^2`` per patient
    instead of ``(k p)^2``. A pattern whose design does not factor keeps the full product.
    A likelihood that already holds its patients' covariate sums (its design factors as visit
    maps of patient-level covariates, :mod:`pipeline.lmm.visit_factor`) reweights those
    itself (:meth:`pipeline.lmm.likelihood.Likelihood.reweighted`).
    """

    def __init__(self, lik: object):
        self.lik = lik
        data = lik.data  # type: ignore[attr-defined]
        self.p = data.x.shape[1]
        self.parts: list[list[tuple]] = []
        if lik.factor is not None:  # type: ignore[attr-defined]
            return  # the likelihood reweights its own covariate sums
        for batch in lik.batches:  # type: ignore[attr-defined]
            per = []
            for p_idx in batch.index:
                rows = data.patterns[p_idx].rows  # (n_p, k): one patient a row
                m, k = rows.shape
                xp = data.x[rows].reshape(m, k * self.p)
                yp = data.y[rows]
                subjects = data.subject_codes[rows[:, 0]]
                cols, basis = self._factor(xp)
                if cols is not None:  # keep only the basis columns (memory)
                    xp = np.ascontiguousarray(xp[:, cols])
                per.append((subjects, xp, yp, cols, basis))
            self.parts.append(per)

    @staticmethod
    def _factor(xp: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Columns ``J`` and ``B`` with ``xp = xp[:, J] @ B`` (None when it does not factor)."""
        m, width = xp.shape
        if m <= 2 * width:
            return None, None
        _, r_mat, piv = scipy.linalg.qr(xp[: 4 * width], mode="economic", pivoting=True)
        diag = np.abs(np.diag(r_mat))
        rank = int(np.sum(diag > diag[0] * 1e-10)) if diag.size and diag[0] > 0 else 0
        if rank == 0 or rank * 4 > width:
            return None, None
        cols = np.sort(piv[:rank])
        basis = np.linalg.lstsq(xp[: 4 * width, cols], xp[: 4 * width], rcond=None)[0]
        scale = max(float(np.max(np.abs(xp))), 1.0)
        for start in range(0, m, 20000):  # the factorisation must hold on every row
            chunk = slice(start, start + 20000)
            if np.max(np.abs(xp[chunk, cols] @ basis - xp[chunk])) > 1e-10 * scale:
                return None, None
        return cols, basis

    def weighted(self, weights: np.ndarray) -> object:
        """Return the likelihood with each patient's cross-products times ``weights[subject]``."""
        if self.lik.factor is not None:  # type: ignore[attr-defined]
            return self.lik.reweighted(weights)  # type: ignore[attr-defined]
        p = self.p
        out = copy.copy(self.lik)
        batches = []
        for batch, per in zip(self.lik.batches, self.parts, strict=True):  # type: ignore[attr-defined]
            xx, xy, yy, n = (
                np.zeros_like(batch.xx),
                np.zeros_like(batch.xy),
                np.zeros_like(batch.yy),
                np.zeros_like(batch.n),
            )
            for j, (subjects, xp, yp, cols, basis) in enumerate(per):
                w = weights[subjects]
                k = yp.shape[1]
                yw = yp * w[:, None]
                if cols is None:
                    xw = xp * w[:, None]
                    full_xx, full_xy = xw.T @ xp, xw.T @ yp
                else:  # xp holds the basis columns only
                    uw = xp * w[:, None]
                    full_xx = basis.T @ (uw.T @ xp) @ basis
                    full_xy = basis.T @ (uw.T @ yp)
                xx[j] = full_xx.reshape(k, p, k, p).transpose(0, 2, 1, 3)
                xy[j] = full_xy.reshape(k, p, k).transpose(0, 2, 1)
                yy[j] = yw.T @ yp
                n[j] = w.sum()
            batches.append(dataclasses.replace(batch, xx=xx, xy=xy, yy=yy, n=n))
        out.batches = tuple(batches)
        return out


def multiple_imputation(
    fit: MmrmFit,
    data: CmiData,
    strategies: Mapping[str, np.ndarray | tuple[np.ndarray, np.ndarray]],
    *,
    m: int = 100,
    seed: int = 0,
) -> MiResult:
    """Bootstrapped multiple imputation with Rubin's rules (rbmi's ``method_approxbayes``-like).

    Each of ``m`` imputations refits the imputation MMRM to a bootstrap sample of the patients
    (multinomial weights on the per-pattern cross-products, warm-started at the full fit),
    draws every missing value from its conditional normal distribution under the strategy
    (mean as :func:`conditional_mean_imputation`, covariance
    ``Sigma[M, M] - Sigma[M, O] Sigma[O, O]^{-1} Sigma[O, M]``), and analyses the completed data
    by the per-visit ANCOVA with its OLS variance. The pooled estimate, SE and df follow
    Rubin's rules.

    Parameters
    ----------
    fit, data, strategies
        As :func:`conditional_mean_imputation`.
    m : int, default 100
        Imputations.
    seed : int, default 0
        Seed of the bootstrap and the draws.

    Returns
    -------
    MiResult
    """
    rng = np.random.default_rng(seed)
    names = tuple(strategies)
    pairs = [
        strategies[k] if isinstance(strategies[k], tuple) else (strategies[k], data.ice)
        for k in names
    ]
    imputer = _Imputer(data, pairs)  # type: ignore[arg-type]
    loo = _LeaveOneOut(fit)
    n_fit = int(loo.lik.data.n_subjects)
    weights_all, a_inv = _ancova_pieces(data.z, data.effect_columns)
    n, q = data.z.shape
    keep = np.ones(n, dtype=bool)
    draws = np.zeros((m, len(names), len(data.effect_columns), data.n_visits))
    variances = np.zeros_like(draws)
    crossproducts = _WeightedCrossproducts(loo.lik)
    z_pinv = np.linalg.pinv(data.z)  # (q, n): the ANCOVA's least squares, the same every time
    for b in range(m):
        w = rng.multinomial(n_fit, np.full(n_fit, 1.0 / n_fit)).astype(float)
        lik_b = crossproducts.weighted(w)
        theta = loo._solve(lik_b)
        st = lik_b.state(theta)  # type: ignore[attr-defined]
        sigma = np.asarray(lik_b.sigmas(theta))  # type: ignore[attr-defined]
        completed = imputer.complete(st.beta, sigma, keep)
        imputer.add_noise(completed, sigma, rng)
        # (products as matmul: BLAS, many times faster here than einsum's loops)
        draws[b] = weights_all @ completed  # (S, L, T)
        coef = z_pinv @ completed  # (S, q, T)
        resid = completed - data.z @ coef
        s2 = np.sum(resid**2, axis=1) / (n - q)  # (S, T)
        diag = np.diag(a_inv)[data.effect_columns]  # (L,)
        variances[b] = s2[:, None, :] * diag[None, :, None]
    qbar = draws.mean(axis=0)
    u = variances.mean(axis=0)
    between = draws.var(axis=0, ddof=1) if m > 1 else np.zeros_like(qbar)
    total = u + (1.0 + 1.0 / m) * between
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (m - 1) * (1.0 + u / ((1.0 + 1.0 / m) * between)) ** 2
    return MiResult(names, qbar, np.sqrt(total), df, draws)
