"""Input validation and design construction for :mod:`pipeline.lmm.fit`.

Degenerate data are rejected here, before any optimiser runs, with a :class:`ModelDataError`
whose message is one plain sentence: missing columns, a non-numeric response, a factor with an
empty level, a constant response, too few groups, a single visit per group, a rank-deficient
fixed-effect design, a random slope that does not vary within groups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy
import scipy.linalg

from pipeline.lmm import patsy_codes

__all__ = [
    "FORMULA_NAMESPACE",
    "MIN_GROUPS",
    "ModelDataError",
    "PreparedData",
    "first_line",
    "prepare_data",
    "quote_name",
]

MIN_GROUPS = 3
"""Fewest groups (patients) for which a random-effects variance is estimated."""

FORMULA_NAMESPACE: Mapping[str, Any] = {"np": np}
"""Names available inside formulas besides the data columns and patsy's built-ins."""

patsy_codes.install()  # every design of the engine reads C(categorical) by its codes

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class ModelDataError(ValueError):
    """The data cannot support the requested mixed model (raised before any fitting)."""


@dataclass(frozen=True)
class PreparedData:
    """Validated model data.

    Attributes
    ----------
    frame : pandas.DataFrame
        Input rows used in the fit (rows with a missing model variable removed).
    formula : str
        ``response ~ fixed``.
    x : pandas.DataFrame
        Fixed-effect design (float), columns named by patsy.
    y : numpy.ndarray
        Response.
    codes : numpy.ndarray
        Integer group code of each row.
    n_excluded : int
        Input rows dropped for missing values.
    design_info : patsy.DesignInfo
        patsy design information of ``x``.
    site_codes : numpy.ndarray or None
        Integer site code of each row when the groups are nested in sites.
    site_levels : tuple
        Site values in code order.
    within : (PreparedData, tuple of int) or None
        When the design is some columns of another's (:func:`design_within`): that design and
        the positions of these columns in it.
    """

    frame: pd.DataFrame
    formula: str
    x: pd.DataFrame
    y: np.ndarray
    codes: np.ndarray
    n_excluded: int
    design_info: Any
    site_codes: np.ndarray | None = None
    site_levels: tuple[Any, ...] = ()
    within: tuple[PreparedData, tuple[int, ...]] | None = None


