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
    analysis_column,
    analysis_label,
    is_main,
    outcome_column,
    present,
)
from pipeline.schemas.identity import declared_factors

NEEDLING_REFERENCES = "superficial needling, no twitch, acute pain"


def appendix_section(
    tables: Mapping[str, pd.DataFrame],
    references: str = NEEDLING_REFERENCES,
    outcome_labels: Mapping[str, str] | None = None,
) -> Section | None:
    """Tabulate the fixed effects and variance components of the main analyses.

    ``references`` words the reference levels of the study's comparisons and covariates (the
    needling default's, or those a study declares); ``outcome_labels`` names a study's declared
    outcomes.
    """
    if not present(tables, "fixed_effects"):
        return None
    factors = declared_factors(tables)
    fe = tables["fixed_effects"]
    fe = fe[fe["analysis"].map(lambda a: is_main(a, factors))]
    blocks: list[Block] = []
    for analysis in dict.fromkeys(fe["analysis"]):
        blocks.append(
            table(
                fe[fe["analysis"] == analysis],
                [
                    outcome_column(outcome_labels),
                    ("Term", "term", lambda r: term_label(r["term"])),
                    ("Estimate", "#e", lambda r: fmt(r["estimate"], 3)),
                    ("SE", "#se", lambda r: fmt(r["std_err"], 3)),
                    ("df", "#df", lambda r: fmt(r["df"], 1)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 3)),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                ],
                caption=f"Fixed effects: {analysis_label(analysis, factors)}",
            )
        )
    if present(tables, "variance_components"):
        vc = tables["variance_components"]
        vc = vc[vc["analysis"].map(lambda a: is_main(a, factors))]
        blocks.append(
            table(
                vc,
                [
                    analysis_column(factors),
                    outcome_column(outcome_labels),
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
            f"Reference levels: {references} and, for the clinic and the visit, the level "
            "without a row of its own; a level's coefficient is its difference from the reference "
            "level, and '×' marks an interaction (a difference in that difference). Estimates of "
            "the sensitivity and subgroup models, under the engine's own term names, are in "
            "reports/tables/fixed_effects.csv.",
            "note",
        )
    )
    return Section("appendix", "Appendix: model estimates", tuple(blocks))
