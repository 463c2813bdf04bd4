"""Simulate raw clinic data for the dry-needling outcomes pipeline, with known true effects.

The simulator writes the *canonical raw layout* (three CSV files, ``patients.csv``,
``sessions.csv`` and ``assessments.csv``) that the ingest step reads. Every number of the
data-generating model is listed below and, identically, in :data:`TRUE_EFFECTS`; the code
reads its parameters from that dictionary, so the two cannot drift apart.

Data-generating model
---------------------
Randomness
    Everything comes from one ``numpy.random.Generator(numpy.random.PCG64(seed))``, drawn in
    a fixed order, so the same ``(n_patients, seed)`` gives byte-identical CSV files. The
    co-intervention events (below) alone come from a second generator,
    ``PCG64(SeedSequence([seed, 19]))``, so adding them left every other number of a study
    unchanged.

Patients
    * Three clinics: ``Northside`` (P = 0.40), ``Riverside`` (0.35), ``Hillview`` (0.25).
    * Enrolment dates uniform over 548 days (about 18 months) from 2025-01-06; patient ids
      ``P0001``, ``P0002``, ... follow enrolment order (4 digits, more when n > 9999).
    * Age = round(N(50, 15²)) clipped to 18-85 years; sex ``female`` 0.51, ``male`` 0.47,
      ``other`` 0.02.
    * Chronic with P = 0.60: ``symptom_weeks`` log-uniform on 13-260; otherwise acute:
      uniform on 1-5 weeks (both rounded to 0.1 week). No subacute (6-12 week) patients.
    * ``arm`` is empty (observational data, nobody randomised).
    * Contraindication flags: P = 0.04 of having at least one; the first flag is drawn with
      weights anticoagulants 0.30, immunocompromised 0.17, recent_surgery 0.15,
      needle_phobia 0.15, pregnant 0.10, bleeding_disorder 0.08, unable_to_consent 0.05
      (``pregnant`` only for women aged 18-50; weights renormalised over the eligible flags),
      and with P = 0.15 a second, different flag from the same weights.
    * ``protocol_deviation`` with P = 0.03.
    * No site effect on any outcome (site is a nuisance variable only).

Sessions
    * Acute patients get 1-3 sessions, chronic patients 4-8 (uniform integers).
    * First session 0-7 days after enrolment (uniform integer), then every 7 + U{-2..2} days.
    * Therapists per site: Northside T01-T03, Riverside T04-T06, Hillview T07-T08. Each
      patient has a primary therapist (uniform within the site) who gives each session with
      P = 0.80; otherwise a therapist drawn uniformly from the site (possibly the primary).
    * Needling depth is a *patient-level* exposure: ``deep`` with P = 0.5, used in every
      session of that patient, so depth is a clean between-patient comparison.
    * Twitch (local twitch response) per session: P = 0.65 when deep, 0.25 when superficial;
      ``ltr_count`` = 1 + Poisson(1.5) when twitch is ``yes``, else 0.
    * **The true twitch effect on every outcome is 0.** A naive twitch-vs-no-twitch
      comparison shows an "effect" only because twitch is confounded with depth (deep
      needling elicits twitches more often and deep needling does have a true effect).
      The within-patient (session-level) twitch coefficient and the joint depth + twitch
      model should both recover approximately 0.
    * ``needles`` = 1 + Poisson(3); ``retention_min`` = N(10, 5²) clipped to 0.5-20 minutes,
      rounded to 0.1; ``trigger_point`` ``active`` with P = 0.6 else ``latent``;
      ``co_intervention`` ``exercise`` 0.45, ``manual therapy`` 0.15,
      ``exercise; manual therapy`` 0.25, none (empty) 0.15.
    * Adverse events per session: P = 0.08 superficial, 0.20 deep (true rate ratio 2.5).
      Type: soreness 0.60, bruising 0.17, fatigue 0.10, discomfort 0.10, bleeding 0.02,
      fainting 0.01. Severity: mild 0.84, moderate 0.15, severe 0.01. ``adverse_event`` is
      ``none`` and ``ae_severity`` empty when no event occurs.

Assessments
    * Visits 0, 1, 2, 3, 4 at nominal weeks 0, 2, 4, 8, 12. Visit 0 (baseline) is on the day
      of the first session, before needling; visits >= 1 are at baseline + 7 x week + U{-3..3}
      days. Time ``t`` = (assessment date - baseline date) in days / 7, from the actual dates.
    * NRS: latent mean ``mu_i(t) = 6.5 + 0.5 chronic + u0_i + (-0.20 - 0.10 deep + u1_i) t``,
      with ``(u0, u1)`` bivariate normal, SD 1.0 and 0.08, correlation -0.3, and residual
      ``eps ~ N(0, 0.9²)``; observed NRS = round(clip(mu + eps, 0, 10)) (numpy round half to
      even). **True depth-by-time effect: -0.10 NRS points per week** (deep minus
      superficial), i.e. about -1.2 points at week 12, with no depth difference at baseline.
      Chronic adds +0.5 at every time point; there is no chronic-by-time effect.
    * VAS (mm) = round(clip(10 (mu + eps) + N(0, 5²), 0, 100)) to whole mm, recorded at
      90 % of assessments (missing completely at random otherwise). True depth-by-time
      effect -1.0 mm per week (-12 mm at week 12).
    * ODI: latent disability ``d_i(t) = 38 + 4 chronic + v0_i + (-1.2 - 0.5 deep + v1_i) t``
      percent, with independent ``v0 ~ N(0, 8²)`` and ``v1 ~ N(0, 0.4²)``. Section k
      (k = 1..10) = clip(round(d / 20 + N(0, 0.6²)), 0, 5), so the ODI total is about ``d``
      (apart from clipping at 0 and 5): **true depth-by-time effect -0.5 ODI points per week**
      (-6 points at week 12) on the latent scale. Clipping the items at 0 and 5 attenuates
      the slope of the *scored* ODI slightly: about -0.475 per week (within-patient
      regression on 3 x 20,000 simulated patients gave -0.468 to -0.485), while NRS and VAS
      keep about -0.10 and -1.0. Section 8 (sex life) is unanswered with P = 0.25, every
      other section with P = 0.03, independently.
    * ODI recording differs by site: ``Hillview`` records only the total,
      ``odi`` = sum / (5 x answered sections) x 100 over the generated answered sections
      (whatever their number; empty only if none was answered), rounded to 0.1, with the item
      columns empty; the other sites record only the ten items (``odi`` empty).
      ``odi_version`` is ``2.1a`` everywhere.
    * Missing data: every patient has the baseline. Each post-baseline visit is missed
      (intermittently) with P = 0.08. After each post-baseline visit (attended or missed) the
      patient drops out for good with P = 0.07, or 0.15 when the last *observed* NRS
      (the baseline if none since) is >= 7: missing at random given the observed data.
    * Co-interventions (an intercurrent event, ICH E9(R1)): at each attended post-baseline
      visit a patient who has not yet done so reports having started a co-intervention or
      medication since the previous assessment with P = 0.04, or 0.10 when the NRS of that
      visit is >= 7 (``co_intervention_started`` ``yes``; ``no`` at the patient's other
      post-baseline visits, empty at baseline). About 16 % of patients report one. **It has
      no effect on any outcome**, so the hypothetical and treatment-policy estimands of the
      depth effect are the same number here.

Pre/post-session measurements (immediate relief; issue 17)
    * Drawn after everything above from their own stream, ``PCG64([seed, 3])``, so the rows
      and numbers above do not depend on them. Each session is measured immediately before
      and after needling with P = 0.30: two assessment rows dated on the session's day,
      ``timing`` ``pre_session`` / ``post_session``, no visit number, NRS only.
    * Before: ``round(clip(mu_i(t) + e, 0, 10))`` with ``mu_i(t)`` the patient's latent NRS
      above at ``t`` = weeks since the first session and ``e ~ N(0, 0.7²)``; after: the same
      ``mu_i(t)`` minus the **true immediate relief 1.0 + 0.6 deep + 0.4 twitch** NRS points
      (the session's own twitch), with its own ``e``. The relief is transient: it does not
      enter any visit's NRS, so given depth and twitch it says nothing about the change at
      the next visit (true slope 0).

Co-interventions
    * ``co_intervention`` is drawn per session independently of everything else: **its true
      effect on every outcome, and its true interaction with depth and twitch, is 0**.

Visit schedule
    The schedule above (five visits, about 4.2 assessments per patient after missed visits
    and dropout) is the default; the demo data use it. A study can be simulated with another
    schedule, ``simulate_study(n, seed, visit_weeks=...)``: visits 0, 1, ..., K at the given
    whole weeks, everything else as above (each post-baseline visit can be missed or end in
    dropout). :data:`DENSE_VISIT_WEEKS` (weekly to week 4, then every two weeks to week 12:
    nine visits, about 6.2 assessments per patient) gives the same 12-week course with more
    rows per patient, e.g. the 600,000 assessments of 100,000 patients that the end-to-end
    benchmark runs. Patients and sessions are drawn before the assessments, so they do not
    depend on the schedule.

Bad rows
    :func:`add_bad_rows` appends ten deliberately faulty rows (listed in its docstring) so that
    the pipeline's quarantine has something to show, and returns a manifest of them.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import tempfile
from collections.abc import Mapping
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import CONTRAINDICATIONS as CONTRAINDICATION_FLAGS
from pipeline.schemas.raw import ODI_ITEMS, POST_SESSION, PRE_SESSION, column_names

PATIENT_SCHEMA_COLUMNS = column_names("patients")
SESSION_SCHEMA_COLUMNS = column_names("sessions")
# the demo times assessments by their dates, so it writes no weeks column
ASSESSMENT_SCHEMA_COLUMNS = tuple(c for c in column_names("assessments") if c != "weeks")

__all__ = [
    "ASSESSMENT_COLUMNS",
    "DENSE_VISIT_WEEKS",
    "PATIENT_COLUMNS",
    "SESSION_COLUMNS",
    "TABLE_COLUMNS",
    "TRUE_EFFECTS",
    "add_bad_rows",
    "simulate_study",
    "write_raw_tables",
]

#: Every number of the data-generating model (see the module docstring).
TRUE_EFFECTS: dict = {
    "design": {
        "sites": {"Northside": 0.40, "Riverside": 0.35, "Hillview": 0.25},
        "therapists": {
            "Northside": ["T01", "T02", "T03"],
            "Riverside": ["T04", "T05", "T06"],
            "Hillview": ["T07", "T08"],
        },
        "p_primary_therapist": 0.80,
        "enrolment_start": "2025-01-06",
        "enrolment_days": 548,
        "p_chronic": 0.60,
        "chronic_symptom_weeks": (13.0, 260.0),  # log-uniform
        "acute_symptom_weeks": (1.0, 5.0),  # uniform
        "chronic_sessions": (4, 8),
        "acute_sessions": (1, 3),
        "first_session_delay_days": (0, 7),
        "session_interval_days": 7,
        "session_interval_jitter_days": 2,
        "visit_weeks": {0: 0, 1: 2, 2: 4, 3: 8, 4: 12},
        "visit_jitter_days": 3,
        "site_effect": 0.0,
    },
    "patients": {
        "age_mean": 50.0,
        "age_sd": 15.0,
        "age_range": (18, 85),
        "sex": {"female": 0.51, "male": 0.47, "other": 0.02},
        "p_any_contraindication": 0.04,
        "contraindication_weights": {
            "anticoagulants": 0.30,
            "immunocompromised": 0.17,
            "recent_surgery": 0.15,
            "needle_phobia": 0.15,
            "pregnant": 0.10,
            "bleeding_disorder": 0.08,
            "unable_to_consent": 0.05,
        },
        "pregnant_age_range": (18, 50),
        "p_second_contraindication": 0.15,
        "p_protocol_deviation": 0.03,
    },
    "depth": {
        "p_deep": 0.5,
        "level": "patient",
        "baseline_difference": 0.0,
    },
    "twitch": {
        "p_twitch_deep": 0.65,
        "p_twitch_superficial": 0.25,
        "ltr_count_poisson_mean": 1.5,  # ltr_count = 1 + Poisson(1.5) when twitch
        "effect_on_nrs": 0.0,
        "effect_on_vas_mm": 0.0,
        "effect_on_odi": 0.0,
    },
    "session_details": {
        "needles_poisson_mean": 3.0,  # needles = 1 + Poisson(3)
        "retention_mean_min": 10.0,
        "retention_sd_min": 5.0,
        "retention_range_min": (0.5, 20.0),
        "p_active_trigger_point": 0.60,
        "co_intervention": {
            "exercise": 0.45,
            "manual therapy": 0.15,
            "exercise; manual therapy": 0.25,
            "": 0.15,
        },
    },
    "nrs": {
        "intercept": 6.5,
        "chronic": 0.5,
        "time_per_week": -0.20,
        "deep_x_time_per_week": -0.10,
        "deep_at_baseline": 0.0,
        "deep_minus_superficial_week12": -1.2,
        "sd_intercept": 1.0,
        "sd_slope": 0.08,
        "corr_intercept_slope": -0.3,
        "sd_residual": 0.9,
        "range": (0, 10),
    },
    "vas_mm": {
        "scale_from_nrs": 10.0,
        "sd_extra_mm": 5.0,
        "p_recorded": 0.90,
        "deep_x_time_per_week": -1.0,
        "deep_minus_superficial_week12": -12.0,
        "range": (0.0, 100.0),
    },
    "odi": {
        "intercept": 38.0,
        "chronic": 4.0,
        "time_per_week": -1.2,
        "deep_x_time_per_week": -0.5,
        "deep_at_baseline": 0.0,
        "deep_minus_superficial_week12": -6.0,
        "scored_deep_x_time_per_week_approx": -0.475,  # attenuated by item clipping
        "sd_intercept": 8.0,
        "sd_slope": 0.4,
        "corr_intercept_slope": 0.0,
        "item_divisor": 20.0,
        "item_sd": 0.6,
        "p_unanswered_section8": 0.25,
        "p_unanswered_other_section": 0.03,
        "total_only_sites": ["Hillview"],
        "version": "2.1a",
    },
    "adverse_events": {
        "p_per_session_superficial": 0.08,
        "p_per_session_deep": 0.20,
        "rate_ratio_deep_vs_superficial": 2.5,
        "type": {
            "soreness": 0.60,
            "bruising": 0.17,
            "fatigue": 0.10,
            "discomfort": 0.10,
            "bleeding": 0.02,
            "fainting": 0.01,
        },
        "severity": {"mild": 0.84, "moderate": 0.15, "severe": 0.01},
    },
    "immediate_relief": {
        "stream": 3,  # PCG64([seed, 3]): independent of the study's own PCG64(seed)
        "p_session_measured": 0.30,
        "sd_measurement": 0.7,
        "relief_nrs": 1.0,  # pre minus post, superficial session without twitch
        "deep": 0.6,  # extra relief of a deep session
        "twitch": 0.4,  # extra relief of a session with a twitch response
        "next_visit_slope": 0.0,  # transient: no relation to the next visit given depth, twitch
    },
    "co_intervention": {
        "effect_on_outcomes": 0.0,
        "interaction_with_depth": 0.0,
        "interaction_with_twitch": 0.0,
    },
    "missing_data": {
        "p_missed_visit": 0.08,
        "p_dropout_after_visit": 0.07,
        "p_dropout_after_visit_high_pain": 0.15,
        "high_pain_nrs": 7,
        "mechanism": "MAR (dropout depends on the last observed NRS)",
    },
    "intercurrent_events": {
        "p_co_intervention_per_visit": 0.04,
        "p_co_intervention_high_pain": 0.10,
        "high_pain_nrs": 7,
        "effect_on_outcomes": 0.0,
        "stream": 19,  # SeedSequence([seed, stream]): a generator of their own
    },
}

#: A longer visit schedule (visit -> nominal week) over the same 12 weeks as the default:
#: weekly to week 4, then every two weeks. About 6.2 assessments per patient after missed
#: visits and dropout (4.2 with the default), for studies of a given number of assessments.
DENSE_VISIT_WEEKS: dict[int, int] = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8, 7: 10, 8: 12}
_MAX_VISIT = 100  # the data contract's largest visit number (pipeline.schemas.raw)

#: Column order of each raw table (= CSV file stem): the data contract's, from
#: :mod:`pipeline.schemas.raw`, so the simulator cannot drift from what validation expects.
PATIENT_COLUMNS: tuple[str, ...] = PATIENT_SCHEMA_COLUMNS
SESSION_COLUMNS: tuple[str, ...] = SESSION_SCHEMA_COLUMNS
ASSESSMENT_COLUMNS: tuple[str, ...] = ASSESSMENT_SCHEMA_COLUMNS
ODI_ITEM_COLUMNS: tuple[str, ...] = ODI_ITEMS
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": PATIENT_COLUMNS,
    "sessions": SESSION_COLUMNS,
    "assessments": ASSESSMENT_COLUMNS,
}

MANIFEST_COLUMNS: tuple[str, ...] = (
    "table",
    "fault",
    "description",
    PATIENT_ID,
    "visit",
    "session_number",
    "row",
    "csv_line",
)

_MIN_PATIENTS = 10
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _check_int(value: object, name: str, minimum: int) -> int:
    """Return ``value`` as an ``int`` or raise ``ValueError`` if it is not an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(
            f"{name} must be an integer of at least {minimum}, got {value!r} "
            f"of type {type(value).__name__}."
        )
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, got {int(value)}.")
    return int(value)


