"""The answer page (report page 1): one verdict per question and outcome, in plain words.

It is a view of the run's ``answer`` table (:mod:`pipeline.analyses.headline`): the headline
estimate of each comparison × outcome, its 95 % CI, Holm p and verdict against the MCID, with
the supporting and unadjusted estimates beside it, never in its place. One figure draws the
headlines against the MCID band; the adverse-event ratio follows.

The page is laid out to fit page 1 of the printed report: per question a box saying which
estimate answers it and where it is read, then compact verdict rows (a table: the verdict in
words, the difference and its CI, the Holm p, the MCID).

Other sections add one sentence each: a contributor is a function of the published tables and
the configuration returning :class:`AnswerLine` items (none when it has nothing to say);
:func:`pipeline.report.content.build_content` passes the list of contributors to
:func:`answer_section`, which keeps the ``headline`` lines (the adverse-event ratio) after the
verdicts, and to :func:`answer_details_section`, the next section ("Behind the answer"), which
opens with the others, ordered by ``order``, and shows the supporting and unadjusted estimates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from pipeline.analyses.headline import Estimand, Role, Verdict
from pipeline.config.settings import Config
from pipeline.config.study import Comparison, Outcome
from pipeline.figures import panels as plotting
from pipeline.figures.style import GREY, OKABE_ITO
from pipeline.report.html import (
    MISSING,
    Block,
    Figure,
    Heading,
    Paragraph,
    Section,
    Table,
    fmt,
    fmt_p,
    png,
)
from pipeline.report.sections import recorded
from pipeline.report.sections.common import QUESTIONS, number, present, signed
from pipeline.schemas.columns import INSTRUMENTS

SECTION_ID = "answer"
SECTION_TITLE = "The answer"
DETAILS_ID = "answer-details"
DETAILS_TITLE = "Behind the answer"


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
    headline : bool
        Whether the line belongs on page 1 with the verdicts (the adverse-event ratio, which the
        answer page names); the others open the next section, :data:`DETAILS_TITLE`.
    """

    topic: str
    text: str
    order: int = 50
    headline: bool = False


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


def _amount(
    row: Mapping, outcome: Outcome, *, interval_words: bool = True, unit: bool = True
) -> str:
    """Word an estimate and its CI: ``+1.22 points (95 % CI +0.76 to +1.68)``."""
    d = _digits(outcome)
    low, high = number(row["ci_low"]), number(row["ci_high"])
    ci = "95 % CI " if interval_words else ""
    units = f" {outcome_unit(outcome)}" if unit else ""
    return f"{signed(row['improvement'], d)}{units} ({ci}{signed(low, d)} to {signed(high, d)})"


def verdict_words(row: Mapping, outcome: Outcome, comparison: Comparison) -> str:
    """Word the verdict of one headline row (the first cell of its verdict row).

    E.g. "NRS pain: no detectable twitch effect; a clinically important one is ruled out."
    """
    verdict = Verdict(row["verdict"])
    what = VERDICT_WORDS[verdict].format(noun=noun(comparison, row["level"], row["reference"]))
    return f"{outcome_words(outcome)}: {what}."


def _mcid_words(row: Mapping, outcome: Outcome) -> str:
    mcid = number(row["mcid"])
    return f"{mcid:g} {outcome_unit(outcome)}" if not math.isnan(mcid) else "none in points"


def verdict_table(
    rows: pd.DataFrame, outcomes: Mapping[str, Outcome], comparison: Comparison
) -> Table:
    """Lay out the headline rows of one question as compact verdict rows, one per outcome.

    Parameters
    ----------
    rows : pandas.DataFrame
        Headline rows of the ``answer`` table for one comparison.
    outcomes : mapping of str to Outcome
        The declared outcomes by name (rows of other outcomes are left out).
    comparison : Comparison
        The question.

    Returns
    -------
    Table
        ``Outcome: verdict`` in words (:func:`verdict_words`), the difference with its 95 % CI
        in the one sign convention, the Holm p and the MCID.
    """
    cells = []
    for r in rows.to_dict(orient="records"):
        if r["outcome"] not in outcomes:
            continue
        outcome = outcomes[r["outcome"]]
        estimable = Verdict(r["verdict"]) is not Verdict.NOT_ESTIMABLE
        cells.append(
            (
                verdict_words(r, outcome, comparison),
                _amount(r, outcome, interval_words=False) if estimable else MISSING,
                fmt_p(r["p_holm"]) if estimable else MISSING,
                _mcid_words(r, outcome),
            )
        )
    return Table(
        header=("Outcome: verdict", "Difference (95 % CI)", "Holm p", "MCID"),
        rows=tuple(cells),
        caption=f"Verdicts: {comparison.label}",
        numeric=(False, True, True, True),
        anchor=f"answer-{comparison.name}-verdicts",
        style="verdicts",
    )


