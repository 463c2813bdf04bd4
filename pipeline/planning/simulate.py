"""Power by simulation: draw the next study many times and fit the report's own model to each.

Each simulated study draws patients from the assumed model (random intercept and slope per
patient, residual error, the group difference growing linearly from 0 at baseline to the
assumed effect at the primary week), lets them drop out (monotone, completely at random, with
each group's probability per visit), and fits the analysis the report runs with the pipeline's
engine (:func:`pipeline.lmm.fit.fit_lmm`: REML, lme4's criterion, the fast route
:data:`~pipeline.lmm.fit.FAST_ROUTES` escalating to every route when its optimum is not
verified or is singular, the fallback to a random intercept when the slope variance is at the
boundary, Satterthwaite degrees of freedom):

* ``slope``: ``y ~ weeks * group + (1 + weeks | patient)``, the trajectory model; the test is
  the ``weeks:group`` coefficient (the difference in slope);
* ``visit``: ``y ~ baseline + visit * group + (1 | patient)`` on the post-baseline visits (the
  random-intercept change-from-baseline model, SAP §4.2); the test is the group difference at
  the primary visit. (The MMRM of SAP §4.6 is its planned successor; the analytic Lu–Luo–Chen
  variance is that of the MMRM.)

The study's baseline covariates are not simulated (the variance components from a study are
those left after adjusting for them), and the intercept and the reference group's slope are 0:
the REML fit is equivariant in the fixed effects, so they change no test.

What does not change between the simulated studies of one size (the design matrix of the full
schedule, its patsy design information, the contrast vector, the Cholesky factor of the
random effects) is built once (:class:`Setup`); each study only draws the responses and the
dropout and hands the engine the rows kept (``fit_lmm(..., prepared=...)``), so patsy runs once
per size instead of once per study.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy

from pipeline.lmm.data import ModelDataError, PreparedData, prepare_data
from pipeline.lmm.fit import DEFAULT_ROUTES, FAST_ROUTES, fit_lmm
from pipeline.lmm.optim import ModelFitError
from pipeline.planning.design import Assumptions, Design

__all__ = [
    "SCENARIOS",
    "SIMULATION_COLUMNS",
    "Setup",
    "build_setup",
    "run_simulations",
    "simulate_once",
    "summarise",
]

SCENARIOS = {"effect": 0, "null": 1}
"""Scenario names and their code in the seed (the null has the effect set to 0)."""

SIMULATION_COLUMNS = [
    "scenario",
    "n_total",
    "sim",
    "n_obs",
    "estimate",
    "std_err",
    "df",
    "p_value",
    "ci_half_width",
    "reject",
    "converged",
    "fallback",
    "boundary",
    "failed",
    "fit_seconds",
]
CHUNK = 25
"""Simulated studies per job handed to a worker process."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Setup:
    """Everything about one study size that stays the same from one simulated study to the next.

    Attributes
    ----------
    design : Design
        The design.
    assumptions : Assumptions
        The assumptions (effect possibly 0 for the null).
    n_total : int
        Patients in both groups.
    compared : numpy.ndarray
        Per patient, 1 in the compared group.
    template : PreparedData
        Validated design of the full schedule (every patient at every analysed visit).
    row_patient, row_visit : numpy.ndarray
        Patient and visit index (in the schedule) of each template row.
    contrast : numpy.ndarray
        Contrast vector of the tested quantity.
    chol : numpy.ndarray
        Cholesky factor of the random-effects covariance.
    cum_shares : tuple of numpy.ndarray
        Cumulative share of patients whose last visit is at most ``k``, per group.
    rhs : str
        Fixed-effect formula.
    random_slope : str or None
        Random slope of the model.
    baseline_column : int or None
        Design column of the baseline value (visit analysis), refreshed every study.
    """

    design: Design
    assumptions: Assumptions
    n_total: int
    compared: np.ndarray
    template: PreparedData
    row_patient: np.ndarray
    row_visit: np.ndarray
    contrast: np.ndarray
    chol: np.ndarray
    cum_shares: tuple[np.ndarray, np.ndarray]
    rhs: str
    random_slope: str | None
    baseline_column: int | None


