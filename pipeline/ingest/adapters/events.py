"""Adverse events written as several flag columns or as one delimited list (issue 15, shape 3).

A clinic may record what followed a session as one yes/no column per kind of event
(``ae_soreness``, ``ae_bruising``, ...) or as one column listing them (``"soreness; bruising"``),
with or without a severity. ``[sources.N.adverse_events]`` (:class:`EventColumns`) says which;
this module reads those columns of a file into *event rows*, one per event, several per session
possible, each tied to the file row it came from:

* a flag written yes (``1``, ``yes``, ``ja``, ``oui``, ... in the source's languages) is an event of
  its type; no (``0``, ``no``, ...) or empty is not. A row whose flags are all empty did not
  record its adverse events (this is not "no event"); a row with some flag filled recorded them,
  and an empty flag beside a filled one is read as not ticked;
* a listed item is translated by ``codes`` (or is a type name itself); ``none`` (or a no word of
  the source's languages) is a session without event; an empty cell records nothing;
* a severity is coded by ``[sources.N.codes.ae_severity]`` and must be mild, moderate or severe:
  one severity for all the row's events, one per flag (``severity = { flag = column }``), or,
  beside a list, a list of as many severities as events.

A cell that cannot be read (a flag ``2`` or ``x``, an unknown item, a severity that is not one,
a severity without an event) is a *problem* of its row: validation quarantines the session with
the reason naming the clinic column and the value, and none of its events is kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config.source_columns import EventColumns
from pipeline.config.sources import Source
from pipeline.ingest.adapters.mapping import (
    _positions,
    apply_codes,
    find_column,
    folded_cells,
    per_distinct,
)
from pipeline.ingest.readers import STR, TextTable
from pipeline.schemas.raw import AE_TYPES, NO, SEVERITIES, YES

EVENT_FRAME_COLUMNS = ("row", "ae_type", "ae_severity")
"""Columns of :attr:`FileEvents.events`: the row of the file's frame, the type, the severity."""
EVENT_FIELD = "adverse_event"
"""The canonical field a problem of the event columns is reported under."""
SEVERITY_FIELD = "ae_severity"
NONE = "none"


@dataclass(frozen=True)
class FileEvents:
    """The adverse events of one file's rows.

    Attributes
    ----------
    events : pandas.DataFrame
        :data:`EVENT_FRAME_COLUMNS`, one row per event (``row`` is the position in the file's
        frame), in the order of the rows and then of the columns or items.
    recorded : numpy.ndarray
        Boolean per file row: the row recorded its adverse events (a flag or the list filled).
    occurred : numpy.ndarray
        Boolean per file row: at least one event (such a row is a session).
    problems : list of dict
        ``row, column, check, value, reason`` of the cells that could not be read.
    """

    events: pd.DataFrame
    recorded: np.ndarray
    occurred: np.ndarray
    problems: list[dict]


def event_columns(source: Source, text: TextTable, label: str) -> dict[str, str]:
    """Return the frame column of each clinic column ``[sources.N.adverse_events]`` reads.

    Raises
    ------
    InputFileError
        The file lacks one of them, or has it twice (one sentence naming the key and the file).
    """
    spec = source.adverse_events
    if spec is None:
        return {}
    return {
        clinic: find_column(source, text, label, meaning, clinic, "adverse_events")
        for clinic, meaning in column_meanings(spec).items()
    }


def column_meanings(spec: EventColumns) -> dict[str, str]:
    """Return each clinic column the block reads, with what it means (for messages)."""
    meanings = {column: f"the {kind} flag" for column, kind in spec.flags.items()}
    meanings.update({c: f"the severity of {f}" for f, c in spec.flag_severity.items()})
    if spec.list_column:
        meanings[spec.list_column] = "the list of adverse events"
    if spec.severity:
        meanings[spec.severity] = "the severity of the events"
    return meanings


def _fold(text: pd.Series) -> pd.Series:
    """Trim, single-space and case-fold each cell (once per distinct value)."""
    return per_distinct(folded_cells, text)


