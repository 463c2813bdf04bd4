"""Mixed model for repeated measures (MMRM): :func:`fit_mmrm` and :class:`MmrmFit`.

The model (SAP section 4, item 6) has fixed effects only and a residual covariance ``Sigma``
across visits::

    y_i ~ N(X_i beta, Sigma[O_i, O_i])     (O_i: the visits patient i attended)

fitted by REML (default) or ML under missing at random, as ``nlme::gls`` (``corSymm`` +
``varIdent``), ``glmmTMB`` (``us()``, ``toep()``, ...), R's ``mmrm`` and SAS PROC MIXED
(``REPEATED / TYPE=UN``) fit it. The covariance structures are in
:mod:`pipeline.lmm.covariance`, the per-pattern likelihood in :mod:`pipeline.lmm.likelihood`
(cost grows with the number of visit patterns, not patients) and the df methods in
:mod:`pipeline.lmm.kenward_roger`.

Fitting
-------
L-BFGS-B on the unconstrained parameters with the criterion's exact gradient from a start
built from the OLS residuals' pairwise covariance, then Newton steps with the Hessian (central
differences of the exact gradient, Richardson-extrapolated) until the Newton decrement is
below 1e-8. A structure *converges* when the final Hessian is positive definite and the
decrement is small; otherwise the next structure of the fallback order is tried
(:data:`~pipeline.lmm.covariance.DEFAULT_FALLBACK`: unstructured, heterogeneous Toeplitz,
heterogeneous AR(1), heterogeneous CS, CS), and every attempt is a row of
``MmrmFit.structure_trials``.

Inference
---------
``vcov`` is ``(X'V^{-1}X)^{-1}`` at the estimate (model-based), Kenward-Roger's ``Phi_A`` with
``df_method="kenward-roger"``, or the sandwich ``Phi (sum_i X_i'W_i r_i r_i'W_i X_i) Phi``
with ``robust=True`` (``mmrm``'s "Empirical", CR0). Each contrast's df follow ``df_method``.

Information criteria are SAS PROC MIXED's: ``k`` covariance parameters (plus ``p`` for ML),
``AIC = -2l + 2k``, ``AICc = -2l + 2k n*/(n* - k - 1)`` with ``n* = N - p`` (REML) or ``N``
(ML), ``BIC = -2l + k log(patients)``.
"""

from __future__ import annotations

import ast
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import patsy
import scipy.linalg
from scipy import optimize, stats

from pipeline.lmm.blas import single_threaded
from pipeline.lmm.covariance import DEFAULT_FALLBACK, STRUCTURES, get_structure
from pipeline.lmm.data import ModelDataError
from pipeline.lmm.kenward_roger import (
    KrPieces,
    between_within_df,
    inference_table,
    kr_ftest,
    kr_pieces,
    satterthwaite_df,
)
from pipeline.lmm.likelihood import Likelihood
from pipeline.lmm.optim import ModelFitError
from pipeline.lmm.patterns import MmrmData, mmrm_within, prepare_mmrm
from pipeline.lmm.reuse import built, shared

__all__ = ["DF_METHODS", "MmrmFit", "fit_mmrm"]

DF_METHODS = (
    "satterthwaite",
    "kenward-roger",
    "kenward-roger-linear",
    "residual",
    "between-within",
    "z",
)
"""Degrees-of-freedom methods of :func:`fit_mmrm`."""

DfMethod = Literal[
    "satterthwaite", "kenward-roger", "kenward-roger-linear", "residual", "between-within", "z"
]

DECREMENT_TOL = 1e-8
"""Newton decrement ``g' H^{-1} g`` (criterion units) below which a fit has converged."""

TRIAL_COLUMNS = [
    "structure",
    "converged",
    "criterion",
    "n_parameters",
    "aic",
    "aicc",
    "bic",
    "message",
]


