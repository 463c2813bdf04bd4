"""The MMRM (RE)ML criterion over per-pattern blocks, with its exact gradient.

For covariance parameters ``theta`` (one :class:`~pipeline.lmm.covariance.Structure` per
covariance group) the criterion is minus twice the log-likelihood at the generalised least
squares ``beta``:

    ML:   -2 l   = N log(2 pi) + sum_p n_p log|Sigma_p| + r'V^{-1}r
    REML: -2 l_R = (N - p) log(2 pi) + sum_p n_p log|Sigma_p| + log|X'V^{-1}X| + r'V^{-1}r

(``r = y - X beta``; the REML form is SAS PROC MIXED's, lme4's and glmmTMB's; nlme adds
``-log|X'X|``). Each pattern's block ``Sigma_p = Sigma[O, O]`` is factorised once per
evaluation and enters through the cross-products of :mod:`pipeline.lmm.patterns`.

Gradient: with ``W_p = Sigma_p^{-1}`` and ``G_p[a, b] = YY_ab - 2 beta'XY_ab + beta'XX_ab beta
(+ tr((X'V^{-1}X)^{-1} XX_ab) for REML)``, the derivative of the criterion with respect to the
entries of ``Sigma`` is ``D = sum_p scatter(n_p W_p - W_p G_p W_p)`` (``beta`` is at its
optimum, so its own derivative drops out), and ``d/d theta_k = sum_ab D_ab dSigma_ab/dtheta_k``
with the structure's complex-step ``dSigma/dtheta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from pipeline.lmm.covariance import Structure
from pipeline.lmm.patterns import MmrmData

__all__ = ["Likelihood", "PatternState"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class PatternState:
    """Per-evaluation pieces: each pattern's inverse block and the GLS solution."""

    inverses: tuple[np.ndarray, ...]
    batch_inverses: tuple[np.ndarray, ...]
    xtwx: np.ndarray
    xtwy: np.ndarray
    ytwy: float
    logdet_sigma: float
    beta: np.ndarray
    xtwx_inv: np.ndarray
    logdet_xtwx: float


@dataclass(frozen=True)
class _Batch:
    """Patterns with the same number of visits, stacked so one numpy call serves them all."""

    index: np.ndarray  # positions in data.patterns
    group: np.ndarray  # (m,)
    visits: np.ndarray  # (m, k)
    n: np.ndarray  # (m,)
    xx: np.ndarray  # (m, k, k, p, p): XX[a, :, b, :] at [:, a, b]
    xy: np.ndarray  # (m, k, k, p): XY[a, :, b] at [:, a, b]
    yy: np.ndarray  # (m, k, k)

    def blocks(self, sigmas: np.ndarray) -> np.ndarray:
        """Each pattern's ``Sigma[O, O]`` from the stacked group covariances ``(G, T, T)``."""
        v = self.visits
        return sigmas[self.group[:, None, None], v[:, :, None], v[:, None, :]]


