"""`outcomes preview`: the first mapped rows of each canonical table, and the per-file counts.

A pure read path: the sources are read and validated exactly as `outcomes validate` does
(:func:`pipeline.ingest.combine.read_sources`, :func:`pipeline.validate.study.validate_study`,
:func:`pipeline.validate.quality.file_summary`), and nothing is written: no processed tables, no
quarantine, no report.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.config.settings import Config
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import SOURCE_ROW
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import TABLES
from pipeline.validate import quality
from pipeline.validate.study import validate_study


@dataclass(frozen=True)
class Preview:
    """What `preview` shows.

    Attributes
    ----------
    heads : dict of str to pandas.DataFrame
        Per canonical table, its first valid rows (typed, as the pipeline reads them).
    rows : dict of str to tuple of (int, int)
        Per table, valid and quarantined rows.
    summary, reasons : pandas.DataFrame
        The per-file counts and reasons (:func:`pipeline.validate.quality.file_summary`).
    events : pandas.DataFrame or None
        The adverse events of the kept sessions written by sources that record several per
        session (flag columns or a list): ``patient_id, session_number, ae_type, ae_severity``,
        one row per event; None when no source records them that way.
    notes : list of str
        Sentences on what the counts suggest to change
        (:func:`pipeline.validate.quality.patients_of_two_sources`).
    """

    heads: dict[str, pd.DataFrame]
    rows: dict[str, tuple[int, int]]
    summary: pd.DataFrame
    reasons: pd.DataFrame
    events: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()


def kept_events(sessions: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame | None:
    """Return the event rows of the kept sessions, with the session's patient and number.

    ``events`` is :attr:`pipeline.ingest.raw_tables.RawTable.events` (``source_row, ae_type,
    ae_severity``, ``ae_type`` missing for a session that recorded none); a quarantined
    session's events go with it, as in the run.
    """
    if events is None:
        return None
    keys = sessions[[SOURCE_ROW, PATIENT_ID, "session_number"]]
    linked = events.dropna(subset=["ae_type"]).merge(keys, on=SOURCE_ROW, how="inner")
    return linked[[PATIENT_ID, "session_number", "ae_type", "ae_severity"]].reset_index(drop=True)


def preview(config: Config, rows: int = 5) -> Preview:
    """Read and validate the configured sources in memory; keep the first ``rows`` per table."""
    raw = read_sources(config.sources)
    validation = validate_study(raw, config.study.ranges())
    summary, reasons = quality.file_summary(raw, validation)
    heads, counts = {}, {}
    for table in TABLES:
        valid = validation.valid(table)
        counts[table] = (len(valid), len(validation.tables[table].quarantine))
        head = valid.drop(columns=[SOURCE_ROW], errors="ignore").head(rows)
        heads[table] = head.loc[:, head.notna().any(axis=0)] if len(head) else head
    events = kept_events(validation.valid("sessions"), raw["sessions"].events)
    notes = tuple(quality.patients_of_two_sources(raw, validation))
    return Preview(heads, counts, summary, reasons, events, notes)


def preview_lines(shown: Preview) -> list[str]:
    """Write a preview as printed by `outcomes preview`."""
    out = []
    for table, head in shown.heads.items():
        valid, quarantined = shown.rows[table]
        out.append(
            f"{table}: {valid} row(s) kept, {quarantined} quarantined; the first {len(head)}:"
        )
        out += _table_lines(head)
        out.append("")
    if shown.events is not None:
        sessions = shown.events[[PATIENT_ID, "session_number"]].drop_duplicates()
        head = shown.events.head(max(len(h) for h in shown.heads.values()))
        out.append(
            f"adverse events (from flag or list columns): {len(shown.events)} event(s) in "
            f"{len(sessions)} kept session(s); the first {len(head)}:"
        )
        out += _table_lines(head)
        out.append("")
    width = max([len(f) for f in shown.summary["file"]] + [4])
    out.append("Source files (rows read = kept + quarantined + not used):")
    for row in shown.summary.itertuples(index=False):
        line = (
            f"  {row.file:<{width}} {row.rows_read:>7} read = {row.rows_valid:>7} kept "
            f"+ {row.rows_quarantined:>5} quarantined"
        )
        if row.rows_unused:
            line += f" + {row.rows_unused} not used"
        out.append(line)
        mine = shown.reasons[shown.reasons["file"] == row.file].head(3)
        for reason in mine.itertuples(index=False):
            out.append(f"  {'':<{width}} {reason.rows:>7} x {reason.rule}")
    out += [f"note: {sentence}" for sentence in shown.notes]
    out.append("Nothing was written; `outcomes validate` writes the tables and the quarantine.")
    return out


def _table_lines(head: pd.DataFrame) -> list[str]:
    """Write a table's first rows as indented text (dates as days, yes/no as words)."""
    if head.empty:
        return ["  (no rows)"]
    shown = head.copy()
    for column in shown.columns:
        cells = shown[column]
        if pd.api.types.is_datetime64_any_dtype(cells):
            shown[column] = cells.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(cells):
            shown[column] = cells.map({True: "yes", False: "no"})
    text = shown.astype(object).where(shown.notna(), "").to_string(index=False)
    return ["  " + line for line in text.splitlines()]
