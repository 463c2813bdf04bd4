"""Split the raw canonical tables by patient hash into Parquet partitions, out of core.

Polars' streaming engine reads each raw CSV of the ``[inputs]`` form with every cell as text,
cleans the cells as :mod:`pipeline.ingest.readers` does (surrounding spaces removed, the
missing-value tokens of :data:`~pipeline.ingest.readers.MISSING_TOKENS` made missing, a row of
only missing cells skipped and counted as blank), numbers each row with its line in the file
(``source_row``, header = line 1) and writes it to the partition of its patient:
``hash(patient_id) mod n``. Every row of one patient, in every table, lands in the same
partition, so each partition can be validated and derived alone (every cross-table rule of
:mod:`pipeline.validate.study` is a rule within one patient). No table is ever held whole in
memory.

The file-level checks are those of :func:`pipeline.ingest.raw_tables.read_raw_table`, with the
same sentences: a missing file, a duplicated column name, a missing required column.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from pipeline.errors import InputFileError
from pipeline.ingest.raw_tables import SOURCE_ROW
from pipeline.ingest.readers import MISSING_TOKENS, duplicated_names
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import required_columns

PART = "part"  # partition key column (hive folder ``part=<k>``)
HASH_SEED = 20_260_722  # fixed: the same patient goes to the same partition in every run
CHUNK = 1 << 22


@dataclass(frozen=True)
class RawFile:
    """What the partitioning learnt about one raw file.

    Attributes
    ----------
    table : str
        Canonical table name.
    path : Path
        The file.
    sha256 : str
        SHA-256 of its bytes.
    header : tuple of str
        Column names of line 1.
    rows : int
        Data rows (blank rows excluded).
    blank_lines : int
        Blank rows skipped.
    """

    table: str
    path: Path
    sha256: str
    header: tuple[str, ...]
    rows: int
    blank_lines: int


def _header(path: Path, table: str) -> tuple[str, ...]:
    """Read and check line 1 of a canonical CSV (the sentences of ``read_raw_table``)."""
    if not path.is_file():
        raise InputFileError(f"{path}: {table} file not found")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise InputFileError(f"{path}: the {table} file is empty")
    header = tuple(c.strip() for c in next(csv.reader([first])))
    for column, positions in duplicated_names(header).items():
        raise InputFileError(
            f"{path}: column '{column}' appears twice in the header (columns "
            f"{' and '.join(map(str, positions[:2]))})"
        )
    missing = [c for c in required_columns(table) if c not in header]
    if missing:
        raise InputFileError(
            f"{path}: required column '{missing[0]}' is missing from the {table} file "
            f"(the header has: {', '.join(header)})"
        )
    return header


def _digest_and_lines(path: Path) -> tuple[str, int]:
    """SHA-256 of the file and its number of lines, read in chunks (never whole)."""
    digest = hashlib.sha256()
    lines = 0
    last = b""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last and last != b"\n":
        lines += 1
    return digest.hexdigest(), lines


def cleaned(path: Path, header: tuple[str, ...]) -> pl.LazyFrame:
    """Return the rows of a canonical CSV as cleaned text with ``source_row``, lazily.

    Cells are trimmed and the missing tokens made null (as the pandas reader); rows are not yet
    filtered for blanks (:func:`partition_table` counts and drops them).
    """
    frame = pl.scan_csv(
        path,
        infer_schema=False,
        row_index_name=SOURCE_ROW,
        row_index_offset=2,
        encoding="utf8",
        new_columns=list(header),
    )
    tokens = list(MISSING_TOKENS)
    cells = [
        pl.when(pl.col(c).str.strip_chars().is_in(tokens))
        .then(None)
        .otherwise(pl.col(c).str.strip_chars())
        .alias(c)
        for c in header
    ]
    return frame.select(pl.col(SOURCE_ROW).cast(pl.Int64), *cells)


def partition_key(n_partitions: int) -> pl.Expr:
    """Partition of each row: a fixed-seed hash of its patient id, modulo ``n_partitions``."""
    return (pl.col(PATIENT_ID).hash(HASH_SEED) % n_partitions).cast(pl.Int64).alias(PART)


def partition_table(table: str, path: Path, folder: Path, n_partitions: int) -> RawFile:
    """Split one canonical CSV into ``folder/<table>/part=<k>/*.parquet`` by patient hash.

    Parameters
    ----------
    table : str
        Canonical table name.
    path : Path
        The raw CSV (``[inputs]``).
    folder : Path
        Where the partitions go.
    n_partitions : int
        Number of partitions.

    Returns
    -------
    RawFile
        The file's digest, header and row counts.

    Raises
    ------
    InputFileError
        The file is missing or empty, a column name is duplicated, a required column is
        missing, or a cell holds a line break (line numbers would no longer be rows).
    """
    header = _header(path, table)
    sha256, lines = _digest_and_lines(path)
    rows = cleaned(path, header)
    blank = pl.all_horizontal([pl.col(c).is_null() for c in header])
    # one streaming pass: blank rows go to an extra partition ``n_partitions``, counted from
    # the Parquet metadata and removed, instead of a second pass over the file to count them
    key = (
        pl.when(blank)
        .then(pl.lit(n_partitions, dtype=pl.Int64))
        .otherwise(partition_key(n_partitions))
        .alias(PART)
    )
    target = folder / table
    rows.with_columns(key).sink_parquet(
        pl.PartitionBy(target, key=PART, include_key=False), mkdir=True, engine="streaming"
    )
    counts = {k: _rows_in(target, k) for k in range(n_partitions + 1)}
    shutil.rmtree(target / f"{PART}={n_partitions}", ignore_errors=True)
    total, blank_lines = sum(counts.values()), counts[n_partitions]
    if total != lines - 1:
        shutil.rmtree(target, ignore_errors=True)
        raise InputFileError(
            f"{path}: {total} rows were read from {lines - 1} lines after the header: a cell "
            'holds a line break, which [engine] backend = "polars" or "dask" cannot number by '
            'line; use backend = "pandas" for this file'
        )
    return RawFile(table, path, sha256, header, total - blank_lines, blank_lines)


def _rows_in(folder: Path, part: int) -> int:
    """Rows written to one partition of a table (from the Parquet footers)."""
    files = sorted((folder / f"{PART}={part}").glob("*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def count_patients(path: Path) -> int:
    """Count the distinct patient ids in a canonical CSV (streaming)."""
    frame = pl.scan_csv(path, infer_schema=False).select(pl.col(PATIENT_ID).str.strip_chars())
    return int(frame.select(pl.col(PATIENT_ID).n_unique()).collect(engine="streaming").item())


def partition_files(folder: Path, table: str, part: int) -> list[Path]:
    """Return the Parquet files of one table's partition (none when no row fell in it)."""
    return sorted((folder / table / f"{PART}={part}").glob("*.parquet"))


def partition_inputs(
    paths: Mapping[str, Path], folder: Path, n_partitions: int
) -> dict[str, RawFile]:
    """Partition every table of ``paths`` (``{table: csv}``) into ``folder``."""
    return {t: partition_table(t, Path(p), folder, n_partitions) for t, p in paths.items()}
