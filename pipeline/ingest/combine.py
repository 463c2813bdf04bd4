"""Read every configured source and join the pieces into one raw table per canonical table.

Rows are numbered ``source_row`` 1, 2, ... in the order of the sources, files and lines, and keep
``source_file``, ``source_line`` and ``source_detail`` so that a quarantined row can be found in
the file it came from. The ``[inputs]`` form is read exactly as before
(:func:`pipeline.ingest.raw_tables.read_raw_tables`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.sources import Source
from pipeline.errors import InputFileError
from pipeline.ingest.adapters import canonical, measurements, redcap, visit_sheet, wide
from pipeline.ingest.adapters.mapping import PROVENANCE, Adapted, Piece, combined_digest
from pipeline.ingest.adapters.typed_canonical import may_type
from pipeline.ingest.raw_tables import (
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_ROW,
    RawTable,
    SourceFile,
    read_raw_tables,
)
from pipeline.ingest.readers import STR
from pipeline.schemas.raw import TABLES, column_names

EVENT_FIELDS = ("ae_severity",)
"""Recorded through an event table when a severity is given (``adverse_event`` always is)."""

ADAPTERS: dict[str, Callable[[Source, Collection[str]], Adapted]] = {
    "canonical": canonical.read,
    # Only canonical files can be read straight into types (``typed``, the tables that may
    # be); the other layouts build their rows from text.
    "visit_sheet": lambda source, typed: visit_sheet.read(source),
    "wide": lambda source, typed: wide.read(source),
    "redcap": lambda source, typed: redcap.read(source),
    "measurements": lambda source, typed: measurements.read(source),
}


def read_sources(sources: tuple[Source, ...]) -> dict[str, RawTable]:
    """Read the configured sources into the three canonical raw tables.

    Parameters
    ----------
    sources : tuple of Source
        From :func:`pipeline.config.settings.load_config`.

    Returns
    -------
    dict of str to RawTable
        ``patients``, ``sessions`` and ``assessments``.

    Raises
    ------
    InputFileError
        A file-level problem in any source (one sentence naming the file).
    """
    if len(sources) == 1 and sources[0].legacy:
        return read_raw_tables(
            {t: Path(p[0]) for t, p in sources[0].files.items()}, sources[0].extra
        )
    extra = sources[0].extra if sources else {}
    pieces: list[Piece] = []
    files: dict[str, list[SourceFile]] = {t: [] for t in TABLES}
    # A table is read straight into types only where every source of it may be (a table
    # joining typed and text pieces is joined as text, the typed ones read again).
    typed = [t for t in TABLES if all(may_type(s, t) for s in sources if t in s.tables())]
    read_by: dict[str, str] = {}
    for source in sources:
        adapted = ADAPTERS[source.kind](source, typed)
        pieces += adapted.pieces
        for file, tables in adapted.files:
            _read_once(file, source, read_by)
            for table in tables:
                files[table].append(file)
    return {
        table: combine(
            table, [p for p in pieces if p.table == table], tuple(files[table]), extra.get(table)
        )
        for table in TABLES
    }


def _read_once(file: SourceFile, source: Source, read_by: dict[str, str]) -> None:
    """Stop when a file (a workbook's sheet) is read a second time: its rows would count twice."""
    where = f"{source.key()} ({file.kind})"
    if file.label in read_by:
        raise InputFileError(
            f"{file.path}: read twice, by {read_by[file.label]} and {where}; a file (or a "
            "workbook's sheet) is read by one source, for one table or, as a visit sheet or wide "
            "file, for the tables it gives (`tables`)"
        )
    read_by[file.label] = where


def combine(
    table: str,
    pieces: list[Piece],
    files: tuple[SourceFile, ...],
    extra: dict[str, str] | None = None,
) -> RawTable:
    """Join the pieces of one canonical table, numbering the rows ``source_row`` from 1.

    Parameters
    ----------
    table : str
        Canonical table name.
    pieces : list of Piece
        The table's pieces, in reading order.
    files : tuple of SourceFile
        The files read for the table.
    extra : dict of str to str, optional
        The study's own columns of the table, ``{column: kind}``.

    Returns
    -------
    RawTable
        Provenance columns, then the canonical columns present: typed when every piece was
        read straight into types (:mod:`pipeline.ingest.adapters.typed_canonical`), else text
        (a typed piece among pieces of text is read as text).
    """
    typed = bool(pieces) and all(p.text_of is not None for p in pieces)
    if not typed:
        pieces = [p.as_text() for p in pieces]
    frames, lineage, problems, events = [], [], [], []
    offset = 0
    for piece in pieces:
        rows = np.arange(offset + 1, offset + len(piece.frame) + 1, dtype=np.int64)
        frame = piece.frame.reset_index(drop=True)
        frame.insert(0, SOURCE_ROW, rows)
        frames.append(frame)
        if piece.lineage is not None:
            links = piece.lineage.assign(**{SOURCE_ROW: rows[piece.lineage["row"].to_numpy()]})
            lineage.append(links[[SOURCE_ROW, SOURCE_FILE, SOURCE_LINE]])
        else:
            lineage.append(frame[[SOURCE_ROW, SOURCE_FILE, SOURCE_LINE]])
        if piece.problems is not None:
            found = piece.problems.assign(
                table=table, **{SOURCE_ROW: rows[piece.problems["row"].to_numpy()]}
            )
            problems.append(found[["table", SOURCE_ROW, "column", "check", "value", "reason"]])
        if piece.events is not None:
            rows_of = rows[piece.events["row"].to_numpy(dtype=np.int64)]
            events.append(
                piece.events.drop(columns="row").assign(**{SOURCE_ROW: rows_of})[
                    [SOURCE_ROW, "ae_type", "ae_severity"]
                ]
            )
        offset += len(frame)
    order = [SOURCE_ROW, *PROVENANCE]
    present = [c for c in column_names(table, {table: extra or {}}) if any(c in f for f in frames)]
    if frames:
        frame = _joined(frames)
    else:
        frame = pd.DataFrame({c: pd.Series(dtype=STR) for c in order})
        frame[SOURCE_ROW] = frame[SOURCE_ROW].astype("int64")
        frame[SOURCE_LINE] = frame[SOURCE_LINE].astype("int64")
    if not typed:
        for column in present:
            frame[column] = frame[column].astype(STR)
    frame = frame[order + present]
    had: dict[str, list[str]] = {}
    for piece in pieces:
        for label in _labels(piece.frame[SOURCE_FILE]):
            known = had.setdefault(str(label), [])
            known += [c for c in column_names(table) if c in piece.frame and c not in known]
            if piece.events is not None:  # the event columns record the adverse events
                fields = EVENT_FIELDS if piece.events["ae_severity"].notna().any() else ()
                known += [c for c in ("adverse_event", *fields) if c not in known]
    merged = typed or any(p.lineage is not None for p in pieces)
    formats = {p.date_format for p in pieces}
    unique = {f.label: f for f in files}
    first = next(iter(unique.values()), None)
    return RawTable(
        name=table,
        path=first.path if first else Path(),
        sha256=(first.sha256 if len(unique) == 1 else combined_digest(unique.values()))
        if first
        else "",
        frame=None if typed else frame,
        typed=frame if typed else None,
        text_of=_text_of(pieces, order + present) if typed else None,
        blank_lines=sum(f.blank_lines for f in unique.values()),
        files=tuple(unique.values()),
        lineage=_joined(lineage) if merged else None,
        problems=pd.concat(problems, ignore_index=True) if problems else None,
        date_format=formats.pop() if len(formats) == 1 else "as configured for its source",
        columns_by_file=tuple((label, tuple(columns)) for label, columns in had.items()),
        extra=dict(extra or {}),
        events=pd.concat(events, ignore_index=True) if events else None,
    )


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Join frames one under the other (one frame, the usual case, is not copied)."""
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _text_of(pieces: list[Piece], columns: list[str]) -> Callable[[np.ndarray], pd.DataFrame]:
    """Return the function giving typed pieces' rows as :func:`combine` joins pieces of text.

    It takes ``source_row`` numbers and returns those rows, in reading order, with the
    ``columns`` of the joined table (missing where a piece's file lacks one), as text.
    """
    ends = np.cumsum([len(p.frame) for p in pieces])

    def text_of(rows: np.ndarray) -> pd.DataFrame:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        parts = []
        for piece, end in zip(pieces, ends, strict=True):
            start = end - len(piece.frame)
            here = rows[(rows > start) & (rows <= end)]
            part = piece.text_of(here - start - 1).reset_index(drop=True)
            part.insert(0, SOURCE_ROW, here)
            parts.append(part)
        frame = pd.concat(parts, ignore_index=True).reindex(columns=columns)
        for column in columns[len(PROVENANCE) + 1 :]:
            frame[column] = frame[column].astype(STR)
        return frame

    return text_of


def _labels(files: pd.Series) -> list[str]:
    """Return the files a piece's rows name, in order (nearly always one: compared, not hashed)."""
    if not len(files):
        return []
    first = files.iloc[0]
    return [first] if bool((files == first).all()) else list(files.unique())
