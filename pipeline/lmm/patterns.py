"""MMRM data: design, visits, and the per-pattern sufficient statistics of the likelihood.

A mixed model for repeated measures has no random effects: patient ``i``'s responses at the
visits ``O_i`` they attended are normal with covariance ``Sigma[O_i, O_i]``. The likelihood is
a sum over patients, and patients who attended the same visits (the same *pattern*) share
``Sigma[O, O]``. With ``W = Sigma[O, O]^{-1}`` the pattern's contributions are

    X'V^{-1}X = sum_ab W_ab XX[a, :, b, :],   XX[a, :, b, :] = sum_i x_ia x_ib'
    X'V^{-1}y = sum_ab W_ab XY[a, :, b],      XY[a, :, b]    = sum_i x_ia y_ib
    y'V^{-1}y = sum_ab W_ab YY[a, b],         YY[a, b]       = sum_i y_ia y_ib

so :func:`prepare_mmrm` computes ``XX``, ``XY`` and ``YY`` once per pattern (one pass over the
rows), and every later evaluation of the likelihood costs ``O(patterns x visits^2 x p^2)``,
independent of the number of patients.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy
import scipy.linalg

from pipeline.lmm.data import (
    FORMULA_NAMESPACE,
    ModelDataError,
    columns_within,
    first_line,
    quote_name,
)

__all__ = ["MmrmData", "Pattern", "prepare_mmrm"]


@dataclass(frozen=True, eq=False)
class Pattern:
    """Patients of one covariance group who attended the same visits.

    Attributes
    ----------
    group : int
        Covariance group (index into ``MmrmData.group_levels``; 0 when Sigma is shared).
    visits : numpy.ndarray
        Visit indices attended, increasing.
    rows : numpy.ndarray
        ``(n, k)`` row numbers (into ``MmrmData.x`` / ``y``) of each patient's visits.
    xx, xy, yy : numpy.ndarray
        Cross-products ``(k, p, k, p)``, ``(k, p, k)`` and ``(k, k)`` (module docstring).
    """

    group: int
    visits: np.ndarray
    rows: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray

    @property
    def n(self) -> int:
        """Number of patients with this pattern."""
        return int(self.rows.shape[0])


@dataclass(frozen=True, eq=False)
class MmrmData:
    """Validated MMRM data (:func:`prepare_mmrm`).

    Attributes
    ----------
    frame : pandas.DataFrame
        Rows used (rows with a missing model variable removed).
    formula : str
        ``response ~ fixed``.
    x : numpy.ndarray
        Fixed-effect design ``(N, p)``.
    columns : tuple of str
        Design column names (patsy's).
    y : numpy.ndarray
        Response.
    design_info : patsy.DesignInfo
        patsy design information.
    visit_levels : tuple
        Visit values in covariance order.
    visit_codes, subject_codes : numpy.ndarray
        Visit index and patient index of each row.
    group_levels : tuple
        Covariance groups (``(None,)`` for one shared Sigma).
    patterns : tuple of Pattern
        One entry per (covariance group, set of attended visits).
    n_subjects : int
        Number of patients.
    n_excluded : int
        Input rows dropped for missing values.
    between : numpy.ndarray
        Boolean per design column: constant within every patient (between-patient effect).
    within : tuple of (MmrmData, numpy.ndarray), optional
        For a reduced model's data taken from a full model's (:func:`mmrm_within`): the full
        data and the positions of these columns in its design.
    """

    frame: pd.DataFrame
    formula: str
    x: np.ndarray
    columns: tuple[str, ...]
    y: np.ndarray
    design_info: Any
    visit_levels: tuple[Any, ...]
    visit_codes: np.ndarray
    subject_codes: np.ndarray
    group_levels: tuple[Any, ...]
    patterns: tuple[Pattern, ...]
    n_subjects: int
    n_excluded: int
    between: np.ndarray
    within: tuple[MmrmData, np.ndarray] | None = None

    @property
    def n_obs(self) -> int:
        """Number of observations used."""
        return int(self.y.size)

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return int(self.x.shape[1])

    @property
    def n_visits(self) -> int:
        """Number of visits (size of Sigma)."""
        return len(self.visit_levels)


def _levels(values: pd.Series, given: Sequence[Any] | None) -> list[Any]:
    if given is not None:
        return list(given)
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    return sorted(values.dropna().unique())


def fast_c(data: Any, contrast: Any = None, levels: Any = None) -> Any:
    """Return what patsy's ``C()`` would, keeping a pandas categorical on the fast path.

    patsy unboxes ``C(x, ...)`` before checking for a pandas categorical, so even a
    categorical goes through its value-by-value Python path. For a categorical with no
    ``levels`` and no contrast or a treatment contrast whose reference is a level, the same
    coding is had by returning the categorical itself, the reference moved first (patsy's
    treatment coding drops the first level; the other columns keep their order and their
    ``[T.level]`` names, which come from the formula text). Anything else goes to patsy's ``C``.
    """
    if levels is None and isinstance(getattr(data, "dtype", None), pd.CategoricalDtype):
        if contrast is None or contrast is patsy.Treatment:
            return data
        if isinstance(contrast, patsy.Treatment) and hasattr(data, "cat"):
            cats = list(data.cat.categories)
            ref = contrast.reference
            if ref is None:
                return data
            if ref in cats:
                return data.cat.reorder_categories([ref, *(c for c in cats if c != ref)])
    return patsy.builtins.C(data, contrast, levels)


def _categorical_for_patsy(frame: pd.DataFrame, fixed: str) -> pd.DataFrame:
    """Code text columns, and columns wrapped in ``C(...)``, as pandas categoricals.

    patsy reads a categorical's codes at C speed but tests text and numbers inside ``C()``
    value by value in Python (minutes at a million rows). Levels keep patsy's order: the
    declared order of a categorical, else sorted.
    """
    try:
        desc = patsy.ModelDesc.from_formula(fixed)
    except patsy.PatsyError:
        return frame  # patsy reports the error itself
    wrapped: set[str] = set()
    for term in desc.rhs_termlist:
        for factor in term.factors:
            try:
                tree = ast.parse(factor.code, mode="eval")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "C"
                    and node.args
                ):
                    arg = node.args[0]
                    if isinstance(arg, ast.Name):
                        wrapped.add(arg.id)
                    elif (
                        isinstance(arg, ast.Call)
                        and isinstance(arg.func, ast.Name)
                        and arg.func.id == "Q"
                        and arg.args
                        and isinstance(arg.args[0], ast.Constant)
                    ):
                        wrapped.add(str(arg.args[0].value))
                elif isinstance(node, ast.Name) and node.id in frame.columns:
                    col = frame[node.id]
                    if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
                        wrapped.add(node.id)
    changes = {}
    for name in wrapped:
        if name in frame.columns and not isinstance(frame[name].dtype, pd.CategoricalDtype):
            col = frame[name]
            if pd.api.types.is_bool_dtype(col.dtype):
                continue
            changes[name] = pd.Categorical(col, categories=sorted(col.dropna().unique()))
    return frame.assign(**changes) if changes else frame


def mmrm_within(full: MmrmData, fixed: str) -> MmrmData | None:
    """Return the MMRM data of ``fixed`` on ``full``'s rows as some of its columns, when it is.

    The MMRM counterpart of :func:`pipeline.lmm.data.design_within`: a likelihood-ratio test's
    reduced model drops terms of the full model, so its design is the full design's columns of
    the remaining terms and each visit pattern's cross-products are the same rows and columns of
    the full ones. patsy is run on a few rows only, to learn the reduced formula's terms and
    column names; the columns are taken from ``full`` only when those names are the ones of the
    same terms in ``full`` (the coding a design built from scratch would have) and ``full``
    dropped no rows (so the reduced model's rows are the same). A subset of full-rank columns
    has full rank, so no check of :func:`prepare_mmrm` needs repeating.

    Parameters
    ----------
    full : MmrmData
        Data from :func:`prepare_mmrm`.
    fixed : str
        patsy right-hand side of the reduced model.

    Returns
    -------
    MmrmData or None
        The reduced model's data, or None when its design is not a column subset of ``full``
        (then :func:`prepare_mmrm` builds it).
    """
    if full.n_excluded:
        return None
    formula = f"{full.formula.split('~', 1)[0].strip()} ~ {fixed}"
    namespace = {**FORMULA_NAMESPACE, "C": fast_c}
    found = columns_within(formula, full.frame.iloc[:50], full.design_info, full.columns, namespace)
    if found is None:
        return None
    info, positions = found
    names = list(info.column_names)
    cols = np.array(positions, dtype=np.int64)
    patterns = tuple(
        Pattern(
            pat.group,
            pat.visits,
            pat.rows,
            np.ascontiguousarray(pat.xx[:, cols][:, :, :, cols]),
            np.ascontiguousarray(pat.xy[:, cols]),
            pat.yy,
        )
        for pat in full.patterns
    )
    return dataclasses.replace(
        full,
        formula=formula,
        x=np.ascontiguousarray(full.x[:, cols]),
        columns=tuple(names),
        design_info=info,
        patterns=patterns,
        between=full.between[cols],
        within=(full, cols),
    )


def pivoted_rank(x: np.ndarray) -> tuple[int, np.ndarray]:
    """Rank of ``x`` and its columns in pivot order (pivoted QR of the scaled Gram matrix).

    The first ``rank`` pivots are a linearly independent subset of the columns; a column is
    dependent when its pivot is below 1e-10 of the first.
    """
    scale = np.sqrt(np.maximum(np.einsum("ij,ij->j", x, x), 1e-300))
    gram = (x.T @ x) / np.outer(scale, scale)
    _, r_mat, piv = scipy.linalg.qr(gram, pivoting=True)
    diag = np.abs(np.diag(r_mat))
    rank = int(np.sum(diag > diag[0] * 1e-10)) if diag.size and diag[0] > 0 else 0
    return rank, piv


def prepare_mmrm(
    data: pd.DataFrame,
    response: str,
    fixed: str,
    visit: str,
    subject: str,
    covariance_group: str | None = None,
    visit_levels: Sequence[Any] | None = None,
) -> MmrmData:
    """Validate the inputs, build the design and the per-pattern cross-products.

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per patient and visit.
    response : str
        Numeric response column.
    fixed : str
        patsy right-hand side of the fixed effects (e.g. ``"base + C(visit) * C(arm)"``).
    visit : str
        Column of the visit (indexes Sigma; need not be numeric).
    subject : str
        Column of the patient identifier.
    covariance_group : str, optional
        Patient-level column: a separate Sigma for each of its values.
    visit_levels : sequence, optional
        Visit values in order (default: the categorical order, else sorted).

    Returns
    -------
    MmrmData

    Raises
    ------
    ModelDataError
        Missing columns, non-numeric response, a visit twice for one patient, a visit outside
        ``visit_levels``, a group that changes within a patient, a rank-deficient design,
        too few patients.
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelDataError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    needed = [response, visit, subject] + ([covariance_group] if covariance_group else [])
    absent = [c for c in needed if c not in data.columns]
    if absent:
        raise ModelDataError(f"Column(s) {absent} are not in the data.")
    if not pd.api.types.is_numeric_dtype(data[response]) or pd.api.types.is_bool_dtype(
        data[response]
    ):
        raise ModelDataError(f"The response {response!r} must be numeric.")
    data = data.reset_index(drop=True)
    frame = data.loc[data[needed].notna().all(axis=1)]
    frame = _categorical_for_patsy(frame, fixed)
    formula = f"{quote_name(response)} ~ {fixed}"
    try:
        y_df, x_df = patsy.dmatrices(
            formula,
            frame,
            NA_action="drop",
            return_type="dataframe",
            eval_env=patsy.EvalEnvironment([{**FORMULA_NAMESPACE, "C": fast_c}]),
        )
    except patsy.PatsyError as exc:
        raise ModelDataError(
            f"The fixed-effect formula {fixed!r} cannot be built from the data: {first_line(exc)}."
        ) from exc
    except Exception as exc:  # evaluation errors inside the formula
        raise ModelDataError(
            f"The fixed-effect formula {fixed!r} cannot be evaluated on the data: "
            f"{type(exc).__name__}: {first_line(exc)}."
        ) from exc
    frame = frame.loc[x_df.index]
    if len(frame) == 0:
        raise ModelDataError("No rows are left after dropping rows with missing model variables.")
    for factor, info in x_df.design_info.factor_infos.items():
        if info.type == "categorical" and len(info.categories) < 2:
            raise ModelDataError(
                f"The factor {factor.name()} has only the level(s) {list(info.categories)} in "
                "the data: every other level is empty, so its effect cannot be estimated."
            )
    y = y_df.to_numpy(dtype=float)[:, 0]
    x = x_df.to_numpy(dtype=float)
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(x))):
        raise ModelDataError("The response or the fixed-effect design has infinite values.")

    levels = _levels(frame[visit], visit_levels)
    position = {v: k for k, v in enumerate(levels)}
    visit_codes = frame[visit].map(position)
    if visit_codes.isna().any():
        bad = frame.loc[visit_codes.isna(), visit].iloc[0]
        raise ModelDataError(f"Visit {bad!r} of column {visit!r} is not among {levels}.")
    visit_codes = visit_codes.to_numpy(dtype=np.int64)
    subject_codes, subjects = pd.factorize(frame[subject], sort=True)
    key = subject_codes.astype(np.int64) * len(levels) + visit_codes
    sorted_key = np.sort(key)  # (np.unique hashes, ~50x slower than a sort here)
    if np.any(sorted_key[1:] == sorted_key[:-1]):
        dup = frame.loc[pd.Series(key).duplicated().to_numpy()].iloc[0]
        raise ModelDataError(
            f"Patient {dup[subject]!r} has visit {dup[visit]!r} more than once: an MMRM needs "
            "one row per patient and visit."
        )
    n_subjects = len(subjects)
    if covariance_group:
        group_codes_rows, group_levels = pd.factorize(frame[covariance_group], sort=True)
        per_subject = pd.Series(group_codes_rows).groupby(subject_codes).nunique()
        if per_subject.max() > 1:
            raise ModelDataError(
                f"{covariance_group!r} changes within a patient: a separate covariance per "
                "group needs a patient-level group."
            )
        subject_group = np.zeros(n_subjects, dtype=np.int64)
        subject_group[subject_codes] = group_codes_rows
        group_levels = tuple(group_levels)
    else:
        subject_group = np.zeros(n_subjects, dtype=np.int64)
        group_levels = (None,)

    p = x.shape[1]
    rank, piv = pivoted_rank(x)
    if rank < p:
        aliased = [x_df.columns[i] for i in piv[rank:]]
        raise ModelDataError(
            f"The fixed-effect design is rank deficient ({rank} of {p} columns estimable): "
            f"{aliased} is empty or collinear with other columns."
        )
    if n_subjects <= p:
        raise ModelDataError(f"{p} fixed effects but only {n_subjects} patients.")

    # patterns: bit mask of attended visits per patient; rows sorted by (group, mask, patient,
    # visit), so that each pattern is one contiguous run of whole patients
    masks = np.zeros(n_subjects, dtype=np.int64)
    np.bitwise_or.at(masks, subject_codes, np.left_shift(1, visit_codes))
    pattern_key = subject_group * (1 << len(levels)) + masks
    row_key = pattern_key[subject_codes]
    order = np.lexsort((visit_codes, subject_codes, row_key))
    sorted_rows = row_key[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    keys = sorted_rows[starts]
    bounds = [*starts.tolist(), order.size]
    patterns = []
    # between-patient columns: constant within every patient, i.e. over each pattern's visits
    spread = np.zeros(p)
    for pk, a, b in zip(keys, bounds[:-1], bounds[1:], strict=True):
        mask = int(pk % (1 << len(levels)))
        visits = np.array([k for k in range(len(levels)) if mask >> k & 1], dtype=np.int64)
        k = visits.size
        rows = order[a:b].reshape(-1, k)
        n_p = rows.shape[0]
        xr = x[rows]  # (n_p, k, p)
        if k > 1:
            spread = np.maximum(spread, np.max(xr.max(axis=1) - xr.min(axis=1), axis=0))
        xp = xr.reshape(n_p, k * p)
        yp = y[rows]
        xx = (xp.T @ xp).reshape(k, p, k, p)
        xy = (xp.T @ yp).reshape(k, p, k)
        yy = yp.T @ yp
        patterns.append(Pattern(int(pk >> len(levels)), visits, rows, xx, xy, yy))

    tol = 1e-10 * np.maximum(1.0, np.max(np.abs(x), axis=0))
    within = spread > tol
    return MmrmData(
        frame=frame,
        formula=formula,
        x=x,
        columns=tuple(x_df.columns),
        y=y,
        design_info=x_df.design_info,
        visit_levels=tuple(levels),
        visit_codes=visit_codes,
        subject_codes=np.asarray(subject_codes, dtype=np.int64),
        group_levels=group_levels,
        patterns=tuple(patterns),
        n_subjects=n_subjects,
        n_excluded=len(data) - len(frame),
        between=~within,
    )
