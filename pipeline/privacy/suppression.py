"""Disclosure control of the published tables: two audiences, small-cell suppression, an audit.

**Audiences** (``[privacy] audience``). ``internal`` publishes every count as computed, and the
report says on its first page that it is for internal use only. ``publication`` (the default)
applies the rule below.

**What is suppressed.** A count of patients by a characteristic, an outcome or an event (a
category of Table 1, the patients of a group, responders, adverse events, patients with a value
at a visit in a group, completers) from 1 to ``small_cell_threshold − 1`` is shown as ``<k``
(primary suppression). Overall totals of enrolled, included, assessed and analysed patients and
the row counts of the input files (rows read, kept and quarantined, by file and by rule) are never
suppressed: they describe the data, not a patient. Zeros are shown.

**Complementary suppression.** A reader who knows the other numbers, the links between the
tables (:mod:`pipeline.privacy.cells`) and that ``<k`` means 1 to ``k − 1`` may be able to work
out a suppressed count. While the exact integer audit (:mod:`pipeline.privacy.audit`) finds such a
count, one more count is hidden as ``[c]``: of the counts tied to it, the first in the order
(missing or unknown categories first, then the smallest count) that makes it undetermined without
leaving another hidden count determined (else the cheapest such pair); at the end every ``[c]``
that is not needed is shown again. Zeros and fixed totals are never chosen; a count that follows
from fixed totals alone is public by the rule and shown.

Statistics that would reveal a hidden count are withheld as ``[c]`` too (a percentage, a
proportion, a rate and its interval, a rate ratio, a responder block's risk difference and odds
ratio, a standardised difference of proportions, a mean of fewer than ``k`` patients and the
interval of a mean whose ``n`` is hidden).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping

import pandas as pd

from pipeline.privacy.audit import COMPLEMENT, PRIMARY, Audit, audit_tables
from pipeline.privacy.cells import KNOWN, CellGrid, Place, link_tables

COMPLEMENTARY = "[c]"
AUDIENCES = ("publication", "internal")


def marker(threshold: int) -> str:
    """Return the text shown for a small count."""
    return f"<{threshold}"


def _candidates(audit: Audit, target: Hashable) -> list[Hashable]:
    """List the published counts tied to ``target`` that may still be hidden, cheapest first.

    A small count of patients is never one: ``[c]`` on a count of patients tells the reader it
    is at least ``k`` (a small count left shown follows from totals, public by the rule).
    """
    grid = audit.grid
    _, relations = audit.component(target)
    seen: dict[Hashable, int] = {}
    for i in relations:
        for key in audit.constraints[i][0]:
            cell = grid.cells[key]
            if (
                key not in seen
                and cell.places
                and not cell.fixed
                and cell.value > 0
                and not (cell.sensitive and cell.value < audit.threshold)
                and key not in audit.marker
                and key not in audit.shown_elsewhere
            ):
                seen[key] = len(seen)
    return sorted(seen, key=lambda k: (not grid.cells[k].preferred, grid.cells[k].value, seen[k]))


def _left_open(audit: Audit, target: Hashable, hide: tuple[Hashable, ...]) -> int | None:
    """Count what stays determined with the cells ``hide`` hidden too.

    Returns None when ``target`` is still determined, else how many hidden cells tied to them
    are still determined (0: they protect it).
    """
    for key in hide:
        audit.suppress(key)
    try:
        if audit.disclosed(target):
            return None
        near = {k for key in hide for k in _targets_near(audit, key)}
        return sum(audit.disclosed(k) for k in near)
    finally:
        for key in hide:
            del audit.marker[key]


PAIR_POOL = 10  # cheapest candidates tried in pairs when no single one protects a cell


def _choose(audit: Audit, target: Hashable, candidates: list[Hashable]) -> tuple[Hashable, ...]:
    """Choose the cells to hide next so that ``target`` is protected.

    The cheapest candidate that protects ``target`` without leaving another hidden cell
    determined; else the cheapest such pair; else the candidate leaving fewest determined;
    else the cheapest.
    """
    cells = audit.grid.cells
    best, best_open = (candidates[0],), None
    for candidate in candidates:
        still = _left_open(audit, target, (candidate,))
        if still == 0:
            return (candidate,)
        if still is not None and (best_open is None or still < best_open):
            best, best_open = (candidate,), still
    pool = candidates[:PAIR_POOL]
    pairs = sorted(
        itertools.combinations(pool, 2),
        key=lambda p: (
            -sum(cells[k].preferred for k in p),
            sum(cells[k].value for k in p),
            [pool.index(k) for k in p],
        ),
    )
    for pair in pairs:
        if _left_open(audit, target, pair) == 0:
            return pair
    return best


def _targets_near(audit: Audit, key: Hashable) -> list[Hashable]:
    """Targets whose relations reach ``key``."""
    targets = set(audit.targets())
    near = []
    for i in audit.by_cell.get(key, []):
        for other in audit.constraints[i][0]:
            if audit.unknown(other):
                near += [k for k in audit.component(other)[0] if k in targets]
    return list(dict.fromkeys(near))


def _release(audit: Audit, complementary: list[Hashable]) -> list[Hashable]:
    """Show again every complementary cell that is not needed, the largest first."""
    grid = audit.grid
    kept = list(complementary)
    order = sorted(
        complementary, key=lambda k: (grid.cells[k].preferred, grid.cells[k].value), reverse=True
    )
    for key in order:
        del audit.marker[key]
        if any(audit.disclosed(t) for t in _targets_near(audit, key)):
            audit.suppress(key, COMPLEMENT)
        else:
            kept.remove(key)
    return kept


def protect(grid: CellGrid, threshold: int) -> tuple[set[Hashable], set[Hashable]]:
    """Choose the cells to suppress.

    Parameters
    ----------
    grid : CellGrid
        The counts and their relations.
    threshold : int
        Sensitive counts from 1 to ``threshold - 1`` are suppressed.

    Returns
    -------
    primary : set
        Published sensitive cells below the threshold.
    complementary : set
        Further published cells hidden so that the exact integer audit determines no hidden
        cell (suppressed, or a small implied count such as non-responders).

    Notes
    -----
    A count that follows from totals that are never hidden (all 3 patients assessed at a visit
    were deep) is public by the rule: it is shown, not suppressed.

    Raises
    ------
    RuntimeError
        When a hidden count can be neither protected nor shown (a bug in the relations).
    """
    primary = [
        k
        for k, c in grid.cells.items()
        if c.places and c.sensitive and not c.fixed and 1 <= c.value < threshold
    ]
    audit = Audit(grid, dict.fromkeys(primary, PRIMARY), threshold)
    pending = audit.targets()
    complementary: list[Hashable] = []
    # hiding a count only widens what the others may be, so a target once safe stays safe
    while pending:
        target = pending[0]
        if not audit.disclosed(target):
            pending.pop(0)
            continue
        candidates = _candidates(audit, target)
        if not candidates:  # it follows from totals that are never hidden: public by the rule
            pending.pop(0)
            if audit.follows_from_totals(target):
                audit.marker.pop(target, None)
                audit.shown_elsewhere.add(target)  # (shown: never a complement after this)
                primary = [k for k in primary if k != target]
                complementary = [k for k in complementary if k != target]
                continue
            raise RuntimeError(f"cannot protect the count {target!r}")
        for chosen in _choose(audit, target, candidates):
            audit.suppress(chosen, COMPLEMENT)
            complementary.append(chosen)
            pending.append(chosen)
    return set(primary), set(_release(audit, complementary))


# --- statistics withheld with the counts they would reveal -----------------------------------

Hidden = dict[str, set[tuple[int, str]]]  # table -> {(row, column)}


def _table_one(frames: Mapping[str, pd.DataFrame], hidden: Hidden, _threshold: int) -> list:
    """Withhold Table 1 statistics that would reveal a hidden count.

    A percentage of a hidden count or of a group whose size is hidden; a standardised
    difference of a categorical or binary variable with a hidden count or group size.
    """
    frame = frames["table_one"]
    cells = hidden.get("table_one", set())
    hidden_groups = {
        (frame.loc[r, "factor"], frame.loc[r, "level"])
        for r, _ in cells
        if frame.loc[r, "kind"] == "patients"
    }
    out: list[Place] = []
    variables = set()
    for row in frame.index:
        if frame.loc[row, "kind"] not in ("categorical", "binary"):
            continue
        group = (frame.loc[row, "factor"], frame.loc[row, "level"])
        if (row, "n") in cells or group in hidden_groups:
            out.append(("table_one", row, "percent"))
            variables.add((frame.loc[row, "factor"], frame.loc[row, "variable"]))
    diff = frames.get("table_one_std_diff")
    if diff is not None:
        out += [
            ("table_one_std_diff", r, "std_diff")
            for r in diff.index
            if (diff.loc[r, "factor"], diff.loc[r, "variable"]) in variables
        ]
    return out


STATISTICS = ("mean", "sd", "ci_low", "ci_high", "mean_weeks")


def _mean_by_visit(frames: Mapping[str, pd.DataFrame], hidden: Hidden, threshold: int) -> list:
    """Withhold a mean of fewer than ``k`` patients, and the interval of a hidden ``n``.

    With the SD, the width of a t interval gives ``n``.
    """
    frame = frames["mean_by_visit"]
    n = pd.to_numeric(frame["n"], errors="coerce")
    few = set(frame.index[(n >= 1) & (n < threshold)])
    out = [("mean_by_visit", r, c) for r in few for c in STATISTICS if c in frame]
    for r, _ in hidden.get("mean_by_visit", set()):
        out += [("mean_by_visit", r, c) for c in ("ci_low", "ci_high") if c in frame]
    return out


def _responders(frames: Mapping[str, pd.DataFrame], hidden: Hidden, _threshold: int) -> list:
    """Every estimate of an outcome's responder block with a hidden count."""
    frame = frames["responders"]
    touched = {r for r, _ in hidden.get("responders", set())}
    out = []
    for _, part in frame.groupby(["outcome", "group"], sort=False):
        if touched & set(part.index):
            out += [
                ("responders", r, c)
                for r in part.index
                for c in ("estimate", "ci_low", "ci_high", "p_value")
            ]
    return out


