"""Compare regenerated tidy tables with committed ones, number by number.

CI regenerates the demo report and checks that its tables carry the same numbers as the tables
committed in ``tests/expected/tables``: the same files, columns and rows; text cells (labels,
suppression markers) identical; numbers equal to a relative tolerance of 1e-6 (floating-point
results may differ in the last digits between machines). Columns that legitimately change from
run to run (:data:`IGNORED_COLUMNS`, the fit times, which runs now write to a run log instead)
are not compared.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

IGNORED_COLUMNS = frozenset({"fit_seconds"})
REL_TOL = 1e-6
ABS_TOL = 1e-12


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _same(expected: str, actual: str, rel_tol: float) -> bool:
    if expected == actual:
        return True
    a, b = _number(expected), _number(actual)
    if a is None or b is None:
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=ABS_TOL)


def compare_table(expected: Path, actual: Path, rel_tol: float = REL_TOL) -> list[str]:
    """List the differences between two CSV tables.

    Returns
    -------
    list of str
        One sentence per difference, naming the file, the data row (1-based) and the column.
    """
    name = expected.name
    read = {"dtype": str, "keep_default_na": False}
    old, new = pd.read_csv(expected, **read), pd.read_csv(actual, **read)
    if list(old.columns) != list(new.columns):
        return [f"{name}: columns differ (expected {list(old.columns)}, got {list(new.columns)})"]
    if len(old) != len(new):
        return [f"{name}: expected {len(old)} rows, got {len(new)}"]
    out = []
    for column in [c for c in old.columns if c not in IGNORED_COLUMNS]:
        for row, (a, b) in enumerate(zip(old[column], new[column], strict=True), start=1):
            if not _same(a, b, rel_tol):
                out.append(f"{name}: row {row}, column {column}: expected {a!r}, got {b!r}")
    return out


def compare_folders(expected: Path, actual: Path, rel_tol: float = REL_TOL) -> list[str]:
    """List the differences between two folders of CSV tables (missing and extra files too)."""
    old = {p.name: p for p in sorted(Path(expected).glob("*.csv"))}
    new = {p.name: p for p in sorted(Path(actual).glob("*.csv"))}
    out = [f"{name}: committed but not regenerated" for name in sorted(set(old) - set(new))]
    out += [f"{name}: regenerated but not committed" for name in sorted(set(new) - set(old))]
    for name in sorted(set(old) & set(new)):
        out += compare_table(old[name], new[name], rel_tol)
    return out
