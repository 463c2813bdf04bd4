"""Build a clinic's share file: sufficient statistics, its own headline fits, descriptives.

:func:`build_share` turns a clinic's analysis data set into the plain dictionary that
:func:`pipeline.federate.schema.write_share` writes as JSON (the schema is documented in
:mod:`pipeline.federate.schema` and docs/federation.md). For every shared trajectory model
(outcome x group) it holds

* per site, the pooled ``X'X``, ``X'y``, ``y'y`` and, per schedule, the number of patients and
  the sums ``sum_i a_i`` and ``sum_i a_i a_i'`` of ``a_i = Z_i'[X_i, y_i]``
  (:func:`pipeline.lmm.sufficient.schedule_statistics`): enough for the exact pooled fit;
* the clinic's own fit of the headline estimands (estimate, SE, Satterthwaite df, n) for the
  two-stage meta-analysis, computed from the same statistics (the fit of its rows, exactly);
* the outcome's mean and SD per nominal visit and group.

Time is the *nominal* time of each visit from the configured schedule (``[federation]
schedule``), so that patients seen at the same visits share one random-effect design. Every
model uses the same rows (assessments with every shared outcome, group and covariate present),
after the disclosure rules of :mod:`pipeline.federate.disclosure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import patsy

from pipeline.analyses.plans import GROUP
from pipeline.config.settings import Config
from pipeline.derive.dataset import CHRONICITY_LEVELS, DEPTH_LEVELS, TWITCH_LEVELS
from pipeline.errors import UserError
from pipeline.federate.design import combine_sites
from pipeline.federate.disclosure import RULE, CellAssignment, assign_cells
from pipeline.federate.spec import (
    CATEGORICAL_COVARIATES,
    pipeline_version,
    specification,
    specification_hash,
)
from pipeline.lmm.sufficient import SufficientStatistics, fit_sufficient, schedule_statistics
from pipeline.schemas.raw import SEXES

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LEVELS",
    "build_share",
    "estimand_vectors",
    "fixed_formula",
    "model_rows",
]

FORMAT = "needling-outcomes share file"
FORMAT_VERSION = 1

LEVELS: dict[str, list[str]] = {
    "depth": list(DEPTH_LEVELS),
    "twitch": list(TWITCH_LEVELS),
    "chronicity": list(CHRONICITY_LEVELS),
    "sex": list(SEXES),
}
"""Declared levels of every categorical model variable (the first is the reference), so that
every clinic builds the same design columns whatever levels its own data hold."""


def fixed_formula(spec: dict[str, Any], group: str) -> str:
    """Return the patsy right-hand side ``nominal_time * group + covariates`` of the model."""
    return " + ".join([f"{spec['nominal_time']} * {group}", *spec["covariates"]])


def model_rows(data: pd.DataFrame, spec: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return the rows every shared model uses, with the nominal time, and what was left out.

    Parameters
    ----------
    data : pandas.DataFrame
        The clinic's analysis data set (:func:`pipeline.derive.dataset.analysis_dataset`).
    spec : dict
        :func:`pipeline.federate.spec.specification`.

    Returns
    -------
    rows : pandas.DataFrame
        ``patient_id, site, visit``, the nominal time, every response, group and covariate;
        categorical variables with their declared :data:`LEVELS`.
    counts : dict
        ``rows_in``, ``rows_off_schedule`` (visits not on the schedule) and
        ``rows_incomplete`` (a shared variable missing).
    """
    schedule = {int(v): float(t) for v, t in spec["schedule"].items()}
    responses = list(spec["outcomes"].values())
    columns = [GROUP, "site", "visit", *responses, *spec["groups"], *spec["covariates"]]
    frame = data[list(dict.fromkeys(columns))].copy()
    on_schedule = frame["visit"].isin(list(schedule))
    complete = frame.loc[on_schedule].notna().all(axis=1)
    rows = frame.loc[on_schedule].loc[complete].copy()
    rows[spec["nominal_time"]] = rows["visit"].astype(int).map(schedule).astype(float)
    for column in [*spec["groups"], *spec["covariates"]]:
        if column in LEVELS:
            rows[column] = pd.Categorical(rows[column].astype(str), categories=LEVELS[column])
        else:
            rows[column] = rows[column].astype(float)
    for response in responses:
        rows[response] = rows[response].astype(float)
    rows["site"] = rows["site"].astype(str)
    counts = {
        "rows_in": len(frame),
        "rows_off_schedule": int((~on_schedule).sum()),
        "rows_incomplete": int((~complete).sum()),
    }
    return rows.reset_index(drop=True), counts


