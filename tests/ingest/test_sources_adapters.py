"""Each adapter, the [[sources]] configuration and the per-source-file summary."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import outputs_and_mcid, write_config, write_study

from pipeline.cli import main
from pipeline.config.settings import load_config
from pipeline.errors import ConfigError, InputFileError
from pipeline.ingest.adapters.redcap import _ticked_labels
from pipeline.ingest.adapters.visit_sheet import patients_piece
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import SOURCE_DETAIL, SOURCE_FILE, SOURCE_LINE
from pipeline.validate.quality import (
    file_summary,
    patients_of_two_sources,
    summary_json,
    summary_lines,
)
from pipeline.validate.study import validate_study

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "raw" / "examples"
TAIL = outputs_and_mcid("out", "rep")


def project(tmp_path, sources: str, files: dict[str, str] | None = None) -> Path:
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    config = tmp_path / "analysis.toml"
    config.write_text(sources + TAIL)
    return config


def ingest(config: Path):
    raw = read_sources(load_config(config).sources)
    return raw, validate_study(raw)


VISITS = """\
patient_id,site,enrolment_date,age,symptom_weeks,visit_date,session_number,depth,twitch,visit,nrs
P1,A,2025-01-06,44,3,2025-01-06,1,deep,yes,0,8
P1,,,,,2025-01-13,2,deep,no,,
P1,,,,,2025-01-20,,,,1,6
P2,B,2025-01-07,61,30,2025-01-07,1,superficial,no,0,6
P-2,B,2025-01-07,62,30,2025-01-14,2,superficial,no,1,5
P3,B,2025-01-08,50,8,,,,,,
"""
VISIT_SOURCE = '[[sources]]\nkind = "visit_sheet"\nfiles = ["visits.csv"]\n'


def test_visit_sheet_rows_make_sessions_assessments_and_merged_patients(tmp_path):
    raw, v = ingest(project(tmp_path, VISIT_SOURCE, {"visits.csv": VISITS}))
    patients = raw["patients"].frame.set_index("patient_id")
    assert patients.loc["P1", "age"] == "44"  # details from the first row fill the others
    assert patients.loc["P1", SOURCE_DETAIL] == "merged from lines 2, 3, 4"
    assert len(raw["sessions"].frame) == 4 and len(raw["assessments"].frame) == 4
    # P2 and P-2 are one patient whose age differs: the patient and all its rows are quarantined
    problem = raw["patients"].problems.iloc[0]
    assert problem["reason"] == "age differs between the lines of patient 'P2' (61 / 62)"
    assert set(v.tables["sessions"].quarantine["patient_id"]) == {"P2"}
    assert set(v.valid("patients")["patient_id"]) == {"P1", "P3"}
    summary, reasons = file_summary(raw, v)
    row = summary.iloc[0]
    assert (row.rows_read, row.rows_valid, row.rows_quarantined, row.rows_unused) == (6, 4, 2, 0)
    assert "conflicting_values" in set(reasons["check"])


def test_a_patient_merges_its_lines_wherever_they_stand():
    """A patient's lines need not follow each other: each patient keeps its lines in file order
    (the first gives its line, all of them its lineage), patients in order of first line, and
    a row without an id stays a patient of its own."""
    ids = ["A", "B", "A", None, "B", "A", "C"] + ["D"] * 10
    frame = pd.DataFrame(
        {
            SOURCE_FILE: "visits.csv",
            SOURCE_LINE: np.arange(2, 2 + len(ids)),
            SOURCE_DETAIL: None,
            "patient_id": ids,
            "age": ["40", None, None, "50", "61", None, "33"] + [None] * 10,
        },
        dtype="str",
    ).astype({SOURCE_LINE: "int64"})
    piece = patients_piece(frame, "lines", "YYYY-MM-DD", ("age",))
    out = piece.frame
    assert out["patient_id"].dropna().tolist() == ["A", "B", "C", "D"]
    assert out["patient_id"].isna().tolist() == [False, False, True, False, False]
    assert out[SOURCE_LINE].tolist() == [2, 3, 5, 8, 9]
    assert out["age"].tolist()[:2] == ["40", "61"]
    assert out[SOURCE_DETAIL].tolist()[:2] == [
        "merged from lines 2, 4, 7",
        "merged from lines 3, 6",
    ]
    assert out[SOURCE_DETAIL].isna().tolist()[2:4] == [True, True]
    assert out[SOURCE_DETAIL].iloc[4] == (
        "merged from lines 9, 10, 11, 12, 13, 14, 15, 16, ... (10 in all)"
    )
    assert piece.lineage["row"].tolist() == [0, 0, 0, 1, 1, 2, 3] + [4] * 10
    assert piece.lineage[SOURCE_LINE].tolist() == [2, 4, 7, 3, 6, 5, 8, *range(9, 19)]
    empty = patients_piece(frame.iloc[:0], "lines", "YYYY-MM-DD", ("age",))
    assert empty.frame.empty and empty.lineage.empty


def test_every_patient_whose_rows_disagree_is_reported_with_every_value():
    """Random visit-sheet rows: a patient is reported for a detail exactly when its rows hold
    two different values of it (missing cells do not count), with the values in line order,
    and its lines are described as a patient's rows read one by one would describe them."""
    rng = np.random.default_rng(11)
    n = 600
    ids = rng.choice([*(f"P{k:02d}" for k in range(60)), None], size=n)
    frame = pd.DataFrame(
        {
            SOURCE_FILE: "visits.csv",
            SOURCE_LINE: np.arange(2, 2 + n),
            SOURCE_DETAIL: None,
            "patient_id": ids,
            "age": rng.choice(["40", "41", None, None, None], size=n),
            "sex": rng.choice(["female", "male", *[None] * 14], size=n),
        },
        dtype="str",
    ).astype({SOURCE_LINE: "int64"})
    piece = patients_piece(frame, "rows", "YYYY-MM-DD", ("age", "sex"))
    reported = {
        (piece.frame["patient_id"].iloc[p.row], p.column): p.value
        for p in piece.problems.itertuples()
    }
    expected = {}
    for patient, rows in frame.dropna(subset=["patient_id"]).groupby("patient_id"):
        for column in ("age", "sex"):
            values = list(dict.fromkeys(rows[column].dropna()))
            if len(values) > 1:
                expected[(patient, column)] = " / ".join(values)
    # (the seed gives 49 patients of two ages and 14 of two sexes)
    assert sum(c == "age" for _, c in expected) > 40 and sum(c == "sex" for _, c in expected) > 10
    assert reported == expected
    for row in piece.frame.itertuples():
        lines = piece.lineage.loc[piece.lineage["row"] == row.Index, SOURCE_LINE].tolist()
        detail = getattr(row, SOURCE_DETAIL)
        if len(lines) == 1:
            assert pd.isna(detail)
        else:
            more = f", ... ({len(lines)} in all)" if len(lines) > 8 else ""
            assert detail == f"merged from rows {', '.join(map(str, lines[:8]))}{more}"


