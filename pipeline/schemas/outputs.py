"""Contracts of the output tables: one pandera model per table, and their column lists.

Each model declares the columns of one tidy table in their published order, with their type and
allowed values; the column lists used by the stages that build the tables
(:data:`FIXED_EFFECT_TABLE_COLUMNS`, ...) are read from the models, so a column is named in one
place.
:func:`check_output` validates a table against its model; the runner checks every table that has
a model before it is suppressed and written.

Some tables carry typed identity columns in memory that the published CSV files do not hold
(``kind`` and ``within`` of a contrast, ``stage`` and ``detail`` of a flow step, ``summary`` of a
Table 1 row): code matches
on them, readers of ``reports/tables/`` read the labels. :func:`for_publication` drops them
when a table is written.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors
from pandera.typing import Series

from pipeline.schemas.analysis import failures
from pipeline.schemas.columns import INSTRUMENTS
from pipeline.schemas.frameworks import pandas_first
from pipeline.schemas.identity import ContrastKind, Family, FlowStage

pandas_first()  # (before any model below is built; see the module)

OUTCOME_NAMES = tuple(INSTRUMENTS)
# A built-in instrument or a study's declared outcome ([outcomes.NAME]: lower case, digits, _).
OUTCOME_NAME = r"^[a-z][a-z0-9_]*$"


class _Output(pa.DataFrameModel):
    class Config:
        """Validation settings."""

        strict = True
        ordered = True
        coerce = True


class _ByAnalysis(_Output):
    analysis: Series[str] = pa.Field(description="Analysis identifier (schemas.identity).")
    outcome: Series[str] = pa.Field(
        str_matches=OUTCOME_NAME, description="Outcome: a built-in instrument or a declared one."
    )


class FixedEffects(_ByAnalysis):
    """``fixed_effects``: one row per model term."""

    term: Series[str]
    estimate: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    df: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)


class VarianceComponents(_ByAnalysis):
    """``variance_components``: variances, SDs and correlations of the random effects."""

    group: Series[str]
    term: Series[str]
    variance: Series[float] = pa.Field(nullable=True)
    std_dev: Series[float] = pa.Field(nullable=True)
    correlation: Series[float] = pa.Field(nullable=True, ge=-1, le=1)


class Emmeans(_ByAnalysis):
    """``emmeans``: estimated marginal means per group at each visit."""

    factor: Series[str]
    level: Series[str]
    visit: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    time: Series[float] = pa.Field(nullable=True)
    estimate: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    df: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)


class Contrasts(_ByAnalysis):
    """``contrasts``: between-group contrasts; ``kind`` and ``within`` stay in memory."""

    question: Series[str]
    kind: Series[str] = pa.Field(isin=[k.value for k in ContrastKind])
    within: Series[str] = pa.Field(nullable=True)
    contrast: Series[str] = pa.Field(description="Label, for readers only.")
    visit: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    estimate: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    df: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    family: Optional[Series[str]] = pa.Field(  # noqa: UP045
        isin=[f.value for f in Family],
        description="Holm family: primary = the headline estimates of SAP §4 (as in answer).",
    )
    p_holm: Optional[Series[float]] = pa.Field(nullable=True, ge=0, le=1)  # noqa: UP045


class EffectSizes(_ByAnalysis):
    """``effect_sizes``: contrasts of group means divided by the pooled baseline SD."""

    contrast: Series[str]
    estimate: Series[float] = pa.Field(nullable=True)
    standardiser: Series[str]
    sd: Series[float] = pa.Field(nullable=True)
    effect_size: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)


class ModelComparison(_ByAnalysis):
    """``model_comparison``: likelihood-ratio tests between nested ML fits."""

    test: Series[str]
    df: Series[pd.Int64Dtype] = pa.Field(ge=0)
    chisq: Series[float] = pa.Field(ge=0)
    p_value: Series[float] = pa.Field(ge=0, le=1)
    loglik_reduced: Series[float]
    loglik_full: Series[float]


class Diagnostics(_ByAnalysis):
    """``diagnostics``: one row per fitted (or not estimable) analysis."""

    status: Series[str] = pa.Field(isin=["ok", "not estimable"])
    message: Series[str] = pa.Field(nullable=True)
    n_obs: Series[pd.Int64Dtype] = pa.Field(ge=0)
    n_patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    random_effects: Series[str] = pa.Field(nullable=True)
    converged: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    optimizer: Series[str] = pa.Field(nullable=True)
    boundary: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    fallback: Series[str] = pa.Field(nullable=True)
    warnings: Series[str] = pa.Field(nullable=True)
    residual_sd: Series[float] = pa.Field(nullable=True, ge=0)
    residual_skewness: Series[float] = pa.Field(nullable=True)
    residual_excess_kurtosis: Series[float] = pa.Field(nullable=True)
    residual_share_beyond_3sd: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    fit_seconds: Series[float] = pa.Field(ge=0, description="In memory and the run log only.")


class CovarianceStructures(_ByAnalysis):
    """``covariance_structures``: the residual covariance structures an MMRM tried, in order.

    ``criterion`` is -2 REML log-likelihood; AIC, AICc and BIC as SAS PROC MIXED computes them
    (BIC with the number of patients); ``used`` marks the structure of the reported fit.
    """

    structure: Series[str]
    converged: Series[bool]
    criterion: Series[float] = pa.Field(nullable=True)
    n_parameters: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    aic: Series[float] = pa.Field(nullable=True)
    aicc: Series[float] = pa.Field(nullable=True)
    bic: Series[float] = pa.Field(nullable=True)
    message: Series[str] = pa.Field(nullable=True)
    used: Series[bool]


class Responders(_Output):
    """``responders``: MCID responders at the last assessment, by group."""

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    group: Series[str]
    quantity: Series[str]
    level: Series[str]
    reference: Series[str] = pa.Field(nullable=True)
    estimate: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    n: Series[pd.Int64Dtype] = pa.Field(ge=0)
    responders: Series[pd.Int64Dtype] = pa.Field(ge=0)
    method: Series[str]
    note: Series[str] = pa.Field(nullable=True)


class Flow(_Output):
    """``flow``: patients at each step; ``stage`` and ``detail`` stay in memory."""

    step: Series[str] = pa.Field(unique=True)
    label: Series[str] = pa.Field(description="Label, for readers only.")
    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    stage: Series[str] = pa.Field(isin=[s.value for s in FlowStage])
    detail: Series[object] = pa.Field(nullable=True)


STRATEGY_CODES = ("MMRM", "MAR", "J2R", "CR", "CIR", "LMCF", "estimand")
"""Rows of ``sensitivity_missing``: the likelihood MMRM, the five CMI strategies, and the
per-patient strategies of the declared estimand."""

MCID_VERDICTS = (
    "clinically_important",
    "below_mcid",
    "no_detectable_difference",
    "inconclusive",
    "detectable",
    "not_detected",
    "not_estimable",
)
"""Verdict codes against the MCID (SAP §4, headline estimands): the values of
:class:`pipeline.analyses.headline.Verdict`, the one classifier; words in the report."""


class SensitivityMissing(_Output):
    """``sensitivity_missing``: the estimand's difference under each missing-data assumption."""

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    comparison: Series[str]
    contrast: Series[str] = pa.Field(description="Label, for readers only.")
    visit: Series[pd.Int64Dtype] = pa.Field(ge=1)
    strategy: Series[str] = pa.Field(isin=list(STRATEGY_CODES))
    method: Series[str]
    estimate: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    verdict: Series[str] = pa.Field(isin=list(MCID_VERDICTS))
    n_patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    n_imputed: Series[pd.Int64Dtype] = pa.Field(ge=0)


