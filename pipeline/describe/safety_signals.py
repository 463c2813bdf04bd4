"""Safety signals: patients with a contraindication or caution who were needled (SAP §4b).

The clinics tell patients that people on anticoagulants or with a bleeding disorder, pregnant
women, children under 12 and people who cannot consent are not candidates (and that a weak
immune system, recent surgery or needle phobia call for caution). From the valid patients
(their flags, :data:`pipeline.schemas.raw.CONTRAINDICATIONS`, and ``age``), sessions and the
canonical adverse-event table:

- :func:`patient_flags`: each patient's flags (``under_12`` from ``age``), missing where not
  recorded;
- :func:`needled_with_flags`: per flag, the patients needled anyway (at least one session),
  their sessions by depth (deep needling on anticoagulants is the signal the clinics fear) and
  their adverse events per 100 recorded sessions with the exact Poisson CI;
- :func:`signal_rate_ratios`: the adverse-event rate of flagged patients against patients
  whose flags were all recorded as no, with the exact conditional CI of R's ``poisson.test``.

A flag that was not recorded is never taken for "no": a patient without the flag recorded is
counted in neither group of that flag.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.describe.safety import RATE_METHOD, poisson_exact_ci, ratio_columns
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import CONTRAINDICATIONS, DEPTHS

CHILD_AGE = 12
NOT_CANDIDATES = ("anticoagulants", "bleeding_disorder", "pregnant", "under_12")
NOT_CANDIDATES += ("unable_to_consent",)
"""Flags the clinics name as excluding needling (the rest call for caution)."""
FLAGS = (*NOT_CANDIDATES, *(f for f in CONTRAINDICATIONS if f not in NOT_CANDIDATES))
ANY_FLAG = "any flag"
ALL_DEPTHS = "all"


def patient_flags(patients: pd.DataFrame) -> pd.DataFrame:
    """Each patient's contraindication and caution flags (nullable booleans).

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, one column per flag of :data:`FLAGS` (``under_12``: age below 12,
        missing without an age) and ``any flag`` (yes when a flag is yes, no when every flag
        was recorded as no, missing otherwise).
    """
    out = pd.DataFrame({PATIENT_ID: patients[PATIENT_ID].astype("str").to_numpy()})
    for flag in FLAGS:
        if flag == "under_12":
            age = patients["age"] if "age" in patients else pd.Series(pd.NA, patients.index)
            values = pd.array(age.astype("Float64") < CHILD_AGE, dtype="boolean")
        elif flag in patients:
            values = pd.array(patients[flag], dtype="boolean")
        else:
            values = pd.array([pd.NA] * len(patients), dtype="boolean")
        out[flag] = values
    flags = out[list(FLAGS)]
    yes = flags.fillna(False).any(axis=1)
    all_no = flags.notna().all(axis=1) & ~yes
    out[ANY_FLAG] = pd.array(np.where(yes, True, np.where(all_no, False, pd.NA)), "boolean")
    return out


def _session_rows(
    patients: pd.DataFrame, sessions: pd.DataFrame, events: pd.DataFrame, recorded: pd.Series
) -> pd.DataFrame:
    """One row per session with its depth, recorded flag, events and the patient's flags."""
    per = events.groupby([PATIENT_ID, "session_number"]).size().rename("events")
    rows = pd.DataFrame(
        {
            PATIENT_ID: sessions[PATIENT_ID].astype("str").to_numpy(),
            "session_number": sessions["session_number"].astype("Int64").to_numpy(),
            "depth": sessions["depth"].astype("object").to_numpy(),
            "recorded": recorded.to_numpy(bool),
        }
    )
    rows = rows.merge(per.reset_index(), on=[PATIENT_ID, "session_number"], how="left")
    rows["events"] = rows["events"].fillna(0).astype("int64").where(rows["recorded"], 0)
    return rows.merge(patient_flags(patients), on=PATIENT_ID, how="left")


