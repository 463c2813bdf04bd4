"""Derivation: from valid canonical tables to the analysis data set (pure functions).

What is derived, and how (SAP §2–§4):

- **ODI** from its ten section responses: ``sum / (5 × answered) × 100`` (Fairbank & Pynsent
  2000), scored while at most ``odi_max_missing_sections`` sections are unanswered (default 1),
  otherwise missing. When no section is given, the recorded total is used. ``odi_source`` says
  which (``items``, ``total`` or empty).
- **Outcomes**: the study's declared outcomes (``[outcomes.NAME]``; NRS, VAS and ODI by
  default), each in the column :func:`outcome_column` names.
- **Time**: weeks since the baseline assessment (visit 0); a patient without a valid baseline
  row is timed from the first session. A study without dates takes the weeks from the
  assessments' ``weeks`` column or from its visit → weeks mapping (``[time]``).
  ``sessions_completed`` counts the patient's sessions dated *before* the assessment: an
  assessment on a session day is taken before needling (SAP §3: baseline "before the first
  session"), so session j's own assessment does not count it.
- **Change from baseline** (``<outcome>_change``, follow-up minus baseline: negative is better
  on a higher-is-worse scale, positive on a higher-is-better one), **percent change**, and
  **MCID responders** (improvement ≥ points or ≥ percent of baseline, in the outcome's
  direction).
- **Exposure** per patient: number of sessions, share deep, share with a twitch response
  (over sessions where twitch is known), and the patient-level groups ``depth`` (deep when the
  deep share reaches ``deep_share``) and ``twitch`` (when the twitch share reaches
  ``twitch_share``), as categoricals whose first level is the reference (superficial,
  no twitch).
- **Chronicity**: acute (< 6 weeks), subacute (6–12), chronic (> 12), thresholds configurable.
- **Comparisons and covariates**: a randomised arm or any categorical patient column as a
  categorical whose first level is the declared reference; declared categorical covariates
  likewise (reference first), numeric ones as numbers.
- **Without a session log** the exposure columns are empty (``n_sessions`` 0) and the
  analyses that need sessions are not planned (:mod:`pipeline.analyses.run`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config.options import Thresholds
from pipeline.config.settings import Config
from pipeline.config.study import Comparison, Mcid, Outcome, Study
from pipeline.derive.adverse_events import EventRecord
from pipeline.schemas.analysis import CHRONICITY_LEVELS, DEPTH_LEVELS, TWITCH_LEVELS
from pipeline.schemas.columns import INSTRUMENT_COLUMNS, PATIENT_ID, outcome_column
from pipeline.schemas.raw import (
    CO_INTERVENTIONS,
    CONTRAINDICATIONS,
    EXERCISE,
    FOLLOW_UP,
    MANUAL_THERAPY,
    NO_CO_INTERVENTION,
    ODI_ITEMS,
    OTHER_CO_INTERVENTION,
    POST_SESSION,
    PRE_SESSION,
)


def score_odi(assessments: pd.DataFrame, max_missing: int = 1) -> pd.DataFrame:
    """Score the Oswestry Disability Index from its section responses.

    Parameters
    ----------
    assessments : pandas.DataFrame
        Valid assessments with ``odi_q1`` … ``odi_q10`` and ``odi`` (recorded total).
    max_missing : int
        Most unanswered sections that still give a score (SAP §2: one).

    Returns
    -------
    pandas.DataFrame
        Columns ``odi`` (0–100, float), ``odi_answered`` (sections answered, 0–10) and
        ``odi_source`` (``items``, ``total`` or missing), on the index of ``assessments``.
    """
    items = assessments[list(ODI_ITEMS)].astype("float64")
    answered = items.notna().sum(axis=1)
    scorable = answered >= len(ODI_ITEMS) - max_missing
    from_items = (items.sum(axis=1) / (5.0 * answered) * 100.0).where(scorable)
    recorded = assessments["odi"].astype("float64").where(answered == 0)
    odi = from_items.fillna(recorded)
    source = pd.Series(pd.NA, index=assessments.index, dtype="str")
    source[from_items.notna()] = "items"
    source[from_items.isna() & recorded.notna()] = "total"
    return pd.DataFrame(
        {"odi": odi, "odi_answered": answered.astype("Int64"), "odi_source": source}
    )


def classify_chronicity(symptom_weeks: pd.Series, thresholds: Thresholds) -> pd.Series:
    """Return acute / subacute / chronic as an ordered categorical (acute first)."""
    labels = np.select(
        [
            symptom_weeks < thresholds.acute_below_weeks,
            symptom_weeks > thresholds.chronic_above_weeks,
        ],
        ["acute", "chronic"],
        default="subacute",
    )
    labels = pd.Series(labels, index=symptom_weeks.index).where(symptom_weeks.notna())
    return pd.Categorical(labels, categories=CHRONICITY_LEVELS)


def twitch_elicited(sessions: pd.DataFrame) -> pd.Series:
    """Whether a local twitch response was elicited in each session.

    The recorded yes/no ``twitch`` when given, otherwise ``ltr_count > 0``; missing when
    neither is recorded.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions with ``twitch`` (boolean) and ``ltr_count``.

    Returns
    -------
    pandas.Series
        Nullable boolean on the index of ``sessions``.
    """
    twitch = sessions["twitch"].astype("boolean")
    return twitch.fillna(sessions["ltr_count"] > 0)


def patient_exposure(
    sessions: pd.DataFrame, thresholds: Thresholds, record: EventRecord | None = None
) -> pd.DataFrame:
    """Summarise each patient's course of needling.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions (``patient_id, depth, twitch, ltr_count, adverse_event``).
    thresholds : Thresholds
        ``deep_share`` and ``twitch_share`` cut-offs.
    record : EventRecord, optional
        The run's adverse events (:func:`pipeline.derive.adverse_events.event_record`); without
        it the sessions' single ``adverse_event`` column (one event at most per session).

    Returns
    -------
    pandas.DataFrame
        One row per patient with sessions: ``patient_id, n_sessions, deep_share,
        twitch_share, n_adverse_events, depth, twitch`` (the last two categorical);
        ``n_adverse_events`` counts events (a session with two events adds two).
    """
    twitch = twitch_elicited(sessions)
    if record is None:
        event = sessions["adverse_event"].notna() & (sessions["adverse_event"] != "none")
    else:
        event = record.events_per_session(sessions)
    per = pd.DataFrame(
        {
            PATIENT_ID: sessions[PATIENT_ID],
            "deep": (sessions["depth"] == "deep").astype("float64"),
            "twitch": twitch.astype("Float64"),
            "event": event.astype("int64"),
        }
    ).groupby(PATIENT_ID, sort=True)
    out = pd.DataFrame(
        {
            "n_sessions": per.size(),
            "deep_share": per["deep"].mean(),
            "twitch_share": per["twitch"].mean().astype("float64"),
            "n_adverse_events": per["event"].sum(),
        }
    ).reset_index()
    out["depth"] = pd.Categorical(
        np.where(out["deep_share"] >= thresholds.deep_share, "deep", "superficial"),
        categories=DEPTH_LEVELS,
    )
    twitch_group = pd.Series(
        np.where(out["twitch_share"] >= thresholds.twitch_share, "twitch", "no twitch"),
        index=out.index,
    ).where(out["twitch_share"].notna())
    out["twitch"] = pd.Categorical(twitch_group, categories=TWITCH_LEVELS)
    return out


def sessions_before(
    assessments: pd.DataFrame, sessions: pd.DataFrame, flag: str | None = None
) -> pd.Series:
    """Count each patient's sessions dated strictly before each assessment.

    Same-day sessions do not count: the assessment of a session day is taken before needling
    (SAP §6: the assessment before session j+1 follows sessions 1..j).

    Parameters
    ----------
    assessments : pandas.DataFrame
        ``patient_id`` and ``assessment_date``.
    sessions : pandas.DataFrame
        ``patient_id``, ``session_date`` and, when ``flag`` is given, that boolean column.
    flag : str, optional
        Count only the sessions where this boolean column is true (e.g. ``twitch``); missing
        values count as false.

    Returns
    -------
    pandas.Series
        Integer counts on the index of ``assessments``.
    """
    weight = (
        np.ones(len(sessions), dtype="int64")
        if flag is None
        else sessions[flag].fillna(False).astype(bool).to_numpy().astype("int64")
    )
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    PATIENT_ID: sessions[PATIENT_ID].to_numpy(),
                    "date": sessions["session_date"].to_numpy(),
                    "order": 1,
                    "weight": weight,
                    "row": -1,
                }
            ),
            pd.DataFrame(
                {
                    PATIENT_ID: assessments[PATIENT_ID].to_numpy(),
                    "date": assessments["assessment_date"].to_numpy(),
                    "order": 0,
                    "weight": 0,
                    "row": np.arange(len(assessments)),
                }
            ),
        ],
        ignore_index=True,
    ).sort_values([PATIENT_ID, "date", "order"], kind="stable")
    done = events["weight"].groupby(events[PATIENT_ID]).cumsum()
    at = events["row"] >= 0
    counts = np.zeros(len(assessments), dtype="int64")
    counts[events.loc[at, "row"].to_numpy()] = done[at].to_numpy()
    return pd.Series(counts, index=assessments.index)


def add_change_and_responders(
    frame: pd.DataFrame,
    mcid: dict[str, Mcid],
    outcomes: tuple[Outcome, ...] | None = None,
) -> pd.DataFrame:
    """Add baseline, change, percent change and responder columns for every outcome.

    For outcome column ``y`` this adds ``y_baseline``, ``y_change`` (follow-up minus
    baseline), ``y_pct_change`` (per cent of baseline; missing when the baseline is 0) and
    ``y_responder`` (improvement ≥ ``points`` or ≥ ``percent`` % of baseline, where the
    improvement is the fall of a higher-is-worse score and the rise of a higher-is-better one;
    missing at the baseline visit and where either value is missing).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per assessment with ``patient_id``, ``visit`` and the outcome columns.
    mcid : dict of str to Mcid
        MCID by outcome name (used when ``outcomes`` is not given: NRS, VAS, ODI).
    outcomes : tuple of Outcome, optional
        The declared outcomes (direction and MCID); default NRS, VAS and ODI with ``mcid``.
    """
    out = frame.copy()
    is_baseline = out["visit"] == 0
    if outcomes is None:
        from pipeline.config.study import legacy_outcomes

        outcomes = legacy_outcomes(mcid)
    for outcome in outcomes:
        column = outcome_column(outcome.name)
        baseline = out[column].where(is_baseline).groupby(out["patient_id"]).transform("first")
        value = out[column].astype("float64")
        baseline = baseline.astype("float64")
        change = value - baseline
        pct = (100.0 * change / baseline).where(baseline != 0)
        rule = outcome.mcid
        improvement = outcome.improvement_sign * change
        reached = pd.Series(False, index=out.index)
        if rule.points is not None:
            reached = reached | (improvement >= rule.points)
        if rule.percent is not None:
            reached = reached | (outcome.improvement_sign * pct >= rule.percent)
        responder = reached
        known = change.notna() & ~is_baseline
        out[f"{column}_baseline"] = baseline
        out[f"{column}_change"] = change
        out[f"{column}_pct_change"] = pct
        out[f"{column}_responder"] = responder.astype("boolean").where(known)
    return out


def visit_assessments(assessments: pd.DataFrame) -> pd.DataFrame:
    """Keep the assessments that are visits: every row with a visit number.

    A pre- or post-session measurement without a visit number (``timing``) is read by the
    immediate-relief analysis only (:func:`session_pairs`).
    """
    has_visit = assessments["visit"].notna()
    return assessments if bool(has_visit.all()) else assessments[has_visit.to_numpy()]


def session_pairs(
    assessments: pd.DataFrame,
    sessions: pd.DataFrame,
    data: pd.DataFrame,
    outcomes: tuple[Outcome, ...],
) -> pd.DataFrame:
    """Each session's pre/post measurement pair, with its session and the next visit.

    A pair is a patient's ``pre_session`` and ``post_session`` rows dated on the same day as
    exactly one of their sessions (two sessions on one day cannot be told apart: left out).

    Parameters
    ----------
    assessments : pandas.DataFrame
        Valid assessments with ``timing`` and ``assessment_date``.
    sessions : pandas.DataFrame
        Valid sessions.
    data : pandas.DataFrame
        The analysis data set (:func:`analysis_dataset`): the next visit's change from
        baseline of each outcome.
    outcomes : tuple of Outcome
        The study's outcomes (their assessment ``column`` and analysis name).

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``patient_id, session_number, depth, twitch`` (the session's,
        ``twitch`` nullable), ``session_weeks`` (weeks after the patient's first session), and
        per outcome ``<name>_pre``, ``<name>_post`` and ``<name>_next_change`` (the change from
        baseline at the first visit dated after the session; missing when there is none).
        Empty (with these columns) when nothing is paired.
    """
    names = [outcome_column(o.name) for o in outcomes]
    columns = [PATIENT_ID, "session_number", "depth", "twitch", "session_weeks"]
    columns += [f"{n}_{part}" for n in names for part in ("pre", "post", "next_change")]
    empty = pd.DataFrame(columns=columns)
    if "timing" not in assessments or not len(sessions) or "assessment_date" not in assessments:
        return empty
    timed = assessments[assessments["timing"].isin([PRE_SESSION, POST_SESSION]).to_numpy()]
    timed = timed[timed["assessment_date"].notna().to_numpy()]
    if timed.empty:
        return empty
    day = sessions.assign(_date=sessions["session_date"].dt.normalize())
    single = ~day.duplicated([PATIENT_ID, "_date"], keep=False)
    day = day[single.to_numpy()]
    first = sessions.groupby(PATIENT_ID)["session_date"].transform("min")
    day = day.assign(session_weeks=((day["session_date"] - first[single.to_numpy()]).dt.days / 7))
    day = day.assign(_twitch=twitch_elicited(day))
    values = timed.assign(_date=timed["assessment_date"].dt.normalize())
    parts = {}
    for timing, suffix in ((PRE_SESSION, "pre"), (POST_SESSION, "post")):
        rows = values[(values["timing"] == timing).to_numpy()]
        rows = rows.drop_duplicates([PATIENT_ID, "_date"], keep=False)
        picked = pd.DataFrame({PATIENT_ID: rows[PATIENT_ID], "_date": rows["_date"]})
        for outcome, name in zip(outcomes, names, strict=True):
            if outcome.column in rows:
                picked[f"{name}_{suffix}"] = rows[outcome.column].astype("float64").to_numpy()
            else:
                picked[f"{name}_{suffix}"] = np.nan
        parts[suffix] = picked
    pairs = parts["pre"].merge(parts["post"], on=[PATIENT_ID, "_date"], how="inner")
    pairs = pairs.merge(
        day[[PATIENT_ID, "_date", "session_number", "depth", "_twitch", "session_weeks"]],
        on=[PATIENT_ID, "_date"],
        how="inner",
    ).rename(columns={"_twitch": "twitch"})
    if pairs.empty:
        return empty
    visits = visit_assessments(assessments)
    dated = visits[visits["assessment_date"].notna().to_numpy() & (visits["visit"] > 0)]
    dated = pd.DataFrame(
        {
            PATIENT_ID: dated[PATIENT_ID].to_numpy(),
            "visit": dated["visit"].astype("int64").to_numpy(),
            "_next_date": dated["assessment_date"].dt.normalize().to_numpy(),
        }
    ).sort_values("_next_date", kind="stable")
    later = pd.merge_asof(
        pairs.assign(_after=pairs["_date"] + pd.Timedelta(days=1)).sort_values("_after"),
        dated,
        left_on="_after",
        right_on="_next_date",
        by=PATIENT_ID,
        direction="forward",
    )
    change = data.set_index([PATIENT_ID, "visit"])
    key = pd.MultiIndex.from_arrays([later[PATIENT_ID], later["visit"].fillna(-1).astype("int64")])
    for name in names:
        column = f"{name}_change"
        found = change[column].reindex(key) if column in change else pd.Series(np.nan, key)
        later[f"{name}_next_change"] = found.to_numpy(dtype="float64")
    later["session_number"] = later["session_number"].astype("int64")
    later["twitch"] = later["twitch"].astype("boolean")
    out = later[columns].sort_values([PATIENT_ID, "session_number"], kind="stable")
    return out.reset_index(drop=True)


def co_intervention_items(text: pd.Series) -> pd.DataFrame:
    """Which recognised co-interventions each session's ``co_intervention`` text names.

    Parameters
    ----------
    text : pandas.Series
        The free-text cells (``;``-separated items; missing: not recorded).

    Returns
    -------
    pandas.DataFrame
        Nullable booleans on the index of ``text``: one column per code of
        :data:`pipeline.schemas.raw.CO_INTERVENTIONS` and ``other`` (an item naming none of
        them and not ``none``); missing where the cell is empty.
    """
    recorded = text.notna().to_numpy()
    # parse each distinct cell once (a clinic writes the same few lists over and over)
    codes_of, distinct = pd.factorize(text.astype("string"), use_na_sentinel=True)
    normal = [
        {"".join(ch for ch in p if ch.isalnum()) for p in str(cell).lower().split(";") if p.strip()}
        for cell in distinct
    ]
    codes = {c: c.replace("_", "") for c in CO_INTERVENTIONS}
    known = {*codes.values(), NO_CO_INTERVENTION}
    flags = {
        code: np.array([word in s for s in normal], dtype=bool) for code, word in codes.items()
    }
    flags[OTHER_CO_INTERVENTION] = np.array([bool(s - known) for s in normal], dtype=bool)
    out = pd.DataFrame(index=text.index)
    take = np.where(recorded, codes_of, 0)
    for name, per_cell in flags.items():
        values = per_cell[take] if per_cell.size else np.zeros(len(text), dtype=bool)
        out[name] = pd.arrays.BooleanArray(values, ~recorded)
    return out


CO_INTERVENTION_GROUPS = (
    NO_CO_INTERVENTION,
    EXERCISE,
    MANUAL_THERAPY,
    f"{EXERCISE}+{MANUAL_THERAPY}",
)
"""A patient's combined-care group, reference (no co-intervention) first."""


def co_intervention_groups(sessions: pd.DataFrame, share: float = 0.5) -> pd.DataFrame:
    """Each patient's combined-care group from their sessions' co-interventions.

    A patient had exercise (manual therapy) when it was recorded in at least ``share`` of the
    sessions whose co-intervention was recorded; the group is ``none``, ``exercise``,
    ``manual_therapy`` or ``exercise+manual_therapy``. Items of other kinds do not change the
    group (they are counted in ``other_share``).

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions with ``co_intervention``.
    share : float
        Share of the recorded sessions from which a co-intervention is the patient's.

    Returns
    -------
    pandas.DataFrame
        ``patient_id, co_sessions`` (sessions with the co-intervention recorded),
        ``exercise_share, manual_therapy_share, other_share, co_intervention`` (categorical,
        levels :data:`CO_INTERVENTION_GROUPS`); only patients with at least one recorded session.
    """
    columns = [PATIENT_ID, "co_sessions", "exercise_share", "manual_therapy_share"]
    columns += ["other_share", "co_intervention"]
    if "co_intervention" not in sessions or not sessions["co_intervention"].notna().any():
        return pd.DataFrame(columns=columns)
    items = co_intervention_items(sessions["co_intervention"])
    items[PATIENT_ID] = sessions[PATIENT_ID].to_numpy()
    items = items[sessions["co_intervention"].notna().to_numpy()]
    per = items.astype({c: "float64" for c in (*CO_INTERVENTIONS, OTHER_CO_INTERVENTION)})
    per = per.groupby(PATIENT_ID, sort=True)
    out = pd.DataFrame(
        {
            "co_sessions": per.size(),
            "exercise_share": per[EXERCISE].mean(),
            "manual_therapy_share": per[MANUAL_THERAPY].mean(),
            "other_share": per[OTHER_CO_INTERVENTION].mean(),
        }
    ).reset_index()
    exercise = out["exercise_share"] >= share
    manual = out["manual_therapy_share"] >= share
    group = np.select(
        [exercise & manual, exercise, manual],
        [CO_INTERVENTION_GROUPS[3], EXERCISE, MANUAL_THERAPY],
        default=NO_CO_INTERVENTION,
    )
    out["co_intervention"] = pd.Categorical(group, categories=CO_INTERVENTION_GROUPS)
    return out[columns]


def time_zero(assessments: pd.DataFrame, sessions: pd.DataFrame) -> pd.Series:
    """Each patient's time zero: the baseline assessment date, else the first session date.

    This is the origin of ``weeks`` in :func:`analysis_dataset`, and of the days that replace
    dates in published data (:func:`pipeline.privacy.suppression.deidentify`).

    Returns
    -------
    pandas.Series
        Dates indexed by ``patient_id``; patients with neither are absent.
    """
    baseline = (
        assessments.loc[assessments["visit"].eq(0).fillna(False).to_numpy(dtype=bool)]
        .groupby(PATIENT_ID, sort=True)["assessment_date"]
        .min()
    )
    first_session = sessions.groupby(PATIENT_ID, sort=True)["session_date"].min()
    return baseline.combine_first(first_session).rename("time_zero")


def contraindicated(patients: pd.DataFrame) -> pd.Series:
    """Whether each patient has a contraindication or caution, as far as it was recorded.

    Yes when a recorded flag is yes or the patient is younger than 12; no when at least one
    flag was recorded for the patient and none is yes; missing (not recorded) when no flag was
    recorded for the patient. A flag that was not recorded is never taken for "no": which
    flags each source recorded is told by :func:`pipeline.ingest.recorded.field_status`.

    Parameters
    ----------
    patients : pandas.DataFrame
        Valid patients with ``age`` and the flags of
        :data:`pipeline.schemas.raw.CONTRAINDICATIONS` (missing where not recorded).

    Returns
    -------
    pandas.Series
        Nullable boolean on the index of ``patients``.
    """
    flags = patients[list(CONTRAINDICATIONS)].astype("boolean")
    child = (patients["age"] < 12).fillna(False).astype(bool).to_numpy()
    yes = flags.fillna(False).any(axis=1).to_numpy() | child
    known = flags.notna().any(axis=1).to_numpy() | yes
    return pd.Series(pd.array(yes, dtype="boolean"), index=patients.index).where(known, pd.NA)


def study_weeks(assessments: pd.DataFrame, sessions: pd.DataFrame, study: Study) -> pd.Series:
    """Weeks since baseline of each assessment, from the source the study declares (``[time]``).

    ``dates``: days since the patient's time zero (:func:`time_zero`) / 7; ``weeks``: the
    assessments' ``weeks`` column; ``visits``: the visit → weeks mapping (a visit it does not
    name has no time and leaves the models).
    """
    source = study.time.source
    if source == "weeks":
        return assessments["weeks"].astype("float64")
    if source == "visits":
        mapping = study.time.visit_weeks
        return assessments["visit"].astype("int64").map(mapping).astype("float64")
    origin = assessments["patient_id"].map(time_zero(assessments, sessions))
    return (assessments["assessment_date"] - origin).dt.days / 7.0


def _group_levels(values: pd.Series, reference: str, levels: tuple[str, ...]) -> pd.Categorical:
    """Return a categorical: ``reference`` first, then ``levels`` (or the others, sorted)."""
    found = sorted(v for v in values.dropna().unique() if v != reference)
    order = list(levels) if levels else [reference, *found]
    order += [v for v in found if v not in order]
    return pd.Categorical(values, categories=order)


def comparison_groups(patients: pd.DataFrame, comparisons: tuple[Comparison, ...]) -> dict:
    """Return the patient-level groups of the randomised and column comparisons.

    Returns
    -------
    dict of str to pandas.Categorical
        Comparison name -> its groups on the rows of ``patients`` (reference level first).
    """
    return {
        c.name: _group_levels(patients[c.column].astype("object"), c.reference, c.levels)
        for c in comparisons
        if not c.needs_sessions
    }


def _empty_exposure() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": pd.Series(dtype="str"),
            "n_sessions": pd.Series(dtype="int64"),
            "deep_share": pd.Series(dtype="float64"),
            "twitch_share": pd.Series(dtype="float64"),
            "n_adverse_events": pd.Series(dtype="int64"),
            "depth": pd.Categorical([], categories=DEPTH_LEVELS),
            "twitch": pd.Categorical([], categories=TWITCH_LEVELS),
        }
    )


