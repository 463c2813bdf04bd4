"""The headline estimands of SAP §4 and their verdicts against the MCID: the report's answer.

One row per comparison and outcome answers the question (``role = headline``); supporting and
unadjusted estimates of the same question are rows beside it, never the answer:

* **randomised arm** (a trial): the baseline-adjusted difference at the primary visit of the
  visit-level model (MMRM, ``change_<name>``);
* **depth**, or any observational grouping: the covariate-adjusted total effect, the
  trajectory model's difference in slope accumulated to the primary visit (slope difference ×
  the model's time at that visit); the joint model's slope difference, adjusted for twitch, is
  the direct effect (supporting);
* **twitch**: the within-patient coefficient of the session-level model (twitch in every earlier
  session vs none, the patient's own mean held fixed), supported by the joint model adjusted for
  depth; the trajectory model's twitch comparison is shown as ``unadjusted`` (depth confounds
  it).

One sign convention for every outcome: ``improvement`` is the level minus the reference turned
so that a positive number means more improvement with the level, whichever way the instrument's
scale runs (:attr:`pipeline.config.study.Outcome.improvement_sign`). Each headline is
classified against the outcome's MCID in points by :func:`classify`.

**One multiplicity family.** The Holm primary family of SAP §4 is the headline estimates, one
per comparison × outcome. :func:`holm_family` chooses those rows of the contrasts table (by
their typed fields) and :func:`adjust` is the one place Holm's method is applied to them: the
contrasts table (``family``, ``p_holm``, :func:`pipeline.analyses.run.combine`) and the answer
table (which copies both from the contrast row it reads) carry the same adjusted p for the
same estimate.

Everything here is a pure function of the run's tidy tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from pipeline.config.study import Comparison, Outcome, Study
from pipeline.lmm.marginal import holm
from pipeline.schemas.identity import AnalysisId, AnalysisKind, ContrastKind, Family


class Verdict(StrEnum):
    """Where a headline estimate lies against zero and the MCID (SAP §4, headline estimands)."""

    IMPORTANT = "clinically_important"
    """The 95 % CI excludes zero and the estimate reaches the MCID."""
    BELOW_MCID = "below_mcid"
    """The 95 % CI excludes zero; the estimate is smaller than the MCID."""
    NO_DIFFERENCE = "no_detectable_difference"
    """The 95 % CI includes zero and lies within ± MCID."""
    INCONCLUSIVE = "inconclusive"
    """The 95 % CI includes zero and reaches the MCID on at least one side."""
    DETECTABLE = "detectable"
    """No MCID in points: the 95 % CI excludes zero."""
    NOT_DETECTED = "not_detected"
    """No MCID in points: the 95 % CI includes zero."""
    NOT_ESTIMABLE = "not_estimable"
    """The estimate or its interval is missing."""


class Role(StrEnum):
    """What a row of the answer table is to its question."""

    HEADLINE = "headline"
    SUPPORTING = "supporting"
    UNADJUSTED = "unadjusted"


class Estimand(StrEnum):
    """What a row of the answer table estimates."""

    VISIT_DIFFERENCE = "visit_difference"
    """Baseline-adjusted difference between the groups at the primary visit (MMRM)."""
    TOTAL_EFFECT = "total_effect"
    """Difference in slope accumulated to the primary visit (trajectory model)."""
    DIRECT_EFFECT = "direct_effect"
    """The same in the joint model, adjusted for the other grouping."""
    WITHIN_PATIENT = "within_patient"
    """Twitch in every earlier session vs none, within patients (session-level model)."""


ANSWER_COLUMNS = [
    "question",
    "level",
    "reference",
    "outcome",
    "role",
    "estimand",
    "analysis",
    "visit",
    "horizon",
    "improvement",
    "ci_low",
    "ci_high",
    "p_value",
    "family",
    "p_holm",
    "mcid",
    "verdict",
]


def classify(improvement: float, low: float, high: float, mcid: float | None) -> Verdict:
    """Classify one estimate against zero and the MCID (SAP §4).

    Parameters
    ----------
    improvement : float
        The estimate (either sign convention: the rule is symmetric).
    low, high : float
        Its 95 % confidence interval.
    mcid : float or None
        Minimal clinically important difference in the outcome's units; None or NaN when the
        outcome declares it only as a percentage of baseline.

    Returns
    -------
    Verdict
        ``IMPORTANT`` when the interval excludes zero and ``|improvement| >= mcid``;
        ``BELOW_MCID`` when it excludes zero and the estimate is smaller; ``NO_DIFFERENCE``
        when it includes zero and lies strictly within ``(-mcid, mcid)``; ``INCONCLUSIVE``
        when it includes zero and reaches ``±mcid``. Without an MCID, ``DETECTABLE`` or
        ``NOT_DETECTED``.
    """
    if any(v is None or math.isnan(v) for v in (improvement, low, high)):
        return Verdict.NOT_ESTIMABLE
    excludes_zero = low > 0 or high < 0
    if mcid is None or math.isnan(mcid):
        return Verdict.DETECTABLE if excludes_zero else Verdict.NOT_DETECTED
    if excludes_zero:
        return Verdict.IMPORTANT if abs(improvement) >= mcid else Verdict.BELOW_MCID
    if -mcid < low and high < mcid:
        return Verdict.NO_DIFFERENCE
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class _Estimate:
    """One estimate on the level − reference scale, before it is turned to improvement."""

    question: str
    level: str
    reference: str
    outcome: str
    role: Role
    estimand: Estimand
    analysis: str
    visit: int | None
    horizon: float
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    family: str
    p_holm: float


def _family(row: Mapping) -> tuple[str, float]:
    """Return the contrast row's multiplicity family and Holm p (set by :func:`adjust`)."""
    return str(row["family"]), float(row["p_holm"])


