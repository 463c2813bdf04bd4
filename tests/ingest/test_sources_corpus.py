"""The broken-input corpus (tests/corpus/): every bad file or configuration ends as it must.

A file- or configuration-level problem is one sentence naming the problem (exit code 2 at the
command line); a row-level problem quarantines the row with its reason; an unreadable or
out-of-range score cell of an assessment with another readable score is blanked, its row kept,
and recorded with its file, line, column, value and reason. Either way the raw files are left
unchanged, and, when the data could be read, every table and every source file adds up: raw rows
= valid + quarantined (+ not used, for a file).
"""

import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from command import assert_one_sentence_error, outcomes
from factories import outputs_and_mcid

from pipeline.config.settings import load_config
from pipeline.errors import UserError
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import sha256_of
from pipeline.validate.quality import blanked_cells, file_summary
from pipeline.validate.study import validate_study

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))["case"]
TAIL = outputs_and_mcid("out/processed", "out/reports")


def _project(case: dict, tmp_path: Path) -> Path:
    folder = tmp_path / case["name"]
    shutil.copytree(CORPUS / case["name"], folder)
    config = folder / "analysis.toml"
    config.write_text((folder / "sources.toml").read_text(encoding="utf-8") + TAIL)
    return config


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_corpus_is_large_and_every_case_has_its_folder():
    assert len(CASES) >= 30
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert folders == set(names)
    assert sum(c["expect"] == "error" for c in CASES) >= 10
    assert sum(c["expect"] == "quarantine" for c in CASES) >= 10
    assert sum(c["expect"] == "blank" for c in CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case, tmp_path):
    originals = _hashes(CORPUS / case["name"])
    config = _project(case, tmp_path)
    before = _hashes(config.parent)
    if case["expect"] == "error":
        with pytest.raises(UserError) as info:
            read_sources(load_config(config).sources)
        message = str(info.value)
        assert case["message"] in message, message
        assert "\n" not in message
    elif case["expect"] == "empty":
        validation = validate_study(read_sources(load_config(config).sources))
        assert validation.failures.empty, validation.failures
        _assert_valid_rows(case, validation)
    elif case["expect"] == "blank":
        _assert_blanked(case, config)
    else:
        raw = read_sources(load_config(config).sources)
        validation = validate_study(raw)
        _assert_valid_rows(case, validation)
        failures = validation.failures
        mine = failures[(failures["table"] == case["table"]) & (failures["check"] == case["check"])]
        assert len(mine) == case["rows"], failures
        assert mine["reason"].str.contains(case["message"], regex=False).any(), mine["reason"]
        quarantine = validation.tables[case["table"]].quarantine
        assert set(mine["source_row"]) <= set(quarantine["source_row"])
        assert quarantine["reason"].str.contains(case["message"], regex=False).any()
        assert not set(mine["source_row"]) & set(validation.blanked["source_row"])
        acc = validation.accounting
        assert (acc["raw_rows"] == acc["processed_rows"] + acc["quarantined_rows"]).all()
        summary, _ = file_summary(raw, validation)
        read = summary["rows_valid"] + summary["rows_quarantined"] + summary["rows_unused"]
        assert (summary["rows_read"] == read).all()
        assert summary["rows_quarantined"].sum() >= 1
    assert _hashes(config.parent) == before
    assert _hashes(CORPUS / case["name"]) == originals


