"""Typed identities of analyses, contrasts, families and flow steps: what code matches on.

Every row of an output table says *what it is* in typed fields, and *how to read it* in labels.
Code selects rows by the typed fields only: the Holm primary family is the headline estimates of
SAP §4 (:func:`pipeline.analyses.headline.holm_family`: a slope difference
:attr:`ContrastKind.SLOPE`, a within-patient coefficient :attr:`ContrastKind.WITHIN` or a
difference at the primary visit :attr:`ContrastKind.VISIT` of the named analyses), the
report's sensitivity section takes :attr:`AnalysisKind.SENSITIVITY` analyses, the flow figure
takes the :attr:`FlowStage.EXCLUSION_REASON` rows. A label ("deep − superficial: difference in
slope per week", "Assessed at visit 2") can be reworded without changing any selection.

An analysis name (``trajectory_depth``, ``sensitivity_completers_twitch``) is an identifier
written in every table; it is built from an :class:`AnalysisId` by :attr:`AnalysisId.name` and
read back by :func:`identify`, a lookup in the catalogue of every analysis of the plan (never
by taking the name apart): the needling plan's, and that of a study's declared comparisons
(``trajectory_arm``, ``sensitivity_completers_arm``) and effect modifiers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any


class AnalysisKind(StrEnum):
    """The models of SAP §4."""

    TRAJECTORY = "trajectory"
    CHANGE = "change"
    SESSION = "session"
    JOINT = "joint"
    SUBGROUP = "subgroup"
    SENSITIVITY = "sensitivity"


class ContrastKind(StrEnum):
    """What a contrast estimates."""

    SLOPE = "slope_difference"
    """Difference between two groups in the rate of change per unit of time."""
    VISIT = "visit_difference"
    """Difference between two groups at one visit."""
    WITHIN = "within_patient"
    """The within-patient coefficient of an exposure that varies from session to session: its
    effect with the patient's own mean held fixed (SAP §4.3, the twitch headline)."""
    COEFFICIENT = "coefficient"
    """Another named combination of coefficients (e.g. the between-patient twitch coefficient,
    the contextual effect)."""


class Family(StrEnum):
    """Multiplicity family of an estimate (SAP §4, headline estimands; the ``family`` column).

    One family for the whole report: :func:`pipeline.analyses.headline.holm_family` chooses it,
    and ``contrasts.csv`` and ``answer.csv`` both carry it and its Holm p.
    """

    PRIMARY = "primary"
    """The headline estimates, one per comparison × outcome: Holm-adjusted across them."""
    SECONDARY = "secondary"
    """Every other estimate: reported unadjusted."""


class FlowStage(StrEnum):
    """Steps of the flow of patients (``flow.csv``)."""

    ENROLLED = "enrolled"
    EXCLUDED = "excluded"
    EXCLUSION_REASON = "exclusion_reason"
    INCLUDED = "included"
    NOT_TREATED = "not_treated"
    TREATED = "treated"
    ASSESSED = "assessed"
    ANALYSED = "analysed"


FACTORS = ("depth", "twitch")
"""The two questions of the plan: patient-level groupings."""
POPULATIONS = ("completers", "per_protocol")
"""Sub-populations of the sensitivity analyses."""
MODIFIERS = ("chronicity",)
"""Effect modifiers of the subgroup analyses."""
MAIN_KINDS = (
    AnalysisKind.TRAJECTORY,
    AnalysisKind.CHANGE,
    AnalysisKind.SESSION,
    AnalysisKind.JOINT,
)
"""Analyses reported in the main text (the others under sensitivity and subgroups)."""


