"""Side effects by kind and technique (SAP §4b, issue 17).

From the canonical adverse-event table
(:func:`pipeline.derive.adverse_events.canonical_adverse_events`, several events per session
possible) and the valid sessions:

- :func:`side_effect_rates`: events per 100 sessions by event type (and ``any``) and by
  severity, for each level of the session's depth and twitch, with the exact Poisson (Garwood)
  CI of R's ``poisson.test(x, T)``;
- :func:`side_effect_rate_ratios`: each level against the reference level, per type, with the
  exact conditional CI and p-value of R's ``poisson.test(c(x, x_ref), c(T, T_ref))``;
- :func:`event_durations`: how long the events lasted where recorded (median with its
  distribution-free 95 % CI, quartiles, share beyond 48 hours), per type;
- :func:`serious_events`: every serious (or severe) event, listed without identifiers.

The denominator is the sessions whose adverse events were recorded
(:func:`pipeline.derive.adverse_events.sessions_recorded`); events of other sessions are not
counted. Rates count *events*, not sessions with an event: a session with soreness and
bruising adds one to each type and two to ``any``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.derive.dataset import twitch_elicited
from pipeline.describe.safety import RATE_METHOD, poisson_exact_ci, ratio_columns
from pipeline.schemas.analysis import DEPTH_LEVELS, TWITCH_LEVELS
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import AE_TYPES, SEVERITIES

ANY = "any"
ALL = "all"
NOT_RECORDED = "not recorded"
GROUPS = ("depth", "twitch")
"""Session-level groupings: the session's depth, and whether a twitch was elicited in it."""


def session_groups(sessions: pd.DataFrame) -> pd.DataFrame:
    """Return the session-level groups of each session: ``depth`` and ``twitch`` (categoricals).

    ``twitch`` is ``twitch`` when a local twitch response was elicited in the session
    (:func:`pipeline.derive.dataset.twitch_elicited`), ``no twitch`` when not, missing when
    unknown.
    """
    elicited = twitch_elicited(sessions)
    twitch = np.where(elicited.fillna(False).astype(bool), TWITCH_LEVELS[1], TWITCH_LEVELS[0])
    return pd.DataFrame(
        {
            PATIENT_ID: sessions[PATIENT_ID].astype("str").to_numpy(),
            "session_number": sessions["session_number"].astype("Int64").to_numpy(),
            "depth": pd.Categorical(sessions["depth"], categories=DEPTH_LEVELS),
            "twitch": pd.Categorical(
                pd.Series(twitch, index=sessions.index).where(elicited.notna()),
                categories=TWITCH_LEVELS,
            ),
        },
        index=sessions.index,
    )


