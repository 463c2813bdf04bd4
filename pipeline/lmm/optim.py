"""Optimisation routes for :func:`pipeline.lmm.fit.fit_lmm` (SAP section 6).

Every route returns lme4's ``theta`` (relative Cholesky factor of the random-effects covariance)
and every route's optimum is scored by the same numpy criterion
(:meth:`pipeline.lmm.deviance.GroupedCrossproducts.profiled_deviance`), so that routes are
compared on equal terms and the best (RE)ML criterion is kept.

Routes (names accepted by ``fit_lmm(..., routes=...)``):

``"powell+bfgs"``
    statsmodels ``MixedLM.fit(method="powell")``, then ``method="bfgs"`` with ``gtol=1e-8``
    from that point (the strategy that reached lme4's optimum in every SAP benchmark).
``"lbfgs"``
    statsmodels ``MixedLM.fit(method="lbfgs")`` from statsmodels' default start.
``"numpy-powell"``
    scipy's bounded Powell on the profiled criterion over ``theta`` (diagonal >= 0) from
    lme4's default start (identity), a derivative-free route like lme4's bobyqa.
``"numpy-lbfgsb"``
    scipy's bounded L-BFGS-B on the same criterion from the same start, with the exact
    gradient (:meth:`pipeline.lmm.deviance.GroupedCrossproducts.criterion_and_gradient`):
    a few dozen evaluations where Powell needs hundreds. The engine's fast path
    (:data:`pipeline.lmm.fit.FAST_ROUTES`).

The best optimum is then polished by bounded L-BFGS-B on the same criterion (exact
gradient); the polished point is kept only when its criterion is not worse. At a boundary,
statsmodels' unbounded Cholesky parametrisation only approaches zero asymptotically; the
bounded polish reaches it. The ``numpy-lbfgsb`` route is not polished: it is that polish.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
from statsmodels.regression.mixed_linear_model import MixedLM

from pipeline.lmm.data import FORMULA_NAMESPACE, PreparedData, first_line, quote_name
from pipeline.lmm.deviance import (
    GroupedCrossproducts,
    NestedCrossproducts,
    lambda_from_theta,
    theta_from_relative_cov,
)
from pipeline.lmm.reuse import built, shared

__all__ = [
    "DEFAULT_ROUTES",
    "GRADIENT_TOL",
    "NUMPY_ROUTES",
    "ROUTES",
    "SINGULAR_TOL",
    "FitOutcome",
    "ModelFitError",
    "Trial",
    "WarningRecorder",
    "choose",
    "criterion_gradient",
    "fit_structure",
    "newton_refine",
    "numpy_gradient_route",
    "numpy_lbfgsb",
    "numpy_powell",
    "run_routes",
    "scaled_gradient",
    "singular_reason",
]

DEFAULT_ROUTES: tuple[str, ...] = ("powell+bfgs", "lbfgs", "numpy-powell")
"""Routes tried by default, in order of preference among equal optima."""

NUMPY_ROUTES: tuple[str, ...] = ("numpy-powell", "numpy-lbfgsb")
"""Routes that need no statsmodels model (the only ones for a site random intercept)."""

ROUTES: tuple[str, ...] = (*DEFAULT_ROUTES, "numpy-lbfgsb")
"""Every route name :func:`fit_structure` accepts."""

SINGULAR_TOL = 1e-4
"""lme4's ``isSingular`` tolerance on the diagonal of the relative Cholesky factor."""

GRADIENT_TOL = 2e-3
"""lme4's tolerance (0.002) on the Hessian-scaled gradient of the criterion at the optimum."""

_NEAR_BOUNDARY = 1e-3
"""Below this, a diagonal element of ``Lambda`` found on the log scale is finished with bounds."""

_NEWTON_DONE = 1e-6
"""A Newton step this small (relative to ``theta``) leaves an error of ~its square: stop."""

_WARM_NEWTON_STEPS = 8
"""Most Newton steps from a warm start before the route falls back to L-BFGS-B."""