def analysis_dataset(
    patients: pd.DataFrame,
    sessions: pd.DataFrame,
    assessments: pd.DataFrame,
    config: Config,
    record: EventRecord | None = None,
) -> pd.DataFrame:
    """Build the long analysis data set: one row per valid assessment.

    Parameters
    ----------
    patients, sessions, assessments : pandas.DataFrame
        Valid, typed canonical tables (``sessions`` may be empty: a study without a session
        log).
    config : Config
        Thresholds, the declared outcomes, comparisons, covariates and time.
    record : EventRecord, optional
        The run's adverse events, as :func:`patient_exposure` reads them.

    Returns
    -------
    pandas.DataFrame
        ``patient_id, site, visit, weeks, co_intervention_started`` (nullable: the patient
        reported a co-intervention or medication started since the previous assessment),
        ``sessions_completed, twitch_share_before`` (share of
        the sessions before the assessment in which a twitch was elicited, among those where
        it was recorded, as :func:`twitch_elicited`; missing when there is none),
        the outcome columns (``nrs, vas_mm, odi, odi_answered, odi_source`` by default), the
        baseline, change, percent change and responder columns of every outcome, the patient's
        ``age, sex, symptom_weeks, chronicity, contraindicated, protocol_deviation`` (the last
        two nullable: missing where not recorded, see :func:`contraindicated`), the declared
        covariates, the groups of every declared comparison, and the exposure (``n_sessions,
        deep_share, twitch_share, n_adverse_events, depth, twitch``), sorted by patient and visit.
    """
    th = config.thresholds
    study = config.study
    assessments = visit_assessments(assessments)
    people = patients[["patient_id", "site", "age", "sex"]].copy()
    people["chronicity"] = classify_chronicity(patients["symptom_weeks"], th)
    people["contraindicated"] = contraindicated(patients)
    people["protocol_deviation"] = patients["protocol_deviation"].astype("boolean")
    legacy = [o.name for o in study.outcomes] == list(INSTRUMENT_COLUMNS)
    if not legacy:
        people["symptom_weeks"] = patients["symptom_weeks"].astype("float64")
    for covariate in study.covariates.values():
        values = patients[covariate.name]
        if covariate.kind == "number":
            people[covariate.name] = values.astype("float64")
        else:
            reference = covariate.reference or min(values.dropna().unique(), default="")
            people[covariate.name] = _group_levels(values.astype("object"), reference, ())
    for name, groups in comparison_groups(patients, study.comparisons).items():
        people[name] = groups

    if legacy:
        rows = assessments[["patient_id", "visit", "assessment_date", "nrs", "vas_mm"]].copy()
        rows["nrs"] = rows["nrs"].astype("float64")
        rows = rows.join(score_odi(assessments, th.odi_max_missing_sections))
    else:
        rows = assessments[["patient_id", "visit", "assessment_date"]].copy()
        for outcome in study.outcomes:
            if outcome.scoring == "odi_items":
                scored = score_odi(assessments, th.odi_max_missing_sections)
                rows = rows.join(scored.rename(columns={"odi": outcome_column(outcome.name)}))
            else:
                values = assessments[outcome.column].astype("float64")
                rows[outcome_column(outcome.name)] = values
    if len(sessions) and rows["assessment_date"].notna().any():
        rows["sessions_completed"] = sessions_before(assessments, sessions)
        elicited = twitch_elicited(sessions)
        flagged = sessions.assign(_twitch=elicited.fillna(False), _known=elicited.notna())
        twitch_before = sessions_before(assessments, flagged, flag="_twitch")
        known_before = sessions_before(assessments, flagged, flag="_known")
        rows["twitch_share_before"] = (twitch_before / known_before).where(known_before > 0)
    else:
        rows["sessions_completed"] = np.zeros(len(rows), dtype="int64")
        rows["twitch_share_before"] = np.nan

    rows["weeks"] = study_weeks(assessments, sessions, study)
    if "timing" in assessments and bool((assessments["timing"] == FOLLOW_UP).any()):
        rows["follow_up"] = (assessments["timing"] == FOLLOW_UP).fillna(False).astype(bool)
    # an intercurrent event (pipeline.analyses.missing_data); missing where not asked
    if "co_intervention_started" in assessments:
        rows["co_intervention_started"] = assessments["co_intervention_started"].astype("boolean")
    else:
        rows["co_intervention_started"] = pd.array([pd.NA] * len(rows), dtype="boolean")

    rows = add_change_and_responders(rows, config.mcid, study.outcomes)
    out = rows.merge(people, on="patient_id", how="left", validate="many_to_one")
    exposure = patient_exposure(sessions, th, record) if len(sessions) else _empty_exposure()
    out = out.merge(exposure, on="patient_id", how="left", validate="many_to_one")
    out["n_sessions"] = out["n_sessions"].fillna(0).astype("int64")
    # no session, no adverse event after one (a study without a session log has none)
    out["n_adverse_events"] = out["n_adverse_events"].fillna(0).astype("int64")
    out = out.drop(columns="assessment_date")
    return out.sort_values([PATIENT_ID, "visit"], kind="stable").reset_index(drop=True)
