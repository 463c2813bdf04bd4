"""Responders at the last assessment: risk difference and odds ratio (SAP §4, secondary).

From the analysis data set (:func:`pipeline.derive.dataset.analysis_dataset`, one row per assessment
with ``<column>_responder`` already derived from the MCID), each patient's *last* post-baseline
assessment with a known responder status is kept, and the two groups of a patient-level
exposure (depth or twitch, a categorical whose first category is the reference) are compared:

- the number of patients, responders and the proportion per group;
- the risk difference (second level minus reference) with a 95 % Wald confidence interval;
- the odds ratio from a logistic regression ``responder ~ group`` (statsmodels GLM, binomial
  family, logit link), with a Wald confidence interval and p-value, as R's
  ``glm(y ~ g, family = binomial)`` with ``exp(confint.default(fit))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from pipeline.schemas.columns import INSTRUMENT_COLUMNS, PATIENT_ID, outcome_column
from pipeline.schemas.outputs import RESPONDER_COLUMNS

PROPORTION_METHOD = "observed proportion"
RD_METHOD = "risk difference (Wald CI)"
OR_METHOD = "logistic regression (Wald CI)"

COLUMNS = RESPONDER_COLUMNS


def last_responder_status(data: pd.DataFrame, instrument_column: str, group: str) -> pd.DataFrame:
    """Return each patient's last post-baseline assessment with a known responder status.

    Baseline rows (``visit == 0``) are never used; rows whose ``<instrument_column>_responder``
    is missing are skipped; among the rest the highest ``visit`` wins.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set with ``patient_id``, ``visit``, ``<instrument_column>_responder``
        and ``group``.
    instrument_column : str
        Score column of the instrument, e.g. ``nrs``, ``vas_mm`` or ``odi``.
    group : str
        Patient-level grouping column.

    Returns
    -------
    pandas.DataFrame
        One row per patient with columns ``patient_id, visit, responder`` (bool) and
        ``group`` (categorical, categories as in ``data``; missing when the patient's group
        is unknown), sorted by patient.
    """
    status = data[f"{instrument_column}_responder"].astype("boolean")
    keep = (data["visit"] > 0).fillna(False) & status.notna()
    rows = pd.DataFrame(
        {
            PATIENT_ID: data.loc[keep, PATIENT_ID],
            "visit": data.loc[keep, "visit"],
            "responder": status[keep].astype(bool),
            group: _as_categorical(data[group])[keep.to_numpy()],
        }
    )
    rows = rows.sort_values([PATIENT_ID, "visit"], kind="stable")
    last = rows.groupby(PATIENT_ID, sort=True).tail(1)
    return last.reset_index(drop=True)


def _as_categorical(values: pd.Series) -> pd.Series:
    """Return ``values`` as a categorical (sorted categories when not one already)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values
    return values.astype("category")


def _row(outcome: str, group: str, quantity: str, level: str, reference: str, **fields) -> dict:
    base = dict.fromkeys(COLUMNS, np.nan)
    base.update(
        outcome=outcome,
        group=group,
        quantity=quantity,
        level=level,
        reference=reference,
        note="",
    )
    base.update(fields)
    return base


def _logistic_odds_ratio(y: np.ndarray, x: np.ndarray, conf_level: float) -> tuple[float, ...]:
    """Fit ``y ~ 1 + x`` by binomial GLM; return OR, Wald CI limits and p-value of ``x``."""
    design = sm.add_constant(x.astype("float64"), has_constant="add")
    fit = sm.GLM(y.astype("float64"), design, family=sm.families.Binomial()).fit()
    low, high = fit.conf_int(alpha=1.0 - conf_level)[1]
    return (
        float(np.exp(fit.params[1])),
        float(np.exp(low)),
        float(np.exp(high)),
        float(fit.pvalues[1]),
    )


