"""The canonical layout (three tables, as in the data dictionary), from one or many clinics.

Each table may come from several files of the same layout, e.g. one ``patients.csv`` per clinic
(``patients = ["north/patients.csv", "south/patients.csv"]`` or a glob); ``site`` or
``[sources.sites]`` fills the site column of patients files that lack one. The clinic may use its
own column names (``[sources.columns]``), codes, units, delimiter, encoding and date format.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from pipeline.config.source_columns import ODI_ANSWERED
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
from pipeline.ingest.adapters.typed_canonical import read_typed_file
from pipeline.ingest.raw_tables import SourceFile
from pipeline.ingest.readers import TextTable
from pipeline.schemas.raw import TABLES, column_names, required_columns


def read(source: Source, typed: Collection[str] = TABLES) -> Adapted:
    """Read every file of a canonical source into pieces of its tables.

    Parameters
    ----------
    source : Source
        A ``kind = "canonical"`` source.
    typed : collection of str
        The tables whose files may be read straight into types
        (:mod:`pipeline.ingest.adapters.typed_canonical`); the others are read as text.

    Returns
    -------
    Adapted
        One piece per file, and the files read.

    Raises
    ------
    InputFileError
        A file is missing or unreadable, or lacks a mapped or required column.
    """
    jobs: list[tuple[str, Path] | InputFileError] = []
    for table in TABLES:
        if table not in source.files:
            continue
        try:
            jobs += [(table, path) for path in expand(source, table)]
        except InputFileError as exc:  # (raised after the problems of the files before it)
            jobs.append(exc)
            break
    # The files are read side by side (pyarrow's parsing, hashing and much of the normalising
    # run outside the interpreter lock); the first problem in the order of the files is the one
    # raised, as when they were read one after another.
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            job
            if isinstance(job, InputFileError)
            else pool.submit(_read_file, source, *job, job[0] in typed)
            for job in jobs
        ]
        done = []
        for future in futures:
            if isinstance(future, InputFileError):
                raise future
            done.append(future.result())
    return Adapted(tuple(p for p, _ in done), tuple(f for _, f in done))


def _read_file(
    source: Source, table: str, path: Path, typed: bool = True
) -> tuple[Piece, tuple[SourceFile, tuple[str, ...]]]:
    """Read one file of ``table`` into its piece, and describe the file.

    With ``typed``, the file is read straight into types when it can be.
    """
    names = column_names(table, source.extra)
    names += (ODI_ANSWERED,) if table == "assessments" else ()
    by_events = table == "sessions" and source.adverse_events is not None
    if by_events:  # read from the event columns instead
        names = tuple(c for c in names if c not in ("adverse_event", "ae_severity"))
    explicit = {c: v for c, v in source.columns.items() if c in names}
    label = file_label(source, path)
    site = site_for(source, path, label) if table == "patients" else None
    by_date = table == "assessments" and source.visits == "by_date"
    if by_date:  # the visits are numbered from the dates
        names = tuple(c for c in names if c != "visit")
    required = [c for c in required_columns(table) if not (c == "site" and site)]
    required = [c for c in required if not (by_date and c == "visit")]
    required += ["assessment_date"] if by_date else []
    reader = None
    if typed and not by_events:  # (the event columns are read from the text)
        reader = partial(read_typed_file, source, table, label, names, required, explicit, site)
    text = read_source_file(source, path, typed=reader)
    if not isinstance(text, TextTable):
        piece, file = text
        return piece, (file, (table,))
    columns = resolve_columns(source, text, label, names, required, explicit=explicit)
    if site and "site" in columns:
        raise_site_twice(source, label)
    frame = mapped_frame(source, text, columns, label, site)
    if by_date:
        frame["visit"] = visits_by_date(frame)
    if by_events:
        found = event_columns.file_events(source, text, label)
        events, problems = event_columns.for_rows(found, np.ones(len(frame), dtype=bool))
        piece = Piece(
            table,
            frame,
            problems=problems_frame(problems),
            date_format=source.date_format,
            events=events,
        )
    else:
        problems = problems_frame(undated_visits(frame)) if by_date else None
        piece = Piece(table, frame, problems=problems, date_format=source.date_format)
    return piece, (source_file(source, text, label), (table,))
