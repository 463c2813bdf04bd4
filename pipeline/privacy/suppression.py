"""Small-cell suppression of published tables, checked by a linear audit.

**Small cells.** In every published table (``reports/tables`` and the report) a count from 1 to
``small_cell_threshold - 1`` (default 1–4) is replaced by ``<5`` (primary suppression). Counts
that would let a suppressed count be worked out exactly from the other numbers of the same table
(row totals, ``raw = processed + quarantined``, ``n = responders + non-responders``, counts that
must add up across the levels of two groupings) are replaced by ``[c]`` (complementary
suppression), choosing the smallest such counts first; derived statistics that would reveal a
suppressed count (a proportion with its denominator, a rate, a percentage, a standardised
difference of proportions) are withheld as ``[c]`` too. Zeros are shown: they identify nobody.
Small counts that are differences of published counts (non-responders, patients not analysed)
are protected in the same way. The rule is applied by a linear check: after suppression no
suppressed count is determined by the published numbers and the table's additive relations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.schemas.identity import FlowStage

COMPLEMENTARY = "[c]"


@dataclass
class CellGrid:
    """Counts of one published table and the additive relations between them.

    A cell is *published* when it is shown at one or more ``(row, column)`` places of the
    table, *hidden* when it is only implied (a difference of published counts, such as
    non-responders). Relations are linear equations ``sum(coef * cell) = 0``.
    """

    counts: dict[Hashable, float] = field(default_factory=dict)
    places: dict[Hashable, list[tuple[Any, str]]] = field(default_factory=dict)
    equations: list[dict[Hashable, int]] = field(default_factory=list)

    def cell(self, key: Hashable, value: float, place: tuple[Any, str] | None = None) -> Hashable:
        """Add (or locate again) a cell; ``place`` is ``(row index, column)`` when shown."""
        if key not in self.counts:
            self.counts[key] = float(value)
            self.places[key] = []
        if place is not None:
            self.places[key].append(place)
        return key

    def total(self, total: Hashable, parts: Iterable[Hashable]) -> None:
        """Relate ``total = sum(parts)``."""
        equation: dict[Hashable, int] = {total: 1}
        for part in parts:
            equation[part] = equation.get(part, 0) - 1
        self.equations.append(equation)

    def published(self, key: Hashable) -> bool:
        """Whether the cell is shown somewhere."""
        return bool(self.places[key])


def _matrix(equations: list[dict[Hashable, int]], cells: list[Hashable]) -> np.ndarray:
    """Coefficients of the equations, one column per cell."""
    column = {k: j for j, k in enumerate(cells)}
    matrix = np.zeros((len(equations), len(cells)))
    for i, eq in enumerate(equations):
        for k, coef in eq.items():
            matrix[i, column[k]] = coef
    return matrix


def _components(grid: CellGrid) -> list[tuple[list[Hashable], list[dict[Hashable, int]]]]:
    """Split the cells into groups linked by equations (each is protected on its own)."""
    parent = {k: k for k in grid.counts}

    def root(k: Hashable) -> Hashable:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for eq in grid.equations:
        first, *rest = list(eq)
        for k in rest:
            parent[root(k)] = root(first)
    cells: dict[Hashable, list] = {}
    for k in grid.counts:
        cells.setdefault(root(k), []).append(k)
    equations: dict[Hashable, list] = {}
    for eq in grid.equations:
        equations.setdefault(root(next(iter(eq))), []).append(eq)
    return [(members, equations.get(r, [])) for r, members in cells.items()]


TOLERANCE = 1e-9


def _protect_component(
    matrix: np.ndarray,
    counts: np.ndarray,
    published: np.ndarray,
    sensitive: np.ndarray,
    suppressed: np.ndarray,
) -> np.ndarray:
    """Suppress further published cells of one component until no sensitive cell is determined.

    With the unknown cells ``U`` (suppressed or hidden), the known ones fix ``A_U x_U = b``. A
    cell of ``U`` is determined when its unit vector lies in the row space of ``A_U``, i.e. when
    the projection ``pinv(A_U) A_U`` has 1 on its diagonal there. Suppressing a known cell ``k``
    frees a determined cell ``t`` exactly when the column ``a_k`` lies in the column space of
    ``A_U`` and ``(pinv(A_U) a_k)_t`` is not 0 (the new null vector ``(-pinv(A_U) a_k, 1)`` moves
    ``t``). Returns the new suppression mask.
    """
    suppressed = suppressed.copy()
    order = np.lexsort((np.arange(len(counts)), counts))  # smallest count first, then position
    while True:
        unknown = np.flatnonzero(suppressed)
        a_u = matrix[:, unknown]
        inverse = np.linalg.pinv(a_u, rcond=1e-10)
        fixed = np.diag(inverse @ a_u) > 1 - 1e-6
        exposed = [j for j, u in enumerate(unknown) if fixed[j] and sensitive[u]]
        if not exposed:
            return suppressed
        target = exposed[0]
        candidates = [k for k in order if published[k] and not suppressed[k]]
        if not candidates:
            raise RuntimeError("cannot protect a small cell: every count is already suppressed")
        a_k = matrix[:, candidates]
        moved = inverse @ a_k
        in_span = np.abs(a_u @ moved - a_k).max(axis=0, initial=0.0) < 1e-8
        frees = in_span & (np.abs(moved[target]) > TOLERANCE)
        if frees.any():
            chosen = candidates[int(np.argmax(frees))]
        else:  # no single count frees it: take the smallest one sharing an equation with it
            rows = np.abs(matrix[:, unknown[target]]) > 0
            near = [k for k in candidates if (np.abs(matrix[rows, k]) > 0).any()]
            chosen = (near or candidates)[0]
        suppressed[chosen] = True


def protect(grid: CellGrid, threshold: int) -> tuple[set[Hashable], set[Hashable]]:
    """Choose the cells to suppress.

    Parameters
    ----------
    grid : CellGrid
        The table's counts and relations.
    threshold : int
        Counts from 1 to ``threshold - 1`` are sensitive.

    Returns
    -------
    primary : set
        Published sensitive cells.
    complementary : set
        Further published cells suppressed so that no sensitive cell (published or hidden)
        is determined by the remaining published cells and the relations: repeatedly, while a
        sensitive cell can be worked out, the smallest published count whose suppression stops
        that (else the smallest count of an equation holding it) is suppressed.
    """
    sensitive = {k for k, v in grid.counts.items() if 1 <= v < threshold}
    primary = {k for k in sensitive if grid.published(k)}
    complementary: set[Hashable] = set()
    for cells, equations in _components(grid):
        if not equations or not sensitive.intersection(cells):
            continue
        published = np.array([grid.published(k) for k in cells])
        before = np.array([k in primary or not grid.published(k) for k in cells])
        after = _protect_component(
            _matrix(equations, cells),
            np.array([grid.counts[k] for k in cells]),
            published,
            np.array([k in sensitive for k in cells]),
            before,
        )
        complementary |= {k for k, b, a in zip(cells, before, after, strict=True) if a and not b}
    return primary, complementary


def _marker(threshold: int) -> str:
    return f"<{threshold}"


Place = tuple[Any, ...]  # (row, column) in one table, or (table, row, column) across tables


def _apply(
    frames: Mapping[str, pd.DataFrame],
    grid: CellGrid,
    threshold: int,
    withhold: Callable[[set[Place], set[Place]], Iterable[Place]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Apply :func:`protect` to tables whose cells are placed as ``(table, row, column)``.

    ``withhold(primary_places, all_places)`` receives the places of primary and of all
    suppressed cells and returns further places (statistics) to replace by ``[c]``.
    """
    primary, complementary = protect(grid, threshold)
    primary_places = {p for k in primary for p in grid.places[k]}
    all_places = primary_places | {p for k in complementary for p in grid.places[k]}
    extra = set(withhold(primary_places, all_places)) if withhold and all_places else set()
    changes = [(p, _marker(threshold)) for p in primary_places]
    changes += [(p, COMPLEMENTARY) for p in all_places - primary_places]
    changes += [(p, COMPLEMENTARY) for p in extra - all_places]
    out = {name: frame.copy() for name, frame in frames.items()}
    for name, column in sorted({(n, c) for (n, _, c), _ in changes}):
        out[name][column] = out[name][column].astype(object)
    for (name, row, column), text in sorted(changes, key=lambda c: (c[0][0], c[0][1], c[0][2])):
        out[name].loc[row, column] = text
    return out


