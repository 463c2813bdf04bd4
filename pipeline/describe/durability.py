"""Does it last: from the end of treatment to each follow-up (SAP §4b, issue 17).

A patient's *end-of-treatment* assessment is their first post-baseline assessment after their
last session (``sessions_completed`` equal to ``n_sessions``, the sessions of their log); the
later assessments are *follow-ups* 1, 2, ... A study that marks its follow-ups
(``timing = follow_up``, the analysis data set's ``follow_up`` column) needs no session log: a
patient's end of treatment is then their last post-baseline assessment before their first
marked follow-up, and the marked rows are the follow-ups. For each follow-up and group level:

- the change from the end of treatment, signed as an improvement (positive: still improving;
  negative: the relief wanes), mean with its t 95 % CI;
- of the end-of-treatment MCID responders, the share still responding, with the exact
  (Clopper–Pearson) CI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.describe.ids import listed_in
from pipeline.describe.safety import _binomial_ci
from pipeline.schemas.columns import PATIENT_ID

COLUMNS = ["group", "level", "follow_up", "patients", "weeks_after", "change", "ci_low"]
COLUMNS += ["ci_high", "eot_responders", "still_responding", "share", "share_low", "share_high"]


def follow_ups(data: pd.DataFrame, column: str) -> pd.DataFrame:
    """Each patient's end-of-treatment assessment and the follow-ups after it.

    Returns
    -------
    pandas.DataFrame
        One row per follow-up: ``patient_id, follow_up`` (1, 2, ...), ``weeks_after`` (weeks
        since the end-of-treatment assessment, missing without ``weeks``), ``change`` (the
        outcome's value minus its end-of-treatment value), ``eot_responder``, ``responder``.
    """
    rows = data[(data["visit"] > 0) & data[column].notna()].copy()
    if "follow_up" in rows and bool(rows["follow_up"].fillna(False).any()):
        marked = rows["follow_up"].fillna(False).astype(bool)
        rows = rows.sort_values([PATIENT_ID, "visit"], kind="stable")
        first = rows["visit"].where(marked).groupby(rows[PATIENT_ID]).transform("min")
        before = rows[~marked & (rows["visit"] < first)]
        eot_rows = before.groupby(PATIENT_ID).tail(1)
        later = rows[marked & listed_in(rows[PATIENT_ID], eot_rows[PATIENT_ID])]
        rows = pd.concat([eot_rows, later]).sort_values([PATIENT_ID, "visit"], kind="stable")
        return _follow_up_frame(rows, column)
    if "n_sessions" in rows:
        last = rows["n_sessions"]
    else:
        last = rows.groupby(PATIENT_ID)["sessions_completed"].transform("max")
    rows = rows[(last > 0) & (rows["sessions_completed"] >= last)]
    rows = rows.sort_values([PATIENT_ID, "visit"], kind="stable")
    return _follow_up_frame(rows, column)


def _follow_up_frame(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """Follow-ups of ``rows``: each patient's end of treatment, then their follow-ups, in order."""
    rows = rows.copy()
    rows["rank"] = rows.groupby(PATIENT_ID).cumcount()
    eot = rows[rows["rank"] == 0].set_index(PATIENT_ID)
    later = rows[rows["rank"] > 0]
    if later.empty:  # no assessment after anyone's end of treatment
        columns = [PATIENT_ID, "follow_up", "weeks_after", "change", "eot_responder", "responder"]
        return pd.DataFrame(columns=columns)
    weeks = later["weeks"] if "weeks" in later else pd.Series(np.nan, later.index)
    eot_weeks = eot["weeks"] if "weeks" in eot else pd.Series(np.nan, eot.index)
    responder = f"{column}_responder"
    return pd.DataFrame(
        {
            PATIENT_ID: later[PATIENT_ID].to_numpy(),
            "follow_up": later["rank"].to_numpy(),
            "weeks_after": (weeks - later[PATIENT_ID].map(eot_weeks)).to_numpy(float),
            "change": (later[column] - later[PATIENT_ID].map(eot[column])).to_numpy(float),
            "eot_responder": later[PATIENT_ID].map(eot[responder]).astype("boolean").to_numpy(),
            "responder": later[responder].astype("boolean").to_numpy(),
        }
    )


def durability(
    data: pd.DataFrame,
    column: str,
    groups: Sequence[str],
    improvement_sign: float = -1.0,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Change from the end of treatment and responders still responding, by follow-up.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set (``patient_id, visit, sessions_completed``, ``n_sessions`` when
        known, ``weeks``, the outcome and ``<column>_responder``, the ``groups``).
    column : str
        Outcome column.
    groups : sequence of str
        Patient-level groupings; ``all`` (every patient) comes first.
    improvement_sign : float
        −1 when a fall is an improvement.
    conf_level : float
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        ``group, level, follow_up, patients, weeks_after`` (mean), ``change`` (mean
        improvement since the end of treatment; negative when relief wanes), ``ci_low,
        ci_high``, ``eot_responders``, ``still_responding``, ``share`` (of the end-of-treatment
        responders), ``share_low, share_high``.
    """
    found = follow_ups(data, column)
    people = data.drop_duplicates(PATIENT_ID).set_index(PATIENT_ID)
    out = []
    for group in ("all", *groups):
        if group == "all":
            labels = pd.Series("all", index=found.index)
            levels = ["all"]
        else:
            labels = found[PATIENT_ID].map(people[group].astype("object"))
            values = people[group]
            levels = (
                [str(c) for c in values.cat.categories]
                if isinstance(values.dtype, pd.CategoricalDtype)
                else sorted(values.dropna().astype(str).unique())
            )
        for level in levels:
            for k in sorted(found["follow_up"].unique()):
                part = found[(labels.astype(str) == level) & (found["follow_up"] == k)]
                if part.empty:
                    continue
                gain = improvement_sign * part["change"].to_numpy(float)
                n = gain.size
                mean = float(gain.mean())
                half = (
                    stats.t.ppf(0.5 + conf_level / 2, n - 1) * gain.std(ddof=1) / np.sqrt(n)
                    if n > 1
                    else np.nan
                )
                eot = part[part["eot_responder"].fillna(False).astype(bool)]
                known = eot[eot["responder"].notna()]
                stay = int(known["responder"].astype(bool).sum())
                low, high = (
                    _binomial_ci(stay, len(known), conf_level)
                    if len(known)
                    else (
                        np.nan,
                        np.nan,
                    )
                )
                out.append(
                    {
                        "group": group,
                        "level": level,
                        "follow_up": int(k),
                        "patients": n,
                        "weeks_after": float(part["weeks_after"].mean()),
                        "change": mean,
                        "ci_low": mean - half,
                        "ci_high": mean + half,
                        "eot_responders": len(known),
                        "still_responding": stay,
                        "share": stay / len(known) if len(known) else np.nan,
                        "share_low": low,
                        "share_high": high,
                    }
                )
    return pd.DataFrame(out, columns=COLUMNS)
