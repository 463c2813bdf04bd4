"""The report section "Planning the next study": words, tables, the power curve, and its files.

:func:`planning_section` turns a :class:`~pipeline.planning.answers.PlanResult` into a
:class:`pipeline.report.html.Section` (paragraphs with the assumptions stated in words, the
answers, the power curve, the tables), the same building blocks as the outcome report, so the
report can show it. :func:`write_plan` is the file edge of ``outcomes plan --out DIR``: the
tidy tables as CSV, the figure as PNG, the section as an HTML fragment and as a page.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import outputs
from pipeline.figures.panels import figure
from pipeline.figures.style import GREY, OKABE_ITO
from pipeline.planning.answers import PlanResult, contrast_effect, contrast_unit
from pipeline.report.html import Figure, Paragraph, Section, Table, fmt, png, table

__all__ = ["FILES", "assumption_sentences", "planning_section", "power_curve", "write_plan"]

SECTION_ID = "planning"
SECTION_TITLE = "Planning the next study"
FILES = {
    "answers": "planning_answers.csv",
    "curve": "planning_power_curve.csv",
    "type_one_error": "planning_type_one_error.csv",
    "assumptions": "planning_assumptions.csv",
    "dropout": "planning_dropout.csv",
    "figure": "planning_power_curve.png",
    "fragment": "planning_section.html",
    "page": "planning.html",
}


def _weeks(weeks: tuple[float, ...]) -> str:
    return ", ".join(f"{w:g}" for w in weeks)


def _pct(x: float) -> str:
    return "–" if x is None or np.isnan(x) else f"{100 * x:.1f} %"


def assumption_sentences(result: PlanResult) -> list[str]:
    """State the design and the assumptions in words.

    Parameters
    ----------
    result : PlanResult
        The plan.

    Returns
    -------
    list of str
        One sentence (or a few) per topic: design, analysis and level, effect, variance,
        dropout, and how the assumptions were obtained.
    """
    d, a = result.design, result.assumptions
    sentences = [
        f"The next study compares {d.compared} with {d.reference} ({d.comparison}) on "
        f"{d.label}, with {d.allocation:g} {d.compared} patient(s) per {d.reference} patient, "
        f"assessed at weeks {_weeks(d.weeks)} (baseline first)."
    ]
    if d.analysis == "slope":
        sentences.append(
            "The primary analysis is the difference in slope per week between the groups in "
            "the trajectory model y ~ weeks × group + (1 + weeks | patient), the model the "
            "report fits (REML, Satterthwaite degrees of freedom, random intercept only when "
            "the slope variance is at the boundary)."
        )
    else:
        sentences.append(
            f"The primary analysis is the baseline-adjusted difference between the groups at "
            f"week {d.primary_week:g}. The formula is Lu, Luo & Chen's (2008) for the MMRM "
            "(unstructured covariance of the post-baseline visits given baseline); the "
            "simulation fits the report's random-intercept change-from-baseline model "
            "y ~ baseline + visit × group + (1 | patient), which assumes a compound-symmetric "
            "covariance."
        )
    family = (
        f" (α = {d.alpha:g} Bonferroni-divided over a Holm family of {d.holm_family} primary "
        "comparisons: Holm's first step, so the power shown is a lower bound of Holm's)"
        if d.holm_family > 1
        else ""
    )
    sentences.append(f"Tests are two-sided at {d.alpha_test:.4g}{family}.")
    multiple = f" ({a.effect_mcid:g} × the MCID of {d.mcid:g} {d.unit})" if a.effect_mcid else ""
    slope = (
        f", a difference in slope of {contrast_effect(d, a):.4g} {d.unit} per week"
        if d.analysis == "slope"
        else ""
    )
    sentences.append(
        f"Assumed effect: a difference of {a.effect:g} {d.unit} ({d.compared} − {d.reference}) "
        f"at week {d.primary_week:g}{multiple}, growing linearly from 0 at baseline{slope}."
    )
    source = "typed in the configuration" if a.source == "typed" else "estimated from the study"
    sentences.append(
        f"Variance ({source}): between-patient SD of the intercept {a.sd_intercept:.3g} "
        f"{d.unit}, of the slope {a.sd_slope:.3g} {d.unit} per week, their correlation "
        f"{a.correlation:.2f}, and residual SD {a.sd_residual:.3g} {d.unit}."
    )
    ret_a, ret_b = a.retention("reference")[-1], a.retention("compared")[-1]
    sentences.append(
        f"Dropout (monotone, completely at random in the simulation): probability of leaving "
        f"before each post-baseline visit {', '.join(f'{h:.3f}' for h in a.hazards_reference)} "
        f"for {d.reference} and {', '.join(f'{h:.3f}' for h in a.hazards_compared)} for "
        f"{d.compared}, so that {ret_a:.0%} and {ret_b:.0%} are still assessed at week "
        f"{d.weeks[-1]:g}."
    )
    sentences.extend(a.notes)
    return sentences


def _answer(result: PlanResult, question: str, method: str) -> pd.Series | None:
    rows = result.answers
    hit = rows.loc[(rows["question"] == question) & (rows["method"] == method)]
    return None if hit.empty else hit.iloc[0]


def headline(result: PlanResult) -> str:
    """Write the answer in two sentences: power at n, and n for the target power.

    Parameters
    ----------
    result : PlanResult
        The plan.

    Returns
    -------
    str
        The headline.
    """
    d = result.design
    n_a, n_b = d.group_sizes(d.n)
    formula = _answer(result, "power at n", "analytic (t, N-2 df)")
    simulated = _answer(result, "power at n", "simulation")
    text = f"With {d.n} patients ({n_a} {d.reference}, {n_b} {d.compared}) the power is "
    text += f"{_pct(formula['value'])} by the formula"
    if simulated is not None:
        text += (
            f" and {_pct(simulated['value'])} (Monte Carlo SE {_pct(simulated['mc_se'])}) by "
            "simulating the report's model"
        )
    need_f = _answer(result, "n for power", "analytic (t, N-2 df)")
    need_s = _answer(result, "n for power", "simulation")
    text += f". For {d.target_power:.0%} power the formula needs {fmt(need_f['value'], 0)} patients"
    if need_s is not None and np.isfinite(need_s["value"]):
        text += f", the simulation about {fmt(need_s['value'], 0)}"
    return text + "."


def effect_sentence(result: PlanResult) -> str:
    """Write the detectable effect and the precision at the planned size in words.

    Parameters
    ----------
    result : PlanResult
        The plan.

    Returns
    -------
    str
        One sentence, in the contrast's unit (and at the primary week for a slope).
    """
    d = result.design
    unit = contrast_unit(d)
    formula = _answer(result, "detectable effect at n", "analytic (t, N-2 df)")["value"]
    simulated = _answer(result, "detectable effect at n", "simulation")
    width = _answer(result, "CI half-width at n", "analytic (t, N-2 df)")["value"]

    def at_week(value: float) -> str:
        if d.analysis != "slope":
            return ""
        return f" ({value * d.primary_week:.3g} {d.unit} at week {d.primary_week:g})"

    text = (
        f"With {d.n} patients the smallest true difference detected with {d.target_power:.0%} "
        f"power is {formula:.3g} {unit}{at_week(formula)} by the formula"
    )
    if simulated is not None:
        text += f" and {simulated['value']:.3g} {unit} by simulation"
    return text + f"; the 95 % confidence interval will be about ± {width:.3g} {unit} wide."


def type_one_sentence(result: PlanResult) -> str:
    """Write the type-I error of the simulated analysis, in words (or why there is none)."""
    t1 = result.type_one_error
    if t1.empty:
        return "No simulation was run, so the type-I error of the analysis was not checked."
    parts = [
        f"{_pct(r.rejection_rate)} of {r.sims} studies with {r.n_total} patients "
        f"(Monte Carlo SE {_pct(r.mc_se)})"
        for r in t1.itertuples()
    ]
    return (
        "Type-I error of the simulated analysis with no true difference: it rejected in "
        + "; ".join(parts)
        + f", for a nominal {result.design.alpha_test:.4g}."
    )


def power_curve(result: PlanResult):
    """Power against the total number of patients: formula line, simulated points ± 2 MC SE.

    Parameters
    ----------
    result : PlanResult
        The plan.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    from pipeline.planning.analytic import power
    from pipeline.planning.answers import analytic_contrast

    d, a = result.design, result.assumptions
    fig, axes = figure(1, 1, 6.0, 3.4)
    ax = axes[0, 0]
    contrast, effect = analytic_contrast(d, a), contrast_effect(d, a)
    grid = np.linspace(max(8, min(d.n_grid) * 0.8), max(d.n_grid) * 1.1, 200)
    ax.plot(
        grid,
        [power(contrast, effect, n, d.alpha_test, "t") for n in grid],
        color=OKABE_ITO[0],
        label="formula (t, N−2 df)",
    )
    ax.plot(
        grid,
        [power(contrast, effect, n, d.alpha_test, "z") for n in grid],
        color=OKABE_ITO[0],
        linestyle=":",
        label="formula (normal)",
    )
    sim = result.curve.loc[result.curve["sims"] > 0]
    if len(sim):
        ax.errorbar(
            sim["n_total"],
            sim["power_simulated"],
            yerr=2 * sim["mc_se"],
            fmt="o",
            color=OKABE_ITO[1],
            capsize=2,
            label="simulation (± 2 Monte Carlo SE)",
        )
    ax.axhline(d.target_power, color=GREY, linewidth=0.8, linestyle="--")
    ax.axvline(d.n, color=GREY, linewidth=0.8, linestyle=":")
    ax.set_xlabel("patients in both groups")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1.02)
    what = "slope difference" if d.analysis == "slope" else f"difference at week {d.primary_week:g}"
    ax.set_title(f"{d.label}: {what}, {d.compared} vs {d.reference}")
    t1 = result.type_one_error
    if len(t1):
        r = t1.iloc[0]
        ax.text(
            0.98,
            0.04,
            f"type-I error at n = {int(r.n_total)}: {r.rejection_rate:.3f} (± {r.mc_se:.3f}), "
            f"nominal {d.alpha_test:.3g}",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
            color=GREY,
        )
    ax.legend(loc="center right", frameon=False)
    return fig


