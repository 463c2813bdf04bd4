import numpy as np
import pandas as pd
import pytest

from pipeline.describe.responders import last_responder_status, responders_at_last_visit

DEPTH = ["superficial", "deep"]


def _data(groups, statuses, levels=DEPTH, group="depth"):
    """One baseline row (responder missing) and one visit-1 row per patient."""
    rows = []
    for k, (g, s) in enumerate(zip(groups, statuses, strict=True)):
        rows.append({"patient_id": f"P{k:02d}", "visit": 0, "nrs_responder": pd.NA, group: g})
        rows.append({"patient_id": f"P{k:02d}", "visit": 1, "nrs_responder": s, group: g})
    frame = pd.DataFrame(rows)
    frame["visit"] = frame["visit"].astype("Int64")
    frame["nrs_responder"] = frame["nrs_responder"].astype("boolean")
    frame[group] = pd.Categorical(frame[group], categories=levels)
    return frame


@pytest.fixture
def data():
    # superficial: 3 of 10 respond; deep: 8 of 12 respond
    groups = ["superficial"] * 10 + ["deep"] * 12
    statuses = [True] * 3 + [False] * 7 + [True] * 8 + [False] * 4
    return _data(groups, statuses)


def _get(out, quantity, level=None):
    rows = out[out["quantity"] == quantity]
    if level is not None:
        rows = rows[rows["level"] == level]
    assert len(rows) == 1
    return rows.iloc[0]


def test_counts_and_proportions(data):
    out = responders_at_last_visit(data, "nrs", "depth")
    assert list(out["quantity"]) == ["proportion", "proportion", "risk difference", "odds ratio"]
    sup, deep = _get(out, "proportion", "superficial"), _get(out, "proportion", "deep")
    assert (sup["n"], sup["responders"], sup["estimate"]) == (10, 3, pytest.approx(0.3))
    assert (deep["n"], deep["responders"], deep["estimate"]) == (12, 8, pytest.approx(8 / 12))
    assert set(out["outcome"]) == {"nrs"} and set(out["group"]) == {"depth"}


def test_odds_ratio_matches_r_glm(data):
    # R: g <- factor(rep(c("superficial", "deep"), c(10, 12)), levels = c("superficial", "deep"))
    #    y <- c(rep(1, 3), rep(0, 7), rep(1, 8), rep(0, 4))
    #    fit <- glm(y ~ g, family = binomial)
    #    exp(coef(fit)); exp(confint.default(fit)); summary(fit)$coefficients
    row = _get(responders_at_last_visit(data, "nrs", "depth"), "odds ratio")
    assert (row["level"], row["reference"]) == ("deep", "superficial")
    assert row["estimate"] == pytest.approx(4.666666666660257, rel=1e-7)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(
        [0.765047929586602, 28.46589989399187], rel=1e-7
    )
    assert row["p_value"] == pytest.approx(0.0949828920966828, rel=1e-7)
    assert row["method"] == "logistic regression (Wald CI)"
    assert row["n"] == 22 and row["note"] == ""


def test_risk_difference_wald(data):
    # R: p1 <- 3/10; p2 <- 8/12; se <- sqrt(p1*(1-p1)/10 + p2*(1-p2)/12)
    #    c(p2 - p1, p2 - p1 - qnorm(0.975)*se, p2 - p1 + qnorm(0.975)*se,
    #      2*pnorm(-abs((p2 - p1)/se)))
    row = _get(responders_at_last_visit(data, "nrs", "depth"), "risk difference")
    assert row["estimate"] == pytest.approx(0.3666666666666666, rel=1e-12)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(
        [-0.0229597717891022, 0.7562931051224355], rel=1e-9
    )
    assert row["p_value"] == pytest.approx(0.0651149789234715, rel=1e-9)
    assert row["method"] == "risk difference (Wald CI)"


def test_last_visit_selection():
    rows = [
        # A: visit 2 (responder) is later than visit 1 (non-responder) -> responder
        ("A", 0, pd.NA),
        ("A", 1, False),
        ("A", 2, True),
        # B: visit 3 status missing -> visit 2 (non-responder) is used
        ("B", 0, pd.NA),
        ("B", 2, False),
        ("B", 1, True),
        ("B", 3, pd.NA),
        # C: only the baseline has a value (never used) -> patient dropped
        ("C", 0, True),
        ("C", 1, pd.NA),
    ]
    data = pd.DataFrame(rows, columns=["patient_id", "visit", "nrs_responder"])
    data["visit"] = data["visit"].astype("Int64")
    data["nrs_responder"] = data["nrs_responder"].astype("boolean")
    data["twitch"] = pd.Categorical(["twitch"] * len(data), categories=["no twitch", "twitch"])
    last = last_responder_status(data, "nrs", "twitch")
    assert last["patient_id"].tolist() == ["A", "B"]
    assert last["visit"].tolist() == [2, 2]
    assert last["responder"].tolist() == [True, False]


def test_empty_group_gives_nan_with_note():
    data = _data(["deep"] * 4, [True, False, True, False])
    out = responders_at_last_visit(data, "nrs", "depth")
    assert _get(out, "proportion", "superficial")["n"] == 0
    assert np.isnan(_get(out, "proportion", "superficial")["estimate"])
    for quantity in ("risk difference", "odds ratio"):
        row = _get(out, quantity)
        assert np.isnan(row["estimate"]) and "no patients" in row["note"]


def test_all_responders_in_one_group_is_separation():
    data = _data(DEPTH * 4, [True, True, False, True, True, True, False, True])
    out = responders_at_last_visit(data, "nrs", "depth")
    odds = _get(out, "odds ratio")
    assert np.isnan(odds["estimate"]) and "separation" in odds["note"]
    rd = _get(out, "risk difference")
    assert rd["estimate"] == pytest.approx(1.0 - 0.5)
    assert np.isfinite(rd["ci_low"])


def test_no_responders_at_all():
    data = _data(DEPTH * 3, [False] * 6)
    out = responders_at_last_visit(data, "nrs", "depth")
    rd, odds = _get(out, "risk difference"), _get(out, "odds ratio")
    assert rd["estimate"] == 0.0 and np.isnan(rd["ci_low"]) and "zero" in rd["note"]
    assert np.isnan(odds["estimate"]) and "separation" in odds["note"]


def test_twitch_grouping_and_unknown_group_left_out():
    groups = ["no twitch", "twitch", None, "no twitch", "twitch", "twitch"]
    data = _data(
        groups,
        [True, True, True, False, False, True],
        levels=["no twitch", "twitch"],
        group="twitch",
    )
    out = responders_at_last_visit(data, "nrs", "twitch")
    assert _get(out, "proportion", "no twitch")["n"] == 2
    assert _get(out, "proportion", "twitch")["n"] == 3
    assert _get(out, "odds ratio")["level"] == "twitch"


def test_more_than_two_categories_is_rejected():
    data = _data(["a", "b"], [True, False], levels=["a", "b", "c"])
    with pytest.raises(ValueError, match="exactly two"):
        responders_at_last_visit(data, "nrs", "depth")
