"""Summary: the answer to each question of the plan, worded from the primary family."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipeline.config.settings import Config
from pipeline.report.html import (
    Block,
    Heading,
    Paragraph,
    Section,
    fmt,
    fmt_ci,
    fmt_p,
)
from pipeline.report.sections.common import (
    OUTCOME_WORDS,
    OUTCOMES,
    QUESTIONS,
    UNITS,
    Question,
    is_slope,
    number,
    present,
    signed,
)
from pipeline.schemas.identity import (
    AnalysisKind,
    Family,
    kind_of,
    name_of,
)


def primary_effects(tables: Mapping[str, pd.DataFrame], time_column: str) -> pd.DataFrame:
    """Select the difference in slopes answering each question, per outcome.

    From ``contrasts`` (family ``primary``, with Holm-adjusted p) when the run has them, else
    from the interaction term of the trajectory models in ``fixed_effects`` (unadjusted p).

    Returns
    -------
    pandas.DataFrame
        ``question, outcome, analysis, estimate, ci_low, ci_high, p, adjusted``.
    """
    columns = ["question", "outcome", "analysis", "estimate", "ci_low", "ci_high", "p", "adjusted"]
    rows = []
    if present(tables, "contrasts") and "family" in tables["contrasts"]:
        contrasts = tables["contrasts"]
        chosen = contrasts[contrasts["family"].astype(str) == Family.PRIMARY]
        for r in chosen.to_dict(orient="records"):
            holm = number(r.get("p_holm"))
            rows.append(
                {
                    "question": r["question"],
                    "outcome": r["outcome"],
                    "analysis": r["analysis"],
                    "estimate": r["estimate"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    "p": holm if not math.isnan(holm) else r["p_value"],
                    "adjusted": not math.isnan(holm),
                }
            )
    elif present(tables, "fixed_effects"):
        fe = tables["fixed_effects"]
        for q in QUESTIONS:
            term = f"{time_column}:{q.factor}[T.{q.level}]"
            trajectory = name_of(AnalysisKind.TRAJECTORY, q.factor)
            chosen = fe[(fe["analysis"] == trajectory) & (fe["term"] == term)]
            for r in chosen.to_dict(orient="records"):
                rows.append(
                    {
                        "question": q.factor,
                        "outcome": r["outcome"],
                        "analysis": r["analysis"],
                        "estimate": r["estimate"],
                        "ci_low": r["ci_low"],
                        "ci_high": r["ci_high"],
                        "p": r["p_value"],
                        "adjusted": False,
                    }
                )
    return pd.DataFrame(rows, columns=columns)


def slope_sentence(effect: Mapping[str, Any], question: Question, time_unit: str) -> str:
    """Word one difference in slopes as a plain sentence.

    Parameters
    ----------
    effect : mapping
        A row of :func:`primary_effects`.
    question : Question
        The question it answers.
    time_unit : str
        ``week`` or ``session``.

    Returns
    -------
    str
        E.g. "NRS pain fell faster with deep needling than with superficial needling: by 0.102
        points per week more (95 % CI 0.064 to 0.140; Holm-adjusted p < 0.001)."
    """
    outcome = effect["outcome"]
    words, unit = OUTCOME_WORDS.get(outcome, outcome), UNITS.get(outcome, "points")
    est, low, high = (float(effect[k]) for k in ("estimate", "ci_low", "ci_high"))
    p_words = ("Holm-adjusted p" if effect["adjusted"] else "p") + (
        " < 0.001" if fmt_p(effect["p"]) == "< 0.001" else f" = {fmt_p(effect['p'])}"
    )
    who = f"with {question.level_words} than {question.reference_words}"
    if question.factor == "depth":
        who = f"with {question.level_words} than with {question.reference_words}"
    if high < 0:
        return (
            f"{words} fell faster {who}: by {fmt(-est, 3)} {unit} per {time_unit} more "
            f"(95 % CI {fmt(-high, 3)} to {fmt(-low, 3)}; {p_words})."
        )
    if low > 0:
        return (
            f"{words} fell more slowly {who}: by {fmt(est, 3)} {unit} per {time_unit} less "
            f"(95 % CI {fmt(low, 3)} to {fmt(high, 3)}; {p_words})."
        )
    return (
        f"{words}: no clear difference in the rate of change {who} (difference in slope "
        f"{signed(est, 3)} {unit} per {time_unit}, 95 % CI {fmt(low, 3)} to {fmt(high, 3)}, "
        f"which includes no difference; {p_words})."
    )


def mcid_sentence(effect: Mapping[str, Any], horizon: float, points: float, percent: float) -> str:
    """Compare the slope difference accumulated over ``horizon`` weeks with the MCID.

    The MCID (SAP §2) is the smallest change that matters to one patient; the slope difference is
    a group average, so the sentence says where its accumulated interval lies relative to it.
    """
    outcome = effect["outcome"]
    unit = UNITS.get(outcome, "points")
    est, low, high = (float(effect[k]) * horizon for k in ("estimate", "ci_low", "ci_high"))
    largest, smallest = max(abs(low), abs(high)), min(abs(low), abs(high))
    if largest < points:
        where = "the whole interval is smaller than that"
    elif smallest >= points and low * high > 0:
        where = "the whole interval is at least that large"
    else:
        where = "the interval includes that size"
    return (
        f"Over {horizon:g} weeks that adds up to {signed(est, 1)} {unit} (95 % CI "
        f"{fmt(low, 1)} to {fmt(high, 1)}); the minimal clinically important difference for one "
        f"patient is {points:g} {unit} or {percent:g} % of baseline, and {where}."
    )


def _adjusted_sentence(
    contrasts: pd.DataFrame, question: Question, outcome: str, time_unit: str
) -> str | None:
    """Word the same slope difference in the joint model (adjusted for the other grouping)."""
    joint = contrasts[
        (contrasts["analysis"].map(kind_of) == AnalysisKind.JOINT)
        & (contrasts["question"] == question.factor)
        & (contrasts["outcome"] == outcome)
        & is_slope(contrasts)
    ]
    if joint.empty:
        return None
    r = joint.iloc[0]
    other = "depth" if question.factor == "twitch" else "twitch response"
    unit = UNITS.get(outcome, "points")
    return (
        f"Adjusted for {other} (joint model): {signed(float(r['estimate']), 3)} {unit} per "
        f"{time_unit} (95 % CI {fmt(float(r['ci_low']), 3)} to {fmt(float(r['ci_high']), 3)})."
    )


def _horizon(tables: Mapping[str, pd.DataFrame]) -> float | None:
    """Weeks from baseline to the last scheduled visit (its mean, rounded)."""
    if not present(tables, "mean_by_visit"):
        return None
    means = tables["mean_by_visit"]
    last = means[means["visit"] == means["visit"].max()]
    weeks = pd.to_numeric(last["mean_weeks"], errors="coerce").mean()
    return float(round(weeks)) if not math.isnan(weeks) and weeks > 0 else None


def summary_section(tables: Mapping[str, pd.DataFrame], config: Config) -> Section | None:
    """Answer each question, with the MCID, the adjusted estimate and safety."""
    time_axis = config.model.time_axis
    time_unit = "week" if time_axis == "weeks" else "session"
    time_column = "weeks" if time_axis == "weeks" else "sessions_completed"
    effects = primary_effects(tables, time_column)
    if effects.empty:
        return None
    horizon = _horizon(tables) if time_axis == "weeks" else None
    contrasts = tables.get("contrasts")
    blocks: list[Block] = []
    for q in QUESTIONS:
        rows = effects[effects["question"] == q.factor]
        if rows.empty:
            continue
        blocks.append(Heading(f"Question {q.number}. {q.title}"))
        for effect in sorted(
            rows.to_dict(orient="records"), key=lambda r: list(OUTCOMES).index(r["outcome"])
        ):
            text = slope_sentence(effect, q, time_unit)
            if horizon and effect["outcome"] in config.mcid:
                rule = config.mcid[effect["outcome"]]
                text += " " + mcid_sentence(effect, horizon, rule.points, rule.percent)
            if contrasts is not None and not contrasts.empty:
                adjusted = _adjusted_sentence(contrasts, q, effect["outcome"], time_unit)
                text += f" {adjusted}" if adjusted else ""
            blocks.append(Paragraph(text, "headline"))
    adjusted = bool(effects["adjusted"].any())
    blocks.append(
        Paragraph(
            "Each answer is the difference between the groups in the average rate of change per "
            f"{time_unit} (trajectory model, SAP §4.1); negative values mean faster improvement, "
            "since higher scores are worse. "
            + (
                "p-values are adjusted by Holm's method across the primary family (the "
                "difference in slopes for depth and for twitch, three outcomes)."
                if adjusted
                else "p-values are not adjusted for multiplicity."
            )
            + " Groups are patient-level exposures, not randomised arms: differences may reflect "
            "who received what as well as what they received.",
            "note",
        )
    )
    if present(tables, "adverse_event_rate_ratio"):
        for r in tables["adverse_event_rate_ratio"].to_dict(orient="records"):
            if isinstance(r["rate_ratio"], str):
                continue
            blocks.append(
                Paragraph(
                    f"Safety: adverse events were {fmt(float(r['rate_ratio']), 2)} times as "
                    f"frequent after {r['level']} as after {r['reference']} sessions (95 % CI "
                    f"{fmt_ci(r['ci_low'], r['ci_high'])}); see Safety."
                )
            )
    return Section("summary", "Summary", tuple(blocks))