def assumptions_table(result: PlanResult) -> pd.DataFrame:
    """Return the assumptions as a tidy table (with the study's uncertainty when estimated from it).

    Returns
    -------
    pandas.DataFrame
        ``parameter, value, unit, source, std_err, ci_low, ci_high``.
    """
    d, a = result.design, result.assumptions
    unc = a.uncertainty.set_index("parameter") if len(a.uncertainty) else pd.DataFrame()
    rows = [
        ("effect at primary week", a.effect, d.unit, "configuration"),
        (
            "slope difference",
            contrast_effect(d, a) if d.analysis == "slope" else np.nan,
            f"{d.unit} per week",
            "configuration",
        ),
        ("sd_intercept", a.sd_intercept, d.unit, a.source),
        ("sd_slope", a.sd_slope, f"{d.unit} per week", a.source),
        ("correlation", a.correlation, "", a.source),
        ("sd_residual", a.sd_residual, d.unit, a.source),
        (
            "retention at last visit, " + d.reference,
            a.retention("reference")[-1],
            "share",
            a.source,
        ),
        ("retention at last visit, " + d.compared, a.retention("compared")[-1], "share", a.source),
    ]
    frame = pd.DataFrame(rows, columns=["parameter", "value", "unit", "source"])
    for column in ("std_err", "ci_low", "ci_high"):
        frame[column] = [
            unc.loc[p, column] if len(unc) and p in unc.index else np.nan
            for p in frame["parameter"]
        ]
    return frame


