"""Human labels for the model terms, variance components and optimisers the report shows.

The tables in ``reports/tables/`` keep the engine's identifiers (``weeks:depth[T.deep]``,
``numpy-lbfgsb``); the report shows what they mean ("Time (weeks) × needling depth: deep",
"bounded L-BFGS-B on the profiled criterion"). A term is read by its structure (the model
formula's own notation: ``a:b`` an interaction, ``f[T.level]`` a level of a categorical
variable), never from display text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

VARIABLE_WORDS = {
    "Intercept": "Intercept",
    "(Intercept)": "Intercept",
    "baseline": "Baseline score",
    "weeks": "Time (weeks)",
    "sessions_completed": "Time (sessions)",
    "visit_c": "Visit",
    "depth": "Needling depth",
    "twitch": "Twitch response",
    "twitch_between": "Twitch share, patient's mean (between patients)",
    "twitch_within": "Twitch share, deviation from the patient's mean (within patient)",
    "chronicity": "Symptom duration",
    "site": "Clinic",
    "sex": "Sex",
    "age": "Age (years)",
    "symptom_weeks": "Symptom duration (weeks)",
    "arm": "Randomised arm",
    "Residual": "Residual",
}
"""Built-in variables of the plan's models, in words."""

OPTIMISER_WORDS = {
    "powell+bfgs": "statsmodels Powell, then BFGS from that point",
    "lbfgs": "statsmodels L-BFGS",
    "numpy-powell": "bounded Powell on the profiled REML criterion",
    "numpy-lbfgsb": "bounded L-BFGS-B on the profiled REML criterion",
}
"""The engine's optimisation routes (:mod:`pipeline.lmm.optim`), in words."""

_LEVEL = re.compile(r"^(?P<variable>.+?)\[T\.(?P<level>.+)\]$")
_CORRELATION = re.compile(r"^cor\((?P<a>.+), (?P<b>.+)\)$")


def variable_label(name: str, extra: Mapping[str, str] | None = None) -> str:
    """Name one variable of a model (``extra``: the study's declared labels first)."""
    if extra and name in extra:
        return extra[name]
    return VARIABLE_WORDS.get(name, name.replace("_", " ").capitalize())


def _factor(part: str, extra: Mapping[str, str] | None) -> str:
    found = _LEVEL.match(part)
    if found is None:
        return variable_label(part, extra)
    variable, level = found["variable"], found["level"]
    if variable == "visit_c":
        return f"Visit {level}"
    return f"{variable_label(variable, extra)}: {level}"


def term_label(term: str, extra: Mapping[str, str] | None = None) -> str:
    """Name a fixed-effect term for readers.

    Parameters
    ----------
    term : str
        The term as the engine names it (``visit_c[T.2]:depth[T.deep]``).
    extra : mapping of str to str, optional
        Labels of the study's declared variables (comparisons, covariates).

    Returns
    -------
    str
        E.g. "Visit 2 × Needling depth: deep"; a level's coefficient is its difference from the
        reference level (named in the table's note).
    """
    found = _CORRELATION.match(term)
    if found is not None:
        return (
            f"Correlation of {variable_label(found['a'], extra).lower()} and "
            f"{variable_label(found['b'], extra).lower()}"
        )
    return " × ".join(_factor(part, extra) for part in term.split(":"))


def optimiser_label(route: object) -> str:
    """Name an optimisation route in words (a missing value stays missing)."""
    if not isinstance(route, str):
        return "–"
    return OPTIMISER_WORDS.get(route, route)
