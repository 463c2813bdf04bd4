"""Which optional fields each source recorded, per source file and per column.

A canonical column that a source file does not have was never recorded by that source: its
rows are missing there because nobody asked, not because the answer was "no". The readers note
the columns each file had (:attr:`pipeline.ingest.raw_tables.RawTable.columns_by_file`); this
module turns that into the tidy *recorded* table that travels with the validated data:

``table, source_file, column, recorded, rows, filled``

one row per file of a table and optional column: whether the file had the column, how many valid
rows came from the file, and how many of those carry a value. :func:`field_status` sums it over
the sources of the study, per column: ``recorded`` (every source with rows recorded it),
``partly recorded`` or ``not recorded`` (no source did, or no valid row has a value).

Everything that summarises an optional field (Table 1, safety, responders, the per-protocol
population, the report's sentences) reads this status instead of taking a missing value for
zero: a field no source recorded is shown as :data:`NOT_RECORDED`, and a field recorded for some
patients only is summarised over those, with that denominator shown.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from pipeline.ingest.raw_tables import SOURCE_FILE, SOURCE_ROW, RawTable
from pipeline.schemas.raw import TABLES, column_names, required_columns

NOT_RECORDED = "not recorded"
PARTLY_RECORDED = "partly recorded"
RECORDED = "recorded"
RECORDED_COLUMNS = ["table", "source_file", "column", "recorded", "rows", "filled"]
STATUS_COLUMNS = [
    "table",
    "column",
    "status",
    "sources",
    "sources_recording",
    "rows",
    "rows_recorded",
    "not_recorded_by",
]


def optional_columns(table: str) -> tuple[str, ...]:
    """Return the columns of ``table`` a source may leave out, in the data contract's order."""
    required = set(required_columns(table))
    return tuple(c for c in column_names(table) if c not in required)


def _columns_by_file(raw: RawTable) -> dict[str, tuple[str, ...]]:
    """Return the canonical columns of each file of ``raw`` (all present ones, when not noted)."""
    if raw.columns_by_file:
        return dict(raw.columns_by_file)
    frame = raw.frame if raw.frame is not None else raw.typed
    label = raw.file_digests()[0][0]
    return {label: tuple(c for c in column_names(raw.name) if c in frame)}


def _file_of_rows(raw: RawTable, source_rows: pd.Series, labels: list[str]) -> pd.Series:
    """Return the file label of each row given by its ``source_row``."""
    if len(labels) == 1:
        return pd.Series(labels[0], index=source_rows.index)
    origin = raw.provenance().drop_duplicates(SOURCE_ROW).set_index(SOURCE_ROW)[SOURCE_FILE]
    return source_rows.map(origin).astype("object")


def recorded_by_file(raw: RawTable, valid: pd.DataFrame) -> pd.DataFrame:
    """Tell, per file of a table and per optional column, whether the file recorded it.

    Parameters
    ----------
    raw : RawTable
        The table as read (which columns each file had).
    valid : pandas.DataFrame
        Its valid rows, with ``source_row`` and every schema column.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECORDED_COLUMNS`: ``recorded`` (the file had the column), ``rows``
        (valid rows from the file) and ``filled`` (those with a value in the column).
    """
    had = _columns_by_file(raw)
    labels = list(had)
    optional = list(optional_columns(raw.name))
    if len(labels) == 1:
        rows = pd.Series({labels[0]: len(valid)})
        filled = _filled_counts(raw, valid, optional).to_frame(labels[0]).T
    else:
        present = _filled(raw, valid, optional)
        files = _file_of_rows(raw, valid[SOURCE_ROW], labels)
        rows = files.value_counts().reindex(labels, fill_value=0)
        filled = present.groupby(files.to_numpy()).sum()
        filled = filled.reindex(labels, fill_value=0)
    out = [
        {
            "table": raw.name,
            "source_file": label,
            "column": column,
            "recorded": column in had[label],
            "rows": int(rows[label]),
            "filled": int(filled.loc[label, column]),
        }
        for label in labels
        for column in optional
    ]
    return pd.DataFrame(out, columns=RECORDED_COLUMNS)


