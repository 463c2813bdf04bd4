"""Does it last: from the end of treatment to each follow-up (issue 17, SAP §4b).

Built from the published ``durability`` table (:mod:`pipeline.describe.durability`); omitted
with its reason (``clinic_omitted``) when no patient was assessed after their last session.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.describe.clinic import DURABILITY
from pipeline.report.html import Paragraph, Section, fmt, fmt_ci, table
from pipeline.report.sections.common import present
from pipeline.report.sections.sessions_needed import omitted_reason

TITLE = "Does it last: after the end of treatment"


def _percent(value: object) -> str:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return "–" if pd.isna(number) else f"{100 * number:.0f} %"


def durability_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Show the change from the end of treatment and the responders still responding."""
    if not present(tables, "durability"):
        reason = omitted_reason(tables, DURABILITY)
        if not reason:
            return None
        return Section(DURABILITY, TITLE, (Paragraph(f"Durability is not analysed: {reason}."),))
    return Section(
        DURABILITY,
        TITLE,
        (
            Paragraph(
                "A patient's end of treatment is their first assessment after their last "
                "session (in a study that marks its follow-ups, their last assessment before "
                "the first marked one); the later assessments are follow-ups 1, 2, ... The "
                "change is the "
                "further improvement since the end of treatment (negative: the relief waned); "
                "the share is of the patients who were MCID responders at the end of treatment."
            ),
            table(
                tables["durability"],
                [
                    ("Grouping", "group", None),
                    ("Level", "level", None),
                    ("Follow-up", "#follow_up", None),
                    ("Patients", "#patients", None),
                    ("Weeks after", "#weeks", lambda r: fmt(r["weeks_after"], 1)),
                    ("Change", "#change", lambda r: fmt(r["change"], 2)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                    ("Responders at end", "#eot_responders", None),
                    ("Still responding", "#still_responding", None),
                    ("Share", "#share", lambda r: _percent(r["share"])),
                    (
                        "95 % CI",
                        "#share_ci",
                        lambda r: f"{_percent(r['share_low'])} to {_percent(r['share_high'])}",
                    ),
                ],
                caption="Change from the end of treatment, and responders still responding",
                note=note,
            ),
        ),
    )
