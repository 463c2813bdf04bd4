"""Adverse events as several flag columns or one delimited list (issue 15, shape 3).

The example data/raw/examples/ae_flags/ writes the simulator's event table
(:func:`pipeline.demo.simulate.simulate_adverse_event_details`, a soreness session has a second
event, fatigue, with P = 0.10) as two clinics' visit sheets, one with 0/1 flags and a severity
per flag, one with a German list and no severity. Reading it by configuration alone must give
that event table back; the small files below check each rule on rows written by hand.
"""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from command import outcomes

from pipeline.config.settings import load_config
from pipeline.demo import ae_examples
from pipeline.derive.adverse_events import event_record
from pipeline.describe import side_effects
from pipeline.errors import ConfigError, InputFileError
from pipeline.ingest.adapters.events import read_events
from pipeline.ingest.combine import read_sources
from pipeline.validate.study import validate_study

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "raw" / "examples" / "ae_flags"
KEY = ["patient_id", "session_number"]


def _read(config: Path):
    raw = read_sources(load_config(config).sources)
    validation = validate_study(raw)
    sessions = validation.valid("sessions")
    return validation, sessions, event_record(sessions, raw["sessions"].events)


@pytest.fixture(scope="module")
def example():
    return _read(EXAMPLE / "analysis.toml")


def test_committed_example_is_what_the_generator_writes():
    # Rewrite it with `python -m pipeline.demo.ae_examples data/raw/examples`.
    for name, data in ae_examples.example_files().items():
        assert (EXAMPLE.parent / name).read_bytes() == data, name


def test_example_gives_the_simulated_event_table_from_config_alone(example):
    validation, sessions, record = example
    assert validation.failures.empty, validation.failures
    truth = ae_examples.event_truth()
    sites = validation.valid("patients").set_index("patient_id")["site"]
    truth = truth.assign(site=truth["patient_id"].map(sites))
    # the list clinic writes no severity (optional): its events have none
    truth.loc[truth["site"] == ae_examples.LIST_SITE, "ae_severity"] = None
    columns = [*KEY, "ae_type", "ae_severity"]

    def rows(frame):
        out = frame[columns].astype({"session_number": "int64"}).astype(object)
        out = out.where(out.notna(), None)
        return sorted(map(tuple, out.itertuples(index=False)), key=str)

    assert rows(record.events) == rows(truth)
    assert len(record.events) == 32
    # every session of both files recorded its events (flags 0/1, or "keine")
    assert bool(record.recorded.all()) and len(sessions) == 141


def test_the_wide_example_gives_the_simulated_event_table_from_config_alone():
    # the same study as one row per patient, each session's flags and severities as
    # s{t}_ae_soreness, s{t}_sev_soreness, ...: every event with its severity comes back
    validation, sessions, record = _read(EXAMPLE / "wide" / "analysis.toml")
    assert validation.failures.empty, validation.failures
    assert _events(record) == sorted(
        _events_of(ae_examples.event_truth()), key=lambda r: (r[0], r[1])
    )
    assert len(record.events) == 32
    assert bool(record.recorded.all()) and len(sessions) == 141


def test_the_redcap_example_gives_the_simulated_event_table_from_config_alone():
    # a repeating session instrument: a checkbox of side effects (each choice a flag, ae___1,
    # ae___2, ...) and a severity radio per choice (ae_sev_1, ...), read as their labels
    validation, sessions, record = _read(EXAMPLE / "redcap" / "analysis.toml")
    assert validation.failures.empty, validation.failures
    assert sorted(_events(record), key=str) == sorted(
        _events_of(ae_examples.event_truth()), key=str
    )
    assert len(record.events) == 32
    assert bool(record.recorded.all()) and len(sessions) == 141


