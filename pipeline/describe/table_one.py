"""Table 1: baseline characteristics by exposure group, with standardised differences.

One row per patient of the analysis data set (patients with at least one valid assessment),
compared between the levels of each patient-level exposure (depth, twitch). Standardised
differences follow Yang & Dalton (2012, SAS Global Forum paper 335-2012), as R's ``tableone``:

- continuous: ``(mean_1 - mean_0) / sqrt((s_1^2 + s_0^2) / 2)``, also for variables shown as
  median (IQR);
- binary: ``(p_1 - p_0) / sqrt((p_1 (1 - p_1) + p_0 (1 - p_0)) / 2)``;
- categorical with k levels: ``sqrt((T - C)' S^-1 (T - C))`` over levels 2..k, with
  ``S_kk = (p_1k (1 - p_1k) + p_0k (1 - p_0k)) / 2`` and
  ``S_kl = -(p_1k p_1l + p_0k p_0l) / 2``; levels absent from both groups are left out.

The sign of a continuous or binary difference is the second level minus the reference (deep −
superficial, twitch − no twitch). Quartiles are pandas' (R's type 7).

**Not recorded is not zero.** A missing value (a field the patient's source did not record, or
an empty cell) is never counted as "no": a yes/no characteristic is summarised over the patients
for whom it was recorded (``percent`` of those), and a ``not recorded`` row gives, per level, how
many patients it was not recorded for, so the denominator is the level's size minus that count.
A characteristic recorded for no patient of a grouping has only ``not recorded`` rows (``n``:
all patients of the level), for a measurement as well, and its standardised difference is
missing with ``method`` ``not recorded``. For a categorical characteristic ``not recorded`` is
its own category in the counts; it is left out of the standardised differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from pipeline.ingest.recorded import NOT_RECORDED
from pipeline.schemas.analysis import CHRONICITY_LEVELS, DEPTH_LEVELS, TWITCH_LEVELS
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import CONTRAINDICATIONS, SEXES

FACTOR_LEVELS = {"depth": DEPTH_LEVELS, "twitch": TWITCH_LEVELS}
MISSING = NOT_RECORDED
COLUMNS = [
    "factor",
    "variable",
    "label",
    "kind",
    "statistic",
    "category",
    "level",
    "n",
    "percent",
    "mean",
    "sd",
    "median",
    "q1",
    "q3",
    "summary",
]
"""Columns of ``table_one``; ``summary`` (:class:`Summary`) is typed and kept in memory only
(:data:`pipeline.schemas.outputs.UNPUBLISHED`): the report formats a row by it, not by the
``statistic`` label."""
STD_DIFF_COLUMNS = ["factor", "variable", "label", "std_diff", "method"]


class Summary(StrEnum):
    """How a characteristic is summarised (typed; ``statistic`` is its label)."""

    MEAN_SD = "mean_sd"
    MEDIAN_IQR = "median_iqr"
    COUNT = "count"


STATISTIC_LABELS = {
    Summary.MEAN_SD: "mean (SD)",
    Summary.MEDIAN_IQR: "median (IQR)",
    Summary.COUNT: "n (%)",
}


@dataclass(frozen=True)
class Variable:
    """One characteristic: column, label, kind, summary and, for categories, their order."""

    column: str
    label: str
    kind: str  # continuous | categorical | binary
    summary: Summary = Summary.COUNT
    categories: tuple[str, ...] = ()

    @property
    def statistic(self) -> str:
        """How the summary is labelled for readers."""
        return STATISTIC_LABELS[self.summary]


def variables(patients: pd.DataFrame, extra: Sequence[tuple[str, str]] = ()) -> list[Variable]:
    """List the characteristics of Table 1, in the order shown, for the columns present.

    ``extra`` adds ``(column, label)`` pairs after the built-in ones: a study's declared
    covariates and baseline outcomes (a categorical column is counted, a numeric one summarised
    by mean and SD).
    """
    out = [
        Variable("age", "Age, years", "continuous", Summary.MEAN_SD),
        Variable("sex", "Sex", "categorical", Summary.COUNT, SEXES),
        Variable(
            "chronicity", "Symptom duration", "categorical", Summary.COUNT, tuple(CHRONICITY_LEVELS)
        ),
        Variable("symptom_weeks", "Symptom duration, weeks", "continuous", Summary.MEDIAN_IQR),
        Variable(
            "site",
            "Clinic",
            "categorical",
            Summary.COUNT,
            tuple(sorted(patients["site"].dropna().astype(str).unique())),
        ),
        Variable("nrs_baseline", "Baseline NRS pain (0–10)", "continuous", Summary.MEAN_SD),
        Variable("vas_mm_baseline", "Baseline VAS pain, mm", "continuous", Summary.MEAN_SD),
        Variable("odi_baseline", "Baseline ODI, %", "continuous", Summary.MEAN_SD),
        Variable("contraindicated", "Any contraindication or caution", "binary", Summary.COUNT),
    ]
    out += [
        Variable(flag, f"  {flag.replace('_', ' ').capitalize()}", "binary", Summary.COUNT)
        for flag in CONTRAINDICATIONS
        if flag in patients
    ]
    out.append(Variable("protocol_deviation", "Protocol deviation", "binary", Summary.COUNT))
    out = [v for v in out if v.column in patients]
    known = {v.column for v in out}
    for column, label in extra:
        if column in known or column not in patients or patients[column].isna().all():
            continue
        values = patients[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            values
        ):
            categories = (
                tuple(values.cat.categories)
                if isinstance(values.dtype, pd.CategoricalDtype)
                else tuple(sorted(values.dropna().astype(str).unique()))
            )
            out.append(Variable(column, label, "categorical", Summary.COUNT, categories))
        else:
            out.append(Variable(column, label, "continuous", Summary.MEAN_SD))
    return out


def patient_characteristics(
    data: pd.DataFrame, patients: pd.DataFrame, extra: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per patient of the analysis data set with everything Table 1 describes.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set (one row per assessment).
    patients : pandas.DataFrame
        Valid patients (``symptom_weeks`` and the contraindication flags).
    extra : sequence of str
        Further columns of ``data`` to keep: declared comparisons, covariates and baseline
        outcomes.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, the exposures, ``age, sex, chronicity, site, contraindicated,
        protocol_deviation``, the baseline outcomes, ``symptom_weeks`` and the flags.
    """
    keep = [
        PATIENT_ID,
        "depth",
        "twitch",
        "age",
        "sex",
        "chronicity",
        "site",
        "contraindicated",
        "protocol_deviation",
        "nrs_baseline",
        "vas_mm_baseline",
        "odi_baseline",
    ]
    keep += [c for c in extra if c not in keep and c != "symptom_weeks"]
    first = data.sort_values([PATIENT_ID, "visit"]).drop_duplicates(PATIENT_ID)
    people = first[[c for c in keep if c in data]]
    extra = ["symptom_weeks", *[c for c in CONTRAINDICATIONS if c in patients]]
    return people.merge(
        patients[[PATIENT_ID, *extra]], on=PATIENT_ID, how="left", validate="one_to_one"
    ).reset_index(drop=True)