_TIE_TOL = 1e-8
"""Criteria closer than this are equal optima; the earlier route wins."""


class ModelFitError(RuntimeError):
    """No optimisation route produced a usable fit."""


@dataclass
class Trial:
    """One optimisation route's result.

    Attributes
    ----------
    route : str
        Route name.
    theta : numpy.ndarray or None
        Optimum found (None when the route failed).
    criterion : float
        Profiled (RE)ML criterion at ``theta`` (``inf`` when the route failed).
    converged : bool
        The optimiser's own verdict (statsmodels' ``converged``; for numpy routes, lme4's
        gradient check at the end point, :func:`scaled_gradient`).
    note : str
        Error or optimiser message.
    """

    route: str
    theta: np.ndarray | None
    criterion: float
    converged: bool
    note: str = ""


@dataclass
class FitOutcome:
    """All routes for one random-effects structure and the verdict on the best.

    Attributes
    ----------
    trials : list of Trial
        Every route tried (and the polish when it was kept).
    best : Trial or None
        The chosen optimum, None when every route failed.
    converged : bool
        Some route reported convergence and ``best`` passes lme4's gradient check.
    singular : str or None
        Why the fit is singular (lme4's rule), or None.
    gradient_note : str or None
        Set when the gradient check at ``best`` failed.
    crossproducts : GroupedCrossproducts
        The data summaries the criterion was computed from.
    site_singular : str or None
        Set when a site random intercept has variance ~0 (nested model only).
    """

    trials: list[Trial]
    best: Trial | None
    converged: bool
    singular: str | None
    gradient_note: str | None
    crossproducts: GroupedCrossproducts = field(repr=False)
    site_singular: str | None = None


