"""The report's glossary and the Methods laid out as a checklist (plain-language blocks)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.report.html import Section, Table

GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "MCID",
        "Minimal clinically important difference: the smallest change in a score that "
        "patients notice as mattering (e.g. 2 points on the 0–10 pain scale). A group "
        "difference smaller than the MCID may be real but is unlikely to matter to one patient.",
    ),
    (
        "95 % CI",
        "95 % confidence interval: the range of true values the data are compatible with. "
        "When it includes zero, the data cannot tell a difference from none.",
    ),
    (
        "Holm p",
        "A p-value adjusted by Holm's method for asking several questions at once (several "
        "outcomes and groupings), so that the chance of any false alarm stays at 5 %.",
    ),
    (
        "Headline estimate",
        "The one estimate per question and outcome that the analysis plan (SAP §4) chose in "
        "advance to answer it; the others support it or show how it could be misread.",
    ),
    (
        "Unadjusted",
        "A comparison that does not account for another difference between the groups. Deep "
        "needling elicits twitches more often, so an unadjusted twitch comparison also "
        "carries the effect of depth (confounding).",
    ),
    (
        "Within / between patients",
        "Within: a patient compared with themselves (sessions with and without a twitch), "
        "free of differences between patients. Between: patients compared with each other.",
    ),
    (
        "Random slope",
        "Each patient's own rate of change over time in the mixed model, around the average "
        "rate of their group.",
    ),
    (
        "Satterthwaite df",
        "Degrees of freedom that make tests and intervals of a mixed model accurate in "
        "studies of this size (as R's lmerTest computes them).",
    ),
    (
        "Mixed model",
        "A regression that follows each patient over repeated assessments, using every "
        "assessment a patient attended.",
    ),
    (
        "Marginal mean",
        "The model's average score of a group at a visit, with the other variables balanced.",
    ),
)
"""Terms a clinic reader meets in the report, with a plain explanation."""


def glossary_section() -> Section:
    """Return the glossary as a section (a two-column table)."""
    return Section(
        "glossary",
        "Glossary",
        (
            Table(
                header=("Term", "Meaning"),
                rows=GLOSSARY,
                numeric=(False, False),
                caption="Terms used in this report",
                anchor="glossary-table",
            ),
        ),
    )


def methods_table(items: Sequence[tuple[str, str]]) -> Table:
    """Lay out the methods as a checklist: one row per item (what was done, and how)."""
    return Table(
        header=("Item", "What was done"),
        rows=tuple((item, text) for item, text in items),
        numeric=(False, False),
        caption="Methods, item by item",
        anchor="methods-list",
    )