class TippingPoint(_Output):
    """``tipping_point``: the MAR estimate with a delta added to imputed values, over a grid."""

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    comparison: Series[str]
    contrast: Series[str] = pa.Field(description="Label, for readers only.")
    visit: Series[pd.Int64Dtype] = pa.Field(ge=1)
    shifted: Series[str] = pa.Field(isin=["level", "both", "reference"])
    delta: Series[float]
    estimate: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    significant: Series[bool]
    verdict: Series[str] = pa.Field(isin=list(MCID_VERDICTS))


class _ByEndpoint(_Output):
    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    endpoint: Series[str] = pa.Field(isin=["mcid", "halved"])
    group: Series[str]
    level: Series[str]


class SessionsToResponse(_ByEndpoint):
    """``sessions_to_response``: median sessions to first response per group level."""

    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    median: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True, ge=0)
    ci_high: Series[float] = pa.Field(nullable=True, ge=0)
    method: Series[str]
    note: Series[str] = pa.Field(nullable=True)


class SessionsToResponseShares(_ByEndpoint):
    """``sessions_to_response_shares``: share responded within the claimed sessions."""

    within_sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    share: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    ci_low: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    ci_high: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    at_risk_after: Series[pd.Int64Dtype] = pa.Field(ge=0)
    method: Series[str]


