"""Every mixed-model analysis of the statistical analysis plan, run and gathered into tables.

:func:`analysis_plans` lists the models of SAP §4 for NRS, VAS and ODI;
:func:`run_analyses` fits them and :func:`combine` stacks their tidy tables, marks the primary
family of comparisons and adds Holm-adjusted p-values across it.

The primary family answers the two questions of the plan for the three outcomes: the
difference in slope between deep and superficial needling, and between patients with and
without a twitch response, in the trajectory models (six comparisons). Every other contrast is
secondary and reported unadjusted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from pipeline.analyses import (
    SENSITIVITY_POPULATIONS,
    TABLES,
    AnalysisResult,
    ModelPlan,
    change_plan,
    fit_plan,
    joint_plan,
    session_twitch_plan,
    subgroup_plan,
    trajectory_plan,
)
from pipeline.config import ModelSettings
from pipeline.derive import INSTRUMENT_COLUMNS
from pipeline.marginal import holm

FACTORS = ("depth", "twitch")
PRIMARY_ANALYSES = ("trajectory_depth", "trajectory_twitch")
PRIMARY_CONTRAST = "difference in slope"

Progress = Callable[[int, int, ModelPlan], None]


def analysis_plans(
    data: pd.DataFrame,
    settings: ModelSettings,
    outcomes: Sequence[str] = tuple(INSTRUMENT_COLUMNS),
) -> list[ModelPlan]:
    """List every model of SAP §4 for each outcome.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set (:func:`pipeline.derive.analysis_dataset`).
    settings : ModelSettings
        Time axis, covariates, random slope, df method and site handling.
    outcomes : sequence of str
        Instruments to analyse (default NRS, VAS and ODI).

    Returns
    -------
    list of ModelPlan
        Per outcome: trajectory and change-from-baseline models for depth and for twitch,
        the session-level twitch model, the joint model, the chronicity subgroup models, and
        the trajectory models in the sensitivity populations.
    """
    plans: list[ModelPlan] = []
    for outcome in outcomes:
        plans += [trajectory_plan(data, outcome, f, settings) for f in FACTORS]
        plans += [change_plan(data, outcome, f, settings) for f in FACTORS]
        plans.append(session_twitch_plan(data, outcome, settings))
        plans.append(joint_plan(data, outcome, settings))
        plans += [subgroup_plan(data, outcome, f, settings) for f in FACTORS]
        for name, select in SENSITIVITY_POPULATIONS.items():
            subset, note = select(data)
            plans += [
                trajectory_plan(
                    subset, outcome, f, settings, analysis=f"sensitivity_{name}_{f}", notes=[note]
                )
                for f in FACTORS
            ]
    return plans


def run_analyses(
    plans: Sequence[ModelPlan], df_method: str, progress: Progress | None = None
) -> list[AnalysisResult]:
    """Fit every plan in order.

    Parameters
    ----------
    plans : sequence of ModelPlan
        From :func:`analysis_plans`.
    df_method : {"satterthwaite", "z"}
        Inference for every test and interval.
    progress : callable, optional
        Called as ``progress(i, n, plan)`` before plan ``i`` (1-based) of ``n`` is fitted.

    Returns
    -------
    list of AnalysisResult
        One per plan, in order. Sensitivity analyses are fitted without likelihood-ratio tests.
    """
    results = []
    for i, plan in enumerate(plans, start=1):
        if progress is not None:
            progress(i, len(plans), plan)
        tests = not plan.analysis.startswith("sensitivity_")
        results.append(fit_plan(plan, df_method, tests=tests))
    return results


def combine(results: Sequence[AnalysisResult]) -> dict[str, pd.DataFrame]:
    """Stack the tidy tables of every analysis; add the family and Holm's adjustment.

    Parameters
    ----------
    results : sequence of AnalysisResult
        Fitted analyses.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``fixed_effects, variance_components, emmeans, contrasts, effect_sizes,
        model_comparison, diagnostics``. ``contrasts`` gains ``family`` (``primary`` or
        ``secondary``) and ``p_holm`` (Holm-adjusted p across the primary family, empty for
        secondary contrasts).
    """
    tables = {}
    for name in TABLES:
        frames = [r.tables[name] for r in results if len(r.tables[name])]
        columns = results[0].tables[name].columns if results else []
        tables[name] = (
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        )
    contrasts = tables["contrasts"]
    primary = contrasts["analysis"].isin(PRIMARY_ANALYSES) & contrasts["contrast"].str.contains(
        PRIMARY_CONTRAST, regex=False
    )
    contrasts["family"] = np.where(primary, "primary", "secondary")
    adjusted = holm(contrasts.loc[primary, "p_value"].to_numpy(dtype=float))
    contrasts["p_holm"] = np.nan
    contrasts.loc[primary, "p_holm"] = adjusted
    return tables
