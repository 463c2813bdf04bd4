"""Diagnostics: model fits, every warning raised, residual plots."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

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
        ("Optimiser", "optimizer", None),
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
    notes = []
    for r in d.to_dict(orient="records"):
        text = []
        for key in ("message", "fallback", "warnings"):
            value = r.get(key)
            if isinstance(value, str) and value.strip():
                text.append(value.strip())
        if text:
            notes.append(
                (
                    analysis_label(r["analysis"], factors),
                    named.get(r["outcome"], r["outcome"]),
                    " | ".join(text),
                )
            )
    if notes:
        blocks.append(
            Table(
                header=("Analysis", "Outcome", "Messages and warnings, as raised"),
                rows=tuple(notes),
                numeric=(False, False, False),
                caption="Every message and warning raised while fitting (none filtered)",
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
