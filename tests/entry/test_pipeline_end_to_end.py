"""The whole pipeline on the committed demo data, as `make report` runs it."""

import re
from pathlib import Path

import pandas as pd
import pytest
from factories import DEMO, DEMO_INPUTS, write_config

from pipeline.config.settings import load_config
from pipeline.demo.simulate import TRUE_EFFECTS, add_bad_rows, simulate_study, write_raw_tables
from pipeline.ingest.raw_tables import sha256_of
from pipeline.runner import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    inputs = dict(DEMO_INPUTS)
    before = {name: sha256_of(path) for name, path in inputs.items()}
    config = load_config(write_config(folder, inputs))
    result = run(config, project_root=ROOT)
    return folder, config, result, inputs, before


def test_row_accounting_balances_and_bad_rows_are_quarantined(demo_run):
    folder, *_ = demo_run
    # the processed copy is complete; the published one suppresses small counts
    acc = pd.read_csv(folder / "processed" / "row_accounting.csv").set_index("table")
    assert (acc["raw_rows"] == acc["processed_rows"] + acc["quarantined_rows"]).all()
    # the demo holds 10 deliberately bad rows (see README); the duplicated assessment
    # quarantines both copies of its key, so 11 rows are quarantined
    assert acc["quarantined_rows"].to_dict() == {"patients": 1, "sessions": 3, "assessments": 7}
    for table in ("patients", "sessions", "assessments"):
        quarantine = pd.read_csv(folder / "processed" / "quarantine" / f"{table}.csv")
        assert len(quarantine) == acc.loc[table, "quarantined_rows"]
        assert quarantine["reason"].notna().all() and quarantine["failed_checks"].notna().all()
        processed = pd.read_parquet(folder / "processed" / f"{table}.parquet")
        assert len(processed) == acc.loc[table, "processed_rows"]


def test_fixed_effects_table_has_the_agreed_columns(demo_run):
    folder, *_ = demo_run
    fe = pd.read_csv(folder / "reports" / "tables" / "fixed_effects.csv")
    assert list(fe.columns) == [
        "analysis",
        "outcome",
        "term",
        "estimate",
        "std_err",
        "df",
        "ci_low",
        "ci_high",
        "p_value",
    ]
    primary = fe[(fe["analysis"] == "trajectory_depth") & (fe["outcome"] == "nrs")]
    # three sites (< 5): site is a fixed effect, Hillview the reference (SAP §4.5)
    assert set(primary["term"]) == {
        "Intercept",
        "depth[T.deep]",
        "chronicity[T.chronic]",
        "site[T.Northside]",
        "site[T.Riverside]",
        "weeks",
        "weeks:depth[T.deep]",
    }
    assert {"nrs", "vas", "odi"} == set(fe["outcome"])
    assert (fe["ci_low"] < fe["estimate"]).all() and (fe["estimate"] < fe["ci_high"]).all()


def test_model_recovers_the_true_depth_by_time_effect(demo_run):
    """The simulator's deep-minus-superficial NRS slope (pipeline/demo/simulate.py TRUE_EFFECTS)."""
    folder, *_ = demo_run
    fe = pd.read_csv(folder / "reports" / "tables" / "fixed_effects.csv")
    fe = fe[(fe["analysis"] == "trajectory_depth") & (fe["outcome"] == "nrs")].set_index("term")
    truth = TRUE_EFFECTS["nrs"]["deep_x_time_per_week"]
    row = fe.loc["weeks:depth[T.deep]"]
    assert row["ci_low"] <= truth <= row["ci_high"]
    assert row["ci_high"] < 0  # 240 patients are enough to see the effect
    assert (
        fe.loc["weeks", "ci_low"]
        <= TRUE_EFFECTS["nrs"]["time_per_week"]
        <= fe.loc["weeks", "ci_high"]
    )


def test_report_is_self_contained_and_shows_no_identifiers_or_dates(demo_run):
    folder, _, _, inputs, _ = demo_run
    html = (folder / "reports" / "outcomes.html").read_text(encoding="utf-8")
    for section in ("The answer", "Provenance", "Data", "Table 1", "Outcomes", "Methods"):
        assert section in html
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', html)
    assert "http://" not in html and "https://" not in html  # nothing fetched from outside
    for path in inputs.values():
        assert sha256_of(path) in html
    raw = pd.concat([pd.read_csv(p, dtype=str) for p in inputs.values()], ignore_index=True)
    ids = set(raw["patient_id"].dropna())
    dates = set()
    for column in ("enrolment_date", "session_date", "assessment_date"):
        dates |= set(raw[column].dropna())
    words = set(re.findall(r"[A-Za-z0-9-]+", re.sub(r"base64,[^\"]+", "", html)))
    assert not ids & words, "patient identifiers in the report"
    assert not dates & words, "calendar dates of patients in the report"


def test_inputs_unchanged_and_outputs_reproducible(demo_run):
    folder, config, _, inputs, before = demo_run
    assert before == {name: sha256_of(path) for name, path in inputs.items()}
    # every table and the HTML byte for byte (the fit times are in the run log, not in
    # diagnostics.csv); the PDF embeds Chromium's creation date and the manifest its hash and
    # the time of the run (README)
    outputs = sorted(
        p
        for p in (folder / "reports").rglob("*.*")
        if p.suffix != ".pdf" and p.name != "manifest.json"
    )
    assert folder / "reports" / "outcomes.html" in outputs

    def content(path: Path) -> bytes:
        return path.read_bytes()

    first = {p: content(p) for p in outputs}
    run(config, project_root=ROOT)
    for path in outputs:
        assert first[path] == content(path), path


def test_committed_demo_is_what_the_readme_command_writes(tmp_path):
    # README: outcomes simulate --patients 240 --seed 2026 --bad-rows --out data/raw/demo
    tables, _ = add_bad_rows(simulate_study(240, 2026), seed=2026)
    written = write_raw_tables(tables, tmp_path)
    for name, path in written.items():
        assert path.read_bytes() == (DEMO / f"{name}.csv").read_bytes(), name


def test_safety_and_responder_tables_recover_the_simulated_truth(demo_run):
    folder, *_ = demo_run
    tables = folder / "reports" / "tables"
    ratio = pd.read_csv(tables / "adverse_event_rate_ratio.csv").iloc[0]
    truth = (
        TRUE_EFFECTS["adverse_events"]["p_per_session_deep"]
        / TRUE_EFFECTS["adverse_events"]["p_per_session_superficial"]
    )  # 0.20 / 0.08 = 2.5
    assert ratio["ci_low"] <= truth <= ratio["ci_high"]
    resp = pd.read_csv(tables / "responders.csv")
    assert set(resp["outcome"]) == {"nrs", "vas", "odi"}
    assert set(resp["quantity"]) == {"proportion", "risk difference", "odds ratio"}
