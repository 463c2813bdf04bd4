"""The figures' shared look: Okabe–Ito colours, markers, line styles and print-size text.

Plain values, no matplotlib import: :mod:`pipeline.figures.panels` draws every figure with them, for
the report (:mod:`pipeline.report.figures`) and the notebooks (:mod:`pipeline.explore.plots`).
"""

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
"""Colours distinguishable with the common colour-vision deficiencies."""
MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", ":", "-.", "-", "--")
GREY = "#777777"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
"""matplotlib rc settings: 8–9 pt text, no top or right spines."""
