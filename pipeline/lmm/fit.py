"""Fit a linear mixed model the way lme4 / lmerTest do: :func:`fit_lmm` and :class:`LmmFit`.

The one entry point is :func:`fit_lmm`. It fits::

    response ~ fixed + (1 + random_slope | group)                # correlated intercept and slope
    response ~ fixed + (1 | group)                               # when random_slope is None
    response ~ fixed + (1 | site) + (1 + random_slope | group)   # with site=, groups nested

by minimising lme4's profiled REML criterion or ML deviance in numpy
(:mod:`pipeline.lmm.deviance`, optimised by :mod:`pipeline.lmm.optim`), and computes everything
that is reported the way R's lme4 / lmerTest do:

* the REML criterion / ML deviance exactly as lme4 reports it;
* the fixed-effect covariance ``(X' V^{-1} X)^{-1}`` at the estimated variance parameters
  (statsmodels' ``bse_fe`` comes from the joint Hessian and differs from lme4 by up to a few %);
* Satterthwaite degrees of freedom as lmerTest computes them: for a contrast ``L``,
  ``df = 2 (L C L')^2 / (g' A g)``, ``g`` the gradient of ``L C L'`` with respect to the
  variance parameters ``(theta, sigma)`` and ``A = 2 H^{-1}``, ``H`` the Hessian of the
  (RE)ML deviance with ``sigma`` not profiled out. lmerTest differentiates numerically
  (``numDeriv``, Richardson extrapolation); here the deviance's gradient and the covariance's
  Jacobian are exact (:class:`pipeline.lmm.deviance.DevianceDerivatives`) and ``H`` is the
  Richardson-extrapolated Jacobian of that gradient.

Fitting strategy (SAP section 6)
--------------------------------
With the default ``routes`` several optimisers are tried (statsmodels' default optimiser can
report convergence far from the optimum, so none is trusted alone) and the one with the best (RE)ML
criterion (evaluated by the same numpy code for
every route) is kept (details in :mod:`pipeline.lmm.optim`):

1. ``powell+bfgs``: statsmodels with ``method="powell"``, then ``method="bfgs"`` (``gtol=1e-8``)
   from that point;
2. ``lbfgs``: statsmodels with ``method="lbfgs"`` from statsmodels' default start;
3. ``numpy-powell``: scipy's bounded Powell on the profiled criterion over lme4's ``theta``
   (diagonal >= 0) from lme4's default start.

The fast path (:data:`FAST_ROUTES`, used by the analyses) runs a fourth route alone,
``numpy-lbfgsb`` (bounded L-BFGS-B with the criterion's exact gradient from lme4's start), and
escalates to the three routes above only when its optimum fails lme4's gradient check or is
singular.

The winner is then polished by bounded L-BFGS-B on the same criterion; the polish is kept only
when it does not worsen the criterion (it matters at the boundary, which statsmodels' unbounded
Cholesky parametrisation approaches only asymptotically). ``LmmFit.optimizer`` names the route
that won and ``LmmFit.optimizer_trials`` lists every route with its criterion. The reported
estimates are the generalised least squares fixed effects and profiled residual variance at the
winning ``theta``; they equal statsmodels' ``fe_params`` / ``scale`` at the same point.

Boundary fits and fallback
--------------------------
A fit is singular when a diagonal element of lme4's relative Cholesky factor is below 1e-4
(lme4's ``isSingular`` rule: a variance that is ~0 or a correlation of +-1), judged at the best
optimum found, not by statsmodels' fixed "variance < 0.01" warning. A random-slope model that is
singular, or that did not converge with any route, is refitted with a random intercept only and
``LmmFit.fallback`` says why. Every warning raised while fitting is recorded in
``LmmFit.warnings`` (prefixed with the route that raised it); none is filtered.

Reference levels
----------------
patsy orders text levels alphabetically, so ``C(depth)`` would make "deep" the reference.
Callers must name references explicitly, e.g.
``"weeks * C(depth, Treatment('superficial')) + C(chronicity, Treatment('acute'))"``.
Term names are patsy's (``"Intercept"``, ``"C(depth, Treatment('superficial'))[T.deep]"``),
not R's.

Site with correlated patient slopes
-----------------------------------
statsmodels cannot combine a correlated patient intercept and slope with a site intercept;
this engine can: ``site=`` adds a site random intercept with the groups nested in sites
(``(1 | site) + (1 + random_slope | group)``), fitted by the numpy routes only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from pipeline.lmm.blas import single_threaded
from pipeline.lmm.data import (
    MIN_GROUPS,
    ModelDataError,
    PreparedData,
    design_within,
    prepare_data,
)
from pipeline.lmm.deviance import (
    GroupedCrossproducts,
    jacobian_richardson,
    lambda_from_theta,
)
from pipeline.lmm.optim import (
    DEFAULT_ROUTES,
    GRADIENT_TOL,
    ROUTES,
    SINGULAR_TOL,
    ModelFitError,
    WarningRecorder,
    fit_structure,
)
from pipeline.lmm.reuse import built, shared

__all__ = [
    "DEFAULT_ROUTES",
    "FAST_PATH",
    "FAST_ROUTES",
    "FIXED_EFFECT_COLUMNS",
    "GRADIENT_TOL",
    "HESSIAN_EIGEN_TOL",
    "MIN_GROUPS",
    "SINGULAR_TOL",
    "LmmFit",
    "ModelDataError",
    "ModelFitError",
    "fit_lmm",
]

FAST_ROUTES: tuple[str, ...] = ("numpy-lbfgsb",)
"""The fast path: bounded L-BFGS-B on lme4's profiled criterion with its exact gradient, from
lme4's start, verified by lme4's gradient check; with ``escalate=DEFAULT_ROUTES`` the
statsmodels routes and the derivative-free numpy Powell route are added whenever that check
fails or the fit is singular."""

FAST_PATH: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"routes": FAST_ROUTES, "escalate": ("numpy-powell",)}
)
"""``fit_lmm(..., **FAST_PATH)``: the clinic questions' policy (:mod:`pipeline.describe`),
:data:`FAST_ROUTES` checked by the derivative-free numpy Powell route (an independent second
optimiser, SAP section 6) when the optimum is not verified or is singular. statsmodels' MixedLM
routes are left out: its criterion loops over the patients in Python, which at 20,000 patients
cost minutes per fit, and a singular fit (a legitimate zero variance) escalated every time."""

HESSIAN_EIGEN_TOL = 1e-8
"""lmerTest's tolerance for zero / negative eigenvalues of the deviance Hessian."""

