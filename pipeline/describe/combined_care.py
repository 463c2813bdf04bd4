"""Combined care: co-interventions as a covariate and as an effect modifier (SAP §4b, issue 17).

A patient's co-intervention group (:func:`pipeline.derive.dataset.co_intervention_groups`:
none, exercise, manual therapy, or both) enters the change-from-baseline model of the
post-baseline assessments twice, for the depth and for the twitch comparison ``g``:

- as a **covariate**: ``change ~ baseline + weeks + chronicity + g + co + (1 | patient)``, giving
  the comparison adjusted for the co-intervention and each co-intervention against none;
- as an **effect modifier**: ``change ~ baseline + weeks + chronicity + g * co + (1 | patient)``,
  giving the comparison within each co-intervention group.

Both are fitted by the pipeline's lme4-equivalent engine (:func:`pipeline.lmm.fit_lmm`, REML,
Satterthwaite df); the interaction is tested by the likelihood ratio of the two models refitted
by ML (as R's ``anova(lmer(..., REML = FALSE))``). Co-intervention groups where a level of the
comparison has fewer than ``min_patients`` patients are left out of both models, so no
published count is below the small-cell threshold. Estimates are improvements: level minus
reference turned so that a positive number is more improvement with ``level``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analyses.plans import likelihood_ratio_row
from pipeline.derive.dataset import CO_INTERVENTION_GROUPS
from pipeline.lmm import fit_lmm
from pipeline.lmm.fit import FAST_PATH
from pipeline.lmm.marginal import inference_fields
from pipeline.lmm.reuse import sharing_designs
from pipeline.schemas.columns import PATIENT_ID

QUESTION = "combined_care"
"""This question's key in ``clinic_omitted``."""

CO = "co_intervention"
COVARIATE, MODIFIER = "covariate", "modifier"
"""The two models: co-intervention as a covariate, and as an effect modifier."""

COLUMNS = ["comparison", "model", "effect", "level", "reference", CO, "patients", "estimate"]
COLUMNS += ["std_err", "df", "ci_low", "ci_high", "p_value"]
TEST_COLUMNS = ["comparison", "groups", "test", "df", "chisq", "p_value"]
TEST_COLUMNS += ["loglik_reduced", "loglik_full"]


def _rows(data: pd.DataFrame, groups: pd.DataFrame, column: str) -> pd.DataFrame:
    change, baseline = f"{column}_change", f"{column}_baseline"
    rows = data[(data["visit"] > 0) & data[change].notna() & data[baseline].notna()]
    rows = rows.merge(groups[[PATIENT_ID, CO]], on=PATIENT_ID, how="inner")
    return rows[rows[CO].notna() & rows["weeks"].notna()]


def _kept_groups(rows: pd.DataFrame, comparison: str, min_patients: int) -> list[str]:
    people = rows.drop_duplicates(PATIENT_ID)
    counts = people.groupby([CO, comparison], observed=False)[PATIENT_ID].nunique()
    levels = [str(v) for v in rows[comparison].cat.categories]
    return [
        group
        for group in CO_INTERVENTION_GROUPS
        if all(counts.get((group, level), 0) >= min_patients for level in levels)
    ]


