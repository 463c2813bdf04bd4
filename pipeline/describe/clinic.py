"""The clinic's own questions (SAP §4b, issue 17): every table they need, or why not.

:func:`clinic_tables` runs each question's analysis on the run's data and returns its published
tables; a question the data cannot answer gets a row of ``clinic_omitted`` (``question``,
``reason``) instead, which its report section states.
"""

from __future__ import annotations

import pandas as pd

from pipeline.config.settings import Study
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

    Returns
    -------
    dict of str to pandas.DataFrame
        Tables by name (file stem in ``reports/tables``).
    """
    out: dict[str, pd.DataFrame] = {}
    omitted: list[tuple[str, str]] = []
    reason = sessions_to_response.omission_reason(data, study)
    if reason:
        omitted.append((sessions_to_response.QUESTION, reason))
    else:
        out.update(sessions_to_response.sessions_to_response_tables(data, study, max(1, threshold)))
    if reason:
        omitted.append((DOSE_RESPONSE, reason))
    else:
        outcome = study.outcomes[0]
        gains = dose_response.dose_response(
            data,
            outcome_column(outcome.name),
            outcome.improvement_sign,
            min_rows=max(10, threshold),
        )
        if gains.empty:
            omitted.append((DOSE_RESPONSE, "fewer than two session counts were assessed often"))
        else:
            out["dose_response"] = gains.assign(outcome=outcome.name)[["outcome", *gains.columns]]
    _durability(data, study, reason, out, omitted)
    if record is None and study.sessions and len(sessions):
        record = event_record(sessions, events=events)
    reason = _side_effects(sessions, study, record, out)
    if reason:
        omitted.append((SIDE_EFFECTS, reason))
    reason = _signals(patients, sessions, study, record, out)
    if reason:
        omitted.append((SAFETY_SIGNALS, reason))
    reason = _immediate_relief(data, sessions, assessments, study, max(2, threshold), out)
    if reason:
        omitted.append((IMMEDIATE_RELIEF, reason))
    reason = _combined_care(data, sessions, study, max(2, threshold), out)
    if reason:
        omitted.append((COMBINED_CARE, reason))
    if omitted:
        out["clinic_omitted"] = pd.DataFrame(omitted, columns=["question", "reason"])
    return out


def _side_effects(
    sessions: pd.DataFrame,
    study: Study,
    record: EventRecord | None,
    out: dict[str, pd.DataFrame],
) -> str:
    """Add the side-effect tables to ``out``; return why they cannot be made, or empty."""
    if not study.sessions or len(sessions) == 0 or record is None:
        return "the study has no session log, so there are no sessions to relate events to"
    recorded = record.recorded
    if not recorded.any():
        return "adverse events were not recorded (this is not a rate of zero)"
    canonical = record.events
    rates = side_effects.side_effect_rates(sessions, canonical, recorded)
    out["side_effect_rates"] = rates
    out["side_effect_rate_ratios"] = side_effects.side_effect_rate_ratios(rates)
    durations = side_effects.event_durations(canonical)
    if not durations.empty:
        out["side_effect_durations"] = durations
    out["serious_events"] = side_effects.serious_events(sessions, canonical)
    return ""


def _signals(
    patients: pd.DataFrame | None,
    sessions: pd.DataFrame,
    study: Study,
    record: EventRecord | None,
    out: dict[str, pd.DataFrame],
) -> str:
    """Add the safety-signal tables to ``out``; return why they cannot be made, or empty."""
    if not study.sessions or len(sessions) == 0 or record is None:
        return "the study has no session log, so no patient is known to have been needled"
    if patients is None or len(patients) == 0:
        return "no patient table was given"
    flags = safety_signals.patient_flags(patients)[list(safety_signals.FLAGS)]
    if not flags.notna().any().any():
        return "no contraindication or caution flag (nor age) was recorded"
    recorded, canonical = record.recorded, record.events
    out["safety_signals"] = safety_signals.needled_with_flags(
        patients, sessions, canonical, recorded
    )
    if recorded.any():
        out["safety_signal_rate_ratios"] = safety_signals.signal_rate_ratios(
            patients, sessions, canonical, recorded
        )
    return ""


def _durability(
    data: pd.DataFrame,
    study: Study,
    reason: str,
    out: dict[str, pd.DataFrame],
    omitted: list[tuple[str, str]],
) -> None:
    """Add the durability table to ``out``, or its reason to ``omitted``."""
    marked = "follow_up" in data and bool(data["follow_up"].fillna(False).any())
    if reason and not marked:
        omitted.append((DURABILITY, reason))
        return
    outcome = study.outcomes[0]
    groups = ["chronicity"] + [
        c.name for c in study.comparisons if c.name in data and c.name != "chronicity"
    ]
    groups = [g for g in groups if data[g].notna().any()]
    table = durability.durability(
        data, outcome_column(outcome.name), groups, outcome.improvement_sign
    )
    if table.empty:
        omitted.append((DURABILITY, "no patient was assessed after the end of treatment"))
    else:
        out["durability"] = table.assign(outcome=outcome.name)[["outcome", *table.columns]]


def _immediate_relief(
    data: pd.DataFrame,
    sessions: pd.DataFrame,
    assessments: pd.DataFrame | None,
    study: Study,
    threshold: int,
    out: dict[str, pd.DataFrame],
) -> str:
    """Add the immediate-relief tables to ``out``; return why they cannot be made, or empty."""
    if not study.sessions or len(sessions) == 0:
        return "the study has no session log, so no assessment is tied to a session"
    if (
        assessments is None
        or "timing" not in assessments
        or not assessments["timing"].isin(SESSION_TIMINGS).any()
    ):
        return (
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
            return f"the within-session model cannot be fitted to {outcome.name}: {exc}"
        if not change.empty:
            changes.append(change.assign(outcome=outcome.name))
        if not relation.empty:
            relations.append(relation.assign(outcome=outcome.name))
    if not changes:
        return (
            f"fewer than {threshold} patients have a session measured both immediately before "
            "and after it"
        )
    table = pd.concat(changes, ignore_index=True)
    out["immediate_relief"] = table[["outcome", *immediate_relief.COLUMNS]]
    if relations:
        table = pd.concat(relations, ignore_index=True)
        out["immediate_relief_next_visit"] = table[["outcome", *immediate_relief.NEXT_COLUMNS]]
    return ""


def _combined_care(
    data: pd.DataFrame,
    sessions: pd.DataFrame,
    study: Study,
    threshold: int,
    out: dict[str, pd.DataFrame],
) -> str:
    """Add the combined-care tables to ``out``; return why they cannot be made, or empty."""
    if not study.sessions or len(sessions) == 0:
        return "the study has no session log, where co-interventions are recorded"
    groups = co_intervention_groups(sessions)
    if groups.empty:
        return "co-interventions were not recorded (the sessions' co_intervention column)"
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
        return f"the combined-care models cannot be fitted: {exc}"
    if estimates.empty:
        return (
            f"fewer than two co-intervention groups have at least {threshold} patients at each "
            "level of a comparison"
        )
    out["combined_care"] = estimates.assign(outcome=outcome.name)[
        ["outcome", *combined_care.COLUMNS]
    ]
    out["combined_care_tests"] = tests.assign(outcome=outcome.name)[
        ["outcome", *combined_care.TEST_COLUMNS]
    ]
    return ""
