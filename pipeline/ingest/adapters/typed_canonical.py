"""The fast route for the files of a canonical source: cells read straight into their types.

A delimited file of a ``kind = "canonical"`` source is read as the ``[inputs]`` files are
(:func:`pipeline.ingest.typed_reader.read_typed`, on all cores, no column of text built for the
numbers, dates and yes/no answers) whenever that gives validation exactly what the text route
gives it (every cell read as text, mapped, normalised, then parsed). That holds when normalising
would leave every column that is not text as written:

* each mapped column is one of the table's columns, of the kind normalising gives it, taken from
  a clinic column of its own;
* no code list, shift or unit applies to a column that is not text, numbers are written with a
  decimal point, ODI is not given as points over the sections answered, and the date format
  leaves ISO dates as written (:func:`pipeline.ingest.adapters.mapping.iso_kept`);
* the session log does not take its adverse events from event columns;
* every other source of the table allows it too (:func:`may_type`, decided from the settings
  before any file is read): a table is joined in one form, and one that joins typed and text
  pieces is joined as text (:func:`pipeline.ingest.combine.combine`);
* and the typed reading itself succeeds. It declines any cell it would read differently (see
  :mod:`pipeline.ingest.typed_reader`): a yes/no answer in a language's own words (``ja``), a
  date written another way or a number with a unit sends the file to the text route. Whole
  numbers, ISO dates and the plain spellings of yes and no are exactly the cells normalising
  leaves as written (:func:`~pipeline.ingest.adapters.mapping.numbered`,
  :func:`~pipeline.ingest.adapters.mapping.iso_dates`,
  :func:`~pipeline.ingest.adapters.mapping.yes_no`).

Text columns (identifiers, codes, sites) are normalised as on the text route, by the same
function. The rows that validation quarantines are read again from the file's bytes and mapped by
the text route's own functions (:attr:`pipeline.ingest.adapters.mapping.Piece.text_of`), so the
quarantine shows them as the text route would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from pipeline.config.source_columns import ODI_ANSWERED
from pipeline.config.sources import Source
from pipeline.errors import InputFileError
from pipeline.ingest.adapters.mapping import (
    UNIT_FACTORS,
    Piece,
    all_codes,
    constant,
    iso_kept,
    mapped_frame,
    normalise,
    normalised_kinds,
    provenance_frame,
    resolve_columns,
)
from pipeline.ingest.raw_tables import SourceFile
from pipeline.ingest.readers import LINE, FileDigest, Layout, TextTable, read_text
from pipeline.ingest.typed_reader import read_typed
from pipeline.schemas.raw import column_kinds, column_names


def may_type(source: Source, table: str) -> bool:
    """Whether the settings of ``source`` let its files of ``table`` take the typed route.

    Decided before any file is read, over every column of the table, so that a table some of
    whose sources must take the text route is not read typed first (it would be read again as
    text, :func:`pipeline.ingest.combine.combine`).

    Parameters
    ----------
    source : Source
        Any source.
    table : str
        A canonical table it provides.

    Returns
    -------
    bool
        ``False`` for a source that is not canonical, a session log whose adverse events come
        from event columns, assessments whose visits are numbered by date, or settings that
        translate a column other than text.
    """
    if source.kind != "canonical":
        return False
    if table == "sessions" and source.adverse_events is not None:
        return False
    if table == "assessments" and source.visits == "by_date":
        return False  # (the visits are numbered from the normalised dates)
    return _translated_as_written(source, table, column_names(table, source.extra))


def kept_as_written(source: Source, table: str, columns: Mapping[str, str]) -> bool:
    """Whether normalising leaves every mapped column that is not text as written.

    Parameters
    ----------
    source : Source
        A canonical source.
    table : str
        The canonical table the file feeds.
    columns : mapping of str to str
        Canonical column -> clinic column
        (:func:`pipeline.ingest.adapters.mapping.resolve_columns`).

    Returns
    -------
    bool
        ``True`` when a typed reading of the file gives what the text route gives (the module's
        conditions other than the reading itself).
    """
    if ODI_ANSWERED in columns or len(set(columns.values())) < len(columns):
        return False
    return _translated_as_written(source, table, columns)


def _translated_as_written(source: Source, table: str, columns: Iterable[str]) -> bool:
    """Whether the settings of ``source`` leave each of ``columns`` that is not text as written."""
    kinds = column_kinds(table, source.extra)
    normalised = normalised_kinds(source)
    coded = all_codes()
    for column in columns:
        kind = kinds.get(column)
        if kind is None or normalised.get(column) != kind:
            return False
        if kind == "text":
            continue
        if column in source.codes or column in source.shift or column in coded:
            return False
        if kind in ("integer", "number"):
            if source.decimal != "." or UNIT_FACTORS.get((column, source.units.get(column, ""))):
                return False
        if kind == "date" and not iso_kept(source.date_format):
            return False
    return True


def read_typed_file(
    source: Source,
    table: str,
    label: str,
    wanted: tuple[str, ...],
    required: list[str],
    explicit: Mapping[str, str],
    site: str | None,
    layout: Layout,
    digest: FileDigest,
) -> tuple[Piece, SourceFile] | None:
    """Read one file of a canonical source straight into types, or ``None`` for the text route.

    Parameters
    ----------
    source : Source
        The canonical source.
    table : str
        The canonical table the file feeds.
    label : str
        The file as named in messages and provenance.
    wanted, required : sequence of str
        The canonical columns looked for, and those that must be found.
    explicit : mapping of str to str
        The source's ``[sources.columns]`` mapping for these columns.
    site : str or None
        The file's clinic, set on every row (:func:`pipeline.ingest.adapters.mapping.site_for`).
    layout : Layout
        The file, split at its header.
    digest : FileDigest
        Its SHA-256, computed alongside.

    Returns
    -------
    tuple of Piece and SourceFile, or None
        The piece (canonical columns typed, :attr:`Piece.text_of` set) and the file read, or
        ``None`` when the file must take the text route. A column that cannot be found is left
        to the text route too, which names it after any problem of the file's lines, as always.
    """
    try:
        columns = resolve_columns(source, layout, label, wanted, required, explicit=explicit)
    except InputFileError:
        return None
    if (site and "site" in columns) or not kept_as_written(source, table, columns):
        return None
    kinds = column_kinds(table, source.extra)
    missing = source.vocabulary.missing_spellings()
    typed = read_typed(layout, {columns[c]: kinds[c] for c in columns}, missing)
    if typed is None:
        return None
    lines = typed.frame[LINE].to_numpy()
    index = pd.RangeIndex(len(lines))
    cells = {canonical: typed.frame[column].array for canonical, column in columns.items()}
    frame = provenance_frame(label, lines, cells, index)
    text = [c for c in columns if kinds[c] == "text"]
    if text:
        normalised = normalise(frame[text], source)
        for column in text:
            frame[column] = normalised[column]
    if site:
        frame["site"] = constant(site, index)
    sha256 = digest.hexdigest()

    def text_of(rows: np.ndarray) -> pd.DataFrame:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == len(lines):  # every row (positions are distinct): read the whole file
            return mapped_frame(source, read_text(layout, sha256, missing), columns, label, site)
        as_read = TextTable(
            path=layout.path,
            sha256=sha256,
            frame=typed.text_of(lines[rows]),
            header=layout.header,
            columns=layout.names,
            header_line=layout.header_line,
            blank_lines=0,
            encoding=layout.encoding,
            delimiter=layout.delimiter,
        )
        return mapped_frame(source, as_read, columns, label, site)

    piece = Piece(table, frame, date_format=source.date_format, text_of=text_of)
    file = SourceFile(
        label=label,
        path=layout.path,
        sha256=sha256,
        kind=source.kind,
        source=source.number,
        rows=len(lines),
        blank_lines=typed.blank_lines,
        encoding=layout.encoding,
    )
    return piece, file