def test_a_session_with_two_events_gives_two_rows_and_two_events_by_type(example):
    _, sessions, record = example
    per_session = record.events.groupby(KEY).size()
    doubles = per_session[per_session == 2].index.tolist()
    # P0003 session 2 (list clinic: "Muskelkater; Müdigkeit") and one of the flag clinic
    assert ("P0003", 2) in doubles and len(doubles) == 2
    two = record.events.set_index(KEY).loc[("P0003", 2), "ae_type"].tolist()
    assert two == ["soreness", "fatigue"]
    rates = side_effects.side_effect_rates(sessions, record.events, record.recorded)
    depth = rates[(rates["group"] == "depth") & (rates["ae_severity"] == "all")]
    by_type = depth[depth["ae_type"] != "any"].groupby("level", observed=True)["events"].sum()
    anything = depth[depth["ae_type"] == "any"].set_index("level")["events"]
    # events, not sessions: 32 events in 30 sessions with an event
    assert int(anything.sum()) == 32 and (by_type == anything.loc[by_type.index]).all()
    assert int(record.sessions_with_events(sessions).sum()) == 30


HEADER = "Patient,Clinic,Date,Session,Depth,Twitch,Visit,NRS,ae_sore,ae_bruise,sev_sore,AE,AE sev\n"
PATIENT = "P1,North,06/01/2025,{s},deep,no,{v},5,{f1},{f2},{sv},{lst},{lsev}\n"


def _sheet(tmp_path: Path, rows: list[dict], events: str) -> Path:
    lines = HEADER
    date = 6
    for k, row in enumerate(rows, start=1):
        cells = {"s": k, "v": k - 1, "f1": "", "f2": "", "sv": "", "lst": "", "lsev": "", **row}
        lines += PATIENT.format(**cells).replace("06/01", f"{date + k - 1:02d}/01")
    (tmp_path / "v.csv").write_text(lines, encoding="utf-8")
    config = tmp_path / "analysis.toml"
    tail = '[outputs]\nprocessed = "p"\nreports = "r"\n'
    tail += "".join(f"[mcid.{i}]\npoints = 1\npercent = 30\n" for i in ("nrs", "vas", "odi"))
    config.write_text(
        '[[sources]]\nkind = "visit_sheet"\nfiles = ["v.csv"]\ndate_format = "DD/MM/YYYY"\n'
        '[sources.columns]\npatient_id = "Patient"\nsite = "Clinic"\nvisit_date = "Date"\n'
        'session_number = "Session"\ndepth = "Depth"\ntwitch = "Twitch"\nvisit = "Visit"\n'
        f'nrs = "NRS"\n[sources.adverse_events]\n{events}\n{tail}',
        encoding="utf-8",
    )
    return config


FLAGS = (
    'flags = { ae_sore = "soreness", ae_bruise = "bruising" }\nseverity = { ae_sore = "sev_sore" }'
)


def test_flags_one_row_per_flag_set_and_empty_flags_are_not_recorded(tmp_path):
    rows = [
        {"f1": "1", "f2": "1", "sv": "Moderate"},  # two events, soreness with its severity
        {"f1": "0", "f2": "0"},  # recorded, no event
        {},  # flags empty: not recorded (not "no event")
        {"f1": "ja", "f2": ""},  # one flag filled: the other not ticked
    ]
    validation, _, record = _read(_sheet(tmp_path, rows, FLAGS))
    assert validation.failures.empty, validation.failures
    events = record.events[[*KEY, "ae_type", "ae_severity"]].astype(object)
    assert [tuple(r) for r in events.where(events.notna(), None).itertuples(index=False)] == [
        ("P1", 1, "soreness", "moderate"),
        ("P1", 1, "bruising", None),
        ("P1", 4, "soreness", None),
    ]
    assert record.recorded.tolist() == [True, True, False, True]


@pytest.mark.parametrize("value", ["2", "x"])
def test_an_invalid_flag_quarantines_the_session_with_its_reason(tmp_path, value):
    rows = [{"f1": "1", "f2": "0"}, {"f1": value, "f2": "1"}, {"f1": "0", "f2": "0"}]
    validation, sessions, record = _read(_sheet(tmp_path, rows, FLAGS))
    quarantine = validation.tables["sessions"].quarantine
    assert quarantine["source_line"].tolist() == [3]  # the file's line: header is line 1
    assert quarantine["source_file"].tolist() == ["v.csv"]
    reason = quarantine["reason"].iloc[0]
    assert f"ae_sore = '{value}' is not yes or no" in reason
    assert "[sources.1.adverse_events]" in reason
    # nothing lost: read = kept + quarantined, and the quarantined session's events are gone
    row = validation.accounting.set_index("table").loc["sessions"]
    assert row["raw_rows"] == row["processed_rows"] + row["quarantined_rows"] == 3
    assert sessions["session_number"].tolist() == [1, 3]
    assert record.events["session_number"].tolist() == [1]


