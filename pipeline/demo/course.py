"""Simulate a needling course assessed after every session, with known sessions to response.

The demo study (:mod:`pipeline.demo.simulate`) assesses patients at fixed weeks, so its true
number of sessions to response has no closed form. This simulator draws it directly, so that
the time-to-event analysis (:mod:`pipeline.describe.sessions_to_response`) can be checked
against a known truth. It returns the analysis data set's shape (one row per assessment, the
columns the analysis reads), not raw files.

Data-generating model (every number in :data:`COURSE_TRUTHS`)
------------------------------------------------------------
* Chronicity: ``acute`` with P = 0.4, else ``chronic``; depth ``deep`` with P = 0.5.
* A latent continuous time to response ``T ~ Exponential(rate)``, rate 0.5 per session (acute)
  or 0.13 (chronic), times the hazard ratio 1.5 when deep: proportional hazards, so the survival
  after ``k`` sessions is ``exp(-rate × HR^deep × k)`` (:func:`true_survival`).
* Up to 10 sessions; an assessment before the first session (visit 0) and after each session
  ``k`` (visit ``k``, ``sessions_completed = k``); the patient is a responder from the first
  assessment with ``k ≥ T`` (``nrs_pct_change`` −60 from then on, −10 before).
* After each session the patient drops out for good with P = 0.06 (independent censoring).
* Dose–response (drawn after everything above): ``nrs_baseline`` = 6.5 + N(0, 1), and the
  change after ``k`` sessions ``nrs_change = −3 (1 − exp(−k / 2)) + u_i + e``, with
  ``u_i ~ N(0, 1)`` per patient and ``e ~ N(0, 1)``: the true marginal gain of session ``k``
  is :func:`true_marginal_gain` (1.18, 0.72, 0.43, ... points), independent of chronicity.

* Follow-up (only with ``follow_up=True``; from ``PCG64([seed, 5])``, so nothing above
  changes): patients who completed all 10 sessions are assessed 4 and 12 weeks after the end
  of treatment (``weeks`` is the session count until then); their NRS rises from the end of
  treatment by 0.5 and 1.0 on average (SD 0.8): relief wanes. An end-of-treatment responder
  still responds at each follow-up with P = 0.8; a non-responder does not.

Everything else comes from one ``numpy.random.Generator(numpy.random.PCG64(seed))``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.schemas.analysis import CHRONICITY_LEVELS, DEPTH_LEVELS

COURSE_TRUTHS: dict = {
    "p_acute": 0.4,
    "p_deep": 0.5,
    "rate_per_session": {"acute": 0.5, "chronic": 0.13},
    "hazard_ratio_deep": 1.5,
    "max_sessions": 10,
    "p_dropout_after_session": 0.06,
    # dose-response of the NRS change after k sessions: -gain_max * (1 - exp(-k / scale))
    "gain_max": 3.0,
    "gain_scale_sessions": 2.0,
    "sd_patient": 1.0,
    "sd_residual": 1.0,
    "baseline_mean": 6.5,
    # follow-up after the course (simulate_course(..., follow_up=True)): its own stream
    "follow_up_stream": 5,
    "follow_up_weeks": (4, 12),
    "waning_nrs": (0.5, 1.0),  # NRS rises by this much from the end of treatment (mean)
    "sd_follow_up": 0.8,
    "p_still_responding": 0.8,
}


def true_survival(chronicity: str, sessions: int, deep_share: float | None = None) -> float:
    """Return the true share not yet responded after ``sessions`` sessions.

    Parameters
    ----------
    chronicity : str
        ``acute`` or ``chronic``.
    sessions : int
        Sessions completed.
    deep_share : float, optional
        Share of deep patients in the mixture; default the simulator's ``p_deep``.
    """
    truth = COURSE_TRUTHS
    share = truth["p_deep"] if deep_share is None else deep_share
    rate = truth["rate_per_session"][chronicity]
    hr = truth["hazard_ratio_deep"]
    return float((1 - share) * np.exp(-rate * sessions) + share * np.exp(-rate * hr * sessions))


def true_median(chronicity: str, deep_share: float | None = None) -> int:
    """Return the true median sessions to response: the first ``k`` with survival below 0.5."""
    k = 1
    while true_survival(chronicity, k, deep_share) >= 0.5:
        k += 1
    return k


def true_marginal_gain(sessions: int, previous: int) -> float:
    """Return the true improvement in NRS change from ``previous`` to ``sessions`` sessions."""
    truth = COURSE_TRUTHS

    def mean(k: int) -> float:
        return truth["gain_max"] * (1.0 - np.exp(-k / truth["gain_scale_sessions"]))

    return float(mean(sessions) - mean(previous))


def simulate_course(n_patients: int, seed: int, follow_up: bool = False) -> pd.DataFrame:
    """Simulate courses assessed after every session (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        ``patient_id, visit, sessions_completed, nrs_responder, nrs_pct_change, chronicity,
        depth`` (the last two categorical, reference first), ``nrs_baseline``, ``nrs_change``
        (missing at visit 0), one row per assessment; with ``follow_up``, also ``weeks``,
        ``n_sessions`` and ``nrs`` (baseline plus change) and the follow-up rows.
    """
    truth = COURSE_TRUTHS
    rng = np.random.Generator(np.random.PCG64(seed))
    n = int(n_patients)
    acute = rng.random(n) < truth["p_acute"]
    deep = rng.random(n) < truth["p_deep"]
    rate = np.where(acute, truth["rate_per_session"]["acute"], truth["rate_per_session"]["chronic"])
    rate = rate * np.where(deep, truth["hazard_ratio_deep"], 1.0)
    latent = rng.exponential(1.0 / rate)
    k_max = truth["max_sessions"]
    drop = rng.random((n, k_max)) < truth["p_dropout_after_session"]
    # sessions attended: up to the first dropout (the assessment after it is still taken)
    last = np.where(drop.any(axis=1), drop.argmax(axis=1) + 1, k_max)
    rows = []
    for i in range(n):
        for k in range(last[i] + 1):
            hit = k >= 1 and k >= latent[i]
            rows.append(
                (
                    f"C{i + 1:05d}",
                    k,
                    k,
                    pd.NA if k == 0 else hit,
                    np.nan if k == 0 else (-60.0 if hit else -10.0),
                    "acute" if acute[i] else "chronic",
                    "deep" if deep[i] else "superficial",
                )
            )
    out = pd.DataFrame(
        rows,
        columns=[
            "patient_id",
            "visit",
            "sessions_completed",
            "nrs_responder",
            "nrs_pct_change",
            "chronicity",
            "depth",
        ],
    )
    out["visit"] = out["visit"].astype("Int64")
    out["nrs_responder"] = out["nrs_responder"].astype("boolean")
    out["chronicity"] = pd.Categorical(out["chronicity"], categories=CHRONICITY_LEVELS)
    out["depth"] = pd.Categorical(out["depth"], categories=DEPTH_LEVELS)
    # the dose-response draws come last, so the draws above do not depend on them
    index = out["patient_id"].str[1:].astype(int).to_numpy() - 1
    baseline = truth["baseline_mean"] + rng.normal(0.0, 1.0, size=n)
    u = rng.normal(0.0, truth["sd_patient"], size=n)
    e = rng.normal(0.0, truth["sd_residual"], size=len(out))
    k = out["sessions_completed"].to_numpy(float)
    mean = -truth["gain_max"] * (1.0 - np.exp(-k / truth["gain_scale_sessions"]))
    out["nrs_baseline"] = baseline[index]
    out["nrs_change"] = np.where(k > 0, mean + u[index] + e, np.nan)
    if follow_up:
        out = _with_follow_up(out, last, seed)
    return out


def _with_follow_up(out: pd.DataFrame, last: np.ndarray, seed: int) -> pd.DataFrame:
    """Add the follow-up assessments of the patients who completed the course."""
    truth = COURSE_TRUTHS
    rng = np.random.Generator(np.random.PCG64([seed, truth["follow_up_stream"]]))
    k_max = truth["max_sessions"]
    out = out.assign(
        weeks=out["sessions_completed"].astype(float),
        n_sessions=out["patient_id"].str[1:].astype(int).map(lambda i: int(last[i - 1])),
    )
    out["nrs"] = out["nrs_baseline"] + out["nrs_change"].fillna(0.0)
    eot = out[(out["n_sessions"] == k_max) & (out["sessions_completed"] == k_max)]
    extra = []
    for j, (weeks, waning) in enumerate(
        zip(truth["follow_up_weeks"], truth["waning_nrs"], strict=True), start=1
    ):
        noise = rng.normal(0.0, truth["sd_follow_up"], size=len(eot))
        stays = rng.random(len(eot)) < truth["p_still_responding"]
        rows = eot.copy()
        rows["visit"] = rows["visit"] + j
        rows["weeks"] = k_max + weeks
        rows["nrs"] = eot["nrs"].to_numpy() + waning + noise
        rows["nrs_change"] = rows["nrs"] - rows["nrs_baseline"]
        was = eot["nrs_responder"].fillna(False).astype(bool).to_numpy()
        rows["nrs_responder"] = pd.array(was & stays, dtype="boolean")
        extra.append(rows)
    both = pd.concat([out, *extra], ignore_index=True)
    return both.sort_values(["patient_id", "visit"], kind="stable").reset_index(drop=True)