def _direction(rows: pd.DataFrame, outcomes: Mapping[str, Outcome]) -> str:
    """Say which group improved more, for the outcomes whose interval excludes zero."""
    found: dict[bool, list[str]] = {True: [], False: []}
    for r in rows.to_dict(orient="records"):
        low, high = number(r["ci_low"]), number(r["ci_high"])
        if r["outcome"] in outcomes and (low > 0 or high < 0):
            found[low > 0].append(outcomes[r["outcome"]].short)
    level, reference = str(rows["level"].iloc[0]), str(rows["reference"].iloc[0])
    parts = [
        f"{'more' if better else 'less'} improvement with {level} than with {reference} "
        f"({', '.join(names)})"
        for better, names in found.items()
        if names
    ]
    text = "; ".join(parts)
    return f" {text[:1].upper()}{text[1:]}." if parts else ""


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


def _basis(comparison: Comparison, rows: pd.DataFrame, time_unit: str) -> str:
    """Say which estimate answers the question, where it is read, and why (SAP §4)."""
    estimand = Estimand(rows["estimand"].iloc[0])
    over = _over(rows.iloc[0].to_dict(), time_unit)
    if estimand is Estimand.VISIT_DIFFERENCE:
        return (
            "Randomised comparison: the difference between the arms "
            f"{over} (repeated-measures model)."
        )
    if estimand is Estimand.WITHIN_PATIENT:
        return (
            "Twitch varies from session to session, so the answer compares each patient with "
            f"themselves: {over} (session-level model); it is free of differences between "
            "patients, such as needling depth."
        )
    if comparison.kind == "twitch":
        return (
            "No session-level estimate could be fitted, so the answer is the comparison adjusted "
            f"for needling depth (joint model), {over}."
        )
    return (
        "Observational comparison: the difference in the rate of change, adjusted for the "
        f"baseline covariates, {over} (trajectory model). Groups were not randomised, so some "
        "of it may reflect who received what."
    )


OTHER_ROWS = {
    ("twitch", Role.SUPPORTING): "Twitch, adjusted for needling depth (joint model)",
    ("twitch", Role.UNADJUSTED): "Twitch, unadjusted (confounded by depth)",
    ("depth", Role.SUPPORTING): "Depth, adjusted for twitch (joint model)",
}
"""Row labels of the supporting and unadjusted estimates, by comparison kind and role."""