def test_checkbox_labels_are_joined_per_row_as_ticked():
    """A REDCap checkbox field's ticked choices are joined row by row, in the choices' order (an
    unlabelled choice is left out); a row with none ticked is missing."""
    rng = np.random.default_rng(7)
    choices = ["Soreness", "Bruising", "", "Fatigue"]
    ticked = rng.random((300, 4)) < 0.3
    out = _ticked_labels(choices, ticked, "; ", pd.RangeIndex(5, 305))
    expected = [
        "; ".join(c for c, on in zip(choices, row, strict=True) if on and c) or None
        for row in ticked
    ]
    assert [None if pd.isna(v) else v for v in out] == expected
    assert out.index.equals(pd.RangeIndex(5, 305)) and str(out.dtype) == "str"
    assert _ticked_labels(choices, np.zeros((0, 4), bool), "; ", pd.RangeIndex(0)).empty


def test_merged_excel_cells_are_read_in_their_first_cell(tmp_path):
    # docs/ingestion.md: a merged range's value is in its top-left cell, the others are empty;
    # patient details merged down a patient's rows count as given on the first row
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Visits"
    sheet.append(VISITS.splitlines()[0].split(","))
    sheet.append(["P1", "A", "2025-01-06", 44, 3, "2025-01-06", 1, "deep", "yes", 0, 8])
    sheet.append(["P1", None, None, None, None, "2025-01-13", 2, "deep", "no", 1, 6])
    sheet.append(["P2", "B", "2025-01-07", 61, 30, "2025-01-07", 1, "superficial", "no", 0, 6])
    for column in "BCDE":  # site, enrolment date, age, symptom weeks merged over P1's rows
        sheet.merge_cells(f"{column}2:{column}3")
    book.save(tmp_path / "visits.xlsx")
    source = '[[sources]]\nkind = "visit_sheet"\nfiles = ["visits.xlsx"]\n'
    raw, v = ingest(project(tmp_path, source))
    assert v.quarantined_rows == 0
    patients = v.valid("patients").set_index("patient_id")
    assert (patients.loc["P1", "site"], patients.loc["P1", "age"]) == ("A", 44)
    assert len(v.valid("sessions")) == 3 and len(v.valid("assessments")) == 3
    assert raw["patients"].frame.set_index("patient_id").loc["P1", SOURCE_DETAIL] == (
        "merged from rows 2, 3"  # rows of the sheet
    )


