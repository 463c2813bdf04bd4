"""Exact mixed-model fits from schedule-grouped sufficient statistics (no patient rows).

The model is the one of :class:`pipeline.lmm.deviance.GroupedCrossproducts`::

    y_i = X_i beta + Z_i b_i + e_i,   b_i ~ N(0, sigma^2 Lambda Lambda'),   e_i ~ N(0, sigma^2 I)

Patients whose random-effect design ``Z_i`` is the same matrix (patients assessed at the same
nominal visit times: one *schedule*) share ``G = Z'Z``, ``M = I + Lambda' G Lambda`` and
``H = Lambda M^{-1} Lambda'``. Write ``a_i = Z_i' [X_i, y_i]`` (a ``q x (p + 1)`` block) and
``w = (-beta, 1)``. Every quantity the profiled criterion, its exact gradient, the fixed-effect
covariance and its Jacobian need is then a function of, per schedule ``s``,

* ``n_s`` (patients) and ``Z_s`` itself,
* ``S2_s = sum_{i in s} a_i (x) a_i`` (the sum of outer products of the flattened blocks),

and of the pooled ``X'X``, ``X'y``, ``y'y`` and number of rows. The algebra (Woodbury,
``W_i = I - Z_i H_i Z_i'``, the same as the row-level engine):

* ``sum_i log|M_i| = sum_s n_s log|M_s|``;
* ``[X y]' W [X y] = [X y]'[X y] - sum_s sum_jk H_s[j, k] S2_s[j, ., k, .]``;
* gradient of ``log|V|``: ``sum_i Z_i'W_iZ_i = sum_s n_s (G_s - G_s H_s G_s)``;
* gradient of the penalised RSS: ``sum_i c_i c_i'`` with ``c_i = K_s a_i w``,
  ``K_s = I - G_s H_s``, equals ``sum_s K_s T_s K_s'``, ``T_s[j, k] = w' S2_s[j, ., k, .] w``;
* gradient of the REML term ``log|X'WX|``: ``sum_i B_i C^{-1} B_i'`` with
  ``B_i = K_s Z_i'X_i`` equals ``sum_s K_s U_s K_s'``,
  ``U_s[j, k] = <S2_s[j, :p, k, :p], C^{-1}>``;
* Jacobian of ``X'WX`` (Satterthwaite): ``sum_i B_i[r]' (Lambda' B_i)[c]`` equals
  ``sum_s sum_jl K_s[r, j] (Lambda' K_s)[c, l] S2_s[j, :p, l, :p]``.

Satterthwaite degrees of freedom need the Hessian of the deviance in ``(theta, sigma)``, taken
(as in :mod:`pipeline.lmm.fit`) by Richardson differences of the exact gradient above, so they
too come from the statistics alone. The first moments ``S1_s = sum_i a_i`` are kept as well (a
clinic random intercept needs them). A fixed effect added to every row of a block of patients
(a clinic indicator) is a linear map ``X -> X T`` of the design: :meth:`SufficientStatistics.mapped`
transforms the statistics exactly.

:func:`schedule_statistics` computes the statistics from rows, :class:`SufficientCrossproducts`
evaluates the criterion from them with the interface of the row-level engine (so the same
optimiser and inference code runs), and :func:`fit_sufficient` fits the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.lmm.deviance import (
    DevianceDerivatives,
    DevianceTerms,
    GroupedCrossproducts,
    _terms_from,
    lambda_from_theta,
)
from pipeline.lmm.fit import (
    _inference_table,
    _satterthwaite_df,
    _satterthwaite_pieces,
    _variance_table,
)
from pipeline.lmm.optim import (
    GRADIENT_TOL,
    SINGULAR_TOL,
    numpy_gradient_route,
    numpy_lbfgsb,
    numpy_powell,
    scaled_gradient,
    singular_reason,
)

__all__ = [
    "NestedSufficientCrossproducts",
    "SufficientCrossproducts",
    "SufficientFit",
    "SufficientStatistics",
    "combine_statistics",
    "fit_crossproducts",
    "fit_sufficient",
    "schedule_statistics",
]


@dataclass(frozen=True, eq=False)
class SufficientStatistics:
    """Sufficient statistics of a linear mixed model with one grouping factor.

    Attributes
    ----------
    z : tuple of numpy.ndarray
        Random-effect design of each schedule (cell), shape ``(n_rows_s, q)``.
    n_groups : numpy.ndarray
        Groups (patients) per cell, shape ``(C,)``.
    sum_a : numpy.ndarray
        ``sum_i Z_i'[X_i, y_i]`` per cell, shape ``(C, q, p + 1)``.
    sum_aa : numpy.ndarray
        ``sum_i a_i (x) a_i`` per cell, shape ``(C, q, p + 1, q, p + 1)``.
    xtx, xty : numpy.ndarray
        Pooled ``X'X`` ``(p, p)`` and ``X'y`` ``(p,)``.
    yty : float
        Pooled ``y'y``.
    n_obs : int
        Rows.
    site : numpy.ndarray or None
        Site code of each cell when the groups are nested in sites (a site random intercept
        needs each site's cells apart), else None.
    """

    z: tuple[np.ndarray, ...]
    n_groups: np.ndarray
    sum_a: np.ndarray
    sum_aa: np.ndarray
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    n_obs: int
    site: np.ndarray | None = None

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return int(self.xtx.shape[0])

    @property
    def q(self) -> int:
        """Number of random effects per group."""
        return int(self.sum_a.shape[1])

    def mapped(self, transform: np.ndarray) -> SufficientStatistics:
        """Statistics of the design ``X T`` (e.g. clinic indicators built from the intercept).

        Parameters
        ----------
        transform : numpy.ndarray
            ``(p, p_new)`` matrix ``T``.

        Returns
        -------
        SufficientStatistics
            The statistics of ``y`` on ``X T``: ``T'X'XT``, ``T'X'y`` and the blocks
            ``Z'[X T, y]``.
        """
        t = np.asarray(transform, dtype=float)
        p, p_new = t.shape
        if p != self.p:
            raise ValueError(f"the transform has {p} rows for {self.p} fixed effects")
        full = np.zeros((p + 1, p_new + 1))
        full[:p, :p_new] = t
        full[p, p_new] = 1.0
        sum_a = np.einsum("cju,uv->cjv", self.sum_a, full)
        sum_aa = np.einsum("cjukw,ua,wb->cjakb", self.sum_aa, full, full)
        return replace(self, sum_a=sum_a, sum_aa=sum_aa, xtx=t.T @ self.xtx @ t, xty=t.T @ self.xty)

    def shifted(self, beta0: np.ndarray) -> SufficientStatistics:
        """Statistics of the response ``y - X beta0`` (same design).

        Parameters
        ----------
        beta0 : numpy.ndarray
            Length-``p`` shift, e.g. the least-squares estimate.

        Returns
        -------
        SufficientStatistics
            ``X'X`` unchanged; ``X'y``, ``y'y`` and the blocks of the shifted response.
        """
        p = self.p
        full = np.eye(p + 1)
        full[:p, p] = -np.asarray(beta0, dtype=float)
        b = np.asarray(beta0, dtype=float)
        return replace(
            self,
            sum_a=np.einsum("cju,uv->cjv", self.sum_a, full),
            sum_aa=np.einsum("cjukw,ua,wb->cjakb", self.sum_aa, full, full),
            xty=self.xty - self.xtx @ b,
            yty=float(self.yty - 2.0 * b @ self.xty + b @ self.xtx @ b),
        )

    def random_effects_subset(self, keep: Sequence[int]) -> SufficientStatistics:
        """Statistics of the model with only some random effects (e.g. the intercept).

        Parameters
        ----------
        keep : sequence of int
            Columns of ``Z`` kept.

        Returns
        -------
        SufficientStatistics
            Same rows and fixed effects; ``Z`` restricted to the kept columns.
        """
        k = list(keep)
        return replace(
            self,
            z=tuple(z[:, k] for z in self.z),
            sum_a=self.sum_a[:, k],
            sum_aa=self.sum_aa[:, k][:, :, :, k],
        )


def _empty_like(q: int, p: int) -> SufficientStatistics:
    return SufficientStatistics(
        z=(),
        n_groups=np.zeros(0, dtype=int),
        sum_a=np.zeros((0, q, p + 1)),
        sum_aa=np.zeros((0, q, p + 1, q, p + 1)),
        xtx=np.zeros((p, p)),
        xty=np.zeros(p),
        yty=0.0,
        n_obs=0,
    )


def combine_statistics(
    parts: Sequence[SufficientStatistics], *, sites: bool = False
) -> SufficientStatistics:
    """Pool the statistics of disjoint sets of groups (e.g. clinics): cells side by side.

    Cells with the same ``Z`` are merged (their sums add up), so the result does not depend on
    how the groups were split; with ``sites=True`` each part is a site, its cells are kept
    apart from the other parts' and labelled with the part's index (for a site random
    intercept, :class:`NestedSufficientCrossproducts`).

    Parameters
    ----------
    parts : sequence of SufficientStatistics
        Statistics with the same ``p`` and ``q``.
    sites : bool, keyword-only, default False
        Treat each part as a site.

    Returns
    -------
    SufficientStatistics
        Statistics of all groups together.
    """
    if not parts:
        raise ValueError("nothing to combine")
    p, q = parts[0].p, parts[0].q
    if any(s.p != p or s.q != q for s in parts):
        raise ValueError("statistics with different numbers of fixed or random effects")
    index: dict[bytes, int] = {}
    zs: list[np.ndarray] = []
    n: list[int] = []
    s1: list[np.ndarray] = []
    s2: list[np.ndarray] = []
    site_of: list[int] = []
    for number, part in enumerate(parts):
        for c, z in enumerate(part.z):
            key = z.shape[0].to_bytes(4, "little") + np.ascontiguousarray(z).tobytes()
            if sites:
                key = number.to_bytes(4, "little") + key
            if key not in index:
                index[key] = len(zs)
                zs.append(z)
                site_of.append(number)
                n.append(0)
                s1.append(np.zeros((q, p + 1)))
                s2.append(np.zeros((q, p + 1, q, p + 1)))
            k = index[key]
            n[k] += int(part.n_groups[c])
            s1[k] = s1[k] + part.sum_a[c]
            s2[k] = s2[k] + part.sum_aa[c]
    base = _empty_like(q, p)
    return replace(
        base,
        z=tuple(zs),
        n_groups=np.asarray(n, dtype=int),
        sum_a=np.asarray(s1).reshape(len(zs), q, p + 1),
        sum_aa=np.asarray(s2).reshape(len(zs), q, p + 1, q, p + 1),
        xtx=sum(s.xtx for s in parts),
        xty=sum(s.xty for s in parts),
        yty=float(sum(s.yty for s in parts)),
        n_obs=int(sum(s.n_obs for s in parts)),
        site=np.asarray(site_of, dtype=int) if sites else None,
    )


def schedule_statistics(
    y: np.ndarray, x: np.ndarray, z: np.ndarray, group_codes: np.ndarray
) -> tuple[SufficientStatistics, np.ndarray]:
    """Group the patients by their ``Z_i`` and return the sufficient statistics.

    Rows of a group are taken in the order of their ``Z`` rows (sorted), so two patients seen
    at the same times share a cell whatever the order of their rows.

    Parameters
    ----------
    y : numpy.ndarray
        Response, ``(n,)``.
    x : numpy.ndarray
        Fixed-effect design, ``(n, p)``.
    z : numpy.ndarray
        Random-effect design, ``(n, q)`` (e.g. ``[1, nominal time]``).
    group_codes : numpy.ndarray
        Integer group code of each row.

    Returns
    -------
    statistics : SufficientStatistics
        One cell per distinct ``Z_i``.
    cell_of_group : numpy.ndarray
        Cell index of each group, groups in ascending code order.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    z = np.asarray(z, dtype=float)
    codes = np.asarray(group_codes)
    n, p = x.shape
    q = z.shape[1]
    order = np.lexsort([z[:, j] for j in range(q - 1, -1, -1)] + [codes])
    y, x, z, codes = y[order], x[order], z[order], codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    g = starts.size
    width = int(sizes.max())
    pos = np.arange(n) - np.repeat(starts, sizes)
    padded = np.full((g, width, q), np.nan)
    padded[np.repeat(np.arange(g), sizes), pos] = z
    flat = np.c_[sizes[:, None].astype(float), padded.reshape(g, width * q)]
    flat = np.nan_to_num(flat, nan=np.inf)  # inf marks "no row" and sorts last
    _, first, cell = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    cell = np.asarray(cell).ravel()
    aug = np.c_[x, y]  # (n, p + 1)
    a = np.add.reduceat(z[:, :, None] * aug[:, None, :], starts, axis=0)  # (g, q, p + 1)
    n_cells = first.size
    zs = tuple(z[starts[f] : starts[f] + sizes[f]].copy() for f in first)
    counts = np.bincount(cell, minlength=n_cells)
    flat_a = a.reshape(g, -1)
    by_cell = np.argsort(cell, kind="stable")
    bounds = np.r_[0, np.cumsum(counts)]
    d = q * (p + 1)
    s1 = np.zeros((n_cells, d))
    s2 = np.zeros((n_cells, d, d))
    for c in range(n_cells):
        rows = flat_a[by_cell[bounds[c] : bounds[c + 1]]]
        s1[c] = rows.sum(axis=0)
        s2[c] = rows.T @ rows
    stats = SufficientStatistics(
        z=zs,
        n_groups=counts.astype(int),
        sum_a=s1.reshape(n_cells, q, p + 1),
        sum_aa=s2.reshape(n_cells, q, p + 1, q, p + 1),
        xtx=x.T @ x,
        xty=x.T @ y,
        yty=float(y @ y),
        n_obs=int(n),
    )
    return stats, cell


class SufficientCrossproducts(GroupedCrossproducts):
    """The profiled (RE)ML criterion and its derivatives from :class:`SufficientStatistics`.

    It has the interface of :class:`~pipeline.lmm.deviance.GroupedCrossproducts`, whose
    criterion, deviance, gradient and Jacobian methods it inherits; only the two methods that
    touch per-group arrays (:meth:`weighted_crossproducts`, :meth:`derivatives`) are computed
    here from the cell sums (module docstring), and :meth:`terms`. There are no rows, so the
    parent's constructor is not called and conditional modes are not available.

    The statistics are first shifted to the response ``y - X beta0`` with ``beta0`` the
    least-squares estimate (:meth:`SufficientStatistics.shifted`; the GLS estimate is then
    ``beta0`` plus that of the shifted response): the criterion's quadratic forms are then
    computed from residual-sized sums, without the cancellation between large sums of squares
    that would otherwise add rounding noise to the finite-difference Hessian behind the
    Satterthwaite df.

    Parameters
    ----------
    stats : SufficientStatistics
        The statistics.
    """

    def __init__(self, stats: SufficientStatistics) -> None:
        xtx = 0.5 * (stats.xtx + stats.xtx.T)
        self.beta0 = np.linalg.solve(xtx, stats.xty)
        stats = stats.shifted(self.beta0)
        self.stats = stats
        self.n_obs = int(stats.n_obs)
        self.p = stats.p
        self.q = stats.q
        self.n_groups = int(stats.n_groups.sum())
        self.n_theta = self.q * (self.q + 1) // 2
        rows, cols = np.tril_indices(self.q)
        order_t = np.lexsort((rows, cols))
        self.theta_diagonal = rows[order_t] == cols[order_t]
        self._theta_at = (rows[order_t], cols[order_t])
        self.cache: dict[tuple, object] = {}
        self._count = stats.n_groups.astype(float)
        self._g = np.array([z.T @ z for z in stats.z]).reshape(-1, self.q, self.q)
        self.xtx, self.xty, self.yty = stats.xtx, stats.xty, float(stats.yty)

    def _blocks(self, theta: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """``Lambda``, ``sum_s n_s log|M_s|`` and ``H_s`` per cell."""
        lam = lambda_from_theta(np.asarray(theta, dtype=float), self.q)
        m = np.eye(self.q) + lam.T @ self._g @ lam
        sign, logdets = np.linalg.slogdet(m)
        if np.any(sign <= 0):
            raise np.linalg.LinAlgError("a variance block is not positive definite")
        h = lam @ np.linalg.inv(m) @ lam.T
        return lam, float(self._count @ logdets), h

    def _shifted_terms(self, logdet: float, h: np.ndarray) -> DevianceTerms:
        """Deviance pieces of the shifted response (``beta`` relative to ``beta0``)."""
        return _terms_from(*self._weighted_from(logdet, h))

    def terms(self, theta: np.ndarray) -> DevianceTerms:
        """Evaluate the ``sigma``-free pieces of the deviance at ``theta`` (``beta`` unshifted).

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.

        Returns
        -------
        DevianceTerms
            As :meth:`GroupedCrossproducts.terms`.
        """
        _, logdet, h = self._blocks(theta)
        t = self._shifted_terms(logdet, h)
        return replace(t, beta=t.beta + self.beta0)

    def _weighted_from(
        self, logdet: float, h: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        p = self.p
        s = np.einsum("cjk,cjukv->uv", h, self.stats.sum_aa)
        return logdet, self.xtx - s[:p, :p], self.xty - s[:p, p], self.yty - float(s[p, p])

    def weighted_crossproducts(
        self, theta: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Return ``log|V / sigma^2|``, ``X'WX``, ``X'Wy``, ``y'Wy`` of the *shifted* response.

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.

        Returns
        -------
        tuple
            ``(logdet, xwx, xwy, ywy)`` as the row-level engine.
        """
        _, logdet, h = self._blocks(theta)
        return self._weighted_from(logdet, h)

    def derivatives(self, theta: np.ndarray, covariance: bool = False) -> DevianceDerivatives:
        """Return the deviance pieces at ``theta`` and their exact derivatives (module docstring).

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.
        covariance : bool, default False
            Also return ``d(X'WX) / dtheta``.

        Returns
        -------
        DevianceDerivatives
            As :meth:`GroupedCrossproducts.derivatives`.
        """
        lam, logdet, h = self._blocks(theta)
        terms = self._shifted_terms(logdet, h)
        p, s2 = self.p, self.stats.sum_aa
        k = np.eye(self.q) - self._g @ h  # K_s = I - G_s H_s
        w = np.r_[-terms.beta, 1.0]
        a_sum = np.einsum("c,cjk->jk", self._count, self._g - self._g @ h @ self._g)
        t = np.einsum("cjukv,u,v->cjk", s2, w, w)
        cc = np.einsum("cij,cjk,clk->il", k, t, k)
        u = np.einsum("cjukv,uv->cjk", s2[:, :, :p, :, :p], terms.xwx_inv)
        bcb = np.einsum("cij,cjk,clk->il", k, u, k)
        rows, cols = self._theta_at
        d_xwx = None
        if covariance:
            lam_k = np.einsum("mc,smk->sck", lam, k)  # Lambda' K_s
            d_xwx = np.empty((rows.size, p, p))
            for idx, (r, c) in enumerate(zip(rows, cols, strict=True)):
                qk = np.einsum("sj,sl,sjulv->uv", k[:, r, :], lam_k[:, c, :], s2[:, :, :p, :, :p])
                d_xwx[idx] = -(qk + qk.T)
        return DevianceDerivatives(
            terms=replace(terms, beta=terms.beta + self.beta0),
            logdet_m=2.0 * (a_sum @ lam)[rows, cols],
            pwrss=-2.0 * (cc @ lam)[rows, cols],
            logdet_xwx=-2.0 * (bcb @ lam)[rows, cols],
            xwx=d_xwx,
        )

    def conditional_modes(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Not available: the statistics hold no single group's data.

        Raises
        ------
        ValueError
            Always; conditional modes need each group's own ``Z_i'(y_i - X_i beta)``.
        """
        raise ValueError("conditional modes need each group's own data, not pooled sums")


class NestedSufficientCrossproducts(SufficientCrossproducts):
    """``(1 | site) + (Z | group)`` from statistics whose cells carry their site.

    The algebra of :class:`~pipeline.lmm.deviance.NestedCrossproducts` (Sherman-Morrison per
    site), with every per-patient quantity summed over the site's cells: ``Z_i'1 = u_s`` and
    ``1'[X_i, y_i]`` (the first row of ``a_i``, ``Z``'s first column being the intercept) are
    constant or linear in ``a_i``, so a site needs the cells' first moments ``S1`` besides
    ``S2``. ``theta`` is the patient ``theta`` followed by the site's relative SD.

    Parameters
    ----------
    stats : SufficientStatistics
        Statistics with ``site`` set (:func:`combine_statistics` with ``sites=True``) and the
        intercept as the first column of ``Z``.
    """

    def __init__(self, stats: SufficientStatistics) -> None:
        if stats.site is None:
            raise ValueError("a site random intercept needs statistics whose cells carry a site")
        super().__init__(stats)
        self.cell_site = np.asarray(stats.site, dtype=int)
        self.n_sites = int(self.cell_site.max()) + 1
        self.n_theta += 1
        self.theta_diagonal = np.r_[self.theta_diagonal, True]
        self._u = np.array([z.sum(axis=0) for z in stats.z]).reshape(-1, self.q)  # Z'1
        self._rows = np.array([z.shape[0] for z in stats.z], dtype=float)

    def _site_sums(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``H_c u_c`` and, per site, ``k = sum 1'D^{-1}1`` and ``sum 1'D^{-1}[X y]``."""
        hu = np.einsum("cjk,ck->cj", h, self._u)
        k_cell = self._count * (self._rows - np.einsum("cj,cj->c", self._u, hu))
        s1 = self.stats.sum_a  # (C, q, p + 1)
        aug_cell = s1[:, 0, :] - np.einsum("cj,cju->cu", hu, s1)
        k = np.bincount(self.cell_site, k_cell, self.n_sites)
        site_aug = np.zeros((self.n_sites, self.p + 1))
        np.add.at(site_aug, self.cell_site, aug_cell)
        return hu, k, site_aug

    def _nested(
        self, theta: np.ndarray, logdet: float, h: np.ndarray, k: np.ndarray, site_aug: np.ndarray
    ) -> DevianceTerms:
        """Patient-level pieces corrected by Sherman-Morrison for each site."""
        base_logdet, xwx, xwy, ywy = self._weighted_from(logdet, h)
        t2 = float(theta[-1]) ** 2
        shrink = t2 / (1.0 + t2 * k)
        s = (site_aug.T * shrink) @ site_aug
        p = self.p
        return _terms_from(
            base_logdet + float(np.log1p(t2 * k).sum()),
            xwx - s[:p, :p],
            xwy - s[:p, p],
            ywy - float(s[p, p]),
        )

    def _pieces(self, theta: np.ndarray) -> tuple:
        """``theta``, ``Lambda``, ``H_c``, ``H_c u_c``, site ``k``, site sums and the terms."""
        theta = np.asarray(theta, dtype=float)
        lam = lambda_from_theta(theta[:-1], self.q)
        m = np.eye(self.q) + lam.T @ self._g @ lam
        sign, logdets = np.linalg.slogdet(m)
        if np.any(sign <= 0):
            raise np.linalg.LinAlgError("a variance block is not positive definite")
        h = lam @ np.linalg.inv(m) @ lam.T
        hu, k, site_aug = self._site_sums(h)
        terms = self._nested(theta, float(self._count @ logdets), h, k, site_aug)
        return theta, lam, h, hu, k, site_aug, terms

    def weighted_crossproducts(
        self, theta: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Not used for the nested model (see :meth:`terms`).

        Raises
        ------
        NotImplementedError
            Always; the nested pieces come from :meth:`terms` and :meth:`derivatives`.
        """
        raise NotImplementedError("use terms() or derivatives() for the nested model")

    def terms(self, theta: np.ndarray) -> DevianceTerms:
        """Deviance pieces of the nested model at ``(theta_patient, theta_site)``.

        Parameters
        ----------
        theta : numpy.ndarray
            Patient ``theta`` followed by the site's relative SD.

        Returns
        -------
        DevianceTerms
            As :meth:`GroupedCrossproducts.terms` (``beta`` unshifted).
        """
        t = self._pieces(theta)[-1]
        return replace(t, beta=t.beta + self.beta0)

    def derivatives(self, theta: np.ndarray, covariance: bool = False) -> DevianceDerivatives:
        """Deviance pieces with exact derivatives in the patient and site ``theta``.

        As :meth:`pipeline.lmm.deviance.NestedCrossproducts.derivatives`, the per-patient
        blocks ``B_i = K_c Z_i'X_i - e_c`` and ``c_i = K_c a_i w - rho_s sv_c`` summed over
        each cell from its first and second moments.

        Parameters
        ----------
        theta : numpy.ndarray
            Patient ``theta`` followed by the site's relative SD.
        covariance : bool, default False
            Also return ``d(X'WX)``.

        Returns
        -------
        DevianceDerivatives
            The pieces and their gradients (the site's last).
        """
        theta, lam, h, _, k, site_aug, terms = self._pieces(theta)
        p, q, n = self.p, self.q, self._count
        s1, s2 = self.stats.sum_a, self.stats.sum_aa
        ts = float(theta[-1])
        t2 = ts**2
        scale = 1.0 / (1.0 + t2 * k)
        shrink = t2 * scale
        beta = terms.beta
        cx = site_aug[:, :p]
        rho = site_aug[:, p] - cx @ beta
        kmat = np.eye(q) - self._g @ h  # (C, q, q)
        v = np.einsum("cjk,ck->cj", kmat, self._u)  # K_c u_c
        sv = shrink[self.cell_site][:, None] * v
        e = sv[:, :, None] * cx[self.cell_site][:, None, :]  # (C, q, p)
        w = np.r_[-beta, 1.0]
        s1x = s1[:, :, :p]  # sum_i Z_i'X_i
        ka = np.einsum("cij,cju->ciu", kmat, s1x)  # K_c sum_i A_i
        # sum_i B_i M B_i' with M = C^{-1}
        minv = terms.xwx_inv
        u_mat = np.einsum("cjukv,uv->cjk", s2[:, :, :p, :, :p], minv)
        kuk = np.einsum("cij,cjk,clk->cil", kmat, u_mat, kmat)
        cross = np.einsum("ciu,uv,clv->cil", ka, minv, e)
        bcb = (
            kuk
            - cross
            - cross.transpose(0, 2, 1)
            + n[:, None, None] * (e @ minv @ e.transpose(0, 2, 1))
        ).sum(axis=0)
        # sum_i c_i c_i'
        t_mat = np.einsum("cjukv,u,v->cjk", s2, w, w)
        ktk = np.einsum("cij,cjk,clk->cil", kmat, t_mat, kmat)
        kaw = np.einsum("cij,cju,u->ci", kmat, s1, w)  # K_c sum_i a_i w
        rsv = rho[self.cell_site][:, None] * sv
        cc = (
            ktk
            - np.einsum("ci,cl->cil", kaw, rsv)
            - np.einsum("ci,cl->cil", rsv, kaw)
            + n[:, None, None] * np.einsum("ci,cl->cil", rsv, rsv)
        ).sum(axis=0)
        a_sum = np.einsum(
            "c,cjk->jk", n, self._g - self._g @ h @ self._g - sv[:, :, None] * v[:, None, :]
        )
        rows, cols = self._theta_at
        d_xwx = None
        if covariance:
            lk = np.einsum("mc,smk->sck", lam, kmat)  # Lambda' K_c
            le = np.einsum("mc,smu->scu", lam, e)  # Lambda' e_c
            la = np.einsum("sck,sku->scu", lk, s1x)  # Lambda' K_c sum A_i
            d_xwx = np.empty((rows.size + 1, p, p))
            for idx, (r, c) in enumerate(zip(rows, cols, strict=True)):
                sxy = np.einsum("sj,sl,sjulv->uv", kmat[:, r, :], lk[:, c, :], s2[:, :, :p, :, :p])
                qk = (
                    sxy
                    - np.einsum("su,sv->uv", ka[:, r, :], le[:, c, :])
                    - np.einsum("su,sv->uv", e[:, r, :], la[:, c, :])
                    + np.einsum("s,su,sv->uv", n, e[:, r, :], le[:, c, :])
                )
                d_xwx[idx] = -(qk + qk.T)
        wx = cx * scale[:, None]
        d_xwx_site = -2.0 * ts * (wx.T @ wx)
        if d_xwx is not None:
            d_xwx[-1] = d_xwx_site
        return DevianceDerivatives(
            terms=replace(terms, beta=beta + self.beta0),
            logdet_m=np.r_[2.0 * (a_sum @ lam)[rows, cols], 2.0 * ts * float((k * scale).sum())],
            pwrss=np.r_[
                -2.0 * (cc @ lam)[rows, cols], -2.0 * ts * float(((rho * scale) ** 2).sum())
            ],
            logdet_xwx=np.r_[
                -2.0 * (bcb @ lam)[rows, cols], float(np.sum(terms.xwx_inv * d_xwx_site))
            ],
            xwx=d_xwx,
        )


@dataclass(frozen=True, eq=False)
class SufficientFit:
    """A mixed model fitted from sufficient statistics, with lmerTest-style inference.

    Attributes
    ----------
    fixed_effects : pandas.DataFrame
        ``term, estimate, std_err, df, statistic, p_value, ci_low, ci_high``.
    variance_components : pandas.DataFrame
        ``group, term, variance, std_dev, correlation`` as :class:`~pipeline.lmm.fit.LmmFit`.
    vcov : numpy.ndarray
        Fixed-effect covariance.
    theta : numpy.ndarray
        lme4's relative Cholesky parameters at the optimum.
    sigma : float
        Residual standard deviation.
    criterion : float
        REML criterion or ML deviance.
    reml : bool
        REML or ML.
    n_obs, n_groups : int
        Rows and groups.
    converged : bool
        The optimum passes lme4's gradient check.
    fallback : str or None
        Why the random slope was dropped, or None.
    random_effects : tuple of str
        Names of the random effects of the reported model.
    design_columns : tuple of str
        Fixed-effect names.
    varpar_vcov, vcov_jacobian : numpy.ndarray or None
        Satterthwaite pieces (None with ``df_method="z"``).
    """

    fixed_effects: pd.DataFrame
    variance_components: pd.DataFrame
    vcov: np.ndarray
    theta: np.ndarray
    sigma: float
    criterion: float
    reml: bool
    n_obs: int
    n_groups: int
    converged: bool
    fallback: str | None
    random_effects: tuple[str, ...]
    design_columns: tuple[str, ...]
    varpar_vcov: np.ndarray | None = field(default=None, repr=False)
    vcov_jacobian: np.ndarray | None = field(default=None, repr=False)

    def contrast(self, contrasts: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
        """Estimate, SE, Satterthwaite df, t, p and 95 % CI of ``L beta`` for each row ``L``.

        Parameters
        ----------
        contrasts : numpy.ndarray
            ``(k, p)`` contrast matrix in ``design_columns`` order.
        labels : sequence of str
            One name per row.

        Returns
        -------
        pandas.DataFrame
            As :meth:`pipeline.lmm.fit.LmmFit.contrast`.
        """
        lmat = np.atleast_2d(np.asarray(contrasts, dtype=float))
        if self.varpar_vcov is None or self.vcov_jacobian is None:
            df = np.full(lmat.shape[0], np.inf)
        else:
            df = _satterthwaite_df(lmat, self.vcov, self.vcov_jacobian, self.varpar_vcov)
        return _inference_table(
            list(labels),
            lmat @ self.fixed_effects["estimate"].to_numpy(),
            np.einsum("ri,ij,rj->r", lmat, self.vcov, lmat),
            df,
        )


def _optimum(gc: SufficientCrossproducts, reml: bool) -> tuple[np.ndarray, bool]:
    """Minimise the profiled criterion as the engine's fast route, escalating to Powell."""
    start = np.where(gc.theta_diagonal, 1.0, 0.0)  # lme4's start
    theta, ok, _ = numpy_gradient_route(gc, reml, start)
    if ok and np.all(theta[gc.theta_diagonal] >= SINGULAR_TOL):
        return theta, True
    other, _, _ = numpy_powell(gc, reml, start)
    other, _, _ = numpy_lbfgsb(gc, reml, other)
    if gc.profiled_deviance(other, reml) < gc.profiled_deviance(theta, reml):
        theta = other
    return theta, scaled_gradient(gc, theta, reml) < GRADIENT_TOL


def fit_sufficient(
    stats: SufficientStatistics,
    design_columns: Sequence[str],
    group: str,
    random_effects: Sequence[str] = ("(Intercept)",),
    reml: bool = True,
    df_method: Literal["satterthwaite", "z"] = "satterthwaite",
    site: str | None = None,
) -> SufficientFit:
    """Fit ``y ~ X + (Z | group)`` from sufficient statistics, as :func:`~pipeline.lmm.fit_lmm`.

    The optimum, the GLS estimates, the covariance ``(X'V^{-1}X)^{-1}``, the REML criterion and
    lmerTest's Satterthwaite df are computed exactly as the row-level engine computes them, so
    the result equals ``fit_lmm`` on the rows behind the statistics (to the optimiser's
    ~1e-10). A random-slope model that is singular (lme4's rule) or does not converge is refitted
    with a random intercept only, as ``fit_lmm`` does.

    Parameters
    ----------
    stats : SufficientStatistics
        The statistics (``Z`` with the intercept first).
    design_columns : sequence of str
        Names of the ``p`` fixed effects.
    group : str
        Name of the grouping factor (for the variance table).
    random_effects : sequence of str
        Names of the ``q`` columns of ``Z``, ``("(Intercept)", slope)`` or ``("(Intercept)",)``.
    reml : bool, default True
        REML or ML.
    df_method : {"satterthwaite", "z"}
        Satterthwaite df (lmerTest) or normal inference.
    site : str, optional
        Name of the site factor: adds a site random intercept, ``(1 | site) + (Z | group)``
        (statistics combined with ``sites=True``), as ``fit_lmm(..., site=...)``.

    Returns
    -------
    SufficientFit
        Estimates and inference.
    """
    names = list(random_effects)
    if len(names) != stats.q or len(design_columns) != stats.p:
        raise ValueError("names do not match the statistics' random or fixed effects")
    kind = NestedSufficientCrossproducts if site else SufficientCrossproducts
    return fit_crossproducts(
        kind(stats),
        design_columns,
        group,
        names,
        reml=reml,
        df_method=df_method,
        site=site,
        intercept_only=lambda: kind(stats.random_effects_subset([0])),
    )


def fit_crossproducts(
    gc: GroupedCrossproducts,
    design_columns: Sequence[str],
    group: str,
    random_effects: Sequence[str],
    *,
    reml: bool = True,
    df_method: Literal["satterthwaite", "z"] = "satterthwaite",
    site: str | None = None,
    intercept_only: Callable[[], GroupedCrossproducts] | None = None,
) -> SufficientFit:
    """Fit from any object with the criterion interface of ``GroupedCrossproducts``.

    The optimiser, the random-slope fallback and lmerTest's Satterthwaite inference of
    :func:`fit_sufficient`, for a criterion evaluated elsewhere, e.g. summed over the
    partitions of a distributed data set (:mod:`pipeline.scale`): only ``gc`` touches data.

    Parameters
    ----------
    gc : GroupedCrossproducts
        The criterion (``terms``, ``derivatives``, ``profiled_deviance``...).
    design_columns, group, random_effects, reml, df_method, site
        As :func:`fit_sufficient`.
    intercept_only : callable, optional
        Returns the criterion of the random-intercept model, for the fallback of a singular
        or non-converged random-slope model (required when ``gc.q == 2``).

    Returns
    -------
    SufficientFit
        Estimates and inference.
    """
    names = list(random_effects)
    theta, ok = _optimum(gc, reml)
    fallback = None
    if gc.q == 2:
        sigma = gc.sigma_hat(theta, reml)
        patient = theta[:-1] if site else theta
        reason = singular_reason(patient, 2, ["intercept", f"{names[1]} slope"], sigma)
        if reason or not ok:
            why = reason and f"is at the boundary ({reason}; lme4's isSingular rule)"
            fallback = (
                f"The random-slope model (1 + {names[1]} | {group}) "
                f"{why or 'did not converge'}; refitted with a random intercept only "
                f"(1 | {group})."
            )
            if intercept_only is None:
                raise ValueError("a random-slope fit needs the random-intercept criterion")
            names = names[:1]
            gc = intercept_only()
            theta, ok = _optimum(gc, reml)
    terms = gc.terms(theta)
    sigma = float(np.sqrt(terms.pwrss / (gc.n_obs - gc.p if reml else gc.n_obs)))
    vcov = sigma**2 * terms.xwx_inv
    varpar_vcov = jac = None
    df = np.full(gc.p, np.inf)
    if df_method == "satterthwaite":
        varpar_vcov, jac, _ = _satterthwaite_pieces(gc, np.r_[theta, sigma], reml)
        df = _satterthwaite_df(np.eye(gc.p), vcov, jac, varpar_vcov)
    slope = names[1] if len(names) == 2 else None
    return SufficientFit(
        fixed_effects=_inference_table(list(design_columns), terms.beta, np.diag(vcov), df),
        variance_components=_variance_table(theta, sigma, gc.q, group, slope, site),
        vcov=vcov,
        theta=theta,
        sigma=sigma,
        criterion=gc.profiled_deviance(theta, reml),
        reml=reml,
        n_obs=gc.n_obs,
        n_groups=gc.n_groups,
        converged=ok,
        fallback=fallback,
        random_effects=tuple(names),
        design_columns=tuple(design_columns),
        varpar_vcov=varpar_vcov,
        vcov_jacobian=jac,
    )