def estimand_vectors(
    columns: Sequence[str], spec: dict[str, Any], group: str
) -> list[tuple[str, str, np.ndarray]]:
    """Headline estimands of a trajectory model as contrast vectors over ``columns``.

    For each non-reference level of ``group``: the difference in slope per time unit, and the
    difference at the last nominal visit (group effect + last time x interaction).

    Returns
    -------
    list of (estimand, label, vector)
        ``estimand`` is a typed key (``slope_difference:deep``); ``label`` is display text.
    """
    columns = list(columns)
    time = spec["nominal_time"]
    unit = "week" if spec["time_axis"] == "weeks" else "session"
    last = max(float(t) for t in spec["schedule"].values())
    reference = LEVELS[group][0]
    out = []
    for level in LEVELS[group][1:]:
        main, inter = f"{group}[T.{level}]", f"{time}:{group}[T.{level}]"
        if main not in columns or inter not in columns:
            continue
        slope = np.zeros(len(columns))
        slope[columns.index(inter)] = 1.0
        at_end = np.zeros(len(columns))
        at_end[columns.index(main)] = 1.0
        at_end[columns.index(inter)] = last
        out.append(
            (
                f"slope_difference:{level}",
                f"{level} − {reference}: difference in slope per {unit}",
                slope,
            )
        )
        out.append(
            (
                f"difference_at_end:{level}",
                f"{level} − {reference}: difference at {unit} {last:g}",
                at_end,
            )
        )
    return out


def _clinic_fit(
    rows: pd.DataFrame,
    spec: dict[str, Any],
    group: str,
    blocks: list[tuple[str, SufficientStatistics]],
    columns: list[str],
) -> dict[str, Any]:
    """Fit one model to the clinic's patients alone; its headline estimands (two-stage input).

    The fit is computed from the clinic's own sufficient statistics (with its sites as fixed
    effects when it has several), which gives the fit of its rows exactly.
    """
    random = ["(Intercept)"] + ([spec["nominal_time"]] if spec["random_slope"] else [])
    design = combine_sites(blocks, columns, clinic_effect=True)
    base = {"n_patients": int(rows[GROUP].nunique()), "n_obs": len(rows)}
    levels = rows[group].nunique()
    if levels < 2 or design.rank_deficient:
        why = (
            f"a single {group} group in this clinic"
            if levels < 2
            else f"design column(s) {', '.join(design.rank_deficient)} not estimable"
        )
        return {**base, "status": "not estimable", "message": why, "estimands": []}
    try:
        fit = fit_sufficient(
            design.stats, design.columns, "patient", random, df_method=spec["df_method"]
        )
    except (ValueError, np.linalg.LinAlgError) as exc:
        return {**base, "status": "not estimable", "message": str(exc), "estimands": []}
    estimands = []
    for key, label, vector in estimand_vectors(design.columns, spec, group):
        row = fit.contrast(vector, [label]).iloc[0]
        estimands.append(
            {
                "estimand": key,
                "label": label,
                "estimate": float(row["estimate"]),
                "std_err": float(row["std_err"]),
                "df": float(row["df"]) if np.isfinite(row["df"]) else None,  # None: normal
            }
        )
    return {
        **base,
        "status": "ok",
        "message": fit.fallback or "",
        "random_effects": " + ".join(fit.random_effects),
        "estimands": estimands,
    }


def _descriptives(
    rows: pd.DataFrame, spec: dict[str, Any], response: str, group: str, k: int
) -> list[dict[str, Any]]:
    """Mean and SD of the outcome per nominal visit and group; cells under ``k`` withheld."""
    out = []
    grouped = rows.groupby(["visit", group], observed=True, sort=True)[response]
    for (visit, level), values in grouped:
        n = int(values.size)
        shown = n >= k
        out.append(
            {
                "visit": int(visit),
                "time": float(spec["schedule"][str(int(visit))]),
                "level": str(level),
                "n_patients": n if shown else None,
                "mean": float(values.mean()) if shown else None,
                "sd": float(values.std(ddof=1)) if shown else None,
                "withheld": not shown,
            }
        )
    return out


