"""One unreadable score cell blanks that cell, not its assessment (issue 15, shape 6).

The rule (docs/ingestion.md, "One unreadable cell"): a score cell (NRS, VAS, ODI, an ODI
section, a study's own outcome) that does not parse or lies outside its range is blanked and the
rest of the assessment kept, when it is the row's only kind of problem and another score of the
row is left; the cell is recorded with its file, line, column, value and reason. Identity, key
and date cells stay row-fatal, and an assessment with no score left is quarantined whole.
"""

from __future__ import annotations

import pandas as pd
from command import outcomes
from factories import append_rows, write_config, write_study

from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.validate.quality import BLANKED_COLUMNS, blanked_cells, file_summary, summary_lines
from pipeline.validate.study import validate_study

SECTIONS = "," * 9  # odi_q2 ... odi_q10 left empty


def _validate(tmp_path, *rows, ranges=None, extra=None):
    paths = write_study(tmp_path, assessments=append_rows("assessments", *rows))
    raw = read_raw_tables(paths, extra)
    return raw, validate_study(raw, ranges)


def _row(validation, line: int) -> pd.Series:
    valid = validation.valid("assessments")
    return valid.loc[valid["source_row"] == line].iloc[0]


def test_an_unreadable_score_is_blanked_and_the_other_scores_kept(tmp_path):
    _, v = _validate(
        tmp_path,
        f"P1,3,2025-01-27,vier,50,,{SECTIONS}",  # line 8: NRS a word, VAS readable
        f"P2,2,2025-01-28,11,,,3{SECTIONS}",  # line 9: NRS 11, ODI section 1 readable
    )
    assert v.tables["assessments"].quarantine.empty
    first, second = _row(v, 8), _row(v, 9)
    assert pd.isna(first["nrs"]) and first["vas_mm"] == 50
    assert pd.isna(second["nrs"]) and second["odi_q1"] == 3
    cells = v.tables["assessments"].blanked
    assert cells[["source_row", "column", "check", "value"]].to_numpy().tolist() == [
        [8, "nrs", "type:integer", "vier"],
        [9, "nrs", "less_than_or_equal_to(10)", "11"],
    ]
    assert list(cells["reason"]) == [
        "nrs = 'vier' is not a whole number",
        "nrs = 11 is above the maximum 10",
    ]
    assert v.failures.empty  # a blanked cell is no reason for quarantine
    acc = v.accounting.set_index("table")
    assert acc.loc["assessments", "raw_rows"] == 8 == acc.loc["assessments", "processed_rows"]
    assert acc.loc["assessments", "quarantined_rows"] == 0
    assert acc.loc["assessments", "blanked_cells"] == 2 == v.blanked_cells


def test_the_blanked_cells_are_located_in_their_file(tmp_path):
    raw, v = _validate(tmp_path, f"P1,3,2025-01-27,4,140,,{SECTIONS}")
    located = blanked_cells(raw, v)
    assert list(located.columns) == BLANKED_COLUMNS
    cell = located.iloc[0]
    assert (cell["source_file"], cell["source_line"]) == ("assessments.csv", 8)
    assert (cell["patient_id"], cell["visit"], cell["column"], cell["value"]) == (
        "P1",
        3,
        "vas_mm",
        "140",
    )
    assert cell["reason"] == "vas_mm = 140 is above the maximum 100"
    summary, reasons = file_summary(raw, v)
    mine = summary.set_index("file").loc["assessments.csv"]
    assert (mine["rows_read"], mine["rows_valid"], mine["rows_quarantined"]) == (7, 7, 0)
    assert mine["cells_blanked"] == 1 and reasons.empty
    assert "1 score cell(s) blanked, the rest of their rows kept" in "\n".join(
        summary_lines(summary, reasons)
    )


def test_an_assessment_with_no_readable_score_is_quarantined_whole(tmp_path):
    _, v = _validate(tmp_path, f"P1,3,2025-01-27,vier,140,,{SECTIONS}")
    quarantine = v.tables["assessments"].quarantine
    assert list(quarantine["source_row"]) == [8]
    assert quarantine.iloc[0]["failed_columns"] == "nrs; vas_mm"
    assert v.tables["assessments"].blanked.empty
    assert v.accounting.set_index("table").loc["assessments", "blanked_cells"] == 0