def combined_care(
    data: pd.DataFrame,
    groups: pd.DataFrame,
    column: str,
    comparisons: tuple[str, ...] = ("depth", "twitch"),
    improvement_sign: float = -1.0,
    min_patients: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Comparisons adjusted for, and within, co-intervention groups; the interaction tests.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set (``patient_id, visit, weeks, chronicity``, the outcome's
        ``_change`` and ``_baseline`` and the comparison columns, categorical with the
        reference first).
    groups : pandas.DataFrame
        :func:`pipeline.derive.dataset.co_intervention_groups`.
    column : str
        Outcome column.
    comparisons : tuple of str
        Patient-level comparisons to describe (those with two levels in ``data``).
    improvement_sign : float
        −1 when a fall is an improvement.
    min_patients : int
        Fewest patients per comparison level within a co-intervention group kept.

    Returns
    -------
    estimates : pandas.DataFrame
        ``comparison, model`` (``covariate`` / ``modifier``), ``effect`` (``comparison``: the
        comparison's level against its reference; ``co_intervention``: a co-intervention
        against none), ``level, reference, co_intervention`` (``all`` for the adjusted
        comparison, else the group), ``patients, estimate`` (improvement), ``std_err, df,
        ci_low, ci_high, p_value``.
    tests : pandas.DataFrame
        Per comparison: ``comparison, groups`` (co-intervention groups kept), ``test, df,
        chisq, p_value, loglik_reduced, loglik_full`` (likelihood ratio, ML).
    """
    change, baseline = f"{column}_change", f"{column}_baseline"
    estimates, tests = [], []
    for comparison in comparisons:
        if comparison not in data or data[comparison].nunique() != 2:
            continue
        rows = _rows(data, groups, column)
        rows = rows[rows[comparison].notna()]
        kept = _kept_groups(rows, comparison, min_patients)
        if len(kept) < 2:
            continue
        rows = rows[rows[CO].astype(str).isin(kept)].copy()
        rows[CO] = pd.Categorical(rows[CO].astype(str), categories=kept)
        reference, level = (str(v) for v in rows[comparison].cat.categories)
        rows[comparison] = rows[comparison].astype(str)
        g = f"C({comparison}, Treatment('{reference}'))"
        co = f"C({CO}, Treatment('{kept[0]}'))"
        terms = [baseline, "weeks"]
        if len(rows["chronicity"].dropna().unique()) > 1:
            rows = rows[rows["chronicity"].notna()]
            rows["chronicity"] = rows["chronicity"].astype(str)
            terms.append("C(chronicity)")
        frame = rows[[PATIENT_ID, change, baseline, "weeks", "chronicity", comparison, CO]]
        reduced = " + ".join([*terms, g, co])
        full = " + ".join([*terms, f"{g} * {co}"])
        people = rows.drop_duplicates(PATIENT_ID)[CO].astype(str)
        # the four fits share one design: the reduced model's columns are the full model's,
        # and each ML fit reuses its REML fit's cross products and starts from its estimate
        with sharing_designs():
            fit_full = fit_lmm(frame, change, full, PATIENT_ID, **FAST_PATH)
            fit = fit_lmm(frame, change, reduced, PATIENT_ID, **FAST_PATH)
            ml_full = fit_lmm(
                frame, change, full, PATIENT_ID, reml=False, start=fit_full.theta, **FAST_PATH
            )
            ml_reduced = fit_lmm(
                frame, change, reduced, PATIENT_ID, reml=False, start=fit.theta, **FAST_PATH
            )
        names = list(fit.design_columns)
        effect = names.index(f"{g}[T.{level}]")
        estimates.append(
            _estimate(
                fit,
                effect,
                improvement_sign,
                comparison,
                COVARIATE,
                "comparison",
                level,
                reference,
                "all",
                len(people),
            )
        )
        for group in kept[1:]:
            at = names.index(f"{co}[T.{group}]")
            estimates.append(
                _estimate(
                    fit,
                    at,
                    improvement_sign,
                    comparison,
                    COVARIATE,
                    CO,
                    group,
                    kept[0],
                    group,
                    int(people.isin([group, kept[0]]).sum()),
                )
            )
        names = list(fit_full.design_columns)
        effect = names.index(f"{g}[T.{level}]")
        for group in kept:
            vector = np.zeros(len(names))
            vector[effect] = 1.0
            if group != kept[0]:
                vector[names.index(f"{g}[T.{level}]:{co}[T.{group}]")] = 1.0
            estimates.append(
                _estimate(
                    fit_full,
                    vector,
                    improvement_sign,
                    comparison,
                    MODIFIER,
                    "comparison",
                    level,
                    reference,
                    group,
                    int((people == group).sum()),
                )
            )
        row = likelihood_ratio_row(f"{comparison} x co-intervention", ml_full, ml_reduced)
        tests.append({"comparison": comparison, "groups": len(kept), **row})
    return pd.DataFrame(estimates, columns=COLUMNS), pd.DataFrame(tests, columns=TEST_COLUMNS)


def _estimate(
    fit: object,
    at: int | np.ndarray,
    sign: float,
    comparison: str,
    model: str,
    effect: str,
    level: str,
    reference: str,
    group: str,
    patients: int,
) -> dict:
    """One estimate row: coefficient ``at`` (or contrast vector) turned into an improvement."""
    vector = np.zeros(len(fit.design_columns))
    if isinstance(at, np.ndarray):
        vector = at.astype(float)
    else:
        vector[at] = 1.0
    result = fit.contrast(sign * vector, f"{level} - {reference}").iloc[0]
    return {
        "comparison": comparison,
        "model": model,
        "effect": effect,
        "level": level,
        "reference": reference,
        CO: group,
        "patients": patients,
        **inference_fields(result),
    }
