"""The analyses of SAP §4 as the pipeline fits them, against lme4 / lmerTest / emmeans.

The live comparisons fit the same model to the same rows in R (tests/r/lmer_fit.R and
tests/r/emmeans_fit.R, bobyqa with rhoend 1e-12; the visit-level MMRM with nlme::gls,
tests/r/gls_plan.R) and hold the plan's tolerances: fixed effects
and SEs to 4 significant digits, variance components to 3, Satterthwaite df within 1 %.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rcompare import assert_rel, assert_sig, check_against, check_mmrm_against_gls, parse_r

from pipeline.analyses import plans as an
from pipeline.analyses.run import analysis_plans, combine, run_analyses
from pipeline.config.options import ModelSettings
from pipeline.lmm.marginal import holm, pooled_sd
from pipeline.schemas.identity import ContrastKind

RELEVEL = {"depth": "superficial", "twitch": "no twitch", "chronicity": "acute"}


def rows_csv(plan: an.ModelPlan, path: Path) -> Path:
    """The plan's rows as R reads them (categoricals as text)."""
    rows = plan.rows.copy()
    for column in rows.columns:
        if isinstance(rows[column].dtype, pd.CategoricalDtype):
            rows[column] = rows[column].astype(str)
    rows.to_csv(path, index=False)
    return path


def r_formula(plan: an.ModelPlan, slope: str | None) -> str:
    random = f"(1 + {slope} | patient_id)" if slope else "(1 | patient_id)"
    if plan.site:
        random = f"(1 | {plan.site}) + {random}"
    return f"{plan.response} ~ {plan.rhs} + {random}"


def relevel_for(plan: an.ModelPlan) -> dict[str, str]:
    out = {k: v for k, v in RELEVEL.items() if k in plan.rows}
    for column in ("site", "sex", "visit_c"):
        if column in plan.variables:
            out[column] = str(plan.rows[column].cat.categories[0])
    return out