def planning_section(result: PlanResult, figure_png: bytes | None = None) -> Section:
    """Build the report section "Planning the next study".

    Parameters
    ----------
    result : PlanResult
        The plan.
    figure_png : bytes, optional
        The power curve already encoded (drawn here otherwise).

    Returns
    -------
    Section
        Headline, assumptions in words, the answers, the curve and its table.
    """
    d = result.design
    unit = contrast_unit(d)
    blocks: list = [Paragraph(headline(result), "headline"), Paragraph(effect_sentence(result))]
    blocks += [Paragraph(s) for s in assumption_sentences(result)]
    blocks.append(Paragraph(type_one_sentence(result), "note"))
    answers = result.answers.assign(
        shown=lambda t: [
            _pct(v) if q == "power at n" else fmt(v, 0 if q == "n for power" else 4)
            for q, v in zip(t["question"], t["value"], strict=True)
        ],
        se=lambda t: [
            _pct(v) if q == "power at n" else fmt(v, 4)
            for q, v in zip(t["question"], t["mc_se"], strict=True)
        ],
    )
    blocks.append(
        table(
            answers,
            [
                ("question", "question", None),
                ("method", "method", None),
                ("answer", "#shown", lambda r: r["shown"]),
                ("Monte Carlo SE", "#se", lambda r: r["se"]),
                ("unit", "unit", None),
                ("note", "note", None),
            ],
            caption=f"Answers at n = {d.n} patients and for {d.target_power:.0%} power",
            note=f"Effects and half-widths in {unit}; half-widths of 95 % intervals.",
            anchor="planning-answers",
        )
    )
    blocks.append(
        Figure(
            figure_png if figure_png is not None else png(power_curve(result)),
            alt="Power against the number of patients: formula and simulation",
            caption="Power by total number of patients: the formula (lines) and the simulated "
            "report model (points, ± 2 Monte Carlo SE); dashed: target power, dotted: planned n.",
            anchor="planning-curve",
        )
    )
    blocks.append(
        table(
            result.curve,
            [
                ("patients", "#n_total", None),
                (d.reference, "#n_reference", None),
                (d.compared, "#n_compared", None),
                ("formula (z)", "#power_analytic_z", lambda r: _pct(r["power_analytic_z"])),
                ("formula (t)", "#power_analytic_t", lambda r: _pct(r["power_analytic_t"])),
                ("simulated", "#power_simulated", lambda r: _pct(r["power_simulated"])),
                ("MC SE", "#mc_se", lambda r: _pct(r["mc_se"])),
                ("studies", "#sims", None),
                ("fallback", "#share_fallback", lambda r: _pct(r["share_fallback"])),
                ("failed", "#share_failed", lambda r: _pct(r["share_failed"])),
            ],
            caption="Power curve",
            note="fallback: share of simulated fits refitted with a random intercept only "
            "(slope variance at the boundary); failed: share that could not be fitted (counted "
            "as not rejecting).",
            anchor="planning-curve-table",
        )
    )
    return Section(SECTION_ID, SECTION_TITLE, tuple(blocks))


