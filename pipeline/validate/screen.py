"""Which columns certainly pass their pandera checks, decided from a few column statistics.

pandera evaluates every check on every cell, which is the right way to find the cells that fail
but costs as much when none does. Most columns of most files pass: a score column whose smallest
and largest values lie within the schema's range cannot hold an out-of-range cell, and a code
column whose distinct values are all allowed cannot hold an unknown code. This module reads the
checks of the schema (:mod:`pipeline.schemas.raw` stays the only statement of the rules) and tells,
from the column's minimum, maximum, distinct values and missing count, whether every one of its
checks passes on every cell. :func:`pipeline.validate.study.check_values` then gives pandera only
the
columns that are not cleared this way, with all the table's row rules; the failures pandera
reports are the same as if it had checked every column.

A column is cleared only when its dtype is the schema's, it is not declared unique, and every
check is one the screen understands (``greater_than_or_equal_to``, ``less_than_or_equal_to``,
``isin``, ``str_length``, and the not-null rule); any other check leaves the column to pandera.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.engines import pandas_engine


def cleared_columns(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> list[str]:
    """Return the schema's columns of ``frame`` that pass all their checks on every cell.

    Parameters
    ----------
    schema : pandera.DataFrameSchema
        The table's schema.
    frame : pandas.DataFrame
        The typed table.

    Returns
    -------
    list of str
        Columns pandera need not check: each would report no failure.
    """
    return [
        name
        for name, column in schema.columns.items()
        if name in frame and _clears(column, frame[name])
    ]


#: The range checks, decided from a column's smallest and largest value.
RANGE_CHECKS = ("greater_than_or_equal_to", "less_than_or_equal_to")
#: Every check the screen can decide (any other leaves the column to pandera).
KNOWN_CHECKS = (*RANGE_CHECKS, "isin", "str_length")


def _clears(column: pa.Column, values: pd.Series) -> bool:
    if column.unique or not _dtype_matches(column.dtype, str(values.dtype)):
        return False
    if values.hasnans and not column.nullable:
        return False
    if len(values) == 0:
        return True  # an empty table (a study without a session log) breaks no check
    if any(check.name not in KNOWN_CHECKS for check in column.checks):
        return False
    bounds = [check for check in column.checks if check.name in RANGE_CHECKS]
    if bounds and not _within(bounds, values):
        return False
    for check in column.checks:
        if check.name == "isin":
            if not _distinct(values).issubset(check.statistics["allowed_values"]):
                return False
        elif check.name == "str_length" and not _lengths_within(values, check.statistics):
            return False
    return True


def _within(checks: list[pa.Check], values: pd.Series) -> bool:
    """Whether every cell that is not missing passes the range ``checks``.

    The range of a nullable whole-number column is first taken over every value it holds, those
    under its missing cells included (no copy of the column): when that range passes, so does
    the narrower one of the cells that are filled, which is found only when it does not (and
    only for such a column: any other's first range is already its cells' own).
    """
    low, high = _min_max(values, exact=False)
    hidden = isinstance(values.array, pd.arrays.IntegerArray) and values.hasnans
    if low is not None and hidden and not _all_pass(checks, low, high):
        low, high = _min_max(values)
    return low is None or _all_pass(checks, low, high)  # (all missing: checks skip them)


def _all_pass(checks: list[pa.Check], low: object, high: object) -> bool:
    """Whether a column ranging from ``low`` to ``high`` passes every range check."""
    return all(_passes(check, low, high) for check in checks)


def _passes(check: pa.Check, low: object, high: object) -> bool:
    """Whether a column ranging from ``low`` to ``high`` passes a range check."""
    if check.name == "greater_than_or_equal_to":
        return low >= check.statistics["min_value"]
    return high <= check.statistics["max_value"]


def _min_max(values: pd.Series, exact: bool = True) -> tuple[object, object]:
    """Smallest and largest value, missing cells skipped; ``(None, None)`` when all are missing.

    A float column without missing values, or with NaN as its only missing marker, is reduced
    by numpy directly (several times faster than pandas' reductions). With ``exact`` false, a
    nullable whole-number column's range takes in the values under its missing cells too (a
    range that holds the cells' own).
    """
    if str(values.dtype) == "float64":
        numbers = values.to_numpy()
        if values.hasnans:
            if np.isnan(numbers).all():
                return None, None
            return np.nanmin(numbers), np.nanmax(numbers)
        return numbers.min(), numbers.max()
    if isinstance(values.array, pd.arrays.IntegerArray):
        return _masked_min_max(values.array, exact)
    if values.hasnans and values.isna().all():
        return None, None
    return values.min(), values.max()


def _masked_min_max(values: pd.arrays.IntegerArray, exact: bool = True) -> tuple[object, object]:
    """Smallest and largest whole number of a nullable integer column, by numpy.

    pandas' own reductions take several times as long on a column without missing cells.
    With ``exact`` false, the values under the missing cells are taken in, which saves a copy
    of the filled ones. (``_data`` and ``_mask`` are the array's values and missing flags:
    pandas keeps no public view of them.)
    """
    numbers, missing = values._data, values._mask
    if exact and missing.any():
        numbers = numbers[~missing]
        if not numbers.size:
            return None, None
    return numbers.min(), numbers.max()


@functools.cache
def _dtype_matches(expected: object, actual: str) -> bool:
    """Whether pandera accepts ``actual`` for a column declared ``expected`` (cached)."""
    return bool(expected.check(pandas_engine.Engine.dtype(actual)))


def _text(values: pd.Series) -> pyarrow.ChunkedArray | None:
    """Return a text column's cells as pyarrow strings (``None`` for any other column)."""
    if str(values.dtype) != "str":
        return None
    array = pyarrow.array(values)
    return array if isinstance(array, pyarrow.ChunkedArray) else pyarrow.chunked_array([array])


def _distinct(values: pd.Series) -> set[object]:
    text = _text(values)
    if text is not None:
        return {v for v in pc.unique(text).to_pylist() if v is not None}
    return set(pd.unique(values.dropna()))


def _lengths_within(values: pd.Series, stats: dict) -> bool:
    text = _text(values)
    if text is None:
        return False
    low, high, exact = stats.get("min_value"), stats.get("max_value"), stats.get("exact_value")
    if exact is None and (low is None or low <= 1):
        # A cell has at most as many characters as bytes, and one at least when it has a byte:
        # the byte lengths (read off the offsets, nothing decoded) settle the usual bounds.
        sizes = pc.min_max(pc.binary_length(text)).as_py()
        if sizes["min"] is not None and (
            (low is None or sizes["min"] >= low) and (high is None or sizes["max"] <= high)
        ):
            return True
    lengths = pc.min_max(pc.utf8_length(text)).as_py()
    if exact is not None:
        return lengths["min"] == exact and lengths["max"] == exact
    return (low is None or lengths["min"] >= low) and (high is None or lengths["max"] <= high)
