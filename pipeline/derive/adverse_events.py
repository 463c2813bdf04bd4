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

:func:`event_record` is the one place where a run's adverse events are assembled, from the
sessions' single columns and from the event rows of the sources that write several events per
session (``[sources.N.adverse_events]``: flag columns or a delimited list, see
:mod:`pipeline.ingest.adapters.events`). Every safety table reads the :class:`EventRecord` it
returns: counts of *events* come from its event table, counts of *sessions with an event* from
:meth:`EventRecord.sessions_with_events`, which is computed from that same table, so a session
with two events is two events and one session everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import AdverseEvents

EVENT_COLUMNS = list(AdverseEvents.to_schema().columns)
"""Columns of the canonical event table, in the contract's order."""
SOURCE_ROW = "source_row"
"""The valid sessions' row number in the combined raw table (:mod:`pipeline.ingest.combine`)."""
_TYPES = {
    PATIENT_ID: "str",
    "session_number": "Int64",
    "ae_type": "str",
    "ae_severity": "object",
    "ae_duration_hours": "float64",
    "serious": "boolean",
}


@dataclass(frozen=True)
class EventRecord:
    """The adverse events of a run's valid sessions, and which sessions recorded them.

    Attributes
    ----------
    events : pandas.DataFrame
        Canonical event table (:data:`EVENT_COLUMNS`), one row per event, of valid sessions.
    recorded : pandas.Series
        Boolean on the index of the sessions it was made for: the session's adverse events
        were recorded (the denominator of every rate).
    """

    events: pd.DataFrame
    recorded: pd.Series

    def events_per_session(self, sessions: pd.DataFrame) -> pd.Series:
        """Return the number of events of each session (0 when none or not recorded)."""
        keys = pd.MultiIndex.from_arrays(
            [sessions[PATIENT_ID].astype("str"), sessions["session_number"].astype("Int64")]
        )
        counts = self.events.groupby([PATIENT_ID, "session_number"]).size()
        return pd.Series(
            counts.reindex(keys, fill_value=0).to_numpy(dtype="int64"), index=sessions.index
        )

    def sessions_with_events(self, sessions: pd.DataFrame) -> pd.Series:
        """Return whether each session had at least one event (from the event table)."""
        return self.events_per_session(sessions) > 0


def event_record(
    sessions: pd.DataFrame,
    table: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> EventRecord:
    """Assemble the adverse events of the valid sessions, from every source, in one place.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions (with ``source_row`` when ``table`` is given).
    table : pandas.DataFrame, optional
        Event rows of the sources that write several events per session
        (:attr:`pipeline.ingest.raw_tables.RawTable.events`: ``source_row, ae_type,
        ae_severity``; ``ae_type`` missing for a session that recorded no event). They are
        linked to the valid session of the same ``source_row``; the rows of a quarantined
        session are dropped with it.
    events : pandas.DataFrame, optional
        A valid canonical event table given as such (:func:`canonical_adverse_events`).

    Returns
    -------
    EventRecord
        The sessions' single columns' events, the event table's, and the recorded sessions.
    """
    canonical = canonical_adverse_events(sessions, events)
    recorded = sessions_recorded(sessions, events)
    if table is not None and len(sessions):
        rows = sessions[SOURCE_ROW]
        linked = table.merge(
            sessions[[SOURCE_ROW, PATIENT_ID, "session_number"]], on=SOURCE_ROW, how="inner"
        )
        hit = linked[linked["ae_type"].notna()]
        extra = pd.DataFrame(
            {
                PATIENT_ID: hit[PATIENT_ID].astype("str"),
                "session_number": hit["session_number"].astype("Int64"),
                "ae_type": hit["ae_type"].astype("str"),
                "ae_severity": hit["ae_severity"].astype("object"),
                "ae_duration_hours": pd.Series(pd.NA, index=hit.index, dtype="Float64"),
                "serious": pd.Series(pd.NA, index=hit.index, dtype="boolean"),
            }
        ).astype(_TYPES)
        extra["ae_severity"] = extra["ae_severity"].where(extra["ae_severity"].notna(), None)
        parts = [f for f in (canonical, extra) if len(f)]
        if parts:
            canonical = pd.concat(parts, ignore_index=True).astype(_TYPES)
            canonical = canonical.sort_values([PATIENT_ID, "session_number"], kind="stable")
            canonical = canonical.reset_index(drop=True)
        by_table = rows.isin(table[SOURCE_ROW]).to_numpy()
        single = (
            sessions["adverse_event"].notna().to_numpy() if "adverse_event" in sessions else False
        )
        recorded = pd.Series(by_table | single, index=sessions.index)
    if len(canonical):  # (an empty object column is not 'str' to pandera)
        AdverseEvents.validate(canonical)
    return EventRecord(events=canonical, recorded=recorded)


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
    out = out[EVENT_COLUMNS].astype(_TYPES)
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
