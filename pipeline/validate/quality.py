"""Data-quality summary per source file: rows read, valid, quarantined, and why.

A line of a clinic's file can feed several canonical rows (a visit-sheet row is a session and an
assessment; a wide row is a patient and several assessments; a patient of a visit sheet is made
from all of its lines). A line counts as **quarantined** when any row made from it was
quarantined, **valid** when every row made from it is valid, and **not used** when no row was
made from it (e.g. a REDCap row of an instrument no table reads). For every file

    rows read = valid + quarantined + not used.

A score cell blanked in a valid row (:func:`pipeline.validate.study.blank_score_cells`) does not
make its line quarantined: the line counts as valid, and the cell is counted apart
(``cells_blanked``) and listed, with its file, line, column, value and reason, by
:func:`blanked_cells` (``quarantine/blanked_cells.csv``).

Reasons are counted in lines and described without quoting any cell value (as in the report).
``outcomes validate`` prints the summary and writes it next to the quarantine files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.ingest.raw_tables import (
    SOURCE_DETAIL,
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_ROW,
    RawTable,
    SourceFile,
)
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import TABLES
from pipeline.validate.study import Validation, rule_text

SUMMARY_COLUMNS = [
    "file",
    "kind",
    "source",
    "encoding",
    "rows_read",
    "rows_valid",
    "rows_quarantined",
    "rows_unused",
    "cells_blanked",
    "blank_lines",
    "sha256",
]
REASON_COLUMNS = ["file", "check", "column", "rows", "rule"]
# The cell-level quarantine records, next to the per-table quarantine files.
BLANKED_FILE = "blanked_cells.csv"
BLANKED_COLUMNS = [
    "table",
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_DETAIL,
    PATIENT_ID,
    "visit",
    "column",
    "value",
    "check",
    "reason",
]


def blanked_cells(raw: dict[str, RawTable], validation: Validation) -> pd.DataFrame:
    """Locate every blanked score cell in its file: the cell-level quarantine records.

    Parameters
    ----------
    raw : dict of str to RawTable
        The raw tables as read (with their provenance).
    validation : Validation
        Their validation.

    Returns
    -------
    pandas.DataFrame
        One row per blanked cell, in the order of the tables and their rows: ``table,
        source_file, source_line, source_detail`` (where the row was read: the file, its line
        or sheet row, and the time point or REDCap event), ``patient_id`` and ``visit`` (the
        assessment's key), ``column`` (canonical), ``value``
        (as read, after the mapping of codes and units), ``check`` and ``reason``.
    """
    parts = []
    for name in TABLES:
        if name not in validation.tables:
            continue
        cells = validation.tables[name].blanked
        if cells.empty:
            continue
        table = raw[name]
        where = table.provenance().drop_duplicates(SOURCE_ROW).set_index(SOURCE_ROW)
        rows = cells[SOURCE_ROW].to_numpy()
        valid = validation.tables[name].valid.set_index(SOURCE_ROW)
        frame = table.frame if table.frame is not None else table.typed
        detail = (
            frame.set_index(SOURCE_ROW)[SOURCE_DETAIL].reindex(rows).to_numpy()
            if frame is not None and SOURCE_DETAIL in frame
            else None
        )
        parts.append(
            pd.DataFrame(
                {
                    "table": name,
                    SOURCE_FILE: where[SOURCE_FILE].reindex(rows).astype("str").to_numpy(),
                    SOURCE_LINE: where[SOURCE_LINE].reindex(rows).to_numpy(),
                    SOURCE_DETAIL: detail,
                    PATIENT_ID: valid[PATIENT_ID].reindex(rows).astype("str").to_numpy(),
                    "visit": valid["visit"].reindex(rows).to_numpy() if "visit" in valid else None,
                    "column": cells["column"].to_numpy(),
                    "value": cells["value"].to_numpy(),
                    "check": cells["check"].to_numpy(),
                    "reason": cells["reason"].to_numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in BLANKED_COLUMNS})
    return pd.concat(parts, ignore_index=True)[BLANKED_COLUMNS]


def source_files(raw: dict[str, RawTable]) -> list[SourceFile]:
    """Every file read for the study, once each, in reading order."""
    seen: dict[str, SourceFile] = {}
    for table in raw.values():
        for file in table.files:
            seen.setdefault(file.label, file)
    return sorted(seen.values(), key=lambda f: f.source)


def _lines(raw: dict[str, RawTable], validation: Validation) -> pd.DataFrame:
    """``table, source_row, source_file, source_line, quarantined`` for every row made.

    ``source_file`` is categorical over the files' labels (one code per row, where a text
    label per row made every grouping hash the labels again).
    """
    links = {name: table.provenance() for name, table in raw.items()}
    labels = dict.fromkeys(f.label for f in source_files(raw))
    coded = {}  # each row's file as a code into the labels its table holds
    for name, frame in links.items():
        codes, found = pd.factorize(frame[SOURCE_FILE].astype("str"))
        coded[name] = codes, found.tolist()
        labels.update(dict.fromkeys(coded[name][1]))
    files = pd.CategoricalDtype(list(labels))
    position = {label: k for k, label in enumerate(labels)}
    parts = []
    for name, frame in links.items():
        bad = validation.tables[name].quarantine[SOURCE_ROW]
        codes, found = coded[name]
        code_of = np.array([position[label] for label in found] + [-1], dtype=np.int64)
        parts.append(
            pd.DataFrame(
                {
                    "table": name,
                    SOURCE_ROW: frame[SOURCE_ROW].to_numpy(),
                    SOURCE_FILE: pd.Categorical.from_codes(code_of[codes], dtype=files),
                    SOURCE_LINE: frame[SOURCE_LINE].to_numpy(),
                    "quarantined": frame[SOURCE_ROW].isin(bad).to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def file_summary(
    raw: dict[str, RawTable], validation: Validation, top: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summarise the validation per source file.

    Parameters
    ----------
    raw : dict of str to RawTable
        The raw tables as read (with their files and provenance).
    validation : Validation
        Their validation.
    top : int
        Number of reasons kept per file, most frequent first.

    Returns
    -------
    summary : pandas.DataFrame
        One row per file: ``file, kind, source, encoding, rows_read, rows_valid,
        rows_quarantined, rows_unused, cells_blanked, blank_lines, sha256`` (rows read = valid
        + quarantined + not used; ``cells_blanked`` score cells of valid rows were blanked).
    reasons : pandas.DataFrame
        ``file, check, column, rows, rule``: quarantined lines per rule broken, up to ``top``
        per file.

    Raises
    ------
    RuntimeError
        When a file's rows do not add up (a programming error).
    """
    lines = _lines(raw, validation)
    # the distinct (file, line) pairs made into rows, and those with a quarantined row
    file_code = lines[SOURCE_FILE].cat.codes.to_numpy().astype(np.int64)
    line = lines[SOURCE_LINE].to_numpy(dtype=np.int64)
    pair, first = np.unique(file_code * (int(line.max(initial=0)) + 1) + line, return_inverse=True)
    bad = np.bincount(first, weights=lines["quarantined"].to_numpy(), minlength=pair.size) > 0
    pair_file = pair // (int(line.max(initial=0)) + 1)
    n_files = len(lines[SOURCE_FILE].cat.categories)
    used = np.bincount(pair_file, minlength=n_files)
    quarantined = np.bincount(pair_file, weights=bad, minlength=n_files)
    index = {label: k for k, label in enumerate(lines[SOURCE_FILE].cat.categories)}
    blanked = blanked_cells(raw, validation)[SOURCE_FILE].value_counts()
    records = []
    for file in source_files(raw):
        n_used = int(used[index[file.label]])
        n_bad = int(quarantined[index[file.label]])
        records.append(
            {
                "file": file.label,
                "kind": file.kind,
                "source": file.source,
                "encoding": file.encoding,
                "rows_read": file.rows,
                "rows_valid": n_used - n_bad,
                "rows_quarantined": n_bad,
                "rows_unused": file.rows - n_used,
                "cells_blanked": int(blanked.get(file.label, 0)),
                "blank_lines": file.blank_lines,
                "sha256": file.sha256,
            }
        )
    summary = pd.DataFrame(records, columns=SUMMARY_COLUMNS)
    if (summary["rows_unused"] < 0).any():
        raise RuntimeError(f"per-file accounting does not add up:\n{summary}")
    failures = validation.failures[["table", SOURCE_ROW, "column", "check"]]
    located = failures.merge(lines, on=["table", SOURCE_ROW], how="inner")
    if located.empty:
        return summary, pd.DataFrame(columns=REASON_COLUMNS)
    located[SOURCE_FILE] = located[SOURCE_FILE].astype("str")  # (sorted as text below)
    reasons = (
        located.groupby([SOURCE_FILE, "check", "column"], sort=True)[SOURCE_LINE]
        .nunique()
        .rename("rows")
        .reset_index()
        .rename(columns={SOURCE_FILE: "file"})
        .sort_values(["file", "rows", "check"], ascending=[True, False, True], kind="stable")
    )
    reasons = reasons.groupby("file", sort=False).head(top).reset_index(drop=True)
    reasons["rule"] = [
        rule_text(c, col) for c, col in zip(reasons["check"], reasons["column"], strict=True)
    ]
    return summary, reasons[REASON_COLUMNS]