def test_wide_rows_per_time_point_with_dates_from_weeks(tmp_path):
    wide = (
        "id,site,enrolled,age,weeks,start,nrs_0,nrs_2,nrs_6,odi_6\n"
        "P1,A,2025-01-06,44,3,2025-01-07,8,,5,30\n"
        "P2,B,2025-01-07,61,30,2025-01-09,6,11,,\n"
    )
    sources = (
        '[[sources]]\nkind = "wide"\nfiles = ["wide.csv"]\n'
        '[sources.columns]\npatient_id = "id"\nenrolment_date = "enrolled"\n'
        'symptom_weeks = "weeks"\n'
        "[sources.assessments]\n"
        'points = { "0" = 0, "2" = 1, "6" = 2 }\nweeks = { "0" = 0, "2" = 2, "6" = 6 }\n'
        'date_from = "start"\ncolumns = { nrs = "nrs_{t}", odi = "odi_{t}" }\n'
        '[[sources]]\nkind = "canonical"\nsessions = "sessions.csv"\n'
    )
    sessions = "patient_id,session_number,session_date,depth,twitch\nP1,1,2025-01-07,deep,yes\n"
    raw, v = ingest(project(tmp_path, sources, {"wide.csv": wide, "sessions.csv": sessions}))
    frame = raw["assessments"].frame
    assert frame["assessment_date"].tolist() == [
        "2025-01-07",
        "2025-02-18",
        "2025-01-09",
        "2025-01-23",
    ]
    assert frame["visit"].tolist() == ["0", "2", "0", "1"]  # empty time points are not rows
    assert frame[SOURCE_DETAIL].tolist()[1] == "time point 6"
    assert frame[SOURCE_LINE].tolist() == [2, 2, 3, 3]
    bad = v.tables["assessments"].quarantine
    assert bad[[SOURCE_LINE, SOURCE_DETAIL]].to_numpy().tolist() == [[3, "time point 2"]]
    summary, _ = file_summary(raw, v)
    wide_row = summary.set_index("file").loc["wide.csv"]
    assert (wide_row.rows_read, wide_row.rows_valid, wide_row.rows_quarantined) == (2, 1, 1)
    bad_pattern = sources.replace('odi = "odi_{t}"', 'odi = "oswestry_{t}"')
    with pytest.raises(InputFileError, match="has no such column for any time point"):
        ingest(project(tmp_path, bad_pattern))


