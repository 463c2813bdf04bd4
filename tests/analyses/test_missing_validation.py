"""The simulation behind ``make validate-stats``' missing-data rows, run small (2 trials)."""

import numpy as np
import pandas as pd

from pipeline.analyses.missing_validation import simulate, validate


def test_dropout_is_monotone_and_depends_on_the_unseen_value():
    rng = np.random.default_rng(0)
    _, _, wide = simulate(400, rng, effect=False, mnar=True)
    observed = ~np.isnan(wide)
    # Monotone: once missing, missing at every later visit; the first visit always seen.
    assert observed[:, 0].all()
    assert not np.any(~observed[:, 1] & observed[:, 2])
    assert 0.1 < np.isnan(wide[:, 2]).mean() < 0.6


def test_small_run_has_every_analysis_and_mar_equals_the_mmrm():
    raw, summary = validate(2, 80, 11, ("null",), imputations=4)
    strategies = ["MAR", "J2R", "CR", "CIR", "LMCF"]
    assert list(summary["analysis"]) == [
        "MMRM",
        *(f"CMI {s}" for s in strategies),
        *(f"MI {s}" for s in strategies),
    ]
    by = raw.pivot_table(index="seed", columns="analysis", values="estimate")
    # Theorem (pipeline.lmm.reference_based): MAR-CMI reproduces the MMRM exactly.
    np.testing.assert_allclose(by["CMI MAR"], by["MMRM"], atol=1e-8)
    # Rubin's rules: the MI estimate is the mean of 4 draws around the same estimand, within
    # a (generous) half SE of the MMRM's here; its SE is positive and finite.
    se = raw.pivot_table(index="seed", columns="analysis", values="std_err")
    assert np.all(np.abs(by["MI MAR"] - by["MMRM"]) < 0.5 * se["MMRM"])
    assert np.all(np.isfinite(se.to_numpy())) and np.all(se.to_numpy() > 0)


def test_workers_change_nothing_but_the_wall_time():
    one, _ = validate(2, 60, 5, ("null", "effect"), imputations=2, workers=1)
    two, _ = validate(2, 60, 5, ("null", "effect"), imputations=2, workers=2)
    pd.testing.assert_frame_equal(one, two)