def _count(rows: pd.DataFrame) -> dict:
    t = int(rows["recorded"].sum())
    x = int(rows["events"].sum())
    low, high = poisson_exact_ci(x, t)
    return {
        "patients": int(rows[PATIENT_ID].nunique()),
        "sessions": len(rows),
        "recorded_sessions": t,
        "events": x,
        "rate_per_100": 100.0 * x / t if t else np.nan,
        "ci_low": 100.0 * low,
        "ci_high": 100.0 * high,
        "method": RATE_METHOD,
    }


def needled_with_flags(
    patients: pd.DataFrame, sessions: pd.DataFrame, events: pd.DataFrame, recorded: pd.Series
) -> pd.DataFrame:
    """Patients with each flag who were needled, by depth, with their adverse-event rate.

    Parameters
    ----------
    patients : pandas.DataFrame
        Valid patients (flags of :data:`pipeline.schemas.raw.CONTRAINDICATIONS`, ``age``).
    sessions : pandas.DataFrame
        Valid sessions (``patient_id, session_number, depth``).
    events : pandas.DataFrame
        Canonical adverse-event table.
    recorded : pandas.Series
        Boolean on the index of ``sessions``: adverse events recorded for the session.

    Returns
    -------
    pandas.DataFrame
        ``flag, not_a_candidate`` (the clinics exclude the flag, rather than advise caution),
        ``depth`` (``all``, then each depth), ``patients`` (needled with the flag at that
        depth), ``sessions``, ``recorded_sessions``, ``events``, ``rate_per_100, ci_low,
        ci_high, method``; first the flags one by one (only those with a needled patient),
        then ``any flag``.
    """
    rows = _session_rows(patients, sessions, events, recorded)
    out = []
    for flag in (*FLAGS, ANY_FLAG):
        flagged = rows[rows[flag].fillna(False).astype(bool)]
        if flagged.empty:
            continue
        for depth in (ALL_DEPTHS, *DEPTHS):
            part = flagged if depth == ALL_DEPTHS else flagged[flagged["depth"] == depth]
            if part.empty:
                continue
            out.append(
                {
                    "flag": flag,
                    "not_a_candidate": flag in NOT_CANDIDATES,
                    "depth": depth,
                    **_count(part),
                }
            )
    columns = ["flag", "not_a_candidate", "depth", "patients", "sessions", "recorded_sessions"]
    columns += ["events", "rate_per_100", "ci_low", "ci_high", "method"]
    return pd.DataFrame(out, columns=columns)


def signal_rate_ratios(
    patients: pd.DataFrame, sessions: pd.DataFrame, events: pd.DataFrame, recorded: pd.Series
) -> pd.DataFrame:
    """Adverse-event rate of flagged patients against patients recorded without any flag.

    Returns
    -------
    pandas.DataFrame
        One row per flag with a needled patient, then ``any flag``: ``flag, events,
        sessions`` (recorded sessions of the flagged), ``ref_events, ref_sessions`` (of the
        patients whose every flag was recorded as no), ``rate_ratio, ci_low, ci_high,
        p_value, method, note``.
    """
    rows = _session_rows(patients, sessions, events, recorded)
    rows = rows[rows["recorded"]]
    reference = rows[rows[ANY_FLAG].eq(False).fillna(False).astype(bool)]
    rx, rt = int(reference["events"].sum()), len(reference)
    out = []
    for flag in (*FLAGS, ANY_FLAG):
        flagged = rows[rows[flag].fillna(False).astype(bool)]
        if flagged.empty:
            continue
        x, t = int(flagged["events"].sum()), len(flagged)
        row = {
            "flag": flag,
            **ratio_columns(
                x,
                t,
                rx,
                rt,
                no_sessions="no patient recorded without any flag",
                no_events="no adverse event in either group",
            ),
        }
        out.append(row)
    columns = ["flag", "events", "sessions", "ref_events", "ref_sessions", "rate_ratio"]
    columns += ["ci_low", "ci_high", "p_value", "method", "note"]
    return pd.DataFrame(out, columns=columns)