def _group_labels(design: Design, compared: np.ndarray) -> pd.Categorical:
    values = np.where(compared == 1, design.compared, design.reference)
    return pd.Categorical(values, categories=[design.reference, design.compared])


def _design_rows(template: PreparedData, rows: pd.DataFrame) -> np.ndarray:
    (mat,) = patsy.build_design_matrices([template.design_info], rows, NA_action="raise")
    return np.asarray(mat, dtype=float)


def build_setup(design: Design, assumptions: Assumptions, n_total: int) -> Setup:
    """Build what one study size needs once: template design, contrast, random-effect factor.

    Parameters
    ----------
    design : Design
        The design.
    assumptions : Assumptions
        The assumptions.
    n_total : int
        Patients in both groups.

    Returns
    -------
    Setup
        Ready for :func:`simulate_once`.
    """
    n_a, n_b = design.group_sizes(n_total)
    compared = np.r_[np.zeros(n_a, dtype=int), np.ones(n_b, dtype=int)]
    weeks = np.asarray(design.weeks, dtype=float)
    first = 0 if design.analysis == "slope" else 1
    visits = np.arange(first, weeks.size)
    row_patient = np.repeat(np.arange(n_total), visits.size)
    row_visit = np.tile(visits, n_total)
    filler = np.random.default_rng(0).standard_normal(row_patient.size)  # not constant
    frame = pd.DataFrame(
        {
            "patient": row_patient,
            "weeks": weeks[row_visit],
            "group": _group_labels(design, compared[row_patient]),
            "y": filler,
        }
    )
    levels = [design.reference, design.compared]
    if design.analysis == "slope":
        rhs, slope = "weeks * group", "weeks"
        template = prepare_data(frame, "y", rhs, "patient", slope)
        grid = pd.DataFrame(
            {
                "weeks": [1.0, 0.0, 1.0, 0.0],
                "group": pd.Categorical([levels[1], levels[1], levels[0], levels[0]], levels),
            }
        )
        rows = _design_rows(template, grid)
        contrast = rows[0] - rows[1] - rows[2] + rows[3]
        baseline_column = None
    else:
        rhs, slope = "baseline + visit * group", None
        frame["visit"] = pd.Categorical(row_visit, categories=list(visits))
        frame["baseline"] = np.random.default_rng(1).standard_normal(row_patient.size)
        template = prepare_data(frame, "y", rhs, "patient", slope)
        grid = pd.DataFrame(
            {
                "baseline": [0.0, 0.0],
                "visit": pd.Categorical([design.primary_visit] * 2, categories=list(visits)),
                "group": pd.Categorical([levels[1], levels[0]], levels),
            }
        )
        rows = _design_rows(template, grid)
        contrast = rows[0] - rows[1]
        baseline_column = list(template.x.columns).index("baseline")
    a = assumptions
    cov01 = a.correlation * a.sd_intercept * a.sd_slope
    g = np.array([[a.sd_intercept**2, cov01], [cov01, a.sd_slope**2]])
    values, vectors = np.linalg.eigh(g)  # a factor that also holds at a boundary (SD 0, |r| 1)
    chol = vectors * np.sqrt(np.maximum(values, 0.0))
    shares = []
    for group in ("reference", "compared"):
        retention = np.r_[a.retention(group), 0.0]
        shares.append(np.cumsum(retention[:-1] - retention[1:]))
    return Setup(
        design=design,
        assumptions=assumptions,
        n_total=n_total,
        compared=compared,
        template=template,
        row_patient=row_patient,
        row_visit=row_visit,
        contrast=contrast,
        chol=chol,
        cum_shares=(shares[0], shares[1]),
        rhs=rhs,
        random_slope=slope,
        baseline_column=baseline_column,
    )


