"""Figures for the report, drawn with matplotlib and returned as PNG bytes.

Colours are from the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies) and every group also differs by marker and line style, so figures read in grey
print. PNGs are written without a timestamp so the same data give the same bytes.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported
import matplotlib.pyplot as plt
import pandas as pd

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", ":", "-.", "-", "--")


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def mean_trajectories(summary: pd.DataFrame, *, outcome_label: str, group_label: str) -> bytes:
    """Plot the mean outcome by visit for each group with 95 % CI error bars.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`pipeline.summaries.mean_by_visit`.
    outcome_label, group_label : str
        Axis and legend titles.

    Returns
    -------
    bytes
        The figure as PNG.
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    groups = list(dict.fromkeys(summary["group"]))
    width = 0.25 * (len(groups) - 1)
    for k, group in enumerate(groups):
        part = summary[summary["group"] == group]
        offset = (k * 0.25 - width / 2) if len(groups) > 1 else 0.0
        x = part["mean_weeks"] + offset
        yerr = [part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]]
        ax.errorbar(
            x,
            part["mean"],
            yerr=yerr,
            color=OKABE_ITO[k % 6],
            marker=MARKERS[k % 6],
            linestyle=LINESTYLES[k % 6],
            capsize=3,
            label=f"{group}",
        )
    ax.set_xlabel("Weeks since baseline (mean at each visit)")
    ax.set_ylabel(outcome_label)
    ax.grid(alpha=0.3)
    ax.legend(title=group_label, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)