def _mask(contrasts: pd.DataFrame, comparison: Comparison, visit: int | None) -> pd.Series:
    """Return the contrast rows that are the headline estimates of one comparison (SAP §4)."""
    unsplit = contrasts["within"].isna()  # a subgroup's estimate ("within" a level) never is
    kind = contrasts["kind"].astype(str)
    analysis = contrasts["analysis"]
    own = unsplit & (contrasts["question"] == comparison.name)
    if comparison.randomised:
        change = AnalysisId(AnalysisKind.CHANGE, comparison.name).name
        at = pd.to_numeric(contrasts["visit"], errors="coerce") == visit
        return own & (analysis == change) & (kind == ContrastKind.VISIT) & at
    if comparison.kind == "twitch":
        session = AnalysisId(AnalysisKind.SESSION, "twitch").name
        within = unsplit & (analysis == session) & (kind == ContrastKind.WITHIN)
        joint = own & (analysis == AnalysisId(AnalysisKind.JOINT).name)
        joint &= kind == ContrastKind.SLOPE
        # without a session-level fit of an outcome (too few sessions), the joint model
        # adjusted for depth answers for that outcome
        fitted = within.groupby(contrasts["outcome"]).transform("any")
        return within | (joint & ~fitted)
    trajectory = AnalysisId(AnalysisKind.TRAJECTORY, comparison.name).name
    return own & (analysis == trajectory) & (kind == ContrastKind.SLOPE)


def holm_family(
    contrasts: pd.DataFrame, comparisons: Sequence[Comparison], visit: int | None
) -> np.ndarray:
    """Choose the Holm primary family of SAP §4: the headline estimates' contrast rows.

    Parameters
    ----------
    contrasts : pandas.DataFrame
        The run's contrasts with their in-memory typed ``kind`` and ``within``.
    comparisons : sequence of Comparison
        The declared comparisons.
    visit : int or None
        The primary visit (:func:`pipeline.analyses.run.primary_visit`).

    Returns
    -------
    numpy.ndarray of bool
        True for one row per comparison × outcome: a randomised arm's difference at the
        primary visit in its visit-level model; twitch's within-patient coefficient in the
        session-level model (the joint model's slope difference for an outcome without one);
        any other grouping's slope difference in its trajectory model.
    """
    chosen = pd.Series(False, index=contrasts.index)
    for comparison in comparisons:
        chosen |= _mask(contrasts, comparison, visit)
    return chosen.to_numpy(dtype=bool)


