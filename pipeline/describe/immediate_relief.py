"""Immediate relief: the change within a session, by depth and twitch (SAP §4b, issue 17).

From the session-level pre/post pairs (:func:`pipeline.derive.dataset.session_pairs`), the
*relief* of a session is its pre-session score minus its post-session score turned so that a
positive number is an improvement, whatever the direction of the scale. A mixed model with a
random intercept per patient (sessions of one patient are correlated),

    relief ~ depth + twitch + (1 | patient),

fitted by the pipeline's lme4-equivalent engine (:func:`pipeline.lmm.fit_lmm`, REML,
Satterthwaite df), gives the relief of a deep against a superficial session adjusted for
twitch, and of a session with a twitch response against one without, adjusted for depth (the
two are confounded: deep needling elicits twitches more often), and the marginal mean relief of
each level with equal weights over the other factor, as R's ``emmeans``. The overall mean comes
from ``relief ~ 1 + (1 | patient)``.

*Relation to the next visit*: does a larger immediate relief go with a larger improvement at
the next visit? The next visit's change from baseline (in improvement units) is regressed on the
session's relief, adjusted for depth and twitch, with a random intercept per patient. The next
visit's change is taken from the baseline, not from the pre-session score: a change from the
pre-session score shares that score's measurement error with the relief and would correlate
with it even when the relief carries no information.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.lmm import fit_lmm
from pipeline.lmm.fit import FAST_PATH
from pipeline.lmm.marginal import inference_fields
from pipeline.schemas.analysis import DEPTH_LEVELS, TWITCH_LEVELS
from pipeline.schemas.columns import PATIENT_ID

QUESTION = "immediate_relief"
"""This question's key in ``clinic_omitted``."""

METHOD = "LMM: relief ~ depth + twitch + (1 | patient), REML, Satterthwaite df"
MEAN_METHOD = "LMM: relief ~ 1 + (1 | patient), REML, Satterthwaite df"
NEXT_METHOD = (
    "LMM: next-visit improvement ~ relief + depth + twitch + (1 | patient), REML, Satterthwaite df"
)

COLUMNS = ["comparison", "kind", "level", "reference", "pairs", "patients", "estimate"]
COLUMNS += ["std_err", "df", "ci_low", "ci_high", "p_value", "method"]
NEXT_COLUMNS = ["pairs", "patients", "slope", "std_err", "df", "ci_low", "ci_high", "p_value"]
NEXT_COLUMNS += ["correlation", "method"]

_FACTORS = {"depth": DEPTH_LEVELS, "twitch": TWITCH_LEVELS}


def relief_frame(pairs: pd.DataFrame, column: str, improvement_sign: float) -> pd.DataFrame:
    """Give the pairs of one outcome with ``relief``, ``next`` (improvements) and the factors.

    Parameters
    ----------
    pairs : pandas.DataFrame
        :func:`pipeline.derive.dataset.session_pairs`.
    column : str
        Outcome column (``<column>_pre``, ``<column>_post``, ``<column>_next_change``).
    improvement_sign : float
        −1 when a fall is an improvement.

    Returns
    -------
    pandas.DataFrame
        ``patient_id, relief, next, depth, twitch`` (``depth`` and ``twitch`` as text levels
        of :data:`pipeline.schemas.analysis.DEPTH_LEVELS` / ``TWITCH_LEVELS``), one row per
        pair with both scores.
    """
    pre, post = pairs[f"{column}_pre"], pairs[f"{column}_post"]
    keep = (pre.notna() & post.notna()).to_numpy()
    rows = pairs[keep]
    twitch = rows["twitch"].astype("boolean")
    return pd.DataFrame(
        {
            PATIENT_ID: rows[PATIENT_ID].to_numpy(),
            "relief": (improvement_sign * (rows[f"{column}_post"] - rows[f"{column}_pre"]))
            .astype(float)
            .to_numpy(),
            "next": (improvement_sign * rows[f"{column}_next_change"]).astype(float).to_numpy(),
            "depth": rows["depth"].astype(str).to_numpy(),
            "twitch": np.where(
                twitch.isna(),
                None,
                np.where(twitch.fillna(False), TWITCH_LEVELS[1], TWITCH_LEVELS[0]),
            ),
        }
    )


def _factors(frame: pd.DataFrame, min_patients: int) -> list[str]:
    """Return the factors whose every level has at least ``min_patients`` patients."""
    kept = []
    for name, levels in _FACTORS.items():
        known = frame[frame[name].notna()]
        counts = known.groupby(name)[PATIENT_ID].nunique()
        if all(counts.get(level, 0) >= min_patients for level in levels):
            kept.append(name)
    return kept


def _term(name: str) -> str:
    return f"C({name}, Treatment('{_FACTORS[name][0]}'))"


