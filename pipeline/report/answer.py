"""The answer page (report page 1): one verdict per question and outcome, in plain words.

It is a view of the run's ``answer`` table (:mod:`pipeline.analyses.headline`): the headline
estimate of each comparison × outcome, its 95 % CI, Holm p and verdict against the MCID, with
the supporting and unadjusted estimates beside it, never in its place. One figure draws the
headlines against the MCID band; the adverse-event ratio follows.

Other sections add one sentence each to the page: a contributor is a function of the published
tables and the configuration returning :class:`AnswerLine` items (none when it has nothing to
say); :func:`pipeline.report.content.build_content` passes the list of contributors to
:func:`answer_section`, which places the lines after the verdicts, ordered by ``order``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from pipeline.analyses.headline import Estimand, Role, Verdict
from pipeline.config.settings import Comparison, Config, Outcome
from pipeline.figures import panels as plotting
from pipeline.figures.style import GREY, OKABE_ITO
from pipeline.report.html import Block, Figure, Heading, Paragraph, Section, fmt, fmt_p, png
from pipeline.report.sections import recorded
from pipeline.report.sections.common import QUESTIONS, number, present
from pipeline.schemas.columns import INSTRUMENTS

SECTION_ID = "answer"
SECTION_TITLE = "The answer"


@dataclass(frozen=True)
class AnswerLine:
    """One sentence of the answer page contributed by a section.

    Attributes
    ----------
    topic : str
        What it is about (``safety``, ``sessions_needed``, ``tipping_point``...): typed, for
        tests and ordering, never shown.
    text : str
        The sentence, in plain words, ending with a pointer to the section it comes from.
    order : int
        Place among the contributed lines (smaller first; safety is 10).
    """

    topic: str
    text: str
    order: int = 50


Contributor = Callable[[Mapping[str, pd.DataFrame], Config], Sequence[AnswerLine]]
"""A section's contribution to the answer page."""


VERDICT_WORDS = {
    Verdict.IMPORTANT: "clinically important {noun}",
    Verdict.BELOW_MCID: "detectable {noun}, but smaller than the MCID",
    Verdict.NO_DIFFERENCE: "no detectable {noun}; a clinically important one is ruled out",
    Verdict.INCONCLUSIVE: "no detectable {noun}, but inconclusive: the interval still "
    "includes a clinically important one",
    Verdict.DETECTABLE: "detectable {noun} (no MCID in points declared)",
    Verdict.NOT_DETECTED: "no detectable {noun} (no MCID in points declared)",
    Verdict.NOT_ESTIMABLE: "{noun} not estimable from these data",
}
"""The verdict of one outcome, in words (``{noun}``: e.g. "twitch effect")."""

VERDICT_SHORT = {
    Verdict.IMPORTANT: "clinically important",
    Verdict.BELOW_MCID: "detectable, below the MCID",
    Verdict.NO_DIFFERENCE: "no detectable difference",
    Verdict.INCONCLUSIVE: "inconclusive",
    Verdict.DETECTABLE: "detectable",
    Verdict.NOT_DETECTED: "no detectable difference",
    Verdict.NOT_ESTIMABLE: "not estimable",
}
"""The verdict as a table cell or figure label."""

NOT_DETECTED = (Verdict.NO_DIFFERENCE, Verdict.INCONCLUSIVE, Verdict.NOT_DETECTED)


def signed(value: float, digits: int) -> str:
    """Format a number with its sign always shown (``+1.22``, ``−0.69``)."""
    text = fmt(float(value), digits)
    return text if text.startswith("−") or float(value) == 0 else "+" + text


def outcome_words(outcome: Outcome) -> str:
    """Name an outcome in a sentence (``NRS pain``; a declared one by its short name)."""
    known = INSTRUMENTS.get(outcome.name)
    return known.words if known is not None else outcome.short


def outcome_unit(outcome: Outcome) -> str:
    """Return the unit of a difference (``points`` for the ODI, whose scores are percentages)."""
    known = INSTRUMENTS.get(outcome.name)
    return known.unit if known is not None else outcome.unit


def _digits(outcome: Outcome) -> int:
    """Decimals for an outcome's differences: one for wide scales (0–100), two otherwise."""
    return 1 if outcome.high - outcome.low > 20 else 2


def noun(comparison: Comparison, level: str, reference: str) -> str:
    """Name a comparison's effect (``twitch effect``, ``depth effect``)."""
    if comparison.kind in ("twitch", "depth"):
        return f"{comparison.kind} effect"
    return f"difference between {level} and {reference}"


