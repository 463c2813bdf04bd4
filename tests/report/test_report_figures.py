import os
import subprocess
import sys

import numpy as np
import pandas as pd
import report_tables
from matplotlib.figure import Figure
from scipy import stats

from pipeline.describe.summaries import trajectory_sample
from pipeline.report import figures as report_figures
from pipeline.report.html import png
from pipeline.report.sections.common import OUTCOMES

PNG = b"\x89PNG\r\n\x1a\n"


def twice(draw, *args, **kwargs) -> bytes:
    """Draw the figure twice and encode it as the report does: the same bytes each time."""
    drawn = draw(*args, **kwargs)
    assert isinstance(drawn, Figure)
    first, second = png(drawn), png(draw(*args, **kwargs))
    assert first.startswith(PNG)
    assert first == second, "the same data must give the same bytes"
    assert b"tEXt" not in first or b"Software" not in first  # no software tag or timestamp
    return first


def test_mean_trajectories_skip_suppressed_cells():
    means = report_tables.mean_by_visit()
    means = means[means["factor"] == "depth"].astype(object)
    means.iloc[0, means.columns.get_loc("mean")] = "[c]"  # a withheld mean is not drawn
    twice(report_figures.mean_trajectories, means, outcome_labels=OUTCOMES, group_label="Depth")


def test_spaghetti_forest_residuals_and_flow():
    rng = np.random.default_rng(2)
    data = pd.DataFrame(
        {
            "patient_id": np.repeat([f"P{i}" for i in range(30)], 3),
            "depth": pd.Categorical(
                np.repeat(rng.choice(["superficial", "deep"], 30), 3),
                categories=["superficial", "deep"],
            ),
            "weeks": np.tile([0.0, 4.0, 12.0], 30),
            "nrs": rng.integers(0, 11, 90).astype(float),
            "vas_mm": rng.uniform(0, 100, 90),
            "odi": rng.uniform(0, 100, 90),
        }
    )
    sample = trajectory_sample(data, {"nrs": "nrs", "vas": "vas_mm", "odi": "odi"}, "depth", 5)
    assert sample.groupby("group")["patient"].nunique().tolist() == [5, 5]
    assert "patient_id" not in sample and set(sample["patient"]) == set(range(1, 11))
    pd.testing.assert_frame_equal(
        sample, trajectory_sample(data, {"nrs": "nrs", "vas": "vas_mm", "odi": "odi"}, "depth", 5)
    )
    twice(report_figures.spaghetti, sample, outcome_labels=OUTCOMES, group_label="Depth")
    rows = pd.DataFrame(
        {
            "panel": ["nrs", "nrs", "vas"],
            "label": ["Trajectory model, depth", "Joint model", "Trajectory model, depth"],
            "estimate": [-0.1, -0.09, -1.0],
            "ci_low": [-0.14, -0.13, -1.4],
            "ci_high": [-0.06, -0.05, -0.6],
            "primary": [True, False, True],
        }
    )
    twice(report_figures.forest, rows, panel_labels={"nrs": "NRS per week", "vas": "VAS per week"})
    twice(report_figures.residual_plots, rng.normal(5, 1, 300), rng.normal(0, 1, 300), title="NRS")
    _, _, flow = report_tables.accounting()
    flow = flow.astype(object)
    flow.loc[1, "patients"] = "<5"
    twice(report_figures.flow_diagram, flow)


def test_figure_modules_leave_the_backend_to_the_caller():
    """Importing the figures (report or notebooks) neither imports pyplot nor picks a backend."""
    code = (
        "import sys, matplotlib\n"
        "import pipeline.report.content, pipeline.explore.plots\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.rcParams._get('backend') is matplotlib.rcsetup._auto_backend_sentinel\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "MPLBACKEND": ""})


def test_residual_plots_draw_a_sample_of_a_large_model():
    """Above RESIDUAL_POINTS residuals each panel draws that many; the Q-Q keeps the extremes."""
    rng = np.random.default_rng(3)
    n = report_figures.RESIDUAL_POINTS * 3
    fitted, resid = rng.normal(5, 1, n), rng.standard_t(3, n)
    fig = report_figures.residual_plots(fitted, resid, title="NRS")
    left, right = fig.axes[:2]
    scatter, qq = left.collections[0].get_offsets(), right.collections[0].get_offsets()
    assert len(scatter) == len(qq) == report_figures.RESIDUAL_POINTS
    assert set(map(tuple, scatter)) <= set(zip(fitted, resid, strict=True))  # real points
    assert qq[:, 1].min() == resid.min() and qq[:, 1].max() == resid.max()
    # each drawn order statistic sits at its normal quantile among all n (scipy's probplot)
    (theory, _), _ = stats.probplot(resid, dist="norm")
    assert qq[0, 0] == theory[0] and qq[-1, 0] == theory[-1]
    small = report_figures.residual_plots(fitted[:300], resid[:300], title="NRS")
    assert len(small.axes[0].collections[0].get_offsets()) == 300  # below the cap: every point
