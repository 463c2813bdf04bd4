"""Estimated marginal means, group contrasts, Holm adjustment and standardised effect sizes.

Everything here is a linear function ``L beta`` of a fitted mixed model (:class:`LmmFit`), so
its standard error comes from ``L C L'`` and its degrees of freedom from lmerTest's
Satterthwaite formula (:meth:`LmmFit.contrast`), exactly as ``lmerTest::contest`` or
``emmeans(..., lmer.df = "satterthwaite")`` compute them.

Estimated marginal means follow R's ``emmeans`` defaults: the prediction at the chosen values
of the variables of interest, averaged with **equal weights** over the levels of every other
categorical variable in the model, with numeric covariates at their mean over the rows used in
the fit. Every point asked for in one call (:func:`averaged_rows`, :func:`emmeans`,
:func:`group_differences`) is evaluated on one reference grid, one design matrix built by
patsy from the fit's design information, then averaged point by point.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.lmm.fit import LmmFit

EMMEANS_COLUMNS = [
    "factor",
    "level",
    "visit",
    "time",
    "estimate",
    "std_err",
    "df",
    "ci_low",
    "ci_high",
]
CONTRAST_COLUMNS = [
    "question",
    "contrast",
    "visit",
    "estimate",
    "std_err",
    "df",
    "ci_low",
    "ci_high",
    "p_value",
]


def is_categorical(values: pd.Series) -> bool:
    """Whether a model variable is treated as categorical by the formula (text or category)."""
    return isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        values
    )


def levels_of(values: pd.Series) -> list[Any]:
    """Levels of a categorical model variable in model order (declared, else sorted)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    return sorted(values.dropna().unique())


def averaged_rows(
    fit: LmmFit,
    rows: pd.DataFrame,
    ats: Sequence[Mapping[str, Any]],
    variables: Sequence[str],
) -> np.ndarray:
    """Design rows at many points, each averaged over the other variables as ``emmeans`` does.

    The reference grid of every point (the point's values, each combination of the levels of
    the categorical variables it leaves free, the numeric ones at their mean) is stacked into
    one frame and coded by one design matrix; each point's rows are then averaged with equal
    weights.

    Parameters
    ----------
    fit : LmmFit
        The fitted model.
    rows : pandas.DataFrame
        The rows used in the fit (for levels and means of the other variables).
    ats : sequence of mapping
        For each point, fixed values of some model variables, e.g.
        ``{"weeks": 12.0, "depth": "deep"}``.
    variables : sequence of str
        Every variable of the fixed-effect formula.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(ats), p)``: row ``k`` is the vector ``L`` such that ``L @ beta`` is the
        marginal mean at ``ats[k]``.
    """
    free: dict[tuple[str, ...], tuple[list[str], dict[str, float], list[tuple]]] = {}
    records: list[dict[str, Any]] = []
    bounds = [0]
    for at in ats:
        others = tuple(v for v in variables if v not in at)
        if others not in free:
            categorical = [v for v in others if is_categorical(rows[v])]
            numeric = {
                v: float(rows[v].astype("float64").mean()) for v in others if v not in categorical
            }
            combos = list(itertools.product(*(levels_of(rows[v]) for v in categorical))) or [()]
            free[others] = (categorical, numeric, combos)
        categorical, numeric, combos = free[others]
        records += [
            {**dict(at), **numeric, **dict(zip(categorical, combo, strict=True))}
            for combo in combos
        ]
        bounds.append(len(records))
    if not records:
        return np.empty((0, len(fit.design_columns)))
    grid = pd.DataFrame(records)
    for v in variables:  # keep the declared level order so patsy codes the grid as the fit
        if isinstance(rows[v].dtype, pd.CategoricalDtype):
            grid[v] = pd.Categorical(grid[v], categories=rows[v].cat.categories)
    design = fit.design_matrix(grid)
    return np.vstack([design[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)])


def averaged_row(
    fit: LmmFit, rows: pd.DataFrame, at: Mapping[str, Any], variables: Sequence[str]
) -> np.ndarray:
    """Design row at ``at``, averaged over the other variables as ``emmeans`` does.

    Parameters
    ----------
    fit : LmmFit
        The fitted model.
    rows : pandas.DataFrame
        The rows used in the fit (for levels and means of the other variables).
    at : mapping
        Fixed values of some model variables, e.g. ``{"weeks": 12.0, "depth": "deep"}``.
    variables : sequence of str
        Every variable of the fixed-effect formula.

    Returns
    -------
    numpy.ndarray
        Length-``p`` vector ``L`` such that ``L @ beta`` is the marginal mean.
    """
    return averaged_rows(fit, rows, [at], variables)[0]


