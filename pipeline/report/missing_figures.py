"""Figures of the estimand section: the tipping-point curve and time to dropout by group.

Built like :mod:`pipeline.report.figures` (house style, Okabe-Ito colours, markers that read in
grey print) from the tidy tables of :mod:`pipeline.analyses.missing_data`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.figures import panels as plotting
from pipeline.figures.style import GREY, OKABE_ITO

FULL_WIDTH = 7.0  # inches: the text column of an A4 page


def tipping_figure(
    tipping: pd.DataFrame,
    *,
    mcid: float,
    deltas: Sequence[tuple[str, float]],
    xlabel: str,
    ylabel: str,
) -> Figure:
    """Estimate and 95 % CI against the delta added to imputed values.

    Parameters
    ----------
    tipping : pandas.DataFrame
        ``tipping_point`` rows of one contrast: ``delta, estimate, ci_low, ci_high``.
    mcid : float
        The MCID in points (dotted lines at +/- MCID; NaN draws none).
    deltas : sequence of (str, float)
        Labelled tipping deltas drawn as vertical lines (NaN skipped).
    xlabel, ylabel : str
        Axis labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plotting.figure(1, 1, FULL_WIDTH * 0.75, 3.2)
    ax = axes[0, 0]
    with plotting.house_style():
        x = tipping["delta"].to_numpy(dtype=float)
        ax.fill_between(
            x,
            tipping["ci_low"].to_numpy(dtype=float),
            tipping["ci_high"].to_numpy(dtype=float),
            color=OKABE_ITO[0],
            alpha=0.2,
            linewidth=0,
            label="95 % CI (jackknife)",
        )
        ax.plot(
            x, tipping["estimate"], color=OKABE_ITO[0], marker="o", markersize=3, label="estimate"
        )
        ax.axhline(0.0, color=GREY, linewidth=0.8, linestyle="--")
        if np.isfinite(mcid):
            for sign in (-1, 1):
                ax.axhline(sign * mcid, color=GREY, linewidth=0.8, linestyle=":")
        styles = ("-.", (0, (5, 2)))
        for (label, value), style in zip(deltas, styles, strict=False):
            if np.isfinite(value):
                ax.axvline(value, color=OKABE_ITO[1], linewidth=1.0, linestyle=style, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        plotting.legend_below(fig, axes[:, 0], ncols=2)
    return fig


def dropout_figure(km: pd.DataFrame, *, xlabel: str) -> Figure:
    """Share of patients still attending (Kaplan-Meier) at each visit, one line per group.

    Parameters
    ----------
    km : pandas.DataFrame
        ``group, visit, retained`` (rows of a suppressed group absent).
    xlabel : str
        Axis label of the visits.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plotting.figure(1, 1, FULL_WIDTH * 0.6, 2.8)
    ax = axes[0, 0]
    with plotting.house_style():
        for k, (group, rows) in enumerate(km.groupby("group", sort=False)):
            style = plotting.group_style(k)
            visits = rows["visit"].to_numpy(dtype=float)
            kept = rows["retained"].to_numpy(dtype=float)
            ax.step(
                np.concatenate([visits, [visits[-1] + 1]]),
                np.concatenate([kept, [kept[-1]]]),
                where="post",
                label=str(group),
                **style,
            )
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("still attending")
        ax.grid(alpha=0.3)
        plotting.legend_below(fig, axes[:, 0], ncols=3)
    return fig
