"""Sessions to first response: time-to-event with sessions as the time scale (SAP §4b).

The clinics tell patients that acute pain needs one to three sessions and chronic pain four to
eight. From the analysis data set (one row per assessment with ``sessions_completed`` and the
outcome's change and MCID responder status), each patient's *first* post-baseline assessment
that reaches the endpoint is the event, timed by the sessions completed before it; a patient who
never reaches it is censored at the sessions completed before their last assessment with the
outcome recorded (dropout or end of follow-up). Two endpoints:

- ``mcid``: the outcome's MCID responder rule (``<column>_responder``);
- ``halved``: an improvement of at least 50 % of the baseline score.

Pure functions, each returning a tidy table:

- :func:`response_times`: one row per patient (``sessions``, ``event`` and the groups);
- :func:`kaplan_meier`: the Kaplan–Meier curve per group level, with Greenwood standard errors
  and the log-transformed pointwise interval, as R's ``survfit(Surv(sessions, event) ~ g)``
  (``conf.type = "log"``, its default);
- :func:`median_sessions`: the median sessions to response with its 95 % CI, by R's rule
  (``quantile.survfit``: the time the curve, or its confidence limit, first falls below 0.5;
  the midpoint when it stays exactly at 0.5 over an interval);
- :func:`share_within`: the share that responded within k sessions (``1 − S(k)``) with its CI;
- :func:`cox_model`: the hazard ratio of each level against the reference from a Cox model with
  Efron ties (:mod:`pipeline.describe.cox`), as R's ``coxph(Surv(sessions, event) ~ g)``; Wald
  CI and p-value.

Sessions are counted *before* each assessment (:func:`pipeline.derive.dataset.sessions_before`),
so an event at ``k`` means the patient had responded after ``k`` sessions at the latest.
Assessments are not taken after every session, so the times are those of the visits: the
observed number of sessions is an upper bound of the sessions really needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.config.study import Study
from pipeline.describe.cox import cox_efron
from pipeline.schemas.columns import PATIENT_ID, outcome_column

QUESTION = "sessions_to_response"
"""This question's key in ``clinic_omitted``."""

ENDPOINTS = ("mcid", "halved")
"""Endpoints: the MCID responder rule, and an improvement of at least half the baseline."""

KM_METHOD = "Kaplan-Meier, Greenwood SE, log CI (as R survfit)"
COX_METHOD = "Cox model, Efron ties, Wald CI (as R coxph)"
CLAIMED_SESSIONS: dict[str, int] = {"acute": 3, "chronic": 8}
"""The clinics' claim: acute pain responds within 3 sessions, chronic within 8 (issue 17)."""

_TOL = float(np.sqrt(np.finfo(float).eps))  # R: sqrt(.Machine$double.eps) in findq


def _reached(data: pd.DataFrame, column: str, endpoint: str, sign: float) -> pd.Series:
    """Whether each row reaches ``endpoint`` (nullable: missing where the change is unknown)."""
    if endpoint == "mcid":
        return data[f"{column}_responder"].astype("boolean")
    if endpoint == "halved":
        pct = data[f"{column}_pct_change"].astype("float64")
        return pd.Series(pd.array(sign * pct >= 50.0, dtype="boolean"), index=data.index).where(
            pct.notna(), pd.NA
        )
    raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")