def _yes_no(flags: np.ndarray) -> np.ndarray:
    """Map a boolean array to ``"yes"`` / ``"no"`` strings."""
    return np.where(np.asarray(flags, dtype=bool), "yes", "no")


def _iso(days: np.ndarray) -> np.ndarray:
    """Convert day offsets from the enrolment start to ISO ``YYYY-MM-DD`` strings."""
    start = np.datetime64(TRUE_EFFECTS["design"]["enrolment_start"], "D")
    return np.datetime_as_string(start + np.asarray(days, dtype=np.int64), unit="D")


def _str_col(values: np.ndarray | list, missing: np.ndarray | None = None) -> pd.Series:
    """Build a pandas string column; cells where ``missing`` is true become missing."""
    series = pd.Series(np.asarray(values, dtype=object), dtype="str")
    if missing is not None:
        series = series.mask(pd.Series(np.asarray(missing, dtype=bool)))
    return series


def _schedule(visit_weeks: Mapping[int, int] | None) -> dict[int, int]:
    """Check a visit schedule (visit -> nominal week); None gives the default schedule.

    Visits must be 0, 1, ..., K (K at most 100, the data contract's limit) at whole weeks
    that start at 0 and increase by at least one week, so that the +/- 3 days of jitter can
    never date a visit before the previous one.
    """
    if visit_weeks is None:
        return TRUE_EFFECTS["design"]["visit_weeks"]
    if not isinstance(visit_weeks, Mapping) or not visit_weeks:
        raise ValueError("visit_weeks must be a non-empty mapping of visit number to week.")
    pairs = [
        (_check_int(visit, "a visit number", 0), _check_int(week, "a visit week", 0))
        for visit, week in visit_weeks.items()
    ]
    schedule = dict(sorted(pairs))
    visits = list(schedule)
    if visits != list(range(len(visits))) or visits[-1] > _MAX_VISIT:
        raise ValueError(
            f"visit_weeks must number the visits 0, 1, ..., K (K <= {_MAX_VISIT}), got {visits}."
        )
    weeks = list(schedule.values())
    if weeks[0] != 0 or any(b - a < 1 for a, b in itertools.pairwise(weeks)):
        raise ValueError(
            "visit_weeks must put visit 0 at week 0 and each later visit at least one week "
            f"after the previous one, got {weeks}."
        )
    return schedule