def _draw(setup: Setup, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes at every visit ``(n, J)``, the last visit of each patient, and the baseline."""
    design, a = setup.design, setup.assumptions
    weeks = np.asarray(design.weeks, dtype=float)
    n = setup.n_total
    effects = rng.standard_normal((n, 2)) @ setup.chol.T
    slope_difference = a.effect / design.primary_week
    mean = np.outer(setup.compared * slope_difference, weeks)
    y = (
        mean
        + effects[:, :1]
        + effects[:, 1:] * weeks[None, :]
        + a.sd_residual * rng.standard_normal((n, weeks.size))
    )
    u = rng.random(n)
    last = np.where(
        setup.compared == 1,
        np.searchsorted(setup.cum_shares[1], u, side="right"),
        np.searchsorted(setup.cum_shares[0], u, side="right"),
    )
    last = np.minimum(last, weeks.size - 1)
    return y, last, y[:, 0]


def simulate_once(setup: Setup, rng: np.random.Generator) -> dict:
    """Draw one study and fit the report's model to it.

    Parameters
    ----------
    setup : Setup
        From :func:`build_setup`.
    rng : numpy.random.Generator
        Random source of this study.

    Returns
    -------
    dict
        ``n_obs, estimate, std_err, df, p_value, ci_half_width, reject, converged, fallback,
        boundary, failed, fit_seconds`` (``failed`` holds why the model could not be fitted;
        such a study counts as not rejecting).
    """
    y, last, baseline = _draw(setup, rng)
    keep = setup.row_visit <= last[setup.row_patient]
    out = {"n_obs": int(keep.sum()), "failed": ""}
    template = setup.template
    x = template.x.to_numpy()[keep]
    if setup.baseline_column is not None:
        x = x.copy()
        x[:, setup.baseline_column] = baseline[setup.row_patient[keep]]
    kept_patients, codes = np.unique(template.codes[keep], return_inverse=True)
    n_groups = kept_patients.size
    per_patient = 2 if setup.random_slope else 1
    if n_groups < 3 or keep.sum() <= per_patient * n_groups:
        return _failed(out, "too few patients or visits left after dropout")
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return _failed(out, "a design column is empty after dropout (rank-deficient design)")
    prepared = PreparedData(
        frame=template.frame.loc[keep],
        formula=template.formula,
        x=pd.DataFrame(x, columns=template.x.columns),
        y=y[setup.row_patient[keep], setup.row_visit[keep]],
        codes=codes,
        n_excluded=0,
        design_info=template.design_info,
    )
    try:
        fit = fit_lmm(
            template.frame,
            "y",
            setup.rhs,
            "patient",
            random_slope=setup.random_slope,
            routes=FAST_ROUTES,
            escalate=DEFAULT_ROUTES,
            prepared=prepared,
        )
    except (ModelDataError, ModelFitError, np.linalg.LinAlgError) as exc:
        return _failed(out, f"{type(exc).__name__}: {exc}")
    row = fit.contrast(setup.contrast).iloc[0]
    alpha = setup.design.alpha_test
    out.update(
        estimate=float(row["estimate"]),
        std_err=float(row["std_err"]),
        df=float(row["df"]),
        p_value=float(row["p_value"]),
        ci_half_width=float(row["ci_high"] - row["ci_low"]) / 2.0,
        reject=bool(row["p_value"] < alpha),
        converged=bool(fit.converged),
        fallback=fit.fallback is not None,
        boundary=bool(fit.boundary),
        fit_seconds=float(fit.fit_seconds),
    )
    return out


def _failed(out: dict, reason: str) -> dict:
    return {
        **out,
        "estimate": np.nan,
        "std_err": np.nan,
        "df": np.nan,
        "p_value": np.nan,
        "ci_half_width": np.nan,
        "reject": False,
        "converged": False,
        "fallback": False,
        "boundary": False,
        "failed": reason,
        "fit_seconds": np.nan,
    }


def _rng(seed: int, scenario: str, n_total: int, sim: int) -> np.random.Generator:
    """One independent stream per (scenario, size, study): results do not depend on workers."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(SCENARIOS[scenario], n_total, sim))
    )


