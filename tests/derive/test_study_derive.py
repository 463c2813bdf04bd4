"""Derivation of a declared design: direction-aware change and responders, time without dates,
studies without a session log, randomised arms and declared covariates as categoricals."""

from pathlib import Path

import pandas as pd
import pytest

from pipeline.config.settings import load_config
from pipeline.config.study import Mcid, library_outcome
from pipeline.derive.dataset import add_change_and_responders, analysis_dataset, outcome_column
from pipeline.ingest.combine import read_sources
from pipeline.validate.study import validate_study

PATIENTS = """id,clinic,age,sex,group,diagnosis,symptoms
A.B.,Hill,40,female,usual,facet,2
A.B.,Hill,55,male,needling,radicular,0.5
C.D.,Hill,61,female,needling,facet,10
"""
# wide, no dates; PSFS is higher-is-better, NDI higher-is-worse
WIDE = PATIENTS.strip().replace("symptoms", "symptoms,ndi_0,ndi_6,psfs_0,psfs_6") + "\n"
ROWS = ["20,12,3.0,5.5", "30,29,4.0,4.5", "18,,6.0,"]


def _study(tmp_path: Path, extra: str = "") -> Path:
    lines = WIDE.splitlines()
    body = [lines[0]] + [f"{line},{row}" for line, row in zip(lines[1:], ROWS, strict=True)]
    (tmp_path / "wide.csv").write_text("\n".join(body) + "\n", encoding="utf-8")
    config = f"""
[[sources]]
kind = "wide"
files = ["wide.csv"]
patient_id = "row"
id_prefix = "R"
units = {{ symptom_weeks = "years" }}

[sources.columns]
site = "clinic"
age = "age"
sex = "sex"
arm = "group"
diagnosis = "diagnosis"
symptom_weeks = "symptoms"

[sources.assessments]
columns = {{ ndi = "ndi_{{t}}", psfs = "psfs_{{t}}" }}
points = {{ "0" = 0, "6" = 1 }}
weeks = {{ "0" = 0, "6" = 6 }}

[outcomes.ndi]
instrument = "ndi"

[outcomes.psfs]
instrument = "psfs"

[[comparisons]]
kind = "randomised"
reference = "usual"
levels = ["usual", "needling"]

[covariates.diagnosis]
kind = "category"
reference = "radicular"

[time]
source = "weeks"

[model]
covariates = ["age", "diagnosis"]

[outputs]
processed = "p"
reports = "r"
{extra}
"""
    path = tmp_path / "analysis.toml"
    path.write_text(config, encoding="utf-8")
    return path


@pytest.fixture()
def derived(tmp_path):
    config = load_config(_study(tmp_path))
    validation = validate_study(read_sources(config.sources), config.study.ranges())
    data = analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    return validation, data


def test_a_wide_file_without_dates_or_sessions_derives(derived):
    validation, data = derived
    assert validation.quarantined_rows == 0
    assert len(validation.valid("sessions")) == 0
    # initials repeat: the row's line number identifies the patient
    assert sorted(data["patient_id"].unique()) == ["R2", "R3", "R4"]
    assert data.loc[data["visit"] == 1, "weeks"].tolist() == [6.0, 6.0]
    assert (data["n_sessions"] == 0).all() and data["depth"].isna().all()
    # 2 years of symptoms, in weeks (365.25 / 7 per year)
    first = data.drop_duplicates("patient_id").set_index("patient_id")
    assert first.loc["R2", "symptom_weeks"] == pytest.approx(2 * 365.25 / 7, abs=1e-6)
    assert first.loc["R3", "chronicity"] == "chronic"


def test_arm_and_declared_covariates_have_their_reference_first(derived):
    _, data = derived
    assert list(data["arm"].cat.categories) == ["usual", "needling"]
    assert list(data["diagnosis"].cat.categories) == ["radicular", "facet"]


def test_responders_follow_the_direction_of_each_outcome(derived):
    _, data = derived
    follow = data[data["visit"] == 1].set_index("patient_id")
    # NDI (higher worse, MCID 7.5 points): 20 -> 12 improves by 8 (responder); 30 -> 29 not
    assert bool(follow.loc["R2", "ndi_responder"]) and not bool(follow.loc["R3", "ndi_responder"])
    # PSFS (higher better, MCID 2 points): 3.0 -> 5.5 rises 2.5 (responder); 4.0 -> 4.5 not
    assert bool(follow.loc["R2", "psfs_responder"])
    assert not bool(follow.loc["R3", "psfs_responder"])
    assert follow.loc["R2", "psfs_change"] == pytest.approx(2.5)


def test_out_of_range_scores_of_a_declared_outcome_are_caught(tmp_path):
    config = load_config(_study(tmp_path))
    text = (tmp_path / "wide.csv").read_text().replace("3.0,5.5", "3.0,11")
    (tmp_path / "wide.csv").write_text(text)
    validation = validate_study(read_sources(config.sources), config.study.ranges())
    # the declared outcome's range (0-10) is checked: the cell is blanked when the row keeps
    # another outcome, or the row quarantined when it does not (docs/ingestion.md)
    caught = pd.concat([validation.failures, validation.tables["assessments"].blanked])
    assert (caught["column"] == "psfs").any()
    assert "10" in caught.loc[caught["column"] == "psfs", "check"].iloc[0]


def test_a_fall_is_no_improvement_on_a_higher_is_better_scale():
    frame = pd.DataFrame(
        {"patient_id": ["a", "a", "b", "b"], "visit": [0, 1, 0, 1], "ppt": [3.0, 1.5, 3.0, 4.5]}
    )
    ppt = library_outcome("ppt", "ppt", Mcid(1.0, None))
    out = add_change_and_responders(frame, {}, (ppt,))
    assert out["ppt_responder"].tolist()[1::2] == [False, True]
    assert out["ppt_pct_change"].tolist()[1::2] == [-50.0, 50.0]
    assert outcome_column("vas") == "vas_mm" and outcome_column("ppt") == "ppt"


def test_time_from_a_visit_to_weeks_mapping(tmp_path):
    text = _study(tmp_path).read_text()
    text = text.replace('source = "weeks"', 'source = "visits"\nvisit_weeks = { "0" = 0, "1" = 8 }')
    (tmp_path / "analysis.toml").write_text(text)
    config = load_config(tmp_path / "analysis.toml")
    validation = validate_study(read_sources(config.sources), config.study.ranges())
    data = analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    assert sorted(data["weeks"].unique()) == [0.0, 8.0]
