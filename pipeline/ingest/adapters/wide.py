"""Wide layout: one row per patient, one group of columns per time point (or session).

``[sources.columns]`` maps the patient's details (one value per row). ``[sources.assessments]``
(and optionally ``[sources.sessions]``) describe the repeated groups: ``points`` maps each
time-point label to its visit (session) number, and ``columns`` maps canonical columns to column
patterns in which ``{t}`` stands for the label (``nrs = "nrs_{t}"`` reads ``nrs_baseline``,
``nrs_wk2``, ...). A pattern without ``{t}`` is one column used for every time point (e.g. a depth
used in every session). A time point whose columns are all empty is a missed visit, not a row;
so is one whose only filled column is its date (one date per time point may date both the session
and the assessment, ``session_date = "date_{t}"`` and ``assessment_date = "date_{t}"``, and a
time point with a session but no score is then no assessment).

Without a date column per time point, dates are ``date_from + 7 x weeks[label]`` days; without
``date_from`` either, an assessment's ``weeks`` column is ``weeks[label]`` (a study timed by
weeks, ``[time] source = "weeks"``). With ``patient_id = "row"`` a patient's identifier is the
row's line number in the file (``id_prefix`` before it), for files whose ids repeat or are
initials. Every row made keeps its line and, in ``source_detail``, its time point.

``[sources.adverse_events]`` reads each session's event columns (flags or a list, with severities)
from patterns with ``{t}`` like the group's (``"s{t}_ae_soreness"``): the events become rows of
the session's event table (:mod:`pipeline.ingest.adapters.events`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.config.source_columns import TimePoints
from pipeline.config.sources import Source
from pipeline.errors import InputFileError
from pipeline.ingest.adapters import events as event_columns
from pipeline.ingest.adapters.mapping import (
    Adapted,
    Piece,
    _positions,
    _single,
    canonical_frame,
    expand,
    file_label,
    find_column,
    iso_dates,
    mapped_frame,
    normalise,
    problems_frame,
    read_source_file,
    resolve_columns,
    site_for,
    source_file,
)
from pipeline.ingest.raw_tables import SOURCE_DETAIL, SOURCE_FILE, SOURCE_LINE, SourceFile
from pipeline.ingest.readers import STR, TextTable
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import DATE_COLUMNS, NUMBER_COLUMNS, column_names, required_columns

POINT_WORDS = {"assessments": "time point", "sessions": "session"}


def read(source: Source) -> Adapted:
    """Read every wide file of a source into a patients piece and one piece per repeated group.

    Parameters
    ----------
    source : Source
        A ``kind = "wide"`` source.

    Returns
    -------
    Adapted
        Per file: patients, assessments and (when configured) sessions.

    Raises
    ------
    InputFileError
        A file is missing or unreadable, lacks a mapped or required column, or a column
        pattern matches no column.
    """
    pieces: list[Piece] = []
    files: list[tuple[SourceFile, tuple[str, ...]]] = []
    for path in expand(source, "data"):
        text = read_source_file(source, path)
        label = file_label(source, path)
        site = site_for(source, path, label)
        by_row = source.patient_id == "row"
        # without the patients (another source gives them), only the identifier is read
        given = "patients" in source.tables()
        wanted = [
            c
            for c in column_names("patients", source.extra)
            if not (c == "patient_id" and by_row) and (given or c == "patient_id")
        ]
        required = [
            c for c in required_columns("patients") if c in wanted and not (c == "site" and site)
        ]
        columns = resolve_columns(source, text, label, wanted, required)
        patients = mapped_frame(source, text, columns, label, site)
        if by_row:
            lines = patients[SOURCE_LINE].astype("int64").astype(str)
            patients.insert(3, "patient_id", pd.Series(source.id_prefix + lines, dtype=STR))
        if given:
            pieces.append(Piece("patients", patients, date_format=source.date_format))
        for table, group in source.time_points.items():
            long = long_rows(source, text, label, table, group)
            rows = long.rows
            owner = patients[PATIENT_ID].to_numpy()[rows.pop("_row").to_numpy()]
            rows.insert(3, PATIENT_ID, pd.Series(owner, dtype=STR))
            pieces.append(
                Piece(
                    table,
                    rows,
                    problems=problems_frame(long.problems) if long.events is not None else None,
                    date_format=source.date_format,
                    events=long.events,
                )
            )
        files.append((source_file(source, text, label), source.tables()))
    return Adapted(tuple(pieces), tuple(files))


@dataclass(frozen=True)
class LongRows:
    """One repeated column group as rows: one per patient and filled time point.

    Attributes
    ----------
    rows : pandas.DataFrame
        Provenance, ``_row`` (the patient's position in the file), the number column and the
        mapped columns as normalised text; ordered by line, then time point.
    events : pandas.DataFrame or None
        Sessions of a source with ``[sources.N.adverse_events]``: the events of the rows
        (:attr:`pipeline.ingest.adapters.mapping.Piece.events`); otherwise None.
    problems : list of dict
        ``row, column, check, value, reason`` of event cells that could not be read.
    """

    rows: pd.DataFrame
    events: pd.DataFrame | None = None
    problems: list[dict] = field(default_factory=list)


def long_rows(
    source: Source, text: TextTable, label: str, table: str, group: TimePoints
) -> LongRows:
    """Turn one repeated column group into one row per patient and filled time point.

    A session's adverse-event columns (``[sources.N.adverse_events]``, patterns with ``{t}``)
    are read with it: an event, or an event cell that cannot be read, makes the time point a
    session even when its other columns are empty.

    Parameters
    ----------
    source : Source
        The source (for messages and normalising).
    text : TextTable
        The wide file as read.
    label : str
        The file as named in messages.
    table : str
        ``assessments`` or ``sessions``.
    group : TimePoints
        The group's points, column patterns, weeks and ``date_from``.

    Returns
    -------
    LongRows
    """
    key = f"{table}.columns"
    per_point: dict[str, dict[str, str]] = {p: {} for p in group.points}
    constant: dict[str, str] = {}
    for canonical, pattern in group.columns.items():
        if "{t}" not in pattern:
            constant[canonical] = find_column(source, text, label, canonical, pattern, key)
            continue
        hits = 0
        for point in group.points:
            positions = _positions(text, pattern.replace("{t}", point))
            if positions:
                _single(text, label, positions, source.key(key))
                per_point[point][canonical] = text.columns[positions[0]]
                hits += 1
        if not hits:
            example = pattern.replace("{t}", next(iter(group.points)))
            raise InputFileError(
                f"{source.config}: {source.key(key)} maps {canonical} to '{pattern}', but "
                f"{label} has no such column for any time point (e.g. '{example}'; columns: "
                f"{', '.join(h for h in text.header if h)})"
            )
    anchor = None
    date = DATE_COLUMNS[table]
    if group.date_from and date not in group.columns:
        where = find_column(source, text, label, date, group.date_from, f"{table}.date_from")
        anchor = iso_dates(text.frame[where].astype(STR), source.date_format)
    spec = source.adverse_events if table == "sessions" else None
    at_points = _event_points(source, text, label, group) if spec is not None else {}
    blocks, events, problems, kept = [], [], [], 0
    for order, (point, number) in enumerate(group.points.items()):
        own = per_point[point]
        if not own and point not in at_points:
            continue
        block = canonical_frame(text, {**constant, **own}, label)
        block[SOURCE_DETAIL] = pd.Series(
            f"{POINT_WORDS[table]} {point}", index=block.index, dtype=STR
        )
        scored = [v for c, v in own.items() if c not in DATE_COLUMNS.values()]
        filled = text.frame[scored or list(own.values())].notna().any(axis=1).to_numpy()
        if point in at_points:
            found = at_points[point]
            filled = filled | event_columns.triggers(found)
            mine, wrong = event_columns.for_rows(found, filled)
            events.append(mine.assign(row=mine["row"] + kept))
            problems += [{**p, "row": p["row"] + kept} for p in wrong]
        block.insert(0, "_row", np.arange(len(block)))
        block.insert(1, "_order", order)
        block["_key"] = np.int64(-1)
        block.loc[filled, "_key"] = kept + np.arange(int(filled.sum()), dtype=np.int64)
        kept += int(filled.sum())
        block[NUMBER_COLUMNS[table]] = pd.Series(str(number), index=block.index, dtype=STR)
        if anchor is not None:
            block[date] = _plus_weeks(anchor, group.weeks[point])
        elif table == "assessments" and date not in group.columns and "weeks" not in group.columns:
            block["weeks"] = pd.Series(f"{group.weeks[point]:g}", index=block.index, dtype=STR)
        blocks.append(block[filled])
    columns = ["_row", SOURCE_FILE, SOURCE_LINE, SOURCE_DETAIL, NUMBER_COLUMNS[table], date]
    if table == "assessments" and anchor is None and date not in group.columns:
        columns.append("weeks")
    columns += [
        c for c in column_names(table, source.extra) if c in group.columns and c not in columns
    ]
    no_events = None if spec is None else event_columns.no_events()
    if not blocks:
        empty = pd.DataFrame({c: pd.Series(dtype=STR) for c in columns}).assign(
            _row=pd.Series(dtype="int64"), **{SOURCE_LINE: pd.Series(dtype="int64")}
        )
        return LongRows(empty, no_events)
    long = pd.concat(blocks, ignore_index=True)
    long = long.sort_values([SOURCE_LINE, "_order"], kind="stable").reset_index(drop=True)
    position = np.empty(len(long), dtype=np.int64)
    position[long["_key"].to_numpy()] = np.arange(len(long), dtype=np.int64)
    long = normalise(long.drop(columns=["_order", "_key"]), source)
    rows = long[[c for c in columns if c in long]]
    if spec is None:
        return LongRows(rows)
    found = pd.concat(events, ignore_index=True) if events else no_events
    found = found.assign(row=position[found["row"].to_numpy(dtype=np.int64)])
    found = found.sort_values("row", kind="stable").reset_index(drop=True)
    moved = [{**p, "row": int(position[p["row"]])} for p in problems]
    return LongRows(rows, found, moved)


def _event_points(
    source: Source, text: TextTable, label: str, group: TimePoints
) -> dict[str, event_columns.FileEvents]:
    """Read the adverse events of each session point that has event columns.

    Raises
    ------
    InputFileError
        An event column pattern matches no column for any session.
    """
    spec = source.adverse_events
    found = {}
    for point in group.points:
        at = event_columns.at_point(spec, point, text)
        if at is not None:
            mine = dataclasses.replace(source, adverse_events=at)
            found[point] = event_columns.file_events(mine, text, label)
    for pattern in spec.clinic_columns():
        if not any(_positions(text, pattern.replace("{t}", p)) for p in group.points):
            example = pattern.replace("{t}", next(iter(group.points)))
            raise InputFileError(
                f"{source.config}: {source.key('adverse_events')} reads '{pattern}', but "
                f"{label} has no such column for any session (e.g. '{example}'; columns: "
                f"{', '.join(h for h in text.header if h)})"
            )
    return found


def _plus_weeks(anchor: pd.Series, weeks: float) -> pd.Series:
    """Dates ``weeks`` after ``anchor`` (ISO text); cells that are not dates stay as written."""
    dates = pd.to_datetime(anchor, format="%Y-%m-%d", errors="coerce")
    moved = (dates + pd.Timedelta(days=round(7 * weeks))).dt.strftime("%Y-%m-%d").astype(STR)
    return moved.where(dates.notna(), anchor).astype(STR)
