"""Safety signals: flagged patients who were needled (issue 17, SAP §4b)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.demo.simulate import simulate_study
from pipeline.derive.adverse_events import canonical_adverse_events, sessions_recorded
from pipeline.describe import safety_signals as ss


def _patients() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["A", "B", "C", "D"],
            "age": pd.array([40, 10, 55, pd.NA], dtype="Int64"),
            "anticoagulants": pd.array([True, False, False, pd.NA], dtype="boolean"),
            "bleeding_disorder": pd.array([False, False, False, pd.NA], dtype="boolean"),
        }
    )


def _sessions() -> pd.DataFrame:
    rows = [("A", 1, "deep", "bruising"), ("A", 2, "superficial", "none")]
    rows += [("B", 1, "superficial", "none"), ("C", 1, "deep", "soreness")]
    rows += [("C", 2, "deep", "none"), ("D", 1, "deep", "soreness")]
    frame = pd.DataFrame(rows, columns=["patient_id", "session_number", "depth", "adverse_event"])
    frame["session_number"] = frame["session_number"].astype("Int64")
    return frame


def test_flags_are_never_taken_for_no():
    flags = ss.patient_flags(_patients()).set_index("patient_id")
    assert bool(flags.loc["B", "under_12"]) and not bool(flags.loc["C", "under_12"])
    assert flags.loc["A", "any flag"] and flags.loc["B", "any flag"]
    # C: recorded flags all no, but pregnancy etc. were never recorded: not "no flag"
    assert pd.isna(flags.loc["C", "any flag"]) and pd.isna(flags.loc["D", "any flag"])


def test_needled_by_flag_and_depth():
    sessions = _sessions()
    events = canonical_adverse_events(sessions)
    table = ss.needled_with_flags(_patients(), sessions, events, sessions_recorded(sessions))
    anti = table[table["flag"] == "anticoagulants"].set_index("depth")
    assert list(anti.index) == ["all", "superficial", "deep"]
    assert (anti.loc["deep", "patients"], anti.loc["deep", "events"]) == (1, 1)
    # R: poisson.test(1, 2)$conf.int * 100
    assert anti.loc["all", "ci_low"] == pytest.approx(1.26589039, rel=1e-7)
    assert anti.loc["all", "ci_high"] == pytest.approx(278.5821695, rel=1e-7)
    assert set(table["flag"]) == {"anticoagulants", "under_12", "any flag"}
    assert bool(table.set_index(["flag", "depth"]).loc[("under_12", "all"), "not_a_candidate"])


def test_no_patient_recorded_without_a_flag_gives_no_ratio():
    sessions = _sessions()
    events = canonical_adverse_events(sessions)
    ratios = ss.signal_rate_ratios(_patients(), sessions, events, sessions_recorded(sessions))
    assert (ratios["note"] == "no patient recorded without any flag").all()


def _typed(tables: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    patients = tables["patients"].copy()
    for flag in ss.FLAGS:
        if flag in patients:
            patients[flag] = patients[flag].map({"yes": True, "no": False}).astype("boolean")
    patients["age"] = patients["age"].astype("Int64")
    sessions = tables["sessions"].copy()
    sessions["session_number"] = sessions["session_number"].astype("Int64")
    return patients, sessions


def test_simulated_signal_rate_ratio_covers_the_truth():
    # truth (pipeline.demo.simulate): adverse events depend on depth only, and flags are drawn
    # independently of depth, so flagged patients' rate ratio against the rest is 1
    patients, sessions = _typed(simulate_study(3000, 5))
    events = canonical_adverse_events(sessions)
    ratios = ss.signal_rate_ratios(patients, sessions, events, sessions_recorded(sessions))
    row = ratios.set_index("flag").loc["any flag"]
    assert row["sessions"] > 300
    assert row["ci_low"] <= 1.0 <= row["ci_high"]
