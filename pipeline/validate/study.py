"""Validation: split every raw table into valid typed rows and quarantined rows with reasons.

Three layers, each producing failures of the same tidy shape (``table, source_row, column,
check, value, reason``):

1. **Parsing** text cells into the types the schema declares (whole numbers, numbers, yes/no,
   ``YYYY-MM-DD`` dates). A cell that does not parse fails ``type:<kind>``.
2. **pandera** value checks of :mod:`pipeline.schemas.raw`, run lazily so that every failing cell of
   every row is reported at once.
3. **Cross-table checks**: a row key written twice quarantines every copy (nothing tells which
   copy is right); sessions and assessments must belong to a valid patient and must not be dated
   before that patient's enrolment; no date may lie after the run date (``date_in_future``);
   among the rows that pass every other rule, a patient's visits (and sessions) must not be dated
   out of the order of their numbers (every row of an inverted pair is quarantined, since
   nothing tells which date is wrong).

Problems an adapter of :mod:`pipeline.ingest.adapters` found while mapping a clinic's file (e.g. a
patient's age differing between the rows of a visit sheet) arrive with the raw table and are
quarantined like any other failure.

A row with any failure goes whole to the quarantine, with all its failures listed; all other rows
are valid. Nothing is dropped: for every table, raw rows = valid rows + quarantined rows.

One exception keeps an assessment's readable scores: a **score cell** (NRS, VAS, ODI, an ODI
section, a study's own outcome) that does not parse as a number, or lies outside its range, is
**blanked** and the rest of its row kept, when that cell is the row's only kind of problem and
the row still records one of the study's outcomes (:func:`blank_score_cells`). The blanked cell
is recorded (``ValidatedTable.blanked``, written to ``quarantine/blanked_cells.csv`` with its
file, line, column, value and reason) and counted (``blanked_cells`` in the row accounting). An
assessment none of whose scores is left, or with any other problem (an identity, key or date
column, a duplicate key, an unknown patient), is quarantined whole as before, its score cells
among its reasons.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from pipeline.ingest.raw_tables import SOURCE_ROW, RawTable
from pipeline.ingest.readers import may_contain
from pipeline.ingest.recorded import empty_recorded, recorded_by_file
from pipeline.ingest.typed_reader import values_and_missing
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import (
    DATE_COLUMNS,
    KEYS,
    NO,
    NUMBER_COLUMNS,
    ODI_ITEMS,
    OUTCOMES,
    YES,
    column_kinds,
    contract_schema,
    extra_schema_columns,
    has_outcome_check,
)
from pipeline.validate.screen import cleared_columns

FAILURE_COLUMNS = ["table", SOURCE_ROW, "column", "check", "value", "reason"]


@dataclass(frozen=True)
class ValidatedTable:
    """The outcome of validating one raw table.

    Attributes
    ----------
    name : str
        Canonical table name.
    valid : pandas.DataFrame
        Rows that passed every check, typed as the schema declares, with ``source_row``.
    quarantine : pandas.DataFrame
        Failed rows as written in the file (text), with ``source_row``, ``failed_columns``,
        ``failed_checks`` and ``reason`` (all failures of the row, separated by ``; ``).
    raw_rows : int
        Non-blank data rows read from the file.
    blanked : pandas.DataFrame
        Score cells blanked in valid rows (:func:`blank_score_cells`), one per cell, in the
        failure shape (``table, source_row, column, check, value, reason``).
    """

    name: str
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    raw_rows: int
    blanked: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty_failures())


@dataclass(frozen=True)
class Validation:
    """All tables of a study after validation, with the failures and the row accounting.

    ``recorded`` says, per source file and optional column, whether the source recorded the
    column and how many of its valid rows carry a value (:mod:`pipeline.ingest.recorded`).
    """

    tables: dict[str, ValidatedTable]
    failures: pd.DataFrame
    accounting: pd.DataFrame
    recorded: pd.DataFrame = dataclasses.field(default_factory=empty_recorded)

    def valid(self, table: str) -> pd.DataFrame:
        """Return the valid, typed rows of ``table``."""
        return self.tables[table].valid

    @property
    def quarantined_rows(self) -> int:
        """Total number of quarantined rows over all tables."""
        return int(self.accounting["quarantined_rows"].sum())

    @property
    def blanked_cells(self) -> int:
        """Total number of score cells blanked in valid rows."""
        return int(self.accounting["blanked_cells"].sum())

    @property
    def blanked(self) -> pd.DataFrame:
        """Every blanked score cell, in the failure shape, table by table."""
        return _concat([table.blanked for table in self.tables.values()])


def _failures(
    table: str, rows: pd.Series, column: str, check: str, values: pd.Series, reason: str | pd.Series
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "table": table,
            SOURCE_ROW: rows.to_numpy(),
            "column": column,
            "check": check,
            "value": values.astype("str").to_numpy(),
            "reason": reason if isinstance(reason, str) else reason.to_numpy(),
        }
    )


@functools.cache
def _no_failures() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="int64" if c == SOURCE_ROW else "str") for c in FAILURE_COLUMNS}
    )


def _empty_failures() -> pd.DataFrame:
    return _no_failures().copy()  # built once: it is asked for many times per validation


def parse_cells(
    table: str,
    frame: pd.DataFrame,
    date_format: str = "YYYY-MM-DD",
    extra: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert the text cells of a raw table to the types its schema declares.

    Parsing is vectorised (pyarrow compute): a column is cast whole when every cell parses, and
    cell by cell only when some do not.

    Parameters
    ----------
    table : str
        Canonical table name.
    frame : pandas.DataFrame
        The raw table as text, with ``source_row``.
    date_format : str
        How the source writes dates, named in the message of a date that does not parse (the
        cells themselves must be ``YYYY-MM-DD`` by now).
    extra : dict of str to str, optional
        The study's own columns of the table, ``{column: kind}``, parsed like the others.

    Returns
    -------
    typed : pandas.DataFrame
        ``source_row`` plus every schema column (absent optional columns are all missing);
        cells that did not parse are missing.
    failures : pandas.DataFrame
        One row per cell that did not parse (columns ``table, source_row, column, check, value,
        reason``).
    """
    typed = {SOURCE_ROW: frame[SOURCE_ROW].to_numpy()}
    failed = []
    kinds = column_kinds(table, {table: extra or {}})
    present = [c for c in kinds if c in frame]
    # Columns are parsed two at a time: pyarrow's casts run outside the interpreter lock.
    with ThreadPoolExecutor(max_workers=2) as pool:
        parsed_columns = pool.map(lambda c: _parse(frame[c], kinds[c]), present)
        results = dict(zip(present, parsed_columns, strict=True))
    for column, kind in kinds.items():
        if column not in frame:
            typed[column] = _absent(kind, len(frame))
            continue
        text = frame[column]
        parsed, bad, bad_reason = results[column]
        if kind == "date":
            bad_reason += date_format
        if bad.any():
            values = text[bad]
            failed.append(
                _failures(
                    table,
                    frame.loc[bad, SOURCE_ROW],
                    column,
                    f"type:{kind}",
                    values,
                    f"{column} = '" + values + f"' {bad_reason}",
                )
            )
        typed[column] = parsed
    return pd.DataFrame(typed, index=frame.index, copy=False), _concat(failed)


