"""Assumptions for the next study estimated from the current one (``outcomes plan --from-study``).

The study is read, validated and derived as the pipeline always does
(:func:`pipeline.api.load_study`); the trajectory model the report fits
(:func:`pipeline.analyses.plans.trajectory_plan`, with the configuration's covariates and site
handling) gives the variance components, and the patients' last assessments give the dropout
pattern of each group. Their uncertainty is stated:

* variance components: standard errors by the delta method from ``A = 2 H^{-1}``, the
  asymptotic covariance of lme4's ``(theta, sigma)`` at the REML optimum (the matrix lmerTest
  uses for Satterthwaite's df); 95 % Wald intervals on the log scale for the SDs and on
  Fisher's z scale for the correlation;
* retention at the last visit: Wilson 95 % interval of the share of each group's patients
  assessed at (or after) it.

Dropout is read as monotone: a patient counts as retained up to their last assessment
(intermittently missed visits are not dropout).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.analyses.plans import GROUP, fit_plan, trajectory_plan
from pipeline.config.planning import PlanningSettings
from pipeline.config.settings import Config
from pipeline.errors import UserError
from pipeline.lmm.deviance import lambda_from_theta
from pipeline.lmm.fit import LmmFit
from pipeline.planning.design import Assumptions, Design, resolve_design, resolve_effect
from pipeline.schemas.identity import ContrastKind

__all__ = [
    "DROPOUT_COLUMNS",
    "UNCERTAINTY_COLUMNS",
    "assumptions_from_study",
    "observed_dropout",
    "variance_uncertainty",
]

UNCERTAINTY_COLUMNS = ["parameter", "estimate", "std_err", "ci_low", "ci_high", "method"]
DROPOUT_COLUMNS = [
    "group",
    "visit",
    "week",
    "patients",
    "retained",
    "retention",
    "hazard",
    "retention_ci_low",
    "retention_ci_high",
]
_Z = float(stats.norm.ppf(0.975))


def _components(varpar: np.ndarray, q: int) -> np.ndarray:
    """``(sd_intercept, sd_slope, correlation, sigma)`` from ``(theta_patient, ..., sigma)``."""
    sigma = varpar[-1]
    n_theta = q * (q + 1) // 2
    lam = lambda_from_theta(varpar[:n_theta], q)
    cov = sigma**2 * (lam @ lam.T)
    sd0 = np.sqrt(cov[0, 0])
    if q == 1:
        return np.array([sd0, sigma])
    sd1 = np.sqrt(cov[1, 1])
    corr = cov[0, 1] / (sd0 * sd1) if sd0 * sd1 > 0 else 0.0
    return np.array([sd0, sd1, corr, sigma])


def variance_uncertainty(fit: LmmFit) -> pd.DataFrame:
    """Return standard errors and 95 % intervals of the variance components of a REML fit.

    Parameters
    ----------
    fit : LmmFit
        A fit with Satterthwaite pieces (``varpar_vcov`` set).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`UNCERTAINTY_COLUMNS`, one row per ``sd_intercept``, ``sd_slope``,
        ``correlation`` (random-slope fits only) and ``sd_residual``.
    """
    q = 2 if fit.random_slope else 1
    varpar = np.r_[fit.theta, fit.sigma]
    names = ["sd_intercept", "sd_slope", "correlation", "sd_residual"] if q == 2 else None
    names = names or ["sd_intercept", "sd_residual"]
    estimate = _components(varpar, q)
    jac = np.empty((estimate.size, varpar.size))
    for k in range(varpar.size):
        h = 1e-6 * max(1.0, abs(varpar[k]))
        step = np.zeros_like(varpar)
        step[k] = h
        jac[:, k] = (_components(varpar + step, q) - _components(varpar - step, q)) / (2 * h)
    cov = jac @ fit.varpar_vcov @ jac.T if fit.varpar_vcov is not None else None
    rows = []
    for j, name in enumerate(names):
        est = float(estimate[j])
        se = float(np.sqrt(max(cov[j, j], 0.0))) if cov is not None else np.nan
        if name == "correlation":
            r = float(np.clip(est, -0.999999, 0.999999))
            half = _Z * se / (1.0 - r**2)
            low, high = np.tanh(np.arctanh(r) - half), np.tanh(np.arctanh(r) + half)
            method = "delta method, Wald interval on Fisher's z scale"
        elif est > 0:
            half = _Z * se / est
            low, high = est * np.exp(-half), est * np.exp(half)
            method = "delta method, Wald interval on the log scale"
        else:
            low = high = np.nan
            method = "at the boundary (0): no interval"
        rows.append((name, est, se, float(low), float(high), method))
    return pd.DataFrame(rows, columns=UNCERTAINTY_COLUMNS)


def _wilson(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return np.nan, np.nan
    p = successes / n
    centre = (p + _Z**2 / (2 * n)) / (1 + _Z**2 / n)
    half = _Z * np.sqrt(p * (1 - p) / n + _Z**2 / (4 * n**2)) / (1 + _Z**2 / n)
    return float(centre - half), float(centre + half)


def observed_dropout(
    data: pd.DataFrame, factor: str, levels: tuple[str, str], visits: list[int], weeks: list
) -> pd.DataFrame:
    """Retention and dropout per visit in each group, as seen in the study.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set (one row per assessment; ``visit`` numbers).
    factor : str
        Group column.
    levels : tuple of str
        Reference and compared level.
    visits : list of int
        Scheduled visit numbers, baseline first.
    weeks : list of float
        Nominal week of each visit.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DROPOUT_COLUMNS`: ``retention`` is the share of the group's patients
        assessed at this visit or a later one; ``hazard`` the share of those retained at the
        previous visit who are not.
    """
    last = data.groupby(GROUP, observed=True)["visit"].max()
    group = data.drop_duplicates(GROUP).set_index(GROUP)[factor].astype("string")
    rows = []
    for level in levels:
        lasts = last[group.reindex(last.index) == level]
        n = len(lasts)
        previous = n
        for visit, week in zip(visits, weeks, strict=True):
            kept = int((lasts >= visit).sum())
            low, high = _wilson(kept, n)
            rows.append(
                (
                    level,
                    visit,
                    week,
                    n,
                    kept,
                    kept / n if n else np.nan,
                    1.0 - kept / previous if previous else 1.0,  # nobody left to lose
                    low,
                    high,
                )
            )
            previous = kept
    return pd.DataFrame(rows, columns=DROPOUT_COLUMNS)


def _sentence_sd(row: pd.Series, what: str, unit: str) -> str:
    if np.isnan(row["ci_low"]):
        return f"{what} {row['estimate']:.3g} {unit} (at the boundary; no interval)"
    return (
        f"{what} {row['estimate']:.3g} {unit} (SE {row['std_err']:.2g}; 95 % CI "
        f"{row['ci_low']:.3g} to {row['ci_high']:.3g})"
    )


def assumptions_from_study(
    study_data: pd.DataFrame, config: Config, settings: PlanningSettings
) -> tuple[Design, Assumptions, pd.DataFrame]:
    """Estimate the variance components and the dropout of the next study from this one.

    Parameters
    ----------
    study_data : pandas.DataFrame
        The analysis data set of the current study (``api.load_study(...).data``).
    config : Config
        Its configuration (model settings, MCID).
    settings : PlanningSettings
        The ``[planning]`` section (design, the effect; a typed schedule overrides the study's).

    Returns
    -------
    tuple
        ``(Design, Assumptions, dropout)`` with the observed dropout table
        (:data:`DROPOUT_COLUMNS`).

    Raises
    ------
    UserError
        When the study has no such comparison or levels, the model is not on the weeks axis, or
        the trajectory model cannot be fitted.
    """
    path = str(config.source)
    factor = settings.comparison
    if factor not in study_data.columns:
        raise UserError(
            f"{path}: [planning.comparison] = '{factor}' is not a column of the study's analysis "
            "data set, so --from-study cannot estimate its assumptions; type them in instead"
        )
    present = set(study_data[factor].dropna().astype(str))
    missing = [lv for lv in settings.levels if lv not in present]
    if missing:
        raise UserError(
            f"{path}: [planning.levels] '{missing[0]}' is not a level of {factor} in the study "
            f"(levels: {', '.join(sorted(present))})"
        )
    if config.model.time_axis != "weeks":
        raise UserError(
            f'{path}: [model] time_axis must be "weeks" for --from-study: the plan\'s slopes '
            "are per week"
        )
    plan = trajectory_plan(study_data, settings.outcome, factor, config.model)
    result = fit_plan(plan, "satterthwaite", tests=False)
    fit = result.fit
    if fit is None:
        message = result.diagnostics["message"].iloc[0]
        raise UserError(f"the trajectory model cannot be fitted to the study: {message}")

    visits = sorted(int(v) for v in study_data["visit"].dropna().unique())
    nominal = study_data.groupby("visit")["weeks"].median()
    study_weeks = [round(float(nominal[v]), 1) for v in visits]
    weeks = settings.weeks or tuple(study_weeks)
    design = resolve_design(settings, config.mcid[settings.outcome], weeks, path)
    effect, multiple = resolve_effect(settings.assumptions, design, path)

    uncertainty = variance_uncertainty(fit)
    values = dict(zip(uncertainty["parameter"], uncertainty["estimate"], strict=True))
    dropout = observed_dropout(study_data, factor, settings.levels, visits, study_weeks)
    notes = [
        f"Variance components from the trajectory model of the current study ({fit.n_groups} "
        f"patients, {fit.n_obs} assessments; {result.formula}, REML)."
    ]
    if fit.fallback:
        notes.append(fit.fallback + " The next study is planned with no slope variance.")
    hazards = {}
    for role, level in (("reference", settings.levels[0]), ("compared", settings.levels[1])):
        part = dropout.loc[dropout["group"] == level]
        if len(design.weeks) == len(visits):
            hazards[role] = tuple(float(h) for h in part["hazard"].iloc[1:])
        else:
            final = float(part["retention"].iloc[-1])
            per_visit = 1.0 - final ** (1.0 / (len(design.weeks) - 1))
            hazards[role] = (per_visit,) * (len(design.weeks) - 1)
    if len(design.weeks) != len(visits):
        notes.append(
            f"The planned schedule has {len(design.weeks)} visits and the study {len(visits)}: "
            "each group's retention at the study's last visit is spread as one dropout "
            "probability per planned visit."
        )
    assumptions = Assumptions(
        effect=effect,
        sd_intercept=float(values["sd_intercept"]),
        sd_slope=float(values.get("sd_slope", 0.0)),
        correlation=float(values.get("correlation", 0.0)),
        sd_residual=float(values["sd_residual"]),
        hazards_reference=hazards["reference"],
        hazards_compared=hazards["compared"],
        source="study",
        effect_mcid=None if np.isnan(multiple) else multiple,
        uncertainty=uncertainty,
        notes=(*notes, *_uncertainty_sentences(uncertainty, dropout, design, fit, result)),
    )
    return design, assumptions, dropout


def _uncertainty_sentences(
    uncertainty: pd.DataFrame, dropout: pd.DataFrame, design: Design, fit: LmmFit, result
) -> list[str]:
    rows = uncertainty.set_index("parameter")
    unit = design.unit
    parts = [_sentence_sd(rows.loc["sd_intercept"], "between-patient SD of the intercept", unit)]
    if "sd_slope" in rows.index:
        parts.append(
            _sentence_sd(rows.loc["sd_slope"], "SD of the slope", f"{unit} per week")
            + f", correlation {rows.loc['correlation', 'estimate']:.2f} (95 % CI "
            f"{rows.loc['correlation', 'ci_low']:.2f} to {rows.loc['correlation', 'ci_high']:.2f})"
        )
    parts.append(_sentence_sd(rows.loc["sd_residual"], "residual SD", unit))
    sentences = [
        "Estimated from the study: "
        + "; ".join(parts)
        + ". Standard errors by the delta method from the REML information matrix; intervals "
        "are Wald intervals on the log (SD) and Fisher's z (correlation) scales."
    ]
    last = dropout.groupby("group", sort=False).tail(1)
    retained = "; ".join(
        f"{r.group}: {r.retention:.0%} of {r.patients} patients assessed at visit {r.visit} "
        f"(week {r.week:g}; 95 % CI {r.retention_ci_low:.0%} to {r.retention_ci_high:.0%})"
        for r in last.itertuples()
    )
    sentences.append(
        f"Retention at the study's last visit, by group — {retained} (Wilson intervals)."
    )
    kinds = result.contrasts["kind"].astype(str)
    slope_rows = result.contrasts.loc[kinds == ContrastKind.SLOPE.value]
    if len(slope_rows):
        s = slope_rows.iloc[0]
        sentences.append(
            f"For context, the study's own slope difference ({s['contrast']}) was "
            f"{s['estimate']:.3f} {unit} per week (95 % CI {s['ci_low']:.3f} to "
            f"{s['ci_high']:.3f}); the plan uses the effect set in the configuration, not this "
            "estimate."
        )
    return sentences
