"""Assumptions estimated from a study: variance components with their uncertainty, dropout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import DEMO_INPUTS, write_config

from pipeline import api
from pipeline.analyses.plans import fit_plan, trajectory_plan
from pipeline.config.settings import load_config
from pipeline.lmm import FAST_ROUTES, fit_lmm
from pipeline.planning.from_study import assumptions_from_study, variance_uncertainty

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_variance_component_intervals_match_nlme() -> None:
    # R: s <- read.csv("tests/fixtures/sleepstudy.csv")
    #    intervals(nlme::lme(Reaction ~ Days, random = ~Days|Subject, data = s), which = "var-cov")
    # nlme's "approximate 95 % intervals" are Wald intervals on the log-SD and Fisher-z scales
    # from its numerical REML Hessian; ours come from the engine's Richardson Hessian.
    nlme = {
        "sd_intercept": (15.51753540, 24.740240725, 39.44437665),
        "sd_slope": (3.90416960, 5.922102819, 8.98303747),
        "correlation": (-0.57608308, 0.065563835, 0.65721564),
        "sd_residual": (22.797057, 25.591843, 28.729252),
    }
    sleep = pd.read_csv(FIXTURES / "sleepstudy.csv")
    fit = fit_lmm(sleep, "Reaction", "Days", "Subject", random_slope="Days", routes=FAST_ROUTES)
    table = variance_uncertainty(fit).set_index("parameter")
    for name, (low, est, high) in nlme.items():
        row = table.loc[name]
        assert row["estimate"] == pytest.approx(est, rel=1e-3)  # nlme stops a bit off lme4
        if name == "correlation":  # nlme's apVar Hessian is coarse: looser on r
            assert row["ci_low"] == pytest.approx(low, abs=0.07)
            assert row["ci_high"] == pytest.approx(high, abs=0.07)
        else:
            assert row["ci_low"] == pytest.approx(low, rel=0.01)
            assert row["ci_high"] == pytest.approx(high, rel=0.01)


def small_study() -> pd.DataFrame:
    """A twitch study unlike the demo: three visits at weeks 0, 3 and 9, one site."""
    rng = np.random.default_rng(4)
    rows = []
    for p in range(80):
        twitch = "twitch" if p % 4 == 0 else "no twitch"  # 20 twitch, 60 no twitch
        last = 2 if p % 5 else (1 if p % 2 else 0)  # dropout: 8 leave after visit 0, 8 after 1
        b0, b1 = rng.normal(0, 1.5), rng.normal(0, 0.15)
        for visit, week in zip((0, 1, 2), (0.0, 3.0, 9.0), strict=True):
            if visit > last:
                break
            mean = 7 + b0 + (b1 - 0.2 - 0.1 * (twitch == "twitch")) * week
            rows.append((f"Q{p:03d}", visit, week + rng.uniform(-0.4, 0.4), mean + rng.normal()))
    frame = pd.DataFrame(rows, columns=["patient_id", "visit", "weeks", "nrs"])
    groups = {f"Q{p:03d}": ("twitch" if p % 4 == 0 else "no twitch") for p in range(80)}
    frame["twitch"] = pd.Categorical(frame["patient_id"].map(groups), ["no twitch", "twitch"])
    frame["site"] = "only"
    frame.loc[frame["visit"] == 1, "weeks"] = frame.loc[frame["visit"] == 1, "weeks"].round(0)
    # the analysis data set carries each outcome's baseline (it names the outcomes it holds)
    baseline = frame.loc[frame["visit"] == 0].set_index("patient_id")["nrs"]
    frame["nrs_baseline"] = frame["patient_id"].map(baseline)
    return frame


def test_assumptions_from_a_study_unlike_the_demo(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        DEMO_INPUTS,
        model="covariates = []",
        planning='comparison = "twitch"\nlevels = ["no twitch", "twitch"]\nn = 100\nn_grid = [50]',
        **{"planning.assumptions": "effect_mcid = 1"},
    )
    cfg = load_config(path)
    data = small_study()
    design, assumptions, dropout = assumptions_from_study(data, cfg, cfg.planning)
    medians = data.groupby("visit")["weeks"].median().round(1)
    assert design.weeks == tuple(medians)  # the study's nominal weeks
    assert medians.iloc[2] == pytest.approx(9.0, abs=0.2)
    assert design.primary_week == medians.iloc[2]
    assert assumptions.effect == 2.0  # 1 x the NRS MCID of 2 points
    # retention by hand: patients p % 5 == 0 leave early (half after visit 0, half after 1)
    lasts = {p: (2 if p % 5 else (1 if p % 2 else 0)) for p in range(80)}
    for level, members in (
        ("no twitch", [p for p in range(80) if p % 4]),
        ("twitch", [p for p in range(80) if p % 4 == 0]),
    ):
        part = dropout.loc[dropout["group"] == level].set_index("visit")
        for visit in (0, 1, 2):
            share = np.mean([lasts[p] >= visit for p in members])
            assert part.loc[visit, "retention"] == pytest.approx(share)
        assert part.loc[0, "patients"] == len(members)
    ref = dropout.loc[dropout["group"] == "no twitch", "hazard"].to_numpy()
    assert assumptions.hazards_reference == pytest.approx(tuple(ref[1:]))
    fit = fit_plan(trajectory_plan(data, "nrs", "twitch", cfg.model), tests=False).fit
    assert assumptions.sd_residual == pytest.approx(fit.sigma, rel=1e-9)
    assert assumptions.source == "study"
    assert set(assumptions.uncertainty["parameter"]) >= {"sd_intercept", "sd_residual"}
    assert any("Retention at the study's last visit" in note for note in assumptions.notes)


def test_demo_plan_from_the_study() -> None:
    result = api.plan("analysis.toml", from_study=True, sims=0)
    answers = result.answers
    assert set(answers["question"]) == {
        "power at n",
        "n for power",
        "detectable effect at n",
        "CI half-width at n",
    }
    assert result.assumptions.source == "study"
    assert result.design.weeks == (0.0, 2.0, 4.0, 8.0, 12.0)
    assert result.dropout["group"].unique().tolist() == ["superficial", "deep"]
    assert result.type_one_error.empty  # no simulation asked for
    power = answers.loc[answers["question"] == "power at n", "value"]
    assert power.between(0.0, 1.0).all()