def _probs(mapping: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    """Split a ``{level: probability}`` mapping into levels and normalised probabilities."""
    levels = list(mapping)
    p = np.array([mapping[k] for k in levels], dtype=float)
    return levels, p / p.sum()


# ----------------------------------------------------------------------------------------
# simulation
# ----------------------------------------------------------------------------------------
def simulate_study(
    n_patients: int, seed: int, *, visit_weeks: Mapping[int, int] | None = None
) -> dict[str, pd.DataFrame]:
    """Simulate one observational dry-needling study in the canonical raw layout.

    Parameters
    ----------
    n_patients : int
        Number of patients to enrol (at least 10).
    seed : int
        Non-negative seed of the ``numpy.random.PCG64`` generator; the same
        ``(n_patients, seed)`` always gives identical tables.
    visit_weeks : mapping of int to int, optional
        Visit schedule, visit number -> nominal week: visits 0, 1, ..., K at whole weeks
        starting at 0, at least one week apart (e.g. :data:`DENSE_VISIT_WEEKS`). Default: the
        schedule of :data:`TRUE_EFFECTS` (visits 0-4 at weeks 0, 2, 4, 8, 12).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{"patients", "sessions", "assessments"}`` with the columns of
        :data:`TABLE_COLUMNS`, in that order. Dates are ISO strings, yes/no flags are
        ``"yes"``/``"no"`` strings, counts are ``int64``, measurements ``float64``, ODI
        items nullable ``Int64``; missing cells are missing values (empty in the CSV).

    Raises
    ------
    ValueError
        If ``n_patients`` is not an integer >= 10, ``seed`` is not a non-negative integer or
        ``visit_weeks`` is not a schedule as described.

    Notes
    -----
    The data-generating model, with every number, is in the module docstring and in
    :data:`TRUE_EFFECTS`.
    """
    n = _check_int(n_patients, "n_patients", _MIN_PATIENTS)
    seed = _check_int(seed, "seed", 0)
    schedule = _schedule(visit_weeks)
    rng = np.random.Generator(np.random.PCG64(seed))
    stream = TRUE_EFFECTS["intercurrent_events"]["stream"]
    ice_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))

    patients, latent = _simulate_patients(rng, n)
    sessions, first_session_day = _simulate_sessions(rng, patients, latent)
    assessments = _simulate_assessments(rng, patients, latent, first_session_day, schedule, ice_rng)
    relief_rng = np.random.Generator(
        np.random.PCG64([seed, TRUE_EFFECTS["immediate_relief"]["stream"]])
    )
    measured = _simulate_session_measurements(relief_rng, patients, sessions, latent)
    assessments = _append_rows(assessments, measured)
    return {"patients": patients, "sessions": sessions, "assessments": assessments}


