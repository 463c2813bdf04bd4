"""Batched algebra of the per-group ``q x q`` blocks of a linear mixed model.

Every group (patient) contributes a small symmetric block ``M_i = I + Lambda' G_i Lambda``
(``G_i = Z_i'Z_i``, ``q`` = 1 or 2 random effects per group). The deviance and its derivatives
need, per group, ``log|M_i|`` and ``H_i = Lambda M_i^{-1} Lambda'``. Calling ``np.linalg`` on a
stack of thousands of 2 x 2 matrices spends its time in per-matrix overhead, so for ``q <= 2``
the inverse is written out (``[[d, -b], [-b, a]] / (ad - b^2)``) and evaluated as a handful of
vector operations over the groups; larger ``q`` goes through ``np.linalg``.

Layout: "component-major". A stack of blocks is an array of shape ``(q, q, n_groups)`` (entry
``[j, k]`` is a contiguous vector over the groups), and a stack of ``q x m`` blocks (e.g.
``Z_i'X_i``) has shape ``(q, n_groups, m)``, so that each row ``j`` is a contiguous
``(n_groups, m)`` matrix ready for BLAS.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_blocks", "block_weights", "multiply_blocks", "sandwich_sum", "sum_blocks"]


def block_weights(gram: np.ndarray, lam: np.ndarray) -> tuple[float, np.ndarray]:
    """Return ``sum_i log|M_i|`` and ``H_i = Lambda M_i^{-1} Lambda'`` for every group.

    Parameters
    ----------
    gram : numpy.ndarray
        ``G_i = Z_i'Z_i`` in component-major layout, shape ``(q, q, n_groups)``.
    lam : numpy.ndarray
        Relative Cholesky factor ``Lambda``, shape ``(q, q)``, lower triangular.

    Returns
    -------
    logdet : float
        ``sum_i log|I + Lambda' G_i Lambda|``.
    h : numpy.ndarray
        ``Lambda M_i^{-1} Lambda'``, shape ``(q, q, n_groups)``, symmetric in its first two axes.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block is not positive definite (only possible with non-finite input).
    """
    q = lam.shape[0]
    if q == 1:
        l2 = lam[0, 0] ** 2
        m = 1.0 + l2 * gram[0, 0]
        if not np.all(m > 0):
            raise np.linalg.LinAlgError("a variance block is not positive definite")
        return float(np.log(m).sum()), (l2 / m)[None, None, :]
    if q == 2:
        a, b, c = lam[0, 0], lam[1, 0], lam[1, 1]
        g00, g01, g11 = gram[0, 0], gram[0, 1], gram[1, 1]
        m00 = 1.0 + a * a * g00 + 2.0 * a * b * g01 + b * b * g11
        m01 = c * (a * g01 + b * g11)
        m11 = 1.0 + c * c * g11
        det = m00 * m11 - m01 * m01
        if not np.all(det > 0):
            raise np.linalg.LinAlgError("a variance block is not positive definite")
        i00, i01, i11 = m11 / det, -m01 / det, m00 / det
        u = b * i00 + c * i01  # (Lambda M^{-1})[1, 0]
        h = np.empty((2, 2, gram.shape[2]))
        h[0, 0] = a * a * i00
        h[0, 1] = h[1, 0] = a * u
        h[1, 1] = b * u + c * (b * i01 + c * i11)
        return float(np.log(det).sum()), h
    stacked = np.moveaxis(gram, 2, 0)  # (g, q, q)
    m = np.eye(q) + lam.T @ stacked @ lam
    chol = np.linalg.cholesky(m)
    logdet = 2.0 * float(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum())
    h = lam @ np.linalg.inv(m) @ lam.T
    return logdet, np.ascontiguousarray(np.moveaxis(h, 0, 2))


def apply_blocks(blocks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Multiply every group's ``q x q`` block into its ``q x m`` block: ``B_i R_i``.

    Parameters
    ----------
    blocks : numpy.ndarray
        Shape ``(q, q, n_groups)``.
    rows : numpy.ndarray
        Shape ``(q, n_groups, m)`` or ``(q, n_groups)``.

    Returns
    -------
    numpy.ndarray
        Same shape as ``rows``.
    """
    q = blocks.shape[0]
    extra = (slice(None),) + (None,) * (rows.ndim - 2)
    out = np.empty(rows.shape)
    # products written into preallocated arrays: the same operations in the same order as
    # ``out[j] = B[j, 0] * R[0] + ...``, without a fresh (page-faulting) temporary per term
    product = np.empty(rows.shape[1:]) if q > 1 else None
    for j in range(q):
        np.multiply(blocks[j, 0][extra], rows[0], out=out[j])
        for k in range(1, q):
            np.multiply(blocks[j, k][extra], rows[k], out=product)
            out[j] += product
    return out


def multiply_blocks(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Per-group product of two stacks of ``q x q`` blocks.

    Parameters
    ----------
    left, right : numpy.ndarray
        Shape ``(q, q, n_groups)``.

    Returns
    -------
    numpy.ndarray
        ``left_i @ right_i``, shape ``(q, q, n_groups)``.
    """
    q = left.shape[0]
    out = np.empty(left.shape)
    for j in range(q):
        for m in range(q):
            out[j, m] = left[j, 0] * right[0, m]
            for k in range(1, q):
                out[j, m] += left[j, k] * right[k, m]
    return out


def sandwich_sum(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Return ``sum_i A_i B_i A_i`` over the groups for two stacks of ``q x q`` blocks.

    Parameters
    ----------
    outer, inner : numpy.ndarray
        ``A`` and ``B``, shape ``(q, q, n_groups)``.

    Returns
    -------
    numpy.ndarray
        ``(q, q)`` matrix.
    """
    q = outer.shape[0]
    ab = multiply_blocks(outer, inner)
    out = np.empty((q, q))
    for j in range(q):
        for m in range(q):
            out[j, m] = sum(float(ab[j, k] @ outer[k, m]) for k in range(q))
    return out


def sum_blocks(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Return ``sum_i L_i R_i'`` for two stacks of ``q x m`` blocks.

    Parameters
    ----------
    left, right : numpy.ndarray
        Shape ``(q, n_groups, m)`` or ``(q, n_groups)``.

    Returns
    -------
    numpy.ndarray
        ``(q, q)`` matrix.
    """
    q = left.shape[0]
    a = left.reshape(q, -1)
    b = right.reshape(q, -1)
    # dot products of flat rows: a (q x N) @ (N x q) product would go through BLAS gemm,
    # which splits a long inner dimension across threads for a q x q result
    return np.array([[float(a[j] @ b[k]) for k in range(q)] for j in range(q)])
