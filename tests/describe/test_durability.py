"""Does it last: end of treatment to follow-up (issue 17, SAP §4b)."""

from __future__ import annotations

import pandas as pd

from pipeline.demo.course import COURSE_TRUTHS, simulate_course
from pipeline.describe.durability import durability, follow_ups


def test_waning_and_still_responding_recover_the_truth():
    # truth: pipeline.demo.course (NRS rises 0.5 and 1.0 after the course; 80 % stay responders)
    table = durability(simulate_course(600, 1, follow_up=True), "nrs", ["chronicity"])
    every = table[table["group"] == "all"].set_index("follow_up")
    for k, waning in enumerate(COURSE_TRUTHS["waning_nrs"], start=1):
        row = every.loc[k]
        assert row["ci_low"] <= -waning <= row["ci_high"], k  # an improvement lost
        truth = COURSE_TRUTHS["p_still_responding"]
        assert row["share_low"] <= truth <= row["share_high"], k
    assert set(table["level"]) == {"all", "acute", "chronic"}


def test_the_end_of_treatment_is_the_first_assessment_after_the_last_session():
    data = pd.DataFrame(
        {
            "patient_id": ["A"] * 5,
            "visit": pd.array([0, 1, 2, 3, 4], dtype="Int64"),
            "sessions_completed": [0, 2, 3, 3, 3],
            "n_sessions": [3] * 5,
            "weeks": [0.0, 2.0, 4.0, 8.0, 12.0],
            "nrs": [7.0, 5.0, 3.0, 4.0, 6.0],
            "nrs_responder": pd.array([None, True, True, True, False], dtype="boolean"),
        }
    )
    found = follow_ups(data, "nrs")
    assert list(found["follow_up"]) == [1, 2]
    assert list(found["weeks_after"]) == [4.0, 8.0]
    assert list(found["change"]) == [1.0, 3.0]
    table = durability(data, "nrs", []).set_index("follow_up")
    assert table.loc[1, "change"] == -1.0 and table.loc[2, "share"] == 0.0


def test_no_assessment_after_the_end_of_treatment_gives_no_follow_up():
    # Every assessment falls before the last session ends (a short export): nothing to follow.
    data = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B", "B"],
            "visit": pd.array([0, 1, 0, 1], dtype="Int64"),
            "sessions_completed": [0, 1, 0, 1],
            "n_sessions": [3, 3, 3, 3],
            "weeks": [0.0, 1.0, 0.0, 1.0],
            "nrs": [7.0, 5.0, 6.0, 4.0],
            "nrs_responder": pd.array([None, True, None, True], dtype="boolean"),
        }
    )
    assert follow_ups(data, "nrs").empty
    assert durability(data, "nrs", []).empty


def test_marked_follow_ups_need_no_session_log():
    # the course of pipeline.demo.course with its follow-ups marked (timing = follow_up) and
    # the session counts removed: the same end of treatment, the same table
    data = simulate_course(300, 2, follow_up=True)
    with_log = durability(data, "nrs", ["chronicity"])
    eot = data.groupby("patient_id")["visit"].transform(
        lambda v: v[
            data.loc[v.index, "sessions_completed"] >= data.loc[v.index, "n_sessions"]
        ].min()
    )
    marked = data.assign(
        follow_up=(data["visit"] > eot).to_numpy(),
        sessions_completed=0,
        n_sessions=0,
    )
    pd.testing.assert_frame_equal(durability(marked, "nrs", ["chronicity"]), with_log)


def test_marked_follow_up_end_of_treatment_is_the_last_visit_before_it():
    data = pd.DataFrame(
        {
            "patient_id": ["A"] * 5,
            "visit": pd.array([0, 1, 2, 3, 4], dtype="Int64"),
            "sessions_completed": [0] * 5,
            "n_sessions": [0] * 5,
            "weeks": [0.0, 2.0, 4.0, 8.0, 12.0],
            "nrs": [7.0, 5.0, 3.0, 4.0, 6.0],
            "nrs_responder": pd.array([None, True, True, True, False], dtype="boolean"),
            "follow_up": [False, False, False, True, True],
        }
    )
    found = follow_ups(data, "nrs")
    assert list(found["follow_up"]) == [1, 2]
    assert list(found["change"]) == [1.0, 3.0]  # from visit 2, the last before the first marked
