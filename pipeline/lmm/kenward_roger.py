"""Degrees of freedom for MMRM contrasts: Kenward-Roger, Satterthwaite, residual, between-within.

Kenward-Roger (Kenward & Roger 1997, Biometrics 53:983-997), computed as R's ``pbkrtest``
(``vcovAdj`` and ``Lb_ddf`` / ``KRmodcomp``) and SAS ``DDFM=KR`` do, in the structure's natural
parameters ``phi`` (:mod:`pipeline.lmm.covariance`), with ``G_k = dV/dphi_k``:

* ``P_k = -X'V^{-1}G_kV^{-1}X``, ``Q_kl = X'V^{-1}G_kV^{-1}G_lV^{-1}X``,
  ``R_kl = X'V^{-1}(d2V/dphi_k dphi_l)V^{-1}X`` (zero for the linear structures ``us``,
  ``toep``, ``cs``, which then coincide with pbkrtest and SAS);
* ``W = 2 I_E^{-1}``, ``I_E[k, l] = tr(P G_k P G_l)`` with ``P = V^{-1} - V^{-1}X Phi X'V^{-1}``
  (twice the expected REML information, pbkrtest's ``IE2``);
* ``Phi_A = Phi + 2 Phi {sum_kl W_kl (Q_kl - P_k Phi P_l - R_kl / 4)} Phi``;
* for a hypothesis ``L beta = 0`` of rank ``q``: ``Theta = L'(L Phi L')^{-1}L``,
  ``A1 = sum W_kl tr(Theta Phi P_k Phi) tr(Theta Phi P_l Phi)``,
  ``A2 = sum W_kl tr(Theta Phi P_k Phi Theta Phi P_l Phi)``, and the denominator df and the
  F scaling follow Kenward & Roger's equations as ``pbkrtest:::.KR_adjust`` writes them.
  For ``q = 1`` this is ``df = 2 / A2`` with scaling 1.

:func:`lmm_kenward_roger` computes the same for the random-effects models of
:func:`pipeline.lmm.fit.fit_lmm` (random intercept, or correlated intercept and slope), patient
by patient, in pbkrtest's linear parametrisation ``(G_11, G_12, G_22, sigma^2)``; with patients
nested in sites, site by site with the site variance as one more parameter.

All of ``P``, ``Q``, ``R`` and ``I_E`` are sums over patterns of the pattern's inverse block
applied to its cross-products, so they cost ``O(patterns)``, not ``O(patients)``.

Satterthwaite (as R's ``mmrm`` and lmerTest compute it): ``df = 2 (L Phi L')^2 / (g' A g)``,
``g_k = L dPhi/dtheta_k L'`` exact and ``A = 2 H^{-1}``, ``H`` the Hessian of the (RE)ML
criterion (``-2 l``).

Residual: ``N - p``. Between-within (SAS ``DDFM=BW`` with the patient as subject): a column
constant within every patient gets ``n_patients - p_between``, any other column
``N - n_patients - (p - p_between)``; a contrast gets the smallest df of the columns it uses.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.lmm.data import prepare_data
from pipeline.lmm.deviance import lambda_from_theta
from pipeline.lmm.fit import LmmFit
from pipeline.lmm.likelihood import Likelihood, PatternState

__all__ = [
    "KrPieces",
    "between_within_df",
    "inference_table",
    "kr_fixed_effects",
    "kr_ftest",
    "kr_pieces",
    "lmm_kenward_roger",
    "satterthwaite_df",
]


def inference_table(
    labels: Sequence[str], estimate: np.ndarray, variance: np.ndarray, df: np.ndarray
) -> pd.DataFrame:
    """Tabulate estimates with t (normal when df is infinite) tests and 95 % intervals."""
    estimate = np.asarray(estimate, dtype=float)
    se = np.sqrt(np.maximum(np.asarray(variance, dtype=float), 0.0))
    df = np.asarray(df, dtype=float)
    finite = np.isfinite(df)
    safe_df = np.where(finite, df, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = estimate / se
    p_value = np.where(
        finite, 2.0 * stats.t.sf(np.abs(stat), safe_df), 2.0 * stats.norm.sf(np.abs(stat))
    )
    crit = np.where(finite, stats.t.ppf(0.975, safe_df), stats.norm.ppf(0.975))
    return pd.DataFrame(
        {
            "term": list(labels),
            "estimate": estimate,
            "std_err": se,
            "df": df,
            "statistic": stat,
            "p_value": p_value,
            "ci_low": estimate - crit * se,
            "ci_high": estimate + crit * se,
        }
    )


def satterthwaite_df(
    lmat: np.ndarray, vcov: np.ndarray, jac: np.ndarray, varpar_vcov: np.ndarray
) -> np.ndarray:
    """Satterthwaite df ``2 (L C L')^2 / (g' A g)`` of each row ``L`` of ``lmat``.

    Parameters
    ----------
    lmat : numpy.ndarray
        ``(m, p)`` contrasts.
    vcov : numpy.ndarray
        ``(p, p)`` covariance of the fixed effects.
    jac : numpy.ndarray
        ``(k, p, p)`` derivative of ``vcov`` with respect to the variance parameters.
    varpar_vcov : numpy.ndarray
        ``(k, k)`` asymptotic covariance of the variance parameters (``2 H^{-1}``).

    Returns
    -------
    numpy.ndarray
        ``m`` degrees of freedom (``inf`` when the variance does not depend on them).
    """
    var = np.einsum("ri,ij,rj->r", lmat, vcov, lmat)
    grad = np.einsum("kij,ri,rj->rk", jac, lmat, lmat)
    denom = np.einsum("rk,kl,rl->r", grad, varpar_vcov, grad)
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, 2.0 * var**2 / safe, np.inf)


@dataclass(frozen=True)
class KrPieces:
    """Kenward-Roger's adjusted covariance and the pieces its df need.

    Attributes
    ----------
    vcov : numpy.ndarray
        Unadjusted ``Phi = (X'V^{-1}X)^{-1}``.
    vcov_adjusted : numpy.ndarray
        ``Phi_A``.
    p_mats : numpy.ndarray
        ``(k, p, p)`` matrices ``P_k``.
    w : numpy.ndarray
        ``(k, k)`` ``W = 2 I_E^{-1}``.
    linear : bool
        Whether the second-derivative term was zero (linear structure or ``linear=True``).
    """

    vcov: np.ndarray
    vcov_adjusted: np.ndarray
    p_mats: np.ndarray
    w: np.ndarray
    linear: bool


def kr_pieces(lik: Likelihood, theta: np.ndarray, linear: bool = False) -> KrPieces:
    """Kenward-Roger's ``Phi_A``, ``P_k`` and ``W`` at the estimate ``theta``.

    Parameters
    ----------
    lik : Likelihood
        The model's criterion (REML: Kenward-Roger is defined for REML fits).
    theta : numpy.ndarray
        Estimated covariance parameters (optimiser scale).
    linear : bool, default False
        Drop the second-derivative term ``R_kl`` (SAS ``DDFM=KR(LINEAR)``, ``mmrm``'s
        "Kenward-Roger-Linear"); it is zero anyway for the linear structures.

    Returns
    -------
    KrPieces
    """
    theta = np.asarray(theta, dtype=float)
    st: PatternState = lik.state(theta)
    phi_vcov = st.xtwx_inv
    p = phi_vcov.shape[0]
    dsig, d2sig, groups = [], [], []
    all_linear = linear
    for g, (s, t) in enumerate(zip(lik.structures, lik.split(theta), strict=True)):
        nat = s.natural(t)
        dsig.append(s.dsigma_natural(nat))
        d2sig.append(None if (linear or s.linear) else s.d2sigma_natural(nat))
        groups += [g] * nat.size
        all_linear = all_linear or s.linear
    offs = np.concatenate([[0], np.cumsum([d.shape[0] for d in dsig])]).astype(int)
    k = int(offs[-1])
    p_mats = np.zeros((k, p, p))
    q_mats = np.zeros((k, k, p, p))
    r_mats = np.zeros((k, k, p, p))
    trace = np.zeros((k, k))
    for pat, inv in zip(lik.data.patterns, st.inverses, strict=True):
        a, b = offs[pat.group], offs[pat.group + 1]
        sub = dsig[pat.group][:, pat.visits][:, :, pat.visits]
        wd = inv @ sub  # W G_k
        wdw = wd @ inv  # W G_k W
        p_mats[a:b] -= np.tensordot(wdw, pat.xx, axes=([1, 2], [0, 2]))
        # tr(W G_k W G_l) and W G_k W G_l W (as [k, a, l, d]), each one matrix product
        n_k, v = wd.shape[0], wd.shape[1]
        flat = wd.reshape(n_k, v * v)
        trace[a:b, a:b] += pat.n * (flat @ wd.transpose(0, 2, 1).reshape(n_k, v * v).T)
        qq = (wd.reshape(n_k * v, v) @ wdw.transpose(1, 0, 2).reshape(v, n_k * v)).reshape(
            n_k, v, n_k, v
        )
        q_mats[a:b, a:b] += np.tensordot(qq, pat.xx, axes=([1, 3], [0, 2]))
        second = d2sig[pat.group]
        if second is not None:
            sub2 = second[:, :, pat.visits][:, :, :, pat.visits]
            rr = inv @ sub2 @ inv
            r_mats[a:b, a:b] += np.tensordot(rr, pat.xx, axes=([2, 3], [0, 2]))
    return _assemble(phi_vcov, p_mats, q_mats, r_mats, trace, all_linear)


def _assemble(
    phi_vcov: np.ndarray,
    p_mats: np.ndarray,
    q_mats: np.ndarray,
    r_mats: np.ndarray,
    trace: np.ndarray,
    linear: bool,
) -> KrPieces:
    """``W`` and ``Phi_A`` from the summed ``P_k``, ``Q_kl``, ``R_kl`` and traces."""
    phi_p = np.einsum("ij,kjl->kil", phi_vcov, p_mats)  # Phi P_k
    info = (
        trace
        - 2.0 * np.einsum("ij,klji->kl", phi_vcov, q_mats)
        + np.einsum("kij,lji->kl", phi_p, phi_p)
    )
    info = 0.5 * (info + info.T)
    evals, evecs = np.linalg.eigh(info)
    keep = np.abs(evals) > 1e-10 * max(1.0, float(np.max(np.abs(evals))))
    w = 2.0 * (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
    u = np.einsum("kl,klij->ij", w, q_mats - 0.25 * r_mats)
    # sum_kl w_kl P_k Phi P_l as matrix products (a one-call einsum is O(k^2 p^4))
    w_p = np.tensordot(w, p_mats, axes=([1], [0]))  # sum_l w_kl P_l
    u -= np.tensordot(p_mats @ phi_vcov, w_p, axes=([0, 2], [0, 1]))
    u = 0.5 * (u + u.T)
    adjusted = phi_vcov + 2.0 * phi_vcov @ u @ phi_vcov
    return KrPieces(phi_vcov, 0.5 * (adjusted + adjusted.T), p_mats, w, linear)


def lmm_kenward_roger(fit: LmmFit, data: pd.DataFrame) -> KrPieces:
    """Kenward-Roger for a random-effects fit of :func:`pipeline.lmm.fit.fit_lmm`.

    The marginal covariance of patient ``i`` is ``V_i = Z_i G Z_i' + sigma^2 I``, linear in
    the parameters ``(G_11, G_12, G_22, sigma^2)`` (random intercept: ``(G_11, sigma^2)``),
    which is pbkrtest's parametrisation (``vcovAdj``), so the second-derivative term is zero.
    With patients nested in sites (``fit.site``: ``(1 | site) + (1 + T | patient)``) the
    independent blocks are the sites, ``V_s = tau^2 J + blockdiag_i(Z_i G Z_i') + sigma^2 I``,
    and ``tau^2`` is one more linear parameter (``G_k = J`` for it, ``Z_i E_k Z_i'`` within a
    patient and zero across patients for the entries of ``G``).

    Parameters
    ----------
    fit : LmmFit
        A REML fit (with or without a site random intercept).
    data : pandas.DataFrame
        The data it was fitted on (its rows are rebuilt as the fit built them).

    Returns
    -------
    KrPieces
        Use :func:`kr_ftest` for the df of a contrast and ``vcov_adjusted`` for its variance.

    Raises
    ------
    ValueError
        For an ML fit.
    """
    if not fit.reml:
        raise ValueError("Kenward-Roger needs a REML fit")
    fixed = fit.formula.split("~", 1)[1].strip()
    response = fit.formula.split("~", 1)[0].strip()
    if response.startswith("Q("):
        response = ast.literal_eval(response[2:-1])
    prep = prepare_data(data, response, fixed, fit.group, fit.random_slope, fit.site)
    x = prep.x.to_numpy()
    q = 2 if fit.random_slope else 1
    n_patient_theta = q * (q + 1) // 2
    lam = lambda_from_theta(np.asarray(fit.theta)[:n_patient_theta], q)
    g_mat = fit.sigma**2 * (lam @ lam.T)
    rows, cols = np.tril_indices(q)
    units = []
    for r, c in zip(rows, cols, strict=True):
        e = np.zeros((q, q))
        e[r, c] = e[c, r] = 1.0
        units.append(e)
    site_var = (fit.sigma * float(np.asarray(fit.theta)[-1])) ** 2 if fit.site else 0.0
    p = x.shape[1]
    k = len(units) + 1 + (1 if fit.site else 0)
    xtwx = np.zeros((p, p))
    p_mats = np.zeros((k, p, p))
    q_mats = np.zeros((k, k, p, p))
    trace = np.zeros((k, k))
    slope = prep.frame[fit.random_slope].to_numpy(dtype=float) if fit.random_slope else None
    # independent blocks: the sites when patients are nested in them, else the patients
    blocks = prep.site_codes if fit.site else prep.codes
    order = np.argsort(blocks, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(blocks[order]) != 0])
    for a, b in zip(starts, [*starts[1:], order.size], strict=True):
        idx = order[a:b]
        xi = x[idx]
        zi = np.ones((idx.size, q))
        if slope is not None:
            zi[:, 1] = slope[idx]
        same = prep.codes[idx][:, None] == prep.codes[idx][None, :]  # same patient
        gs = [(zi @ e @ zi.T) * same for e in units] + [np.eye(idx.size)]
        if fit.site:
            gs.append(np.ones((idx.size, idx.size)))
        gs = np.array(gs)
        vi = (zi @ g_mat @ zi.T) * same + fit.sigma**2 * np.eye(idx.size) + site_var
        wi = np.linalg.inv(vi)
        wx = wi @ xi
        xtwx += xi.T @ wx
        wg = wi @ gs  # W G_k
        p_mats -= np.einsum("ia,kij,jb->kab", wx, gs, wx)
        trace += np.einsum("kab,lba->kl", wg, wg)
        q_mats += np.einsum("ia,kij,ljm,mb->klab", wx, gs, wg, wx, optimize=True)
    phi_vcov = np.linalg.inv(xtwx)
    phi_vcov = 0.5 * (phi_vcov + phi_vcov.T)
    return _assemble(phi_vcov, p_mats, q_mats, np.zeros_like(q_mats), trace, True)


def kr_ftest(lmat: np.ndarray, pieces: KrPieces) -> tuple[float, float, int]:
    """Kenward-Roger denominator df and F scaling of the hypothesis ``L beta = 0``.

    Parameters
    ----------
    lmat : numpy.ndarray
        ``(q, p)`` hypothesis matrix of full row rank.
    pieces : KrPieces
        From :func:`kr_pieces`.

    Returns
    -------
    ddf : float
        Denominator degrees of freedom.
    scale : float
        F scaling ``lambda`` (the test statistic is ``lambda * F``, F from ``Phi_A``).
    q : int
        Numerator degrees of freedom (rank of ``L``).
    """
    lmat = np.atleast_2d(np.asarray(lmat, dtype=float))
    phi = pieces.vcov
    q = int(np.linalg.matrix_rank(lmat))
    theta_m = lmat.T @ np.linalg.solve(lmat @ phi @ lmat.T, lmat)
    u = (theta_m @ phi) @ pieces.p_mats @ phi  # Theta Phi P_k Phi, (k, p, p)
    tr = np.einsum("kii->k", u)
    a1 = float(tr @ pieces.w @ tr)
    a2 = float(np.einsum("kl,kij,lji->", pieces.w, u, u))
    if a2 <= 0:
        return float("inf"), 1.0, q
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    v0 = 1.0 + c1 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1.0 - c2 * b, 1.0 - c3 * b
    ratio = (1.0 - a2 / q) / v1 if v1 != 0 else 0.0
    rho = ratio**2 * v0 / v2 / q
    ddf = 4.0 + (q + 2.0) / (q * rho - 1.0)
    scale = float("nan") if abs(ddf - 2.0) < 1e-2 else ddf * (1.0 - a2 / q) / (ddf - 2.0)
    return float(ddf), float(scale), q


def between_within_df(
    lmat: np.ndarray, between: np.ndarray, n_obs: int, n_subjects: int
) -> np.ndarray:
    """Between-within df of each contrast row (module docstring).

    Parameters
    ----------
    lmat : numpy.ndarray
        ``(m, p)`` contrasts.
    between : numpy.ndarray
        Boolean per design column: constant within every patient.
    n_obs, n_subjects : int
        Numbers of observations and patients.

    Returns
    -------
    numpy.ndarray
        ``m`` degrees of freedom.
    """
    p = between.size
    p_between = int(between.sum())
    col_df = np.where(between, n_subjects - p_between, n_obs - n_subjects - (p - p_between))
    used = np.abs(np.atleast_2d(lmat)) > 0
    return np.array([float(col_df[row].min()) if row.any() else np.inf for row in used])


def kr_fixed_effects(fit: LmmFit, data: pd.DataFrame) -> pd.DataFrame:
    """Return the fixed effects of a random-effects fit with Kenward-Roger SEs and df.

    Parameters
    ----------
    fit : LmmFit
        REML fit of :func:`pipeline.lmm.fit.fit_lmm` (with or without a site random intercept).
    data : pandas.DataFrame
        The data it was fitted on.

    Returns
    -------
    pandas.DataFrame
        ``term, estimate, std_err, df, statistic, p_value, ci_low, ci_high`` with the SE from
        ``Phi_A`` and the df of :func:`kr_ftest` (as ``pbkrtest`` / ``emmeans``'
        ``lmer.df = "kenward-roger"``).
    """
    pieces = lmm_kenward_roger(fit, data)
    eye = np.eye(len(fit.design_columns))
    df = np.array([kr_ftest(row, pieces)[0] for row in eye])
    return inference_table(fit.design_columns, fit.params, np.diag(pieces.vcov_adjusted), df)