def _append_rows(assessments: pd.DataFrame, more: pd.DataFrame) -> pd.DataFrame:
    """Append rows without a visit number, keeping ``visit`` whole numbers (nullable)."""
    out = assessments.copy()
    out["visit"] = out["visit"].astype("Int64")
    if more.empty:
        return out
    filled = pd.DataFrame(
        {
            c: more[c] if c in more else pd.Series([None] * len(more)).astype(out[c].dtype)
            for c in out.columns
        }
    )
    return pd.concat([out, filled], ignore_index=True)


def _simulate_session_measurements(
    rng: np.random.Generator, patients: pd.DataFrame, sessions: pd.DataFrame, latent: dict
) -> pd.DataFrame:
    """Draw the pre/post-session NRS pairs (own stream; see the module docstring)."""
    par = TRUE_EFFECTS["immediate_relief"]
    nrs_par = TRUE_EFFECTS["nrs"]
    m = len(sessions)
    chosen = rng.random(m) < par["p_session_measured"]
    noise = rng.normal(0.0, par["sd_measurement"], size=(m, 2))
    index = pd.Series(np.arange(len(patients)), index=patients[PATIENT_ID].to_numpy())
    owner = index.reindex(sessions[PATIENT_ID].to_numpy()).to_numpy()
    day = np.array([_days(str(d)) for d in sessions["session_date"]], dtype=np.int64)
    first = pd.Series(day).groupby(owner).transform("min").to_numpy()
    t = (day - first) / 7.0
    deep = latent["deep"][owner].astype(float)
    twitch = (sessions["twitch"].to_numpy(dtype=object) == "yes").astype(float)
    mu = (
        nrs_par["intercept"]
        + nrs_par["chronic"] * latent["chronic"][owner]
        + latent["u0"][owner]
        + (nrs_par["time_per_week"] + nrs_par["deep_x_time_per_week"] * deep + latent["u1"][owner])
        * t
    )
    relief = par["relief_nrs"] + par["deep"] * deep + par["twitch"] * twitch
    lo, hi = nrs_par["range"]
    pre = np.rint(np.clip(mu + noise[:, 0], lo, hi)).astype(np.int64)
    post = np.rint(np.clip(mu - relief + noise[:, 1], lo, hi)).astype(np.int64)
    rows = np.flatnonzero(chosen)
    k = rows.size
    ids = sessions[PATIENT_ID].to_numpy(dtype=object)[rows]
    dates = sessions["session_date"].to_numpy(dtype=object)[rows]
    frame = pd.DataFrame(index=pd.RangeIndex(2 * k))
    frame[PATIENT_ID] = _str_col(np.repeat(ids, 2))
    frame["visit"] = pd.array([pd.NA] * (2 * k), dtype="Int64")
    frame["assessment_date"] = _str_col(np.repeat(dates, 2))
    frame["nrs"] = np.column_stack([pre[rows], post[rows]]).ravel()
    frame["timing"] = _str_col(np.tile(np.array([PRE_SESSION, POST_SESSION], dtype=object), k))
    return frame