def patients_of_two_sources(raw: dict[str, RawTable], validation: Validation) -> list[str]:
    """Say when patients have a row from two sources (every copy is quarantined as a duplicate).

    The likely cause is a visit sheet or wide file giving the patients beside a patient list
    (fixed by its ``tables``), or two clinics numbering their patients alike (``id_prefix``);
    one sentence naming the files and what to do, or nothing.
    """
    failures = validation.failures
    twice = failures.loc[
        (failures["table"] == "patients") & (failures["check"] == "duplicate_key"), SOURCE_ROW
    ]
    if twice.empty:
        return []
    ids = validation.tables["patients"].quarantine.set_index(SOURCE_ROW)[PATIENT_ID]
    lines = raw["patients"].provenance()
    lines = lines[lines[SOURCE_ROW].isin(twice)]
    source_of = {f.label: f.source for f in source_files(raw)}
    rows = pd.DataFrame(
        {
            PATIENT_ID: lines[SOURCE_ROW].map(ids).to_numpy(),
            "source": lines[SOURCE_FILE].astype("str").map(source_of).to_numpy(),
            SOURCE_FILE: lines[SOURCE_FILE].astype("str").to_numpy(),
        }
    )
    sources = rows.groupby(PATIENT_ID, sort=False)["source"].nunique()
    shared = sources.index[sources > 1]
    if shared.empty:
        return []
    first = rows[rows[PATIENT_ID] == shared[0]]
    files = " and ".join(dict.fromkeys(first[SOURCE_FILE]))
    return [
        f"{len(shared)} patient(s) (such as '{shared[0]}') have a row from two sources ("
        f"{files}), and every copy is quarantined as a duplicate: if one file lists the "
        f"patients, give the other source tables = [...] without the patients; if they are "
        f"different patients, give one source an id_prefix (docs/ingestion.md)"
    ]


