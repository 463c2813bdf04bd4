"""Reading raw clinic files into frames of text, exactly as written.

This is the input edge of the pipeline. A raw table is read with every cell as text so that
nothing is lost or silently converted before validation decides what each cell means; missing-
value tokens are recognised and surrounding spaces removed. File-level problems (missing file,
unreadable or empty file, not a table, duplicated or missing required columns) raise
:class:`~pipeline.errors.InputFileError` naming the file. Raw files are only ever read.

The canonical CSVs of the ``[inputs]`` form are read here; the other layouts a clinic may hold
(visit sheets, wide files, REDCap exports, several clinics' files) are turned into the same
:class:`RawTable` by the adapters of :mod:`pipeline.ingest.adapters`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputFileError
from pipeline.ingest.readers import (
    LINE,
    MISSING_TOKENS,
    FileDigest,
    duplicated_names,
    read_bytes,
    read_text,
    sha256_of,
    split_header,
)
from pipeline.ingest.typed_reader import TypedRows, read_typed
from pipeline.schemas.raw import column_kinds, column_names, required_columns

__all__ = [
    "MISSING_TOKENS",
    "SOURCE_DETAIL",
    "SOURCE_FILE",
    "SOURCE_LINE",
    "SOURCE_ROW",
    "RawTable",
    "SourceFile",
    "read_raw_table",
    "read_raw_tables",
    "sha256_of",
]

# Column that identifies each raw row of a table: its line number in the file (header = 1) for
# the [inputs] form; its position in the combined table for [[sources]].
SOURCE_ROW = "source_row"
# Where a row of a [[sources]] table came from: the file (relative to the configuration), its
# line or sheet row, and what else locates it (time point, REDCap event, merged lines).
SOURCE_FILE = "source_file"
SOURCE_LINE = LINE
SOURCE_DETAIL = "source_detail"


@dataclass(frozen=True)
class SourceFile:
    """One file read for a study, with what the per-file summary needs.

    Attributes
    ----------
    label : str
        The file as shown in summaries and quarantine files (relative to the configuration's
        folder when inside it).
    path : Path
        The file.
    sha256 : str
        SHA-256 of its bytes.
    kind : str
        Source kind (canonical, visit_sheet, wide, redcap).
    source : int
        Position of its ``[[sources]]`` entry from 1; 0 for the ``[inputs]`` form.
    rows : int
        Data rows read (blank rows excluded).
    blank_lines : int
        Blank rows skipped.
    encoding : str
        Text encoding read (``xlsx`` for a workbook).
    """

    label: str
    path: Path
    sha256: str
    kind: str
    source: int
    rows: int
    blank_lines: int
    encoding: str


@dataclass(frozen=True)
class RawTable:
    """One canonical raw table as read from disk.

    Attributes
    ----------
    name : str
        Canonical table name (patients, sessions, assessments).
    path : Path
        The file it was read from (the first, when several files were combined).
    sha256 : str
        SHA-256 of that file's bytes; for several files, of their sorted ``label:sha256`` lines.
    frame : pandas.DataFrame or None
        Every column as text (missing cells are NA), plus ``source_row``: the 1-based line
        number of the row in the file (``[inputs]``), or the row's position in the combined
        table together with ``source_file``, ``source_line`` and ``source_detail``
        (``[[sources]]``). Blank lines are not rows. ``None`` when the reader parsed the cells
        straight into their types (see ``typed``).
    blank_lines : int
        Number of blank lines skipped.
    files : tuple of SourceFile
        Every file the table was read from.
    lineage : pandas.DataFrame or None
        ``source_row, source_file, source_line`` for every line a row was made from, when a row
        comes from several lines (a visit sheet's patient); ``None`` when each row has one line.
    problems : pandas.DataFrame or None
        Row problems found while mapping the source (e.g. a patient's age differing between
        the rows of a visit sheet), in the shape of validation failures; validation quarantines
        their rows.
    date_format : str
        How the dates of the source are written, for messages about dates that do not parse.
    typed : pandas.DataFrame or None
        ``source_row`` and the schema's columns already parsed into their types, when the file
        was regular enough to be read that way (:mod:`pipeline.ingest.typed_reader`); validation
        then skips parsing. ``None`` otherwise.
    text_of : callable or None
        With ``typed``: given ``source_row`` numbers, returns those rows as text (as
        :attr:`frame` would hold them, ``source_row`` first), for the quarantine.
    columns_by_file : tuple of (str, tuple of str)
        Per file label, the canonical columns that file actually had (mapped, for the
        ``[[sources]]`` form): what each source *recorded*. A canonical column a file lacks
        is missing on its rows because the source never recorded it, not because a cell was
        left empty (:mod:`pipeline.ingest.recorded`).
    extra : dict of str to str
        The study's own columns of this table, ``{column: kind}``
        (:meth:`pipeline.config.study.Study.extra_columns`).
    events : pandas.DataFrame or None
        Sessions from sources with ``[sources.N.adverse_events]``: ``source_row, ae_type,
        ae_severity``, one row per adverse event of the session on ``source_row`` and a row
        with ``ae_type`` missing for a session that recorded its events and had none;
        ``None`` when no source records events that way
        (:func:`pipeline.derive.adverse_events.event_record` links them to valid sessions).
    """

    name: str
    path: Path
    sha256: str
    frame: pd.DataFrame
    blank_lines: int
    files: tuple[SourceFile, ...] = ()
    lineage: pd.DataFrame | None = None
    problems: pd.DataFrame | None = None
    date_format: str = "YYYY-MM-DD"
    typed: pd.DataFrame | None = None
    text_of: Callable[[np.ndarray], pd.DataFrame] | None = None
    columns_by_file: tuple[tuple[str, tuple[str, ...]], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    events: pd.DataFrame | None = None

    @property
    def source_rows(self) -> pd.Series:
        """``source_row`` of every row, in reading order."""
        return (self.frame if self.frame is not None else self.typed)[SOURCE_ROW]

    def text_rows(self, rows: np.ndarray | pd.Series) -> pd.DataFrame:
        """Return the rows whose ``source_row`` is in ``rows`` as text cells, in reading order."""
        if self.frame is not None:
            if not len(rows):
                # No row: new empty columns of the same types, built without touching the
                # table (pyarrow's take joins a column's chunks first; a zero-row slice would
                # keep the whole table's text alive as long as the quarantine).
                return pd.DataFrame(
                    {c: pd.Series([], dtype=t) for c, t in self.frame.dtypes.items()}
                )
            return self.frame[self.frame[SOURCE_ROW].isin(rows)]
        return self.text_of(np.asarray(rows))

    def file_digests(self) -> list[tuple[str, str]]:
        """Return ``(label, sha256)`` of every file the table was read from."""
        if self.files:
            return [(f.label, f.sha256) for f in self.files]
        return [(self.path.name, self.sha256)]

    def provenance(self) -> pd.DataFrame:
        """Return ``source_row, source_file, source_line``: the lines each row was made from."""
        if self.lineage is not None:
            return self.lineage
        if self.frame is not None and SOURCE_FILE in self.frame:
            return self.frame[[SOURCE_ROW, SOURCE_FILE, SOURCE_LINE]]
        label = self.files[0].label if self.files else self.path.name
        rows = self.source_rows
        return pd.DataFrame({SOURCE_ROW: rows, SOURCE_FILE: label, SOURCE_LINE: rows})


def read_raw_table(name: str, path: Path, extra: dict[str, str] | None = None) -> RawTable:
    """Read one canonical raw CSV as text and check its columns.

    The file must be UTF-8 (a byte-order mark is allowed), comma-separated, with the column
    names on line 1.

    Parameters
    ----------
    name : str
        Canonical table name; decides which columns are required.
    path : Path
        The CSV file.

    Returns
    -------
    RawTable
        The table as text with ``source_row`` line numbers.

    Raises
    ------
    InputFileError
        The file is missing, unreadable, empty, not a comma-separated table, has a duplicated
        column name, or lacks a required column.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: {name} file not found")
    data = read_bytes(path)
    with FileDigest(data) as digest:
        layout = split_header(path, data, delimiter=",", encoding="utf-8", header_row=1)
        for column, positions in duplicated_names(layout.header).items():
            raise InputFileError(
                f"{path}: column '{column}' appears twice in the header (columns "
                f"{' and '.join(map(str, positions[:2]))})"
            )
        missing = [c for c in required_columns(name) if c not in layout.header]
        if missing:
            raise InputFileError(
                f"{path}: required column '{missing[0]}' is missing from the {name} file "
                f"(the header has: {', '.join(layout.header)})"
            )
        typed = read_typed(layout, column_kinds(name, {name: extra or {}}))
        if typed is None:
            text = read_text(layout, digest)
            frame = text.frame.rename(columns={LINE: SOURCE_ROW})
            rows, blank = text.rows, text.blank_lines
        else:
            frame, rows, blank = None, len(typed.frame), typed.blank_lines
        sha256 = digest.hexdigest()
    source = SourceFile(
        label=path.name,
        path=path,
        sha256=sha256,
        kind="canonical",
        source=0,
        rows=rows,
        blank_lines=blank,
        encoding=layout.encoding,
    )
    return RawTable(
        name=name,
        path=path,
        sha256=sha256,
        frame=frame,
        blank_lines=blank,
        files=(source,),
        typed=None if typed is None else typed.frame.rename(columns={LINE: SOURCE_ROW}),
        text_of=None if typed is None else _rows_of(typed),
        columns_by_file=((path.name, tuple(c for c in column_names(name) if c in layout.header)),),
        extra=dict(extra or {}),
    )


def _rows_of(typed: TypedRows) -> Callable[[np.ndarray], pd.DataFrame]:
    """Rows of a file read typed, as text, by ``source_row`` (here, the line of each row)."""
    return lambda rows: typed.text_of(rows).rename(columns={LINE: SOURCE_ROW})


def read_raw_tables(
    paths: dict[str, Path], extra: dict[str, dict[str, str]] | None = None
) -> dict[str, RawTable]:
    """Read every canonical table named in ``paths`` (``{table: path}``).

    The files are read side by side in threads (reading, hashing and pyarrow's parsing release
    the interpreter lock); a problem is reported for the first table in ``paths`` that has one.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(paths))) as pool:
        futures = {
            name: pool.submit(read_raw_table, name, path, (extra or {}).get(name))
            for name, path in paths.items()
        }
        return {name: future.result() for name, future in futures.items()}