def adjust(
    contrasts: pd.DataFrame, comparisons: Sequence[Comparison], visit: int | None
) -> pd.DataFrame:
    """Mark the Holm family and adjust its p-values: the one multiplicity adjustment of a run.

    Parameters
    ----------
    contrasts : pandas.DataFrame
        As for :func:`holm_family`.
    comparisons : sequence of Comparison
        The declared comparisons.
    visit : int or None
        The primary visit.

    Returns
    -------
    pandas.DataFrame
        A copy with ``family`` (:class:`~pipeline.schemas.identity.Family`: ``primary`` for
        the headline estimates of :func:`holm_family`, else ``secondary``) and ``p_holm``
        (R's ``p.adjust(p, "holm")`` across the primary rows; NaN for the others).
    """
    out = contrasts.copy()
    primary = holm_family(out, comparisons, visit)
    out["family"] = np.where(primary, Family.PRIMARY.value, Family.SECONDARY.value)
    out["p_holm"] = np.nan
    out.loc[primary, "p_holm"] = holm(out.loc[primary, "p_value"].to_numpy(dtype=float))
    return out


def _levels(
    tables: Mapping[str, pd.DataFrame], analysis: str, outcome: str, comparison: Comparison
) -> list[str]:
    """Return the comparison's levels in model order, reference first."""
    if comparison.levels:
        return [comparison.reference, *[v for v in comparison.levels if v != comparison.reference]]
    emmeans = tables.get("emmeans")
    found: list[str] = []
    if emmeans is not None and not emmeans.empty:
        rows = emmeans[(emmeans["analysis"] == analysis) & (emmeans["outcome"] == outcome)]
        found = [str(v) for v in pd.unique(rows["level"])]
    return [comparison.reference, *sorted(v for v in found if v != comparison.reference)]


def _horizon(
    tables: Mapping[str, pd.DataFrame], analysis: str, outcome: str, visit: int | None
) -> float:
    """Return the model's time at the primary visit (whole units), from its marginal means."""
    emmeans = tables.get("emmeans")
    if emmeans is None or emmeans.empty or visit is None:
        return math.nan
    rows = emmeans[
        (emmeans["analysis"] == analysis)
        & (emmeans["outcome"] == outcome)
        & (pd.to_numeric(emmeans["visit"], errors="coerce") == visit)
    ]
    time = pd.to_numeric(rows["time"], errors="coerce").mean()
    return float(round(time)) if not math.isnan(time) and time > 0 else math.nan


def _slopes(
    contrasts: pd.DataFrame,
    analysis: str,
    outcome: str,
    question: str,
) -> list[dict]:
    """Return the slope differences of one analysis and question, in model order of levels."""
    rows = contrasts[
        (contrasts["analysis"] == analysis)
        & (contrasts["outcome"] == outcome)
        & (contrasts["question"] == question)
        & (contrasts["kind"] == ContrastKind.SLOPE)
        & contrasts["within"].isna()
    ]
    return rows.to_dict(orient="records")


def _accumulated(
    contrasts: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    analysis: str,
    comparison: Comparison,
    outcome: str,
    visit: int | None,
    role: Role,
    estimand: Estimand,
    horizon_from: str,
) -> list[_Estimate]:
    """Return slope differences × the time at the primary visit, one per level."""
    horizon = _horizon(tables, horizon_from, outcome, visit)
    if math.isnan(horizon):
        return []
    reference, *others = _levels(tables, horizon_from, outcome, comparison)
    found = []
    for level, r in zip(
        others, _slopes(contrasts, analysis, outcome, comparison.name), strict=False
    ):
        found.append(
            _Estimate(
                comparison.name,
                level,
                reference,
                outcome,
                role,
                estimand,
                analysis,
                visit,
                horizon,
                float(r["estimate"]) * horizon,
                float(r["ci_low"]) * horizon,
                float(r["ci_high"]) * horizon,
                float(r["p_value"]),
                *_family(r),
            )
        )
    return found


