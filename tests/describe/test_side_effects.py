"""Side effects by kind and technique (issue 17, SAP §4b)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.demo.simulate import (
    AE_DETAIL_TRUTHS,
    TRUE_EFFECTS,
    simulate_adverse_event_details,
    simulate_study,
)
from pipeline.derive.adverse_events import canonical_adverse_events, sessions_recorded
from pipeline.describe import side_effects as se
from pipeline.describe.safety import exact_rate_ratio
from pipeline.schemas.outputs import MODELS, check_output, columns


def _typed(sessions: pd.DataFrame) -> pd.DataFrame:
    out = sessions.copy()
    out["twitch"] = out["twitch"].map({"yes": True, "no": False}).astype("boolean")
    out["session_number"] = out["session_number"].astype("Int64")
    return out


@pytest.fixture(scope="module")
def study():
    tables = simulate_study(1500, 17)
    sessions = _typed(tables["sessions"])
    events = simulate_adverse_event_details(tables["sessions"], 17)
    events["serious"] = events["serious"].map({"yes": True, "no": False}).astype("boolean")
    return sessions, events


def _sessions() -> pd.DataFrame:
    """40 deep sessions (7 with an event, one of them also bruising), 50 superficial (2)."""
    rows = []
    for k in range(40):
        event = "soreness" if k < 7 else "none"
        rows.append(("A", k + 1, "deep", k % 2 == 0, event, "mild" if k < 7 else None))
    for k in range(50):
        event = "fatigue" if k < 2 else "none"
        rows.append(("B", k + 1, "superficial", False, event, "moderate" if k < 2 else None))
    rows.append(("B", 51, "superficial", False, None, None))  # not recorded: not counted
    frame = pd.DataFrame(
        rows,
        columns=["patient_id", "session_number", "depth", "twitch", "adverse_event", "ae_severity"],
    )
    frame["session_number"] = frame["session_number"].astype("Int64")
    frame["twitch"] = frame["twitch"].astype("boolean")
    frame["ltr_count"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return frame


def test_legacy_columns_become_event_rows():
    sessions = _sessions()
    events = canonical_adverse_events(sessions)
    assert len(events) == 9
    assert list(events.columns) == [
        "patient_id",
        "session_number",
        "ae_type",
        "ae_severity",
        "ae_duration_hours",
        "serious",
    ]
    assert events["ae_duration_hours"].isna().all() and events["serious"].isna().all()
    assert int(sessions_recorded(sessions).sum()) == 90


def test_rates_and_ratios_match_r_poisson_test():
    sessions = _sessions()
    events = canonical_adverse_events(sessions)
    extra = pd.DataFrame(
        {"patient_id": ["A"], "session_number": pd.array([1], "Int64"), "ae_type": ["bruising"]}
    )
    events = canonical_adverse_events(sessions, pd.concat([events, extra], ignore_index=True))
    rates = se.side_effect_rates(sessions, events, sessions_recorded(sessions, events))
    deep = rates.query("group == 'depth' and level == 'deep'").set_index(["ae_type", "ae_severity"])
    assert deep.loc[("any", "all"), "events"] == 8  # two events in one session count twice
    soreness = deep.loc[("soreness", "all")]
    assert (soreness["sessions"], soreness["events"]) == (40, 7)
    # R: poisson.test(7, 40)$conf.int * 100
    assert soreness["ci_low"] == pytest.approx(7.0359076288, rel=1e-8)
    assert soreness["ci_high"] == pytest.approx(36.0566884043, rel=1e-8)
    # severities add up to any (the bruising row has no severity: "not recorded")
    by_severity = deep.xs("any", level="ae_type")
    assert by_severity.drop(index="all")["events"].sum() == 8
    assert by_severity.loc["not recorded", "events"] == 1
    ratios = se.side_effect_rate_ratios(rates).query("group == 'depth'").set_index("ae_type")
    assert ratios.loc["fatigue", "rate_ratio"] == 0.0
    # any: deep 8 / 40 vs superficial 2 / 50 ... R: poisson.test(c(8, 2), c(40, 50))
    # soreness has no superficial event: ratio infinite, lower limit finite
    assert np.isinf(ratios.loc["soreness", "rate_ratio"])
    # R: r <- poisson.test(c(7, 2), c(40, 50)); r$estimate; r$conf.int; r$p.value
    ratio, low, high, p = exact_rate_ratio(7, 40, 2, 50)
    assert ratio == pytest.approx(4.375)
    assert low == pytest.approx(0.8330084752598, rel=1e-8)
    assert high == pytest.approx(43.16290381679, rel=1e-8)
    assert p == pytest.approx(0.0876889322186, rel=1e-8)


def test_simulated_rates_and_ratio_recover_the_truth(study):
    sessions, _ = study
    # the legacy sessions' events only (the simulator's second fatigue events are extra)
    legacy = canonical_adverse_events(sessions)
    rates = se.side_effect_rates(sessions, legacy, sessions_recorded(sessions))
    truth = TRUE_EFFECTS["adverse_events"]
    p = {"superficial": truth["p_per_session_superficial"], "deep": truth["p_per_session_deep"]}
    for level, p_any in p.items():
        for kind, share in truth["type"].items():
            if share < 0.1:  # bleeding and fainting: too rare for a check at this size
                continue
            row = rates.query(
                "group == 'depth' and level == @level and ae_type == @kind and ae_severity == 'all'"
            ).iloc[0]
            assert row["ci_low"] <= 100 * p_any * share <= row["ci_high"], (level, kind)
    ratios = se.side_effect_rate_ratios(rates).query("group == 'depth'").set_index("ae_type")
    for kind in ("any", "soreness"):
        row = ratios.loc[kind]
        assert row["ci_low"] <= truth["rate_ratio_deep_vs_superficial"] <= row["ci_high"], kind


def test_durations_and_serious_events_recover_the_truth(study):
    sessions, events = study
    events = canonical_adverse_events(sessions, events)
    table = se.event_durations(events)
    check_output("side_effect_durations", table)
    assert list(table.columns) == columns(MODELS["side_effect_durations"])
    durations = table.set_index("ae_type")
    for kind in ("soreness", "bruising"):
        truth = AE_DETAIL_TRUTHS["duration_hours_median"][kind]
        row = durations.loc[kind]
        assert row["ci_low"] <= truth <= row["ci_high"], kind
    serious = se.serious_events(sessions, events)
    assert serious["events"].sum() == int((events["ae_severity"] == "severe").sum())
    assert list(serious.columns) == ["ae_type", "ae_severity", "serious", "depth", "events"]
    assert set(serious["serious"]) == {"yes"} and set(serious["ae_severity"]) == {"severe"}
    # the second events: fatigue after ~10 % of soreness sessions (events > legacy events)
    assert len(events) > len(canonical_adverse_events(sessions))


def test_no_recorded_session_gives_no_rates():
    sessions = _sessions().assign(adverse_event=None)
    events = canonical_adverse_events(sessions)
    assert events.empty
    assert se.side_effect_rates(sessions, events, sessions_recorded(sessions)).empty
