"""The clinic's own questions (SAP §4b, issue 17): every table they need, or why not.

:func:`clinic_tables` runs each question's analysis on the run's data and returns its published
tables; a question the data cannot answer gets a row of ``clinic_omitted`` (``question``,
``reason``) instead, which its report section states.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from pipeline.analyses.side_by_side import built_side_by_side
from pipeline.config.study import Study
from pipeline.derive.adverse_events import (
    EventRecord,
    event_record,
)
from pipeline.derive.dataset import co_intervention_groups, session_pairs
from pipeline.describe import (
    combined_care,
    dose_response,
    durability,
    immediate_relief,
    safety_signals,
    sessions_to_response,
    side_effects,
)
from pipeline.lmm import ModelDataError, ModelFitError
from pipeline.schemas.columns import outcome_column
from pipeline.schemas.raw import SESSION_TIMINGS

SIDE_EFFECTS = "side_effects"
"""The side-effects question's key in ``clinic_omitted``."""
DOSE_RESPONSE = "dose_response"
"""The dose-response question's key in ``clinic_omitted``."""
DURABILITY = "durability"
"""The durability question's key in ``clinic_omitted``."""
SAFETY_SIGNALS = "safety_signals"
"""The safety-signals question's key in ``clinic_omitted``."""
IMMEDIATE_RELIEF = immediate_relief.QUESTION
"""The immediate-relief question's key in ``clinic_omitted``."""
COMBINED_CARE = combined_care.QUESTION
"""The combined-care question's key in ``clinic_omitted``."""


def clinic_tables(
    data: pd.DataFrame,
    sessions: pd.DataFrame,
    study: Study,
    threshold: int,
    events: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
    record: EventRecord | None = None,
    assessments: pd.DataFrame | None = None,
    workers: int | None = 1,
) -> dict[str, pd.DataFrame]:
    """Tables of the clinic questions, and ``clinic_omitted`` for those not analysable.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set.
    sessions : pandas.DataFrame
        The valid sessions (empty for a study without a session log).
    study : Study
        The study's declarations.
    threshold : int
        The small-cell threshold (curves are cut where fewer patients remain at risk).
    events : pandas.DataFrame, optional
        A valid adverse-event table (:class:`pipeline.schemas.raw.AdverseEvents`); without
        it the sessions' ``adverse_event`` / ``ae_severity`` columns are read.
    patients : pandas.DataFrame, optional
        The valid patients (contraindication flags and age); without them the safety signals
        are not analysed.
    record : EventRecord, optional
        The run's adverse events as assembled once for every safety table
        (:func:`pipeline.derive.adverse_events.event_record`); when given, ``events`` is not
        read.
    assessments : pandas.DataFrame, optional
        The valid assessments with their ``timing`` (the pre/post-session measurements of the
        immediate relief); without them immediate relief is not analysed.
    workers : int, optional
        ``[engine] workers``: the questions are answered side by side in forked processes
        (:func:`pipeline.analyses.side_by_side.built_side_by_side`) unless it is 1 (the
        default: here, one after another); the tables are the same either way.

    Returns
    -------
    dict of str to pandas.DataFrame
        Tables by name (file stem in ``reports/tables``).
    """
    reason = sessions_to_response.omission_reason(data, study)
    if record is None and study.sessions and len(sessions):
        record = event_record(sessions, events=events)
    questions: list[Callable[[], Answer]] = [
        lambda: _sessions_to_response(data, study, threshold, reason),
        lambda: _dose_response(data, study, threshold, reason),
        lambda: _durability(data, study, reason),
        lambda: _answer(SIDE_EFFECTS, _side_effects(sessions, study, record)),
        lambda: _answer(SAFETY_SIGNALS, _signals(patients, sessions, study, record)),
        lambda: _answer(
            IMMEDIATE_RELIEF,
            _immediate_relief(data, sessions, assessments, study, max(2, threshold)),
        ),
        lambda: _answer(COMBINED_CARE, _combined_care(data, sessions, study, max(2, threshold))),
    ]
    out: dict[str, pd.DataFrame] = {}
    omitted: list[tuple[str, str]] = []
    # (the combined-care models and the immediate relief take longest: they are started first)
    for tables, left_out in built_side_by_side(questions, workers, start=(6, 5, 0, 1, 2, 3, 4)):
        out.update(tables)
        omitted += left_out
    if omitted:
        out["clinic_omitted"] = pd.DataFrame(omitted, columns=["question", "reason"])
    return out


