"""The report's figures, built as matplotlib Figures (the report encodes them as PNG).

Colours are from the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies) and every group also differs by marker and line style, so figures read in grey
print. Sizes are those of the printed A4 page (the text column is about 7 inches wide) with
8–9 pt text. Every function takes tidy tables (suppressed cells already replaced by markers,
which are not drawn) and returns a :class:`matplotlib.figure.Figure` drawn with the panels of
:mod:`pipeline.figures.panels`, which the notebooks' figures share; :func:`pipeline.report.html.png`
turns it into the same bytes for the same data.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.describe.flow import OUTCOME_LABELS, visit_words
from pipeline.figures import panels as plotting
from pipeline.figures.style import GREY, OKABE_ITO
from pipeline.schemas.identity import FlowStage

FULL_WIDTH = 7.0  # inches: the text column of an A4 page with 14 mm margins


def _numeric(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Coerce columns to numbers; suppressed markers (``<5``, ``[c]``) become missing."""
    out = frame.copy()
    for column in columns:
        out[column] = pd.to_numeric(out[column], errors="coerce")
    return out


def mean_trajectories(
    summary: pd.DataFrame,
    *,
    outcome_labels: Mapping[str, str],
    group_label: str,
) -> Figure:
    """Mean of each outcome by visit and group with 95 % CI error bars, one panel per outcome.

    Parameters
    ----------
    summary : pandas.DataFrame
        Rows of :func:`pipeline.describe.summaries.means_by_visit` for one grouping: ``outcome,
        visit,
        group, mean, ci_low, ci_high, mean_weeks``.
    outcome_labels : mapping of str to str
        Outcome -> axis label, in panel order (outcomes absent from ``summary`` are skipped).
    group_label : str
        Legend title.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per outcome, one series per group (the same style in every panel).
    """
    summary = _numeric(summary, ["mean", "ci_low", "ci_high", "mean_weeks"])
    outcomes = [o for o in outcome_labels if o in set(summary["outcome"])]
    groups = list(dict.fromkeys(summary["group"]))
    fig, axes = plotting.figure(1, len(outcomes), FULL_WIDTH, 2.6)
    with plotting.house_style():
        for ax, outcome in zip(axes[0], outcomes, strict=True):
            plotting.means_with_ci(ax, summary[summary["outcome"] == outcome], groups)
            ax.set_title(outcome_labels[outcome])
            ax.set_xlabel("Weeks since baseline")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("Mean (95 % CI)")
        plotting.legend_below(fig, [axes[0][0]], ncols=4, title=group_label)
    return fig


def spaghetti(
    sample: pd.DataFrame, *, outcome_labels: Mapping[str, str], group_label: str
) -> Figure:
    """Individual trajectories of sampled patients: one row of panels per group.

    Parameters
    ----------
    sample : pandas.DataFrame
        :func:`pipeline.describe.summaries.trajectory_sample` (``patient, group, weeks, outcome,
        value``).
    outcome_labels : mapping of str to str
        Outcome -> column title, in panel order.
    group_label : str
        Grouping name for the row titles.

    Returns
    -------
    matplotlib.figure.Figure
        Groups by outcomes panels (no patient identifier is drawn).
    """
    outcomes = [o for o in outcome_labels if o in set(sample["outcome"])]
    groups = list(dict.fromkeys(sample["group"]))
    fig, axes = plotting.figure(
        len(groups),
        len(outcomes),
        FULL_WIDTH,
        1.7 * len(groups) + 0.4,
        sharex=True,
        sharey="col",
    )
    with plotting.house_style():
        for i, group in enumerate(groups):
            for j, outcome in enumerate(outcomes):
                ax = axes[i][j]
                plotting.patient_lines(
                    ax,
                    sample[(sample["group"] == group) & (sample["outcome"] == outcome)],
                    patient="patient",
                    x="weeks",
                    y="value",
                    markersize=2.5,
                    linewidth=0.8,
                    alpha=0.7,
                    **plotting.group_style(i),
                )
                if i == 0:
                    ax.set_title(outcome_labels[outcome])
                if j == 0:
                    ax.set_ylabel(f"{group_label}:\n{group}")
                if i == len(groups) - 1:
                    ax.set_xlabel("Weeks since baseline")
                ax.grid(alpha=0.3)
    return fig


