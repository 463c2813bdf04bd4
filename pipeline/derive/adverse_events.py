"""The canonical adverse-event table, from an event table or the sessions' single columns.

A study records adverse events in one of two ways:

- an event table (:class:`pipeline.schemas.raw.AdverseEvents`): one row per event, several per
  session possible, with type, severity, duration and whether it was serious;
- the sessions' ``adverse_event`` / ``ae_severity`` columns: one event at most per session
  (``none`` when none; empty when not recorded).

:func:`canonical_adverse_events` turns either into the event table, and
:func:`sessions_recorded` says which sessions had their adverse events recorded (the
denominator of every rate: a session whose events were not recorded is not a session without
events).
"""

from __future__ import annotations

import pandas as pd

from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import AdverseEvents

EVENT_COLUMNS = list(AdverseEvents.to_schema().columns)
"""Columns of the canonical event table, in the contract's order."""


def canonical_adverse_events(
    sessions: pd.DataFrame, events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return one row per adverse event, in the columns of :class:`AdverseEvents`.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions (``patient_id, session_number`` and, when recorded, ``adverse_event``
        and ``ae_severity``).
    events : pandas.DataFrame, optional
        A valid event table. When given it is the record of events and the sessions' single
        columns are not read (a source gives one or the other); only events of a valid
        session are kept.

    Returns
    -------
    pandas.DataFrame
        ``patient_id, session_number, ae_type, ae_severity, ae_duration_hours, serious``
        (optional columns missing where not recorded), sorted by patient and session.
    """
    if events is not None:
        keys = sessions[[PATIENT_ID, "session_number"]].astype(
            {PATIENT_ID: "str", "session_number": "Int64"}
        )
        out = events.astype({PATIENT_ID: "str", "session_number": "Int64"}).merge(
            keys.drop_duplicates(), on=[PATIENT_ID, "session_number"], how="inner"
        )
        for column in EVENT_COLUMNS:
            if column not in out:
                out[column] = pd.NA
    elif "adverse_event" in sessions:
        kind = sessions["adverse_event"]
        hit = sessions[kind.notna() & (kind != "none")]
        severity = hit["ae_severity"] if "ae_severity" in hit else pd.Series(pd.NA, hit.index)
        out = pd.DataFrame(
            {
                PATIENT_ID: hit[PATIENT_ID].astype("str"),
                "session_number": hit["session_number"].astype("Int64"),
                "ae_type": hit["adverse_event"].astype("str"),
                "ae_severity": severity.astype("object"),
                "ae_duration_hours": pd.Series(pd.NA, index=hit.index, dtype="Float64"),
                "serious": pd.Series(pd.NA, index=hit.index, dtype="boolean"),
            }
        )
    else:
        out = pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMNS})
    out = out[EVENT_COLUMNS].astype(
        {
            PATIENT_ID: "str",
            "session_number": "Int64",
            "ae_type": "str",
            "ae_severity": "object",
            "ae_duration_hours": "float64",
            "serious": "boolean",
        }
    )
    order = out.sort_values([PATIENT_ID, "session_number"], kind="stable")
    return order.reset_index(drop=True)


def sessions_recorded(sessions: pd.DataFrame, events: pd.DataFrame | None = None) -> pd.Series:
    """Whether each session's adverse events were recorded (the rates' denominator).

    With an event table every valid session counts as recorded unless the session's
    ``adverse_event`` column says it was not (present and empty); with the single columns a
    session is recorded when ``adverse_event`` is filled (``none`` or an event).

    Returns
    -------
    pandas.Series
        Boolean on the index of ``sessions``.
    """
    if "adverse_event" in sessions and sessions["adverse_event"].notna().any():
        return sessions["adverse_event"].notna()
    return pd.Series(events is not None, index=sessions.index)