CASES = {
    "trajectory_depth-nrs": lambda d, s: an.trajectory_plan(d, "nrs", "depth", s),
    "session_twitch-nrs": lambda d, s: an.session_twitch_plan(d, "nrs", s),
    "joint-odi": lambda d, s: an.joint_plan(d, "odi", s),
    "subgroup_chronicity_depth-nrs": lambda d, s: an.subgroup_plan(d, "nrs", "depth", s),
    "trajectory_twitch-vas-site-random": lambda d, s: an.trajectory_plan(
        d, "vas", "twitch", dataclasses.replace(s, site="random")
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_each_analysis_agrees_with_lmertest(demo_data, lmer_r, tmp_path, case):
    """R: lmerTest::lmer(<the plan's formula>, REML = TRUE, bobyqa rhoend 1e-12) on the rows
    the pipeline used, factors relevelled to the pipeline's references."""
    plan = CASES[case](demo_data, ModelSettings())
    result = an.fit_plan(plan, tests=False)
    assert result.fit is not None, result.diagnostics["message"].iloc[0]
    csv = rows_csv(plan, tmp_path / "rows.csv")
    ref = parse_r(
        lmer_r(csv, r_formula(plan, result.fit.random_slope), True, relevel=relevel_for(plan))
    )
    assert ref["n_obs"] == result.fit.n_obs == len(plan.rows)
    check_against(result.fit, ref)
    assert result.fit.criterion <= ref["criterion"] + 1e-7


def _match_r(ours: pd.DataFrame, theirs: pd.DataFrame, what: str) -> None:
    assert len(ours) == len(theirs), f"{what}: {len(ours)} rows vs R {len(theirs)}"
    for (_, a), (_, b) in zip(ours.iterrows(), theirs.iterrows(), strict=True):
        label = f"{what} {a.get('level', '')} {a.get('contrast', '')} {a.get('visit', '')}"
        assert_sig(a["estimate"], b["estimate"], 4, label)
        assert_sig(a["std_err"], b["std_err"], 4, label)
        assert_rel(a["df"], b["df"], 0.01, label)


@pytest.mark.slow
def test_trajectory_means_and_contrasts_agree_with_emmeans(demo_data, emmeans_r, tmp_path):
    """R: emmeans(fit, "depth", by = "weeks", at = list(weeks = <visit means>),
    lmer.df = "satterthwaite"), contrast(., "trt.vs.ctrl"), and emtrends(fit, "depth",
    var = "weeks") with its "trt.vs.ctrl" contrast: equal weights over chronicity and site."""
    plan = an.trajectory_plan(demo_data, "nrs", "depth", ModelSettings())
    result = an.fit_plan(plan, tests=False)
    times = list(plan.points.values())
    r = emmeans_r(
        rows_csv(plan, tmp_path / "rows.csv"),
        r_formula(plan, "weeks"),
        "depth",
        "weeks",
        at=times,
        trend=True,
        relevel=relevel_for(plan),
    )
    # R orders means by time, then level; ours by level, then time
    ours = result.emmeans.assign(order=result.emmeans["level"].map({"superficial": 0, "deep": 1}))
    ours = ours.sort_values(["visit", "order"]).reset_index(drop=True)
    _match_r(ours, r[r.kind == "emmean"].reset_index(drop=True), "emmean")

    contrasts = result.contrasts
    at_visits = contrasts[contrasts["visit"].notna()].reset_index(drop=True)
    r_at = r[(r.kind == "contrast")].reset_index(drop=True).iloc[1:]  # R includes visit 0
    _match_r(at_visits, r_at.reset_index(drop=True), "difference at visit")
    slope = contrasts[contrasts["contrast"].str.contains("difference in slope")]
    _match_r(
        slope.reset_index(drop=True), r[r.kind == "slope_contrast"].reset_index(drop=True), "slope"
    )


@pytest.mark.slow
def test_change_model_agrees_with_gls_and_emmeans(demo_data, gls_r, tmp_path):
    """R: nlme::gls(vas ~ baseline + visit_c * twitch + chronicity + site, correlation =
    corSymm(form = ~ visit | patient_id), weights = varIdent(form = ~ 1 | visit_c), method =
    "REML") on the rows the pipeline used, and emmeans(fit, "twitch", by = "visit_c", mode =
    "df.error") with contrast(., "trt.vs.ctrl") (tests/r/gls_plan.R): the plan's MMRM
    (unstructured) — fixed effects, SEs, LS means and differences to 4 significant digits,
    the covariance across visits to 3."""
    plan = an.change_plan(demo_data, "vas", "twitch", ModelSettings())
    result = an.fit_plan(plan, tests=False)
    assert result.fit.structure == "us"
    ref = gls_r(
        rows_csv(plan, tmp_path / "rows.csv"),
        f"{plan.response} ~ {plan.rhs}",
        "twitch",
        "visit_c",
        "patient_id",
        relevel=relevel_for(plan),
    )
    check_mmrm_against_gls(result, ref, "twitch")


def test_holm_matches_r():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005, NA), "holm") -> 0.03 0.06 0.06 0.02 NA
    got = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(got[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(got[4])


def test_pooled_sd_by_hand():
    # groups a: 1, 3 (s^2 = 2); b: 2, 4, 9 (mean 5, ss = 9 + 1 + 16 = 26): sqrt((2 + 26) / 3)
    values = pd.Series([1.0, 3.0, 2.0, 4.0, 9.0, np.nan])
    groups = pd.Series(["a", "a", "b", "b", "b", "b"])
    assert pooled_sd(values, groups) == pytest.approx(np.sqrt(28 / 3))


def test_sessions_time_axis_and_intercept_only(demo_data):
    settings = ModelSettings(time_axis="sessions", random_slope=False, df_method="z")
    result = an.fit_plan(an.trajectory_plan(demo_data, "nrs", "depth", settings), "z", tests=False)
    assert "sessions_completed:depth[T.deep]" in set(result.fixed_effects["term"])
    assert result.diagnostics.loc[0, "random_effects"] == "intercept"
    assert (result.fixed_effects["df"] == float("inf")).all()
    assert result.formula.endswith("(1 | patient)")
    assert "difference in slope per session" in result.contrasts["contrast"].iloc[0]


def test_model_rows_drop_missing_and_unused_levels(demo_data):
    rows = an.model_rows(demo_data, ["odi", "weeks", "twitch", "chronicity", "sex"])
    assert rows[["odi", "twitch", "chronicity", "sex"]].notna().all().all()
    assert "subacute" not in rows["chronicity"].cat.categories  # no subacute patients in the demo
    assert list(rows["twitch"].cat.categories) == ["no twitch", "twitch"]
    assert isinstance(rows["sex"].dtype, pd.CategoricalDtype)


def test_site_is_fixed_below_the_random_threshold(demo_data):
    settings = ModelSettings()
    assert demo_data["site"].nunique() == 3
    assert an.site_as_fixed(settings, demo_data)
    assert "site" in an.trajectory_plan(demo_data, "nrs", "depth", settings).rhs
    none = ModelSettings(site="none")
    assert "site" not in an.trajectory_plan(demo_data, "nrs", "depth", none).rhs
    random = an.trajectory_plan(demo_data, "nrs", "depth", ModelSettings(site="random"))
    assert "site" not in random.rhs and random.formula.startswith("nrs ~ weeks * depth")
    assert "(1 | site) + (1 + weeks | patient)" in random.formula
    # auto: random from min_sites_random sites on
    assert an.site_as_random(ModelSettings(min_sites_random=3), demo_data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.assign(depth=pd.Categorical(["deep"] * len(d), ["superficial", "deep"])),
            "only the level",
        ),
        (lambda d: d.loc[d["visit"] == 0], "single visit|single observation"),
        (lambda d: d.assign(nrs=5.0), "zero variance"),
        (lambda d: d.assign(nrs=np.nan), "no assessment has every variable"),
    ],
    ids=["one-group-empty", "one-visit-only", "all-identical", "no-outcome"],
)
def test_degenerate_data_give_a_message_not_a_crash(demo_data, change, message):
    plan = an.trajectory_plan(change(demo_data), "nrs", "depth", ModelSettings())
    result = an.fit_plan(plan)
    assert result.fit is None
    row = result.diagnostics.iloc[0]
    assert row["status"] == "not estimable"
    assert pd.Series([row["message"]]).str.contains(message).iloc[0], row["message"]
    assert result.fixed_effects.empty and result.contrasts.empty


