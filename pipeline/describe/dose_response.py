"""Dose–response: the change from baseline by sessions completed (SAP §4b, issue 17).

On the post-baseline assessments, a mixed model with the number of sessions completed before
the assessment as a categorical dose,

    change ~ baseline + C(dose) + chronicity + (1 | patient),

fitted by the pipeline's lme4-equivalent engine (:func:`pipeline.lmm.fit_lmm`, REML,
Satterthwaite df). The *marginal gain* of session ``k`` is the difference between the mean
change after ``k`` sessions and after the previous dose observed, with its 95 % CI; the gain
*flattens* after the first dose from which no later marginal gain is distinguishable from 0
(every later interval contains 0). Doses seen in fewer than ``min_rows`` assessments are pooled
with the dose below them (the top dose reads "k or more").

Sessions completed grow with time, so without a control group this is the change after ``k``
sessions, not the effect of one more session: the report says so.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from pipeline.lmm import fit_lmm
from pipeline.lmm.fit import FAST_PATH
from pipeline.schemas.columns import PATIENT_ID

METHOD = "LMM: change ~ baseline + C(sessions) + chronicity + (1 | patient), Satterthwaite df"


def _doses(sessions: pd.Series, min_rows: int) -> pd.Series:
    """Pool doses seen fewer than ``min_rows`` times into the dose below (the top one above)."""
    counts = sessions.value_counts().sort_index()
    kept = [int(k) for k, n in counts.items() if n >= min_rows]
    if not kept:
        return pd.Series(np.nan, index=sessions.index)
    kept_array = np.array(kept)
    values = sessions.to_numpy(int)
    idx = np.searchsorted(kept_array, values, side="right") - 1
    return pd.Series(np.where(idx >= 0, kept_array[np.clip(idx, 0, None)], kept[0]), sessions.index)


def dose_response(
    data: pd.DataFrame,
    column: str,
    improvement_sign: float = -1.0,
    min_rows: int = 10,
    adjust: tuple[str, ...] = ("chronicity",),
) -> pd.DataFrame:
    """Marginal gain of each extra session, from a mixed model with sessions as a factor.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set with ``patient_id, visit, sessions_completed``, ``<column>_change``
        and ``<column>_baseline``, and the ``adjust`` columns.
    column : str
        Outcome column.
    improvement_sign : float
        −1 when a fall is an improvement: ``gain`` is reported as an improvement (positive
        is better).
    min_rows : int
        Fewest assessments for a dose of its own.
    adjust : tuple of str
        Categorical covariates (left out when they have a single level).

    Returns
    -------
    pandas.DataFrame
        One row per dose after the first: ``sessions`` (the dose), ``previous`` (the dose
        below), ``top`` (the dose pools all higher counts), ``assessments`` (at the dose),
        ``gain`` (improvement from ``previous`` to ``sessions``), ``std_err, df, ci_low,
        ci_high, p_value``, ``flat_from`` (true from the first dose from which every later
        interval contains 0), ``method``. Empty when fewer than two doses remain.
    """
    columns = ["sessions", "previous", "top", "assessments", "gain", "std_err", "df"]
    columns += ["ci_low", "ci_high", "p_value", "flat_from", "method"]
    change, baseline = f"{column}_change", f"{column}_baseline"
    rows = data[(data["visit"] > 0) & data[change].notna() & data[baseline].notna()].copy()
    rows = rows[rows["sessions_completed"] > 0]
    rows["dose"] = _doses(rows["sessions_completed"], min_rows)
    rows = rows[rows["dose"].notna()]
    doses = sorted(int(d) for d in rows["dose"].unique())
    if len(doses) < 2:
        return pd.DataFrame(columns=columns)
    terms = [f"C(dose, Treatment({doses[0]}))", baseline]
    for name in adjust:
        levels = rows[name].dropna().astype(str).unique()
        if len(levels) > 1:
            rows = rows[rows[name].notna()]
            reference = str(rows[name].cat.categories[0]) if hasattr(rows[name], "cat") else None
            rows[name] = rows[name].astype(str)
            terms.append(f"C({name}, Treatment('{reference}'))" if reference else f"C({name})")
    frame = rows[[PATIENT_ID, change, baseline, "dose", *adjust]].copy()
    # a categorical of the doses: patsy reads its codes (an int column it maps value by value)
    frame["dose"] = pd.Categorical(frame["dose"].astype(int), categories=doses)
    fit = fit_lmm(frame, change, " + ".join(terms), PATIENT_ID, **FAST_PATH)
    names = list(fit.design_columns)

    def coefficient(dose: int) -> np.ndarray:
        vector = np.zeros(len(names))
        if dose != doses[0]:
            vector[names.index(f"C(dose, Treatment({doses[0]}))[T.{dose}]")] = 1.0
        return vector

    lmat = np.array([coefficient(b) - coefficient(a) for a, b in itertools.pairwise(doses)])
    lmat = improvement_sign * lmat
    table = fit.contrast(lmat, [f"{a}->{b}" for a, b in itertools.pairwise(doses)])
    pooled = bool(rows["sessions_completed"].max() > doses[-1])
    out = pd.DataFrame(
        {
            "sessions": doses[1:],
            "previous": doses[:-1],
            "top": [False] * (len(doses) - 2) + [pooled],
            "assessments": [int((rows["dose"] == d).sum()) for d in doses[1:]],
            "gain": table["estimate"].to_numpy(),
            "std_err": table["std_err"].to_numpy(),
            "df": table["df"].to_numpy(),
            "ci_low": table["ci_low"].to_numpy(),
            "ci_high": table["ci_high"].to_numpy(),
            "p_value": table["p_value"].to_numpy(),
        }
    )
    covers = (out["ci_low"] <= 0) & (out["ci_high"] >= 0)
    # flat from dose k: this and every later interval contains 0
    out["flat_from"] = covers[::-1].cummin()[::-1].to_numpy()
    out["method"] = METHOD
    return out[columns]