def std_diff_continuous(x1: pd.Series, x0: pd.Series) -> float:
    """Standardised difference of means, ``(m1 - m0) / sqrt((s1^2 + s0^2) / 2)``."""
    x1, x0 = x1.dropna().astype(float), x0.dropna().astype(float)
    if len(x1) < 2 or len(x0) < 2:
        return math.nan
    pooled = math.sqrt((x1.var(ddof=1) + x0.var(ddof=1)) / 2.0)
    return (x1.mean() - x0.mean()) / pooled if pooled > 0 else math.nan


def std_diff_binary(p1: float, p0: float) -> float:
    """Standardised difference of proportions (Yang & Dalton 2012)."""
    denominator = math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2.0)
    return (p1 - p0) / denominator if denominator > 0 else math.nan


def std_diff_categorical(p1: Sequence[float], p0: Sequence[float]) -> float:
    """Multinomial standardised difference (Yang & Dalton 2012), always ≥ 0.

    Parameters
    ----------
    p1, p0 : sequence of float
        Proportions of each category (summing to 1) in the two groups, same order.
    """
    p1, p0 = np.asarray(p1, dtype=float), np.asarray(p0, dtype=float)
    present = (p1 > 0) | (p0 > 0)
    p1, p0 = p1[present], p0[present]
    if len(p1) < 2:
        return math.nan
    t, c = p1[1:], p0[1:]
    s = -(np.outer(t, t) + np.outer(c, c)) / 2.0
    np.fill_diagonal(s, (t * (1 - t) + c * (1 - c)) / 2.0)
    diff = t - c
    value = float(diff @ np.linalg.pinv(s) @ diff)
    return math.sqrt(max(value, 0.0))