def _assert_blanked(case: dict, config: Path) -> None:
    """The case's score cells are blanked, their rows kept, and each cell located in its file."""
    raw = read_sources(load_config(config).sources)
    validation = validate_study(raw)
    _assert_valid_rows(case, validation)
    cells = validation.tables[case["table"]].blanked
    mine = cells[cells["check"] == case["check"]]
    assert len(mine) == case["rows"], cells
    assert mine["reason"].str.contains(case["message"], regex=False).all(), mine["reason"]
    kept = validation.valid(case["table"])
    assert set(mine["source_row"]) <= set(kept["source_row"])  # the rows are kept ...
    row = kept.set_index("source_row").loc[mine["source_row"]]
    for column, at in zip(mine["column"], mine["source_row"], strict=True):
        assert row.loc[at, column] is pd.NA or pd.isna(row.loc[at, column])  # ... the cell blank
    quarantine = validation.tables[case["table"]].quarantine
    assert not set(mine["source_row"]) & set(quarantine["source_row"])
    assert validation.failures[validation.failures["check"] == case["check"]].empty
    located = blanked_cells(raw, validation)
    assert len(located) == len(cells)
    assert located["source_file"].notna().all() and (located["source_line"] >= 2).all()
    assert set(located["value"]) == set(cells["value"])
    acc = validation.accounting.set_index("table")
    assert (acc["raw_rows"] == acc["processed_rows"] + acc["quarantined_rows"]).all()
    assert acc.loc[case["table"], "blanked_cells"] == len(cells)
    summary, _ = file_summary(raw, validation)
    read = summary["rows_valid"] + summary["rows_quarantined"] + summary["rows_unused"]
    assert (summary["rows_read"] == read).all()
    assert summary["cells_blanked"].sum() == len(cells)


def _assert_valid_rows(case: dict, validation) -> None:
    for table, rows in case.get("valid", {}).items():
        assert len(validation.valid(table)) == rows, table
    acc = validation.accounting
    assert (acc["raw_rows"] == acc["processed_rows"] + acc["quarantined_rows"]).all()


CLI_CASES = [c for c in CASES if c.get("cli") and c["expect"] == "error"]
EMPTY_CASES = [c for c in CASES if c.get("cli") and c["expect"] == "empty"]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c["name"] for c in CLI_CASES])
def test_cli_error_is_one_sentence_and_exit_2(case, tmp_path):
    config = _project(case, tmp_path)
    before = _hashes(config.parent)
    assert_one_sentence_error(outcomes("validate", "--config", config), case["message"])
    assert _hashes(config.parent) == before


@pytest.mark.parametrize("case", EMPTY_CASES, ids=[c["name"] for c in EMPTY_CASES])
def test_cli_empty_result_is_written_without_a_traceback(case, tmp_path):
    config = _project(case, tmp_path)
    result = outcomes("validate", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    processed = config.parent / "out" / "processed"
    assert (processed / "assessments.parquet").is_file()


def test_cli_every_patient_quarantined_exits_1_without_a_traceback(tmp_path):
    case = next(c for c in CASES if c["name"] == "every-patient-quarantined")
    result = outcomes("validate", "--config", _project(case, tmp_path))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "12 row(s) quarantined" in result.stdout


def test_cli_quarantine_case_prints_the_file_summary_and_writes_it(tmp_path):
    case = next(c for c in CASES if c["name"] == "visits-out-of-order")
    config = _project(case, tmp_path)
    result = outcomes("validate", "--config", config)
    assert result.returncode == 1, result.stderr
    assert "visits.csv" in result.stdout and "2 quarantined" in result.stdout
    # the rule in the data dictionary's words; the check's name only in the files, for programs
    assert "2 x dated out of the order of its visit or session number" in result.stdout
    assert "out_of_order" not in result.stdout
    quarantine = config.parent / "out" / "processed" / "quarantine"
    assert (quarantine / "summary.json").is_file() and (quarantine / "summary.csv").is_file()
    assessments = (quarantine / "assessments.csv").read_text()
    assert "source_file,source_line" in assessments and "out_of_order" in assessments


def test_cli_run_on_an_empty_result_is_one_sentence_and_exit_2(tmp_path):
    case = next(c for c in CASES if c["name"] == "header-no-rows")
    result = outcomes("run", "--config", _project(case, tmp_path))
    assert_one_sentence_error(result, "no valid assessment rows to analyse")
