"""Immediate relief: pre/post-session pairs, the within-session model and the next visit."""

from __future__ import annotations

import pandas as pd
import pytest
from factories import DEMO_INPUTS, write_config
from rcompare import parse_r

from pipeline.config.settings import load_config
from pipeline.demo.simulate import TRUE_EFFECTS, simulate_study, write_raw_tables
from pipeline.derive.dataset import analysis_dataset, session_pairs
from pipeline.describe.immediate_relief import (
    next_visit_relation,
    relief_frame,
    within_session_change,
)
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.validate.study import validate_study


def _study(tmp_path, n, seed, strip=False):
    tables = simulate_study(n, seed)
    if strip:  # the same study without its pre/post-session rows
        a = tables["assessments"]
        tables["assessments"] = a[a["visit"].notna()]
    inputs = write_raw_tables(tables, tmp_path / ("plain" if strip else "raw"))
    config = load_config(write_config(tmp_path, inputs))
    v = validate_study(read_raw_tables(inputs))
    data = analysis_dataset(
        v.valid("patients"), v.valid("sessions"), v.valid("assessments"), config
    )
    return v, data, config


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    v, data, config = _study(tmp_path_factory.mktemp("relief"), 1000, 11)
    pairs = session_pairs(v.valid("assessments"), v.valid("sessions"), data, config.study.outcomes)
    return pairs


def test_within_session_change_recovers_the_simulated_relief(large):
    # truth: TRUE_EFFECTS["immediate_relief"], relief = 1.0 + 0.6 deep + 0.4 twitch NRS points
    truth = TRUE_EFFECTS["immediate_relief"]
    table = within_session_change(large, "nrs", -1.0).set_index(["comparison", "kind", "level"])
    for comparison, level in (("depth", "deep"), ("twitch", "twitch")):
        row = table.loc[(comparison, "difference", level)]
        assert row["ci_low"] <= truth[level] <= row["ci_high"], comparison
        assert row["ci_low"] > 0  # clearly detected at 1,000 patients
    # the superficial mean averages twitch with equal weights: 1.0 + 0.4 / 2
    row = table.loc[("depth", "mean", "superficial")]
    assert row["ci_low"] <= truth["relief_nrs"] + truth["twitch"] / 2 <= row["ci_high"]
    assert table["pairs"].min() > 100 and set(table["method"]) >= {table["method"].iloc[-1]}


def test_relief_is_transient_so_the_next_visit_slope_covers_zero(large):
    # truth: the relief does not enter any visit's NRS (slope 0 given depth and twitch)
    row = next_visit_relation(large, "nrs", -1.0).iloc[0]
    assert row["ci_low"] <= TRUE_EFFECTS["immediate_relief"]["next_visit_slope"] <= row["ci_high"]
    assert row["patients"] > 500


def test_pairs_leave_the_visit_analyses_unchanged(tmp_path):
    _, with_pairs, _ = _study(tmp_path, 60, 4)
    _, without, _ = _study(tmp_path, 60, 4, strip=True)
    pd.testing.assert_frame_equal(with_pairs, without)


def test_no_pairs_no_table():
    pairs = pd.DataFrame(
        columns=[
            *("patient_id", "session_number", "depth", "twitch", "session_weeks"),
            *("nrs_pre", "nrs_post", "nrs_next_change"),
        ]
    )
    assert within_session_change(pairs, "nrs").empty
    assert next_visit_relation(pairs, "nrs").empty


def test_within_session_model_agrees_with_lmer(large, tmp_path, lmer_r):
    # R: lmer(relief ~ depth + twitch + (1 | patient_id)), REML, lmerTest Satterthwaite df
    frame = relief_frame(large.iloc[:400], "nrs", -1.0)
    csv = tmp_path / "relief.csv"
    frame.to_csv(csv, index=False)
    ref = parse_r(
        lmer_r(
            csv,
            "relief ~ depth + twitch + (1 | patient_id)",
            True,
            relevel={"depth": "superficial", "twitch": "no twitch"},
        )
    )
    table = within_session_change(large.iloc[:400], "nrs", -1.0)
    table = table[table["kind"] == "difference"].set_index("comparison")
    for comparison, term in (("depth", "depthdeep"), ("twitch", "twitchtwitch")):
        row = table.loc[comparison]
        assert row["estimate"] == pytest.approx(ref["estimate"][term], rel=1e-4)
        assert row["std_err"] == pytest.approx(ref["std_err"][term], rel=1e-4)
        assert row["df"] == pytest.approx(ref["df"][term], rel=1e-2)


def test_the_contract_keys_and_rules_of_timed_rows(tmp_path):
    # a pre/post row may have no visit but needs a date; a follow-up needs its visit number;
    # a session's pre (or post) measurement written twice is quarantined
    tables = simulate_study(10, 1)
    a = tables["assessments"]
    timed = a[a["visit"].isna()]
    first = timed.iloc[0].copy()
    undated = first.copy()
    undated["assessment_date"] = None
    undated["timing"] = "post_session"
    follow = first.copy()
    follow["timing"] = "follow_up"
    extra = pd.DataFrame([first, undated, follow])
    tables["assessments"] = pd.concat([a, extra], ignore_index=True)
    v = validate_study(read_raw_tables(write_raw_tables(tables, tmp_path)))
    failures = v.failures[v.failures["table"] == "assessments"]
    reasons = " ".join(failures["reason"])
    assert "needs assessment_date" in reasons
    assert "visit is required unless timing is pre_session or post_session" in reasons
    assert "written on more than one row" in reasons
    # the two copies of the first pre-session row, the undated and the follow-up row
    assert v.tables["assessments"].quarantine.shape[0] == 4


def test_a_source_maps_its_own_timing_column_and_codes(tmp_path):
    demo = DEMO_INPUTS
    for name in ("patients", "sessions"):
        lines = demo[name].read_text().splitlines()[:3]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "assessments.csv").write_text(
        "patient_id,visit,assessment_date,nrs,Zeitpunkt\n"
        "P0001,0,2025-01-08,8,\nP0001,,2025-01-13,6,vor\nP0001,,2025-01-13,4,nach\n"
    )
    config = tmp_path / "analysis.toml"
    mcid = "\n".join(
        f"[mcid.{name}]\npoints = {points}\npercent = 30"
        for name, points in (("nrs", 2), ("vas", 15), ("odi", 10))
    )
    config.write_text(
        '[[sources]]\nkind = "canonical"\npatients = "patients.csv"\n'
        'sessions = "sessions.csv"\nassessments = "assessments.csv"\n'
        '[sources.columns]\ntiming = "Zeitpunkt"\n'
        '[sources.codes.timing]\n"vor" = "pre_session"\n"nach" = "post_session"\n'
        f'[outputs]\nprocessed = "p"\nreports = "r"\n[privacy]\ndemo_key = true\n{mcid}\n'
    )
    loaded = load_config(config)
    v = validate_study(read_sources(loaded.sources))
    assert len(v.failures) == 0
    timing = v.valid("assessments")["timing"]
    assert timing.tolist()[1:] == ["pre_session", "post_session"]