PATIENT_LIST = "Patient,Clinic,Enrolled,Age\nP1,A,2025-01-06,44\nP2,B,2025-01-07,61\n"
LIST_SOURCE = '[[sources]]\nkind = "canonical"\npatients = "patients.csv"\n'
LIST_COLUMNS = (
    '[sources.columns]\npatient_id = "Patient"\nsite = "Clinic"\nenrolment_date = "Enrolled"\n'
    'age = "Age"\n'
)


SHEET_VISITS = (
    "Patient;Date;Session;Depth;Twitch;Visit;NRS\n"
    "P1;2025-01-06;1;deep;yes;0;8\n"
    "P1;2025-01-13;2;deep;no;1;6\n"
    "p-2;2025-01-07;1;superficial;no;0;6\n"
    "P3;2025-01-08;1;deep;no;0;7\n"
)
SHEET_BESIDE_LIST = (
    '[[sources]]\nkind = "visit_sheet"\nfiles = ["visits.csv"]\n'
    'tables = ["sessions", "assessments"]\n[sources.columns]\npatient_id = "Patient"\n'
    'visit_date = "Date"\nsession_number = "Session"\ndepth = "Depth"\n'
    'twitch = "Twitch"\nvisit = "Visit"\nnrs = "NRS"\n'
)


def test_a_visit_sheet_beside_a_patient_list_leaves_the_patients_to_it(tmp_path):
    # Both would give each patient a row; `tables` lets the list give them alone. The sheet's
    # patient P3 is on no list: its rows are quarantined as of an unknown patient.
    sheet = SHEET_BESIDE_LIST
    files = {"visits.csv": SHEET_VISITS, "patients.csv": PATIENT_LIST}
    raw, v = ingest(project(tmp_path, sheet + LIST_SOURCE + LIST_COLUMNS, files))
    assert [label for label, _ in raw["patients"].file_digests()] == ["patients.csv"]
    assert v.valid("patients")["patient_id"].tolist() == ["P1", "P2"]
    assert v.valid("sessions")[["patient_id", "session_number"]].to_numpy().tolist() == [
        ["P1", 1],
        ["P1", 2],
        ["P2", 1],
    ]
    assert len(v.valid("assessments")) == 3
    assert set(v.failures["check"]) == {"unknown_patient"}
    summary, _ = file_summary(raw, v)
    sheet_row = summary.set_index("file").loc["visits.csv"]
    assert (sheet_row.rows_read, sheet_row.rows_valid, sheet_row.rows_quarantined) == (4, 3, 1)
    assert patients_of_two_sources(raw, v) == []
    # without `tables`, P1 and P2 have two rows each, every copy quarantined, and the summary
    # says why and what to do
    both = sheet.replace('tables = ["sessions", "assessments"]\n', 'site = "A"\n')
    raw, v = ingest(project(tmp_path, both + LIST_SOURCE + LIST_COLUMNS, files))
    assert v.valid("patients")["patient_id"].tolist() == ["P3"]
    (note,) = patients_of_two_sources(raw, v)
    assert note.startswith(
        "2 patient(s) (such as 'P1') have a row from two sources (visits.csv and patients.csv)"
    )
    # two rows of one patient in one source are duplicates too, but no such note
    twice = PATIENT_LIST + "P1,A,2025-01-06,44\n"
    raw, v = ingest(
        project(tmp_path, sheet + LIST_SOURCE + LIST_COLUMNS, {**files, "patients.csv": twice})
    )
    assert "P1" not in set(v.valid("patients")["patient_id"])
    assert patients_of_two_sources(raw, v) == []