def _rows(people: pd.DataFrame, factor: str, var: Variable, levels: Sequence[str]) -> list:
    rows = []
    groups = {level: people[people[factor] == level] for level in levels}
    base = {"factor": factor, "variable": var.column, "label": var.label, "kind": var.kind}
    base["statistic"] = var.statistic
    base["summary"] = var.summary.value
    if people[var.column].notna().sum() == 0:
        return [
            {**base, "category": MISSING, "level": level, "n": len(part), "percent": 100.0}
            if len(part)
            else {**base, "category": MISSING, "level": level, "n": 0}
            for level, part in groups.items()
        ]
    if var.kind == "continuous":
        for level, part in groups.items():
            x = part[var.column].astype(float).dropna()
            rows.append(
                {
                    **base,
                    "category": "",
                    "level": level,
                    "n": len(x),
                    "mean": x.mean() if len(x) else math.nan,
                    "sd": x.std(ddof=1) if len(x) > 1 else math.nan,
                    "median": x.median() if len(x) else math.nan,
                    "q1": x.quantile(0.25) if len(x) else math.nan,
                    "q3": x.quantile(0.75) if len(x) else math.nan,
                }
            )
        return rows
    if var.kind == "binary":
        unknown = people[var.column].isna().any()
        for level, part in groups.items():
            known = part[var.column].dropna().astype(bool)
            yes = int(known.sum())
            rows.append(
                {
                    **base,
                    "category": "yes",
                    "level": level,
                    "n": yes,
                    "percent": 100.0 * yes / len(known) if len(known) else math.nan,
                }
            )
        if unknown:
            for level, part in groups.items():
                count = int(part[var.column].isna().sum())
                rows.append(
                    {
                        **base,
                        "category": MISSING,
                        "level": level,
                        "n": count,
                        "percent": 100.0 * count / len(part) if len(part) else math.nan,
                    }
                )
        return rows
    values = people[var.column].astype("str").where(people[var.column].notna())
    categories = list(var.categories)
    if values.isna().any():
        categories.append(MISSING)
    for category in categories:
        for level, part in groups.items():
            cell = values[part.index]
            count = int(cell.isna().sum() if category == MISSING else (cell == category).sum())
            rows.append(
                {
                    **base,
                    "category": category,
                    "level": level,
                    "n": count,
                    "percent": 100.0 * count / len(part) if len(part) else math.nan,
                }
            )
    return rows


def _std_diff(people: pd.DataFrame, factor: str, var: Variable, levels: Sequence[str]) -> dict:
    reference, other = levels[0], levels[-1]
    g1, g0 = people[people[factor] == other], people[people[factor] == reference]
    if people[var.column].notna().sum() == 0:
        value, method = math.nan, NOT_RECORDED
    elif var.kind == "continuous":
        value = std_diff_continuous(g1[var.column], g0[var.column])
        method = "difference in means / sqrt of the mean of the two variances"
    elif var.kind == "binary":
        y1, y0 = g1[var.column].dropna().astype(bool), g0[var.column].dropna().astype(bool)
        p1 = y1.mean() if len(y1) else math.nan
        p0 = y0.mean() if len(y0) else math.nan
        value = std_diff_binary(p1, p0)
        method = "difference in proportions (Yang & Dalton 2012)"
    else:
        shares = []
        for group in (g1, g0):
            known = group[var.column].dropna().astype(str)
            shares.append([(known == c).mean() if len(known) else 0.0 for c in var.categories])
        value = std_diff_categorical(*shares)
        method = "multinomial (Yang & Dalton 2012)"
    return {
        "factor": factor,
        "variable": var.column,
        "label": var.label,
        "std_diff": value,
        "method": method,
    }


def table_one(
    people: pd.DataFrame,
    factors: Sequence[str] = ("depth", "twitch"),
    extra: Sequence[tuple[str, str]] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Baseline characteristics by group, and the standardised differences.

    Parameters
    ----------
    people : pandas.DataFrame
        Output of :func:`patient_characteristics`.
    factors : sequence of str
        Patient-level groupings (levels from :data:`FACTOR_LEVELS` for depth and twitch, else
        the column's categories, reference first).
    extra : sequence of (str, str)
        Further characteristics ``(column, label)`` (:func:`variables`).

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`COLUMNS`: per factor a ``patients`` row per level (``n``), then per
        variable and level: counts and percentages of each category (``not recorded``
        included, see the module's notes), or ``n`` with values, mean, SD, median and
        quartiles.
    std_diff : pandas.DataFrame
        ``factor, variable, label, std_diff, method``: second level versus the reference.
    """
    rows, diffs = [], []
    spec = variables(people, extra)
    for factor in factors:
        levels = FACTOR_LEVELS.get(factor) or list(people[factor].cat.categories)
        in_factor = people[people[factor].notna()]
        for level in levels:
            rows.append(
                {
                    "factor": factor,
                    "variable": "patients",
                    "label": "Patients",
                    "kind": "patients",
                    "statistic": "n",
                    "summary": Summary.COUNT.value,
                    "category": "",
                    "level": level,
                    "n": int((in_factor[factor] == level).sum()),
                }
            )
        for var in spec:
            rows += _rows(in_factor, factor, var, levels)
            diffs.append(_std_diff(in_factor, factor, var, levels))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["n"] = table["n"].astype("int64")
    return table, pd.DataFrame(diffs, columns=STD_DIFF_COLUMNS)