def test_identity_key_and_date_cells_stay_row_fatal(tmp_path):
    rows = {
        f"P1,x,2025-01-27,vier,50,,{SECTIONS}": "visit",  # the key
        f"P1,3,2025-02-30,vier,50,,{SECTIONS}": "assessment_date",  # the date
        f"P9,3,2025-01-27,vier,50,,{SECTIONS}": "patient_id",  # an unknown patient
        f"P1,1,2025-01-27,vier,50,,{SECTIONS}": "patient_id/visit",  # a key written twice
    }
    for k, (row, column) in enumerate(rows.items()):
        _, v = _validate(tmp_path / str(k), row)
        quarantine = v.tables["assessments"].quarantine
        mine = quarantine[quarantine["source_row"] == 8].iloc[0]
        assert column in mine["failed_columns"] and "nrs" in mine["failed_columns"], row
        assert "nrs = 'vier' is not a whole number" in mine["reason"]
        assert v.tables["assessments"].blanked.empty, row


def test_the_raw_table_is_not_changed_by_blanking(tmp_path):
    # a regular file is read straight into its types; blanking must not write into it
    raw, v = _validate(tmp_path, f"P1,3,2025-01-27,11,50,,{SECTIONS}")
    typed = raw["assessments"].typed
    assert typed is not None
    assert typed.loc[typed["source_row"] == 8, "nrs"].iloc[0] == 11
    assert pd.isna(_row(v, 8)["nrs"])


def test_a_study_outcome_is_a_score_and_only_the_study_outcomes_keep_a_row(tmp_path):
    ranges = {"nrs": (0, 10), "rmdq": (0, 24)}
    assessments = write_study(tmp_path).get("assessments").read_text().splitlines()
    header = assessments[0] + ",rmdq"
    body = [line + ",5" for line in assessments[1:]]
    text = "\n".join([header, *body, f"P1,3,2025-01-27,4,,,{SECTIONS},30", ""])
    paths = write_study(tmp_path / "own", assessments=text)
    extra = {"assessments": {"rmdq": "number"}}
    v = validate_study(read_raw_tables(paths, extra), ranges)
    assert pd.isna(_row(v, 8)["rmdq"]) and _row(v, 8)["nrs"] == 4
    assert list(v.tables["assessments"].blanked["column"]) == ["rmdq"]
    # the same cell beside a VAS only: VAS is not one of this study's outcomes, so no outcome
    # is left and the row is quarantined
    text = "\n".join([header, *body, f"P1,3,2025-01-27,,50,,{SECTIONS},30", ""])
    paths = write_study(tmp_path / "vas", assessments=text)
    v = validate_study(read_raw_tables(paths, extra), ranges)
    assert list(v.tables["assessments"].quarantine["source_row"]) == [8]


def test_validate_writes_the_blanked_cells_and_exits_1(tmp_path):
    inputs = write_study(
        tmp_path / "raw",
        assessments=append_rows("assessments", f"P1,3,2025-01-27,4,abc,,{SECTIONS}"),
    )
    config = write_config(tmp_path, inputs, privacy="demo_key = true")
    result = outcomes("validate", "--config", config)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "1 unreadable or out-of-range score cell(s) blanked" in result.stdout
    written = pd.read_csv(tmp_path / "processed" / "quarantine" / "blanked_cells.csv", dtype=str)
    located = written[["source_file", "source_line", "column", "value", "reason"]]
    assert located.to_numpy().tolist() == [
        ["assessments.csv", "8", "vas_mm", "abc", "vas_mm = 'abc' is not a number"]
    ]
    accounting = pd.read_csv(tmp_path / "processed" / "row_accounting.csv").set_index("table")
    assert accounting.loc["assessments", "blanked_cells"] == 1
    assert accounting.loc["assessments", "processed_rows"] == 7