def _chunk(job: tuple[Design, Assumptions, str, int, int, int, int]) -> list[dict]:
    design, assumptions, scenario, n_total, start, stop, seed = job
    if scenario == "null":
        assumptions = assumptions.with_effect(0.0)
    setup = build_setup(design, assumptions, n_total)
    rows = []
    for sim in range(start, stop):
        result = simulate_once(setup, _rng(seed, scenario, n_total, sim))
        rows.append({"scenario": scenario, "n_total": n_total, "sim": sim, **result})
    return rows


def run_simulations(
    design: Design,
    assumptions: Assumptions,
    sizes: Sequence[int],
    sims: int,
    seed: int = 2026,
    *,
    null_sizes: Sequence[int] = (),
    workers: int = 1,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Simulate ``sims`` studies at each size (and under the null at ``null_sizes``).

    Parameters
    ----------
    design : Design
        The design.
    assumptions : Assumptions
        The assumptions (the effect scenario).
    sizes : sequence of int
        Total patients of each point of the curve.
    sims : int
        Studies per point.
    seed : int
        Root seed.
    null_sizes : sequence of int
        Sizes at which the null (effect 0) is simulated too, for the type-I error.
    workers : int
        Processes (1: in this process). On two cores two workers nearly halve the time.
    progress : callable, optional
        ``progress(done, total)`` after each chunk of studies.

    Returns
    -------
    pandas.DataFrame
        One row per simulated study, columns :data:`SIMULATION_COLUMNS`.
    """
    jobs = [
        (design, assumptions, scenario, int(n), start, min(start + CHUNK, sims), seed)
        for scenario, ns in (("effect", sizes), ("null", null_sizes))
        for n in ns
        for start in range(0, sims, CHUNK)
    ]
    total = sims * (len(sizes) + len(null_sizes))
    rows: list[dict] = []
    done = 0
    if workers <= 1:
        for job in jobs:
            rows += _chunk(job)
            done += job[5] - job[4]
            if progress:
                progress(done, total)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending = {pool.submit(_chunk, job) for job in jobs}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    part = future.result()
                    rows += part
                    done += len(part)
                    if progress:
                        progress(done, total)
    frame = pd.DataFrame(rows, columns=SIMULATION_COLUMNS)
    return frame.sort_values(["scenario", "n_total", "sim"], ignore_index=True)


def summarise(simulations: pd.DataFrame) -> pd.DataFrame:
    """Power (or type-I error) with its Monte Carlo SE and what the fits looked like, per size.

    Parameters
    ----------
    simulations : pandas.DataFrame
        From :func:`run_simulations`.

    Returns
    -------
    pandas.DataFrame
        One row per ``scenario, n_total``: ``sims, rejections, rejection_rate, mc_se,
        mean_estimate, sd_estimate, mean_std_err, median_ci_half_width, share_failed,
        share_fallback, share_boundary, share_not_converged, mean_fit_seconds``. A study whose
        model could not be fitted counts as not rejecting.
    """
    rows = []
    for (scenario, n_total), part in simulations.groupby(["scenario", "n_total"], sort=True):
        ok = part.loc[part["failed"] == ""]
        rate = float(part["reject"].mean())
        rows.append(
            {
                "scenario": scenario,
                "n_total": int(n_total),
                "sims": len(part),
                "rejections": int(part["reject"].sum()),
                "rejection_rate": rate,
                "mc_se": float(np.sqrt(rate * (1.0 - rate) / len(part))),
                "mean_estimate": float(ok["estimate"].mean()),
                "sd_estimate": float(ok["estimate"].std(ddof=1)),
                "mean_std_err": float(ok["std_err"].mean()),
                "median_ci_half_width": float(ok["ci_half_width"].median()),
                "share_failed": float((part["failed"] != "").mean()),
                "share_fallback": float(ok["fallback"].mean()) if len(ok) else np.nan,
                "share_boundary": float(ok["boundary"].mean()) if len(ok) else np.nan,
                "share_not_converged": float((~ok["converged"].astype(bool)).mean())
                if len(ok)
                else np.nan,
                "mean_fit_seconds": float(ok["fit_seconds"].mean()),
            }
        )
    return pd.DataFrame(rows)


def default_workers() -> int:
    """Worker processes by default: the cores this process may use, at most 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 2))