_CSS = (
    "body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:62rem;margin:2rem auto;"
    "padding:0 1rem;color:#1a1a1a;line-height:1.45}"
    "table{border-collapse:collapse;margin:.4rem 0 .8rem;font-size:.85rem}"
    "caption{caption-side:top;text-align:left;font-weight:bold;padding:.2rem 0}"
    "th,td{border-bottom:1px solid #ddd;padding:.2rem .5rem;text-align:left}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".headline{background:#eef4fa;border-left:4px solid #0072B2;padding:.5rem .9rem}"
    ".note,figcaption,.table-note{color:#444;font-size:.82rem}img{max-width:100%}"
)


def _block_html(block) -> str:
    esc = html.escape
    if isinstance(block, Paragraph):
        cls = f' class="{block.style}"' if block.style else ""
        return f"<p{cls}>{esc(block.text)}</p>"
    if isinstance(block, Figure):
        return (
            f'<figure id="{esc(block.anchor)}"><img src="{block.data_uri}" alt="{esc(block.alt)}">'
            f"<figcaption>{esc(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, Table):
        head = "".join(
            f"<th{' class=num' if n else ''}>{esc(h)}</th>"
            for h, n in zip(block.header, block.numeric, strict=True)
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td{' class=num' if n else ''}>{esc(c)}</td>"
                for c, n in zip(row, block.numeric, strict=True)
            )
            + "</tr>"
            for row in block.rows
        )
        note = f'<p class="table-note">{esc(block.note)}</p>' if block.note else ""
        return (
            f'<table id="{esc(block.anchor)}"><caption>{esc(block.caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
        )
    return f"<h3>{esc(block.text)}</h3>"


def section_html(section: Section) -> str:
    """Render a section as an HTML fragment (``<section>`` with its blocks)."""
    inner = "\n".join(_block_html(b) for b in section.blocks)
    return (
        f'<section id="{section.id}">\n<h2>{html.escape(section.title)}</h2>\n{inner}\n</section>\n'
    )


def write_plan(result: PlanResult, out: Path) -> dict[str, Path]:
    """Write the plan's tables, figure and HTML to ``out``.

    Parameters
    ----------
    result : PlanResult
        The plan.
    out : Path
        Folder (created when missing).

    Returns
    -------
    dict of str to Path
        What was written, keyed as :data:`FILES`.
    """
    out = Path(out)
    written = {
        "answers": outputs.write_csv(out / FILES["answers"], result.answers),
        "curve": outputs.write_csv(out / FILES["curve"], result.curve),
        "type_one_error": outputs.write_csv(out / FILES["type_one_error"], result.type_one_error),
        "assumptions": outputs.write_csv(out / FILES["assumptions"], assumptions_table(result)),
    }
    if result.dropout is not None:
        written["dropout"] = outputs.write_csv(out / FILES["dropout"], result.dropout)
    image = png(power_curve(result))
    written["figure"] = outputs.write_bytes(out / FILES["figure"], image)
    fragment = section_html(planning_section(result, image))
    written["fragment"] = outputs.write_text(out / FILES["fragment"], fragment)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{SECTION_TITLE}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{fragment}</body>\n</html>\n"
    )
    written["page"] = outputs.write_text(out / FILES["page"], page)
    return written
