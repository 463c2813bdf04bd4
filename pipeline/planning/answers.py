"""The planning questions answered analytically and by simulation, side by side.

:func:`plan_study` takes a :class:`~pipeline.planning.design.Design` and its
:class:`~pipeline.planning.design.Assumptions` and answers: the power at the planned number of
patients, the number of patients for the target power, the smallest effect detectable at the
planned number, and the expected half-width of the 95 % confidence interval — each by the
published formula (:mod:`pipeline.planning.analytic`) and by simulating the report's own model
(:mod:`pipeline.planning.simulate`, with Monte Carlo standard errors) — plus the power curve
and the type-I error of the simulated analysis under the null.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.planning import analytic, simulate
from pipeline.planning.design import Assumptions, Design

__all__ = [
    "ANSWER_COLUMNS",
    "CURVE_COLUMNS",
    "PlanResult",
    "analytic_contrast",
    "contrast_effect",
    "contrast_unit",
    "interpolate_n",
    "plan_study",
]

ANSWER_COLUMNS = ["question", "method", "value", "mc_se", "unit", "n_total", "note"]
CURVE_COLUMNS = [
    "n_total",
    "n_reference",
    "n_compared",
    "power_analytic_z",
    "power_analytic_t",
    "power_simulated",
    "mc_se",
    "sims",
    "share_failed",
    "share_fallback",
    "share_boundary",
    "mean_fit_seconds",
]
TYPE_ONE_COLUMNS = ["n_total", "sims", "alpha_test", "rejection_rate", "mc_se"]


@dataclass(frozen=True)
class PlanResult:
    """Everything ``outcomes plan`` reports.

    Attributes
    ----------
    design : Design
        The design.
    assumptions : Assumptions
        The assumptions.
    answers : pandas.DataFrame
        Columns :data:`ANSWER_COLUMNS`: one row per question and method.
    curve : pandas.DataFrame
        Columns :data:`CURVE_COLUMNS`: power by total number of patients.
    type_one_error : pandas.DataFrame
        Rejection rate of the simulated analysis when the effect is 0.
    simulations : pandas.DataFrame
        Per-size summary of the simulated studies (:func:`pipeline.planning.simulate.summarise`).
    dropout : pandas.DataFrame or None
        Observed dropout of the study (``--from-study``).
    seconds : float
        Wall-clock time of the simulations.
    """

    design: Design
    assumptions: Assumptions
    answers: pd.DataFrame
    curve: pd.DataFrame
    type_one_error: pd.DataFrame
    simulations: pd.DataFrame
    dropout: pd.DataFrame | None = None
    seconds: float = 0.0


def analytic_contrast(design: Design, assumptions: Assumptions) -> analytic.Contrast:
    """Return the per-patient variances of the primary contrast (Diggle or Lu–Luo–Chen).

    Parameters
    ----------
    design : Design
        The design.
    assumptions : Assumptions
        The assumptions.

    Returns
    -------
    Contrast
        Slope difference per week, or the adjusted difference at the primary visit.
    """
    cov = assumptions.covariance(design.weeks)
    ret_a, ret_b = assumptions.retention("reference"), assumptions.retention("compared")
    if design.analysis == "slope":
        weeks = np.asarray(design.weeks, dtype=float)
        return analytic.slope_contrast(weeks, cov, ret_a, ret_b, design.allocation)
    return analytic.visit_contrast(cov, ret_a, ret_b, design.primary_visit, design.allocation)


def contrast_effect(design: Design, assumptions: Assumptions) -> float:
    """Return the tested contrast's true value: slope difference per week, or visit difference."""
    if design.analysis == "slope":
        return assumptions.effect / design.primary_week
    return assumptions.effect


def contrast_unit(design: Design) -> str:
    """Return the unit of the tested contrast, e.g. ``points per week``."""
    return f"{design.unit} per week" if design.analysis == "slope" else design.unit


def interpolate_n(sizes: np.ndarray, powers: np.ndarray, target: float) -> float:
    """Return the smallest size reaching ``target`` power on a simulated curve (probit scale).

    Parameters
    ----------
    sizes : numpy.ndarray
        Total patients, increasing.
    powers : numpy.ndarray
        Simulated power at each size.
    target : float
        Power wanted.

    Returns
    -------
    float
        The interpolated size between the first two points that bracket ``target``; NaN when
        the curve never reaches it, or reaches it at its smallest size already.
    """
    sizes = np.asarray(sizes, dtype=float)
    powers = np.clip(np.asarray(powers, dtype=float), 1e-4, 1 - 1e-4)
    above = np.flatnonzero(powers >= target)
    if above.size == 0 or above[0] == 0:
        return float("nan")
    k = above[0]
    z0, z1, zt = stats.norm.ppf([powers[k - 1], powers[k], target])
    if z1 == z0:
        return float(sizes[k])
    return float(sizes[k - 1] + (zt - z0) / (z1 - z0) * (sizes[k] - sizes[k - 1]))


