"""Two-stage pooling with a clinic whose own model cannot be fitted, and the pooled report."""

from __future__ import annotations

import numpy as np
from factories import DEMO_INPUTS
from helpers_federation import (
    DEMO_SCHEDULE,
    all_rows_fit,
    federation_config,
    relative_gap,
    shared_rows,
    shares_by_site,
)

from pipeline.federate.pool import pool_shares, two_stage
from pipeline.federate.report import pooled_report, pooled_tables
from pipeline.report.html import render_html


def test_clinic_with_one_group_is_listed_not_pooled_by_the_meta_analysis(tmp_path, demo_data):
    config = federation_config(tmp_path, DEMO_INPUTS, DEMO_SCHEDULE + 'outcomes = ["nrs"]\n')
    # Hillview treats deep only: its own depth model is not estimable
    data = demo_data.loc[(demo_data["site"] != "Hillview") | (demo_data["depth"] == "deep")]
    shares = shares_by_site(data, config)
    hill = next(s for p, s in shares if p.stem == "Hillview")
    assert hill["models"][0]["clinic_fit"]["status"] == "not estimable"
    assert "single depth group" in hill["models"][0]["clinic_fit"]["message"]

    clinics, meta = two_stage(shares)
    listed = clinics.loc[clinics["clinic"] == "Hillview"]
    assert len(listed) == 2 and listed["estimate"].isna().all()
    assert set(meta["k"]) == {2}
    assert np.isfinite(meta["estimate"]).all()

    # the exact pooled fit still uses Hillview's patients (its clinic effect absorbs them)
    models = pool_shares(shares)
    rows = shared_rows(data, config)
    gap = relative_gap(models[0], all_rows_fit(rows, config, models[0]), config)
    assert max(gap.values()) < 1e-8, gap

    tables = pooled_tables(models, shares, (clinics, meta))
    html = render_html(pooled_report(models, shares, tables))
    assert "Not in the meta-analysis: Hillview (NRS: a single depth group" in html
    assert "nominal time of each visit" in html
    assert html.count("<img") == len(meta)  # one forest plot per estimand
