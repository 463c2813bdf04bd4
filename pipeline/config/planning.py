"""The design and assumptions of the next study: ``[planning]`` (docs/planning.md).

Read by :func:`load_planning` into :class:`PlanningSettings`, which :mod:`pipeline.planning`
turns into sample sizes, power curves and simulations. Nothing happens at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.config.study import INSTRUMENTS
from pipeline.config.toml_values import (
    check_keys,
    fail,
    get_choice,
    get_number,
    get_section,
    get_whole,
)

PLANNING_COMPARISONS = {
    "depth": ("superficial", "deep"),
    "twitch": ("no twitch", "twitch"),
    "arm": ("control", "treatment"),
}
PLANNING_ANALYSES = ("slope", "visit")
DEFAULT_N_GRID = (40, 60, 80, 100, 140, 180, 240, 300)


@dataclass(frozen=True)
class PlanningAssumptions:
    """``[planning.assumptions]``: what the next study is assumed to look like.

    Attributes
    ----------
    effect : float or None
        Difference between the groups at the primary week, in outcome units (the difference
        grows linearly from 0 at baseline).
    effect_mcid : float or None
        The same difference as a multiple of the outcome's MCID points (give one of the two).
    sd_intercept, sd_slope, correlation, sd_residual : float or None
        Between-patient SDs of the intercept and the slope per week, their correlation, and
        the residual SD (outcome units); required unless they come from the study.
    dropout : dict of str to tuple of float
        Probability of leaving before each post-baseline visit, per group level; the key
        ``"*"`` applies to both groups. One number stands for every visit.
    """

    effect: float | None = None
    effect_mcid: float | None = None
    sd_intercept: float | None = None
    sd_slope: float | None = None
    correlation: float | None = None
    sd_residual: float | None = None
    dropout: dict[str, tuple[float, ...]] = field(default_factory=lambda: {"*": (0.0,)})


@dataclass(frozen=True)
class PlanningSettings:
    """``[planning]``: the design of the next study and what to compute for it.

    Attributes
    ----------
    outcome : str
        Instrument of the primary analysis (``nrs``, ``vas``, ``odi``).
    comparison : str
        ``depth``, ``twitch`` or ``arm`` (a randomised arm).
    levels : tuple of str
        Reference and compared level (defaults by comparison).
    allocation : float
        Patients in the compared group per patient in the reference group.
    weeks : tuple of float or None
        Visit schedule in weeks, baseline (0) first; None: the study's nominal weeks
        (``--from-study`` only).
    analysis : str
        ``slope`` (trajectory slope difference) or ``visit`` (baseline-adjusted difference at
        the primary week).
    primary_week : float or None
        Week of the primary visit (default the last).
    alpha : float
        Two-sided significance level of the family.
    holm_family : int
        Number of primary comparisons in the Holm family; the formulas use ``alpha / m``.
    power : float
        Target power.
    n : int
        Total patients for the power, the detectable effect and the precision.
    n_grid : tuple of int
        Total patients of the power curve (``n`` is added).
    sims : int
        Simulated studies per point of the curve (0: analytic results only).
    seed : int
        Root seed of the simulations.
    assumptions : PlanningAssumptions
        Effect, variance components and dropout.
    """

    outcome: str = "nrs"
    comparison: str = "depth"
    levels: tuple[str, str] = ("superficial", "deep")
    allocation: float = 1.0
    weeks: tuple[float, ...] | None = None
    analysis: str = "slope"
    primary_week: float | None = None
    alpha: float = 0.05
    holm_family: int = 1
    power: float = 0.8
    n: int = 200
    n_grid: tuple[int, ...] = DEFAULT_N_GRID
    sims: int = 1000
    seed: int = 2026
    assumptions: PlanningAssumptions = field(default_factory=PlanningAssumptions)


def _numbers(value: object, path: Path, key: str, lo: float, hi: float) -> tuple[float, ...]:
    """Read a number or a non-empty list of numbers, each within ``[lo, hi]``."""
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise fail(path, key, f"must be a number or a list of numbers, got {value!r}")
    if any(not lo <= v <= hi for v in values):
        raise fail(path, key, f"must hold numbers between {lo:g} and {hi:g}, got {value!r}")
    return tuple(float(v) for v in values)


def _planning_number(section: dict, key: str, path: Path, name: str, lo: float, hi: float):
    if key not in section:
        return None
    return float(get_number(section, key, path, name, 0, lo, hi))


def _planning_dropout(value: object, levels: tuple[str, str], path: Path) -> dict:
    key = "planning.assumptions.dropout"
    if not isinstance(value, dict):
        return {"*": _numbers(value, path, key, 0.0, 0.99)}
    unknown = sorted(set(value) - set(levels))
    if unknown:
        raise fail(path, key, f"'{unknown[0]}' is not a level compared ({' or '.join(levels)})")
    missing = [lv for lv in levels if lv not in value]
    if missing:
        raise fail(path, key, f"gives no dropout for the level '{missing[0]}'")
    return {lv: _numbers(value[lv], path, f"{key}.{lv}", 0.0, 0.99) for lv in levels}


def _planning_assumptions(raw: dict, levels: tuple[str, str], path: Path) -> PlanningAssumptions:
    name = "planning.assumptions"
    section = raw.get("assumptions", {})
    if not isinstance(section, dict):
        raise fail(path, name, "must be a table of keys, e.g. [planning.assumptions]")
    check_keys(section, {f.name for f in fields(PlanningAssumptions)}, path, name)
    if "effect" in section and "effect_mcid" in section:
        raise fail(path, name, "give effect (outcome units) or effect_mcid, not both")
    dropout = _planning_dropout(section.get("dropout", 0.0), levels, path)
    return PlanningAssumptions(
        effect=_planning_number(section, "effect", path, name, -1e6, 1e6),
        effect_mcid=_planning_number(section, "effect_mcid", path, name, -100, 100),
        sd_intercept=_planning_number(section, "sd_intercept", path, name, 0, 1e6),
        sd_slope=_planning_number(section, "sd_slope", path, name, 0, 1e6),
        correlation=_planning_number(section, "correlation", path, name, -1, 1),
        sd_residual=_planning_number(section, "sd_residual", path, name, 1e-9, 1e6),
        dropout=dropout,
    )


def load_planning(raw: dict[str, Any], path: Path) -> PlanningSettings | None:
    """Read the optional ``[planning]`` section (design and assumptions of the next study).

    Parameters
    ----------
    raw : dict
        The parsed TOML file.
    path : Path
        The file, for messages.

    Returns
    -------
    PlanningSettings or None
        None when the file has no ``[planning]`` section.

    Raises
    ------
    ConfigError
        One sentence naming the key, for any missing, unknown or invalid value.
    """
    if "planning" not in raw:
        return None
    section = get_section(raw, "planning", path, PlanningSettings, required=True)
    d = PlanningSettings()
    name = "planning"
    comparison = get_choice(
        section, "comparison", path, name, d.comparison, tuple(PLANNING_COMPARISONS)
    )
    levels = section.get("levels", list(PLANNING_COMPARISONS[comparison]))
    if (
        not isinstance(levels, list)
        or len(levels) != 2
        or any(not isinstance(v, str) or not v.strip() for v in levels)
        or levels[0] == levels[1]
    ):
        raise fail(
            path, "planning.levels", f"must be two different levels in quotes, got {levels!r}"
        )
    levels = (levels[0], levels[1])
    weeks = None
    if "weeks" in section:
        weeks = _numbers(section["weeks"], path, "planning.weeks", 0, 520)
        if len(weeks) < 2 or weeks[0] != 0 or list(weeks) != sorted(set(weeks)):
            raise fail(
                path,
                "planning.weeks",
                f"must start at 0 (baseline) and increase, with at least two visits, got {weeks}",
            )
    analysis = get_choice(section, "analysis", path, name, d.analysis, PLANNING_ANALYSES)
    primary = _planning_number(section, "primary_week", path, name, 0, 520)
    if primary is not None and weeks is not None and primary not in weeks[1:]:
        raise fail(
            path,
            "planning.primary_week",
            f"must be one of the post-baseline weeks, got {primary:g}",
        )
    n_grid = section.get("n_grid", list(d.n_grid))
    if (
        not isinstance(n_grid, list)
        or not n_grid
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 8 for v in n_grid)
    ):
        raise fail(
            path,
            "planning.n_grid",
            f"must be a list of whole numbers of at least 8, got {n_grid!r}",
        )
    assumptions = _planning_assumptions(section, levels, path)
    for level, hazards in assumptions.dropout.items():
        if weeks is not None and len(hazards) not in (1, len(weeks) - 1):
            where = "planning.assumptions.dropout" + ("" if level == "*" else f".{level}")
            raise fail(
                path,
                where,
                f"must be one number or one per post-baseline visit ({len(weeks) - 1}), "
                f"got {len(hazards)}",
            )
    return PlanningSettings(
        outcome=get_choice(section, "outcome", path, name, d.outcome, INSTRUMENTS),
        comparison=comparison,
        levels=levels,
        allocation=float(get_number(section, "allocation", path, name, d.allocation, 0.05, 20)),
        weeks=weeks,
        analysis=analysis,
        primary_week=primary,
        alpha=float(get_number(section, "alpha", path, name, d.alpha, 1e-6, 0.5)),
        holm_family=get_whole(section, "holm_family", path, name, d.holm_family, 1, 100),
        power=float(get_number(section, "power", path, name, d.power, 0.05, 0.999)),
        n=get_whole(section, "n", path, name, d.n, 8, 1_000_000),
        n_grid=tuple(sorted(set(n_grid))),
        sims=get_whole(section, "sims", path, name, d.sims, 0, 1_000_000),
        seed=get_whole(section, "seed", path, name, d.seed, 0, 2**32 - 1),
        assumptions=assumptions,
    )