def _site_block(stats: SufficientStatistics, site: str) -> dict[str, Any]:
    """One site's sufficient statistics as JSON values."""
    cells = []
    for c in range(len(stats.z)):
        q, width = stats.sum_a[c].shape
        cells.append(
            {
                "z": stats.z[c].tolist(),
                "n_patients": int(stats.n_groups[c]),
                "sum_a": stats.sum_a[c].tolist(),
                "sum_aa": stats.sum_aa[c].reshape(q * width, q * width).tolist(),
            }
        )
    return {
        "site": site,
        "n_patients": int(stats.n_groups.sum()),
        "n_obs": int(stats.n_obs),
        "xtx": stats.xtx.tolist(),
        "xty": stats.xty.tolist(),
        "yty": float(stats.yty),
        "cells": cells,
    }


def _model_block(
    rows: pd.DataFrame, spec: dict[str, Any], outcome: str, group: str
) -> dict[str, Any]:
    response = spec["outcomes"][outcome]
    k = spec["min_patients_per_cell"]
    x_all = patsy.dmatrix(fixed_formula(spec, group), rows, return_type="dataframe")
    columns = list(x_all.columns)
    random = ["(Intercept)"] + ([spec["nominal_time"]] if spec["random_slope"] else [])
    blocks = []
    for site, index in rows.groupby("site", sort=True).groups.items():
        part = rows.loc[index]
        z = np.ones((len(part), len(random)))
        if spec["random_slope"]:
            z[:, 1] = part[spec["nominal_time"]].to_numpy(dtype=float)
        stats, _ = schedule_statistics(
            part[response].to_numpy(dtype=float),
            x_all.loc[index].to_numpy(dtype=float),
            z,
            pd.factorize(part[GROUP])[0],
        )
        blocks.append((str(site), stats))
    return {
        "outcome": outcome,
        "response": response,
        "group": group,
        "formula": f"{response} ~ {fixed_formula(spec, group)}",
        "fixed_effects": columns,
        "random_effects": random,
        "sites": [_site_block(stats, site) for site, stats in blocks],
        "clinic_fit": _clinic_fit(rows, spec, group, blocks, columns),
        "descriptives": _descriptives(rows, spec, response, group, k),
    }


def build_share(data: pd.DataFrame, config: Config) -> dict[str, Any]:
    """Build the share file of one clinic (see the module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        The clinic's analysis data set.
    config : Config
        Its configuration, with a ``[federation]`` schedule.

    Returns
    -------
    dict
        The share file's content (JSON values only).

    Raises
    ------
    UserError
        When no patient is left to share after the disclosure rules.
    """
    spec = specification(config)
    k = spec["min_patients_per_cell"]
    rows, counts = model_rows(data, spec)
    strata = ["site", *spec["groups"]]
    strata += [c for c in spec["covariates"] if c in CATEGORICAL_COVARIATES]
    kept: CellAssignment = assign_cells(rows, GROUP, "visit", strata, k)
    sites = sorted(data["site"].astype(str).unique())
    clinic = config.federation.clinic or " + ".join(sites)
    if kept.patients_kept == 0:
        raise UserError(
            f"{config.source}: no patient of {clinic} can be shared: after the disclosure rules "
            f"(at least {k} patients per schedule) every patient was left out."
        )
    shared = kept.rows.reset_index(drop=True)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pipeline_version": pipeline_version(),
        "specification_hash": specification_hash(spec),
        "specification": spec,
        "clinic": clinic,
        "disclosure": {
            "min_patients_per_cell": k,
            "rule": RULE.format(k=k),
            "patients_in_data": int(data[GROUP].nunique()),
            "patients_with_complete_rows": kept.patients_in,
            "patients_shared": kept.patients_kept,
            "patients_coarsened": kept.patients_coarsened,
            "patients_left_out": kept.patients_in - kept.patients_kept,
            "assessments_in_data": counts["rows_in"],
            "assessments_off_schedule": counts["rows_off_schedule"],
            "assessments_incomplete": counts["rows_incomplete"],
            "assessments_dropped_by_rule": kept.rows_dropped,
            "assessments_shared": len(shared),
        },
        "models": [
            _model_block(shared, spec, outcome, group)
            for outcome in spec["outcomes"]
            for group in spec["groups"]
        ],
    }
