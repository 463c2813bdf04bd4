"""Clinic exports in shapes beyond the plain layouts, read by configuration alone (issue 15).

Each shape has its example under data/raw/examples/exports/; the tables it must give are written
out here by hand, from the example file.
"""

from pathlib import Path

import pandas as pd
import pytest

from pipeline.config.settings import load_config
from pipeline.errors import ConfigError
from pipeline.ingest.combine import read_sources
from pipeline.validate.study import validate_study

EXPORTS = Path(__file__).resolve().parents[2] / "data" / "raw" / "examples" / "exports"


def _valid(shape: str):
    sources = load_config(EXPORTS / shape / "analysis.toml").sources
    validation = validate_study(read_sources(sources))
    assert validation.failures.empty, validation.failures
    return validation


def _rows(validation, table: str, columns: list[str]) -> list[tuple]:
    frame = validation.valid(table)[columns]
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


def test_one_termin_column_numbers_the_session_and_the_visit():
    v = _valid("termin")
    # every row is a session, numbered by its Termin
    assert _rows(v, "sessions", ["patient_id", "session_number", "session_date", "depth"]) == [
        ("P01", 1, pd.Timestamp("2025-01-06"), "deep"),
        ("P01", 2, pd.Timestamp("2025-01-13"), "deep"),
        ("P01", 3, pd.Timestamp("2025-01-20"), "deep"),
        ("P01", 4, pd.Timestamp("2025-01-27"), "superficial"),
        ("P02", 1, pd.Timestamp("2025-01-08"), "superficial"),
        ("P02", 2, pd.Timestamp("2025-01-15"), "superficial"),
        ("P02", 3, pd.Timestamp("2025-01-22"), "deep"),
    ]
    # only rows with a score are assessments (no phantom empty ones); visit = Termin - 1
    assert _rows(v, "assessments", ["patient_id", "visit", "assessment_date", "nrs", "odi"]) == [
        ("P01", 0, pd.Timestamp("2025-01-06"), 8, 40.0),
        ("P01", 2, pd.Timestamp("2025-01-20"), 6, 32.0),
        ("P02", 0, pd.Timestamp("2025-01-08"), 6, 28.0),
        ("P02", 1, pd.Timestamp("2025-01-15"), 5, None),
    ]
    assert _rows(v, "patients", ["patient_id", "site", "sex", "age"]) == [
        ("P01", "Nord", "female", 44),
        ("P02", "Süd", "male", 61),
    ]


def test_one_date_per_time_point_dates_session_and_assessment():
    v = _valid("wide_dates")
    assert _rows(v, "sessions", ["patient_id", "session_number", "session_date", "twitch"]) == [
        ("A1", 1, pd.Timestamp("2025-03-03"), True),
        ("A1", 2, pd.Timestamp("2025-03-10"), False),
        ("A1", 3, pd.Timestamp("2025-03-17"), False),
        ("A2", 1, pd.Timestamp("2025-03-04"), False),
        ("A2", 2, pd.Timestamp("2025-03-11"), True),
        ("A3", 1, pd.Timestamp("2025-03-05"), False),
    ]
    # A1's time point 1 has a session and no score, A2's time point 2 only its date, A3 no score
    assert _rows(v, "assessments", ["patient_id", "visit", "assessment_date", "nrs"]) == [
        ("A1", 0, pd.Timestamp("2025-03-03"), 7),
        ("A1", 2, pd.Timestamp("2025-03-17"), 5),
        ("A2", 0, pd.Timestamp("2025-03-04"), 6),
        ("A2", 1, pd.Timestamp("2025-03-11"), 4),
    ]


def _config(tmp_path: Path, body: str) -> Path:
    (tmp_path / "v.csv").write_text("a\n1\n", encoding="utf-8")
    path = tmp_path / "analysis.toml"
    tail = '[outputs]\nprocessed = "p"\nreports = "r"\n'
    tail += "".join(f"[mcid.{i}]\npoints = 1\npercent = 30\n" for i in ("nrs", "vas", "odi"))
    path.write_text(f'[[sources]]\nkind = "visit_sheet"\nfiles = ["v.csv"]\n{body}\n{tail}')
    return path


def test_a_row_of_a_shared_number_is_a_session_only_when_it_records_one(tmp_path):
    # An Italian sheet numbered from 0 by one column: 'seduta 0' is the baseline visit, with
    # scores and no needling; it must not become a session (numbered 0, without a depth).
    body = (
        'site = "Milano"\ndelimiter = ";"\ndate_format = "DD.MM.YYYY"\n'
        '[sources.vocabulary]\nlanguages = ["it"]\n'
        '[sources.columns]\npatient_id = "codice"\nsession_number = "seduta"\n'
        'visit = "seduta"\nvisit_date = "data"\ndepth = "profondità"\ntwitch = "twitch"\n'
        'nrs = "nrs"\n[sources.codes.depth]\nprofondo = "deep"\nsuperficiale = "superficial"'
    )
    path = _config(tmp_path, body)
    (tmp_path / "v.csv").write_text(
        "codice;seduta;data;profondità;twitch;nrs\n"
        "IT-1;0;03.03.2025;;;7\n"  # scores only: the baseline assessment, no session
        "IT-1;1;10.03.2025;profondo;sì;\n"  # needling only: a session, no assessment
        "IT-1;2;17.03.2025;superficiale;no;5\n"  # both
        "IT-1;3;24.03.2025;;;\n",  # neither: a session lacking its depth, quarantined
        encoding="utf-8",
    )
    validation = validate_study(read_sources(load_config(path).sources))
    assert _rows(validation, "sessions", ["session_number", "depth", "twitch"]) == [
        (1, "deep", True),
        (2, "superficial", False),
    ]
    assert _rows(validation, "assessments", ["visit", "nrs"]) == [(0, 7), (2, 5)]
    failures = validation.failures
    assert set(failures["table"]) == {"sessions"}
    assert "depth is empty but must be filled" in set(failures["reason"])
    assert validation.quarantined_rows == 1  # that one row, not 'seduta 0'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # only pairs that mean the same may share a column
        ('[sources.columns]\nvisit = "T"\nnrs = "T"', "visit and nrs both map to 'T'"),
        ("[sources.shift]\ndepth = 1", "only whole-number columns can be shifted"),
        ('[sources.shift]\nvisit = "one"', "must be a whole number, got 'one'"),
    ],
)
def test_sharing_and_shifting_are_checked(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, body))


