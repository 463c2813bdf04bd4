"""Safety: adverse events per 100 sessions and the rate ratio between groups."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.report.html import (
    Block,
    Section,
    fmt,
    fmt_ci,
    fmt_p,
    table,
)
from pipeline.report.sections.common import present


def safety_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Adverse events per 100 sessions by group and their rate ratio."""
    if not present(tables, "adverse_event_rates"):
        return None
    blocks: list[Block] = [
        table(
            tables["adverse_event_rates"],
            [
                ("Grouping", "group", None),
                ("Level", "level", None),
                ("Sessions", "#sessions", None),
                ("Events", "#events", None),
                ("Per 100 sessions", "#rate", lambda r: fmt(r["rate_per_100"], 1)),
                (
                    "95 % CI (exact Poisson)",
                    "#ci",
                    lambda r: fmt_ci(r["ci_low"], r["ci_high"], 1),
                ),
                ("Not recorded", "#not_recorded", None),
            ],
            caption="Adverse events per 100 sessions",
            note="Sessions whose adverse-event field was left empty are not in the "
            "denominators. " + note,
        )
    ]
    if present(tables, "adverse_event_rate_ratio"):
        blocks.append(
            table(
                tables["adverse_event_rate_ratio"],
                [
                    ("Comparison", "level", lambda r: f"{r['level']} vs {r['reference']}"),
                    ("Rate ratio", "#rr", lambda r: fmt(r["rate_ratio"], 2)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                    ("Method", "method", None),
                ],
                caption="Rate ratio",
            )
        )
    return Section("safety", "Safety", tuple(blocks))
