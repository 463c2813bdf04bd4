"""Combined care: co-interventions as covariate and effect modifier (issue 17, SAP §4b).

Built from the published ``combined_care`` and ``combined_care_tests`` tables
(:mod:`pipeline.describe.combined_care`); omitted with its reason (``clinic_omitted``) when
co-interventions were not recorded.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.describe.clinic import COMBINED_CARE
from pipeline.report import figures as report_figures
from pipeline.report.html import Block, Figure, Paragraph, Section, fmt, fmt_ci, fmt_p, png, table
from pipeline.report.sections.common import SHORT, number, present
from pipeline.report.sections.sessions_needed import omitted_reason

TITLE = "Combined care: needling with exercise or manual therapy"

GROUP_WORDS = {
    "none": "no co-intervention",
    "exercise": "exercise",
    "manual_therapy": "manual therapy",
    "exercise+manual_therapy": "exercise and manual therapy",
}


def _group(value: object) -> str:
    return GROUP_WORDS.get(str(value), str(value))


def combined_care_sentence(tables: Mapping[str, pd.DataFrame]) -> str:
    """Say each comparison adjusted for co-interventions and whether they modified it.

    Returns
    -------
    str
        E.g. "Adjusted for co-interventions, deep needling improved NRS by 0.62 points more
        than superficial (95 % CI 0.1 to 1.1); the difference did not vary detectably between
        the co-intervention groups (likelihood-ratio p = 0.41)." Empty when omitted.
    """
    if not present(tables, "combined_care"):
        return ""
    rows = tables["combined_care"]
    outcome = SHORT.get(str(rows["outcome"].iloc[0]), str(rows["outcome"].iloc[0]))
    tests = tables.get("combined_care_tests", pd.DataFrame(columns=["comparison"]))
    parts = []
    for comparison in dict.fromkeys(rows["comparison"]):
        adjusted = rows[
            (rows["comparison"] == comparison)
            & (rows["model"] == "covariate")
            & (rows["effect"] == "comparison")
        ]
        if adjusted.empty:
            continue
        row = adjusted.iloc[0]
        text = (
            f"adjusted for co-interventions, the {row['level']} group improved {outcome} by "
            f"{fmt(row['estimate'], 2)} points more than the {row['reference']} group (95 % CI "
            f"{fmt(row['ci_low'], 2)} to {fmt(row['ci_high'], 2)})"
        )
        test = tests[tests["comparison"] == comparison]
        if len(test):
            p = number(test["p_value"].iloc[0])
            verb = "varied" if p < 0.05 else "did not vary detectably"
            shown = fmt_p(p)
            text += (
                f" and the difference {verb} between the co-intervention groups "
                f"(likelihood-ratio p {shown if shown.startswith('<') else '= ' + shown})"
            )
        parts.append(text)
    if not parts:
        return ""
    sentence = "; ".join(parts) + "."
    return sentence[0].upper() + sentence[1:]


def combined_care_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Show the comparisons adjusted for and within co-intervention groups, and the tests."""
    if not present(tables, "combined_care"):
        reason = omitted_reason(tables, COMBINED_CARE)
        if not reason:
            return None
        return Section(
            COMBINED_CARE, TITLE, (Paragraph(f"Combined care is not analysed: {reason}."),)
        )
    rows = tables["combined_care"]
    blocks: list[Block] = [
        Paragraph(
            "A patient's co-intervention is the one recorded in at least half of their "
            "sessions (exercise, manual therapy, both, or none). It enters the "
            "change-from-baseline mixed model of the post-baseline assessments (adjusted for "
            "baseline, weeks and chronicity, random intercept per patient) as a covariate, and "
            "as an effect modifier of each comparison: the comparison within each group, and a "
            "likelihood-ratio test of the interaction (ML). Groups with fewer patients than the "
            "small-cell threshold at a level are left out. The comparisons are the "
            "patient-level groups, each on its own (the twitch group is not adjusted for "
            "depth, which confounds it). " + combined_care_sentence(tables)
        )
    ]
    within = rows[rows["model"] == "modifier"]
    if within["estimate"].map(number).notna().any():
        drawn = within.assign(
            panel=within["comparison"],
            label=[_group(v) for v in within["co_intervention"]],
            primary=False,
        )
        labels = {
            c: f"{c}: improvement, level minus reference (95 % CI)"
            for c in dict.fromkeys(within["comparison"])
        }
        blocks.append(
            Figure(
                png(
                    report_figures.forest(
                        drawn, panel_labels=labels, others="within the co-intervention group"
                    )
                ),
                alt="Forest plot of each comparison within each co-intervention group.",
                caption="Each comparison within each co-intervention group",
                anchor="combined-care",
            )
        )
    blocks.append(
        table(
            rows,
            [
                ("Comparison", "comparison", None),
                ("Model", "model", None),
                ("Estimate of", "level", lambda r: f"{r['level']} vs {r['reference']}"),
                ("Co-intervention", "co_intervention", lambda r: _group(r["co_intervention"])),
                ("Patients", "#patients", None),
                ("Improvement", "#estimate", lambda r: fmt(r["estimate"], 2)),
                ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                ("p", "#p", lambda r: fmt_p(r["p_value"])),
            ],
            caption="Comparisons adjusted for (covariate) and within (modifier) co-intervention "
            "groups, and co-interventions against none",
            note=note,
        )
    )
    if present(tables, "combined_care_tests"):
        blocks.append(
            table(
                tables["combined_care_tests"],
                [
                    ("Interaction", "test", None),
                    ("Groups", "#groups", None),
                    ("df", "#df", None),
                    ("χ²", "#chisq", lambda r: fmt(r["chisq"], 2)),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                ],
                caption="Does the co-intervention modify the comparison? (likelihood ratio, ML)",
            )
        )
    return Section(COMBINED_CARE, TITLE, tuple(blocks))