def _others(
    answer: pd.DataFrame,
    outcomes: Mapping[str, Outcome],
    comparisons: Sequence[Comparison],
    time_unit: str,
) -> list[Block]:
    """Lay out the supporting and unadjusted estimates of every question as one table."""
    names = [o for o in outcomes if o in set(answer["outcome"])]
    rows, over = [], ""
    for comparison in comparisons:
        part = answer[answer["question"] == comparison.name]
        for role in (Role.SUPPORTING, Role.UNADJUSTED):
            chosen = part[part["role"] == role].set_index("outcome")
            if chosen.empty:
                continue
            over = over or _over(chosen.iloc[0].to_dict(), time_unit)
            label = OTHER_ROWS.get(
                (comparison.kind, role), f"{comparison.label.capitalize()}, {role.value}"
            )
            rows.append(
                (
                    label,
                    *(
                        _amount(
                            chosen.loc[o].to_dict(), outcomes[o], interval_words=False, unit=False
                        )
                        if o in chosen.index
                        else MISSING
                        for o in names
                    ),
                )
            )
    if not rows:
        return []
    note = (
        f"Each difference {over}, with its 95 % CI, in the answer page's sign convention; "
        "not Holm-adjusted (not headline estimates)."
    )
    kinds = {c.kind for c in comparisons}
    if "depth" in kinds:
        note += (
            " Depth adjusted for twitch is the part of the depth effect not through twitch "
            "(supporting: twitch lies on the path from depth to outcome)."
        )
    if "twitch" in kinds:
        note += (
            " Unadjusted: not adjusted for needling depth; deep needling elicits twitches more "
            "often and has its own effect, so this comparison is confounded by depth and is "
            "never the answer."
        )
    return [
        Table(
            header=(
                "Estimate",
                *(f"{outcomes[o].short} ({outcome_unit(outcomes[o])})" for o in names),
            ),
            caption="Supporting and unadjusted estimates",
            rows=tuple(rows),
            numeric=(False, *(True for _ in names)),
            note=note,
            anchor="answer-others-table",
            style="supporting",
        ),
    ]


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
    fig, axes = plotting.figure(1, 1, 7.0, 0.5 + 0.16 * n)  # about 35 mm high at A4 width
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
    topic: str,
    order: int,
    sentence: Callable[[Mapping[str, pd.DataFrame]], str],
    short: Callable[[Mapping[str, pd.DataFrame]], str] | None = None,
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
    short : callable, optional
        A shorter sentence for page 1 (a ``headline`` line, pointing to the section); the full
        sentence then opens the next section. Without it the full sentence is not a headline.

    Returns
    -------
    Contributor
        A function of the tables and the configuration giving zero, one or two lines.
    """

    def contribute(tables: Mapping[str, pd.DataFrame], config: Config) -> Sequence[AnswerLine]:
        text = sentence(tables)
        if not text:
            return []
        lines = [AnswerLine(topic, text, order)]
        brief = short(tables) if short is not None else ""
        if brief:
            lines.insert(0, AnswerLine(topic, brief, order, headline=True))
        return lines

    return contribute


def safety_line(tables: Mapping[str, pd.DataFrame], config: Config) -> Sequence[AnswerLine]:
    """Word the adverse-event rate ratio as one answer line (a :data:`Contributor`)."""
    if recorded.gaps(tables, ["adverse_event"])[0]:
        return [
            AnswerLine(
                "safety",
                "Adverse events were not recorded, so no rate is reported.",
                order=10,
                headline=True,
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
                headline=True,
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
    time_unit = _time_unit(config)
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
    figure_rows, figure_labels = [], {}
    comparisons = _ordered(config)
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
            Paragraph(
                f"{question_sentence(top, comparison)}{_direction(top, outcomes)} "
                f"{_basis(comparison, top, time_unit)}",
                "headline",
            )
        )
        blocks.append(verdict_table(top, outcomes, comparison))
        for r in top.to_dict(orient="records"):
            if r["outcome"] not in outcomes:
                continue
            if not math.isnan(number(r["mcid"])) and not math.isnan(number(r["improvement"])):
                figure_labels[len(figure_rows)] = (
                    f"{level} vs {reference} · {outcomes[r['outcome']].short}"
                )
                figure_rows.append(r)
    headline = [line.text for line in _lines(tables, config, contributors) if line.headline]
    if headline:
        blocks.append(Paragraph(" ".join(headline)))
    if figure_rows:
        rows = pd.DataFrame(figure_rows)
        blocks.append(
            Figure(
                png(answer_figure(rows, figure_labels)),
                alt="Headline estimates with 95 % confidence intervals in units of each "
                "outcome's MCID, against the band of ± 1 MCID",
                caption="Headline estimates with 95 % CIs in units of each outcome's MCID; "
                "an interval inside the shaded band (± 1 MCID) rules out a clinically "
                "important difference.",
                anchor="answer-figure",
            )
        )
    return Section(SECTION_ID, SECTION_TITLE, tuple(blocks))


def _ordered(config: Config) -> list[Comparison]:
    """Return the comparisons in the order of the answer page's questions."""
    comparisons = list(config.study.comparisons)
    if not config.study.declared:  # the plan's numbering: question 1 twitch, question 2 depth
        numbers = {q.factor: q.number for q in QUESTIONS}
        comparisons.sort(key=lambda c: numbers.get(c.name, len(numbers) + 1))
    return comparisons


def _time_unit(config: Config) -> str:
    if config.study.declared or config.model.time_axis == "weeks":
        return "week"
    return "session"


def _lines(
    tables: Mapping[str, pd.DataFrame], config: Config, contributors: Sequence[Contributor]
) -> list[AnswerLine]:
    return sorted(
        (line for contribute in contributors for line in contribute(tables, config)),
        key=lambda line: line.order,
    )


def answer_details_section(
    tables: Mapping[str, pd.DataFrame],
    config: Config,
    contributors: Sequence[Contributor] = (),
) -> Section | None:
    """Build the section after the answer page: sentences and supporting estimates.

    The other sections' sentences come first, then the supporting and unadjusted estimates of
    each question (the answer page keeps its verdicts, figure and adverse-event ratio).

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The published tables; the section needs ``answer``.
    config : Config
        The run's configuration.
    contributors : sequence of Contributor
        As for :func:`answer_section` (its lines not marked ``headline`` are placed here).

    Returns
    -------
    Section or None
        None when there is neither a sentence nor a supporting estimate to show.
    """
    if not present(tables, "answer"):
        return None
    outcomes = {o.name: o for o in config.study.outcomes}
    blocks: list[Block] = [
        Paragraph(line.text) for line in _lines(tables, config, contributors) if not line.headline
    ]
    blocks += _others(tables["answer"], outcomes, _ordered(config), _time_unit(config))
    return Section(DETAILS_ID, DETAILS_TITLE, tuple(blocks)) if blocks else None
