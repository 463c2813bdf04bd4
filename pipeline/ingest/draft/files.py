"""The input and output edges of `outcomes init`: read the exports, write the draft.

Files are read by the project's readers (:func:`pipeline.ingest.readers.read_table`, the REDCap
dictionary reader), never parsed here. What is added is the search for the header: a file whose
first lines hold a title is read again from the first line under which the file is a table,
and a workbook from the sheet that holds the widest table.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.sources import Source
from pipeline.config.vocabulary import Vocabulary
from pipeline.errors import InputFileError, UserError
from pipeline.ingest.adapters.redcap import DICTIONARY_COLUMNS, EVENT, Field, read_dictionary
from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.assemble import draft
from pipeline.ingest.draft.model import Draft, Export
from pipeline.ingest.draft.render import render
from pipeline.ingest.readers import EXCEL_SUFFIXES, TextTable, read_bytes, read_table
from pipeline.schemas.columns import PATIENT_ID

HEADER_ROWS = 10  # the header is looked for on the first lines (sheet rows)
FOOTER_ROWS = 5  # the most lines below a table read as its footer


def footer_rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> int:
    """Count the rows at the end of a table that are a footer, not rows (``Total: 40``).

    A footer row fills at most a quarter of the cells a row usually fills (one at least), and
    one of them is prose (a space or a colon), not a code: a last patient's row holding only
    its identifier is no footer.
    """
    if len(columns) < 3 or len(frame) < 5:
        return 0
    cells = frame[list(columns)]
    filled = cells.notna().sum(axis=1).to_numpy()
    usual = int(np.median(filled))
    if usual < 3:
        return 0
    few, rows = max(1, usual // 4), 0
    while rows < FOOTER_ROWS and filled[-1 - rows] <= few:
        prose = cells.iloc[-1 - rows].dropna().astype(str).str.contains(r"\S[ :]|:", regex=True)
        if not prose.any():
            break
        rows += 1
    return rows


def _plausible(text: TextTable) -> bool:
    """Whether a header looks like column names: two or more, most filled, hardly any data."""
    names = [h for h in text.header if h]
    data = sum(bool(_DATA.match(h)) for h in names)
    return len(names) >= 2 and len(names) >= 0.6 * len(text.header) and data <= len(names) / 10


# A header cell that is a value, not a name: a number or a date.
_DATA = re.compile(r"^[-+]?\d+(?:[.,]\d+)?$|^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
# The message of a file whose first line is far narrower than its rows: a title above the header.
_TITLE = re.compile(r"line \d+ has (\d+) cells but the header has (\d+) column")


def _title_above(exc: InputFileError) -> bool:
    found = _TITLE.search(str(exc))
    return bool(found) and int(found.group(2)) * 2 <= int(found.group(1))


def read_with_header(path: Path, sheet: str | None = None) -> TextTable:
    """Read a file from its header line: the first line under which the file is a table.

    Lines above the header are tried away only when line 1 is not a header: far fewer cells
    than the rows below it (a title), or cells that are not column names. Any other problem of
    the file (a quote never closed, a ragged row) is the file's, and reported as such.

    Raises
    ------
    InputFileError
        The file cannot be read, or no line of the first ones gives a table.
    """
    missing = Vocabulary.of().missing_spellings()
    first: InputFileError | None = None
    for row in range(1, HEADER_ROWS + 1):
        try:
            text = read_table(path, header_row=row, sheet=sheet, missing=missing)
        except InputFileError as exc:
            if row == 1 and not _title_above(exc):
                raise
            if "has only" in str(exc):  # no more lines to try
                break
            first = first or exc
            continue
        if _plausible(text):
            return text
    if first is not None:
        raise first
    raise InputFileError(
        f"{path}: none of the first {HEADER_ROWS} lines holds column names (is it a table?)"
    )


def _sheets(path: Path) -> list[str]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True)
    except Exception as exc:  # any workbook openpyxl cannot open: read_table names the problem
        raise InputFileError(f"{path}: not a readable Excel .xlsx workbook ({exc})") from None
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def read_export(path: Path) -> list[tuple[TextTable, str | None]]:
    """Read one export: each table with its sheet (``None``: a text file, or the first sheet).

    Of a workbook, every sheet holding a table with a column named as the patient identifier
    (a patient list beside the visits); when none has one, the widest table.
    """
    read_bytes(path)  # a missing, unreadable or special file: one sentence saying which
    if path.suffix.lower() not in EXCEL_SUFFIXES:
        return [(read_with_header(path), None)]
    names = _sheets(path)
    found: list[tuple[int, TextTable, str | None]] = []
    for k, name in enumerate(names):
        try:
            text = read_with_header(path, sheet=name)
        except InputFileError:
            continue
        size = len([h for h in text.header if h]) * max(text.rows, 1)
        found.append((size, text, None if k == 0 else name))
    if not found:
        return [(read_with_header(path), None)]
    with_ids = [(text, sheet) for _, text, sheet in found if _names_patients(text)]
    if with_ids:
        return with_ids
    _, text, sheet = max(found, key=lambda f: f[0])
    return [(text, sheet)]


def _names_patients(text: TextTable) -> bool:
    """Whether a table has a column named as the patient identifier."""
    return any(
        c.target == PATIENT_ID and c.strength == cols.EXACT
        for h in text.header
        if h
        for c in cols.name_candidates(h)
    )


def is_dictionary(text: TextTable) -> bool:
    """Whether a table is a REDCap data dictionary (its 'Variable / Field Name' column)."""
    wanted = DICTIONARY_COLUMNS["field"].casefold()
    return any(h.casefold() == wanted for h in text.header)


def _label(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


def read_exports(
    paths: list[Path], config_folder: Path
) -> tuple[list[Export], dict[str, dict[str, Field]]]:
    """Read the files given to `init`: the exports, and the REDCap dictionaries among them.

    Parameters
    ----------
    paths : list of Path
        The files named on the command line.
    config_folder : Path
        Folder of the configuration to write (file labels are relative to it).
    """
    exports, dictionaries = [], {}
    for path, (text, sheet) in ((p, t) for p in paths for t in read_export(Path(p))):
        label = _label(Path(path), config_folder)
        if is_dictionary(text):
            stub = Source(
                number=1, kind="redcap", config=config_folder / "x", files={}, dictionary=str(path)
            )
            dictionaries[label] = read_dictionary(stub)
            continue
        rows = footer_rows(text.frame, text.columns)
        footer = text.frame.iloc[len(text.frame) - rows :] if rows else text.frame.iloc[:0]
        exports.append(
            Export(
                label=label,
                folder=Path(path).resolve().parent.name,
                frame=text.frame.iloc[: len(text.frame) - rows],
                footer=tuple(
                    " ".join(str(c) for c in row if pd.notna(c))
                    for row in footer[list(text.columns)].itertuples(index=False)
                ),
                columns=text.columns,
                header_row=text.header_line,
                delimiter=text.delimiter,
                encoding=text.encoding,
                sheet=sheet,
            )
        )
    if not exports:
        raise UserError("no export to draft from: the files given are all REDCap dictionaries")
    for export in exports:
        if EVENT in export.columns and not dictionaries:
            raise UserError(
                f"{export.label}: a REDCap export (it has a {EVENT} column) is read with its "
                f"data dictionary; name both: outcomes init {export.label} dictionary.csv"
            )
    return exports, dictionaries


def draft_files(paths: list[Path], out: Path) -> tuple[Draft, str]:
    """Draft the configuration of ``paths`` as it would be written to ``out`` (nothing written).

    Returns
    -------
    draft : Draft
        The guesses.
    text : str
        The commented TOML.
    """
    exports, dictionaries = read_exports(paths, out.parent)
    found = draft(exports, dictionaries)
    title = ", ".join(Path(p).name for p in paths[:6]) + (" ..." if len(paths) > 6 else "")
    return found, render(found, title)


def write_draft(paths: list[Path], out: Path, force: bool = False) -> Draft:
    """Draft the configuration of ``paths`` and write it to ``out``.

    Raises
    ------
    UserError
        ``out`` exists and ``force`` is not set, or a file cannot be read.
    """
    out = Path(out)
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to replace it")
    if out.exists() and out.is_dir():
        raise UserError(f"{out}: this is a folder; name the configuration file to write")
    found, text = draft_files(paths, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return found
