"""Tables and the short HTML report of a pooled network analysis.

:func:`pooled_tables` turns the pooled fits (and the two-stage meta-analysis) into tidy tables;
:func:`pooled_report` builds the report with the machinery of :mod:`pipeline.report.html`: the
answer first (exact pooled estimate beside the meta-analysis), then what was pooled (clinics,
patients, the nominal schedule, the disclosure rule and what it removed), the model tables,
the forest plots and the clinics' descriptives that passed the disclosure rules.
:func:`write_pooled` writes everything to a folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from pipeline.federate.pool import PooledModel
from pipeline.figures.panels import house_style
from pipeline.report.html import (
    Figure,
    Heading,
    Paragraph,
    ReportContent,
    Section,
    fmt,
    fmt_ci,
    fmt_p,
    png,
    render_html,
    sig,
    table,
)
from pipeline.report.provenance import run_date

__all__ = ["forest_plot", "pooled_report", "pooled_tables", "write_pooled"]

REPORT_FILE = "pooled.html"


def _model_keys(model: PooledModel) -> dict[str, str]:
    return {"outcome": model.outcome, "group": model.group}


def pooled_tables(
    models: Sequence[PooledModel],
    shares: Sequence[tuple[Path, dict[str, Any]]],
    two_stage: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> dict[str, pd.DataFrame]:
    """Tidy tables of a pooled analysis.

    Parameters
    ----------
    models : sequence of PooledModel
        From :func:`pipeline.federate.pool.pool_shares`.
    shares : sequence of (Path, dict)
        The share files pooled.
    two_stage : (DataFrame, DataFrame), optional
        From :func:`pipeline.federate.pool.two_stage`.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``fixed_effects``, ``variance_components``, ``estimands``, ``clinics``,
        ``descriptives`` and, with ``two_stage``, ``clinic_estimates`` and ``meta_analysis``.
    """
    fixed, variance, estimands = [], [], []
    for m in models:
        keys = _model_keys(m)
        fixed.append(m.fit.fixed_effects.assign(**keys))
        variance.append(m.fit.variance_components.assign(**keys))
        estimands.append(m.estimands.assign(**keys, method="exact pooled (one-stage)"))
    clinics, descriptives = [], []
    for path, share in shares:
        clinics.append({"clinic": share["clinic"], "file": Path(path).name, **share["disclosure"]})
        for model in share["models"]:
            for d in model["descriptives"]:
                keys = {"outcome": model["outcome"], "group": model["group"]}
                descriptives.append({"clinic": share["clinic"], **keys, **d})
    order = ["outcome", "group"]
    out = {
        "fixed_effects": _lead(pd.concat(fixed, ignore_index=True), order),
        "variance_components": _lead(pd.concat(variance, ignore_index=True), order),
        "estimands": _lead(pd.concat(estimands, ignore_index=True), [*order, "method"]),
        "clinics": pd.DataFrame(clinics).drop(columns=["rule"]),
        "descriptives": pd.DataFrame(descriptives),
    }
    if two_stage is not None:
        out["clinic_estimates"], out["meta_analysis"] = two_stage
    return out


def _lead(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    return frame[first + [c for c in frame.columns if c not in first]]


def forest_plot(
    clinics: pd.DataFrame, meta: pd.Series, exact: pd.Series | None, title: str
) -> MplFigure:
    """Forest plot of one estimand: each clinic's estimate, the meta-analysis, the exact fit.

    Parameters
    ----------
    clinics : pandas.DataFrame
        Rows of ``clinic_estimates`` for this estimand (``clinic, estimate, std_err, df``).
    meta : pandas.Series
        The ``meta_analysis`` row (estimate, CI and prediction interval).
    exact : pandas.Series or None
        The exact pooled estimate (``estimate, ci_low, ci_high``), drawn for comparison.
    title : str
        Axis title.

    Returns
    -------
    matplotlib.figure.Figure
        The plot.
    """
    from scipy import stats

    with house_style():
        rows = len(clinics) + 2 + (exact is not None)
        fig, ax = plt.subplots(figsize=(6.4, 0.45 * rows + 1.0))
        labels = []
        y = rows
        for rec in clinics.itertuples():
            crit = stats.t.ppf(0.975, rec.df) if np.isfinite(rec.df) else 1.96
            ax.errorbar(rec.estimate, y, xerr=crit * rec.std_err, fmt="s", color="black", capsize=3)
            labels.append((y, f"{rec.clinic} (n={rec.n_patients})"))
            y -= 1
        y -= 1
        if np.isfinite(meta.get("estimate", np.nan)):
            ax.plot([meta["pi_low"], meta["pi_high"]], [y, y], color="grey", lw=6, alpha=0.4)
            ax.errorbar(
                meta["estimate"],
                y,
                xerr=[[meta["estimate"] - meta["ci_low"]], [meta["ci_high"] - meta["estimate"]]],
                fmt="D",
                color="black",
                capsize=3,
            )
            labels.append((y, "Meta-analysis (REML, HKSJ; grey: prediction)"))
        if exact is not None:
            y -= 1
            ax.errorbar(
                exact["estimate"],
                y,
                xerr=[
                    [exact["estimate"] - exact["ci_low"]],
                    [exact["ci_high"] - exact["estimate"]],
                ],
                fmt="o",
                color="black",
                mfc="white",
                capsize=3,
            )
            labels.append((y, "Exact pooled fit (one-stage)"))
        ax.axvline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_yticks([p for p, _ in labels], [t for _, t in labels])
        ax.set_ylim(y - 0.8, rows + 0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("estimate (95 % CI)")
        fig.tight_layout()
    return fig


def _answer(tables: dict[str, pd.DataFrame]) -> list:
    blocks: list = []
    est = tables["estimands"]
    meta = tables.get("meta_analysis")
    for rec in est.itertuples():
        text = (
            f"{rec.outcome.upper()}, {rec.label}: {fmt(rec.estimate)} "
            f"(95 % CI {fmt_ci(rec.ci_low, rec.ci_high)}, p {fmt_p(rec.p_value)}; exact pooled "
            f"fit, Satterthwaite df {fmt(rec.df, 1)})"
        )
        if meta is not None:
            row = meta.loc[
                (meta["outcome"] == rec.outcome)
                & (meta["group"] == rec.group)
                & (meta["estimand"] == rec.estimand)
            ]
            if len(row) and np.isfinite(row["estimate"].iloc[0]):
                r = row.iloc[0]
                text += (
                    f"; two-stage meta-analysis {fmt(r['estimate'])} "
                    f"(95 % CI {fmt_ci(r['ci_low'], r['ci_high'])}, I² {fmt(r['i2'], 0)} %, "
                    f"{int(r['k'])} clinics)"
                )
        blocks.append(Paragraph(text + ".", "headline"))
    return blocks


def pooled_report(
    models: Sequence[PooledModel],
    shares: Sequence[tuple[Path, dict[str, Any]]],
    tables: dict[str, pd.DataFrame],
) -> ReportContent:
    """Build the pooled report's content (rendered by :func:`pipeline.report.html.render_html`).

    Parameters
    ----------
    models : sequence of PooledModel
        The pooled fits.
    shares : sequence of (Path, dict)
        The share files.
    tables : dict
        From :func:`pooled_tables`.

    Returns
    -------
    ReportContent
        Title, intro and sections.
    """
    spec = shares[0][1]["specification"]
    unit = "week" if spec["time_axis"] == "weeks" else "session"
    schedule = ", ".join(f"visit {v} = {unit} {t:g}" for v, t in spec["schedule"].items())
    clinics = tables["clinics"]
    n_pat = int(clinics["patients_shared"].sum())
    n_obs = int(clinics["assessments_shared"].sum())
    sites = models[0].sites if models else ()
    k = spec["min_patients_per_cell"]
    effect = "no clinic term"
    if spec["clinic_effect"] == "fixed" and len(sites) > 1:
        effect = f"clinic as a fixed effect (reference: {sites[0]})"
    elif spec["clinic_effect"] == "random":
        effect = "a random intercept per clinic"
    pooled = [
        Paragraph(
            f"{len(shares)} share file(s) from {len(sites)} clinic(s) were pooled: {n_pat:,} "
            f"patients and {n_obs:,} assessments. No patient row left any clinic: each file "
            "holds only sums over at least "
            f"{k} patients, and the pooled fit computed from them equals the fit of the same "
            "patients' rows gathered in one place (same estimates, standard errors, "
            "Satterthwaite df and variance components)."
        ),
        Paragraph(
            f"Time is the nominal time of each visit on the configured schedule, not the "
            f"visit's actual date: {schedule}. The model is the trajectory model "
            f"outcome ~ time × group + {' + '.join(spec['covariates']) or 'no covariates'}, "
            f"with {effect}, a random intercept"
            f"{' and slope for time' if spec['random_slope'] else ''} per patient, REML, "
            f"{spec['df_method']} df."
        ),
        Paragraph(
            "Disclosure rule applied at every clinic: "
            + shares[0][1]["disclosure"]["rule"]
            + f" In total {int(clinics['patients_coarsened'].sum())} patient(s) were coarsened "
            f"and {int(clinics['patients_left_out'].sum())} left out; "
            f"{int(clinics['assessments_dropped_by_rule'].sum())} assessment(s) were dropped "
            "by the rule (per clinic below).",
            "note",
        ),
        table(
            clinics,
            [
                ("Clinic", "clinic", None),
                ("File", "file", None),
                ("Patients in data", "#patients_in_data", None),
                ("Shared", "#patients_shared", None),
                ("Coarsened", "#patients_coarsened", None),
                ("Left out", "#patients_left_out", None),
                ("Assessments shared", "#assessments_shared", None),
                ("Off schedule", "#assessments_off_schedule", None),
                ("Incomplete", "#assessments_incomplete", None),
                ("Dropped by rule", "#assessments_dropped_by_rule", None),
            ],
            caption="Clinics pooled and what the disclosure rules removed",
        ),
        Paragraph(
            f"Specification hash {shares[0][1]['specification_hash'][:16]}…, pipeline version "
            f"{shares[0][1]['pipeline_version']}, share file format "
            f"{shares[0][1]['format_version']}.",
            "note",
        ),
    ]
    for m in models:
        if m.fit.fallback:
            pooled.append(Paragraph(f"{m.outcome.upper()}: {m.fit.fallback}", "note"))
        if m.dropped_columns:
            pooled.append(
                Paragraph(
                    f"{m.outcome.upper()}: design column(s) {', '.join(m.dropped_columns)} are "
                    "empty in every clinic and were left out.",
                    "note",
                )
            )

    model_blocks: list = []
    for m in models:
        model_blocks.append(Heading(f"{m.outcome.upper()} by {m.group}: {m.formula}"))
        model_blocks.append(
            table(
                m.fit.fixed_effects,
                [
                    ("Term", "term", None),
                    ("Estimate", "#estimate", None),
                    ("SE", "#std_err", None),
                    ("df", "#df", lambda r: fmt(r["df"], 1)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                    ("p", "#p_value", lambda r: fmt_p(r["p_value"])),
                ],
                caption="Fixed effects (exact pooled fit)",
            )
        )
        model_blocks.append(
            table(
                m.fit.variance_components,
                [
                    ("Group", "group", None),
                    ("Term", "term", None),
                    ("Variance", "#variance", lambda r: sig(r["variance"])),
                    ("SD", "#std_dev", lambda r: sig(r["std_dev"])),
                    ("Correlation", "#correlation", lambda r: sig(r["correlation"], 3)),
                ],
                caption="Variance components",
            )
        )

    sections = [
        Section("answer", "The answer", tuple(_answer(tables))),
        Section("pooled", "What was pooled", tuple(pooled)),
        Section("models", "The pooled models", tuple(model_blocks)),
    ]
    if "meta_analysis" in tables:
        sections.append(Section("two-stage", "Two-stage meta-analysis", _meta_blocks(tables)))
    sections.append(Section("clinics", "Clinic descriptives", _descriptive_blocks(tables, k)))
    return ReportContent(
        title="Pooled analysis of a clinic network",
        run_date=run_date(),
        intro=(
            "Computed from the clinics' share files only; no patient-level data were pooled. "
            "Every number from a clinic is a sum or summary over at least "
            f"{k} patients."
        ),
        sections=tuple(sections),
    )


def _meta_blocks(tables: dict[str, pd.DataFrame]) -> tuple:
    meta, per = tables["meta_analysis"], tables["clinic_estimates"]
    exact = tables["estimands"]
    blocks: list = [
        Paragraph(
            "Each clinic fitted the same model to its own patients; the clinic estimates are "
            "combined by random-effects meta-analysis (REML between-clinic variance τ², "
            "Hartung–Knapp–Sidik–Jonkman interval with k − 1 df, I², 95 % prediction interval "
            'for a new clinic), as metafor::rma(method = "REML", test = "knha").'
        ),
        table(
            meta,
            [
                ("Outcome", "outcome", lambda r: r["outcome"].upper()),
                ("Estimand", "label", None),
                ("Clinics", "#k", None),
                ("Estimate", "#estimate", None),
                ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                ("τ²", "#tau2", lambda r: sig(r["tau2"], 3)),
                ("I² %", "#i2", lambda r: fmt(r["i2"], 0)),
                ("Prediction interval", "#pi", lambda r: fmt_ci(r["pi_low"], r["pi_high"])),
            ],
            caption="Meta-analysis of the clinics' own fits",
        ),
    ]
    bad = per.loc[per["status"] != "ok"].drop_duplicates(["clinic", "outcome", "group"])
    if len(bad):
        listed = "; ".join(
            f"{r.clinic} ({r.outcome.upper()}: {r.message})" for r in bad.itertuples()
        )
        blocks.append(Paragraph(f"Not in the meta-analysis: {listed}.", "note"))
    for rec in meta.itertuples():
        block = per.loc[
            (per["outcome"] == rec.outcome)
            & (per["group"] == rec.group)
            & (per["estimand"] == rec.estimand)
        ]
        block = block.loc[block["status"] == "ok"]
        if block.empty:
            continue
        ex = exact.loc[
            (exact["outcome"] == rec.outcome)
            & (exact["group"] == rec.group)
            & (exact["estimand"] == rec.estimand)
        ]
        title = f"{rec.outcome.upper()}: {rec.label}"
        fig = forest_plot(block, pd.Series(rec._asdict()), ex.iloc[0] if len(ex) else None, title)
        blocks.append(
            Figure(
                png(fig),
                alt=f"Forest plot by clinic, {title}",
                caption=f"{title}: clinics, meta-analysis and the exact pooled fit",
            )
        )
        plt.close(fig)
    return tuple(blocks)


def _descriptive_blocks(tables: dict[str, pd.DataFrame], k: int) -> tuple:
    d = tables["descriptives"]
    blocks: list = [
        Paragraph(
            f"Mean and SD of each outcome per clinic, nominal visit and group, over the shared "
            f"assessments; a cell with fewer than {k} patients is withheld (–).",
            "note",
        )
    ]
    for (outcome, group), block in d.groupby(["outcome", "group"], sort=False):
        blocks.append(
            table(
                block,
                [
                    ("Clinic", "clinic", None),
                    ("Visit", "#visit", None),
                    ("Time", "#time", lambda r: fmt(r["time"], 0)),
                    (group.capitalize(), "level", None),
                    ("Patients", "#n_patients", lambda r: fmt(r["n_patients"])),
                    ("Mean", "#mean", lambda r: fmt(r["mean"])),
                    ("SD", "#sd", lambda r: fmt(r["sd"])),
                ],
                caption=f"{outcome.upper()} by clinic, visit and {group}",
            )
        )
    return tuple(blocks)


def write_pooled(
    out: Path,
    models: Sequence[PooledModel],
    shares: Sequence[tuple[Path, dict[str, Any]]],
    two_stage: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> dict[str, Path]:
    """Write the pooled tables (CSV) and ``pooled.html`` into ``out``.

    Parameters
    ----------
    out : Path
        Output folder (created).
    models, shares, two_stage
        As :func:`pooled_tables`.

    Returns
    -------
    dict of str to Path
        Table name (and ``report``) -> file written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = pooled_tables(models, shares, two_stage)
    written = {}
    for name, frame in tables.items():
        path = out / f"pooled_{name}.csv"
        frame.to_csv(path, index=False)
        written[name] = path
    report = out / REPORT_FILE
    report.write_text(render_html(pooled_report(models, shares, tables)), encoding="utf-8")
    written["report"] = report
    return written