def test_validate_and_preview_print_the_note_on_patients_of_two_sources(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("NEEDLING_PSEUDONYM_KEY", "a-secret-key-for-this-test-only-0123456789")
    both = SHEET_BESIDE_LIST.replace('tables = ["sessions", "assessments"]\n', 'site = "A"\n')
    files = {"visits.csv": SHEET_VISITS, "patients.csv": PATIENT_LIST}
    config = project(tmp_path, both + LIST_SOURCE + LIST_COLUMNS, files)
    note = "note: 2 patient(s) (such as 'P1') have a row from two sources"
    assert main(["preview", "--config", str(config)]) == 0
    assert note in capsys.readouterr().out
    assert main(["validate", "--config", str(config)]) == 1  # (rows quarantined)
    assert note in capsys.readouterr().out


def test_a_wide_file_beside_a_patient_list_reads_only_its_identifiers(tmp_path):
    wide = (  # its age is not read: the list has it
        "id,age,date_0,nrs_0,date_6,nrs_6\nP1,99,2025-01-06,8,2025-02-17,5\nP2,,2025-01-07,6,,\n"
    )
    sources = (
        '[[sources]]\nkind = "wide"\nfiles = ["wide.csv"]\ntables = ["assessments"]\n'
        '[sources.columns]\npatient_id = "id"\n'
        '[sources.assessments]\npoints = { "0" = 0, "6" = 1 }\n'
        'columns = { nrs = "nrs_{t}", assessment_date = "date_{t}" }\n'
        '[[sources]]\nkind = "canonical"\nsessions = "sessions.csv"\n'
    )
    sessions = "patient_id,session_number,session_date,depth,twitch\nP1,1,2025-01-07,deep,yes\n"
    files = {"wide.csv": wide, "patients.csv": PATIENT_LIST, "sessions.csv": sessions}
    raw, v = ingest(project(tmp_path, sources + LIST_SOURCE + LIST_COLUMNS, files))
    assert v.failures.empty, v.failures
    assert [label for label, _ in raw["patients"].file_digests()] == ["patients.csv"]
    assert v.valid("patients")["age"].tolist() == [44, 61]
    assert v.valid("assessments")[["patient_id", "visit", "nrs"]].to_numpy().tolist() == [
        ["P1", 0, 8],
        ["P1", 1, 5],
        ["P2", 0, 6],
    ]


def test_a_canonical_assessments_file_without_visits_numbers_them_by_date(tmp_path):
    scores = (
        "Patient,Date,NRS\n"
        "P1,2025-02-17,5\n"
        "P1,2025-02-03,7\n"
        "P2,2025-02-04,6\n"
        "P2,2025-02-04,4\n"  # two assessments of one day: one visit written twice, quarantined
        "P1,,3\n"  # no date: no visit number
    )
    sources = (
        LIST_SOURCE + LIST_COLUMNS + '[[sources]]\nkind = "canonical"\n'
        'assessments = "scores.csv"\nvisits = "by_date"\n'
        '[sources.columns]\npatient_id = "Patient"\nassessment_date = "Date"\nnrs = "NRS"\n'
        '[[sources]]\nkind = "canonical"\nsessions = "sessions.csv"\n'
    )
    sessions = "patient_id,session_number,session_date,depth,twitch\nP1,1,2025-02-03,deep,yes\n"
    files = {"patients.csv": PATIENT_LIST, "scores.csv": scores, "sessions.csv": sessions}
    raw, v = ingest(project(tmp_path, sources, files))
    assert raw["assessments"].typed is None  # (numbered from the normalised text)
    kept = v.valid("assessments")[["patient_id", "visit", "nrs"]]
    assert kept.to_numpy().tolist() == [["P1", 0, 7], ["P1", 1, 5]]
    assert set(v.failures["check"]) == {"duplicate_key", "undated_visit"}
    assert v.quarantined_rows == 3


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('tables = ["visits"]', "must list the tables this source gives, each once"),
        ("tables = []", "must list the tables this source gives, each once"),
        ('tables = ["sessions", "sessions"]', "must list the tables this source gives, each once"),
        (
            'tables = ["sessions", "assessments"]\nsite = "A"',
            "sets the patients' site, but this source gives no patients",
        ),
        (
            'tables = ["sessions", "assessments"]\n[sources.columns]\nage = "Age"',
            "maps age, a column of the patients table, which this source does not give",
        ),
        (
            'tables = ["patients", "sessions"]\n[sources.columns]\nnrs = "NRS"',
            "maps nrs, a column of the assessments table, which this source does not give",
        ),
        (
            'tables = ["assessments"]\n[sources.adverse_events]\nlist = "AE"',
            "describes the sessions' adverse events, but this source gives no sessions",
        ),
    ],
)
def test_tables_of_a_visit_sheet_are_checked_at_load(tmp_path, entry, message):
    config = project(tmp_path, VISIT_SOURCE + entry + "\n" + LIST_SOURCE)
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_tables_of_a_wide_file_may_only_leave_out_the_patients(tmp_path):
    sources = (
        '[[sources]]\nkind = "wide"\nfiles = ["wide.csv"]\ntables = ["sessions"]\n'
        '[sources.assessments]\npoints = { "0" = 0 }\n'
        'columns = { nrs = "nrs_{t}", assessment_date = "date_{t}" }\n'
    )
    with pytest.raises(ConfigError, match="a wide source gives the tables of its time-point"):
        load_config(project(tmp_path, sources + LIST_SOURCE))
    # row numbers as identifiers cannot match a patient list
    by_row = sources.replace('["sessions"]', '["assessments"]\npatient_id = "row"')
    with pytest.raises(ConfigError, match="row numbers cannot match its identifiers"):
        load_config(project(tmp_path, by_row + LIST_SOURCE))


