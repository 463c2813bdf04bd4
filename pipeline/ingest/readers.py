"""Read one clinic file into a frame of text cells, each row with the line it came from.

The file may be a delimited text file (comma, semicolon, tab or bar; UTF-8 with or without a
byte-order mark, UTF-16 with one, Windows-1252 or Latin-1; header on any line) or an Excel
``.xlsx`` sheet. Whatever the form, the result is the same: one text column per header position,
surrounding spaces removed, missing-value tokens as missing, blank rows skipped and counted, and
the 1-based line (or sheet row) of every row. Nothing is converted to numbers or dates here.

Delimited files are parsed by pyarrow when they are regular (every line a complete row), which is
the common case and fast; anything irregular (a whitespace-only line, a short or long row, a
quoted line break) is read by Python's :mod:`csv` module instead, which names the offending line.
File-level problems raise :class:`~pipeline.errors.InputFileError` with one sentence naming the
file. Files are only ever read.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.errors import InputFileError
from pipeline.ingest.mapped_file import MappedFile, file_bytes

T = TypeVar("T")

# Cell contents read as missing (compared after stripping surrounding spaces).
# "None" is not one of them: it is also how a clinic may write the adverse-event code "none".
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "na", "NaN", "nan", "-", "null", "NULL")

# Column of a :class:`TextTable` frame holding each row's 1-based line (or sheet row) number.
LINE = "source_line"

# Delimiters recognised when a source says ``delimiter = "auto"``, most usual first.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}

# Encodings accepted in the configuration besides ``auto`` (any name Python knows also works).
EXCEL_SUFFIXES = (".xlsx", ".xlsm")

STR = pd.StringDtype("pyarrow", na_value=np.nan)
# Cells are read as large_string: pandas' default string dtype holds that type, so handing the
# columns to pandas copies nothing.
TEXT = pa.large_string()
_ARROW_TO_STR = {pa.string(): STR, TEXT: STR}
_TOKENS = pa.array(MISSING_TOKENS, TEXT)
# Bytes next to which a space means a cell has surrounding whitespace.
_EDGES = (ord("\n"), ord("\r"), ord('"'))


@dataclass(frozen=True)
class TextTable:
    """One file (or Excel sheet) as text.

    Attributes
    ----------
    path : Path
        The file.
    sha256 : str
        SHA-256 of the file's bytes.
    frame : pandas.DataFrame
        ``source_line`` (1-based line or sheet row), then one text column per header position,
        named as in :attr:`columns`; missing cells are missing. Blank rows are not rows.
    header : tuple of str
        Column names as written in the header (surrounding spaces removed), by position.
    columns : tuple of str
        The frame's name for each header position: the header name, or, for a blank or
        repeated name, ``"[column k]"`` / ``"<name> [column k]"`` (k counted from 1).
    header_line : int
        Line (or sheet row) of the header.
    blank_lines : int
        Blank lines and rows of only missing cells after the header, skipped.
    encoding : str
        The text encoding used (``"xlsx"`` for a workbook).
    delimiter : str or None
        The delimiter used (``None`` for a workbook).
    """

    path: Path
    sha256: str
    frame: pd.DataFrame
    header: tuple[str, ...]
    columns: tuple[str, ...]
    header_line: int
    blank_lines: int
    encoding: str
    delimiter: str | None

    @property
    def rows(self) -> int:
        """Number of data rows read (blank rows excluded)."""
        return len(self.frame)

    def duplicated(self) -> dict[str, tuple[int, ...]]:
        """Return ``{name: positions}`` (1-based) of every non-blank name written twice or more."""
        return duplicated_names(self.header)


def duplicated_names(header: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Return ``{name: positions}`` (1-based) of every non-blank name written twice or more."""
    positions: dict[str, list[int]] = {}
    for k, name in enumerate(header, start=1):
        if name:
            positions.setdefault(name, []).append(k)
    return {n: tuple(p) for n, p in positions.items() if len(p) > 1}


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def may_contain(cells: pa.ChunkedArray | pa.Array, needles: tuple[bytes, ...]) -> bool:
    """Whether the bytes of any cell may contain one of ``needles`` (no cell is missed).

    Searches the arrays' character buffers at once (bytes searches run at memory speed, many
    times faster than a regular expression or a substring kernel over every cell). A buffer
    may hold bytes of no cell (a sliced array), which can only answer ``True`` wrongly; so
    does any array that is not of pyarrow's string or large string type.
    """
    if cells.type not in (pa.string(), pa.large_string()):
        return True
    for chunk in cells.chunks if isinstance(cells, pa.ChunkedArray) else (cells,):
        data = chunk.buffers()[2]
        if data is not None and len(data):
            held = data.to_pybytes()
            if any(needle in held for needle in needles):
                return True
    return False


