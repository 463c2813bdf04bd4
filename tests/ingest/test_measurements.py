"""Files of one line per score (``kind = "measurements"``): merging, conflicts, mistakes.

The committed example (data/raw/examples/measurements/) is checked against the canonical tables
in tests/demo/test_sources_examples.py; these tests cover what that example does not hold.
"""

import pytest
from factories import outputs_and_mcid

from pipeline.config.settings import load_config
from pipeline.errors import ConfigError, InputFileError
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import SOURCE_DETAIL, SOURCE_LINE
from pipeline.validate.quality import file_summary
from pipeline.validate.study import validate_study

PATIENTS = "patient_id,site,enrolment_date,age\nP1,A,2025-02-03,44\nP2,A,2025-02-04,61\n"
SESSIONS = (
    "patient_id,session_number,session_date,depth,twitch\n"
    "P1,1,2025-02-03,deep,yes\nP2,1,2025-02-04,superficial,no\n"
)
LIST = '[[sources]]\nkind = "canonical"\npatients = "patients.csv"\nsessions = "sessions.csv"\n'
SCORES = '[[sources]]\nkind = "measurements"\nfiles = ["scores.csv"]\ndecimal = ","\n'
COLUMNS = '[sources.columns]\npatient_id = "Patient"\nvisit = "Visit"\nassessment_date = "Date"\n'
MEASURES = (
    '[sources.units]\nvas_mm = "cm"\n'
    '[sources.measures]\ncolumn = "Instrument"\nvalue = "Score"\nignore = ["BMI"]\n'
    '[sources.measures.names]\nNRS = "nrs"\n"VAS (cm)" = "vas_mm"\nOswestry = "odi"\n'
)


def _ingest(tmp_path, scores: str, source: str = SCORES + COLUMNS + MEASURES):
    (tmp_path / "patients.csv").write_text(PATIENTS)
    (tmp_path / "sessions.csv").write_text(SESSIONS)
    (tmp_path / "scores.csv").write_text(scores)
    config = tmp_path / "analysis.toml"
    config.write_text(LIST + source + outputs_and_mcid("out", "rep"))
    raw = read_sources(load_config(config).sources)
    return raw, validate_study(raw)


def test_the_lines_of_a_visit_make_one_assessment_and_two_scores_of_one_are_quarantined(
    tmp_path,
):
    scores = (
        "Patient,Visit,Date,Instrument,Score\n"
        "P1,0,2025-02-03,NRS,7\n"  # line 2
        'P1,0,2025-02-03,bmi,"24,1"\n'  # an ignored measure (any case): not used
        "p-1,0,2025-02-03,  oswestry ,42\n"  # the same patient, measure matched loosely
        "P1,1,2025-02-17,NRS,5\n"
        'P1,1,2025-02-17,VAS (cm),"4,5"\n'  # cm and a decimal comma, read after merging
        "P2,0,2025-02-04,NRS,6\n"  # line 7
        "P2,0,2025-02-04,NRS,8\n"  # two NRS of one assessment: quarantined
        "P2,1,2025-02-18,NRS,3\n"
        "P2,1,2025-02-18,NRS,3\n"  # the same score twice: one value, kept
    )
    raw, v = _ingest(tmp_path, scores)
    kept = v.valid("assessments")[["patient_id", "visit", "nrs", "vas_mm", "odi"]]
    assert kept.astype(object).where(kept.notna(), None).to_numpy().tolist() == [
        ["P1", 0, 7, None, 42.0],
        ["P1", 1, 5, 45.0, None],
        ["P2", 1, 3, None, None],
    ]
    frame = raw["assessments"].frame.set_index(SOURCE_LINE)
    assert frame.loc[2, SOURCE_DETAIL] == "merged from lines 2, 4"
    (reason,) = v.failures.loc[v.failures["check"] == "conflicting_values", "reason"]
    assert reason == "nrs differs between the lines of visit 0 of patient 'P2' (6 / 8)"
    summary, _ = file_summary(raw, v)
    row = summary.set_index("file").loc["scores.csv"]
    assert (row.rows_read, row.rows_valid, row.rows_quarantined, row.rows_unused) == (9, 6, 2, 1)


