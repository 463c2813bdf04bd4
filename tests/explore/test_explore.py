"""Exploration summaries and figures on tiny hand-made frames whose answers are known."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

from pipeline.analyses.plans import AnalysisResult
from pipeline.config.options import ModelSettings
from pipeline.explore import plots
from pipeline.explore import tables as explore
from pipeline.schemas.analysis import CHRONICITY_LEVELS, DEPTH_LEVELS, TWITCH_LEVELS

# Four patients seen at visits 0, 1, 2:
#   A deep/twitch/chronic at site S1, every visit;
#   B superficial/no twitch/acute at S1, missed visit 1, back at visit 2;
#   C deep/twitch/acute at S2, baseline only (drops out after visit 0);
#   D superficial/twitch/chronic at S2, visits 0 and 1 (VAS not recorded at 1).
PEOPLE = {
    "A": ("S1", "deep", "twitch", "chronic", 1.0, 0.75),
    "B": ("S1", "superficial", "no twitch", "acute", 0.0, 0.0),
    "C": ("S2", "deep", "twitch", "acute", 1.0, 1.0),
    "D": ("S2", "superficial", "twitch", "chronic", 0.25, 0.5),
}
VISITS = [  # patient, visit, weeks, sessions before, twitch share before, nrs, vas, odi
    ("A", 0, 0.0, 0, np.nan, 8, 80, 50.0),
    ("A", 1, 2.0, 2, 0.5, 6, 60, 40.0),
    ("A", 2, 4.0, 4, 0.75, 4, 40, 30.0),
    ("B", 0, 0.0, 0, np.nan, 6, 55, np.nan),
    ("B", 2, 4.1, 3, 0.0, 5, 50, 36.0),
    ("C", 0, 0.0, 0, np.nan, 9, 90, 60.0),
    ("D", 0, 0.0, 0, np.nan, 7, 70, 44.0),
    ("D", 1, 2.2, 2, 0.5, 5, np.nan, 38.0),
]


def _data() -> pd.DataFrame:
    rows = []
    for pid, visit, weeks, done, share_before, nrs, vas, odi in VISITS:
        site, depth, twitch, chronicity, deep_share, twitch_share = PEOPLE[pid]
        rows.append(
            {
                "patient_id": pid,
                "visit": visit,
                "weeks": weeks,
                "sessions_completed": done,
                "twitch_share_before": share_before,
                "nrs": float(nrs),
                "vas_mm": float(vas),
                "odi": odi,
                "odi_source": "items" if not np.isnan(odi) else pd.NA,
                "site": site,
                "age": 50,
                "sex": "female",
                "chronicity": chronicity,
                "contraindicated": False,
                "protocol_deviation": False,
                "n_sessions": 4,
                "deep_share": deep_share,
                "twitch_share": twitch_share,
                "n_adverse_events": 0,
                "depth": depth,
                "twitch": twitch,
            }
        )
    data = pd.DataFrame(rows)
    data["visit"] = data["visit"].astype("Int64")
    data["nrs_baseline"] = data.groupby("patient_id")["nrs"].transform("first")
    for column, levels in (
        ("depth", DEPTH_LEVELS),
        ("twitch", TWITCH_LEVELS),
        ("chronicity", CHRONICITY_LEVELS),
    ):
        data[column] = pd.Categorical(data[column], categories=levels)
    return data


@pytest.fixture
def data() -> pd.DataFrame:
    return _data()


def _row(frame: pd.DataFrame, **equal) -> pd.Series:
    mask = np.logical_and.reduce([frame[k] == v for k, v in equal.items()])
    (index,) = np.flatnonzero(mask)
    return frame.iloc[index]


# ---------------------------------------------------------------------------------------------
# tables


def test_overview_counts(data):
    sessions = pd.DataFrame({"patient_id": ["A", "A", "B", "D"]})
    patients = pd.DataFrame({"patient_id": list("ABCDE"), "site": ["S1", "S1", "S2", "S2", "S3"]})
    got = explore.overview(data, sessions, patients).set_index("quantity")["value"]
    assert got["valid patients"] == 5
    assert got["patients with at least one valid assessment"] == 4
    assert got["patients with at least one valid session"] == 3
    assert got["valid assessments"] == 8
    assert got["sites"] == 3


def test_patient_level_has_one_row_per_patient_and_no_identifier(data):
    people = explore.patient_level(data)
    assert "patient_id" not in people.columns
    assert len(people) == 4
    assert list(people["n_assessments"]) == [3, 2, 1, 2]  # A, B, C, D
    assert list(people["last_visit"]) == [2, 2, 0, 1]
    assert list(people["depth"].astype(str)) == ["deep", "superficial", "deep", "superficial"]


def test_crosstab_counts_totals_and_declared_order(data):
    people = explore.patient_level(data)
    table = explore.crosstab(people, "depth", "twitch")
    assert list(table.index) == ["superficial", "deep", "Total"]  # declared order, not sorted
    assert list(table.columns) == ["no twitch", "twitch", "Total"]
    assert table.loc["superficial", "twitch"] == 1 and table.loc["deep", "twitch"] == 2
    assert table.loc["Total", "Total"] == 4
    rows = explore.crosstab(people, "depth", "twitch", percent="row")
    assert rows.loc["superficial", "no twitch"] == pytest.approx(50.0)
    assert rows["Total"].tolist() == pytest.approx([100.0, 100.0, 100.0])
    columns = explore.crosstab(people, "depth", "twitch", percent="column")
    assert columns.loc["deep", "twitch"] == pytest.approx(200 / 3)
    bare = explore.crosstab(people, "depth", "twitch", margins=False)
    assert "Total" not in bare.index and "Total" not in bare.columns


def test_crosstab_shows_missing_values_and_keeps_a_level_called_total():
    frame = pd.DataFrame({"site": ["X", "X", "Y"], "source": ["Total", None, "items"]})
    table = explore.crosstab(frame, "site", "source")
    assert table.loc["X", "(missing)"] == 1
    assert table.loc["X", "Total"] == 1  # the level, not the margin
    assert table.loc["(Total)", "(Total)"] == 3
    with pytest.raises(ValueError, match="percent must be"):
        explore.crosstab(frame, "site", "source", percent="cell")


def test_missingness_separates_unassessed_from_unscored(data):
    table = explore.missingness_by_visit(data, "depth")
    assert set(table["group"]) == {"superficial", "deep"}
    # superficial (B, D) at visit 1: D assessed, B missed; D's VAS not recorded
    nrs = _row(table, group="superficial", visit=1, outcome="nrs")
    assert (nrs["patients"], nrs["assessed"], nrs["observed"]) == (2, 1, 1)
    vas = _row(table, group="superficial", visit=1, outcome="vas")
    assert (vas["not_assessed"], vas["unscored"], vas["missing"]) == (1, 1, 2)
    assert vas["missing_pct"] == pytest.approx(100.0)
    # B has no ODI at baseline although assessed
    odi = _row(table, group="superficial", visit=0, outcome="odi")
    assert (odi["assessed"], odi["unscored"]) == (2, 1)
    everyone = explore.missingness_by_visit(data)
    assert set(everyone["group"]) == {"all"} and set(everyone["patients"]) == {4}


def test_dropout_pattern_counts_retained_missed_and_last_seen(data):
    table = explore.dropout_pattern(data).set_index("visit")
    assert table.loc[0, "last_seen"] == 1  # C
    assert table.loc[1, "retained"] == 3  # A, B (back at 2), D
    assert table.loc[1, "assessed"] == 2 and table.loc[1, "missed"] == 1  # B missed visit 1
    assert table.loc[1, "last_seen"] == 1  # D
    assert table.loc[2, "retained"] == 2 and table.loc[2, "last_seen"] == 2  # completers A, B
    assert table.loc[2, "retained_pct"] == pytest.approx(50.0)
    deep = explore.dropout_pattern(data, "depth").query("group == 'deep'").set_index("visit")
    assert deep.loc[1, "retained"] == 1  # A only; C left after baseline


def test_dropout_by_value_compares_leavers_with_stayers(data):
    table = explore.dropout_by_value(data, "nrs").set_index("visit")
    assert list(table.index) == [0, 1]  # no row for the last visit
    assert table.loc[0, "assessed"] == 4 and table.loc[0, "dropped_out"] == 1
    assert table.loc[0, "mean_dropped_out"] == 9.0  # C
    assert table.loc[0, "mean_stayed"] == pytest.approx((8 + 6 + 7) / 3)
    assert table.loc[1, "dropped_out"] == 1 and table.loc[1, "mean_dropped_out"] == 5.0  # D
    assert table.loc[1, "dropout_pct"] == pytest.approx(50.0)


def test_baseline_summary(data):
    table = explore.baseline_summary(data, "depth")
    deep = _row(table, outcome="nrs", group="deep")
    assert (deep["n"], deep["mean"], deep["median"]) == (2, 8.5, 8.5)
    assert deep["sd"] == pytest.approx(np.std([8, 9], ddof=1))
    odi = _row(table, outcome="odi", group="superficial")
    assert (odi["patients"], odi["n"], odi["missing"]) == (2, 1, 1)


def test_twitch_by_depth_with_wilson_intervals():
    sessions = pd.DataFrame(
        {
            "depth": ["deep", "deep", "deep", "superficial", "superficial"],
            "twitch": pd.array([True, pd.NA, False, False, pd.NA], dtype="boolean"),
            "ltr_count": pd.array([2, 1, 0, 0, pd.NA], dtype="Int64"),
        }
    )
    table = explore.twitch_by_depth(sessions).set_index("depth")
    assert list(table.index) == ["superficial", "deep"]
    # deep: the missing yes/no is filled from the LTR count (1 > 0): 2 twitches in 3 sessions
    assert (table.loc["deep", "twitch_recorded"], table.loc["deep", "twitch"]) == (3, 2)
    assert table.loc["superficial", "twitch_recorded"] == 1  # neither recorded in one session
    # Wilson (1927) score interval for 2 of 3
    n, p, z = 3, 2 / 3, stats.norm.ppf(0.975)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert table.loc["deep", "ci_low"] == pytest.approx(100 * (centre - half))
    assert table.loc["deep", "ci_high"] == pytest.approx(100 * (centre + half))


def test_twitch_decomposition_adds_up_and_within_is_free_of_depth(data):
    table = explore.twitch_decomposition(data, ModelSettings()).set_index("component")
    rows = data.loc[(data["visit"] > 0) & data["twitch_share_before"].notna()]
    assert table.loc["total", "variance"] == pytest.approx(np.var(rows["twitch_share_before"]))
    between, within = table.loc["between patients"], table.loc["within patients"]
    assert between["variance"] + within["variance"] == pytest.approx(table.loc["total", "variance"])
    assert between["share_pct"] + within["share_pct"] == pytest.approx(100.0)
    assert within["corr_deep_share"] == pytest.approx(0.0, abs=1e-12)
    assert within["mean_deep"] == pytest.approx(0.0, abs=1e-12)
    # A (deep) has shares 0.5 and 0.75 -> between 0.625; B and D (superficial) 0.0 and 0.5
    assert between["mean_deep"] == pytest.approx(0.625)
    assert between["mean_superficial"] == pytest.approx(0.25)


# ---------------------------------------------------------------------------------------------
# comparing fits


def _result(label: str, estimate: float) -> AnalysisResult:
    contrasts = pd.DataFrame(
        {
            "analysis": label,
            "contrast": ["deep − superficial: difference in slope per week", "visit 1"],
            "estimate": [estimate, 1.0],
        }
    )
    return AnalysisResult(label, "nrs", "y ~ x", None, {"contrasts": contrasts})


def test_compare_stacks_labelled_tables():
    out = explore.compare({"weeks": _result("a", -0.1), "sessions": _result("b", -0.3)})
    assert list(out.columns[:2]) == ["model", "analysis"]
    assert list(out["model"]) == ["weeks", "weeks", "sessions", "sessions"]
    slopes = explore.compare(
        {"weeks": _result("a", -0.1), "sessions": _result("b", -0.3)},
        contains="difference in slope",
    )
    assert list(slopes["estimate"]) == [-0.1, -0.3]
    with pytest.raises(ValueError, match="unknown table"):
        explore.compare({"x": _result("a", 0.0)}, "coefficients")


def test_describe_writes_estimate_interval_and_p():
    row = {"estimate": -0.1018, "ci_low": -0.14, "ci_high": -0.0636, "p_value": 3.6e-7}
    assert explore.describe(row, unit="points a week") == (
        "−0.10 points a week (95 % CI −0.14 to −0.06; p < 0.001)"
    )
    row = pd.Series({"estimate": 0.0034, "ci_low": -0.044, "ci_high": 0.051, "p_value": 0.8867})
    assert explore.describe(row, digits=3) == "0.003 (95 % CI −0.044 to 0.051; p = 0.887)"
    assert (
        explore.describe({"estimate": 1, "ci_low": 0, "ci_high": 2})
        == "1.00 (95 % CI 0.00 to 2.00)"
    )


def _fit(loglik: float, slope: str | None, **kw) -> SimpleNamespace:
    base = {"reml": True, "design_columns": ("Intercept", "weeks"), "n_obs": 100}
    return SimpleNamespace(loglik=loglik, random_slope=slope, **{**base, **kw})


def test_random_slope_test_uses_the_boundary_mixture():
    out = explore.random_slope_test(_fit(-98.0, "weeks"), _fit(-100.0, None)).iloc[0]
    assert out["chisq"] == pytest.approx(4.0)
    # 0.5 P(chi2_1 > 4) + 0.5 P(chi2_2 > 4) = 0.5 * 0.0455003 + 0.5 * 0.1353353
    assert out["p_value"] == pytest.approx(0.0904178, rel=1e-5)
    assert out["p_value"] < stats.chi2.sf(4.0, 2)  # the naive chi2(2) would be conservative


@pytest.mark.parametrize(
    ("full", "reduced", "message"),
    [
        (_fit(-98.0, "weeks", reml=False), _fit(-100.0, None), "REML"),
        (_fit(-98.0, "weeks", n_obs=99), _fit(-100.0, None), "differ"),
        (_fit(-98.0, None), _fit(-100.0, None), "one fit with a random slope"),
    ],
)
def test_random_slope_test_refuses_fits_that_do_not_nest(full, reduced, message):
    with pytest.raises(ValueError, match=message):
        explore.random_slope_test(full, reduced)


# ---------------------------------------------------------------------------------------------
# figures


def _texts(fig: Figure) -> str:
    return " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def _visible_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]


def test_spaghetti_draws_sampled_patients_without_identifiers(data):
    fig = plots.spaghetti(data, "nrs", "depth", max_patients=1, seed=1)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    superficial, deep = fig.axes
    assert superficial.get_title() == "superficial (n = 2)"
    assert deep.get_title() == "deep (n = 2)"
    assert len(superficial.get_lines()) == 2  # one sampled patient + the mean
    assert len(plots.spaghetti(data, "nrs", "depth", max_patients=None).axes[0].lines) == 3
    faceted = plots.spaghetti(data, "nrs", "depth", facet="chronicity")
    assert len(faceted.axes) == 4 and faceted.axes[0].get_title() == "acute · superficial (n = 1)"
    for figure in (fig, faceted):
        assert not any(pid in _texts(figure).split() for pid in PEOPLE)


def test_summary_figures_have_one_panel_per_outcome_or_facet(data):
    assert len(plots.missingness(explore.missingness_by_visit(data, "depth")).axes) == 3
    assert len(plots.baseline_distributions(data, "depth").axes) == 3
    assert len(plots.baseline_distributions(data).axes) == 3
    assert len(plots.mean_trajectories(data, "nrs", "depth", facet="site").axes) == 2
    assert len(plots.mean_trajectories(data, "nrs", "twitch").axes) == 1
    retention = plots.retention(explore.dropout_pattern(data, "depth"))
    assert len(retention.axes[0].get_lines()) == 2


def test_exposure_figures(data):
    people = explore.patient_level(data)
    bars = plots.sessions_per_patient(people, by="chronicity")
    assert len(bars.axes[0].patches) == 2  # one session count (4) x two chronicity levels
    hist = plots.twitch_share_by_depth(people, 0.5)
    assert "threshold 0.5" in _texts(hist)


def test_forest_and_model_means():
    table = pd.DataFrame(
        {"model": ["a", "b"], "estimate": [-0.1, 0.0], "ci_low": [-0.2, -0.1], "ci_high": [0, 0.1]}
    )
    fig = plots.forest(table, xlabel="per week")
    ax = fig.axes[0]
    at = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)}
    assert at["a"] > at["b"]  # the first row on top
    means = pd.DataFrame(
        {
            "factor": ["depth"] * 4,
            "level": ["superficial", "superficial", "deep", "deep"],
            "visit": [0, 1, 0, 1],
            "time": [0.0, 2.0, 0.0, 2.0],
            "estimate": [6.0, 5.0, 6.0, 4.0],
            "ci_low": [5.5, 4.5, 5.5, 3.5],
            "ci_high": [6.5, 5.5, 6.5, 4.5],
        }
    )
    fig = plots.model_means(means, xlabel="Weeks")
    assert fig.axes[0].get_title() == "depth" and fig.axes[0].get_xlabel() == "Weeks"


@pytest.mark.parametrize(("effects", "panels"), [(["(Intercept)"], 3), (["(Intercept)", "w"], 4)])
def test_residual_plots_have_a_panel_per_random_effect(effects, panels):
    rng = np.random.default_rng(0)
    fit = SimpleNamespace(
        fitted=rng.normal(size=50),
        residuals=rng.normal(size=50),
        sigma=1.0,
        random_effects=pd.DataFrame(rng.normal(size=(10, len(effects))), columns=effects),
    )
    fig = plots.residual_plots(fit)
    assert len(_visible_axes(fig)) == panels
    assert "Q–Q: random (Intercept)" in _texts(fig)