def _p_words(row: Mapping) -> str:
    p = row["p_holm"]
    text = fmt_p(p)
    return "Holm p " + (text if text.startswith("<") else f"= {text}")


def _over(row: Mapping, time_unit: str) -> str:
    """Say where the estimate is read: over the horizon, within patients, at the visit."""
    horizon = number(row["horizon"])
    estimand = Estimand(row["estimand"])
    if estimand is Estimand.WITHIN_PATIENT:
        return "twitch in every earlier session vs none, within the same patients"
    if estimand is Estimand.VISIT_DIFFERENCE:
        at = f" ({time_unit} {horizon:g})" if not math.isnan(horizon) else ""
        return f"at the primary visit {row['visit']}{at}, adjusted for baseline"
    if math.isnan(horizon):
        return "at the primary visit"
    plural = "s" if horizon != 1 else ""
    return f"over {horizon:g} {time_unit}{plural} of care"


def _amount(row: Mapping, outcome: Outcome, *, direction: bool = False) -> str:
    """Word an estimate and its CI; with ``direction``, say which group improved more."""
    d = _digits(outcome)
    low, high = number(row["ci_low"]), number(row["ci_high"])
    which = ""
    if direction and (low > 0 or high < 0):
        level, reference = row["level"], row["reference"]
        which = (
            f", more improvement with {level} than with {reference}"
            if low > 0
            else f", less improvement with {level} than with {reference}"
        )
    return (
        f"{signed(row['improvement'], d)} {outcome_unit(outcome)} (95 % CI "
        f"{signed(low, d)} to {signed(high, d)}){which}"
    )


def verdict_sentence(row: Mapping, outcome: Outcome, comparison: Comparison, time_unit: str) -> str:
    """Word the verdict of one headline row (a row of the ``answer`` table).

    Returns
    -------
    str
        E.g. "NRS pain: no detectable twitch effect; a clinically important one is ruled out.
        +0.69 points (95 % CI −0.32 to +1.70), twitch in every earlier session vs none, within
        the same patients; Holm p = 0.531; MCID 2 points."
    """
    verdict = Verdict(row["verdict"])
    what = VERDICT_WORDS[verdict].format(noun=noun(comparison, row["level"], row["reference"]))
    if verdict is Verdict.NOT_ESTIMABLE:
        return f"{outcome_words(outcome)}: {what}."
    mcid = number(row["mcid"])
    mcid_words = (
        f"MCID {mcid:g} {outcome_unit(outcome)}"
        if not math.isnan(mcid)
        else "no MCID in points declared"
    )
    return (
        f"{outcome_words(outcome)}: {what}. {_amount(row, outcome, direction=True)}, "
        f"{_over(row, time_unit)}; "
        f"{_p_words(row)}; {mcid_words}."
    )


def question_sentence(rows: pd.DataFrame, comparison: Comparison) -> str:
    """Word one sentence over every outcome of a question (its headline rows)."""
    level, reference = str(rows["level"].iloc[0]), str(rows["reference"].iloc[0])
    what = noun(comparison, level, reference)
    verdicts = [Verdict(v) for v in rows["verdict"]]
    if all(v in NOT_DETECTED for v in verdicts):
        return f"No detectable {what} on any outcome."
    detected = (Verdict.IMPORTANT, Verdict.BELOW_MCID, Verdict.DETECTABLE)
    found = [v for v in verdicts if v in detected]
    if len(found) == len(verdicts):
        important = sum(v is Verdict.IMPORTANT for v in verdicts)
        size = (
            "clinically important on every outcome"
            if important == len(verdicts)
            else "below the MCID on "
            + ("every outcome" if important == 0 else f"{len(verdicts) - important} outcome(s)")
        )
        return f"A detectable {what} on every outcome, {size}."
    return f"A detectable {what} on {len(found)} of {len(verdicts)} outcomes."


def _basis(comparison: Comparison, rows: pd.DataFrame) -> str:
    """Say which estimate answers the question, and why (SAP §4 headline estimands)."""
    estimand = Estimand(rows["estimand"].iloc[0])
    if estimand is Estimand.VISIT_DIFFERENCE:
        return (
            "Randomised comparison: the baseline-adjusted difference between the arms at the "
            "primary visit (repeated-measures model)."
        )
    if estimand is Estimand.WITHIN_PATIENT:
        return (
            "Twitch varies from session to session, so the answer compares each patient with "
            "themselves (session-level model); it is free of differences between patients, "
            "such as needling depth."
        )
    if comparison.kind == "twitch":
        return (
            "No session-level estimate could be fitted, so the answer is the comparison adjusted "
            "for needling depth (joint model)."
        )
    return (
        "Observational comparison: the difference in the rate of change, adjusted for the "
        "baseline covariates and accumulated to the last visit (trajectory model). Groups were "
        "not randomised, so some of it may reflect who received what."
    )


