"""The report of a declared study design: a randomised trial, or any declared outcomes.

The needling report (:mod:`pipeline.report.content`) answers the plan's two observational
questions (depth, twitch) for NRS, VAS and ODI. A study that declares its own design
(``[outcomes.NAME]``, ``[[comparisons]]``, SAP §3) gets the sections built here instead: a
summary that leads with each comparison's headline estimate (SAP §4, headline estimands) worded
in the direction of each outcome, a randomised comparison called one, the analyses the design
cannot support listed with the reason, and the outcomes, responders and methods in the study's
own words. The sections that do not depend on the design (provenance, data, Table 1,
diagnostics, appendix) are those of the needling report.

Sign convention, stated once in the report: a difference is the named group minus the
reference group; whether a positive difference is an improvement depends on the outcome
(a fall on a higher-is-worse scale, a rise on a higher-is-better one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipeline.analyses.headline import Verdict, classify
from pipeline.analyses.plans import STRUCTURE_WORDS
from pipeline.config.settings import Config
from pipeline.config.study import Comparison, Outcome, Study
from pipeline.describe import summaries
from pipeline.privacy import panel
from pipeline.report import figures as report_figures
from pipeline.report.html import (
    Block,
    Figure,
    Heading,
    Paragraph,
    Section,
    Table,
    fmt,
    fmt_ci,
    fmt_p,
    png,
    table,
)
from pipeline.report.sections.common import analysis_column, analysis_label
from pipeline.report.sections.methods import MMRM_DF_WORDS
from pipeline.report.sections.responders import responder_table
from pipeline.schemas.identity import AnalysisId, AnalysisKind, ContrastKind, Family

CLASSES = {
    Verdict.IMPORTANT: "clinically important",
    Verdict.BELOW_MCID: "detectable but below the MCID",
    Verdict.NO_DIFFERENCE: "no detectable difference",
    Verdict.INCONCLUSIVE: "inconclusive",
    Verdict.DETECTABLE: "detectable",
    Verdict.NOT_DETECTED: "not detected",
    Verdict.NOT_ESTIMABLE: "not estimable",
}


def _p_words(p: float, adjusted: bool) -> str:
    name = "Holm-adjusted p" if adjusted else "p"
    shown = fmt_p(p)
    return f"{name} < 0.001" if shown == "< 0.001" else f"{name} = {shown}"


def difference_sentence(
    effect: Mapping[str, Any],
    outcome: Outcome,
    comparison: Comparison,
    level: str,
    when: str,
    per: str = "",
) -> str:
    """Word one between-group difference in the outcome's direction.

    Parameters
    ----------
    effect : mapping
        ``estimate, ci_low, ci_high, p_value`` and optionally ``p_holm``.
    outcome : Outcome
        Its direction, unit and name.
    comparison : Comparison
        The grouping (its reference level).
    level : str
        The group compared with the reference.
    when : str
        Where the difference is read, e.g. ``at visit 1 (week 13)``.
    per : str
        For a difference in slope, the time unit (``week``); empty for a difference in level.

    Returns
    -------
    str
        E.g. "RMDQ was lower (better) with deep than with sham at visit 1 (week 13): by 2.41
        points (95 % CI 1.32 to 3.50; Holm-adjusted p < 0.001)."
    """
    est, low, high = (float(effect[k]) for k in ("estimate", "ci_low", "ci_high"))
    holm = effect.get("p_holm")
    adjusted = holm is not None and not (isinstance(holm, float) and math.isnan(holm))
    p = _p_words(float(holm) if adjusted else float(effect["p_value"]), adjusted)
    unit = f"{outcome.unit} per {per}" if per else outcome.unit
    digits = 3 if per else 2
    who = f"with {level} than with {comparison.reference}"
    thing = f"{outcome.short} rose" if per else f"{outcome.short} was"
    if low > 0 or high < 0:
        up = est > 0
        better = up == outcome.higher_is_better
        if per:
            words = f"{outcome.short} {'rose faster' if up else 'fell faster'}"
        else:
            words = f"{thing} {'higher' if up else 'lower'}"
        quality = "better" if better else "worse"
        size, a, b = (abs(est), min(abs(low), abs(high)), max(abs(low), abs(high)))
        return (
            f"{words} ({quality}) {who} {when}: by {fmt(size, digits)} {unit} (95 % CI "
            f"{fmt(a, digits)} to {fmt(b, digits)}; {p})."
        )
    return (
        f"{outcome.short}: no clear difference {who} {when} (difference "
        f"{'+' if est >= 0 else ''}{fmt(est, digits)} {unit}, 95 % CI {fmt(low, digits)} to "
        f"{fmt(high, digits)}, which includes no difference; {p})."
    )


def mcid_words(effect: Mapping[str, Any], outcome: Outcome) -> str:
    """Say where a difference in level lies against the outcome's MCID (points)."""
    if outcome.mcid.points is None:
        return (
            f"The MCID of {outcome.short} is given only as {outcome.mcid.percent:g} % of "
            "baseline, a rule for one patient; the group difference is not classified against it."
        )
    est, low, high = (float(effect[k]) for k in ("estimate", "ci_low", "ci_high"))
    found = classify(est, low, high, outcome.mcid.points)
    return f"Against the MCID of {outcome.mcid.points:g} {outcome.unit}: {CLASSES[found]}."