def quote_name(name: str) -> str:
    """Quote a column name for a patsy formula when it is not a plain identifier.

    Parameters
    ----------
    name : str
        Column name.

    Returns
    -------
    str
        ``name`` itself, or ``Q('name')``.
    """
    return name if _IDENTIFIER.match(name) else f"Q({name!r})"


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message (patsy adds a drawing of the formula).

    Parameters
    ----------
    exc : BaseException
        Any exception.

    Returns
    -------
    str
        The first non-empty line, or the exception's class name.
    """
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _coded_text(frame: pd.DataFrame, formula: str) -> pd.DataFrame:
    """``frame`` with the text columns the formula names as categoricals of sorted levels.

    patsy reads a text column value by value in Python (its level sniffing and NA checks
    cost seconds at 100,000 rows) but a categorical by its codes. The levels are the sorted
    distinct values, which is the order patsy gives text, so the design is the same.
    """
    coded = {}
    for name in frame.columns:
        column = frame[name]
        if not (
            pd.api.types.is_string_dtype(column.dtype)
            and not isinstance(column.dtype, pd.CategoricalDtype)
        ):
            continue
        if not re.search(rf"(?<![\w.]){re.escape(str(name))}(?!\w)", formula):
            continue
        levels = column.dropna().unique()
        if not all(isinstance(v, str) for v in levels):
            continue
        coded[name] = pd.Categorical(column, categories=sorted(levels))
    return frame.assign(**coded) if coded else frame


def prepare_data(
    data: pd.DataFrame,
    response: str,
    fixed: str,
    group: str,
    random_slope: str | None,
    site: str | None = None,
) -> PreparedData:
    """Validate the inputs and build the fixed-effect design.

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per observation.
    response : str
        Numeric response column.
    fixed : str
        patsy right-hand side of the fixed effects.
    group : str
        Grouping column.
    random_slope : str or None
        Numeric column with a random slope, or None.
    site : str or None
        Column of the sites in which the groups are nested (site random intercept), or None.

    Returns
    -------
    PreparedData
        The rows used, the design and the group codes.

    Raises
    ------
    ModelDataError
        When the data cannot support the model (see the module docstring).
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelDataError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    needed = [response, group] + ([random_slope] if random_slope else []) + ([site] if site else [])
    absent = [c for c in needed if c not in data.columns]
    if absent:
        raise ModelDataError(f"Column(s) {absent} are not in the data.")
    if not pd.api.types.is_numeric_dtype(data[response]) or pd.api.types.is_bool_dtype(
        data[response]
    ):
        raise ModelDataError(f"The response {response!r} must be numeric.")
    if random_slope and not pd.api.types.is_numeric_dtype(data[random_slope]):
        raise ModelDataError(f"The random slope {random_slope!r} must be a numeric column.")

    formula = f"{quote_name(response)} ~ {fixed}"
    data = data.reset_index(drop=True)  # patsy keeps the index; labels must be unique
    frame = data.loc[data[needed].notna().all(axis=1)]
    try:
        y_df, x_df = patsy.dmatrices(
            formula,
            _coded_text(frame, formula),
            NA_action="drop",
            return_type="dataframe",
            eval_env=patsy.EvalEnvironment([dict(FORMULA_NAMESPACE)]),
        )
    except patsy.PatsyError as exc:
        raise ModelDataError(
            f"The fixed-effect formula {fixed!r} cannot be built from the data: {first_line(exc)}."
        ) from exc
    except Exception as exc:  # evaluation errors inside the formula (NameError, TypeError, ...)
        raise ModelDataError(
            f"The fixed-effect formula {fixed!r} cannot be evaluated on the data: "
            f"{type(exc).__name__}: {first_line(exc)}."
        ) from exc
    frame = frame.loc[x_df.index]
    n_excluded = len(data) - len(frame)
    if len(frame) == 0:
        raise ModelDataError("No rows are left after dropping rows with missing model variables.")
    if y_df.shape[1] != 1:
        raise ModelDataError(f"The response {response!r} must be a single numeric column.")
    y = y_df.to_numpy(dtype=float)[:, 0]
    x = x_df.astype(float)

    design_info = x_df.design_info
    for factor, info in design_info.factor_infos.items():
        if info.type == "categorical" and len(info.categories) < 2:
            raise ModelDataError(
                f"The factor {factor.name()} has only the level(s) {list(info.categories)} in "
                "the data: every other level is empty, so its effect cannot be estimated."
            )
    if not np.all(np.isfinite(y)):
        raise ModelDataError(f"The response {response!r} has infinite values.")
    if not np.all(np.isfinite(x.to_numpy())):
        raise ModelDataError("The fixed-effect design has infinite values.")
    if np.ptp(y) <= 1e-12 * max(1.0, float(np.max(np.abs(y)))):
        raise ModelDataError(f"The response {response!r} has zero variance (it is constant).")

    codes, uniques = pd.factorize(frame[group], sort=True)
    n_obs, n_groups, p = len(y), len(uniques), x.shape[1]
    if n_groups < MIN_GROUPS:
        raise ModelDataError(
            f"Only {n_groups} level(s) of {group!r}: at least {MIN_GROUPS} are needed to "
            "estimate a between-group variance."
        )
    if n_obs <= n_groups:
        raise ModelDataError(
            f"Every level of {group!r} has a single observation (single visit), so the "
            "between-group variance cannot be separated from the residual variance."
        )
    if p >= n_obs:
        raise ModelDataError(f"{p} fixed effects but only {n_obs} observations.")
    xa = x.to_numpy()
    _, r_mat, piv = scipy.linalg.qr(xa, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r_mat))
    rank = int(np.sum(diag > diag[0] * max(xa.shape) * np.finfo(float).eps * 10))
    if rank < p:
        aliased = [x.columns[i] for i in piv[rank:]]
        raise ModelDataError(
            f"The fixed-effect design is rank deficient ({rank} of {p} columns estimable): "
            f"{aliased} is empty or collinear with other columns (e.g. a factor level with no "
            "observations, or a covariate that is constant or duplicated)."
        )
    if random_slope:
        if n_obs <= 2 * n_groups:
            raise ModelDataError(
                f"{n_obs} observations for {2 * n_groups} random effects: too few repeated "
                f"observations per {group!r} for a random slope on {random_slope!r}."
            )
        slope_values = frame[random_slope].to_numpy(dtype=float)
        group_means = frame.groupby(codes)[random_slope].transform("mean").to_numpy(dtype=float)
        if float(np.max(np.abs(slope_values - group_means))) == 0.0:
            raise ModelDataError(
                f"{random_slope!r} does not vary within any level of {group!r} (a single "
                "visit per group?), so a random slope cannot be estimated."
            )
    site_codes, site_levels = None, ()
    if site:
        per_group = frame.groupby(codes)[site].nunique()
        if per_group.max() > 1:
            raise ModelDataError(
                f"{int((per_group > 1).sum())} level(s) of {group!r} appear in more than one "
                f"{site!r}: a random {site} intercept needs each {group} within one {site}."
            )
        site_codes, uniques_site = pd.factorize(frame[site], sort=True)
        if len(uniques_site) < 2:
            raise ModelDataError(f"A random {site} intercept needs at least 2 levels of {site!r}.")
        site_levels = tuple(uniques_site)
    return PreparedData(
        frame,
        formula,
        x,
        y,
        np.asarray(codes),
        n_excluded,
        design_info,
        None if site_codes is None else np.asarray(site_codes),
        site_levels,
    )