Answer = tuple[dict[str, pd.DataFrame], list[tuple[str, str]]]
"""A question's tables, and ``(question, reason)`` when it is not analysable."""

Tables = tuple[dict[str, pd.DataFrame], str]
"""A question's tables, and why it cannot be answered (empty when it can)."""


def _answer(question: str, answered: Tables) -> Answer:
    """Name the question of an unanswered :data:`Tables`."""
    tables, reason = answered
    return tables, [(question, reason)] if reason else []


def _sessions_to_response(data: pd.DataFrame, study: Study, threshold: int, reason: str) -> Answer:
    """Answer how many sessions it takes (omitted for ``reason``)."""
    if reason:
        return {}, [(sessions_to_response.QUESTION, reason)]
    return sessions_to_response.sessions_to_response_tables(data, study, max(1, threshold)), []


def _dose_response(data: pd.DataFrame, study: Study, threshold: int, reason: str) -> Answer:
    """Answer whether more sessions give more improvement (omitted for ``reason``)."""
    if reason:
        return {}, [(DOSE_RESPONSE, reason)]
    outcome = study.outcomes[0]
    gains = dose_response.dose_response(
        data,
        outcome_column(outcome.name),
        outcome.improvement_sign,
        min_rows=max(10, threshold),
    )
    if gains.empty:
        return {}, [(DOSE_RESPONSE, "fewer than two session counts were assessed often")]
    return {"dose_response": gains.assign(outcome=outcome.name)[["outcome", *gains.columns]]}, []


def _side_effects(sessions: pd.DataFrame, study: Study, record: EventRecord | None) -> Tables:
    """Make the side-effect tables, or say why they cannot be made."""
    if not study.sessions or len(sessions) == 0 or record is None:
        return {}, "the study has no session log, so there are no sessions to relate events to"
    recorded = record.recorded
    if not recorded.any():
        return {}, "adverse events were not recorded (this is not a rate of zero)"
    canonical = record.events
    out: dict[str, pd.DataFrame] = {}
    rates = side_effects.side_effect_rates(sessions, canonical, recorded)
    out["side_effect_rates"] = rates
    out["side_effect_rate_ratios"] = side_effects.side_effect_rate_ratios(rates)
    durations = side_effects.event_durations(canonical)
    if not durations.empty:
        out["side_effect_durations"] = durations
    out["serious_events"] = side_effects.serious_events(sessions, canonical)
    return out, ""


def _signals(
    patients: pd.DataFrame | None,
    sessions: pd.DataFrame,
    study: Study,
    record: EventRecord | None,
) -> Tables:
    """Make the safety-signal tables, or say why they cannot be made."""
    if not study.sessions or len(sessions) == 0 or record is None:
        return {}, "the study has no session log, so no patient is known to have been needled"
    if patients is None or len(patients) == 0:
        return {}, "no patient table was given"
    flags = safety_signals.patient_flags(patients)[list(safety_signals.FLAGS)]
    if not flags.notna().any().any():
        return {}, "no contraindication or caution flag (nor age) was recorded"
    recorded, canonical = record.recorded, record.events
    out = {
        "safety_signals": safety_signals.needled_with_flags(patients, sessions, canonical, recorded)
    }
    if recorded.any():
        out["safety_signal_rate_ratios"] = safety_signals.signal_rate_ratios(
            patients, sessions, canonical, recorded
        )
    return out, ""