def forest(
    rows: pd.DataFrame,
    *,
    panel_labels: Mapping[str, str],
    reference: float = 0.0,
    bands: Mapping[str, float] | None = None,
    others: str = "other analyses",
) -> Figure:
    """Forest plot of contrasts, one panel per outcome (each on its own scale).

    Parameters
    ----------
    rows : pandas.DataFrame
        ``panel, label, estimate, ci_low, ci_high, primary`` (bool: drawn as a filled
        square in the first colour; others as open circles in the second).
    panel_labels : mapping of str to str
        Panel -> x-axis label, in panel order (panels absent from ``rows`` are skipped).
    reference : float
        Value of no difference (a vertical line).
    bands : mapping of str to float, optional
        Panel -> MCID (points, positive): the band from -MCID to +MCID around ``reference`` is
        shaded, so a reader sees whether a CI reaches an important difference (panels without
        an MCID have no band).
    others : str
        Legend entry of the rows outside the primary family.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per outcome, rows top to bottom in table order.
    """
    rows = _numeric(rows, ["estimate", "ci_low", "ci_high"]).dropna(subset=["estimate"])
    panels = [p for p in panel_labels if p in set(rows["panel"])]
    heights = [max(1, int((rows["panel"] == p).sum())) for p in panels]
    fig, axes = plotting.figure(
        len(panels),
        1,
        FULL_WIDTH,
        0.9 + 0.24 * sum(heights) + 0.5 * len(panels),
        gridspec_kw={"height_ratios": heights},
    )
    with plotting.house_style():
        for ax, panel in zip(axes[:, 0], panels, strict=True):
            part = rows[rows["panel"] == panel].reset_index(drop=True)
            y = np.arange(len(part))[::-1]
            for primary, color, marker, face in (
                (True, OKABE_ITO[0], "s", OKABE_ITO[0]),
                (False, OKABE_ITO[1], "o", "white"),
            ):
                chosen = part["primary"].astype(bool) == primary
                if not chosen.any():
                    continue
                plotting.horizontal_intervals(
                    ax,
                    part[chosen],
                    y[chosen.to_numpy()],
                    fmt=marker,
                    color=color,
                    markerfacecolor=face,
                    markersize=5,
                    capsize=2.5,
                    linewidth=1.2,
                    label="headline estimate" if primary else others,
                )
            mcid = (bands or {}).get(panel)
            if mcid:
                ax.axvspan(
                    reference - mcid,
                    reference + mcid,
                    color=GREY,
                    alpha=0.15,
                    linewidth=0,
                    label="within ± MCID",
                )
            ax.axvline(reference, color=GREY, linewidth=0.8, linestyle="--")
            ax.set_yticks(y, part["label"])
            ax.set_ylim(-0.7, len(part) - 0.3)
            ax.set_xlabel(panel_labels[panel])
            ax.grid(axis="x", alpha=0.3)
        plotting.legend_below(fig, axes[:, 0], ncols=3 if bands else 2)
    return fig


RESIDUAL_POINTS = 20_000
"""Most points a residual panel draws.

Above it the residuals-against-fitted panel draws a seeded random sample of this many
assessments (:data:`RESIDUAL_SEED`) and the Q-Q panel this many order statistics at evenly
spaced ranks (extremes included, each at its quantile among all). At 100,000 patients a model
has 625,000 residuals: drawn one by one at 300 dpi they cost more than the fit and show a solid
blob; 20,000 keep the shape and the outliers' reach (the demo's models are far below)."""

RESIDUAL_SEED = 20231
"""Seed of the residual panel's sample (the same figure on every run)."""


def residual_plots(fitted: np.ndarray, residuals: np.ndarray, *, title: str) -> Figure:
    """Residuals against fitted values and a normal Q–Q plot of the residuals.

    Models with more than :data:`RESIDUAL_POINTS` residuals are drawn from a sample of them
    (the rule at :data:`RESIDUAL_POINTS`); the Q–Q line is fitted to all.

    Parameters
    ----------
    fitted, residuals : numpy.ndarray
        Conditional fitted values and residuals (with the random effects) of one model.
    title : str
        Figure title (the analysis and outcome).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels side by side.
    """
    fitted = np.asarray(fitted, dtype=float)
    residuals = np.asarray(residuals, dtype=float)
    shown_fitted, shown_residuals = fitted, residuals
    if fitted.size > RESIDUAL_POINTS:
        rng = np.random.default_rng(RESIDUAL_SEED)
        pick = np.sort(rng.choice(fitted.size, RESIDUAL_POINTS, replace=False))
        shown_fitted, shown_residuals = fitted[pick], residuals[pick]
    fig, axes = plotting.figure(1, 2, FULL_WIDTH, 2.5)
    left, right = axes[0]
    points = {"s": 5, "linewidths": 0}
    with plotting.house_style():
        plotting.residuals_against_fitted(
            left,
            shown_fitted,
            shown_residuals,
            line_width=0.8,
            color=OKABE_ITO[0],
            alpha=0.4,
            **points,
        )
        left.set_title("Residuals against fitted values")
        plotting.normal_qq(
            right,
            residuals,
            line_color=GREY,
            line_width=0.8,
            max_points=RESIDUAL_POINTS,
            color=OKABE_ITO[1],
            alpha=0.5,
            **points,
        )
        right.set_ylabel("Ordered residual")
        right.set_title("Normal Q–Q plot")
        for ax in (left, right):
            ax.grid(alpha=0.3)
        fig.suptitle(title)
    return fig