def _events_with_groups(events: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    keyed = groups.reset_index(drop=True)
    return events.merge(keyed, on=[PATIENT_ID, "session_number"], how="inner")


def _rate_row(group: str, level: str, kind: str, severity: str, x: int, t: int) -> dict:
    low, high = poisson_exact_ci(x, t)
    return {
        "group": group,
        "level": level,
        "ae_type": kind,
        "ae_severity": severity,
        "sessions": t,
        "events": x,
        "rate_per_100": 100.0 * x / t if t else np.nan,
        "ci_low": 100.0 * low,
        "ci_high": 100.0 * high,
        "method": RATE_METHOD,
    }


def _kinds(events: pd.DataFrame) -> list[str]:
    """Return the event types to report: those of the contract that occurred, in contract order."""
    seen = set(events["ae_type"].unique())
    return [k for k in AE_TYPES if k in seen]


def side_effect_rates(
    sessions: pd.DataFrame, events: pd.DataFrame, recorded: pd.Series
) -> pd.DataFrame:
    """Adverse events per 100 recorded sessions by type and by severity, per depth and twitch.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions (``patient_id, session_number, depth, twitch`` / ``ltr_count``).
    events : pandas.DataFrame
        Canonical event table.
    recorded : pandas.Series
        Boolean on the index of ``sessions``: adverse events recorded for the session.

    Returns
    -------
    pandas.DataFrame
        ``group, level, ae_type, ae_severity, sessions, events, rate_per_100, ci_low, ci_high,
        method``. Per group and level: a row per type with ``ae_severity = "all"``
        (``ae_type = "any"`` first: every event), then a row per severity with
        ``ae_type = "any"`` (``not recorded`` when some events have no severity; the
        severities add up to ``any``). Empty when no session has adverse events recorded.
    """
    groups = session_groups(sessions)[recorded.to_numpy(bool)]
    if groups.empty:
        return pd.DataFrame(columns=_RATE_COLUMNS)
    hits = _events_with_groups(events, groups)
    kinds = _kinds(hits)
    severity = hits["ae_severity"].astype("object").where(hits["ae_severity"].notna(), NOT_RECORDED)
    severities = [s for s in (*SEVERITIES, NOT_RECORDED) if (severity == s).any()]
    rows = []
    for group in GROUPS:
        for level in groups[group].cat.categories:
            t = int((groups[group] == level).sum())
            at = hits[group] == level
            rows.append(_rate_row(group, level, ANY, ALL, int(at.sum()), t))
            rows += [
                _rate_row(group, level, k, ALL, int((at & (hits["ae_type"] == k)).sum()), t)
                for k in kinds
            ]
            rows += [
                _rate_row(group, level, ANY, s, int((at & (severity == s)).sum()), t)
                for s in severities
            ]
    return pd.DataFrame(rows, columns=_RATE_COLUMNS)


_RATE_COLUMNS = ["group", "level", "ae_type", "ae_severity", "sessions", "events"]
_RATE_COLUMNS += ["rate_per_100", "ci_low", "ci_high", "method"]
_RATIO_COLUMNS = ["group", "level", "reference", "ae_type", "events", "sessions", "ref_events"]
_RATIO_COLUMNS += ["ref_sessions", "rate_ratio", "ci_low", "ci_high", "p_value", "method", "note"]


def side_effect_rate_ratios(rates: pd.DataFrame) -> pd.DataFrame:
    """Rate ratio of each type's events, the second level of a group against the first.

    Parameters
    ----------
    rates : pandas.DataFrame
        :func:`side_effect_rates` output.

    Returns
    -------
    pandas.DataFrame
        ``group, level, reference, ae_type, events, sessions, ref_events, ref_sessions,
        rate_ratio, ci_low, ci_high, p_value, method, note`` (types over all severities);
        the ratio missing, with a ``note``, when neither level has an event of the type.
    """
    rows = []
    by_type = rates[rates["ae_severity"] == ALL]
    for group, part in by_type.groupby("group", sort=False):
        levels = list(dict.fromkeys(part["level"]))
        reference = levels[0]
        for level in levels[1:]:
            for kind in dict.fromkeys(part["ae_type"]):
                here = part[(part["level"] == level) & (part["ae_type"] == kind)].iloc[0]
                ref = part[(part["level"] == reference) & (part["ae_type"] == kind)].iloc[0]
                x, t = int(here["events"]), int(here["sessions"])
                rx, rt = int(ref["events"]), int(ref["sessions"])
                row = {
                    "group": group,
                    "level": level,
                    "reference": reference,
                    "ae_type": kind,
                    **ratio_columns(
                        x,
                        t,
                        rx,
                        rt,
                        no_sessions="a level has no sessions with adverse events recorded",
                        no_events="no event of this type in either level",
                    ),
                }
                rows.append(row)
    return pd.DataFrame(rows, columns=_RATIO_COLUMNS)


def median_ci(values: np.ndarray, conf_level: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of a median from order statistics (binomial, conservative).

    The limits are the ``j``-th and ``(n − j + 1)``-th smallest values with
    ``j = qbinom(α/2, n, 0.5)`` (at least 1), which cover the median with probability at
    least ``conf_level`` for continuous data.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n == 0:
        return (np.nan, np.nan)
    j = max(1, int(stats.binom.ppf((1 - conf_level) / 2, n, 0.5)))
    return (float(x[j - 1]), float(x[n - j]))


def event_durations(events: pd.DataFrame, beyond_hours: float = 48.0) -> pd.DataFrame:
    """How long the events of each type lasted, where the duration was recorded.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event table (``ae_type, ae_duration_hours``).
    beyond_hours : float
        Threshold of the share reported (the clinics quote soreness for 24–48 hours).

    Returns
    -------
    pandas.DataFrame
        ``ae_type, events, with_duration, median_hours, ci_low, ci_high, q1_hours, q3_hours,
        share_beyond`` (of the events with a duration, those lasting more than
        ``beyond_hours``), ``beyond_hours``; only types with at least one duration.
    """
    rows = []
    for kind in _kinds(events):
        part = events[events["ae_type"] == kind]
        hours = part["ae_duration_hours"].astype("float64").dropna().to_numpy()
        if hours.size == 0:
            continue
        low, high = median_ci(hours)
        rows.append(
            {
                "ae_type": kind,
                "events": len(part),
                "with_duration": int(hours.size),
                "median_hours": float(np.median(hours)),
                "ci_low": low,
                "ci_high": high,
                "q1_hours": float(np.quantile(hours, 0.25)),
                "q3_hours": float(np.quantile(hours, 0.75)),
                "share_beyond": float((hours > beyond_hours).mean()),
                "beyond_hours": float(beyond_hours),
            }
        )
    columns = ["ae_type", "events", "with_duration", "median_hours", "ci_low", "ci_high"]
    columns += ["q1_hours", "q3_hours", "share_beyond", "beyond_hours"]
    return pd.DataFrame(rows, columns=columns)


def serious_events(sessions: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Serious events (``serious`` yes, or severity ``severe``), counted without identifiers.

    Listed by type, severity, seriousness and the session's depth: a count per combination
    (never a patient, date or session), so the small-cell rules apply to it as to any count.

    Returns
    -------
    pandas.DataFrame
        ``ae_type, ae_severity, serious, depth, events`` (``serious`` and ``ae_severity`` as
        text, ``not recorded`` where missing), sorted by type; empty without such events.
    """
    serious = events["serious"].fillna(False).astype(bool)
    severe = events["ae_severity"].astype("object") == "severe"
    chosen = _events_with_groups(events[serious | severe], session_groups(sessions))
    columns = ["ae_type", "ae_severity", "serious", "depth", "events"]
    if chosen.empty:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "ae_type": chosen["ae_type"].astype("object"),
            "ae_severity": chosen["ae_severity"].astype("object").fillna(NOT_RECORDED),
            "serious": chosen["serious"]
            .map({True: "yes", False: "no"})
            .astype("object")
            .fillna(NOT_RECORDED),
            "depth": chosen["depth"].astype("object"),
        }
    )
    out = frame.groupby(columns[:-1], sort=True).size().rename("events").reset_index()
    return out[columns]
