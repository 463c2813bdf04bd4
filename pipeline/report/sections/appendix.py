"""Appendix: fixed effects and variance components of the main models."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.report.html import (
    Block,
    Paragraph,
    Section,
    fmt,
    fmt_ci,
    fmt_p,
    sig,
    table,
)
from pipeline.report.labels import term_label, variable_label
from pipeline.report.sections.common import (
    ANALYSIS_COLUMN,
    OUTCOME_COLUMN,
    analysis_label,
    is_main,
    present,
)


def appendix_section(tables: Mapping[str, pd.DataFrame]) -> Section | None:
    """Tabulate the fixed effects and variance components of the main analyses."""
    if not present(tables, "fixed_effects"):
        return None
    fe = tables["fixed_effects"]
    fe = fe[fe["analysis"].map(is_main)]
    blocks: list[Block] = []
    for analysis in dict.fromkeys(fe["analysis"]):
        blocks.append(
            table(
                fe[fe["analysis"] == analysis],
                [
                    OUTCOME_COLUMN,
                    ("Term", "term", lambda r: term_label(r["term"])),
                    ("Estimate", "#e", lambda r: fmt(r["estimate"], 3)),
                    ("SE", "#se", lambda r: fmt(r["std_err"], 3)),
                    ("df", "#df", lambda r: fmt(r["df"], 1)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 3)),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                ],
                caption=f"Fixed effects: {analysis_label(analysis)}",
            )
        )
    if present(tables, "variance_components"):
        vc = tables["variance_components"]
        vc = vc[vc["analysis"].map(is_main)]
        blocks.append(
            table(
                vc,
                [
                    ANALYSIS_COLUMN,
                    OUTCOME_COLUMN,
                    ("Group", "group", lambda r: variable_label(r["group"]).replace("_", " ")),
                    ("Term", "term", lambda r: term_label(r["term"])),
                    ("Variance", "#v", lambda r: sig(r["variance"])),
                    ("SD", "#sd", lambda r: sig(r["std_dev"])),
                    ("Correlation", "#c", lambda r: sig(r["correlation"], 3)),
                ],
                caption="Variance components",
            )
        )
    blocks.append(
        Paragraph(
            "Reference levels: superficial needling, no twitch, acute pain and, for the clinic "
            "and the visit, the level without a row of its own; a level's coefficient is its "
            "difference from the reference level, and '×' marks an interaction (a difference "
            "in that difference). Estimates of the "
            "sensitivity and subgroup models, under the engine's own term names, are in "
            "reports/tables/fixed_effects.csv.",
            "note",
        )
    )
    return Section("appendix", "Appendix: model estimates", tuple(blocks))
