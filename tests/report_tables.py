"""Small, realistic tidy tables of one run, as the runner hands them to the report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analyses.headline import adjust, answer_table
from pipeline.config.study import DEFAULT_COMPARISONS, Mcid, Study, legacy_outcomes
from pipeline.describe.table_one import table_one
from pipeline.schemas.identity import ContrastKind, FlowStage

MCID = {"nrs": Mcid(2, 30), "vas": Mcid(15, 30), "odi": Mcid(10, 30)}
FIT_SECONDS = 12.3456789  # a value that must never reach the report


def contrasts() -> pd.DataFrame:
    rows = [
        # analysis, outcome, question, contrast, visit, estimate, se, df, lo, hi, p
        # (the family and Holm p are added by the pipeline's one adjustment, headline.adjust)
        (
            "trajectory_depth",
            "nrs",
            "depth",
            "deep − superficial: difference in slope per week",
            None,
            -0.102,
            0.019,
            208.2,
            -0.140,
            -0.064,
            3.5e-7,
        ),
        (
            "trajectory_depth",
            "nrs",
            "depth",
            "deep − superficial, visit 4",
            4,
            -1.35,
            0.25,
            230.1,
            -1.84,
            -0.86,
            1e-7,
        ),
        (
            "trajectory_depth",
            "vas",
            "depth",
            "deep − superficial: difference in slope per week",
            None,
            -1.02,
            0.20,
            210.0,
            -1.42,
            -0.62,
            2e-6,
        ),
        (
            "trajectory_twitch",
            "nrs",
            "twitch",
            "twitch − no twitch: difference in slope per week",
            None,
            -0.058,
            0.020,
            209.0,
            -0.098,
            -0.019,
            0.0035,
        ),
        (
            "trajectory_twitch",
            "vas",
            "twitch",
            "twitch − no twitch: difference in slope per week",
            None,
            -0.30,
            0.21,
            211.0,
            -0.71,
            0.11,
            0.15,
        ),
        (
            "change_depth",
            "nrs",
            "depth",
            "deep − superficial, visit 1",
            1,
            -0.21,
            0.18,
            215.0,
            -0.57,
            0.15,
            0.25,
        ),
        (
            "joint",
            "nrs",
            "depth",
            "deep − superficial: difference in slope per week",
            None,
            -0.104,
            0.024,
            207.0,
            -0.152,
            -0.056,
            2e-5,
        ),
        (
            "joint",
            "nrs",
            "twitch",
            "twitch − no twitch: difference in slope per week",
            None,
            0.003,
            0.024,
            207.0,
            -0.044,
            0.051,
            0.89,
        ),
        (
            "sensitivity_completers_depth",
            "nrs",
            "depth",
            "deep − superficial: difference in slope per week",
            None,
            -0.11,
            0.025,
            160.0,
            -0.16,
            -0.06,
            1e-5,
        ),
        (
            "subgroup_chronicity_depth",
            "nrs",
            "depth",
            "deep − superficial: difference in slope per week (acute)",
            None,
            -0.09,
            0.03,
            150.0,
            -0.15,
            -0.03,
            0.004,
        ),
        (
            "session_twitch",
            "nrs",
            "twitch",
            "twitch in every earlier session vs none, within patients",
            None,
            0.69,
            0.51,
            566.8,
            -0.32,
            1.70,
            0.18,
        ),
    ]
    columns = [
        "analysis",
        "outcome",
        "question",
        "contrast",
        "visit",
        "estimate",
        "std_err",
        "df",
        "ci_low",
        "ci_high",
        "p_value",
    ]
    out = pd.DataFrame(rows, columns=columns)
    out["visit"] = out["visit"].astype("Int64")
    # typed fields, as the analyses give them (not derived from the labels)
    slope, visit = ContrastKind.SLOPE.value, ContrastKind.VISIT.value
    within = ContrastKind.WITHIN.value
    kinds = [slope, visit, slope, slope, slope, visit, slope, slope, slope, slope, within]
    out.insert(3, "kind", kinds)
    out.insert(4, "within", [None] * 9 + ["acute", None])
    return adjust(out, DEFAULT_COMPARISONS, 4)


def emmeans() -> pd.DataFrame:
    rows = []
    for analysis, factor, level, start, slope in (
        ("trajectory_depth", "depth", "superficial", 6.8, -0.2),
        ("trajectory_depth", "depth", "deep", 6.7, -0.3),
        ("trajectory_twitch", "twitch", "no twitch", 6.8, -0.22),
        ("trajectory_twitch", "twitch", "twitch", 6.7, -0.28),
    ):
        for visit, time in ((0, 0.0), (4, 12.0)):
            est = start + slope * time
            rows.append(
                (
                    analysis,
                    "nrs",
                    factor,
                    level,
                    visit,
                    time,
                    est,
                    0.12,
                    240.0,
                    est - 0.24,
                    est + 0.24,
                )
            )
    columns = [
        "analysis",
        "outcome",
        "factor",
        "level",
        "visit",
        "time",
        "estimate",
        "std_err",
        "df",
        "ci_low",
        "ci_high",
    ]
    return pd.DataFrame(rows, columns=columns)


def effect_sizes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "analysis": ["change_depth"],
            "outcome": ["nrs"],
            "contrast": ["deep − superficial, visit 1"],
            "estimate": [-0.21],
            "standardiser": ["pooled within-group SD of the outcome at baseline"],
            "sd": [1.33],
            "effect_size": [-0.158],
            "ci_low": [-0.43],
            "ci_high": [0.11],
        }
    )


def model_comparison() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "analysis": ["trajectory_depth"],
            "outcome": ["nrs"],
            "test": ["weeks × depth (likelihood ratio, ML)"],
            "df": [1],
            "chisq": [26.3],
            "p_value": [2.9e-7],
            "loglik_reduced": [-1650.2],
            "loglik_full": [-1637.05],
        }
    )


def diagnostics() -> pd.DataFrame:
    keys = [
        ("trajectory_depth", "nrs"),
        ("trajectory_depth", "vas"),
        ("trajectory_twitch", "nrs"),
        ("trajectory_twitch", "vas"),
        ("change_depth", "nrs"),
        ("joint", "nrs"),
        ("sensitivity_completers_depth", "nrs"),
        ("subgroup_chronicity_depth", "nrs"),
    ]
    out = pd.DataFrame(keys, columns=["analysis", "outcome"])
    out["status"] = "ok"
    out["message"] = ""
    out["n_obs"] = 1042
    out["n_patients"] = 240
    out["random_effects"] = "intercept + slope"
    out["converged"] = True
    out["optimizer"] = "numpy"
    out["boundary"] = False
    out["fallback"] = ""
    out["warnings"] = ""
    out.loc[3, ["boundary", "random_effects"]] = [True, "intercept"]
    out.loc[3, "fallback"] = "slope variance at the boundary; refitted with a random intercept"
    out.loc[3, "warnings"] = "ConvergenceWarning: The MLE may be on the boundary"
    out["residual_sd"] = 0.9
    out["residual_skewness"] = 0.05
    out["residual_excess_kurtosis"] = -0.1
    out["residual_share_beyond_3sd"] = 0.003
    out["fit_seconds"] = FIT_SECONDS
    return out


def fixed_effects() -> pd.DataFrame:
    terms = ["Intercept", "depth[T.deep]", "weeks", "weeks:depth[T.deep]"]
    est = [6.45, -0.12, -0.195, -0.102]
    trajectory = pd.DataFrame(
        {
            "analysis": "trajectory_depth",
            "outcome": "nrs",
            "term": terms,
            "estimate": est,
            "std_err": [0.13, 0.15, 0.014, 0.019],
            "df": [263.0, 237.5, 208.8, 208.2],
            "ci_low": [e - 0.2 for e in est[:2]] + [-0.223, -0.140],
            "ci_high": [e + 0.2 for e in est[:2]] + [-0.167, -0.064],
            "p_value": [1e-100, 0.42, 3e-31, 3.5e-7],
        }
    )
    within = pd.DataFrame(  # the session-level model's within-patient twitch coefficient
        {
            "analysis": ["session_twitch"],
            "outcome": ["nrs"],
            "term": ["twitch_within"],
            "estimate": [0.69],
            "std_err": [0.51],
            "df": [566.8],
            "ci_low": [-0.32],
            "ci_high": [1.70],
            "p_value": [0.18],
        }
    )
    return pd.concat([trajectory, within], ignore_index=True)


def variance_components() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "analysis": "trajectory_depth",
            "outcome": "nrs",
            "group": ["patient", "patient", "patient", "Residual"],
            "term": ["(Intercept)", "weeks", "cor((Intercept), weeks)", "Residual"],
            "variance": [0.905, 0.0087, np.nan, 0.868],
            "std_dev": [0.951, 0.093, np.nan, 0.932],
            "correlation": [np.nan, np.nan, -0.31, np.nan],
        }
    )


def mean_by_visit() -> pd.DataFrame:
    rows = []
    for outcome, scale in (("nrs", 1.0), ("vas", 10.0), ("odi", 6.0)):
        for factor, levels in (
            ("depth", ("superficial", "deep")),
            ("twitch", ("no twitch", "twitch")),
        ):
            for k, group in enumerate(levels):
                for visit, weeks, n in ((0, 0.0, 120), (4, 12.0, 85)):
                    mean = scale * (6.8 - (0.2 + 0.1 * k) * weeks)
                    rows.append(
                        (
                            outcome,
                            factor,
                            visit,
                            group,
                            n - 3 * k,
                            mean,
                            scale * 1.4,
                            mean - scale * 0.3,
                            mean + scale * 0.3,
                            weeks,
                        )
                    )
    columns = [
        "outcome",
        "factor",
        "visit",
        "group",
        "n",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "mean_weeks",
    ]
    return pd.DataFrame(rows, columns=columns)


def responders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "outcome": ["nrs"] * 4,
            "group": ["depth"] * 4,
            "quantity": ["proportion", "proportion", "risk difference", "odds ratio"],
            "level": ["superficial", "deep", "deep", "deep"],
            "reference": ["", "", "superficial", "superficial"],
            "estimate": [0.593, 0.738, 0.145, 1.93],
            "ci_low": [np.nan, np.nan, 0.026, 1.12],
            "ci_high": [np.nan, np.nan, 0.264, 3.34],
            "p_value": [np.nan, np.nan, 0.017, 0.018],
            "n": [113, 126, 239, 239],
            "responders": [67, 93, 160, 160],
            "method": [
                "observed proportion",
                "observed proportion",
                "risk difference (Wald CI)",
                "logistic regression (Wald CI)",
            ],
            "note": [""] * 4,
        }
    )


def adverse_events() -> tuple[pd.DataFrame, pd.DataFrame]:
    rates = pd.DataFrame(
        {
            "group": ["depth", "depth"],
            "level": ["superficial", "deep"],
            "sessions": [468, 579],
            "events": [42, 120],
            "not_recorded": [0, 0],
            "rate_per_100": [8.97, 20.7],
            "ci_low": [6.47, 17.2],
            "ci_high": [12.1, 24.8],
            "method": ["exact Poisson (Garwood) CI"] * 2,
            "note": ["", ""],
        }
    )
    ratio = pd.DataFrame(
        {
            "group": ["depth"],
            "level": ["deep"],
            "reference": ["superficial"],
            "events": [120],
            "sessions": [579],
            "ref_events": [42],
            "ref_sessions": [468],
            "rate_ratio": [2.31],
            "ci_low": [1.61],
            "ci_high": [3.37],
            "p_value": [1.1e-6],
            "method": ["exact conditional binomial test (as R poisson.test)"],
            "note": [""],
        }
    )
    return rates, ratio


def accounting() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = pd.DataFrame(
        {
            "table": ["patients", "sessions", "assessments"],
            "file": ["patients.csv", "sessions.csv", "assessments.csv"],
            "raw_rows": [241, 1050, 1049],
            "processed_rows": [240, 1047, 1042],
            "quarantined_rows": [1, 3, 7],
            "blank_lines": [0, 0, 0],
            "blanked_cells": [0, 0, 0],
        }
    )
    reasons = pd.DataFrame(
        {
            "table": ["assessments", "patients"],
            "check": ["duplicate_key", "not_nullable"],
            "column": ["patient_id/visit", "site"],
            "rows": [2, 1],
            "rule": ["the row key is written on more than one row", "site is empty"],
        }
    )
    flow = pd.DataFrame(
        {
            "step": [
                "enrolled",
                "excluded",
                "excluded:not_nullable:site",
                "included",
                "not_treated",
                "treated",
                "assessed:0",
                "assessed:4",
                "analysed:nrs",
            ],
            "label": [
                "Patients enrolled",
                "Excluded",
                "site is empty",
                "Valid patient records",
                "No valid needling session",
                "Treated",
                "Assessed at baseline (visit 0)",
                "Assessed at visit 4",
                "Analysed, NRS",
            ],
            "patients": [241, 1, 1, 240, 0, 240, 240, 173, 240],
            "stage": [
                FlowStage.ENROLLED.value,
                FlowStage.EXCLUDED.value,
                FlowStage.EXCLUSION_REASON.value,
                FlowStage.INCLUDED.value,
                FlowStage.NOT_TREATED.value,
                FlowStage.TREATED.value,
                FlowStage.ASSESSED.value,
                FlowStage.ASSESSED.value,
                FlowStage.ANALYSED.value,
            ],
            "detail": [None, None, "not_nullable:site", None, None, None, 0, 4, "nrs"],
        }
    )
    return rows, reasons, flow


def baseline_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 60
    people = pd.DataFrame(
        {
            "patient_id": [f"X{i}" for i in range(n)],
            "depth": pd.Categorical(
                rng.choice(["superficial", "deep"], n), categories=["superficial", "deep"]
            ),
            "twitch": pd.Categorical(
                rng.choice(["no twitch", "twitch"], n), categories=["no twitch", "twitch"]
            ),
            "age": rng.integers(20, 80, n),
            "sex": rng.choice(["female", "male"], n),
            "chronicity": pd.Categorical(
                rng.choice(["acute", "chronic"], n), categories=["acute", "subacute", "chronic"]
            ),
            "site": rng.choice(["Hillview", "Northside"], n),
            "symptom_weeks": rng.uniform(1, 100, n),
            "nrs_baseline": rng.integers(3, 10, n).astype(float),
            "contraindicated": rng.random(n) < 0.05,
        }
    )
    return table_one(people)


def run_tables(*, today_only: bool = False) -> dict[str, pd.DataFrame]:
    """Every table of a run (``today_only``: only those the pipeline had before the engine)."""
    rows, reasons, flow = accounting()
    rates, ratio = adverse_events()
    one, diffs = baseline_tables()
    tables = {
        "fixed_effects": fixed_effects(),
        "variance_components": variance_components(),
        "diagnostics": diagnostics(),
        "row_accounting": rows,
        "quarantine_reasons": reasons,
        "adverse_event_rates": rates,
        "adverse_event_rate_ratio": ratio,
        "responders": responders(),
        "mean_by_visit": mean_by_visit(),
    }
    if today_only:
        return tables
    models = {
        "fixed_effects": tables["fixed_effects"],
        "emmeans": emmeans(),
        "contrasts": contrasts(),
    }
    return {
        **tables,
        **models,
        "answer": answer_table(models, Study(outcomes=legacy_outcomes(MCID)), visit=4),
        "effect_sizes": effect_sizes(),
        "model_comparison": model_comparison(),
        "flow": flow,
        "table_one": one,
        "table_one_std_diff": diffs,
    }