DICTIONARY = (
    'Variable / Field Name,Form Name,Field Type,Field Label,"Choices, Calculations, OR Slider '
    'Labels"\n'
    "record_id,patient,text,Record ID,\n"
    "enrolment_date,patient,text,Enrolled,\nage,patient,text,Age,\n"
    "symptom_weeks,patient,text,Weeks,\n"
    'meds,patient,checkbox,Medication,"1, anticoagulant | 2, other"\n'
    "session_date,session,text,Date,\n"
    'depth,session,radio,Depth,"1, Oberflächlich | 2, Tief"\n'
    "twitch,session,yesno,Twitch,\n"
    'cointerv,session,checkbox,Co-interventions,"1, exercise | 2, manual therapy"\n'
    "assessment_date,outcomes,text,Date,\nnrs,outcomes,text,NRS,\n"
)
EXPORT = (
    "record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,"
    "redcap_data_access_group,enrolment_date,age,symptom_weeks,meds___1,meds___2,session_date,"
    "depth,twitch,cointerv___1,cointerv___2,assessment_date,nrs\n"
    "1,baseline_arm_2,,,north,2025-01-06,44,3,1,0,,,,,,2025-01-06,8\n"
    "1,treatment_arm_2,session,1,north,,,,,,2025-01-06,2,1,1,1,,\n"
    "1,treatment_arm_2,session,2,north,,,,,,2025-01-13,1,0,0,0,,\n"
    "1,week_2_arm_2,,,north,,,,,,,,,,,2025-01-20,6\n"
    "1,consent_arm_2,,,north,,,,,,,,,,,,\n"
)
REDCAP = (
    '[[sources]]\nkind = "redcap"\nfiles = ["export.csv"]\ndictionary = "dict.csv"\n'
    '[sources.instruments]\npatients = "patient"\nsessions = "session"\nassessments = "outcomes"\n'
    "[sources.events]\nbaseline = 0\nweek_2 = 1\n"
    '[sources.arms]\n"1" = "deep"\n"2" = "superficial"\n'
    '[sources.columns]\nsite = "redcap_data_access_group"\nanticoagulants = "meds___1"\n'
    'co_intervention = "cointerv"\n[sources.codes.depth]\n"Tief" = "deep"\n'
    '"1" = "superficial"\n'
)