def _weeks_at(tables: Mapping[str, pd.DataFrame], visit: int) -> str:
    means = tables.get("mean_by_visit")
    if means is None or means.empty:
        return ""
    weeks = pd.to_numeric(means.loc[means["visit"] == visit, "mean_weeks"], errors="coerce")
    return f" (week {fmt(weeks.mean(), 0)})" if weeks.notna().any() else ""


def _rows(contrasts: pd.DataFrame, analysis: str, outcome: str, kind: ContrastKind) -> pd.DataFrame:
    return contrasts[
        (contrasts["analysis"] == analysis)
        & (contrasts["outcome"] == outcome)
        & (contrasts["kind"].astype(str) == kind.value)
    ]


def summary(
    tables: Mapping[str, pd.DataFrame], config: Config, visit: int | None
) -> Section | None:
    """Lead with each comparison's headline estimate per outcome, then the secondary ones.

    A randomised arm: the baseline-adjusted difference at the primary visit (visit-level model),
    then the difference in slope (trajectory model, secondary). An observational grouping: the
    difference in slope. Each sentence follows the outcome's direction; each difference in level
    is classified against the MCID.
    """
    contrasts = tables.get("contrasts")
    if contrasts is None or contrasts.empty or "kind" not in contrasts:
        return None
    study = config.study
    blocks: list[Block] = []
    time_unit = "week" if config.model.time_axis == "weeks" else "session"
    for comparison in study.comparisons:
        levels = [
            str(v)
            for v in dict.fromkeys(
                contrasts.loc[contrasts["question"] == comparison.name, "contrast"]
                .astype(str)
                .str.partition(" − ")[0]
            )
            if v
        ]
        title = "Randomised comparison" if comparison.randomised else "Comparison"
        versus = " vs ".join([*levels, comparison.reference]) if levels else comparison.name
        blocks.append(Heading(f"{title}: {comparison.label} ({versus})"))
        trajectory = AnalysisId(AnalysisKind.TRAJECTORY, comparison.name).name
        change = AnalysisId(AnalysisKind.CHANGE, comparison.name).name
        for number, outcome in enumerate(study.outcomes):
            role = "Primary outcome" if number == 0 else "Secondary outcome"
            texts = [
                f"{role}, {outcome.label} ({outcome.short}, {outcome.unit}; "
                f"{'higher is better' if outcome.higher_is_better else 'higher is worse'})."
            ]
            if comparison.randomised and visit is not None:
                at = _rows(contrasts, change, outcome.name, ContrastKind.VISIT)
                at = at[pd.to_numeric(at["visit"], errors="coerce") == visit]
                for r in at.to_dict(orient="records"):
                    level = str(r["contrast"]).partition(" − ")[0]
                    when = f"at the primary visit {visit}{_weeks_at(tables, visit)}"
                    texts.append(difference_sentence(r, outcome, comparison, level, when))
                    texts.append(mcid_words(r, outcome))
                if at.empty:
                    texts.append(
                        f"No baseline-adjusted difference at the primary visit {visit} could be "
                        "estimated (see Diagnostics)."
                    )
            slopes = _rows(contrasts, trajectory, outcome.name, ContrastKind.SLOPE)
            for r in slopes.to_dict(orient="records"):
                level = str(r["contrast"]).partition(" − ")[0]
                lead = "Secondary (trajectory model): " if comparison.randomised else ""
                texts.append(
                    lead
                    + difference_sentence(r, outcome, comparison, level, "over time", per=time_unit)
                )
            blocks.append(Paragraph(" ".join(texts), "headline"))
        if comparison.randomised:
            blocks.append(
                Paragraph(
                    "This is a randomised comparison: patients were allocated to the arms at "
                    "random, so the difference estimates the effect of the allocation "
                    "(treatment policy: every assessment counts whatever happened after "
                    "randomisation). The headline is the baseline-adjusted difference at the "
                    f"primary visit from the repeated-measures model (SAP §4.2, §4.6: post-"
                    f"baseline visits, baseline value and covariates "
                    f"({', '.join(config.model.covariates) or 'none'}) adjusted, a residual "
                    "covariance across visits, see Methods); the trajectory model's difference "
                    "in slope is secondary.",
                    "note",
                )
            )
        else:
            blocks.append(
                Paragraph(
                    "Groups are patient-level exposures, not randomised arms: differences may "
                    "reflect who received what as well as what they received.",
                    "note",
                )
            )
    blocks.append(
        Paragraph(
            "Sign convention: every difference is the named group minus the reference group; "
            "whether that is an improvement depends on the outcome (a fall on a "
            "higher-is-worse scale, a rise on a higher-is-better one), and each sentence says "
            "which. p-values of the headline estimates are adjusted by Holm's method across "
            "the primary family (one headline per comparison and outcome).",
            "note",
        )
    )
    return Section("results", "Results by comparison", tuple(blocks))


