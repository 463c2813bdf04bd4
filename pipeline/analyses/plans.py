"""The mixed-model analyses of the statistical analysis plan (SAP §4), as data in, tables out.

Each ``*_plan`` function turns the analysis data set
(:func:`pipeline.derive.dataset.analysis_dataset`)
into a :class:`ModelPlan`: the rows, the fixed-effect formula, the random effects, the
marginal means and contrasts that answer the question, and the nested models for the
likelihood-ratio tests. :func:`fit_plan` fits it with the mixed-model engine
(:func:`pipeline.lmm.fit.fit_lmm`) and returns an :class:`AnalysisResult` of tidy tables.

======================  ========================================================================
analysis                model (``T`` = weeks or sessions completed, ``G`` = depth or twitch)
======================  ========================================================================
trajectory_<G>          ``y ~ T * G + covariates + (1 + T | patient)`` on every assessment
change_<G>              the MMRM ``y ~ baseline + visit * G + covariates``, post-baseline, no
                        random effects, residual covariance across visits (``[model]
                        mmrm_structures``, tried in order), Kenward-Roger df by default
session_twitch          ``y ~ baseline + T + twitch_between + twitch_within + covariates
                        + (1 + T | patient)``, post-baseline, twitch share of earlier sessions
joint                   ``y ~ T * depth + T * twitch + covariates + (1 + T | patient)``
subgroup_chronicity_<G> ``y ~ T * G * chronicity + covariates + (1 + T | patient)``
sensitivity_*_<G>       the trajectory model in a sub-population (completers; per protocol)
======================  ========================================================================

Estimation is REML; the interaction tests are likelihood-ratio tests between ML fits of the
full and the reduced model with the same random effects (for the MMRM: the same covariance
structure). The MMRM's fit is :class:`pipeline.lmm.mmrm.MmrmFit` in ``AnalysisResult.fit``
(``structure``, ``structure_trials``, ``lsmeans``, ``visit_differences``, ``with_df_method``);
the structures it tried, with their AIC and BIC, are the ``covariance_structures`` table.
A plan that the data cannot support (an empty group, a single visit, a constant outcome...)
yields a diagnostics row with status ``not estimable`` and the reason, and no estimates.
"""

from __future__ import annotations

import time as clock
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.config.options import ModelSettings
from pipeline.lmm.fit import (
    DEFAULT_ROUTES,
    FAST_ROUTES,
    LmmFit,
    ModelDataError,
    ModelFitError,
    fit_lmm,
)
from pipeline.lmm.marginal import (
    contrast_rows,
    emmeans,
    group_differences,
    levels_of,
    pooled_sd,
    slope_difference,
)
from pipeline.lmm.mmrm import MmrmFit, fit_mmrm
from pipeline.schemas.columns import INSTRUMENT_COLUMNS, PATIENT_ID, outcome_column
from pipeline.schemas.identity import AnalysisId, AnalysisKind, ContrastKind
from pipeline.schemas.outputs import (
    COMPARISON_COLUMNS,
    CONTRAST_TABLE_COLUMNS,
    COVARIANCE_STRUCTURE_COLUMNS,
    DIAGNOSTIC_COLUMNS,
    EFFECT_SIZE_COLUMNS,
    EMMEANS_TABLE_COLUMNS,
    FIXED_EFFECT_TABLE_COLUMNS,
    VARIANCE_COLUMNS,
)

GROUP = PATIENT_ID
TIME_COLUMNS = {"weeks": "weeks", "sessions": "sessions_completed"}
TIME_UNITS = {"weeks": "week", "sessions": "session"}
TEXT_CATEGORICALS = ("sex", "site")
SLOPE_LABEL = "{name}: difference in slope per {unit}{suffix}"
"""Label of a difference in slope (for readers; code matches the ``kind`` column)."""
VISIT_LABEL = "{name}, visit {visit}{suffix}"
"""Label of a difference between groups at one visit."""
STANDARDISER = "pooled within-group SD of the outcome at baseline"
TABLES = (
    "fixed_effects",
    "variance_components",
    "emmeans",
    "contrasts",
    "effect_sizes",
    "model_comparison",
    "diagnostics",
    "covariance_structures",
)
STRUCTURE_WORDS = {
    "us": "unstructured",
    "toep": "Toeplitz",
    "toeph": "heterogeneous Toeplitz",
    "ar1": "AR(1)",
    "ar1h": "heterogeneous AR(1)",
    "cs": "compound symmetry",
    "csh": "heterogeneous compound symmetry",
    "ad": "ante-dependence",
    "adh": "heterogeneous ante-dependence",
}
"""Readers' names of the MMRM's covariance structures (code matches the short names)."""


