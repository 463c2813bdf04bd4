"""The estimand and the missing-data sensitivity analyses: ``[estimand]`` (docs/estimands.md).

The question the headline answers (population, outcome, comparison, visit, summary measure),
the intercurrent events with their ICH E9(R1) strategies, and the reference-based imputations,
tipping-point grid and jackknife or multiple imputation behind the sensitivity analyses.
Nothing happens at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.study import Study
from pipeline.config.toml_values import (
    check_keys,
    fail,
    get_choice,
    get_flag,
    get_number,
    get_section,
    get_text,
    get_whole,
)

ESTIMAND_EVENTS = ("discontinued", "co_intervention", "protocol_deviation")
"""Intercurrent events the ``[estimand.events.*]`` tables may name (ICH E9(R1))."""

ESTIMAND_STRATEGIES = ("treatment policy", "hypothetical", "while on treatment")
"""ICH E9(R1) strategies for an intercurrent event."""

IMPUTATION_STRATEGIES = ("MAR", "J2R", "CR", "CIR", "LMCF")
"""Reference-based assumptions for the values missing after an intercurrent event."""

TIPPING_GROUPS = ("level", "both", "reference")
"""Whose imputed values the tipping-point delta shifts: the compared level, both, the reference."""


@dataclass(frozen=True)
class IntercurrentEvent:
    """One intercurrent event and its strategy (``[estimand.events.NAME]``).

    Attributes
    ----------
    event : str
        One of :data:`ESTIMAND_EVENTS`.
    strategy : str
        One of :data:`ESTIMAND_STRATEGIES`.
    imputation : str
        Assumption for the values missing after the event (:data:`IMPUTATION_STRATEGIES`):
        default ``J2R`` for treatment policy, ``MAR`` for hypothetical, ``LMCF`` for while on
        treatment.
    """

    event: str
    strategy: str
    imputation: str


DEFAULT_IMPUTATION = {
    "treatment policy": "J2R",
    "hypothetical": "MAR",
    "while on treatment": "LMCF",
}
"""The imputation each ICH strategy implies unless the event's table names another."""


JACKKNIFE_GROUPS = 500
"""Default ``[estimand] jackknife_groups``: leave-one-out up to 500 patients, 500 groups above.

The leave-one-out jackknife refits and re-imputes every patient once per patient, ``O(n^2)``
(50 s at 2,000 patients, days at 100,000); the delete-a-group jackknife with ``G`` groups costs
``G`` replicates whatever the size, and its SE carries ``G - 1`` df (relative SD of the SE about
``1 / sqrt(2 (G - 1))``, 3 % at 500) (docs/estimands.md)."""

JACKKNIFE_GROUPS_MIN = 10
"""Fewest jackknife groups accepted: fewer leave the SE itself too uncertain (under 9 df)."""


@dataclass(frozen=True)
class EstimandSettings:
    """The estimand and the missing-data sensitivity analyses (``[estimand]``, SAP §4).

    Attributes
    ----------
    population : str or None
        Who the question is about (default: worded from the design).
    outcome : str or None
        Outcome (default: the primary, i.e. first declared, outcome).
    comparison : str or None
        Comparison name (default: the first declared comparison).
    visit : int or None
        Visit of the estimand (default: ``[time] primary_visit``, else the last visit).
    summary : str
        Population-level summary measure.
    events : tuple of IntercurrentEvent
        The intercurrent events and their strategies (default: discontinuation under
        treatment policy with J2R, protocol deviations under treatment policy).
    strategies : tuple of str
        Sensitivity strategies applied to every patient who stopped (all five by default).
    tipping_deltas : int
        Points of the tipping-point grid (default 21).
    tipping_range : float or None
        The grid spans ``-range`` to ``+range`` MCIDs of the outcome (default: wide enough to
        show the tipping points, 1.25 times the farthest, at least 1).
    tipping_groups : str
        ``level`` (the compared level's imputed values), ``both`` or ``reference``.
    jackknife : bool
        Jackknife standard errors (false: point estimates only; never for a report).
    jackknife_groups : int
        ``G``: a study of at most ``G`` patients gets the leave-one-patient-out jackknife; a
        larger one the delete-a-group jackknife (Kott 2001), its patients dealt into ``G``
        groups by a seeded hash of their identifiers, one replicate per group deleted, SEs
        with ``G - 1`` df (default :data:`JACKKNIFE_GROUPS`).
    jackknife_seed : int
        Seed of the hash that deals the patients into jackknife groups.
    mi_imputations : int
        Imputations of the bootstrapped multiple imputation pooled by Rubin's rules, the
        alternative to the jackknife (default 50; 0 leaves it out).
    mi_seed : int
        Seed of the bootstrap and the draws.
    covariance_by_group : bool
        A separate unstructured ``Sigma`` per level of the comparison in the imputation model
        (rbmi's ``same_cov = FALSE``; default false: one shared ``Sigma``). Each patient is then
        conditioned on the matrix their strategy implies (:mod:`pipeline.lmm.reference_based`),
        and the MAR row no longer reproduces the MMRM exactly.
    """

    population: str | None = None
    outcome: str | None = None
    comparison: str | None = None
    visit: int | None = None
    summary: str = "difference in means"
    events: tuple[IntercurrentEvent, ...] = (
        IntercurrentEvent("discontinued", "treatment policy", "J2R"),
        IntercurrentEvent("protocol_deviation", "treatment policy", "MAR"),
    )
    strategies: tuple[str, ...] = IMPUTATION_STRATEGIES
    tipping_deltas: int = 21
    tipping_range: float | None = None
    tipping_groups: str = "level"
    jackknife: bool = True
    jackknife_groups: int = JACKKNIFE_GROUPS
    jackknife_seed: int = 0
    mi_imputations: int = 50
    mi_seed: int = 2022
    covariance_by_group: bool = False


