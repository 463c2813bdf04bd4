"""Validation: split every raw table into valid typed rows and quarantined rows with reasons.

Three layers, each producing failures of the same tidy shape (``table, source_row, column,
check, value, reason``):

1. **Parsing** text cells into the types the schema declares (whole numbers, numbers, yes/no,
   ``YYYY-MM-DD`` dates). A cell that does not parse fails ``type:<kind>``.
2. **pandera** value checks of :mod:`pipeline.schemas`, run lazily so that every failing cell of
   every row is reported at once.
3. **Cross-table checks**: a row key written twice quarantines every copy (nothing tells which
   copy is right); sessions and assessments must belong to a valid patient and must not be dated
   before that patient's enrolment.

A row with any failure goes whole to the quarantine, with all its failures listed; all other rows
are valid. Nothing is dropped: for every table, raw rows = valid rows + quarantined rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

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


def parse_cells(table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert the text cells of a raw table to the types its schema declares.

    Parameters
    ----------
    table : str
        Canonical table name.
    frame : pandas.DataFrame
        The raw table as text, with ``source_row``.

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
        parsed, bad_reason = _parse(text, kind)
        bad = text.notna() & parsed.isna()
        if kind == "integer":
            numbers = pd.to_numeric(text, errors="coerce")
            fractional = numbers.notna() & (numbers % 1 != 0)
            bad = bad | fractional
            parsed = numbers.where(~fractional).astype("Int64")
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


def _parse(text: pd.Series, kind: str) -> tuple[pd.Series, str]:
    if kind == "integer":
        return pd.to_numeric(text, errors="coerce"), "is not a whole number"
    if kind == "number":
        return pd.to_numeric(text, errors="coerce").astype("float64"), "is not a number"
    if kind == "yes/no":
        lower = text.str.lower()
        out = pd.Series(pd.NA, index=text.index, dtype="boolean")
        out[lower.isin(YES)] = True
        out[lower.isin(NO)] = False
        return out, "is not yes or no"
    if kind == "date":
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[us]")
        return parsed, "is not a date written YYYY-MM-DD"
    return text.astype("str"), ""


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
        frame, parse_failures = parse_cells(name, raw[name].frame)
        typed[name] = frame
        value_failures = check_values(name, frame)
        # A cell that did not parse is missing in ``frame``; its "must be filled" failure, and
        # the row rules evaluated with it missing, would only repeat the parse failure.
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

    tables = {name: _split(raw[name], typed[name], failures[name]) for name in TABLES}
    accounting = pd.DataFrame(
        [
            {
                "table": name,
                "file": raw[name].path.name,
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
