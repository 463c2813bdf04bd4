"""Exploration summaries for the notebooks in ``notebooks/`` (pure functions, tidy tables).

Data quality, missingness, dropout, exposure and the confounding of twitch by depth, computed
from the analysis data set (:func:`pipeline.derive.dataset.analysis_dataset`) and the valid tables
of
a :class:`pipeline.api.Study`; plus small helpers to compare analyses fitted with different
choices (:func:`compare`, :func:`describe`, :func:`random_slope_test`).

No table returned here carries a patient identifier: rows are visits, groups, instruments or
model terms, never patients (:func:`patient_level` has one row per patient but no id).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from pipeline.analyses.plans import TABLES, AnalysisResult, session_twitch_plan
from pipeline.config.options import ModelSettings
from pipeline.derive.dataset import twitch_elicited
from pipeline.lmm.fit import LmmFit
from pipeline.schemas.analysis import DEPTH_LEVELS
from pipeline.schemas.columns import INSTRUMENT_COLUMNS, PATIENT_ID

ALL = "all"
MISSING = "(missing)"
TOTAL = "Total"
PATIENT_COLUMNS = (
    "site",
    "age",
    "sex",
    "chronicity",
    "contraindicated",
    "protocol_deviation",
    "n_sessions",
    "deep_share",
    "twitch_share",
    "n_adverse_events",
    "depth",
    "twitch",
)
"""Patient-level columns of the analysis data set (the same on every row of a patient)."""


def _levels(values: pd.Series) -> list:
    """Observed levels in their declared order (categoricals) or sorted."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [c for c in values.cat.categories if (values == c).any()]
    return sorted(values.dropna().unique())


def _groups(frame: pd.DataFrame, group: str | None) -> list[tuple[str, pd.Series]]:
    """``(label, mask)`` for each level of ``group``, or one ``all`` group when None."""
    if group is None:
        return [(ALL, pd.Series(True, index=frame.index))]
    return [(str(level), frame[group] == level) for level in _levels(frame[group])]


def _visits(data: pd.DataFrame) -> list[int]:
    return [int(v) for v in sorted(data["visit"].dropna().unique())]


