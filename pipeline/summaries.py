"""Descriptive summaries that feed the report's tables and figures (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.ingest import SOURCE_ROW
from pipeline.validate import rule_text


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