@dataclass(frozen=True)
class ModelPlan:
    """One mixed model of the plan: rows, formula and what to report from it.

    Attributes
    ----------
    analysis, outcome : str
        Identifiers written in every table (``trajectory_depth``, ``nrs``).
    response : str
        Outcome column.
    rows : pandas.DataFrame
        Complete-case rows of every model variable (categoricals in model order).
    rhs : str
        patsy right-hand side of the fixed effects.
    variables : tuple of str
        Every variable in ``rhs``.
    random_slope : str or None
        Random slope for time per patient, or None.
    time : str
        Time variable of the formula (numeric, or the categorical ``visit_c``).
    time_unit : str or None
        Unit of a numeric time variable (``week``), None for categorical visits.
    points : dict of int to value
        Visit -> value of ``time`` at which means and differences are evaluated.
    factors : tuple of str
        Group variables that get marginal means and between-group contrasts.
    by : str or None
        Effect modifier: means and contrasts are given within each of its levels.
    reduced : tuple of (str, str)
        ``(test label, reduced rhs)`` for each likelihood-ratio test.
    coefficients : tuple of (str, ContrastKind, str, dict)
        Extra contrasts of coefficients: ``(question, kind, label, {design column: weight})``;
        ``kind`` is :attr:`~pipeline.schemas.identity.ContrastKind.WITHIN` for a within-patient
        coefficient, else :attr:`~pipeline.schemas.identity.ContrastKind.COEFFICIENT`.
    baseline : pandas.Series
        Baseline outcome per patient in the model (for the standardised effect size).
    notes : tuple of str
        How the rows were chosen, for the diagnostics.
    site : str or None
        ``"site"`` when the model has a site random intercept (patients nested in sites).
    identity : AnalysisId or None
        The typed identity of the analysis (kind, factor, population); ``analysis`` is its
        name. None for a model built outside the plan.
    unrecorded : tuple of str
        Variables of the model that have no value anywhere in the study's data (not recorded by
        any source): the model cannot be fitted, and its diagnostics say so.
    repeated : tuple of str
        Non-empty for a mixed model for repeated measures (MMRM, SAP §4.6): no random effects,
        a residual covariance across ``time`` (the categorical visit) with these structures
        tried in order until one converges.
    repeated_df : str
        Degrees of freedom of the MMRM's tests and intervals (one of
        :data:`pipeline.lmm.mmrm.DF_METHODS`).
    """

    analysis: str
    outcome: str
    response: str
    rows: pd.DataFrame
    rhs: str
    variables: tuple[str, ...]
    random_slope: str | None
    time: str
    time_unit: str | None
    points: dict[int, Any]
    factors: tuple[str, ...] = ()
    by: str | None = None
    reduced: tuple[tuple[str, str], ...] = ()
    coefficients: tuple[tuple[str, ContrastKind, str, dict[str, float]], ...] = ()
    baseline: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))
    notes: tuple[str, ...] = ()
    site: str | None = None
    identity: AnalysisId | None = None
    unrecorded: tuple[str, ...] = ()
    repeated: tuple[str, ...] = ()
    repeated_df: str = "kenward-roger"

    @property
    def formula(self) -> str:
        """The model in lme4 notation (an MMRM: with its residual covariance in words)."""
        if self.repeated:
            return mmrm_formula(self.response, self.rhs, self.repeated)
        random = f"(1 + {self.random_slope} | patient)" if self.random_slope else "(1 | patient)"
        if self.site:
            random = f"(1 | {self.site}) + {random}"
        return f"{self.response} ~ {self.rhs} + {random}"


def mmrm_formula(response: str, rhs: str, structures: Sequence[str]) -> str:
    """Write the MMRM in words: ``y ~ rhs, residual covariance across visits: unstructured``.

    Several structures (before the fit) are given as the order they are tried in.
    """
    words = " → ".join(STRUCTURE_WORDS.get(s, s) for s in structures)
    return f"{response} ~ {rhs}, residual covariance across visits: {words}"


@dataclass(frozen=True)
class AnalysisResult:
    """The fit of one plan and its tidy tables.

    Attributes
    ----------
    analysis, outcome, formula : str
        Labels and the model in lme4 notation.
    fit : LmmFit or MmrmFit or None
        The REML fit (None when the data could not support the model); an
        :class:`~pipeline.lmm.mmrm.MmrmFit` for the visit-level model (``change_<G>``).
    tables : dict of str to pandas.DataFrame
        ``fixed_effects, variance_components, emmeans, contrasts, effect_sizes,
        model_comparison, diagnostics, covariance_structures`` (empty frames with the right
        columns when a table does not apply).
    rows : pandas.DataFrame or None
        The model rows, aligned with ``fit.fitted`` and ``fit.residuals`` (e.g. to plot
        residuals by visit or group).
    identity : AnalysisId or None
        The plan's typed identity (:attr:`ModelPlan.identity`).
    """

    analysis: str
    outcome: str
    formula: str
    fit: LmmFit | MmrmFit | None
    tables: dict[str, pd.DataFrame]
    rows: pd.DataFrame | None = None
    identity: AnalysisId | None = None

    def __getattr__(self, name: str) -> pd.DataFrame:
        """Give each table as an attribute, e.g. ``result.contrasts``."""
        if name in TABLES:
            return self.tables[name]
        raise AttributeError(name)


# ---------------------------------------------------------------------------------------------
# rows


def response_column(outcome: str, data: pd.DataFrame | None = None) -> str:
    """Column of an outcome in the analysis data set (``vas`` -> ``vas_mm``, ``rmdq`` -> ``rmdq``).

    Raises
    ------
    ValueError
        When ``data`` is given and holds no such outcome (it names the outcomes it holds).
    """
    column = outcome_column(outcome)
    if data is not None and f"{column}_baseline" not in data:
        held = [c.removesuffix("_baseline") for c in data.columns if c.endswith("_baseline")]
        names = {v: k for k, v in INSTRUMENT_COLUMNS.items()}
        raise ValueError(
            f"unknown outcome {outcome!r}; these data hold "
            f"{', '.join(names.get(c, c) for c in held)}"
        )
    return column


def check_group(data: pd.DataFrame, factor: str) -> None:
    """Raise ``ValueError`` unless ``factor`` is a categorical patient-level grouping."""
    if factor not in data or not isinstance(data[factor].dtype, pd.CategoricalDtype):
        groups = [
            c
            for c in data.columns
            if isinstance(data[c].dtype, pd.CategoricalDtype) and c not in ("chronicity",)
        ]
        raise ValueError(
            f"unknown group {factor!r}; these data hold the groupings {', '.join(groups)}"
        )


def _sorted_categorical(values: pd.Series) -> pd.Categorical:
    """Text values (no missing value) as a categorical with sorted levels.

    The same as ``pd.Categorical(values, categories=sorted(values.unique()))`` (text sorts
    by code point in pandas as in Python), coded by one hash pass (:func:`pandas.factorize`)
    instead of a lookup of every value among the levels: 10 times faster on 600,000 rows.
    """
    codes, uniques = pd.factorize(values, sort=True)
    return pd.Categorical.from_codes(codes, categories=uniques.tolist())