def overview(data: pd.DataFrame, sessions: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """Count what the analysis rests on: patients, assessments, sessions, sites.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set (one row per valid assessment).
    sessions, patients : pandas.DataFrame
        Valid sessions and patients.

    Returns
    -------
    pandas.DataFrame
        ``quantity, value``, one row per count.
    """
    baseline = data.loc[data["visit"] == 0, PATIENT_ID].nunique()
    rows = [
        ("valid patients", len(patients)),
        ("patients with at least one valid assessment", data[PATIENT_ID].nunique()),
        ("patients with a valid baseline assessment (visit 0)", baseline),
        ("patients with at least one valid session", sessions[PATIENT_ID].nunique()),
        ("valid assessments", len(data)),
        ("valid sessions", len(sessions)),
        ("sites", patients["site"].nunique()),
        ("scheduled visits seen", data["visit"].nunique()),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def patient_level(data: pd.DataFrame) -> pd.DataFrame:
    """One row per patient of the analysis data set, without the patient identifier.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set, sorted by patient and visit.

    Returns
    -------
    pandas.DataFrame
        :data:`PATIENT_COLUMNS` plus ``n_assessments`` (valid assessments) and ``last_visit``
        (highest visit assessed), in patient order.
    """
    per = data.groupby(PATIENT_ID, sort=True)["visit"]
    first = data.drop_duplicates(PATIENT_ID).set_index(PATIENT_ID).sort_index()
    out = first[list(PATIENT_COLUMNS)].copy()
    out["n_assessments"] = per.size()
    out["last_visit"] = per.max().astype("int64")
    return out.reset_index(drop=True)


def _with_missing(values: pd.Series) -> pd.Series:
    """Make missing values a visible level (``(missing)``) when there are any."""
    if not values.isna().any():
        return values
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.add_categories(MISSING).fillna(MISSING)
    return values.astype(object).where(values.notna(), MISSING)


def crosstab(
    frame: pd.DataFrame,
    rows: str,
    columns: str,
    *,
    percent: str | None = None,
    margins: bool = True,
) -> pd.DataFrame:
    """Count the rows of ``frame`` by two variables, with totals and optional percentages.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any long table (patients, sessions, assessments).
    rows, columns : str
        The two variables; missing values are counted as ``(missing)``, categorical levels
        keep their declared order and unused levels are left out.
    percent : {None, "row", "column"}
        Counts (default), or percentages of the row or column total.
    margins : bool, default True
        Add a ``Total`` row and column (``(Total)`` if a level is already called so).

    Returns
    -------
    pandas.DataFrame
        Index: levels of ``rows`` (and ``Total``); columns: levels of ``columns`` (and
        ``Total``).

    Raises
    ------
    ValueError
        ``percent`` is not None, ``"row"`` or ``"column"``.
    """
    if percent not in (None, "row", "column"):
        raise ValueError(f"percent must be None, 'row' or 'column', not {percent!r}")
    r, c = (_with_missing(frame[name]) for name in (rows, columns))
    r = r.cat.remove_unused_categories() if isinstance(r.dtype, pd.CategoricalDtype) else r
    c = c.cat.remove_unused_categories() if isinstance(c.dtype, pd.CategoricalDtype) else c
    counts = pd.crosstab(r, c)
    counts.index = pd.Index(list(counts.index), dtype=object, name=rows)
    counts.columns = pd.Index(list(counts.columns), dtype=object, name=columns)
    total = TOTAL
    while total in counts.index or total in counts.columns:  # a level called "Total"
        total = f"({total})"
    counts[total] = counts.sum(axis=1)
    counts.loc[total] = counts.sum(axis=0)
    if percent == "row":
        counts = counts.div(counts[total], axis=0) * 100.0
    elif percent == "column":
        counts = counts.div(counts.loc[total], axis=1) * 100.0
    if not margins:
        counts = counts.drop(index=total, columns=total)
    return counts


def missingness_by_visit(
    data: pd.DataFrame,
    group: str | None = None,
    outcomes: Mapping[str, str] = INSTRUMENT_COLUMNS,
) -> pd.DataFrame:
    """How many patients have each outcome at each visit, by group.

    The denominator is every patient of the group in the analysis data set (a patient with
    at least one valid assessment). A value is missing either because the visit was not
    assessed (missed visit, dropout or quarantined row) or because the assessment did not
    give a score (e.g. ODI with too many unanswered sections).

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    group : str, optional
        Patient-level grouping column (``depth``, ``twitch``, ``chronicity``, ``site``);
        None for all patients together.
    outcomes : mapping of str to str
        Instrument -> column (default NRS, VAS, ODI).

    Returns
    -------
    pandas.DataFrame
        ``group, visit, outcome, patients, assessed, observed, not_assessed, unscored,
        missing, missing_pct``.
    """
    people = data.drop_duplicates(PATIENT_ID)
    records = []
    for label, mask in _groups(people, group):
        members = people.loc[mask, PATIENT_ID]
        rows = data.loc[data[PATIENT_ID].isin(members)]
        for visit in _visits(data):
            at = rows.loc[rows["visit"] == visit]
            assessed = at[PATIENT_ID].nunique()
            for outcome, column in outcomes.items():
                observed = int(at[column].notna().sum())
                missing = len(members) - observed
                records.append(
                    {
                        "group": label,
                        "visit": visit,
                        "outcome": outcome,
                        "patients": len(members),
                        "assessed": assessed,
                        "observed": observed,
                        "not_assessed": len(members) - assessed,
                        "unscored": assessed - observed,
                        "missing": missing,
                        "missing_pct": 100.0 * missing / len(members) if len(members) else np.nan,
                    }
                )
    return pd.DataFrame(records)


def dropout_pattern(data: pd.DataFrame, group: str | None = None) -> pd.DataFrame:
    """Retention, missed visits and dropout at each visit, by group (SAP §5).

    A patient is *retained* at a visit when they have a valid assessment at that visit or
    later, *missed* the visit when they have none at it but one later (intermittent
    missingness), and were *last seen* at the visit when it is their last valid assessment
    (at the final visit: completers).

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    group : str, optional
        Patient-level grouping column; None for all patients together.

    Returns
    -------
    pandas.DataFrame
        ``group, visit, patients, assessed, missed, retained, retained_pct, last_seen``.
    """
    people = data.drop_duplicates(PATIENT_ID).set_index(PATIENT_ID)
    last = data.groupby(PATIENT_ID)["visit"].max()
    records = []
    for label, mask in _groups(people, group):
        members = people.index[mask.to_numpy()]
        last_visit = last.reindex(members)
        for visit in _visits(data):
            at = data.loc[(data["visit"] == visit) & data[PATIENT_ID].isin(members), PATIENT_ID]
            assessed = at.nunique()
            retained = int((last_visit >= visit).sum())
            records.append(
                {
                    "group": label,
                    "visit": visit,
                    "patients": len(members),
                    "assessed": assessed,
                    "missed": retained - assessed,
                    "retained": retained,
                    "retained_pct": 100.0 * retained / len(members) if len(members) else np.nan,
                    "last_seen": int((last_visit == visit).sum()),
                }
            )
    return pd.DataFrame(records)


def dropout_by_value(data: pd.DataFrame, outcome: str = "nrs") -> pd.DataFrame:
    """Compare the last observed outcome of patients who drop out with those who stay.

    Under missing at random (SAP §5) dropout may depend on what was observed; a clear
    difference here says that a complete-case summary would be biased while the likelihood
    based mixed models, which use every observed value, are not.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    outcome : str, default "nrs"
        Instrument (``nrs``, ``vas`` or ``odi``).

    Returns
    -------
    pandas.DataFrame
        One row per visit before the last: ``visit, assessed`` (patients with the outcome at
        that visit), ``dropped_out`` (of those, no valid assessment afterwards),
        ``dropout_pct, mean_stayed, mean_dropped_out``.
    """
    column = INSTRUMENT_COLUMNS[outcome]
    last = data[PATIENT_ID].map(data.groupby(PATIENT_ID)["visit"].max())
    records = []
    for visit in _visits(data)[:-1]:
        at = (data["visit"] == visit) & data[column].notna()
        gone = at & (last == visit)
        stayed = at & (last > visit)
        n = int(at.sum())
        records.append(
            {
                "visit": visit,
                "assessed": n,
                "dropped_out": int(gone.sum()),
                "dropout_pct": 100.0 * gone.sum() / n if n else np.nan,
                "mean_stayed": float(data.loc[stayed, column].mean()),
                "mean_dropped_out": float(data.loc[gone, column].mean()),
            }
        )
    return pd.DataFrame(records)


def baseline_summary(
    data: pd.DataFrame,
    group: str | None = None,
    outcomes: Mapping[str, str] = INSTRUMENT_COLUMNS,
) -> pd.DataFrame:
    """Distribution of each outcome at baseline (visit 0), by group.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    group : str, optional
        Patient-level grouping column; None for all patients together.
    outcomes : mapping of str to str
        Instrument -> column (default NRS, VAS, ODI).

    Returns
    -------
    pandas.DataFrame
        ``outcome, group, patients, n, missing, mean, sd, min, q1, median, q3, max``;
        ``missing`` counts patients of the group without a baseline value.
    """
    people = data.drop_duplicates(PATIENT_ID)
    base = data.loc[data["visit"] == 0].drop_duplicates(PATIENT_ID).set_index(PATIENT_ID)
    records = []
    for outcome, column in outcomes.items():
        for label, mask in _groups(people, group):
            members = people.loc[mask, PATIENT_ID]
            values = base[column].reindex(members).dropna().astype("float64")
            records.append(
                {
                    "outcome": outcome,
                    "group": label,
                    "patients": len(members),
                    "n": len(values),
                    "missing": len(members) - len(values),
                    "mean": values.mean(),
                    "sd": values.std(),
                    "min": values.min(),
                    "q1": values.quantile(0.25),
                    "median": values.median(),
                    "q3": values.quantile(0.75),
                    "max": values.max(),
                }
            )
    return pd.DataFrame(records)


def twitch_by_depth(sessions: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """Share of needling sessions with a local twitch response, by depth (Wilson CIs).

    Parameters
    ----------
    sessions : pandas.DataFrame
        Valid sessions (``depth``, ``twitch``, ``ltr_count``).
    conf_level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        ``depth, sessions, twitch_recorded, twitch, twitch_pct, ci_low, ci_high`` (per cent;
        twitch is the recorded yes/no, else an LTR count above 0, as in the derivation).
    """
    elicited = twitch_elicited(sessions)
    records = []
    levels = [d for d in DEPTH_LEVELS if (sessions["depth"] == d).any()]
    for depth in levels:
        rows = elicited[sessions["depth"] == depth]
        known = int(rows.notna().sum())
        yes = int(rows.fillna(False).sum())
        low, high = (
            proportion_confint(yes, known, alpha=1 - conf_level, method="wilson")
            if known
            else (np.nan, np.nan)
        )
        records.append(
            {
                "depth": depth,
                "sessions": len(rows),
                "twitch_recorded": known,
                "twitch": yes,
                "twitch_pct": 100.0 * yes / known if known else np.nan,
                "ci_low": 100.0 * low,
                "ci_high": 100.0 * high,
            }
        )
    return pd.DataFrame(records)


def twitch_decomposition(
    data: pd.DataFrame, settings: ModelSettings | None = None, outcome: str = "nrs"
) -> pd.DataFrame:
    """Split the session-level twitch exposure into between- and within-patient parts.

    Uses the rows of the session-level twitch model (:func:`pipeline.analyses.plans.
    session_twitch_plan`): for each post-baseline assessment the share of earlier sessions
    with a twitch, its patient mean (*between*) and the deviation from that mean (*within*).
    The two parts are uncorrelated and their variances add up to the total. Only the
    between part can carry differences between patients such as needling depth: the
    within part has mean zero in every patient, so it is uncorrelated with any
    patient-level characteristic.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    settings : ModelSettings, optional
        Model settings (time axis, covariates) deciding the model rows (default: defaults).
    outcome : str, default "nrs"
        Instrument whose model rows are used.

    Returns
    -------
    pandas.DataFrame
        ``component`` (total, between patients, within patients), ``variance``,
        ``share_pct`` (of the total variance), ``corr_deep_share`` (correlation with the
        patient's share of deep sessions) and ``mean_<depth level>`` (mean of the component
        among superficial and deep patients).
    """
    rows = session_twitch_plan(data, outcome, settings or ModelSettings()).rows
    per_patient = data.drop_duplicates(PATIENT_ID).set_index(PATIENT_ID)
    deep_share = rows[PATIENT_ID].map(per_patient["deep_share"]).astype("float64")
    depth = rows[PATIENT_ID].map(per_patient["depth"].astype(object))
    parts = {
        "total": rows["twitch_share_before"],
        "between patients": rows["twitch_between"],
        "within patients": rows["twitch_within"],
    }
    total = float(np.var(parts["total"]))
    records = []
    for name, values in parts.items():
        variance = float(np.var(values))
        record = {
            "component": name,
            "variance": variance,
            "share_pct": 100.0 * variance / total if total > 0 else np.nan,
            "corr_deep_share": (
                float(np.corrcoef(values, deep_share)[0, 1]) if variance > 0 else np.nan
            ),
        }
        for level in DEPTH_LEVELS:
            record[f"mean_{level}"] = float(values[depth == level].mean())
        records.append(record)
    return pd.DataFrame(records)


def compare(
    results: Mapping[str, AnalysisResult],
    table: str = "contrasts",
    *,
    contains: str | None = None,
) -> pd.DataFrame:
    """Stack one table of several fitted analyses, labelled by the choice that differs.

    Parameters
    ----------
    results : mapping of str to AnalysisResult
        Label (e.g. ``"weeks"``, ``"sessions"``) -> result of :func:`pipeline.api.fit`.
    table : str, default "contrasts"
        One of :data:`pipeline.analyses.plans.TABLES`.
    contains : str, optional
        Keep only rows whose ``contrast`` (or ``term``, or ``test``) contains this text.

    Returns
    -------
    pandas.DataFrame
        ``model`` followed by the columns of the table.

    Raises
    ------
    ValueError
        Unknown table.
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; choose from {', '.join(TABLES)}")
    frames = [r.tables[table].assign(model=label) for label, r in results.items()]
    out = pd.concat(frames, ignore_index=True)
    out = out[["model", *out.columns.drop("model")]]
    if contains is not None:
        key = next(c for c in ("contrast", "term", "test", "status") if c in out.columns)
        out = out.loc[out[key].astype(str).str.contains(contains, regex=False)]
    return out.reset_index(drop=True)


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".replace("-", "−")


def describe(row: Mapping | pd.Series, unit: str = "", digits: int = 2) -> str:
    """Write an estimate with its 95 % CI (and p when given) as a sentence fragment.

    Parameters
    ----------
    row : mapping or pandas.Series
        ``estimate, ci_low, ci_high`` and optionally ``p_value``.
    unit : str
        Written after the estimate (e.g. ``"NRS points a week"``).
    digits : int, default 2
        Decimals.

    Returns
    -------
    str
        E.g. ``"−0.10 NRS points a week (95 % CI −0.14 to −0.06; p < 0.001)"``.
    """
    text = _number(row["estimate"], digits) + (f" {unit}" if unit else "")
    interval = f"95 % CI {_number(row['ci_low'], digits)} to {_number(row['ci_high'], digits)}"
    p = row.get("p_value") if hasattr(row, "get") else None
    if p is not None and not pd.isna(p):
        interval += "; p < 0.001" if p < 0.001 else f"; p = {p:.3f}"
    return f"{text} ({interval})"


def random_slope_test(with_slope: LmmFit, without_slope: LmmFit) -> pd.DataFrame:
    """REML likelihood-ratio test of the random slope (variance and correlation).

    The null puts the slope variance on the boundary of its space, so the statistic follows
    a 50:50 mixture of χ²(1) and χ²(2), not χ²(2) (Self & Liang 1987; Stram & Lee 1994).
    REML likelihoods are comparable here because the fixed effects are the same.

    Parameters
    ----------
    with_slope, without_slope : LmmFit
        REML fits of the same fixed effects on the same rows, with a random intercept and
        slope, and with a random intercept only (``AnalysisResult.fit``).

    Returns
    -------
    pandas.DataFrame
        One row: ``test, chisq, p_value, loglik_reduced, loglik_full``.

    Raises
    ------
    ValueError
        The fits are not REML, differ in fixed effects or rows, or the first has no random
        slope (it fell back to a random intercept: nothing to test).
    """
    full, reduced = with_slope, without_slope
    if not (full.reml and reduced.reml):
        raise ValueError("both fits must be REML")
    if full.design_columns != reduced.design_columns or full.n_obs != reduced.n_obs:
        raise ValueError("the fits differ in fixed effects or rows")
    if full.random_slope is None or reduced.random_slope is not None:
        raise ValueError("need one fit with a random slope and one without")
    chisq = max(0.0, 2.0 * (full.loglik - reduced.loglik))
    p_value = 0.5 * stats.chi2.sf(chisq, 1) + 0.5 * stats.chi2.sf(chisq, 2)
    return pd.DataFrame(
        [
            {
                "test": f"random slope for {full.random_slope} (REML, 50:50 χ²(1)/χ²(2))",
                "chisq": chisq,
                "p_value": float(p_value),
                "loglik_reduced": reduced.loglik,
                "loglik_full": full.loglik,
            }
        ]
    )


def observed_levels(values: pd.Series) -> list[str]:
    """Observed levels of a variable as text, in declared (categorical) or sorted order."""
    return [str(v) for v in _levels(values)]
