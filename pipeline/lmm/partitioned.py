"""The profiled criterion of a data set split into partitions of whole groups, summed per call.

The row-level engine (:class:`pipeline.lmm.deviance.GroupedCrossproducts`) reduces every group
(patient) to ``G_i = Z_i'Z_i`` and ``a_i = Z_i'[X_i, y_i]``; the criterion, its exact
gradient and the Jacobian of ``X'WX`` are sums over groups of functions of these blocks, given
``theta`` (and, for the gradient, the GLS ``beta`` and ``(X'WX)^{-1}``). When the groups are
split into partitions, each partition keeps its own ``GroupedCrossproducts`` where it was built
(a worker of a cluster) and :class:`PartitionedCrossproducts` asks every partition for its
sums at each evaluation:

1. ``log|V|`` and ``[X y]'W[X y]`` (:func:`part_weighted`), summed: the GLS ``beta`` and
   ``(X'WX)^{-1}`` follow on the driver; each partition keeps its weights at this ``theta``
   for step 2;
2. for the gradient, ``sum_i Z_i'W_iZ_i``, ``sum_i c_i c_i'``, ``sum_i B_i C^{-1} B_i'`` and
   (Satterthwaite) ``sum_i B_i[r]'(Lambda'B_i)[c]`` (:func:`part_derivative_sums`), summed and
   assembled exactly as ``GroupedCrossproducts._assemble`` does.

The traffic per evaluation is ``O(p^2)`` numbers per partition, whatever the number of
patients. The optimiser and the inference run on the driver
(:func:`pipeline.lmm.sufficient.fit_crossproducts`), so the fit equals the row-level fit of the
same rows up to the order of the sums (~1e-12 relative).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pipeline.lmm.blocks import apply_blocks, block_weights, sandwich_sum, sum_blocks
from pipeline.lmm.deviance import (
    DevianceDerivatives,
    GroupedCrossproducts,
    _terms_from,
    lambda_from_theta,
)

__all__ = ["PartitionedCrossproducts", "part_derivative_sums", "part_totals", "part_weighted"]

_WEIGHTS_AT = "_partition_weights_at"  # attribute of a partition: its weights at the last theta

OnParts = Callable[..., list[Any]]
"""``on_parts(function, *args)`` returns ``[function(part, *args) for part in parts]``."""


def part_totals(gc: GroupedCrossproducts) -> tuple[int, int, np.ndarray, np.ndarray, float]:
    """``n_obs, n_groups, X'X, X'y, y'y`` of one partition."""
    return gc.n_obs, gc.n_groups, gc.xtx, gc.xty, gc.yty