def response_times(
    data: pd.DataFrame,
    column: str,
    groups: Sequence[str],
    endpoint: str = "mcid",
    improvement_sign: float = -1.0,
) -> pd.DataFrame:
    """Sessions to the first assessment reaching the endpoint, one row per patient.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set with ``patient_id``, ``visit``, ``sessions_completed``, the outcome's
        ``<column>_responder`` and ``<column>_pct_change``, and the ``groups`` columns.
    column : str
        Outcome column, e.g. ``nrs``.
    groups : sequence of str
        Patient-level grouping columns to carry (categoricals keep their categories).
    endpoint : str
        ``mcid`` or ``halved`` (:data:`ENDPOINTS`).
    improvement_sign : float
        −1 when a fall of the score is an improvement, +1 when a rise is.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``sessions`` (sessions completed before the event or the
        censoring assessment), ``event`` (bool) and the ``groups``; patients without a
        post-baseline assessment of the outcome are left out.
    """
    reached = _reached(data, column, endpoint, improvement_sign)
    keep = (data["visit"] > 0).to_numpy(dtype=bool, na_value=False) & reached.notna().to_numpy()
    # by patient code (identifiers sorted), then visit: integer work, no text compared
    codes, ids = pd.factorize(data[PATIENT_ID], sort=True)
    code = codes[keep]
    visit = data["visit"].to_numpy(dtype="int64", na_value=-1)[keep]
    order = np.lexsort((visit, code))
    code = code[order]
    sessions = data["sessions_completed"].to_numpy()[keep].astype("int64")[order]
    hit = reached.to_numpy(dtype=bool, na_value=False)[keep][order]
    present, starts = np.unique(code, return_index=True)
    ends = np.append(starts[1:], len(code)) - 1
    found = sessions[ends]  # censored at the last assessment, unless reached before
    event = np.zeros(len(present), dtype=bool)
    hits = np.flatnonzero(hit)
    if hits.size:
        firsts = hits[np.append(True, code[hits][1:] != code[hits][:-1])]
        where = np.searchsorted(present, code[firsts])
        event[where] = True
        found[where] = sessions[firsts]
    out = pd.DataFrame({PATIENT_ID: ids[present], "sessions": found, "event": event})
    _, first_rows = np.unique(codes, return_index=True)  # each patient's first row
    for group in groups:
        out[group] = data[group].to_numpy()[first_rows[present]]
        if isinstance(data[group].dtype, pd.CategoricalDtype):
            out[group] = pd.Categorical(out[group], categories=data[group].cat.categories)
    return out[[PATIENT_ID, "sessions", "event", *groups]]


def _levels(times: pd.DataFrame, group: str) -> list[str]:
    """Levels of ``group`` in reporting order (categories first), those with patients only."""
    column = times[group]
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        counts = np.bincount(codes[codes >= 0], minlength=len(column.cat.categories))
        return [str(c) for c, n in zip(column.cat.categories, counts, strict=True) if n]
    return sorted({str(v) for v in column.dropna().unique()})


