"""A small version of `make validate-stats`: the intervals cover, the test keeps its level.

With 100 data sets per scenario the Monte Carlo SE of a 95 % coverage is 2.2 points and of a
5 % rejection rate 2.2 points, so the bounds below are about 3 SE wide: they fail when the
standard errors or degrees of freedom are materially wrong (e.g. statsmodels' Hessian SEs on ML
fits, or a random-intercept-only model that ignores the slope variance).
"""

import numpy as np
import pytest

from pipeline.analyses.stat_validation import (
    INTERACTION,
    Scenario,
    default_scenarios,
    run_simulations,
    simulate,
    summarise,
)


def test_simulated_data_have_dropout_and_missed_visits():
    data = simulate(Scenario("effect", n_patients=200), np.random.default_rng(1))
    per_patient = data.groupby("patient").size()
    assert per_patient.max() == 5 and per_patient.min() < 5  # unbalanced
    assert set(data["depth"].cat.categories) == {"superficial", "deep"}
    # dropout depends on the last observed value: completers had lower pain at baseline
    first = data[data["weeks"] == 0].set_index("patient")["y"]
    complete = per_patient == 5
    assert first[complete].mean() < first[~complete].mean()


def test_seeds_do_not_depend_on_workers():
    scenarios = (Scenario("effect", n_patients=30),)
    a = run_simulations(scenarios, 3, seed=7, workers=1)
    b = run_simulations(scenarios, 3, seed=7, workers=2)
    assert a.equals(b)


@pytest.mark.slow
def test_coverage_and_type_one_error_small_version():
    scenarios = default_scenarios(n_patients=60)
    sims = run_simulations(scenarios, 100, seed=11)
    coverage, tests = summarise(sims, scenarios)
    assert (coverage["n_fits"] == 100).all()
    assert coverage["coverage"].between(0.88, 1.0).all(), coverage
    interaction = coverage[coverage["term"] == INTERACTION]
    assert interaction["bias"].abs().max() < 0.02  # true values -0.10 and 0 recovered
    null = tests.set_index("scenario").loc["null"]
    assert null["quantity"] == "type I error" and null["rejection_rate"] <= 0.12
    assert tests.set_index("scenario").loc["effect", "rejection_rate"] > 0.5
