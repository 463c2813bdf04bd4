import numpy as np
import pandas as pd
import pytest

from pipeline.describe.safety import adverse_event_counts, adverse_event_rates, rate_ratio


def _sessions(spec):
    """Build a sessions table from ``{depth: (events, nones, not_recorded)}``."""
    rows = []
    for depth, (events, nones, missing) in spec.items():
        rows += [(depth, "soreness", "mild")] * events
        rows += [(depth, "none", None)] * nones
        rows += [(depth, None, None)] * missing
    frame = pd.DataFrame(rows, columns=["depth", "adverse_event", "ae_severity"])
    frame.insert(0, "patient_id", [f"P{k % 7}" for k in range(len(frame))])
    return frame


@pytest.fixture
def sessions():
    # superficial: 12 events / 150 recorded sessions; deep: 15 / 90; 5 + 3 not recorded
    return _sessions({"superficial": (12, 138, 5), "deep": (15, 75, 3)})


def test_rates_and_exact_poisson_ci(sessions):
    rates = adverse_event_rates(sessions)
    assert list(rates["level"]) == ["superficial", "deep"]
    assert list(rates["sessions"]) == [150, 90]
    assert list(rates["events"]) == [12, 15]
    assert list(rates["not_recorded"]) == [5, 3]
    assert rates["rate_per_100"].tolist() == pytest.approx([8.0, 100 * 15 / 90])
    # R: poisson.test(12, 150)$conf.int * 100
    assert rates.loc[0, ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [4.13371673914814, 13.97439003211797], rel=1e-10
    )
    # R: poisson.test(15, 90)$conf.int * 100
    assert rates.loc[1, ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [9.32820681420368, 27.48913207942871], rel=1e-10
    )


def test_missing_adverse_event_is_excluded_from_denominator(sessions):
    more_missing = pd.concat([sessions, _sessions({"deep": (0, 0, 40)})], ignore_index=True)
    rates = adverse_event_rates(more_missing)
    assert rates.loc[1, "sessions"] == 90
    assert rates.loc[1, "not_recorded"] == 43


def test_rate_ratio_deep_vs_superficial(sessions):
    ratio = rate_ratio(sessions)
    assert len(ratio) == 1
    row = ratio.iloc[0]
    assert (row["level"], row["reference"]) == ("deep", "superficial")
    # R: r <- poisson.test(c(15, 12), c(90, 150)); r$estimate; r$conf.int; r$p.value
    assert row["rate_ratio"] == pytest.approx(2.08333333333333, rel=1e-10)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(
        [0.91037753717641, 4.87444193858480], rel=1e-9
    )
    assert row["p_value"] == pytest.approx(0.0716711041404502, rel=1e-8)


def test_zero_event_level():
    data = _sessions({"superficial": (3, 47, 0), "deep": (0, 40, 2)})
    rates = adverse_event_rates(data)
    # R: poisson.test(0, 40)$conf.int * 100
    assert rates.loc[1, "rate_per_100"] == 0.0
    assert rates.loc[1, "ci_low"] == 0.0
    assert rates.loc[1, "ci_high"] == pytest.approx(9.22219863528484, rel=1e-10)
    # R: poisson.test(3, 50)$conf.int * 100
    assert rates.loc[0, ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [1.2373442457912, 17.5345461394846], rel=1e-10
    )
    # R: r <- poisson.test(c(0, 3), c(40, 50)); r$estimate; r$conf.int; r$p.value
    row = rate_ratio(data).iloc[0]
    assert row["rate_ratio"] == 0.0
    assert row["ci_low"] == 0.0
    assert row["ci_high"] == pytest.approx(3.02493986669174, rel=1e-9)
    assert row["p_value"] == pytest.approx(0.259259259259259, rel=1e-8)


def test_zero_event_reference_gives_infinite_ratio():
    data = _sessions({"superficial": (0, 40, 0), "deep": (4, 56, 0)})
    row = rate_ratio(data).iloc[0]
    # R: r <- poisson.test(c(4, 0), c(60, 40)); r$estimate; r$conf.int; r$p.value
    assert np.isinf(row["rate_ratio"])
    assert row["ci_low"] == pytest.approx(0.440082679573396, rel=1e-9)
    assert np.isinf(row["ci_high"])
    assert row["p_value"] == pytest.approx(0.1552, rel=1e-8)


def test_no_events_and_empty_level_do_not_crash():
    data = _sessions({"superficial": (0, 10, 0), "deep": (0, 5, 0)})
    row = rate_ratio(data).iloc[0]
    assert np.isnan(row["rate_ratio"]) and "not estimable" in row["note"]
    only_sup = _sessions({"superficial": (2, 8, 1)})
    rates = adverse_event_rates(only_sup)
    assert list(rates["level"]) == ["superficial", "deep"]
    assert rates.loc[1, "sessions"] == 0
    assert np.isnan(rates.loc[1, "rate_per_100"]) and rates.loc[1, "note"]
    assert "no sessions" in rate_ratio(only_sup).iloc[0]["note"]


def test_counts_by_type_and_severity():
    data = _sessions({"superficial": (2, 5, 1), "deep": (1, 3, 0)})
    extra = pd.DataFrame(
        {
            "patient_id": ["P9", "P9"],
            "depth": ["deep", "deep"],
            "adverse_event": ["bruising", "soreness"],
            "ae_severity": ["moderate", "mild"],
        }
    )
    counts = adverse_event_counts(pd.concat([data, extra], ignore_index=True))
    assert list(counts.columns) == ["group", "level", "adverse_event", "ae_severity", "events"]
    assert counts[["level", "adverse_event", "ae_severity", "events"]].to_numpy().tolist() == [
        ["superficial", "soreness", "mild", 2],
        ["deep", "bruising", "moderate", 1],
        ["deep", "soreness", "mild", 2],
    ]
