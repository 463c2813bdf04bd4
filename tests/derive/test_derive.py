import numpy as np
import pandas as pd
import pytest
from factories import write_config, write_study

from pipeline.config.options import Thresholds
from pipeline.config.settings import load_config
from pipeline.derive.dataset import (
    analysis_dataset,
    classify_chronicity,
    patient_exposure,
    score_odi,
    sessions_before,
)
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.schemas.raw import ODI_ITEMS
from pipeline.validate.study import validate_study


def _items(*responses, total=np.nan):
    row = dict(zip(ODI_ITEMS, responses, strict=False))
    frame = pd.DataFrame([row], columns=list(ODI_ITEMS)).astype("Int64")
    frame["odi"] = total
    return frame


def test_odi_all_sections_answered():
    # 10 sections, sum 23 -> 23 / 50 * 100 = 46 % (Fairbank & Pynsent 2000)
    scored = score_odi(_items(3, 2, 3, 2, 3, 2, 3, 2, 1, 2))
    assert scored.loc[0, "odi"] == pytest.approx(46.0)
    assert scored.loc[0, "odi_source"] == "items"


def test_odi_one_section_missing_is_scored_over_45():
    # section 8 unanswered: sum 21 over 9 sections -> 21 / 45 * 100 = 46.67 %
    scored = score_odi(_items(3, 2, 3, 2, 3, 2, 3, None, 1, 2))
    assert scored.loc[0, "odi"] == pytest.approx(21 / 45 * 100)
    assert scored.loc[0, "odi_answered"] == 9


def test_odi_two_sections_missing_is_not_scored_unless_policy_allows():
    items = _items(3, 2, 3, 2, 3, 2, 3, None, None, 2)
    assert pd.isna(score_odi(items).loc[0, "odi"])
    assert score_odi(items, max_missing=2).loc[0, "odi"] == pytest.approx(20 / 40 * 100)


def test_recorded_total_is_used_only_without_items():
    assert score_odi(_items(total=42.0)).loc[0, "odi"] == 42.0
    assert score_odi(_items(total=42.0)).loc[0, "odi_source"] == "total"
    assert score_odi(_items(*[1] * 10, total=42.0)).loc[0, "odi"] == 20.0


def test_chronicity_thresholds():
    weeks = pd.Series([0, 5.9, 6, 12, 12.1, np.nan])
    got = classify_chronicity(weeks, Thresholds())
    assert list(got.astype(object)) == ["acute", "acute", "subacute", "subacute", "chronic", np.nan]
    assert list(got.categories) == ["acute", "subacute", "chronic"]


def test_same_day_session_counts_after_the_assessment():
    sessions = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B"],
            "session_date": pd.to_datetime(
                ["2025-01-01", "2025-01-08", "2025-01-15", "2025-01-01"]
            ),
        }
    )
    assessments = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B"],
            "assessment_date": pd.to_datetime(
                ["2025-01-01", "2025-01-08", "2025-01-20", "2025-01-02"]
            ),
        },
        index=[10, 11, 12, 13],
    )
    got = sessions_before(assessments, sessions)
    assert got.to_dict() == {10: 0, 11: 1, 12: 3, 13: 1}
    # only twitch sessions; the same-day session (A, 2025-01-08) is still not counted
    sessions["twitch"] = pd.array([False, True, None, True], dtype="boolean")
    twitched = sessions_before(assessments, sessions, flag="twitch")
    assert twitched.to_dict() == {10: 0, 11: 0, 12: 1, 13: 1}


def test_exposure_groups_follow_thresholds():
    sessions = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B", "B", "B", "B"],
            "depth": ["deep", "superficial", "superficial", "superficial", "superficial", "deep"],
            "twitch": pd.array([True, None, False, False, True, False], dtype="boolean"),
            "ltr_count": pd.array([2, 0, 0, 0, 1, 0], dtype="Int64"),
            "adverse_event": ["soreness", "none", None, "none", "none", "bruising"],
        }
    )
    got = patient_exposure(sessions, Thresholds()).set_index("patient_id")
    assert got.loc["A", "deep_share"] == 0.5 and got.loc["A", "depth"] == "deep"
    assert got.loc["A", "twitch_share"] == 0.5 and got.loc["A", "twitch"] == "twitch"
    assert got.loc["B", "depth"] == "superficial" and got.loc["B", "twitch"] == "no twitch"
    assert got.loc["B", "n_adverse_events"] == 1
    stricter = patient_exposure(sessions, Thresholds(twitch_share=0.6)).set_index("patient_id")
    assert stricter.loc["A", "twitch"] == "no twitch"


def test_analysis_dataset_change_responders_and_time(tmp_path):
    paths = write_study(tmp_path / "raw")
    config = load_config(write_config(tmp_path, paths))
    v = validate_study(read_raw_tables(paths))
    data = analysis_dataset(
        v.valid("patients"), v.valid("sessions"), v.valid("assessments"), config
    ).set_index(["patient_id", "visit"])
    # P1: NRS 8 -> 6 (-2 points: responder by points), 8 -> 4 (responder)
    assert data.loc[("P1", 1), "nrs_change"] == -2
    assert bool(data.loc[("P1", 1), "nrs_responder"])
    assert data.loc[("P1", 1), "weeks"] == 1.0 and data.loc[("P1", 1), "sessions_completed"] == 1
    # VAS 75 -> 60: 15 mm improvement reaches the 15 mm MCID; 20 % does not matter
    assert bool(data.loc[("P1", 1), "vas_mm_responder"])
    # P2: VAS 55 -> 52, 3 mm and 5.5 %: not a responder; NRS unchanged
    assert not bool(data.loc[("P2", 1), "vas_mm_responder"])
    assert data.loc[("P2", 1), "nrs_pct_change"] == 0
    # ODI: P1 baseline 20/50 -> 40 %; visit 1 sections 1 x 9 answered -> 9/45 = 20 %;
    # visit 2 has two sections missing -> not scored
    assert data.loc[("P1", 0), "odi"] == pytest.approx(40.0)
    assert data.loc[("P1", 1), "odi_change"] == pytest.approx(-20.0)
    assert pd.isna(data.loc[("P1", 2), "odi"])
    # P2 recorded total only
    assert data.loc[("P2", 0), "odi_source"] == "total"
    # baseline rows have no responder status
    assert pd.isna(data.loc[("P1", 0), "nrs_responder"])
    # P2 takes anticoagulants: contraindicated; P3 subacute (8 weeks) with a protocol deviation
    assert bool(data.loc[("P2", 0), "contraindicated"])
    assert data.loc[("P3", 0), "chronicity"] == "subacute"
    assert bool(data.loc[("P3", 0), "protocol_deviation"])
    assert data.loc[("P3", 0), "twitch"] == "twitch"  # LTR count 3 with twitch left empty