def _weights_at(
    gc: GroupedCrossproducts, theta: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """``sum_i log|M_i|``, ``H_i`` and ``H_i [Z_i'X_i, Z_i'y_i]`` of one partition at ``theta``.

    The last result is kept on the partition (``_WEIGHTS_AT``, one ``theta``): the gradient's
    pass (:func:`part_derivative_sums`) follows the criterion's pass at the same ``theta`` and
    reuses them instead of computing them again.
    """
    key = theta.tobytes()
    kept = getattr(gc, _WEIGHTS_AT, None)
    if kept is not None and kept[0] == key:
        return kept[1], kept[2], kept[3]
    logdet, h = block_weights(gc._gram, lambda_from_theta(theta, gc.q))
    h_aug = apply_blocks(h, gc._aug)
    setattr(gc, _WEIGHTS_AT, (key, logdet, h, h_aug))
    return logdet, h, h_aug


def part_weighted(
    gc: GroupedCrossproducts, theta: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """One partition's ``log|V/sigma^2|``, ``X'WX``, ``X'Wy``, ``y'Wy`` at ``theta``.

    The same operations as ``gc.weighted_crossproducts(theta)``.
    """
    logdet, _, h_aug = _weights_at(gc, np.asarray(theta, dtype=float))
    return gc._weighted(logdet, h_aug)


def part_derivative_sums(
    gc: GroupedCrossproducts,
    theta: np.ndarray,
    beta: np.ndarray,
    xwx_inv: np.ndarray,
    covariance: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """One partition's sums behind the gradient (module docstring, step 2).

    Returns
    -------
    tuple
        ``sum Z'WZ`` (q, q), ``sum c c'`` (q, q), ``sum B C^-1 B'`` (q, q) and, with
        ``covariance``, ``Q_k`` per ``theta_k`` (n_theta, p, p), else None.
    """
    theta = np.asarray(theta, dtype=float)
    p, q = gc.p, gc.q
    _, h, h_aug = _weights_at(gc, theta)
    k_aug = gc._aug - apply_blocks(gc._gram, h_aug)
    b = k_aug[:, :, :p]
    c = k_aug[:, :, p] - b @ beta
    a_sum = gc._gram.sum(axis=2) - sandwich_sum(gc._gram, h)
    # bb[j][m] = sum_i B_i[j]' B_i[m] (p x p), one product of contiguous rows per pair; then
    # sum_i B_i[j] C^-1 B_i[m]' = sum(C^-1 * bb[j][m]) and Q_k = sum_m Lambda[m, c] bb[r][m]
    bb = [[np.empty(0)] * q for _ in range(q)]
    for j in range(q):
        for m in range(j, q):
            bb[j][m] = (k_aug[j].T @ k_aug[m])[:p, :p]
            bb[m][j] = bb[j][m].T
    bcb = np.array([[float(np.sum(xwx_inv * bb[j][m])) for m in range(q)] for j in range(q)])
    q_k = None
    if covariance:
        lam = lambda_from_theta(theta, q)
        rows, cols = gc._theta_at
        q_k = np.stack(
            [
                sum(lam[m, col] * bb[r][m] for m in range(q))
                for r, col in zip(rows, cols, strict=True)
            ]
        )
    return a_sum, sum_blocks(c, c), bcb, q_k


class PartitionedCrossproducts(GroupedCrossproducts):
    """The criterion of :class:`GroupedCrossproducts`, its groups held in partitions elsewhere.

    Only :meth:`weighted_crossproducts` and :meth:`derivatives` touch the groups; both ask the
    partitions through ``on_parts``. Every other method (criterion, deviance, gradients,
    Satterthwaite pieces) is inherited. Conditional modes are not available.

    Parameters
    ----------
    on_parts : callable
        ``on_parts(function, *args)`` applies ``function(part, *args)`` to every partition's
        ``GroupedCrossproducts`` and returns the results (in this process or on a cluster).
    q : int
        Random effects per group.
    """

    def __init__(self, on_parts: OnParts, q: int) -> None:
        self.on_parts = on_parts
        totals = on_parts(part_totals)
        self.n_obs = int(sum(t[0] for t in totals))
        self.n_groups = int(sum(t[1] for t in totals))
        self.xtx = sum(t[2] for t in totals)
        self.xty = sum(t[3] for t in totals)
        self.yty = float(sum(t[4] for t in totals))
        self.p = int(self.xtx.shape[0])
        self.q = q
        self.n_theta = q * (q + 1) // 2
        rows, cols = np.tril_indices(q)
        order_t = np.lexsort((rows, cols))
        self.theta_diagonal = rows[order_t] == cols[order_t]
        self._theta_at = (rows[order_t], cols[order_t])
        self.cache: dict[tuple, object] = {}
        self.evaluations = 0

    @staticmethod
    def _sum(parts: Sequence[tuple]) -> tuple:
        logdet = float(sum(p[0] for p in parts))
        return (
            logdet,
            sum(p[1] for p in parts),
            sum(p[2] for p in parts),
            float(sum(p[3] for p in parts)),
        )

    def weighted_crossproducts(
        self, theta: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """``log|V/sigma^2|``, ``X'WX``, ``X'Wy``, ``y'Wy`` summed over the partitions."""
        self.evaluations += 1
        return self._sum(self.on_parts(part_weighted, np.asarray(theta, dtype=float)))

    def derivatives(self, theta: np.ndarray, covariance: bool = False) -> DevianceDerivatives:
        """Return the deviance pieces and their exact derivatives, from the partitions' sums.

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
        theta = np.asarray(theta, dtype=float)
        terms = _terms_from(*self.weighted_crossproducts(theta))
        parts = self.on_parts(part_derivative_sums, theta, terms.beta, terms.xwx_inv, covariance)
        lam = lambda_from_theta(theta, self.q)
        rows, cols = self._theta_at
        a_sum = sum(p[0] for p in parts)
        cc = sum(p[1] for p in parts)
        bcb = sum(p[2] for p in parts)
        d_xwx = None
        if covariance:
            q_k = sum(p[3] for p in parts)
            d_xwx = -(q_k + q_k.transpose(0, 2, 1))
        return DevianceDerivatives(
            terms=replace(terms),
            logdet_m=2.0 * (a_sum @ lam)[rows, cols],
            pwrss=-2.0 * (cc @ lam)[rows, cols],
            logdet_xwx=-2.0 * (bcb @ lam)[rows, cols],
            xwx=d_xwx,
        )

    def conditional_modes(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Not available here: each partition holds its own groups.

        Raises
        ------
        ValueError
            Always.
        """
        raise ValueError("conditional modes stay in the partitions that hold the groups")