class Likelihood:
    """The (RE)ML criterion of an MMRM.

    Parameters
    ----------
    data : MmrmData
        Prepared data with the per-pattern cross-products.
    structures : sequence of Structure
        One structure per covariance group (the same kind for every group).
    reml : bool
        REML (default) or ML.
    """

    def __init__(self, data: MmrmData, structures: Sequence[Structure], reml: bool = True):
        self.data = data
        self.structures = tuple(structures)
        self.reml = reml
        sizes = [s.n_theta for s in self.structures]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_theta = int(self.offsets[-1])
        batches = []
        ks = np.array([pat.visits.size for pat in data.patterns])
        for k in np.unique(ks):
            idx = np.flatnonzero(ks == k)
            pats = [data.patterns[i] for i in idx]
            batches.append(
                _Batch(
                    idx,
                    np.array([pat.group for pat in pats]),
                    np.array([pat.visits for pat in pats]),
                    np.array([pat.n for pat in pats], dtype=float),
                    np.ascontiguousarray(
                        np.array([pat.xx for pat in pats]).transpose(0, 1, 3, 2, 4)
                    ),
                    np.ascontiguousarray(np.array([pat.xy for pat in pats]).transpose(0, 1, 3, 2)),
                    np.array([pat.yy for pat in pats]),
                )
            )
        self.batches = tuple(batches)

    def split(self, theta: np.ndarray) -> list[np.ndarray]:
        """Split the full parameter vector into one slice per covariance group."""
        return [theta[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    def sigmas(self, theta: np.ndarray) -> list[np.ndarray]:
        """Sigma of every covariance group."""
        return [s.sigma(t) for s, t in zip(self.structures, self.split(theta), strict=True)]

    def state(self, theta: np.ndarray) -> PatternState:
        """Factorise every pattern's block and solve the GLS equations.

        Raises
        ------
        numpy.linalg.LinAlgError
            When a block or ``X'V^{-1}X`` is not positive definite.
        """
        return self.state_from_sigmas(self.sigmas(np.asarray(theta, dtype=float)))

    def state_from_sigmas(self, sigmas: Sequence[np.ndarray]) -> PatternState:
        """As :meth:`state`, from the groups' Sigma directly."""
        p = self.data.p
        stacked = np.asarray(sigmas, dtype=float)
        xtwx = np.zeros((p, p))
        xtwy = np.zeros(p)
        ytwy = 0.0
        logdet = 0.0
        inverses: list[np.ndarray] = [np.empty(0)] * len(self.data.patterns)
        batch_inverses = []
        for b in self.batches:
            blocks = b.blocks(stacked)
            chol = np.linalg.cholesky(blocks)
            inv = np.linalg.inv(blocks)
            inv = 0.5 * (inv + inv.transpose(0, 2, 1))
            batch_inverses.append(inv)
            for j, i in enumerate(b.index):
                inverses[i] = inv[j]
            logdet += 2.0 * float(b.n @ np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1))
            flat = inv.reshape(-1)
            xtwx += (flat @ b.xx.reshape(flat.size, p * p)).reshape(p, p)
            xtwy += flat @ b.xy.reshape(flat.size, p)
            ytwy += float(np.sum(inv * b.yy))
        xtwx = 0.5 * (xtwx + xtwx.T)
        chol_x = np.linalg.cholesky(xtwx)
        beta = scipy.linalg.cho_solve((chol_x, True), xtwy)
        xtwx_inv = scipy.linalg.cho_solve((chol_x, True), np.eye(p))
        return PatternState(
            tuple(inverses),
            tuple(batch_inverses),
            xtwx,
            xtwy,
            ytwy,
            logdet,
            beta,
            0.5 * (xtwx_inv + xtwx_inv.T),
            2.0 * float(np.sum(np.log(np.diag(chol_x)))),
        )

    def criterion_from_state(self, st: PatternState) -> float:
        """Minus twice the (RE)ML log-likelihood."""
        n, p = self.data.n_obs, self.data.p
        quad = st.ytwy - float(st.xtwy @ st.beta)
        if self.reml:
            return (n - p) * _LOG_2PI + st.logdet_sigma + st.logdet_xtwx + quad
        return n * _LOG_2PI + st.logdet_sigma + quad

    def criterion(self, theta: np.ndarray) -> float:
        """Minus twice the (RE)ML log-likelihood (``inf`` where Sigma is not positive definite)."""
        try:
            return self.criterion_from_state(self.state(theta))
        except np.linalg.LinAlgError:
            return float("inf")

    def sigma_gradient(self, st: PatternState) -> list[np.ndarray]:
        """Return the criterion's derivative in each group's Sigma entries (module doc)."""
        t = self.data.n_visits
        out = np.zeros((len(self.structures), t, t))
        beta = st.beta
        p = beta.size
        # beta'XX_ab beta (+ tr((X'V^-1 X)^-1 XX_ab) for REML) in one pass over XX
        weight = np.outer(beta, beta)
        if self.reml:
            weight = weight + st.xtwx_inv.T
        weight = weight.reshape(-1)
        for b, inv in zip(self.batches, st.batch_inverses, strict=True):
            g = b.yy - 2.0 * (b.xy @ beta) + (b.xx.reshape(-1, p * p) @ weight).reshape(b.yy.shape)
            g = 0.5 * (g + g.transpose(0, 2, 1))
            h = b.n[:, None, None] * inv - inv @ g @ inv
            v = b.visits
            np.add.at(out, (b.group[:, None, None], v[:, :, None], v[:, None, :]), h)
        return list(out)

    def criterion_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Criterion and its exact gradient in ``theta`` (``inf`` and zeros when not PD)."""
        theta = np.asarray(theta, dtype=float)
        try:
            st = self.state(theta)
        except np.linalg.LinAlgError:
            return float("inf"), np.zeros(self.n_theta)
        grads = self.sigma_gradient(st)
        parts = [
            s.chain(t, d) for d, s, t in zip(grads, self.structures, self.split(theta), strict=True)
        ]
        return self.criterion_from_state(st), np.concatenate(parts)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """Exact gradient of the criterion."""
        return self.criterion_and_gradient(theta)[1]

    def hessian(self, theta: np.ndarray, step: float = 1e-4) -> np.ndarray:
        """Hessian of the criterion: central differences of the exact gradient (error ~h^2)."""
        theta = np.asarray(theta, dtype=float)
        k = theta.size
        out = np.zeros((k, k))
        for j in range(k):
            h = step * max(1.0, abs(theta[j]))
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            out[:, j] = (self.gradient(up) - self.gradient(down)) / (2 * h)
        return 0.5 * (out + out.T)

    def weighted_design(
        self, st: PatternState, dsigmas: Sequence[np.ndarray], groups: Sequence[int]
    ) -> np.ndarray:
        """``X'V^{-1} G_k V^{-1} X`` for derivative matrices ``G_k`` of group ``groups[k]``.

        Parameters
        ----------
        st : PatternState
            Evaluation at the estimate.
        dsigmas : sequence of numpy.ndarray
            ``T x T`` derivative matrices, one per parameter.
        groups : sequence of int
            Covariance group of each parameter.

        Returns
        -------
        numpy.ndarray
            Shape ``(k, p, p)``.
        """
        p = self.data.p
        out = np.zeros((len(dsigmas), p, p))
        dsig = np.asarray(dsigmas)
        groups = np.asarray(groups)
        for pat, inv in zip(self.data.patterns, st.inverses, strict=True):
            ks = np.flatnonzero(groups == pat.group)
            if ks.size == 0:
                continue
            sub = dsig[ks][:, pat.visits][:, :, pat.visits]
            mats = inv @ sub @ inv
            out[ks] += np.tensordot(mats, pat.xx, axes=([1, 2], [0, 2]))
        return out

    def vcov_jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d (X'V^{-1}X)^{-1} / d theta_k``, shape ``(n_theta, p, p)``."""
        theta = np.asarray(theta, dtype=float)
        st = self.state(theta)
        dsig, groups = [], []
        for g, (s, t) in enumerate(zip(self.structures, self.split(theta), strict=True)):
            d = s.dsigma(t)
            dsig += list(d)
            groups += [g] * len(d)
        pmat = self.weighted_design(st, dsig, groups)  # d(X'V^-1X) = -pmat
        return np.einsum("ij,kjl,lm->kim", st.xtwx_inv, pmat, st.xtwx_inv)
