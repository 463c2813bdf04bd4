"""Several lines of a file merged into one canonical row, with their lineage and conflicts.

A visit sheet writes a patient's details on several lines; a measurements file writes each score
of an assessment on a line of its own. :func:`merge_lines` makes one row per key (the patient;
the patient and visit) and takes each column from the lines that fill it. Lines that give two
different values of one column are reported, so that the row is quarantined with the reason
(``conflicting_values``). Pure functions of frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.raw_tables import SOURCE_DETAIL, SOURCE_FILE, SOURCE_LINE
from pipeline.ingest.readers import _ARROW_TO_STR, STR
from pipeline.schemas.columns import PATIENT_ID


@dataclass(frozen=True)
class Merged:
    """Lines merged by key (:func:`merge_lines`).

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per key, in order of first line: ``source_file``, ``source_line`` (the first
        line), ``source_detail`` ("merged from lines 2, 4, 7"), ``patient_id`` and the columns,
        each the first value the key's lines give.
    lineage : pandas.DataFrame
        ``row`` (position in ``frame``), ``source_file``, ``source_line``: every line merged.
    conflicts : list of tuple
        ``(row, column, values)`` for each column to which a key's lines give several values
        (the distinct values, in line order).
    """

    frame: pd.DataFrame
    lineage: pd.DataFrame
    conflicts: list[tuple[int, str, list[str]]]


def merge_lines(
    frame: pd.DataFrame, key: pd.Series | np.ndarray, columns: list[str], row_word: str
) -> Merged:
    """Merge the lines of each key into one row; collect the columns whose lines disagree.

    Parameters
    ----------
    frame : pandas.DataFrame
        Provenance, ``patient_id`` and ``columns``, one row per line of one file.
    key : pandas.Series or numpy.ndarray
        Each line's key (text or whole numbers, never missing: give a line without one a key
        of its own).
    columns : list of str
        The columns merged (missing cells do not count as values).
    row_word : str
        ``lines`` (text files) or ``rows`` (sheets), for ``source_detail``.

    Returns
    -------
    Merged
        The merged rows, their lineage and the conflicts.
    """
    groups = frame.assign(_key=key).groupby("_key", sort=False)
    merged = groups[columns].first() if columns else pd.DataFrame(index=groups.size().index)
    # Each key's lines, in order: the lines sorted by key (stably), then cut.
    owner = groups.ngroup().to_numpy()  # (each line's key, numbered as in merged)
    sizes = np.bincount(owner, minlength=len(merged))
    starts = np.cumsum(sizes) - sizes
    order = np.argsort(owner, kind="stable")
    lines = frame[SOURCE_LINE].to_numpy(dtype=np.int64)[order]
    label = frame[SOURCE_FILE].iloc[0] if len(frame) else ""
    detail = merged_from(lines, sizes, row_word).to_pandas(types_mapper=_ARROW_TO_STR.get)
    out = pd.DataFrame(
        {
            SOURCE_FILE: pd.Series(label, index=merged.index, dtype=STR),
            SOURCE_LINE: lines[starts],
            SOURCE_DETAIL: pd.Series(detail.array, index=merged.index),
            PATIENT_ID: groups[PATIENT_ID].first().astype(STR),
        }
    )
    for column in columns:
        out[column] = merged[column].astype(STR)
    out = out.reset_index(drop=True)
    lineage = pd.DataFrame(
        {
            "row": np.repeat(np.arange(len(merged), dtype=np.int64), sizes),
            SOURCE_FILE: label,
            SOURCE_LINE: lines,
        }
    )
    differs = differing(frame, merged, columns, owner)
    conflicts = []
    for k in np.flatnonzero(differs.any(axis=1)):
        mine = frame.iloc[order[starts[k] : starts[k] + sizes[k]]]
        for column in [c for c, differ in zip(columns, differs[k], strict=True) if differ]:
            conflicts.append((int(k), column, list(dict.fromkeys(mine[column].dropna()))))
    return Merged(out, lineage, conflicts)


def conflict_problems(merged: Merged, row_word: str, what: Callable[[int], str]) -> list[dict]:
    """Problem records (``conflicting_values``) of the merged rows whose lines disagree.

    ``what(row)`` names the merged row in the reason: ``patient 'P2'``, ``visit 0 of patient
    'P2'``; the reason reads ``age differs between the lines of patient 'P2' (61 / 62)``.
    """
    return [
        {
            "row": k,
            "column": column,
            "check": "conflicting_values",
            "value": " / ".join(values),
            "reason": f"{column} differs between the {row_word} of {what(k)} "
            f"({' / '.join(values)})",
        }
        for k, column, values in merged.conflicts
    ]


def differing(
    frame: pd.DataFrame, merged: pd.DataFrame, columns: list[str], owner: np.ndarray
) -> np.ndarray:
    """Which key (row) gives two values of which column, as a boolean matrix.

    ``merged`` holds each key's first value of each column; a key gives two values exactly when
    one of its lines holds a value that differs from that first one.
    """
    differs = np.zeros((len(merged), len(columns)), dtype=bool)
    for j, column in enumerate(columns):
        values = frame[column].array
        filled = np.flatnonzero(~np.asarray(values.isna(), dtype=bool))
        # (a key with a filled line has a first value: only filled lines are compared)
        first = merged[column].array.take(owner[filled])
        same = np.asarray(values.take(filled) == first, dtype=bool)
        differs[owner[filled[~same]], j] = True
    return differs


def merged_from(lines: np.ndarray, sizes: np.ndarray, word: str, shown: int = 8) -> pa.Array:
    """Describe each key's lines: "merged from lines 2, 4, 7" (missing for a single line).

    ``lines`` holds the keys' lines one key after another, ``sizes`` how many each has; at most
    ``shown`` are listed, then how many there are in all.
    """
    many = sizes > 1
    within = np.arange(lines.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    listed = pa.array(lines[(within < shown) & np.repeat(many, sizes)], pa.int64())
    counts = np.minimum(sizes[many], shown)
    offsets = pa.array(np.concatenate(([0], np.cumsum(counts))), pa.int32())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, listed.cast(pa.string())), ", ")
    total = sizes[many]
    more = pc.if_else(
        pa.array(total > shown),
        pc.binary_join_element_wise(", ... (", pa.array(total).cast(pa.string()), " in all)", ""),
        "",
    )
    text = pc.binary_join_element_wise(f"merged from {word} ", joined, more, "")
    return text.take(pa.array(np.cumsum(many) - 1, mask=~many))