def test_redcap_export_events_arms_repeats_and_checkboxes(tmp_path):
    raw, v = ingest(project(tmp_path, REDCAP, {"export.csv": EXPORT, "dict.csv": DICTIONARY}))
    assert v.quarantined_rows == 0, v.failures
    patient = v.valid("patients").iloc[0]
    assert (patient["patient_id"], patient["arm"], patient["anticoagulants"]) == (
        "1",
        "superficial",
        True,
    )
    sessions = v.valid("sessions")
    assert sessions["depth"].tolist() == ["deep", "superficial"]  # by label, and by code
    assert sessions["co_intervention"].tolist()[0] == "exercise; manual therapy"
    assert pd.isna(sessions["co_intervention"].tolist()[1])
    assert v.valid("assessments")["visit"].tolist() == [0, 1]
    assert raw["sessions"].frame[SOURCE_DETAIL].tolist()[0] == "event treatment_arm_2, session #1"
    summary, _ = file_summary(raw, v)
    assert summary.iloc[0][["rows_read", "rows_valid", "rows_unused"]].tolist() == [5, 4, 1]
    assert "1 not used" in "\n".join(summary_lines(*file_summary(raw, v)))


def test_redcap_errors_name_the_instrument_and_the_missing_visit(tmp_path):
    bad = REDCAP.replace('sessions = "session"', 'sessions = "treatment"')
    with pytest.raises(InputFileError, match="names 'treatment' for sessions, but the data dict"):
        ingest(project(tmp_path, bad, {"export.csv": EXPORT, "dict.csv": DICTIONARY}))
    classic = EXPORT.replace("redcap_event_name", "event")
    with pytest.raises(
        InputFileError, match=r"must map visit: export\.csv has no redcap_event_name"
    ):
        ingest(project(tmp_path, REDCAP, {"export.csv": classic, "dict.csv": DICTIONARY}))


def test_several_clinics_by_glob_with_a_site_per_file(tmp_path):
    patients = "patient_id,enrolment_date,age,symptom_weeks\nP1,2025-01-06,44,3\n"
    sessions = "patient_id,session_number,session_date,depth,twitch\nP1,1,2025-01-06,deep,yes\n"
    assessments = "patient_id,visit,assessment_date,nrs\nP1,0,2025-01-06,7\n"
    files = {}
    for clinic in ("north", "south"):
        prefix = "A" if clinic == "north" else "B"
        files[f"{clinic}/patients.csv"] = patients.replace("P1", prefix + "1")
        files[f"{clinic}/sessions.csv"] = sessions.replace("P1", prefix + "1")
        files[f"{clinic}/assessments.csv"] = assessments.replace("P1", prefix + "1")
    sources = (
        '[[sources]]\nkind = "canonical"\npatients = "*/patients.csv"\n'
        'sessions = "*/sessions.csv"\nassessments = "*/assessments.csv"\n'
        '[sources.sites]\n"north/patients.csv" = "Northside"\n"south/patients.csv" = "Southside"\n'
    )
    raw, v = ingest(project(tmp_path, sources, files))
    assert dict(
        zip(v.valid("patients")["patient_id"], v.valid("patients")["site"], strict=True)
    ) == {
        "A1": "Northside",
        "B1": "Southside",
    }
    assert raw["patients"].source_rows.tolist() == [1, 2]
    assert len(raw["patients"].sha256) == 64
    with pytest.raises(InputFileError, match=r"names no site for south/patients\.csv"):
        ingest(project(tmp_path, sources.replace('"south/patients.csv" = "Southside"\n', "")))


