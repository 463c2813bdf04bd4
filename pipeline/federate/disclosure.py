"""Disclosure rules of a share file: which patients' rows enter which statistic.

A share file holds sums over patients, never a patient's own values. Two rules make sure every
published number is a sum over at least ``k = min_patients_per_cell`` patients:

1. **Homogeneous atoms.** Patients are grouped into *atoms* by their site, their categorical
   model variables (group and categorical covariates: the *stratum*) and their *schedule* (the
   set of visits with an assessment on the nominal schedule). Inside an atom every indicator
   column of the design is constant, so no sum of the file can single out a subset of an atom.
2. **At least k patients per atom** (the stated coarsening rule). Within a site and stratum,
   the patients of a schedule held by fewer than ``k`` patients are *movers*. Sub-schedules
   (subsets of visits) are tried from the largest to the smallest (ties: earlier visits first);
   a sub-schedule is taken when the movers whose own schedule contains it, together with the
   patients already on exactly that schedule, number at least ``k``: those movers keep only
   its visits (their other assessments are left out). Movers left at the end (no sub-schedule
   reaches ``k``) are left out altogether.

Every sum of the file (cross products, moments, descriptives) is then a sum over a union of
atoms of at least ``k`` patients each, so any linear combination of published sums weights
whole atoms, never a single patient. The number of patients coarsened and left out, and the
assessments dropped, are counted in the file and in the pooled report.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["RULE", "CellAssignment", "assign_cells"]

_MAX_SUBSET_VISITS = 12

RULE = (
    "Patients are grouped by site, categorical model variables and schedule (the nominal visits "
    "with an assessment); the patients of a schedule held by fewer than {k} patients keep only "
    "the visits of the largest sub-schedule that, with them, is held by at least {k} patients "
    "of the same site and categories (their other assessments are left out), or are left out "
    "when there is none."
)
"""The coarsening rule in one paragraph (``{k}``: the threshold)."""


@dataclass(frozen=True)
class CellAssignment:
    """Rows kept after the disclosure rules, and what the rules removed.

    Attributes
    ----------
    rows : pandas.DataFrame
        The kept rows (a subset of the input rows).
    patients_in : int
        Patients in the input.
    patients_kept : int
        Patients with at least one kept row.
    patients_coarsened : int
        Kept patients who lost assessments to a smaller schedule.
    patients_left_out : int
        Patients with no kept row.
    rows_dropped : int
        Input rows not kept.
    """

    rows: pd.DataFrame
    patients_in: int
    patients_kept: int
    patients_coarsened: int
    patients_left_out: int
    rows_dropped: int


def _candidates(patterns: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """List the sub-schedules to try, largest first.

    Every subset of the visits seen (up to 12 visits), else every pattern and its prefixes.
    """
    visits = sorted({v for p in patterns for v in p})
    if len(visits) <= _MAX_SUBSET_VISITS:
        subsets = (c for r in range(len(visits), 0, -1) for c in itertools.combinations(visits, r))
    else:
        subsets = iter({p[:r] for p in patterns for r in range(1, len(p) + 1)})
    return sorted(subsets, key=lambda p: (-len(p), p))


def _coarsen(counts: dict[tuple[int, ...], int], k: int) -> dict[tuple[int, ...], tuple | None]:
    """Apply the stated rule within one site and stratum: schedule -> kept schedule or None.

    The rule treats every patient of a schedule alike, so it works on the schedules' counts.
    """
    target: dict[tuple[int, ...], tuple | None] = {p: p for p, n in counts.items() if n >= k}
    movers = {p: n for p, n in counts.items() if n < k}
    sizes = {p: n for p, n in counts.items() if n >= k}
    for candidate in _candidates(list(movers)) if movers else []:
        wanted = set(candidate)
        takers = [p for p in movers if wanted <= set(p)]
        joining = sum(movers[p] for p in takers)
        if takers and sizes.get(candidate, 0) + joining >= k:
            for p in takers:
                target[p] = candidate
                del movers[p]
            sizes[candidate] = sizes.get(candidate, 0) + joining
        if not movers:
            break
    target.update(dict.fromkeys(movers))
    return target


def assign_cells(
    rows: pd.DataFrame, patient: str, visit: str, strata: Sequence[str], k: int
) -> CellAssignment:
    """Apply the disclosure rules (module docstring) to one clinic's model rows.

    Parameters
    ----------
    rows : pandas.DataFrame
        One row per patient and visit, every model variable present.
    patient, visit : str
        Patient and visit-number columns.
    strata : sequence of str
        Site and categorical model variables (constant within a patient).
    k : int
        Fewest patients per atom.

    Returns
    -------
    CellAssignment
        Kept rows and counts.
    """
    strata = list(strata)
    if rows.empty:
        return CellAssignment(rows, 0, 0, 0, 0, 0)
    codes, people = pd.factorize(rows[patient], sort=True)
    visit_levels, visit_codes = np.unique(rows[visit].to_numpy(dtype=int), return_inverse=True)
    presence = np.zeros((len(people), len(visit_levels)), dtype=bool)
    presence[codes, visit_codes] = True
    schedules, schedule_of = np.unique(presence, axis=0, return_inverse=True)
    schedule_of = np.asarray(schedule_of).ravel()
    names = [tuple(int(v) for v in visit_levels[row]) for row in schedules]
    first = rows[strata].groupby(codes, sort=True, observed=True).first()
    stratum_of = first.groupby(strata, observed=True, dropna=False, sort=False).ngroup()
    stratum_of = stratum_of.to_numpy()
    # per (stratum, schedule): the kept schedule (as a presence row) or none
    pairs, pair_of = np.unique(np.c_[stratum_of, schedule_of], axis=0, return_inverse=True)
    pair_of = np.asarray(pair_of).ravel()
    pair_counts = np.bincount(pair_of, minlength=len(pairs))
    kept_presence = np.zeros((len(pairs), len(visit_levels)), dtype=bool)
    kept_any = np.zeros(len(pairs), dtype=bool)
    changed = np.zeros(len(pairs), dtype=bool)
    for stratum in np.unique(pairs[:, 0]):
        mine = np.flatnonzero(pairs[:, 0] == stratum)
        counts = {names[pairs[i, 1]]: int(pair_counts[i]) for i in mine}
        target = _coarsen(counts, k)
        for i in mine:
            kept = target[names[pairs[i, 1]]]
            if kept is not None:
                kept_any[i] = True
                kept_presence[i] = np.isin(visit_levels, kept)
                changed[i] = kept != names[pairs[i, 1]]
    row_pair = pair_of[codes]
    keep = kept_any[row_pair] & kept_presence[row_pair, visit_codes]
    kept_rows = rows.loc[keep]
    left_out = int((~kept_any[pair_of]).sum())
    return CellAssignment(
        rows=kept_rows,
        patients_in=len(people),
        patients_kept=len(people) - left_out,
        patients_coarsened=int(changed[pair_of].sum()),
        patients_left_out=left_out,
        rows_dropped=len(rows) - len(kept_rows),
    )
