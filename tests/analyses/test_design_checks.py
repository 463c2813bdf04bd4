"""What the run checks about the design before fitting anything (pipeline.runner.check_design)."""

import pandas as pd
import pytest

from pipeline.config.settings import load_config
from pipeline.errors import UserError
from pipeline.runner import check_design


def _data(chronicity: list) -> pd.DataFrame:
    """Two patients, two visits each, one in each depth and twitch group."""
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P2"],
            "visit": [0, 1, 0, 1],
            "depth": ["deep", "deep", "superficial", "superficial"],
            "twitch": ["twitch", "twitch", "no twitch", "no twitch"],
            "chronicity": chronicity,
            "age": [40.0, 40.0, 55.0, 55.0],
            "nrs": [7, 5, 6, 4],
        }
    )


def test_a_covariate_with_one_value_for_every_patient_stops_before_any_fit():
    # Found with an all-chronic cohort (common in low back pain): the run fitted 30 models,
    # then stopped because the primary model could not estimate chronicity.
    study = load_config().study
    check_design(_data(["chronic"] * 2 + ["acute"] * 2), study, ["chronicity", "age"])
    with pytest.raises(UserError, match="the covariate chronicity has the one value 'chronic'"):
        check_design(_data(["chronic"] * 4), study, ["age", "chronicity"])
    with pytest.raises(UserError, match="the covariate chronicity has no value for every patient"):
        check_design(_data([None] * 4), study, ["chronicity"])
    check_design(_data(["chronic"] * 4), study, ["age"])  # (not a covariate: no check)
