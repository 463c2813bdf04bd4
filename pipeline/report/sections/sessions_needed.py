"""How many sessions until it helps: sessions to first response (issue 17, SAP §4b).

Built from the published ``sessions_to_response*`` tables
(:mod:`pipeline.describe.sessions_to_response`); omitted with its reason (the
``clinic_omitted`` table) when the data cannot time assessments by sessions.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.describe.sessions_to_response import CLAIMED_SESSIONS, QUESTION
from pipeline.report import figures as report_figures
from pipeline.report.html import Block, Figure, Paragraph, Section, fmt, fmt_ci, fmt_p, png, table
from pipeline.report.sections.common import SHORT, present

ENDPOINT_WORDS = {"mcid": "the MCID", "halved": "a 50 % reduction"}
CLAIMS = {"acute": "one to three", "chronic": "four to eight"}


def omitted_reason(tables: Mapping[str, pd.DataFrame], question: str) -> str:
    """Why a clinic question was not analysed (the ``clinic_omitted`` table), or empty."""
    if not present(tables, "clinic_omitted"):
        return ""
    rows = tables["clinic_omitted"]
    found = rows.loc[rows["question"] == question, "reason"]
    return str(found.iloc[0]) if len(found) else ""


def _number(value: object) -> float:
    return float(pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0])


def _percent(value: object) -> str:
    number = _number(value)
    return "–" if pd.isna(number) else f"{100 * number:.0f} %"


TITLE = "How many sessions until it helps"


def sessions_needed_sentence(tables: Mapping[str, pd.DataFrame]) -> str:
    """One sentence for the answer page: median sessions to the MCID and the claimed shares.

    Returns
    -------
    str
        E.g. "Half of the acute patients reached the NRS MCID within 2 sessions (95 % CI 2 to
        3) and half of the chronic within 5 (4 to 6); 86 % of acute patients had responded
        within 3 sessions and 91 % of chronic within 8 (Kaplan–Meier, censored at dropout)."
        Empty when the section was omitted.
    """
    if not present(tables, "sessions_to_response"):
        return ""
    med = tables["sessions_to_response"]
    med = med[(med["endpoint"] == "mcid") & (med["group"] == "chronicity")]
    if med.empty:
        return ""
    outcome = SHORT.get(str(med["outcome"].iloc[0]), str(med["outcome"].iloc[0]))
    parts = []
    for row in med.to_dict(orient="records"):
        if pd.isna(_number(row["median"])):
            parts.append(f"fewer than half of the {row['level']} patients reached it")
        else:
            parts.append(
                f"half of the {row['level']} patients within {fmt(row['median'], 0)} sessions "
                f"(95 % CI {fmt_ci(row['ci_low'], row['ci_high'], 0)})"
            )
    text = f"On {outcome}, " + " and ".join(parts) + " reached the MCID"
    if present(tables, "sessions_to_response_shares"):
        shares = tables["sessions_to_response_shares"]
        shares = shares[shares["endpoint"] == "mcid"]
        said = [
            f"{_percent(r['share'])} of {r['level']} patients within {r['within_sessions']}"
            for r in shares.to_dict(orient="records")
        ]
        if said:
            text += "; " + " and ".join(said) + " sessions"
    return text + " (Kaplan–Meier, censored at dropout)."


def sessions_needed_short(tables: Mapping[str, pd.DataFrame]) -> str:
    """Word the answer page's short version of :func:`sessions_needed_sentence` (page 1).

    Returns
    -------
    str
        E.g. "On NRS, half of the acute patients reached the MCID within 2 sessions and half of
        the chronic within 5; see How many sessions until it helps." Empty when the section was
        omitted.
    """
    if not present(tables, "sessions_to_response"):
        return ""
    med = tables["sessions_to_response"]
    med = med[(med["endpoint"] == "mcid") & (med["group"] == "chronicity")]
    if med.empty:
        return ""
    outcome = SHORT.get(str(med["outcome"].iloc[0]), str(med["outcome"].iloc[0]))
    parts = [
        f"fewer than half of the {row['level']} patients"
        if pd.isna(_number(row["median"]))
        else f"half of the {row['level']} patients within {fmt(row['median'], 0)} sessions"
        for row in med.to_dict(orient="records")
    ]
    return f"On {outcome}, " + " and ".join(parts) + f" reached the MCID; see {TITLE}."


def sessions_needed_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Sessions to first response: medians, claimed shares, hazard ratios and the curves."""
    if not present(tables, "sessions_to_response"):
        reason = omitted_reason(tables, QUESTION)
        if not reason:
            return None
        return Section(
            QUESTION, TITLE, (Paragraph(f"Sessions to response are not analysed: {reason}."),)
        )
    claims = " and ".join(
        f"{level} pain within {CLAIMS.get(level, '')} sessions ({k} at most)".replace(" ()", "")
        for level, k in CLAIMED_SESSIONS.items()
    )
    blocks: list[Block] = [
        Paragraph(
            "Each patient's first post-baseline assessment that reached the endpoint (the MCID, "
            "or a 50 % reduction from baseline) is timed by the sessions completed before it; "
            "a patient who never reached it is censored at their last assessment (dropout or "
            "end of follow-up). Assessments are not taken after every session, so a count is "
            "the sessions by which the patient had responded at the latest. The clinics' claim "
            f"is that {claims}. " + sessions_needed_sentence(tables)
        )
    ]
    if present(tables, "sessions_to_response_curve"):
        curve = tables["sessions_to_response_curve"]
        chron = curve[curve["group"] == "chronicity"]
        if not chron.empty:
            blocks.append(
                Figure(
                    png(
                        report_figures.response_curves(
                            chron,
                            panel_labels={e: f"Until {w}" for e, w in ENDPOINT_WORDS.items()},
                        )
                    ),
                    alt="Kaplan-Meier curves of the share not yet responded by sessions "
                    "completed, acute and chronic patients, for the MCID and a 50 % reduction.",
                    caption="Share not yet responded by sessions completed, by chronicity "
                    "(Kaplan–Meier with pointwise 95 % CI; cut where fewer patients than the "
                    "small-cell threshold remain at risk)",
                    anchor="sessions-to-response-curves",
                )
            )
    blocks.append(
        table(
            tables["sessions_to_response"],
            [
                ("Endpoint", "endpoint", lambda r: ENDPOINT_WORDS.get(r["endpoint"], "")),
                ("Grouping", "group", None),
                ("Level", "level", None),
                ("Patients", "#patients", None),
                ("Responded", "#events", None),
                ("Median sessions", "#median", lambda r: fmt(r["median"], 1)),
                ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 1)),
            ],
            caption="Median sessions to first response",
            note="A missing upper limit: the confidence band never fell to one half within "
            "the sessions observed. " + note,
        )
    )
    if present(tables, "sessions_to_response_shares"):
        blocks.append(
            table(
                tables["sessions_to_response_shares"],
                [
                    ("Endpoint", "endpoint", lambda r: ENDPOINT_WORDS.get(r["endpoint"], "")),
                    ("Level", "level", None),
                    ("Within sessions", "#within_sessions", None),
                    ("Patients", "#patients", None),
                    ("Share responded", "#share", lambda r: _percent(r["share"])),
                    (
                        "95 % CI",
                        "#ci",
                        lambda r: f"{_percent(r['ci_low'])} to {_percent(r['ci_high'])}",
                    ),
                ],
                caption="Share responded within the sessions the clinics quote",
            )
        )
    if present(tables, "sessions_to_response_hr"):
        blocks.append(
            table(
                tables["sessions_to_response_hr"],
                [
                    ("Endpoint", "endpoint", lambda r: ENDPOINT_WORDS.get(r["endpoint"], "")),
                    ("Comparison", "level", lambda r: f"{r['level']} vs {r['reference']}"),
                    ("Adjusted for", "adjusted_for", None),
                    ("Hazard ratio", "#hr", lambda r: fmt(r["hazard_ratio"], 2)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                ],
                caption="Speed of response: Cox hazard ratio (above 1: faster response)",
                note="Cox model with Efron ties, sessions as the time scale, censored at "
                "dropout; Wald 95 % CI.",
            )
        )
    return Section(QUESTION, TITLE, tuple(blocks))
