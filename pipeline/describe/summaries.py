"""Descriptive summaries that feed the report's tables and figures (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.config.study import Study
from pipeline.describe.flow import flow_counts
from pipeline.describe.table_one import patient_characteristics, table_one
from pipeline.ingest.raw_tables import SOURCE_ROW
from pipeline.schemas.columns import INSTRUMENT_COLUMNS, PATIENT_ID, outcome_column
from pipeline.validate.study import Validation, rule_text

# Seed of the individual-trajectory sample (any fixed number gives a reproducible sample).
SAMPLE_SEED = 2026


def mean_by_visit(data: pd.DataFrame, response: str, group: str) -> pd.DataFrame:
    """Mean of an outcome at each visit and group, with a 95 % t confidence interval.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set.
    response : str
        Outcome column.
    group : str
        Grouping column (categorical; its level order is kept).

    Returns
    -------
    pandas.DataFrame
        ``visit, group, n, mean, sd, ci_low, ci_high, mean_weeks``; the interval is missing
        where fewer than two values are observed.
    """
    rows = data.dropna(subset=[response, group])
    grouped = rows.groupby(["visit", group], observed=True, sort=True)
    out = grouped.agg(
        n=(response, "count"),
        mean=(response, "mean"),
        sd=(response, "std"),
        mean_weeks=("weeks", "mean"),
    ).reset_index()
    half = stats.t.ppf(0.975, out["n"] - 1) * out["sd"] / np.sqrt(out["n"])
    half = half.where(out["n"] >= 2)
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    out = out.rename(columns={group: "group"})
    out["group"] = out["group"].astype("str")
    return out[["visit", "group", "n", "mean", "sd", "ci_low", "ci_high", "mean_weeks"]]


def quarantine_reasons(failures: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Count quarantined rows by table and failed check, most frequent first.

    Returns
    -------
    pandas.DataFrame
        ``table, check, column, rows, rule`` (the rule in words, quoting no cell value).
    """
    if failures.empty:
        return pd.DataFrame(columns=["table", "check", "column", "rows", "rule"])
    out = (
        failures.groupby(["table", "check", "column"], sort=True)
        .agg(rows=(SOURCE_ROW, "nunique"))
        .reset_index()
        .sort_values(["rows", "table", "check"], ascending=[False, True, True], kind="stable")
    )
    out["rule"] = [rule_text(c, col) for c, col in zip(out["check"], out["column"], strict=True)]
    return out.head(top).reset_index(drop=True)


def means_by_visit(
    data: pd.DataFrame, outcomes: Mapping[str, str], factors: Sequence[str]
) -> pd.DataFrame:
    """Mean of every outcome at each visit, for each level of each grouping.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set.
    outcomes : mapping of str to str
        Outcome label -> column (``{"nrs": "nrs", "vas": "vas_mm", "odi": "odi"}``).
    factors : sequence of str
        Patient-level groupings (``depth``, ``twitch``).

    Returns
    -------
    pandas.DataFrame
        ``outcome, factor`` and the columns of :func:`mean_by_visit`.
    """
    frames = [
        mean_by_visit(data, column, factor).assign(outcome=outcome, factor=factor)
        for outcome, column in outcomes.items()
        for factor in factors
    ]
    out = pd.concat(frames, ignore_index=True)
    first = ["outcome", "factor"]
    return out[first + [c for c in out.columns if c not in first]]


def trajectory_sample(
    data: pd.DataFrame,
    outcomes: Mapping[str, str],
    factor: str,
    per_group: int,
    seed: int = SAMPLE_SEED,
) -> pd.DataFrame:
    """Individual trajectories of a reproducible random sample of patients in each group.

    The sample is drawn with ``numpy.random.default_rng(seed)`` from the patients of each
    group in sorted order, so the same data give the same sample; patients are renumbered
    1, 2, ... and no identifier is returned.

    Returns
    -------
    pandas.DataFrame
        ``patient, group, weeks, outcome, value``, long format, by patient and time.
    """
    rng = np.random.default_rng(seed)
    people = data.dropna(subset=[factor]).drop_duplicates(PATIENT_ID)
    people = people.sort_values(PATIENT_ID)
    frames = []
    number = 0
    levels = people[factor].astype("category").cat.remove_unused_categories().cat.categories
    for level in levels:
        ids = people.loc[people[factor] == level, PATIENT_ID].to_numpy()
        chosen = np.sort(rng.choice(ids, size=min(per_group, len(ids)), replace=False))
        for patient_id in chosen:
            number += 1
            rows = data[data[PATIENT_ID] == patient_id]
            for outcome, column in outcomes.items():
                part = rows[["weeks", column]].dropna()
                frames.append(
                    pd.DataFrame(
                        {
                            "patient": number,
                            "group": str(level),
                            "weeks": part["weeks"].to_numpy(),
                            "outcome": outcome,
                            "value": part[column].astype(float).to_numpy(),
                        }
                    )
                )
    columns = ["patient", "group", "weeks", "outcome", "value"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def descriptive_tables(
    validation: Validation,
    data: pd.DataFrame,
    diagnostics: pd.DataFrame | None,
    factors: Sequence[str] = ("depth", "twitch"),
    study: Study | None = None,
    primary_analysis: str = "trajectory_depth",
) -> dict[str, pd.DataFrame]:
    """Compute the descriptive tables of the report: flow, Table 1 and means by visit.

    ``study`` (the declared design) gives the outcomes, the covariates Table 1 adds and whether
    there is a session log; by default NRS, VAS and ODI. ``primary_analysis`` names the model
    whose patients the flow counts as analysed.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``flow`` (:func:`pipeline.describe.flow.flow_counts`), ``table_one`` and
        ``table_one_std_diff`` (:func:`pipeline.describe.table_one.table_one`) and ``mean_by_visit``
        (:func:`means_by_visit` of NRS, VAS and ODI), and ``recorded_fields``: per source file
        and optional column, whether the source recorded it and how many of its valid rows
        carry a value (:func:`pipeline.ingest.recorded.recorded_by_file`).
    """
    outcomes, extra, sessions = INSTRUMENT_COLUMNS, [], True
    if study is not None:
        outcomes = {o.name: outcome_column(o.name) for o in study.outcomes}
        sessions = study.sessions
        extra = [(c.name, c.label.capitalize()) for c in study.covariates.values()]
        extra += [
            (f"{outcome_column(o.name)}_baseline", f"Baseline {o.short} ({o.unit})")
            for o in study.outcomes
        ]
    people = patient_characteristics(
        data, validation.valid("patients"), [*factors, *(c for c, _ in extra)]
    )
    table, std_diff = table_one(people, factors, extra)
    return {
        "flow": flow_counts(validation, diagnostics, primary_analysis, sessions),
        "table_one": table,
        "table_one_std_diff": std_diff,
        "mean_by_visit": means_by_visit(data, outcomes, factors),
        "recorded_fields": validation.recorded,
    }