def typed_cells(raw: RawTable) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a raw table's cells in the schema's types, and the cells that did not parse.

    Parameters
    ----------
    raw : RawTable
        The table as read: text (parsed here by :func:`parse_cells`), or already typed by the
        reader (then only the optional columns the file lacks are added, all missing).

    Returns
    -------
    typed : pandas.DataFrame
        As :func:`parse_cells` returns it.
    failures : pandas.DataFrame
        As :func:`parse_cells` returns them (none for a table the reader typed).
    """
    if raw.typed is None:
        return parse_cells(raw.name, raw.frame, raw.date_format, raw.extra)
    given = raw.typed
    columns = {SOURCE_ROW: given[SOURCE_ROW].to_numpy()}
    for column, kind in column_kinds(raw.name, {raw.name: raw.extra}).items():
        columns[column] = given[column].array if column in given else _absent(kind, len(given))
    return pd.DataFrame(columns, index=given.index, copy=False), _empty_failures()


def _absent(kind: str, rows: int) -> object:
    """Return an all-missing column of ``kind`` (an optional column the file lacks)."""
    if kind == "integer":
        return pd.arrays.IntegerArray(np.zeros(rows, np.int64), np.ones(rows, bool))
    if kind == "yes/no":
        return pd.arrays.BooleanArray(np.zeros(rows, bool), np.ones(rows, bool))
    if kind == "number":
        return np.full(rows, np.nan)
    if kind == "date":
        return np.full(rows, np.datetime64("NaT"), dtype="datetime64[us]")
    return pyarrow.nulls(rows, pyarrow.large_string()).to_pandas(types_mapper=_as_str).array


def _as_str(_: pyarrow.DataType) -> pd.StringDtype:
    return pd.StringDtype("pyarrow", na_value=np.nan)


_NUMBER = r"^[+-]?(?:[0-9]+[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?[0-9]+)?$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_YES = pyarrow.array(YES, pyarrow.large_string())
_NO = pyarrow.array(NO, pyarrow.large_string())


def _arrow(text: pd.Series) -> pyarrow.ChunkedArray:
    """Return a text column as a pyarrow array (no copy for the default string dtype)."""
    if str(text.dtype) != "str":
        text = text.astype("str")
    array = pyarrow.array(text)
    if not isinstance(array, pyarrow.ChunkedArray):
        array = pyarrow.chunked_array([array])
    return array if array.type == pyarrow.large_string() else array.cast(pyarrow.large_string())


def _keep(cells: pyarrow.ChunkedArray, pattern: str) -> pyarrow.ChunkedArray:
    """Return the cells matching ``pattern``, the others missing."""
    match = pc.match_substring_regex(cells, pattern)
    return pc.if_else(match, cells, pyarrow.scalar(None, cells.type))


def _numbers(cells: pyarrow.ChunkedArray) -> np.ndarray:
    """Parse decimal numbers; NaN where missing, not a number or not finite."""
    try:
        values = pc.cast(cells, pyarrow.float64())
    except pyarrow.ArrowInvalid:
        values = pc.cast(_keep(cells, _NUMBER), pyarrow.float64())
    out = np.asarray(values.to_numpy(), dtype="float64")
    infinite = np.isinf(out)
    if infinite.any():
        out = np.where(infinite, np.nan, out)
    return out


def _integers(cells: pyarrow.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Whole numbers when every cell is one, written in decimal digits; else ``None``.

    The fast path: pyarrow casts the whole column at once; its values (0 where missing) and
    which cells are missing are copied out of the cast's buffers. pyarrow also reads
    hexadecimal (``0x10``), which is not a score: such a column takes the careful path.
    """
    try:
        values = pc.cast(cells, pyarrow.int64())
    except pyarrow.ArrowInvalid:
        return None
    if may_contain(cells, (b"x", b"X")):
        return None  # (a search of the character buffers, at memory speed)
    return values_and_missing(values, np.int64)


def _numpy_filled(values: pyarrow.Array | pyarrow.ChunkedArray, fill: int) -> np.ndarray:
    """Integers as a numpy int64 array, missing values replaced by ``fill``."""
    if values.null_count:
        values = pc.fill_null(values, fill)
    return np.asarray(values.to_numpy(), dtype=np.int64)


def _missing(cells: pyarrow.ChunkedArray) -> np.ndarray:
    """Return which cells are missing (quickly when none is)."""
    if cells.null_count == 0:
        return np.zeros(len(cells), dtype=bool)
    return np.asarray(pc.is_null(cells).to_numpy(), dtype=bool)


