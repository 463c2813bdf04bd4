"""Vectorised (RE)ML deviance of a linear mixed model with one grouping factor.

This module is the numerical core behind :func:`pipeline.lmm.fit.fit_lmm`. It evaluates the
deviance (-2 log-likelihood) exactly as lme4 / lmerTest define it, in numpy only, so that the
standard errors and Satterthwaite degrees of freedom can be computed the way lmerTest does.

Model and parametrisation
-------------------------
For group ``i`` with ``n_i`` observations::

    y_i = X_i beta + Z_i b_i + e_i,   b_i ~ N(0, sigma^2 Lambda Lambda'),   e_i ~ N(0, sigma^2 I)

``Lambda`` is lme4's lower-triangular relative Cholesky factor; its lower triangle, stored
column by column, is lme4's ``theta`` (for a 2 x 2 factor: ``(L11, L21, L22)``, which is also
statsmodels' packed ``cov_re_sqrt`` order). The diagonal of ``Lambda`` is bounded below by 0.

Vectorisation
-------------
Everything the deviance needs is a per-group sum of cross products (``Z_i'Z_i``, ``Z_i'X_i``,
``Z_i'y_i``) plus the pooled ``X'X``, ``X'y`` and ``y'y``. These are computed once. With the
Woodbury identity, ``V_i^{-1}`` and ``log|V_i|`` only need the ``q x q`` matrices
``M_i = I + Lambda' Z_i'Z_i Lambda`` (``q`` = number of random effects per group, 1 or 2), so one
evaluation is a single batched ``np.linalg`` call on a stacked ``(m, q, q)`` array, whatever
the number of observations per group. This is equivalent to, and cheaper than, grouping the
patients by their number of visits and working on stacked ``(k, n, n)`` matrices ``V_i``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.lmm.blocks import apply_blocks, block_weights, sandwich_sum, sum_blocks

__all__ = [
    "DevianceDerivatives",
    "DevianceTerms",
    "GroupedCrossproducts",
    "NestedCrossproducts",
    "hessian_richardson",
    "jacobian_richardson",
    "lambda_from_theta",
    "theta_from_relative_cov",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


def lambda_from_theta(theta: np.ndarray, q: int) -> np.ndarray:
    """Build the lower-triangular relative Cholesky factor from lme4's ``theta``.

    Parameters
    ----------
    theta : numpy.ndarray
        Lower triangle of ``Lambda`` in column-major order, length ``q (q + 1) / 2``.
    q : int
        Number of random effects per group.

    Returns
    -------
    numpy.ndarray
        The ``(q, q)`` lower-triangular matrix ``Lambda``.
    """
    lam = np.zeros((q, q))
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))  # column-major, as lme4 stores theta
    lam[rows[order], cols[order]] = theta
    return lam


def theta_from_relative_cov(rel_cov: np.ndarray) -> np.ndarray:
    """Return lme4's ``theta`` for a relative covariance ``G / sigma^2``.

    A Cholesky factorisation that tolerates positive semi-definite input: a pivot that is
    zero or slightly negative (a boundary fit) gives a zero diagonal element, as lme4's bounded
    optimiser would.

    Parameters
    ----------
    rel_cov : numpy.ndarray
        Symmetric ``(q, q)`` matrix ``G / sigma^2``.

    Returns
    -------
    numpy.ndarray
        ``theta`` (column-major lower triangle of ``Lambda``, non-negative diagonal).
    """
    c = np.asarray(rel_cov, dtype=float)
    q = c.shape[0]
    lam = np.zeros((q, q))
    for j in range(q):
        pivot = c[j, j] - lam[j, :j] @ lam[j, :j]
        lam[j, j] = np.sqrt(pivot) if pivot > 0 else 0.0
        for i in range(j + 1, q):
            off = c[i, j] - lam[i, :j] @ lam[j, :j]
            lam[i, j] = off / lam[j, j] if lam[j, j] > 0 else 0.0
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    return lam[rows[order], cols[order]]


@dataclass(frozen=True)
class DevianceTerms:
    """Pieces of the deviance at one value of ``theta`` (``sigma`` not yet chosen).

    Attributes
    ----------
    logdet_m : float
        ``sum_i log|M_i|`` (lme4's ``ldL2``).
    logdet_xwx : float
        ``log|X' (I + Z Lambda Lambda' Z')^{-1} X|`` (lme4's ``2 log|RX|``).
    pwrss : float
        Penalised weighted residual sum of squares at the GLS ``beta``.
    beta : numpy.ndarray
        Generalised least squares estimate of the fixed effects.
    xwx_inv : numpy.ndarray
        ``(X' (I + Z Lambda Lambda' Z')^{-1} X)^{-1}``; the fixed-effect covariance is
        ``sigma^2`` times this.
    """

    logdet_m: float
    logdet_xwx: float
    pwrss: float
    beta: np.ndarray
    xwx_inv: np.ndarray


def _terms_from(logdet: float, xwx: np.ndarray, xwy: np.ndarray, ywy: float) -> DevianceTerms:
    """GLS solution and deviance pieces from the weighted cross products."""
    xwx = 0.5 * (xwx + xwx.T)
    chol_x = np.linalg.cholesky(xwx)
    logdet_xwx = 2.0 * float(np.log(np.diag(chol_x)).sum())
    xwx_inv = np.linalg.inv(xwx)
    xwx_inv = 0.5 * (xwx_inv + xwx_inv.T)
    beta = np.linalg.solve(xwx, xwy)
    pwrss = ywy - float(beta @ xwy)
    return DevianceTerms(logdet, logdet_xwx, pwrss, beta, xwx_inv)


@dataclass(frozen=True)
class DevianceDerivatives:
    """The deviance pieces at ``theta`` and their exact first derivatives in ``theta``.

    With ``V = I + Z Lambda Lambda' Z'`` (relative to ``sigma^2``), ``W = V^{-1}`` and
    ``dV / dtheta_k = Z D_k Z'``: ``d log|V| = tr(W dV)``,
    ``d pwrss = -r'W dV W r`` (``beta`` at its GLS value, so its own change does not count)
    and ``d(X'WX) = -X'W dV W X``.

    Attributes
    ----------
    terms : DevianceTerms
        The pieces themselves.
    logdet_m : numpy.ndarray
        ``d log|V| / dtheta``, shape ``(n_theta,)``.
    pwrss : numpy.ndarray
        ``d pwrss / dtheta``, shape ``(n_theta,)``.
    logdet_xwx : numpy.ndarray
        ``d log|X'WX| / dtheta = tr((X'WX)^{-1} d(X'WX))``, shape ``(n_theta,)``.
    xwx : numpy.ndarray or None
        ``d (X'WX) / dtheta``, shape ``(n_theta, p, p)``, when asked for (``covariance=True``).
    """

    terms: DevianceTerms
    logdet_m: np.ndarray
    pwrss: np.ndarray
    logdet_xwx: np.ndarray
    xwx: np.ndarray | None = None


class GroupedCrossproducts:
    """Per-group cross products of one data set, and the deviance computed from them.

    Parameters
    ----------
    y : numpy.ndarray
        Response, shape ``(n,)``.
    x : numpy.ndarray
        Fixed-effect design, shape ``(n, p)``.
    z : numpy.ndarray
        Random-effect design, shape ``(n, q)``.
    group_codes : numpy.ndarray
        Integer group code of each row, shape ``(n,)``.
    """

    def __init__(
        self, y: np.ndarray, x: np.ndarray, z: np.ndarray, group_codes: np.ndarray
    ) -> None:
        y = np.asarray(y, dtype=float)
        x = np.asarray(x, dtype=float)
        z = np.asarray(z, dtype=float)
        codes = np.asarray(group_codes)
        order = np.argsort(codes, kind="stable")
        y, x, z, codes = y[order], x[order], z[order], codes[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        self.n_obs = int(y.shape[0])
        self.p = int(x.shape[1])
        self.q = int(z.shape[1])
        self.n_groups = int(starts.shape[0])
        ztz = np.add.reduceat(z[:, :, None] * z[:, None, :], starts, axis=0)
        ztx = np.add.reduceat(z[:, :, None] * x[:, None, :], starts, axis=0)
        zty = np.add.reduceat(z * y[:, None], starts, axis=0)
        self.xtx = x.T @ x
        self.xty = x.T @ y
        self.yty = float(y @ y)
        self.n_theta = self.q * (self.q + 1) // 2
        rows, cols = np.tril_indices(self.q)
        order_t = np.lexsort((rows, cols))
        self.theta_diagonal = rows[order_t] == cols[order_t]
        """Boolean mask: which elements of ``theta`` are diagonal (bounded below by 0)."""
        self._theta_at = (rows[order_t], cols[order_t])  # position of theta_k in Lambda
        self.cache: dict[tuple, object] = {}
        """Results computed once per ``theta`` by the optimiser's checks (see lmm_optim)."""
        # component-major, for the batched block algebra (pipeline.lmm.blocks); the only copy
        # kept, so a partition's blocks held by a cluster worker take half the memory
        self._gram = np.ascontiguousarray(ztz.transpose(1, 2, 0))  # (q, q, g)
        augmented = np.concatenate([ztx, zty[:, :, None]], axis=2)
        self._aug = np.ascontiguousarray(augmented.transpose(1, 0, 2))  # (q, g, p + 1)

    def columns(self, which: tuple[int, ...]) -> GroupedCrossproducts:
        """Return the summaries of the design made of some of these columns, without the rows.

        Every cross product of the reduced design ``X[:, which]`` is a slice of this one's
        (the groups' ``Z_i'Z_i`` are shared, not copied).

        Parameters
        ----------
        which : tuple of int
            Positions of the reduced design's columns in this design, in its order.

        Returns
        -------
        GroupedCrossproducts
        """
        if type(self) is not GroupedCrossproducts:
            raise TypeError("only the patients' own cross products can be sliced by column")
        keep = np.asarray(which, dtype=int)
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.p = int(keep.size)
        out.xtx = self.xtx[np.ix_(keep, keep)]
        out.xty = self.xty[keep]
        out.cache = {}
        out._aug = np.ascontiguousarray(self._aug[:, :, np.r_[keep, self.p]])
        return out

    @property
    def ztz(self) -> np.ndarray:
        """``Z_i'Z_i`` of every group, ``(g, q, q)`` (a view)."""
        return self._gram.transpose(2, 0, 1)

    @property
    def ztx(self) -> np.ndarray:
        """``Z_i'X_i`` of every group, ``(g, q, p)`` (a view)."""
        return self._aug[:, :, : self.p].transpose(1, 0, 2)

    @property
    def zty(self) -> np.ndarray:
        """``Z_i'y_i`` of every group, ``(g, q)`` (a view)."""
        return self._aug[:, :, self.p].T

    def weighted_crossproducts(
        self, theta: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Return ``log|V / sigma^2|`` and ``X'WX``, ``X'Wy``, ``y'Wy`` with ``W = sigma^2 V^{-1}``.

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.

        Returns
        -------
        tuple
            ``(logdet, xwx, xwy, ywy)``.
        """
        lam = lambda_from_theta(np.asarray(theta, dtype=float), self.q)
        logdet, h = block_weights(self._gram, lam)
        return self._weighted(logdet, apply_blocks(h, self._aug))

    def _weighted(
        self, logdet: float, h_aug: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Subtract ``sum_i [X_i y_i]' Z_i H_i Z_i' [X_i y_i]`` from the pooled cross products.

        ``h_aug`` is ``H_i [Z_i'X_i, Z_i'y_i]`` (Woodbury: ``W_i = I - Z_i H_i Z_i'``).
        """
        p = self.p
        s = sum(self._aug[j].T @ h_aug[j] for j in range(self.q))
        return logdet, self.xtx - s[:p, :p], self.xty - s[:p, p], self.yty - float(s[p, p])

    def derivatives(self, theta: np.ndarray, covariance: bool = False) -> DevianceDerivatives:
        """Return the deviance pieces at ``theta`` with their exact derivatives.

        Per group, with ``H_i = Lambda M_i^{-1} Lambda'`` and ``K_i = I - G_i H_i``
        (``Z_i' W_i = K_i Z_i'``): ``Z_i'W_iZ_i = K_i G_i``, ``Z_i'W_iX_i = K_i Z_i'X_i`` and
        ``Z_i'W_i r_i = K_i Z_i'(y_i - X_i beta)``; every derivative is a sum over groups of
        these ``q``-row blocks (:meth:`_assemble`).

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.
        covariance : bool, default False
            Also return ``d(X'WX)`` (for the Jacobian of the fixed-effect covariance).

        Returns
        -------
        DevianceDerivatives
            The pieces and their gradients.
        """
        lam = lambda_from_theta(np.asarray(theta, dtype=float), self.q)
        logdet, h = block_weights(self._gram, lam)
        h_aug = apply_blocks(h, self._aug)
        terms = _terms_from(*self._weighted(logdet, h_aug))
        k_aug = self._aug - apply_blocks(self._gram, h_aug)  # K_i [Z_i'X_i, Z_i'y_i]
        b = k_aug[:, :, : self.p]
        c = k_aug[:, :, self.p] - b @ terms.beta
        a_sum = self._gram.sum(axis=2) - sandwich_sum(self._gram, h)
        return self._assemble(lam, terms, a_sum, b, sum_blocks(c, c), covariance)

    def _assemble(
        self,
        lam: np.ndarray,
        terms: DevianceTerms,
        a_sum: np.ndarray,
        b: np.ndarray,
        cc: np.ndarray,
        covariance: bool,
    ) -> DevianceDerivatives:
        """Assemble the derivatives in the patient ``theta`` from the per-group blocks.

        ``dV / dtheta_k = Z D_k Z'`` with ``D_k = E_k Lambda' + Lambda E_k'`` (``E_k`` the unit
        matrix at theta_k's place ``(r, c)`` in ``Lambda``), so for a symmetric ``S``,
        ``tr(D_k S) = 2 (S Lambda)[r, c]``: with ``S`` = ``sum_i Z_i'W_iZ_i``,
        ``sum_i B_i C^{-1} B_i'`` and ``sum_i c_i c_i'`` for ``log|V|``, ``log|C|`` and
        ``pwrss``. And ``sum_i B_i' D_k B_i = Q_k + Q_k'`` with
        ``Q_k = sum_i B_i[r]' (Lambda' B_i)[c]``.
        """
        rows, cols = self._theta_at
        b_cinv = b @ terms.xwx_inv
        d_xwx = None
        if covariance:
            lam_b = np.einsum("mc,mgp->cgp", lam, b)  # rows of Lambda' B_i
            d_xwx = np.empty((rows.size, self.p, self.p))
            for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
                qk = b[r].T @ lam_b[c]
                d_xwx[k] = -(qk + qk.T)
        return DevianceDerivatives(
            terms=terms,
            logdet_m=2.0 * (a_sum @ lam)[rows, cols],
            pwrss=-2.0 * (cc @ lam)[rows, cols],
            logdet_xwx=-2.0 * (sum_blocks(b_cinv, b) @ lam)[rows, cols],
            xwx=d_xwx,
        )

    def criterion_and_gradient(self, theta: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
        """Return lme4's profiled criterion (:meth:`profiled_deviance`) and its exact gradient.

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.
        reml : bool
            REML criterion if true, ML deviance otherwise.

        Returns
        -------
        tuple
            ``(criterion, gradient)``; ``(inf, 0)`` where the criterion is not finite.
        """
        theta = np.asarray(theta, dtype=float)
        # the optimisers ask again for the point they ended on (L-BFGS-B's optimum is the
        # first point of the Newton refinement): the last evaluation is remembered
        key = (theta.tobytes(), reml)
        last = self.cache.get(("last evaluation",))
        if last is not None and last[0] == key:
            return last[1], last[2].copy()
        crit, grad = self._criterion_and_gradient(theta, reml)
        self.cache[("last evaluation",)] = (key, crit, grad.copy())
        return crit, grad

    def _criterion_and_gradient(self, theta: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
        try:
            d = self.derivatives(theta)
        except np.linalg.LinAlgError:
            return float("inf"), np.zeros_like(theta)
        t = d.terms
        dof = self.n_obs - self.p if reml else self.n_obs
        if not t.pwrss > 0:
            return float("inf"), np.zeros_like(theta)
        crit = t.logdet_m + dof * (1.0 + _LOG_2PI + np.log(t.pwrss / dof))
        grad = d.logdet_m + dof / t.pwrss * d.pwrss
        if reml:
            crit += t.logdet_xwx
            grad = grad + d.logdet_xwx
        return float(crit), grad

    def deviance_gradient(self, varpar: np.ndarray, reml: bool) -> np.ndarray:
        """Return the exact gradient of :meth:`deviance` (``sigma`` free) in ``(theta, sigma)``.

        Parameters
        ----------
        varpar : numpy.ndarray
            ``theta`` followed by the residual standard deviation ``sigma``.
        reml : bool
            REML deviance if true, ML deviance otherwise.

        Returns
        -------
        numpy.ndarray
            Gradient, same length as ``varpar``.
        """
        varpar = np.asarray(varpar, dtype=float)
        sigma = float(varpar[-1])
        d = self.derivatives(varpar[:-1])
        grad = d.logdet_m + d.pwrss / sigma**2
        dof = self.n_obs
        if reml:
            grad = grad + d.logdet_xwx
            dof -= self.p
        return np.r_[grad, -2.0 * d.terms.pwrss / sigma**3 + 2.0 * dof / sigma]

    def vcov_jacobian(self, varpar: np.ndarray) -> np.ndarray:
        """Return the exact derivative of :meth:`vcov_beta` in ``(theta, sigma)``.

        ``d(sigma^2 C^{-1}) = -sigma^2 C^{-1} dC C^{-1}`` with ``C = X'WX``, and
        ``2 sigma C^{-1}`` for ``sigma``.

        Parameters
        ----------
        varpar : numpy.ndarray
            ``theta`` followed by ``sigma``.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(varpar), p, p)``.
        """
        varpar = np.asarray(varpar, dtype=float)
        sigma = float(varpar[-1])
        d = self.derivatives(varpar[:-1], covariance=True)
        c_inv = d.terms.xwx_inv
        jac_theta = -(sigma**2) * (c_inv @ d.xwx @ c_inv)
        return np.concatenate([jac_theta, (2.0 * sigma * c_inv)[None]], axis=0)

    def terms(self, theta: np.ndarray) -> DevianceTerms:
        """Evaluate the ``sigma``-free pieces of the deviance at ``theta``.

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.

        Returns
        -------
        DevianceTerms
            Log-determinants, penalised RSS, GLS ``beta`` and ``(X'W X)^{-1}``.
        """
        return _terms_from(*self.weighted_crossproducts(theta))

    def conditional_modes(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Return the random effects' conditional modes (BLUPs), one row per group.

        ``b_i = Lambda M_i^{-1} Lambda' Z_i' (y_i - X_i beta)``, as ``ranef()`` in lme4.

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.
        beta : numpy.ndarray
            Fixed effects.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_groups, q)``, groups in ascending code order.
        """
        lam = lambda_from_theta(np.asarray(theta, dtype=float), self.q)
        m = np.eye(self.q) + lam.T @ self.ztz @ lam
        resid = self.zty - self.ztx @ np.asarray(beta, dtype=float)  # Z_i'(y_i - X_i beta)
        u = np.linalg.solve(m, (resid @ lam)[:, :, None])[:, :, 0]
        return u @ lam.T

    def deviance(self, varpar: np.ndarray, reml: bool) -> float:
        """Return the (RE)ML deviance at ``varpar = (theta, sigma)``, ``beta`` profiled out.

        This is lmerTest's ``devfun_vp``: ``sigma`` is a free parameter, not profiled.

        Parameters
        ----------
        varpar : numpy.ndarray
            ``theta`` followed by the residual standard deviation ``sigma``.
        reml : bool
            REML deviance if true, ML deviance otherwise.

        Returns
        -------
        float
            -2 times the (restricted) log-likelihood.
        """
        varpar = np.asarray(varpar, dtype=float)
        t = self.terms(varpar[:-1])
        sigma2 = float(varpar[-1]) ** 2
        dev = t.logdet_m + t.pwrss / sigma2 + self.n_obs * (_LOG_2PI + np.log(sigma2))
        if reml:
            dev += t.logdet_xwx - self.p * (_LOG_2PI + np.log(sigma2))
        return float(dev)

    def sigma_hat(self, theta: np.ndarray, reml: bool) -> float:
        """Return the profiled residual standard deviation at ``theta``.

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.
        reml : bool
            Divide the penalised RSS by ``n - p`` (REML) or ``n`` (ML).

        Returns
        -------
        float
            ``sqrt(pwrss / (n - p))`` or ``sqrt(pwrss / n)``.
        """
        t = self.terms(theta)
        dof = self.n_obs - self.p if reml else self.n_obs
        return float(np.sqrt(t.pwrss / dof))

    def profiled_deviance(self, theta: np.ndarray, reml: bool) -> float:
        """Return lme4's objective: the deviance with ``sigma`` (and ``beta``) profiled out.

        Parameters
        ----------
        theta : numpy.ndarray
            lme4's relative Cholesky parameters.
        reml : bool
            REML criterion if true, ML deviance otherwise.

        Returns
        -------
        float
            The REML criterion or ML deviance as ``lme4`` reports it. ``inf`` where the
            matrices are not positive definite.
        """
        try:
            t = self.terms(theta)
        except np.linalg.LinAlgError:
            return float("inf")
        dof = self.n_obs - self.p if reml else self.n_obs
        if not t.pwrss > 0:
            return float("inf")
        dev = t.logdet_m + dof * (1.0 + _LOG_2PI + np.log(t.pwrss / dof))
        if reml:
            dev += t.logdet_xwx
        return float(dev)

    def vcov_beta(self, varpar: np.ndarray) -> np.ndarray:
        """Return the fixed-effect covariance ``sigma^2 (X'W X)^{-1}`` at ``(theta, sigma)``.

        Parameters
        ----------
        varpar : numpy.ndarray
            ``theta`` followed by ``sigma``.

        Returns
        -------
        numpy.ndarray
            ``(p, p)`` covariance matrix ``(X' V^{-1} X)^{-1}``.
        """
        varpar = np.asarray(varpar, dtype=float)
        return float(varpar[-1]) ** 2 * self.terms(varpar[:-1]).xwx_inv


def _default_steps(x: np.ndarray, rel: float, zero_step: float) -> np.ndarray:
    """Return initial steps as numDeriv chooses them: ``rel * |x|``, or a fixed step near 0."""
    x = np.abs(np.asarray(x, dtype=float))
    zero_tol = np.sqrt(np.finfo(float).eps / 7e-7)
    return np.where(x < zero_tol, zero_step, rel * x)


def _richardson(estimates: list[np.ndarray]) -> np.ndarray:
    """Richardson-extrapolate estimates whose error is a series in ``h^2`` (steps halved)."""
    table = [np.asarray(e, dtype=float) for e in estimates]
    for m in range(1, len(table)):
        factor = 4.0**m
        table = [(factor * table[k + 1] - table[k]) / (factor - 1.0) for k in range(len(table) - 1)]
    return table[0]


def jacobian_richardson(
    fun: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    rel_step: float = 1e-4,
    zero_step: float = 1e-4,
    n_steps: int = 4,
) -> np.ndarray:
    """Central-difference Jacobian with Richardson extrapolation (as ``numDeriv::jacobian``).

    Parameters
    ----------
    fun : callable
        Maps a vector to an array of any shape.
    x : numpy.ndarray
        Point of differentiation.
    rel_step : float, default 1e-4
        Initial step relative to ``|x_k|``.
    zero_step : float, default 1e-4
        Initial step where ``x_k`` is (nearly) zero.
    n_steps : int, default 4
        Number of step halvings combined by Richardson extrapolation.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(len(x),) + fun(x).shape``: the derivative with respect to each
        coordinate of ``x``.
    """
    x = np.asarray(x, dtype=float)
    h0 = _default_steps(x, rel_step, zero_step)
    out = []
    for k in range(x.size):
        estimates = []
        for j in range(n_steps):
            e = np.zeros_like(x)
            e[k] = h0[k] / 2.0**j
            estimates.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2.0 * e[k]))
        out.append(_richardson(estimates))
    return np.stack(out)


def hessian_richardson(
    fun: Callable[[np.ndarray], float],
    x: np.ndarray,
    rel_step: float = 0.1,
    zero_step: float = 1e-4,
    n_steps: int = 4,
) -> np.ndarray:
    """Hessian of a scalar function by central differences with Richardson extrapolation.

    The default steps follow ``numDeriv::hessian`` (which lmerTest uses): 10 % of each
    coordinate, halved ``n_steps - 1`` times, the estimates extrapolated to step 0.

    Parameters
    ----------
    fun : callable
        Scalar function of a vector.
    x : numpy.ndarray
        Point of differentiation.
    rel_step : float, default 0.1
        Initial step relative to ``|x_k|``.
    zero_step : float, default 1e-4
        Initial step where ``x_k`` is (nearly) zero.
    n_steps : int, default 4
        Number of step halvings combined by Richardson extrapolation.

    Returns
    -------
    numpy.ndarray
        Symmetric ``(len(x), len(x))`` Hessian.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    h0 = _default_steps(x, rel_step, zero_step)
    f0 = float(fun(x))
    hess = np.zeros((n, n))
    for i in range(n):
        for k in range(i, n):
            estimates = []
            for j in range(n_steps):
                hi = np.zeros(n)
                hk = np.zeros(n)
                hi[i] = h0[i] / 2.0**j
                hk[k] = h0[k] / 2.0**j
                if i == k:
                    d2 = (fun(x + hi) - 2.0 * f0 + fun(x - hi)) / hi[i] ** 2
                else:
                    d2 = (
                        fun(x + hi + hk) - fun(x + hi - hk) - fun(x - hi + hk) + fun(x - hi - hk)
                    ) / (4.0 * hi[i] * hk[k])
                estimates.append(np.asarray(d2))
            hess[i, k] = hess[k, i] = float(_richardson(estimates))
    return hess


class NestedCrossproducts(GroupedCrossproducts):
    """Cross products for patients nested in sites: ``(1 | site) + (1 [+ t] | patient)``.

    ``theta`` is the patient ``theta`` (as :class:`GroupedCrossproducts`) followed by the
    site's relative standard deviation ``theta_site``. With ``D_i = I + Z_i Lambda Lambda'
    Z_i'`` for patient ``i`` and ``V_s / sigma^2 = D_s + theta_site^2 1 1'`` for site ``s``
    (``D_s`` block-diagonal over the site's patients), the Sherman-Morrison identity gives
    every quadratic form and the matrix determinant lemma the log-determinant from per-patient
    ``q x q`` solves plus one scalar per site::

        (V_s / sigma^2)^{-1} = D_s^{-1} - theta^2 D_s^{-1} 1 1' D_s^{-1} / (1 + theta^2 k_s)
        log|V_s / sigma^2|   = sum_i log|M_i| + log(1 + theta^2 k_s),   k_s = 1' D_s^{-1} 1

    This is the model lme4 fits as ``(1 | site) + (1 + t | patient)`` when patient codes are
    unique across sites.

    Parameters
    ----------
    y, x, z, group_codes : numpy.ndarray
        As :class:`GroupedCrossproducts`.
    site_codes : numpy.ndarray
        Integer site code of each row; every group must lie within one site.
    """

    def __init__(
        self,
        y: np.ndarray,
        x: np.ndarray,
        z: np.ndarray,
        group_codes: np.ndarray,
        site_codes: np.ndarray,
    ) -> None:
        super().__init__(y, x, z, group_codes)
        codes = np.asarray(group_codes)
        sites = np.asarray(site_codes)
        order = np.argsort(codes, kind="stable")
        codes, sites = codes[order], sites[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        y = np.asarray(y, dtype=float)[order]
        x = np.asarray(x, dtype=float)[order]
        z = np.asarray(z, dtype=float)[order]
        self.site_of_group = sites[starts]
        if np.any(np.minimum.reduceat(sites, starts) != np.maximum.reduceat(sites, starts)):
            raise ValueError("every group must lie within one site")
        self.n_sites = int(self.site_of_group.max()) + 1
        self.zt1 = np.add.reduceat(z, starts, axis=0)  # Z_i' 1, (g, q)
        self.x1 = np.add.reduceat(x, starts, axis=0)  # X_i' 1, (g, p)
        self.y1 = np.add.reduceat(y, starts)  # 1' y_i, (g,)
        self.n_i = np.diff(np.r_[starts, len(y)]).astype(float)
        self.n_theta += 1
        self.theta_diagonal = np.r_[self.theta_diagonal, True]
        self._zt1 = np.ascontiguousarray(self.zt1.T)  # (q, g)
        self._ones_aug = np.c_[self.x1, self.y1]  # 1'[X_i y_i], (g, p + 1)

    def _site_sums(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``H_i Z_i'1`` and, summed by site, ``k = 1'D^{-1}1`` and ``1'D^{-1}[X y]``.

        ``1'D_i^{-1} = 1' - (Z_i'1)' H_i Z_i'`` (Woodbury), so per patient
        ``k_i = n_i - (Z_i'1)' H_i (Z_i'1)`` and
        ``1'D_i^{-1}[X_i y_i] = 1'[X_i y_i] - (H_i Z_i'1)' [Z_i'X_i, Z_i'y_i]``.
        """
        h1 = apply_blocks(h, self._zt1)  # (q, g)
        k_i = self.n_i - (self._zt1 * h1).sum(axis=0)
        ones_aug = self._ones_aug - sum(h1[j][:, None] * self._aug[j] for j in range(self.q))
        k = np.bincount(self.site_of_group, k_i, self.n_sites)
        site_aug = np.zeros((self.n_sites, self.p + 1))
        np.add.at(site_aug, self.site_of_group, ones_aug)
        return h1, k, site_aug

    def _site_pieces(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per-patient ``D_i^{-1}`` forms with the ones vector, summed by site."""
        lam = lambda_from_theta(np.asarray(theta[:-1], dtype=float), self.q)
        _, h = block_weights(self._gram, lam)
        _, k, site_aug = self._site_sums(h)
        return k, site_aug[:, : self.p], site_aug[:, self.p]

    def weighted_crossproducts(
        self, theta: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Weighted cross products of the nested model at ``(theta_patient, theta_site)``.

        Parameters
        ----------
        theta : numpy.ndarray
            Patient ``theta`` followed by the site's relative standard deviation.

        Returns
        -------
        tuple
            ``(logdet, xwx, xwy, ywy)`` as :meth:`GroupedCrossproducts.weighted_crossproducts`.
        """
        theta = np.asarray(theta, dtype=float)
        lam = lambda_from_theta(theta[:-1], self.q)
        logdet, h = block_weights(self._gram, lam)
        _, k, site_aug = self._site_sums(h)
        return self._nested(theta, logdet, apply_blocks(h, self._aug), k, site_aug)

    def _nested(
        self,
        theta: np.ndarray,
        logdet: float,
        h_aug: np.ndarray,
        k: np.ndarray,
        site_aug: np.ndarray,
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Patient-level cross products corrected by Sherman-Morrison for each site."""
        logdet, xwx, xwy, ywy = self._weighted(logdet, h_aug)
        t2 = float(theta[-1]) ** 2
        shrink = t2 / (1.0 + t2 * k)  # (S,)
        s = (site_aug.T * shrink) @ site_aug
        p = self.p
        return (
            logdet + float(np.log1p(t2 * k).sum()),
            xwx - s[:p, :p],
            xwy - s[:p, p],
            ywy - float(s[p, p]),
        )

    def derivatives(self, theta: np.ndarray, covariance: bool = False) -> DevianceDerivatives:
        """Return the deviance pieces with their exact derivatives in the patient and site thetas.

        With ``W_s = D_s^{-1} - shrink_s u_s u_s'`` (``u_s = D_s^{-1} 1``), the patient blocks
        of :meth:`GroupedCrossproducts.derivatives` gain the site terms:
        ``Z_i'W Z_i = K_i G_i - shrink v_i v_i'``, ``Z_i'W X = K_i Z_i'X_i - shrink v_i c_s'``
        and ``Z_i'W r = K_i Z_i'r_i - shrink rho_s v_i`` (``v_i = K_i Z_i'1``,
        ``c_s = 1'D_s^{-1}X_s``, ``rho_s = 1'D_s^{-1}r_s``). For the site's ``theta_t``,
        ``dV_s = 2 theta_t 1 1'`` and ``W_s 1 = u_s / (1 + theta_t^2 k_s)``.

        Parameters
        ----------
        theta : numpy.ndarray
            Patient ``theta`` followed by the site's relative standard deviation.
        covariance : bool, default False
            Also return ``d(X'WX)``.

        Returns
        -------
        DevianceDerivatives
            The pieces and their gradients (the site's last).
        """
        theta = np.asarray(theta, dtype=float)
        lam = lambda_from_theta(theta[:-1], self.q)
        logdet, h = block_weights(self._gram, lam)
        h_aug = apply_blocks(h, self._aug)
        h1, k, site_aug = self._site_sums(h)
        terms = _terms_from(*self._nested(theta, logdet, h_aug, k, site_aug))
        beta, p, ts = terms.beta, self.p, float(theta[-1])
        t2 = ts**2
        scale = 1.0 / (1.0 + t2 * k)  # (S,)
        shrink = t2 * scale
        cx = site_aug[:, :p]
        rho = site_aug[:, p] - cx @ beta  # 1'D_s^{-1} r_s

        k_aug = self._aug - apply_blocks(self._gram, h_aug)
        v = self._zt1 - apply_blocks(self._gram, h1)  # K_i Z_i'1, (q, g)
        sv = shrink[self.site_of_group] * v  # (q, g)
        b = k_aug[:, :, :p] - sv[:, :, None] * cx[self.site_of_group][None]
        c = k_aug[:, :, p] - k_aug[:, :, :p] @ beta - rho[self.site_of_group] * sv
        a_sum = self._gram.sum(axis=2) - sandwich_sum(self._gram, h) - sum_blocks(sv, v)
        patient = self._assemble(lam, terms, a_sum, b, sum_blocks(c, c), covariance)

        w = cx * scale[:, None]  # X_s'W_s 1
        d_xwx_site = -2.0 * ts * (w.T @ w)
        return DevianceDerivatives(
            terms=terms,
            logdet_m=np.r_[patient.logdet_m, 2.0 * ts * float((k * scale).sum())],
            pwrss=np.r_[patient.pwrss, -2.0 * ts * float(((rho * scale) ** 2).sum())],
            logdet_xwx=np.r_[patient.logdet_xwx, float(np.sum(terms.xwx_inv * d_xwx_site))],
            xwx=(
                None
                if patient.xwx is None
                else np.concatenate([patient.xwx, d_xwx_site[None]], axis=0)
            ),
        )

    def site_modes(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Conditional modes of the site intercepts, ``theta^2 1'D^{-1} r / (1 + theta^2 k)``."""
        theta = np.asarray(theta, dtype=float)
        k, cx, cy = self._site_pieces(theta)
        t2 = float(theta[-1]) ** 2
        return t2 * (cy - cx @ np.asarray(beta, dtype=float)) / (1.0 + t2 * k)

    def conditional_modes(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Patient random effects given the site effects (see :meth:`site_modes`).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_groups, q)``, groups in ascending code order.
        """
        theta = np.asarray(theta, dtype=float)
        lam = lambda_from_theta(theta[:-1], self.q)
        m = np.eye(self.q) + lam.T @ self.ztz @ lam
        site = self.site_modes(theta, beta)[self.site_of_group]  # (g,)
        resid = self.zty - self.ztx @ np.asarray(beta, dtype=float) - site[:, None] * self.zt1
        u = np.linalg.solve(m, (resid @ lam)[:, :, None])[:, :, 0]
        return u @ lam.T
