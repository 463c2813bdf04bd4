"""Sensitivity and subgroup analyses: the difference in slope across populations."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.report.html import (
    MISSING,
    Block,
    Paragraph,
    Section,
    fmt,
    fmt_ci,
    fmt_p,
    table,
)
from pipeline.report.sections.common import (
    ANALYSIS_COLUMN,
    FACTOR_LABELS,
    OUTCOME_COLUMN,
    QUESTIONS,
    fit_column,
    is_slope,
    present,
)
from pipeline.schemas.identity import (
    AnalysisKind,
    kind_of,
)


def sensitivity_section(
    tables: Mapping[str, pd.DataFrame], flags: Mapping[tuple[str, str], str]
) -> Section | None:
    """Difference in slope in the primary, sensitivity and subgroup analyses."""
    if not present(tables, "contrasts"):
        return None
    contrasts = tables["contrasts"]
    kinds = contrasts["analysis"].map(kind_of)
    others = kinds.isin([AnalysisKind.SENSITIVITY, AnalysisKind.SUBGROUP])
    chosen = contrasts[is_slope(contrasts) & (others | (kinds == AnalysisKind.TRAJECTORY))]
    if not others.any() or chosen.empty:
        return None
    blocks: list[Block] = []
    n_patients = {}
    if present(tables, "diagnostics"):
        d = tables["diagnostics"]
        n_patients = {
            (a, o): n for a, o, n in zip(d["analysis"], d["outcome"], d["n_patients"], strict=True)
        }
    for q in QUESTIONS:
        rows = chosen[chosen["question"] == q.factor]
        if rows.empty:
            continue
        rows = rows.assign(
            patients=[
                n_patients.get((a, o), MISSING)
                for a, o in zip(rows["analysis"], rows["outcome"], strict=True)
            ]
        )
        blocks.append(
            table(
                rows.sort_values(["outcome", "analysis"], key=lambda s: s.map(str), kind="stable"),
                [
                    OUTCOME_COLUMN,
                    ANALYSIS_COLUMN,
                    ("Contrast", "contrast", None),
                    ("Patients", "#patients", None),
                    ("Estimate", "#e", lambda r: fmt(r["estimate"], 3)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 3)),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                    fit_column(flags),
                ],
                caption=f"{FACTOR_LABELS[q.factor]}: difference in slope in the primary, "
                "sensitivity and subgroup analyses",
            )
        )
    blocks.append(
        Paragraph(
            "Sensitivity analyses refit the trajectory model in sub-populations (completers; "
            "excluding patients with contraindications or protocol deviations); subgroup analyses "
            "estimate the difference within each level of the subgroup. Their p-values are not "
            "adjusted for multiplicity.",
            "note",
        )
    )
    return Section("sensitivity", "Sensitivity and subgroup analyses", tuple(blocks))