def _mask(
    frame: pd.DataFrame,
    grid: CellGrid,
    threshold: int,
    withhold: Callable[[set[Place], set[Place]], Iterable[Place]] | None = None,
) -> pd.DataFrame:
    """Apply :func:`protect` to one table whose cells are placed as ``(row, column)``."""
    grid.places = {k: [("", *p) for p in places] for k, places in grid.places.items()}

    def within(primary: set[Place], every: set[Place]) -> list[Place]:
        assert withhold is not None
        found = withhold({p[1:] for p in primary}, {p[1:] for p in every})
        return [("", *p) for p in found]

    return _apply({"": frame}, grid, threshold, within if withhold else None)[""]


def _count(value: Any) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _simple(columns: Sequence[str]) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    """Suppress counts that have no relation between them, each small one on its own."""

    def rule(frame: pd.DataFrame, threshold: int) -> pd.DataFrame:
        grid = CellGrid()
        for row in frame.index:
            for column in columns:
                if column in frame and pd.notna(frame.loc[row, column]):
                    grid.cell((row, column), frame.loc[row, column], (row, column))
        return _mask(frame, grid, threshold)

    return rule


def _accounting_cells(grid: CellGrid, frame: pd.DataFrame, name: str) -> dict[str, Hashable]:
    """Row accounting: ``raw_rows = processed_rows + quarantined_rows`` per table."""
    keys = {}
    for row in frame.index:
        table = frame.loc[row, "table"]
        raw, processed, quarantined = (
            grid.cell((table, c), frame.loc[row, c], (name, row, c))
            for c in ("raw_rows", "processed_rows", "quarantined_rows")
        )
        grid.total(raw, [processed, quarantined])
        keys[table] = (raw, processed, quarantined)
    return keys