def test_shared_pairs_are_accepted(tmp_path):
    body = '[sources.columns]\nvisit = "T"\nsession_number = "T"\n[sources.shift]\nvisit = -1'
    source = load_config(_config(tmp_path, body)).sources[0]
    assert source.columns == {"visit": "T", "session_number": "T"}
    assert source.shift == {"visit": -1}


def test_odi_as_raw_points_over_the_answered_sections():
    v = _valid("odi_points")
    # SAP section 2: score = points / (5 x answered) x 100; 20/10 -> 40, 18/9 -> 40, 13/10 -> 26;
    # 16 points over 8 sections: two unanswered, more than the one allowed, so blank
    assert _rows(v, "assessments", ["patient_id", "visit", "odi"]) == [
        ("Q1", 0, 40.0),
        ("Q1", 1, 40.0),
        ("Q1", 2, None),
        ("Q2", 0, 26.0),
        ("Q2", 1, None),
    ]


def test_odi_points_follow_the_configured_missing_section_rule(tmp_path):
    import shutil

    shutil.copytree(EXPORTS / "odi_points", tmp_path / "odi")
    config = tmp_path / "odi" / "analysis.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[thresholds]\nodi_max_missing_sections = 2\n"
    )
    raw = read_sources(load_config(config).sources)
    odi = validate_study(raw).valid("assessments")["odi"].tolist()
    assert odi[2] == 40.0  # 16 / (5 x 8) x 100, two unanswered sections now allowed


def test_a_french_export_read_by_its_vocabulary_without_code_lists():
    v = _valid("francais")
    # oui/non in any case are yes/no; n.d. and ND are missing
    assert _rows(v, "patients", ["patient_id", "anticoagulants"]) == [("F01", False), ("F02", None)]
    assert _rows(v, "sessions", ["patient_id", "session_number", "twitch"]) == [
        ("F01", 1, True),
        ("F01", 2, False),
        ("F01", 3, False),
        ("F02", 1, True),
        ("F02", 2, False),
    ]
    assert _rows(v, "assessments", ["patient_id", "visit", "nrs", "odi"]) == [
        ("F01", 0, 7, None),
        ("F01", 1, 5, 30.0),
        ("F02", 0, 6, 44.0),
        ("F02", 1, None, 40.0),
    ]


def test_vocabulary_global_and_per_source(tmp_path):
    body = '[sources.vocabulary]\nlanguages = ["nl"]\nmissing = ["onbekend!"]'
    config = _config(tmp_path, body)
    config.write_text(config.read_text() + '[vocabulary]\nlanguages = ["de"]\nyes = ["jawohl"]\n')
    words = load_config(config).sources[0].vocabulary
    assert words.languages == ("nl",)  # the source's languages replace the global ones
    assert "jawohl" in words.yes and "nee" in words.no and "ja" in words.yes
    assert "nein" not in words.no
    assert "onbekend!" in words.missing and "n.v.t." in words.missing


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[sources.vocabulary]\nlanguages = ["pt"]', "unknown language 'pt'"),
        ('[sources.vocabulary]\nmissing = ["nein"]', "'nein' is both a no word and a missing"),
        ('[sources.vocabulary]\nyes = "ja"', "must be a list of words"),
    ],
)
def test_vocabulary_mistakes_are_named(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, body))


def test_redcap_session_instrument_filled_once_per_event():
    v = _valid("redcap_events")
    # the event gives the session number; follow_up has a visit but no session
    assert _rows(
        v, "sessions", ["patient_id", "session_number", "depth", "twitch", "co_intervention"]
    ) == [
        ("R01", 1, "deep", True, "exercise"),
        ("R01", 2, "deep", False, "exercise; manual therapy"),
        ("R02", 1, "superficial", False, None),
        ("R02", 2, "superficial", True, "manual therapy"),
    ]
    assert _rows(v, "assessments", ["patient_id", "visit", "nrs"]) == [
        ("R01", 0, 7),
        ("R01", 1, 5),
        ("R01", 2, 3),
        ("R02", 0, 6),
    ]


def test_redcap_session_event_not_mapped_is_quarantined(tmp_path):
    import shutil

    shutil.copytree(EXPORTS / "redcap_events", tmp_path / "r")
    config = tmp_path / "r" / "analysis.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("visit_2 = 2\n", "", 1))
    failures = validate_study(read_sources(load_config(config).sources)).failures
    mine = failures[failures["check"] == "unknown_event"]
    assert len(mine) == 2 and set(mine["column"]) == {"session_number"}
    assert mine["reason"].str.contains("is not mapped to a session in").all()
