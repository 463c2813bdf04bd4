"""Marginal means on one reference grid (pipeline.lmm.marginal): the emmeans definition by hand.

The agreement of the means and contrasts with R's emmeans is tested live in
tests/analyses/test_analyses.py; here the vectorised evaluation (every point of a call coded by one
design matrix) is checked against the definition written out coefficient by coefficient.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.lmm.fit import FAST_ROUTES, LmmFit, fit_lmm
from pipeline.lmm.marginal import (
    averaged_row,
    averaged_rows,
    emmeans,
    group_difference,
    group_differences,
    slope_difference,
)

VARIABLES = ("weeks", "depth", "chronicity", "age")
RHS = "weeks * depth + chronicity + age"


@pytest.fixture(scope="module")
def model() -> tuple[LmmFit, pd.DataFrame]:
    """A random-intercept fit: numeric time and age, a declared factor, a text factor."""
    rng = np.random.default_rng(11)
    n, weeks = 80, np.array([0.0, 2.0, 4.0, 8.0])
    patient = np.repeat(np.arange(n), weeks.size)
    deep = rng.random(n) < 0.5
    chronicity = rng.choice(["acute", "chronic", "subacute"], size=n)
    age = rng.normal(50, 12, size=n).round()
    t = np.tile(weeks, n)
    y = (
        6.0
        + rng.normal(0, 1, n)[patient]
        - (0.2 + 0.1 * deep[patient]) * t
        + 0.5 * (chronicity[patient] == "chronic")
        + 0.01 * age[patient]
        + rng.normal(0, 0.8, t.size)
    )
    rows = pd.DataFrame(
        {
            "patient_id": patient,
            "y": y,
            "weeks": t,
            "depth": pd.Categorical(
                np.where(deep, "deep", "superficial")[patient], categories=["superficial", "deep"]
            ),
            "chronicity": chronicity[patient].astype(object),
            "age": age[patient],
        }
    )
    return fit_lmm(rows, "y", RHS, "patient_id", routes=FAST_ROUTES), rows


def by_hand(fit: LmmFit, rows: pd.DataFrame, weeks: float, depth: str | None) -> np.ndarray:
    """The emmeans row at (weeks, depth), chronicity averaged with equal weights, age at its
    mean (depth averaged too when None), written out per design column."""
    deep = 0.5 if depth is None else float(depth == "deep")
    values = {
        "Intercept": 1.0,
        "depth[T.deep]": deep,
        "chronicity[T.chronic]": 1 / 3,
        "chronicity[T.subacute]": 1 / 3,
        "weeks": weeks,
        "weeks:depth[T.deep]": weeks * deep,
        "age": rows["age"].mean(),
    }
    assert set(values) == set(fit.design_columns)
    return np.array([values[c] for c in fit.design_columns])


def test_averaged_rows_follow_the_emmeans_definition(model):
    fit, rows = model
    ats = [
        {"weeks": 0.0, "depth": "superficial"},
        {"weeks": 4.0, "depth": "deep"},
        {"weeks": 12.5},  # depth left free: averaged over its two levels
        {"depth": "deep", "weeks": 8.0},
    ]
    got = averaged_rows(fit, rows, ats, VARIABLES)
    assert got.shape == (len(ats), len(fit.design_columns))
    for row, at in zip(got, ats, strict=True):
        np.testing.assert_allclose(row, by_hand(fit, rows, at["weeks"], at.get("depth")), 1e-14)
        np.testing.assert_array_equal(row, averaged_row(fit, rows, at, VARIABLES))


def test_no_points_give_no_rows(model):
    fit, rows = model
    assert averaged_rows(fit, rows, [], VARIABLES).shape == (0, len(fit.design_columns))


def test_differences_and_slopes(model):
    fit, rows = model
    ats = [{"weeks": w} for w in (2.0, 4.0, 8.0)]
    diffs = group_differences(fit, rows, VARIABLES, "depth", "deep", "superficial", ats)
    for diff, at in zip(diffs, ats, strict=True):
        expected = by_hand(fit, rows, at["weeks"], "deep") - by_hand(
            fit, rows, at["weeks"], "superficial"
        )
        np.testing.assert_allclose(diff, expected, atol=1e-14)
        np.testing.assert_array_equal(
            diff, group_difference(fit, rows, VARIABLES, "depth", "deep", "superficial", at)
        )
    slope = slope_difference(fit, rows, VARIABLES, "depth", "deep", "superficial", "weeks")
    expected = np.zeros(len(fit.design_columns))
    expected[list(fit.design_columns).index("weeks:depth[T.deep]")] = 1.0
    np.testing.assert_allclose(slope, expected, atol=1e-14)


def test_emmeans_codes_every_point_with_one_design_matrix(model, monkeypatch):
    fit, rows = model
    calls = []
    original = LmmFit.design_matrix

    def counted(self, frame):
        calls.append(len(frame))
        return original(self, frame)

    monkeypatch.setattr(LmmFit, "design_matrix", counted)
    points = {0: 0.0, 1: 2.0, 2: 4.0, 3: 8.0}
    table = emmeans(fit, rows, VARIABLES, "depth", "weeks", points)
    # 2 depths x 4 visits, each averaged over the 3 chronicity levels: one matrix of 24 rows
    assert calls == [24]
    assert list(table["level"]) == ["superficial"] * 4 + ["deep"] * 4
    expected = [
        by_hand(fit, rows, w, d) @ fit.params
        for d, w in zip(table["level"], table["time"], strict=True)
    ]
    np.testing.assert_allclose(table["estimate"], expected, rtol=1e-12)