def not_in_design(tables: Mapping[str, pd.DataFrame]) -> Section | None:
    """List the analyses the design cannot support, each with its reason."""
    skipped = tables.get("skipped_analyses")
    if skipped is None or skipped.empty:
        return None
    return Section(
        "design",
        "Analyses this design cannot support",
        (
            Paragraph(
                "These analyses of the plan are left out, for the reason given; everything "
                "else was run."
            ),
            Table(
                header=("Analysis", "Why it is not run"),
                rows=tuple(
                    (str(a).replace("_", " "), str(r))
                    for a, r in zip(skipped["analysis"], skipped["reason"], strict=True)
                ),
                numeric=(False, False),
                caption="Analyses not in this design",
            ),
        ),
    )


def direction_words(outcome: Outcome) -> str:
    """``higher is better`` or ``higher is worse``."""
    return "higher is better" if outcome.higher_is_better else "higher is worse"


def panel_labels(study: Study) -> dict[str, str]:
    """Outcome -> panel title of the trajectory figures: name, unit and direction."""
    return {o.name: f"{o.short} ({o.unit}; {direction_words(o)})" for o in study.outcomes}


def difference_rows(
    contrasts: pd.DataFrame, comparison: Comparison, tables: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """Rows of the forest plot of one comparison: its baseline-adjusted differences.

    Every difference between the groups at a post-baseline visit (typed ``kind`` visit
    difference) of the comparison's visit-level model (``change_<name>``), one panel per
    outcome; the primary family's (a trial's headline at the primary visit) is marked.

    Returns
    -------
    pandas.DataFrame
        ``panel, label, estimate, ci_low, ci_high, primary`` for
        :func:`pipeline.report.figures.forest`.
    """
    change = AnalysisId(AnalysisKind.CHANGE, comparison.name).name
    chosen = contrasts[
        (contrasts["analysis"] == change)
        & (contrasts["kind"].astype(str) == ContrastKind.VISIT.value)
    ]
    rows = [
        {
            "panel": r["outcome"],
            "label": f"{r['contrast']}{_weeks_at(tables, int(r['visit']))}",
            "estimate": r["estimate"],
            "ci_low": r["ci_low"],
            "ci_high": r["ci_high"],
            "primary": str(r.get("family", "")) == Family.PRIMARY,
        }
        for r in chosen.to_dict(orient="records")
        if pd.notna(pd.to_numeric(r["visit"], errors="coerce"))
    ]
    return pd.DataFrame(
        rows, columns=["panel", "label", "estimate", "ci_low", "ci_high", "primary"]
    )


def _figures(
    tables: Mapping[str, pd.DataFrame],
    config: Config,
    comparison: Comparison,
    analysis: pd.DataFrame | None,
) -> tuple[list[Block], list[Block]]:
    """Draw the trajectory figures (individual and mean) and the forest plot of a comparison."""
    study = config.study
    labels = panel_labels(study)
    means = tables["mean_by_visit"]
    part = means[means["factor"] == comparison.name]
    names = " and ".join(o.short for o in study.outcomes)
    trajectories: list[Block] = []
    per_group = config.report.spaghetti_patients
    columns = {o.name: o.column for o in study.outcomes}
    if analysis is not None and comparison.name in analysis:
        columns = {o: c for o, c in columns.items() if c in analysis}
        sample, dropped = panel.publishable_sample(
            summaries.trajectory_sample(analysis, columns, comparison.name, per_group),
            tables,
            comparison.name,
            per_group,
            config.privacy.audience,
        )
        if not sample.empty:
            trajectories.append(
                Figure(
                    png(
                        report_figures.spaghetti(
                            sample, outcome_labels=labels, group_label=comparison.label
                        )
                    ),
                    alt=f"Individual trajectories of {names} over weeks since baseline for a "
                    f"random sample of up to {per_group} patients per {comparison.label} group",
                    caption=f"Individual trajectories of a reproducible random sample of up to "
                    f"{per_group} patients per {comparison.label} group (no identifiers; the "
                    "same patients in every column)." + panel.dropped_note(dropped),
                    anchor=f"spaghetti-{comparison.name}",
                )
            )
    if not part.empty:
        trajectories.append(
            Figure(
                png(
                    report_figures.mean_trajectories(
                        part, outcome_labels=labels, group_label=comparison.label
                    )
                ),
                alt=f"Mean {names} at each visit by {comparison.label} with 95 % confidence "
                "intervals",
                caption=f"Observed mean at each visit by {comparison.label}, plotted at the "
                "visit's mean weeks since baseline; bars are 95 % t confidence intervals. "
                "Patients who left early are missing from later visits (the models account "
                "for that).",
                anchor=f"trajectories-{comparison.name}",
            )
        )
    forest: list[Block] = []
    contrasts = tables.get("contrasts")
    if contrasts is not None and not contrasts.empty and "kind" in contrasts:
        rows = difference_rows(contrasts, comparison, tables)
        if not rows.empty:
            axis = {
                o.name: f"{o.short}: difference, {o.unit} "
                f"({'positive' if o.higher_is_better else 'negative'} = better)"
                for o in study.outcomes
            }
            bands = {o.name: o.mcid.points for o in study.outcomes if o.mcid.points}
            with_band = [o.short for o in study.outcomes if o.mcid.points]
            without = [o.short for o in study.outcomes if not o.mcid.points]
            band_words = (
                f" The shaded band is ± the MCID ({', '.join(with_band)}): a difference whose "
                "CI lies inside it is smaller than important."
                if with_band
                else ""
            )
            if without:
                band_words += (
                    f" {', '.join(without)} has no MCID in points, so no band is drawn."
                    if len(without) == 1
                    else f" {', '.join(without)} have no MCID in points, so no band is drawn."
                )
            forest.append(
                Figure(
                    png(
                        report_figures.forest(
                            rows, panel_labels=axis, bands=bands, others="other visits"
                        )
                    ),
                    alt=f"Forest plot of the baseline-adjusted difference between the "
                    f"{comparison.label} groups at each visit, for {names}, with 95 % CIs and "
                    "the MCID band",
                    caption=f"Baseline-adjusted difference between the {comparison.label} "
                    "groups at each post-baseline visit (visit-level model), with 95 % "
                    "confidence intervals; filled squares: the primary family (Holm-adjusted "
                    "p in the table), open circles: the other visits." + band_words,
                    anchor=f"forest-{comparison.name}",
                )
            )
    return trajectories, forest


def outcomes(
    tables: Mapping[str, pd.DataFrame],
    config: Config,
    flags: Mapping[tuple[str, str], str],
    analysis: pd.DataFrame | None = None,
) -> Section | None:
    """Per comparison: trajectory figures, observed means, contrasts and their forest plot.

    ``analysis`` (the analysis data set) gives the individual-trajectory panel: a reproducible
    sample of patients, renumbered, without identifiers.
    """
    means = tables.get("mean_by_visit")
    contrasts = tables.get("contrasts")
    if means is None or means.empty:
        return None
    study = config.study
    shorts = {o.name: o.short for o in study.outcomes}
    factors = [c.name for c in study.comparisons]
    blocks: list[Block] = []
    for comparison in study.comparisons:
        part = means[means["factor"] == comparison.name]
        blocks.append(Heading(comparison.label.capitalize(), anchor=f"outcomes-{comparison.name}"))
        trajectories, forest = _figures(tables, config, comparison, analysis)
        blocks += trajectories
        groups = list(dict.fromkeys(part["group"].astype(str)))
        rows = []
        for outcome in study.outcomes:
            mine = part[part["outcome"] == outcome.name]
            for visit in sorted(mine["visit"].unique()):
                cells = [outcome.short, "baseline" if visit == 0 else str(visit)]
                for group in groups:
                    hit = mine[(mine["visit"] == visit) & (mine["group"].astype(str) == group)]
                    if hit.empty:
                        cells += ["–", "0"]
                        continue
                    r = hit.iloc[0]
                    cells += [
                        f"{fmt(r['mean'], 2)} ({fmt_ci(r['ci_low'], r['ci_high'])})",
                        fmt(r["n"]),
                    ]
                rows.append(tuple(cells))
        header = ["Outcome", "Visit"]
        for group in groups:
            header += [f"{group}: mean (95 % CI)", "n"]
        blocks.append(
            Table(
                header=tuple(header),
                rows=tuple(rows),
                numeric=(False, False, *([True] * (2 * len(groups)))),
                caption=f"Observed means by visit and {comparison.label}",
                note="Missing visits are analysed under missing at random: the models use "
                "every available assessment.",
            )
        )
        if contrasts is not None and not contrasts.empty:
            names = {
                AnalysisId(AnalysisKind.TRAJECTORY, comparison.name).name,
                AnalysisId(AnalysisKind.CHANGE, comparison.name).name,
            }
            main = contrasts[contrasts["analysis"].isin(names)]
            if not main.empty:
                columns = [
                    analysis_column(factors),
                    ("Outcome", "outcome", lambda r: shorts.get(r["outcome"], r["outcome"])),
                    ("Contrast", "contrast", None),
                    ("Estimate", "#e", lambda r: fmt(r["estimate"], 3)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 3)),
                    ("df", "#df", lambda r: fmt(r["df"], 1)),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                    ("Holm p", "#holm", lambda r: fmt_p(r["p_holm"])),
                    ("Family", "family", None),
                    ("Fit", "fit", lambda r: flags.get((r["analysis"], r["outcome"]), "–")),
                ]
                blocks.append(
                    table(
                        main,
                        columns,
                        caption=f"Contrasts of the main models by {comparison.label}: the "
                        "difference at each visit (change-from-baseline model) and in slope "
                        "(trajectory model)",
                    )
                )
        blocks += forest
    return Section("outcomes", "Outcomes", tuple(blocks))