class WarningRecorder:
    """Collect warnings and notes with their source, in order; repeats are counted."""

    def __init__(self) -> None:
        self._items: dict[str, int] = {}

    @contextlib.contextmanager
    def record(self, source: str) -> Iterator[None]:
        """Record every warning raised inside the block (nothing is filtered).

        Parameters
        ----------
        source : str
            Prefix naming where the warnings came from.

        Yields
        ------
        None
            Control to the block.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for w in caught:
                    self.add(f"{source}: {w.category.__name__}: {w.message}")

    def add(self, text: str) -> None:
        """Record one note.

        Parameters
        ----------
        text : str
            The note.
        """
        self._items[text] = self._items.get(text, 0) + 1

    def texts(self) -> tuple[str, ...]:
        """Return the notes in order, repeats shown as ``(xN)``.

        Returns
        -------
        tuple of str
            The recorded notes.
        """
        return tuple(t if n == 1 else f"{t} (x{n})" for t, n in self._items.items())


@contextlib.contextmanager
def _patsy_engine() -> Iterator[None]:
    """Make statsmodels build formulas with patsy, as :func:`prepare_data` does."""
    import statsmodels.formula

    options = statsmodels.formula.options
    previous = options.formula_engine
    options.formula_engine = "patsy"
    try:
        yield
    finally:
        options.formula_engine = previous


def criterion_gradient(gc: GroupedCrossproducts, theta: np.ndarray, reml: bool) -> np.ndarray:
    """Gradient of the profiled criterion by a five-point central stencil (error O(h^4)).

    Parameters
    ----------
    gc : GroupedCrossproducts
        Data summaries.
    theta : numpy.ndarray
        Point of differentiation.
    reml : bool
        REML criterion or ML deviance.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``theta``.
    """
    theta = np.asarray(theta, dtype=float)
    grad = np.empty_like(theta)
    for k in range(theta.size):
        h = 1e-4 * max(1.0, abs(theta[k]))
        e = np.zeros_like(theta)
        e[k] = h
        f = [gc.profiled_deviance(theta + c * e, reml) for c in (-2.0, -1.0, 1.0, 2.0)]
        grad[k] = (f[0] - 8.0 * f[1] + 8.0 * f[2] - f[3]) / (12.0 * h)
    return grad


def _bounds(gc: GroupedCrossproducts) -> list[tuple[float | None, float | None]]:
    return [(0.0, None) if d else (None, None) for d in gc.theta_diagonal]


def _clip(gc: GroupedCrossproducts, theta: np.ndarray) -> np.ndarray:
    return np.where(gc.theta_diagonal, np.maximum(theta, 0.0), theta)


def scaled_gradient(gc: GroupedCrossproducts, theta: np.ndarray, reml: bool) -> float:
    """lme4's convergence measure: the largest gradient component scaled by the Hessian.

    As lme4's ``checkConv``: with ``H = R'R`` the Hessian of the criterion, the measure is
    ``max(min(|R^{-T} g|, |g|))`` over the parameters not held at a bound (raw gradient when
    ``H`` is not positive definite). An optimum passes when it is below
    :data:`GRADIENT_TOL`. The measure is remembered per ``theta``
    (``gc.cache``), so an optimum checked by its route is not checked again.

    The gradient is exact and the Hessian is central differences of it (lme4 differentiates
    the criterion twice numerically).

    Parameters
    ----------
    gc : GroupedCrossproducts
        Data summaries.
    theta : numpy.ndarray
        Candidate optimum.
    reml : bool
        REML criterion or ML deviance.

    Returns
    -------
    float
        The convergence measure (0 when every parameter is held at a bound).
    """
    theta = np.asarray(theta, dtype=float)
    key = ("scaled_gradient", theta.tobytes(), reml)
    if key not in gc.cache:
        gc.cache[key] = _scaled_gradient(gc, theta, reml)
    return gc.cache[key]


def _scaled_gradient(gc: GroupedCrossproducts, theta: np.ndarray, reml: bool) -> float:
    key = theta.tobytes()
    grad = gc.cache.get(("gradient", key, reml))
    if grad is None:
        grad = gc.criterion_and_gradient(theta, reml)[1]
    free = ~(gc.theta_diagonal & (theta <= 0) & (grad > 0))
    if not free.any():
        return 0.0
    g = grad[free]
    hess = gc.cache.get(("hessian", key, reml))
    if hess is None:
        hess = _gradient_jacobian(gc, theta, reml)
    hess = hess[np.ix_(free, free)]
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(hess), g)
    except np.linalg.LinAlgError:
        scaled = g
    return float(np.max(np.minimum(np.abs(scaled), np.abs(g))))


def _gradient_ok(gc: GroupedCrossproducts, theta: np.ndarray, reml: bool) -> bool:
    return scaled_gradient(gc, theta, reml) < GRADIENT_TOL


def numpy_powell(
    gc: GroupedCrossproducts, reml: bool, start: np.ndarray
) -> tuple[np.ndarray, bool, str]:
    """Bounded derivative-free Powell minimisation of the profiled criterion.

    Parameters
    ----------
    gc : GroupedCrossproducts
        Data summaries.
    reml : bool
        REML criterion or ML deviance.
    start : numpy.ndarray
        Starting ``theta``.

    Returns
    -------
    tuple
        ``(theta, converged, message)``; convergence is judged by lme4's gradient check
        (:func:`scaled_gradient`).
    """
    res = scipy.optimize.minimize(
        gc.profiled_deviance,
        _clip(gc, start),
        args=(reml,),
        method="Powell",
        bounds=_bounds(gc),
        options={"xtol": 1e-10, "ftol": 1e-14, "maxfev": 50_000},
    )
    theta = _clip(gc, res.x)
    return theta, _gradient_ok(gc, theta, reml), "" if res.success else f"Powell: {res.message}"


def numpy_lbfgsb(
    gc: GroupedCrossproducts, reml: bool, start: np.ndarray
) -> tuple[np.ndarray, bool, str]:
    """Bounded L-BFGS-B minimisation of the profiled criterion with its exact gradient.

    The ``numpy-lbfgsb`` route (from lme4's start) and the polish of every other route's
    optimum.

    Parameters
    ----------
    gc : GroupedCrossproducts
        Data summaries.
    reml : bool
        REML criterion or ML deviance.
    start : numpy.ndarray
        Starting ``theta``.

    Returns
    -------
    tuple
        ``(theta, converged, message)``; convergence is judged by lme4's gradient check
        (:func:`scaled_gradient`; L-BFGS-B may end on an abnormal line search once the
        criterion cannot decrease in floating point).
    """
    res = scipy.optimize.minimize(
        gc.criterion_and_gradient,
        _clip(gc, start),
        args=(reml,),
        jac=True,
        method="L-BFGS-B",
        bounds=_bounds(gc),
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-7},
    )
    theta = _clip(gc, res.x)
    return theta, _gradient_ok(gc, theta, reml), "" if res.success else f"L-BFGS-B: {res.message}"


def numpy_gradient_route(
    gc: GroupedCrossproducts, reml: bool, start: np.ndarray, warm: bool = False
) -> tuple[np.ndarray, bool, str]:
    """Run the ``numpy-lbfgsb`` route: L-BFGS-B with the exact gradient, in two phases.

    From a warm start (the optimum of a closely related fit: the REML fit for its ML refit, the
    full model for a reduced one), Newton's method is tried first: from a point that close it
    converges in two or three steps (about seven evaluations each), where L-BFGS-B, which
    starts from an identity Hessian, spends 10-40 evaluations finding the criterion's scale.
    Its optimum is kept only when Newton converged and it passes the gradient check;
    otherwise the route goes on as from any start, from the better of the two points.

    The criterion is even in the last diagonal element of ``Lambda`` (flipping the sign of a
    column of ``Lambda`` leaves ``Lambda Lambda'`` unchanged), so its gradient there is 0 at
    the bound 0: a bounded gradient method that lands on the bound stays there, at a saddle,
    even when the optimum is inside. Phase 1 therefore works on ``log`` of the diagonal
    (unbounded, the bound never reached); phase 2 finishes with bounded L-BFGS-B on
    ``theta`` itself (:func:`numpy_lbfgsb`), which reaches an optimum on the boundary
    exactly; it runs only when phase 1 ends near the boundary (a diagonal element below
    1e-3) or its optimum fails the gradient check. An interior optimum is then refined by
    Newton steps (:func:`newton_refine`).

    Parameters
    ----------
    gc : GroupedCrossproducts
        Data summaries.
    reml : bool
        REML criterion or ML deviance.
    start : numpy.ndarray
        Starting ``theta`` (diagonal elements below 1e-4 start at 1e-4).
    warm : bool, default False
        ``start`` is a related fit's optimum: try Newton's method from it first.

    Returns
    -------
    tuple
        ``(theta, converged, message)`` as :func:`numpy_lbfgsb`.
    """
    diag = gc.theta_diagonal
    if warm:
        newton = newton_refine(gc, reml, start, max_steps=_WARM_NEWTON_STEPS)
        if ("hessian", newton.tobytes(), reml) in gc.cache and _gradient_ok(gc, newton, reml):
            return newton, True, ""
        start = newton  # (Newton keeps a step only when it lowers the criterion)

    def to_theta(u: np.ndarray) -> np.ndarray:
        return np.where(diag, np.exp(np.clip(u, -40.0, 40.0)), u)

    def on_log_scale(u: np.ndarray) -> tuple[float, np.ndarray]:
        theta = to_theta(u)
        crit, grad = gc.criterion_and_gradient(theta, reml)
        return crit, np.where(diag, grad * theta, grad)

    start = np.asarray(start, dtype=float)
    u0 = np.where(diag, np.log(np.maximum(start, 1e-4)), start)
    first = scipy.optimize.minimize(
        on_log_scale,
        u0,
        jac=True,
        method="L-BFGS-B",
        # Newton finishes from here (quadratic convergence), so L-BFGS-B need not creep on
        options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-6},
    )
    theta = to_theta(first.x)
    note = ""
    if np.all(theta[diag] >= _NEAR_BOUNDARY):
        theta = newton_refine(gc, reml, theta)
        if _gradient_ok(gc, theta, reml):
            return theta, True, note
    polished, _, note = numpy_lbfgsb(gc, reml, theta)
    if gc.profiled_deviance(polished, reml) <= gc.profiled_deviance(theta, reml):
        theta = newton_refine(gc, reml, polished)
    return theta, _gradient_ok(gc, theta, reml), note


def _gradient_jacobian(
    gc: GroupedCrossproducts, theta: np.ndarray, reml: bool, gradient: np.ndarray | None = None
) -> np.ndarray:
    """Hessian of the criterion: differences of its exact gradient, symmetrised.

    Central differences (two gradients per parameter, error ~1e-10 relative); forward ones
    from ``gradient``, the gradient at ``theta`` when at hand (one per parameter, error
    ~1e-5 relative: enough to steer Newton's method, whose last step then leaves an error
    of ~1e-5 of a step already below 1e-6).
    """
    steps = 1e-5 * np.maximum(np.abs(theta), 0.1)
    hess = np.empty((theta.size, theta.size))
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = steps[k]
        if gradient is not None:
            hess[k] = (gc.criterion_and_gradient(theta + e, reml)[1] - gradient) / steps[k]
            continue
        hess[k] = (
            gc.criterion_and_gradient(theta + e, reml)[1]
            - gc.criterion_and_gradient(theta - e, reml)[1]
        ) / (2.0 * steps[k])
    return 0.5 * (hess + hess.T)


def newton_refine(
    gc: GroupedCrossproducts, reml: bool, theta: np.ndarray, max_steps: int = 6
) -> np.ndarray:
    """Refine an interior optimum by Newton steps on the exact gradient.

    A quasi-Newton or derivative-free optimiser leaves ``theta`` uncertain in about its 7th
    digit (the criterion is flat to ~1e-10 there), so the estimates would depend on the
    optimiser's path. The gradient is exact, so Newton's method (Hessian by forward
    differences of the gradient, one gradient per parameter) drives it to ~0 and fixes
    ``theta`` to ~1e-11. A step is kept
    only while it lowers the gradient's norm and keeps every diagonal element of ``Lambda``
    positive; an optimum on the boundary is left as it is. Once a step is below 1e-6 (the
    error is then ~its square), the refinement stops and its last Hessian and gradient are
    left in ``gc.cache`` for the gradient check (:func:`scaled_gradient`).

    Parameters
    ----------
    gc : GroupedCrossproducts
        Data summaries.
    reml : bool
        REML criterion or ML deviance.
    theta : numpy.ndarray
        An optimum found by L-BFGS-B.
    max_steps : int, default 6
        Most Newton steps.

    Returns
    -------
    numpy.ndarray
        The refined ``theta`` (``theta`` itself when no step helped).
    """
    theta = np.asarray(theta, dtype=float)
    if np.any(theta[gc.theta_diagonal] < SINGULAR_TOL):
        return theta
    crit, grad = gc.criterion_and_gradient(theta, reml)
    for _ in range(max_steps):
        hessian = _gradient_jacobian(gc, theta, reml, grad)
        try:  # not positive definite: stop
            chol = np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError:
            break
        delta = np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
        candidate = theta - delta
        if np.any(candidate[gc.theta_diagonal] <= 0):
            break
        new_crit, new_grad = gc.criterion_and_gradient(candidate, reml)
        if not (
            np.linalg.norm(new_grad) < np.linalg.norm(grad)
            and new_crit <= crit + 1e-11 * max(1.0, abs(crit))  # the criterion's rounding
        ):
            break
        theta, crit, grad = candidate, new_crit, new_grad
        if np.max(np.abs(delta)) <= _NEWTON_DONE * (1.0 + np.max(np.abs(theta))):
            # converged to ~|delta|^2; this Hessian (|delta| away) serves the gradient check
            gc.cache[("hessian", theta.tobytes(), reml)] = hessian
            gc.cache[("gradient", theta.tobytes(), reml)] = grad
            break
    return theta


def _sm_theta(result: object) -> np.ndarray:
    return theta_from_relative_cov(np.asarray(result.cov_re_unscaled, dtype=float))


RouteFunction = Callable[[], tuple[np.ndarray, bool, str]]


def _route_functions(
    model: Callable[[], MixedLM],
    gc: GroupedCrossproducts,
    reml: bool,
    start: np.ndarray | None = None,
) -> dict[str, RouteFunction]:
    def powell_bfgs() -> tuple[np.ndarray, bool, str]:
        first = model().fit(reml=reml, method="powell")
        second = model().fit(reml=reml, method="bfgs", start_params=_sm_theta(first), gtol=1e-8)
        return _sm_theta(second), bool(second.converged), ""

    def lbfgs() -> tuple[np.ndarray, bool, str]:
        res = model().fit(reml=reml, method="lbfgs")
        return _sm_theta(res), bool(res.converged), ""

    default = np.where(gc.theta_diagonal, 1.0, 0.0)  # lme4's default start
    warm = default
    if start is not None and np.shape(start) == default.shape and np.all(np.isfinite(start)):
        warm = np.asarray(start, dtype=float)

    def powell_numpy() -> tuple[np.ndarray, bool, str]:
        return numpy_powell(gc, reml, default)  # an independent check: always lme4's start

    def lbfgsb_numpy() -> tuple[np.ndarray, bool, str]:
        return numpy_gradient_route(gc, reml, warm, warm=warm is not default)

    return {
        "powell+bfgs": powell_bfgs,
        "lbfgs": lbfgs,
        "numpy-powell": powell_numpy,
        "numpy-lbfgsb": lbfgsb_numpy,
    }


def run_routes(
    model: Callable[[], MixedLM],
    gc: GroupedCrossproducts,
    reml: bool,
    routes: Sequence[str],
    recorder: WarningRecorder,
    label: str,
    earlier: Sequence[Trial] = (),
    start: np.ndarray | None = None,
) -> list[Trial]:
    """Run each route, then polish the best optimum.

    Parameters
    ----------
    model : callable
        Returns the statsmodels MixedLM model (built on first use, for the statsmodels routes).
    gc : GroupedCrossproducts
        Data summaries (criterion of every route, numpy routes).
    reml : bool
        REML or ML.
    routes : sequence of str
        Route names (see the module docstring).
    recorder : WarningRecorder
        Receives every warning, prefixed with ``label`` and the route.
    label : str
        Name of the random-effects structure, e.g. ``"(1 + weeks | patient)"``.
    earlier : sequence of Trial
        Trials of routes already run (escalation); they compete for the best optimum.
    start : numpy.ndarray, optional
        Starting ``theta`` of the ``numpy-lbfgsb`` route (default, and when its length does
        not fit: lme4's start). The other routes start where they always do.

    Returns
    -------
    list of Trial
        ``earlier``, then one per route, plus ``"<best>+polish"`` when polishing moved the
        optimum.
    """
    functions = _route_functions(model, gc, reml, start)
    trials: list[Trial] = list(earlier)
    for route in routes:
        source = f"{label} [{route}]"
        try:
            with recorder.record(source):
                theta, converged, note = functions[route]()
            crit = gc.profiled_deviance(theta, reml)
        except Exception as exc:  # any optimiser failure is recorded, and the next route tried
            recorder.add(f"{source}: failed with {type(exc).__name__}: {first_line(exc)}")
            trials.append(Trial(route, None, np.inf, False, f"{type(exc).__name__}: {exc}"))
            continue
        trials.append(Trial(route, theta, crit, converged, note))

    best = choose(trials)
    # the numpy-lbfgsb route already is the polish (L-BFGS-B with the exact gradient)
    if best is not None and best.route != "numpy-lbfgsb":
        source = f"{label} [polish]"
        try:
            with recorder.record(source):
                theta, ok, note = numpy_lbfgsb(gc, reml, best.theta)
            crit = gc.profiled_deviance(theta, reml)
        except Exception as exc:  # the polish is optional; record and keep the best route
            recorder.add(f"{source}: failed with {type(exc).__name__}: {first_line(exc)}")
        else:
            if crit <= best.criterion + 1e-10 and np.max(np.abs(theta - best.theta)) > 1e-7:
                trials.append(
                    Trial(f"{best.route}+polish", theta, crit, best.converged or ok, note)
                )
    return trials


def choose(trials: Sequence[Trial]) -> Trial | None:
    """Pick the best criterion; a polished optimum wins ties, then the earlier route.

    Parameters
    ----------
    trials : sequence of Trial
        Candidate optima.

    Returns
    -------
    Trial or None
        The chosen optimum, None when no trial has a finite criterion.
    """
    finite = [t for t in trials if np.isfinite(t.criterion)]
    if not finite:
        return None
    best_crit = min(t.criterion for t in finite)
    ties = [t for t in finite if t.criterion <= best_crit + _TIE_TOL]
    polished = [t for t in ties if t.route.endswith("+polish")]
    return polished[0] if polished else ties[0]


def singular_reason(theta: np.ndarray, q: int, names: Sequence[str], sigma: float) -> str | None:
    """Describe why a fit is singular by lme4's rule, or return None.

    A fit is singular when a diagonal element of the relative Cholesky factor is below
    :data:`SINGULAR_TOL`: that random effect's variance is ~0, or it is perfectly correlated
    with the random effect before it.

    Parameters
    ----------
    theta : numpy.ndarray
        lme4's relative Cholesky parameters.
    q : int
        Number of random effects.
    names : sequence of str
        Random-effect names, for the message.
    sigma : float
        Residual standard deviation (to report standard deviations on the data scale).

    Returns
    -------
    str or None
        A short description with the estimates, or None when the fit is not singular.
    """
    lam = lambda_from_theta(theta, q)
    cov = sigma**2 * (lam @ lam.T)
    sd = np.sqrt(np.diag(cov))
    parts = []
    for j in range(q):
        if lam[j, j] >= SINGULAR_TOL:
            continue
        if j == 0 or lam[j, j - 1] == 0 or sd[0] == 0:
            parts.append(f"the {names[j]} variance is ~0 (SD {sd[j]:.3g})")
        else:
            corr = cov[j, 0] / (sd[j] * sd[0])
            parts.append(
                f"the {names[j]} (SD {sd[j]:.3g}) is perfectly correlated ({corr:+.0f}) with "
                f"the {names[0]}"
            )
    return "; ".join(parts) if parts else None


def _crossproducts(
    prep: PreparedData, z: np.ndarray, random_slope: str | None
) -> GroupedCrossproducts:
    """Return the per-group cross products, sliced from the full design's when at hand.

    A reduced design made of some of a full design's columns (``prep.within``, see
    :func:`pipeline.lmm.data.design_within`) takes its summaries from the full design's, when
    those were built in this scope with the same random effects.
    """
    if prep.within is not None:
        full, columns = prep.within
        for key, value in built(full):
            if key == ("crossproducts", random_slope):
                return value.columns(columns)
    return GroupedCrossproducts(prep.y, prep.x.to_numpy(), z, prep.codes)


def fit_structure(
    prep: PreparedData,
    group: str,
    random_slope: str | None,
    reml: bool,
    routes: Sequence[str],
    recorder: WarningRecorder,
    escalate: Sequence[str] = (),
    start: np.ndarray | None = None,
) -> FitOutcome:
    """Fit one random-effects structure with every route and check the chosen optimum.

    Parameters
    ----------
    prep : PreparedData
        Validated data and design.
    group : str
        Grouping column.
    random_slope : str or None
        Random-slope column, or None for a random intercept only.
    reml : bool
        REML or ML.
    routes : sequence of str
        Route names.
    recorder : WarningRecorder
        Receives every warning.
    escalate : sequence of str
        Further routes run only when the best optimum of ``routes`` fails the gradient check,
        no route converged, or the fit is singular (to confirm a boundary with a second,
        independent optimiser).
    start : numpy.ndarray, optional
        Starting ``theta`` of the ``numpy-lbfgsb`` route (see :func:`run_routes`).

    Returns
    -------
    FitOutcome
        Trials, the chosen optimum and its diagnostics.

    Raises
    ------
    ModelFitError
        If statsmodels builds a different fixed-effect design than the validated one.
    """
    label = f"(1 + {random_slope} | {group})" if random_slope else f"(1 | {group})"
    z = np.ones((len(prep.y), 2 if random_slope else 1))
    if random_slope:
        z[:, 1] = prep.frame[random_slope].to_numpy(dtype=float)
    if prep.site_codes is not None:
        # statsmodels cannot fit a site intercept with correlated patient effects: numpy only
        gc = shared(
            prep,
            ("nested crossproducts", random_slope),
            lambda: NestedCrossproducts(prep.y, prep.x.to_numpy(), z, prep.codes, prep.site_codes),
        )
        numpy_routes = [r for r in routes if r in NUMPY_ROUTES] or ["numpy-powell"]
        escalate = [r for r in escalate if r in NUMPY_ROUTES and r not in numpy_routes]
        routes = numpy_routes
        label = f"(1 | site) + {label}"
    else:  # the same summaries serve REML and ML (lmm.reuse scope)
        gc = shared(
            prep, ("crossproducts", random_slope), lambda: _crossproducts(prep, z, random_slope)
        )
    built: list[MixedLM] = []

    def model() -> MixedLM:
        if not built:
            built.append(_statsmodels_model(prep, group, random_slope, recorder, label))
        return built[0]

    trials = run_routes(model, gc, reml, routes, recorder, label, start=start)
    outcome = _judge(trials, gc, reml, random_slope, label)
    extra = [r for r in escalate if r not in routes]
    if extra and (not outcome.converged or outcome.singular):
        trials = run_routes(model, gc, reml, extra, recorder, label, earlier=trials)
        outcome = _judge(trials, gc, reml, random_slope, label)
    return outcome


def _statsmodels_model(
    prep: PreparedData,
    group: str,
    random_slope: str | None,
    recorder: WarningRecorder,
    label: str,
) -> MixedLM:
    """Build statsmodels' MixedLM for the statsmodels routes; check it has the same design."""
    re_formula = f"~ {quote_name(random_slope)}" if random_slope else None
    with _patsy_engine(), recorder.record(f"{label} [model setup]"):
        model = MixedLM.from_formula(
            prep.formula,
            prep.frame,
            re_formula=re_formula,
            groups=prep.frame[group].to_numpy(),
            eval_env=dict(FORMULA_NAMESPACE),
        )
    if list(model.exog_names) != list(prep.x.columns) or not np.allclose(
        model.exog, prep.x.to_numpy()
    ):
        raise ModelFitError("statsmodels built a different fixed-effect design than patsy.")
    return model


def _judge(
    trials: list[Trial],
    gc: GroupedCrossproducts,
    reml: bool,
    random_slope: str | None,
    label: str,
) -> FitOutcome:
    """Choose the best trial and check it: lme4's gradient check and singularity rule."""
    best = choose(trials)
    if best is None:
        return FitOutcome(trials, None, False, None, None, gc)
    measure = scaled_gradient(gc, best.theta, reml)
    grad_ok = measure < GRADIENT_TOL
    note = None
    if not grad_ok:
        note = (
            f"{label}: the best optimum found fails lme4's gradient check "
            f"(scaled gradient {measure:.2g} > {GRADIENT_TOL})"
        )
    converged = grad_ok and any(t.converged for t in trials if np.isfinite(t.criterion))
    names = ["intercept"] + ([f"{random_slope} slope"] if random_slope else [])
    sigma = gc.sigma_hat(best.theta, reml)
    nested = isinstance(gc, NestedCrossproducts)
    patient_theta = best.theta[:-1] if nested else best.theta
    singular = singular_reason(patient_theta, gc.q, names, sigma)
    site_singular = None
    if nested and best.theta[-1] < SINGULAR_TOL:
        site_singular = f"the site intercept variance is ~0 (SD {sigma * best.theta[-1]:.3g})"
    return FitOutcome(trials, best, converged, singular, note, gc, site_singular)