def _severity(text: pd.Series, source: Source) -> pd.Series:
    """Return the severity cells as canonical codes (others as written, missing stays missing)."""
    coded = source.codes.get(SEVERITY_FIELD)
    if coded:
        text = apply_codes(text, coded)
    return _fold(text)


def no_events() -> pd.DataFrame:
    """Return an empty event table (:data:`EVENT_FRAME_COLUMNS`)."""
    return pd.DataFrame(
        {
            "row": pd.Series(dtype=np.int64),
            "ae_type": pd.Series(dtype=object),
            "ae_severity": pd.Series(dtype=object),
        }
    )


def file_events(source: Source, text: TextTable, label: str) -> FileEvents:
    """Read the adverse events of every row of a file whose columns are named as written."""
    return read_events(source, text.frame, event_columns(source, text, label))


def at_point(spec: EventColumns, point: str, text: TextTable) -> EventColumns | None:
    """Return a wide file's event columns for one session: ``{t}`` replaced by its label.

    Parameters
    ----------
    spec : EventColumns
        ``[sources.N.adverse_events]`` of a wide source (every column a pattern with ``{t}``).
    point : str
        The session's label (a key of ``[sources.N.sessions.points]``).
    text : TextTable
        The wide file: a pattern with no column for this session is not read there.

    Returns
    -------
    EventColumns or None
        The columns of this session, or None when the file has none of them.
    """

    def named(pattern: str | None) -> str | None:
        column = None if pattern is None else pattern.replace("{t}", point)
        return column if column is not None and _positions(text, column) else None

    flags = {named(c): kind for c, kind in spec.flags.items() if named(c)}
    severity = {named(f): named(c) for f, c in spec.flag_severity.items() if named(f) and named(c)}
    listed = named(spec.list_column)
    if not flags and listed is None:
        return None
    return dataclasses.replace(
        spec,
        flags=flags,
        flag_severity=severity,
        list_column=listed,
        severity=named(spec.severity),
    )


def read_events(source: Source, frame: pd.DataFrame, columns: dict[str, str]) -> FileEvents:
    """Read the adverse events of every row of a file (module docstring).

    Parameters
    ----------
    source : Source
        A source with ``adverse_events``.
    frame : pandas.DataFrame
        The file's cells as text, one row per file row.
    columns : dict of str to str
        Clinic column -> frame column (:func:`event_columns`).

    Returns
    -------
    FileEvents
    """
    spec: EventColumns = source.adverse_events  # type: ignore[assignment]
    n = len(frame)
    recorded = np.zeros(n, dtype=bool)
    problems: list[dict] = []
    parts: list[pd.DataFrame] = []
    yes_words = {*YES, *source.vocabulary.yes}
    no_words = {*NO, *source.vocabulary.no}
    shared = (
        _severity(frame[columns[spec.severity]], source)
        if spec.severity
        else pd.Series(pd.NA, index=frame.index, dtype=STR)
    )

    def problem(row: int, column: str, check: str, value: str, reason: str) -> None:
        problems.append(
            {"row": row, "column": column, "check": check, "value": value, "reason": reason}
        )

    for clinic, kind in spec.flags.items():
        cells = frame[columns[clinic]].astype(STR)
        folded = _fold(cells)
        filled = cells.notna().to_numpy()
        yes = folded.isin(yes_words).fillna(False).to_numpy(bool)
        no = folded.isin(no_words).fillna(False).to_numpy(bool)
        recorded |= filled
        for row in np.flatnonzero(filled & ~yes & ~no):
            value = str(cells.iloc[row])
            problem(
                int(row),
                EVENT_FIELD,
                "adverse_event_flag",
                value,
                f"{clinic} = '{value}' is not yes or no (the {kind} flag of "
                f"{source.key('adverse_events')}; write 1/0 or yes/no)",
            )
        own = spec.flag_severity.get(clinic)
        severity = _severity(frame[columns[own]], source) if own else shared
        if own:
            stray = np.flatnonzero(severity.notna().to_numpy() & ~yes)
            for row in stray:
                value = str(frame[columns[own]].iloc[row])
                problem(
                    int(row),
                    SEVERITY_FIELD,
                    "severity_without_event",
                    value,
                    f"{own} = '{value}' gives a severity, but {clinic} records no {kind}",
                )
        hit = np.flatnonzero(yes)
        parts.append(
            pd.DataFrame(
                {
                    "row": hit.astype(np.int64),
                    "ae_type": kind,
                    "ae_severity": severity.iloc[hit].to_numpy(dtype=object),
                    "_order": len(parts),
                }
            )
        )
    if spec.list_column:
        _list_events(source, spec, frame[columns[spec.list_column]], shared, parts, problem)
        recorded |= frame[columns[spec.list_column]].notna().to_numpy()
    if parts:
        events = pd.concat(parts, ignore_index=True)
        events = events.sort_values(["row", "_order"], kind="stable").reset_index(drop=True)
    else:
        events = no_events()
    events = events[list(EVENT_FRAME_COLUMNS)]
    events["ae_severity"] = (
        events["ae_severity"].astype("object").where(events["ae_severity"].notna(), None)
    )
    occurred = np.zeros(n, dtype=bool)
    occurred[events["row"].to_numpy(dtype=np.int64)] = True
    if spec.severity:
        cells = frame[columns[spec.severity]]
        for row in np.flatnonzero(cells.notna().to_numpy() & ~occurred):
            value = str(cells.iloc[row])
            problem(
                int(row),
                SEVERITY_FIELD,
                "severity_without_event",
                value,
                f"{spec.severity} = '{value}' gives a severity, but the row records no "
                f"adverse event",
            )
    _check_severities(source, events, problem)
    return FileEvents(events, recorded, occurred, problems)