def reference_words(study: Study) -> str:
    """Word the reference levels of the declared comparisons and categorical covariates."""
    parts = [f"{c.label}: {c.reference}" for c in study.comparisons]
    parts += [
        f"{c.name}: {c.reference}"
        for c in study.covariates.values()
        if c.kind == "category" and c.reference
    ]
    return "; ".join(parts)


def responders(tables: Mapping[str, pd.DataFrame], config: Config, note: str) -> Section | None:
    """Responders at the last assessment, with each outcome's direction-aware MCID rule."""
    resp = tables.get("responders")
    if resp is None or resp.empty:
        return None
    rules = "; ".join(
        f"{o.short}: {'a rise' if o.higher_is_better else 'a fall'} of at least "
        f"{o.mcid.describe(o.unit)}"
        for o in config.study.outcomes
    )
    shorts = {o.name: o.short for o in config.study.outcomes}
    return Section(
        "responders",
        "Responders",
        (
            Paragraph(
                "A responder improved from baseline by at least the MCID at their last "
                f"post-baseline assessment ({rules}); patients without one are not counted."
            ),
            responder_table(
                resp, ("Outcome", "outcome", lambda r: shorts.get(r["outcome"], r["outcome"])), note
            ),
        ),
    )


def methods(config: Config, versions: Mapping[str, str], formulas: Mapping) -> list[str]:
    """Methods paragraphs for a declared design."""
    study, m = config.study, config.model
    outcome_words = "; ".join(
        f"{o.label} ({o.short}, {o.low:g}–{o.high:g} {o.unit}, "
        f"{'higher is better' if o.higher_is_better else 'higher is worse'}, MCID "
        f"{o.mcid.describe(o.unit)}; source: {o.source})"
        for o in study.outcomes
    )
    time_words = {
        "dates": "weeks since the baseline assessment date",
        "weeks": "the weeks recorded for each assessment",
        "visits": "the weeks of each visit as declared ([time] visit_weeks)",
    }[study.time.source]
    comparison_words = "; ".join(
        f"{c.label} ({'randomised' if c.randomised else 'observational'}, reference {c.reference})"
        for c in study.comparisons
    )
    first = (
        f"Design: {'a randomised trial' if study.design == 'trial' else 'observational'}. "
        f"Comparisons: {comparison_words}. Outcomes: {outcome_words}. Time is {time_words}. "
        f"Baseline covariates: {', '.join(m.covariates) or 'none'}."
    )
    df_words = (
        "Satterthwaite degrees of freedom, computed as R's lmerTest does"
        if m.df_method == "satterthwaite"
        else "large-sample normal (z) reference distributions"
    )
    order = " → ".join(STRUCTURE_WORDS.get(n, n) for n in m.mmrm_structures)
    mmrm_df = MMRM_DF_WORDS.get(m.mmrm_df_method, m.mmrm_df_method)
    second = (
        "Visit-level (change-from-baseline) models, fitted as mixed models for repeated measures "
        "(MMRM): post-baseline assessments, outcome ~ baseline + visit × group + covariates with "
        "visit categorical, no random effects and a residual covariance matrix across visits — "
        f"the first structure of the pre-specified order that converged ({order}) — by REML "
        f"with {mmrm_df}; least-squares means per visit and group, and the difference between "
        "groups at each visit, are read from them, and at the primary visit it is the headline "
        "of a randomised comparison. Trajectory models: "
        "outcome ~ time × group + covariates with a correlated random intercept and slope for "
        "time per patient (random intercept only when the slope variance is at the boundary). "
        "Estimation by restricted maximum likelihood with the pipeline's engine (lme4's "
        f"profiled criterion), SEs from (X'V⁻¹X)⁻¹, tests and intervals with {df_words} "
        "(the MMRM as above). "
        "Holm's method across the primary family; other p-values unadjusted. All available "
        "assessments are used (missing at random); no value is imputed."
    )
    factors = [c.name for c in study.comparisons]
    quoted = [f"{analysis_label(a, factors)}, {o}: {f}" for (a, o), f in sorted(formulas.items())]
    third = "Software: " + ", ".join(
        f"{k} {v}" for k, v in versions.items() if k != "needling-outcomes"
    )
    paragraphs = [first, second, third + "."]
    if quoted:
        paragraphs.append("Models in lme4 notation: " + "; ".join(quoted) + ".")
    return paragraphs