def _durability(data: pd.DataFrame, study: Study, reason: str) -> Answer:
    """Answer how long the improvement lasts (omitted for ``reason`` without follow-up rows)."""
    marked = "follow_up" in data and bool(data["follow_up"].fillna(False).any())
    if reason and not marked:
        return {}, [(DURABILITY, reason)]
    outcome = study.outcomes[0]
    groups = ["chronicity"] + [
        c.name for c in study.comparisons if c.name in data and c.name != "chronicity"
    ]
    groups = [g for g in groups if data[g].notna().any()]
    table = durability.durability(
        data, outcome_column(outcome.name), groups, outcome.improvement_sign
    )
    if table.empty:
        return {}, [(DURABILITY, "no patient was assessed after the end of treatment")]
    return {"durability": table.assign(outcome=outcome.name)[["outcome", *table.columns]]}, []


def _immediate_relief(
    data: pd.DataFrame,
    sessions: pd.DataFrame,
    assessments: pd.DataFrame | None,
    study: Study,
    threshold: int,
) -> Tables:
    """Make the immediate-relief tables, or say why they cannot be made."""
    if not study.sessions or len(sessions) == 0:
        return {}, "the study has no session log, so no assessment is tied to a session"
    if (
        assessments is None
        or "timing" not in assessments
        or not assessments["timing"].isin(SESSION_TIMINGS).any()
    ):
        return {}, (
            "no assessment was recorded immediately before or after a session (the assessments' "
            "timing column)"
        )
    pairs = session_pairs(assessments, sessions, data, study.outcomes)
    changes, relations = [], []
    for outcome in study.outcomes:
        column = outcome_column(outcome.name)
        sign = outcome.improvement_sign
        try:
            change = immediate_relief.within_session_change(pairs, column, sign, threshold)
            relation = immediate_relief.next_visit_relation(pairs, column, sign, threshold)
        except (ModelDataError, ModelFitError) as exc:
            return {}, f"the within-session model cannot be fitted to {outcome.name}: {exc}"
        if not change.empty:
            changes.append(change.assign(outcome=outcome.name))
        if not relation.empty:
            relations.append(relation.assign(outcome=outcome.name))
    if not changes:
        return {}, (
            f"fewer than {threshold} patients have a session measured both immediately before "
            "and after it"
        )
    table = pd.concat(changes, ignore_index=True)
    out = {"immediate_relief": table[["outcome", *immediate_relief.COLUMNS]]}
    if relations:
        table = pd.concat(relations, ignore_index=True)
        out["immediate_relief_next_visit"] = table[["outcome", *immediate_relief.NEXT_COLUMNS]]
    return out, ""


def _combined_care(
    data: pd.DataFrame,
    sessions: pd.DataFrame,
    study: Study,
    threshold: int,
) -> Tables:
    """Make the combined-care tables, or say why they cannot be made."""
    if not study.sessions or len(sessions) == 0:
        return {}, "the study has no session log, where co-interventions are recorded"
    groups = co_intervention_groups(sessions)
    if groups.empty:
        return {}, "co-interventions were not recorded (the sessions' co_intervention column)"
    outcome = study.outcomes[0]
    comparisons = tuple(c.name for c in study.comparisons if c.name in data)
    try:
        estimates, tests = combined_care.combined_care(
            data,
            groups,
            outcome_column(outcome.name),
            comparisons,
            outcome.improvement_sign,
            threshold,
        )
    except (ModelDataError, ModelFitError) as exc:
        return {}, f"the combined-care models cannot be fitted: {exc}"
    if estimates.empty:
        return {}, (
            f"fewer than two co-intervention groups have at least {threshold} patients at each "
            "level of a comparison"
        )
    return {
        "combined_care": estimates.assign(outcome=outcome.name)[
            ["outcome", *combined_care.COLUMNS]
        ],
        "combined_care_tests": tests.assign(outcome=outcome.name)[
            ["outcome", *combined_care.TEST_COLUMNS]
        ],
    }, ""