def test_clinics_numbering_patients_alike_are_kept_apart_by_an_id_prefix(tmp_path):
    files = {
        f"{clinic}/{name}.csv": text
        for clinic in ("north", "south")
        for name, text in (
            ("patients", "patient_id,enrolment_date,age,symptom_weeks\np-001,2025-01-06,44,3\n"),
            (
                "sessions",
                "patient_id,session_number,session_date,depth,twitch\nP001,1,2025-01-06,deep,yes\n",
            ),
            ("assessments", "patient_id,visit,assessment_date,nrs\nP001,0,2025-01-06,7\n"),
        )
    }
    entry = '[[sources]]\nkind = "canonical"\nsite = "{site}"\n{prefix}' + "".join(
        f'{name} = "{{clinic}}/{name}.csv"\n' for name in ("patients", "sessions", "assessments")
    )
    sources = entry.format(site="Northside", clinic="north", prefix='id_prefix = "N-"\n')
    sources += entry.format(site="Southside", clinic="south", prefix='id_prefix = "S-"\n')
    _, v = ingest(project(tmp_path, sources, files))
    assert v.quarantined_rows == 0
    assert v.valid("patients")["patient_id"].tolist() == ["N-P001", "S-P001"]
    assert v.valid("assessments")["patient_id"].tolist() == ["N-P001", "S-P001"]
    unprefixed = entry.format(site="Northside", clinic="north", prefix="")
    unprefixed += entry.format(site="Southside", clinic="south", prefix="")
    _, collided = ingest(project(tmp_path, unprefixed))
    assert set(collided.failures["check"]) == {"duplicate_key", "quarantined_patient"}


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ("", "[inputs] section is missing (or declare [[sources]])"),
        (VISIT_SOURCE + "id_prefix = 7\n", "[sources.1.id_prefix] must be text in quotes"),
        (VISIT_SOURCE + '[inputs]\npatients = "p.csv"\n', "[inputs] and [[sources]] are both"),
        ('[[sources]]\nkind = "wide"\nfiles = ["w.csv"]\n', "a wide source needs"),
        (VISIT_SOURCE + 'delimiter = ":"\n', "[sources.1.delimiter] must be one of"),
        (VISIT_SOURCE + 'encoding = "klingon"\n', "[sources.1.encoding] unknown encoding"),
        (VISIT_SOURCE + 'site = "A"\n[sources.sites]\n"a.csv" = "B"\n', "not both"),
        (VISIT_SOURCE + '[sources.codes.depth]\n"Tief" = "deep"\n"tief" = "deep"\n', "same code"),
        (VISIT_SOURCE + "header_row = 0\n", "[sources.1.header_row] must be between 1"),
        (
            '[[sources]]\nkind = "redcap"\nfiles = ["e.csv"]\ndictionary = "d.csv"\n',
            "[sources.1.instruments] must name the instrument of each table",
        ),
    ],
)
def test_source_configuration_errors_name_the_key(tmp_path, sources, message):
    with pytest.raises(ConfigError) as info:
        load_config(project(tmp_path, sources))
    assert message in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "analysis.toml"))


def test_inputs_form_is_one_legacy_source(tmp_path):
    config = load_config(write_config(tmp_path, write_study(tmp_path / "raw")))
    (legacy,) = config.sources
    assert legacy.legacy and legacy.kind == "canonical" and legacy.key() == "[inputs]"
    assert config.inputs.patients == tmp_path / "raw" / "patients.csv"


def test_summary_json_mirrors_the_table():
    raw, v = ingest(EXAMPLES / "visit_sheet" / "analysis.toml")
    summary, reasons = file_summary(raw, v)
    (entry,) = summary_json(summary, reasons)["files"]
    assert entry["file"] == "visits.csv" and entry["rows_read"] == summary.iloc[0]["rows_read"]
    assert entry["reasons"] == [] and entry["kind"] == "visit_sheet"


def test_a_code_mapped_to_nothing_is_missing(tmp_path):
    sheet = VISITS.replace(
        "P1,A,2025-01-06,44,3,2025-01-06,1,deep,yes,0,8",
        "P1,A,2025-01-06,44,3,2025-01-06,1,deep,yes,0,99",
    )
    sources = VISIT_SOURCE + '[sources.codes.nrs]\n"99" = ""\n'
    raw, _ = ingest(project(tmp_path, sources, {"visits.csv": sheet}))
    assert raw["assessments"].frame["nrs"].isna().tolist()[0]
