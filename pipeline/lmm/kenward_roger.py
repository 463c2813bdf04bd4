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

from dataclasses import dataclass

import numpy as np

from pipeline.lmm.likelihood import Likelihood, PatternState

__all__ = [
    "KrPieces",
    "between_within_df",
    "kr_ftest",
    "kr_pieces",
    "satterthwaite_df",
]


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
        p_mats[a:b] -= np.tensordot(wd @ inv, pat.xx, axes=([1, 2], [0, 2]))
        trace[a:b, a:b] += pat.n * np.einsum("kab,lba->kl", wd, wd)
        qq = np.einsum("kab,lbc,cd->klad", wd, wd, inv)
        q_mats[a:b, a:b] += np.tensordot(qq, pat.xx, axes=([2, 3], [0, 2]))
        second = d2sig[pat.group]
        if second is not None:
            sub2 = second[:, :, pat.visits][:, :, :, pat.visits]
            rr = inv @ sub2 @ inv
            r_mats[a:b, a:b] += np.tensordot(rr, pat.xx, axes=([2, 3], [0, 2]))
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
    u -= np.einsum("kl,kij,jm,lmn->in", w, p_mats, phi_vcov, p_mats)
    u = 0.5 * (u + u.T)
    adjusted = phi_vcov + 2.0 * phi_vcov @ u @ phi_vcov
    return KrPieces(phi_vcov, 0.5 * (adjusted + adjusted.T), p_mats, w, all_linear)


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
    u = np.einsum("ij,jl,klm,mn->kin", theta_m, phi, pieces.p_mats, phi)  # Theta Phi P_k Phi
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
