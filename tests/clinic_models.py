"""Simulated clinic data and the engine's fast path, shared by the mixed-model tests.

``test_lmm.py`` and ``test_lmm_fast.py`` fit the same unbalanced clinic data (dropout and
missed visits; the ``clinic`` fixture of ``conftest.py``) with the same formulas and compare
with R fitted on the very CSV the data were read back from.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.lmm.fit import DEFAULT_ROUTES, FAST_ROUTES, LmmFit, fit_lmm

CLINIC_FIXED = "weeks * C(depth, Treatment('superficial')) + C(chronicity, Treatment('acute'))"
CLINIC_RELEVEL = {"depth": "superficial", "chronicity": "acute"}


def simulate_clinic(n_patients: int, seed: int, slope_sd: float) -> pd.DataFrame:
    """Clinic-like NRS data with dropout and missed visits (SAP section 6: unbalanced).

    Visits at weeks 0, 1, 2, 4, 6, 8, 12; each patient drops out after a random number of
    visits and misses 15 % of the post-baseline visits before that. Depth lowers the slope by
    0.08 per week; the random slope SD ``slope_sd`` (0.08 gives a variance of 0.0064, below
    statsmodels' fixed 0.01 "boundary" warning threshold, yet clearly non-zero).
    """
    rng = np.random.default_rng(seed)
    weeks = np.array([0, 1, 2, 4, 6, 8, 12])
    depth = rng.choice(["superficial", "deep"], n_patients)
    chronicity = rng.choice(["acute", "subacute", "chronic"], n_patients, p=[0.3, 0.2, 0.5])
    b0 = rng.normal(0.0, 1.2, n_patients)
    b1 = rng.normal(0.0, slope_sd, n_patients)
    rows = []
    for i in range(n_patients):
        deep = depth[i] == "deep"
        n_visits = rng.integers(2, len(weeks) + 3)
        for j, w in enumerate(weeks[:n_visits]):
            if j > 0 and rng.random() < 0.15:
                continue
            mu = (
                6.5
                + 0.4 * (chronicity[i] == "chronic")
                + 0.2 * (chronicity[i] == "subacute")
                + 0.3 * deep
                - (0.25 + 0.08 * deep) * w
                + b0[i]
                + b1[i] * w
            )
            nrs = round(mu + rng.normal(0.0, 0.9), 2)
            rows.append((f"P{i:03d}", int(w), f"w{w:02d}", depth[i], chronicity[i], nrs))
    return pd.DataFrame(rows, columns=["patient", "weeks", "visit", "depth", "chronicity", "nrs"])


def write_and_reload(data: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Write the CSV R will read, and fit Python on exactly the same numbers."""
    data.to_csv(path, index=False)
    return pd.read_csv(path)


def r_formula(fixed: str, slope: str | None) -> str:
    """The lme4 formula of an engine model of ``nrs`` with a random effect per ``patient``."""
    rhs = re.sub(r"C\((\w+), Treatment\('[^']*'\)\)", r"\1", fixed)
    return f"nrs ~ {rhs} + ({slope or 1} | patient)"


def fit_fast(data: pd.DataFrame, fixed: str, slope: str | None, reml: bool, **kw) -> LmmFit:
    """Fit ``nrs`` by patient on the fast path, escalating to the default routes as the runs do."""
    return fit_lmm(
        data,
        "nrs",
        fixed,
        "patient",
        random_slope=slope,
        reml=reml,
        routes=FAST_ROUTES,
        escalate=DEFAULT_ROUTES,
        **kw,
    )