def _rates(frames: Mapping[str, pd.DataFrame], hidden: Hidden, _threshold: int) -> list:
    """Withhold a rate and its interval, a rate ratio with its interval and p, of hidden counts."""
    out: list[Place] = []
    for name, columns in (
        ("adverse_event_rates", ("rate_per_100", "ci_low", "ci_high")),
        ("adverse_event_rate_ratio", ("rate_ratio", "ci_low", "ci_high", "p_value")),
        ("side_effect_rates", ("rate_per_100", "ci_low", "ci_high")),
        ("side_effect_rate_ratios", ("rate_ratio", "ci_low", "ci_high", "p_value")),
        ("sessions_to_response", ("median", "ci_low", "ci_high")),
        ("safety_signals", ("rate_per_100", "ci_low", "ci_high")),
        ("durability", ("change", "ci_low", "ci_high", "share", "share_low", "share_high")),
        ("safety_signal_rate_ratios", ("rate_ratio", "ci_low", "ci_high", "p_value")),
        ("sessions_to_response_shares", ("share", "ci_low", "ci_high")),
        ("sessions_to_response_hr", ("hazard_ratio", "log_hr", "std_err", "ci_low", "ci_high")),
    ):
        if name in frames:
            rows = {r for r, _ in hidden.get(name, set())}
            out += [(name, r, c) for r in rows for c in columns if c in frames[name]]
    return out


