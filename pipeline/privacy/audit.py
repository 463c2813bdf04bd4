"""Exact integer audit of suppression: whether a hidden count follows from what is published.

A reader knows every published count, the relations between the tables and figures
(:mod:`pipeline.privacy.cells`) and the rule: ``<k`` is a whole number from 1 to ``k − 1``,
shown zeros are exact, and ``[c]`` (a count hidden so that another cannot be worked out) is a
count of patients of at least ``k`` or another count of at least 1 (small counts of patients are
always ``<k``, and zeros are always shown). For a hidden count ``x`` the audit solves two integer
linear programs, the minimum and the maximum of ``x`` subject to all of that, and calls ``x``
*disclosed* when they are equal. Every suppressed count and every small count a reader could
compute (non-responders, a binary "no") must have ``min < max``.

The programs are solved with ``scipy.optimize.milp`` (HiGHS) over the hidden counts tied to
``x`` through the relations only, so each is small.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from pipeline.privacy.cells import CellGrid, Place, link_tables

PRIMARY = "primary"  # shown as "<k": 1 .. k - 1
COMPLEMENT = "complement"  # shown as "[c]"


@dataclass(frozen=True)
class Finding:
    """A hidden count that the published numbers determine."""

    key: Hashable
    value: float
    places: tuple[Place, ...]

    def describe(self) -> str:
        """One line naming the count, its value and where it is hidden."""
        where = ", ".join(f"{t} row {r} {c}" for t, r, c in self.places) or "implied"
        return f"{self.key!r} = {self.value:g} can be worked out ({where})"


class Audit:
    """The hidden counts of a grid and the integer programs over them.

    Parameters
    ----------
    grid : CellGrid
        Counts and relations.
    suppressed : mapping of key to str
        Published cells that are hidden, each :data:`PRIMARY` or :data:`COMPLEMENT`.
    threshold : int
        The small-cell threshold ``k``.
    rule_known : bool
        Whether the reader may assume the rule's bounds for ``[c]`` (at least ``k`` for a count
        of patients, at least 1 otherwise); ``False`` bounds ``[c]`` by 0 only (to audit tables
        made by another rule).
    shown_elsewhere : iterable of keys
        Cells a figure shows exactly: known to the reader whatever the tables show.
    """

    def __init__(
        self,
        grid: CellGrid,
        suppressed: Mapping[Hashable, str],
        threshold: int,
        *,
        rule_known: bool = True,
        shown_elsewhere: Iterable[Hashable] = (),
    ) -> None:
        self.grid = grid
        self.shown_elsewhere = set(shown_elsewhere)
        self.threshold = threshold
        self.rule_known = rule_known
        self.marker: dict[Hashable, str] = dict(suppressed)
        values = [c.value for c in grid.cells.values()]
        self.big = 2 * max(values, default=0.0) + threshold + 1
        self.constraints = [(eq, True) for eq in grid.equations] + [
            (ineq, False) for ineq in grid.inequalities
        ]
        self.by_cell: dict[Hashable, list[int]] = {}
        for i, (relation, _) in enumerate(self.constraints):
            for key in relation:
                self.by_cell.setdefault(key, []).append(i)

    def suppress(self, key: Hashable, marker: str = COMPLEMENT) -> None:
        """Hide one more published cell."""
        self.marker[key] = marker

    def unknown(self, key: Hashable) -> bool:
        """Whether a reader does not see the cell."""
        if key in self.shown_elsewhere:
            return False
        return key in self.marker or not self.grid.published(key)

    def bounds(self, key: Hashable) -> tuple[float, float]:
        """Return what a reader knows of a hidden cell without the relations."""
        marker = self.marker.get(key)
        if marker == PRIMARY:
            return 1.0, float(self.threshold - 1)
        if marker == COMPLEMENT and self.rule_known:
            low = self.threshold if self.grid.cells[key].sensitive else 1
            return float(max(low, 1)), self.big
        return 0.0, self.big

    def component(self, key: Hashable) -> tuple[list[Hashable], list[int]]:
        """Hidden cells tied to ``key`` through relations, and those relations."""
        cells, seen, relations = [key], {key}, set()
        stack = [key]
        while stack:
            current = stack.pop()
            for i in self.by_cell.get(current, []):
                if i in relations:
                    continue
                relations.add(i)
                for other in self.constraints[i][0]:
                    if other not in seen and self.unknown(other):
                        seen.add(other)
                        cells.append(other)
                        stack.append(other)
        return cells, sorted(relations)

    def range(self, key: Hashable) -> tuple[float, float]:
        """Smallest and largest value of a hidden cell consistent with what is published."""
        return self._solve(key, 1.0), self._solve(key, -1.0)

    def disclosed(self, key: Hashable) -> bool:
        """Whether the published numbers determine the hidden cell's value."""
        value = self.grid.cells[key].value
        if self._solve(key, 1.0) < value - 0.5:
            return False
        return self._solve(key, -1.0) < value + 0.5

    def _solve(self, key: Hashable, sign: float) -> float:
        """Return the smallest (``sign`` 1) or largest (``sign`` -1) value of ``key``."""
        cells, relations = self.component(key)
        column = {k: j for j, k in enumerate(cells)}
        eq_rows, eq_rhs, in_rows, in_rhs = [], [], [], []
        for i in relations:
            relation, is_equation = self.constraints[i]
            row = np.zeros(len(cells))
            rhs = 0.0
            for k, coef in relation.items():
                if k in column:
                    row[column[k]] += coef
                else:
                    rhs -= coef * self.grid.cells[k].value
            if not row.any():
                continue
            (eq_rows if is_equation else in_rows).append(row)
            (eq_rhs if is_equation else in_rhs).append(rhs)
        constraints = []
        if eq_rows:
            constraints.append(LinearConstraint(np.array(eq_rows), eq_rhs, eq_rhs))
        if in_rows:
            constraints.append(LinearConstraint(np.array(in_rows), -np.inf, in_rhs))
        low, high = zip(*(self.bounds(k) for k in cells), strict=True)
        objective = np.zeros(len(cells))
        objective[0] = sign
        result = milp(
            objective,
            integrality=np.ones(len(cells)),
            bounds=Bounds(np.array(low), np.array(high)),
            constraints=constraints,
        )
        if result.status != 0 or result.x is None:
            raise RuntimeError(
                f"the disclosure audit could not bound {key!r} ({result.message}); "
                "the relations between the tables do not fit the counts"
            )
        return float(round(result.x[0]))

    def targets(self) -> list[Hashable]:
        """Cells that must not be determined: the suppressed ones and small implied counts."""
        hidden_small = [
            k
            for k, c in self.grid.cells.items()
            if not c.places and c.sensitive and 1 <= c.value < self.threshold
        ]
        return [k for k in [*self.marker, *hidden_small] if k not in self.shown_elsewhere]

    def follows_from_totals(self, key: Hashable) -> bool:
        """Whether the cell is determined even when every count that may be hidden is.

        Such a cell follows from totals that are never suppressed (all patients assessed at a
        visit were in one group): it is public by the rule, not a leak.
        """
        if not self.rule_known:  # another rule may have promised to hide totals too
            return False
        markers = {}
        for k, c in self.grid.cells.items():
            if c.places and not c.fixed and c.value != 0:
                small = c.sensitive and 1 <= c.value < self.threshold
                markers[k] = PRIMARY if small else COMPLEMENT
        return Audit(self.grid, markers, self.threshold).disclosed(key)

    def findings(self) -> list[Finding]:
        """Every target whose value the published numbers determine (and the totals do not)."""
        return [
            Finding(k, self.grid.cells[k].value, tuple(self.grid.cells[k].places))
            for k in self.targets()
            if self.disclosed(k) and not self.follows_from_totals(k)
        ]