def emmeans(
    fit: LmmFit,
    rows: pd.DataFrame,
    variables: Sequence[str],
    factor: str,
    time: str,
    points: Mapping[int, Any],
    given: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Estimated marginal means of every level of ``factor`` at every visit.

    Parameters
    ----------
    fit : LmmFit
        The fitted model.
    rows : pandas.DataFrame
        Rows used in the fit.
    variables : sequence of str
        Every variable of the fixed-effect formula.
    factor : str
        The group variable (e.g. ``depth``).
    time : str
        The time variable of the formula (numeric time or categorical visit).
    points : mapping of int to value
        Visit number -> value of ``time`` at which that visit is evaluated.
    given : mapping, optional
        Values held fixed for every mean (e.g. ``{"chronicity": "chronic"}`` for a subgroup).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EMMEANS_COLUMNS`, one row per level and visit.
    """
    labels, ats, keys = [], [], []
    given = dict(given or {})
    for level in levels_of(rows[factor]):
        for visit, value in points.items():
            ats.append({**given, factor: level, time: value})
            labels.append(f"{level} @ {visit}")
            keys.append((factor, level, visit, value))
    table = fit.contrast(averaged_rows(fit, rows, ats, variables), labels)
    meta = pd.DataFrame(keys, columns=["factor", "level", "visit", "time"])
    return pd.concat([meta, table.drop(columns=["term", "statistic", "p_value"])], axis=1)[
        EMMEANS_COLUMNS
    ]


def group_differences(
    fit: LmmFit,
    rows: pd.DataFrame,
    variables: Sequence[str],
    factor: str,
    level: Any,
    reference: Any,
    ats: Sequence[Mapping[str, Any]],
) -> np.ndarray:
    """Contrast vectors: marginal mean of ``level`` minus that of ``reference`` at each point.

    Parameters
    ----------
    fit : LmmFit
        The fitted model.
    rows : pandas.DataFrame
        Rows used in the fit.
    variables : sequence of str
        Every variable of the fixed-effect formula.
    factor : str
        The group variable.
    level, reference : object
        The two levels of ``factor`` compared.
    ats : sequence of mapping
        Values of the other variables held fixed, one mapping per contrast.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(ats), p)``, one contrast vector per point (one design matrix for all).
    """
    pairs = [{**at, factor: side} for at in ats for side in (level, reference)]
    means = averaged_rows(fit, rows, pairs, variables)
    return means[0::2] - means[1::2]


def group_difference(
    fit: LmmFit,
    rows: pd.DataFrame,
    variables: Sequence[str],
    factor: str,
    level: Any,
    reference: Any,
    at: Mapping[str, Any],
) -> np.ndarray:
    """Contrast vector: marginal mean of ``level`` minus that of ``reference`` at ``at``."""
    return group_differences(fit, rows, variables, factor, level, reference, [at])[0]


def slope_difference(
    fit: LmmFit,
    rows: pd.DataFrame,
    variables: Sequence[str],
    factor: str,
    level: Any,
    reference: Any,
    time: str,
    at: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Contrast vector: change per time unit in ``level`` minus that in ``reference``."""
    at = dict(at or {})
    at_one, at_zero = group_differences(
        fit, rows, variables, factor, level, reference, [{**at, time: 1.0}, {**at, time: 0.0}]
    )
    return at_one - at_zero


INFERENCE_FIELDS = ("estimate", "std_err", "df", "ci_low", "ci_high", "p_value")
"""The inference columns of one contrast row (:meth:`LmmFit.contrast`)."""


def inference_fields(result: Mapping[str, Any]) -> dict[str, float]:
    """Return a contrast row's estimate, SE, df, 95 % CI and p-value as plain floats."""
    return {name: float(result[name]) for name in INFERENCE_FIELDS}


def contrast_rows(
    fit: LmmFit, vectors: Sequence[np.ndarray], meta: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """Tidy contrast table: one row per vector, labelled by ``meta``.

    Parameters
    ----------
    fit : LmmFit
        The fitted model.
    vectors : sequence of numpy.ndarray
        Contrast vectors ``L``.
    meta : sequence of mapping
        For each vector: ``question``, ``contrast`` (label) and ``visit`` (or None).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CONTRAST_COLUMNS`.
    """
    if not vectors:
        return pd.DataFrame(columns=CONTRAST_COLUMNS)
    labels = [m["contrast"] for m in meta]
    table = fit.contrast(np.vstack(vectors), labels)
    table = table.drop(columns=["term", "statistic"]).reset_index(drop=True)
    head = pd.DataFrame(
        {
            "question": [m["question"] for m in meta],
            "contrast": labels,
            "visit": pd.array([m.get("visit") for m in meta], dtype="Int64"),
        }
    )
    return pd.concat([head, table], axis=1)[CONTRAST_COLUMNS]


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (R's ``p.adjust(p, "holm")``).

    Parameters
    ----------
    p_values : sequence of float
        Raw p-values of one family; NaN entries are left out of the family and stay NaN.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def pooled_sd(values: pd.Series, groups: pd.Series | None = None) -> float:
    """Pooled within-group standard deviation (plain SD when ``groups`` is None).

    ``sqrt(sum_g (n_g - 1) s_g^2 / (N - G))`` over the groups with a known value.
    """
    frame = pd.DataFrame({"y": values.astype("float64")})
    frame["g"] = 0 if groups is None else groups.astype("object")
    frame = frame.dropna()
    grouped = frame.groupby("g", observed=True)["y"]
    ss = float(((frame["y"] - grouped.transform("mean")) ** 2).sum())
    dof = len(frame) - grouped.ngroups
    return float(np.sqrt(ss / dof)) if dof > 0 else float("nan")