WITHHOLD = {
    "table_one": _table_one,
    "mean_by_visit": _mean_by_visit,
    "responders": _responders,
    "adverse_event_rates": _rates,
    "side_effect_rates": _rates,
    "sessions_to_response": _rates,
    "safety_signals": _rates,
    "durability": _rates,
}


def _places(grid: CellGrid, keys: set[Hashable]) -> Hidden:
    out: Hidden = {}
    for key in keys:
        for table, row, column in grid.cells[key].places:
            out.setdefault(table, set()).add((row, column))
    return out


def publish_tables(
    tables: Mapping[str, pd.DataFrame], threshold: int, audience: str = "publication"
) -> dict[str, pd.DataFrame]:
    """Apply disclosure control to every table about to be published.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Tidy tables by name (file stem in ``reports/tables``).
    threshold : int
        ``[privacy] small_cell_threshold``; 0 or 1 publishes every count as it is.
    audience : str
        ``"publication"`` (suppress) or ``"internal"`` (exact counts).

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables as published: hidden counts are ``<threshold>`` or ``[c]`` in columns turned
        to ``object``; other values keep their type.

    Raises
    ------
    RuntimeError
        When the audit of the published tables finds a determined hidden count (a bug).
    ValueError
        When a table has no known content (:data:`pipeline.privacy.cells.KNOWN`): decide
        whether it holds counts and add it there; or when the audience is unknown.
    """
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {', '.join(AUDIENCES)}, got {audience!r}")
    unknown = sorted(set(tables) - KNOWN)
    if unknown:
        raise ValueError(
            f"table {unknown[0]!r} has no small-cell rule in pipeline.privacy.cells; add one "
            "(list it in NO_COUNTS when it holds no counts of patients, sessions or rows)"
        )
    frames = {name: frame.reset_index(drop=True) for name, frame in tables.items()}
    if audience == "internal" or threshold <= 1:
        return frames
    grid = link_tables(frames)
    primary, complementary = protect(grid, threshold)
    primary_places = _places(grid, primary)
    hidden = _places(grid, primary | complementary)
    changes: list[tuple[Place, str]] = []
    for name, cells in hidden.items():
        small = primary_places.get(name, set())
        changes += [
            ((name, r, c), marker(threshold) if (r, c) in small else COMPLEMENTARY)
            for r, c in cells
        ]
    taken = {p for p, _ in changes}
    for name, rule in WITHHOLD.items():
        if name in frames:
            changes += [
                (p, COMPLEMENTARY)
                for p in rule(frames, hidden, threshold)
                if p not in taken and p[0] in frames
            ]
            taken = {p for p, _ in changes}
    out = {name: frame.copy() for name, frame in frames.items()}
    for name, column in sorted({(p[0], p[2]) for p, _ in changes}):
        out[name][column] = out[name][column].astype(object)
    for (name, row, column), text in sorted(changes, key=lambda c: (c[0][0], c[0][1], c[0][2])):
        out[name].loc[row, column] = text
    leaks = audit_tables(frames, out, threshold)
    if leaks:  # protect() rules this out; the audit of the tables as written proves it
        raise RuntimeError("suppression left a hidden count determined: " + leaks[0].describe())
    return out


def count_suppressed(tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Count the ``<k`` and ``[c]`` cells of published tables.

    Returns
    -------
    dict
        ``{"small": n, "complementary": n}``.
    """
    small = complementary = 0
    for frame in tables.values():
        for column in frame.columns:
            for value in frame[column]:
                if value == COMPLEMENTARY:
                    complementary += 1
                elif isinstance(value, str) and value.startswith("<"):
                    small += 1
    return {"small": small, "complementary": complementary}


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