FIXED_EFFECT_COLUMNS = (
    "term",
    "estimate",
    "std_err",
    "df",
    "statistic",
    "p_value",
    "ci_low",
    "ci_high",
)


@dataclass(frozen=True, eq=False)
class LmmFit:
    """Result of :func:`fit_lmm`: estimates and lme4 / lmerTest-style inference.

    Attributes
    ----------
    fixed_effects : pandas.DataFrame
        One row per design column, columns ``term, estimate, std_err, df, statistic,
        p_value, ci_low, ci_high`` (95 % CI from t with the Satterthwaite df, or normal).
    variance_components : pandas.DataFrame
        Columns ``group, term, variance, std_dev, correlation``: one row per random effect,
        one row for the intercept-slope correlation (variance and std_dev NaN) and a
        ``Residual`` row.
    loglik : float
        Restricted (REML) or ordinary (ML) log-likelihood, as ``logLik()`` in R.
    criterion : float
        REML criterion (REML) or deviance (ML), ``-2 * loglik``, as lme4 prints it.
    reml : bool
        Whether the fit is REML.
    n_obs, n_groups : int
        Observations and groups used.
    converged : bool
        At least one route reported convergence and the reported optimum passes lme4's
        gradient check (Hessian-scaled gradient below :data:`GRADIENT_TOL`).
    optimizer : str
        Route that gave the reported optimum (``"<route>+polish"`` when the bounded polish
        improved it).
    fallback : str or None
        Why the random slope was dropped, or None.
    boundary : bool
        The reported model is singular (a variance ~0 or a correlation +-1, lme4's rule).
    warnings : tuple of str
        Every warning raised while fitting and computing inference, prefixed by its source.
    vcov : pandas.DataFrame
        Fixed-effect covariance ``(X' V^{-1} X)^{-1}``, labelled by design column.
    design_columns : tuple of str
        patsy names of the fixed-effect design columns.
    formula : str
        The fixed-effect formula fitted (``response ~ fixed``).
    group : str
        Grouping column.
    random_slope : str or None
        Random slope of the reported model (None after a fallback).
    df_method : {"satterthwaite", "z"}
        Inference used by :meth:`contrast` and ``fixed_effects``.
    theta : numpy.ndarray
        lme4's relative Cholesky parameters at the optimum.
    sigma : float
        Residual standard deviation.
    n_excluded : int
        Rows of the input dropped because a model variable was missing.
    optimizer_trials : pandas.DataFrame
        Every optimisation route tried for the reported model: ``route, criterion, converged,
        note``.
    varpar_vcov : numpy.ndarray or None
        ``A = 2 H^{-1}`` (pseudo-inverse as lmerTest), covariance of ``(theta, sigma)``;
        None when ``df_method="z"``.
    vcov_jacobian : numpy.ndarray or None
        Derivative of the fixed-effect covariance with respect to ``(theta, sigma)``,
        shape ``(len(theta) + 1, p, p)``; None when ``df_method="z"``.
    design_info : patsy.DesignInfo
        patsy design information of the fixed effects (used to build contrast vectors).
    random_effects : pandas.DataFrame
        Conditional modes (BLUPs) of the random effects, one row per group (index: group
        value), columns ``(Intercept)`` and the slope variable, as lme4's ``ranef()``.
    fitted : numpy.ndarray
        Conditional fitted values ``X beta + Z b`` of the rows used, in input order.
    residuals : numpy.ndarray
        Conditional residuals ``y - fitted`` (lme4's ``residuals()``).
    fit_seconds : float
        Wall-clock time of the whole fit (all routes, fallback and inference).
    site : str or None
        Site column of a site random intercept, or None.
    site_effects : pandas.Series or None
        Conditional modes of the site intercepts (index: site value).
    """

    fixed_effects: pd.DataFrame
    variance_components: pd.DataFrame
    loglik: float
    criterion: float
    reml: bool
    n_obs: int
    n_groups: int
    converged: bool
    optimizer: str
    fallback: str | None
    boundary: bool
    warnings: tuple[str, ...]
    vcov: pd.DataFrame
    design_columns: tuple[str, ...]
    formula: str
    group: str
    random_slope: str | None
    df_method: Literal["satterthwaite", "z"]
    theta: np.ndarray
    sigma: float
    n_excluded: int
    optimizer_trials: pd.DataFrame
    varpar_vcov: np.ndarray | None = field(repr=False)
    vcov_jacobian: np.ndarray | None = field(repr=False)
    design_info: Any = field(repr=False)
    random_effects: pd.DataFrame = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    residuals: np.ndarray = field(repr=False)
    fit_seconds: float = 0.0
    site: str | None = None
    site_effects: pd.Series | None = field(default=None, repr=False)

    @property
    def params(self) -> np.ndarray:
        """Fixed-effect estimates as an array in design-column order."""
        return self.fixed_effects["estimate"].to_numpy()

    def satterthwaite_df(self, contrasts: np.ndarray) -> np.ndarray:
        """Satterthwaite degrees of freedom of one or more contrasts (lmerTest's formula).

        Parameters
        ----------
        contrasts : numpy.ndarray
            Shape ``(k, p)``: one contrast vector per row.

        Returns
        -------
        numpy.ndarray
            ``k`` degrees of freedom (``inf`` with ``df_method="z"`` or when the variance of
            the contrast does not depend on the variance parameters).
        """
        lmat = np.atleast_2d(np.asarray(contrasts, dtype=float))
        if self.df_method == "z" or self.vcov_jacobian is None or self.varpar_vcov is None:
            return np.full(lmat.shape[0], np.inf)
        return _satterthwaite_df(lmat, self.vcov.to_numpy(), self.vcov_jacobian, self.varpar_vcov)

    def contrast(
        self, contrasts: Sequence[float] | np.ndarray, label: str | Sequence[str] = "contrast"
    ) -> pd.DataFrame:
        """Estimate, SE, Satterthwaite df, t, p and 95 % CI of linear combinations ``L beta``.

        Parameters
        ----------
        contrasts : array_like
            A contrast vector of length ``p`` (design-column order, see ``design_columns``),
            or a ``(k, p)`` matrix of them.
        label : str or sequence of str, default "contrast"
            Name(s) put in the ``term`` column.

        Returns
        -------
        pandas.DataFrame
            One row per contrast with columns ``term, estimate, std_err, df, statistic,
            p_value, ci_low, ci_high``.

        Raises
        ------
        ValueError
            If the contrast length differs from the number of fixed effects.
        """
        lmat = np.atleast_2d(np.asarray(contrasts, dtype=float))
        p = len(self.design_columns)
        if lmat.ndim != 2 or lmat.shape[1] != p:
            raise ValueError(f"a contrast needs {p} coefficients, got shape {lmat.shape}")
        labels = [label] if isinstance(label, str) else list(label)
        if len(labels) != lmat.shape[0]:
            raise ValueError(f"{lmat.shape[0]} contrasts but {len(labels)} labels")
        return _inference_table(
            labels,
            lmat @ self.params,
            np.einsum("ri,ij,rj->r", lmat, self.vcov.to_numpy(), lmat),
            self.satterthwaite_df(lmat),
        )

    def design_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Fixed-effect design rows for new covariate values (e.g. an emmeans grid).

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per design point, with every variable of the fixed-effect formula
            (not the response). Categorical values must be levels seen in the fit.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(frame), p)``, columns in ``design_columns`` order.
        """
        (mat,) = patsy.build_design_matrices([self.design_info], frame, NA_action="raise")
        return np.asarray(mat, dtype=float)

    def design_row(self, values: Mapping[str, Any]) -> np.ndarray:
        """Fixed-effect design row for one set of covariate values.

        Parameters
        ----------
        values : mapping
            Variable name -> value, e.g. ``{"weeks": 6, "depth": "deep", "chronicity": "acute"}``.

        Returns
        -------
        numpy.ndarray
            Length-``p`` row; ``row @ beta`` is the model prediction at those values.
        """
        return self.design_matrix(pd.DataFrame([dict(values)]))[0]

    def difference_vector(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> np.ndarray:
        """Contrast vector for "prediction at ``a`` minus prediction at ``b``".

        Parameters
        ----------
        a, b : mapping
            Covariate values as for :meth:`design_row`.

        Returns
        -------
        numpy.ndarray
            ``design_row(a) - design_row(b)``, ready for :meth:`contrast`.
        """
        return self.design_row(a) - self.design_row(b)


def _inference_table(
    labels: Sequence[str], estimate: np.ndarray, variance: np.ndarray, df: np.ndarray
) -> pd.DataFrame:
    """Tidy table of estimates with t (or normal, df = inf) tests and 95 % intervals."""
    estimate = np.asarray(estimate, dtype=float)
    se = np.sqrt(np.maximum(np.asarray(variance, dtype=float), 0.0))
    df = np.asarray(df, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = estimate / se
    finite = np.isfinite(df)
    p_value = np.where(
        finite,
        2.0 * stats.t.sf(np.abs(stat), np.where(finite, df, 1.0)),
        2.0 * stats.norm.sf(np.abs(stat)),
    )
    crit = np.where(finite, stats.t.ppf(0.975, np.where(finite, df, 1.0)), stats.norm.ppf(0.975))
    return pd.DataFrame(
        {
            "term": list(labels),
            "estimate": estimate,
            "std_err": se,
            "df": df,
            "statistic": stat,
            "p_value": p_value,
            "ci_low": estimate - crit * se,
            "ci_high": estimate + crit * se,
        },
        columns=list(FIXED_EFFECT_COLUMNS),
    )


def _satterthwaite_df(
    lmat: np.ndarray, vcov: np.ndarray, jac: np.ndarray, varpar_vcov: np.ndarray
) -> np.ndarray:
    """Return lmerTest's ``2 (L C L')^2 / (g' A g)`` for each row ``L`` of ``lmat``."""
    var = np.einsum("ri,ij,rj->r", lmat, vcov, lmat)
    grad = np.einsum("kij,ri,rj->rk", jac, lmat, lmat)
    denom = np.einsum("rk,kl,rl->r", grad, varpar_vcov, grad)
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, 2.0 * var**2 / safe, np.inf)