def _parse(text: pd.Series, kind: str) -> tuple[object, np.ndarray, str]:
    """Parse one text column; return the values, which cells did not parse, and why."""
    if kind == "text":
        return text.astype("str").array, np.zeros(len(text), dtype=bool), ""
    cells = _arrow(text)
    if kind == "integer":
        whole = _integers(cells)
        if whole is not None:
            return pd.arrays.IntegerArray(*whole), np.zeros(len(text), bool), ""
    missing = _missing(cells)
    if kind in ("integer", "number"):
        numbers = _numbers(cells)
        unparsed = np.isnan(numbers)
        if kind == "number":
            return numbers, unparsed & ~missing, "is not a number"
        with np.errstate(invalid="ignore"):
            whole = ~unparsed & (np.abs(numbers) <= 2**53) & (np.mod(numbers, 1) == 0)
        values = pd.arrays.IntegerArray(np.where(whole, numbers, 0).astype("int64"), ~whole)
        return values, ~whole & ~missing, "is not a whole number"
    if kind == "yes/no":
        lower = pc.utf8_lower(cells)
        yes = np.asarray(pc.is_in(lower, value_set=_YES).to_numpy(), dtype=bool)
        no = np.asarray(pc.is_in(lower, value_set=_NO).to_numpy(), dtype=bool)
        values = pd.arrays.BooleanArray(yes, ~(yes | no))
        return values, ~(yes | no) & ~missing, "is not yes or no"
    try:
        dates = pc.cast(pc.cast(cells, pyarrow.date32()), pyarrow.timestamp("us")).to_numpy()
    except pyarrow.ArrowInvalid:
        iso = _keep(cells, _ISO_DATE).to_pandas()
        dates = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce").to_numpy()
    values = np.asarray(dates).astype("datetime64[us]", copy=False)
    return values, np.isnat(values) & ~missing, "is not a date written "


_CHECK_PATTERNS = [
    (
        re.compile(r"greater_than_or_equal_to\((.+)\)"),
        "{column} = {value} is below the minimum {0}",
    ),
    (re.compile(r"less_than_or_equal_to\((.+)\)"), "{column} = {value} is above the maximum {0}"),
    (re.compile(r"isin\((.+)\)"), "{column} = '{value}' is not one of {0}"),
    (re.compile(r"not_nullable"), "{column} is empty but must be filled"),
    (
        re.compile(r"str_length\((\d+), (\d+)\)"),
        "{column} = '{value}' is not {0} to {1} characters long",
    ),
    (re.compile(r"str_length\((\d+), None\)"), "{column} is shorter than {0} character(s)"),
]


def _describe(check: str, column: str, value: object) -> str:
    for pattern, template in _CHECK_PATTERNS:
        match = pattern.fullmatch(check)
        if match:
            args = [a.strip("[]()").replace("'", "") for a in match.groups()]
            return template.format(*args, column=column, value=value)
    return check


_RULES = {
    "duplicate_key": "the row key is written on more than one row",
    "unknown_patient": "patient_id is not in the patients file",
    "quarantined_patient": "patient_id belongs to a quarantined patients row",
    "date_before_enrolment": "dated before the patient's enrolment",
    "date_in_future": "dated after the day the data were validated",
    "out_of_order": "dated out of the order of its visit or session number",
    "conflicting_values": "the lines merged into one patient or assessment disagree",
    "undated_visit": "no readable date to number the visit by (visits = by_date)",
    "unknown_event": "the REDCap event is not mapped to a visit",
}


def rule_text(check: str, column: str) -> str:
    """Describe a failed check without quoting any cell value (safe for published reports)."""
    if check in _RULES:
        return _RULES[check]
    if check.startswith("type:"):
        return f"{column} is not a valid {check.removeprefix('type:')}"
    if not column:
        return check
    return (
        _describe(check, column, "value")
        .replace(f"{column} = value", column)
        .replace(f"{column} = 'value'", column)
    )


# A study's own columns of one table, hashable: ((column, kind, low, high), ...).
Extra = tuple[tuple[str, str, float | None, float | None], ...]


def extra_key(extra: dict[str, str] | None, ranges: dict | None = None) -> Extra:
    """Describe a table's own columns and their ranges as a hashable key for the schema cache."""
    ranges = ranges or {}
    return tuple((c, k, *(ranges.get(c) or (None, None))) for c, k in sorted((extra or {}).items()))


@functools.cache
def _schema(table: str, extra: Extra = (), outcomes: tuple[str, ...] = ()) -> pa.DataFrameSchema:
    schema = contract_schema(table)
    if table == "assessments" and outcomes and outcomes != OUTCOMES:
        # the study's own outcomes make a row an assessment, and the reason names them
        schema = copy.deepcopy(schema)
        schema.checks = [
            has_outcome_check(outcomes) if check.name == "has_an_outcome" else check
            for check in schema.checks
        ]
    if not extra:
        return schema
    kinds = {table: {c: k for c, k, _, _ in extra}}
    ranges = {c: (lo, hi) for c, _, lo, hi in extra if lo is not None}
    return schema.add_columns(extra_schema_columns(table, kinds, ranges))


@functools.cache
def _schema_without(
    table: str, columns: tuple[str, ...], extra: Extra = (), outcomes: tuple[str, ...] = ()
) -> pa.DataFrameSchema:
    """Return the table's schema without ``columns`` (its row rules are all kept)."""
    schema = _schema(table, extra, outcomes)
    return schema.remove_columns(list(columns)) if columns else schema