@dataclass(frozen=True, eq=False)
class MmrmFit:
    """Result of :func:`fit_mmrm`.

    Attributes
    ----------
    fixed_effects : pandas.DataFrame
        ``term, estimate, std_err, df, statistic, p_value, ci_low, ci_high``.
    vcov : pandas.DataFrame
        Covariance of the fixed effects used for inference (model-based, Kenward-Roger
        adjusted, or sandwich).
    vcov_model : pandas.DataFrame
        Model-based ``(X'V^{-1}X)^{-1}``.
    covariance : dict
        Estimated ``Sigma`` (visits x visits DataFrame) per covariance group (key None when
        shared).
    covariance_parameters : pandas.DataFrame
        ``group, parameter, estimate``: the natural parameters (SAS names).
    structure : str
        Structure used (after any fallback).
    structure_trials : pandas.DataFrame
        Every structure tried, in order: converged, criterion, AIC, AICc, BIC, message.
    criterion, loglik, aic, aicc, bic : float
        ``-2 l`` (REML or ML), the log-likelihood and information criteria.
    reml : bool
        REML or ML.
    df_method : str
        One of :data:`DF_METHODS`.
    robust : bool
        Sandwich covariance.
    n_obs, n_subjects, n_patterns, n_excluded : int
        Observations, patients, visit patterns (per covariance group), rows dropped.
    visit_levels : tuple
        Visits in covariance order.
    design_columns : tuple of str
        Fixed-effect names (patsy's).
    formula, visit, subject : str
        The model.
    covariance_group : str or None
        Column with a separate Sigma per value.
    theta : numpy.ndarray
        Optimiser-scale covariance parameters.
    beta : numpy.ndarray
        Fixed-effect estimates (generalised least squares at the estimate).
    response, fixed : str
        The response column and the fixed-effect right-hand side as given.
    converged : bool
        Whether the structure used converged.
    warnings : tuple of str
        Notes raised while fitting (fallbacks, excluded rows).
    fit_seconds : float
        Wall time.
    """

    fixed_effects: pd.DataFrame
    vcov: pd.DataFrame
    vcov_model: pd.DataFrame
    covariance: dict[Any, pd.DataFrame]
    covariance_parameters: pd.DataFrame
    structure: str
    structure_trials: pd.DataFrame
    criterion: float
    loglik: float
    aic: float
    aicc: float
    bic: float
    reml: bool
    df_method: str
    robust: bool
    n_obs: int
    n_subjects: int
    n_patterns: int
    n_excluded: int
    visit_levels: tuple[Any, ...]
    design_columns: tuple[str, ...]
    formula: str
    visit: str
    subject: str
    covariance_group: str | None
    theta: np.ndarray
    beta: np.ndarray
    converged: bool
    warnings: tuple[str, ...]
    fit_seconds: float
    _design_info: Any = field(repr=False)
    _rows: pd.DataFrame | None = field(repr=False)
    variables: tuple[str, ...] = field(repr=False)
    _jacobian: np.ndarray | None = field(repr=False)
    _varpar_vcov: np.ndarray | None = field(repr=False)
    _kr: KrPieces | None = field(repr=False)
    _between: np.ndarray = field(repr=False)
    _likelihood: Likelihood | None = field(default=None, repr=False)
    _hessian: np.ndarray | None = field(default=None, repr=False)
    response: str = ""
    fixed: str = ""
    _source: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def design_info(self) -> Any:
        """The fixed effects' design information (patsy) (None without the data)."""
        self._load()
        return self._design_info

    @property
    def rows(self) -> pd.DataFrame | None:
        """The rows the model was fitted to, as prepared (None without the data)."""
        self._load()
        return self._rows

    @property
    def likelihood(self) -> Likelihood | None:
        """The model's criterion (None without the data)."""
        self._load()
        return self._likelihood

    def _load(self) -> None:
        """Rebuild what :meth:`with_rows_when_needed` deferred, on first use."""
        if self._source is None:
            return
        rebuilt = self.with_data(self._source)
        for name in ("_design_info", "_rows", "_likelihood"):
            object.__setattr__(self, name, getattr(rebuilt, name))
        object.__setattr__(self, "_source", None)

    def without_data(self) -> MmrmFit:
        """Return the fit without its rows, design information and likelihood.

        What is left is numbers and text (it pickles, and a cache can store it without the
        patients' rows); :meth:`with_data` gives the rest back from the same rows.
        """
        return dataclasses.replace(
            self, _design_info=None, _rows=None, _likelihood=None, _source=None
        )

    def with_rows_when_needed(self, data: pd.DataFrame) -> MmrmFit:
        """Return the fit that rebuilds its rows, design and likelihood from ``data`` when used.

        :meth:`with_data` at the first use of :attr:`rows`, :attr:`design_info` or
        :attr:`likelihood` (or a method needing them), not before: a run whose report needs
        only the fit's numbers never prepares the rows again.
        """
        if self._rows is not None:
            return self
        return dataclasses.replace(self, _source=data)

    def with_data(self, data: pd.DataFrame) -> MmrmFit:
        """Rebuild the rows, design information and likelihood dropped by :meth:`without_data`.

        Parameters
        ----------
        data : pandas.DataFrame
            The rows the model was fitted to.

        Returns
        -------
        MmrmFit

        Raises
        ------
        ModelDataError
            When the rows do not give the same design columns.
        """
        prep = prepare_mmrm(
            data,
            self.response,
            self.fixed,
            self.visit,
            self.subject,
            self.covariance_group,
            self.visit_levels,
        )
        if tuple(prep.columns) != self.design_columns:
            raise ModelDataError(f"these rows do not give the design of {self.formula!r}")
        structures = [get_structure(self.structure, prep.n_visits) for _ in prep.group_levels]
        return dataclasses.replace(
            self,
            _design_info=prep.design_info,
            _rows=prep.frame,
            _likelihood=Likelihood(prep, structures, self.reml),
            _source=None,
        )

    @property
    def params(self) -> np.ndarray:
        """Fixed-effect estimates in design-column order."""
        return self.beta

    def df(self, contrasts: np.ndarray) -> np.ndarray:
        """Degrees of freedom of each contrast row by ``df_method``."""
        lmat = np.atleast_2d(np.asarray(contrasts, dtype=float))
        method = self.df_method
        if method == "z":
            return np.full(lmat.shape[0], np.inf)
        if method == "residual":
            return np.full(lmat.shape[0], float(self.n_obs - len(self.design_columns)))
        if method == "between-within":
            return between_within_df(lmat, self._between, self.n_obs, self.n_subjects)
        if method == "satterthwaite":
            return satterthwaite_df(
                lmat, self.vcov_model.to_numpy(), self._jacobian, self._varpar_vcov
            )
        return np.array([kr_ftest(row, self._kr)[0] for row in lmat])

    def with_df_method(self, df_method: DfMethod, robust: bool | None = None) -> MmrmFit:
        """Return the same fit with another df method (or sandwich choice), not refitted.

        Parameters
        ----------
        df_method : str
            One of :data:`DF_METHODS` (the Kenward-Roger methods need a REML fit).
        robust : bool, optional
            Sandwich covariance (default: as this fit).

        Returns
        -------
        MmrmFit
        """
        robust = self.robust if robust is None else robust
        _check_options(df_method, self.reml, robust)
        used, jac, varpar, kr = _inference(
            self.likelihood, self.theta, self._hessian, df_method, robust
        )
        cols = list(self.design_columns)
        fit = dataclasses.replace(
            self,
            df_method=df_method,
            robust=robust,
            vcov=pd.DataFrame(used, index=cols, columns=cols),
            _jacobian=jac,
            _varpar_vcov=varpar,
            _kr=kr,
        )
        object.__setattr__(fit, "fixed_effects", fit.contrast(np.eye(len(cols)), cols))
        return fit

    def contrast(
        self, contrasts: Sequence[float] | np.ndarray, label: str | Sequence[str] = "contrast"
    ) -> pd.DataFrame:
        """Estimate, SE, df, t, p and 95 % CI of each linear combination ``L beta``.

        Parameters
        ----------
        contrasts : array_like
            Length-``p`` vector or ``(k, p)`` matrix (``design_columns`` order).
        label : str or sequence of str
            Name(s) for the ``term`` column.

        Returns
        -------
        pandas.DataFrame
            ``term, estimate, std_err, df, statistic, p_value, ci_low, ci_high``.
        """
        lmat = np.atleast_2d(np.asarray(contrasts, dtype=float))
        p = len(self.design_columns)
        if lmat.shape[1] != p:
            raise ValueError(f"a contrast needs {p} coefficients, got shape {lmat.shape}")
        labels = [label] if isinstance(label, str) else list(label)
        if len(labels) != lmat.shape[0]:
            raise ValueError(f"{lmat.shape[0]} contrasts but {len(labels)} labels")
        var = np.einsum("ri,ij,rj->r", lmat, self.vcov.to_numpy(), lmat)
        return inference_table(labels, lmat @ self.params, var, self.df(lmat))

    def f_test(self, contrasts: np.ndarray) -> dict[str, float]:
        """Joint test of ``L beta = 0`` (rows of ``L`` linearly independent).

        Kenward-Roger's scaled F with its df for the Kenward-Roger methods; otherwise the
        Wald F with the residual / between-within df (smallest over the rows), or chi-square
        / q for ``z``. Satterthwaite's multi-df test is not implemented: it raises.

        Returns
        -------
        dict
            ``f, ndf, ddf, p_value, scale``.
        """
        lmat = np.atleast_2d(np.asarray(contrasts, dtype=float))
        beta = lmat @ self.params
        if self.df_method.startswith("kenward-roger"):
            ddf, scale, q = kr_ftest(lmat, self._kr)
        elif self.df_method == "satterthwaite":
            raise NotImplementedError("multi-df Satterthwaite tests are not implemented")
        else:
            q = int(np.linalg.matrix_rank(lmat))
            ddf, scale = float(np.min(self.df(lmat))), 1.0
        cov = lmat @ self.vcov.to_numpy() @ lmat.T
        f = scale * float(beta @ np.linalg.solve(cov, beta)) / q
        p_value = stats.f.sf(f, q, ddf) if np.isfinite(ddf) else stats.chi2.sf(f * q, q)
        return {"f": f, "ndf": float(q), "ddf": ddf, "p_value": float(p_value), "scale": scale}

    def design_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Fixed-effect design rows for new covariate values (e.g. an emmeans grid)."""
        (mat,) = patsy.build_design_matrices([self.design_info], frame, NA_action="raise")
        return np.asarray(mat, dtype=float)

    def lsmeans(self, group: str) -> pd.DataFrame:
        """Least-squares means per visit and level of ``group`` (R ``emmeans``' equal weights).

        Parameters
        ----------
        group : str
            A categorical column of the fixed effects (e.g. the arm).

        Returns
        -------
        pandas.DataFrame
            ``factor, level, visit, time, estimate, std_err, df, ci_low, ci_high``
            (:data:`pipeline.lmm.marginal.EMMEANS_COLUMNS`; ``visit`` is the visit's position
            1..T, ``time`` its value).
        """
        from pipeline.lmm.marginal import emmeans

        points = {k + 1: v for k, v in enumerate(self.visit_levels)}
        return emmeans(self, self.rows, self.variables, group, self.visit, points)

    def visit_differences(self, group: str, level: Any, reference: Any) -> pd.DataFrame:
        """Difference ``level - reference`` of the LS means at each visit, Holm-adjusted.

        Returns
        -------
        pandas.DataFrame
            ``contrast, visit, time, estimate, std_err, df, ci_low, ci_high, p_value,
            p_holm`` (Holm across the visits).
        """
        from pipeline.lmm.marginal import group_differences, holm

        ats = [{self.visit: v} for v in self.visit_levels]
        lmat = group_differences(self, self.rows, self.variables, group, level, reference, ats)
        label = f"{level} - {reference}"
        table = self.contrast(lmat, [label] * len(ats)).rename(columns={"term": "contrast"})
        table.insert(1, "visit", np.arange(1, len(ats) + 1))
        table.insert(2, "time", list(self.visit_levels))
        table = table.drop(columns=["statistic"])
        table["p_holm"] = holm(table["p_value"].to_numpy())
        return table


def _hashable(levels: Sequence[Any] | None) -> tuple | None:
    """Return the visit levels as a key of :func:`~pipeline.lmm.reuse.shared`."""
    return None if levels is None else tuple(levels)


def _prepared(
    data: pd.DataFrame, response: str, fixed: str, spec: tuple, visit_levels: Sequence[Any] | None
) -> MmrmData:
    """Return :func:`prepare_mmrm`'s data, or columns of data built in the scope on these rows.

    A reduced model of a likelihood-ratio test takes its design and visit patterns from the
    full model's (:func:`pipeline.lmm.patterns.mmrm_within`) when that was built on the same
    rows with the same response, visits, patients and covariance groups (``spec``).
    """
    for key, full in built(data):
        if key[0] == "mmrm" and key[1] == response and key[3:] == spec:
            reduced = mmrm_within(full, fixed)
            if reduced is not None:
                return reduced
    visit, subject, covariance_group, _ = spec
    return prepare_mmrm(data, response, fixed, visit, subject, covariance_group, visit_levels)


def _start_sigma(data: MmrmData) -> np.ndarray:
    """Pairwise-complete covariance of the OLS residuals across visits, made positive definite.

    The design has full column rank (:func:`~pipeline.lmm.patterns.prepare_mmrm` checks it), so
    the least-squares fit is solved from the normal equations (a p x p Cholesky factor instead
    of an SVD of the N x p design; it is only a starting point); least squares by SVD is the
    fallback when the factor fails.
    """
    try:
        factor = scipy.linalg.cho_factor(data.x.T @ data.x)
        beta = scipy.linalg.cho_solve(factor, data.x.T @ data.y)
    except (np.linalg.LinAlgError, ValueError):
        beta, *_ = np.linalg.lstsq(data.x, data.y, rcond=None)
    resid = data.y - data.x @ beta
    t = data.n_visits
    wide = np.full((data.n_subjects, t), np.nan)
    wide[data.subject_codes, data.visit_codes] = resid
    cov = pd.DataFrame(wide).cov(min_periods=2).to_numpy()
    var = np.nanvar(resid) if resid.size > 1 else 1.0
    diag = np.where(np.isfinite(np.diag(cov)) & (np.diag(cov) > 0), np.diag(cov), var)
    cov = np.where(np.isfinite(cov), cov, 0.0)
    np.fill_diagonal(cov, diag)
    evals, evecs = np.linalg.eigh(cov)
    floor = 1e-3 * float(np.max(evals))
    return (evecs * np.maximum(evals, floor)) @ evecs.T


def _newton_polish(lik: Likelihood, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Newton steps from ``theta``; return ``theta``, the Hessian, the decrement and a note.

    The Hessian is computed at the start and reused for the steps (the L-BFGS-B optimum is
    already close), then recomputed at the final point, where the decrement is judged.
    """
    hess = lik.hessian(theta)
    for _ in range(3):
        try:
            chol = np.linalg.cholesky(hess)
        except np.linalg.LinAlgError:
            value, grad = lik.criterion_and_gradient(theta)
            return (
                theta,
                hess,
                float(grad @ grad),
                "the Hessian of the criterion is not positive definite",
            )
        for _ in range(20):
            value, grad = lik.criterion_and_gradient(theta)
            step = scipy.linalg.cho_solve((chol, True), grad)
            if float(grad @ step) < 1e-14:
                break
            scale = 1.0
            while scale > 1e-6:
                trial = theta - scale * step
                if lik.criterion(trial) <= value + 1e-12 * abs(value):
                    theta = trial
                    break
                scale /= 2.0
            else:
                break
        hess = lik.hessian(theta)
        value, grad = lik.criterion_and_gradient(theta)
        try:
            decrement = float(grad @ np.linalg.solve(hess, grad))
        except np.linalg.LinAlgError:
            decrement = float("inf")
        if 0 <= decrement < DECREMENT_TOL:
            return theta, hess, decrement, ""
    note = (
        ""
        if np.all(np.linalg.eigvalsh(hess) > 0)
        else "the Hessian of the criterion is not positive definite"
    )
    return theta, hess, abs(decrement), note


def _fit_structure(
    data: MmrmData, name: str, reml: bool, sigma0: np.ndarray
) -> tuple[Likelihood, np.ndarray, np.ndarray, bool, str]:
    """Optimise one structure; return the likelihood, theta, Hessian, converged, message."""
    structures = [get_structure(name, data.n_visits) for _ in data.group_levels]
    lik = Likelihood(data, structures, reml)
    theta0 = np.concatenate([s.start(sigma0) for s in structures])
    if not np.isfinite(lik.criterion(theta0)):
        theta0 = np.concatenate([s.start(np.diag(np.diag(sigma0))) for s in structures])
    res = optimize.minimize(
        lik.criterion_and_gradient,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 5000, "maxcor": 30, "ftol": 1e-15, "gtol": 1e-10},
    )
    theta = np.asarray(res.x, dtype=float)
    if not np.isfinite(lik.criterion(theta)):
        return lik, theta, np.full((theta.size, theta.size), np.nan), False, "no finite optimum"
    theta, hess, decrement, note = _newton_polish(lik, theta)
    evals = np.linalg.eigvalsh(hess)
    if note or evals.min() <= 1e-10 * max(1.0, evals.max()):
        return lik, theta, hess, False, note or "the Hessian of the criterion is singular"
    if decrement > DECREMENT_TOL:
        return lik, theta, hess, False, f"Newton decrement {decrement:.1e} above {DECREMENT_TOL}"
    sig = lik.sigmas(theta)
    cond = max(np.linalg.cond(s) for s in sig)
    if not np.isfinite(cond) or cond > 1e12:
        return (
            lik,
            theta,
            hess,
            False,
            f"the covariance matrix is near singular (condition {cond:.1e})",
        )
    return lik, theta, hess, True, ""