def _check_severities(source: Source, events: pd.DataFrame, problem) -> None:
    """Report a severity that is not mild, moderate or severe (once per row and value)."""
    bad = events["ae_severity"].notna() & ~events["ae_severity"].isin(SEVERITIES)
    for row, value in (
        events.loc[bad, ["row", "ae_severity"]].drop_duplicates().itertuples(index=False)
    ):
        problem(
            int(row),
            SEVERITY_FIELD,
            "isin",
            str(value),
            f"ae_severity = '{value}' is not one of {', '.join(SEVERITIES)} (translate it in "
            f"{source.key('codes.ae_severity')})",
        )


def _list_events(
    source: Source,
    spec: EventColumns,
    cells: pd.Series,
    severity: pd.Series,
    parts: list[pd.DataFrame],
    problem,
) -> None:
    """Read a delimited list column into event rows (appended to ``parts``).

    What a row gives depends only on its list and its severity cell, so each distinct pair of
    the two is read once (:func:`_listed`) and its events are repeated on every row holding it.
    """
    filled = np.flatnonzero(cells.notna().to_numpy())
    lists, written = pd.factorize(cells.astype(STR).iloc[filled])
    levels, given = pd.factorize(severity.iloc[filled])  # (-1: no severity)
    width = len(given) + 1
    pair, pairs = pd.factorize(lists * width + levels + 1)
    read = [
        _listed(source, spec, written[p // width], given[p % width - 1] if p % width else None)
        for p in pairs
    ]
    void = np.array([r.problem is not None for r in read], dtype=bool)[pair]
    for row, p in zip(filled[void], pair[void], strict=True):
        problem(int(row), *read[p].problem)
    sizes = np.array([len(r.kinds) for r in read], dtype=np.int64)
    counts = sizes[pair]
    # the k-th event of a row is the k-th of its pair: the pair's first event, plus k
    first = np.repeat((np.cumsum(sizes) - sizes)[pair], counts)
    at = first + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    kinds = np.array([k for r in read for k in r.kinds], dtype=object)
    graded = np.array([g for r in read for g in r.levels], dtype=object)
    parts.append(
        pd.DataFrame(
            {
                "row": np.repeat(filled, counts).astype(np.int64),
                "ae_type": pd.Series(kinds[at], dtype=object),
                "ae_severity": pd.Series(graded[at], dtype=object),
                "_order": len(parts),
            }
        )
    )


@dataclass(frozen=True)
class _Listing:
    """What one list cell, with its row's severity cell, gives.

    Attributes
    ----------
    kinds : tuple of str
        The adverse-event types listed, in order (none for ``none`` or a problem).
    levels : tuple of str or None
        The severity of each.
    problem : tuple of str or None
        ``column, check, value, reason`` of a cell that cannot be read: the row keeps no event.
    """

    kinds: tuple[str, ...] = ()
    levels: tuple[str | None, ...] = ()
    problem: tuple[str, str, str, str] | None = None


def _listed(source: Source, spec: EventColumns, written: str, given: str | None) -> _Listing:
    """Read one list cell (``written``) with its row's severity cell (``given``)."""
    codes = {" ".join(k.split()).casefold(): v for k, v in spec.codes.items()}
    nothing = {NONE, *NO, *source.vocabulary.no}
    items = [i for i in (" ".join(i.split()) for i in written.split(spec.delimiter)) if i]
    found, unknown = [], []
    for item in items:
        key = item.casefold()
        kind = codes.get(key, key if key in AE_TYPES or key in nothing else None)
        if kind is None:
            unknown.append(item)
        elif kind not in nothing:
            found.append(kind)
    if unknown:
        return _Listing(
            problem=(
                EVENT_FIELD,
                "adverse_event_item",
                written,
                f"{spec.list_column} = '{written}' lists '{unknown[0]}', which is not an "
                f"adverse-event type ({', '.join(AE_TYPES)} or none); translate it in "
                f"{source.key('adverse_events.codes')}",
            )
        )
    if given is None or not found:
        return _Listing(tuple(found), (None,) * len(found))
    graded = {
        " ".join(k.split()).casefold(): v for k, v in source.codes.get(SEVERITY_FIELD, {}).items()
    }
    levels = [
        graded.get(s, s) for s in (" ".join(p.split()) for p in given.split(spec.delimiter)) if s
    ]
    if len(levels) == 1:
        return _Listing(tuple(found), tuple(levels) * len(found))
    if len(levels) == len(found):
        return _Listing(tuple(found), tuple(levels))
    return _Listing(
        problem=(
            SEVERITY_FIELD,
            "severity_count",
            given,
            f"{spec.severity} = '{given}' gives {len(levels)} severities for the "
            f"{len(found)} events listed in {spec.list_column} ('{written}')",
        )
    )


def triggers(found: FileEvents) -> np.ndarray:
    """Rows that must become sessions: an event occurred, or an event cell could not be read.

    (A row with an event but no other session column is quarantined for what it lacks, so
    that no event is dropped unseen.)
    """
    out = found.occurred.copy()
    out[[p["row"] for p in found.problems]] = True
    return out


def for_rows(found: FileEvents, keep: np.ndarray) -> tuple[pd.DataFrame, list[dict]]:
    """Return the events and problems of the rows kept as sessions, renumbered as those rows.

    Parameters
    ----------
    found : FileEvents
        The file's events (:func:`read_events`).
    keep : numpy.ndarray
        Boolean per file row: the row is a session (in this order in the sessions piece).

    Returns
    -------
    tuple of (pandas.DataFrame, list of dict)
        ``row, ae_type, ae_severity`` for :attr:`pipeline.ingest.adapters.mapping.Piece.events`
        (a row with ``ae_type`` missing for each kept row that recorded no event), and the
        problems of the kept rows.
    """
    position = np.full(len(keep), -1, dtype=np.int64)
    position[keep] = np.arange(int(keep.sum()), dtype=np.int64)
    events = found.events[keep[found.events["row"].to_numpy(dtype=np.int64)]]
    events = events.assign(row=position[events["row"].to_numpy(dtype=np.int64)])
    quiet = np.flatnonzero(keep & found.recorded & ~found.occurred)
    none = pd.DataFrame(
        {"row": position[quiet], "ae_type": pd.NA, "ae_severity": pd.NA}, dtype=object
    ).astype({"row": np.int64})
    out = pd.concat([events, none], ignore_index=True).sort_values("row", kind="stable")
    problems = [{**p, "row": int(position[p["row"]])} for p in found.problems if keep[p["row"]]]
    return out.reset_index(drop=True)[list(EVENT_FRAME_COLUMNS)], problems
