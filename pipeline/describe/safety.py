"""Safety: adverse events per 100 sessions by needling depth (SAP §4, secondary).

Pure functions over the valid ``sessions`` table (:class:`pipeline.schemas.raw.Sessions`):

- :func:`adverse_event_rates`: sessions, events and the rate per 100 sessions for each level
  of the grouping column, with the exact (Garwood) Poisson confidence interval, as R's
  ``poisson.test(x, T)`` computes it.
- :func:`rate_ratio`: the rate ratio of each level against the reference (first) level, with
  the exact conditional (binomial) confidence interval and p-value of R's
  ``poisson.test(c(x, x_ref), c(T, T_ref))``.
- :func:`adverse_event_counts`: counts of sessions by event type and severity.

The denominator is the number of sessions whose ``adverse_event`` was *recorded* (``none`` or
an event name); sessions with ``adverse_event`` missing (not recorded) are excluded from both
the numerator and the denominator, and their number is reported in ``not_recorded``. When no
session of the study has ``adverse_event`` recorded (no source recorded the column), every rate
and ratio is missing and its ``note`` says :data:`NOT_RECORDED_NOTE`: no event recorded is not
"no event".

A run whose sources write several events per session (flag columns or a list) passes the
:class:`pipeline.derive.adverse_events.EventRecord` assembled once for the run: then a session
is recorded as the record says, and ``events`` counts the *sessions with at least one event*
of its event table (the by-type tables of :mod:`pipeline.describe.side_effects` count events).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.derive.adverse_events import EventRecord
from pipeline.schemas.raw import DEPTHS

RATE_METHOD = "exact Poisson (Garwood) CI"
RATIO_METHOD = "exact conditional binomial test (as R poisson.test)"
NOT_RECORDED_NOTE = "adverse events were not recorded"


def _levels(sessions: pd.DataFrame, group: str) -> list[str]:
    """Return the levels of ``group`` in reporting order (reference first)."""
    column = sessions[group]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories]
    if group == "depth":
        return list(DEPTHS)
    return sorted(str(v) for v in column.dropna().unique())


def _counts(sessions: pd.DataFrame, group: str, record: EventRecord | None = None) -> pd.DataFrame:
    """Count recorded sessions, sessions with an event and unrecorded sessions per level.

    Without ``record`` the sessions' single ``adverse_event`` column is read; with it, the
    record's recorded sessions and its event table (sessions with at least one event).
    """
    if record is None:
        event = sessions["adverse_event"]
        recorded = event.notna()
        is_event = recorded & (event != "none")
    else:
        recorded = record.recorded.reindex(sessions.index).fillna(False).astype(bool)
        is_event = recorded & record.sessions_with_events(sessions)
    key = sessions[group].astype("object")
    frame = pd.DataFrame(
        {
            "level": key,
            "sessions": recorded.astype("int64"),
            "events": is_event.fillna(False).astype("int64"),
            "not_recorded": (~recorded).astype("int64"),
        }
    )
    levels = _levels(sessions, group)
    summed = frame.groupby("level", sort=False)[["sessions", "events", "not_recorded"]].sum()
    summed = summed.reindex(levels, fill_value=0)
    summed.index.name = "level"
    return summed.reset_index()


def poisson_exact_ci(events: int, exposure: float, conf_level: float = 0.95) -> tuple[float, float]:
    """Return the exact (Garwood) confidence interval of a Poisson rate ``events / exposure``.

    Lower bound ``qgamma(α/2, x) / T`` (0 when ``x = 0``), upper bound
    ``qgamma(1 − α/2, x + 1) / T``, identical to R's ``poisson.test(x, T)$conf.int``
    (equivalently chi-square quantiles with 2x and 2x + 2 degrees of freedom, halved).

    Parameters
    ----------
    events : int
        Number of events ``x``.
    exposure : float
        Exposure ``T`` (here: sessions); non-positive gives ``(nan, nan)``.
    conf_level : float
        Confidence level.

    Returns
    -------
    tuple of float
        ``(low, high)`` on the scale of ``events / exposure``.
    """
    if exposure <= 0:
        return (np.nan, np.nan)
    alpha = 1.0 - conf_level
    low = 0.0 if events == 0 else stats.gamma.ppf(alpha / 2.0, events)
    high = stats.gamma.ppf(1.0 - alpha / 2.0, events + 1)
    return (float(low / exposure), float(high / exposure))


def adverse_event_rates(
    sessions: pd.DataFrame,
    group: str = "depth",
    conf_level: float = 0.95,
    record: EventRecord | None = None,
) -> pd.DataFrame:
    """Adverse events per 100 sessions for each level of ``group``, with exact Poisson CIs.

    A session counts in the denominator when its ``adverse_event`` was recorded (``none`` or
    an event name) and as an event when ``adverse_event`` is not ``none``. Sessions with
    ``adverse_event`` missing (not recorded) are **excluded from the denominator** (and can
    not be events); their number is given in ``not_recorded``. The confidence interval is the
    exact Poisson (Garwood) interval of R's ``poisson.test(events, sessions)``, times 100.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions with ``adverse_event`` and the ``group`` column.
    group : str
        Grouping column, ``depth`` by default (levels superficial, deep; a categorical column
        is reported in the order of its categories).
    conf_level : float
        Confidence level of the interval.
    record : EventRecord, optional
        The run's adverse events (:func:`pipeline.derive.adverse_events.event_record`); without
        it the sessions' ``adverse_event`` column.

    Returns
    -------
    pandas.DataFrame
        One row per level (reference first) with columns:

        - ``group``: name of the grouping column.
        - ``level``: the level.
        - ``sessions``: sessions with ``adverse_event`` recorded (the denominator).
        - ``events``: sessions with an adverse event (``adverse_event`` not ``none``).
        - ``not_recorded``: sessions excluded because ``adverse_event`` is missing.
        - ``rate_per_100``: ``100 × events / sessions`` (NaN without sessions).
        - ``ci_low``, ``ci_high``: exact Poisson confidence limits per 100 sessions.
        - ``method``: how the interval was computed.
        - ``note``: empty, or why the rate is missing.
    """
    counts = _counts(sessions, group, record)
    nothing_recorded = int(counts["sessions"].sum()) == 0
    rows = []
    for rec in counts.itertuples(index=False):
        n, x = int(rec.sessions), int(rec.events)
        low, high = poisson_exact_ci(x, n, conf_level)
        rows.append(
            {
                "group": group,
                "level": rec.level,
                "sessions": n,
                "events": x,
                "not_recorded": int(rec.not_recorded),
                "rate_per_100": 100.0 * x / n if n > 0 else np.nan,
                "ci_low": 100.0 * low,
                "ci_high": 100.0 * high,
                "method": RATE_METHOD,
                "note": ""
                if n > 0
                else NOT_RECORDED_NOTE
                if nothing_recorded
                else "no sessions with adverse_event recorded",
            }
        )
    return pd.DataFrame(rows)


def _binomial_ci(x: int, n: int, conf_level: float) -> tuple[float, float]:
    """Clopper–Pearson limits for ``x`` successes of ``n`` (as R's ``binom.test``)."""
    alpha = 1.0 - conf_level
    low = 0.0 if x == 0 else stats.beta.ppf(alpha / 2.0, x, n - x + 1)
    high = 1.0 if x == n else stats.beta.ppf(1.0 - alpha / 2.0, x + 1, n - x)
    return float(low), float(high)


def _odds_to_ratio(p: float, scale: float) -> float:
    """Map a binomial proportion to a rate ratio, ``p / (1 − p) × scale`` (∞ at ``p = 1``)."""
    return np.inf if p >= 1.0 else p / (1.0 - p) * scale


def exact_rate_ratio(
    x: int, t: float, ref_x: int, ref_t: float, conf_level: float = 0.95
) -> tuple[float, float, float, float]:
    """Rate ratio ``(x / t) / (ref_x / ref_t)`` with R ``poisson.test``'s exact CI and p-value.

    Conditional on ``x + ref_x`` events, ``x`` is binomial with probability
    ``r t / (r t + ref_t)``: Clopper–Pearson limits mapped to the ratio scale and
    ``binom.test``'s two-sided p-value for ``r = 1``, as
    ``poisson.test(c(x, ref_x), c(t, ref_t))``. Needs ``t, ref_t > 0`` and ``x + ref_x > 0``.

    Returns
    -------
    tuple of float
        ``(rate_ratio, ci_low, ci_high, p_value)``; the ratio and upper limit are ∞ when
        ``ref_x`` is 0.
    """
    n = x + ref_x
    scale = ref_t / t
    p_low, p_high = _binomial_ci(x, n, conf_level)
    ratio = np.inf if ref_x == 0 else (x / t) / (ref_x / ref_t)
    p_value = float(stats.binomtest(x, n, t / (t + ref_t)).pvalue)
    return ratio, _odds_to_ratio(p_low, scale), _odds_to_ratio(p_high, scale), p_value


def ratio_columns(
    x: int,
    t: int,
    ref_x: int,
    ref_t: int,
    *,
    no_sessions: str,
    no_events: str,
    conf_level: float = 0.95,
) -> dict[str, object]:
    """Give the rate-ratio columns of one comparison: the exact ratio, or why it is missing.

    Parameters
    ----------
    x, t : int
        Events and recorded sessions of the compared level.
    ref_x, ref_t : int
        The same for the reference.
    no_sessions : str
        The note when either side has no recorded session.
    no_events : str
        The note when neither side has an event.
    conf_level : float
        Confidence level of the interval.

    Returns
    -------
    dict
        ``events, sessions, ref_events, ref_sessions, rate_ratio, ci_low, ci_high, p_value,
        method, note`` (:func:`exact_rate_ratio`; NaN with the note when not estimable).
    """
    row: dict[str, object] = {
        "events": x,
        "sessions": t,
        "ref_events": ref_x,
        "ref_sessions": ref_t,
        "rate_ratio": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p_value": np.nan,
        "method": RATIO_METHOD,
        "note": "",
    }
    if t == 0 or ref_t == 0:
        row["note"] = no_sessions
    elif x + ref_x == 0:
        row["note"] = no_events
    else:
        ratio, low, high, p = exact_rate_ratio(x, t, ref_x, ref_t, conf_level)
        row.update(rate_ratio=ratio, ci_low=low, ci_high=high, p_value=p)
    return row


def rate_ratio(
    sessions: pd.DataFrame,
    group: str = "depth",
    conf_level: float = 0.95,
    record: EventRecord | None = None,
) -> pd.DataFrame:
    """Rate ratio of adverse events, each level against the reference (first) level.

    Conditional on the total number of events, the events of the compared level are binomial
    with probability ``r T / (r T + T_ref)``; the interval and the two-sided p-value (for
    ``r = 1``) are those of R's ``poisson.test(c(x, x_ref), c(T, T_ref))`` (Clopper–Pearson
    limits mapped to the ratio scale, and ``binom.test``'s p-value). Denominators are the
    sessions with ``adverse_event`` recorded, as in :func:`adverse_event_rates`; sessions
    with ``adverse_event`` missing are excluded.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions with ``adverse_event`` and the ``group`` column.
    group : str
        Grouping column, ``depth`` by default (deep compared with superficial).
    conf_level : float
        Confidence level of the interval.
    record : EventRecord, optional
        As in :func:`adverse_event_rates`.

    Returns
    -------
    pandas.DataFrame
        One row per non-reference level with columns:

        - ``group``, ``level``, ``reference``: grouping column, compared and reference level.
        - ``events``, ``sessions``: events and recorded sessions of ``level``.
        - ``ref_events``, ``ref_sessions``: the same for ``reference``.
        - ``rate_ratio``: ``(events / sessions) / (ref_events / ref_sessions)``; 0 or ∞ when
          one side has no event.
        - ``ci_low``, ``ci_high``: exact conditional confidence limits (``ci_high`` may be ∞).
        - ``p_value``: exact two-sided p-value for a ratio of 1.
        - ``method``: how the interval and p-value were computed.
        - ``note``: empty, or why the ratio is missing (no events at all, no sessions).
    """
    counts = _counts(sessions, group, record).set_index("level")
    reference = counts.index[0]
    ref_x, ref_t = int(counts.loc[reference, "events"]), int(counts.loc[reference, "sessions"])
    rows = []
    for level in counts.index[1:]:
        x, t = int(counts.loc[level, "events"]), int(counts.loc[level, "sessions"])
        row = {
            "group": group,
            "level": level,
            "reference": reference,
            **ratio_columns(
                x,
                t,
                ref_x,
                ref_t,
                no_sessions="a level has no sessions with adverse_event recorded",
                no_events="no adverse events in either level; rate ratio not estimable",
                conf_level=conf_level,
            ),
        }
        if t + ref_t == 0 and int(counts["sessions"].sum()) == 0:
            row["note"] = NOT_RECORDED_NOTE
        rows.append(row)
    return pd.DataFrame(rows)


def adverse_event_counts(sessions: pd.DataFrame, group: str = "depth") -> pd.DataFrame:
    """Count adverse events by level of ``group``, event type and severity.

    Only sessions with an event (``adverse_event`` recorded and not ``none``) are counted;
    sessions with ``adverse_event`` missing are excluded, as in :func:`adverse_event_rates`.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions with ``adverse_event``, optionally ``ae_severity``, and ``group``.
    group : str
        Grouping column, ``depth`` by default.

    Returns
    -------
    pandas.DataFrame
        Columns ``group, level, adverse_event, ae_severity, events`` (``ae_severity`` missing
        when not recorded), one row per observed combination, levels in reporting order, then
        event type and severity alphabetically.
    """
    columns = ["group", "level", "adverse_event", "ae_severity", "events"]
    event = sessions["adverse_event"]
    hit = sessions[event.notna() & (event != "none")]
    if hit.empty:
        return pd.DataFrame(columns=columns)
    severity = hit["ae_severity"] if "ae_severity" in hit else pd.Series(pd.NA, index=hit.index)
    frame = pd.DataFrame(
        {
            "level": hit[group].astype("object"),
            "adverse_event": hit["adverse_event"].astype("object"),
            "ae_severity": severity.astype("object"),
        }
    )
    out = (
        frame.groupby(["level", "adverse_event", "ae_severity"], dropna=False, sort=False)
        .size()
        .rename("events")
        .reset_index()
    )
    order = {level: k for k, level in enumerate(_levels(sessions, group))}
    out["_order"] = out["level"].map(order)
    out = out.sort_values(["_order", "adverse_event", "ae_severity"], kind="stable")
    out.insert(0, "group", group)
    return out[columns].reset_index(drop=True)