def _check_options(df_method: str, reml: bool, robust: bool) -> None:
    if df_method not in DF_METHODS:
        raise ModelDataError(
            f"df_method must be one of {', '.join(DF_METHODS)}, not {df_method!r}."
        )
    if df_method.startswith("kenward-roger") and not reml:
        raise ModelDataError("Kenward-Roger degrees of freedom need a REML fit (reml=True).")
    if robust and df_method not in ("residual", "between-within", "z"):
        raise ModelDataError(
            "Robust (sandwich) standard errors go with df_method 'residual', 'between-within' "
            f"or 'z', not {df_method!r}."
        )


def _inference(
    lik: Likelihood, theta: np.ndarray, hess: np.ndarray, df_method: str, robust: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, KrPieces | None]:
    """Covariance used for inference and the pieces of the df method."""
    jac = varpar = kr = None
    if df_method == "satterthwaite":
        jac = lik.vcov_jacobian(theta)
        evals, evecs = np.linalg.eigh(hess)
        keep = evals > 1e-10 * max(1.0, evals.max())
        varpar = 2.0 * (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
    if df_method.startswith("kenward-roger"):
        kr = kr_pieces(lik, theta, linear=df_method == "kenward-roger-linear")
        return kr.vcov_adjusted, jac, varpar, kr
    if robust:
        return _sandwich(lik, theta), jac, varpar, kr
    return lik.state(theta).xtwx_inv, jac, varpar, kr


def _information(criterion: float, k: int, n_star: int, n_subjects: int) -> tuple[float, ...]:
    aic = criterion + 2.0 * k
    aicc = criterion + 2.0 * k * n_star / (n_star - k - 1) if n_star - k - 1 > 0 else np.inf
    bic = criterion + k * np.log(n_subjects)
    return aic, aicc, bic


def _sandwich(lik: Likelihood, theta: np.ndarray) -> np.ndarray:
    """``Phi (sum_i X_i'W_i r_i r_i'W_i X_i) Phi`` (CR0), summed pattern by pattern."""
    st = lik.state(theta)
    data = lik.data
    meat = np.zeros((data.p, data.p))
    for pat, inv in zip(data.patterns, st.inverses, strict=True):
        xp = data.x[pat.rows]  # (n, k, p)
        resid = data.y[pat.rows] - xp @ st.beta
        u = np.einsum("nkq,kl,nl->nq", xp, inv, resid)
        meat += u.T @ u
    return st.xtwx_inv @ meat @ st.xtwx_inv


def formula_variables(design_info: Any, columns: Sequence[str]) -> tuple[str, ...]:
    """Return the data columns used by the fixed-effect formula (for the emmeans reference grid)."""
    found: list[str] = []
    for factor in design_info.factor_infos:
        for node in ast.walk(ast.parse(factor.name())):
            name = None
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            if name in columns and name not in found:
                found.append(name)
    return tuple(found)


@single_threaded()
def fit_mmrm(
    data: pd.DataFrame,
    response: str,
    fixed: str,
    visit: str,
    subject: str,
    structure: str | Sequence[str] = DEFAULT_FALLBACK,
    *,
    reml: bool = True,
    df_method: DfMethod = "kenward-roger",
    robust: bool = False,
    covariance_group: str | None = None,
    visit_levels: Sequence[Any] | None = None,
) -> MmrmFit:
    """Fit a mixed model for repeated measures.

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per patient and attended visit. Not modified.
    response : str
        Numeric response column.
    fixed : str
        patsy right-hand side, e.g.
        ``"baseline + C(visit) * C(arm, Treatment('control'))"``.
    visit : str
        Visit column (indexes the covariance; treat it as categorical in ``fixed``).
    subject : str
        Patient identifier column.
    structure : str or sequence of str, default the fallback order
        One structure name of :data:`pipeline.lmm.covariance.STRUCTURES`, or several tried in
        order until one converges (default ``us, toeph, ar1h, csh, cs``).
    reml : bool, keyword-only, default True
        REML or ML.
    df_method : str, keyword-only, default "kenward-roger"
        One of :data:`DF_METHODS`. The Kenward-Roger methods need ``reml=True``.
    robust : bool, keyword-only, default False
        Sandwich (empirical) covariance of the fixed effects; then ``df_method`` must be
        ``residual``, ``between-within`` or ``z``.
    covariance_group : str, keyword-only, optional
        Patient-level column: a separate ``Sigma`` for each of its values.
    visit_levels : sequence, keyword-only, optional
        Visit values in order (default: the categorical order, else sorted).

    Returns
    -------
    MmrmFit

    Raises
    ------
    ModelDataError
        Unusable data (see :func:`pipeline.lmm.patterns.prepare_mmrm`) or options.
    ModelFitError
        No structure of the order converged.
    """
    started = time.perf_counter()
    names = [structure] if isinstance(structure, str) else list(structure)
    unknown = [n for n in names if n not in STRUCTURES]
    if unknown or not names:
        raise ModelDataError(
            f"Unknown covariance structure(s) {unknown}: choose from {', '.join(STRUCTURES)}."
        )
    _check_options(df_method, reml, robust)
    spec = (visit, subject, covariance_group, _hashable(visit_levels))
    prep = shared(  # the ML refits of an analysis reuse its REML fit's design and patterns
        data,
        ("mmrm", response, fixed, *spec),
        lambda: _prepared(data, response, fixed, spec, visit_levels),
    )
    notes: list[str] = []
    if prep.n_excluded:
        notes.append(f"data: {prep.n_excluded} row(s) with a missing model variable were excluded")
    sigma0 = shared(prep, ("mmrm start",), lambda: _start_sigma(prep))
    trials = []
    chosen = None
    n_star = prep.n_obs - prep.p if reml else prep.n_obs
    for name in names:
        try:
            # (a structure the data do not support may overflow on its way to failing: the
            # failure is reported below, without a warning per overflow on the terminal)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                lik, theta, hess, ok, message = _fit_structure(prep, name, reml, sigma0)
                crit = lik.criterion(theta)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            ok, message, crit, lik = False, f"{type(exc).__name__}: {exc}", float("nan"), None
        k = lik.n_theta + (0 if reml else prep.p) if lik is not None else 0
        info = _information(crit, k, n_star, prep.n_subjects) if lik else (np.nan,) * 3
        trials.append([name, ok, crit, k, *info, message])
        if ok:
            chosen = (name, lik, theta, hess)
            break
        notes.append(f"structure {name} did not converge ({message})")
    trial_table = pd.DataFrame(trials, columns=TRIAL_COLUMNS)
    if chosen is None:
        raise ModelFitError(
            f"No covariance structure converged (tried {', '.join(names)}): "
            + "; ".join(trial_table["message"])
        )
    if len(trials) > 1:
        notes.append(
            f"fallback: fitted with structure {chosen[0]} after {len(trials) - 1} failure(s)"
        )
    name, lik, theta, hess = chosen
    st = lik.state(theta)
    crit = lik.criterion_from_state(st)
    k = lik.n_theta + (0 if reml else prep.p)
    aic, aicc, bic = _information(crit, k, n_star, prep.n_subjects)
    columns = list(prep.columns)
    phi = st.xtwx_inv
    used, jac, varpar, kr = _inference(lik, theta, hess, df_method, robust)
    covariance = {}
    params = []
    for g, (s, t, sig) in enumerate(
        zip(lik.structures, lik.split(theta), lik.sigmas(theta), strict=True)
    ):
        key = prep.group_levels[g]
        covariance[key] = pd.DataFrame(sig, index=prep.visit_levels, columns=prep.visit_levels)
        params += [[key, n, float(v)] for n, v in zip(s.natural_names, s.natural(t), strict=True)]
    fit = MmrmFit(
        fixed_effects=pd.DataFrame(),
        vcov=pd.DataFrame(used, index=columns, columns=columns),
        vcov_model=pd.DataFrame(phi, index=columns, columns=columns),
        covariance=covariance,
        covariance_parameters=pd.DataFrame(params, columns=["group", "parameter", "estimate"]),
        structure=name,
        structure_trials=trial_table,
        criterion=crit,
        loglik=-0.5 * crit,
        aic=aic,
        aicc=aicc,
        bic=bic,
        reml=reml,
        df_method=df_method,
        robust=robust,
        n_obs=prep.n_obs,
        n_subjects=prep.n_subjects,
        n_patterns=len(prep.patterns),
        n_excluded=prep.n_excluded,
        visit_levels=prep.visit_levels,
        design_columns=tuple(columns),
        formula=prep.formula,
        visit=visit,
        subject=subject,
        covariance_group=covariance_group,
        theta=theta,
        beta=st.beta,
        converged=True,
        warnings=tuple(notes),
        fit_seconds=0.0,
        _design_info=prep.design_info,
        _rows=prep.frame,
        variables=formula_variables(prep.design_info, list(prep.frame.columns)),
        _jacobian=jac,
        _varpar_vcov=varpar,
        _kr=kr,
        _between=prep.between,
        _likelihood=lik,
        _hessian=hess,
        response=response,
        fixed=fixed,
    )
    object.__setattr__(fit, "fixed_effects", fit.contrast(np.eye(len(columns)), columns))
    object.__setattr__(fit, "fit_seconds", time.perf_counter() - started)
    return fit


def compare_structures(
    data: pd.DataFrame,
    response: str,
    fixed: str,
    visit: str,
    subject: str,
    structures: Sequence[str] = tuple(STRUCTURES),
    **options: Any,
) -> pd.DataFrame:
    """Fit each structure separately and tabulate its criterion, AIC, AICc and BIC.

    Parameters
    ----------
    data, response, fixed, visit, subject
        As :func:`fit_mmrm`.
    structures : sequence of str
        Structures to compare (default all).
    **options
        Passed to :func:`fit_mmrm` (``reml``, ``covariance_group``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per structure: ``structure, converged, criterion, n_parameters, aic, aicc,
        bic, message``, sorted by AIC.
    """
    rows = []
    for name in structures:
        try:
            fit = fit_mmrm(data, response, fixed, visit, subject, name, df_method="z", **options)
            rows.append(fit.structure_trials.iloc[0].tolist())
        except ModelFitError as exc:
            rows.append([name, False, np.nan, np.nan, np.nan, np.nan, np.nan, str(exc)])
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS).sort_values("aic", kind="stable")