def _km_one(time: np.ndarray, event: np.ndarray, conf_level: float) -> pd.DataFrame:
    """Kaplan–Meier steps of one sample at every distinct time (events or censorings)."""
    z = stats.norm.ppf(0.5 + conf_level / 2.0)
    rows = []
    surv, green = 1.0, 0.0
    for t in np.unique(time):
        at_risk = int((time >= t).sum())
        d = int(((time == t) & event).sum())
        c = int(((time == t) & ~event).sum())
        if d:
            surv *= 1.0 - d / at_risk
            green = green + d / (at_risk * (at_risk - d)) if at_risk > d else np.inf
        se_log = np.sqrt(green)
        if surv > 0 and np.isfinite(se_log):
            low = surv * np.exp(-z * se_log)
            high = min(1.0, surv * np.exp(z * se_log))
        else:
            low, high = np.nan, np.nan
        rows.append(
            {
                "sessions": int(t),
                "at_risk": at_risk,
                "events": d,
                "censored": c,
                "survival": surv,
                "std_err": surv * se_log if np.isfinite(se_log) else np.nan,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def kaplan_meier(times: pd.DataFrame, group: str, conf_level: float = 0.95) -> pd.DataFrame:
    """Kaplan–Meier curve of the share not yet responded, per level of ``group``.

    Parameters
    ----------
    times : pandas.DataFrame
        :func:`response_times` output with the ``group`` column.
    group : str
        Grouping column; patients whose group is missing are left out.
    conf_level : float
        Confidence level of the pointwise interval.

    Returns
    -------
    pandas.DataFrame
        One row per level and distinct time, columns ``group, level, sessions, at_risk, events,
        censored, survival`` (share not yet responded), ``std_err`` (Greenwood, of the
        survival), ``ci_low, ci_high`` (log-transformed, upper limit capped at 1; missing once
        the survival reaches 0) and ``method``.
    """
    parts = []
    for level in _levels(times, group):
        sub = times[times[group].astype("object") == level]
        curve = _km_one(sub["sessions"].to_numpy(), sub["event"].to_numpy(bool), conf_level)
        curve.insert(0, "level", level)
        curve.insert(0, "group", group)
        parts.append(curve)
    columns = ["group", "level", "sessions", "at_risk", "events", "censored", "survival"]
    columns += ["std_err", "ci_low", "ci_high"]
    if not parts:
        return pd.DataFrame(columns=[*columns, "method"])
    out = pd.concat(parts, ignore_index=True)
    out["method"] = KM_METHOD
    return out


def _findq(x: np.ndarray, y: np.ndarray, p: float) -> float:
    """R's ``survival:::findq``: when the cumulative share ``y`` first reaches ``p``."""
    ok = ~np.isnan(y)
    x, y = x[ok], y[ok]
    if y.size == 0 or y.max() < p:
        return np.nan
    xmax = x[-1]
    _, first = np.unique(y, return_index=True)
    keep = np.sort(first)
    x, y = x[keep], y[keep]

    def index(shifted: np.ndarray) -> int | None:
        # approx(shifted, 1:n, p, method = "constant", f = 1): right-hand node, exact hits own
        if p < shifted[0] or p > shifted[-1]:
            return None
        exact = np.flatnonzero(shifted == p)
        if exact.size:
            return int(exact[0])
        return int(np.searchsorted(shifted, p, side="right"))

    i1, i2 = index(y + _TOL), index(y - _TOL)
    if i1 is None or i2 is None:
        return np.nan
    quant = (x[i1] + x[i2]) / 2.0
    if abs(p - y[-1]) < _TOL:
        quant = (x[i1] + xmax) / 2.0
    return float(quant)


def _quantile(curve: pd.DataFrame, p: float = 0.5) -> tuple[float, float, float]:
    """Return the ``p`` quantile of the time to event with its CI, as R's ``quantile.survfit``."""
    x = np.concatenate([[0.0], curve["sessions"].to_numpy(float)])

    def at(values: pd.Series) -> float:
        return _findq(x, np.concatenate([[0.0], 1.0 - values.to_numpy(float)]), p)

    return at(curve["survival"]), at(curve["ci_low"]), at(curve["ci_high"])


def median_sessions(curves: pd.DataFrame) -> pd.DataFrame:
    """Median sessions to response per level, with its CI (R ``quantile.survfit``'s rule).

    Parameters
    ----------
    curves : pandas.DataFrame
        :func:`kaplan_meier` output (one or several groups).

    Returns
    -------
    pandas.DataFrame
        One row per group and level: ``group, level, patients, events, median, ci_low,
        ci_high, method, note`` (``median`` missing when fewer than half responded; the
        limits missing when the confidence curve never falls to 0.5, i.e. unbounded).
    """
    rows = []
    for (group, level), curve in curves.groupby(["group", "level"], sort=False):
        median, low, high = _quantile(curve)
        rows.append(
            {
                "group": group,
                "level": level,
                "patients": int(curve["at_risk"].iloc[0]),
                "events": int(curve["events"].sum()),
                "median": median,
                "ci_low": low,
                "ci_high": high,
                "method": KM_METHOD,
                "note": "" if np.isfinite(median) else "fewer than half reached the endpoint",
            }
        )
    columns = ["group", "level", "patients", "events", "median", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*columns, "method", "note"])


def share_within(curves: pd.DataFrame, within: Mapping[str, int]) -> pd.DataFrame:
    """Share that reached the endpoint within ``k`` sessions (``1 − S(k)``), with its CI.

    Parameters
    ----------
    curves : pandas.DataFrame
        :func:`kaplan_meier` output.
    within : mapping of str to int
        Level -> sessions, e.g. :data:`CLAIMED_SESSIONS`; levels absent from ``curves`` are
        skipped.

    Returns
    -------
    pandas.DataFrame
        ``group, level, within_sessions, patients, share, ci_low, ci_high, at_risk_after``
        (patients still followed and not responded after ``k`` sessions), ``method``.
    """
    rows = []
    for (group, level), curve in curves.groupby(["group", "level"], sort=False):
        if level not in within:
            continue
        k = int(within[level])
        upto = curve[curve["sessions"] <= k]
        last = upto.iloc[-1] if len(upto) else None
        surv = 1.0 if last is None else float(last["survival"])
        s_low = 1.0 if last is None else float(last["ci_low"])
        s_high = 1.0 if last is None else float(last["ci_high"])
        after = curve[curve["sessions"] > k]
        rows.append(
            {
                "group": group,
                "level": level,
                "within_sessions": k,
                "patients": int(curve["at_risk"].iloc[0]),
                "share": 1.0 - surv,
                "ci_low": 1.0 - s_high,
                "ci_high": 1.0 - s_low,
                "at_risk_after": int(after["at_risk"].iloc[0]) if len(after) else 0,
                "method": KM_METHOD,
            }
        )
    columns = ["group", "level", "within_sessions", "patients", "share", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*columns, "at_risk_after", "method"])