def _simulate_patients(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, dict]:
    """Draw the patient table and the per-patient latent quantities."""
    design = TRUE_EFFECTS["design"]
    pat = TRUE_EFFECTS["patients"]
    nrs = TRUE_EFFECTS["nrs"]
    odi = TRUE_EFFECTS["odi"]

    enrol_day = np.sort(rng.integers(0, design["enrolment_days"], size=n))
    site_levels, site_p = _probs(design["sites"])
    site_idx = rng.choice(len(site_levels), size=n, p=site_p)
    lo_age, hi_age = pat["age_range"]
    age = np.clip(np.rint(rng.normal(pat["age_mean"], pat["age_sd"], size=n)), lo_age, hi_age)
    age = age.astype(np.int64)
    sex_levels, sex_p = _probs(pat["sex"])
    sex = np.asarray(sex_levels, dtype=object)[rng.choice(len(sex_levels), size=n, p=sex_p)]

    chronic = rng.random(n) < design["p_chronic"]
    c_lo, c_hi = design["chronic_symptom_weeks"]
    a_lo, a_hi = design["acute_symptom_weeks"]
    weeks_chronic = np.exp(rng.uniform(math.log(c_lo), math.log(c_hi), size=n))
    weeks_acute = rng.uniform(a_lo, a_hi, size=n)
    symptom_weeks = np.round(np.where(chronic, weeks_chronic, weeks_acute), 1)
    symptom_weeks = np.clip(
        symptom_weeks, np.where(chronic, c_lo, a_lo), np.where(chronic, c_hi, a_hi)
    )

    deep = rng.random(n) < TRUE_EFFECTS["depth"]["p_deep"]

    flags = {name: np.zeros(n, dtype=bool) for name in CONTRAINDICATION_FLAGS}
    has_ci = rng.random(n) < pat["p_any_contraindication"]
    weights = pat["contraindication_weights"]
    preg_lo, preg_hi = pat["pregnant_age_range"]
    for i in np.flatnonzero(has_ci):
        can_be_pregnant = sex[i] == "female" and preg_lo <= age[i] <= preg_hi
        eligible = [f for f in weights if f != "pregnant" or can_be_pregnant]
        p = np.array([weights[f] for f in eligible])
        first = int(rng.choice(len(eligible), p=p / p.sum()))
        flags[eligible[first]][i] = True
        if rng.random() < pat["p_second_contraindication"]:
            rest = [f for k, f in enumerate(eligible) if k != first]
            p = np.array([weights[f] for f in rest])
            flags[rest[int(rng.choice(len(rest), p=p / p.sum()))]][i] = True
    deviation = rng.random(n) < pat["p_protocol_deviation"]

    # NRS random intercept and slope: correlated bivariate normal via Cholesky.
    z = rng.standard_normal((n, 2))
    rho = nrs["corr_intercept_slope"]
    u0 = nrs["sd_intercept"] * z[:, 0]
    u1 = nrs["sd_slope"] * (rho * z[:, 0] + math.sqrt(1.0 - rho**2) * z[:, 1])
    v0 = rng.normal(0.0, odi["sd_intercept"], size=n)
    v1 = rng.normal(0.0, odi["sd_slope"], size=n)

    width = max(4, len(str(n)))
    ids = np.array([f"P{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
    site = np.asarray(site_levels, dtype=object)[site_idx]

    columns: dict[str, pd.Series | np.ndarray] = {
        PATIENT_ID: _str_col(ids),
        "site": _str_col(site),
        "enrolment_date": _str_col(_iso(enrol_day)),
        "age": age,
        "sex": _str_col(sex),
        "symptom_weeks": symptom_weeks.astype(np.float64),
        "arm": _str_col(np.full(n, "", dtype=object), missing=np.ones(n, dtype=bool)),
    }
    for name in CONTRAINDICATION_FLAGS:
        columns[name] = _str_col(_yes_no(flags[name]))
    columns["protocol_deviation"] = _str_col(_yes_no(deviation))
    patients = pd.DataFrame(columns)[list(PATIENT_COLUMNS)]

    latent = {
        "enrol_day": enrol_day,
        "site": site,
        "chronic": chronic,
        "deep": deep,
        "u0": u0,
        "u1": u1,
        "v0": v0,
        "v1": v1,
    }
    return patients, latent


def _simulate_sessions(
    rng: np.random.Generator, patients: pd.DataFrame, latent: dict
) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw the session table; also return each patient's first-session day offset."""
    design = TRUE_EFFECTS["design"]
    twitch_par = TRUE_EFFECTS["twitch"]
    det = TRUE_EFFECTS["session_details"]
    ae_par = TRUE_EFFECTS["adverse_events"]
    n = len(patients)
    chronic = latent["chronic"]
    deep = latent["deep"]

    c_lo, c_hi = design["chronic_sessions"]
    a_lo, a_hi = design["acute_sessions"]
    n_chronic = rng.integers(c_lo, c_hi + 1, size=n)
    n_acute = rng.integers(a_lo, a_hi + 1, size=n)
    n_sessions = np.where(chronic, n_chronic, n_acute)
    d_lo, d_hi = design["first_session_delay_days"]
    first_delay = rng.integers(d_lo, d_hi + 1, size=n)

    therapists = design["therapists"]
    n_ther = np.array([len(therapists[s]) for s in latent["site"]])
    primary = np.floor(rng.random(n) * n_ther).astype(np.int64)

    owner = np.repeat(np.arange(n), n_sessions)
    m = owner.size
    starts = np.concatenate(([0], np.cumsum(n_sessions)[:-1]))
    session_number = np.arange(m) - np.repeat(starts, n_sessions) + 1

    jit = design["session_interval_jitter_days"]
    gaps = design["session_interval_days"] + rng.integers(-jit, jit + 1, size=m)
    gaps = np.where(session_number == 1, first_delay[owner], gaps)
    cum = np.cumsum(gaps)
    before = np.repeat(cum[starts] - gaps[starts], n_sessions)
    day = latent["enrol_day"][owner] + (cum - before)

    deep_s = deep[owner]
    p_tw = np.where(deep_s, twitch_par["p_twitch_deep"], twitch_par["p_twitch_superficial"])
    twitch = rng.random(m) < p_tw
    ltr = np.where(twitch, 1 + rng.poisson(twitch_par["ltr_count_poisson_mean"], size=m), 0)
    needles = 1 + rng.poisson(det["needles_poisson_mean"], size=m)
    r_lo, r_hi = det["retention_range_min"]
    retention = rng.normal(det["retention_mean_min"], det["retention_sd_min"], size=m)
    retention = np.round(np.clip(retention, r_lo, r_hi), 1)
    active = rng.random(m) < det["p_active_trigger_point"]
    co_levels, co_p = _probs(det["co_intervention"])
    co = np.asarray(co_levels, dtype=object)[rng.choice(len(co_levels), size=m, p=co_p)]

    p_ae = np.where(deep_s, ae_par["p_per_session_deep"], ae_par["p_per_session_superficial"])
    has_ae = rng.random(m) < p_ae
    type_levels, type_p = _probs(ae_par["type"])
    ae_type = np.asarray(type_levels, dtype=object)[rng.choice(len(type_levels), size=m, p=type_p)]
    sev_levels, sev_p = _probs(ae_par["severity"])
    ae_sev = np.asarray(sev_levels, dtype=object)[rng.choice(len(sev_levels), size=m, p=sev_p)]

    use_primary = rng.random(m) < design["p_primary_therapist"]
    other = np.floor(rng.random(m) * n_ther[owner]).astype(np.int64)
    t_idx = np.where(use_primary, primary[owner], other)
    therapist = np.array(
        [therapists[s][k] for s, k in zip(latent["site"][owner], t_idx, strict=True)],
        dtype=object,
    )

    ids = patients[PATIENT_ID].to_numpy(dtype=object)
    sessions = pd.DataFrame(
        {
            PATIENT_ID: _str_col(ids[owner]),
            "session_number": session_number.astype(np.int64),
            "session_date": _str_col(_iso(day)),
            "therapist": _str_col(therapist),
            "depth": _str_col(np.where(deep_s, "deep", "superficial")),
            "twitch": _str_col(_yes_no(twitch)),
            "ltr_count": ltr.astype(np.int64),
            "needles": needles.astype(np.int64),
            "retention_min": retention.astype(np.float64),
            "trigger_point": _str_col(np.where(active, "active", "latent")),
            "co_intervention": _str_col(co, missing=co == ""),
            "adverse_event": _str_col(np.where(has_ae, ae_type, "none")),
            "ae_severity": _str_col(ae_sev, missing=~has_ae),
        }
    )[list(SESSION_COLUMNS)]
    return sessions, day[starts]


def _simulate_assessments(
    rng: np.random.Generator,
    patients: pd.DataFrame,
    latent: dict,
    first_session_day: np.ndarray,
    visit_weeks: Mapping[int, int],
    ice_rng: np.random.Generator,
) -> pd.DataFrame:
    """Draw the assessment table (NRS, VAS, ODI) with missed visits and dropout.

    The co-intervention events come from ``ice_rng`` alone (module docstring).
    """
    design = TRUE_EFFECTS["design"]
    nrs_par = TRUE_EFFECTS["nrs"]
    vas_par = TRUE_EFFECTS["vas_mm"]
    odi_par = TRUE_EFFECTS["odi"]
    miss_par = TRUE_EFFECTS["missing_data"]
    n = len(patients)
    visits = np.array(sorted(visit_weeks))
    weeks = np.array([visit_weeks[v] for v in visits])
    n_vis = visits.size
    chronic = latent["chronic"].astype(float)[:, None]
    deep = latent["deep"].astype(float)[:, None]

    jit = design["visit_jitter_days"]
    jitter = rng.integers(-jit, jit + 1, size=(n, n_vis))
    jitter[:, 0] = 0
    offset = 7 * weeks[None, :] + jitter
    day = first_session_day[:, None] + offset
    t = offset / 7.0

    eps = rng.normal(0.0, nrs_par["sd_residual"], size=(n, n_vis))
    vas_noise = rng.normal(0.0, vas_par["sd_extra_mm"], size=(n, n_vis))
    vas_recorded = rng.random((n, n_vis)) < vas_par["p_recorded"]
    item_noise = rng.normal(0.0, odi_par["item_sd"], size=(n, n_vis, 10))
    p_skip = np.full(10, odi_par["p_unanswered_other_section"])
    p_skip[7] = odi_par["p_unanswered_section8"]
    unanswered = rng.random((n, n_vis, 10)) < p_skip
    miss_u = rng.random((n, n_vis))
    drop_u = rng.random((n, n_vis))

    mu = (
        nrs_par["intercept"]
        + nrs_par["chronic"] * chronic
        + latent["u0"][:, None]
        + (
            nrs_par["time_per_week"]
            + nrs_par["deep_x_time_per_week"] * deep
            + latent["u1"][:, None]
        )
        * t
    )
    lo_nrs, hi_nrs = nrs_par["range"]
    nrs = np.rint(np.clip(mu + eps, lo_nrs, hi_nrs)).astype(np.int64)
    lo_vas, hi_vas = vas_par["range"]
    vas = np.rint(np.clip(vas_par["scale_from_nrs"] * (mu + eps) + vas_noise, lo_vas, hi_vas))
    vas = np.where(vas_recorded, vas, np.nan)

    d = (
        odi_par["intercept"]
        + odi_par["chronic"] * chronic
        + latent["v0"][:, None]
        + (
            odi_par["time_per_week"]
            + odi_par["deep_x_time_per_week"] * deep
            + latent["v1"][:, None]
        )
        * t
    )
    items = np.clip(np.rint(d[:, :, None] / odi_par["item_divisor"] + item_noise), 0, 5)
    items = np.where(unanswered, np.nan, items)
    answered = (~unanswered).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(items, axis=2) / (5.0 * answered) * 100.0
    total = np.where(answered > 0, np.round(total, 1), np.nan)

    # Missed visits and monotone dropout (MAR on the last observed NRS).
    observed = np.zeros((n, n_vis), dtype=bool)
    observed[:, 0] = True
    active = np.ones(n, dtype=bool)
    last_nrs = nrs[:, 0].copy()
    for j in range(1, n_vis):
        observed[:, j] = active & (miss_u[:, j] >= miss_par["p_missed_visit"])
        last_nrs = np.where(observed[:, j], nrs[:, j], last_nrs)
        p_drop = np.where(
            last_nrs >= miss_par["high_pain_nrs"],
            miss_par["p_dropout_after_visit_high_pain"],
            miss_par["p_dropout_after_visit"],
        )
        active &= drop_u[:, j] >= p_drop

    started = _co_interventions(ice_rng, observed, nrs)

    rows_i, rows_j = np.nonzero(observed)  # row-major: patient, then visit
    total_only = np.isin(latent["site"][rows_i], odi_par["total_only_sites"])
    ids = patients[PATIENT_ID].to_numpy(dtype=object)
    columns: dict[str, pd.Series | np.ndarray] = {
        PATIENT_ID: _str_col(ids[rows_i]),
        "visit": visits[rows_j].astype(np.int64),
        "assessment_date": _str_col(_iso(day[rows_i, rows_j])),
        "nrs": nrs[rows_i, rows_j],
        "vas_mm": vas[rows_i, rows_j].astype(np.float64),
        "odi": np.where(total_only, total[rows_i, rows_j], np.nan).astype(np.float64),
    }
    obs_items = items[rows_i, rows_j, :]
    for k, name in enumerate(ODI_ITEM_COLUMNS):
        col = np.where(total_only, np.nan, obs_items[:, k])
        columns[name] = pd.array([pd.NA if np.isnan(x) else int(x) for x in col], dtype="Int64")
    columns["odi_version"] = _str_col(np.full(rows_i.size, odi_par["version"], dtype=object))
    columns["timing"] = _str_col(
        np.full(rows_i.size, "", dtype=object), missing=np.ones(rows_i.size, dtype=bool)
    )
    columns["co_intervention_started"] = _str_col(
        _yes_no(started[rows_i, rows_j]), missing=rows_j == 0
    )
    return pd.DataFrame(columns)[list(ASSESSMENT_COLUMNS)]


def _co_interventions(
    rng: np.random.Generator, observed: np.ndarray, nrs: np.ndarray
) -> np.ndarray:
    """Return ``(n, visits)``: True where a patient first reports a co-intervention.

    Only attended post-baseline visits can hold the report (module docstring).
    """
    par = TRUE_EFFECTS["intercurrent_events"]
    u = rng.random(observed.shape)  # one draw per cell, whatever was attended
    p = np.where(
        nrs >= par["high_pain_nrs"],
        par["p_co_intervention_high_pain"],
        par["p_co_intervention_per_visit"],
    )
    started = observed & (u < p)
    started[:, 0] = False
    return started & (np.cumsum(started, axis=1) == 1)


# ----------------------------------------------------------------------------------------
# bad rows
# ----------------------------------------------------------------------------------------
def _check_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    """Raise ``ValueError`` unless ``tables`` holds the three raw tables with their columns."""
    if not isinstance(tables, Mapping):
        raise ValueError("tables must be a mapping of table name to DataFrame.")
    for name, cols in TABLE_COLUMNS.items():
        if name not in tables or not isinstance(tables[name], pd.DataFrame):
            raise ValueError(f"tables must contain a DataFrame named {name!r}.")
        missing = [c for c in cols if c not in tables[name].columns]
        if missing:
            raise ValueError(f"table {name!r} lacks the columns {missing}.")
    for name in TABLE_COLUMNS:
        if tables[name].empty:
            raise ValueError(f"the {name} table must not be empty.")


def _days(iso: str) -> int:
    """Day offset of an ISO date from the enrolment start."""
    start = np.datetime64(TRUE_EFFECTS["design"]["enrolment_start"], "D")
    return int((np.datetime64(iso, "D") - start).astype(np.int64))


def add_bad_rows(
    tables: Mapping[str, pd.DataFrame],
    seed: int,
    *,
    visit_weeks: Mapping[int, int] | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Insert ten deliberately faulty rows so that the pipeline's quarantine is visible.

    The original rows are kept unchanged and in their order; the bad rows are inserted at
    positions drawn from ``numpy.random.Generator(numpy.random.PCG64(seed))`` (the
    duplicate always comes after the row it copies). The faults are:

    * ``assessments`` / ``nrs_out_of_range``: NRS of 11;
    * ``assessments`` / ``vas_out_of_range``: VAS of 140 mm;
    * ``assessments`` / ``odi_item_out_of_range``: ODI section 3 scored 6 (for a patient of
      an item-recording site);
    * ``assessments`` / ``vas_not_numeric``: VAS written ``abc``;

    (each of these four is the row's only score, so that the row is quarantined whole: a bad
    score beside readable ones would be blanked and the row kept, and the other scores of a
    bad row would be copies of the patient's baseline);
    * ``assessments`` / ``duplicate_assessment``: exact copy of an existing row (same patient
      and visit), placed after the original;
    * ``assessments`` / ``assessment_before_enrolment``: dated 7 days before enrolment;
    * ``sessions`` / ``invalid_depth``: an extra session (next number, a week after the
      patient's last one) with depth code ``medium``;
    * ``sessions`` / ``orphan_session``: session of unknown patient ``P9999`` (``P99999``
      when ``P9999`` exists);
    * ``sessions`` / ``session_before_enrolment``: an extra session (next number) dated
      3 days before the patient's enrolment;
    * ``patients`` / ``missing_site``: a new patient (next free id, no sessions or
      assessments) with an empty site.

    Bad assessment rows (other than the duplicate) use (patient, visit) pairs that are absent
    from the data (missed visits or after dropout) so that each row carries one fault only;
    when too few such pairs exist (tiny samples), the visits after the schedule's last are
    used instead (5, 6, ... with the default schedule), four weeks apart.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The ``patients``, ``sessions`` and ``assessments`` tables, e.g. from
        :func:`simulate_study`. They are not modified.
    seed : int
        Non-negative seed choosing the patients and the insertion positions.
    visit_weeks : mapping of int to int, optional
        The visit schedule the tables were simulated with (see :func:`simulate_study`);
        default: the schedule of :data:`TRUE_EFFECTS`.

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        New tables with the bad rows inserted and a fresh ``RangeIndex``. ``vas_mm`` becomes
        an ``object`` column because of the ``abc`` value.
    manifest : pandas.DataFrame
        One row per bad row, columns ``table``, ``fault``, ``description``, ``patient_id``,
        ``visit`` and ``session_number`` (nullable ``Int64``), ``row`` (0-based position in
        the returned table) and ``csv_line`` (1-based line in the written CSV, header = 1).

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative integer, a table or column is missing or
        ``visit_weeks`` is not a schedule as :func:`simulate_study` takes.
    """
    seed = _check_int(seed, "seed", 0)
    visit_weeks = _schedule(visit_weeks)
    _check_tables(tables)
    rng = np.random.Generator(np.random.PCG64(seed))
    patients = tables["patients"]
    sessions = tables["sessions"]
    # the pre/post-session rows (no visit number) stay at the end, untouched: the bad rows
    # are placed among the visits as before they existed
    everything = tables["assessments"]
    has_visit = everything["visit"].notna().to_numpy()
    assessments = everything[has_visit].reset_index(drop=True)
    measured = everything[~has_visit].reset_index(drop=True)
    assessments = assessments.astype({"visit": "int64"})

    ids = patients[PATIENT_ID].astype(str).tolist()
    enrol = dict(zip(ids, patients["enrolment_date"].astype(str), strict=True))
    site = dict(zip(ids, patients["site"].astype(str), strict=True))
    start = np.datetime64(TRUE_EFFECTS["design"]["enrolment_start"], "D")

    def iso(days: int) -> str:
        return str(start + np.timedelta64(int(days), "D"))

    # (patient, visit) pairs absent from the data, in a seeded random order.
    present = set(zip(assessments[PATIENT_ID].astype(str), assessments["visit"], strict=True))
    with_baseline = [
        p
        for p in assessments.loc[assessments["visit"] == 0, PATIENT_ID].astype(str).unique()
        if p in enrol
    ]
    if not with_baseline:
        raise ValueError("the assessments table has no baseline (visit 0) row of a known patient.")
    free = [(p, v) for p in with_baseline for v in sorted(visit_weeks) if (p, v) not in present]
    free = [free[k] for k in rng.permutation(len(free))]
    hidden = set(TRUE_EFFECTS["odi"]["total_only_sites"])
    last_visit = max(visit_weeks)
    extra_visit = last_visit + 1

    def take_slot(require_items: bool = False) -> tuple[str, int]:
        nonlocal extra_visit
        for k, (p, _) in enumerate(free):
            if not require_items or site.get(p) not in hidden:
                return free.pop(k)
        pool = [p for p in with_baseline if not require_items or site.get(p) not in hidden]
        pool = pool or with_baseline
        extra_visit += 1
        return pool[int(rng.integers(len(pool)))], extra_visit - 1

    def template_row(p: str) -> dict:
        mine = assessments.loc[(assessments[PATIENT_ID] == p) & (assessments["visit"] == 0)]
        return mine.iloc[0].to_dict()

    def new_assessment(p: str, v: int) -> dict:
        row = template_row(p)
        base_day = _days(str(row["assessment_date"]))
        week = visit_weeks.get(v, visit_weeks[last_visit] + 4 * (v - last_visit))
        row["visit"] = v
        row["assessment_date"] = iso(base_day + 7 * week)
        return row

    bad: dict[str, list[tuple[dict, str, str, int]]] = {
        "patients": [],
        "sessions": [],
        "assessments": [],
    }

    # --- assessments -------------------------------------------------------------------
    def only_score(row: dict, column: str, value: object) -> dict:
        # The faulty score is the row's only score: an unreadable score beside readable ones
        # is blanked and the row kept (pipeline.validate.study.blank_score_cells), and the
        # other scores of these rows are copies of the baseline, not measurements of the visit.
        for name in ("nrs", "vas_mm", "odi", *ODI_ITEM_COLUMNS):
            row[name] = np.nan
        row[column] = value
        return row

    p, v = take_slot()
    row = only_score(new_assessment(p, v), "nrs", 11)
    bad["assessments"].append((row, "nrs_out_of_range", "NRS of 11 (valid range 0-10)", -1))

    p, v = take_slot()
    row = only_score(new_assessment(p, v), "vas_mm", 140.0)
    bad["assessments"].append((row, "vas_out_of_range", "VAS of 140 mm (valid 0-100)", -1))

    p, v = take_slot(require_items=True)
    row = only_score(new_assessment(p, v), "odi_q3", 6)
    bad["assessments"].append(
        (row, "odi_item_out_of_range", "ODI section 3 scored 6 (valid 0-5)", -1)
    )

    p, v = take_slot()
    row = only_score(new_assessment(p, v), "vas_mm", "abc")
    bad["assessments"].append((row, "vas_not_numeric", "VAS recorded as 'abc'", -1))

    src = int(rng.integers(len(assessments)))
    row = assessments.iloc[src].to_dict()
    bad["assessments"].append(
        (
            row,
            "duplicate_assessment",
            "exact duplicate of an existing row (same patient and visit)",
            src,
        )
    )

    p, v = take_slot()
    row = new_assessment(p, v)
    row["assessment_date"] = iso(_days(enrol[p]) - 7)
    bad["assessments"].append(
        (row, "assessment_before_enrolment", "assessment dated 7 days before enrolment", -1)
    )

    # --- sessions ----------------------------------------------------------------------
    def last_session(p: str) -> dict:
        own = sessions.loc[sessions[PATIENT_ID] == p]
        return own.iloc[int(np.argmax(own["session_number"].to_numpy()))].to_dict()

    known = [p for p in sessions[PATIENT_ID].astype(str).unique() if p in enrol]
    if not known:
        raise ValueError("the sessions table has no session of a known patient.")
    chosen = rng.choice(len(known), size=min(2, len(known)), replace=False)
    p_depth, p_early = known[int(chosen[0])], known[int(chosen[-1])]

    row = last_session(p_depth)
    row["session_number"] = int(row["session_number"]) + 1
    row["session_date"] = iso(_days(str(row["session_date"])) + 7)
    row["depth"] = "medium"
    bad["sessions"].append((row, "invalid_depth", "depth code 'medium' (superficial/deep)", -1))

    orphan = "P9999"
    if orphan in enrol:
        orphan = "P" + "9" * (len(ids[-1]) + 1)
    row = sessions.iloc[int(rng.integers(len(sessions)))].to_dict()
    row[PATIENT_ID] = orphan
    row["session_number"] = 1
    bad["sessions"].append((row, "orphan_session", f"session of unknown patient {orphan}", -1))

    row = last_session(p_early)
    row["session_number"] = int(row["session_number"]) + 1
    row["session_date"] = iso(_days(enrol[p_early]) - 3)
    bad["sessions"].append(
        (row, "session_before_enrolment", "session dated 3 days before enrolment", -1)
    )

    # --- patients ----------------------------------------------------------------------
    row = patients.iloc[int(rng.integers(len(patients)))].to_dict()
    numbers = [int(x[1:]) for x in ids if x[1:].isdigit()]
    width = max(4, len(ids[-1]) - 1)
    new_id = f"P{max(numbers, default=0) + 1:0{width}d}"
    while new_id in enrol or new_id == orphan:
        new_id = f"P{int(new_id[1:]) + 1:0{width}d}"
    row[PATIENT_ID] = new_id
    row["site"] = np.nan
    bad["patients"].append((row, "missing_site", "patient row with an empty site", -1))

    out: dict[str, pd.DataFrame] = {}
    records: list[dict] = []
    for name in ("patients", "sessions", "assessments"):
        original = assessments if name == "assessments" else tables[name]
        entries = bad[name]
        n_orig = len(original)
        keys = []
        for k, (_, _, _, after) in enumerate(entries):
            low = after + 1 if after >= 0 else 0
            keys.append(float(rng.integers(low, n_orig + 1)) - 0.5 + 1e-3 * (k + 1))
        extra = pd.DataFrame([e[0] for e in entries], columns=list(original.columns))
        for col in extra.columns:
            try:
                extra[col] = extra[col].astype(original[col].dtype)
            except (TypeError, ValueError):
                # whole numbers with a missing cell stay whole numbers (written without ".0")
                whole = pd.api.types.is_integer_dtype(original[col].dtype)
                extra[col] = extra[col].astype("Int64" if whole else object)
        combined = pd.concat(
            [original.reset_index(drop=True), extra.reset_index(drop=True)], ignore_index=True
        )
        order = np.concatenate([np.arange(n_orig, dtype=float), np.asarray(keys)])
        perm = np.argsort(order, kind="stable")
        combined = combined.iloc[perm].reset_index(drop=True)
        position = {int(old): new for new, old in enumerate(perm)}
        for k, (row, fault, description, _) in enumerate(entries):
            new_row = position[n_orig + k]
            records.append(
                {
                    "table": name,
                    "fault": fault,
                    "description": description,
                    PATIENT_ID: str(row[PATIENT_ID]),
                    "visit": row.get("visit", pd.NA) if name == "assessments" else pd.NA,
                    "session_number": row.get("session_number", pd.NA)
                    if name == "sessions"
                    else pd.NA,
                    "row": new_row,
                    "csv_line": new_row + 2,
                }
            )
        if name == "assessments":
            combined = _append_rows(combined, measured)
        out[name] = combined
    manifest = pd.DataFrame.from_records(records, columns=list(MANIFEST_COLUMNS))
    manifest = manifest.astype(
        {
            "table": "str",
            "fault": "str",
            "description": "str",
            PATIENT_ID: "str",
            "visit": "Int64",
            "session_number": "Int64",
            "row": "int64",
            "csv_line": "int64",
        }
    )
    for name, frame in tables.items():
        if name not in out:
            out[name] = frame.copy()
    return out, manifest


# ----------------------------------------------------------------------------------------
# I/O
# ----------------------------------------------------------------------------------------
def write_raw_tables(
    tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Write each table to ``<out_dir>/<name>.csv`` atomically.

    Each file is written to a temporary file in ``out_dir`` and moved into place with
    :func:`os.replace`, so readers never see a half-written CSV. The format is UTF-8,
    comma-separated, header on line 1, LF line endings, no index, missing values as empty
    cells. Canonical tables are written with their canonical column order; other tables
    (e.g. a bad-row manifest) as given.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Table name (the file stem: letters, digits, ``_``, ``-``, ``.``) to frame.
    out_dir : str or os.PathLike
        Destination folder, created with its parents when missing.

    Returns
    -------
    dict of str to pathlib.Path
        The path written for each table.

    Raises
    ------
    ValueError
        If a table name is not a plain file stem or a value is not a DataFrame.
    """
    if not isinstance(tables, Mapping):
        raise ValueError("tables must be a mapping of table name to DataFrame.")
    for name, frame in tables.items():
        if not isinstance(name, str) or not _TABLE_NAME.match(name):
            raise ValueError(f"table name {name!r} is not a plain file stem.")
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"table {name!r} is not a pandas DataFrame.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, frame in tables.items():
        if name in TABLE_COLUMNS and set(TABLE_COLUMNS[name]) <= set(frame.columns):
            frame = frame[list(TABLE_COLUMNS[name])]
        target = out / f"{name}.csv"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".csv.tmp", dir=out)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                frame.to_csv(handle, index=False, lineterminator="\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written[name] = target
    return written


# ----------------------------------------------------------------------------------------
# adverse-event details (issue 17): a separate random stream, so the demo's draws are unchanged
# ----------------------------------------------------------------------------------------
#: Truths of :func:`simulate_adverse_event_details` (not part of the demo's raw files).
AE_DETAIL_TRUTHS: dict = {
    "stream": 17,  # PCG64([seed, 17]): independent of the study's own PCG64(seed)
    "duration_hours_median": {"soreness": 30.0, "bruising": 96.0, "fatigue": 12.0},
    "duration_log_sd": 0.5,  # log-normal: median x exp(N(0, 0.5^2))
    "default_duration_hours_median": 6.0,
    "p_second_event_fatigue": 0.10,  # a soreness session also has fatigue, severity mild
    "serious": "severity severe",  # serious exactly when the severity is severe
}


def simulate_adverse_event_details(sessions: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Expand the sessions' adverse events into an event table with durations (known truths).

    Each session event of ``sessions`` (``adverse_event`` not ``none``) becomes one row of the
    canonical event table (:class:`pipeline.schemas.raw.AdverseEvents`) with
    ``ae_duration_hours`` log-normal around the median of :data:`AE_DETAIL_TRUTHS` for its
    type (sd 0.5 on the log scale, rounded to 0.5 h), ``serious`` yes exactly when the severity
    is severe; a soreness session gets a second event, ``fatigue`` (mild), with P = 0.10.
    Draws come from ``PCG64([seed, 17])``, a stream of their own, so :func:`simulate_study`'s
    tables (and the committed demo numbers) do not change.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Sessions as :func:`simulate_study` returns them.
    seed : int
        Non-negative seed.

    Returns
    -------
    pandas.DataFrame
        ``patient_id, session_number, ae_type, ae_severity, ae_duration_hours, serious``.
    """
    truth = AE_DETAIL_TRUTHS
    rng = np.random.Generator(np.random.PCG64([_check_int(seed, "seed", 0), truth["stream"]]))
    hit = sessions[sessions["adverse_event"].notna() & (sessions["adverse_event"] != "none")]
    kind = hit["adverse_event"].to_numpy(dtype=object)
    second = (kind == "soreness") & (rng.random(len(hit)) < truth["p_second_event_fatigue"])
    rows = pd.DataFrame(
        {
            PATIENT_ID: np.concatenate([hit[PATIENT_ID], hit[PATIENT_ID][second]]),
            "session_number": np.concatenate(
                [hit["session_number"], hit["session_number"][second]]
            ).astype(np.int64),
            "ae_type": np.concatenate([kind, np.full(int(second.sum()), "fatigue", object)]),
            "ae_severity": np.concatenate(
                [hit["ae_severity"].to_numpy(object), np.full(int(second.sum()), "mild", object)]
            ),
        }
    )
    medians = rows["ae_type"].map(truth["duration_hours_median"])
    medians = medians.fillna(truth["default_duration_hours_median"]).to_numpy(float)
    noise = rng.normal(0.0, truth["duration_log_sd"], size=len(rows))
    rows["ae_duration_hours"] = np.round(2.0 * medians * np.exp(noise)) / 2.0
    rows["serious"] = np.where(rows["ae_severity"] == "severe", "yes", "no")
    return rows.sort_values([PATIENT_ID, "session_number"], kind="stable").reset_index(drop=True)
