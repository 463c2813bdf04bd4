"""Exploration figures for the notebooks, returned as matplotlib Figures.

The figures are drawn with the panels of :mod:`pipeline.figures.panels`, as the report's figures
are: :class:`matplotlib.figure.Figure` built directly (no pyplot, no backend chosen), so a
notebook shows each returned figure once (Jupyter's inline display) and tests draw them
headless. Colours are the Okabe–Ito palette of the report (distinguishable with the common
colour-vision deficiencies) and groups also differ by marker and line style. No figure labels
a patient: individual trajectories are drawn as unlabelled lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.describe.summaries import mean_by_visit
from pipeline.explore.tables import observed_levels
from pipeline.figures import panels as plotting
from pipeline.figures.style import GREY, LINESTYLES, MARKERS, OKABE_ITO
from pipeline.lmm.fit import LmmFit
from pipeline.schemas.columns import INSTRUMENT_COLUMNS, INSTRUMENTS, PATIENT_ID

LABELS = {
    **{i.column: i.title for i in INSTRUMENTS.values()},
    "weeks": "Weeks since baseline",
    "sessions_completed": "Sessions completed",
}
"""Axis labels of the analysis data set's columns."""
BINS = {
    "nrs": np.arange(-0.5, 11.0, 1.0),
    "vas_mm": np.arange(0.0, 105.0, 5.0),
    "odi": np.arange(0.0, 105.0, 5.0),
}


def _label(column: str) -> str:
    return LABELS.get(column, column)


def missingness(table: pd.DataFrame) -> Figure:
    """Per cent of patients with each outcome at each visit, one panel per outcome.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`pipeline.explore.tables.missingness_by_visit` (``group, visit, outcome,
        missing_pct``).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per outcome, one line per group.
    """
    outcomes = list(dict.fromkeys(table["outcome"]))
    groups = list(dict.fromkeys(table["group"]))
    fig, axes = plotting.figure(1, len(outcomes), 7.0, 2.6, sharey=True)
    with plotting.house_style():
        for ax, outcome in zip(axes[0], outcomes, strict=True):
            for k, group in enumerate(groups):
                rows = table[(table["outcome"] == outcome) & (table["group"] == group)]
                ax.plot(
                    rows["visit"],
                    100.0 - rows["missing_pct"],
                    label=group,
                    **plotting.group_style(k),
                )
            ax.set_title(outcome.upper())
            ax.set_xlabel("Visit")
            ax.set_xticks(sorted(table["visit"].unique()))
            ax.set_ylim(0, 105)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("Patients with a value (%)")
        plotting.legend_below(fig, [axes[0][0]], ncols=6)
    return fig


def retention(table: pd.DataFrame) -> Figure:
    """Per cent of patients still in follow-up at each visit, by group.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`pipeline.explore.tables.dropout_pattern` (``group, visit, retained_pct``).

    Returns
    -------
    matplotlib.figure.Figure
        One line per group.
    """
    fig, axes = plotting.figure(1, 1, 4.0, 2.8)
    ax = axes[0][0]
    with plotting.house_style():
        for k, group in enumerate(dict.fromkeys(table["group"])):
            rows = table[table["group"] == group]
            ax.plot(rows["visit"], rows["retained_pct"], label=group, **plotting.group_style(k))
        ax.set_xlabel("Visit")
        ax.set_xticks(sorted(table["visit"].unique()))
        ax.set_ylabel("Still in follow-up (%)")
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    return fig