def check_values(
    table: str, typed: pd.DataFrame, extra: Extra = (), outcomes: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Run the table's pandera model lazily and return its failures in the tidy shape.

    Columns whose statistics show that every cell passes every check
    (:func:`pipeline.validate.screen.cleared_columns`) are left out of the pandera run; all the
    row rules always run. The failures are those of a run over every column.

    Parameters
    ----------
    table : str
        Canonical table name.
    typed : pandas.DataFrame
        Output of :func:`parse_cells`.
    extra : tuple, optional
        The study's own columns of the table and their ranges (:func:`extra_key`).
    outcomes : tuple of str, optional
        The assessment columns of the study's outcomes: a row of the assessments table must
        record one of them (default: NRS, VAS, ODI or an ODI section).

    Returns
    -------
    pandas.DataFrame
        One row per failing cell (column checks) or failing row (row rules, ``column`` empty).
    """
    full = _schema(table, extra, outcomes)
    schema = _schema_without(table, tuple(cleared_columns(full, typed)), extra, outcomes)
    try:
        # inplace: nothing is coerced, so pandera need not copy the frame first
        schema.validate(typed, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return _empty_failures()
    if cases["index"].isna().any():
        whole = cases[cases["index"].isna()].iloc[0]
        raise RuntimeError(f"{table}: column-level schema failure after parsing: {whole.to_dict()}")
    index = cases["index"].astype("int64").to_numpy()
    row_rule = (cases["schema_context"] == "DataFrameSchema").to_numpy()
    columns = np.where(row_rule, "", cases["column"].astype("str"))
    values = np.array([_show(v) for v in cases["failure_case"]], dtype=object)
    checks = cases["check"].astype("str").to_numpy()
    out = pd.DataFrame(
        {
            "table": table,
            SOURCE_ROW: typed.loc[index, SOURCE_ROW].to_numpy(),
            "column": columns,
            "check": checks,
            "value": np.where(row_rule, "", values),
            "reason": [
                c if rule else _describe(c, col, v)
                for c, col, v, rule in zip(checks, columns, values, row_rule, strict=True)
            ],
        }
    )
    return out.drop_duplicates([SOURCE_ROW, "column", "check"])


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else _empty_failures()


def duplicate_keys(
    table: str, typed: pd.DataFrame, patient_codes: np.ndarray | None = None
) -> pd.DataFrame:
    """Failures for every copy of a row key that appears more than once.

    ``patient_codes`` (integer codes of ``patient_id``, see :func:`_codes`) saves computing them
    again when the caller has them.
    """
    keys = list(KEYS[table])
    known = typed[keys].notna().all(axis=1).to_numpy()
    combined = patient_codes if patient_codes is not None else _codes(typed[keys[0]])
    for key in keys[1:]:
        more = _key_codes(typed[key], known)
        span = int(more.max(initial=0)) + 1
        if span * (int(combined.max(initial=0)) + 1) >= 2**62:
            more = _codes(typed[key])  # dense codes keep the product small
            span = int(more.max(initial=0)) + 1
        combined = combined * span + more
    combined = combined[known]
    dup = np.zeros(len(known), dtype=bool)
    if combined.size > 1 and not np.all(np.diff(combined) > 0):  # (increasing: all distinct)
        dup[known] = pd.Series(combined).duplicated(keep=False).to_numpy()
    if not dup.any():
        return _empty_failures()
    label = typed.loc[dup, keys].astype("str").agg("/".join, axis=1)
    return _failures(
        table,
        typed.loc[dup, SOURCE_ROW],
        "/".join(keys),
        "duplicate_key",
        label,
        f"{'/'.join(keys)} " + label + " is written on more than one row",
    )


def _key_codes(values: pd.Series, known: np.ndarray) -> np.ndarray:
    """Non-negative integer codes of a key column, equal for equal values among ``known`` rows.

    A whole-number key is its own code (shifted to start at 0): no hashing needed.
    """
    if str(values.dtype) != "Int64":
        return _codes(values)
    numbers = values.array.to_numpy(dtype=np.int64, na_value=0)
    low = int(numbers[known].min(initial=0))
    return np.where(known, numbers - low, 0)


@dataclass(frozen=True)
class PatientIndex:
    """Every patient id of the patients file, and which of them belong to a valid patient row.

    Attributes
    ----------
    ids : pyarrow.Array
        The distinct patient ids written in the patients file, valid or not.
    valid : numpy.ndarray
        Per id of ``ids``: whether a valid patients row carries it.
    enrolment : numpy.ndarray
        Per id of ``ids``: the enrolment date of its valid row (``NaT`` when none).
    ascending : bool
        Whether ``ids`` are in ascending order: then a position in ``ids`` ranks its id.
    """

    ids: pyarrow.Array
    valid: np.ndarray
    enrolment: np.ndarray
    ascending: bool = False

    @classmethod
    def of(
        cls,
        patients: pd.DataFrame,
        valid_rows: np.ndarray,
        encoded: tuple[np.ndarray, pyarrow.Array] | None = None,
    ) -> PatientIndex:
        """Index the typed patients table; ``valid_rows`` marks the rows that passed.

        ``encoded`` is :func:`_encoded` of its ``patient_id`` column, when already computed.
        """
        codes, ids = encoded if encoded is not None else _encoded(patients[PATIENT_ID])
        valid = np.zeros(len(ids), dtype=bool)
        enrolment = np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[us]")
        where = codes[valid_rows]
        dates = patients["enrolment_date"].to_numpy()[valid_rows].astype("datetime64[us]")
        dates, where = dates[where >= 0], where[where >= 0]
        valid[where] = True
        # reversed: for an id on several valid rows, the first row's date is the one kept
        enrolment[where[::-1]] = dates[::-1]
        return cls(ids=ids, valid=valid, enrolment=enrolment, ascending=_ascending(ids))

    def positions(self, ids: pd.Series) -> np.ndarray:
        """Return the position of each id in :attr:`ids` (-1: not in the patients file).

        A patient's rows usually follow one another, so each run of equal ids is looked up
        once (comparing neighbours is far cheaper than hashing every id); when the runs hold
        every patient in the patients file's order, as an export usually does, comparing them
        with that order replaces the lookup.
        """
        cells = _arrow(ids).combine_chunks()
        n = len(cells)
        if n > 1:
            changed = pc.fill_null(pc.not_equal(cells.slice(1), cells.slice(0, n - 1)), True)
            heads = np.flatnonzero(np.concatenate(([True], changed.to_numpy(False))))
            if heads.size <= n // 2:
                runs = np.diff(np.append(heads, n))
                first = cells.take(heads)
                if len(first) == len(self.ids) and first.equals(self.ids):
                    return np.repeat(np.arange(len(first), dtype=np.int64), runs)
                return np.repeat(_numpy_filled(pc.index_in(first, value_set=self.ids), -1), runs)
        return _numpy_filled(pc.index_in(cells, value_set=self.ids), -1)


def patient_codes(ids: pd.Series, positions: np.ndarray) -> np.ndarray:
    """Integer codes of a patient-linked table's ``patient_id`` (equal ids, equal codes).

    Ids in the patients file take their position there (``positions``); other ids are numbered
    after them; missing ids are -1.
    """
    unknown = positions < 0
    if not unknown.any():
        return positions
    codes = positions.copy()
    others = _codes(ids[unknown])
    codes[unknown] = np.where(others >= 0, others + int(positions.max(initial=-1)) + 1, -1)
    return codes


def patient_links(
    table: str, typed: pd.DataFrame, index: PatientIndex, positions: np.ndarray
) -> pd.DataFrame:
    """Failures for rows of a patient-linked table that no valid patient row explains.

    Parameters
    ----------
    table : str
        ``sessions`` or ``assessments``.
    typed : pandas.DataFrame
        The parsed table.
    index : PatientIndex
        The patients file's ids, which of them are valid, and their enrolment dates.
    positions : numpy.ndarray
        Position of each row's ``patient_id`` in ``index.ids`` (:meth:`PatientIndex.positions`).

    Returns
    -------
    pandas.DataFrame
        Failures ``unknown_patient``, ``quarantined_patient`` and ``date_before_enrolment``.
    """
    ids = typed[PATIENT_ID]
    at = np.maximum(positions, 0)
    written = pd.Series(positions >= 0, index=ids.index)
    known = written & index.valid[at]
    parts = []
    orphan = ids.notna() & ~written
    if orphan.any():
        parts.append(
            _failures(
                table,
                typed.loc[orphan, SOURCE_ROW],
                PATIENT_ID,
                "unknown_patient",
                ids[orphan],
                "patient_id '" + ids[orphan] + "' is not in the patients file",
            )
        )
    held = written & ~known
    if held.any():
        parts.append(
            _failures(
                table,
                typed.loc[held, SOURCE_ROW],
                PATIENT_ID,
                "quarantined_patient",
                ids[held],
                "patient_id '" + ids[held] + "' belongs to a quarantined patients row",
            )
        )
    date_col = DATE_COLUMNS[table]
    enrolment = pd.Series(
        np.where(known, index.enrolment[at], np.datetime64("NaT")), index=ids.index
    ).astype(typed[date_col].dtype)
    early = known & typed[date_col].notna() & (typed[date_col] < enrolment)
    if early.any():
        dates = typed.loc[early, date_col].dt.strftime("%Y-%m-%d")
        parts.append(
            _failures(
                table,
                typed.loc[early, SOURCE_ROW],
                date_col,
                "date_before_enrolment",
                dates,
                f"{date_col} "
                + dates
                + " is before the patient's enrolment "
                + enrolment[early].dt.strftime("%Y-%m-%d"),
            )
        )
    return _concat(parts)


def out_of_order(
    table: str,
    typed: pd.DataFrame,
    excluded: pd.Series,
    patient_codes: np.ndarray | None = None,
) -> pd.DataFrame:
    """Failures for a patient's visits (or sessions) dated out of the order of their numbers.

    Only rows that passed every other rule take part. A row is out of order when it is dated
    before a lower-numbered row of the same patient, or after a higher-numbered one; every row of
    such a pair fails, since nothing tells which date is wrong. Equal dates are in order.

    Parameters
    ----------
    table : str
        ``sessions`` or ``assessments``.
    typed : pandas.DataFrame
        The parsed table.
    excluded : pandas.Series
        ``source_row`` of rows that already failed a rule.
    patient_codes : numpy.ndarray, optional
        Integer codes of ``patient_id`` (computed when not given).

    Returns
    -------
    pandas.DataFrame
        Failures ``out_of_order`` on the date column.
    """
    number, date = NUMBER_COLUMNS[table], DATE_COLUMNS[table]
    keep = typed[[PATIENT_ID, number, date]].notna().all(axis=1).to_numpy()
    if len(excluded):
        keep = keep & ~typed[SOURCE_ROW].isin(excluded).to_numpy()
    if keep.sum() < 2:
        return _empty_failures()
    every = bool(keep.all())  # (then nothing need be copied)

    def kept(values: np.ndarray) -> np.ndarray:
        return values if every else values[keep]

    rows = kept(typed[SOURCE_ROW].to_numpy())
    codes = kept(patient_codes if patient_codes is not None else _codes(typed[PATIENT_ID]))
    numbers = kept(typed[number].to_numpy(dtype="int64", na_value=0))
    days = kept(typed[date].to_numpy()).astype("datetime64[D]").astype("int64")
    step_code, step_number = np.diff(codes), np.diff(numbers)
    if not np.all((step_code > 0) | ((step_code == 0) & (step_number > 0))):
        order = np.lexsort((numbers, codes))
        rows, codes, numbers, days = rows[order], codes[order], numbers[order], days[order]
        step_code = np.diff(codes)
    # In the order of patient and number, no date goes back within a patient: nothing fails.
    if np.all((step_code != 0) | (np.diff(days) >= 0)):
        return _empty_failures()
    # Offsetting each patient's days by code x span keeps the running max/min within a patient.
    first = days.min()
    span = int(days.max() - first) + 1
    shifted = codes * span + (days - first)
    before = np.concatenate(([-1], np.maximum.accumulate(shifted)[:-1]))
    after = np.concatenate((np.minimum.accumulate(shifted[::-1])[::-1][1:], [shifted.max() + 1]))
    late, early = shifted < before, shifted > after
    flagged = late | early
    if not flagged.any():
        return _empty_failures()
    other = np.where(late, before, after)[flagged] - codes[flagged] * span + first
    own = days[flagged].astype("datetime64[D]").astype("str")
    other = other.astype("datetime64[D]").astype("str")
    what = "visit" if table == "assessments" else "session"
    relation = np.where(late[flagged], "earlier", "later")
    side = np.where(late[flagged], "lower", "higher")
    reasons = [
        f"{what} {n} dated {d} is {rel} than a {sd}-numbered {what} of this patient ({o})"
        for n, d, rel, sd, o in zip(numbers[flagged], own, relation, side, other, strict=True)
    ]
    return _failures(
        table,
        pd.Series(rows[flagged]),
        date,
        "out_of_order",
        pd.Series(own),
        pd.Series(reasons),
    )


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes of a key column (equal values, equal codes; missing: -1)."""
    if str(values.dtype) == "str":
        return _encoded(values)[0]
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)


