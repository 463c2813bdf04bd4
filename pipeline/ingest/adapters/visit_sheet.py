"""One visit sheet: a single table (CSV or Excel sheet) with one row per patient visit.

Each row carries the patient's details, and what happened at the visit: a needling session, an
outcome assessment, or both. From every row the adapter makes

* a **session** when any session column other than the therapist is filled (session number,
  depth, twitch, ...);
* an **assessment** when the visit number or any score (NRS, VAS, ODI, an ODI section or a
  study's declared outcome) is filled;
* the **patient**: the rows of one patient are merged (:mod:`.merge`), each detail taken from
  the rows that fill it. When two rows of a patient give different values for a detail (age 44
  on one row, 45 on another), the patient row is quarantined (``conflicting_values``) and, with
  it, the patient's sessions and assessments.

One "Termin" column may number both the session and the visit. Its number then counts for
neither: a row is an assessment when a score is filled, a session when a session detail is (a
row with neither is read as a session, so that validation names what it lacks). A source whose
``tables`` leaves the patients to a patient list makes no patient rows and reads only each row's
identifier.

``visit_date`` maps the one date column to both ``session_date`` and ``assessment_date`` (either
may also be mapped on its own). The study's own columns (``Source.extra``: declared outcomes and
covariates) are mapped like the contract's: a declared patient column is a patient detail, a
declared outcome an assessment score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config.source_columns import ODI_ANSWERED, VISIT_DATE
from pipeline.config.sources import Source
from pipeline.errors import InputFileError
from pipeline.ingest.adapters import events as event_columns
from pipeline.ingest.adapters.mapping import (
    Adapted,
    Piece,
    expand,
    file_label,
    mapped_frame,
    problems_frame,
    raise_site_twice,
    read_source_file,
    resolve_columns,
    site_for,
    source_file,
    undated_visits,
    visits_by_date,
)
from pipeline.ingest.adapters.merge import conflict_problems, merge_lines
from pipeline.ingest.raw_tables import SOURCE_DETAIL, SOURCE_FILE, SOURCE_LINE, SourceFile
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import DATE_COLUMNS, ODI_ITEMS, OUTCOMES, column_names, required_columns

PATIENT_DETAILS = tuple(c for c in column_names("patients") if c != PATIENT_ID)
SESSION_COLUMNS = tuple(
    c for c in column_names("sessions") if c not in (PATIENT_ID, "session_date")
)
ASSESSMENT_COLUMNS = tuple(
    c for c in column_names("assessments") if c not in (PATIENT_ID, "assessment_date")
)
SESSION_TRIGGERS = tuple(c for c in SESSION_COLUMNS if c != "therapist")
ASSESSMENT_TRIGGERS = ("visit", *OUTCOMES, *ODI_ITEMS)


def read(source: Source) -> Adapted:
    """Read every visit sheet of a source into pieces of the three tables.

    Parameters
    ----------
    source : Source
        A ``kind = "visit_sheet"`` source.

    Returns
    -------
    Adapted
        Per file: a patients, a sessions and an assessments piece.

    Raises
    ------
    InputFileError
        A file is missing or unreadable, or lacks a mapped or required column.
    """
    pieces: list[Piece] = []
    files: list[tuple[SourceFile, tuple[str, ...]]] = []
    for path in expand(source, "data"):
        text = read_source_file(source, path)
        label = file_label(source, path)
        site = site_for(source, path, label)
        tables = source.tables()
        details, scores, score_triggers = declared_columns(source)
        if "patients" not in tables:  # another source gives them (a patient list)
            details = ()
        by_date = "assessments" in tables and source.visits == "by_date"
        if by_date:  # the visits are numbered from the dates
            scores = tuple(c for c in scores if c != "visit")
        wanted = [
            PATIENT_ID,
            VISIT_DATE,
            *details,
            *(("session_date", *SESSION_COLUMNS) if "sessions" in tables else ()),
            *(("assessment_date", *scores, ODI_ANSWERED) if "assessments" in tables else ()),
        ]
        if source.adverse_events is not None:  # read from the event columns instead
            wanted = [c for c in wanted if c not in ("adverse_event", "ae_severity")]
        required = [
            PATIENT_ID,
            *(
                c
                for c in required_columns("patients")
                if "patients" in tables and not (c == "site" and site)
            ),
            *(("session_number", "depth") if "sessions" in tables else ()),
            *(("visit",) if "assessments" in tables and not by_date else ()),
        ]
        columns = resolve_columns(source, text, label, wanted, dict.fromkeys(required))
        if site and "site" in columns:
            raise_site_twice(source, label)
        for table, date in DATE_COLUMNS.items():
            if (
                table in tables
                # (an assessment may be undated, unless its visit is numbered by its date)
                and (date in required_columns(table) or (by_date and table == "assessments"))
                and date not in columns
                and VISIT_DATE not in columns
            ):
                raise InputFileError(
                    f"{source.config}: {source.key('columns')} maps neither {VISIT_DATE} nor "
                    f"{date}, and {label} has no column of either name "
                    f"(columns: {', '.join(h for h in text.header if h)})"
                )
        frame = mapped_frame(source, text, columns, label, site)
        for table, date in DATE_COLUMNS.items():
            if table in tables and date not in frame and VISIT_DATE in frame:
                frame[date] = frame[VISIT_DATE]
        if "patients" in tables:
            row_word = "rows" if text.delimiter is None else "lines"
            pieces.append(patients_piece(frame, row_word, source.date_format, details))
        found = None
        if source.adverse_events is not None:
            found = event_columns.file_events(source, text, label)
        assessed = _filled(frame, assessment_triggers(columns, score_triggers))
        treated = _filled(frame, session_triggers(columns))
        if found is not None:
            treated |= event_columns.triggers(found)
        if _shared_number(columns):  # a numbered row with nothing else: a session lacking details
            treated |= _filled(frame, ("session_number",)) & ~assessed
        for table, recorded, own in (
            ("sessions", treated, SESSION_COLUMNS),
            ("assessments", assessed, scores),
        ):
            if table not in tables:
                continue
            keep = [SOURCE_FILE, SOURCE_LINE, SOURCE_DETAIL, PATIENT_ID]
            keep += [c for c in (DATE_COLUMNS[table], *own) if c in frame]
            rows = frame.loc[recorded, keep].reset_index(drop=True)
            if found is not None and table == "sessions":
                events, problems = event_columns.for_rows(found, recorded)
                pieces.append(
                    Piece(
                        table,
                        rows,
                        problems=problems_frame(problems),
                        date_format=source.date_format,
                        events=events,
                    )
                )
                continue
            problems = None
            if by_date and table == "assessments":
                rows["visit"] = visits_by_date(rows)
                problems = problems_frame(undated_visits(rows))
            pieces.append(Piece(table, rows, problems=problems, date_format=source.date_format))
        files.append((source_file(source, text, label), tables))
    return Adapted(tuple(pieces), tuple(files))


def declared_columns(
    source: Source,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Return the patient details, assessment columns and assessment triggers of ``source``.

    The contract's columns followed by the study's own (``Source.extra``): a declared covariate
    or ``column`` comparison is a patient detail, a declared outcome an assessment column whose
    value makes a row an assessment.
    """
    own = source.extra.get("patients", {})
    details = (*PATIENT_DETAILS, *(c for c in own if c not in PATIENT_DETAILS))
    outcomes = tuple(c for c in source.extra.get("assessments", {}) if c not in ASSESSMENT_COLUMNS)
    return details, (*ASSESSMENT_COLUMNS, *outcomes), (*ASSESSMENT_TRIGGERS, *outcomes)