def baseline_distributions(
    data: pd.DataFrame,
    group: str | None = None,
    outcomes: Mapping[str, str] = INSTRUMENT_COLUMNS,
) -> Figure:
    """Histograms of each outcome at baseline (visit 0), overlaid by group.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    group : str, optional
        Patient-level grouping column; None for one histogram per outcome.
    outcomes : mapping of str to str
        Instrument -> column (default NRS, VAS, ODI).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per outcome.
    """
    base = data.loc[data["visit"] == 0]
    levels = observed_levels(base[group]) if group else ["all"]
    fig, axes = plotting.figure(1, len(outcomes), 7.0, 2.6)
    with plotting.house_style():
        for ax, column in zip(axes[0], outcomes.values(), strict=True):
            for k, level in enumerate(levels):
                rows = base if group is None else base[base[group].astype(str) == level]
                values = rows[column].dropna().astype("float64")
                ax.hist(
                    values,
                    bins=BINS.get(column, 20),
                    histtype="step",
                    linewidth=1.5,
                    color=OKABE_ITO[k % 6],
                    linestyle=LINESTYLES[k % 6],
                    label=level,
                )
            ax.set_xlabel(_label(column))
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("Patients")
        plotting.legend_below(fig, [axes[0][0]], ncols=6, title=group)
    return fig


def _sample(patients: Sequence, limit: int | None, rng: np.random.Generator) -> list:
    if limit is None or len(patients) <= limit:
        return list(patients)
    return list(rng.choice(np.asarray(patients, dtype=object), size=limit, replace=False))


def spaghetti(
    data: pd.DataFrame,
    response: str,
    group: str,
    *,
    facet: str | None = None,
    time: str = "weeks",
    max_patients: int | None = 40,
    seed: int = 2026,
) -> Figure:
    """Individual trajectories (thin lines) and the mean at each visit (bold), by group.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    response : str
        Outcome column (``nrs``, ``vas_mm``, ``odi``).
    group : str
        Patient-level grouping column: one column of panels per level.
    facet : str, optional
        Second patient-level column: one row of panels per level (e.g. ``chronicity``).
    time : str, default "weeks"
        Time column (``weeks`` or ``sessions_completed``).
    max_patients : int or None, default 40
        Patients drawn per panel (a random sample; None draws all). The mean uses every
        patient of the panel.
    seed : int
        Seed of the sample.

    Returns
    -------
    matplotlib.figure.Figure
        A grid of panels (facet levels × group levels), titled with the number of patients.
    """
    rng = np.random.default_rng(seed)
    rows = data.dropna(subset=[response, time])
    columns = observed_levels(rows[group])
    facets = observed_levels(rows[facet]) if facet else [None]
    fig, axes = plotting.figure(
        len(facets), len(columns), 7.0, 0.5 + 2.3 * len(facets), sharex=True, sharey=True
    )
    with plotting.house_style():
        for i, facet_level in enumerate(facets):
            for k, level in enumerate(columns):
                ax = axes[i][k]
                cell = rows[rows[group].astype(str) == level]
                if facet:
                    cell = cell[cell[facet].astype(str) == facet_level]
                members = list(dict.fromkeys(cell[PATIENT_ID]))
                plotting.patient_lines(
                    ax,
                    cell,
                    patient=PATIENT_ID,
                    x=time,
                    y=response,
                    patients=_sample(members, max_patients, rng),
                    color=OKABE_ITO[k % 6],
                    alpha=0.3,
                    lw=0.8,
                )
                means = cell.groupby("visit")[[time, response]].mean()
                ax.plot(means[time], means[response], color="black", marker=MARKERS[k % 6], lw=2)
                title = f"{level} (n = {len(members)})"
                ax.set_title(f"{facet_level} · {title}" if facet else title)
                ax.grid(alpha=0.3)
                if i == len(facets) - 1:
                    ax.set_xlabel(_label(time))
            axes[i][0].set_ylabel(_label(response))
    return fig


