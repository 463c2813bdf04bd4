"""The pieces every figure is drawn with, for the report and the notebooks alike.

Figures are :class:`matplotlib.figure.Figure` objects made directly, not through pyplot: no
global figure state and no backend chosen here, so a notebook shows a returned figure once
(Jupyter's inline display), tests draw them headless, and the report encodes them as PNG at its
edge (:func:`pipeline.report.html.png`). The look (colours, markers, line styles, text sizes) is
:mod:`pipeline.figures.style`; the panels below are drawn the same way wherever they appear.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from contextlib import AbstractContextManager

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from pipeline.figures.style import GREY, LINESTYLES, MARKERS, OKABE_ITO, STYLE


def house_style() -> AbstractContextManager:
    """Context in which matplotlib uses the house rc settings (``style.STYLE``).

    Returns
    -------
    contextlib.AbstractContextManager
        :func:`matplotlib.rc_context` with the house settings.
    """
    return mpl.rc_context(STYLE)


def figure(
    nrows: int, ncols: int, width: float, height: float, **grid
) -> tuple[Figure, np.ndarray]:
    """Make a figure in the house style with a grid of axes and constrained layout.

    Parameters
    ----------
    nrows, ncols : int
        Rows and columns of panels.
    width, height : float
        Figure size in inches.
    **grid
        Further arguments of :meth:`matplotlib.figure.Figure.subplots` (``sharex``,
        ``sharey``, ``gridspec_kw``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    numpy.ndarray
        Its axes, always two-dimensional (``nrows`` x ``ncols``).
    """
    with house_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **grid)
    return fig, axes


def group_style(k: int) -> dict[str, str]:
    """Colour, marker and line style of the ``k``-th group (six, then repeated).

    Parameters
    ----------
    k : int
        Position of the group.

    Returns
    -------
    dict
        ``color``, ``marker`` and ``linestyle`` keyword arguments for matplotlib.
    """
    return {"color": OKABE_ITO[k % 6], "marker": MARKERS[k % 6], "linestyle": LINESTYLES[k % 6]}


def legend_below(
    fig: Figure, axes: Iterable[Axes], *, ncols: int, title: str | None = None
) -> None:
    """Draw one legend under the panels with every labelled artist of ``axes``, each label once.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (constrained layout makes room for the legend).
    axes : iterable of matplotlib.axes.Axes
        Panels whose labelled artists are listed, in order.
    ncols : int
        Legend entries per row.
    title : str, optional
        Legend title.
    """
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, title=title, loc="outside lower center", ncols=ncols)


def means_with_ci(
    ax: Axes, summary: pd.DataFrame, groups: Sequence[Hashable] | None = None
) -> None:
    """Draw the mean at each visit of every group with its 95 % CI bars, groups set side by side.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel.
    summary : pandas.DataFrame
        ``group, mean_weeks, mean, ci_low, ci_high`` (numbers; as
        :func:`pipeline.describe.summaries.mean_by_visit`). A missing mean is not drawn; a missing
        bound
        draws no bar.
    groups : sequence, optional
        Groups in legend order, which also fixes each group's style and offset (default: as
        they first appear in ``summary``).
    """
    if groups is None:
        groups = list(dict.fromkeys(summary["group"]))
    for k, group in enumerate(groups):
        rows = summary[(summary["group"] == group) & summary["mean"].notna()]
        offset = 0.25 * (k - (len(groups) - 1) / 2)
        ax.errorbar(
            rows["mean_weeks"] + offset,
            rows["mean"],
            yerr=[
                (rows["mean"] - rows["ci_low"]).fillna(0),
                (rows["ci_high"] - rows["mean"]).fillna(0),
            ],
            markersize=4,
            capsize=2.5,
            label=str(group),
            **group_style(k),
        )


def patient_lines(
    ax: Axes,
    rows: pd.DataFrame,
    *,
    patient: str,
    x: str,
    y: str,
    patients: Iterable[Hashable] | None = None,
    **line,
) -> None:
    """Draw one unlabelled line per patient, ``y`` against ``x``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel.
    rows : pandas.DataFrame
        Long data: one row per patient and time.
    patient, x, y : str
        Columns of the patient, the time and the value.
    patients : iterable, optional
        The patients to draw, in drawing order (default: every patient, in sorted order).
    **line
        Line properties of :meth:`matplotlib.axes.Axes.plot`.
    """
    if patients is None:
        patients = sorted(rows[patient].unique())
    for one in patients:
        own = rows[rows[patient] == one]
        ax.plot(own[x], own[y], **line)


def horizontal_intervals(ax: Axes, rows: pd.DataFrame, y: np.ndarray, **style) -> None:
    """Draw each row's estimate at height ``y`` with its 95 % CI as a horizontal bar.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel.
    rows : pandas.DataFrame
        ``estimate, ci_low, ci_high`` (numbers).
    y : numpy.ndarray
        Height of each row.
    **style
        Marker and bar properties of :meth:`matplotlib.axes.Axes.errorbar`.
    """
    estimate = rows["estimate"]
    ax.errorbar(estimate, y, xerr=[estimate - rows["ci_low"], rows["ci_high"] - estimate], **style)


def residuals_against_fitted(
    ax: Axes, fitted: np.ndarray, residuals: np.ndarray, *, line_width: float, **points
) -> None:
    """Scatter residuals against fitted values with a dashed line at zero.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel.
    fitted, residuals : numpy.ndarray
        Fitted values and residuals of one model.
    line_width : float
        Width of the zero line.
    **points
        Marker properties of :meth:`matplotlib.axes.Axes.scatter`.
    """
    ax.scatter(fitted, residuals, **points)
    ax.axhline(0.0, color=GREY, linewidth=line_width, linestyle="--")
    ax.set_xlabel("Fitted value")
    ax.set_ylabel("Residual")


def normal_qq(
    ax: Axes,
    values: np.ndarray,
    *,
    line_color: str,
    line_width: float,
    max_points: int | None = None,
    **points,
) -> None:
    """Draw a normal Q–Q plot: ordered values against normal quantiles, with the fitted line.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel.
    values : numpy.ndarray
        The values (residuals or random effects).
    line_color : str
        Colour of the fitted line.
    line_width : float
        Width of the fitted line.
    max_points : int, optional
        Draw at most this many points: the order statistics at evenly spaced ranks, the
        smallest and largest always among them, each at its own normal quantile among all
        ``n`` values (the line is fitted to all). Default: every point.
    **points
        Marker properties of :meth:`matplotlib.axes.Axes.scatter`.
    """
    (theoretical, ordered), (slope, intercept, _) = stats.probplot(values, dist="norm")
    if max_points is not None and ordered.size > max_points:
        ranks = np.unique(np.round(np.linspace(0, ordered.size - 1, max_points)).astype(int))
        theoretical, ordered = theoretical[ranks], ordered[ranks]
    ax.scatter(theoretical, ordered, **points)
    ax.plot(theoretical, intercept + slope * theoretical, color=line_color, linewidth=line_width)
    ax.set_xlabel("Normal quantile")
