"""The design of the next study and the assumptions about it, resolved to numbers.

:class:`Design` and :class:`Assumptions` are what the analytic formulas
(:mod:`pipeline.planning.analytic`) and the simulation (:mod:`pipeline.planning.simulate`)
read. They are built from the ``[planning]`` section of the configuration
(:func:`from_settings`) with the assumptions typed in, or with the variance components and the
dropout estimated from the current study (:mod:`pipeline.planning.from_study`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pipeline.config.planning import PlanningAssumptions, PlanningSettings
from pipeline.config.study import Mcid
from pipeline.errors import ConfigError
from pipeline.planning import analytic

__all__ = ["UNITS", "Assumptions", "Design", "expand_hazards", "from_settings"]

UNITS = {"nrs": "points", "vas": "mm", "odi": "points"}
"""Unit of each instrument's score, for the words of the report."""

LABELS = {"nrs": "NRS pain", "vas": "VAS pain", "odi": "ODI"}


@dataclass(frozen=True)
class Design:
    """What the next study does.

    Attributes
    ----------
    outcome : str
        Instrument (``nrs``, ``vas``, ``odi``).
    comparison : str
        ``depth``, ``twitch`` or ``arm``.
    reference, compared : str
        Levels compared (``compared - reference``).
    allocation : float
        Compared patients per reference patient.
    weeks : tuple of float
        Visit schedule, baseline (0) first.
    analysis : {"slope", "visit"}
        Primary analysis.
    primary_visit : int
        Index of the primary visit in ``weeks``.
    alpha : float
        Two-sided level of the family.
    holm_family : int
        Primary comparisons in the Holm family.
    target_power : float
        Power wanted.
    n : int
        Total patients for the single-n answers.
    n_grid : tuple of int
        Total patients of the power curve (includes ``n``).
    mcid : float
        MCID of the outcome in points (for effects given as multiples of it).
    """

    outcome: str
    comparison: str
    reference: str
    compared: str
    allocation: float
    weeks: tuple[float, ...]
    analysis: str
    primary_visit: int
    alpha: float
    holm_family: int
    target_power: float
    n: int
    n_grid: tuple[int, ...]
    mcid: float

    @property
    def alpha_test(self) -> float:
        """Level of each test: ``alpha / holm_family`` (Bonferroni, Holm's first step)."""
        return self.alpha / self.holm_family

    @property
    def primary_week(self) -> float:
        """Week of the primary visit."""
        return self.weeks[self.primary_visit]

    @property
    def unit(self) -> str:
        """Unit of the outcome."""
        return UNITS[self.outcome]

    @property
    def label(self) -> str:
        """Display name of the outcome."""
        return LABELS[self.outcome]

    def group_sizes(self, n_total: int) -> tuple[int, int]:
        """Whole patients per group for ``n_total`` (reference rounded, compared the rest).

        Parameters
        ----------
        n_total : int
            Patients in both groups.

        Returns
        -------
        tuple of int
            ``(n_reference, n_compared)``.
        """
        n_a = round(n_total / (1.0 + self.allocation))
        n_a = min(max(n_a, 1), n_total - 1)
        return n_a, n_total - n_a


@dataclass(frozen=True)
class Assumptions:
    """What the next study is assumed to look like.

    Attributes
    ----------
    effect : float
        True difference (compared - reference) at the primary week, outcome units; the
        difference grows linearly from 0 at baseline, so the slope difference is
        ``effect / primary_week``.
    sd_intercept, sd_slope, correlation, sd_residual : float
        Random intercept and slope SDs (slope per week), their correlation, residual SD.
    hazards_reference, hazards_compared : tuple of float
        Probability of dropping out before each post-baseline visit, per group.
    source : {"typed", "study"}
        Typed in the configuration or estimated from the current study.
    effect_mcid : float or None
        The effect as a multiple of the MCID, when it was given that way.
    uncertainty : pandas.DataFrame
        For assumptions from a study: ``parameter, estimate, std_err, ci_low, ci_high, method``.
    notes : tuple of str
        Sentences on how the assumptions were obtained.
    """

    effect: float
    sd_intercept: float
    sd_slope: float
    correlation: float
    sd_residual: float
    hazards_reference: tuple[float, ...]
    hazards_compared: tuple[float, ...]
    source: str = "typed"
    effect_mcid: float | None = None
    uncertainty: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    notes: tuple[str, ...] = ()

    def covariance(self, weeks: tuple[float, ...]) -> np.ndarray:
        """Return the covariance of one patient's outcomes at ``weeks``."""
        return analytic.marginal_covariance(
            np.asarray(weeks, dtype=float),
            self.sd_intercept,
            self.sd_slope,
            self.correlation,
            self.sd_residual,
        )

    def retention(self, group: str) -> np.ndarray:
        """Return the retention at each visit of ``"reference"`` or ``"compared"``."""
        hazards = self.hazards_reference if group == "reference" else self.hazards_compared
        return analytic.retention_from_hazards(np.asarray(hazards))

    def with_effect(self, effect: float) -> Assumptions:
        """Return the same assumptions with another effect (0 for the null)."""
        return replace(self, effect=effect, effect_mcid=None)


