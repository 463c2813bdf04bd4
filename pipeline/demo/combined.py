"""Simulate combined care with known effects: co-interventions that add to and modify depth.

The demo study (:mod:`pipeline.demo.simulate`) draws its co-interventions independently of
everything (their true effect is 0). This simulator gives them a known effect, so that the
combined-care analysis (:mod:`pipeline.describe.combined_care`) can be checked against a
non-zero truth. It returns the analysis data set's shape (one row per assessment, the columns
the analysis reads) and each patient's co-intervention group, not raw files.

Data-generating model (every number in :data:`COMBINED_TRUTHS`)
---------------------------------------------------------------
* Depth ``deep`` with P = 0.5; chronicity ``chronic`` with P = 0.6; co-intervention group
  ``none`` 0.25, ``exercise`` 0.35, ``manual_therapy`` 0.15, ``exercise+manual_therapy`` 0.25,
  independent of depth.
* Baseline NRS 6.5 + N(0, 1); visits 1-4 at weeks 2, 4, 8, 12, each missed with P = 0.1.
* The NRS change from baseline is ``-(improvement) + u_i + e`` with ``u_i ~ N(0, 1)`` per
  patient and ``e ~ N(0, 1)``, and the improvement
  ``0.1 weeks + 0.5 chronic' + deep effect + co effect``: deep adds 1.0 point, and
  **1.0 + 0.8 = 1.8 with exercise** (alone or with manual therapy); exercise adds 0.8, manual
  therapy 0.4, both 1.2 (chronic' = 0: chronicity changes nothing).
* Twitch (patient level) with P = 0.6 when deep, 0.3 when superficial; no effect of its own.

Everything comes from one ``numpy.random.Generator(numpy.random.PCG64(seed))``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.derive.dataset import CO_INTERVENTION_GROUPS
from pipeline.schemas.analysis import CHRONICITY_LEVELS, DEPTH_LEVELS, TWITCH_LEVELS

COMBINED_TRUTHS: dict = {
    "p_deep": 0.5,
    "p_chronic": 0.6,
    "co_intervention": dict(zip(CO_INTERVENTION_GROUPS, (0.25, 0.35, 0.15, 0.25), strict=True)),
    "visit_weeks": {1: 2, 2: 4, 3: 8, 4: 12},
    "p_missed": 0.1,
    "improvement_per_week": 0.1,
    "deep": 1.0,
    "co_effect": dict(zip(CO_INTERVENTION_GROUPS, (0.0, 0.8, 0.4, 1.2), strict=True)),
    "deep_x_co": dict(zip(CO_INTERVENTION_GROUPS, (0.0, 0.8, 0.0, 0.8), strict=True)),
    "p_twitch": {"deep": 0.6, "superficial": 0.3},
    "sd_patient": 1.0,
    "sd_residual": 1.0,
    "baseline_mean": 6.5,
}


def true_depth_effect(group: str) -> float:
    """Return the true improvement of deep over superficial within a co-intervention group."""
    return COMBINED_TRUTHS["deep"] + COMBINED_TRUTHS["deep_x_co"][group]


def simulate_combined(n_patients: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate post-baseline NRS changes with co-intervention effects and a depth modifier.

    Parameters
    ----------
    n_patients : int
        Patients.
    seed : int
        Seed of the ``PCG64`` generator.

    Returns
    -------
    data : pandas.DataFrame
        ``patient_id, visit, weeks, nrs_baseline, nrs_change, depth, twitch, chronicity``
        (the last three categorical, reference first), one row per attended visit.
    groups : pandas.DataFrame
        ``patient_id, co_intervention`` (categorical, levels
        :data:`pipeline.derive.dataset.CO_INTERVENTION_GROUPS`).
    """
    truth = COMBINED_TRUTHS
    rng = np.random.Generator(np.random.PCG64(seed))
    n = int(n_patients)
    deep = rng.random(n) < truth["p_deep"]
    chronic = rng.random(n) < truth["p_chronic"]
    levels = list(truth["co_intervention"])
    p = np.array(list(truth["co_intervention"].values()))
    co = np.asarray(levels, dtype=object)[rng.choice(len(levels), size=n, p=p / p.sum())]
    p_twitch = np.where(deep, truth["p_twitch"]["deep"], truth["p_twitch"]["superficial"])
    twitch = rng.random(n) < p_twitch
    baseline = truth["baseline_mean"] + rng.standard_normal(n)
    u = rng.normal(0.0, truth["sd_patient"], n)
    visits = np.array(list(truth["visit_weeks"]))
    weeks = np.array(list(truth["visit_weeks"].values()), dtype=float)
    e = rng.normal(0.0, truth["sd_residual"], (n, visits.size))
    seen = rng.random((n, visits.size)) >= truth["p_missed"]
    co_effect = np.array([truth["co_effect"][g] for g in co])
    modifier = np.array([truth["deep_x_co"][g] for g in co])
    improvement = (
        truth["improvement_per_week"] * weeks[None, :]
        + (deep * (truth["deep"] + modifier) + co_effect)[:, None]
    )
    change = -improvement + u[:, None] + e
    i, j = np.nonzero(seen)
    ids = np.array([f"C{k:05d}" for k in range(n)], dtype=object)
    data = pd.DataFrame(
        {
            "patient_id": ids[i],
            "visit": visits[j],
            "weeks": weeks[j],
            "nrs_baseline": baseline[i],
            "nrs_change": change[i, j],
            "depth": pd.Categorical(np.where(deep, "deep", "superficial")[i], DEPTH_LEVELS),
            "twitch": pd.Categorical(np.where(twitch, "twitch", "no twitch")[i], TWITCH_LEVELS),
            "chronicity": pd.Categorical(
                np.where(chronic, "chronic", "acute")[i], CHRONICITY_LEVELS
            ),
        }
    )
    groups = pd.DataFrame(
        {"patient_id": ids, "co_intervention": pd.Categorical(co, CO_INTERVENTION_GROUPS)}
    )
    return data, groups
