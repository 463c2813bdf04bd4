"""Dose–response: the improvement from one session count to the next (issue 17, SAP §4b).

Built from the published ``dose_response`` table (:mod:`pipeline.describe.dose_response`);
omitted with its reason (``clinic_omitted``) when assessments cannot be timed by sessions.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.describe.clinic import DOSE_RESPONSE
from pipeline.report.html import Paragraph, Section, fmt, fmt_ci, fmt_p, table
from pipeline.report.sections.common import SHORT, present
from pipeline.report.sections.sessions_needed import omitted_reason

TITLE = "Dose–response: the gain of each extra session"


def _flat_from(gains: pd.DataFrame) -> int | None:
    flat = gains[gains["flat_from"].astype(str).isin(["True", "true"])]
    return int(flat["previous"].iloc[0]) if len(flat) else None


def dose_response_sentence(tables: Mapping[str, pd.DataFrame]) -> str:
    """Say where the gain per extra session stops being distinguishable from 0, or empty."""
    if not present(tables, "dose_response"):
        return ""
    gains = tables["dose_response"]
    outcome = SHORT.get(str(gains["outcome"].iloc[0]), str(gains["outcome"].iloc[0]))
    k = _flat_from(gains)
    if k is None:
        return f"On {outcome}, every extra session observed still added a measurable gain."
    return (
        f"On {outcome}, the gain flattened after {k} sessions: no later extra session added a "
        "gain distinguishable from 0."
    )


def dose_response_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Show the marginal gain of each extra session with its CI, and where it flattens."""
    if not present(tables, "dose_response"):
        reason = omitted_reason(tables, DOSE_RESPONSE)
        if not reason:
            return None
        return Section(
            DOSE_RESPONSE, TITLE, (Paragraph(f"Dose–response is not analysed: {reason}."),)
        )
    gains = tables["dose_response"]
    return Section(
        DOSE_RESPONSE,
        TITLE,
        (
            Paragraph(
                "The change from baseline by the number of sessions completed before the "
                "assessment (a mixed model with sessions as categories, adjusted for baseline "
                "and chronicity): each row is the further improvement from one session count to "
                "the next, positive when patients were better. Sessions accumulate with time, "
                "so this is the change seen after that many sessions, not the effect of one "
                "more session. " + dose_response_sentence(tables)
            ),
            table(
                gains,
                [
                    ("From", "#previous", None),
                    (
                        "To sessions",
                        "#sessions",
                        lambda r: (
                            f"{r['sessions']}"
                            + (" or more" if str(r["top"]) in ("True", "true") else "")
                        ),
                    ),
                    ("Assessments", "#assessments", None),
                    ("Gain", "#gain", lambda r: fmt(r["gain"], 2)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                ],
                caption="Marginal gain of each extra session (improvement, outcome units)",
                note=note,
            ),
        ),
    )