def expand_hazards(values: tuple[float, ...], n_visits: int, where: str, path: str) -> tuple:
    """Return one dropout probability per post-baseline visit from one number or a list.

    Parameters
    ----------
    values : tuple of float
        One number (every visit) or one per post-baseline visit.
    n_visits : int
        Visits including baseline.
    where : str
        Configuration key, for the message.
    path : str
        Configuration file, for the message.

    Returns
    -------
    tuple of float
        ``n_visits - 1`` probabilities.

    Raises
    ------
    ConfigError
        When the list has another length.
    """
    if len(values) == 1:
        return tuple(values) * (n_visits - 1)
    if len(values) != n_visits - 1:
        raise ConfigError(
            f"{path}: [{where}] must be one number or one per post-baseline visit "
            f"({n_visits - 1}), got {len(values)}"
        )
    return tuple(values)


def resolve_design(
    settings: PlanningSettings, mcid: Mcid, weeks: tuple[float, ...], path: str
) -> Design:
    """Build the :class:`Design` of a ``[planning]`` section with a known visit schedule.

    Parameters
    ----------
    settings : PlanningSettings
        The section.
    mcid : Mcid
        MCID of the outcome.
    weeks : tuple of float
        Visit schedule (the section's, or the study's nominal weeks).
    path : str
        Configuration file, for messages.

    Returns
    -------
    Design
        The design.

    Raises
    ------
    ConfigError
        When the primary week is not a post-baseline week of the schedule.
    """
    weeks = tuple(float(w) for w in weeks)
    primary = len(weeks) - 1
    if settings.primary_week is not None:
        if settings.primary_week not in weeks[1:]:
            raise ConfigError(
                f"{path}: [planning.primary_week] must be one of the post-baseline weeks "
                f"{', '.join(f'{w:g}' for w in weeks[1:])}, got {settings.primary_week:g}"
            )
        primary = weeks.index(settings.primary_week)
    return Design(
        outcome=settings.outcome,
        comparison=settings.comparison,
        reference=settings.levels[0],
        compared=settings.levels[1],
        allocation=settings.allocation,
        weeks=weeks,
        analysis=settings.analysis,
        primary_visit=primary,
        alpha=settings.alpha,
        holm_family=settings.holm_family,
        target_power=settings.power,
        n=settings.n,
        n_grid=tuple(sorted({*settings.n_grid, settings.n})),
        mcid=mcid.points,
    )


def resolve_effect(given: PlanningAssumptions, design: Design, path: str) -> tuple[float, float]:
    """Return the effect in outcome units and as a multiple of the MCID (NaN when in units).

    Raises
    ------
    ConfigError
        When neither ``effect`` nor ``effect_mcid`` is given.
    """
    if given.effect is not None:
        return given.effect, float("nan")
    if given.effect_mcid is not None:
        return given.effect_mcid * design.mcid, given.effect_mcid
    raise ConfigError(
        f"{path}: [planning.assumptions] needs the effect: effect (difference at the primary "
        "week in outcome units) or effect_mcid (a multiple of the MCID)"
    )


def typed_hazards(given: PlanningAssumptions, design: Design, path: str) -> tuple[tuple, tuple]:
    """Return the dropout per post-baseline visit of the reference and the compared group."""
    key = "planning.assumptions.dropout"
    n_visits = len(design.weeks)
    if "*" in given.dropout:
        both = expand_hazards(given.dropout["*"], n_visits, key, path)
        return both, both
    return (
        expand_hazards(
            given.dropout[design.reference], n_visits, f"{key}.{design.reference}", path
        ),
        expand_hazards(given.dropout[design.compared], n_visits, f"{key}.{design.compared}", path),
    )


def from_settings(settings: PlanningSettings, mcid: Mcid, path: str) -> tuple[Design, Assumptions]:
    """Return the design and the typed-in assumptions of a ``[planning]`` section.

    Parameters
    ----------
    settings : PlanningSettings
        The section.
    mcid : Mcid
        MCID of the planned outcome.
    path : str
        Configuration file, for messages.

    Returns
    -------
    tuple
        ``(Design, Assumptions)``.

    Raises
    ------
    ConfigError
        When the schedule, the effect or a variance component is missing.
    """
    if settings.weeks is None:
        raise ConfigError(
            f"{path}: [planning.weeks] is missing: give the visit schedule in weeks, or "
            "estimate it from the study with --from-study"
        )
    design = resolve_design(settings, mcid, settings.weeks, path)
    given = settings.assumptions
    for key in ("sd_intercept", "sd_slope", "correlation", "sd_residual"):
        if getattr(given, key) is None:
            raise ConfigError(
                f"{path}: [planning.assumptions.{key}] is missing: type it in, or estimate the "
                "variance components from the study with --from-study"
            )
    effect, multiple = resolve_effect(given, design, path)
    hazards_a, hazards_b = typed_hazards(given, design, path)
    assumptions = Assumptions(
        effect=effect,
        sd_intercept=given.sd_intercept,
        sd_slope=given.sd_slope,
        correlation=given.correlation,
        sd_residual=given.sd_residual,
        hazards_reference=hazards_a,
        hazards_compared=hazards_b,
        source="typed",
        effect_mcid=None if np.isnan(multiple) else multiple,
    )
    return design, assumptions