def _satterthwaite_pieces(
    gc: GroupedCrossproducts, varpar: np.ndarray, reml: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return ``A = 2 H^+``, the Jacobian of the fixed-effect covariance and lmerTest warnings.

    ``H`` is the Jacobian of the deviance's exact gradient by central differences, two
    gradients per parameter (error ~h^2 with h = 1e-4 of the parameter: the df move by ~3e-8
    against one Richardson extrapolation, which took twice the gradients; lmerTest
    differentiates the deviance twice numerically and agrees to ~1e-7); the Jacobian of the
    covariance is exact.
    """
    jac_grad = jacobian_richardson(lambda v: gc.deviance_gradient(v, reml), varpar, n_steps=1)
    hess = 0.5 * (jac_grad + jac_grad.T)
    evals, evecs = np.linalg.eigh(hess)
    notes = []
    neg = evals < -HESSIAN_EIGEN_TOL
    zero = np.abs(evals) <= HESSIAN_EIGEN_TOL
    if neg.any():
        notes.append(
            f"satterthwaite: the deviance Hessian has {int(neg.sum())} negative eigenvalue(s) "
            f"({', '.join(f'{e:.1e}' for e in evals[neg])}): the model may not have converged"
        )
    if zero.any():
        notes.append(
            f"satterthwaite: the deviance Hessian has {int(zero.sum())} eigenvalue(s) close to "
            f"zero ({', '.join(f'{e:.1e}' for e in evals[zero])}); pseudo-inverse used"
        )
    pos = evals > HESSIAN_EIGEN_TOL
    h_inv = (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    return 2.0 * h_inv, gc.vcov_jacobian(varpar), notes


def _design(
    data: pd.DataFrame,
    response: str,
    fixed: str,
    group: str,
    random_slope: str | None,
    site: str | None,
) -> PreparedData:
    """Return :func:`prepare_data`'s design, or columns of one built in the scope on these rows.

    A reduced model of a likelihood-ratio test takes its columns from the full model's design
    (:func:`pipeline.lmm.data.design_within`) when that was built on the same data with the
    same response, group, site and random slope (or with a random slope when this one has
    none: its rows are then all the rows too).
    """
    for key, full in built(data):
        if (
            key[0] == "design"
            and key[1] == response
            and key[3] == group
            and key[5] == site
            and random_slope in (key[4], None)
        ):
            reduced = design_within(full, fixed)
            if reduced is not None:
                return reduced
    return prepare_data(data, response, fixed, group, random_slope, site)


@single_threaded()  # small products: threads cost more than they save (pipeline.lmm.blas)
def fit_lmm(
    data: pd.DataFrame,
    response: str,
    fixed: str,
    group: str,
    random_slope: str | None = None,
    reml: bool = True,
    df_method: Literal["satterthwaite", "z"] = "satterthwaite",
    *,
    routes: Sequence[str] = DEFAULT_ROUTES,
    escalate: Sequence[str] = (),
    site: str | None = None,
    start: np.ndarray | None = None,
    prepared: PreparedData | None = None,
) -> LmmFit:
    """Fit a linear mixed model and return lme4 / lmerTest-equivalent inference.

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per observation. Not modified.
    response : str
        Numeric response column.
    fixed : str
        patsy right-hand side of the fixed effects. Give reference levels explicitly, e.g.
        ``"weeks * C(depth, Treatment('superficial'))"``: patsy would otherwise take the
        alphabetically first level ("deep") as the reference.
    group : str
        Grouping column (patient).
    random_slope : str, optional
        Numeric column with a random slope correlated with the random intercept,
        ``(1 + random_slope | group)``. None gives ``(1 | group)``.
    reml : bool, default True
        REML (estimates) or ML (likelihood-ratio tests of fixed effects).
    df_method : {"satterthwaite", "z"}, default "satterthwaite"
        Satterthwaite degrees of freedom as lmerTest, or large-sample normal inference.
    routes : sequence of str, keyword-only
        Optimisation routes to try, default ``("powell+bfgs", "lbfgs", "numpy-powell")``
        (see :mod:`pipeline.lmm.optim`). The statsmodels routes dominate the run time; a
        simulation study may pass e.g. ``("powell+bfgs", "numpy-powell")``.
    escalate : sequence of str, keyword-only
        Routes run only when the optimum of ``routes`` is not verified (fails lme4's gradient
        check, no route converged) or is singular. ``routes=FAST_ROUTES,
        escalate=DEFAULT_ROUTES`` fits with the numpy route alone and calls statsmodels only
        when needed (:data:`FAST_ROUTES`).
    site : str, keyword-only, optional
        Column of the sites in which the groups are nested: adds a site random intercept,
        ``(1 | site) + (1 + random_slope | group)`` as lme4 writes it. statsmodels cannot fit
        this model, so only the numpy routes are used (see :mod:`pipeline.lmm.optim`).
    start : numpy.ndarray, keyword-only, optional
        Starting ``theta`` for the ``numpy-lbfgsb`` route, e.g. the REML estimate when the
        same model is refitted by ML for a likelihood-ratio test (fewer iterations; the
        optimum does not depend on it). Ignored when its length does not match the random
        effects, and for the random-intercept refit after a fallback.
    prepared : PreparedData, keyword-only, optional
        The validated design of ``data`` for this ``response``, ``fixed``, ``group``,
        ``random_slope`` and ``site``, built by the caller (a simulation study that refits one
        design with new responses builds the design once; :mod:`pipeline.planning.simulate`).
        When given, ``data`` is not read and :func:`~pipeline.lmm.data.prepare_data` does not
        run: the caller vouches for the checks it would have made.

    Returns
    -------
    LmmFit
        Estimates, standard errors from ``(X' V^{-1} X)^{-1}``, Satterthwaite df, variance
        components, fit diagnostics and contrast helpers.

    Raises
    ------
    ModelDataError
        Degenerate data: missing columns, an empty factor level, a single visit per group,
        a constant response, too few groups, a rank-deficient design.
    ModelFitError
        No optimisation route produced a finite criterion for the random-intercept model.
    ValueError
        Unknown ``df_method`` or route name.

    Notes
    -----
    Rows with a missing value in any model variable are excluded (likelihood-based analysis of
    the observed assessments, valid under missing at random); their number is in
    ``n_excluded`` and in ``warnings``. See the module docstring for the fitting routes,
    the boundary rule and the fallback to a random intercept.
    """
    started = time.perf_counter()
    if df_method not in ("satterthwaite", "z"):
        raise ValueError(f"df_method must be 'satterthwaite' or 'z', not {df_method!r}")
    unknown = sorted(set(routes).union(escalate) - set(ROUTES))
    if unknown or not routes:
        raise ValueError(f"routes must be a non-empty subset of {ROUTES}, got {routes}")
    prep = prepared
    if prep is None:  # built once for the REML fit and its ML refit (lmm.reuse scope)
        prep = shared(
            data,
            ("design", response, fixed, group, random_slope, site),
            lambda: _design(data, response, fixed, group, random_slope, site),
        )
    recorder = WarningRecorder()
    if prep.n_excluded:
        recorder.add(
            f"data: {prep.n_excluded} row(s) with a missing value in a model variable were excluded"
        )

    slope = random_slope
    fallback: str | None = None
    outcome = fit_structure(prep, group, slope, reml, routes, recorder, escalate, start)
    if random_slope is not None:
        reason = None
        if outcome.best is None or not outcome.converged:
            tried = ", ".join(t.route for t in outcome.trials)
            reason = f"did not converge with any optimiser (tried {tried})"
            if outcome.gradient_note:
                recorder.add(outcome.gradient_note)
        elif outcome.singular:
            reason = f"is at the boundary ({outcome.singular}; lme4's isSingular rule)"
        if reason:
            fallback = (
                f"The random-slope model (1 + {random_slope} | {group}) {reason}; "
                f"refitted with a random intercept only (1 | {group})."
            )
            recorder.add(f"fallback: {fallback}")
            slope = None
            outcome = fit_structure(prep, group, slope, reml, routes, recorder, escalate)

    label = f"(1 + {slope} | {group})" if slope else f"(1 | {group})"
    if site:
        label = f"(1 | {site}) + {label}"
    best = outcome.best
    if best is None:
        raise ModelFitError(
            f"No optimiser produced a finite criterion for {label}: "
            + "; ".join(f"{t.route}: {t.note}" for t in outcome.trials)
        )
    if outcome.gradient_note:
        recorder.add(outcome.gradient_note)
    if outcome.singular:
        recorder.add(f"{label}: boundary (singular) fit: {outcome.singular}")
    if outcome.site_singular:
        recorder.add(f"{label}: boundary (singular) fit: {outcome.site_singular}")
    if not outcome.converged:
        recorder.add(f"{label}: no optimiser reached a verified optimum (converged=False)")

    gc = outcome.crossproducts
    theta = np.asarray(best.theta, dtype=float)
    terms = gc.terms(theta)
    sigma = float(np.sqrt(terms.pwrss / (gc.n_obs - gc.p if reml else gc.n_obs)))
    vcov = sigma**2 * terms.xwx_inv
    criterion = gc.profiled_deviance(theta, reml)

    varpar_vcov = jac = None
    df = np.full(gc.p, np.inf)
    if df_method == "satterthwaite":
        varpar_vcov, jac, notes = _satterthwaite_pieces(gc, np.r_[theta, sigma], reml)
        for n in notes:
            recorder.add(f"{label} {n}")
        df = _satterthwaite_df(np.eye(gc.p), vcov, jac, varpar_vcov)

    columns = tuple(prep.x.columns)
    modes = gc.conditional_modes(theta, terms.beta)
    re_names = ["(Intercept)"] + ([slope] if slope else [])
    z = np.ones((gc.n_obs, len(re_names)))
    if slope:
        z[:, 1] = prep.frame[slope].to_numpy(dtype=float)
    fitted = prep.x.to_numpy() @ terms.beta + (z * modes[prep.codes]).sum(axis=1)
    site_effects = None
    if site:
        site_modes = gc.site_modes(theta, terms.beta)
        fitted = fitted + site_modes[prep.site_codes]
        site_effects = pd.Series(site_modes, index=pd.Index(prep.site_levels, name=site))
    levels = np.sort(prep.frame[group].unique())
    return LmmFit(
        fixed_effects=_inference_table(columns, terms.beta, np.diag(vcov), df),
        variance_components=_variance_table(theta, sigma, gc.q, group, slope, site),
        loglik=-0.5 * criterion,
        criterion=criterion,
        reml=reml,
        n_obs=gc.n_obs,
        n_groups=gc.n_groups,
        converged=outcome.converged,
        optimizer=best.route,
        fallback=fallback,
        boundary=outcome.singular is not None or outcome.site_singular is not None,
        warnings=recorder.texts(),
        vcov=pd.DataFrame(vcov, index=list(columns), columns=list(columns)),
        design_columns=columns,
        formula=prep.formula,
        group=group,
        random_slope=slope,
        df_method=df_method,
        theta=theta,
        sigma=sigma,
        n_excluded=prep.n_excluded,
        optimizer_trials=pd.DataFrame(
            {
                "route": [t.route for t in outcome.trials],
                "criterion": [t.criterion for t in outcome.trials],
                "converged": [t.converged for t in outcome.trials],
                "note": [t.note for t in outcome.trials],
            }
        ),
        varpar_vcov=varpar_vcov,
        vcov_jacobian=jac,
        design_info=prep.design_info,
        random_effects=pd.DataFrame(modes, index=pd.Index(levels, name=group), columns=re_names),
        fitted=fitted,
        residuals=prep.y - fitted,
        fit_seconds=time.perf_counter() - started,
        site=site,
        site_effects=site_effects,
    )


def _variance_table(
    theta: np.ndarray, sigma: float, q: int, group: str, slope: str | None, site: str | None
) -> pd.DataFrame:
    """Tidy variance components: random-effect variances, correlation, residual."""
    site_rows = []
    if site:
        site_var = (sigma * theta[-1]) ** 2
        site_rows = [(site, "(Intercept)", site_var, np.sqrt(site_var), np.nan)]
        theta = theta[:-1]
    lam = lambda_from_theta(theta, q)
    cov = sigma**2 * (lam @ lam.T)
    names = ["(Intercept)"] + ([slope] if slope else [])
    rows = []
    for j, name in enumerate(names):
        rows.append((group, name, cov[j, j], np.sqrt(cov[j, j]), np.nan))
    if q == 2:
        denom = np.sqrt(cov[0, 0] * cov[1, 1])
        corr = cov[0, 1] / denom if denom > 0 else np.nan
        rows.append((group, f"cor({names[0]}, {names[1]})", np.nan, np.nan, corr))
    rows = site_rows + rows
    rows.append(("Residual", "Residual", sigma**2, sigma, np.nan))
    return pd.DataFrame(rows, columns=["group", "term", "variance", "std_dev", "correlation"])