def responders_at_last_visit(
    data: pd.DataFrame, instrument_column: str, group: str, conf_level: float = 0.95
) -> pd.DataFrame:
    """Compare the share of MCID responders at each patient's last assessment between groups.

    Each patient contributes their last post-baseline assessment with a known responder
    status (:func:`last_responder_status`); patients with an unknown group are left out.
    The risk difference uses the unpooled Wald standard error
    ``sqrt(p1 (1 − p1) / n1 + p0 (1 − p0) / n0)``; the odds ratio is ``exp`` of the group
    coefficient of the logistic regression ``responder ~ group`` with its Wald interval and
    z-test p-value.

    Degenerate data do not raise: when a group has no patients, the risk difference and odds
    ratio are NaN; when a group has no or only responders (separation), the odds ratio is NaN;
    when both proportions are 0 or 1 the Wald interval of the risk difference is NaN. The
    ``note`` column says which.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set (one row per assessment) with ``patient_id``, ``visit``,
        ``<instrument_column>_responder`` and ``group``.
    instrument_column : str
        Score column of the instrument, e.g. ``nrs``, ``vas_mm`` or ``odi``.
    group : str
        Patient-level exposure with exactly two categories, the first being the reference,
        e.g. ``depth`` (superficial, deep) or ``twitch`` (no twitch, twitch).
    conf_level : float
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Tidy frame, one row per quantity: a ``proportion`` row per level (reference first),
        then ``risk difference`` and ``odds ratio`` rows for the second level. Columns:

        - ``outcome``: ``instrument_column``.
        - ``group``: name of the grouping column.
        - ``quantity``: ``proportion``, ``risk difference`` or ``odds ratio``.
        - ``level``: the level the row describes (the compared level for contrasts).
        - ``reference``: the reference level (empty for proportion rows).
        - ``estimate``: proportion of responders, risk difference, or odds ratio.
        - ``ci_low``, ``ci_high``: Wald confidence limits (NaN for proportions).
        - ``p_value``: Wald z-test p-value (NaN for proportions).
        - ``n``: patients (in the level, or in both levels for contrasts).
        - ``responders``: responders (in the level, or in both levels for contrasts).
        - ``method``: ``observed proportion``, ``risk difference (Wald CI)`` or
          ``logistic regression (Wald CI)``.
        - ``note``: empty, or why an estimate is missing; ``<instrument_column> was not
          recorded`` on every row when no assessment has a value of the instrument (not
          recorded is not "no responder").

    Raises
    ------
    ValueError
        When ``group`` does not have exactly two categories.
    """
    last = last_responder_status(data, instrument_column, group)
    levels = [str(c) for c in last[group].cat.categories]
    if len(levels) != 2:
        raise ValueError(
            f"{group!r} must have exactly two categories (reference first), got {levels}"
        )
    reference, level = levels
    last = last[last[group].notna()]
    z = stats.norm.ppf(0.5 + conf_level / 2.0)

    n = {lv: int((last[group] == lv).sum()) for lv in levels}
    r = {lv: int(last.loc[last[group] == lv, "responder"].sum()) for lv in levels}
    p = {lv: r[lv] / n[lv] if n[lv] > 0 else np.nan for lv in levels}
    rows = [
        _row(
            instrument_column,
            group,
            "proportion",
            lv,
            "",
            estimate=p[lv],
            n=n[lv],
            responders=r[lv],
            method=PROPORTION_METHOD,
            note="" if n[lv] > 0 else "no patients in this group",
        )
        for lv in levels
    ]
    contrast = {"n": n[reference] + n[level], "responders": r[reference] + r[level]}
    rd = _row(instrument_column, group, "risk difference", level, reference, **contrast)
    rd["method"] = RD_METHOD
    odds = _row(instrument_column, group, "odds ratio", level, reference, **contrast)
    odds["method"] = OR_METHOD

    empty = [lv for lv in levels if n[lv] == 0]
    if empty:
        note = f"no patients in group {', '.join(empty)}; not estimable"
        rd["note"] = odds["note"] = note
    else:
        diff = p[level] - p[reference]
        se = np.sqrt(
            p[level] * (1 - p[level]) / n[level] + p[reference] * (1 - p[reference]) / n[reference]
        )
        rd["estimate"] = diff
        if se > 0:
            rd["ci_low"], rd["ci_high"] = diff - z * se, diff + z * se
            rd["p_value"] = float(2.0 * stats.norm.sf(abs(diff) / se))
        else:
            rd["note"] = "all or no responders in both groups; Wald standard error is zero"
        separated = [lv for lv in levels if r[lv] in (0, n[lv])]
        if separated:
            odds["note"] = (
                f"all or no responders in group {', '.join(separated)} (separation); "
                "odds ratio not estimable"
            )
        else:
            y = last["responder"].to_numpy()
            x = (last[group] == level).to_numpy()
            est, low, high, pval = _logistic_odds_ratio(y, x, conf_level)
            odds.update(estimate=est, ci_low=low, ci_high=high, p_value=pval)
    rows += [rd, odds]
    if instrument_column in data and data[instrument_column].notna().sum() == 0:
        for row in rows:
            row["note"] = f"{instrument_column} was not recorded"
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["n"] = out["n"].astype("int64")
    out["responders"] = out["responders"].astype("int64")
    return out


def responders_by_instrument(
    data: pd.DataFrame, group: str, outcomes: Sequence[str] = tuple(INSTRUMENT_COLUMNS)
) -> pd.DataFrame:
    """:func:`responders_at_last_visit` for every outcome, stacked with an ``outcome`` column.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    group : str
        Patient-level grouping column (``depth``, ``twitch``, ``arm``...).
    outcomes : sequence of str
        Declared outcomes (default NRS, VAS and ODI); their responder columns follow each
        outcome's direction (:func:`pipeline.derive.dataset.add_change_and_responders`).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`COLUMNS`, instrument by instrument.
    """
    return pd.concat(
        [
            responders_at_last_visit(data, outcome_column(name), group).assign(outcome=name)
            for name in outcomes
        ],
        ignore_index=True,
    )