def _encoded(values: pd.Series) -> tuple[np.ndarray, pyarrow.Array]:
    """Codes of a text column (missing: -1) and its distinct values, in order of first sight.

    Code ``k`` stands for the ``k``-th distinct value: one pass of hashing gives both.
    """
    cells = _arrow(values).combine_chunks()
    if _ascending(cells):  # (every value distinct and in order: nothing to hash)
        return np.arange(len(cells), dtype=np.int64), cells
    encoded = pc.dictionary_encode(cells)
    return _numpy_filled(encoded.indices, -1), encoded.dictionary


def _ascending(cells: pyarrow.Array) -> bool:
    """Whether no cell is missing and each is greater than the one before (a sorted key)."""
    n = len(cells)
    if n < 2 or cells.null_count:
        return n == 1 and not cells.null_count
    return bool(pc.all(pc.less(cells.slice(0, n - 1), cells.slice(1))).as_py())


def _sorted_by(frame: pd.DataFrame, keys: list[str], ranks: np.ndarray | None = None) -> bool:
    """Whether ``frame`` is already sorted by ``keys`` (then sorting can be skipped).

    ``ranks``, when given, are integers in the order of the first key's values (equal values,
    equal ranks; a smaller value, a smaller rank), one per row: compared instead of the text.
    """
    if len(frame) < 2 or frame[keys].isna().any().any():
        return len(frame) < 2
    if ranks is not None:
        less, equal = ranks[:-1] < ranks[1:], ranks[:-1] == ranks[1:]
    else:
        first = _arrow(frame[keys[0]]).combine_chunks()
        before, after = first.slice(0, len(first) - 1), first.slice(1)
        less = np.asarray(pc.less(before, after).to_numpy(zero_copy_only=False), dtype=bool)
        equal = np.asarray(pc.equal(before, after).to_numpy(zero_copy_only=False), dtype=bool)
    if len(keys) == 1:
        return bool(less.all())
    second = frame[keys[1]].to_numpy(dtype=np.int64)
    return bool(np.all(less | (equal & (second[1:] > second[:-1]))))


