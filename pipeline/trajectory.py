"""The trajectory model of SAP §4.1: ``y ~ time * group + baseline covariates``.

Random intercept and slope for time per patient, REML, with Satterthwaite degrees of freedom
(lmerTest) or large-sample z, as configured. The mixed-model engine (:mod:`pipeline.lmm`) fits
it; this module chooses the rows and the formula and returns tidy tables labelled with the
analysis and the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.config import ModelSettings
from pipeline.lmm import LmmFit, ModelDataError, fit_lmm

FIXED_EFFECT_COLUMNS = [
    "analysis",
    "outcome",
    "term",
    "estimate",
    "std_err",
    "df",
    "ci_low",
    "ci_high",
    "p_value",
]
TIME_COLUMNS = {"weeks": "weeks", "sessions": "sessions_completed"}
CATEGORICAL_COVARIATES = ("chronicity", "sex", "site")


@dataclass(frozen=True)
class TrajectoryResult:
    """A fitted trajectory model with its tidy tables.

    Attributes
    ----------
    analysis, outcome : str
        Labels, e.g. ``trajectory_depth`` and ``nrs``.
    formula : str
        The model in lme4 notation, for the report.
    fit : LmmFit
        The engine's result.
    fixed_effects : pandas.DataFrame
        ``analysis, outcome, term, estimate, std_err, df, ci_low, ci_high, p_value``.
    diagnostics : pandas.DataFrame
        One row: ``analysis, outcome, n_obs, n_patients, random_effects, converged, optimizer,
        boundary, fallback, warnings``.
    """

    analysis: str
    outcome: str
    formula: str
    fit: LmmFit
    fixed_effects: pd.DataFrame
    diagnostics: pd.DataFrame


def model_rows(
    data: pd.DataFrame, response: str, group: str, time: str, covariates: tuple[str, ...]
) -> pd.DataFrame:
    """Keep the rows with every model variable present; drop unused category levels.

    Categorical covariates that are text (sex, site) become categoricals with sorted levels, so
    the reference level is the first in alphabetical order (stated in the report); depth, twitch
    and chronicity keep their declared order (superficial, no twitch, acute first).
    """
    columns = ["patient_id", response, time, group, *covariates]
    rows = data[columns].dropna().copy()
    for column in (group, *covariates):
        if column in CATEGORICAL_COVARIATES or isinstance(rows[column].dtype, pd.CategoricalDtype):
            if not isinstance(rows[column].dtype, pd.CategoricalDtype):
                rows[column] = pd.Categorical(
                    rows[column], categories=sorted(rows[column].unique())
                )
            rows[column] = rows[column].cat.remove_unused_categories()
    rows[response] = rows[response].astype("float64")
    rows[time] = rows[time].astype("float64")
    return rows.reset_index(drop=True)


def fit_trajectory(
    data: pd.DataFrame, outcome: str, response: str, group: str, settings: ModelSettings
) -> TrajectoryResult:
    """Fit the trajectory model for one outcome and one patient-level exposure.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set (:func:`pipeline.derive.analysis_dataset`).
    outcome : str
        Instrument label for the tables (``nrs``, ``vas``, ``odi``).
    response : str
        Column holding the outcome (``nrs``, ``vas_mm``, ``odi``).
    group : str
        Exposure column, ``depth`` or ``twitch``.
    settings : ModelSettings
        Time axis, covariates, random slope and df method.

    Returns
    -------
    TrajectoryResult
        The fit and its tidy tables.
    """
    time = TIME_COLUMNS[settings.time_axis]
    rows = model_rows(data, response, group, time, settings.covariates)
    if rows.empty:
        needed = ", ".join([response, time, group, *settings.covariates])
        raise ModelDataError(f"no assessment has all of {needed} recorded")
    fixed = " + ".join([f"{time} * {group}", *settings.covariates])
    slope = time if settings.random_slope else None
    fit = fit_lmm(
        rows,
        response=response,
        fixed=fixed,
        group="patient_id",
        random_slope=slope,
        reml=True,
        df_method=settings.df_method,
    )
    analysis = f"trajectory_{group}"
    random_part = f"(1 + {time} | patient)" if fit.random_slope else "(1 | patient)"
    fe = fit.fixed_effects.assign(analysis=analysis, outcome=outcome)[FIXED_EFFECT_COLUMNS]
    diagnostics = pd.DataFrame(
        [
            {
                "analysis": analysis,
                "outcome": outcome,
                "n_obs": fit.n_obs,
                "n_patients": fit.n_groups,
                "random_effects": "intercept + slope" if fit.random_slope else "intercept",
                "converged": fit.converged,
                "optimizer": fit.optimizer,
                "boundary": fit.boundary,
                "fallback": fit.fallback or "",
                "warnings": " | ".join(fit.warnings),
            }
        ]
    )
    return TrajectoryResult(
        analysis=analysis,
        outcome=outcome,
        formula=f"{response} ~ {fixed} + {random_part}",
        fit=fit,
        fixed_effects=fe.reset_index(drop=True),
        diagnostics=diagnostics,
    )
