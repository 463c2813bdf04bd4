"""Visit-sheet and REDCap sources map a study's declared columns as the long and wide ones do.

A declared outcome (Roland–Morris), a declared covariate (diagnosis) and the randomised arm are
columns of a study, not of the data contract: each source shape must be able to map them.
"""

from pathlib import Path

from pipeline.config.settings import load_config
from pipeline.ingest.combine import read_sources
from pipeline.validate.study import validate_study

DESIGN = """
[outcomes.rmdq]
instrument = "rmdq"

[[comparisons]]
kind = "randomised"
column = "arm"
reference = "sham"

[covariates.diagnosis]
kind = "category"
reference = "nonspecific"

[time]
source = "visits"
visit_weeks = { "0" = 0, "1" = 13 }

[model]
covariates = ["age", "diagnosis"]

[outputs]
processed = "out"
reports = "rep"
"""


def _ingest(tmp_path: Path, sources: str, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    config = tmp_path / "analysis.toml"
    config.write_text(sources + DESIGN, encoding="utf-8")
    cfg = load_config(config)
    return validate_study(read_sources(cfg.sources), cfg.study.ranges())


SHEET = """\
id,site,age,dx,group,visit_date,session_number,depth,twitch,visit,roland
P1,A,44,radicular,deep,2025-01-06,1,deep,yes,0,14
P1,,,,,2025-04-07,,,,1,9
P2,A,61,nonspecific,sham,2025-01-07,1,superficial,no,0,12
P2,,,,,2025-04-08,,,,1,
P3,A,50,nonspecific,sham,2025-01-08,1,superficial,no,0,30
"""
SHEET_SOURCE = """[[sources]]
kind = "visit_sheet"
files = ["visits.csv"]
[sources.columns]
patient_id = "id"
diagnosis = "dx"
arm = "group"
rmdq = "roland"
"""


def test_a_visit_sheet_maps_declared_outcomes_covariates_and_the_arm(tmp_path):
    v = _ingest(tmp_path, SHEET_SOURCE, {"visits.csv": SHEET})
    patients = v.valid("patients").set_index("patient_id")
    assert patients.loc["P1", "diagnosis"] == "radicular"
    assert patients.loc["P2", "arm"] == "sham"
    assessments = v.valid("assessments").sort_values(["patient_id", "visit"])
    assert assessments.loc[assessments["patient_id"] == "P1", "rmdq"].tolist() == [14, 9]
    # Roland–Morris is 0–24: 30 is quarantined with the declared range, as a long file's would
    # be; P2's visit 1 has a visit number but no score of the study's outcome
    bad = v.tables["assessments"].quarantine.set_index("patient_id")
    reasons = dict(zip(bad.index, bad["reason"], strict=True))
    assert reasons == {
        "P3": "rmdq = 30 is above the maximum 24.0",
        "P2": "no outcome recorded (rmdq)",
    }


DICTIONARY = (
    'Variable / Field Name,Form Name,Field Type,Field Label,"Choices, Calculations, OR Slider '
    'Labels"\n'
    "record_id,patient,text,Record ID,\n"
    "age,patient,text,Age,\n"
    'dx,patient,radio,Diagnosis,"1, nonspecific | 2, radicular"\n'
    'allocation,patient,radio,Arm,"1, sham | 2, deep"\n'
    "roland,outcomes,text,RMDQ,\n"
)
EXPORT = (
    "record_id,redcap_event_name,redcap_data_access_group,age,dx,allocation,roland\n"
    "1,baseline_arm_1,north,44,2,2,15\n"
    "1,month_3_arm_1,north,,,,8\n"
    "2,baseline_arm_1,north,58,1,1,11\n"
)
REDCAP = """[[sources]]
kind = "redcap"
files = ["export.csv"]
dictionary = "dict.csv"
[sources.instruments]
patients = "patient"
assessments = "outcomes"
[sources.events]
baseline = 0
month_3 = 1
[sources.columns]
site = "redcap_data_access_group"
diagnosis = "dx"
arm = "allocation"
rmdq = "roland"
"""


def test_a_redcap_export_maps_declared_outcomes_covariates_and_the_arm(tmp_path):
    v = _ingest(tmp_path, REDCAP, {"export.csv": EXPORT, "dict.csv": DICTIONARY})
    assert v.quarantined_rows == 0, v.failures
    patients = v.valid("patients").set_index("patient_id")
    # coded fields are written as their labels, a declared column as any other
    assert patients.loc["1", "diagnosis"] == "radicular" and patients.loc["1", "arm"] == "deep"
    assert patients.loc["2", "arm"] == "sham"
    assessments = v.valid("assessments").sort_values(["patient_id", "visit"])
    assert assessments[["patient_id", "visit", "rmdq"]].to_numpy().tolist() == [
        ["1", 0, 15],
        ["1", 1, 8],
        ["2", 0, 11],
    ]
