"""The model specification a share file is built for, and its hash.

Every clinic of a network must share files built for the same pooled model: the same nominal
visit schedule, outcomes, groups, covariates, random effects, derived-variable thresholds and
disclosure threshold. :func:`specification` collects exactly those settings of a configuration
(nothing about file paths, privacy keys or the report), and :func:`specification_hash` is the
SHA-256 of its canonical JSON: two clinics with the same hash built comparable files.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import Any

from pipeline.analyses.plans import TIME_COLUMNS, response_column
from pipeline.config.settings import Config
from pipeline.errors import ConfigError

__all__ = [
    "CATEGORICAL_COVARIATES",
    "pipeline_version",
    "specification",
    "specification_hash",
    "time_name",
]

CATEGORICAL_COVARIATES = ("chronicity", "sex")
"""Covariates of the model that are categories (the others are numbers)."""


def pipeline_version() -> str:
    """Version of the installed ``needling-outcomes`` package, or ``unknown``."""
    try:
        return metadata.version("needling-outcomes")
    except metadata.PackageNotFoundError:
        return "unknown"


def time_name(time_axis: str) -> str:
    """Column name of the nominal time on ``time_axis`` (``nominal_weeks``)."""
    return f"nominal_{TIME_COLUMNS[time_axis]}"


def specification(config: Config) -> dict[str, Any]:
    """Return the model-relevant part of a configuration as plain JSON values.

    Parameters
    ----------
    config : Config
        A loaded configuration with a ``[federation]`` schedule.

    Returns
    -------
    dict
        Schedule, outcomes, groups, covariates, random slope, df method, clinic effect,
        disclosure threshold and the thresholds that define the derived variables.

    Raises
    ------
    ConfigError
        When the configuration has no ``[federation] schedule``.
    """
    fed = config.federation
    if not fed.schedule:
        raise ConfigError(
            f"{config.source}: [federation] schedule is missing: give the nominal time of "
            "each visit, e.g. schedule = { 0 = 0, 1 = 2, 2 = 4 }."
        )
    model = config.model
    th = config.thresholds
    return {
        "time_axis": model.time_axis,
        "nominal_time": time_name(model.time_axis),
        "schedule": {str(v): t for v, t in fed.schedule},
        "outcomes": {o: response_column(o) for o in fed.outcomes},
        "groups": list(fed.groups),
        "covariates": list(model.covariates),
        "random_slope": bool(model.random_slope),
        "df_method": model.df_method,
        "clinic_effect": fed.clinic_effect,
        "min_patients_per_cell": int(fed.min_patients_per_cell),
        "thresholds": {
            "twitch_share": th.twitch_share,
            "deep_share": th.deep_share,
            "odi_max_missing_sections": th.odi_max_missing_sections,
            "acute_below_weeks": th.acute_below_weeks,
            "chronic_above_weeks": th.chronic_above_weeks,
        },
    }


def specification_hash(spec: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a specification."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