def cox_model(
    times: pd.DataFrame, group: str, adjust: Sequence[str] = (), conf_level: float = 0.95
) -> pd.DataFrame:
    """Hazard ratio of responding, each level of ``group`` against the reference (first).

    A Cox proportional-hazards model ``Surv(sessions, event) ~ group`` with Efron's handling of
    tied times (many patients share a session count), fitted on the data's distinct rows
    (:func:`pipeline.describe.cox.cox_efron`, which agrees with statsmodels ``PHReg``); the
    standard errors are from the inverse observed information, the CI and p-value are Wald's,
    as R's ``summary(coxph(Surv(sessions, event) ~ g))``.

    Parameters
    ----------
    times : pandas.DataFrame
        :func:`response_times` output.
    group : str
        Grouping column; its first level (category order) is the reference.
    adjust : sequence of str
        Categorical columns adjusted for (one indicator per non-reference level), e.g.
        ``("chronicity",)``: ``Surv(sessions, event) ~ adjust + group``. A column equal to
        ``group`` or with a single level is ignored.
    conf_level : float
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per non-reference level of ``group`` (adjustment terms are not reported):
        ``group, level, reference, adjusted_for, patients, events, log_hr,
        std_err, hazard_ratio, ci_low, ci_high, p_value, method, note`` (the estimates missing
        with a ``note`` when a level has no event or the model cannot be fitted). A hazard
        ratio above 1 means a faster response than the reference.
    """
    columns = ["group", "level", "reference", "adjusted_for", "patients", "events", "log_hr"]
    columns += ["std_err", "hazard_ratio", "ci_low", "ci_high", "p_value", "method", "note"]
    sub = times[times[group].notna()]
    adjust = [a for a in adjust if a != group and len(_levels(sub, a)) > 1]
    sub = sub[sub[adjust].notna().all(axis=1)] if adjust else sub
    levels = _levels(sub, group)
    if len(levels) < 2:
        return pd.DataFrame(columns=columns)
    reference, others = levels[0], levels[1:]
    labels = sub[group].astype("object").to_numpy()
    columns_x = [(labels == level).astype(float) for level in others]
    for name in adjust:
        values = sub[name].astype("object").to_numpy()
        columns_x += [(values == level).astype(float) for level in _levels(sub, name)[1:]]
    design = np.column_stack(columns_x)
    rows = [
        {
            "group": group,
            "level": level,
            "reference": reference,
            "adjusted_for": ", ".join(adjust),
            "patients": int((labels == level).sum()),
            "events": int(sub["event"].to_numpy(bool)[labels == level].sum()),
            "log_hr": np.nan,
            "std_err": np.nan,
            "hazard_ratio": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "method": COX_METHOD,
            "note": "",
        }
        for level in others
    ]
    events = sub["event"].to_numpy(bool)
    empty = [i for i, level in enumerate(others) if not events[labels == level].any()]
    if empty or not events[labels == reference].any():
        for row in rows:
            row["note"] = "a level has no response; hazard ratio not estimable"
        return pd.DataFrame(rows, columns=columns)
    time = sub["sessions"].to_numpy(float)
    try:
        fit = cox_efron(time, events, design)
        bse = np.asarray(fit.bse, dtype=float)
    except np.linalg.LinAlgError:
        fit, bse = None, np.full(len(others), np.nan)
    if fit is not None and fit.infinite[: len(others)].any():
        for row in rows:
            row["note"] = (
                "every response of one group came before (or after) all of the other's: the "
                "hazard ratio is infinite, not estimable"
            )
        return pd.DataFrame(rows, columns=columns)
    if not np.isfinite(bse[: len(others)]).all():
        for row in rows:
            row["note"] = "too few patients or responses for the Cox model; not estimable"
        return pd.DataFrame(rows, columns=columns)
    z = stats.norm.ppf(0.5 + conf_level / 2.0)
    for i, row in enumerate(rows):
        beta, se = float(fit.params[i]), float(fit.bse[i])
        row.update(
            log_hr=beta,
            std_err=se,
            hazard_ratio=float(np.exp(beta)),
            ci_low=float(np.exp(beta - z * se)),
            ci_high=float(np.exp(beta + z * se)),
            p_value=float(2.0 * stats.norm.sf(abs(beta / se))),
        )
    return pd.DataFrame(rows, columns=columns)