def flow_diagram(flow: pd.DataFrame) -> Figure:
    """Draw the patient flow (``flow_counts``, suppressed) as boxes and arrows.

    Parameters
    ----------
    flow : pandas.DataFrame
        ``step, label, patients, stage, detail`` (counts may be suppression markers, drawn as
        written); rows are placed by their typed ``stage``.

    Returns
    -------
    matplotlib.figure.Figure
        Boxes of the main steps top to bottom, exclusions to the side.
    """
    rows = flow.to_dict(orient="records")
    first = {FlowStage(r["stage"]): r for r in reversed(rows)}

    def n(row: dict) -> str:
        return f"n = {row['patients']}"

    def stage(wanted: FlowStage) -> list[dict]:
        return [r for r in rows if r["stage"] == wanted]

    def boxed(wanted: FlowStage) -> str:
        return f"{first[wanted]['label']}\n{n(first[wanted])}"

    visits, analysed = stage(FlowStage.ASSESSED), stage(FlowStage.ANALYSED)
    main = [
        (FlowStage.ENROLLED, boxed(FlowStage.ENROLLED)),
        (FlowStage.INCLUDED, boxed(FlowStage.INCLUDED)),
    ]
    if FlowStage.TREATED in first:  # a study without a session log has no treated step
        main.append((FlowStage.TREATED, boxed(FlowStage.TREATED)))
    if visits:
        lines = [f"{visit_words(int(r['detail']))}: {n(r)}" for r in visits]
        main.append((FlowStage.ASSESSED, "Assessed (valid assessment)\n" + "\n".join(lines)))
    if analysed:
        lines = [f"{OUTCOME_LABELS.get(r['detail'], r['detail'])}: {n(r)}" for r in analysed]
        main.append((FlowStage.ANALYSED, "Analysed in the primary model\n" + "   ".join(lines)))
    side = {
        FlowStage.ENROLLED: "Excluded (record quarantined)\n"
        + n(first[FlowStage.EXCLUDED])
        + "".join(f"\n• {r['label']}: {r['patients']}" for r in stage(FlowStage.EXCLUSION_REASON)),
    }
    if FlowStage.NOT_TREATED in first:
        side[FlowStage.INCLUDED] = boxed(FlowStage.NOT_TREATED)
    box = {"boxstyle": "round,pad=0.5", "facecolor": "white", "edgecolor": "#333333"}
    arrow = {"arrowstyle": "-|>", "color": "#333333", "linewidth": 1.0}
    with plotting.house_style():
        fig = Figure(figsize=(FULL_WIDTH, 1.05 * len(main) + 0.6))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ys = np.linspace(0.93, 0.07, len(main))
        texts = {}
        for (step, text), y in zip(main, ys, strict=True):
            texts[step] = ax.text(
                0.33, y, text, ha="center", va="center", bbox=box, fontsize=8.5, wrap=False
            )
        for (a, _), (b, _) in itertools.pairwise(main):
            ax.annotate(
                "",
                xy=(0.5, 1.0),
                xycoords=texts[b],
                xytext=(0.5, 0.0),
                textcoords=texts[a],
                arrowprops={**arrow, "shrinkA": 6, "shrinkB": 6},
            )
        for k, (step, _) in enumerate(main[:-1]):
            if step not in side:
                continue
            y = (ys[k] + ys[k + 1]) / 2
            target = ax.text(0.78, y, side[step], ha="center", va="center", bbox=box, fontsize=8)
            ax.annotate(
                "",
                xy=(0.0, 0.5),
                xycoords=target,
                xytext=(0.33, y),
                textcoords="data",
                arrowprops={**arrow, "shrinkB": 6},
            )
    return fig