LIST = (
    'list = "AE"\ndelimiter = ";"\nseverity = "AE sev"\n'
    'codes = { "Hämatom" = "bruising", "keine" = "none" }'
)


def test_list_items_severities_in_order_and_unknown_items_quarantined(tmp_path):
    rows = [
        {"lst": "soreness; Hämatom", "lsev": "mild; severe"},  # one severity per event
        {"lst": "Fatigue", "lsev": "moderate"},
        {"lst": "keine"},  # recorded, no event
        {"lst": "itching; soreness"},  # unknown item
        {"lst": "soreness; fatigue", "lsev": "mild; mild; mild"},  # 3 severities, 2 events
        {"lst": "soreness; bruising", "lsev": "moderate"},  # one severity for both
    ]
    validation, _, record = _read(_sheet(tmp_path, rows, LIST))
    events = record.events[[*KEY, "ae_type", "ae_severity"]]
    assert [tuple(r) for r in events.itertuples(index=False)] == [
        ("P1", 1, "soreness", "mild"),
        ("P1", 1, "bruising", "severe"),
        ("P1", 2, "fatigue", "moderate"),
        ("P1", 6, "soreness", "moderate"),
        ("P1", 6, "bruising", "moderate"),
    ]
    quarantine = validation.tables["sessions"].quarantine.set_index("source_line")["reason"]
    assert (
        "AE = 'itching; soreness' lists 'itching', which is not an adverse-event type"
        in (quarantine.loc[5])
    )
    assert "gives 3 severities for the 2 events listed in AE" in quarantine.loc[6]
    assert sorted(quarantine.index) == [5, 6]


def test_a_list_column_read_whole_gives_what_each_row_read_alone_gives(tmp_path):
    """Each distinct list (with its severity cell) is read once and its events repeated on
    every row that holds it: over rows drawing lists and severities at random (repeats, codes,
    case and spacing, unknown items, severities of every count, empty cells, flags of every
    kind), the whole column gives the events, problems and records of its rows read one by
    one."""
    source = load_config(_sheet(tmp_path, [{"lst": "keine"}], LIST)).sources[0]
    rng = np.random.default_rng(3)
    lists = ["soreness; Hämatom", "Fatigue", "keine", "itching; soreness", "soreness;  FATIGUE"]
    severities = ["mild; severe", "moderate", "mild; mild; mild", "MILD", "extreme"]
    frame = pd.DataFrame(
        {
            "AE": rng.choice(np.array([*lists, None], dtype=object), 400),
            "AE sev": rng.choice(np.array([*severities, None, None], dtype=object), 400),
        },
        dtype="str",
    )
    columns = {"AE": "AE", "AE sev": "AE sev"}
    whole = read_events(source, frame, columns)
    alone = [read_events(source, frame.iloc[[k]], columns) for k in range(len(frame))]
    events = pd.concat([a.events.assign(row=k) for k, a in enumerate(alone)], ignore_index=True)
    pd.testing.assert_frame_equal(whole.events, events)
    # (problems come by kind: the list's cells, severities without an event, unknown levels)
    phase = {"severity_without_event": 1, "isin": 2}
    assert whole.problems == sorted(
        ({**p, "row": k} for k, a in enumerate(alone) for p in a.problems),
        key=lambda p: (phase.get(p["check"], 0), p["row"]),
    )
    assert (whole.recorded == np.concatenate([a.recorded for a in alone])).all()
    assert (whole.occurred == np.concatenate([a.occurred for a in alone])).all()
    # (seed 3 draws 265 events and 329 problems: both ways a row can end are well exercised)
    assert len(whole.events) > 200 and len(whole.problems) > 50


