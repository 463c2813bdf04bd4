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


def _coarsen(patterns: dict[str, tuple[int, ...]], k: int) -> dict[str, tuple[int, ...] | None]:
    """Apply the stated rule within one site and stratum: patient -> kept schedule or None."""
    counts: dict[tuple[int, ...], int] = {}
    for p in patterns.values():
        counts[p] = counts.get(p, 0) + 1
    target: dict[str, tuple[int, ...] | None] = {
        pid: p for pid, p in patterns.items() if counts[p] >= k
    }
    movers = {pid: p for pid, p in patterns.items() if counts[p] < k}
    sizes = {p: n for p, n in counts.items() if n >= k}
    for candidate in _candidates(list(movers.values())) if movers else []:
        wanted = set(candidate)
        takers = [pid for pid, p in movers.items() if wanted <= set(p)]
        if takers and sizes.get(candidate, 0) + len(takers) >= k:
            for pid in takers:
                target[pid] = candidate
                del movers[pid]
            sizes[candidate] = sizes.get(candidate, 0) + len(takers)
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
    visits = rows.groupby(patient, sort=True, observed=True)[visit].agg(
        lambda v: tuple(sorted(int(x) for x in v))
    )
    first = rows.groupby(patient, sort=True, observed=True)[strata].first()
    people = first.assign(_pattern=visits)
    target: dict[str, tuple[int, ...] | None] = {}
    for _, block in people.groupby(strata, observed=True, dropna=False, sort=False):
        target.update(_coarsen(block["_pattern"].to_dict(), k))
    keep_visits = pd.Series(target, dtype=object)
    kept_mask = [
        keep_visits[p] is not None and int(v) in keep_visits[p]
        for p, v in zip(rows[patient], rows[visit], strict=True)
    ]
    kept = rows.loc[kept_mask]
    left_out = int(sum(t is None for t in target.values()))
    coarsened = int(
        sum(t is not None and t != people.loc[p, "_pattern"] for p, t in target.items())
    )
    return CellAssignment(
        rows=kept,
        patients_in=len(people),
        patients_kept=len(people) - left_out,
        patients_coarsened=coarsened,
        patients_left_out=left_out,
        rows_dropped=len(rows) - len(kept),
    )
