"""Validation: split every raw table into valid typed rows and quarantined rows with reasons.

Three layers, each producing failures of the same tidy shape (``table, source_row, column,
check, value, reason``):

1. **Parsing** text cells into the types the schema declares (whole numbers, numbers, yes/no,
   ``YYYY-MM-DD`` dates). A cell that does not parse fails ``type:<kind>``.
2. **pandera** value checks of :mod:`pipeline.schemas`, run lazily so that every failing cell of
   every row is reported at once.
3. **Cross-table checks**: a row key written twice quarantines every copy (nothing tells which
   copy is right); sessions and assessments must belong to a valid patient and must not be dated
   before that patient's enrolment; among the rows that pass every other rule, a patient's
   visits (and sessions) must not be dated out of the order of their numbers (every row of an
   inverted pair is quarantined, since nothing tells which date is wrong).

Problems an adapter of :mod:`pipeline.sources` found while mapping a clinic's file (e.g. a
patient's age differing between the rows of a visit sheet) arrive with the raw table and are
quarantined like any other failure.

A row with any failure goes whole to the quarantine, with all its failures listed; all other rows
are valid. Nothing is dropped: for every table, raw rows = valid rows + quarantined rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from pipeline.ingest import SOURCE_ROW, RawTable
from pipeline.schemas import DATE_COLUMNS, KEYS, MODELS, TABLES, column_kinds

FAILURE_COLUMNS = ["table", SOURCE_ROW, "column", "check", "value", "reason"]
YES = ("yes", "y", "true", "t", "1")
NO = ("no", "n", "false", "f", "0")


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
    """

    name: str
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    raw_rows: int


@dataclass(frozen=True)
class Validation:
    """All tables of a study after validation, with the failures and the row accounting."""

    tables: dict[str, ValidatedTable]
    failures: pd.DataFrame
    accounting: pd.DataFrame

    def valid(self, table: str) -> pd.DataFrame:
        """Return the valid, typed rows of ``table``."""
        return self.tables[table].valid

    @property
    def quarantined_rows(self) -> int:
        """Total number of quarantined rows over all tables."""
        return int(self.accounting["quarantined_rows"].sum())


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


def _empty_failures() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="int64" if c == SOURCE_ROW else "str") for c in FAILURE_COLUMNS}
    )