def test_a_severity_that_is_none_of_the_three_quarantines_its_session(tmp_path):
    rows = [{"f1": "1", "sv": "schlimm"}, {"f1": "0", "sv": "mild"}]
    validation, *_ = _read(_sheet(tmp_path, rows, FLAGS))
    quarantine = validation.tables["sessions"].quarantine.set_index("source_line")["reason"]
    assert "ae_severity = 'schlimm' is not one of mild, moderate, severe" in quarantine.loc[2]
    assert (
        "sev_sore = 'mild' gives a severity, but ae_sore records no soreness" in (quarantine.loc[3])
    )


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ('flags = { ae_sore = "itching" }', "maps 'ae_sore' to 'itching', which is not an"),
        ('list = "AE"\ncodes = { "x" = "rash" }', "maps 'x' to 'rash', which is not an"),
        ('delimiter = ";"', "needs flags ="),
        ('flags = { ae_sore = "soreness" }\nseverity = { ae_bruise = "s" }', "not one of the"),
        ('list = "AE"\ndelimiter = ";;"', "must be one character"),
        ('list = "AE"\ncodes = { "a; b" = "soreness" }', "contains the delimiter"),
    ],
)
def test_configuration_mistakes_are_one_sentence_at_load(tmp_path, events, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_sheet(tmp_path, [{}], events))


TAIL = '[outputs]\nprocessed = "p"\nreports = "r"\n' + "".join(
    f"[mcid.{i}]\npoints = 1\npercent = 30\n" for i in ("nrs", "vas", "odi")
)
WIDE = (
    "patient_id,site,date_0,nrs_0,date_1,nrs_1,"
    "s1_date,s1_depth,s1_twitch,s1_sore,s1_bruise,s1_sev,"
    "s2_date,s2_depth,s2_twitch,s2_sore,s2_bruise,s2_sev,"
    "s3_date,s3_depth,s3_twitch,s3_sore,s3_bruise,s3_sev\n"
    # P1: session 1 two events (soreness with its severity), session 2 none, no session 3
    "P1,North,2025-01-06,5,2025-01-20,3,"
    "2025-01-06,deep,no,1,1,moderate,2025-01-13,deep,yes,0,0,,,,,,,\n"
    # P2: session 1 did not record its events, session 2 bruising, session 3 only a bad flag
    "P2,North,2025-01-07,6,,,"
    "2025-01-07,superficial,no,,,,2025-01-14,deep,no,0,1,,,,,2,,\n"
)
WIDE_SOURCE = (
    '[[sources]]\nkind = "wide"\nfiles = ["w.csv"]\n'
    '[sources.assessments]\ncolumns = { assessment_date = "date_{t}", nrs = "nrs_{t}" }\n'
    '[sources.assessments.points]\n"0" = 0\n"1" = 1\n'
    '[sources.sessions]\ncolumns = { session_date = "s{t}_date", depth = "s{t}_depth", '
    'twitch = "s{t}_twitch" }\n'
    '[sources.sessions.points]\n"1" = 1\n"2" = 2\n"3" = 3\n'
)
WIDE_EVENTS = (
    '[sources.adverse_events]\nflags = { "s{t}_sore" = "soreness", "s{t}_bruise" = "bruising" }\n'
    'severity = { "s{t}_sore" = "s{t}_sev" }\n'
)


def _wide(tmp_path: Path, events: str = WIDE_EVENTS, source: str = WIDE_SOURCE) -> Path:
    (tmp_path / "w.csv").write_text(WIDE, encoding="utf-8")
    config = tmp_path / "analysis.toml"
    config.write_text(source + events + TAIL, encoding="utf-8")
    return config


def _events_of(frame: pd.DataFrame) -> list[tuple]:
    events = frame[[*KEY, "ae_type", "ae_severity"]].astype({"session_number": "int64"})
    events = events.astype(object)
    return [tuple(r) for r in events.where(events.notna(), None).itertuples(index=False)]


def _events(record) -> list[tuple]:
    return _events_of(record.events)


