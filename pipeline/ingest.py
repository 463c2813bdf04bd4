"""Reading raw clinic files into frames of text, exactly as written.

This is the input edge of the pipeline. A raw table is read with every cell as text so that
nothing is lost or silently converted before validation decides what each cell means; missing-
value tokens are recognised and surrounding spaces removed. File-level problems (missing file,
unreadable or empty file, not a table, duplicated or missing required columns) raise
:class:`~pipeline.errors.InputFileError` naming the file. Raw files are only ever read.

The canonical CSVs of the ``[inputs]`` form are read here; the other layouts a clinic may hold
(visit sheets, wide files, REDCap exports, several clinics' files) are turned into the same
:class:`RawTable` by the adapters of :mod:`pipeline.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.errors import InputFileError
from pipeline.schemas import required_columns
from pipeline.sources.readers import LINE, MISSING_TOKENS, read_table, sha256_of

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
    frame : pandas.DataFrame
        Every column as text (missing cells are NA), plus ``source_row``: the 1-based line
        number of the row in the file (``[inputs]``), or the row's position in the combined
        table together with ``source_file``, ``source_line`` and ``source_detail``
        (``[[sources]]``). Blank lines are not rows.
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

    def provenance(self) -> pd.DataFrame:
        """Return ``source_row, source_file, source_line``: the lines each row was made from."""
        if self.lineage is not None:
            return self.lineage
        if SOURCE_FILE in self.frame:
            return self.frame[[SOURCE_ROW, SOURCE_FILE, SOURCE_LINE]]
        label = self.files[0].label if self.files else self.path.name
        rows = self.frame[SOURCE_ROW]
        return pd.DataFrame({SOURCE_ROW: rows, SOURCE_FILE: label, SOURCE_LINE: rows})


def read_raw_table(name: str, path: Path) -> RawTable:
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
    if not path.is_file():
        raise InputFileError(f"{path}: {name} file not found")
    text = read_table(path, delimiter=",", encoding="utf-8", header_row=1)
    for column, positions in text.duplicated().items():
        raise InputFileError(
            f"{path}: column '{column}' appears twice in the header (columns "
            f"{' and '.join(map(str, positions[:2]))})"
        )
    missing = [c for c in required_columns(name) if c not in text.header]
    if missing:
        raise InputFileError(
            f"{path}: required column '{missing[0]}' is missing from the {name} file "
            f"(the header has: {', '.join(text.header)})"
        )
    frame = text.frame.rename(columns={LINE: SOURCE_ROW})
    source = SourceFile(
        label=path.name,
        path=path,
        sha256=text.sha256,
        kind="canonical",
        source=0,
        rows=text.rows,
        blank_lines=text.blank_lines,
        encoding=text.encoding,
    )
    return RawTable(
        name=name,
        path=path,
        sha256=text.sha256,
        frame=frame,
        blank_lines=text.blank_lines,
        files=(source,),
    )


def read_raw_tables(paths: dict[str, Path]) -> dict[str, RawTable]:
    """Read every canonical table named in ``paths`` (``{table: path}``)."""
    return {name: read_raw_table(name, path) for name, path in paths.items()}
