"""Side effects by kind and technique (issue 17, SAP §4b).

Built from the published ``side_effect_*`` and ``serious_events`` tables
(:mod:`pipeline.describe.side_effects`); omitted with its reason (``clinic_omitted``) when the
study has no session log or recorded no adverse event.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.describe.clinic import SIDE_EFFECTS
from pipeline.report import figures as report_figures
from pipeline.report.html import Block, Figure, Paragraph, Section, fmt, fmt_ci, fmt_p, png, table
from pipeline.report.sections.common import present
from pipeline.report.sections.sessions_needed import omitted_reason

TITLE = "Side effects by kind and technique"
GROUP_WORDS = {"depth": "Needling depth", "twitch": "Twitch response in the session"}


def _severity(r: Mapping) -> str:
    return "all severities" if r["ae_severity"] == "all" else str(r["ae_severity"])


def side_effects_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Rates per 100 sessions by type and severity, rate ratios, durations, serious events."""
    if not present(tables, "side_effect_rates"):
        reason = omitted_reason(tables, SIDE_EFFECTS)
        if not reason:
            return None
        return Section(
            SIDE_EFFECTS,
            TITLE,
            (Paragraph(f"Side effects by kind are not analysed: {reason}."),),
        )
    rates = tables["side_effect_rates"]
    by_type = rates[rates["ae_severity"] == "all"]
    blocks: list[Block] = [
        Paragraph(
            "Adverse events per 100 sessions whose adverse events were recorded, by type and by "
            "severity, for the session's needling depth and for whether a twitch response was "
            "elicited in it. Events are counted, not sessions: a session with soreness and "
            "bruising counts once for each. Intervals are exact Poisson (as R's poisson.test); "
            "twitch is more common in deep needling, so its rates are not adjusted for depth."
        ),
        Figure(
            png(report_figures.rates_by_kind(by_type, panel_labels=GROUP_WORDS)),
            alt="Adverse events per 100 sessions by type, superficial and deep needling, and "
            "sessions with and without a twitch response, with exact 95 % intervals.",
            caption="Adverse events per 100 sessions by type (exact Poisson 95 % CI)",
            anchor="side-effects-by-kind",
        ),
        table(
            rates,
            [
                ("Grouping", "group", None),
                ("Level", "level", None),
                ("Type", "ae_type", None),
                ("Severity", "ae_severity", _severity),
                ("Sessions", "#sessions", None),
                ("Events", "#events", None),
                ("Per 100 sessions", "#rate", lambda r: fmt(r["rate_per_100"], 1)),
                ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 1)),
            ],
            caption="Adverse events per 100 sessions by type and severity",
            note=note,
        ),
    ]
    if present(tables, "side_effect_rate_ratios"):
        blocks.append(
            table(
                tables["side_effect_rate_ratios"],
                [
                    ("Comparison", "level", lambda r: f"{r['level']} vs {r['reference']}"),
                    ("Type", "ae_type", None),
                    ("Rate ratio", "#rr", lambda r: fmt(r["rate_ratio"], 2)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                    ("Note", "note", None),
                ],
                caption="Rate ratios by type (exact conditional test, as R poisson.test)",
            )
        )
    if present(tables, "side_effect_durations"):
        blocks.append(
            table(
                tables["side_effect_durations"],
                [
                    ("Type", "ae_type", None),
                    ("Events", "#events", None),
                    ("With a duration", "#with_duration", None),
                    ("Median hours", "#median", lambda r: fmt(r["median_hours"], 1)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 1)),
                    (
                        "Quartiles",
                        "#iqr",
                        lambda r: f"{fmt(r['q1_hours'], 1)} to {fmt(r['q3_hours'], 1)}",
                    ),
                    (
                        "Beyond 48 h",
                        "#beyond",
                        lambda r: f"{100 * float(r['share_beyond']):.0f} %",
                    ),
                ],
                caption="How long the events lasted (where recorded; median CI from order "
                "statistics)",
            )
        )
    else:
        blocks.append(
            Paragraph(
                "How long the events lasted was not recorded (no adverse-event table with "
                "ae_duration_hours), so the clinics' 24–48 hours of soreness cannot be checked."
            )
        )
    serious = tables.get("serious_events")
    if serious is not None and not serious.empty:
        blocks.append(
            table(
                serious,
                [
                    ("Type", "ae_type", None),
                    ("Severity", "ae_severity", None),
                    ("Serious", "serious", None),
                    ("Depth", "depth", None),
                    ("Events", "#events", None),
                ],
                caption="Serious or severe events (counted by kind; no patient is identified)",
                note=note,
            )
        )
    else:
        blocks.append(Paragraph("No serious or severe adverse event was recorded."))
    return Section(SIDE_EFFECTS, TITLE, tuple(blocks))
