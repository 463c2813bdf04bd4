"""Wording and small helpers shared by the report's sections (pure functions).

How outcomes, groupings and analyses are named for readers; which tables a run has; the fit
status of each model. Analyses are named from their typed identity
(:mod:`pipeline.schemas.identity`), never by taking their names apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.report.html import (
    MISSING,
    fmt,
)
from pipeline.schemas.columns import INSTRUMENTS
from pipeline.schemas.identity import (
    MAIN_KINDS,
    AnalysisKind,
    ContrastKind,
    identify,
    kind_of,
)

OUTCOMES = {name: i.title for name, i in INSTRUMENTS.items()}

SHORT = {name: i.short for name, i in INSTRUMENTS.items()}

OUTCOME_WORDS = {name: i.words for name, i in INSTRUMENTS.items()}

UNITS = {name: i.unit for name, i in INSTRUMENTS.items()}


@dataclass(frozen=True)
class Question:
    """One question of the plan: a patient-level grouping and its two levels."""

    factor: str
    number: int
    title: str
    level: str
    reference: str
    level_words: str
    reference_words: str


QUESTIONS = (
    Question(
        "twitch",
        1,
        "Twitch response: twitch vs no twitch",
        "twitch",
        "no twitch",
        "a twitch response elicited",
        "without one",
    ),
    Question(
        "depth",
        2,
        "Needling depth: superficial vs deep",
        "deep",
        "superficial",
        "deep needling",
        "superficial needling",
    ),
)

FACTOR_LABELS = {"depth": "Needling depth", "twitch": "Twitch response"}

ANALYSIS_WORDS = {
    AnalysisKind.TRAJECTORY: "Trajectory model",
    AnalysisKind.CHANGE: "Change from baseline",
    AnalysisKind.SESSION: "Session-level model",
    AnalysisKind.JOINT: "Joint model (depth and twitch)",
    AnalysisKind.SUBGROUP: "Subgroup",
    AnalysisKind.SENSITIVITY: "Sensitivity",
}


def analysis_label(name: str, factors: Iterable[str] = ()) -> str:
    """Name an analysis for readers, from its typed identity.

    ``sensitivity_completers_depth`` becomes "Sensitivity: completers, depth"; ``factors`` are
    a study's declared comparisons (``change_arm`` becomes "Change from baseline, arm"); a name
    outside the plan (:func:`pipeline.schemas.identity.identify` gives None) is shown as it is.
    """
    identity = identify(name, factors)
    if identity is None:
        return str(name)
    words = ANALYSIS_WORDS[identity.kind]
    if identity.population:
        words = f"{words}: {identity.population.replace('_', ' ')}"
    if identity.modifier:
        words = f"{words} by {identity.modifier}"
    return f"{words}, {identity.factor}" if identity.factor else words


ANALYSIS_COLUMN = ("Analysis", "analysis", lambda r: analysis_label(r["analysis"]))
"""Table column naming the analysis of a row (for :func:`pipeline.report.html.table`)."""


def analysis_column(factors: Iterable[str] = ()) -> tuple[str, str, Callable]:
    """Table column naming the analysis of a row, for a study's declared comparisons too."""
    chosen = tuple(factors)
    return ("Analysis", "analysis", lambda r: analysis_label(r["analysis"], chosen))


OUTCOME_COLUMN = ("Outcome", "outcome", lambda r: SHORT.get(r["outcome"], r["outcome"]))
"""Table column naming the outcome of a row."""


def outcome_column(labels: Mapping[str, str] | None = None) -> tuple[str, str, Callable]:
    """Table column naming the outcome of a row, with a study's own outcome names (``labels``)."""
    names = {**SHORT, **(labels or {})}
    return ("Outcome", "outcome", lambda r: names.get(r["outcome"], r["outcome"]))


def fit_column(flags: Mapping[tuple[str, str], str]) -> tuple[str, str, Callable]:
    """Table column with the fit flag of the model a row comes from (:func:`fit_flags`)."""
    return ("Fit", "fit", lambda r: flags.get((r["analysis"], r["outcome"]), MISSING))


def is_main(analysis: str, factors: Iterable[str] = ()) -> bool:
    """Whether an analysis is reported in the main text (not a sensitivity or subgroup one)."""
    return kind_of(analysis, factors) in MAIN_KINDS


def is_slope(contrasts: pd.DataFrame) -> pd.Series:
    """Which contrasts are differences in slope (typed ``kind``)."""
    return contrasts["kind"] == ContrastKind.SLOPE


def truthy(value: Any) -> bool:
    """Read a flag that may have gone through a CSV (``"True"``) as a bool."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value) if value is not None and value is not pd.NA else False


def present(tables: Mapping[str, pd.DataFrame], *names: str) -> bool:
    """Whether the run produced every one of these tables, with at least one row."""
    return all(name in tables and not tables[name].empty for name in names)


def number(value: Any) -> float:
    """Return a float, or NaN for a suppression marker or a missing value."""
    if isinstance(value, str) or value is None or value is pd.NA:
        return math.nan
    return float(value)


def signed(value: float, digits: int) -> str:
    """Format a number with its sign always shown (``+1.22``, ``−0.69``; zero unsigned)."""
    text = fmt(float(value), digits)
    return text if text.startswith("−") or float(value) == 0 else "+" + text


def fit_flags(diagnostics: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """Short fit status per ``(analysis, outcome)``: ``ok`` or what to look at."""
    flags: dict[tuple[str, str], str] = {}
    if diagnostics is None:
        return flags
    for row in diagnostics.to_dict(orient="records"):
        notes = []
        if str(row.get("status", "ok")) not in ("ok", "nan", MISSING):
            notes.append(str(row["status"]))
        else:
            if "converged" in row and not truthy(row["converged"]):
                notes.append("not converged")
            if truthy(row.get("boundary")):
                notes.append("boundary fit")
            fallback = row.get("fallback")
            if isinstance(fallback, str) and fallback.strip():
                notes.append("random slope dropped")
        flags[(row["analysis"], row["outcome"])] = "; ".join(notes) or "ok"
    return flags