def _row_accounting(frame: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Suppress the row accounting on its own (blank lines are not rows and are shown)."""
    grid = CellGrid()
    _accounting_cells(grid, frame, "row_accounting")
    return _apply({"row_accounting": frame}, grid, threshold)["row_accounting"]


STATISTICS = ("mean", "sd", "ci_low", "ci_high", "mean_weeks")


def _by_visit(frame: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Means by visit and group: ``n`` per cell; groupings of the same patients add up.

    A mean of fewer than ``threshold`` patients is close to individual values, so the
    statistics of a primary-suppressed cell are withheld too.
    """
    grid = CellGrid()
    outer = [c for c in ("outcome", "visit") if c in frame]
    sums: dict[tuple, dict[Any, list]] = {}
    for row in frame.index:
        cell = grid.cell((row, "n"), frame.loc[row, "n"], (row, "n"))
        factor = frame.loc[row, "factor"] if "factor" in frame else ""
        key = tuple(frame.loc[row, c] for c in outer)
        sums.setdefault(key, {}).setdefault(factor, []).append(cell)
    for key, by_factor in sums.items():
        _same_patients(grid, ("visit", *key), by_factor)

    def withhold(primary: set, _every: set) -> list:
        return [(row, c) for row, _ in primary for c in STATISTICS if c in frame]

    return _mask(frame, grid, threshold, withhold)


def _same_patients(grid: CellGrid, key: tuple, by_factor: Mapping[Any, list]) -> None:
    """Relate the cells of each grouping to its total; equal totals are the same patients."""
    totals = {}
    for factor, cells in by_factor.items():
        total = grid.cell(("total", *key, factor), sum(grid.counts[c] for c in cells))
        grid.total(total, cells)
        totals[factor] = total
    factors = list(totals)
    for a, b in itertools.pairwise(factors):
        if grid.counts[totals[a]] == grid.counts[totals[b]]:
            grid.equations.append({totals[a]: 1, totals[b]: -1})


def _responders(frame: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Per outcome and grouping: ``n = responders + non-responders`` per level and in total.

    When any count of a block is suppressed, its proportions, risk difference and odds ratio
    (and their intervals and p-values) are withheld: each would reveal it.
    """
    grid = CellGrid()
    blocks: dict[tuple, list] = {}
    for (outcome, group), part in frame.groupby(["outcome", "group"], sort=False):
        blocks[(outcome, group)] = list(part.index)
        levels_n, levels_r = [], []
        total_n = total_r = None
        for row in part.index:
            n = frame.loc[row, "n"]
            r = frame.loc[row, "responders"]
            if frame.loc[row, "quantity"] == "proportion":
                level = frame.loc[row, "level"]
                cn = grid.cell((outcome, group, level, "n"), n, (row, "n"))
                cr = grid.cell((outcome, group, level, "r"), r, (row, "responders"))
                cnr = grid.cell((outcome, group, level, "non"), _count(n) - _count(r))
                grid.total(cn, [cr, cnr])
                levels_n.append(cn)
                levels_r.append(cr)
            else:
                total_n = grid.cell((outcome, group, "N"), n, (row, "n"))
                total_r = grid.cell((outcome, group, "R"), r, (row, "responders"))
        if total_n is not None:
            grid.total(total_n, levels_n)
            grid.total(total_r, levels_r)

    def withhold(_primary: set, every: set) -> list:
        touched = {row for row, _ in every}
        out = []
        for rows in blocks.values():
            if touched & set(rows):
                out += [(r, c) for r in rows for c in ("estimate", "ci_low", "ci_high", "p_value")]
        return out

    return _mask(frame, grid, threshold, withhold)


def _event_rates(frame: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Adverse events per level: a rate and its interval would reveal a suppressed count."""
    grid = CellGrid()
    for row in frame.index:
        for column in ("sessions", "events", "not_recorded"):
            grid.cell((row, column), frame.loc[row, column], (row, column))

    def withhold(_primary: set, every: set) -> list:
        rows = {row for row, column in every if column in ("sessions", "events")}
        return [(r, c) for r in rows for c in ("rate_per_100", "ci_low", "ci_high")]

    return _mask(frame, grid, threshold, withhold)


def _rate_ratio(frame: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Suppress the counts behind a rate ratio, withholding the ratio, interval and p with them."""
    grid = CellGrid()
    for row in frame.index:
        for column in ("events", "sessions", "ref_events", "ref_sessions"):
            grid.cell((row, column), frame.loc[row, column], (row, column))

    def withhold(_primary: set, every: set) -> list:
        rows = {row for row, _ in every}
        return [(r, c) for r in rows for c in ("rate_ratio", "ci_low", "ci_high", "p_value")]

    return _mask(frame, grid, threshold, withhold)


def _table_one(tables: dict[str, pd.DataFrame], threshold: int) -> dict[str, pd.DataFrame]:
    """Baseline table: categories add up to the group size; the same patients in each grouping.

    Percentages of suppressed counts are withheld (with the group size they reveal the count),
    and so is every percentage of a level whose size is suppressed. A standardised difference of
    a categorical or binary variable is withheld when one of its counts is suppressed (with the
    proportions of one group it would reveal the other's).
    """
    frame = tables["table_one"]
    grid = CellGrid()
    kinds = frame["kind"]
    group_n: dict[tuple, Hashable] = {}
    by_category: dict[tuple, dict[Any, list]] = {}
    for row in frame.index[kinds == "patients"]:
        factor, level = frame.loc[row, "factor"], frame.loc[row, "level"]
        cell = grid.cell(("N", factor, level), frame.loc[row, "n"], (row, "n"))
        group_n[(factor, level)] = cell
        by_category.setdefault(("patients",), {}).setdefault(factor, []).append(cell)
    parts: dict[tuple, list] = {}
    for row in frame.index[kinds != "patients"]:
        factor, variable, level = (frame.loc[row, c] for c in ("factor", "variable", "level"))
        cell = grid.cell((row, "n"), frame.loc[row, "n"], (row, "n"))
        parts.setdefault((factor, variable, level, kinds[row]), []).append(cell)
        key = (variable, frame.loc[row, "category"])
        by_category.setdefault(key, {}).setdefault(factor, []).append(cell)
    for (factor, variable, level, kind), cells in parts.items():
        total = group_n[(factor, level)]
        if kind == "categorical":
            grid.total(total, cells)
        else:  # a binary row or a continuous row's count: the rest is implied
            rest = grid.cell(
                ("rest", factor, variable, level), grid.counts[total] - grid.counts[cells[0]]
            )
            grid.total(total, [cells[0], rest])
    for key, by_factor in by_category.items():
        _same_patients(grid, key, by_factor)

    suppressed_vars: set[tuple] = set()

    def withhold(_primary: set, every: set) -> list:
        out = []
        hidden_levels = {
            (frame.loc[row, "factor"], frame.loc[row, "level"])
            for row, _ in every
            if frame.loc[row, "kind"] == "patients"
        }
        for row in frame.index:
            kind = frame.loc[row, "kind"]
            if kind not in ("categorical", "binary"):
                continue
            if (row, "n") in every:
                suppressed_vars.add((frame.loc[row, "factor"], frame.loc[row, "variable"]))
            if (row, "n") in every or (frame.loc[row, "factor"], frame.loc[row, "level"]) in (
                hidden_levels
            ):
                out.append((row, "percent"))
        return out

    published = _mask(frame, grid, threshold, withhold)
    diff = tables["table_one_std_diff"].copy()
    hit = [
        i for i in diff.index if (diff.loc[i, "factor"], diff.loc[i, "variable"]) in suppressed_vars
    ]
    if hit:
        diff["std_diff"] = diff["std_diff"].astype(object)
        diff.loc[hit, "std_diff"] = COMPLEMENTARY
    return {"table_one": published, "table_one_std_diff": diff}


def _flow_cells(
    grid: CellGrid, frame: pd.DataFrame, name: str, patients: tuple | None = None
) -> None:
    """Flow: enrolled = excluded + included = excluded + treated + untreated.

    Patients not analysed in a model (included minus analysed) are a hidden difference. With
    ``patients`` (the row-accounting cells of the patients file), enrolled, excluded and
    included *are* those cells: the two tables are protected together. Rows are told apart by
    their typed ``stage`` (:class:`~pipeline.schemas.identity.FlowStage`).
    """
    one: dict[FlowStage, Hashable] = {}
    many: dict[FlowStage, list[tuple[str, Hashable]]] = {}
    shared = dict(
        zip(
            (FlowStage.ENROLLED, FlowStage.INCLUDED, FlowStage.EXCLUDED),
            patients or (),
            strict=False,
        )
    )
    for row in frame.index:
        step, stage = frame.loc[row, "step"], FlowStage(frame.loc[row, "stage"])
        key = shared.get(stage, ("flow", step))
        cell = grid.cell(key, frame.loc[row, "patients"], (name, row, "patients"))
        if stage in (FlowStage.EXCLUSION_REASON, FlowStage.ASSESSED, FlowStage.ANALYSED):
            many.setdefault(stage, []).append((step, cell))
        else:
            one[stage] = cell
    main = {FlowStage.ENROLLED, FlowStage.EXCLUDED, FlowStage.INCLUDED}
    if main <= set(one) and patients is None:
        grid.total(one[FlowStage.ENROLLED], [one[FlowStage.EXCLUDED], one[FlowStage.INCLUDED]])
    if {FlowStage.INCLUDED, FlowStage.TREATED, FlowStage.NOT_TREATED} <= set(one):
        grid.total(one[FlowStage.INCLUDED], [one[FlowStage.TREATED], one[FlowStage.NOT_TREATED]])
    reasons = [cell for _, cell in many.get(FlowStage.EXCLUSION_REASON, [])]
    if reasons and FlowStage.EXCLUDED in one:
        if sum(grid.counts[k] for k in reasons) == grid.counts[one[FlowStage.EXCLUDED]]:
            grid.total(one[FlowStage.EXCLUDED], reasons)
    for step, cell in many.get(FlowStage.ANALYSED, []):
        if FlowStage.INCLUDED in one:
            included = one[FlowStage.INCLUDED]
            rest = grid.cell(("flow", "not " + step), grid.counts[included] - grid.counts[cell])
            grid.total(included, [cell, rest])


def _flow(frame: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Suppress the flow of patients on its own."""
    grid = CellGrid()
    _flow_cells(grid, frame, "flow")
    return _apply({"flow": frame}, grid, threshold)["flow"]


def _flow_and_accounting(
    tables: dict[str, pd.DataFrame], threshold: int
) -> dict[str, pd.DataFrame]:
    """Protect the flow and the row accounting together: they share the patient counts."""
    grid = CellGrid()
    accounting = _accounting_cells(grid, tables["row_accounting"], "row_accounting")
    patients = accounting.get("patients")
    # (raw, processed, quarantined) -> (enrolled, included, excluded)
    shared = (patients[0], patients[1], patients[2]) if patients else None
    _flow_cells(grid, tables["flow"], "flow", shared)
    return _apply(tables, grid, threshold)


def _no_counts(frame: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Estimates only: nothing to suppress."""
    return frame


RULES: dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]] = {
    "quarantine_reasons": _simple(["rows"]),
    "mean_by_visit": _by_visit,
    "responders": _responders,
    "adverse_event_rates": _event_rates,
    "adverse_event_rate_ratio": _rate_ratio,
    "diagnostics": _simple(["n_obs", "n_patients"]),
    "fixed_effects": _no_counts,
    "variance_components": _no_counts,
    "emmeans": _no_counts,
    "contrasts": _no_counts,
    "effect_sizes": _no_counts,
    "model_comparison": _no_counts,
    "skipped_analyses": _no_counts,
}
# rules over several tables at once, and the rule of a table published without its partner
ALONE = {"row_accounting": _row_accounting, "flow": _flow}
JOINT_RULES: dict[tuple[str, ...], Callable[[dict, int], dict]] = {
    ("row_accounting", "flow"): _flow_and_accounting,
    ("table_one", "table_one_std_diff"): _table_one,
}


def publish_tables(tables: Mapping[str, pd.DataFrame], threshold: int) -> dict[str, pd.DataFrame]:
    """Apply small-cell suppression to every table about to be published.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Tidy tables by name (file stem in ``reports/tables``).
    threshold : int
        ``[privacy] small_cell_threshold``; 0 or 1 publishes every count as it is.

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables as published: suppressed counts are ``<threshold>`` or ``[c]`` in columns
        turned to ``object``; other values keep their type.

    Raises
    ------
    ValueError
        When a table has no suppression rule (:data:`RULES`): decide whether it holds counts.
    """
    joint_names = {name for names in JOINT_RULES for name in names}
    unknown = sorted(set(tables) - set(RULES) - joint_names)
    if unknown:
        raise ValueError(
            f"table {unknown[0]!r} has no small-cell rule in pipeline.privacy.suppression.RULES; "
            "add one "
            "(use _no_counts when it holds no counts of patients, sessions or rows)"
        )
    out = {}
    for name, frame in tables.items():
        if name in RULES:
            out[name] = RULES[name](frame.reset_index(drop=True), threshold)
    for names, rule in JOINT_RULES.items():
        present = [n for n in names if n in tables]
        if len(present) == len(names):
            out.update(rule({n: tables[n].reset_index(drop=True) for n in names}, threshold))
            continue
        for name in present:
            if name not in ALONE:
                raise ValueError(f"tables {', '.join(names)} are published together")
            out[name] = ALONE[name](tables[name].reset_index(drop=True), threshold)
    return {name: out[name] for name in tables}


def for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Format floats in mixed (suppressed) columns as the CSV writer formats float columns."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = [
                f"{v:.10g}" if isinstance(v, float) and not math.isnan(v) else v
                for v in out[column]
            ]
    return out