CURVE_COLUMNS = ["outcome", "endpoint", "group", "level", "sessions", "survival", "std_err"]
CURVE_COLUMNS += ["ci_low", "ci_high"]


def omission_reason(data: pd.DataFrame, study: Study) -> str:
    """Why sessions to response cannot be analysed in these data, or an empty string.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set.
    study : Study
        The study's declarations (does it have a session log?).
    """
    if not study.sessions:
        return "the study has no session log, so no assessment is timed by sessions completed"
    if len(data) == 0 or int(data["sessions_completed"].max()) == 0:
        return (
            "no assessment follows a recorded session (sessions and assessments need dates "
            "to be ordered), so sessions to response cannot be counted"
        )
    return ""


def sessions_to_response_tables(
    data: pd.DataFrame, study: Study, min_at_risk: int = 1
) -> dict[str, pd.DataFrame]:
    """Build the published tables of sessions to first response, for the primary outcome.

    For each endpoint (:data:`ENDPOINTS`) and each grouping (chronicity, then every declared
    comparison present in ``data``): the median sessions with its CI, the share responded
    within the claimed sessions (:data:`CLAIMED_SESSIONS`, chronicity only), the Cox hazard
    ratio (adjusted for chronicity when the grouping is not chronicity itself) and the curve.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set.
    study : Study
        Outcomes (the first is primary) and comparisons.
    min_at_risk : int
        The curve is published while at least this many patients are at risk (the small-cell
        threshold): a step made by fewer patients would reveal a count below it.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``sessions_to_response`` (medians), ``sessions_to_response_shares``,
        ``sessions_to_response_hr`` and ``sessions_to_response_curve``, each led by ``outcome,
        endpoint``; empty when :func:`omission_reason` gives a reason.
    """
    if omission_reason(data, study):
        return {}
    outcome = study.outcomes[0]
    column = outcome_column(outcome.name)
    groups = ["chronicity"] + [
        c.name for c in study.comparisons if c.name in data and c.name != "chronicity"
    ]
    groups = [g for g in groups if data[g].notna().any()]
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in ("median", "share", "hr", "curve")}
    for endpoint in ENDPOINTS:
        times = response_times(data, column, groups, endpoint, outcome.improvement_sign)
        for group in groups:
            curves = kaplan_meier(times, group)
            if curves.empty:
                continue
            label = {"outcome": outcome.name, "endpoint": endpoint}
            parts["median"].append(median_sessions(curves).assign(**label))
            if group == "chronicity":
                parts["share"].append(share_within(curves, CLAIMED_SESSIONS).assign(**label))
            adjust = ["chronicity"] if group != "chronicity" else []
            parts["hr"].append(cox_model(times, group, adjust).assign(**label))
            shown = curves[curves["at_risk"] >= min_at_risk]
            parts["curve"].append(shown.assign(**label))
    names = {
        "median": "sessions_to_response",
        "share": "sessions_to_response_shares",
        "hr": "sessions_to_response_hr",
        "curve": "sessions_to_response_curve",
    }
    out = {}
    for key, frames in parts.items():
        frames = [f for f in frames if not f.empty]
        if not frames:
            continue
        table = pd.concat(frames, ignore_index=True)
        lead = ["outcome", "endpoint"]
        table = table[lead + [c for c in table.columns if c not in lead]]
        if key == "curve":
            table = table[CURVE_COLUMNS]
        out[names[key]] = table.reset_index(drop=True)
    return out