class SessionsToResponseHr(_ByEndpoint):
    """``sessions_to_response_hr``: Cox hazard ratio of responding, level vs reference."""

    reference: Series[str]
    adjusted_for: Series[str] = pa.Field(nullable=True)
    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    log_hr: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    hazard_ratio: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True, ge=0)
    ci_high: Series[float] = pa.Field(nullable=True, ge=0)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    method: Series[str]
    note: Series[str] = pa.Field(nullable=True)


class SessionsToResponseCurve(_ByEndpoint):
    """``sessions_to_response_curve``: Kaplan–Meier share not yet responded, by sessions."""

    sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    survival: Series[float] = pa.Field(ge=0, le=1)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    ci_high: Series[float] = pa.Field(nullable=True, ge=0, le=1)


class SideEffectRates(_Output):
    """``side_effect_rates``: events per 100 recorded sessions by type and severity."""

    group: Series[str] = pa.Field(isin=["depth", "twitch"])
    level: Series[str]
    ae_type: Series[str]
    ae_severity: Series[str]
    sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    rate_per_100: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True, ge=0)
    ci_high: Series[float] = pa.Field(nullable=True, ge=0)
    method: Series[str]


class SideEffectRateRatios(_Output):
    """``side_effect_rate_ratios``: rate ratio per event type, level vs reference."""

    group: Series[str] = pa.Field(isin=["depth", "twitch"])
    level: Series[str]
    reference: Series[str]
    ae_type: Series[str]
    events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    ref_events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    ref_sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    rate_ratio: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True, ge=0)
    ci_high: Series[float] = pa.Field(nullable=True, ge=0)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    method: Series[str]
    note: Series[str] = pa.Field(nullable=True)


class SideEffectDurations(_Output):
    """``side_effect_durations``: how long events lasted, per type, where recorded."""

    ae_type: Series[str]
    events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    with_duration: Series[pd.Int64Dtype] = pa.Field(ge=0)
    median_hours: Series[float] = pa.Field(ge=0)
    ci_low: Series[float] = pa.Field(ge=0)
    ci_high: Series[float] = pa.Field(ge=0)
    q1_hours: Series[float] = pa.Field(ge=0)
    q3_hours: Series[float] = pa.Field(ge=0)
    share_beyond: Series[float] = pa.Field(ge=0, le=1)
    beyond_hours: Series[float] = pa.Field(ge=0)


class SeriousEvents(_Output):
    """``serious_events``: serious or severe events counted by kind, never by patient."""

    ae_type: Series[str]
    ae_severity: Series[str]
    serious: Series[str]
    depth: Series[str]
    events: Series[pd.Int64Dtype] = pa.Field(ge=0)


class SafetySignals(_Output):
    """``safety_signals``: needled patients with a contraindication or caution flag."""

    flag: Series[str]
    not_a_candidate: Series[pd.BooleanDtype]
    depth: Series[str]
    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    recorded_sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    rate_per_100: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True, ge=0)
    ci_high: Series[float] = pa.Field(nullable=True, ge=0)
    method: Series[str]


class SafetySignalRateRatios(_Output):
    """``safety_signal_rate_ratios``: adverse-event rate of flagged vs unflagged patients."""

    flag: Series[str]
    events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    ref_events: Series[pd.Int64Dtype] = pa.Field(ge=0)
    ref_sessions: Series[pd.Int64Dtype] = pa.Field(ge=0)
    rate_ratio: Series[float] = pa.Field(nullable=True, ge=0)
    ci_low: Series[float] = pa.Field(nullable=True, ge=0)
    ci_high: Series[float] = pa.Field(nullable=True, ge=0)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    method: Series[str]
    note: Series[str] = pa.Field(nullable=True)


class DoseResponse(_Output):
    """``dose_response``: improvement from one session count to the next, with its CI."""

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    sessions: Series[pd.Int64Dtype] = pa.Field(ge=1)
    previous: Series[pd.Int64Dtype] = pa.Field(ge=0)
    top: Series[bool]
    assessments: Series[pd.Int64Dtype] = pa.Field(ge=0)
    gain: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    df: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    flat_from: Series[bool]
    method: Series[str]


