"""The MMRM design as visit maps of patient-level covariates, when it is one.

Most MMRMs are ``visit * (group + baseline + covariates)`` with covariates measured once per
patient: then patient ``i``'s design row at visit ``a`` is a fixed linear map of their
covariates, ``x_ia = M_a z_i`` (``z_i`` the ``q`` between-patient columns, ``M_a`` ``p x q``), and
every cross-product of a visit pattern follows from ``q x q`` and ``q x k`` sums:

    XX[a, :, b, :] = M_a (sum_i z_i z_i') M_b'        XY[a, :, b] = M_a (sum_i z_i y_ib)

so :class:`~pipeline.lmm.likelihood.Likelihood` can evaluate ``X'V^{-1}X``, ``X'V^{-1}y`` and
the gradient's ``beta'XX_ab beta + tr(A XX_ab)`` from per-pattern ``q x q`` sums instead of
``(k p)^2`` ones: ``O(patterns x T^2 x q^2)`` plus one ``p x Tq`` product per evaluation.

:func:`visit_factor` finds ``z`` (the design columns constant within every patient, a linearly
independent subset) and each ``M_a`` (least squares on a spread of the rows of visit ``a``, on
all of them when that map does not fit) and checks the factorisation on every row; a design
it does not hold for (a covariate that changes between visits, a time-varying dose) gets None
and the likelihood keeps the full cross-products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.lmm.patterns import MmrmData, pivoted_rank

__all__ = ["VisitFactor", "visit_factor"]

TOLERANCE = 1e-10
"""Largest residual of ``x_ia - M_a z_i``, relative to the largest design entry (at least 1)."""

_SAMPLE_ROWS = 2048
"""About this many rows of a visit (evenly spread) give its map, which all its rows check."""


@dataclass(frozen=True, eq=False)
class VisitFactor:
    """``x_ia = maps[a] @ z[row]`` for every row of the design.

    Attributes
    ----------
    maps : numpy.ndarray
        ``(T, p, q)``: the map of each visit (zero for a visit nobody attended).
    z : numpy.ndarray
        ``(N, q)``: each row's patient-level covariates (the same on all rows of a patient).
    columns : numpy.ndarray
        Design columns that ``z`` holds (for :meth:`of_columns`, the columns of the design it
        was found in).
    """

    maps: np.ndarray
    z: np.ndarray
    columns: np.ndarray

    @property
    def q(self) -> int:
        """Number of patient-level covariates."""
        return int(self.z.shape[1])

    def of_columns(self, columns: np.ndarray) -> VisitFactor:
        """Return the factorisation of the design made of some of these design columns.

        ``x[:, columns] = maps[:, columns] z``: the same patient-level covariates, the rows of
        the maps that give those columns (a reduced model of a likelihood-ratio test).

        Parameters
        ----------
        columns : numpy.ndarray
            Positions of the reduced design's columns in this design.

        Returns
        -------
        VisitFactor
        """
        return VisitFactor(np.ascontiguousarray(self.maps[:, columns, :]), self.z, self.columns)

    @property
    def stacked(self) -> np.ndarray:
        """``(p, T q)``: ``[M_0 | M_1 | ...]``, visit-major."""
        t, p, q = self.maps.shape
        return np.ascontiguousarray(self.maps.transpose(1, 0, 2).reshape(p, t * q))


def visit_factor(data: MmrmData) -> VisitFactor | None:
    """Factor the design as visit maps of patient-level covariates (module docstring).

    Parameters
    ----------
    data : MmrmData
        Prepared MMRM data.

    Returns
    -------
    VisitFactor or None
        None when no patient-level column exists, when they are as many as the design's
        columns (nothing to gain), or when some row is not ``M_a z_i`` to :data:`TOLERANCE`.
    """
    between = np.flatnonzero(data.between)
    if between.size == 0:
        return None
    rank, piv = pivoted_rank(data.x[:, between])
    keep = between[np.sort(piv[:rank])]
    if keep.size == 0 or keep.size >= data.p:
        return None
    z = np.ascontiguousarray(data.x[:, keep])
    t, p, q = data.n_visits, data.p, keep.size
    maps = np.zeros((t, p, q))
    bound = TOLERANCE * max(1.0, float(np.max(np.abs(data.x))))
    for a in range(t):
        rows = np.flatnonzero(data.visit_codes == a)
        if rows.size == 0:
            continue
        za, xa = z[rows], data.x[rows]
        # The map is exact where the design factors, so a spread of rows determines it; every
        # row then checks it. Least squares on all the rows only when the sample's map fails.
        sample = slice(None, None, max(1, rows.size // _SAMPLE_ROWS))
        coef = np.linalg.lstsq(za[sample], xa[sample], rcond=None)[0]  # (q, p)
        if np.max(np.abs(za @ coef - xa)) > bound:
            coef = np.linalg.lstsq(za, xa, rcond=None)[0]
            if np.max(np.abs(za @ coef - xa)) > bound:
                return None
        maps[a] = coef.T
    return VisitFactor(maps, z, keep)
