"""Safety: adverse events per 100 sessions and the rate ratio between groups."""

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
    table,
)
from pipeline.report.sections import recorded
from pipeline.report.sections.common import present


def safety_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Adverse events per 100 sessions by group and their rate ratio."""
    if not present(tables, "adverse_event_rates"):
        return None
    none, _ = recorded.gaps(tables, ["adverse_event"])
    if none:
        return Section(
            "safety",
            "Safety",
            (
                Paragraph(
                    "Adverse events were not recorded: no source has an adverse-event field, so "
                    "no adverse-event rate or rate ratio is reported (this is not a rate of "
                    "zero). " + note
                ),
            ),
        )
    blocks: list[Block] = [
        table(
            tables["adverse_event_rates"],
            [
                ("Grouping", "group", None),
                ("Level", "level", None),
                ("Sessions", "#sessions", None),
                ("Sessions with an event", "#events", None),
                ("Per 100 sessions", "#rate", lambda r: fmt(r["rate_per_100"], 1)),
                (
                    "95 % CI (exact Poisson)",
                    "#ci",
                    lambda r: fmt_ci(r["ci_low"], r["ci_high"], 1),
                ),
                ("Not recorded", "#not_recorded", None),
            ],
            caption="Adverse events per 100 sessions",
            note="A session with two adverse events counts once here (the side effects by "
            "kind count every event). Sessions whose adverse event was not recorded (the field "
            "left empty, or missing from the source's files) are not in the denominators. "
            + " ".join(t for t in (recorded.sentence(tables, recorded.SAFETY_FIELDS), note) if t),
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