def within_session_change(
    pairs: pd.DataFrame, column: str, improvement_sign: float = -1.0, min_patients: int = 5
) -> pd.DataFrame:
    """Mean relief within a session, overall, by depth and by twitch, and their differences.

    Parameters
    ----------
    pairs : pandas.DataFrame
        :func:`pipeline.derive.dataset.session_pairs`.
    column : str
        Outcome column.
    improvement_sign : float
        −1 when a fall is an improvement: the relief is positive when the score improved.
    min_patients : int
        A factor enters the model only when each of its levels has this many patients
        (the small-cell threshold: no published count is smaller).

    Returns
    -------
    pandas.DataFrame
        ``comparison`` (``all``, ``depth``, ``twitch``), ``kind`` (``mean``: the mean relief
        of ``level``; ``difference``: ``level`` minus ``reference``), ``level, reference``,
        ``pairs`` and ``patients`` (behind the level, or both levels of a difference),
        ``estimate`` (improvement, outcome units), ``std_err, df, ci_low, ci_high, p_value,
        method``. Empty when fewer than ``min_patients`` patients have a pair.
    """
    frame = relief_frame(pairs, column, improvement_sign)
    if frame[PATIENT_ID].nunique() < max(min_patients, 2):
        return pd.DataFrame(columns=COLUMNS)
    overall = fit_lmm(frame, "relief", "1", PATIENT_ID, **FAST_PATH)
    row = overall.contrast([1.0], "all").iloc[0]
    rows = [_row("all", "mean", "all", "", frame, row, MEAN_METHOD)]
    factors = _factors(frame, min_patients)
    if factors:
        data = frame.dropna(subset=factors)
        fit = fit_lmm(
            data, "relief", " + ".join(_term(f) for f in factors), PATIENT_ID, **FAST_PATH
        )
        names = list(fit.design_columns)
        for name in factors:
            reference, level = _FACTORS[name]
            effect = names.index(f"{_term(name)}[T.{level}]")
            for value in (reference, level):
                vector = np.zeros(len(names))
                vector[0] = 1.0
                vector[effect] = 1.0 if value == level else 0.0
                for other in factors:  # equal weights over the other factor's levels
                    if other != name:
                        vector[names.index(f"{_term(other)}[T.{_FACTORS[other][1]}]")] = 0.5
                result = fit.contrast(vector, value).iloc[0]
                part = data[data[name] == value]
                rows.append(_row(name, "mean", value, "", part, result, METHOD))
            vector = np.zeros(len(names))
            vector[effect] = 1.0
            result = fit.contrast(vector, f"{level} - {reference}").iloc[0]
            rows.append(_row(name, "difference", level, reference, data, result, METHOD))
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(
    comparison: str,
    kind: str,
    level: str,
    reference: str,
    part: pd.DataFrame,
    result: pd.Series,
    method: str,
) -> dict:
    return {
        "comparison": comparison,
        "kind": kind,
        "level": level,
        "reference": reference,
        "pairs": len(part),
        "patients": int(part[PATIENT_ID].nunique()),
        **inference_fields(result),
        "method": method,
    }


def next_visit_relation(
    pairs: pd.DataFrame, column: str, improvement_sign: float = -1.0, min_patients: int = 5
) -> pd.DataFrame:
    """Slope of the next visit's improvement on the session's relief (adjusted), with its CI.

    Parameters
    ----------
    pairs : pandas.DataFrame
        :func:`pipeline.derive.dataset.session_pairs`.
    column : str
        Outcome column.
    improvement_sign : float
        −1 when a fall is an improvement.
    min_patients : int
        Fewest patients with a pair and a later visit; depth and twitch are adjusted for when
        each of their levels has this many.

    Returns
    -------
    pandas.DataFrame
        One row: ``pairs, patients, slope`` (improvement at the next visit per unit of
        relief), ``std_err, df, ci_low, ci_high, p_value``, ``correlation`` (Pearson, of the
        two improvements, unadjusted, descriptive) and ``method``. Empty when too few pairs
        have a later visit.
    """
    frame = relief_frame(pairs, column, improvement_sign).dropna(subset=["next"])
    if frame[PATIENT_ID].nunique() < max(min_patients, 3) or frame["relief"].nunique() < 2:
        return pd.DataFrame(columns=NEXT_COLUMNS)
    factors = _factors(frame, min_patients)
    frame = frame.dropna(subset=factors)
    fit = fit_lmm(
        frame, "next", " + ".join(["relief", *map(_term, factors)]), PATIENT_ID, **FAST_PATH
    )
    vector = np.zeros(len(fit.design_columns))
    vector[list(fit.design_columns).index("relief")] = 1.0
    result = fit.contrast(vector, "relief").iloc[0]
    method = (
        NEXT_METHOD
        if len(factors) == 2
        else (
            f"LMM: next-visit improvement ~ {' + '.join(['relief', *factors])} + (1 | patient), "
            "REML, Satterthwaite df"
        )
    )
    return pd.DataFrame(
        [
            {
                "pairs": len(frame),
                "patients": int(frame[PATIENT_ID].nunique()),
                **inference_fields(result),
                "correlation": float(np.corrcoef(frame["relief"], frame["next"])[0, 1]),
                "method": method,
            }
        ],
    ).rename(columns={"estimate": "slope"})[NEXT_COLUMNS]