def is_marker(value: object) -> bool:
    """Whether a published value is a suppression marker (``<k`` or ``[c]``)."""
    return isinstance(value, str) and (value.startswith("<") or value == "[c]")


def read_markers(grid: CellGrid, published: Mapping[str, pd.DataFrame]) -> dict[Hashable, str]:
    """Which cells the published tables hide (a cell shown in any place is known)."""
    out = {}
    for key, cell in grid.cells.items():
        if not cell.places:
            continue
        shown = [published[t].loc[r, c] for t, r, c in cell.places if t in published]
        if shown and all(is_marker(v) for v in shown):
            out[key] = PRIMARY if any(str(v).startswith("<") for v in shown) else COMPLEMENT
    return out


def audit_tables(
    tables: Mapping[str, pd.DataFrame],
    published: Mapping[str, pd.DataFrame],
    threshold: int,
    *,
    figures: Iterable[tuple[Hashable, float]] = (),
    rule_known: bool = True,
) -> list[Finding]:
    """Check published tables (and figures) against the counts they were made from.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The tables as computed.
    published : mapping of str to pandas.DataFrame
        The same tables as published (markers in place of hidden counts).
    threshold : int
        The small-cell threshold.
    figures : iterable of (key, value)
        Counts a figure shows exactly (:func:`pipeline.privacy.panel.panel_counts`); a hidden
        cell shown by a figure is disclosed.
    rule_known : bool
        See :class:`Audit`.

    Returns
    -------
    list of Finding
        Hidden counts that can be worked out; empty when suppression is sound.
    """
    frames = {name: frame.reset_index(drop=True) for name, frame in tables.items()}
    shown = {name: frame.reset_index(drop=True) for name, frame in published.items()}
    grid = link_tables(frames)
    markers = read_markers(grid, shown)
    drawn = {k for k, _ in figures if k in grid.cells}
    audit = Audit(grid, markers, threshold, rule_known=rule_known, shown_elsewhere=drawn)
    found = [
        Finding(k, grid.cells[k].value, tuple(grid.cells[k].places)) for k in markers if k in drawn
    ]
    return found + audit.findings()
