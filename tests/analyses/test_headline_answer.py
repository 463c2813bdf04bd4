"""The headline estimands of SAP §4 and their verdicts against the MCID (analyses.headline)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline.analyses.headline import (
    ANSWER_COLUMNS,
    Estimand,
    Role,
    Verdict,
    adjust,
    answer_table,
    classify,
    headlines,
    holm_family,
)
from pipeline.config.study import DEFAULT_COMPARISONS, Comparison, Mcid, Study, library_outcome
from pipeline.schemas.identity import ContrastKind, Family
from pipeline.schemas.outputs import check_output


@pytest.mark.parametrize(
    ("estimate", "low", "high", "mcid", "verdict"),
    [
        (2.5, 1.0, 4.0, 2.0, Verdict.IMPORTANT),  # excludes 0, estimate reaches the MCID
        (-2.0, -3.0, -1.0, 2.0, Verdict.IMPORTANT),  # the rule is symmetric; "reaches" is >=
        (1.2, 0.8, 1.7, 2.0, Verdict.BELOW_MCID),
        (1.2, 0.1, 2.5, 2.0, Verdict.BELOW_MCID),  # the CI reaching the MCID does not matter
        (0.3, -1.0, 1.6, 2.0, Verdict.NO_DIFFERENCE),
        (0.7, -0.3, 2.0, 2.0, Verdict.INCONCLUSIVE),  # touches the MCID: not ruled out
        (5.6, -6.0, 17.2, 15.0, Verdict.INCONCLUSIVE),
        (0.0, 0.0, 1.0, 2.0, Verdict.NO_DIFFERENCE),  # a bound at 0 includes 0
        (1.0, 0.5, 1.5, None, Verdict.DETECTABLE),
        (1.0, -0.5, 1.5, math.nan, Verdict.NOT_DETECTED),
        (math.nan, -0.5, 1.5, 2.0, Verdict.NOT_ESTIMABLE),
    ],
)
def test_classify_against_zero_and_the_mcid(estimate, low, high, mcid, verdict):
    assert classify(estimate, low, high, mcid) is verdict


def _contrast(analysis, outcome, question, kind, estimate, low, high, p, visit=None):
    return {
        "analysis": analysis,
        "outcome": outcome,
        "question": question,
        "kind": kind.value,
        "within": None,
        "contrast": "label, for readers only",
        "visit": visit,
        "estimate": estimate,
        "std_err": 0.1,
        "df": 100.0,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
    }


def _emmeans(analysis, outcome, factor, levels, times):
    return [
        {"analysis": analysis, "outcome": outcome, "factor": factor, "level": lv, "visit": v}
        | {"time": t}
        for lv in levels
        for v, t in times.items()
    ]


SLOPE, VISIT = ContrastKind.SLOPE, ContrastKind.VISIT
WITHIN, COEFFICIENT = ContrastKind.WITHIN, ContrastKind.COEFFICIENT


@pytest.fixture
def needling_tables():
    """Depth lowers NRS by 0.1/week; twitch only through depth (the demo's design)."""
    contrasts = pd.DataFrame(
        [
            _contrast("trajectory_depth", "nrs", "depth", SLOPE, -0.10, -0.14, -0.06, 4e-7),
            _contrast("trajectory_twitch", "nrs", "twitch", SLOPE, -0.06, -0.10, -0.02, 0.004),
            _contrast("joint", "nrs", "depth", SLOPE, -0.104, -0.152, -0.056, 3e-5),
            _contrast("joint", "nrs", "twitch", SLOPE, 0.003, -0.044, 0.051, 0.89),
            # a subgroup's slope difference ("within" a level) is never a headline
            {
                **_contrast("trajectory_depth", "nrs", "depth", SLOPE, -9.0, -9.5, -8.5, 1e-9),
                "within": "chronic",
            },
            # the session-level model: twitch within and between patients (coefficients)
            _contrast("session_twitch", "nrs", "twitch", WITHIN, 0.69, -0.32, 1.70, 0.18),
            _contrast("session_twitch", "nrs", "twitch", COEFFICIENT, -0.28, -0.64, 0.07, 0.12),
        ]
    )
    times = {0: 0.0, 4: 11.9975}
    emmeans = pd.DataFrame(
        _emmeans("trajectory_depth", "nrs", "depth", ["superficial", "deep"], times)
        + _emmeans("trajectory_twitch", "nrs", "twitch", ["no twitch", "twitch"], times)
    )
    return {"contrasts": contrasts, "emmeans": emmeans}


def _study(*outcomes, comparisons=DEFAULT_COMPARISONS):
    return Study(outcomes=tuple(outcomes), comparisons=comparisons)


NRS = library_outcome("nrs", "nrs", Mcid(2, 30))


def test_twitch_is_answered_within_patients_never_by_the_unadjusted_comparison(
    needling_tables,
):
    answer = answer_table(needling_tables, _study(NRS), visit=4)
    check_output("answer", answer)
    assert list(answer.columns) == ANSWER_COLUMNS
    twitch = answer[answer["question"] == "twitch"].set_index("role")
    assert twitch.loc[Role.HEADLINE, "estimand"] == Estimand.WITHIN_PATIENT
    # higher NRS is worse: +0.69 points with twitch is 0.69 points less improvement
    assert twitch.loc[Role.HEADLINE, "improvement"] == pytest.approx(-0.69)
    assert twitch.loc[Role.HEADLINE, ["ci_low", "ci_high"]].tolist() == pytest.approx([-1.7, 0.32])
    assert twitch.loc[Role.HEADLINE, "verdict"] == Verdict.NO_DIFFERENCE
    assert twitch.loc[Role.SUPPORTING, "estimand"] == Estimand.DIRECT_EFFECT
    assert twitch.loc[Role.SUPPORTING, "analysis"] == "joint"
    assert twitch.loc[Role.UNADJUSTED, "analysis"] == "trajectory_twitch"
    assert pd.isna(twitch.loc[Role.UNADJUSTED, "verdict"])
    assert pd.isna(twitch.loc[Role.UNADJUSTED, "p_holm"])


def test_depth_is_the_total_effect_accumulated_to_the_primary_visit(needling_tables):
    answer = answer_table(needling_tables, _study(NRS), visit=4)
    depth = answer[answer["question"] == "depth"].set_index("role")
    row = depth.loc[Role.HEADLINE]
    assert (row["estimand"], row["level"], row["reference"]) == (
        Estimand.TOTAL_EFFECT,
        "deep",
        "superficial",
    )
    assert row["horizon"] == 12  # the model's time at visit 4, in whole weeks
    # -0.10 points per week over 12 weeks, turned to improvement with deep needling
    assert row[["improvement", "ci_low", "ci_high"]].tolist() == pytest.approx([1.2, 0.72, 1.68])
    assert row["verdict"] == Verdict.BELOW_MCID
    assert depth.loc[Role.SUPPORTING, "estimand"] == Estimand.DIRECT_EFFECT
    assert len(depth) == 2  # the subgroup row ("within" a level) is not taken


def test_holm_runs_across_the_headline_rows_only(needling_tables):
    answer = answer_table(needling_tables, _study(NRS), visit=4)
    top = headlines(answer).set_index("question")
    # R: p.adjust(c(4e-7, 0.18), "holm") -> 8e-07 0.18
    assert top.loc["depth", "p_holm"] == pytest.approx(8e-7)
    assert top.loc["twitch", "p_holm"] == pytest.approx(0.18)
    assert (top["family"] == Family.PRIMARY).all()
    others = answer[answer["role"] != Role.HEADLINE]
    assert (others["family"] == Family.SECONDARY).all() and others["p_holm"].isna().all()


def test_one_holm_family_the_same_p_in_the_contrasts_and_the_answer(needling_tables):
    """The family is chosen once (holm_family) and both tables carry its adjusted p."""
    contrasts = adjust(needling_tables["contrasts"], DEFAULT_COMPARISONS, 4)
    primary = contrasts[contrasts["family"] == Family.PRIMARY]
    # the headline estimates: depth's slope difference and twitch's within-patient estimate,
    # never the unadjusted twitch slope, a subgroup's slope or a between-patient coefficient
    assert sorted(zip(primary["analysis"], primary["kind"], strict=True)) == [
        ("session_twitch", WITHIN),
        ("trajectory_depth", SLOPE),
    ]
    assert primary["within"].isna().all()
    # R: p.adjust(c(4e-7, 0.18), "holm") -> 8e-07 0.18
    assert primary["p_holm"].tolist() == pytest.approx([8e-7, 0.18])
    assert contrasts.loc[contrasts["family"] == Family.SECONDARY, "p_holm"].isna().all()
    # the answer table built from these contrasts, or from the bare ones, says the same
    for given in (contrasts, needling_tables["contrasts"]):
        answer = answer_table({**needling_tables, "contrasts": given}, _study(NRS), visit=4)
        top = headlines(answer)
        assert top["analysis"].tolist() == ["trajectory_depth", "session_twitch"]
        assert top["p_value"].tolist() == primary["p_value"].tolist()
        assert top["p_holm"].tolist() == primary["p_holm"].tolist()


def test_the_family_is_chosen_per_outcome(needling_tables):
    """An outcome without a session-level fit takes the joint model's twitch estimate."""
    contrasts = needling_tables["contrasts"]
    vas = contrasts[contrasts["analysis"] != "session_twitch"].assign(outcome="vas")
    both = pd.concat([contrasts, vas], ignore_index=True)
    primary = both[holm_family(both, DEFAULT_COMPARISONS, 4)]
    members = sorted(zip(primary["outcome"], primary["analysis"], primary["kind"], strict=True))
    assert members == [
        ("nrs", "session_twitch", WITHIN),
        ("nrs", "trajectory_depth", SLOPE),
        ("vas", "joint", SLOPE),
        ("vas", "trajectory_depth", SLOPE),
    ]


def test_without_a_session_level_fit_twitch_is_answered_by_the_joint_model(needling_tables):
    contrasts = needling_tables["contrasts"]
    tables = {**needling_tables, "contrasts": contrasts[contrasts["analysis"] != "session_twitch"]}
    answer = answer_table(tables, _study(NRS), visit=4)
    top = headlines(answer).set_index("question")
    assert top.loc["twitch", "analysis"] == "joint"
    assert top.loc["twitch", "improvement"] == pytest.approx(-0.003 * 12)
    # the joint model's estimate is then the family's member: R p.adjust(c(4e-7, 0.89), "holm")
    assert top.loc["twitch", ["family", "p_holm"]].tolist() == ["primary", pytest.approx(0.89)]


def test_a_trial_is_answered_at_its_primary_visit_whichever_way_the_scale_runs():
    arm = Comparison("arm", "randomised", "arm", "sham", "randomised arm", ("sham", "deep"))
    rmdq = library_outcome("rmdq", "rmdq")  # higher is worse, MCID 5 points
    psfs = library_outcome("psfs", "psfs")  # higher is better
    contrasts = pd.DataFrame(
        [
            _contrast("change_arm", "rmdq", "arm", VISIT, -2.93, -3.74, -2.11, 1e-11, 1),
            _contrast("change_arm", "rmdq", "arm", VISIT, -1.76, -2.64, -0.88, 1e-4, 2),
            _contrast("trajectory_arm", "rmdq", "arm", SLOPE, -0.027, -0.055, 0.0, 0.05),
            _contrast("change_arm", "psfs", "arm", VISIT, 0.85, 0.49, 1.21, 4.7e-6, 1),
        ]
    )
    emmeans = pd.DataFrame(  # the visit-level model's time is the visit number
        _emmeans("change_arm", "rmdq", "arm", ["sham", "deep"], {1: 1.0, 2: 2.0})
        + _emmeans("trajectory_arm", "rmdq", "arm", ["sham", "deep"], {1: 13.0, 2: 52.0})
        + _emmeans("change_arm", "psfs", "arm", ["sham", "deep"], {1: 1.0, 2: 2.0})
    )
    tables = {"contrasts": contrasts, "emmeans": emmeans}
    answer = answer_table(tables, _study(rmdq, psfs, comparisons=(arm,)), visit=1)
    check_output("answer", answer)
    assert set(answer["role"]) == {Role.HEADLINE}
    rows = answer.set_index("outcome")
    assert rows.loc["rmdq", ["improvement", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [2.93, 2.11, 3.74]
    )
    assert rows.loc["psfs", ["improvement", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [0.85, 0.49, 1.21]
    )
    assert rows.loc["rmdq", "mcid"] == 5
    assert rows.loc["rmdq", "verdict"] == Verdict.BELOW_MCID
    assert rows.loc["rmdq", "horizon"] == 13
    # R: p.adjust(c(1e-11, 4.7e-6), "holm") -> 2.0e-11 4.7e-06
    assert rows["p_holm"].tolist() == pytest.approx([2e-11, 4.7e-6])