def test_a_wide_file_with_event_flags_per_session(tmp_path):
    validation, sessions, record = _read(_wide(tmp_path))
    assert _events(record) == [
        ("P1", 1, "soreness", "moderate"),
        ("P1", 1, "bruising", None),
        ("P2", 2, "bruising", None),
    ]
    assert sessions[KEY].to_numpy().tolist() == [["P1", 1], ["P1", 2], ["P2", 1], ["P2", 2]]
    assert record.recorded.tolist() == [True, True, False, True]
    # the session with only an unreadable flag is a session, quarantined with its reason
    quarantine = validation.tables["sessions"].quarantine
    assert quarantine["source_detail"].tolist() == ["session 3"]
    assert quarantine["source_line"].tolist() == [3]
    assert "s3_sore = '2' is not yes or no (the soreness flag" in quarantine["reason"].iloc[0]
    row = validation.accounting.set_index("table").loc["sessions"]
    assert row["raw_rows"] == row["processed_rows"] + row["quarantined_rows"] == 5


def test_a_german_wide_file_with_a_list_and_severities_per_session(tmp_path):
    # each session's own list and severities (NW_1, Grad_1, ...), German words, ja/nein
    (tmp_path / "w.csv").write_text(
        "Patient,Klinik,Datum_0,NRS_0,Datum_1,Tiefe_1,Zuckung_1,NW_1,Grad_1,"
        "Datum_2,Tiefe_2,Zuckung_2,NW_2,Grad_2\n"
        'P1,Nord,2025-01-06,5,2025-01-06,tief,nein,"Muskelkater; Hämatom","leicht; schwer",'
        "2025-01-13,tief,ja,keine,\n",
        encoding="utf-8",
    )
    config = tmp_path / "analysis.toml"
    config.write_text(
        '[[sources]]\nkind = "wide"\nfiles = ["w.csv"]\n'
        '[sources.columns]\npatient_id = "Patient"\nsite = "Klinik"\n'
        '[sources.assessments]\ncolumns = { assessment_date = "Datum_{t}", nrs = "NRS_{t}" }\n'
        '[sources.assessments.points]\n"0" = 0\n'
        '[sources.sessions]\ncolumns = { session_date = "Datum_{t}", depth = "Tiefe_{t}", '
        'twitch = "Zuckung_{t}" }\n'
        '[sources.sessions.points]\n"1" = 1\n"2" = 2\n'
        '[sources.codes.depth]\ntief = "deep"\n'
        '[sources.codes.ae_severity]\nleicht = "mild"\nschwer = "severe"\n'
        '[sources.adverse_events]\nlist = "NW_{t}"\nseverity = "Grad_{t}"\n'
        'codes = { "Muskelkater" = "soreness", "Hämatom" = "bruising", "keine" = "none" }\n' + TAIL,
        encoding="utf-8",
    )
    validation, sessions, record = _read(config)
    assert validation.failures.empty, validation.failures
    assert _events(record) == [("P1", 1, "soreness", "mild"), ("P1", 1, "bruising", "severe")]
    assert record.recorded.tolist() == [True, True]  # "keine": recorded, no event
    assert sessions["twitch"].tolist() == [False, True]


@pytest.mark.parametrize(
    ("events", "source", "message"),
    [
        ('[sources.adverse_events]\nflags = { s1_sore = "soreness" }\n', WIDE_SOURCE, "no {t}"),
        (
            WIDE_EVENTS,
            WIDE_SOURCE.split("[sources.sessions]")[0],
            r"has no \[sources.1.sessions\] group",
        ),
        (
            WIDE_EVENTS,
            WIDE_SOURCE.replace(
                'depth = "s{t}_depth"', 'depth = "s{t}_depth", adverse_event = "s{t}_ae"'
            ),
            r"\[sources.1.sessions.columns\] maps adverse_event, and",
        ),
    ],
)
def test_wide_event_columns_mistakes_are_one_sentence_at_load(tmp_path, events, source, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_wide(tmp_path, events, source))


