"""Reading raw clinic files into frames of text, exactly as written.

This is the input edge of the pipeline. A raw table is read with every cell as text so that
nothing is lost or silently converted before validation decides what each cell means; missing-
value tokens are recognised and surrounding spaces removed. File-level problems (missing file,
unreadable or empty file, not a table, duplicated or missing required columns) raise
:class:`~pipeline.errors.InputFileError` naming the file. Raw files are only ever read.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.errors import InputFileError
from pipeline.schemas import required_columns

# Cell contents read as missing (compared after stripping surrounding spaces).
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "na", "NaN", "nan", "-", "null", "NULL", "None")

# Column that records where each raw row came from: its line number in the file (header = 1).
SOURCE_ROW = "source_row"


@dataclass(frozen=True)
class RawTable:
    """One raw table as read from disk.

    Attributes
    ----------
    name : str
        Canonical table name (patients, sessions, assessments).
    path : Path
        The file it was read from.
    sha256 : str
        SHA-256 of the file's bytes, for provenance.
    frame : pandas.DataFrame
        Every column as text (missing cells are NA), plus ``source_row``, the 1-based line
        number of the row in the file. Blank lines are not rows.
    blank_lines : int
        Number of blank lines skipped.
    """

    name: str
    path: Path
    sha256: str
    frame: pd.DataFrame
    blank_lines: int


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _not_utf8(path: Path) -> InputFileError:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return InputFileError(
                    f"{path}: line {number} is not UTF-8 text (byte {exc.start + 1} of the "
                    f"line); save the file as UTF-8 CSV"
                )
    return InputFileError(f"{path}: not UTF-8 text; save the file as UTF-8 CSV")


def _header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        first = next(csv.reader(handle), None)
    if first is None:
        raise InputFileError(f"{path}: the file is empty (no header row)")
    if not any(cell.strip() for cell in first):
        raise InputFileError(f"{path}: line 1 is blank; the column names must be on line 1")
    return [cell.strip() for cell in first]


def read_raw_table(name: str, path: Path) -> RawTable:
    """Read one canonical raw CSV as text and check its columns.

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
    try:
        header = _header(path)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the file ({exc.strerror})") from None
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise InputFileError(f"{path}: column '{column}' appears twice in the header")
        seen.add(column)
    missing = [c for c in required_columns(name) if c not in seen]
    if missing:
        raise InputFileError(
            f"{path}: required column '{missing[0]}' is missing from the {name} file "
            f"(the header has: {', '.join(header)})"
        )
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            encoding="utf-8-sig",
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            skipinitialspace=False,
        )
    except pd.errors.ParserError as exc:
        raise InputFileError(f"{path}: not a comma-separated table ({exc})") from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    # With blank lines kept, data row i sits on line i + 2 (line 1 is the header).
    frame.insert(0, SOURCE_ROW, pd.RangeIndex(2, len(frame) + 2))
    text_columns = [c for c in frame.columns if c != SOURCE_ROW]
    stripped = frame[text_columns].apply(lambda s: s.str.strip())
    blank = (stripped == "").all(axis=1)
    stripped = stripped.mask(stripped.isin(MISSING_TOKENS))
    frame = pd.concat([frame[[SOURCE_ROW]], stripped], axis=1)[~blank].reset_index(drop=True)
    return RawTable(
        name=name, path=path, sha256=sha256_of(path), frame=frame, blank_lines=int(blank.sum())
    )


def read_raw_tables(paths: dict[str, Path]) -> dict[str, RawTable]:
    """Read every canonical table named in ``paths`` (``{table: path}``)."""
    return {name: read_raw_table(name, path) for name, path in paths.items()}