def response_curves(curve: pd.DataFrame, *, panel_labels: Mapping[str, str]) -> Figure:
    """Kaplan–Meier share not yet responded by sessions completed, one panel per endpoint.

    Parameters
    ----------
    curve : pandas.DataFrame
        Rows of ``sessions_to_response_curve`` for one grouping: ``endpoint, level, sessions,
        survival, ci_low, ci_high`` (levels in table order).
    panel_labels : mapping of str to str
        Endpoint -> panel title, in panel order (endpoints absent from ``curve`` are skipped).

    Returns
    -------
    matplotlib.figure.Figure
        Step curves from 1 at 0 sessions, with the pointwise 95 % CI as a shaded step band.
    """
    curve = _numeric(curve, ["sessions", "survival", "ci_low", "ci_high"])
    panels = [p for p in panel_labels if p in set(curve["endpoint"])]
    levels = list(dict.fromkeys(curve["level"]))
    fig, axes = plotting.figure(1, max(1, len(panels)), FULL_WIDTH, 2.8, sharey=True)
    with plotting.house_style():
        for ax, panel in zip(axes[0], panels, strict=False):
            for k, level in enumerate(levels):
                part = curve[(curve["endpoint"] == panel) & (curve["level"] == level)]
                if part.empty:
                    continue
                style = plotting.group_style(k)
                x = np.concatenate([[0.0], part["sessions"].to_numpy(float)])
                y = np.concatenate([[1.0], part["survival"].to_numpy(float)])
                ax.step(
                    x,
                    y,
                    where="post",
                    color=style["color"],
                    linestyle=style["linestyle"],
                    label=str(level),
                )
                low = np.concatenate([[1.0], part["ci_low"].to_numpy(float)])
                high = np.concatenate([[1.0], part["ci_high"].to_numpy(float)])
                ax.fill_between(x, low, high, step="post", color=style["color"], alpha=0.15)
            ax.set_title(panel_labels[panel])
            ax.set_xlabel("Sessions completed")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("Share not yet responded")
        plotting.legend_below(fig, [axes[0][0]], ncols=4)
    return fig


def rates_by_kind(rates: pd.DataFrame, *, panel_labels: Mapping[str, str]) -> Figure:
    """Adverse events per 100 sessions by type, one panel per grouping, levels side by side.

    Parameters
    ----------
    rates : pandas.DataFrame
        ``side_effect_rates`` rows over all severities: ``group, level, ae_type,
        rate_per_100, ci_low, ci_high`` (withheld values are not drawn).
    panel_labels : mapping of str to str
        Grouping -> panel title, in panel order.

    Returns
    -------
    matplotlib.figure.Figure
        Rates with their exact 95 % CI; types top to bottom in table order.
    """
    rates = _numeric(rates, ["rate_per_100", "ci_low", "ci_high"])
    panels = [p for p in panel_labels if p in set(rates["group"])]
    kinds = list(dict.fromkeys(rates["ae_type"]))
    fig, axes = plotting.figure(1, max(1, len(panels)), FULL_WIDTH, 0.9 + 0.3 * len(kinds))
    with plotting.house_style():
        for ax, panel in zip(axes[0], panels, strict=False):
            part = rates[rates["group"] == panel]
            levels = list(dict.fromkeys(part["level"]))
            for k, level in enumerate(levels):
                rows = part[part["level"] == level].set_index("ae_type").reindex(kinds)
                y = np.arange(len(kinds))[::-1] + 0.15 * (k - (len(levels) - 1) / 2)
                keep = rows["rate_per_100"].notna().to_numpy()
                style = plotting.group_style(k)
                ax.errorbar(
                    rows["rate_per_100"].to_numpy()[keep],
                    y[keep],
                    xerr=[
                        (rows["rate_per_100"] - rows["ci_low"]).to_numpy()[keep],
                        (rows["ci_high"] - rows["rate_per_100"]).to_numpy()[keep],
                    ],
                    fmt=style["marker"],
                    color=style["color"],
                    markersize=4,
                    capsize=2,
                    linewidth=1,
                    label=str(level),
                )
            ax.set_yticks(np.arange(len(kinds))[::-1], kinds)
            ax.set_title(panel_labels[panel])
            ax.set_xlabel("Events per 100 sessions (95 % CI)")
            ax.grid(axis="x", alpha=0.3)
        plotting.legend_below(fig, axes[0], ncols=4)
    return fig
