"""Outcomes: observed means, marginal means, contrasts, forest plots and likelihood-ratio tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from pipeline.analyses.headline import Role
from pipeline.config.settings import Config
from pipeline.describe import summaries
from pipeline.privacy import panel
from pipeline.report import figures as report_figures
from pipeline.report.html import (
    MISSING,
    Block,
    Figure,
    Heading,
    Section,
    Table,
    fmt,
    fmt_ci,
    fmt_p,
    png,
    table,
)
from pipeline.report.sections import recorded
from pipeline.report.sections.common import (
    ANALYSIS_COLUMN,
    FACTOR_LABELS,
    OUTCOME_COLUMN,
    OUTCOMES,
    QUESTIONS,
    SHORT,
    UNITS,
    analysis_label,
    fit_column,
    is_main,
    is_slope,
    number,
    present,
)
from pipeline.schemas.columns import INSTRUMENT_COLUMNS
from pipeline.schemas.identity import (
    ContrastKind,
    Family,
    identify,
)


def _means_table(means: pd.DataFrame, factor: str) -> Table:
    part = means[means["factor"] == factor]
    groups = list(dict.fromkeys(part["group"]))
    rows = []
    for outcome in [o for o in OUTCOMES if o in set(part["outcome"])]:
        for visit in sorted(part.loc[part["outcome"] == outcome, "visit"].unique()):
            cells = [SHORT[outcome], "baseline" if visit == 0 else str(visit)]
            for group in groups:
                hit = part[
                    (part["outcome"] == outcome)
                    & (part["visit"] == visit)
                    & (part["group"] == group)
                ]
                if hit.empty:
                    cells += [MISSING, "0"]
                    continue
                r = hit.iloc[0]
                cells += [f"{fmt(r['mean'], 2)} ({fmt_ci(r['ci_low'], r['ci_high'])})", fmt(r["n"])]
            rows.append(tuple(cells))
    header = ["Outcome", "Visit"]
    for group in groups:
        header += [f"{group}: mean (95 % CI)", "n"]
    return Table(
        header=tuple(header),
        rows=tuple(rows),
        numeric=(False, False, *([True] * (2 * len(groups)))),
        caption=f"Observed means by visit and {FACTOR_LABELS.get(factor, factor).lower()}",
    )


def _emmeans_tables(emmeans: pd.DataFrame, factor: str, time_unit: str = "week") -> list[Table]:
    out = []
    part = emmeans[(emmeans["factor"] == factor) & emmeans["analysis"].map(is_main)]
    for analysis in dict.fromkeys(part["analysis"]):
        rows_of = part[part["analysis"] == analysis]
        levels = list(dict.fromkeys(rows_of["level"].astype(str)))
        rows = []
        for outcome in [o for o in OUTCOMES if o in set(rows_of["outcome"])]:
            one = rows_of[rows_of["outcome"] == outcome]
            for visit in sorted(one["visit"].unique()):
                at = one[one["visit"] == visit]
                cells = [SHORT[outcome], str(visit), fmt(number(at["time"].iloc[0]), 1)]
                for level in levels:
                    hit = at[at["level"].astype(str) == level]
                    r = hit.iloc[0] if len(hit) else None
                    cells.append(
                        f"{fmt(r['estimate'], 2)} ({fmt_ci(r['ci_low'], r['ci_high'])})"
                        if r is not None
                        else MISSING
                    )
                rows.append(tuple(cells))
        out.append(
            Table(
                header=(
                    "Outcome",
                    "Visit",
                    f"{time_unit.capitalize()}s since baseline",
                    *(f"{lv} (95 % CI)" for lv in levels),
                ),
                rows=tuple(rows),
                numeric=(False, True, True, *([True] * len(levels))),
                caption=f"Estimated marginal means: {analysis_label(analysis)}",
            )
        )
    return out


def contrast_table(
    rows: pd.DataFrame,
    flags: Mapping[tuple[str, str], str],
    caption: str,
    effect_sizes: pd.DataFrame | None = None,
) -> Table:
    """Contrasts with their fit flag and, when the run has them, standardised effect sizes."""
    note = (
        "Fit: 'ok', or the convergence, boundary or fallback flag of the model that gave the "
        "estimate (details under Diagnostics)."
    )
    if effect_sizes is not None and not effect_sizes.empty:
        sizes = effect_sizes[
            ["analysis", "outcome", "contrast", "effect_size", "ci_low", "ci_high"]
        ]
        rows = rows.merge(
            sizes.rename(columns={"ci_low": "es_low", "ci_high": "es_high"}),
            on=["analysis", "outcome", "contrast"],
            how="left",
        )
        note += (
            " Effect size: the difference divided by the "
            f"{effect_sizes['standardiser'].iloc[0]} (differences in slope have none)."
        )

    def digits(r: Mapping[str, Any]) -> int:
        return 3 if r["kind"] == ContrastKind.SLOPE else 2

    columns: list[tuple[str, str, Callable | None]] = [
        ANALYSIS_COLUMN,
        OUTCOME_COLUMN,
        ("Contrast", "contrast", None),
        ("Estimate", "#estimate", lambda r: fmt(r["estimate"], digits(r))),
        ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], digits(r))),
        ("df", "#df", lambda r: fmt(r["df"], 1)),
        ("p", "#p_value", lambda r: fmt_p(r["p_value"])),
    ]
    if "p_holm" in rows:
        columns.append(("Holm p", "#p_holm", lambda r: fmt_p(r["p_holm"])))
        note += (
            " Holm p: adjusted across the headline estimates, one per question and outcome "
            "(family = primary in the tables), the same p as on the answer page; blank for "
            "the others."
        )
    if "effect_size" in rows:
        columns.append(
            (
                "Effect size (95 % CI)",
                "#es",
                lambda r: (
                    MISSING
                    if pd.isna(r["effect_size"])
                    else f"{fmt(r['effect_size'])} ({fmt_ci(r['es_low'], r['es_high'])})"
                ),
            )
        )
    columns.append(fit_column(flags))
    return table(rows, columns, caption=caption, note=note)


def forest_rows(
    contrasts: pd.DataFrame, factor: str, roles: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Rows of the forest plot of one question: every difference in slope (typed ``kind``).

    Subgroup contrasts are named with the level they are estimated in (typed ``within``).
    ``roles`` (analysis -> role of the ``answer`` table, :class:`pipeline.analyses.headline.Role`)
    marks the headline estimate (``primary``: a filled square) and labels an unadjusted
    comparison "unadjusted"; without it, the contrasts' Holm family is drawn filled.
    """
    slopes = contrasts[(contrasts["question"] == factor) & is_slope(contrasts)]
    rows = []
    for r in slopes.to_dict(orient="records"):
        within = r.get("within")
        detail = within if isinstance(within, str) and within else ""
        role = (roles or {}).get(r["analysis"]) if not detail else None
        if role == Role.UNADJUSTED:
            detail = "unadjusted, confounded"
        label = analysis_label(r["analysis"]) + (f" ({detail})" if detail else "")
        primary = (
            role == Role.HEADLINE
            if roles is not None
            else str(r.get("family", "")) == Family.PRIMARY
        )
        rows.append(
            {
                "panel": r["outcome"],
                "label": label,
                "estimate": r["estimate"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "primary": primary,
            }
        )
    return pd.DataFrame(
        rows, columns=["panel", "label", "estimate", "ci_low", "ci_high", "primary"]
    )


def _roles(tables: Mapping[str, pd.DataFrame], factor: str) -> dict[str, str] | None:
    """Analysis -> role in the answer of one question (None when the run has no answer)."""
    if not present(tables, "answer"):
        return None
    answer = tables["answer"]
    part = answer[answer["question"] == factor]
    return dict(zip(part["analysis"], part["role"], strict=True))


def outcomes_section(
    tables: Mapping[str, pd.DataFrame],
    analysis: pd.DataFrame | None,
    config: Config,
    flags: Mapping[tuple[str, str], str],
) -> Section | None:
    """Per question: trajectories, means, marginal means, contrasts, forest plot, tests."""
    if not present(tables, "mean_by_visit"):
        return None
    means = tables["mean_by_visit"]
    time_unit = "week" if config.model.time_axis == "weeks" else "session"
    blocks: list[Block] = []
    # an instrument no source recorded gets no empty panel, and the captions say so
    none, _ = recorded.gaps(tables, INSTRUMENT_COLUMNS.values())
    gone = [o for o, column in INSTRUMENT_COLUMNS.items() if column in none]
    shown = {o: text for o, text in OUTCOMES.items() if o not in gone}
    names = [{"nrs": "NRS", "vas": "VAS", "odi": "ODI"}.get(o, o) for o in shown]
    names_text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    not_shown = (
        f" {' and '.join(SHORT.get(o, o) for o in gone)} "
        f"{'was' if len(gone) == 1 else 'were'} not recorded by any source: no panel."
        if gone
        else ""
    )
    if analysis is not None and "depth" in analysis:
        sample, dropped = panel.publishable_sample(
            summaries.trajectory_sample(
                analysis, INSTRUMENT_COLUMNS, "depth", config.report.spaghetti_patients
            ),
            tables,
            "depth",
            config.report.spaghetti_patients,
            config.privacy.audience,
        )
        if not sample.empty:
            blocks.append(
                Figure(
                    png(
                        report_figures.spaghetti(sample, outcome_labels=shown, group_label="Depth")
                    ),
                    alt=f"Individual trajectories of {names_text} over weeks since baseline "
                    f"for a random sample of up to {config.report.spaghetti_patients} patients "
                    "per depth group",
                    caption=f"Individual trajectories of a reproducible random sample of up to "
                    f"{config.report.spaghetti_patients} patients per depth group (no identifiers; "
                    "the same patients in every column)." + not_shown + panel.dropped_note(dropped),
                    anchor="spaghetti",
                )
            )
    contrasts = tables.get("contrasts")
    for q in QUESTIONS:
        part = means[means["factor"] == q.factor]
        if part.empty:
            continue
        label = FACTOR_LABELS[q.factor]
        blocks.append(Heading(f"Question {q.number}. {q.title}", anchor=f"outcomes-{q.factor}"))
        blocks.append(
            Figure(
                png(
                    report_figures.mean_trajectories(part, outcome_labels=shown, group_label=label)
                ),
                alt=f"Mean {names_text} at each visit by {label.lower()} "
                f"({q.reference} and {q.level}) with 95 % confidence intervals",
                caption=f"Observed mean at each visit by {label.lower()}, plotted at the visit's "
                "mean weeks since baseline; bars are 95 % t confidence intervals. Patients who "
                "left early are missing from later visits (the models account for that)."
                + not_shown,
                anchor=f"trajectories-{q.factor}",
            )
        )
        blocks.append(_means_table(means, q.factor))
        if present(tables, "emmeans"):
            blocks += _emmeans_tables(tables["emmeans"], q.factor, time_unit)
        if contrasts is not None and not contrasts.empty:
            main = contrasts[
                (contrasts["question"] == q.factor) & contrasts["analysis"].map(is_main)
            ]
            if not main.empty:
                blocks.append(
                    contrast_table(
                        main,
                        flags,
                        f"Contrasts: {q.level} − {q.reference}",
                        tables.get("effect_sizes"),
                    )
                )
            forest = forest_rows(contrasts, q.factor, _roles(tables, q.factor))
            if not forest.empty:
                unit_of = {
                    o: f"{OUTCOMES[o]}: difference in slope, {UNITS[o]} per {time_unit}"
                    for o in OUTCOMES
                }
                blocks.append(
                    Figure(
                        png(report_figures.forest(forest, panel_labels=unit_of)),
                        alt=f"Forest plot of the difference in slope, {q.level} minus "
                        f"{q.reference}, for each outcome and analysis, with 95 % CIs",
                        caption=f"Difference in slope ({q.level} − {q.reference}) across outcomes "
                        "and analyses, with 95 % confidence intervals; filled squares: the "
                        "headline estimate (see The answer), open circles: other analyses; "
                        "'unadjusted' marks a comparison that the other grouping confounds.",
                        anchor=f"forest-{q.factor}",
                    )
                )
        if present(tables, "model_comparison"):
            tests = tables["model_comparison"]
            factors = tests["analysis"].map(lambda a: getattr(identify(a), "factor", None))
            tests = tests[factors == q.factor]
            if not tests.empty:
                blocks.append(
                    table(
                        tests,
                        [
                            ANALYSIS_COLUMN,
                            OUTCOME_COLUMN,
                            ("Test", "test", None),
                            ("df", "#df", lambda r: fmt(r["df"])),
                            ("χ²", "#chisq", lambda r: fmt(r["chisq"], 2)),
                            ("p", "#p", lambda r: fmt_p(r["p_value"])),
                        ],
                        caption="Likelihood-ratio tests (ML fits of nested models)",
                    )
                )
    return Section("outcomes", "Outcomes", tuple(blocks))