def _at_visit(
    contrasts: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    comparison: Comparison,
    outcome: str,
    visit: int | None,
) -> list[_Estimate]:
    """Return the randomised headline: the visit-level model's differences at the visit."""
    analysis = AnalysisId(AnalysisKind.CHANGE, comparison.name).name
    rows = contrasts[
        (contrasts["analysis"] == analysis)
        & (contrasts["outcome"] == outcome)
        & (contrasts["question"] == comparison.name)
        & (contrasts["kind"] == ContrastKind.VISIT)
        & (pd.to_numeric(contrasts["visit"], errors="coerce") == visit)
        & contrasts["within"].isna()
    ]
    reference, *others = _levels(tables, analysis, outcome, comparison)
    # the visit's time on the study's time axis, from the trajectory model's marginal means
    # (the visit-level model's own time is the visit number)
    weeks = _horizon(
        tables, AnalysisId(AnalysisKind.TRAJECTORY, comparison.name).name, outcome, visit
    )
    return [
        _Estimate(
            comparison.name,
            level,
            reference,
            outcome,
            Role.HEADLINE,
            Estimand.VISIT_DIFFERENCE,
            analysis,
            visit,
            weeks,
            float(r["estimate"]),
            float(r["ci_low"]),
            float(r["ci_high"]),
            float(r["p_value"]),
            *_family(r),
        )
        for level, r in zip(others, rows.to_dict(orient="records"), strict=False)
    ]


def _within(
    contrasts: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    comparison: Comparison,
    outcome: str,
    visit: int | None,
) -> list[_Estimate]:
    """Return the twitch headline: the session-level model's within-patient coefficient."""
    analysis = AnalysisId(AnalysisKind.SESSION, "twitch").name
    rows = contrasts[
        (contrasts["analysis"] == analysis)
        & (contrasts["outcome"] == outcome)
        & (contrasts["kind"].astype(str) == ContrastKind.WITHIN)
        & contrasts["within"].isna()
    ]
    reference, *others = _levels(tables, analysis, outcome, comparison)
    return [
        _Estimate(
            comparison.name,
            others[0] if others else "",
            reference,
            outcome,
            Role.HEADLINE,
            Estimand.WITHIN_PATIENT,
            analysis,
            visit,
            math.nan,
            float(r["estimate"]),
            float(r["ci_low"]),
            float(r["ci_high"]),
            float(r["p_value"]),
            *_family(r),
        )
        for r in rows.to_dict(orient="records")
    ]


def _estimates(
    tables: Mapping[str, pd.DataFrame],
    comparison: Comparison,
    outcome: str,
    visit: int | None,
) -> list[_Estimate]:
    """Return every row of one comparison and outcome, the headline first."""
    contrasts = tables["contrasts"]
    trajectory = AnalysisId(AnalysisKind.TRAJECTORY, comparison.name).name
    joint = AnalysisId(AnalysisKind.JOINT).name
    if comparison.randomised:
        return _at_visit(contrasts, tables, comparison, outcome, visit)
    total = _accumulated(
        contrasts,
        tables,
        trajectory,
        comparison,
        outcome,
        visit,
        Role.HEADLINE,
        Estimand.TOTAL_EFFECT,
        trajectory,
    )
    direct = _accumulated(
        contrasts,
        tables,
        joint,
        comparison,
        outcome,
        visit,
        Role.SUPPORTING,
        Estimand.DIRECT_EFFECT,
        trajectory,
    )
    if comparison.kind == "twitch":
        within = _within(contrasts, tables, comparison, outcome, visit)
        unadjusted = [
            _Estimate(**{**e.__dict__, "role": Role.UNADJUSTED}) for e in total
        ]  # confounded by depth: shown, never the answer
        if within:
            return within + direct + unadjusted
        # no session-level fit (too few sessions): the joint model answers, adjusted for depth
        promoted = [_Estimate(**{**e.__dict__, "role": Role.HEADLINE}) for e in direct]
        return promoted + unadjusted
    if comparison.kind == "depth":
        return total + direct
    return total


