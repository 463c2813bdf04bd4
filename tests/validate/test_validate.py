import threading

from factories import append_rows, write_study

import pipeline.validate.study as study
from pipeline.ingest.raw_tables import read_raw_tables, sha256_of
from pipeline.validate.study import validate_study


def _validate(tmp_path, **overrides):
    paths = write_study(tmp_path, **overrides)
    return validate_study(read_raw_tables(paths))


def _only_failure(validation, table):
    failures = validation.failures[validation.failures["table"] == table]
    assert len(failures) == 1, failures
    return failures.iloc[0]


def test_good_rows_pass_and_are_typed(tmp_path):
    v = _validate(tmp_path)
    assert v.quarantined_rows == 0
    assert len(v.valid("patients")) == 3 and len(v.valid("sessions")) == 6
    assessments = v.valid("assessments")
    assert str(assessments["nrs"].dtype) == "Int64"
    assert str(assessments["assessment_date"].dtype).startswith("datetime64")
    assert v.valid("patients")["anticoagulants"].tolist() == [False, True, False]


def test_accounting_balances_for_every_table(tmp_path):
    v = _validate(
        tmp_path,
        patients=append_rows("patients", "P4,,2025-01-01,30,male,4,no,no"),
        assessments=append_rows("assessments", "P1,3,2025-01-27,11,50,,,,,,,,,,,"),
    )
    acc = v.accounting.set_index("table")
    assert (acc["raw_rows"] == acc["processed_rows"] + acc["quarantined_rows"]).all()
    assert acc.loc["patients", "quarantined_rows"] == 1
    # NRS 11 beside a readable VAS: the cell is blanked and counted, the assessment kept
    assert acc.loc["assessments", "quarantined_rows"] == 0
    assert acc.loc["assessments", "blanked_cells"] == 1


def test_patient_rules(tmp_path):
    cases = {
        "P4,,2025-01-01,30,male,4,no,no": ("site", "not_nullable"),
        "P4,A,2025-02-30,30,male,4,no,no": ("enrolment_date", "type:date"),
        "P4,A,2025-01-01,130,male,4,no,no": ("age", "less_than_or_equal_to(110)"),
        "P4,A,2025-01-01,30,man,4,no,no": ("sex", "isin(('female', 'male', 'other'))"),
        "P4,A,2025-01-01,30,male,4,maybe,no": ("anticoagulants", "type:yes/no"),
        "P4,A,2025-01-01,30.5,male,4,no,no": ("age", "type:integer"),
    }
    for k, (row, (column, check)) in enumerate(cases.items()):
        failure = _only_failure(
            _validate(tmp_path / str(k), patients=append_rows("patients", row)), "patients"
        )
        assert (failure["column"], failure["check"]) == (column, check), row
        assert failure["source_row"] == 5


def test_session_rules(tmp_path):
    cases = {
        "P1,3,2025-01-20,medium,no,0,none,": ("depth", "isin(('superficial', 'deep'))"),
        "P1,3,2025-01-20,deep,no,2,none,": (
            "",
            "twitch must agree with ltr_count (no twitch "
            "with a count above 0, or twitch with a count "
            "of 0)",
        ),
        "P1,3,2025-01-20,deep,,,none,": ("", "twitch or ltr_count must be given"),
        "P1,3,2025-01-20,deep,no,0,soreness,": (
            "",
            "ae_severity is required when an adverse "
            "event is recorded, and must be empty when "
            "adverse_event is 'none'",
        ),
        "P9,1,2025-01-20,deep,no,0,none,": ("patient_id", "unknown_patient"),
        "P1,3,2025-01-01,deep,no,0,none,": ("session_date", "date_before_enrolment"),
        "P1,0,2025-01-20,deep,no,0,none,": ("session_number", "greater_than_or_equal_to(1)"),
    }
    for k, (row, (column, check)) in enumerate(cases.items()):
        failure = _only_failure(
            _validate(tmp_path / str(k), sessions=append_rows("sessions", row)), "sessions"
        )
        assert (failure["column"], failure["check"]) == (column, check), row


def test_assessment_rules(tmp_path):
    blank_items = "," * 9
    cases = {
        f"P1,3,2025-01-27,11,,,{blank_items}": ("nrs", "less_than_or_equal_to(10)"),
        f"P1,3,2025-01-27,,140,,{blank_items}": ("vas_mm", "less_than_or_equal_to(100)"),
        f"P1,3,2025-01-27,,,,6{blank_items}": ("odi_q1", "less_than_or_equal_to(5)"),
        f"P1,3,2025-01-27,4.5,,,{blank_items}": ("nrs", "type:integer"),
        f"P1,3,2025-01-27,,abc,,{blank_items}": ("vas_mm", "type:number"),
        f"P1,3,2025-01-27,,,,{blank_items}": (
            "",
            "no outcome recorded (nrs, vas_mm, odi or an ODI item)",
        ),
        f"P1,3,2024-12-27,5,,,{blank_items}": ("assessment_date", "date_before_enrolment"),
        f"P1,-1,2025-01-27,5,,,{blank_items}": ("visit", "greater_than_or_equal_to(0)"),
    }
    for k, (row, (column, check)) in enumerate(cases.items()):
        v = _validate(tmp_path / str(k), assessments=append_rows("assessments", row))
        failure = _only_failure(v, "assessments")
        assert (failure["column"], failure["check"]) == (column, check), row