def _per_row(failures: pd.DataFrame) -> pd.DataFrame:
    """Join each row's failures: ``failed_columns``, ``failed_checks``, ``reason`` by source row.

    Columns and checks are listed once each, in sorted order; reasons all, in the same order. Rows
    with a single failure (the usual case) take their values as they are; only rows with several
    are grouped.
    """
    ordered = failures.sort_values([SOURCE_ROW, "column", "check"])
    several = ordered[SOURCE_ROW].duplicated(keep=False).to_numpy()
    single = ordered[~several].set_index(SOURCE_ROW)[["column", "check", "reason"]]
    single.columns = ["failed_columns", "failed_checks", "reason"]
    if not several.any():
        return single  # (the usual case: grouping nothing costs pandas tens of milliseconds)
    joined = (
        ordered[several]
        .groupby(SOURCE_ROW, sort=True)
        .agg(
            failed_columns=("column", lambda s: "; ".join(dict.fromkeys(s))),
            failed_checks=("check", lambda s: "; ".join(dict.fromkeys(s))),
            reason=("reason", "; ".join),
        )
    )
    return pd.concat([single, joined]).sort_index() if len(joined) else single


def _split(
    raw: RawTable,
    typed: pd.DataFrame,
    failures: pd.DataFrame,
    blanked: pd.DataFrame | None = None,
    ranks: np.ndarray | None = None,
) -> ValidatedTable:
    """Split a table into its valid rows (sorted by its key) and its quarantined rows.

    ``ranks`` (one per row of ``typed``) stand for its first key as :func:`_sorted_by` says,
    when known; they need only hold for the valid rows.
    """
    bad_rows = failures[SOURCE_ROW].unique()
    is_bad = typed[SOURCE_ROW].isin(bad_rows).to_numpy() if len(bad_rows) else None
    valid = typed[~is_bad] if is_bad is not None else typed
    if ranks is not None and is_bad is not None:
        ranks = ranks[~is_bad]
    keys = list(KEYS[raw.name])
    if not _sorted_by(valid, keys, ranks):
        valid = valid.sort_values(keys)
    valid = valid.reset_index(drop=True)
    grouped = _per_row(failures)
    quarantine = raw.text_rows(bad_rows).merge(
        grouped, left_on=SOURCE_ROW, right_index=True, how="left"
    )
    return ValidatedTable(
        name=raw.name,
        valid=valid,
        quarantine=quarantine.reset_index(drop=True),
        raw_rows=len(raw.source_rows),
        blanked=_empty_failures() if blanked is None else blanked,
    )


def file_names(raw: RawTable, shown: int = 3) -> str:
    """Name the file(s) a table was read from, for the row accounting."""
    labels = [label for label, _ in raw.file_digests()]
    if len(labels) <= shown:
        return ", ".join(labels)
    return f"{', '.join(labels[:shown])} and {len(labels) - shown} more"


