"""The simulated report model: the prepared route fits what fit_lmm fits, and power agrees with
the formulas where they are exact; the type-I error at the null is near alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.lmm import DEFAULT_ROUTES, FAST_ROUTES, fit_lmm
from pipeline.planning import analytic, simulate
from pipeline.planning.agreement import Case, agreement_grid
from pipeline.planning.answers import interpolate_n, plan_study
from pipeline.planning.design import Assumptions, Design


def design(analysis: str = "slope", **changes) -> Design:
    base = dict(
        outcome="vas",
        comparison="twitch",
        reference="no twitch",
        compared="twitch",
        allocation=2.0,
        weeks=(0.0, 1.0, 3.0, 6.0, 10.0, 16.0),
        analysis=analysis,
        primary_visit=4,
        alpha=0.05,
        holm_family=2,
        target_power=0.8,
        n=60,
        n_grid=(30, 60),
        mcid=15.0,
    )
    return Design(**{**base, **changes})


ASSUME = Assumptions(
    effect=-12.0,
    sd_intercept=14.0,
    sd_slope=1.1,
    correlation=0.2,
    sd_residual=9.0,
    hazards_reference=(0.0, 0.05, 0.1, 0.1, 0.2),
    hazards_compared=(0.1, 0.1, 0.1, 0.1, 0.1),
)


@pytest.mark.parametrize("analysis", ["slope", "visit"])
def test_prepared_route_gives_the_fit_of_the_data_frame_route(analysis: str) -> None:
    d = design(analysis)
    setup = simulate.build_setup(d, ASSUME, 45)
    rng = np.random.default_rng(11)
    result = simulate.simulate_once(setup, rng)
    assert result["failed"] == ""
    # the same study, rebuilt as a data frame and fitted the ordinary way
    y, last, baseline = simulate._draw(setup, np.random.default_rng(11))
    rows = []
    for p in range(45):
        group = d.compared if setup.compared[p] else d.reference
        first = 0 if analysis == "slope" else 1
        for j in range(first, last[p] + 1):
            rows.append((p, d.weeks[j], j, group, baseline[p], y[p, j]))
    frame = pd.DataFrame(rows, columns=["patient", "weeks", "visit", "group", "baseline", "y"])
    frame["group"] = pd.Categorical(frame["group"], [d.reference, d.compared])
    if analysis == "slope":
        fit = fit_lmm(
            frame,
            "y",
            "weeks * group",
            "patient",
            random_slope="weeks",
            routes=FAST_ROUTES,
            escalate=DEFAULT_ROUTES,
        )
        term = fit.fixed_effects.set_index("term").loc["weeks:group[T.twitch]"]
    else:
        frame["visit"] = pd.Categorical(frame["visit"], categories=[1, 2, 3, 4, 5])
        fit = fit_lmm(
            frame,
            "y",
            "baseline + visit * group",
            "patient",
            routes=FAST_ROUTES,
            escalate=DEFAULT_ROUTES,
        )
        vec = fit.difference_vector(
            {"baseline": 0.0, "visit": 4, "group": d.compared},
            {"baseline": 0.0, "visit": 4, "group": d.reference},
        )
        term = fit.contrast(vec).iloc[0]
    assert result["estimate"] == pytest.approx(term["estimate"], rel=1e-9)
    assert result["std_err"] == pytest.approx(term["std_err"], rel=1e-9)
    assert result["df"] == pytest.approx(term["df"], rel=1e-6)


def test_simulated_power_agrees_with_exact_formulas_and_null_holds_alpha() -> None:
    # Balanced, no dropout, variances known: Diggle's slope variance (random intercept and
    # slope) and Lu-Luo-Chen's (random intercept only) are exact; 50 studies per row.
    cases = [
        Case("slope", "slope", 30, 1.4, weeks=(0.0, 2.0, 4.0, 8.0)),
        Case("visit", "visit", 30, 1.2, sd_slope=0.0, weeks=(0.0, 2.0, 4.0, 8.0), alpha=0.2),
    ]
    grid = agreement_grid(cases, sims=50, seed=5)
    assert len(grid) == 4
    assert grid["share_failed"].eq(0).all()
    assert grid["within_2_mc_se"].all(), grid.to_string()
    effect = grid.loc[grid["scenario"] == "effect", "power_analytic_t"]
    assert effect.between(0.3, 0.95).all()  # informative rows, not 0 or 1


def test_answers_tie_formula_and_simulation_together() -> None:
    d = design("slope", n_grid=(24, 60), n=60)
    result = plan_study(d, ASSUME, sims=12, seed=3)
    answers = result.answers.set_index(["question", "method"])
    contrast = analytic.slope_contrast(
        np.asarray(d.weeks),
        ASSUME.covariance(d.weeks),
        ASSUME.retention("reference"),
        ASSUME.retention("compared"),
        2.0,
    )
    slope = ASSUME.effect / d.weeks[4]
    assert answers.loc[("power at n", "analytic (t, N-2 df)"), "value"] == pytest.approx(
        analytic.power(contrast, slope, 60, 0.025, "t")
    )
    assert ("power at n", "simulation") in answers.index
    assert list(result.curve["n_total"]) == [24, 60]
    assert list(result.curve["sims"]) == [12, 12]
    assert list(result.type_one_error["n_total"]) == [24]
    assert result.curve[["n_reference", "n_compared"]].iloc[1].tolist() == [20, 40]


def test_interpolated_n_on_probit_scale() -> None:
    sizes = np.array([20, 40, 80])
    assert np.isnan(interpolate_n(sizes, np.array([0.2, 0.5, 0.7]), 0.8))
    assert np.isnan(interpolate_n(sizes, np.array([0.85, 0.9, 0.95]), 0.8))
    # probit midway: powers 0.5 and 0.9 bracket 0.8 -> z 0 and 1.2816, target z 0.8416
    assert interpolate_n(sizes, np.array([0.2, 0.5, 0.9]), 0.8) == pytest.approx(
        40 + 0.8416212 / 1.2815516 * 40, rel=1e-6
    )