def summary_json(summary: pd.DataFrame, reasons: pd.DataFrame) -> dict:
    """Return the per-file summary as one JSON-ready object, reasons nested per file."""
    files = []
    for record in summary.to_dict("records"):
        mine = reasons[reasons["file"] == record["file"]]
        record = {
            k: (int(v) if k.startswith(("rows", "blank", "source", "cells")) else v)
            for k, v in record.items()
        }
        record["reasons"] = [
            {"check": r.check, "column": r.column, "rows": int(r.rows), "rule": r.rule}
            for r in mine.itertuples(index=False)
        ]
        files.append(record)
    return {"files": files}


def summary_lines(summary: pd.DataFrame, reasons: pd.DataFrame, shown: int = 3) -> list[str]:
    """Return the per-file summary as printed by ``outcomes validate``.

    Reasons are worded as the data dictionary words the rules (``nrs is above the maximum
    10``), never by the name of the check that failed (``less_than_or_equal_to(10)``); the check
    names stay in ``summary.csv`` and the quarantine files, for programs.
    """
    width = max([len(f) for f in summary["file"]] + [4])
    out = ["Source files (rows read = valid + quarantined + not used):"]
    for row in summary.itertuples(index=False):
        line = (
            f"  {row.file:<{width}} {row.rows_read:>7} read = {row.rows_valid:>7} valid "
            f"+ {row.rows_quarantined:>5} quarantined"
        )
        if row.rows_unused:
            line += f" + {row.rows_unused} not used"
        out.append(line)
        for reason in reasons[reasons["file"] == row.file].head(shown).itertuples(index=False):
            out.append(f"  {'':<{width}} {reason.rows:>7} x {reason.rule}")
        if row.cells_blanked:
            out.append(
                f"  {'':<{width}} {row.cells_blanked:>7} score cell(s) blanked, the rest of "
                "their rows kept"
            )
    return out