def _curve(design: Design, contrast: analytic.Contrast, effect: float, summary) -> pd.DataFrame:
    rows = []
    by_n = summary.loc[summary["scenario"] == "effect"].set_index("n_total")
    for n in design.n_grid:
        n_a, n_b = design.group_sizes(n)
        sim = by_n.loc[n] if n in by_n.index else None
        rows.append(
            {
                "n_total": n,
                "n_reference": n_a,
                "n_compared": n_b,
                "power_analytic_z": analytic.power(contrast, effect, n, design.alpha_test, "z"),
                "power_analytic_t": analytic.power(contrast, effect, n, design.alpha_test, "t"),
                "power_simulated": np.nan if sim is None else sim["rejection_rate"],
                "mc_se": np.nan if sim is None else sim["mc_se"],
                "sims": 0 if sim is None else int(sim["sims"]),
                "share_failed": np.nan if sim is None else sim["share_failed"],
                "share_fallback": np.nan if sim is None else sim["share_fallback"],
                "share_boundary": np.nan if sim is None else sim["share_boundary"],
                "mean_fit_seconds": np.nan if sim is None else sim["mean_fit_seconds"],
            }
        )
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def _answers(
    design: Design, contrast: analytic.Contrast, effect: float, curve: pd.DataFrame, summary
) -> pd.DataFrame:
    n, alpha, target = design.n, design.alpha_test, design.target_power
    unit = contrast_unit(design)
    rows = []

    def add(question: str, method: str, value: float, mc_se=np.nan, size=n, note="") -> None:
        rows.append((question, method, value, mc_se, unit_of[question], size, note))

    unit_of = {
        "power at n": "probability",
        "n for power": "patients",
        "detectable effect at n": unit,
        "CI half-width at n": unit,
    }
    methods = (("analytic (z)", "z"), ("analytic (t, N-2 df)", "t"))
    for label, dist in methods:
        add("power at n", label, analytic.power(contrast, effect, n, alpha, dist))
    for label, dist in methods:
        needed = analytic.n_for_power(contrast, effect, target, alpha, dist)
        add(
            "n for power",
            label,
            float(math.ceil(needed)) if np.isfinite(needed) else np.inf,
            size=np.nan,
            note=f"unrounded {needed:.1f}",
        )
    for label, dist in methods:
        add(
            "detectable effect at n",
            label,
            analytic.detectable_effect(contrast, n, target, alpha, dist),
        )
    add("CI half-width at n", "analytic (t, N-2 df)", analytic.precision(contrast, n, 0.95, "t"))

    sims = summary.loc[summary["scenario"] == "effect"].set_index("n_total")
    if n in sims.index:
        row = sims.loc[n]
        add("power at n", "simulation", row["rejection_rate"], row["mc_se"])
        sd = row["sd_estimate"]
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target)
        se_sd = sd / np.sqrt(2 * (row["sims"] - 1))
        add(
            "detectable effect at n",
            "simulation",
            z * sd,
            z * se_sd,
            note="(z_{1-alpha/2} + z_power) x the simulated SD of the estimate",
        )
        add(
            "CI half-width at n",
            "simulation",
            row["median_ci_half_width"],
            note="median of the simulated studies' 95 % Satterthwaite intervals",
        )
    if curve["sims"].gt(0).any():
        simulated = curve.loc[curve["sims"] > 0]
        found = interpolate_n(
            simulated["n_total"].to_numpy(), simulated["power_simulated"].to_numpy(), target
        )
        note = "probit interpolation between the simulated sizes that bracket the target"
        if np.isnan(found):
            note = "the simulated curve does not cross the target inside the grid of sizes"
        add(
            "n for power",
            "simulation",
            float(math.ceil(found)) if np.isfinite(found) else np.nan,
            size=np.nan,
            note=note,
        )
    order = {q: k for k, q in enumerate(unit_of)}
    frame = pd.DataFrame(rows, columns=ANSWER_COLUMNS)
    frame["_order"] = frame["question"].map(order)
    return (
        frame.sort_values(["_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    )


def plan_study(
    design: Design,
    assumptions: Assumptions,
    sims: int = 1000,
    seed: int = 2026,
    *,
    null_sizes: tuple[int, ...] | None = None,
    workers: int = 1,
    progress: simulate.Progress | None = None,
    dropout: pd.DataFrame | None = None,
) -> PlanResult:
    """Answer the planning questions analytically and by simulation.

    Parameters
    ----------
    design : Design
        The design (``n_grid`` is the power curve; ``n`` the planned size).
    assumptions : Assumptions
        The assumptions.
    sims : int
        Simulated studies per size (0: analytic answers only).
    seed : int
        Root seed.
    null_sizes : tuple of int, optional
        Sizes at which the null is simulated for the type-I error (default: the smallest size of
        the curve, where small-sample approximations are weakest).
    workers : int
        Processes for the simulations.
    progress : callable, optional
        ``progress(done, total)``.
    dropout : pandas.DataFrame, optional
        The study's observed dropout, carried into the result.

    Returns
    -------
    PlanResult
        Answers, curve, type-I error and the simulation summary.
    """
    contrast = analytic_contrast(design, assumptions)
    effect = contrast_effect(design, assumptions)
    started = time.perf_counter()
    summary = pd.DataFrame(columns=["scenario", "n_total", "sims", "rejection_rate", "mc_se"])
    if sims > 0:
        nulls = (min(design.n_grid),) if null_sizes is None else tuple(null_sizes)
        runs = simulate.run_simulations(
            design,
            assumptions,
            design.n_grid,
            sims,
            seed,
            null_sizes=nulls,
            workers=workers,
            progress=progress,
        )
        summary = simulate.summarise(runs)
    seconds = time.perf_counter() - started
    curve = _curve(design, contrast, effect, summary)
    nulls = summary.loc[summary["scenario"] == "null"]
    type_one = pd.DataFrame(
        {
            "n_total": nulls["n_total"].astype(int),
            "sims": nulls["sims"].astype(int),
            "alpha_test": design.alpha_test,
            "rejection_rate": nulls["rejection_rate"].astype(float),
            "mc_se": nulls["mc_se"].astype(float),
        },
        columns=TYPE_ONE_COLUMNS,
    ).reset_index(drop=True)
    return PlanResult(
        design=design,
        assumptions=assumptions,
        answers=_answers(design, contrast, effect, curve, summary),
        curve=curve,
        type_one_error=type_one,
        simulations=summary,
        dropout=dropout,
        seconds=seconds,
    )
