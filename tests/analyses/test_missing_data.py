"""The estimand's missing-data analyses on the example trial and the demo (issue 19).

Expected numbers are theorems, not copies: under MAR the conditional mean imputation equals the
likelihood MMRM it imputes from (:mod:`pipeline.lmm.reference_based`); the tipping delta is where
the two-sided p crosses 0.05; Kaplan-Meier without censoring is the share still attending.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline import api
from pipeline.analyses.headline import classify
from pipeline.analyses.missing_data import missing_data_analysis
from pipeline.config.settings import EstimandSettings, IntercurrentEvent, load_config
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