def _others(
    rows: pd.DataFrame, outcomes: Mapping[str, Outcome], comparison: Comparison, time_unit: str
) -> list[Block]:
    """Word the supporting and unadjusted estimates of one question as one note."""
    parts = []
    for role in (Role.SUPPORTING, Role.UNADJUSTED):
        chosen = rows[rows["role"] == role]
        if chosen.empty:
            continue
        amounts = "; ".join(
            f"{outcomes[r['outcome']].short} {_amount(r, outcomes[r['outcome']])}"
            for r in chosen.to_dict(orient="records")
            if r["outcome"] in outcomes
        )
        over = _over(chosen.iloc[0].to_dict(), time_unit)
        if role is Role.SUPPORTING:
            other = "twitch" if comparison.kind == "depth" else "needling depth"
            lead = f"Supporting, adjusted for {other} (joint model), {over}"
            if comparison.kind == "depth":
                lead += " (the part of the depth effect not through twitch)"
        else:
            lead = (
                f"Unadjusted (not adjusted for needling depth), {over} — not the answer: deep "
                "needling elicits twitches more often and has its own effect, so this comparison "
                "is confounded by depth"
            )
        parts.append(f"{lead}: {amounts}.")
    if not parts:
        return []
    return [Paragraph(f"{comparison.label.capitalize()}. " + " ".join(parts), "note")]


def answer_figure(rows: pd.DataFrame, labels: Mapping[str, str]) -> MplFigure:
    """Headline estimates with 95 % CIs, in units of each outcome's MCID, against the MCID band.

    Parameters
    ----------
    rows : pandas.DataFrame
        Headline rows of the ``answer`` table with a finite ``mcid``.
    labels : mapping of str to str
        Row label by position (``question · outcome``).

    Returns
    -------
    matplotlib.figure.Figure
        One row per headline; the shaded band is ± 1 MCID; positive = more improvement.
    """
    scaled = pd.DataFrame(
        {
            "estimate": rows["improvement"].to_numpy(float) / rows["mcid"].to_numpy(float),
            "ci_low": rows["ci_low"].to_numpy(float) / rows["mcid"].to_numpy(float),
            "ci_high": rows["ci_high"].to_numpy(float) / rows["mcid"].to_numpy(float),
        }
    )
    n = len(scaled)
    fig, axes = plotting.figure(1, 1, 7.0, 0.9 + 0.32 * n)
    ax = axes[0, 0]
    with plotting.house_style():
        y = np.arange(n)[::-1]
        ax.axvspan(-1, 1, color=OKABE_ITO[2], alpha=0.15, linewidth=0)
        ax.axvline(0, color=GREY, linewidth=0.8, linestyle="--")
        plotting.horizontal_intervals(
            ax,
            scaled,
            y,
            fmt="s",
            color=OKABE_ITO[0],
            markersize=5,
            capsize=2.5,
            linewidth=1.2,
        )
        ax.set_yticks(y, [labels[i] for i in range(n)])
        ax.set_ylim(-0.7, n - 0.3)
        reach = float(np.nanmax(np.abs(scaled[["ci_low", "ci_high"]].to_numpy()))) if n else 1.0
        limit = max(1.5, math.ceil(reach * 2) / 2 + 0.25)
        ax.set_xlim(-limit, limit)
        ax.set_xlabel(
            "Difference in MCIDs of each outcome (positive: more improvement with the first "
            "group named); shaded: within ± 1 MCID"
        )
        ax.grid(axis="x", alpha=0.3)
    return fig


def sentence_line(
    topic: str, order: int, sentence: Callable[[Mapping[str, pd.DataFrame]], str]
) -> Contributor:
    """Make a :data:`Contributor` of a section's one-sentence function of the tables.

    Parameters
    ----------
    topic : str
        The line's typed topic (:attr:`AnswerLine.topic`).
    order : int
        Its place among the contributed lines.
    sentence : callable
        The section's sentence for the answer page; an empty string when it has nothing to say.

    Returns
    -------
    Contributor
        A function of the tables and the configuration giving zero or one line.
    """

    def contribute(tables: Mapping[str, pd.DataFrame], config: Config) -> Sequence[AnswerLine]:
        text = sentence(tables)
        return [AnswerLine(topic, text, order)] if text else []

    return contribute


