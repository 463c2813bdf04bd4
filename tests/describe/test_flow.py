import pandas as pd
from factories import append_rows, write_study

from pipeline.describe.flow import flow_counts
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.validate.study import validate_study


def test_flow_counts_follow_patients_from_enrolment_to_analysis(tmp_path):
    patients = append_rows(
        "patients",
        "P4,,2025-01-06,50,female,3,no,no",  # no site: excluded
        "P5,Riverside,2025-01-06,70,male,40,no,no",  # valid, never needled
    )
    paths = write_study(tmp_path, patients=patients)
    validation = validate_study(read_raw_tables(paths))
    diagnostics = pd.DataFrame(
        {
            "analysis": ["trajectory_depth", "trajectory_depth", "trajectory_twitch"],
            "outcome": ["nrs", "vas", "nrs"],
            "status": ["ok", "not estimable", "ok"],
            "n_patients": [3, 0, 2],
        }
    )
    flow = flow_counts(validation, diagnostics).set_index("step")["patients"].to_dict()
    assert flow == {
        "enrolled": 5,
        "excluded": 1,
        "excluded:not_nullable:site": 1,
        "included": 4,
        "not_treated": 1,
        "treated": 3,
        "assessed:0": 3,
        "assessed:1": 2,
        "assessed:2": 1,
        "analysed:nrs": 3,  # the primary analysis only, and only fits that were estimable
    }
    assert flow["enrolled"] == flow["excluded"] + flow["included"]
    assert flow["included"] == flow["treated"] + flow["not_treated"]
