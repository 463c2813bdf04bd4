"""The example of every source kind (data/raw/examples/) ingests to the canonical tables."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
from command import outcomes

from pipeline.config.settings import load_config
from pipeline.demo.example_sources import KINDS, example_files
from pipeline.ingest.combine import read_sources
from pipeline.schemas.raw import KEYS, TABLES
from pipeline.validate.quality import file_summary
from pipeline.validate.study import validate_study

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "raw" / "examples"


def _study(kind: str):
    raw = read_sources(load_config(EXAMPLES / kind / "analysis.toml").sources)
    return raw, validate_study(raw)


@pytest.fixture(scope="module")
def reference():
    return _study("canonical")[1]


def _table(validation, table):
    keys = list(KEYS[table])
    frame = validation.valid(table).drop(columns="source_row")
    return frame.sort_values(keys).reset_index(drop=True)


def test_committed_examples_are_what_the_generator_writes():
    # Rewrite them with `python -m pipeline.demo.example_sources data/raw/examples`.
    expected = example_files()
    on_disk = {
        p.relative_to(EXAMPLES).as_posix(): p.read_bytes()
        for p in sorted(EXAMPLES.rglob("*"))
        if p.is_file() and p.relative_to(EXAMPLES).parts[0] not in ("trial", "exports", "ae_flags")
    }  # trial/ is written by pipeline.demo.trial (tests/demo/test_trial_example.py); exports/
    # are hand-written clinic exports (tests/ingest/test_export_shapes.py); ae_flags/ is written
    # by pipeline.demo.ae_examples (tests/ingest/test_adverse_event_sources.py)
    assert on_disk.keys() == expected.keys()
    for name, data in expected.items():
        assert on_disk[name] == data, name
        assert len(data) < 100_000, name
    assert {name.split("/")[0] for name in expected} == set(KINDS)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "canonical"])
def test_example_gives_the_canonical_tables(kind, reference):
    raw, validation = _study(kind)
    assert validation.quarantined_rows == 0, validation.failures
    for table in TABLES:
        pd.testing.assert_frame_equal(_table(validation, table), _table(reference, table))
    summary, reasons = file_summary(raw, validation)
    assert reasons.empty
    assert (summary["rows_read"] == summary["rows_valid"]).all()
    sources = load_config(EXAMPLES / kind / "analysis.toml").sources
    assert set(summary["kind"]) == {s.kind for s in sources}


def test_reference_is_clean_and_non_trivial(reference):
    assert reference.quarantined_rows == 0
    assert len(reference.valid("patients")) == 15
    assert reference.valid("sessions")["depth"].nunique() == 2
    assert reference.valid("assessments")["visit"].nunique() == 5


def test_clinics_example_names_each_file_with_its_encoding(tmp_path):
    raw, validation = _study("clinics")
    summary, _ = file_summary(raw, validation)
    encodings = dict(zip(summary["file"], summary["encoding"], strict=True))
    assert encodings["riverside/patients.csv"] == "cp1252"
    assert encodings["hillview/patients.csv"] == "utf-8 (with byte-order mark)"
    assert summary.set_index("file").loc["hillview/sessions.csv", "blank_lines"] == 3
    assert validation.accounting.set_index("table").loc["patients", "file"] == (
        "northside/patients.csv, riverside/patients.csv, hillview/patients.csv"
    )


def test_validate_command_on_the_workbook_example(tmp_path):
    folder = tmp_path / "data" / "raw" / "examples" / "excel"  # outputs go to ../../../processed
    shutil.copytree(EXAMPLES / "excel", folder)
    result = outcomes("validate", "--config", "analysis.toml", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "visits.xlsx" in result.stdout and "0 quarantined" in result.stdout
    written = tmp_path / "data" / "processed" / "examples" / "excel" / "quarantine"
    assert (written / "summary.json").is_file()
