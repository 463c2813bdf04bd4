"""Exactness: pooling clinics' share files gives the fit of all their rows together.

The demo (three sites) and simulated networks are split by clinic, each clinic builds its share
file, the files are pooled, and the result is compared with the engine's row-level fit
(:func:`pipeline.lmm.fit_lmm`) of the same model (nominal times, clinic as a fixed effect) on
the same rows: estimates, SEs, Satterthwaite df, variance components and the headline
estimands agree to 1e-8 relative.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from factories import DEMO_INPUTS
from helpers_federation import (
    DEMO_SCHEDULE,
    all_rows_fit,
    federation_config,
    relative_gap,
    shared_rows,
    shares_by_site,
    study_data,
)

from pipeline.demo.simulate import DENSE_VISIT_WEEKS, simulate_study, write_raw_tables
from pipeline.federate.pool import pool_shares

TOL = 1e-8


def _assert_exact(shares, data, config) -> None:
    models = pool_shares(shares)
    rows = shared_rows(data, config)
    for model in models:
        gap = relative_gap(model, all_rows_fit(rows, config, model), config)
        assert max(gap.values()) < TOL, (model.outcome, gap)


def test_split_demo_pools_to_the_all_rows_fit(tmp_path, demo_data):
    config = federation_config(tmp_path, DEMO_INPUTS, DEMO_SCHEDULE)
    shares = shares_by_site(demo_data, config)
    assert len(shares) == 3
    _assert_exact(shares, demo_data, config)


def test_simulated_network_with_dense_schedule_and_more_covariates(tmp_path):
    # not the demo's layout: nine visits, age (number) and sex (text) as covariates, twitch
    # as a second group, clinic effect and the session time axis left as configured
    tables = simulate_study(600, seed=77, visit_weeks=DENSE_VISIT_WEEKS)
    inputs = write_raw_tables(tables, tmp_path / "raw")
    schedule = ", ".join(f"{v} = {w}" for v, w in DENSE_VISIT_WEEKS.items())
    config = federation_config(
        tmp_path,
        inputs,
        f'schedule = {{ {schedule} }}\noutcomes = ["nrs", "odi"]\ngroups = ["depth", "twitch"]\n',
        model='covariates = ["chronicity", "age", "sex"]\n',
    )
    data = study_data(inputs, config)
    shares = shares_by_site(data, config)
    assert [m["group"] for m in shares[0][1]["models"]] == ["depth", "twitch", "depth", "twitch"]
    _assert_exact(shares, data, config)


def test_split_demo_with_a_clinic_random_intercept(tmp_path, demo_data):
    body = DEMO_SCHEDULE + 'clinic_effect = "random"\noutcomes = ["nrs", "vas"]\n'
    config = federation_config(tmp_path, DEMO_INPUTS, body)
    shares = shares_by_site(demo_data, config)
    models = pool_shares(shares)
    assert models[0].formula.endswith("+ (1 | clinic)")
    assert models[0].fit.variance_components["group"].iloc[0] == "clinic"
    _assert_exact(shares, demo_data, config)


@pytest.mark.slow
def test_six_clinic_network_of_20000_patients(tmp_path, capsys):
    tables = simulate_study(20_000, seed=2121)
    patients = tables["patients"]
    rng = np.random.default_rng(6)
    names = np.array([f"Clinic {c}" for c in "ABCDEF"])
    patients["site"] = names[rng.choice(6, size=len(patients), p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1])]
    inputs = write_raw_tables(tables, tmp_path / "raw")
    config = federation_config(tmp_path, inputs, DEMO_SCHEDULE + 'outcomes = ["nrs"]\n')
    data = study_data(inputs, config)
    started = time.perf_counter()
    shares = shares_by_site(data, config)
    shared = time.perf_counter()
    models = pool_shares(shares)
    pooled = time.perf_counter()
    rows = shared_rows(data, config)
    assert rows["patient_id"].nunique() > 19_000
    for model in models:
        gap = relative_gap(model, all_rows_fit(rows, config, model), config)
        assert max(gap.values()) < TOL, gap
    with capsys.disabled():
        print(
            f"\n20,000-patient network: share (6 clinics) {shared - started:.1f} s, "
            f"pool {pooled - shared:.1f} s, max relative gap {max(gap.values()):.1e}"
        )