def parse_cells(
    table: str, frame: pd.DataFrame, date_format: str = "YYYY-MM-DD"
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
    for column, kind in column_kinds(table).items():
        if column not in frame:
            typed[column] = pd.Series(None, index=frame.index, dtype=_dtype(kind))
            continue
        text = frame[column]
        parsed, bad, bad_reason = _parse(text, kind)
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
    return pd.DataFrame(typed, index=frame.index), _concat(failed)


def _dtype(kind: str) -> str:
    return {
        "integer": "Int64",
        "number": "float64",
        "yes/no": "boolean",
        "date": "datetime64[us]",
        "text": "str",
    }[kind]


_NUMBER = r"^[+-]?(?:[0-9]+[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?[0-9]+)?$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_YES = pyarrow.array(YES)
_NO = pyarrow.array(NO)


def _arrow(text: pd.Series) -> pyarrow.ChunkedArray:
    """Return a text column as a pyarrow array (no copy for the default string dtype)."""
    if str(text.dtype) != "str":
        text = text.astype("str")
    array = pyarrow.array(text)
    return array if isinstance(array, pyarrow.ChunkedArray) else pyarrow.chunked_array([array])


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
    out = np.asarray(values.to_numpy(), dtype="float64").copy()
    out[~np.isfinite(out)] = np.nan
    return out


def _parse(
    text: pd.Series, kind: str
) -> tuple[pd.Series | pd.api.extensions.ExtensionArray, pd.Series, str]:
    """Parse one text column; return the values, the cells that did not parse and why."""
    if kind == "text":
        return text.astype("str"), pd.Series(False, index=text.index), ""
    cells = _arrow(text)
    present = ~np.asarray(pc.is_null(cells).to_numpy(), dtype=bool)
    if kind in ("integer", "number"):
        numbers = _numbers(cells)
        parsed = ~np.isnan(numbers)
        if kind == "number":
            return (
                pd.Series(numbers, index=text.index),
                _bad(present & ~parsed, text),
                ("is not a number"),
            )
        whole = parsed & (np.abs(numbers) <= 2**53)
        whole[whole] = numbers[whole] % 1 == 0
        values = pd.arrays.IntegerArray(np.where(whole, numbers, 0).astype("int64"), mask=~whole)
        return (
            pd.Series(values, index=text.index),
            _bad(present & ~whole, text),
            ("is not a whole number"),
        )
    if kind == "yes/no":
        lower = pc.utf8_lower(cells)
        yes = np.asarray(pc.is_in(lower, value_set=_YES).to_numpy(), dtype=bool)
        no = np.asarray(pc.is_in(lower, value_set=_NO).to_numpy(), dtype=bool)
        values = pd.arrays.BooleanArray(yes, mask=~(yes | no))
        return (
            pd.Series(values, index=text.index),
            _bad(present & ~(yes | no), text),
            ("is not yes or no"),
        )
    try:
        dates = pc.cast(cells, pyarrow.date32())
    except pyarrow.ArrowInvalid:
        iso = _keep(cells, _ISO_DATE).to_pandas()
        dates = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce").to_numpy()
    else:
        dates = dates.to_numpy()
    values = np.asarray(dates).astype("datetime64[us]")
    return (
        pd.Series(values, index=text.index),
        _bad(present & np.isnat(values), text),
        ("is not a date written "),
    )


def _bad(mask: np.ndarray, text: pd.Series) -> pd.Series:
    return pd.Series(mask, index=text.index)


_CHECK_PATTERNS = [
    (
        re.compile(r"greater_than_or_equal_to\((.+)\)"),
        "{column} = {value} is below the minimum {0}",
    ),
    (re.compile(r"less_than_or_equal_to\((.+)\)"), "{column} = {value} is above the maximum {0}"),
    (re.compile(r"isin\((.+)\)"), "{column} = '{value}' is not one of {0}"),
    (re.compile(r"not_nullable"), "{column} is empty but must be filled"),
    (re.compile(r"str_length\((.+)\)"), "{column} = '{value}' has a length outside {0}"),
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
    "out_of_order": "dated out of the order of its visit or session number",
    "conflicting_values": "the patient's details differ between rows of the source file",
    "unknown_event": "the REDCap event is not mapped to a visit",
}

# Number that orders a patient's rows in time, per table with dates.
ORDER_COLUMNS: dict[str, str] = {"sessions": "session_number", "assessments": "visit"}


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


def check_values(table: str, typed: pd.DataFrame) -> pd.DataFrame:
    """Run the table's pandera model lazily and return its failures in the tidy shape.

    Parameters
    ----------
    table : str
        Canonical table name.
    typed : pandas.DataFrame
        Output of :func:`parse_cells`.

    Returns
    -------
    pandas.DataFrame
        One row per failing cell (column checks) or failing row (row rules, ``column`` empty).
    """
    try:
        MODELS[table].validate(typed, lazy=True)
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


def duplicate_keys(table: str, typed: pd.DataFrame) -> pd.DataFrame:
    """Failures for every copy of a row key that appears more than once."""
    keys = list(KEYS[table])
    known = typed[keys].notna().all(axis=1)
    dup = known & typed.duplicated(keys, keep=False)
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


def patient_links(
    table: str, typed: pd.DataFrame, patients: pd.DataFrame, all_patient_ids: pd.Series
) -> pd.DataFrame:
    """Failures for rows of a patient-linked table that no valid patient row explains.

    Parameters
    ----------
    table : str
        ``sessions`` or ``assessments``.
    typed : pandas.DataFrame
        The parsed table.
    patients : pandas.DataFrame
        Valid patient rows (``patient_id``, ``enrolment_date``).
    all_patient_ids : pandas.Series
        Every patient id written in the patients file, valid or not, to tell an unknown patient
        from a quarantined one.

    Returns
    -------
    pandas.DataFrame
        Failures ``unknown_patient``, ``quarantined_patient`` and ``date_before_enrolment``.
    """
    ids = typed["patient_id"]
    valid_ids = set(patients["patient_id"])
    known = ids.isin(valid_ids)
    written = ids.isin(set(all_patient_ids.dropna()))
    parts = []
    orphan = ids.notna() & ~known & ~written
    if orphan.any():
        parts.append(
            _failures(
                table,
                typed.loc[orphan, SOURCE_ROW],
                "patient_id",
                "unknown_patient",
                ids[orphan],
                "patient_id '" + ids[orphan] + "' is not in the patients file",
            )
        )
    held = ids.notna() & ~known & written
    if held.any():
        parts.append(
            _failures(
                table,
                typed.loc[held, SOURCE_ROW],
                "patient_id",
                "quarantined_patient",
                ids[held],
                "patient_id '" + ids[held] + "' belongs to a quarantined patients row",
            )
        )
    date_col = DATE_COLUMNS[table]
    enrolment = ids.map(patients.set_index("patient_id")["enrolment_date"])
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


def out_of_order(table: str, typed: pd.DataFrame, excluded: pd.Series) -> pd.DataFrame:
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

    Returns
    -------
    pandas.DataFrame
        Failures ``out_of_order`` on the date column.
    """
    number, date = ORDER_COLUMNS[table], DATE_COLUMNS[table]
    keep = ~typed[SOURCE_ROW].isin(excluded) & typed[["patient_id", number, date]].notna().all(
        axis=1
    )
    if keep.sum() < 2:
        return _empty_failures()
    rows = typed.loc[keep, SOURCE_ROW].to_numpy()
    codes = pd.factorize(typed.loc[keep, "patient_id"])[0].astype("int64")
    numbers = typed.loc[keep, number].to_numpy(dtype="int64")
    days = typed.loc[keep, date].to_numpy().astype("datetime64[D]").astype("int64")
    step_code, step_number = np.diff(codes), np.diff(numbers)
    if not np.all((step_code > 0) | ((step_code == 0) & (step_number > 0))):
        order = np.lexsort((numbers, codes))
        rows, codes, numbers, days = rows[order], codes[order], numbers[order], days[order]
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


def _split(raw: RawTable, typed: pd.DataFrame, failures: pd.DataFrame) -> ValidatedTable:
    bad_rows = failures[SOURCE_ROW].unique()
    is_bad = typed[SOURCE_ROW].isin(bad_rows)
    valid = typed[~is_bad].sort_values(list(KEYS[raw.name])).reset_index(drop=True)
    grouped = (
        failures.sort_values([SOURCE_ROW, "column", "check"])
        .groupby(SOURCE_ROW, sort=True)
        .agg(
            failed_columns=("column", lambda s: "; ".join(dict.fromkeys(s))),
            failed_checks=("check", lambda s: "; ".join(dict.fromkeys(s))),
            reason=("reason", "; ".join),
        )
    )
    quarantine = raw.frame[raw.frame[SOURCE_ROW].isin(bad_rows)].merge(
        grouped, left_on=SOURCE_ROW, right_index=True, how="left"
    )
    return ValidatedTable(
        name=raw.name,
        valid=valid,
        quarantine=quarantine.reset_index(drop=True),
        raw_rows=len(raw.frame),
    )


def file_names(raw: RawTable, shown: int = 3) -> str:
    """Name the file(s) a table was read from, for the row accounting."""
    labels = [f.label for f in raw.files] or [raw.path.name]
    if len(labels) <= shown:
        return ", ".join(labels)
    return f"{', '.join(labels[:shown])} and {len(labels) - shown} more"


def validate_study(raw: dict[str, RawTable]) -> Validation:
    """Validate the three canonical tables together.

    Parameters
    ----------
    raw : dict of str to RawTable
        The raw tables, keyed ``patients``, ``sessions``, ``assessments``.

    Returns
    -------
    Validation
        Valid and quarantined rows per table, every failure, and the row accounting
        (``table, file, raw_rows, processed_rows, quarantined_rows, blank_lines``).
    """
    typed: dict[str, pd.DataFrame] = {}
    failures: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        frame, parse_failures = parse_cells(name, raw[name].frame, raw[name].date_format)
        typed[name] = frame
        value_failures = check_values(name, frame)
        if raw[name].problems is not None:
            parse_failures = _concat([parse_failures, raw[name].problems[FAILURE_COLUMNS]])
        # A cell that did not parse is missing in ``frame``; its "must be filled" failure, and
        # the row rules evaluated with it missing, would only repeat the parse failure (so
        # would a cell an adapter found a problem with).
        unparsed = pd.MultiIndex.from_frame(parse_failures[[SOURCE_ROW, "column"]])
        repeat = pd.MultiIndex.from_frame(value_failures[[SOURCE_ROW, "column"]]).isin(unparsed)
        repeat |= (value_failures["column"] == "").to_numpy() & value_failures[SOURCE_ROW].isin(
            parse_failures[SOURCE_ROW]
        ).to_numpy()
        failures[name] = _concat(
            [parse_failures, value_failures[~repeat], duplicate_keys(name, frame)]
        )

    bad_patients = typed["patients"][SOURCE_ROW].isin(failures["patients"][SOURCE_ROW])
    valid_patients = typed["patients"][~bad_patients]
    for name in ("sessions", "assessments"):
        links = patient_links(name, typed[name], valid_patients, typed["patients"]["patient_id"])
        failures[name] = _concat([failures[name], links])
        order = out_of_order(name, typed[name], failures[name][SOURCE_ROW])
        failures[name] = _concat([failures[name], order])

    tables = {name: _split(raw[name], typed[name], failures[name]) for name in TABLES}
    accounting = pd.DataFrame(
        [
            {
                "table": name,
                "file": file_names(raw[name]),
                "raw_rows": t.raw_rows,
                "processed_rows": len(t.valid),
                "quarantined_rows": len(t.quarantine),
                "blank_lines": raw[name].blank_lines,
            }
            for name, t in tables.items()
        ]
    )
    balance = accounting["raw_rows"] - accounting["processed_rows"] - accounting["quarantined_rows"]
    if (balance != 0).any():
        raise RuntimeError(f"row accounting does not balance:\n{accounting}")
    return Validation(
        tables=tables, failures=_concat(list(failures.values())), accounting=accounting
    )