class Durability(_Output):
    """``durability``: change from the end of treatment, and responders still responding."""

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    group: Series[str]
    level: Series[str]
    follow_up: Series[pd.Int64Dtype] = pa.Field(ge=1)
    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    weeks_after: Series[float] = pa.Field(nullable=True)
    change: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    eot_responders: Series[pd.Int64Dtype] = pa.Field(ge=0)
    still_responding: Series[pd.Int64Dtype] = pa.Field(ge=0)
    share: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    share_low: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    share_high: Series[float] = pa.Field(nullable=True, ge=0, le=1)


class ImmediateRelief(_Output):
    """``immediate_relief``: the change within a session (pre minus post), by depth and twitch.

    ``estimate`` is an improvement (positive: better after the session than before), a level's
    mean relief (``kind = mean``) or a level minus its reference (``kind = difference``).
    """

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    comparison: Series[str] = pa.Field(isin=["all", "depth", "twitch"])
    kind: Series[str] = pa.Field(isin=["mean", "difference"])
    level: Series[str]
    reference: Series[str]
    pairs: Series[pd.Int64Dtype] = pa.Field(ge=0)
    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    estimate: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    df: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    method: Series[str]


class ImmediateReliefNextVisit(_Output):
    """``immediate_relief_next_visit``: the next visit's improvement per unit of session relief."""

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    pairs: Series[pd.Int64Dtype] = pa.Field(ge=0)
    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    slope: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    df: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    correlation: Series[float] = pa.Field(nullable=True, ge=-1, le=1)
    method: Series[str]


class CombinedCare(_Output):
    """``combined_care``: comparisons adjusted for, and within, co-intervention groups.

    ``estimate`` is ``level`` minus ``reference`` turned into an improvement (positive: more
    improvement with ``level``).
    """

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    comparison: Series[str]
    model: Series[str] = pa.Field(isin=["covariate", "modifier"])
    effect: Series[str] = pa.Field(isin=["comparison", "co_intervention"])
    level: Series[str]
    reference: Series[str]
    co_intervention: Series[str]
    patients: Series[pd.Int64Dtype] = pa.Field(ge=0)
    estimate: Series[float] = pa.Field(nullable=True)
    std_err: Series[float] = pa.Field(nullable=True, ge=0)
    df: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)


class CombinedCareTests(_Output):
    """``combined_care_tests``: likelihood-ratio test of each comparison × co-intervention."""

    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    comparison: Series[str]
    groups: Series[pd.Int64Dtype] = pa.Field(ge=2)
    test: Series[str]
    df: Series[pd.Int64Dtype] = pa.Field(ge=1)
    chisq: Series[float] = pa.Field(nullable=True, ge=0)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    loglik_reduced: Series[float] = pa.Field(nullable=True)
    loglik_full: Series[float] = pa.Field(nullable=True)


class Answer(_Output):
    """``answer``: the headline estimate of each comparison × outcome, its verdict (SAP §4).

    ``improvement``, ``ci_low`` and ``ci_high`` are ``level`` minus ``reference`` turned so that
    a positive number is more improvement with ``level`` (:mod:`pipeline.analyses.headline`).
    """

    question: Series[str] = pa.Field(description="The comparison (declared name).")
    level: Series[str]
    reference: Series[str]
    outcome: Series[str] = pa.Field(str_matches=OUTCOME_NAME)
    role: Series[str] = pa.Field(isin=["headline", "supporting", "unadjusted"])
    estimand: Series[str] = pa.Field(
        isin=["visit_difference", "total_effect", "direct_effect", "within_patient"]
    )
    analysis: Series[str]
    visit: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    horizon: Series[float] = pa.Field(nullable=True, description="Model time at the visit.")
    improvement: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    family: Series[str] = pa.Field(
        isin=[f.value for f in Family],
        description="Holm family: primary = the headline estimates of SAP §4 (as in contrasts).",
    )
    p_holm: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    mcid: Series[float] = pa.Field(nullable=True, description="MCID in the outcome's units.")
    verdict: Series[str] = pa.Field(nullable=True, isin=list(MCID_VERDICTS))


