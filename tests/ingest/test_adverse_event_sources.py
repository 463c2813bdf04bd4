"""Adverse events as several flag columns or one delimited list (issue 15, shape 3).

The example data/raw/examples/ae_flags/ writes the simulator's event table
(:func:`pipeline.demo.simulate.simulate_adverse_event_details`, a soreness session has a second
event, fatigue, with P = 0.10) as two clinics' visit sheets, one with 0/1 flags and a severity
per flag, one with a German list and no severity. Reading it by configuration alone must give
that event table back; the small files below check each rule on rows written by hand.
"""

import shutil
from pathlib import Path

import pandas as pd
import pytest
from command import outcomes

from pipeline.config.settings import load_config
from pipeline.demo import ae_examples
from pipeline.derive.adverse_events import event_record
from pipeline.describe import side_effects
from pipeline.errors import ConfigError, InputFileError
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


def test_a_wide_source_is_told_where_event_columns_are_read(tmp_path):
    config = _sheet(tmp_path, [{}], FLAGS)
    text = config.read_text().replace('kind = "visit_sheet"', 'kind = "wide"', 1)
    config.write_text(text)
    with pytest.raises(ConfigError, match="is read from visit sheets and canonical sessions"):
        load_config(config)


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