def mean_trajectories(
    data: pd.DataFrame, response: str, group: str, *, facet: str | None = None
) -> Figure:
    """Observed mean of an outcome by visit and group with 95 % CIs, one panel per facet.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    response : str
        Outcome column.
    group : str
        Patient-level grouping column (one line per level).
    facet : str, optional
        Patient-level column with one panel per level (e.g. ``chronicity`` or ``site``).

    Returns
    -------
    matplotlib.figure.Figure
        Means (:func:`pipeline.describe.summaries.mean_by_visit`) against mean weeks since baseline.
    """
    facets = observed_levels(data[facet]) if facet else [None]
    fig, axes = plotting.figure(1, len(facets), 7.0 if facet else 4.5, 2.8, sharey=True)
    with plotting.house_style():
        for ax, level in zip(axes[0], facets, strict=True):
            part = data if facet is None else data[data[facet].astype(str) == level]
            plotting.means_with_ci(ax, mean_by_visit(part, response, group))
            if facet:
                ax.set_title(f"{level} (n = {part[PATIENT_ID].nunique()})")
            ax.set_xlabel(_label("weeks"))
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(f"Mean {_label(response)} (95 % CI)")
        plotting.legend_below(fig, [axes[0][0]], ncols=6, title=group)
    return fig


def sessions_per_patient(patients: pd.DataFrame, by: str = "chronicity") -> Figure:
    """Bar chart of the number of needling sessions per patient, by group.

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient with ``n_sessions`` and ``by``
        (:func:`pipeline.explore.tables.patient_level`).
    by : str, default "chronicity"
        Grouping column (one bar colour per level).

    Returns
    -------
    matplotlib.figure.Figure
        Patients by number of sessions.
    """
    levels = observed_levels(patients[by])
    counts = sorted(patients["n_sessions"].unique())
    width = 0.8 / max(len(levels), 1)
    fig, axes = plotting.figure(1, 1, 5.0, 2.8)
    ax = axes[0][0]
    with plotting.house_style():
        for k, level in enumerate(levels):
            n = patients.loc[patients[by].astype(str) == level, "n_sessions"].value_counts()
            x = np.arange(len(counts)) + (k - (len(levels) - 1) / 2) * width
            ax.bar(
                x,
                [n.get(c, 0) for c in counts],
                width=width,
                color=OKABE_ITO[k % 6],
                hatch=("", "//", "..", "xx", "\\\\", "++")[k % 6],
                edgecolor="white",
                label=level,
            )
        ax.set_xticks(np.arange(len(counts)), [str(c) for c in counts])
        ax.set_xlabel("Needling sessions per patient")
        ax.set_ylabel("Patients")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(title=by, frameon=False)
    return fig


def twitch_share_by_depth(patients: pd.DataFrame, threshold: float) -> Figure:
    """Histogram of each patient's share of sessions with a twitch, by depth group.

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient with ``depth`` and ``twitch_share``
        (:func:`pipeline.explore.tables.patient_level`).
    threshold : float
        The configured ``twitch_share`` cut-off, drawn as a vertical line.

    Returns
    -------
    matplotlib.figure.Figure
        Overlaid histograms with the threshold.
    """
    fig, axes = plotting.figure(1, 1, 5.0, 2.8)
    ax = axes[0][0]
    with plotting.house_style():
        for k, level in enumerate(observed_levels(patients["depth"])):
            values = patients.loc[patients["depth"].astype(str) == level, "twitch_share"].dropna()
            ax.hist(
                values,
                bins=np.linspace(0, 1, 11),
                histtype="step",
                linewidth=1.5,
                color=OKABE_ITO[k % 6],
                linestyle=LINESTYLES[k % 6],
                label=f"{level} (n = {len(values)})",
            )
        ax.axvline(threshold, color="black", linestyle=":", label=f"threshold {threshold:g}")
        ax.set_xlabel("Share of the patient's sessions with a twitch response")
        ax.set_ylabel("Patients")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    return fig