@dataclass(frozen=True)
class AnalysisId:
    """The identity of one analysis of the plan.

    Attributes
    ----------
    kind : AnalysisKind
        Which model.
    factor : str or None
        The grouping it answers (``depth``, ``twitch``); None for the joint model.
    population : str or None
        Sub-population of a sensitivity analysis.
    modifier : str or None
        Effect modifier of a subgroup analysis.
    """

    kind: AnalysisKind
    factor: str | None = None
    population: str | None = None
    modifier: str | None = None

    @property
    def name(self) -> str:
        """The identifier written in the ``analysis`` column of every table."""
        parts = {
            AnalysisKind.SENSITIVITY: (self.kind, self.population, self.factor),
            AnalysisKind.SUBGROUP: (self.kind, self.modifier, self.factor),
        }.get(self.kind, (self.kind, self.factor))
        return "_".join(str(p) for p in parts if p)


def plan_identities(
    factors: Sequence[str] = FACTORS,
    populations: Sequence[str] = POPULATIONS,
    modifiers: Sequence[str] = MODIFIERS,
) -> list[AnalysisId]:
    """List the identity of every analysis of the plan, in the order they are run.

    Returns
    -------
    list of AnalysisId
        Trajectory and change models per factor, the session-level twitch model, the joint
        model, the subgroup models per modifier and factor, the sensitivity models per
        population and factor.
    """
    ids = [AnalysisId(AnalysisKind.TRAJECTORY, f) for f in factors]
    ids += [AnalysisId(AnalysisKind.CHANGE, f) for f in factors]
    ids += [AnalysisId(AnalysisKind.SESSION, "twitch"), AnalysisId(AnalysisKind.JOINT)]
    ids += [AnalysisId(AnalysisKind.SUBGROUP, f, modifier=m) for m in modifiers for f in factors]
    ids += [
        AnalysisId(AnalysisKind.SENSITIVITY, f, population=p) for p in populations for f in factors
    ]
    return ids


@cache
def _catalogue(factors: tuple[str, ...], modifiers: tuple[str, ...]) -> dict[str, AnalysisId]:
    return {a.name: a for a in plan_identities(factors, POPULATIONS, modifiers)}


def identify(
    name: str, factors: Iterable[str] = (), modifiers: Iterable[str] = ()
) -> AnalysisId | None:
    """Return the identity of an analysis name of the plan, or None for a name outside it.

    The plan is that of the needling default (depth and twitch, by chronicity) and of the
    study's own design: every analysis of its declared comparisons (``factors``: a randomised
    ``arm``, any patient column) and effect modifiers (``modifiers``: declared covariates). The
    name is looked up in the catalogue of those analyses, never taken apart.

    Parameters
    ----------
    name : str
        Value of an ``analysis`` column.
    factors : iterable of str
        The study's declared comparisons beyond depth and twitch (their names, as in the
        ``question`` column of the contrasts; :func:`declared_factors` reads them from the
        published tables).
    modifiers : iterable of str
        Effect modifiers beyond chronicity.

    Returns
    -------
    AnalysisId or None
        None for an analysis fitted outside the plan (e.g. from the notebook API under a name
        of its own).
    """
    every = tuple(dict.fromkeys((*FACTORS, *map(str, factors))))
    by = tuple(dict.fromkeys((*MODIFIERS, *map(str, modifiers))))
    return _catalogue(every, by).get(str(name))


def kind_of(name: str, factors: Iterable[str] = ()) -> AnalysisKind | None:
    """Return the :class:`AnalysisKind` of an analysis name, or None outside the plan."""
    found = identify(name, factors)
    return None if found is None else found.kind


def declared_factors(tables: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the comparisons a run's published tables answer, from their typed columns.

    The ``question`` of every contrast and the ``factor`` of the means by visit and Table 1 name
    the comparison (``depth``, ``twitch``, ``arm``...); pass them to :func:`identify`.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Published tables by name.

    Returns
    -------
    tuple of str
        The comparisons, in order of appearance.
    """
    found: list[str] = []
    for table, column in (("contrasts", "question"), ("mean_by_visit", "factor")):
        frame = tables.get(table)
        if frame is not None and column in frame:
            found += [str(v) for v in frame[column].dropna()]
    return tuple(dict.fromkeys(found))


def name_of(kind: AnalysisKind, factor: str | None = None) -> str:
    """Return the name of the analysis of ``kind`` for ``factor`` in the whole population."""
    return AnalysisId(kind, factor).name