def test_odi_points_and_the_sections_answered_may_come_on_lines_of_their_own(tmp_path):
    source = (
        SCORES
        + COLUMNS
        + '[sources.units]\nodi = "points"\n[sources.measures]\ncolumn = "Instrument"\n'
        'value = "Score"\n[sources.measures.names]\n"ODI points" = "odi"\n'
        '"ODI answered" = "odi_answered"\nNRS = "nrs"\n'
    )
    scores = (
        "Patient,Visit,Date,Instrument,Score\n"
        "P1,0,2025-02-03,ODI points,18\n"
        "P1,0,2025-02-03,ODI answered,9\n"  # 18 / (5 x 9) x 100 = 40 (SAP section 2)
        "P1,1,2025-02-17,ODI points,10\n"  # without a count: all ten answered, 10 x 2 = 20
        "P2,0,2025-02-04,NRS,6\n"
    )
    _, v = _ingest(tmp_path, scores, source)
    assert v.failures.empty, v.failures
    odi = v.valid("assessments").set_index(["patient_id", "visit"])["odi"]
    assert odi.loc[("P1", 0)] == pytest.approx(40.0)
    assert odi.loc[("P1", 1)] == pytest.approx(20.0)  # 10 points x 2 (ten sections answered)


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (
            "Patient,Visit,Date,Instrument,Score\nP1,0,2025-02-03,NSR,7\nP2,0,2025-02-04,NSR,6\n",
            r"scores.csv: line 2 has the measure 'NSR' \(so do 1 more lines\), which "
            r"\[sources.2.measures.names\] does not name; name it",
        ),
        (
            "Patient,Visit,Date,Instrument,Score\nP1,0,2025-02-03,NRS,7\nP1,1,2025-02-17,,5\n",
            "scores.csv: line 3 holds a score but no measure in its column 'Instrument'",
        ),
        (
            "Patient,Visit,Date,Measure,Score\nP1,0,2025-02-03,NRS,7\n",
            r"\[sources.2.measures\] maps the measure to 'Instrument', but scores.csv has no such",
        ),
    ],
)
def test_a_measure_the_configuration_does_not_know_stops_with_one_sentence(
    tmp_path, scores, message
):
    with pytest.raises(InputFileError, match=message):
        _ingest(tmp_path, scores)


@pytest.mark.parametrize(
    ("measures", "message"),
    [
        ("", r"a measurements source needs \[sources.2.measures\]"),
        ('[sources.measures]\ncolumn = "I"\nvalue = "S"\n', "needs names"),
        (
            '[sources.measures]\ncolumn = "I"\nvalue = "S"\n[sources.measures.names]\nA = "age"\n',
            "'age' is not a score of the assessments",
        ),
        (
            '[sources.measures]\ncolumn = "S"\nvalue = " s "\n'
            '[sources.measures.names]\nA = "nrs"\n',
            "column and value both name 'S'",
        ),
        (
            '[sources.measures]\ncolumn = "I"\nvalue = "S"\nignore = ["nrs"]\n'
            '[sources.measures.names]\nNRS = "nrs"\n',
            "'NRS' and 'nrs' are the same measure",
        ),
        (
            '[sources.columns]\nnrs = "NRS"\n[sources.measures]\ncolumn = "I"\nvalue = "S"\n'
            '[sources.measures.names]\nNRS = "nrs"\n',
            "maps nrs, which .* fills from the score rows",
        ),
        (
            '[sources.columns]\nage = "Age"\n[sources.measures]\ncolumn = "I"\nvalue = "S"\n'
            '[sources.measures.names]\nNRS = "nrs"\n',
            "maps age, a column of the patients table, which this source does not give",
        ),
        (
            'site = "A"\n[sources.measures]\ncolumn = "I"\nvalue = "S"\n'
            '[sources.measures.names]\nNRS = "nrs"\n',
            "sets the patients' site, but this source gives no patients",
        ),
        (
            'visits = "by_date"\n[sources.columns]\nvisit = "V"\n[sources.measures]\n'
            'column = "I"\nvalue = "S"\n[sources.measures.names]\nNRS = "nrs"\n',
            'is "by_date", which numbers the visits from the dates, and \\[columns\\] maps visit',
        ),
        (
            'visits = "by_week"\n[sources.measures]\ncolumn = "I"\nvalue = "S"\n'
            '[sources.measures.names]\nNRS = "nrs"\n',
            "visits",
        ),
    ],
)
def test_measures_mistakes_are_named_at_load(tmp_path, measures, message):
    config = tmp_path / "analysis.toml"
    config.write_text(LIST + SCORES + measures + outputs_and_mcid("out", "rep"))
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_visits_may_be_numbered_by_date_in_each_patient(tmp_path):
    # An export with dates and no visit numbers: each patient's first date is the baseline.
    source = SCORES.replace('decimal = ","\n', 'decimal = ","\nvisits = "by_date"\n') + (
        '[sources.columns]\npatient_id = "Patient"\nassessment_date = "Date"\n' + MEASURES
    )
    scores = (
        "Patient,Date,Instrument,Score\n"
        "P1,2025-03-03,NRS,5\n"  # written before the baseline: numbered by date, not by line
        "P1,2025-02-03,NRS,7\n"
        "P1,2025-02-03,Oswestry,42\n"  # the same day: the same assessment
        "P2,2025-02-04,NRS,6\n"
        "P2,,NRS,4\n"  # no date: no visit number, quarantined
    )
    _, v = _ingest(tmp_path, scores, source)
    kept = v.valid("assessments")[["patient_id", "visit", "nrs", "odi"]]
    assert kept.astype(object).where(kept.notna(), None).to_numpy().tolist() == [
        ["P1", 0, 7, 42.0],
        ["P1", 1, 5, None],
        ["P2", 0, 6, None],
    ]
    (reason,) = v.failures["reason"]
    assert reason == "assessment_date is empty, so the visit cannot be numbered by date"