def test_a_wide_event_pattern_matching_no_column_is_named(tmp_path):
    config = _wide(tmp_path, WIDE_EVENTS.replace("s{t}_bruise", "s{t}_bruising"))
    with pytest.raises(InputFileError, match=r"reads 's\{t\}_bruising', but w.csv has no such"):
        read_sources(load_config(config).sources)


REDCAP_DICTIONARY = (
    '"Variable / Field Name","Form Name","Field Type","Field Label",'
    '"Choices, Calculations, OR Slider Labels"\n'
    "record_id,demographics,text,Record ID,\n"
    "site,demographics,text,Clinic,\n"
    "session_date,needling_session,text,Date,\n"
    'depth,needling_session,radio,Depth,"1, Superficial | 2, Deep"\n'
    "twitch,needling_session,yesno,Twitch,\n"
    'ae,needling_session,checkbox,Side effects,"0, None | 1, Soreness | 2, Bruising | '
    '3, Muscle cramp"\n'
    'ae_sev,needling_session,radio,Severity,"1, Mild | 2, Moderate | 3, Severe"\n'
    "assessment_date,outcomes,text,Date,\n"
    "nrs,outcomes,text,NRS,\n"
)
REDCAP_EXPORT = (
    "record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,site,"
    "session_date,depth,twitch,ae___0,ae___1,ae___2,ae___3,ae_sev,assessment_date,nrs\n"
    "1,baseline_arm_1,,,North,,,,0,0,0,0,,2025-01-06,5\n"
    # soreness and bruising, moderate; no event (None ticked); unticked: not recorded
    "1,baseline_arm_1,needling_session,1,,2025-01-06,2,0,0,1,1,0,2,,\n"
    "1,baseline_arm_1,needling_session,2,,2025-01-13,2,0,1,0,0,0,,,\n"
    "1,baseline_arm_1,needling_session,3,,2025-01-20,1,0,0,0,0,0,,,\n"
    # a cramp, coded as other; a severity without an event
    "1,baseline_arm_1,needling_session,4,,2025-01-27,1,0,0,0,0,1,,,\n"
    "1,baseline_arm_1,needling_session,5,,2025-02-03,1,0,0,0,0,0,3,,\n"
)
REDCAP_SOURCE = (
    '[[sources]]\nkind = "redcap"\nfiles = ["export.csv"]\ndictionary = "dictionary.csv"\n'
    '[sources.instruments]\npatients = "demographics"\nsessions = "needling_session"\n'
    'assessments = "outcomes"\n[sources.events]\nbaseline = 0\n'
)


def _redcap(tmp_path: Path, events: str) -> Path:
    (tmp_path / "dictionary.csv").write_text(REDCAP_DICTIONARY, encoding="utf-8")
    (tmp_path / "export.csv").write_text(REDCAP_EXPORT, encoding="utf-8")
    config = tmp_path / "analysis.toml"
    config.write_text(REDCAP_SOURCE + "[sources.adverse_events]\n" + events + TAIL, "utf-8")
    return config


def test_redcap_checkbox_field_as_the_list_of_events(tmp_path):
    events = 'list = "ae"\nseverity = "ae_sev"\ncodes = { "Muscle cramp" = "other" }\n'
    validation, sessions, record = _read(_redcap(tmp_path, events))
    assert _events(record) == [
        ("1", 1, "soreness", "moderate"),
        ("1", 1, "bruising", "moderate"),
        ("1", 4, "other", None),
    ]
    assert sessions["session_number"].tolist() == [1, 2, 3, 4]
    # None ticked: recorded without event; nothing ticked: not recorded
    assert record.recorded.tolist() == [True, True, False, True]
    quarantine = validation.tables["sessions"].quarantine
    assert quarantine["source_line"].tolist() == [7]
    assert (
        "ae_sev = 'Severe' gives a severity, but the row records no adverse"
        in (quarantine["reason"].iloc[0])
    )