def future_dates(table: str, typed: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    """Failures ``date_in_future`` for every date after ``today`` (the run date).

    Parameters
    ----------
    table : str
        Canonical table name.
    typed : pandas.DataFrame
        The parsed table.
    today : datetime.date
        The day of the run; a date after it cannot have been recorded yet (a typing error such
        as 2052 for 2025).

    Returns
    -------
    pandas.DataFrame
        One failure per future date cell.
    """
    limit = pd.Timestamp(today)
    parts = []
    for column in [c for c, k in column_kinds(table).items() if k == "date" and c in typed]:
        values = typed[column]
        if not len(values) or not (values.max() > limit):
            continue  # (the common case: one comparison of the column's maximum)
        late = values > limit
        dates = values[late].dt.strftime("%Y-%m-%d")
        parts.append(
            _failures(
                table,
                typed.loc[late, SOURCE_ROW],
                column,
                "date_in_future",
                dates,
                f"{column} " + dates + f" is after the run date {today.isoformat()}",
            )
        )
    return _concat(parts) if parts else _empty_failures()


def _own_failures(
    raw: RawTable,
    typed: pd.DataFrame,
    parse_failures: pd.DataFrame,
    codes: np.ndarray,
    value_failures: pd.DataFrame | None = None,
    extra: Extra = (),
    today: dt.date | None = None,
) -> pd.DataFrame:
    """Failures a table shows on its own: cells, values, row rules and duplicated keys.

    ``codes`` are the integer codes of the table's ``patient_id``; ``value_failures`` those of
    :func:`check_values` (run here when not given); dates after ``today`` (default: the day of
    the run) fail ``date_in_future``.
    """
    if value_failures is None:
        value_failures = check_values(raw.name, typed, extra)
    if raw.problems is not None:
        parse_failures = _concat([parse_failures, raw.problems[FAILURE_COLUMNS]])
    # A cell that did not parse is missing in ``typed``; its "must be filled" failure, and the
    # row rules evaluated with it missing, would only repeat the parse failure (so would a cell
    # an adapter found a problem with).
    unparsed = pd.MultiIndex.from_frame(parse_failures[[SOURCE_ROW, "column"]])
    repeat = pd.MultiIndex.from_frame(value_failures[[SOURCE_ROW, "column"]]).isin(unparsed)
    repeat |= (value_failures["column"] == "").to_numpy() & value_failures[SOURCE_ROW].isin(
        parse_failures[SOURCE_ROW]
    ).to_numpy()
    future = future_dates(raw.name, typed, today or dt.date.today())
    return _concat(
        [parse_failures, value_failures[~repeat], future, duplicate_keys(raw.name, typed, codes)]
    )


# Checks whose failure on a score cell blanks the cell instead of quarantining the row: the cell
# does not parse as a number, or lies outside the score's range (prefixes of pandera's names).
CELL_CHECKS = ("type:integer", "type:number", "greater_than_or_equal_to(", "less_than_or_equal_to(")


def score_columns(extra: Extra = ()) -> tuple[str, ...]:
    """Return the score columns of assessments: NRS, VAS, ODI, its sections, own outcomes.

    Parameters
    ----------
    extra : tuple, optional
        The study's own assessment columns (:func:`extra_key`); its numeric ones are outcomes.

    Returns
    -------
    tuple of str
        Columns whose unreadable or out-of-range cells are blanked (:func:`blank_score_cells`).
    """
    return (*OUTCOMES, *ODI_ITEMS, *(c for c, kind, _, _ in extra if kind == "number"))


def outcome_columns(extra: Extra = (), outcomes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Return the columns of which an assessment must record one (rule ``has_an_outcome``).

    As :meth:`pipeline.schemas.raw.Assessments.has_an_outcome` and
    :func:`pipeline.schemas.raw.has_outcome_check` count them: the study's outcomes (with the
    ODI sections when the ODI is one), or by default NRS, VAS, ODI, the sections and the
    study's own columns.
    """
    if outcomes and outcomes != OUTCOMES:
        return (*outcomes, *(ODI_ITEMS if "odi" in outcomes else ()))
    return (*OUTCOMES, *ODI_ITEMS, *(c for c, _, _, _ in extra))


def blank_score_cells(
    typed: pd.DataFrame,
    failures: pd.DataFrame,
    scores: tuple[str, ...],
    outcomes: tuple[str, ...],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Blank the unreadable or out-of-range score cells of rows that are otherwise valid.

    The rule: a failure of a score cell (a check of :data:`CELL_CHECKS` on a column of
    ``scores``) blanks that cell and keeps the row when (1) every failure of the row is such a
    score-cell failure and (2) the row still records an outcome (a column of ``outcomes``
    filled and not blanked). Otherwise the row is quarantined whole, with every failure as its
    reason, as any failing row is: a row with a bad identity, key or date cell, a duplicated
    key or an unknown patient, and an assessment none of whose scores is readable.

    Parameters
    ----------
    typed : pandas.DataFrame
        The parsed assessments (cells that did not parse are already missing).
    failures : pandas.DataFrame
        Every failure found so far (cells, values, row rules, keys, links to the patients).
    scores : tuple of str
        The score columns (:func:`score_columns`).
    outcomes : tuple of str
        The columns of which a row must record one (:func:`outcome_columns`).

    Returns
    -------
    typed : pandas.DataFrame
        ``typed`` with the blanked cells missing (a new frame; the input is not changed).
    failures : pandas.DataFrame
        The failures that quarantine their row (the blanked cells' failures removed).
    blanked : pandas.DataFrame
        The failures of the blanked cells, one per cell.
    """
    if failures.empty:
        return typed, failures, _empty_failures()
    cell = failures["column"].isin(scores).to_numpy() & np.array(
        [check.startswith(CELL_CHECKS) for check in failures["check"]], dtype=bool
    )
    if not cell.any():
        return typed, failures, _empty_failures()
    rows = failures[SOURCE_ROW].to_numpy()
    candidate = cell & ~np.isin(rows, rows[~cell])
    if not candidate.any():
        return typed, failures, _empty_failures()
    position = pd.Index(typed[SOURCE_ROW]).get_indexer(rows[candidate])
    columns = failures["column"].to_numpy()[candidate]
    marked = {c: np.zeros(len(typed), dtype=bool) for c in set(columns)}
    for column, at in zip(columns, position, strict=True):
        marked[column][at] = True
    left = np.zeros(len(typed), dtype=bool)
    for column in (c for c in outcomes if c in typed):
        filled = typed[column].notna().to_numpy()
        left |= filled & ~marked[column] if column in marked else filled
    kept = left[position]
    blanked = candidate.copy()
    blanked[candidate] = kept
    keep_row = np.zeros(len(typed), dtype=bool)
    keep_row[position[kept]] = True
    typed = typed.assign(
        **{c: typed[c].mask(marked[c] & keep_row) for c in marked if (marked[c] & keep_row).any()}
    )
    cells = failures[blanked].sort_values([SOURCE_ROW, "column"], kind="stable")
    return typed, failures[~blanked].reset_index(drop=True), cells.reset_index(drop=True)


LINKED = ("sessions", "assessments")


def _linked_table(
    raw: RawTable,
    patients: Future[PatientIndex],
    extra: Extra = (),
    outcomes: tuple[str, ...] = (),
    today: dt.date | None = None,
) -> tuple[ValidatedTable, pd.DataFrame, pd.DataFrame]:
    """Validate a patient-linked table against the patient index.

    ``patients`` gives the index once the patients table is validated: the table's cells are
    parsed and its value checks started before it is waited for. Returns the validated table,
    its failures (its own: cells, values, row rules, keys; links to the patients,
    :func:`patient_links`; the order of its dates, :func:`out_of_order`) and which optional
    columns each of its files recorded (:func:`recorded_by_file`).
    """
    frame, parse_failures = typed_cells(raw)
    with ThreadPoolExecutor(max_workers=1) as pool:
        values = pool.submit(check_values, raw.name, frame, extra, outcomes)
        index = patients.result()
        positions = index.positions(frame[PATIENT_ID])
        codes = patient_codes(frame[PATIENT_ID], positions)
        links = patient_links(raw.name, frame, index, positions)
        own = _own_failures(raw, frame, parse_failures, codes, values.result(), today=today)
    found = _concat([own, links])
    blanked = _empty_failures()
    if raw.name == "assessments":
        frame, found, blanked = blank_score_cells(
            frame, found, score_columns(extra), outcome_columns(extra, outcomes)
        )
    failures = _concat([found, out_of_order(raw.name, frame, found[SOURCE_ROW], codes)])
    # A valid row's patient is in the index, so its position ranks its id when they ascend.
    ranks = codes if index.ascending else None
    table = _split(raw, frame, failures, blanked, ranks)
    return table, failures, recorded_by_file(raw, table.valid)


def _patients_table(
    raw: RawTable, extra: Extra, index: Future[PatientIndex], today: dt.date | None
) -> tuple[pd.DataFrame, ValidatedTable]:
    """Validate the patients table; set ``index`` to its patient index as soon as it is known.

    Returns its failures and its validated table.
    """
    patients, parse_failures = typed_cells(raw)
    encoded = _encoded(patients[PATIENT_ID])
    failed = _own_failures(raw, patients, parse_failures, encoded[0], extra=extra, today=today)
    valid_rows = ~patients[SOURCE_ROW].isin(failed[SOURCE_ROW]).to_numpy()
    index.set_result(PatientIndex.of(patients, valid_rows, encoded))
    return failed, _split(raw, patients, failed)


def validate_study(
    raw: dict[str, RawTable],
    ranges: dict[str, tuple[float, float]] | None = None,
    today: dt.date | None = None,
) -> Validation:
    """Validate the three canonical tables together.

    Parameters
    ----------
    raw : dict of str to RawTable
        The raw tables, keyed ``patients``, ``sessions``, ``assessments``; each carries the
        study's own columns (``RawTable.extra``), validated with the contract's.
    ranges : dict of str to (float, float), optional
        Allowed range of the study's own numeric columns (its declared outcomes,
        :meth:`pipeline.config.study.Study.ranges`). Its columns are the study's outcomes:
        an assessment must record one of them, and the reason of one that does not names them
        (``no outcome recorded (rmdq or psfs)``); without it, NRS, VAS and ODI.
    today : datetime.date, optional
        The run date: later dates are quarantined (default: today).

    Returns
    -------
    Validation
        Valid and quarantined rows per table, the failures of the quarantined rows, the row
        accounting (``table, file, raw_rows, processed_rows, quarantined_rows, blank_lines,
        blanked_cells``: raw = processed + quarantined, and the score cells blanked in processed
        rows), the blanked cells (``tables[...].blanked``) and which optional columns each
        source recorded.
    """
    keys = {name: extra_key(table.extra, ranges) for name, table in raw.items()}
    outcomes = tuple(ranges or ())
    index: Future[PatientIndex] = Future()
    # Sessions and assessments are checked side by side, and start while the patients are:
    # most of the work is in numpy, pyarrow and pandas kernels that release the interpreter
    # lock, and each waits for the patient index only once its cells are parsed and its value
    # checks started.
    with ThreadPoolExecutor(max_workers=2) as pool:
        checked = [
            pool.submit(_linked_table, raw[name], index, keys[name], outcomes, today)
            for name in LINKED
        ]
        try:
            failed, table = _patients_table(raw["patients"], keys["patients"], index, today)
        except BaseException as exc:
            if not index.done():
                index.set_exception(exc)  # (the linked tables stop waiting)
            raise
        failures, tables = {"patients": failed}, {"patients": table}
        recorded = {"patients": recorded_by_file(raw["patients"], tables["patients"].valid)}
        for name, future in zip(LINKED, checked, strict=True):
            tables[name], failures[name], recorded[name] = future.result()
    accounting = pd.DataFrame(
        [
            {
                "table": name,
                "file": file_names(raw[name]),
                "raw_rows": t.raw_rows,
                "processed_rows": len(t.valid),
                "quarantined_rows": len(t.quarantine),
                "blank_lines": raw[name].blank_lines,
                "blanked_cells": len(t.blanked),
            }
            for name, t in tables.items()
        ]
    )
    balance = accounting["raw_rows"] - accounting["processed_rows"] - accounting["quarantined_rows"]
    if (balance != 0).any():
        raise RuntimeError(f"row accounting does not balance:\n{accounting}")
    return Validation(
        tables=tables,
        failures=_concat(list(failures.values())),
        accounting=accounting,
        recorded=pd.concat([recorded[name] for name in tables], ignore_index=True),
    )
