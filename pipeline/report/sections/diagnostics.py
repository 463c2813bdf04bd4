"""Diagnostics: model fits, every warning raised, residual plots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline.lmm.optim import ROUTES
from pipeline.report import figures as report_figures
from pipeline.report.html import (
    MISSING,
    Block,
    Figure,
    Paragraph,
    Section,
    Table,
    fmt,
    png,
    table,
)
from pipeline.report.labels import optimiser_label
from pipeline.report.sections.common import (
    OUTCOMES,
    analysis_column,
    analysis_label,
    fit_column,
    number,
    outcome_column,
    present,
)
from pipeline.schemas.identity import declared_factors


def split_warnings(row: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Split a model's notes into those about the fit kept and warnings of discarded attempts.

    The engine prefixes each warning with the route that raised it (``lbfgs: ConvergenceWarning:
    ...``, :class:`pipeline.lmm.optim.WarningRecorder`); a warning from a route other than the
    kept one (``optimizer``) comes from an attempt that was discarded.

    Returns
    -------
    (list of str, list of str)
        The message, fallback and warnings about the kept fit; the discarded attempts' warnings.
    """
    kept_route = row.get("optimizer")
    about_fit, about_attempts = [], []
    for key in ("message", "fallback"):
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            about_fit.append(value.strip())
    value = row.get("warnings")
    for text in value.split(" | ") if isinstance(value, str) else []:
        text = text.strip()
        if not text:
            continue
        route = text.split(":", 1)[0].strip()
        if route in ROUTES and route != kept_route:
            about_attempts.append(text)
        else:
            about_fit.append(text)
    return about_fit, about_attempts


def diagnostics_section(
    tables: Mapping[str, pd.DataFrame],
    flags: Mapping[tuple[str, str], str],
    residuals: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]],
    outcome_labels: Mapping[str, str] | None = None,
) -> Section | None:
    """Model fits, every message and warning raised, residual plots of the primary models.

    ``outcome_labels`` names a study's declared outcomes (default: NRS, VAS and ODI).
    """
    if not present(tables, "diagnostics"):
        return None
    named = {**OUTCOMES, **(outcome_labels or {})}
    d = tables["diagnostics"].drop(columns=["fit_seconds"], errors="ignore")
    factors = declared_factors(tables)
    columns: list[tuple[str, str, Callable | None]] = [
        analysis_column(factors),
        outcome_column(outcome_labels),
        fit_column(flags),
        ("Obs.", "#n_obs", None),
        ("Patients", "#n_patients", None),
        ("Random effects", "random_effects", None),
        ("Optimiser", "optimizer", lambda r: optimiser_label(r["optimizer"])),
    ]
    if "residual_sd" in d:
        columns += [
            ("Residual SD", "#rsd", lambda r: fmt(r["residual_sd"], 2)),
            ("Skew", "#skew", lambda r: fmt(r["residual_skewness"], 2)),
            ("Kurtosis (excess)", "#kurt", lambda r: fmt(r["residual_excess_kurtosis"], 2)),
            (
                "Beyond 3 SD",
                "#b3",
                lambda r: fmt(100 * number(r["residual_share_beyond_3sd"]), 1) + " %",
            ),
        ]
    blocks: list[Block] = [
        table(d, columns, caption="Model fits"),
    ]
    kept, discarded = [], []
    for r in d.to_dict(orient="records"):
        about_fit, about_attempts = split_warnings(r)
        where = (analysis_label(r["analysis"], factors), named.get(r["outcome"], r["outcome"]))
        if about_fit:
            kept.append((*where, " | ".join(about_fit)))
        if about_attempts:
            discarded.append((*where, len(about_attempts)))
    if kept:
        blocks.append(
            Table(
                header=("Analysis", "Outcome", "Notes and warnings about the fit kept"),
                rows=tuple(kept),
                numeric=(False, False, False),
                caption="Notes and warnings about the fits the estimates come from (none filtered)",
            )
        )
    if discarded:
        blocks.append(
            Paragraph(
                "Warnings from optimisation attempts that were discarded because another "
                "attempt reached a better criterion: "
                + "; ".join(f"{a}, {o}: {n}" for a, o, n in discarded)
                + ". They do not concern the estimates shown; each is listed, as raised, in "
                "the warnings column of reports/tables/diagnostics.csv.",
                "note",
            )
        )
    blocks.append(
        Paragraph(
            "statsmodels warns that 'the MLE may be on the boundary' whenever a variance is below "
            "a fixed 0.01, an ordinary value for a slope on the NRS scale; the pipeline judges a "
            "boundary fit by the likelihood and the estimates (a variance near zero or a "
            "correlation of ±1), as lme4 does, and flags it in the Fit column next to every "
            "estimate the model gives.",
            "note",
        )
    )
    for (analysis, outcome), (fitted, resid) in residuals.items():
        title = f"{analysis_label(analysis, factors)}, {named.get(outcome, outcome)}"
        blocks.append(
            Figure(
                png(report_figures.residual_plots(fitted, resid, title=title)),
                alt=f"Residuals against fitted values and normal quantile plot for {title}",
                caption=f"Conditional residuals (with the random effects) of {title}; fit: "
                f"{flags.get((analysis, outcome), MISSING)}.",
                anchor=f"residuals-{analysis}-{outcome}",
            )
        )
    return Section("diagnostics", "Diagnostics", tuple(blocks))