def test_plan_covers_the_sap_and_marks_the_primary_family(demo_data):
    settings = ModelSettings(df_method="z", random_slope=False)
    plans = analysis_plans(demo_data, settings, outcomes=("nrs",))
    names = [p.analysis for p in plans]
    assert names == [
        "trajectory_depth",
        "trajectory_twitch",
        "change_depth",
        "change_twitch",
        "session_twitch",
        "joint",
        "subgroup_chronicity_depth",
        "subgroup_chronicity_twitch",
        "sensitivity_completers_depth",
        "sensitivity_completers_twitch",
        "sensitivity_per_protocol_depth",
        "sensitivity_per_protocol_twitch",
    ]
    seen = []
    tables = combine(run_analyses(plans, "z", progress=lambda i, n, p: seen.append((i, n))))
    assert seen[0] == (1, 12) and seen[-1] == (12, 12)
    contrasts = tables["contrasts"]
    primary = contrasts[contrasts["family"] == "primary"]
    # the headline estimates of SAP §4: depth's slope difference, twitch's within-patient one
    assert set(primary["analysis"]) == {"trajectory_depth", "session_twitch"}
    assert set(primary["kind"]) == {ContrastKind.SLOPE, ContrastKind.WITHIN}
    np.testing.assert_allclose(primary["p_holm"], holm(primary["p_value"]))
    assert contrasts.loc[contrasts["family"] == "secondary", "p_holm"].isna().all()
    comparison = tables["model_comparison"].set_index("analysis")
    assert comparison.loc["change_depth", "df"] == demo_data["visit"].max() - 1
    diagnostics = tables["diagnostics"]
    assert (diagnostics["status"] == "ok").all() and (diagnostics["fit_seconds"] > 0).all()
    assert (
        "completers"
        in diagnostics.set_index("analysis").loc["sensitivity_completers_depth", "message"]
    )
    # the effect sizes are the visit contrasts over the pooled baseline SD
    es = tables["effect_sizes"]
    assert not es["contrast"].str.contains("slope").any()
    np.testing.assert_allclose(es["effect_size"], es["estimate"] / es["sd"])