def forest(table: pd.DataFrame, label: str = "model", *, xlabel: str = "Estimate") -> Figure:
    """Estimates with 95 % CIs, one row each, top to bottom in table order.

    Parameters
    ----------
    table : pandas.DataFrame
        ``estimate, ci_low, ci_high`` and the label column.
    label : str, default "model"
        Column naming each row.
    xlabel : str
        Axis title (say the unit).

    Returns
    -------
    matplotlib.figure.Figure
        The estimates against a dashed line at zero.
    """
    y = np.arange(len(table))[::-1]
    fig, axes = plotting.figure(1, 1, 6.0, 0.8 + 0.35 * len(table))
    ax = axes[0][0]
    with plotting.house_style():
        plotting.horizontal_intervals(ax, table, y, fmt="o", color=OKABE_ITO[0], capsize=3)
        ax.axvline(0.0, color=GREY, linestyle="--", linewidth=1)
        ax.set_yticks(y, [str(v) for v in table[label]])
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, axis="x")
    return fig


def model_means(
    emmeans: pd.DataFrame,
    *,
    xlabel: str = "Time at the visit",
    ylabel: str = "Model-estimated mean (95 % CI)",
) -> Figure:
    """Model-estimated means by visit and level with 95 % CIs, one panel per factor.

    Parameters
    ----------
    emmeans : pandas.DataFrame
        The ``emmeans`` table of an analysis (``factor, level, visit, time, estimate,
        ci_low, ci_high``).
    xlabel, ylabel : str
        Axis titles (the x axis is the visit number when the model's time is categorical).

    Returns
    -------
    matplotlib.figure.Figure
        Means against the time value of each visit (or the visit number).
    """
    factors = list(dict.fromkeys(emmeans["factor"]))
    fig, axes = plotting.figure(1, len(factors), 3.5 * len(factors), 2.8, sharey=True)
    with plotting.house_style():
        for ax, factor in zip(axes[0], factors, strict=True):
            part = emmeans[emmeans["factor"] == factor]
            x = pd.to_numeric(part["time"], errors="coerce")
            numeric_time = bool(x.notna().all())
            x = x if numeric_time else part["visit"].astype(float)
            for k, level in enumerate(dict.fromkeys(part["level"])):
                mask = (part["level"] == level).to_numpy()
                rows = part[mask]
                ax.errorbar(
                    x[mask],
                    rows["estimate"],
                    yerr=[rows["estimate"] - rows["ci_low"], rows["ci_high"] - rows["estimate"]],
                    capsize=2.5,
                    markersize=4,
                    label=str(level),
                    **plotting.group_style(k),
                )
            ax.set_title(str(factor))
            ax.set_xlabel(xlabel if numeric_time else "Visit")
            ax.grid(alpha=0.3)
            ax.legend(frameon=False)
        axes[0][0].set_ylabel(ylabel)
    return fig


def residual_plots(fit: LmmFit) -> Figure:
    """Residual checks of a mixed-model fit: residuals vs fitted and normal Q–Q plots.

    Parameters
    ----------
    fit : LmmFit
        The engine's fit (``AnalysisResult.fit``).

    Returns
    -------
    matplotlib.figure.Figure
        Conditional residuals against fitted values; Q–Q plot of the standardised residuals;
        Q–Q plot of each random effect (conditional modes), two panels a row.
    """
    effects = list(fit.random_effects.columns)
    series = [("Q–Q: residuals / σ", fit.residuals / fit.sigma)]
    series += [(f"Q–Q: random {name}", fit.random_effects[name].to_numpy()) for name in effects]
    nrows = (len(series) + 2) // 2
    fig, axes = plotting.figure(nrows, 2, 6.0, 2.5 * nrows)
    panels = list(axes.flat)
    with plotting.house_style():
        plotting.residuals_against_fitted(
            panels[0], fit.fitted, fit.residuals, line_width=1, s=6, alpha=0.4, color=OKABE_ITO[0]
        )
        panels[0].set_title("Residuals vs fitted")
        for ax, (title, values) in zip(panels[1:], series, strict=False):
            plotting.normal_qq(
                ax, values, line_color="black", line_width=1, s=6, alpha=0.5, color=OKABE_ITO[1]
            )
            ax.set_title(title)
        for ax in panels[1 + len(series) :]:
            ax.set_visible(False)
        for ax in panels:
            ax.grid(alpha=0.3)
    return fig