def cell_bytes(
    cells: pa.ChunkedArray | pa.Array,
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Return the bytes the cells of a text array span, and their lengths, chunk by chunk.

    Per chunk: the cells' characters, one cell after another (a sliced array's other bytes are
    left out), as a numpy view (no copy), and each cell's length in bytes (a missing cell
    usually spans none). ``None`` for an array that is not of pyarrow's string or large string
    type.
    """
    if cells.type not in (pa.string(), pa.large_string()):
        return None
    width = np.int32 if cells.type == pa.string() else np.int64
    spans = []
    for chunk in cells.chunks if isinstance(cells, pa.ChunkedArray) else (cells,):
        if not len(chunk):
            continue
        _, offsets, data = chunk.buffers()
        ends = np.frombuffer(
            offsets, dtype=width, count=len(chunk) + 1, offset=chunk.offset * width().itemsize
        )
        if data is None or ends[-1] == ends[0]:
            region = np.empty(0, np.uint8)
        else:
            region = np.frombuffer(data, dtype=np.uint8)[ends[0] : ends[-1]]
        spans.append((region, np.diff(ends)))
    return spans


def byte_set(*groups: bytes | range) -> np.ndarray:
    """Return a 256-entry table of the bytes in ``groups``, for :func:`holds_any`."""
    table = np.zeros(256, dtype=bool)
    for group in groups:
        table[list(group)] = True
    return table


def holds_any(cells: pa.ChunkedArray | pa.Array, table: np.ndarray) -> bool:
    """Whether any cell holds a byte of ``table`` (:func:`byte_set`); ``True`` if not text.

    The quick test of whether a text transformation (lower case, trimming, removing
    separators) can change any cell: the lowest and highest byte first (two reductions at
    memory speed), then, only when a byte of ``table`` lies between them, a look-up per byte.
    """
    spans = cell_bytes(cells)
    if spans is None:
        return True
    for region, _ in spans:
        if not region.size:
            continue
        low, high = int(region.min()), int(region.max())
        if table[low : high + 1].any() and table[region].any():
            return True
    return False


def read_table(
    path: Path,
    *,
    delimiter: str = "auto",
    encoding: str = "auto",
    header_row: int = 1,
    footer_rows: int = 0,
    sheet: str | None = None,
    hint: str = "",
    missing: tuple[str, ...] = (),
    typed: Callable[[Layout, FileDigest], T | None] | None = None,
) -> TextTable | T:
    r"""Read a delimited text file or an Excel sheet as text.

    Parameters
    ----------
    path : Path
        The file; ``.xlsx``/``.xlsm`` are read as workbooks, anything else as delimited text.
    delimiter : str
        ``","``, ``";"``, ``"\t"``, ``"|"`` or ``"auto"`` (the one of these written most often in
        the header line; a comma when none is).
    encoding : str
        ``"auto"`` (UTF-8, with or without byte-order mark; UTF-16 with a byte-order mark;
        otherwise Windows-1252, falling back to Latin-1), ``"utf-8"`` (strict: anything else is an
        error naming the line) or any encoding Python knows (``"cp1252"``, ``"latin-1"``, ...).
    header_row : int
        Line (sheet row) holding the column names, from 1; the lines above it are skipped.
    footer_rows : int
        Lines (sheet rows) at the end that are not rows of the table (a total, an export note):
        the last ``footer_rows`` lines that are not blank are skipped, as the lines above the
        header are.
    sheet : str, optional
        Sheet of a workbook (default: the first).
    hint : str
        Appended to the message when the header line is blank (e.g. where to set header_row).
    missing : tuple of str
        More cell contents read as missing, besides :data:`MISSING_TOKENS` (exact, after
        removing surrounding spaces; e.g. a source's ``k.A.``, ``K.A.``).
    typed : callable, optional
        Tried first on a delimited file, with its layout and digest: a reader of the cells
        straight into their types, returning ``None`` when the file must be read as text
        (:mod:`pipeline.ingest.adapters.typed_canonical`).

    Returns
    -------
    TextTable or what ``typed`` returned
        The cells as text with their line numbers, or as ``typed`` read them.

    Raises
    ------
    InputFileError
        The file is missing, unreadable, empty, binary, not valid in its encoding, or not a
        table (a row longer than the header, an unreadable workbook, a missing sheet).
    """
    path = Path(path)
    data = read_bytes(path)
    with FileDigest(data) as digest:
        if path.suffix.lower() in EXCEL_SUFFIXES:
            return _read_excel(
                path, data, digest.hexdigest(), sheet, header_row, hint, missing, footer_rows
            )
        if path.suffix.lower() == ".xls":
            raise InputFileError(
                f"{path}: old Excel .xls workbooks are not read; save the sheet as .xlsx or CSV"
            )
        layout = split_header(path, data, delimiter, encoding, header_row, hint, footer_rows)
        if typed is not None:
            found = typed(layout, digest)
            if found is not None:
                return found
        return read_text(layout, digest, missing)


def not_a_file(path: Path) -> str | None:
    """Say why ``path`` cannot be read as a file (``None`` when it is a readable regular file).

    The sentence names what the path is: missing, a folder, a named pipe, a device or a socket,
    or a file the user may not read.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot look at the path ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "this is a folder, not a file; name the file inside it (or a glob such as *.csv)"
    if stat.S_ISFIFO(mode):
        return "this is a named pipe (FIFO), not a file; save the export as a file and name it"
    if stat.S_ISSOCK(mode):
        return "this is a socket, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "this is a device, not a file"
    if not stat.S_ISREG(mode):
        return "this is not a regular file"
    if not os.access(path, os.R_OK):
        return "the file exists but you may not read it (permission denied)"
    return None


def read_bytes(path: Path) -> bytes | MappedFile:
    """Return a file's bytes, or raise :class:`InputFileError` naming why it cannot be read.

    A large file is mapped from the system's file cache, not copied (:mod:`.mapped_file`).
    """
    problem = not_a_file(path)
    if problem:
        raise InputFileError(f"{path}: {problem}")
    try:
        return file_bytes(path)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the file ({exc.strerror})") from None


class FileDigest:
    """SHA-256 of a file's bytes, computed in a second thread while the file is parsed.

    Use as a context manager; :meth:`hexdigest` waits for the result. (hashlib releases the
    interpreter lock on large buffers, so hashing and pyarrow's parsing run side by side.)
    """

    def __init__(self, data: bytes) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._future = self._pool.submit(lambda: hashlib.sha256(data).hexdigest())

    def __enter__(self) -> FileDigest:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    def hexdigest(self) -> str:
        """Return the digest (waiting for it)."""
        return self._future.result()


# ------------------------------------------------------------------------------------------
# delimited text
# ------------------------------------------------------------------------------------------
def _not_utf8(path: Path, data: bytes) -> InputFileError:
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return InputFileError(
                f"{path}: line {number} is not UTF-8 text (byte {exc.start + 1} of the "
                f"line); save the file as UTF-8 CSV"
            )
    return InputFileError(f"{path}: not UTF-8 text; save the file as UTF-8 CSV")


# What a file that is not a text table looks like, by its first bytes.
SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG picture"),
    (b"\xff\xd8\xff", "a JPEG picture"),
    (b"GIF8", "a GIF picture"),
    (b"\x1f\x8b", "a gzip archive; unpack it first"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook (or another Office file); save it as .xlsx"),
    (b"{\\rtf", "a rich-text (RTF) document"),
)
_MARKUP = (b"<!doctype html", b"<html", b"<head", b"<body", b"<table", b"<?xml", b"<!--")


def looks_like(data: bytes) -> str | None:
    """Name what a file that is not a delimited table looks like, from its first bytes."""
    for magic, what in SIGNATURES:
        if data.startswith(magic):
            return what
    start = data[:512].lstrip().lower()
    for tag in _MARKUP:
        if start.startswith(tag):
            return "an XML document" if tag == b"<?xml" else "a web page in HTML"
    return None


def _not_binary(path: Path, data: bytes) -> None:
    if data.startswith(b"PK\x03\x04"):
        raise InputFileError(
            f"{path}: this is a zip archive (an Excel workbook?), not a text table; "
            f"name an Excel file .xlsx"
        )
    what = looks_like(data)
    if what:
        held = "" if what.endswith(("HTML", "XML document")) else "holds binary data: it "
        raise InputFileError(
            f"{path}: not a text table (the file {held}looks like {what}); export the data as CSV"
        )
    if b"\x00" in data:
        raise InputFileError(f"{path}: not a text table (the file holds binary data)")


def _as_utf8(path: Path, data: bytes, encoding: str) -> tuple[bytes, str, bool | None]:
    """Return the file as UTF-8 bytes without a byte-order mark, and the encoding it was in.

    The third value says whether the bytes are ASCII (``None``: not looked at).
    """
    if encoding in ("auto", "utf-8", "utf8", "utf-8-sig"):
        if data.startswith(codecs.BOM_UTF8):
            data, used = data[len(codecs.BOM_UTF8) :], "utf-8 (with byte-order mark)"
        elif encoding == "auto" and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16").encode("utf-8"), "utf-16", None
        else:
            used = "utf-8"
        ascii_only = data.isascii()  # (ASCII is UTF-8; the check is far cheaper than decoding)
        try:
            if not ascii_only:
                data.decode("utf-8")
        except UnicodeDecodeError:
            if encoding != "auto":
                if data.startswith(b"PK\x03\x04") or looks_like(data):
                    _not_binary(path, data)  # a picture or a PDF: say so, not "not UTF-8"
                raise _not_utf8(path, data) from None
        else:
            _not_binary(path, data)
            return data, used, ascii_only
        _not_binary(path, data)
        try:
            return data.decode("cp1252").encode("utf-8"), "windows-1252", None
        except UnicodeDecodeError:
            return data.decode("latin-1").encode("utf-8"), "latin-1", None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputFileError(
            f"{path}: line {line} is not valid {encoding} text; set the source's encoding to "
            f"the one the file was saved in"
        ) from None
    return text.removeprefix("\ufeff").encode("utf-8"), encoding, None


def _blank(data: bytes, chars: bytes | None = None) -> bool:
    """Whether ``data`` holds only whitespace (or only ``chars``), without copying a large file."""
    if data[:64].strip(chars):
        return False
    return not data.strip(chars)


def _pick_delimiter(header: str, delimiter: str) -> str:
    if delimiter != "auto":
        return delimiter
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _unique_names(header: list[str]) -> list[str]:
    seen: set[str] = set()
    names = []
    for k, name in enumerate(header, start=1):
        if not name:
            unique = f"[column {k}]"
        elif name in seen:
            unique = f"{name} [column {k}]"
        else:
            unique = name
        seen.add(name)
        names.append(unique)
    return names


#: Bytes compared at a time when counting a byte (:meth:`Body.count`).
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Body:
    """The lines after a file's header, as a view of the file's bytes (a large file is not copied).

    Attributes
    ----------
    data : bytes
        The whole file as UTF-8 without a byte-order mark.
    start : int
        Offset of the first byte after the header line.
    ascii : bool or None
        Whether the whole file is ASCII, when already known (``None``: look when asked).
    """

    data: bytes
    start: int = 0
    ascii: bool | None = None

    def __len__(self) -> int:
        return len(self.data) - self.start

    def has(self, byte: bytes) -> bool:
        """Whether ``byte`` (or any byte string) occurs in the body."""
        return self.data.find(byte, self.start) >= 0

    def count(self, byte: bytes) -> int:
        """Return how often ``byte`` (a single byte) occurs in the body.

        numpy compares a block at a time (a block fits the processor's cache): three times
        faster than ``bytes.count`` on a large file, and outside the interpreter lock.
        """
        if len(byte) != 1:
            raise ValueError("Body.count counts a single byte")
        data, value = self.array(), byte[0]
        return sum(
            int(np.count_nonzero(data[at : at + _BLOCK] == value))
            for at in range(0, data.size, _BLOCK)
        )

    def last_line_has_odd_quotes(self) -> bool:
        """Whether the last line that is not blank holds an odd number of quote marks.

        A quote left open earlier in the body swallows the lines after it into one cell, which
        the line count then shows (:func:`_line_numbers`); only one opened on the last line
        leaves every line its row, so that line alone need be looked at (not the whole body).
        """
        data, end = self.data, len(self.data)
        while end > self.start:  # (back from the end in small steps: no copy of the body)
            low = max(self.start, end - 4096)
            tail = data[low:end].rstrip(b"\r\n\t\x0b\x0c ")
            if tail:
                end = low + len(tail)
                break
            end = low
        begin = max(data.rfind(b"\n", self.start, end) + 1, self.start)
        return data.count(b'"', begin, end) % 2 == 1

    def ends_with_newline(self) -> bool:
        """Whether the body is not empty and ends with a line break."""
        return len(self) > 0 and self.data.endswith(b"\n")

    def blank(self, chars: bytes | None = None) -> bool:
        """Whether the body holds only whitespace (or only ``chars``)."""
        head = self.data[self.start : self.start + 64]
        if head.strip(chars):
            return False
        return len(self) <= 64 or not self.data[self.start :].strip(chars)

    def array(self) -> np.ndarray:
        """Return the body's bytes as a read-only numpy array (no copy)."""
        return np.frombuffer(self.data, dtype=np.uint8, offset=self.start)

    def stream(self) -> pa.BufferReader:
        """Return the body as a file pyarrow reads (no copy)."""
        return pa.BufferReader(pa.py_buffer(self.data).slice(self.start))

    def text(self) -> str:
        """Return the body decoded (a copy)."""
        return self.data[self.start :].decode("utf-8")

    def isascii(self) -> bool:
        """Whether the whole file (header included, so a conservative answer) is ASCII."""
        return self.ascii if self.ascii is not None else self.data.isascii()


@dataclass(frozen=True)
class Layout:
    """A delimited file split into its header and its body, before any cell is parsed.

    Attributes
    ----------
    path : Path
        The file.
    header : tuple of str
        Column names as written (surrounding spaces removed), by position.
    names : tuple of str
        Unique names for the header positions (see :attr:`TextTable.columns`).
    body : Body
        The lines after the header.
    header_line : int
        Line of the header (its first, when a quoted name holds a line break).
    encoding : str
        The text encoding the file was in.
    delimiter : str
        The delimiter.
    header_lines : int
        Lines the header spans; the body starts on the next line (:attr:`first_line`).
    """

    path: Path
    header: tuple[str, ...]
    names: tuple[str, ...]
    body: Body
    header_line: int
    encoding: str
    delimiter: str
    header_lines: int = 1

    @property
    def first_line(self) -> int:
        """The line the body starts on."""
        return self.header_line + self.header_lines

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the header positions, as :attr:`TextTable.columns` (one name, two uses)."""
        return self.names


def split_header(
    path: Path,
    data: bytes,
    delimiter: str,
    encoding: str,
    header_row: int,
    hint: str = "",
    footer_rows: int = 0,
) -> Layout:
    """Decode a delimited file and split it at its header line (see :func:`read_table`).

    The last ``footer_rows`` lines that are not blank are cut off the body.
    """
    data, used, ascii_only = _as_utf8(path, data, encoding)
    if _blank(data):
        raise InputFileError(f"{path}: the file is empty (no header row)")
    start = 0
    for _ in range(1, header_row):
        newline = data.find(b"\n", start)
        if newline < 0 or newline == len(data) - 1:
            lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            raise InputFileError(
                f"{path}: the header is set to line {header_row}, but the file has only "
                f"{lines} line(s)"
            )
        start = newline + 1
    end, lines = _header_end(data, start)
    header_text = data[start:end].decode("utf-8").rstrip("\r")
    if not header_text.strip():
        raise InputFileError(
            f"{path}: line {header_row} is blank; the column names must be on line "
            f"{header_row}{hint}"
        )
    delimiter = _pick_delimiter(header_text, delimiter)
    header = [_name(c) for c in next(csv.reader([header_text], delimiter=delimiter))]
    if footer_rows:
        data = data[: _footer_start(path, data, end + 1, footer_rows, delimiter)]
    return Layout(
        path=path,
        header=tuple(header),
        names=tuple(_unique_names(header)),
        body=Body(data, min(end + 1, len(data)), ascii_only),
        header_line=header_row,
        encoding=used,
        delimiter=delimiter,
        header_lines=lines,
    )


def _name(cell: str) -> str:
    """Return a header cell as a column name: trimmed, a line break in it read as a space."""
    return " ".join(cell.split()) if "\n" in cell else cell.strip()


def _header_end(data: bytes, start: int) -> tuple[int, int]:
    """Return where the header line starting at ``start`` ends, and how many lines it spans.

    A spreadsheet writes a column name holding a line break (``"NRS<line break>(0-10)"``) in
    quotes: the header then goes on while a quote is open (up to ten lines).
    """
    end, lines = data.find(b"\n", start), 1
    end = len(data) if end < 0 else end
    while data.count(b'"', start, end) % 2 and end < len(data) and lines < HEADER_LINES:
        following = data.find(b"\n", end + 1)
        end, lines = (len(data) if following < 0 else following), lines + 1
    return end, lines


HEADER_LINES = 10  # the most lines a header with line breaks in its names may span


def _footer_start(path: Path, data: bytes, start: int, rows: int, delimiter: str) -> int:
    """Return where the last ``rows`` lines of ``data[start:]`` that are not blank begin.

    A line is blank when it holds only spaces, quotes and delimiters (``;;;``); blank lines
    between the table and its footer stay, and are counted as blank lines are.
    """
    empty = b' \t\r\x0b\x0c"' + delimiter.encode()
    end, found = len(data), 0
    while found < rows:
        stop = end - 1 if end > start and data[end - 1 : end] == b"\n" else end
        if stop <= start:
            raise InputFileError(
                f"{path}: footer_rows is {rows}, but only {found} line(s) after the header "
                "hold anything; set footer_rows to the number of lines below the table"
            )
        begin = max(data.rfind(b"\n", start, stop) + 1, start)
        found += bool(data[begin:stop].strip(empty))
        end = begin
    return end


def read_text(layout: Layout, digest: FileDigest | str, missing: tuple[str, ...] = ()) -> TextTable:
    """Read the body of a split file as text cells (see :func:`read_table`).

    ``digest`` is the file's SHA-256, or the :class:`FileDigest` computing it alongside: then
    it is waited for only once the cells are parsed.
    """
    names, delimiter, header_row = list(layout.names), layout.delimiter, layout.first_line - 1
    tokens = tuple(dict.fromkeys((*MISSING_TOKENS, *missing)))
    table, lines, blank = _parse_fast(layout.body, names, delimiter, header_row, tokens)
    if table is None:
        table, lines, blank = _parse_slow(
            layout.path, layout.body, names, delimiter, header_row, tokens
        )
    return TextTable(
        path=layout.path,
        sha256=digest if isinstance(digest, str) else digest.hexdigest(),
        frame=_to_frame(table, lines),
        header=layout.header,
        columns=layout.names,
        header_line=layout.header_line,
        blank_lines=blank,
        encoding=layout.encoding,
        delimiter=delimiter,
    )


def _needs_trim(body: Body, delimiter: str) -> bool:
    """Whether any cell may have surrounding whitespace (cheap, conservative byte test)."""
    if not body.isascii():
        return True  # non-breaking and other Unicode spaces: let the trim pass decide
    others = (b"\x0b", b"\x0c", *((b"\t",) if delimiter != "\t" else ()))
    if any(body.has(o) for o in others):
        return True
    if not body.has(b" "):  # single-byte searches are fast; most exports have no stray spaces
        return False
    arr = body.array()
    where = np.flatnonzero(arr == 32)
    if where[0] == 0 or where[-1] == arr.size - 1:
        return True
    edges = np.array([*_EDGES, ord(delimiter)], dtype=np.uint8)
    return bool(np.isin(arr[where - 1], edges).any() or np.isin(arr[where + 1], edges).any())


def _line_numbers(body: Body, first: int, rows: int) -> tuple[np.ndarray, int]:
    """Numbers of the non-empty lines of ``body`` (its first line is ``first``), and the empties.

    ``rows`` is the number of rows pyarrow read; when it equals the number of lines, no line was
    empty (nor part of a quoted line break) and the numbers follow without looking further.
    """
    total = body.count(b"\n") + (0 if body.ends_with_newline() or not len(body) else 1)
    if rows == total:
        return np.arange(first, first + total, dtype=np.int64), 0
    arr = body.array()
    ends = np.flatnonzero(arr == 10)
    if ends.size < total:
        ends = np.append(ends, arr.size)
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts
    cr_only = (length == 1) & (arr[np.minimum(starts, arr.size - 1)] == 13)
    empty = (length == 0) | cr_only
    return np.flatnonzero(~empty).astype(np.int64) + first, int(empty.sum())


def _parse_fast(
    body: Body,
    names: list[str],
    delimiter: str,
    header_row: int,
    tokens: tuple[str, ...] = MISSING_TOKENS,
) -> tuple[pa.Table | None, np.ndarray, int]:
    """Parse a regular body with pyarrow; ``None`` when the file needs the careful reader."""
    empty = (None, np.empty(0, np.int64), 0)
    if body.blank(b"\r\n"):
        empty_table = pa.table({n: pa.array([], TEXT) for n in names})
        return empty_table, np.empty(0, np.int64), body.count(b"\n")
    if body.last_line_has_odd_quotes():
        return empty  # perhaps a quote never closed: the careful reader names its line
    trim = _needs_trim(body, delimiter)
    try:
        table = pacsv.read_csv(
            body.stream(),
            read_options=pacsv.ReadOptions(column_names=names, autogenerate_column_names=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, TEXT),
                null_values=[] if trim else list(tokens),
                strings_can_be_null=not trim,
                quoted_strings_can_be_null=not trim,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return empty
    lines, empties = _line_numbers(body, header_row + 1, table.num_rows)
    if len(lines) != table.num_rows:
        return empty  # a quoted line break: line numbers need the careful reader
    return _clean(table, lines, empties, trim, tokens)


def _clean(
    table: pa.Table,
    lines: np.ndarray,
    blank: int,
    trim: bool,
    tokens: tuple[str, ...] = MISSING_TOKENS,
) -> tuple[pa.Table, np.ndarray, int]:
    """Trim cells (when needed), turn missing tokens into nulls and drop all-missing rows."""
    if trim:
        value_set = _TOKENS if tokens == MISSING_TOKENS else pa.array(tokens, TEXT)
        columns = []
        for column in table.columns:
            text = pc.utf8_trim_whitespace(column)
            columns.append(pc.if_else(pc.is_in(text, value_set=value_set), None, text))
        table = pa.table(columns, names=table.column_names)
    table, lines, dropped = drop_blank_rows(table, lines)
    return table, lines, blank + dropped


def drop_blank_rows(table: pa.Table, lines: np.ndarray) -> tuple[pa.Table, np.ndarray, int]:
    """Drop the rows whose every cell is missing; return the rest, their lines and how many."""
    # A row can only be blank when every column has a missing cell.
    if not table.num_rows or not all(column.null_count for column in table.columns):
        return table, lines, 0
    blank_rows = pc.is_null(table.column(0))
    for column in table.columns[1:]:
        blank_rows = pc.and_(blank_rows, pc.is_null(column))
    n_blank = pc.sum(blank_rows).as_py() or 0
    if not n_blank:
        return table, lines, 0
    keep = pc.invert(blank_rows)
    return table.filter(keep), lines[keep.to_numpy(zero_copy_only=False)], n_blank


def _parse_slow(
    path: Path,
    body: Body,
    names: list[str],
    delimiter: str,
    header_row: int,
    tokens: tuple[str, ...] = MISSING_TOKENS,
) -> tuple[pa.Table, np.ndarray, int]:
    """Parse any body with :mod:`csv`, naming the line of a row longer than the header."""
    width = len(names)
    reader = csv.reader(io.StringIO(body.text(), newline=""), delimiter=delimiter)
    cells: list[list[str]] = [[] for _ in names]
    lines: list[int] = []
    blank = 0
    previous = header_row
    kind = DELIMITERS.get(delimiter, repr(delimiter))
    try:
        for record in reader:
            line, previous = previous + 1, header_row + reader.line_num
            if not record:
                blank += 1
                continue
            if len(record) < width:
                _same_delimiter(path, record, width, delimiter, line)
            if len(record) > width:
                if any(c.strip() for c in record[width:]):
                    raise InputFileError(
                        f"{path}: not a {kind}-separated table: line {line} has "
                        f"{len(record)} cells but the header has {width} columns"
                    )
                record = record[:width]
            elif len(record) < width:
                record = record + [""] * (width - len(record))
            for column, cell in zip(cells, record, strict=True):
                column.append(cell)
            lines.append(line)
    except csv.Error as exc:
        raise InputFileError(
            f"{path}: not a {kind}-separated table (line {header_row + reader.line_num}: {exc})"
        ) from None
    if lines and body.count(b'"') % 2:
        _closed_quotes(path, body, lines[-1] - header_row - 1, lines[-1], delimiter)
    table = pa.table({n: pa.array(c, TEXT) for n, c in zip(names, cells, strict=True)})
    return _clean(table, np.asarray(lines, dtype=np.int64), blank, True, tokens)


def _same_delimiter(path: Path, record: list[str], width: int, delimiter: str, line: int) -> None:
    """Raise when a short row is written with another delimiter than the header's."""
    if width < 3:
        return
    written = delimiter.join(record)
    for other, name in DELIMITERS.items():
        if other != delimiter and written.count(other) + 1 >= width:
            raise InputFileError(
                f"{path}: line {line} is separated by {name}s, but the header by "
                f"{DELIMITERS.get(delimiter, repr(delimiter))}s; save the file with one "
                f"delimiter throughout"
            )


def _closed_quotes(path: Path, body: Body, index: int, line: int, delimiter: str) -> None:
    """Raise when the file ends inside a quoted cell opened on the last row's line.

    ``index`` is the 0-based position of that line in the body. (An odd number of quote marks
    alone proves nothing: a quote inside an unquoted cell, ``5"``, is kept as written.)
    """
    tail = "".join(io.StringIO(body.text(), newline="").readlines()[index:])
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        if "unexpected end of data" not in str(exc):
            return
        raise InputFileError(
            f'{path}: line {line} opens a quoted cell (") that is never closed: the file ends '
            f"inside it; close or remove the quote mark"
        ) from None


def _to_frame(table: pa.Table, lines: np.ndarray) -> pd.DataFrame:
    columns = {LINE: lines}
    for name, column in zip(table.column_names, table.columns, strict=True):
        columns[name] = column.to_pandas(types_mapper=_ARROW_TO_STR.get)
    return pd.DataFrame(columns)


# ------------------------------------------------------------------------------------------
# Excel
# ------------------------------------------------------------------------------------------
def cell_text(value: object) -> str | None:
    """Write one workbook cell as text: dates ISO, whole numbers without ``.0``, booleans yes/no.

    A date-time at midnight is written as its date; Excel's ``#N/A`` is missing.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return None if value.strip() == "#N/A" else value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, ".15g")
    return str(value)


def _read_excel(
    path: Path,
    data: bytes,
    digest: str,
    sheet: str | None,
    header_row: int,
    hint: str,
    missing: tuple[str, ...] = (),
    footer_rows: int = 0,
) -> TextTable:
    import openpyxl  # imported here: only workbooks need it, and it is slow to import
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise InputFileError(f"{path}: not a readable Excel .xlsx workbook ({exc})") from None
    try:
        if sheet is None:
            worksheet = book.worksheets[0]
        elif sheet in book.sheetnames:
            worksheet = book[sheet]
        else:
            raise InputFileError(
                f"{path}: no sheet named '{sheet}' (sheets: {', '.join(book.sheetnames)})"
            )
        name = worksheet.title
        rows = [
            [cell_text(v) for v in row] for row in worksheet.iter_rows(min_row=1, values_only=True)
        ]
    finally:
        book.close()
    if _has_formulas(data):
        _formulas_have_values(path, data, name, rows)
    if not any(_filled_row(row) for row in rows):
        raise InputFileError(f"{path}: sheet '{name}' is empty (no header row)")
    if len(rows) < header_row:
        raise InputFileError(
            f"{path}: the header is set to row {header_row}, but sheet '{name}' has only "
            f"{len(rows)} row(s)"
        )
    header = [_name(c or "") for c in rows[header_row - 1]]
    if not any(header):
        raise InputFileError(
            f"{path}: row {header_row} of sheet '{name}' is blank; the column names must be on "
            f"row {header_row}{hint}"
        )
    body = rows[header_row:]
    if footer_rows:
        body = _without_footer(path, name, body, footer_rows)
    width = max([len(header), *(len(r) for r in body)])
    header += [""] * (width - len(header))
    names = _unique_names(header)
    cells = [[(r[k] if k < len(r) else None) for r in body] for k in range(width)]
    table = pa.table({n: pa.array(c, TEXT) for n, c in zip(names, cells, strict=True)})
    lines = np.arange(header_row + 1, header_row + 1 + len(body), dtype=np.int64)
    tokens = tuple(dict.fromkeys((*MISSING_TOKENS, *missing)))
    table, lines, blank = _clean(table, lines, 0, True, tokens)
    return TextTable(
        path=path,
        sha256=digest,
        frame=_to_frame(table, lines),
        header=tuple(header),
        columns=tuple(names),
        header_line=header_row,
        blank_lines=blank,
        encoding="xlsx",
        delimiter=None,
    )


def _filled_row(row: list[str | None]) -> bool:
    """Whether a sheet row has a cell that is not empty (nor only spaces)."""
    return any(c is not None and c.strip() for c in row)


def _without_footer(
    path: Path, sheet: str, body: list[list[str | None]], rows: int
) -> list[list[str | None]]:
    """Drop the last ``rows`` rows of a sheet's body that are not blank (its footer)."""
    filled = [k for k, row in enumerate(body) if _filled_row(row)]
    if len(filled) < rows:
        raise InputFileError(
            f"{path}: footer_rows is {rows}, but only {len(filled)} row(s) of sheet '{sheet}' "
            "below the header hold anything; set footer_rows to the number of rows below the table"
        )
    return body[: filled[-rows]]


def _has_formulas(data: bytes) -> bool:
    """Whether any sheet of a workbook holds a formula (a cheap look at the sheets' XML)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.namelist():
            if member.startswith("xl/worksheets/") and member.endswith(".xml"):
                with archive.open(member) as sheet:
                    if any(b"<f>" in block or b"<f " in block for block in sheet):
                        return True
    return False


def _formulas_have_values(path: Path, data: bytes, name: str, rows: list[list]) -> None:
    """Raise when a formula cell of sheet ``name`` has no saved value.

    A workbook written by a program (not saved in Excel) keeps its formulas without their
    results; read as values, those cells would be silently empty.
    """
    import openpyxl
    from openpyxl.utils import get_column_letter

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        formulas = book[name].iter_rows(min_row=1, values_only=True)
        for r, (row, values) in enumerate(zip(formulas, rows, strict=False), start=1):
            for c, cell in enumerate(row):
                unsaved = c >= len(values) or values[c] is None
                if isinstance(cell, str) and cell.startswith("=") and unsaved:
                    raise InputFileError(
                        f"{path}: sheet '{name}' cell {get_column_letter(c + 1)}{r} holds the "
                        f"formula {cell} without its value (the workbook was not saved by "
                        f"Excel); open and save it in Excel, or export the sheet as CSV"
                    )
    finally:
        book.close()