MODELS: dict[str, type[_Output]] = {
    "fixed_effects": FixedEffects,
    "variance_components": VarianceComponents,
    "emmeans": Emmeans,
    "contrasts": Contrasts,
    "effect_sizes": EffectSizes,
    "model_comparison": ModelComparison,
    "diagnostics": Diagnostics,
    "covariance_structures": CovarianceStructures,
    "responders": Responders,
    "flow": Flow,
    "sensitivity_missing": SensitivityMissing,
    "tipping_point": TippingPoint,
    "sessions_to_response": SessionsToResponse,
    "sessions_to_response_shares": SessionsToResponseShares,
    "sessions_to_response_hr": SessionsToResponseHr,
    "sessions_to_response_curve": SessionsToResponseCurve,
    "side_effect_rates": SideEffectRates,
    "side_effect_rate_ratios": SideEffectRateRatios,
    "side_effect_durations": SideEffectDurations,
    "serious_events": SeriousEvents,
    "dose_response": DoseResponse,
    "durability": Durability,
    "safety_signals": SafetySignals,
    "safety_signal_rate_ratios": SafetySignalRateRatios,
    "immediate_relief": ImmediateRelief,
    "immediate_relief_next_visit": ImmediateReliefNextVisit,
    "combined_care": CombinedCare,
    "combined_care_tests": CombinedCareTests,
    "answer": Answer,
}
"""The output tables with a contract, by name (file stem in ``reports/tables``)."""

UNPUBLISHED = {
    "contrasts": ("kind", "within"),
    "diagnostics": ("fit_seconds",),  # varies by machine: <processed>/run_log.csv keeps it
    "flow": ("stage", "detail"),
    "table_one": ("summary",),
    "sensitivity_missing": ("n_patients", "n_imputed"),  # counts: shown only where not small
}
"""Columns kept in memory only, by table (typed identities, machine-dependent timings)."""


def columns(model: type[pa.DataFrameModel]) -> list[str]:
    """Return the columns of a model in their declared order."""
    return list(model.to_schema().columns)


FIXED_EFFECT_TABLE_COLUMNS = columns(FixedEffects)
"""The engine's fixed effects (:data:`pipeline.lmm.fit.FIXED_EFFECT_COLUMNS`, without the test
statistic), labelled with the analysis and outcome."""
VARIANCE_COLUMNS = columns(VarianceComponents)
EMMEANS_TABLE_COLUMNS = columns(Emmeans)
CONTRAST_TABLE_COLUMNS = [c for c in columns(Contrasts) if c not in ("family", "p_holm")]
"""Columns of the contrasts of one analysis (the family and Holm p are added across them)."""
EFFECT_SIZE_COLUMNS = columns(EffectSizes)
COMPARISON_COLUMNS = columns(ModelComparison)
DIAGNOSTIC_COLUMNS = columns(Diagnostics)
COVARIANCE_STRUCTURE_COLUMNS = columns(CovarianceStructures)
RESPONDER_COLUMNS = columns(Responders)
FLOW_COLUMNS = columns(Flow)
SENSITIVITY_MISSING_COLUMNS = columns(SensitivityMissing)
TIPPING_POINT_COLUMNS = columns(TippingPoint)
ANSWER_TABLE_COLUMNS = columns(Answer)


class OutputContractError(ValueError):
    """An output table does not meet its contract (a bug in the pipeline, not in the data)."""


def check_output(name: str, frame: pd.DataFrame) -> None:
    """Validate a table against its contract (tables without a model pass unchecked).

    Parameters
    ----------
    name : str
        Table name (:data:`MODELS`).
    frame : pandas.DataFrame
        The table as the pipeline built it (before small-cell suppression).

    Raises
    ------
    OutputContractError
        Naming the table and the first columns that break the contract.
    """
    model = MODELS.get(name)
    if model is None:
        return
    try:
        model.validate(frame, lazy=True)
    except (SchemaError, SchemaErrors) as exc:
        raise OutputContractError(f"table {name!r} breaks its contract: {failures(exc)}") from exc


def for_publication(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Return the table as written to ``reports/tables/<name>.csv`` (typed columns dropped).

    Parameters
    ----------
    name : str
        Table name (file stem).
    frame : pandas.DataFrame
        The table as the pipeline holds it.

    Returns
    -------
    pandas.DataFrame
        ``frame`` without its in-memory-only columns (:data:`UNPUBLISHED`).
    """
    return frame.drop(columns=list(UNPUBLISHED.get(name, ())), errors="ignore")
