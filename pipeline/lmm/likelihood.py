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

When the design is visit maps of patient-level covariates (``x_ia = M_a z_i``,
:mod:`pipeline.lmm.visit_factor`), each pattern keeps only ``S_p = sum_i z_i z_i'`` and
``ZY_p = sum_i z_i y_i'``: ``X'V^{-1}X = M (sum_p scatter(W_p) (x) S_p) M'`` with
``M = [M_0 | M_1 | ...]``, and ``beta'XX_ab beta + tr(A XX_ab) = sum_ij S_p[i, j] (M_a' (beta
beta' + A) M_b)[i, j]``, so an evaluation costs ``O(patterns T^2 q^2)`` instead of
``O(patterns k^2 p^2)``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg

from pipeline.lmm.covariance import Structure
from pipeline.lmm.patterns import MmrmData
from pipeline.lmm.reuse import built, shared
from pipeline.lmm.visit_factor import VisitFactor, visit_factor

__all__ = ["Likelihood", "PatternState"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class PatternState:
    """Per-evaluation pieces: each pattern's inverse block and the GLS solution."""

    unpack: Callable[[], tuple[np.ndarray, ...]]  # each pattern's inverse block, on demand
    batch_inverses: tuple[np.ndarray, ...]
    xtwx: np.ndarray
    xtwy: np.ndarray
    ytwy: float
    logdet_sigma: float
    beta: np.ndarray
    xtwx_inv: np.ndarray
    logdet_xtwx: float

    @cached_property
    def inverses(self) -> tuple[np.ndarray, ...]:
        """``Sigma[O, O]^{-1}`` of every pattern, in ``data.patterns`` order."""
        return self.unpack()


@dataclass(frozen=True)
class _Batch:
    """Visit patterns stacked so one numpy call serves them all.

    With full cross-products, a batch holds the patterns with the same number of visits ``k``.
    The cross-products are held in full (``xx``, ``xy``) or, when the design factors as visit
    maps of patient-level covariates (:mod:`pipeline.lmm.visit_factor`), as the patients'
    covariate sums (``zz``, ``zy``); the other pair is None. The covariate sums of every
    pattern go in one batch padded to all ``T`` visits (``observed`` marks the attended ones;
    ``yy`` and ``zy`` hold zeros elsewhere), so an evaluation is a few numpy calls in all.
    """

    index: np.ndarray  # positions in data.patterns
    group: np.ndarray  # (m,)
    visits: np.ndarray  # (m, k)
    n: np.ndarray  # (m,)
    yy: np.ndarray  # (m, k, k)
    xx: np.ndarray | None = None  # (m, k, k, p, p): XX[a, :, b, :] at [:, a, b]
    xy: np.ndarray | None = None  # (m, k, k, p): XY[a, :, b] at [:, a, b]
    zz: np.ndarray | None = None  # (m, q, q): sum_i z_i z_i'
    zy: np.ndarray | None = None  # (m, q, T): sum_i z_i y_i', zero at unattended visits
    observed: np.ndarray | None = None  # (m, T): the padded batch's attended visits

    def blocks(self, sigmas: np.ndarray) -> np.ndarray:
        """Each pattern's ``Sigma[O, O]`` from the stacked group covariances ``(G, T, T)``."""
        v = self.visits
        return sigmas[self.group[:, None, None], v[:, :, None], v[:, None, :]]


def _group_slots(group: np.ndarray, visits: np.ndarray, t: int) -> np.ndarray:
    """``(m k k,)``: where a batch's ``k x k`` block entries go in a flat ``G x T x T`` array."""
    slots = visits[:, :, None] * t + visits[:, None, :]
    return (group[:, None, None] * t * t + slots).ravel()


def _visit_factor(data: MmrmData) -> VisitFactor | None:
    """Return the design's visit factorisation (a reduced model's: a slice of the full one's)."""
    if data.within is not None:
        full, columns = data.within
        for key, value in built(full):
            if key == "visit_factor" and value is not None:
                return value.of_columns(columns)
    return visit_factor(data)


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
    factor : bool, default True
        Evaluate from the patients' covariate sums when the design factors as visit maps of
        patient-level covariates (:mod:`pipeline.lmm.visit_factor`); False keeps the full
        cross-products (the same numbers, to rounding).
    """

    def __init__(
        self,
        data: MmrmData,
        structures: Sequence[Structure],
        reml: bool = True,
        factor: bool = True,
    ):
        self.data = data
        self.structures = tuple(structures)
        self.reml = reml
        sizes = [s.n_theta for s in self.structures]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_theta = int(self.offsets[-1])
        self.factor: VisitFactor | None = (
            shared(data, "visit_factor", lambda: _visit_factor(data)) if factor else None
        )
        self._stacked = None if self.factor is None else self.factor.stacked
        if self.factor is not None:
            # the patients' covariate sums depend on the rows and the covariates only, so a
            # reduced model whose factorisation is a slice of the full one's shares them
            rows_of = data.within[0] if data.within is not None else data
            self.batches = (
                shared(rows_of, ("padded batch", id(self.factor.z)), self._padded_batch),
            )
            mask = self.batches[0].observed
            self._pair_mask = mask[:, :, None] & mask[:, None, :]
            self._eye = np.eye(data.n_visits)
            self._group_onehot = np.equal.outer(
                np.arange(len(self.structures)), self.batches[0].group
            ).astype(float)
            self._slots: tuple[np.ndarray, ...] = ()
            return
        batches = []
        ks = np.array([pat.visits.size for pat in data.patterns])
        for k in np.unique(ks):
            idx = np.flatnonzero(ks == k)
            pats = [data.patterns[i] for i in idx]
            batches.append(
                _Batch(
                    index=idx,
                    group=np.array([pat.group for pat in pats]),
                    visits=np.array([pat.visits for pat in pats]),
                    n=np.array([pat.n for pat in pats], dtype=float),
                    yy=np.array([pat.yy for pat in pats]),
                    xx=np.ascontiguousarray(
                        np.array([pat.xx for pat in pats]).transpose(0, 1, 3, 2, 4)
                    ),
                    xy=np.ascontiguousarray(
                        np.array([pat.xy for pat in pats]).transpose(0, 1, 3, 2)
                    ),
                )
            )
        self.batches = tuple(batches)
        self._slots = tuple(_group_slots(b.group, b.visits, data.n_visits) for b in self.batches)

    def _padded_batch(self) -> _Batch:
        """Every pattern's covariate sums in one batch padded to all visits."""
        data = self.data
        n_pat, t, q = len(data.patterns), data.n_visits, self.factor.q  # type: ignore[union-attr]
        sums = {
            "zz": np.zeros((n_pat, q, q)),
            "zy": np.zeros((n_pat, q, t)),
            "yy": np.zeros((n_pat, t, t)),
            "n": np.zeros(n_pat),
        }
        observed = np.zeros((n_pat, t), dtype=bool)
        for i, pat in enumerate(data.patterns):
            observed[i, pat.visits] = True
            self._add_sums(sums, i, pat.visits, pat.rows)
        return _Batch(
            index=np.arange(n_pat),
            group=np.array([pat.group for pat in data.patterns]),
            visits=np.broadcast_to(np.arange(t), (n_pat, t)),
            observed=observed,
            **sums,
        )

    def _add_sums(
        self,
        sums: Mapping[str, np.ndarray],
        j: int,
        visits: np.ndarray,
        rows: np.ndarray,
        weights: np.ndarray | float = 1.0,
    ) -> None:
        """Add the covariate sums of ``rows`` (one patient a row) to pattern ``j`` of ``sums``.

        ``sums`` holds the padded ``zz``, ``zy``, ``yy`` and ``n``; ``weights`` multiplies each
        patient's contribution (-1 takes the patients out).
        """
        zp, yp = self.factor.z[rows[:, 0]], self.data.y[rows]  # type: ignore[union-attr]
        w = np.broadcast_to(np.asarray(weights, dtype=float), (rows.shape[0],))
        sums["zz"][j] += (zp * w[:, None]).T @ zp
        sums["zy"][j][:, visits] += (zp * w[:, None]).T @ yp
        sums["yy"][j][np.ix_(visits, visits)] += (yp * w[:, None]).T @ yp
        sums["n"][j] += w.sum()

    def downdated(self, removed: Mapping[tuple[int, int], np.ndarray]) -> Likelihood:
        """Return a copy with some patients' contributions taken out of their patterns.

        Parameters
        ----------
        removed : mapping of (int, int) to numpy.ndarray
            ``(batch, position in the batch)`` -> ``(m, k)`` row numbers of the patients to take
            out of that pattern (one patient a row).

        Returns
        -------
        Likelihood
            Shares everything with this one but the changed batches.
        """
        data = self.data
        p = data.p
        changed: dict[int, dict[str, np.ndarray]] = {}
        for (b_idx, j), rows in removed.items():
            batch = self.batches[b_idx]
            if b_idx not in changed:
                names = ("zz", "zy") if self.factor is not None else ("xx", "xy")
                changed[b_idx] = {name: getattr(batch, name).copy() for name in (*names, "yy", "n")}
            parts = changed[b_idx]
            rows = np.atleast_2d(rows)
            m, k = rows.shape
            if self.factor is not None:
                self._add_sums(parts, j, data.patterns[batch.index[j]].visits, rows, -1.0)
                continue
            yp = data.y[rows]
            xp = data.x[rows].reshape(m, k * p)
            parts["xx"][j] -= (xp.T @ xp).reshape(k, p, k, p).transpose(0, 2, 1, 3)
            parts["xy"][j] -= (xp.T @ yp).reshape(k, p, k).transpose(0, 2, 1)
            parts["yy"][j] -= yp.T @ yp
            parts["n"][j] -= float(m)
        return self._with_batches(changed)

    def reweighted(self, weights: np.ndarray) -> Likelihood:
        """Return a copy with each patient's contribution times ``weights[subject code]``.

        Only for a factored likelihood (:attr:`factor`): the covariate sums are rebuilt from the
        rows, ``O(N q^2)``. (:class:`pipeline.lmm.reference_based` reweights full ones.)
        """
        if self.factor is None:
            raise ValueError("reweighted needs a likelihood whose design factors by visit")
        data, batch = self.data, self.batches[0]
        sums = {name: np.zeros_like(getattr(batch, name)) for name in ("zz", "zy", "yy", "n")}
        for j, pat in enumerate(data.patterns):
            self._add_sums(
                sums, j, pat.visits, pat.rows, weights[data.subject_codes[pat.rows[:, 0]]]
            )
        return self._with_batches({0: sums})

    def _with_batches(self, changed: Mapping[int, Mapping[str, np.ndarray]]) -> Likelihood:
        out = copy.copy(self)
        batches = list(self.batches)
        for b_idx, parts in changed.items():
            batches[b_idx] = dataclasses.replace(batches[b_idx], **parts)
        out.batches = tuple(batches)
        return out

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
        stacked = np.asarray(sigmas, dtype=float)
        if self.factor is not None:
            return self._padded_state(stacked)
        p = self.data.p
        xtwx = np.zeros((p, p))
        xtwy = np.zeros(p)
        ytwy = 0.0
        logdet = 0.0
        batch_inverses = []
        for b in self.batches:
            blocks = b.blocks(stacked)
            chol = np.linalg.cholesky(blocks)
            inv = np.linalg.inv(blocks)
            inv = 0.5 * (inv + inv.transpose(0, 2, 1))
            batch_inverses.append(inv)
            logdet += 2.0 * float(b.n @ np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1))
            ytwy += float(np.sum(inv * b.yy))
            flat = inv.reshape(-1)
            xtwx += (flat @ b.xx.reshape(flat.size, p * p)).reshape(p, p)
            xtwy += flat @ b.xy.reshape(flat.size, p)

        def unpack() -> tuple[np.ndarray, ...]:
            out: list[np.ndarray] = [np.empty(0)] * len(self.data.patterns)
            for b, inv in zip(self.batches, batch_inverses, strict=True):
                for j, i in enumerate(b.index):
                    out[i] = inv[j]
            return tuple(out)

        return self._solved(unpack, tuple(batch_inverses), xtwx, xtwy, ytwy, logdet)

    def _padded_state(self, stacked: np.ndarray) -> PatternState:
        """:meth:`state_from_sigmas` over the padded batch of covariate sums."""
        b = self.batches[0]
        t, q = self.data.n_visits, self.factor.q  # type: ignore[union-attr]
        n_pat = b.n.size
        # an unattended visit is a unit variance of its own: no effect on the inverse's block
        # of the attended ones nor on the log-determinant, and masked out of the inverse
        blocks = np.where(self._pair_mask, stacked[b.group], self._eye)
        chol = np.linalg.cholesky(blocks)
        inv = np.linalg.inv(blocks)
        inv = np.where(self._pair_mask, 0.5 * (inv + inv.transpose(0, 2, 1)), 0.0)
        logdet = 2.0 * float(b.n @ np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1))
        ytwy = float(np.sum(inv * b.yy))
        zz_sum = inv.reshape(n_pat, t * t).T @ b.zz.reshape(n_pat, q * q)  # (a b, i j)
        zy_sum = (inv @ b.zy.transpose(0, 2, 1)).sum(axis=0)  # (T, q)
        inner = zz_sum.reshape(t, t, q, q).transpose(0, 2, 1, 3).reshape(t * q, t * q)
        xtwx = self._stacked @ inner @ self._stacked.T
        xtwy = self._stacked @ zy_sum.reshape(-1)
        patterns = self.data.patterns

        def unpack() -> tuple[np.ndarray, ...]:
            return tuple(inv[i][np.ix_(pat.visits, pat.visits)] for i, pat in enumerate(patterns))

        return self._solved(unpack, (inv,), xtwx, xtwy, ytwy, logdet)

    def _solved(
        self,
        unpack: Callable[[], tuple[np.ndarray, ...]],
        batch_inverses: tuple[np.ndarray, ...],
        xtwx: np.ndarray,
        xtwy: np.ndarray,
        ytwy: float,
        logdet: float,
    ) -> PatternState:
        """Solve the GLS equations and collect an evaluation's pieces."""
        p = self.data.p
        xtwx = 0.5 * (xtwx + xtwx.T)
        chol_x = np.linalg.cholesky(xtwx)
        beta = scipy.linalg.cho_solve((chol_x, True), xtwy)
        xtwx_inv = scipy.linalg.cho_solve((chol_x, True), np.eye(p))
        return PatternState(
            unpack,
            batch_inverses,
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
        n_groups = len(self.structures)
        beta = st.beta
        p = beta.size
        # beta'XX_ab beta (+ tr((X'V^-1 X)^-1 XX_ab) for REML) in one pass over XX
        weight = np.outer(beta, beta)
        if self.reml:
            weight = weight + st.xtwx_inv.T
        if self.factor is not None:
            b, inv = self.batches[0], st.batch_inverses[0]
            q, mt = self.factor.q, self._stacked
            # beta'XX_ab beta + tr(A XX_ab) = sum_ij S_p[i, j] (M_a' W M_b)[i, j]
            inner = (mt.T @ weight @ mt).reshape(t, q, t, q).transpose(0, 2, 1, 3)
            quad = b.zz.reshape(-1, q * q) @ inner.reshape(t * t, q * q).T
            u = (mt.T @ beta).reshape(t, q)  # M_a' beta
            g = b.yy - 2.0 * (u @ b.zy) + quad.reshape(-1, t, t)
            g = 0.5 * (g + g.transpose(0, 2, 1))
            h = b.n[:, None, None] * inv - inv @ g @ inv  # zero off the attended visits
            return list((self._group_onehot @ h.reshape(-1, t * t)).reshape(n_groups, t, t))
        out = np.zeros(n_groups * t * t)
        weight = weight.reshape(-1)
        for b, inv, slots in zip(self.batches, st.batch_inverses, self._slots, strict=True):
            g = b.yy - 2.0 * (b.xy @ beta) + (b.xx.reshape(-1, p * p) @ weight).reshape(b.yy.shape)
            g = 0.5 * (g + g.transpose(0, 2, 1))
            h = b.n[:, None, None] * inv - inv @ g @ inv
            out += np.bincount(slots, weights=h.ravel(), minlength=out.size)
        return list(out.reshape(n_groups, t, t))

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
