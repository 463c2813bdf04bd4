"""Combine sites' sufficient statistics into one model: clinic indicators, empty columns.

Clinic indicators are built from the intercept: for a patient of site ``s`` the design row is
``[x, x_Intercept * 1(s = s_j) for j > 0]``, a linear map of the site's own design, so the
site's statistics are mapped exactly
(:meth:`~pipeline.lmm.sufficient.SufficientStatistics.mapped`). The reference clinic is the
first site name in sorted order (as patsy orders a text factor), and a design column that is
zero in every site (a level nobody has) is left out, as the row-level plans drop unused levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.lmm.sufficient import SufficientStatistics, combine_statistics

__all__ = ["CLINIC", "CombinedDesign", "combine_sites"]

CLINIC = "clinic"
"""Name of the clinic factor (design columns ``clinic[T.<site>]``)."""


@dataclass(frozen=True, eq=False)
class CombinedDesign:
    """Statistics of several sites in one model.

    Attributes
    ----------
    stats : SufficientStatistics
        The combined statistics.
    columns : list of str
        Their design columns.
    dropped : tuple of str
        Columns left out because they are zero everywhere.
    sites : tuple of str
        Sites, reference first.
    rank_deficient : tuple of str
        Columns that are linear combinations of the others (empty when estimable).
    """

    stats: SufficientStatistics
    columns: list[str]
    dropped: tuple[str, ...]
    sites: tuple[str, ...]
    rank_deficient: tuple[str, ...]


def _clinic_map(p: int, intercept: int, position: int, n_sites: int) -> np.ndarray:
    """``X -> [X, X_intercept * 1(site = j), j = 1..n_sites-1]`` for the site at ``position``."""
    t = np.zeros((p, p + n_sites - 1))
    t[:, :p] = np.eye(p)
    if position > 0:
        t[intercept, p + position - 1] = 1.0
    return t


def _aliased(xtx: np.ndarray, names: list[str]) -> tuple[str, ...]:
    """Columns of a cross-product matrix that are (numerically) combinations of earlier ones."""
    scale = np.sqrt(np.diag(xtx))
    corr = xtx / np.outer(scale, scale)
    out = []
    kept: list[int] = []
    for j in range(len(names)):
        trial = [*kept, j]
        if np.linalg.eigvalsh(corr[np.ix_(trial, trial)])[0] > 1e-10:
            kept = trial
        else:
            out.append(names[j])
    return tuple(out)


def combine_sites(
    blocks: Sequence[tuple[str, SufficientStatistics]],
    columns: Sequence[str],
    clinic_effect: bool,
    *,
    random: bool = False,
) -> CombinedDesign:
    """Combine sites' statistics, with clinic indicators when asked and more than one site.

    With ``random=True`` no indicators are added and each site's cells are kept apart, for a
    clinic random intercept (:class:`pipeline.lmm.sufficient.NestedSufficientCrossproducts`).

    Parameters
    ----------
    blocks : sequence of (str, SufficientStatistics)
        Site name and its statistics (same design columns).
    columns : sequence of str
        The sites' design columns (with ``Intercept``).
    clinic_effect : bool
        Add clinic indicators.
    random : bool, keyword-only, default False
        Keep the sites apart for a clinic random intercept instead.

    Returns
    -------
    CombinedDesign
        The combined statistics and columns.
    """
    blocks = sorted(blocks, key=lambda b: b[0])
    sites = tuple(name for name, _ in blocks)
    names = list(columns)
    p = len(names)
    if clinic_effect and len(sites) > 1 and not random:
        intercept = names.index("Intercept")
        names += [f"{CLINIC}[T.{s}]" for s in sites[1:]]
        parts = [
            stats.mapped(_clinic_map(p, intercept, position, len(sites)))
            for position, (_, stats) in enumerate(blocks)
        ]
    else:
        parts = [stats for _, stats in blocks]
    stats = combine_statistics(parts, sites=random)
    zero = np.flatnonzero(np.diag(stats.xtx) == 0.0)
    dropped = tuple(names[i] for i in zero)
    if zero.size:
        keep = np.setdiff1d(np.arange(len(names)), zero)
        stats = stats.mapped(np.eye(len(names))[:, keep])
        names = [names[i] for i in keep]
    return CombinedDesign(stats, names, dropped, sites, _aliased(stats.xtx, names))
