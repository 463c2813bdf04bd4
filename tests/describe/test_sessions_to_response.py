"""Sessions to first response: Kaplan–Meier, median, Cox (issue 17, SAP §4b).

Agreement with R ``survival`` run live (tests/r/survival_fit.R) and recovery of the course
simulator's known truths (:mod:`pipeline.demo.course`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import _require_r

from pipeline.demo.course import COURSE_TRUTHS, simulate_course, true_median, true_survival
from pipeline.describe import sessions_to_response as s2r

SCRIPT = Path(__file__).resolve().parents[1] / "r" / "survival_fit.R"


def _times(n: int, seed: int) -> pd.DataFrame:
    return s2r.response_times(simulate_course(n, seed), "nrs", ["chronicity", "depth"])


def _handmade() -> pd.DataFrame:
    """Ties, censoring, and a curve that stays exactly at 0.5 (R's midpoint rule)."""
    x = [(1, 1), (2, 1), (3, 1), (4, 1)]  # S(2) = 0.5 exactly: median (2 + 3) / 2
    y = [(1, 1), (1, 0), (2, 1), (3, 1), (3, 0), (5, 1), (6, 0), (6, 1), (7, 0)]
    rows = [("x", t, e, "u" if k % 2 else "v") for k, (t, e) in enumerate(x)]
    rows += [("y", t, e, "u" if k % 3 else "v") for k, (t, e) in enumerate(y)]
    frame = pd.DataFrame(rows, columns=["g", "sessions", "event", "a"])
    frame["event"] = frame["event"].astype(bool)
    frame["g"] = pd.Categorical(frame["g"], categories=["x", "y"])
    frame["a"] = pd.Categorical(frame["a"], categories=["u", "v"])
    return frame


def _run_r(folder: Path, frame: pd.DataFrame, reference: str, adjust_reference: str) -> dict:
    frame.assign(event=frame["event"].astype(int), g=frame["g"].astype(str)).loc[
        :, ["sessions", "event", "g", "a"]
    ].assign(a=frame["a"].astype(str)).to_csv(folder / "in.csv", index=False)
    prefix = folder / "out"
    done = subprocess.run(
        ["Rscript", str(SCRIPT), str(folder / "in.csv"), str(prefix), reference, adjust_reference],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"survival_fit.R failed:\n{done.stderr}")
    return {k: pd.read_csv(f"{prefix}_{k}.csv") for k in ("curve", "median", "cox")}


CASES = {
    "course": lambda: _times(300, 11).rename(columns={"depth": "g", "chronicity": "a"}),
    "handmade": _handmade,
}
REFERENCES = {"course": ("superficial", "acute"), "handmade": ("x", "u")}


@pytest.fixture(scope="module")
def r_fits(tmp_path_factory) -> dict:
    _require_r("survival")
    out = {}
    for name, build in CASES.items():
        folder = tmp_path_factory.mktemp(f"survival_{name}")
        out[name] = (build(), _run_r(folder, build(), *REFERENCES[name]))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_kaplan_meier_matches_survfit(r_fits, name):
    # R: summary(survfit(Surv(sessions, event) ~ g, data = d), censored = TRUE)
    #    (tests/r/survival_fit.R)
    frame, ref = r_fits[name]
    mine = s2r.kaplan_meier(frame, "g")
    ref = ref["curve"]
    assert len(mine) == len(ref)
    for column in ["sessions", "at_risk", "events", "survival", "std_err", "ci_low", "ci_high"]:
        np.testing.assert_allclose(
            mine[column].to_numpy(float), ref[column].to_numpy(float), rtol=1e-9, err_msg=column
        )
    assert list(mine["level"]) == list(ref["level"])


@pytest.mark.parametrize("name", list(CASES))
def test_median_matches_survfit_table(r_fits, name):
    # R: summary(survfit(...))$table[, c("median", "0.95LCL", "0.95UCL")]
    frame, ref = r_fits[name]
    mine = s2r.median_sessions(s2r.kaplan_meier(frame, "g")).set_index("level")
    ref = ref["median"].set_index("level")
    for column in ["median", "ci_low", "ci_high"]:
        np.testing.assert_allclose(
            mine.loc[ref.index, column].to_numpy(float),
            ref[column].to_numpy(float),
            err_msg=column,
        )
    if name == "handmade":
        assert mine.loc["x", "median"] == 2.5  # R's midpoint where S stays at 0.5


@pytest.mark.parametrize("name", list(CASES))
def test_cox_matches_coxph(r_fits, name):
    # R: summary(coxph(Surv(sessions, event) ~ a + g, data = d, ties = "efron"))$coefficients
    frame, ref = r_fits[name]
    mine = s2r.cox_model(frame, "g", adjust=["a"]).iloc[0]
    row = ref["cox"].set_index("term").loc[f"g{mine['level']}"]
    assert mine["log_hr"] == pytest.approx(row["log_hr"], rel=1e-6)
    assert mine["std_err"] == pytest.approx(row["std_err"], rel=1e-6)
    assert mine["p_value"] == pytest.approx(row["p_value"], rel=1e-5, abs=1e-12)


def test_course_truths_recovered():
    # seeds 1-5 all cover every truth; a 95 % CI misses 1 in 20 (seed 2026 misses the acute
    # share), so a fixed seed is used rather than a coverage claim
    times = _times(600, 1)
    curves = s2r.kaplan_meier(times, "chronicity")
    medians = s2r.median_sessions(curves).set_index("level")
    for level in ("acute", "chronic"):
        truth = true_median(level)  # 2 and 5 sessions
        assert medians.loc[level, "ci_low"] <= truth <= medians.loc[level, "ci_high"], level
    shares = s2r.share_within(curves, s2r.CLAIMED_SESSIONS).set_index("level")
    for level, k in s2r.CLAIMED_SESSIONS.items():
        truth = 1.0 - true_survival(level, k)
        assert shares.loc[level, "ci_low"] <= truth <= shares.loc[level, "ci_high"], level
    cox = s2r.cox_model(times, "depth", adjust=["chronicity"]).iloc[0]
    assert cox["adjusted_for"] == "chronicity"
    assert cox["ci_low"] <= COURSE_TRUTHS["hazard_ratio_deep"] <= cox["ci_high"]


def test_censoring_at_last_assessment_and_halved_endpoint():
    data = pd.DataFrame(
        {
            "patient_id": ["A"] * 4 + ["B"] * 3,
            "visit": pd.array([0, 1, 2, 3, 0, 1, 2], dtype="Int64"),
            "sessions_completed": [0, 1, 3, 4, 0, 2, 2],
            "nrs_responder": pd.array([None, False, True, True, None, False, None], "boolean"),
            "nrs_pct_change": [np.nan, -20.0, -40.0, -55.0, np.nan, -10.0, np.nan],
            "g": ["u"] * 4 + ["v"] * 3,
        }
    )
    mcid = s2r.response_times(data, "nrs", ["g"]).set_index("patient_id")
    assert (mcid.loc["A", "sessions"], mcid.loc["A", "event"]) == (3, True)
    # B: last assessment with the outcome recorded is visit 1 (2 sessions): censored there
    assert (mcid.loc["B", "sessions"], mcid.loc["B", "event"]) == (2, False)
    halved = s2r.response_times(data, "nrs", ["g"], endpoint="halved").set_index("patient_id")
    assert (halved.loc["A", "sessions"], halved.loc["A", "event"]) == (4, True)


def test_cox_without_events_in_a_level_is_not_estimated():
    frame = pd.DataFrame(
        {"sessions": [1, 2, 3, 4], "event": [True, True, False, False], "g": ["x", "x", "y", "y"]}
    )
    row = s2r.cox_model(frame, "g").iloc[0]
    assert np.isnan(row["hazard_ratio"]) and "not estimable" in row["note"]


def test_cox_with_a_singular_design_says_not_estimable():
    # The adjustment column repeats the compared grouping, so the information matrix is
    # singular (a 3-patient export ended in LinAlgError here): a note, never a traceback.
    frame = pd.DataFrame(
        {
            "sessions": [1, 2, 3, 2, 4, 5],
            "event": [True, False, True, True, True, False],
            "g": ["x", "x", "x", "y", "y", "y"],
            "a": ["p", "p", "p", "q", "q", "q"],
        }
    )
    row = s2r.cox_model(frame, "g", adjust=["a"]).iloc[0]
    assert np.isnan(row["hazard_ratio"]) and "not estimable" in row["note"]


def test_cox_with_one_group_responding_before_the_other_is_not_estimable():
    frame = pd.DataFrame(
        {
            "sessions": [1, 1, 2, 2, 3, 5, 6, 7, 8, 9],
            "event": [True] * 10,
            "g": pd.Categorical(["b"] * 5 + ["a"] * 5, categories=["a", "b"]),
        }
    )
    row = s2r.cox_model(frame, "g").iloc[0]
    assert np.isnan(row["log_hr"]) and "infinite" in row["note"]
