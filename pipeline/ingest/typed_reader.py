"""The fast route for canonical files: cells read straight into the types the schema declares.

A regular delimited file (every line a complete row, no cell with surrounding spaces) is parsed
by pyarrow directly into whole numbers, numbers, yes/no, dates and text, on all cores, instead
of being read as text and then parsed cell by cell (:func:`pipeline.validate.study.parse_cells`).

The route is taken only where it gives exactly what the text route gives. Whenever a cell could
be read differently, :func:`read_typed` returns ``None`` and the caller reads the file as text:
a cell that does not parse as its column's type (the text route names it in the quarantine),
surrounding spaces, ``0x`` anywhere in a file with whole-number columns (pyarrow would read
hexadecimal), an infinite number, a yes/no written in mixed case (``yEs``), a quoted line break,
a quote left open on the last line, or a row of only missing cells in the schema's columns while
the file has other columns. The text of a row that validation quarantines is taken from the
file's bytes afterwards (:meth:`TypedRows.text_of`), exactly as the text route reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.ingest.readers import (
    _ARROW_TO_STR,
    LINE,
    MISSING_TOKENS,
    TEXT,
    Body,
    Layout,
    _line_numbers,
    _needs_trim,
    _parse_fast,
    _parse_slow,
    _to_frame,
    drop_blank_rows,
)
from pipeline.schemas.raw import NO, YES

ARROW_TYPES = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "yes/no": pa.bool_(),
    "date": pa.date32(),
    "text": TEXT,
}


def _spellings(words: tuple[str, ...]) -> list[str]:
    """Lower, upper and capitalised spellings (other mixes take the text route)."""
    return list(dict.fromkeys(s for w in words for s in (w, w.upper(), w.capitalize())))


@dataclass(frozen=True)
class TypedRows:
    """A file's rows with the schema's columns already typed.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``source_line``, then each schema column the file has, typed as
        :func:`pipeline.validate.study.parse_cells` types it.
    blank_lines : int
        Blank lines and rows of only missing cells, skipped.
    layout : Layout
        The file, split at its header (for :meth:`text_of`).
    tokens : tuple of str
        The cell contents read as missing.
    """

    frame: pd.DataFrame
    blank_lines: int
    layout: Layout
    tokens: tuple[str, ...] = MISSING_TOKENS

    def text_of(self, lines: np.ndarray) -> pd.DataFrame:
        """Return the rows on ``lines`` (file line numbers) as the text route reads them.

        Parameters
        ----------
        lines : numpy.ndarray
            Line numbers of rows of :attr:`frame`.

        Returns
        -------
        pandas.DataFrame
            ``source_line`` and one text column per header position, in line order.
        """
        layout = self.layout
        names = list(layout.names)
        lines = np.unique(np.asarray(lines, dtype=np.int64))
        if not lines.size:
            return _to_frame(pa.table({n: pa.array([], TEXT) for n in names}), lines)
        body = layout.body
        ends = np.append(np.flatnonzero(body.array() == 10), len(body)) + body.start
        index = lines - layout.first_line
        starts = np.where(index > 0, ends[np.maximum(index - 1, 0)] + 1, body.start)
        data = body.data
        chunk = Body(b"\n".join(data[a:b] for a, b in zip(starts, ends[index], strict=True)))
        table, _, _ = _parse_fast(chunk, names, layout.delimiter, 1, self.tokens)
        if table is None or table.num_rows != lines.size:
            table, _, _ = _parse_slow(layout.path, chunk, names, layout.delimiter, 1, self.tokens)
        return _to_frame(table, lines)


def read_typed(
    layout: Layout, kinds: Mapping[str, str], missing: tuple[str, ...] = ()
) -> TypedRows | None:
    """Parse a regular file's schema columns straight into their types.

    Parameters
    ----------
    layout : Layout
        The file, split at its header (:func:`pipeline.ingest.readers.split_header`).
    kinds : mapping of str to str
        ``{column: kind}`` of the schema (:func:`pipeline.schemas.raw.column_kinds`), by the
        file's column names.
    missing : tuple of str
        More cell contents read as missing, as :func:`pipeline.ingest.readers.read_table` takes
        them.

    Returns
    -------
    TypedRows or None
        The typed rows, or ``None`` when the file must take the text route (see the module).
    """
    body, delimiter = layout.body, layout.delimiter
    tokens = tuple(dict.fromkeys((*MISSING_TOKENS, *missing)))
    columns = [n for n in layout.names if n in kinds]
    if not columns or body.blank(b"\r\n") or _needs_trim(body, delimiter):
        return None
    if body.last_line_has_odd_quotes():
        return None  # perhaps a quote never closed: the text route names its line
    if any(kinds[c] == "integer" for c in columns) and _holds_0x(body):
        return None
    try:
        table = pacsv.read_csv(
            body.stream(),
            read_options=pacsv.ReadOptions(
                column_names=list(layout.names), autogenerate_column_names=False
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: ARROW_TYPES[kinds[c]] for c in columns},
                include_columns=columns,
                null_values=list(tokens),
                true_values=_spellings(YES),
                false_values=_spellings(NO),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    lines, blank = _line_numbers(body, layout.first_line, table.num_rows)
    if len(lines) != table.num_rows:
        return None  # a quoted line break
    for name in columns:
        column = table.column(name)
        if kinds[name] == "number" and pc.all(pc.is_finite(column)).as_py() is False:
            return None  # the text route says which cell is not a number
    table, lines, dropped = drop_blank_rows(table, lines)
    if dropped and len(columns) < len(layout.names):
        return None  # the file's other columns decide whether those rows are blank
    blank += dropped
    # Two columns at a time: the copies into new memory run outside the interpreter lock, and
    # on some machines each new page of memory costs more than the copy itself.
    with ThreadPoolExecutor(max_workers=2) as pool:
        arrays = pool.map(lambda name: _to_pandas(table.column(name), kinds[name]), columns)
        frame = {LINE: lines, **dict(zip(columns, arrays, strict=True))}
    return TypedRows(
        frame=pd.DataFrame(frame, copy=False), blank_lines=blank, layout=layout, tokens=tokens
    )


def _holds_0x(body: Body) -> bool:
    """Whether ``0x`` or ``0X`` appears anywhere (pyarrow reads ``0x1F`` as a whole number).

    Searching for one byte is many times faster than for two, so ``x`` is looked for first.
    """
    if not body.has(b"x") and not body.has(b"X"):
        return False
    data = body.array()
    after = np.flatnonzero((data[1:] | 0x20) == ord("x"))  # (| 0x20 lowers the case of X)
    return bool((data[after] == ord("0")).any())


def _to_pandas(column: pa.ChunkedArray, kind: str) -> object:
    """Convert one typed column to the array :func:`pipeline.validate.study.parse_cells` gives."""
    if kind == "text":
        return column.to_pandas(types_mapper=_ARROW_TO_STR.get).array
    if kind == "number":
        return np.asarray(column.to_numpy(), dtype="float64")
    if kind == "date":
        return np.asarray(pc.cast(column, pa.timestamp("us")).to_numpy()).astype(
            "datetime64[us]", copy=False
        )
    if kind == "yes/no":
        values, missing = values_and_missing(column, np.bool_)
        return pd.arrays.BooleanArray(values, missing)
    values, missing = values_and_missing(column, np.int64)
    return pd.arrays.IntegerArray(values, missing)


def values_and_missing(column: pa.ChunkedArray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Copy a whole-number or yes/no column out of its buffers: values (0 where missing), mask.

    Reading the buffers directly costs one copy of each; filling the missing cells in pyarrow
    first (``fill_null``) allocates every chunk again.
    """
    values = np.empty(len(column), dtype=dtype)
    missing = np.zeros(len(column), dtype=bool)
    position = 0
    for chunk in column.chunks:
        size, offset = len(chunk), chunk.offset
        validity, data = chunk.buffers()[:2]
        window = slice(position, position + size)
        if dtype is np.bool_:
            values[window] = _bits(data, offset, size)
        else:
            values[window] = np.frombuffer(data, dtype=dtype, count=offset + size)[offset:]
        if chunk.null_count:
            missing[window] = ~_bits(validity, offset, size)
        position += size
    values[missing] = 0
    return values, missing


def _bits(buffer: pa.Buffer, offset: int, size: int) -> np.ndarray:
    """Unpack ``size`` bits of an Arrow bitmap (least significant bit first) from ``offset``."""
    packed = np.frombuffer(buffer, dtype=np.uint8)
    return np.unpackbits(packed, count=offset + size, bitorder="little")[offset:].view(bool)
