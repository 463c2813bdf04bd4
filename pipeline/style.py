"""The figures' shared look: Okabe–Ito colours, markers, line styles and print-size text.

Kept free of any matplotlib import so that both the report's figures (:mod:`pipeline.figures`,
which selects the Agg backend) and the notebooks' figures (:mod:`pipeline.explore_plots`, which
must not) draw from one definition.
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
