"""The estimand's missing-data analyses on the example trial and the demo (issue 19).

Expected numbers are theorems, not copies: under MAR the conditional mean imputation equals the
likelihood MMRM it imputes from (:mod:`pipeline.lmm.reference_based`); the tipping delta is where
the two-sided p crosses 0.05; Kaplan-Meier without censoring is the share still attending.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import api
from pipeline.analyses.headline import classify
from pipeline.analyses.missing_data import co_intervention_visits, missing_data_analysis
from pipeline.config.estimand import EstimandSettings, IntercurrentEvent
from pipeline.config.settings import load_config
from pipeline.schemas.outputs import MCID_VERDICTS, check_output

ROOT = Path(__file__).resolve().parents[2]
TRIAL = ROOT / "data" / "raw" / "examples" / "trial" / "analysis.toml"


@pytest.fixture(scope="module")
def trial():
    study = api.load_study(TRIAL)
    return study, missing_data_analysis(study.data, study.config)


def test_mar_imputation_equals_the_likelihood_mmrm(trial):
    _, res = trial
    mi = res.sensitivity["method"].str.startswith("bootstrapped")
    table = res.sensitivity[~mi].set_index("strategy")
    assert table.loc["MAR", "estimate"] == pytest.approx(table.loc["MMRM", "estimate"], abs=1e-8)
    assert res.estimand.visit == 1  # [time] primary_visit of the trial
    assert res.estimand.comparison.name == "arm" and res.estimand.level == "deep"
    assert list(table.index) == ["MMRM", "MAR", "J2R", "CR", "CIR", "LMCF", "estimand"]
    # Rubin's rules beside the jackknife: MI under MAR estimates the same difference.
    mar_mi = res.sensitivity[mi].set_index("strategy").loc["MAR"]
    assert abs(mar_mi["estimate"] - table.loc["MAR", "estimate"]) < 0.5 * mar_mi["std_err"]
    assert mar_mi["std_err"] == pytest.approx(table.loc["MMRM", "std_err"], rel=0.3)


def test_tables_meet_their_contracts(trial):
    _, res = trial
    check_output("sensitivity_missing", res.sensitivity)
    check_output("tipping_point", res.tipping)
    assert len(res.tipping) == 21
    assert res.tipping["delta"].iloc[10] == pytest.approx(0.0, abs=1e-12)


def test_tipping_delta_is_where_significance_is_lost(trial):
    _, res = trial
    delta = res.tipping_deltas["significance"]
    assert np.isfinite(delta)
    mar = res.cmi.strategies.index("MAR")
    shift = np.array([0.0, delta])  # tipping_groups = "level": the deep arm's imputed values
    est = res.cmi.shifted(shift)[mar, 0, 0]
    se = res.cmi.std_err(shift)[mar, 0, 0]
    assert abs(est) / se == pytest.approx(1.959964, abs=1e-4)
    # Moving towards no difference: the delta has the sign opposite to the (negative) effect.
    assert delta > 0


def test_dropout_description_adds_up(trial):
    _, res = trial
    pattern = res.dropout_pattern
    sizes = pattern.groupby("group")["patients"].sum()
    assert sizes.sum() == len(res.events)
    km = res.dropout_km
    for group, rows in km.groupby("group"):
        completers = pattern[(pattern["group"] == group) & (pattern["last_visit"] == 2)]
        # No censoring before the last visit: KM retention is the share who completed.
        assert rows["retained"].iloc[-1] == pytest.approx(
            completers["patients"].iloc[0] / sizes[group]
        )
    assert set(res.last_value["status"]) == {"completer", "dropped out"}


def test_verdicts_are_the_headline_classifier(demo_data):
    # One classifier (analyses.headline.classify) words every verdict against the MCID: each
    # row of the sensitivity table carries the verdict of its own estimate and interval.
    res = missing_data_analysis(demo_data, load_config(ROOT / "analysis.toml"))
    mcid = 2.0  # the demo's NRS MCID in points (analysis.toml [mcid.nrs] points = 2)
    for r in res.sensitivity.to_dict(orient="records"):
        assert r["verdict"] == classify(r["estimate"], r["ci_low"], r["ci_high"], mcid).value
    assert set(res.tipping["verdict"]) <= set(MCID_VERDICTS)


def test_hypothetical_strategy_sets_data_aside_on_the_demo(demo_data):
    config = load_config(ROOT / "analysis.toml")
    settings = EstimandSettings(
        events=(
            IntercurrentEvent("protocol_deviation", "hypothetical", "MAR"),
            IntercurrentEvent("discontinued", "treatment policy", "J2R"),
        ),
        strategies=("MAR", "J2R"),
        jackknife=False,
        mi_imputations=0,
    )
    res = missing_data_analysis(demo_data, config, settings)
    table = res.sensitivity.set_index("strategy")
    assert len(table) == 4  # MMRM, MAR, J2R, estimand: no MI rows with mi_imputations = 0
    assert table.loc["MAR", "estimate"] == pytest.approx(table.loc["MMRM", "estimate"], abs=1e-8)
    deviators = (res.events["event"] == "protocol_deviation").sum()
    assert deviators > 0
    # Their post-baseline values are set aside and imputed.
    assert table.loc["estimand", "n_imputed"] > table.loc["MAR", "n_imputed"]
    assert table.loc["estimand", "estimate"] != pytest.approx(table.loc["J2R", "estimate"])
    other = missing_data_analysis(demo_data, config, replace(settings, visit=2))
    assert other.sensitivity["visit"].iloc[0] == 2


def test_co_intervention_event_is_after_the_previous_assessment():
    # By hand (module docstring): the event happened after the assessment before the report.
    # A: reported at visit 2, visit 1 attended -> first post-ICE visit is visit 2 (index 1).
    # B: reported at visit 3, visit 2 missed -> after visit 1, so visit 2 (index 1).
    # C: reported at visit 1 -> after baseline (index 0); a later "yes" is not the first.
    # D: never reported; E: not asked (missing) -> no event (index 3).
    data = pd.DataFrame(
        {
            "patient_id": ["A"] * 4 + ["B"] * 3 + ["C"] * 3 + ["D"] * 2 + ["E"] * 2,
            "visit": [0, 1, 2, 3, 0, 1, 3, 0, 1, 2, 0, 1, 0, 1],
            "co_intervention_started": pd.array(
                [
                    *[None, False, True, False],  # A
                    *[None, False, True],  # B
                    *[None, True, True],  # C
                    *[None, False],  # D
                    *[None, None],  # E
                ],
                dtype="boolean",
            ),
        }
    )
    patients = pd.DataFrame({"patient_id": ["A", "B", "C", "D", "E"]})
    got = co_intervention_visits(data, patients, [1, 2, 3])
    np.testing.assert_array_equal(got, [1, 1, 0, 3, 3])
    assert np.all(
        co_intervention_visits(data.drop(columns="co_intervention_started"), patients, [1, 2, 3])
        == 3
    )


def test_demo_co_interventions_enter_the_per_patient_strategy_map(demo_data):
    config = load_config(ROOT / "analysis.toml")
    settings = EstimandSettings(
        events=(
            IntercurrentEvent("discontinued", "treatment policy", "J2R"),
            IntercurrentEvent("co_intervention", "hypothetical", "MAR"),
        ),
        strategies=("MAR", "J2R"),
        jackknife=False,
        mi_imputations=0,
    )
    res = missing_data_analysis(demo_data, config, settings)
    events = res.events.set_index("patient_id")
    co = events[events["event"] == "co_intervention"]
    # data/raw/demo records the reports (pipeline.demo.simulate): some patients have the event,
    # under its own strategy, and the report counts it as recorded.
    assert len(co) > 10
    assert set(co["strategy"]) == {"hypothetical"} and set(co["imputation"]) == {"MAR"}
    counts = res.event_counts.set_index("event")
    assert counts.loc["co_intervention", "recorded"]
    assert counts.loc["co_intervention", "patients"] == len(co)
    # Each event sits at the visit after the assessment preceding the patient's first report.
    rows = demo_data.sort_values(["patient_id", "visit"])
    for pid, row in co.head(15).iterrows():
        own = rows[rows["patient_id"] == pid]
        first = own.loc[own["co_intervention_started"].fillna(False).astype(bool), "visit"].min()
        before = own.loc[own["visit"] < first, "visit"].max()
        assert row["visit"] == int(np.searchsorted([1, 2, 3, 4], before, side="right"))
    # Hypothetical: their values from the event on are set aside and imputed.
    table = res.sensitivity.set_index("strategy")
    assert table.loc["estimand", "n_imputed"] > table.loc["J2R", "n_imputed"]
    # The strategy rows impute everyone who stopped coming, whatever event came first: they
    # do not move when the co-intervention is declared (only the estimand row does).
    without = missing_data_analysis(
        demo_data, config, replace(settings, events=settings.events[:1])
    )
    other = without.sensitivity.set_index("strategy")
    for name in ("MAR", "J2R"):
        assert table.loc[name, "estimate"] == pytest.approx(other.loc[name, "estimate"], abs=1e-12)
    assert table.loc["estimand", "estimate"] != pytest.approx(other.loc["estimand", "estimate"])


def test_co_intervention_not_recorded_is_said_so(demo_data):
    config = load_config(ROOT / "analysis.toml")
    settings = EstimandSettings(
        events=(IntercurrentEvent("co_intervention", "hypothetical", "MAR"),),
        strategies=("MAR",),
        jackknife=False,
        mi_imputations=0,
    )
    res = missing_data_analysis(demo_data.drop(columns="co_intervention_started"), config, settings)
    counts = res.event_counts.set_index("event")
    assert not counts.loc["co_intervention", "recorded"]
    assert counts.loc["co_intervention", "patients"] == 0


def test_covariance_by_group_fits_one_sigma_per_group(trial):
    study, shared = trial
    settings = replace(
        study.config.estimand or EstimandSettings(), covariance_by_group=True, mi_imputations=0
    )
    res = missing_data_analysis(study.data, study.config, settings)
    group = res.estimand.comparison.column
    assert res.fit.covariance_group == group
    assert set(res.fit.covariance) == set(res.estimand.levels)
    table = res.sensitivity.set_index("strategy")
    before = shared.sensitivity.set_index("strategy")
    # rbmi's same_cov = FALSE: the MAR row is then near the MMRM, no longer equal to it (the
    # theorem needs one Sigma), and the reference-based rows move with the covariance.
    mmrm = table.loc["MMRM", "estimate"]
    assert table.loc["MAR", "estimate"] == pytest.approx(
        mmrm, abs=0.1 * table.loc["MMRM", "std_err"]
    )
    assert table.loc["J2R", "estimate"] != pytest.approx(before.loc["J2R", "estimate"], abs=1e-9)
    assert np.isfinite(table["std_err"]).all() and (table["std_err"] > 0).all()
