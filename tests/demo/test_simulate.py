"""Tests for pipeline.demo.simulate: layout, ranges, design facts, bad rows and CSV writing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.demo.simulate import (
    ASSESSMENT_COLUMNS,
    DENSE_VISIT_WEEKS,
    PATIENT_COLUMNS,
    SESSION_COLUMNS,
    TABLE_COLUMNS,
    TRUE_EFFECTS,
    add_bad_rows,
    simulate_study,
    write_raw_tables,
)

FLAGS = [
    "anticoagulants",
    "bleeding_disorder",
    "pregnant",
    "immunocompromised",
    "recent_surgery",
    "needle_phobia",
    "unable_to_consent",
    "protocol_deviation",
]
ITEMS = [f"odi_q{k}" for k in range(1, 11)]


@pytest.fixture(scope="module")
def study() -> dict[str, pd.DataFrame]:
    return simulate_study(300, 20250106)


@pytest.fixture(scope="module")
def large() -> dict[str, pd.DataFrame]:
    return simulate_study(3000, 7)


def _depth_by_patient(sessions: pd.DataFrame) -> pd.Series:
    return sessions.groupby("patient_id")["depth"].first()


# ----------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_tables(study, tmp_path):
    again = simulate_study(300, 20250106)
    for name in TABLE_COLUMNS:
        pd.testing.assert_frame_equal(study[name], again[name])
    write_raw_tables(study, tmp_path / "a")
    write_raw_tables(again, tmp_path / "b")
    for name in TABLE_COLUMNS:
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()


def test_different_seed_gives_different_tables(study):
    other = simulate_study(300, 20250107)
    for name in TABLE_COLUMNS:
        assert not study[name].equals(other[name])


@pytest.mark.parametrize(
    ("n", "seed"),
    [(9, 1), (0, 1), (-5, 1), (10.0, 1), (True, 1), ("20", 1), (20, -1), (20, 1.5), (20, None)],
)
def test_invalid_arguments_raise(n, seed):
    with pytest.raises(ValueError, match="must be an integer"):
        simulate_study(n, seed)


def test_numpy_integers_accepted():
    tables = simulate_study(np.int64(10), np.uint32(3))
    assert len(tables["patients"]) == 10


# ----------------------------------------------------------------------------- layout
def test_exact_columns_in_order(study):
    assert list(study["patients"].columns) == list(PATIENT_COLUMNS)
    assert list(study["sessions"].columns) == list(SESSION_COLUMNS)
    assert list(study["assessments"].columns) == list(ASSESSMENT_COLUMNS)
    assert list(PATIENT_COLUMNS[:7]) == [
        "patient_id",
        "site",
        "enrolment_date",
        "age",
        "sex",
        "symptom_weeks",
        "arm",
    ]
    assert list(ASSESSMENT_COLUMNS[-13:]) == [
        *ITEMS,
        "odi_version",
        "timing",
        "co_intervention_started",
    ]


def test_csv_header_and_format(study, tmp_path):
    paths = write_raw_tables(study, tmp_path / "nested" / "raw")
    assert set(paths) == set(TABLE_COLUMNS)
    for name, cols in TABLE_COLUMNS.items():
        text = paths[name].read_text(encoding="utf-8")
        lines = text.split("\n")
        assert lines[0] == ",".join(cols)
        assert "\r" not in text
        assert lines[-1] == ""  # trailing newline
        assert len(lines) - 2 == len(study[name])
    # no temporary files left behind
    assert sorted(p.name for p in (tmp_path / "nested" / "raw").iterdir()) == [
        "assessments.csv",
        "patients.csv",
        "sessions.csv",
    ]
    back = pd.read_csv(paths["assessments"], dtype=str, keep_default_na=False)
    assert back["assessment_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert back["vas_mm"].isin([""]).any()  # missing = empty cell
    patients = pd.read_csv(paths["patients"], dtype=str, keep_default_na=False)
    assert (patients["arm"] == "").all()
    assert patients[FLAGS].isin(["yes", "no"]).all().all()


def test_write_rejects_bad_names(study, tmp_path):
    with pytest.raises(ValueError, match="file stem"):
        write_raw_tables({"../evil": study["patients"]}, tmp_path)


# ----------------------------------------------------------------------------- ranges
def test_patient_ranges(study):
    p = study["patients"]
    assert p["patient_id"].is_unique
    assert p["patient_id"].str.fullmatch(r"P\d{4}").all()
    assert set(p["site"]) == {"Northside", "Riverside", "Hillview"}
    assert p["age"].between(18, 85).all()
    assert set(p["sex"]) <= {"female", "male", "other"}
    weeks = p["symptom_weeks"]
    assert (weeks.between(1, 5) | weeks.between(13, 260)).all()
    assert p[FLAGS].isin(["yes", "no"]).all().all()
    assert p["arm"].isna().all()
    start = pd.Timestamp("2025-01-06")
    enrol = pd.to_datetime(p["enrolment_date"], format="%Y-%m-%d")
    assert enrol.min() >= start
    assert enrol.max() <= start + pd.Timedelta(days=548)


def test_session_ranges(study):
    s = study["sessions"]
    assert set(s["depth"]) == {"superficial", "deep"}
    assert s["twitch"].isin(["yes", "no"]).all()
    assert (s["ltr_count"] >= 0).all()
    assert (s.loc[s["twitch"] == "no", "ltr_count"] == 0).all()
    assert (s.loc[s["twitch"] == "yes", "ltr_count"] >= 1).all()
    assert (s["needles"] >= 1).all()
    assert s["retention_min"].between(0, 60).all()
    assert set(s["trigger_point"]) <= {"active", "latent"}
    assert set(s["co_intervention"].dropna()) <= {
        "exercise",
        "manual therapy",
        "exercise; manual therapy",
    }
    assert set(s["adverse_event"]) <= {
        "none",
        "soreness",
        "bruising",
        "fatigue",
        "discomfort",
        "bleeding",
        "fainting",
    }
    none = s["adverse_event"] == "none"
    assert s.loc[none, "ae_severity"].isna().all()
    assert s.loc[~none, "ae_severity"].isin(["mild", "moderate", "severe"]).all()
    assert s["therapist"].str.fullmatch(r"T\d{2}").all()
    # depth is constant within a patient
    assert s.drop_duplicates(["patient_id", "depth"])["patient_id"].is_unique
    # sessions are numbered 1..k and dated about weekly, after enrolment
    dates = pd.to_datetime(s["session_date"], format="%Y-%m-%d")
    gaps = dates.groupby(s["patient_id"]).diff().dt.days.dropna()
    assert gaps.between(5, 9).all()
    enrol = study["patients"].set_index("patient_id")["enrolment_date"]
    first = s[s["session_number"] == 1].set_index("patient_id")["session_date"]
    delay = (
        pd.to_datetime(first, format="%Y-%m-%d")
        - pd.to_datetime(enrol[first.index], format="%Y-%m-%d")
    ).dt.days
    assert delay.between(0, 7).all()
    numbers = s.groupby("patient_id")["session_number"].agg(list)
    assert all(v == list(range(1, len(v) + 1)) for v in numbers)


def test_assessment_ranges(study):
    a = study["assessments"]
    a = a[a["visit"].notna()]
    assert a["nrs"].dtype.kind == "i"
    assert a["nrs"].between(0, 10).all()
    vas = a["vas_mm"].dropna()
    assert vas.between(0, 100).all()
    assert (vas.round(1) == vas).all()
    assert 0.85 < a["vas_mm"].notna().mean() < 0.95
    items = a[ITEMS]
    values = items.to_numpy(dtype=float, na_value=np.nan)
    values = values[~np.isnan(values)]
    assert ((values >= 0) & (values <= 5) & (values == np.round(values))).all()
    assert a["odi"].dropna().between(0, 100).all()
    assert set(a["odi_version"]) == {"2.1a"}
    assert set(a["visit"]) <= {0, 1, 2, 3, 4}
    assert not a.duplicated(["patient_id", "visit"]).any()
    # Hillview records the total only, the other sites the items only
    site = study["patients"].set_index("patient_id")["site"][a["patient_id"]].to_numpy()
    hill = site == "Hillview"
    assert items[hill].isna().all().all()
    assert a.loc[~hill, "odi"].isna().all()
    assert a.loc[hill, "odi"].notna().mean() > 0.99
    # section 8 is unanswered far more often than the others
    answered_sites = items[~hill]
    assert answered_sites["odi_q8"].isna().mean() > 5 * answered_sites["odi_q1"].isna().mean()


def test_every_patient_has_baseline_on_first_session_day(study):
    a, s, p = study["assessments"], study["sessions"], study["patients"]
    base = a[a["visit"] == 0].set_index("patient_id")["assessment_date"]
    first = s[s["session_number"] == 1].set_index("patient_id")["session_date"]
    assert set(base.index) == set(p["patient_id"])
    assert (base == first[base.index]).all()
    # follow-ups near their nominal weeks
    days = (
        pd.to_datetime(a["assessment_date"], format="%Y-%m-%d")
        - pd.to_datetime(base[a["patient_id"]].to_numpy(), format="%Y-%m-%d")
    ).dt.days
    nominal = a["visit"].map(TRUE_EFFECTS["design"]["visit_weeks"]) * 7
    assert (days - nominal).abs().max() <= 3


# ----------------------------------------------------------------------------- design facts
def test_sessions_per_patient_by_chronicity(study):
    p = study["patients"].set_index("patient_id")
    counts = study["sessions"].groupby("patient_id").size()
    chronic = p.loc[counts.index, "symptom_weeks"] > 12
    assert counts[chronic].between(4, 8).all()
    assert counts[~chronic].between(1, 3).all()
    assert 0.5 < chronic.mean() < 0.7


def test_twitch_and_adverse_events_more_frequent_with_deep(large):
    s = large["sessions"]
    deep = s["depth"] == "deep"
    twitch = s["twitch"] == "yes"
    ae = s["adverse_event"] != "none"
    assert twitch[deep].mean() == pytest.approx(0.65, abs=0.03)
    assert twitch[~deep].mean() == pytest.approx(0.25, abs=0.03)
    assert ae[deep].mean() == pytest.approx(0.20, abs=0.03)
    assert ae[~deep].mean() == pytest.approx(0.08, abs=0.02)
    p = large["patients"]
    flags = p[FLAGS[:-1]].eq("yes").any(axis=1).mean()
    assert 0.02 < flags < 0.06
    assert 0.015 < p["protocol_deviation"].eq("yes").mean() < 0.045


def test_nrs_deep_minus_superficial_decline_near_truth(large):
    a = large["assessments"]
    depth = _depth_by_patient(large["sessions"])
    wide = a.pivot_table(index="patient_id", columns="visit", values="nrs", aggfunc="first")
    change = (wide[4] - wide[0]).dropna()
    deep = depth[change.index] == "deep"
    diff = change[deep].mean() - change[~deep].mean()
    truth = 12 * TRUE_EFFECTS["nrs"]["deep_x_time_per_week"]
    assert truth == pytest.approx(-1.2)
    assert diff == pytest.approx(truth, abs=0.35)
    # no depth difference at baseline
    base = wide[0]
    deep_all = depth[base.index] == "deep"
    assert abs(base[deep_all].mean() - base[~deep_all].mean()) < 0.25


def test_dropout_is_monotone_after_dropout_and_more_missing_later(large):
    counts = large["assessments"]["visit"].value_counts().sort_index()
    assert counts[0] == len(large["patients"])
    assert (np.diff(counts.to_numpy()) < 0).all()
    assert 0.6 < counts[4] / counts[0] < 0.8


# ----------------------------------------------------------------------------- bad rows
def test_bad_rows_manifest_matches_added_rows(study, tmp_path):
    bad, manifest = add_bad_rows(study, seed=3)
    assert 8 <= len(manifest) <= 12
    assert list(manifest.columns) == [
        "table",
        "fault",
        "description",
        "patient_id",
        "visit",
        "session_number",
        "row",
        "csv_line",
    ]
    for name in TABLE_COLUMNS:
        added = (manifest["table"] == name).sum()
        assert len(bad[name]) == len(study[name]) + added
        assert list(bad[name].columns) == list(study[name].columns)
    assert manifest["fault"].is_unique
    # the original rows are unchanged and in order
    for name in TABLE_COLUMNS:
        rows = manifest.loc[manifest["table"] == name, "row"]
        kept = bad[name].drop(index=rows).reset_index(drop=True)
        expected = study[name].reset_index(drop=True)
        assert kept.astype(str).equals(expected.astype(str))
    # the written CSV lines of the originals are byte-identical
    write_raw_tables(study, tmp_path / "clean")
    write_raw_tables(bad, tmp_path / "bad")
    for name in TABLE_COLUMNS:
        clean_lines = (tmp_path / "clean" / f"{name}.csv").read_text().split("\n")
        bad_lines = (tmp_path / "bad" / f"{name}.csv").read_text().split("\n")
        lines = manifest.loc[manifest["table"] == name, "csv_line"]
        kept = [ln for k, ln in enumerate(bad_lines, start=1) if k not in set(lines)]
        assert kept == clean_lines


def test_bad_rows_carry_their_faults(study):
    bad, manifest = add_bad_rows(study, seed=3)
    row = {f: (t, r) for f, t, r in manifest[["fault", "table", "row"]].itertuples(index=False)}

    def cell(fault: str, column: str):
        table, r = row[fault]
        return bad[table].loc[r, column]

    assert cell("nrs_out_of_range", "nrs") == 11
    assert cell("vas_out_of_range", "vas_mm") == 140
    assert cell("vas_not_numeric", "vas_mm") == "abc"
    assert cell("odi_item_out_of_range", "odi_q3") == 6
    assert cell("invalid_depth", "depth") == "medium"
    assert cell("orphan_session", "patient_id") == "P9999"
    assert "P9999" not in set(study["patients"]["patient_id"])
    assert pd.isna(cell("missing_site", "site"))
    enrol = study["patients"].set_index("patient_id")["enrolment_date"]
    for fault, column in [
        ("session_before_enrolment", "session_date"),
        ("assessment_before_enrolment", "assessment_date"),
    ]:
        table, r = row[fault]
        assert cell(fault, column) < enrol[bad[table].loc[r, "patient_id"]]
    a = bad["assessments"]
    dup = a.duplicated(["patient_id", "visit"], keep=False) & a["visit"].notna()
    assert dup.sum() == 2
    table, r = row["duplicate_assessment"]
    assert dup[r]
    # manifest keys point at the rows
    for rec in manifest.itertuples(index=False):
        frame = bad[rec.table]
        assert frame.loc[rec.row, "patient_id"] == rec.patient_id
        assert rec.csv_line == rec.row + 2
        if rec.table == "assessments":
            assert frame.loc[rec.row, "visit"] == rec.visit
        if rec.table == "sessions":
            assert frame.loc[rec.row, "session_number"] == rec.session_number


def test_bad_rows_deterministic_and_small_samples():
    small = simulate_study(10, 0)
    first = add_bad_rows(small, seed=1)
    second = add_bad_rows(small, seed=1)
    pd.testing.assert_frame_equal(first[1], second[1])
    for name in TABLE_COLUMNS:
        pd.testing.assert_frame_equal(first[0][name], second[0][name])
    assert len(first[1]) == 10
    with pytest.raises(ValueError, match="seed"):
        add_bad_rows(small, seed=-1)
    with pytest.raises(ValueError, match="sessions"):
        add_bad_rows({"patients": small["patients"]}, seed=1)


# ----------------------------------------------------------------------------- visit schedule
@pytest.fixture(scope="module")
def dense() -> dict[str, pd.DataFrame]:
    return simulate_study(3000, 7, visit_weeks=DENSE_VISIT_WEEKS)


def test_default_schedule_unchanged_when_given_explicitly(study):
    again = simulate_study(300, 20250106, visit_weeks=TRUE_EFFECTS["design"]["visit_weeks"])
    for name in TABLE_COLUMNS:
        pd.testing.assert_frame_equal(study[name], again[name])


def test_dense_schedule_changes_only_the_assessments(large, dense):
    for name in ("patients", "sessions"):
        pd.testing.assert_frame_equal(large[name], dense[name])
    a = dense["assessments"]
    assert list(a.columns) == list(ASSESSMENT_COLUMNS)
    a = a[a["visit"].notna()]
    assert sorted(a["visit"].unique()) == sorted(DENSE_VISIT_WEEKS)
    counts = a["visit"].value_counts().sort_index()
    assert counts[0] == len(dense["patients"])
    assert (np.diff(counts.to_numpy()) < 0).all()  # missed visits and dropout as before
    # about 6.2 assessments per patient (4.2 with the default schedule)
    assert 6.0 < len(a) / len(dense["patients"]) < 6.45
    assert large["assessments"]["visit"].notna().sum() / len(large["patients"]) < 4.4


def test_dense_schedule_dates_near_nominal_weeks_and_in_visit_order(dense):
    a = dense["assessments"]
    a = a[a["visit"].notna()].astype({"visit": "int64"})
    dates = pd.to_datetime(a["assessment_date"], format="%Y-%m-%d")
    base = dates[a["visit"] == 0].set_axis(a.loc[a["visit"] == 0, "patient_id"])
    days = (dates - base[a["patient_id"]].to_numpy()).dt.days
    nominal = a["visit"].map(DENSE_VISIT_WEEKS) * 7
    assert (days - nominal).abs().max() <= TRUE_EFFECTS["design"]["visit_jitter_days"]
    ordered = a.assign(day=days).sort_values(["patient_id", "visit"])
    assert (ordered.groupby("patient_id")["day"].diff().dropna() > 0).all()


@pytest.mark.parametrize(
    ("schedule", "match"),
    [
        ({}, "non-empty mapping"),
        ([0, 2, 4], "non-empty mapping"),
        ({0: 0, 2: 4}, "0, 1, ..., K"),
        ({1: 0, 2: 4}, "0, 1, ..., K"),
        ({v: v for v in range(102)}, "0, 1, ..., K"),
        ({0: 1, 1: 4}, "at least one week"),
        ({0: 0, 1: 4, 2: 4}, "at least one week"),
        ({0: 0, 1: 4, 2: 3}, "at least one week"),
        ({0: 0, 1: 2.5}, "must be an integer"),
        ({0: 0, "1": 2}, "must be an integer"),
    ],
)
def test_invalid_schedules_raise(schedule, match):
    with pytest.raises(ValueError, match=match):
        simulate_study(20, 1, visit_weeks=schedule)
    with pytest.raises(ValueError, match=match):
        add_bad_rows(simulate_study(20, 1), seed=1, visit_weeks=schedule)


def test_bad_rows_of_a_dense_study_dated_by_its_schedule():
    tables = simulate_study(300, 5, visit_weeks=DENSE_VISIT_WEEKS)
    bad, manifest = add_bad_rows(tables, seed=3, visit_weeks=DENSE_VISIT_WEEKS)
    a = bad["assessments"]
    base = tables["assessments"].query("visit == 0").set_index("patient_id")["assessment_date"]
    for fault in ("nrs_out_of_range", "vas_out_of_range", "odi_item_out_of_range"):
        rec = manifest.loc[manifest["fault"] == fault].iloc[0]
        row = a.loc[rec["row"]]
        assert row["visit"] in DENSE_VISIT_WEEKS
        days = (pd.Timestamp(row["assessment_date"]) - pd.Timestamp(base[row["patient_id"]])).days
        assert days == 7 * DENSE_VISIT_WEEKS[row["visit"]]


# ----------------------------------------------------------------------------- pre/post pairs
def test_session_measurements_come_in_pairs_on_session_days(large):
    a = large["assessments"]
    timed = a[a["visit"].isna()]
    assert set(timed["timing"]) == {"pre_session", "post_session"}
    assert timed[[*ITEMS, "vas_mm", "odi"]].isna().all().all()
    pairs = timed.groupby(["patient_id", "assessment_date"])["timing"].agg(sorted)
    assert all(v == ["post_session", "pre_session"] for v in pairs)
    s = large["sessions"]
    days = set(zip(s["patient_id"], s["session_date"], strict=True))
    assert set(pairs.index) <= days
    # P = 0.30 per session (TRUE_EFFECTS["immediate_relief"])
    share = len(pairs) / len(s)
    assert abs(share - TRUE_EFFECTS["immediate_relief"]["p_session_measured"]) < 0.02
    # the visit rows do not depend on them: the same as without the relief stream
    assert a["timing"][a["visit"].notna()].isna().all()


def test_immediate_relief_truth_in_the_pairs(large):
    # pre minus post, averaged: 1.0 + 0.6 P(deep) + 0.4 P(twitch) before rounding and clipping
    a = large["assessments"]
    timed = a[a["visit"].isna()]
    wide = timed.pivot_table(
        index=["patient_id", "assessment_date"], columns="timing", values="nrs", aggfunc="first"
    )
    relief = (wide["pre_session"] - wide["post_session"]).astype(float)
    s = large["sessions"].set_index(["patient_id", "session_date"])
    deep = (s["depth"] == "deep").reindex(relief.index)
    twitch = (s["twitch"] == "yes").reindex(relief.index)
    truth = TRUE_EFFECTS["immediate_relief"]
    expected = truth["relief_nrs"] + truth["deep"] * deep + truth["twitch"] * twitch
    se = relief.std() / np.sqrt(len(relief))
    assert abs(relief.mean() - expected.mean()) < 3 * se


# ----------------------------------------------------------------------------- co-interventions
def test_co_interventions_reported_once_at_attended_visits(large):
    a = large["assessments"]
    flag = a["co_intervention_started"]
    assert flag[a["visit"] == 0].isna().all()  # nothing to report at baseline
    assert flag[a["visit"] > 0].isin(["yes", "no"]).all()
    per_patient = (flag == "yes").groupby(a["patient_id"]).sum()
    assert per_patient.max() == 1  # the intercurrent event is the first report only
    # module docstring: P = 0.04 per attended visit, 0.10 at NRS >= 7 -> about 16 % of patients
    assert 0.12 < (per_patient == 1).mean() < 0.20
    post = a[a["visit"] > 0]
    high = post["nrs"] >= TRUE_EFFECTS["intercurrent_events"]["high_pain_nrs"]
    rate_high = (post.loc[high, "co_intervention_started"] == "yes").mean()
    rate_low = (post.loc[~high, "co_intervention_started"] == "yes").mean()
    assert rate_high > 1.8 * rate_low


def test_co_interventions_have_their_own_random_stream(monkeypatch):
    # Another stream changes who reports a co-intervention and nothing else, so the events
    # could be added without moving any other number of the demo study.
    base = simulate_study(300, 20250106)
    par = dict(TRUE_EFFECTS["intercurrent_events"], stream=20)
    monkeypatch.setitem(TRUE_EFFECTS, "intercurrent_events", par)
    other = simulate_study(300, 20250106)
    for name in ("patients", "sessions"):
        pd.testing.assert_frame_equal(base[name], other[name])
    flag = "co_intervention_started"
    pd.testing.assert_frame_equal(
        base["assessments"].drop(columns=flag), other["assessments"].drop(columns=flag)
    )
    assert not base["assessments"][flag].equals(other["assessments"][flag])
