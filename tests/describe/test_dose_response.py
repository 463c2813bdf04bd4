"""Dose–response by sessions completed (issue 17, SAP §4b)."""

from __future__ import annotations

from pipeline.demo.course import simulate_course, true_marginal_gain
from pipeline.describe.dose_response import dose_response


def test_marginal_gains_recover_the_course_truth():
    # truth: pipeline.demo.course (change after k sessions -3 (1 - exp(-k / 2)))
    gains = dose_response(simulate_course(400, 1), "nrs")
    assert list(gains["sessions"]) == list(range(2, 11))
    for row in gains.itertuples():
        truth = true_marginal_gain(row.sessions, row.previous)
        assert row.ci_low <= truth <= row.ci_high, row.sessions
    # the first gains are clearly positive (an improvement), the late ones are not
    assert (gains["ci_low"].iloc[:3] > 0).all()
    assert gains["flat_from"].iloc[-1] and not gains["flat_from"].iloc[0]


def test_rare_session_counts_are_pooled_upwards():
    data = simulate_course(60, 3)
    gains = dose_response(data, "nrs", min_rows=40)
    assert gains["assessments"].min() >= 40
    assert bool(gains["top"].iloc[-1])
