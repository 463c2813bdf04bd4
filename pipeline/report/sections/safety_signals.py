"""Safety signals: patients with a contraindication or caution who were needled (issue 17).

Shown early in the report (right after the summary): a patient the clinics call "not a
candidate" who was needled anyway is a finding in itself, whatever its adverse-event rate.
Built from the published ``safety_signals`` and ``safety_signal_rate_ratios`` tables
(:mod:`pipeline.describe.safety_signals`); omitted with its reason (``clinic_omitted``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.describe.clinic import SAFETY_SIGNALS
from pipeline.report.html import Block, Paragraph, Section, fmt, fmt_ci, fmt_p, table
from pipeline.report.sections.common import present
from pipeline.report.sections.sessions_needed import omitted_reason

TITLE = "Safety signals: contraindicated patients who were needled"
FLAG_WORDS = {
    "anticoagulants": "on anticoagulants",
    "bleeding_disorder": "with a bleeding disorder",
    "pregnant": "pregnant",
    "under_12": "under 12 years old",
    "unable_to_consent": "unable to consent",
    "immunocompromised": "immunocompromised",
    "recent_surgery": "after recent surgery",
    "needle_phobia": "with needle phobia",
    "any flag": "with any flag",
}


def _count(value: object) -> str:
    """Return a published count as text (a suppressed one keeps its marker, e.g. ``<5``)."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return str(value) if pd.isna(number) else f"{int(number)}"


def safety_signal_sentence(tables: Mapping[str, pd.DataFrame]) -> str:
    """One sentence for the answer page: who was needled despite a flag, and their AE rate.

    Returns
    -------
    str
        E.g. "11 patients with a contraindication or caution flag were needled (<5 on
        anticoagulants, <5 of them deeply); their adverse-event rate was 0.80 times that of
        patients without a flag (95 % CI 0.26 to 1.91)." Counts below the small-cell
        threshold keep their marker. Empty when the section was omitted.
    """
    if not present(tables, "safety_signals"):
        return ""
    signals = tables["safety_signals"]
    every = signals[(signals["flag"] == "any flag") & (signals["depth"] == "all")]
    if every.empty:
        return "No patient with a recorded contraindication or caution flag was needled."
    text = (
        f"{_count(every['patients'].iloc[0])} patients with a contraindication or caution "
        "flag were needled"
    )
    excluded = signals[signals["not_a_candidate"].astype(str).isin(["True", "true"])]
    said = []
    for flag in dict.fromkeys(excluded["flag"]):
        rows = excluded[excluded["flag"] == flag].set_index("depth")
        part = f"{_count(rows.loc['all', 'patients'])} {FLAG_WORDS.get(flag, flag)}"
        if "deep" in rows.index:
            part += f" ({_count(rows.loc['deep', 'patients'])} of them deeply)"
        said.append(part)
    if said:
        text += ", of whom the clinics would not needle " + ", ".join(said)
    if present(tables, "safety_signal_rate_ratios"):
        ratios = tables["safety_signal_rate_ratios"]
        row = ratios[ratios["flag"] == "any flag"]
        if not row.empty and pd.notna(pd.to_numeric(row["rate_ratio"], errors="coerce").iloc[0]):
            r = row.iloc[0]
            text += (
                f"; their adverse-event rate was {fmt(r['rate_ratio'], 2)} times that of "
                f"patients without a flag (95 % CI {fmt_ci(r['ci_low'], r['ci_high'])})"
            )
    return text + "."


def safety_signal_short(tables: Mapping[str, pd.DataFrame]) -> str:
    """Word the answer page's short version of :func:`safety_signal_sentence` (page 1).

    Returns
    -------
    str
        E.g. "11 patients with a contraindication or caution flag were needled; see Safety
        signals." Empty when the section was omitted.
    """
    if not present(tables, "safety_signals"):
        return ""
    signals = tables["safety_signals"]
    every = signals[(signals["flag"] == "any flag") & (signals["depth"] == "all")]
    if every.empty:
        return "No patient with a recorded contraindication or caution flag was needled."
    return (
        f"{_count(every['patients'].iloc[0])} patients with a contraindication or caution flag "
        f"were needled; see {TITLE.split(':')[0]}."
    )


def safety_signals_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Needled patients by flag and depth, their adverse-event rate, and the rate ratio."""
    if not present(tables, "safety_signals"):
        reason = omitted_reason(tables, SAFETY_SIGNALS)
        if not reason:
            return None
        return Section(
            SAFETY_SIGNALS, TITLE, (Paragraph(f"Safety signals are not analysed: {reason}."),)
        )
    blocks: list[Block] = [
        Paragraph(
            "The clinics do not needle people on anticoagulants or with a bleeding disorder, "
            "pregnant women, children under 12 or people who cannot consent, and advise caution "
            "for a weak immune system, recent surgery and needle phobia. "
            + safety_signal_sentence(tables)
            + " A flag that was not recorded is counted neither as present nor as absent."
        ),
        table(
            tables["safety_signals"],
            [
                ("Flag", "flag", lambda r: FLAG_WORDS.get(r["flag"], r["flag"])),
                (
                    "Clinics",
                    "not_a_candidate",
                    lambda r: (
                        "not a candidate"
                        if str(r["not_a_candidate"]) in ("True", "true")
                        else "caution"
                    ),
                ),
                ("Depth", "depth", None),
                ("Patients", "#patients", None),
                ("Sessions", "#sessions", None),
                ("Events", "#events", None),
                ("Per 100 sessions", "#rate", lambda r: fmt(r["rate_per_100"], 1)),
                ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 1)),
            ],
            caption="Patients with a contraindication or caution flag who were needled",
            note="A patient needled at both depths counts under each. " + note,
        ),
    ]
    if present(tables, "safety_signal_rate_ratios"):
        blocks.append(
            table(
                tables["safety_signal_rate_ratios"],
                [
                    ("Flag", "flag", lambda r: FLAG_WORDS.get(r["flag"], r["flag"])),
                    ("Rate ratio", "#rr", lambda r: fmt(r["rate_ratio"], 2)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                    ("Note", "note", None),
                ],
                caption="Adverse-event rate of flagged patients against patients recorded "
                "without any flag (exact conditional test, as R poisson.test)",
                note=note,
            )
        )
    return Section(SAFETY_SIGNALS, TITLE, tuple(blocks))