def model_rows(data: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Complete cases of ``patient_id`` and ``columns``, with categoricals in model order.

    Text covariates (sex, site) become categoricals with sorted levels (the first is the
    reference); depth, twitch and chronicity keep their declared order (superficial, no twitch,
    acute first). Unused levels are dropped so that an empty group is reported, not fitted.
    """
    rows = data[[GROUP, *dict.fromkeys(columns)]].dropna()  # a new frame (copy on write)
    for column in rows.columns.drop(GROUP):
        values = rows[column]
        if column in TEXT_CATEGORICALS and not isinstance(values.dtype, pd.CategoricalDtype):
            rows[column] = _sorted_categorical(values)
        if isinstance(rows[column].dtype, pd.CategoricalDtype):
            rows[column] = rows[column].cat.remove_unused_categories()
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            rows[column] = values.astype("float64")
    return rows.reset_index(drop=True)


def _post_baseline(data: pd.DataFrame, response: str, columns: Sequence[str]) -> pd.DataFrame:
    """Post-baseline rows of ``patient_id`` and ``columns``, ``baseline`` the outcome's baseline.

    Only the columns asked for are taken from the analysis data set (the rows of all its
    columns would be copied for nothing).
    """
    post = (data["visit"] > 0).to_numpy()
    wanted = [c for c in dict.fromkeys([GROUP, *columns]) if c != "baseline"]
    return data.loc[post, wanted].assign(baseline=data[f"{response}_baseline"].to_numpy()[post])


def _covariates(settings: ModelSettings, data: pd.DataFrame, exclude: Sequence[str] = ()) -> list:
    """Baseline covariates of the models, plus site as a fixed effect when configured."""
    covariates = [c for c in settings.covariates if c not in exclude]
    if site_as_fixed(settings, data) and "site" not in covariates:
        covariates.append("site")
    return covariates


def site_as_random(settings: ModelSettings, data: pd.DataFrame) -> bool:
    """Whether the models get a site random intercept (SAP §4.5).

    ``site = "random"``, or ``"auto"`` with at least ``min_sites_random`` sites; never with a
    single site.
    """
    n_sites = data["site"].nunique()
    if n_sites < 2:
        return False
    return settings.site == "random" or (
        settings.site == "auto" and n_sites >= settings.min_sites_random
    )


def _site(settings: ModelSettings, data: pd.DataFrame) -> tuple[str | None, list[str]]:
    """``("site", ["site"])`` for a site random intercept, else ``(None, [])``."""
    return ("site", ["site"]) if site_as_random(settings, data) else (None, [])


def site_as_fixed(settings: ModelSettings, data: pd.DataFrame) -> bool:
    """Whether site enters the models as a fixed effect (SAP §4.5).

    ``site = "fixed"``, or ``"auto"`` with fewer than ``min_sites_random`` sites; never when
    the data hold a single site.
    """
    n_sites = data["site"].nunique()
    if n_sites < 2 or settings.site == "none":
        return False
    if settings.site == "fixed":
        return True
    return settings.site == "auto" and n_sites < settings.min_sites_random


def _rhs(*parts: str) -> str:
    return " + ".join(p for p in parts if p)


def _visit_points(rows: pd.DataFrame, time: str) -> dict[int, float]:
    """Mean value of the time variable at each visit, over the model rows."""
    means = rows.groupby("visit", sort=True)[time].mean()
    return {int(v): float(t) for v, t in means.items()}


def _baseline_by_patient(data: pd.DataFrame, response: str, rows: pd.DataFrame) -> pd.Series:
    """Baseline value of the outcome of each patient in ``rows``."""
    base = data.loc[data["visit"] == 0, [GROUP, response]].drop_duplicates(GROUP)
    base = base.set_index(GROUP)[response]
    return base.reindex(rows[GROUP].unique()).astype("float64")


# ---------------------------------------------------------------------------------------------
# plans


def trajectory_plan(
    data: pd.DataFrame,
    outcome: str,
    factor: str,
    settings: ModelSettings,
    *,
    population: str | None = None,
    notes: Sequence[str] = (),
) -> ModelPlan:
    """SAP §4.1: ``y ~ T * G + covariates``, random intercept and slope for ``T``.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    outcome : str
        A declared outcome (``nrs``, ``vas``, ``odi``, ``rmdq``...).
    factor : str
        A declared comparison: a categorical patient-level column (``depth``, ``twitch``,
        ``arm``...).
    settings : ModelSettings
        Time axis, covariates, random slope, df method, site handling.
    population : str, optional
        Sub-population of a sensitivity analysis (``completers``): the analysis is then a
        :attr:`~pipeline.schemas.identity.AnalysisKind.SENSITIVITY` analysis.
    notes : sequence of str
        How the population was chosen (sensitivity analyses).

    Returns
    -------
    ModelPlan
        The plan.
    """
    response = response_column(outcome, data)
    check_group(data, factor)
    time = TIME_COLUMNS[settings.time_axis]
    covariates = _covariates(settings, data)
    site, site_column = _site(settings, data)
    rows = model_rows(data, [response, time, factor, "visit", *covariates, *site_column])
    identity = (
        AnalysisId(AnalysisKind.SENSITIVITY, factor, population=population)
        if population
        else AnalysisId(AnalysisKind.TRAJECTORY, factor)
    )
    return ModelPlan(
        site=site,
        identity=identity,
        analysis=identity.name,
        outcome=outcome,
        response=response,
        rows=rows,
        rhs=_rhs(f"{time} * {factor}", *covariates),
        variables=(time, factor, *covariates),
        random_slope=time if settings.random_slope else None,
        time=time,
        time_unit=TIME_UNITS[settings.time_axis],
        points=_visit_points(rows, time),
        factors=(factor,),
        reduced=((f"{time} × {factor} interaction", _rhs(f"{time} + {factor}", *covariates)),),
        baseline=_baseline_by_patient(data, response, rows),
        notes=tuple(notes),
    )


def change_plan(
    data: pd.DataFrame, outcome: str, factor: str, settings: ModelSettings
) -> ModelPlan:
    """SAP §4.2 and §4.6: the MMRM ``y ~ baseline + visit * G + covariates``, post-baseline.

    Visit is categorical; there are no random effects: the residuals of a patient's visits
    share a covariance matrix across visits (``[model] mmrm_structures``, by default
    unstructured, then heterogeneous Toeplitz, heterogeneous AR(1), heterogeneous compound
    symmetry and compound symmetry when a structure does not converge), estimated by REML with
    ``[model] mmrm_df_method`` degrees of freedom (Kenward-Roger by default). The between-group
    difference at each visit is the clinically read quantity (in a trial, the baseline-adjusted
    difference at the primary visit is the headline). Post-baseline assessments of patients
    with a baseline value only. A site random intercept has no place in a model without random
    effects: with ``site`` random by the settings, site enters as a fixed effect, and the notes
    say so. With a single post-baseline visit the model is the analysis of covariance
    ``y ~ baseline + G + covariates`` (no visit term, no interaction test).

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    outcome : str
        A declared outcome (``nrs``, ``rmdq``...).
    factor : str
        A declared comparison: a categorical patient-level column (``depth``, ``arm``...).
    settings : ModelSettings
        Covariates, site handling, covariance structures and df method of the MMRM.

    Returns
    -------
    ModelPlan
        The plan, labelled ``change_<factor>``, with ``repeated`` set.
    """
    response = response_column(outcome, data)
    check_group(data, factor)
    covariates = _covariates(settings, data)
    notes = ["post-baseline assessments; baseline value as covariate"]
    if site_as_random(settings, data) and "site" not in covariates:
        covariates.append("site")
        notes.append("site as a fixed effect (the MMRM has no random effects)")
    columns = [response, "baseline", "visit", factor, *covariates]
    rows = model_rows(_post_baseline(data, response, columns), columns)
    rows["visit_c"] = pd.Categorical(rows["visit"].astype(int))
    visits = [int(v) for v in rows["visit_c"].cat.categories]
    identity = AnalysisId(AnalysisKind.CHANGE, factor)
    rhs = _rhs("baseline", f"visit_c * {factor}", *covariates)
    variables: tuple[str, ...] = ("baseline", "visit_c", factor, *covariates)
    reduced = (
        (f"visit × {factor} interaction", _rhs("baseline", f"visit_c + {factor}", *covariates)),
    )
    if len(visits) == 1:  # one post-baseline visit: the MMRM is the analysis of covariance
        rhs = _rhs("baseline", factor, *covariates)
        variables = ("baseline", factor, *covariates)
        reduced = ()
        notes.append(
            f"a single post-baseline visit ({visits[0]}): analysis of covariance, no visit term"
        )
    return ModelPlan(
        identity=identity,
        analysis=identity.name,
        outcome=outcome,
        response=response,
        rows=rows,
        rhs=rhs,
        variables=variables,
        random_slope=None,
        time="visit_c",
        time_unit=None,
        points={v: v for v in visits},
        factors=(factor,),
        reduced=reduced,
        baseline=rows.drop_duplicates(GROUP).set_index(GROUP)["baseline"],
        notes=tuple(notes),
        repeated=tuple(settings.mmrm_structures),
        repeated_df=settings.mmrm_df_method,
    )


def session_twitch_plan(data: pd.DataFrame, outcome: str, settings: ModelSettings) -> ModelPlan:
    """SAP §4.3: twitch varying between sessions, split into between- and within-patient parts.

    For each post-baseline assessment ``x`` is the share of the patient's earlier sessions
    (strictly before the assessment) in which a twitch was elicited; ``twitch_between`` is the
    patient's mean of ``x`` over their assessments in the model and ``twitch_within`` the
    deviation from it. The within coefficient (twitch in every earlier session versus none, for
    the same patient) is free of between-patient confounding.
    """
    response = response_column(outcome, data)
    time = TIME_COLUMNS[settings.time_axis]
    covariates = _covariates(settings, data)
    site, site_column = _site(settings, data)
    columns = [response, "baseline", time, "twitch_share_before", "visit", *covariates]
    columns += site_column
    rows = model_rows(_post_baseline(data, response, columns), columns)
    share = rows["twitch_share_before"]
    rows["twitch_between"] = share.groupby(rows[GROUP]).transform("mean")
    rows["twitch_within"] = share - rows["twitch_between"]
    rhs = _rhs("baseline", time, "twitch_between", "twitch_within", *covariates)
    return ModelPlan(
        site=site,
        identity=AnalysisId(AnalysisKind.SESSION, "twitch"),
        analysis=AnalysisId(AnalysisKind.SESSION, "twitch").name,
        outcome=outcome,
        response=response,
        rows=rows,
        rhs=rhs,
        variables=("baseline", time, "twitch_between", "twitch_within", *covariates),
        random_slope=time if settings.random_slope else None,
        time=time,
        time_unit=TIME_UNITS[settings.time_axis],
        points={},
        reduced=(
            (
                "within-patient twitch effect",
                _rhs("baseline", time, "twitch_between", *covariates),
            ),
        ),
        coefficients=(
            (
                "twitch",
                ContrastKind.WITHIN,
                "twitch in every earlier session vs none, within patients",
                {"twitch_within": 1.0},
            ),
            (
                "twitch",
                ContrastKind.COEFFICIENT,
                "twitch in every earlier session vs none, between patients",
                {"twitch_between": 1.0},
            ),
            (
                "twitch",
                ContrastKind.COEFFICIENT,
                "between − within (contextual effect)",
                {"twitch_between": 1.0, "twitch_within": -1.0},
            ),
        ),
        baseline=rows.drop_duplicates(GROUP).set_index(GROUP)["baseline"],
        notes=(
            "post-baseline assessments after at least one session; twitch share of the "
            "sessions before each assessment",
        ),
    )


def joint_plan(data: pd.DataFrame, outcome: str, settings: ModelSettings) -> ModelPlan:
    """SAP §4.4: depth and twitch together, ``y ~ T * depth + T * twitch + covariates``."""
    response = response_column(outcome, data)
    time = TIME_COLUMNS[settings.time_axis]
    covariates = _covariates(settings, data)
    site, site_column = _site(settings, data)
    rows = model_rows(data, [response, time, "depth", "twitch", "visit", *covariates, *site_column])
    full = (f"{time} * depth", f"{time} * twitch")
    return ModelPlan(
        site=site,
        identity=AnalysisId(AnalysisKind.JOINT),
        analysis=AnalysisId(AnalysisKind.JOINT).name,
        outcome=outcome,
        response=response,
        rows=rows,
        rhs=_rhs(*full, *covariates),
        variables=(time, "depth", "twitch", *covariates),
        random_slope=time if settings.random_slope else None,
        time=time,
        time_unit=TIME_UNITS[settings.time_axis],
        points=_visit_points(rows, time),
        factors=("depth", "twitch"),
        reduced=(
            (f"{time} × depth, adjusted for twitch", _rhs(f"{time} + depth", full[1], *covariates)),
            (
                f"{time} × twitch, adjusted for depth",
                _rhs(full[0], f"{time} + twitch", *covariates),
            ),
        ),
        baseline=_baseline_by_patient(data, response, rows),
    )


def subgroup_plan(
    data: pd.DataFrame, outcome: str, factor: str, settings: ModelSettings
) -> ModelPlan:
    """SAP §4 (acute vs chronic): ``y ~ T * G * chronicity``; the three-way term is the test."""
    response = response_column(outcome, data)
    time = TIME_COLUMNS[settings.time_axis]
    covariates = _covariates(settings, data, exclude=("chronicity",))
    site, site_column = _site(settings, data)
    rows = model_rows(
        data, [response, time, factor, "chronicity", "visit", *covariates, *site_column]
    )
    two_way = (f"{time} * {factor}", f"{time} * chronicity", f"{factor} * chronicity")
    return ModelPlan(
        site=site,
        identity=AnalysisId(AnalysisKind.SUBGROUP, factor, modifier="chronicity"),
        analysis=AnalysisId(AnalysisKind.SUBGROUP, factor, modifier="chronicity").name,
        outcome=outcome,
        response=response,
        rows=rows,
        rhs=_rhs(f"{time} * {factor} * chronicity", *covariates),
        variables=(time, factor, "chronicity", *covariates),
        random_slope=time if settings.random_slope else None,
        time=time,
        time_unit=TIME_UNITS[settings.time_axis],
        points=_visit_points(rows, time),
        factors=(factor,),
        by="chronicity",
        reduced=((f"{time} × {factor} × chronicity interaction", _rhs(*two_way, *covariates)),),
        baseline=_baseline_by_patient(data, response, rows),
    )


def completers(data: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Patients with a valid assessment at the last scheduled visit (the highest visit seen)."""
    last = int(data["visit"].max())
    keep = data.loc[data["visit"] == last, GROUP].unique()
    note = f"completers: patients assessed at the last visit ({last})"
    return data.loc[data[GROUP].isin(keep)], note


EXCLUSION_WORDS = {
    "contraindicated": "contraindications",
    "protocol_deviation": "protocol deviations",
}
EXCLUSION_CRITERIA = {
    "contraindicated": "a contraindication",
    "protocol_deviation": "a protocol deviation",
}


def recorded_patients(data: pd.DataFrame, column: str) -> tuple[int, int]:
    """Return ``(patients with column recorded, patients)`` of the analysis data set."""
    known = data[column].notna().groupby(data[GROUP]).any()
    return int(known.sum()), len(known)


def unrecorded_exclusion(data: pd.DataFrame, column: str) -> str:
    """Say how far an exclusion criterion was recorded; empty when recorded for every patient.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set with ``patient_id`` and the nullable boolean ``column``.
    column : str
        ``contraindicated`` or ``protocol_deviation``.

    Returns
    -------
    str
        ``"<what> were not recorded, so no patient was excluded for them"``, or ``"<what> were
        recorded for k of n patients (the others were not excluded for them)"``, or ``""``.
    """
    known, patients = recorded_patients(data, column)
    what = EXCLUSION_WORDS.get(column, column.replace("_", " "))
    if known == patients:
        return ""
    if known == 0:
        return f"{what} were not recorded, so no patient was excluded for them"
    return (
        f"{what} were recorded for {known} of {patients} patients "
        "(the others were not excluded for them)"
    )


def per_protocol(data: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Patients without a recorded contraindication and without a recorded protocol deviation.

    A criterion that was not recorded for a patient excludes nobody; the note says so (a
    missing value is never read as "no deviation" silently).
    """
    flagged = data["contraindicated"].astype("boolean").fillna(False)
    flagged |= data["protocol_deviation"].astype("boolean").fillna(False)
    used = []  # criteria recorded for every patient, then for some ("a recorded ...")
    for column, what in EXCLUSION_CRITERIA.items():
        known, patients = recorded_patients(data, column)
        if known == patients:
            used.append(what)
        elif known > 0:
            used.append(f"a recorded {what.removeprefix('a ')}")
    head = (
        f"per protocol: excluding patients with {' or '.join(used)}"
        if used
        else "per protocol: no patient excluded"
    )
    gaps = [unrecorded_exclusion(data, c) for c in EXCLUSION_CRITERIA]
    return data.loc[~flagged.to_numpy(dtype=bool)], "; ".join([head, *[g for g in gaps if g]])


SENSITIVITY_POPULATIONS = {"completers": completers, "per_protocol": per_protocol}


# ---------------------------------------------------------------------------------------------
# fitting


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(columns))


def _labelled(plan: ModelPlan, frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = frame.assign(analysis=plan.analysis, outcome=plan.outcome)
    return out[list(columns)].reset_index(drop=True)


def _contrasts(plan: ModelPlan, fit: LmmFit) -> pd.DataFrame:
    """Between-group differences at each visit, differences in slope, coefficient contrasts."""
    vectors, meta = [], []
    by_levels = levels_of(plan.rows[plan.by]) if plan.by else [None]
    for factor in plan.factors:
        reference, *others = levels_of(plan.rows[factor])
        for level in others:
            for by_level in by_levels:
                given = {plan.by: by_level} if plan.by else {}
                suffix = f" ({by_level})" if plan.by else ""
                name = f"{level} − {reference}"
                if plan.time_unit:
                    vectors.append(
                        slope_difference(
                            fit,
                            plan.rows,
                            plan.variables,
                            factor,
                            level,
                            reference,
                            plan.time,
                            given,
                        )
                    )
                    meta.append(
                        {
                            "question": factor,
                            "kind": ContrastKind.SLOPE.value,
                            "within": str(by_level) if plan.by else None,
                            "contrast": SLOPE_LABEL.format(
                                name=name, unit=plan.time_unit, suffix=suffix
                            ),
                        }
                    )
                visits = [visit for visit in plan.points if visit != 0]
                ats = [{**given, plan.time: plan.points[visit]} for visit in visits]
                vectors += list(
                    group_differences(fit, plan.rows, plan.variables, factor, level, reference, ats)
                )
                meta += [
                    {
                        "question": factor,
                        "kind": ContrastKind.VISIT.value,
                        "within": str(by_level) if plan.by else None,
                        "contrast": VISIT_LABEL.format(name=name, visit=visit, suffix=suffix),
                        "visit": visit,
                    }
                    for visit in visits
                ]
    columns = list(fit.design_columns)
    for question, kind, label, weights in plan.coefficients:
        vec = np.zeros(len(columns))
        for name, weight in weights.items():
            vec[columns.index(name)] = weight
        vectors.append(vec)
        meta.append({"question": question, "kind": ContrastKind(kind).value, "contrast": label})
    table = contrast_rows(fit, vectors, meta)
    table.insert(1, "kind", [m["kind"] for m in meta] if len(table) else [])
    table.insert(2, "within", [m.get("within") for m in meta] if len(table) else [])
    return table


def _emmeans(plan: ModelPlan, fit: LmmFit) -> pd.DataFrame:
    frames = []
    by_levels = levels_of(plan.rows[plan.by]) if plan.by else [None]
    for factor in plan.factors:
        for by_level in by_levels:
            given = {plan.by: by_level} if plan.by else {}
            table = emmeans(fit, plan.rows, plan.variables, factor, plan.time, plan.points, given)
            if plan.by:
                table["factor"] = f"{factor} × {plan.by}"
                table["level"] = table["level"].astype(str) + f" × {by_level}"
            frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else None


def plan_contrasts(plan: ModelPlan, fit: Any) -> pd.DataFrame:
    """Return the contrasts table of a plan fitted elsewhere (:mod:`pipeline.scale`), as here.

    ``fit`` needs ``design_columns``, ``design_matrix`` and ``contrast``; ``plan.rows`` may be
    any frame with the model rows' levels and means (what the marginal means read of them).
    """
    return _contrasts(plan, fit)


def plan_emmeans(plan: ModelPlan, fit: Any) -> pd.DataFrame | None:
    """Return the marginal means of a plan fitted elsewhere, as :func:`plan_contrasts`."""
    return _emmeans(plan, fit)


def _effect_sizes(plan: ModelPlan, contrasts: pd.DataFrame) -> pd.DataFrame:
    """Contrasts of group means (not of slopes) divided by the pooled baseline SD."""
    groups = None
    if len(plan.factors) == 1:
        per_patient = plan.rows.drop_duplicates(GROUP).set_index(GROUP)[plan.factors[0]]
        groups = per_patient.reindex(plan.baseline.index)
    sd = pooled_sd(plan.baseline, groups)
    rows = contrasts.loc[contrasts["kind"] != ContrastKind.SLOPE].copy()
    rows["standardiser"] = STANDARDISER
    rows["sd"] = sd
    rows["effect_size"] = rows["estimate"] / sd
    rows["ci_low"] = rows["ci_low"] / sd
    rows["ci_high"] = rows["ci_high"] / sd
    return rows


def _likelihood_ratio_tests(
    plan: ModelPlan,
    slope: str | None,
    routes: Sequence[str],
    escalate: Sequence[str],
    start: np.ndarray | None = None,
) -> tuple[pd.DataFrame, list[str], float]:
    """ML fits of the full and each reduced model, with the same random effects.

    Each ML fit starts from the nearest estimate at hand (the REML fit for the full model,
    the full ML fit for a reduced one): fewer iterations, the same optimum.
    """
    started = clock.perf_counter()
    notes: list[str] = []
    rows = []

    def ml(rhs: str, random_slope: str | None, near: np.ndarray | None) -> LmmFit:
        return fit_lmm(
            plan.rows,
            plan.response,
            rhs,
            GROUP,
            random_slope=random_slope,
            reml=False,
            df_method="z",
            routes=routes,
            escalate=escalate,
            site=plan.site,
            start=near,
        )

    full = ml(plan.rhs, slope, start)
    for test, reduced_rhs in plan.reduced:
        reduced = ml(reduced_rhs, full.random_slope, full.theta)
        current = full
        if reduced.random_slope != current.random_slope:  # keep the models nested
            current = ml(plan.rhs, reduced.random_slope, reduced.theta)
        for label, f in (("full", current), ("reduced", reduced)):
            notes.extend(f"ML refit for the test of {test} ({label}): {w}" for w in f.warnings)
        rows.append(likelihood_ratio_row(test, current, reduced))
    return pd.DataFrame(rows), notes, clock.perf_counter() - started


def likelihood_ratio_row(test: str, full: Any, reduced: Any) -> dict[str, object]:
    """One ``model_comparison`` row: the likelihood-ratio test of two nested ML fits.

    ``full`` and ``reduced`` are fits with ``design_columns`` and ``loglik`` (an
    :class:`~pipeline.lmm.fit.LmmFit` or an :class:`~pipeline.lmm.mmrm.MmrmFit`).
    """
    df = len(full.design_columns) - len(reduced.design_columns)
    chisq = max(0.0, 2.0 * (full.loglik - reduced.loglik))
    return {
        "test": f"{test} (likelihood ratio, ML)",
        "df": df,
        "chisq": chisq,
        "p_value": float(stats.chi2.sf(chisq, df)),
        "loglik_reduced": reduced.loglik,
        "loglik_full": full.loglik,
    }


def _residual_checks(fit: LmmFit) -> dict[str, float]:
    r = fit.residuals / fit.sigma
    return {
        "residual_sd": float(np.std(fit.residuals, ddof=1)),
        "residual_skewness": float(stats.skew(r)),
        "residual_excess_kurtosis": float(stats.kurtosis(r)),
        "residual_share_beyond_3sd": float(np.mean(np.abs(r) > 3.0)),
    }


def not_estimable(plan: ModelPlan, message: str, seconds: float = 0.0) -> AnalysisResult:
    """Return the result of a plan the data cannot support: a diagnostics row saying why."""
    row: dict[str, Any] = {c: np.nan for c in DIAGNOSTIC_COLUMNS}
    row.update(random_effects=None, optimizer=None, fallback=None, warnings=None)
    row.update(
        analysis=plan.analysis,
        outcome=plan.outcome,
        status="not estimable",
        message=message,
        n_obs=len(plan.rows),
        n_patients=plan.rows[GROUP].nunique(),
        fit_seconds=seconds,
    )
    tables = {
        "fixed_effects": _empty(FIXED_EFFECT_TABLE_COLUMNS),
        "variance_components": _empty(VARIANCE_COLUMNS),
        "emmeans": _empty(EMMEANS_TABLE_COLUMNS),
        "contrasts": _empty(CONTRAST_TABLE_COLUMNS),
        "effect_sizes": _empty(EFFECT_SIZE_COLUMNS),
        "model_comparison": _empty(COMPARISON_COLUMNS),
        "diagnostics": pd.DataFrame([row], columns=DIAGNOSTIC_COLUMNS),
        "covariance_structures": _empty(COVARIANCE_STRUCTURE_COLUMNS),
    }
    return AnalysisResult(
        plan.analysis, plan.outcome, plan.formula, None, tables, plan.rows, plan.identity
    )


def fit_plan(
    plan: ModelPlan,
    df_method: str = "satterthwaite",
    *,
    tests: bool = True,
    routes: Sequence[str] = FAST_ROUTES,
    escalate: Sequence[str] = DEFAULT_ROUTES,
) -> AnalysisResult:
    """Fit one plan (REML) and build its tidy tables.

    Parameters
    ----------
    plan : ModelPlan
        What to fit and report.
    df_method : {"satterthwaite", "z"}
        Degrees of freedom of every test and interval of a random-effects model (an MMRM,
        ``plan.repeated`` set, uses ``plan.repeated_df``: ``[model] mmrm_df_method``).
    tests : bool, default True
        Also run the likelihood-ratio tests (ML refits of the full and reduced models).
    routes, escalate : sequence of str
        Optimiser routes, and the routes added when their optimum is not verified or is
        singular (see :func:`pipeline.lmm.fit.fit_lmm`). The default fits with the numpy route
        and calls statsmodels' optimisers only when needed.

    Returns
    -------
    AnalysisResult
        The fit and its tables; a ``not estimable`` result when the data cannot support it.
    """
    started = clock.perf_counter()
    if plan.rows.empty and plan.unrecorded:
        verb = "was" if len(plan.unrecorded) == 1 else "were"
        return not_estimable(
            plan,
            f"{' and '.join(plan.unrecorded)} {verb} not recorded, so {plan.formula} "
            "cannot be fitted",
        )
    if plan.rows.empty:
        return not_estimable(plan, f"no assessment has every variable of {plan.formula}")
    if plan.repeated:
        return _fit_mmrm_plan(plan, tests, started)
    try:
        fit = fit_lmm(
            plan.rows,
            plan.response,
            plan.rhs,
            GROUP,
            random_slope=plan.random_slope,
            reml=True,
            df_method=df_method,
            routes=routes,
            escalate=escalate,
            site=plan.site,
        )
        contrasts = _contrasts(plan, fit)
        means = _emmeans(plan, fit)
        comparison, test_notes = _empty(COMPARISON_COLUMNS), []
        if tests and plan.reduced:
            comparison, test_notes, _ = _likelihood_ratio_tests(
                plan, fit.random_slope, routes, escalate, start=fit.theta
            )
    except (ModelDataError, ModelFitError) as exc:
        return not_estimable(plan, str(exc), clock.perf_counter() - started)
    formula = replace(plan, random_slope=fit.random_slope).formula
    variance = fit.variance_components.assign(group=lambda t: t["group"].replace(GROUP, "patient"))
    diagnostics = {
        "analysis": plan.analysis,
        "outcome": plan.outcome,
        "status": "ok",
        "message": "; ".join(plan.notes),
        "n_obs": fit.n_obs,
        "n_patients": fit.n_groups,
        "random_effects": ("site intercept + " if plan.site else "")
        + ("intercept + slope" if fit.random_slope else "intercept"),
        "converged": fit.converged,
        "optimizer": fit.optimizer,
        "boundary": fit.boundary,
        "fallback": fit.fallback or "",
        "warnings": " | ".join([*fit.warnings, *test_notes]),
        **_residual_checks(fit),
        "fit_seconds": clock.perf_counter() - started,
    }
    tables = {
        "fixed_effects": _labelled(plan, fit.fixed_effects, FIXED_EFFECT_TABLE_COLUMNS),
        "variance_components": _labelled(plan, variance, VARIANCE_COLUMNS),
        "emmeans": (
            _labelled(plan, means, EMMEANS_TABLE_COLUMNS)
            if means is not None
            else _empty(EMMEANS_TABLE_COLUMNS)
        ),
        "contrasts": _labelled(plan, contrasts, CONTRAST_TABLE_COLUMNS),
        "effect_sizes": _labelled(plan, _effect_sizes(plan, contrasts), EFFECT_SIZE_COLUMNS),
        "model_comparison": (
            _labelled(plan, comparison, COMPARISON_COLUMNS)
            if len(comparison)
            else _empty(COMPARISON_COLUMNS)
        ),
        "diagnostics": pd.DataFrame([diagnostics], columns=DIAGNOSTIC_COLUMNS),
        "covariance_structures": _empty(COVARIANCE_STRUCTURE_COLUMNS),
    }
    return AnalysisResult(
        plan.analysis, plan.outcome, formula, fit, tables, plan.rows, plan.identity
    )


# ---------------------------------------------------------------------------------------------
# the MMRM (SAP §4.6)


def fit_plan_mmrm(plan: ModelPlan, structure: str | Sequence[str] | None = None, **options: Any):
    """Fit the MMRM of a plan with ``repeated`` set (REML, the plan's df method by default).

    Parameters
    ----------
    plan : ModelPlan
        A plan from :func:`change_plan`.
    structure : str or sequence of str, optional
        Covariance structure(s) to try (default the plan's order).
    **options
        Passed to :func:`pipeline.lmm.mmrm.fit_mmrm` (``reml``, ``df_method``, ``robust``...).

    Returns
    -------
    MmrmFit
    """
    options.setdefault("df_method", plan.repeated_df)
    return fit_mmrm(
        plan.rows,
        plan.response,
        plan.rhs,
        plan.time,
        GROUP,
        plan.repeated if structure is None else structure,
        **options,
    )


def _mmrm_tests(plan: ModelPlan, fit: MmrmFit) -> tuple[pd.DataFrame, list[str]]:
    """Likelihood-ratio tests between ML fits with the covariance structure of the REML fit."""
    rows, notes = [], []
    try:
        full = fit_plan_mmrm(plan, fit.structure, reml=False, df_method="z")
    except (ModelDataError, ModelFitError) as exc:
        return _empty(COMPARISON_COLUMNS), [f"ML refit for the tests did not converge: {exc}"]
    for test, reduced_rhs in plan.reduced:
        try:
            reduced = fit_mmrm(
                plan.rows,
                plan.response,
                reduced_rhs,
                plan.time,
                GROUP,
                fit.structure,
                reml=False,
                df_method="z",
            )
        except (ModelDataError, ModelFitError) as exc:
            notes.append(f"ML refit for the test of {test} did not converge: {exc}")
            continue
        rows.append(likelihood_ratio_row(test, full, reduced))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS), notes


def mmrm_covariance_table(fit: MmrmFit) -> pd.DataFrame:
    """Give the estimated residual covariance across visits as variance-components rows.

    One row per visit (``term`` ``visit v``: variance and SD) and per pair of visits
    (``visit v × visit w``: covariance in ``variance`` and the correlation); ``group`` is
    ``residual`` (``residual: <level>`` with a separate matrix per group).
    """
    rows = []
    for key, sigma in fit.covariance.items():
        group = "residual" if key is None else f"residual: {key}"
        values = sigma.to_numpy()
        visits = list(sigma.index)
        sd = np.sqrt(np.diag(values))
        for i, v in enumerate(visits):
            rows.append((group, f"visit {v}", values[i, i], sd[i], np.nan))
        for i, j in zip(*np.triu_indices(len(visits), 1), strict=True):
            correlation = values[i, j] / (sd[i] * sd[j])
            rows.append(
                (group, f"visit {visits[i]} × visit {visits[j]}", values[i, j], np.nan, correlation)
            )
    return pd.DataFrame(rows, columns=["group", "term", "variance", "std_dev", "correlation"])


def mmrm_residual_checks(fit: MmrmFit) -> dict[str, float]:
    """Residual checks of an MMRM: residuals ``y - X beta`` scaled by their visit's SD."""
    rows = fit.rows
    data = fit.likelihood.data  # the design of these rows, in their order
    resid = data.y - data.x @ fit.beta
    scale = np.full(len(rows), np.nan)
    for key, sigma in fit.covariance.items():
        sd = pd.Series(np.sqrt(np.diag(sigma.to_numpy())), index=sigma.index)
        by_code = sd.reindex(pd.Index(data.visit_levels, dtype=object)).to_numpy(dtype=float)
        mask = (
            np.ones(len(rows), dtype=bool)
            if key is None
            else (rows[fit.covariance_group] == key).to_numpy()
        )
        scale[mask] = by_code[data.visit_codes[mask]]
    r = resid / scale
    return {
        "residual_sd": float(np.std(resid, ddof=1)),
        "residual_skewness": float(stats.skew(r)),
        "residual_excess_kurtosis": float(stats.kurtosis(r)),
        "residual_share_beyond_3sd": float(np.mean(np.abs(r) > 3.0)),
    }


def structure_steps(trials: pd.DataFrame) -> str:
    """Say which structures failed before the one used (empty when the first converged)."""
    failed = trials.loc[~trials["converged"].astype(bool)]
    if failed.empty:
        return ""
    used = trials.loc[trials["converged"].astype(bool), "structure"]
    steps = "; ".join(
        f"{STRUCTURE_WORDS.get(r.structure, r.structure)} did not converge ({r.message})"
        for r in failed.itertuples()
    )
    if used.empty:
        return steps
    return f"{steps}; fitted with {STRUCTURE_WORDS.get(used.iloc[0], used.iloc[0])}"


def _fit_mmrm_plan(plan: ModelPlan, tests: bool, started: float) -> AnalysisResult:
    """Fit a plan's MMRM (REML, the structures in order) and build its tidy tables."""
    try:
        fit = fit_plan_mmrm(plan)
        contrasts = _contrasts(plan, fit)
        means = _emmeans(plan, fit)
        comparison, test_notes = _empty(COMPARISON_COLUMNS), []
        if tests and plan.reduced:
            comparison, test_notes = _mmrm_tests(plan, fit)
    except (ModelDataError, ModelFitError) as exc:
        return not_estimable(plan, str(exc), clock.perf_counter() - started)
    formula = mmrm_formula(plan.response, plan.rhs, [fit.structure])
    trials = fit.structure_trials.assign(used=lambda t: t["structure"] == fit.structure)
    diagnostics = {
        "analysis": plan.analysis,
        "outcome": plan.outcome,
        "status": "ok",
        "message": "; ".join(plan.notes),
        "n_obs": fit.n_obs,
        "n_patients": fit.n_subjects,
        "random_effects": f"none (residual covariance: {STRUCTURE_WORDS[fit.structure]})",
        "converged": fit.converged,
        "optimizer": "L-BFGS-B + Newton",
        "boundary": False,
        "fallback": structure_steps(fit.structure_trials),
        "warnings": " | ".join([*fit.warnings, *test_notes]),
        **mmrm_residual_checks(fit),
        "fit_seconds": clock.perf_counter() - started,
    }
    tables = {
        "fixed_effects": _labelled(plan, fit.fixed_effects, FIXED_EFFECT_TABLE_COLUMNS),
        "variance_components": _labelled(plan, mmrm_covariance_table(fit), VARIANCE_COLUMNS),
        "emmeans": _labelled(plan, means, EMMEANS_TABLE_COLUMNS),
        "contrasts": _labelled(plan, contrasts, CONTRAST_TABLE_COLUMNS),
        "effect_sizes": _labelled(plan, _effect_sizes(plan, contrasts), EFFECT_SIZE_COLUMNS),
        "model_comparison": (
            _labelled(plan, comparison, COMPARISON_COLUMNS)
            if len(comparison)
            else _empty(COMPARISON_COLUMNS)
        ),
        "diagnostics": pd.DataFrame([diagnostics], columns=DIAGNOSTIC_COLUMNS),
        "covariance_structures": _labelled(plan, trials, COVARIANCE_STRUCTURE_COLUMNS),
    }
    return AnalysisResult(
        plan.analysis, plan.outcome, formula, fit, tables, plan.rows, plan.identity
    )
