"""Immediate relief: the change within a session, by depth and twitch (issue 17, SAP §4b).

Built from the published ``immediate_relief`` and ``immediate_relief_next_visit`` tables
(:mod:`pipeline.describe.immediate_relief`); omitted with its reason (``clinic_omitted``) when
no session was measured immediately before and after.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.describe.clinic import IMMEDIATE_RELIEF
from pipeline.report import figures as report_figures
from pipeline.report.html import Block, Figure, Paragraph, Section, fmt, fmt_ci, fmt_p, png, table
from pipeline.report.sections.common import SHORT, number, present
from pipeline.report.sections.sessions_needed import omitted_reason

TITLE = "Immediate relief: within a session"


def _short(outcome: str) -> str:
    return SHORT.get(outcome, outcome)


def _ci(row: Mapping) -> str:
    return f"95 % CI {fmt(row['ci_low'], 2)} to {fmt(row['ci_high'], 2)}"


def immediate_relief_sentence(tables: Mapping[str, pd.DataFrame]) -> str:
    """Say how much a session relieved at once, by depth and twitch, and what it predicts.

    Returns
    -------
    str
        E.g. "Measured immediately before and after 98 sessions of 62 patients, NRS improved
        by 1.45 points within a session (95 % CI 1.30 to 1.60); deep sessions by 0.55 more
        than superficial (...) and sessions with a twitch response by 0.41 more than without
        (...). A point more of immediate relief went with -0.05 points more improvement at the
        next visit (...)." Empty when the section was omitted.
    """
    if not present(tables, "immediate_relief"):
        return ""
    rows = tables["immediate_relief"]
    outcome = str(rows["outcome"].iloc[0])
    rows = rows[rows["outcome"] == outcome]
    overall = rows[rows["comparison"] == "all"].iloc[0]
    text = (
        f"Measured immediately before and after {overall['pairs']} sessions of "
        f"{overall['patients']} patients, {_short(outcome)} improved by "
        f"{fmt(overall['estimate'], 2)} points within a session ({_ci(overall)})"
    )
    parts = []
    for comparison, words in (
        ("depth", "deep sessions by {} more than superficial ({})"),
        ("twitch", "sessions with a twitch response by {} more than without ({})"),
    ):
        found = rows[(rows["comparison"] == comparison) & (rows["kind"] == "difference")]
        if len(found):
            row = found.iloc[0]
            parts.append(words.format(fmt(row["estimate"], 2), _ci(row)))
    text += ("; " + " and ".join(parts) if parts else "") + "."
    if present(tables, "immediate_relief_next_visit"):
        nxt = tables["immediate_relief_next_visit"]
        nxt = nxt[nxt["outcome"] == outcome]
        if len(nxt):
            row = nxt.iloc[0]
            text += (
                f" A point more of immediate relief went with {fmt(row['slope'], 2)} points "
                f"more improvement at the next visit ({_ci(row)}, adjusted for depth and twitch)."
            )
    return text


def _label(row: Mapping) -> str:
    if row["kind"] == "difference":
        return f"{row['level']} − {row['reference']}"
    return "all sessions" if row["comparison"] == "all" else str(row["level"])


def immediate_relief_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Show the within-session relief by depth and twitch, and its relation to the next visit."""
    if not present(tables, "immediate_relief"):
        reason = omitted_reason(tables, IMMEDIATE_RELIEF)
        if not reason:
            return None
        return Section(
            IMMEDIATE_RELIEF, TITLE, (Paragraph(f"Immediate relief is not analysed: {reason}."),)
        )
    rows = tables["immediate_relief"]
    blocks: list[Block] = [
        Paragraph(
            "Where a session was measured immediately before and after needling, its relief is "
            "the score before minus the score after, turned so that a positive number is an "
            "improvement. A mixed model with a random intercept per patient gives the mean "
            "relief, the difference of deep from superficial sessions adjusted for twitch, and "
            "of sessions with a twitch response from those without, adjusted for depth. "
            + immediate_relief_sentence(tables)
        )
    ]
    drawn = rows.assign(
        panel=rows["outcome"],
        label=[_label(r) for r in rows.to_dict(orient="records")],
        primary=False,
    )
    labels = {
        o: f"{_short(o)} relief within a session (improvement, 95 % CI)"
        for o in dict.fromkeys(rows["outcome"])
    }
    if drawn["estimate"].map(number).notna().any():
        blocks.append(
            Figure(
                png(
                    report_figures.forest(
                        drawn, panel_labels=labels, others="mean or difference (95 % CI)"
                    )
                ),
                alt="Forest plot of the relief within a session: the mean, by depth and by "
                "twitch, and the deep-superficial and twitch-no twitch differences.",
                caption="Relief within a session, by depth and by twitch",
                anchor="immediate-relief",
            )
        )
    blocks.append(
        table(
            rows,
            [
                ("Outcome", "outcome", lambda r: _short(str(r["outcome"]))),
                ("Comparison", "comparison", None),
                ("Estimate of", "label", _label),
                ("Sessions", "#pairs", None),
                ("Patients", "#patients", None),
                ("Relief", "#estimate", lambda r: fmt(r["estimate"], 2)),
                ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                ("p", "#p", lambda r: fmt_p(r["p_value"])),
            ],
            caption="Relief within a session (improvement from before to after needling)",
            note=note,
        )
    )
    if present(tables, "immediate_relief_next_visit"):
        blocks.append(
            table(
                tables["immediate_relief_next_visit"],
                [
                    ("Outcome", "outcome", lambda r: _short(str(r["outcome"]))),
                    ("Sessions", "#pairs", None),
                    ("Patients", "#patients", None),
                    ("Slope", "#slope", lambda r: fmt(r["slope"], 2)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                    ("Correlation", "#r", lambda r: fmt(r["correlation"], 2)),
                ],
                caption="Improvement at the next visit per point of immediate relief",
                note="Mixed model of the next visit's change from baseline on the session's "
                "relief, adjusted for depth and twitch (random intercept per patient); the "
                "change is taken from baseline, not from the score before the session, whose "
                "measurement error the relief shares. The correlation is unadjusted. " + note,
            )
        )
    return Section(IMMEDIATE_RELIEF, TITLE, tuple(blocks))
