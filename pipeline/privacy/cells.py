"""The counts of every published table as one set of linked cells.

Each count a reader sees (or can compute from what is shown, such as non-responders = n −
responders) is a *cell*. A cell is

- *sensitive* when it counts patients by a characteristic, an outcome or an event (a category of
  Table 1, the patients of a group, responders, adverse events, patients seen at a visit in a
  group): such a count from 1 to ``threshold − 1`` is suppressed;
- *fixed* when it is never suppressed: overall totals of enrolled, included, assessed and
  analysed patients, and row counts of the input files (rows read, kept and quarantined, by file
  and by rule broken);
- *preferred* when it is a missing or unknown category: the first choice when a further count
  must be hidden.

Cells are linked by the relations a reader knows or can guess: additions inside a table
(categories add up to the group size, ``n = responders + non-responders``, ``raw = processed +
quarantined``), the same patients counted under two groupings, and links between tables (the
flow's patients assessed at a visit and the means by visit, Table 1's group sizes and the
responders, the valid sessions of the row accounting and the sessions of the adverse-event
table). A relation that holds only for some data (two totals that happen to be equal) is added
when the numbers satisfy it: a true relation that a reader may not know only makes the audit
stricter, never wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.schemas.identity import AnalysisKind, FlowStage, declared_factors, kind_of

Place = tuple[str, int, str]  # (table, row, column) of a published table

MISSING_CATEGORIES = frozenset({"missing", "unknown"})


@dataclass
class Cell:
    """One count: its value, where it is shown and how it may be treated."""

    value: float
    places: list[Place] = field(default_factory=list)
    sensitive: bool = False
    fixed: bool = False
    preferred: bool = False


@dataclass
class CellGrid:
    """Counts of the published tables and the linear relations between them.

    ``equations`` are ``sum(coef * cell) = 0``; ``inequalities`` are ``sum(coef * cell) <= 0``.
    """

    cells: dict[Hashable, Cell] = field(default_factory=dict)
    equations: list[dict[Hashable, int]] = field(default_factory=list)
    inequalities: list[dict[Hashable, int]] = field(default_factory=list)

    def cell(
        self,
        key: Hashable,
        value: Any,
        place: Place | None = None,
        *,
        sensitive: bool = False,
        fixed: bool = False,
        preferred: bool = False,
    ) -> Hashable:
        """Add (or locate again) a cell; ``place`` is where it is shown, if it is shown."""
        if key not in self.cells:
            self.cells[key] = Cell(float(value))
        cell = self.cells[key]
        if place is not None:
            cell.places.append(place)
        cell.sensitive |= sensitive
        cell.fixed |= fixed
        cell.preferred |= preferred
        return key

    @property
    def counts(self) -> dict[Hashable, float]:
        """Value of every cell."""
        return {k: c.value for k, c in self.cells.items()}

    def published(self, key: Hashable) -> bool:
        """Whether the cell is shown somewhere."""
        return bool(self.cells[key].places)

    def total(self, total: Hashable, parts: Iterable[Hashable]) -> None:
        """Relate ``total = sum(parts)``."""
        equation: dict[Hashable, int] = {total: 1}
        for part in parts:
            equation[part] = equation.get(part, 0) - 1
        self.equations.append(equation)

    def at_most(self, small: Hashable, large: Hashable) -> None:
        """Relate ``small <= large``."""
        if small != large:
            self.inequalities.append({small: 1, large: -1})

    def same_if_equal(self, a: Hashable, b: Hashable) -> bool:
        """Relate ``a = b`` when their values are equal (the same patients counted twice)."""
        if a != b and self.cells[a].value == self.cells[b].value:
            self.equations.append({a: 1, b: -1})
            return True
        return False


def _value(value: Any) -> float | None:
    """Return a count as a float, or None when missing."""
    if value is None or isinstance(value, str):
        return None
    try:
        return None if pd.isna(value) else float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class _Links:
    """Cells that other tables link to."""

    flow: dict[tuple[FlowStage, str], Hashable] = field(default_factory=dict)
    rows: dict[tuple[str, str], Hashable] = field(default_factory=dict)
    groups: dict[tuple[str, Any], Hashable] = field(default_factory=dict)
    group_totals: dict[str, Hashable] = field(default_factory=dict)
    baseline_n: dict[tuple[str, Any, str], Hashable] = field(default_factory=dict)
    factors: tuple[str, ...] = ()
    """The comparisons the tables answer (:func:`pipeline.schemas.identity.declared_factors`)."""


def _detail(value: Any) -> str:
    """Return what a flow row is about (visit, outcome or rule) as text, ``""`` for none."""
    number = _value(value) if not isinstance(value, str) else None
    if number is not None:
        return f"{number:g}"
    return "" if value is None or value is pd.NA or value != value else str(value)


def _step(stage: FlowStage, detail: Any = None) -> tuple[FlowStage, str]:
    """Key of a flow row: its typed stage and what it is about (never its label or step text)."""
    return (stage, _detail(detail))


def _flow(grid: CellGrid, frame: pd.DataFrame, links: _Links) -> None:
    """Flow: enrolled = excluded + included = excluded + treated + not treated."""
    steps = links.flow
    for row in frame.index:
        value = _value(frame.loc[row, "patients"])
        if value is None:
            continue
        detail = frame.loc[row, "detail"] if "detail" in frame else None
        key = _step(FlowStage(str(frame.loc[row, "stage"])), detail)
        steps[key] = grid.cell(("flow", *key), value, ("flow", row, "patients"), fixed=True)
    enrolled, excluded, included = (
        _step(FlowStage.ENROLLED),
        _step(FlowStage.EXCLUDED),
        _step(FlowStage.INCLUDED),
    )
    treated, not_treated = _step(FlowStage.TREATED), _step(FlowStage.NOT_TREATED)
    if {enrolled, excluded, included} <= set(steps):
        grid.total(steps[enrolled], [steps[excluded], steps[included]])
    if {included, treated, not_treated} <= set(steps):
        grid.total(steps[included], [steps[treated], steps[not_treated]])
    reasons = [steps[s] for s in steps if s[0] is FlowStage.EXCLUSION_REASON]
    if reasons and excluded in steps:
        if sum(grid.cells[k].value for k in reasons) == grid.cells[steps[excluded]].value:
            grid.total(steps[excluded], reasons)


ACCOUNTING = ("raw_rows", "processed_rows", "quarantined_rows")


def _row_accounting(grid: CellGrid, frame: pd.DataFrame, links: _Links) -> None:
    """Link rows read = rows kept + rows quarantined, per file; the patients file is the flow."""
    for row in frame.index:
        table = str(frame.loc[row, "table"])
        keys = []
        for column in ACCOUNTING:
            value = _value(frame.loc[row, column])
            if value is None:
                break
            keys.append(
                grid.cell(
                    ("rows", table, column), value, ("row_accounting", row, column), fixed=True
                )
            )
            links.rows[(table, column)] = keys[-1]
        if len(keys) == len(ACCOUNTING):
            grid.total(keys[0], keys[1:])
    patients = {c: links.rows.get(("patients", c)) for c in ACCOUNTING}
    stages = (FlowStage.ENROLLED, FlowStage.INCLUDED, FlowStage.EXCLUDED)
    for step, column in zip(map(_step, stages), ACCOUNTING, strict=True):
        if step in links.flow and patients[column] is not None:
            grid.same_if_equal(links.flow[step], patients[column])


def _quarantine_reasons(grid: CellGrid, frame: pd.DataFrame, links: _Links) -> None:
    """Link the rows quarantined per rule.

    They add up to the file's quarantined rows when no row is counted twice.
    """
    by_table: dict[str, list[Hashable]] = {}
    for row in frame.index:
        value = _value(frame.loc[row, "rows"])
        if value is None:
            continue
        key = grid.cell(("reason", row), value, ("quarantine_reasons", row, "rows"), fixed=True)
        by_table.setdefault(str(frame.loc[row, "table"]), []).append(key)
    for table, keys in by_table.items():
        total = links.rows.get((table, "quarantined_rows"))
        if total is not None and sum(grid.cells[k].value for k in keys) == grid.cells[total].value:
            grid.total(total, keys)


def _same_patients(grid: CellGrid, key: tuple, by_factor: Mapping[Any, list], **flags) -> None:
    """Cells of each grouping add up to a total; equal totals are the same patients."""
    totals = []
    for factor, cells in by_factor.items():
        value = sum(grid.cells[c].value for c in cells)
        total = grid.cell(("sum", *key, factor), value, **flags)
        grid.total(total, cells)
        totals.append(total)
    for a, b in itertools.pairwise(totals):
        grid.same_if_equal(a, b)


def _table_one(grid: CellGrid, frame: pd.DataFrame, links: _Links) -> None:
    """Table 1: categories add up to the group size; the same patients under each grouping.

    Group sizes and category counts (binary "yes" and its implied "no") are sensitive; the
    number of patients with a continuous value is not (missing values are no characteristic).
    """
    kinds = frame["kind"]
    by_factor: dict[Any, list] = {}
    for row in frame.index[kinds == "patients"]:
        factor, level = frame.loc[row, "factor"], frame.loc[row, "level"]
        value = _value(frame.loc[row, "n"])
        if value is None:
            continue
        key = grid.cell(("group", factor, level), value, ("table_one", row, "n"), sensitive=True)
        links.groups[(factor, level)] = key
        by_factor.setdefault(factor, []).append(key)
    for factor, keys in by_factor.items():
        total = grid.cell(("group total", factor), sum(grid.cells[k].value for k in keys))
        grid.total(total, keys)
        links.group_totals[factor] = total
        for step in (_step(FlowStage.INCLUDED), _step(FlowStage.TREATED)):
            if step in links.flow:
                grid.same_if_equal(total, links.flow[step])
    totals = list(links.group_totals.values())
    for a, b in itertools.pairwise(totals):
        grid.same_if_equal(a, b)

    parts: dict[tuple, list] = {}
    binary: dict[tuple, list] = {}
    across: dict[tuple, dict[Any, list]] = {}
    for row in frame.index[kinds != "patients"]:
        factor, variable, level = (frame.loc[row, c] for c in ("factor", "variable", "level"))
        kind, category = kinds[row], frame.loc[row, "category"]
        category = "" if pd.isna(category) else str(category)
        value = _value(frame.loc[row, "n"])
        group = links.groups.get((factor, level))
        if value is None or group is None:
            continue
        place = ("table_one", row, "n")
        if kind == "categorical":
            key = grid.cell(
                ("t1", row),
                value,
                place,
                sensitive=True,
                preferred=category.strip().lower() in MISSING_CATEGORIES,
            )
            parts.setdefault((factor, variable, level), []).append(key)
            across.setdefault((variable, category), {}).setdefault(factor, []).append(key)
            continue
        if kind == "binary":  # "yes" and, where some were not recorded, "not recorded"
            key = grid.cell(("t1", row), value, place, sensitive=True)
            binary.setdefault((factor, variable, level), []).append(key)
            across.setdefault((variable, category), {}).setdefault(factor, []).append(key)
            continue
        key = grid.cell(("t1", row), value, place)
        rest = grid.cell(("t1 rest", row), grid.cells[group].value - value)
        grid.total(group, [key, rest])
        across.setdefault((variable, category), {}).setdefault(factor, []).append(key)
        across.setdefault((variable, "rest"), {}).setdefault(factor, []).append(rest)
        links.baseline_n[(factor, level, str(variable))] = key
    for (factor, _variable, level), keys in parts.items():
        grid.total(links.groups[(factor, level)], keys)
    for (factor, variable, level), keys in binary.items():
        # the implied "no": the group less "yes" and "not recorded"
        group = links.groups[(factor, level)]
        rest = grid.cell(
            ("t1 no", factor, variable, level),
            grid.cells[group].value - sum(grid.cells[k].value for k in keys),
            sensitive=True,
        )
        grid.total(group, [*keys, rest])
        across.setdefault((variable, "no"), {}).setdefault(factor, []).append(rest)
    for key, by in across.items():
        sensitive = any(grid.cells[c].sensitive for cells in by.values() for c in cells)
        _same_patients(grid, ("t1", *key), by, sensitive=sensitive)


def _mean_by_visit(grid: CellGrid, frame: pd.DataFrame, links: _Links) -> None:
    """Link the patients with a value at a visit, by group.

    At most the group, at most those assessed (the flow), at baseline the n of Table 1;
    groupings of the same patients add up alike.
    """
    factor_column = "factor" if "factor" in frame else None
    sums: dict[tuple, dict[Any, list]] = {}
    for row in frame.index:
        value = _value(frame.loc[row, "n"])
        if value is None:
            continue
        outcome, visit, level = (
            frame.loc[row, "outcome"],
            frame.loc[row, "visit"],
            frame.loc[row, "group"],
        )
        factor = frame.loc[row, factor_column] if factor_column else ""
        key = grid.cell(
            ("visit n", outcome, factor, visit, level),
            value,
            ("mean_by_visit", row, "n"),
            sensitive=True,
        )
        sums.setdefault((outcome, visit), {}).setdefault(factor, []).append(key)
        group = links.groups.get((factor, level))
        if group is not None:
            grid.at_most(key, group)
        if _value(visit) == 0:
            for (f, lv, variable), n in links.baseline_n.items():
                if f == factor and lv == level and variable.startswith(str(outcome)):
                    grid.same_if_equal(key, n)
    for (outcome, visit), by_factor in sums.items():
        _same_patients(grid, ("visit", outcome, visit), by_factor)
        assessed = (
            links.flow.get(_step(FlowStage.ASSESSED, visit)) if _value(visit) is not None else None
        )
        if assessed is None:
            continue
        for factor in by_factor:
            total = ("sum", "visit", outcome, visit, factor)
            grid.at_most(total, assessed)
            grid.same_if_equal(total, assessed)


def _responders(grid: CellGrid, frame: pd.DataFrame, links: _Links) -> None:
    """Per outcome and grouping: ``n = responders + non-responders`` per level and in total.

    The total ``n`` (patients analysed for the outcome) is fixed; everything else is sensitive.
    """
    totals_r: dict[Any, dict[Any, list]] = {}
    for (outcome, factor), part in frame.groupby(["outcome", "group"], sort=False):
        levels_n, levels_r = [], []
        total_n = total_r = None
        for row in part.index:
            n, r = _value(frame.loc[row, "n"]), _value(frame.loc[row, "responders"])
            if n is None or r is None:
                continue
            if frame.loc[row, "quantity"] == "proportion":
                level = frame.loc[row, "level"]
                cn = grid.cell(
                    ("resp n", outcome, factor, level), n, ("responders", row, "n"), sensitive=True
                )
                cr = grid.cell(
                    ("resp r", outcome, factor, level),
                    r,
                    ("responders", row, "responders"),
                    sensitive=True,
                )
                non = grid.cell(("resp non", outcome, factor, level), n - r, sensitive=True)
                grid.total(cn, [cr, non])
                levels_n.append(cn)
                levels_r.append(cr)
                group = links.groups.get((factor, level))
                if group is not None:
                    grid.at_most(cn, group)
            else:
                total_n = grid.cell(
                    ("resp N", outcome, factor), n, ("responders", row, "n"), fixed=True
                )
                total_r = grid.cell(
                    ("resp R", outcome, factor),
                    r,
                    ("responders", row, "responders"),
                    sensitive=True,
                )
        if total_n is None or total_r is None or not levels_n:
            continue
        grid.total(total_n, levels_n)
        grid.total(total_r, levels_r)
        non = grid.cell(
            ("resp NON", outcome, factor),
            grid.cells[total_n].value - grid.cells[total_r].value,
            sensitive=True,
        )
        grid.total(total_n, [total_r, non])
        analysed = links.flow.get(_step(FlowStage.ANALYSED, outcome))
        if analysed is not None:
            grid.at_most(total_n, analysed)
        totals_r.setdefault(outcome, {})[factor] = (total_n, total_r)
    for by_factor in totals_r.values():
        pairs = list(by_factor.values())
        for (na, ra), (nb, rb) in itertools.pairwise(pairs):
            if grid.same_if_equal(na, nb):
                grid.same_if_equal(ra, rb)


def _adverse_events(grid: CellGrid, frame: pd.DataFrame, links: _Links, name: str) -> None:
    """Link adverse events (sensitive) and sessions per level.

    The sessions add up to the valid sessions of the row accounting when every valid session
    has a level.
    """
    columns = {
        "adverse_event_rates": [("events", "level", "events"), ("sessions", "level", "sessions")],
        "adverse_event_rate_ratio": [
            ("events", "level", "events"),
            ("sessions", "level", "sessions"),
            ("events", "reference", "ref_events"),
            ("sessions", "reference", "ref_sessions"),
        ],
    }[name]
    sessions: dict[Any, dict[Any, Hashable]] = {}
    for row in frame.index:
        group = frame.loc[row, "group"]
        for what, level_column, column in columns:
            value = _value(frame.loc[row, column])
            if value is None:
                continue
            level = frame.loc[row, level_column]
            key = grid.cell(
                ("ae", what, group, level), value, (name, row, column), sensitive=what == "events"
            )
            if what == "sessions":
                sessions.setdefault(group, {})[level] = key
        if name == "adverse_event_rates" and "not_recorded" in frame:
            value = _value(frame.loc[row, "not_recorded"])
            if value is not None:
                grid.cell(
                    ("ae", "not recorded", group, frame.loc[row, "level"]),
                    value,
                    (name, row, "not_recorded"),
                )
    valid = links.rows.get(("sessions", "processed_rows"))
    for group, by_level in sessions.items():
        keys = list(by_level.values())
        total = grid.cell(("ae sessions", group), sum(grid.cells[k].value for k in keys))
        grid.total(total, keys)
        if valid is not None:
            grid.same_if_equal(total, valid)


def _diagnostics(grid: CellGrid, frame: pd.DataFrame, links: _Links) -> None:
    """Link the patients per model.

    The analysed total (fixed), or for a sensitivity analysis (completers, per protocol) a
    count of patients by an event; observations are not patients.
    """
    for row in frame.index:
        kind = kind_of(str(frame.loc[row, "analysis"]), links.factors)
        sensitive = kind is AnalysisKind.SENSITIVITY
        for column in ("n_patients", "n_obs"):
            if column not in frame:
                continue
            value = _value(frame.loc[row, column])
            if value is None:
                continue
            is_patients = column == "n_patients"
            grid.cell(
                ("model", row, column),
                value,
                ("diagnostics", row, column),
                sensitive=is_patients and sensitive,
                fixed=is_patients and not sensitive,
            )
        outcome = frame.loc[row, "outcome"] if "outcome" in frame else None
        analysed = links.flow.get(_step(FlowStage.ANALYSED, outcome))
        if analysed is not None and ("model", row, "n_patients") in grid.cells:
            grid.at_most(("model", row, "n_patients"), analysed)


def _sessions_to_response(grid: CellGrid, frame: pd.DataFrame, name: str) -> None:
    """Link the patients and responders of each group level (both sensitive).

    The same level's patients and events are one cell in the medians and hazard-ratio tables
    (the patients of the shares table too); non-responders (patients − events) can be
    computed, so they are a cell of their own. The curve table holds no count: it is cut
    where fewer patients than the threshold remain at risk
    (:func:`pipeline.describe.sessions_to_response.sessions_to_response_tables`).
    """
    columns = {
        "sessions_to_response": ("patients", "events"),
        "sessions_to_response_hr": ("patients", "events"),
        "sessions_to_response_shares": ("patients", "at_risk_after"),
    }[name]
    for row in frame.index:
        key = tuple(frame.loc[row, c] for c in ("outcome", "endpoint", "group", "level"))
        found = {}
        for column in columns:
            value = _value(frame.loc[row, column])
            if value is None:
                continue
            found[column] = grid.cell(
                ("s2r", column, *key), value, (name, row, column), sensitive=True
            )
        if {"patients", "events"} <= set(found):
            total = found["patients"]
            non = grid.cell(
                ("s2r", "non-events", *key),
                grid.cells[total].value - grid.cells[found["events"]].value,
                sensitive=True,
            )
            grid.total(total, [found["events"], non])
        if {"patients", "at_risk_after"} <= set(found):
            grid.at_most(found["at_risk_after"], found["patients"])


def _side_effects(grid: CellGrid, tables: Mapping[str, pd.DataFrame]) -> None:
    """Link the side-effect counts: events (sensitive) per level, type and severity.

    Within a level, the types add up to ``any`` and so do the severities; the rate-ratio
    table repeats the rates' counts; the durations' events of a type add up over the depth
    levels, and the serious events are part of the severe ones.
    """
    sessions: dict[Any, dict[Any, Hashable]] = {}
    rates = tables.get("side_effect_rates")
    parts: dict[tuple, dict[str, list[Hashable]]] = {}
    if rates is not None:
        for row in rates.index:
            group, level = rates.loc[row, "group"], rates.loc[row, "level"]
            kind, severity = rates.loc[row, "ae_type"], rates.loc[row, "ae_severity"]
            value = _value(rates.loc[row, "events"])
            if value is not None:
                key = grid.cell(
                    ("se", group, level, kind, severity),
                    value,
                    ("side_effect_rates", row, "events"),
                    sensitive=True,
                )
                split = "types" if severity == "all" else "severities"
                if kind != "any" or severity != "all":
                    parts.setdefault((group, level), {}).setdefault(split, []).append(key)
            t = _value(rates.loc[row, "sessions"])
            if t is not None:
                place = ("side_effect_rates", row, "sessions")
                cell = grid.cell(("se sessions", group, level), t, place)
                sessions.setdefault(group, {})[level] = cell
        for (group, level), split in parts.items():
            total = ("se", group, level, "any", "all")
            if total in grid.cells:
                for keys in split.values():
                    grid.total(total, keys)
                # one event per session: the same count as the adverse-event table's
                legacy = ("ae", "events", group, level)
                if legacy in grid.cells:
                    grid.same_if_equal(total, legacy)
    ratios = tables.get("side_effect_rate_ratios")
    if ratios is not None:
        for row in ratios.index:
            group, kind = ratios.loc[row, "group"], ratios.loc[row, "ae_type"]
            for level_column, events, count in (
                ("level", "events", "sessions"),
                ("reference", "ref_events", "ref_sessions"),
            ):
                level = ratios.loc[row, level_column]
                place = ("side_effect_rate_ratios", row)
                value = _value(ratios.loc[row, events])
                if value is not None:
                    grid.cell(
                        ("se", group, level, kind, "all"), value, (*place, events), sensitive=True
                    )
                value = _value(ratios.loc[row, count])
                if value is not None:
                    grid.cell(("se sessions", group, level), value, (*place, count))
    durations = tables.get("side_effect_durations")
    if durations is not None:
        for row in durations.index:
            kind = durations.loc[row, "ae_type"]
            keys = {}
            for column in ("events", "with_duration"):
                value = _value(durations.loc[row, column])
                if value is not None:
                    keys[column] = grid.cell(
                        ("se duration", kind, column),
                        value,
                        ("side_effect_durations", row, column),
                        sensitive=True,
                    )
            if len(keys) == 2:
                grid.at_most(keys["with_duration"], keys["events"])
            by_depth = [("se", "depth", level, kind, "all") for level in sessions.get("depth", {})]
            if "events" in keys and by_depth and all(k in grid.cells for k in by_depth):
                grid.total(keys["events"], by_depth)
    serious = tables.get("serious_events")
    if serious is not None:
        for row in serious.index:
            value = _value(serious.loc[row, "events"])
            if value is not None:
                grid.cell(
                    ("se serious", *(serious.loc[row, c] for c in serious.columns[:-1])),
                    value,
                    ("serious_events", row, "events"),
                    sensitive=True,
                )


def _safety_signals(grid: CellGrid, tables: Mapping[str, pd.DataFrame]) -> None:
    """Link the flagged patients' counts: patients and events (sensitive), sessions.

    Per flag, the depths' patients are at most the flag's (a patient may have both depths),
    the depths' events and sessions add up to the flag's; the rate-ratio table repeats the
    flag's events and recorded sessions.
    """
    signals = tables.get("safety_signals")
    if signals is not None:
        by_flag: dict[Any, dict[str, dict[Any, Hashable]]] = {}
        for row in signals.index:
            flag, depth = signals.loc[row, "flag"], signals.loc[row, "depth"]
            for column in ("patients", "events", "sessions", "recorded_sessions"):
                value = _value(signals.loc[row, column])
                if value is None:
                    continue
                key = grid.cell(
                    ("signal", column, flag, depth),
                    value,
                    ("safety_signals", row, column),
                    sensitive=column in ("patients", "events"),
                )
                by_flag.setdefault(flag, {}).setdefault(column, {})[depth] = key
        for columns in by_flag.values():
            for column, keys in columns.items():
                total = keys.get("all")
                parts = [k for depth, k in keys.items() if depth != "all"]
                if total is None or not parts:
                    continue
                if column == "patients":
                    for part in parts:
                        grid.at_most(part, total)
                else:
                    grid.total(total, parts)
    ratios = tables.get("safety_signal_rate_ratios")
    if ratios is not None:
        for row in ratios.index:
            flag = ratios.loc[row, "flag"]
            for column, what, sensitive in (
                ("events", "events", True),
                ("sessions", "recorded_sessions", False),
            ):
                value = _value(ratios.loc[row, column])
                if value is not None:
                    grid.cell(
                        ("signal", what, flag, "all"),
                        value,
                        ("safety_signal_rate_ratios", row, column),
                        sensitive=sensitive,
                    )


def _durability(grid: CellGrid, frame: pd.DataFrame) -> None:
    """Link each follow-up's patients and responders (sensitive).

    The still-responding patients are among the end-of-treatment responders, who are among
    the patients; the non-responders of each can be computed, so they are cells too.
    """
    for row in frame.index:
        key = tuple(frame.loc[row, c] for c in ("outcome", "group", "level", "follow_up"))
        found = {}
        for column in ("patients", "eot_responders", "still_responding"):
            value = _value(frame.loc[row, column])
            if value is not None:
                found[column] = grid.cell(
                    ("durable", column, *key), value, ("durability", row, column), sensitive=True
                )
        for small, large in (
            ("still_responding", "eot_responders"),
            ("eot_responders", "patients"),
        ):
            if small in found and large in found:
                rest = grid.cell(
                    ("durable", f"{large} not {small}", *key),
                    grid.cells[found[large]].value - grid.cells[found[small]].value,
                    sensitive=True,
                )
                grid.total(found[large], [found[small], rest])


BUILDERS = {
    "flow": _flow,
    "row_accounting": _row_accounting,
    "quarantine_reasons": _quarantine_reasons,
    "table_one": _table_one,
    "mean_by_visit": _mean_by_visit,
    "responders": _responders,
    "diagnostics": _diagnostics,
}
AE_TABLES = ("adverse_event_rates", "adverse_event_rate_ratio")
S2R_TABLES = ("sessions_to_response", "sessions_to_response_hr", "sessions_to_response_shares")
SIDE_EFFECT_TABLES = (
    "side_effect_rates",
    "side_effect_rate_ratios",
    "side_effect_durations",
    "serious_events",
)
SIGNAL_TABLES = ("safety_signals", "safety_signal_rate_ratios", "durability")
# tables that hold no count (estimates only) or only counts derived in another table
NO_COUNTS = frozenset(
    {
        "fixed_effects",
        "variance_components",
        "emmeans",
        "contrasts",
        "effect_sizes",
        "model_comparison",
        "covariance_structures",  # the MMRM's covariance structures tried, with AIC and BIC
        "table_one_std_diff",
        "recorded_fields",  # rows of each file and rows with a value: file counts, never hidden
        "skipped_analyses",  # analyses a design cannot support, with the reason
        "sensitivity_missing",  # its patient counts stay in memory (schemas.outputs.UNPUBLISHED)
        "tipping_point",
        "sessions_to_response_curve",  # estimates only, cut below the threshold at risk
        "clinic_omitted",  # the clinic questions the data cannot answer, with the reason
        # assessments per session count, pooled upwards to at least max(10, threshold) rows
        "dose_response",
        "answer",  # headline estimates and their verdicts (analyses.headline): no counts
        # pairs and patients behind each estimate: a factor (depth, twitch) enters only when
        # each level has at least the threshold of patients, so no count is below it
        "immediate_relief",
        "immediate_relief_next_visit",
        # patients per co-intervention group and comparison level: groups with fewer than the
        # threshold at a level are left out of the models (describe.combined_care)
        "combined_care",
        "combined_care_tests",
    }
)
KNOWN = frozenset(
    {*BUILDERS, *AE_TABLES, *S2R_TABLES, *SIDE_EFFECT_TABLES, *SIGNAL_TABLES, *NO_COUNTS}
)


def link_tables(tables: Mapping[str, pd.DataFrame]) -> CellGrid:
    """Every count of the tables as cells of one grid, linked within and across tables.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The tables as computed (before suppression), by file stem, each with a ``RangeIndex``
        (places are ``(table, row position, column)``).

    Returns
    -------
    CellGrid
    """
    grid = CellGrid()
    links = _Links(factors=declared_factors(tables))
    for name, builder in BUILDERS.items():  # order matters: later tables link to earlier ones
        if name in tables:
            builder(grid, tables[name], links)
        if name == "responders":
            for ae in AE_TABLES:
                if ae in tables:
                    _adverse_events(grid, tables[ae], links, ae)
    for name in S2R_TABLES:
        if name in tables:
            _sessions_to_response(grid, tables[name], name)
    _side_effects(grid, tables)
    _safety_signals(grid, tables)
    if "durability" in tables:
        _durability(grid, tables["durability"])
    return _true_relations(grid)


def _true_relations(grid: CellGrid) -> CellGrid:
    """Keep the relations the counts satisfy (tables made from other data may break one)."""

    def value(relation: dict[Hashable, int]) -> float:
        return sum(coef * grid.cells[k].value for k, coef in relation.items())

    grid.equations = [eq for eq in grid.equations if abs(value(eq)) < 1e-9]
    grid.inequalities = [ineq for ineq in grid.inequalities if value(ineq) < 1e-9]
    return grid
