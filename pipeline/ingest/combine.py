"""Read every configured source and join the pieces into one raw table per canonical table.

Rows are numbered ``source_row`` 1, 2, ... in the order of the sources, files and lines, and keep
``source_file``, ``source_line`` and ``source_detail`` so that a quarantined row can be found in
the file it came from. The ``[inputs]`` form is read exactly as before
(:func:`pipeline.ingest.raw_tables.read_raw_tables`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.settings import Source
from pipeline.ingest.adapters import canonical, redcap, visit_sheet, wide
from pipeline.ingest.adapters.mapping import PROVENANCE, Adapted, Piece, combined_digest
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

ADAPTERS: dict[str, Callable[[Source], Adapted]] = {
    "canonical": canonical.read,
    "visit_sheet": visit_sheet.read,
    "wide": wide.read,
    "redcap": redcap.read,
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
    for source in sources:
        adapted = ADAPTERS[source.kind](source)
        pieces += adapted.pieces
        for file, tables in adapted.files:
            for table in tables:
                files[table].append(file)
    return {
        table: combine(
            table, [p for p in pieces if p.table == table], tuple(files[table]), extra.get(table)
        )
        for table in TABLES
    }


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
        Provenance columns, then the canonical columns present, as text.
    """
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
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = pd.DataFrame({c: pd.Series(dtype=STR) for c in order})
        frame[SOURCE_ROW] = frame[SOURCE_ROW].astype("int64")
        frame[SOURCE_LINE] = frame[SOURCE_LINE].astype("int64")
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
    merged = any(p.lineage is not None for p in pieces)
    formats = {p.date_format for p in pieces}
    unique = {f.label: f for f in files}
    first = next(iter(unique.values()), None)
    return RawTable(
        name=table,
        path=first.path if first else Path(),
        sha256=(first.sha256 if len(unique) == 1 else combined_digest(unique.values()))
        if first
        else "",
        frame=frame,
        blank_lines=sum(f.blank_lines for f in unique.values()),
        files=tuple(unique.values()),
        lineage=pd.concat(lineage, ignore_index=True) if merged else None,
        problems=pd.concat(problems, ignore_index=True) if problems else None,
        date_format=formats.pop() if len(formats) == 1 else "as configured for its source",
        columns_by_file=tuple((label, tuple(columns)) for label, columns in had.items()),
        extra=dict(extra or {}),
        events=pd.concat(events, ignore_index=True) if events else None,
    )


def _labels(files: pd.Series) -> list[str]:
    """Return the files a piece's rows name, in order (nearly always one: compared, not hashed)."""
    if not len(files):
        return []
    first = files.iloc[0]
    return [first] if bool((files == first).all()) else list(files.unique())