def answer_table(
    tables: Mapping[str, pd.DataFrame],
    study: Study,
    visit: int | None,
) -> pd.DataFrame:
    """Build the answer table: the headline of every comparison × outcome and its verdict.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The run's tables before suppression: ``contrasts`` (with its in-memory ``kind`` and
        ``within``; its ``family`` and ``p_holm`` when :func:`adjust` has marked them, else
        they are marked here by the same function) and ``emmeans``.
    study : Study
        The declared design: comparisons, outcomes (direction, MCID).
    visit : int or None
        The primary visit (a trial's declared one, else the last visit,
        :func:`pipeline.analyses.run.primary_visit`).

    Returns
    -------
    pandas.DataFrame
        :data:`ANSWER_COLUMNS`: ``question, level, reference, outcome`` say what is compared;
        ``role`` (:class:`Role`), ``estimand`` (:class:`Estimand`) and ``analysis`` what the row
        is; ``visit`` the primary visit and ``horizon`` the model's time at it (weeks or
        sessions; NaN for the within-patient coefficient); ``improvement, ci_low, ci_high`` the
        estimate and 95 % CI with positive = more improvement with ``level``; ``p_value``;
        ``family`` and ``p_holm`` those of the contrast row the estimate is read from (the
        headline rows are the Holm family, :func:`holm_family`); ``mcid`` in the outcome's
        units (NaN when declared only as a percentage); ``verdict`` (:class:`Verdict`,
        headline rows only).
    """
    contrasts = tables.get("contrasts")
    if contrasts is None or contrasts.empty:
        return pd.DataFrame(columns=ANSWER_COLUMNS)
    if not {"family", "p_holm"} <= set(contrasts.columns):
        contrasts = adjust(contrasts, study.comparisons, visit)
    marked = {**tables, "contrasts": contrasts}
    rows = []
    for comparison in study.comparisons:
        for outcome in study.outcomes:
            for e in _estimates(marked, comparison, outcome.name, visit):
                rows.append(_row(e, outcome))
    frame = pd.DataFrame(rows, columns=ANSWER_COLUMNS)
    frame["visit"] = frame["visit"].astype("Int64")
    return frame


def _row(e: _Estimate, outcome: Outcome) -> dict:
    sign = outcome.improvement_sign
    improvement = e.estimate * sign
    low, high = sorted((e.ci_low * sign, e.ci_high * sign))
    mcid = outcome.mcid.points
    mcid_value = math.nan if mcid is None else float(mcid)
    verdict = classify(improvement, low, high, mcid_value) if e.role is Role.HEADLINE else None
    return {
        "question": e.question,
        "level": e.level,
        "reference": e.reference,
        "outcome": e.outcome,
        "role": e.role.value,
        "estimand": e.estimand.value,
        "analysis": e.analysis,
        "visit": e.visit,
        "horizon": e.horizon,
        "improvement": improvement,
        "ci_low": low,
        "ci_high": high,
        "p_value": e.p_value,
        "family": e.family,
        "p_holm": e.p_holm,
        "mcid": mcid_value,
        "verdict": verdict.value if verdict is not None else None,
    }


def headlines(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the headline rows of an answer table (:func:`answer_table`)."""
    return frame[frame["role"] == Role.HEADLINE]


def verdicts(frame: pd.DataFrame) -> Sequence[Verdict]:
    """Return the verdicts of the headline rows, typed."""
    return [Verdict(v) for v in headlines(frame)["verdict"]]