def test_every_copy_of_a_duplicated_key_is_quarantined(tmp_path):
    v = _validate(
        tmp_path, assessments=append_rows("assessments", "P1,1,2025-01-13,6,60" + "," * 11)
    )
    q = v.tables["assessments"].quarantine
    assert sorted(q["source_row"]) == [3, 8]
    assert set(q["failed_checks"]) == {"duplicate_key"}


def test_rows_of_a_quarantined_patient_follow_it(tmp_path):
    patients = append_rows("patients").replace("P3,Riverside", "P3,")
    v = _validate(tmp_path, patients=patients)
    assert set(v.tables["sessions"].quarantine["failed_checks"]) == {"quarantined_patient"}
    assert set(v.tables["assessments"].quarantine["patient_id"]) == {"P3"}


def test_quarantine_keeps_the_raw_text_and_every_reason(tmp_path):
    row = "P1,3,2025-01-27,11,abc,,6" + "," * 9
    v = _validate(tmp_path, assessments=append_rows("assessments", row))
    q = v.tables["assessments"].quarantine.iloc[0]
    assert q["vas_mm"] == "abc" and q["nrs"] == "11"  # as written, not parsed
    assert q["failed_columns"] == "nrs; odi_q1; vas_mm"
    assert "nrs = 11 is above the maximum 10" in q["reason"]
    assert "vas_mm = 'abc' is not a number" in q["reason"]


def test_raw_files_are_not_modified(tmp_path):
    paths = write_study(tmp_path, sessions=append_rows("sessions", "P9,1,2025-01-20,deep,no,0,,"))
    before = {k: sha256_of(p) for k, p in paths.items()}
    validate_study(read_raw_tables(paths))
    assert before == {k: sha256_of(p) for k, p in paths.items()}


def test_visits_and_sessions_dated_out_of_order_are_quarantined_in_pairs(tmp_path):
    # P1's visit 2 (2025-01-20) is moved before visit 1 (2025-01-13); P2's session 3 before 2
    assessments = append_rows("assessments").replace("P1,2,2025-01-20", "P1,2,2025-01-10")
    sessions = append_rows("sessions").replace("P2,3,2025-01-21", "P2,3,2025-01-12")
    v = _validate(tmp_path, assessments=assessments, sessions=sessions)
    failures = v.failures[v.failures["check"] == "out_of_order"]
    assert sorted(failures[failures["table"] == "assessments"]["source_row"]) == [3, 4]
    assert sorted(failures[failures["table"] == "sessions"]["source_row"]) == [5, 6]
    reasons = set(failures["reason"])
    assert (
        "visit 2 dated 2025-01-10 is earlier than a lower-numbered visit of this patient "
        "(2025-01-13)" in reasons
    )
    assert (
        "session 2 dated 2025-01-14 is later than a higher-numbered session of this "
        "patient (2025-01-12)" in reasons
    )


def test_rows_failing_another_rule_do_not_make_others_out_of_order(tmp_path):
    # a session dated before enrolment is quarantined for that alone, not its neighbours
    v = _validate(tmp_path, sessions=append_rows("sessions", "P1,3,2025-01-01,deep,no,0,none,"))
    assert set(v.failures["check"]) == {"date_before_enrolment"}


def test_an_error_in_the_patients_checks_reaches_the_caller_while_the_linked_tables_wait(
    tmp_path, monkeypatch
):
    # Sessions and assessments are checked beside the patients and wait for their index. An
    # error in the patients' checks, before the index is known or after it (in splitting the
    # table), must end the validation with that error, never leave the linked tables waiting.
    raw = read_raw_tables(write_study(tmp_path))
    split = study._split

    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    def split_broken_for_patients(raw_table, *args, **kwargs):
        if raw_table.name == "patients":  # (the index is set by then)
            broken()
        return split(raw_table, *args, **kwargs)

    faults = {
        "PatientIndex.of": (study.PatientIndex, "of", classmethod(broken)),
        "_split": (study, "_split", split_broken_for_patients),
    }
    for step, (owner, name, fault) in faults.items():
        outcome = {}

        def run(result=outcome):
            try:
                validate_study(raw)
            except RuntimeError as exc:
                result["error"] = str(exc)

        with monkeypatch.context() as patch:
            patch.setattr(owner, name, fault)
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            worker.join(timeout=60)
        assert not worker.is_alive(), f"validation still waiting after {step} failed"
        assert outcome == {"error": "broken on purpose"}, step
    # (and without the fault, the same tables validate)
    assert validate_study(raw).quarantined_rows == 0