def load_estimand(raw: dict[str, Any], path: Path, study: Study) -> EstimandSettings | None:
    """Read ``[estimand]`` (docs/estimands.md): the question and the missing-data analyses.

    Returns
    -------
    EstimandSettings or None
        None when the file has no ``[estimand]`` section.

    Raises
    ------
    ConfigError
        One sentence naming the key, for any unknown or invalid value.
    """
    if "estimand" not in raw:
        return None
    name = "estimand"
    section = get_section(raw, name, path, EstimandSettings, required=True)
    d = EstimandSettings()
    outcome = get_text(section, "outcome", path, name, None)
    if outcome is not None and outcome not in [o.name for o in study.outcomes]:
        raise fail(
            path,
            "estimand.outcome",
            f"must be a declared outcome ({', '.join(o.name for o in study.outcomes)}), "
            f"got {outcome!r}",
        )
    comparison = get_text(section, "comparison", path, name, None)
    if comparison is not None and comparison not in [c.name for c in study.comparisons]:
        raise fail(
            path,
            "estimand.comparison",
            f"must be a declared comparison ({', '.join(c.name for c in study.comparisons)}), "
            f"got {comparison!r}",
        )
    visit = section.get("visit")
    if visit is not None:
        visit = get_whole(section, "visit", path, name, 1, 1, 100)
    events_raw = section.get("events", None)
    if events_raw is None:
        events = d.events
    else:
        if not isinstance(events_raw, dict):
            raise fail(path, "estimand.events", "must hold tables such as [estimand.events.NAME]")
        events = []
        for event, table in events_raw.items():
            key = f"estimand.events.{event}"
            if event not in ESTIMAND_EVENTS:
                raise fail(
                    path,
                    key,
                    f"is not an event this pipeline records: choose from "
                    f"{', '.join(ESTIMAND_EVENTS)}",
                )
            if not isinstance(table, dict):
                raise fail(path, key, 'must be a table with strategy = "..."')
            check_keys(table, {"strategy", "imputation"}, path, key)
            strategy = get_choice(
                table, "strategy", path, key, "treatment policy", ESTIMAND_STRATEGIES
            )
            imputation = get_choice(
                table, "imputation", path, key, DEFAULT_IMPUTATION[strategy], IMPUTATION_STRATEGIES
            )
            events.append(IntercurrentEvent(event, strategy, imputation))
        events = tuple(events)
    strategies = section.get("strategies", list(d.strategies))
    if (
        not isinstance(strategies, list)
        or not strategies
        or any(s not in IMPUTATION_STRATEGIES for s in strategies)
    ):
        raise fail(
            path,
            "estimand.strategies",
            f"must be a list drawn from {', '.join(IMPUTATION_STRATEGIES)}, got {strategies!r}",
        )
    return EstimandSettings(
        population=get_text(section, "population", path, name, None),
        outcome=outcome,
        comparison=comparison,
        visit=visit,
        summary=str(get_text(section, "summary", path, name, d.summary)),
        events=events,
        strategies=tuple(dict.fromkeys(strategies)),
        tipping_deltas=get_whole(section, "tipping_deltas", path, name, d.tipping_deltas, 3, 201),
        tipping_range=(
            float(get_number(section, "tipping_range", path, name, 1.0, 0.01, 100))
            if "tipping_range" in section
            else None
        ),
        tipping_groups=get_choice(
            section, "tipping_groups", path, name, d.tipping_groups, TIPPING_GROUPS
        ),
        jackknife=get_flag(section, "jackknife", path, name, d.jackknife),
        jackknife_groups=get_whole(
            section,
            "jackknife_groups",
            path,
            name,
            d.jackknife_groups,
            JACKKNIFE_GROUPS_MIN,
            10_000_000,
        ),
        jackknife_seed=get_whole(
            section, "jackknife_seed", path, name, d.jackknife_seed, 0, 2**31 - 1
        ),
        mi_imputations=get_whole(section, "mi_imputations", path, name, d.mi_imputations, 0, 10000),
        mi_seed=get_whole(section, "mi_seed", path, name, d.mi_seed, 0, 2**31 - 1),
        covariance_by_group=get_flag(
            section, "covariance_by_group", path, name, d.covariance_by_group
        ),
    )
