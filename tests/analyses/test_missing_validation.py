"""The simulation behind ``make validate-stats``' missing-data rows, run small (2 trials)."""

import numpy as np

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
    raw, summary = validate(2, 80, 11, ("null",))
    assert set(summary["analysis"]) == {
        "MMRM",
        "CMI MAR",
        "CMI J2R",
        "CMI CR",
        "CMI CIR",
        "CMI LMCF",
    }
    by = raw.pivot_table(index="seed", columns="analysis", values="estimate")
    # Theorem (pipeline.lmm.reference_based): MAR-CMI reproduces the MMRM exactly.
    np.testing.assert_allclose(by["CMI MAR"], by["MMRM"], atol=1e-8)