def _filled_counts(raw: RawTable, valid: pd.DataFrame, optional: list[str]) -> pd.Series:
    """How many valid rows carry each optional column.

    As :func:`_filled` summed, without building its frame when no event table adds to it.
    """
    if raw.events is not None:
        return _filled(raw, valid, optional).sum()
    return pd.Series({c: int(valid[c].count()) for c in optional}, index=optional, dtype="int64")


def _filled(raw: RawTable, valid: pd.DataFrame, optional: list[str]) -> pd.DataFrame:
    """Whether each valid row carries each optional column.

    A session whose adverse events come from an event table (``raw.events``) carries its
    ``adverse_event`` field when it recorded its events, and ``ae_severity`` when one of its
    events has a severity.
    """
    present = valid[optional].notna()
    if raw.events is not None and "adverse_event" in present:
        rows = valid[SOURCE_ROW]
        present["adverse_event"] |= rows.isin(raw.events[SOURCE_ROW]).to_numpy()
        graded = raw.events.loc[raw.events["ae_severity"].notna(), SOURCE_ROW]
        present["ae_severity"] |= rows.isin(graded).to_numpy()
    return present


def empty_recorded() -> pd.DataFrame:
    """Return a recorded table without rows (no file read)."""
    return pd.DataFrame(
        {
            c: pd.Series(
                dtype="bool"
                if c == "recorded"
                else "int64"
                if c in ("rows", "filled")
                else "object"
            )
            for c in RECORDED_COLUMNS
        }
    )


def field_status(recorded: pd.DataFrame) -> pd.DataFrame:
    """Sum the recorded table over the sources: one row per table and optional column.

    Parameters
    ----------
    recorded : pandas.DataFrame
        :func:`recorded_by_file` of every table, stacked; also as published (small counts
        suppressed: ``<5`` is not 0).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STATUS_COLUMNS`: ``status`` is ``recorded`` (every file with valid rows
        had the column and some row has a value), ``partly recorded`` (some files only) or
        ``not recorded`` (no file had it, or no valid row has a value); ``sources`` and
        ``sources_recording`` count files with valid rows, ``rows`` and ``rows_recorded`` the
        valid rows and those carrying a value (NaN when a count of a published table was
        suppressed), ``not_recorded_by`` names the files without
        the column (``; ``-separated).
    """
    out = []
    for (table, column), part in recorded.groupby(["table", "column"], sort=False):
        used = part[_nonzero(part["rows"])]
        recording = used[used["recorded"].astype(bool)]
        rows_recorded = _total(used["filled"])
        if recording.empty or not _nonzero(used["filled"]).any():
            status = NOT_RECORDED
        elif len(recording) < len(used):
            status = PARTLY_RECORDED
        else:
            status = RECORDED
        out.append(
            {
                "table": table,
                "column": column,
                "status": status,
                "sources": len(used),
                "sources_recording": len(recording),
                "rows": _total(used["rows"]),
                "rows_recorded": rows_recorded,
                "not_recorded_by": "; ".join(
                    used.loc[~used["recorded"].astype(bool), "source_file"]
                ),
            }
        )
    frame = pd.DataFrame(out, columns=STATUS_COLUMNS)
    order = {t: k for k, t in enumerate(TABLES)}
    return frame.sort_values("table", key=lambda s: s.map(order), kind="stable").reset_index(
        drop=True
    )


def _nonzero(counts: pd.Series) -> pd.Series:
    """Which counts are not 0 (a suppressed count such as ``<5`` is not 0)."""
    return counts.map(lambda v: isinstance(v, str) or v != 0).astype(bool)


def _total(counts: pd.Series) -> float:
    """Sum of counts; NaN when a count is suppressed (a published table)."""
    numbers = pd.to_numeric(counts, errors="coerce")
    return float("nan") if numbers.isna().any() else int(numbers.sum())


def unrecorded(status: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """Return those of ``columns`` that no source recorded (status ``not recorded``)."""
    wanted = list(columns)
    gone = set(status.loc[status["status"] == NOT_RECORDED, "column"])
    return [c for c in wanted if c in gone]


def status_of(status: pd.DataFrame, column: str) -> str:
    """Return the status of one column (``recorded`` when the table does not list it)."""
    found = status.loc[status["column"] == column, "status"]
    return str(found.iloc[0]) if len(found) else RECORDED
