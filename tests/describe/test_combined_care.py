"""Combined care: co-intervention groups, covariate and effect-modifier models."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from pipeline.demo.combined import COMBINED_TRUTHS, simulate_combined, true_depth_effect
from pipeline.derive.dataset import co_intervention_groups, co_intervention_items
from pipeline.describe.combined_care import combined_care


@pytest.fixture(scope="module")
def simulated():
    data, groups = simulate_combined(800, 1)
    return data, groups, *combined_care(data, groups, "nrs", ("depth",))


def test_depth_within_each_group_recovers_the_truth(simulated):
    # truth: pipeline.demo.combined, deep adds 1.0, and 0.8 more with exercise
    *_, estimates, _ = simulated
    within = estimates[estimates["model"] == "modifier"]
    assert len(within) == 4
    for row in within.itertuples():
        truth = true_depth_effect(row.co_intervention)
        assert row.ci_low <= truth <= row.ci_high, row.co_intervention


def test_the_interaction_is_detected_and_is_a_likelihood_ratio(simulated):
    *_, tests = simulated
    row = tests.iloc[0]
    assert row["df"] == 3 and row["groups"] == 4
    assert row["chisq"] == pytest.approx(2 * (row["loglik_full"] - row["loglik_reduced"]))
    assert row["p_value"] == pytest.approx(stats.chi2.sf(row["chisq"], 3))
    assert row["p_value"] < 0.01  # true modifier 0.8 with exercise


def test_no_true_modifier_no_detected_one():
    # the same data with the interaction switched off: truth 0 within every group difference
    data, groups = simulate_combined(800, 1)
    co = data["patient_id"].map(groups.set_index("patient_id")["co_intervention"].astype(str))
    deep = data["depth"].astype(str) == "deep"
    data = data.assign(
        nrs_change=data["nrs_change"] + deep * co.map(COMBINED_TRUTHS["deep_x_co"]).to_numpy()
    )
    estimates, tests = combined_care(data, groups, "nrs", ("depth",))
    within = estimates[estimates["model"] == "modifier"]
    for row in within.itertuples():
        assert row.ci_low <= COMBINED_TRUTHS["deep"] <= row.ci_high
    assert tests["p_value"].iloc[0] > 0.05


def test_small_groups_are_left_out(simulated):
    data, groups, *_ = simulated
    estimates, _ = combined_care(data, groups, "nrs", ("depth",), min_patients=80)
    kept = set(estimates["co_intervention"]) - {"all"}
    # manual therapy alone has about 0.15 x 400 = 60 patients per depth level
    assert "manual_therapy" not in kept
    assert kept == {"none", "exercise", "exercise+manual_therapy"}
    assert estimates["patients"].min() >= 80


def test_co_intervention_text_is_read_by_its_codes():
    text = pd.Series(["Exercise; Manual therapy", "manual_therapy", "none", "yoga", None])
    items = co_intervention_items(text)
    assert items["exercise"].tolist()[:4] == [True, False, False, False]
    assert items["manual_therapy"].tolist()[:4] == [True, True, False, False]
    assert items["other"].tolist()[:4] == [False, False, False, True]
    assert items.iloc[4].isna().all()  # empty: not recorded, never "none"
    sessions = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B", "C"],
            "co_intervention": [
                *("exercise", "exercise; manual therapy", "exercise", "none"),
                *(None, None),
            ],
        }
    )
    groups = co_intervention_groups(sessions).set_index("patient_id")
    assert groups.loc["A", "co_intervention"] == "exercise"  # manual therapy in 1 of 3
    assert groups.loc["B", "co_intervention"] == "none"
    assert "C" not in groups.index


def test_the_likelihood_ratio_agrees_with_lmer(tmp_path, lmer_r):
    # R: anova(lmer(full, REML = FALSE), lmer(reduced, REML = FALSE)) from the two ML
    # log-likelihoods of tests/r/lmer_fit.R (lme4 + lmerTest)
    data, groups = simulate_combined(200, 4)
    _, tests = combined_care(data, groups, "nrs", ("depth",), min_patients=5)
    rows = data[["patient_id", "nrs_change", "nrs_baseline", "weeks", "chronicity", "depth"]]
    rows = rows.merge(groups, on="patient_id").astype({"chronicity": str, "depth": str})
    rows = rows.astype({"co_intervention": str})
    csv = tmp_path / "combined.csv"
    rows.to_csv(csv, index=False)
    relevel = {"depth": "superficial", "co_intervention": "none", "chronicity": "acute"}
    base = "nrs_change ~ nrs_baseline + weeks + chronicity + "
    logliks = {}
    for name, terms in (
        ("reduced", "depth + co_intervention"),
        ("full", "depth * co_intervention"),
    ):
        table = lmer_r(csv, base + terms + " + (1 | patient_id)", False, relevel=relevel)
        logliks[name] = float(table.loc[table["kind"] == "loglik", "value"].iloc[0])
    row = tests.iloc[0]
    assert row["loglik_full"] == pytest.approx(logliks["full"], abs=1e-5)
    assert row["loglik_reduced"] == pytest.approx(logliks["reduced"], abs=1e-5)