def safety_line(tables: Mapping[str, pd.DataFrame], config: Config) -> Sequence[AnswerLine]:
    """Word the adverse-event rate ratio as one answer line (a :data:`Contributor`)."""
    if recorded.gaps(tables, ["adverse_event"])[0]:
        return [
            AnswerLine(
                "safety", "Adverse events were not recorded, so no rate is reported.", order=10
            )
        ]
    if not present(tables, "adverse_event_rate_ratio"):
        return []
    lines = []
    for r in tables["adverse_event_rate_ratio"].to_dict(orient="records"):
        ratio, low, high = (number(r[k]) for k in ("rate_ratio", "ci_low", "ci_high"))
        if math.isnan(ratio):
            continue
        lines.append(
            AnswerLine(
                "safety",
                f"Adverse events were {fmt(ratio, 2)} times as frequent after {r['level']} "
                f"as after {r['reference']} sessions (rate ratio, 95 % CI {fmt(low, 2)} to "
                f"{fmt(high, 2)}); see Safety.",
                order=10,
            )
        )
    return lines


def answer_section(
    tables: Mapping[str, pd.DataFrame],
    config: Config,
    contributors: Sequence[Contributor] = (),
) -> Section | None:
    """Build the answer page: verdicts, contributed sentences, the figure, supporting estimates.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The published tables; the page needs ``answer``.
    config : Config
        The run's configuration (outcomes, comparisons, time axis).
    contributors : sequence of Contributor
        Sections' contributions (:data:`Contributor`), in any order.

    Returns
    -------
    Section or None
        None when the run has no ``answer`` table.
    """
    if not present(tables, "answer"):
        return None
    answer = tables["answer"]
    study = config.study
    outcomes = {o.name: o for o in study.outcomes}
    time_unit = "week" if config.model.time_axis == "weeks" else "session"
    if study.declared:
        time_unit = "week"
    blocks: list[Block] = [
        Paragraph(
            "How to read the numbers (the same everywhere in this report): each difference is "
            "the first group named minus the second, turned so that a positive number means "
            "more improvement with the first group (less pain or disability; a higher score on "
            "a scale where higher is better), with its 95 % confidence interval (CI) and its "
            "p-value adjusted by Holm's method across the headline estimates. The verdict "
            "compares the interval with the minimal clinically important difference (MCID).",
            "note",
        )
    ]
    figure_rows, figure_labels, others = [], {}, []
    comparisons = list(study.comparisons)
    if not study.declared:  # the plan's numbering: question 1 twitch, question 2 depth
        numbers = {q.factor: q.number for q in QUESTIONS}
        comparisons.sort(key=lambda c: numbers.get(c.name, len(numbers) + 1))
    for number_, comparison in enumerate(comparisons, start=1):
        part = answer[answer["question"] == comparison.name]
        top = part[part["role"] == Role.HEADLINE]
        if top.empty:
            continue
        level, reference = str(top["level"].iloc[0]), str(top["reference"].iloc[0])
        blocks.append(
            Heading(
                f"Question {number_}. {comparison.label.capitalize()}: {level} vs {reference}",
                anchor=f"answer-{comparison.name}",
            )
        )
        blocks.append(
            Paragraph(f"{question_sentence(top, comparison)} {_basis(comparison, top)}", "headline")
        )
        for r in top.to_dict(orient="records"):
            if r["outcome"] not in outcomes:
                continue
            outcome = outcomes[r["outcome"]]
            blocks.append(Paragraph(verdict_sentence(r, outcome, comparison, time_unit)))
            if not math.isnan(number(r["mcid"])) and not math.isnan(number(r["improvement"])):
                figure_labels[len(figure_rows)] = f"{level} vs {reference} · {outcome.short}"
                figure_rows.append(r)
        others += _others(part, outcomes, comparison, time_unit)
    lines = sorted(
        (line for contribute in contributors for line in contribute(tables, config)),
        key=lambda line: line.order,
    )
    blocks += [Paragraph(line.text) for line in lines]
    if figure_rows:
        rows = pd.DataFrame(figure_rows)
        blocks.append(
            Figure(
                png(answer_figure(rows, figure_labels)),
                alt="Headline estimates with 95 % confidence intervals in units of each "
                "outcome's MCID, against the band of ± 1 MCID",
                caption="Headline estimates with 95 % CIs, divided by each outcome's MCID so "
                "that every outcome is on one scale; the shaded band is smaller than the MCID. "
                "An interval inside the band rules out a clinically important difference.",
                anchor="answer-figure",
            )
        )
    if others:
        blocks.append(Heading("Supporting and unadjusted estimates", anchor="answer-others"))
        blocks += others
    return Section(SECTION_ID, SECTION_TITLE, tuple(blocks))
