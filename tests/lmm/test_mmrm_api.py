"""``pipeline.api.fit_mmrm`` on data that do not look like the demo: any outcome, any group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import api
from pipeline.analyses.simulated_trial import simulate_mmrm_trial


@pytest.fixture(scope="module")
def three_arms() -> pd.DataFrame:
    """Three arms (text levels), a baseline row per patient (visit 0, excluded) and a sex
    covariate; the response is called ``pain score``, its baseline ``pain score_baseline``."""
    rng = np.random.default_rng(3)
    parts = []
    for k, arm in enumerate(["placebo", "low", "high"]):
        part = simulate_mmrm_trial(20, 3, 0.4 * k, seed=10 + k)
        part = part[part["arm"] == "active"].assign(arm=arm, patient=part["patient"] + 100 * k)
        parts.append(part)
    data = pd.concat(parts, ignore_index=True)
    base = data.drop_duplicates("patient").assign(visit=0, y=lambda d: d["baseline"])
    data = pd.concat([data, base], ignore_index=True)
    ids = data["patient"].unique()
    sex = dict(zip(ids, rng.choice(["f", "m"], ids.size), strict=True))
    return data.rename(
        columns={"patient": "patient_id", "y": "pain score", "baseline": "pain score_baseline"}
    ).assign(sex=lambda d: d["patient_id"].map(sex))


def test_any_outcome_and_group(three_arms: pd.DataFrame) -> None:
    res = api.fit_mmrm(
        three_arms,
        outcome="pain score",
        group="arm",
        reference="placebo",
        covariates=["sex"],
        df_method="satterthwaite",
    )
    assert res.fit.n_obs == int((three_arms["visit"] > 0).sum())
    assert set(res.differences["contrast"]) == {"low - placebo", "high - placebo"}
    assert (
        len(res.differences) == 6 and res.differences["p_holm"].ge(res.differences["p_value"]).all()
    )
    assert len(res.lsmeans) == 9 and set(res.lsmeans["level"]) == {"placebo", "low", "high"}
    # the LS-mean difference at each visit is the difference of the LS means
    means = res.lsmeans.set_index(["level", "visit"])["estimate"]
    high = res.differences[res.differences["contrast"] == "high - placebo"]
    for row in high.itertuples():
        assert row.estimate == pytest.approx(means["high", row.visit] - means["placebo", row.visit])
    assert res.structure_trials["structure"].iloc[0] == "us"


def test_missing_column_is_reported(three_arms: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="not in the data"):
        api.fit_mmrm(three_arms, outcome="pain score", group="depth")