def test_redcap_checkbox_choices_as_flags(tmp_path):
    events = 'flags = { ae___1 = "soreness", ae___2 = "bruising", ae___3 = "other" }\n'
    validation, sessions, record = _read(_redcap(tmp_path, events))
    assert _events(record) == [
        ("1", 1, "soreness", None),
        ("1", 1, "bruising", None),
        ("1", 4, "other", None),
    ]
    # an unticked choice is 0 in a raw export: every session recorded its events
    assert record.recorded.all() and len(sessions) == 5
    assert validation.failures.empty, validation.failures


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ('flags = { nrs = "soreness" }\n', "reads 'nrs', a field of the instrument 'outcomes'"),
        ('flags = { ae = "soreness" }\n', "reads the checkbox field 'ae' as the soreness flag;"),
        ('flags = { ae___9 = "soreness" }\n', "maps the soreness flag to 'ae___9', but the"),
    ],
)
def test_redcap_event_field_mistakes_are_one_sentence(tmp_path, events, message):
    with pytest.raises(InputFileError, match=message):
        read_sources(load_config(_redcap(tmp_path, events)).sources)


def test_a_canonical_sessions_file_with_flags(tmp_path):
    (tmp_path / "patients.csv").write_text("patient_id,site\nP1,North\n", encoding="utf-8")
    (tmp_path / "assessments.csv").write_text(
        "patient_id,visit,assessment_date,nrs\nP1,0,2025-01-06,5\n", encoding="utf-8"
    )
    (tmp_path / "sessions.csv").write_text(
        "patient_id,session_number,session_date,depth,twitch,sore,bruise\n"
        "P1,1,2025-01-06,deep,no,1,1\nP1,2,2025-01-13,deep,no,0,0\nP1,3,2025-01-20,deep,no,,\n",
        encoding="utf-8",
    )
    config = tmp_path / "analysis.toml"
    tail = '[outputs]\nprocessed = "p"\nreports = "r"\n'
    tail += "".join(f"[mcid.{i}]\npoints = 1\npercent = 30\n" for i in ("nrs", "vas", "odi"))
    config.write_text(
        '[[sources]]\nkind = "canonical"\npatients = "patients.csv"\n'
        'sessions = "sessions.csv"\nassessments = "assessments.csv"\n'
        '[sources.adverse_events]\nflags = { sore = "soreness", bruise = "bruising" }\n' + tail,
        encoding="utf-8",
    )
    validation, _, record = _read(config)
    assert validation.failures.empty, validation.failures
    assert record.events[["session_number", "ae_type"]].to_numpy().tolist() == [
        [1, "soreness"],
        [1, "bruising"],
    ]
    assert record.recorded.tolist() == [True, True, False]


def test_a_column_missing_from_the_file_is_named(tmp_path):
    config = _sheet(tmp_path, [{}], 'flags = { ae_fatigue = "fatigue" }')
    with pytest.raises(InputFileError, match=r"maps the fatigue flag to 'ae_fatigue', but v\.csv"):
        read_sources(load_config(config).sources)


def test_the_single_column_and_the_event_columns_are_not_both_mapped(tmp_path):
    config = _sheet(tmp_path, [{}], FLAGS)
    text = config.read_text().replace('nrs = "NRS"', 'nrs = "NRS"\nadverse_event = "AE"')
    config.write_text(text)
    with pytest.raises(ConfigError, match="a source records them one way"):
        load_config(config)


def test_outcomes_run_on_the_example_completes_with_a_report(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "ae")
    config = tmp_path / "ae" / "analysis.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("../../../processed/examples/ae_flags/reports", "out/reports")
    config.write_text(text.replace("../../../processed/examples/ae_flags", "out/processed"))
    result = outcomes("run", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    tables = tmp_path / "ae" / "out" / "reports" / "tables"
    assert (tmp_path / "ae" / "out" / "reports" / "outcomes.html").is_file()
    rates = pd.read_csv(tables / "adverse_event_rates.csv")
    by_type = pd.read_csv(tables / "side_effect_rates.csv")
    # sessions with an event (rates) against events (by type), from one event table
    assert rates["sessions"].sum() == 141
    any_depth = by_type[
        (by_type["group"] == "depth")
        & (by_type["ae_type"] == "any")
        & (by_type["ae_severity"] == "all")
    ]
    assert any_depth["sessions"].sum() == 141