def _shared_number(columns: dict[str, str]) -> bool:
    """Whether one clinic column numbers both the session and the visit ("Termin 3")."""
    return "visit" in columns and columns["visit"] == columns.get("session_number")


def _filled(frame: pd.DataFrame, triggers: tuple[str, ...]) -> np.ndarray:
    """Which rows have any of the ``triggers`` columns filled."""
    present = [c for c in triggers if c in frame]
    if not present:
        return np.zeros(len(frame), dtype=bool)
    return np.array(frame[present].notna().any(axis=1), dtype=bool)


def assessment_triggers(
    columns: dict[str, str], triggers: tuple[str, ...] = ASSESSMENT_TRIGGERS
) -> tuple[str, ...]:
    """Return the columns whose filling makes a row an assessment.

    The visit number counts only when it has a column of its own: a column that numbers the
    session too ("Termin 3") is filled on every session row, and a row with a session and no
    score is not an assessment.
    """
    return tuple(c for c in triggers if not (_shared_number(columns) and c == "visit"))


def session_triggers(columns: dict[str, str]) -> tuple[str, ...]:
    """Return the columns whose filling makes a row a session.

    Likewise the session number counts only when it has a column of its own: a row of such a
    column with scores and no session detail (the baseline visit, ``seduta 0``) is no session.
    A row with neither scores nor details is still read as a session, so that validation names
    what it lacks (:func:`read`).
    """
    shared = _shared_number(columns)
    return tuple(c for c in SESSION_TRIGGERS if not (shared and c == "session_number"))


def patients_piece(
    frame: pd.DataFrame,
    row_word: str,
    date_format: str,
    columns: tuple[str, ...] = PATIENT_DETAILS,
) -> Piece:
    """Merge the rows of each patient into one patient row; report conflicting details.

    Parameters
    ----------
    frame : pandas.DataFrame
        The normalised visit sheet (provenance and canonical columns).
    row_word : str
        ``lines`` (text files) or ``rows`` (sheets), for ``source_detail``.
    date_format : str
        How the source writes dates.
    columns : tuple of str
        The patient details (the contract's and the study's own, :func:`declared_columns`).

    Returns
    -------
    Piece
        One row per patient id (rows without an id stay one patient row each), its lineage (all
        the lines merged) and ``conflicting_values`` problems.
    """
    details = [c for c in columns if c in frame]
    ids = frame[PATIENT_ID]
    key = ids.where(ids.notna(), "\x00row " + frame[SOURCE_LINE].astype("str"))
    merged = merge_lines(frame, key, details, row_word)
    ids = merged.frame[PATIENT_ID]
    problems = conflict_problems(merged, row_word, lambda k: f"patient '{ids.iloc[k]}'")
    return Piece("patients", merged.frame, merged.lineage, problems_frame(problems), date_format)
