"""Responders: patients reaching the MCID at their last assessment, by group."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.config.settings import Config
from pipeline.report.html import (
    Paragraph,
    Section,
    fmt,
    fmt_ci,
    fmt_p,
    table,
)
from pipeline.report.sections.common import OUTCOME_COLUMN, UNITS, present


def responders_section(
    tables: Mapping[str, pd.DataFrame], config: Config, note: str
) -> Section | None:
    """Responders at the last assessment, with the MCID of each instrument (SAP §2)."""
    if not present(tables, "responders"):
        return None
    resp = tables["responders"]
    mcid = "; ".join(
        f"{name.upper()} ≥ {r.points:g} {UNITS[name]} or ≥ {r.percent:g} %"
        for name, r in config.mcid.items()
    )
    return Section(
        "responders",
        "Responders",
        (
            Paragraph(
                "A responder improved from baseline by at least the MCID at their last "
                f"post-baseline assessment ({mcid}); patients without one are not counted."
            ),
            table(
                resp,
                [
                    OUTCOME_COLUMN,
                    ("Grouping", "group", None),
                    ("Quantity", "quantity", None),
                    (
                        "Level",
                        "level",
                        lambda r: (
                            r["level"]
                            if r["quantity"] == "proportion"
                            else f"{r['level']} vs {r['reference']}"
                        ),
                    ),
                    ("Patients", "#n", None),
                    ("Responders", "#responders", None),
                    ("Estimate", "#estimate", lambda r: fmt(r["estimate"], 3)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 3)),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                    ("Method", "method", None),
                ],
                caption="Responders at the last assessment",
                note=note,
            ),
        ),
    )