def columns_within(
    formula: str,
    sample: pd.DataFrame,
    design_info: Any,
    columns: Sequence[str],
    namespace: Mapping[str, Any],
) -> tuple[Any, tuple[int, ...]] | None:
    """Return a reduced formula's design as columns of a full design, when it is.

    patsy is run on ``sample`` (a few rows of the full design's data) only to learn the
    reduced formula's terms and column names. The reduced design is the full one's columns
    when its terms are some of the full design's and those columns carry the names they have
    there, that is, the coding a design built from scratch would have.

    Parameters
    ----------
    formula : str
        ``response ~ reduced right-hand side``.
    sample : pandas.DataFrame
        A few rows of the data the full design was built from (coded as it was).
    design_info : patsy.DesignInfo
        The full design's.
    columns : sequence of str
        The full design's column names, in order.
    namespace : mapping
        The names the formula is evaluated with (as for the full design).

    Returns
    -------
    (patsy.DesignInfo, tuple of int) or None
        The reduced design's information and its columns' positions in the full design, or
        None when it is not a subset of the full design's columns.
    """
    try:
        _, scratch = patsy.dmatrices(
            formula,
            sample,
            NA_action="raise",
            return_type="dataframe",
            eval_env=patsy.EvalEnvironment([dict(namespace)]),
        )
    except Exception:  # building the design from scratch reports the formula's problem
        return None
    terms = scratch.design_info.terms
    if not all(term in design_info.terms for term in terms):
        return None
    info = design_info.subset(terms)
    names = list(info.column_names)
    position = {name: k for k, name in enumerate(columns)}
    if names != list(scratch.design_info.column_names) or not all(n in position for n in names):
        return None
    return info, tuple(position[name] for name in names)


def design_within(full: PreparedData, fixed: str) -> PreparedData | None:
    """Return the design of ``fixed`` on ``full``'s rows as some of its columns, when it is.

    A likelihood-ratio test's reduced model drops terms of the full model; its design is then
    the full design's columns of the remaining terms, with the same rows, checks and group
    codes. patsy is run only on a few rows, to learn the reduced formula's terms and column
    names; the columns are taken from ``full`` only when those names are the ones of the same
    terms in ``full`` (so the coding is the one a design built from scratch would have) and
    ``full`` dropped no rows (so the reduced model's rows are the same).

    Parameters
    ----------
    full : PreparedData
        A design from :func:`prepare_data`.
    fixed : str
        patsy right-hand side of the reduced model.

    Returns
    -------
    PreparedData or None
        The reduced design (``within`` names ``full`` and the columns), or None when it is not
        a column subset of ``full`` (then :func:`prepare_data` builds it).
    """
    if full.n_excluded:
        return None
    formula = f"{full.formula.split('~', 1)[0].strip()} ~ {fixed}"
    sample = _coded_text(full.frame, formula).iloc[:50]
    found = columns_within(formula, sample, full.design_info, full.x.columns, FORMULA_NAMESPACE)
    if found is None:
        return None
    info, columns = found
    return PreparedData(
        full.frame,
        formula,
        full.x.iloc[:, list(columns)],
        full.y,
        full.codes,
        0,
        info,
        full.site_codes,
        full.site_levels,
        within=(full, columns),
    )
