"""Section "Estimand and missing data", and the answer page's sentence about it (issue 19).

Built from a :class:`~pipeline.analyses.missing_data.MissingDataResult`: the estimand statement
(ICH E9(R1): population, variable, intercurrent events and their strategies, summary measure),
the answer under each missing-data assumption, the tipping point with its figure, the dropout
description and the methods. Counts of patients below the small-cell threshold are never shown
in a publication report: a group whose dropout counts include one is left out of the dropout
tables and figure (its percentages would give the count back from the group size).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analyses.headline import Verdict
from pipeline.analyses.missing_data import MissingDataResult
from pipeline.lmm.reference_based import STRATEGY_LABELS, CmiResult
from pipeline.report.html import (
    Figure,
    Heading,
    Paragraph,
    Section,
    fmt,
    fmt_ci,
    fmt_p,
    png,
    table,
)
from pipeline.report.missing_figures import dropout_figure, tipping_figure
from pipeline.report.sections.common import signed

SECTION_ID = "estimand"
SECTION_TITLE = "Estimand and missing data"

VERDICT_WORDS = {
    Verdict.IMPORTANT: "clinically important",
    Verdict.BELOW_MCID: "detectable but below the MCID",
    Verdict.NO_DIFFERENCE: "no detectable difference",
    Verdict.INCONCLUSIVE: "inconclusive",
    Verdict.DETECTABLE: "detectable (no MCID in points declared)",
    Verdict.NOT_DETECTED: "not detected (no MCID in points declared)",
    Verdict.NOT_ESTIMABLE: "not estimable",
}

ROW_WORDS = {
    "MMRM": "Likelihood MMRM (missing at random)",
    **{k: f"Imputed: {v} ({k})" for k, v in STRATEGY_LABELS.items()},
    "estimand": "The estimand's own strategies",
}

EVENT_WORDS = {
    "discontinued": "stopped attending (discontinued needling)",
    "co_intervention": "started a co-intervention or medication",
    "protocol_deviation": "had a protocol deviation",
}


def _visit(res: MissingDataResult) -> str:
    return f"visit {res.estimand.visit}"


def _difference(res: MissingDataResult) -> str:
    est = res.estimand
    return f"{est.level} − {est.comparison.reference}"


def _shifted(res: MissingDataResult, possessive: bool = False) -> str:
    """Name whose imputed values the tipping delta shifts."""
    est = res.estimand
    s = "'s" if possessive else ""
    return {
        "level": f"the {est.level} group{s}",
        "both": "both groups'" if possessive else "both groups",
        "reference": f"the {est.comparison.reference} group{s}",
    }[est.settings.tipping_groups]


def estimand_statement(res: MissingDataResult) -> str:
    """Word the estimand (population, variable, events and strategies, summary measure)."""
    est = res.estimand
    events = "; ".join(
        f"patients who {EVENT_WORDS[e.event]}: {e.strategy}"
        + (f" (values after it imputed under {e.imputation})" if e.strategy else "")
        for e in est.settings.events
    )
    return (
        f"Population: {est.population}. Variable: {est.outcome.label} at {_visit(res)}. "
        f"Comparison: {est.comparison.label}, {_difference(res)}. Intercurrent events and "
        f"strategies: {events or 'none declared'}. Summary measure: {est.settings.summary}, "
        "adjusted for the baseline score and the model's covariates."
    )


def _cells(row: pd.Series) -> tuple[float, float, float]:
    return float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"])


def answer_sentence(res: MissingDataResult) -> str:
    """One sentence for the answer page: MAR, the estimand's answer, and the tipping point.

    Parameters
    ----------
    res : MissingDataResult
        The study's missing-data analysis.

    Returns
    -------
    str
        E.g. "Assuming patients who stopped coming would have continued like those who stayed
        (missing at random), the difference in improvement, deep vs sham, in RMDQ at visit 1
        is +2.9 (+2.1 to +3.7) with its 95 % CI; under the estimand's own assumptions ..."
        Signed as the answer page is: positive means more improvement with the level.
    """
    est = res.estimand
    rows = res.sensitivity.set_index("strategy")
    sign = est.outcome.improvement_sign  # the answer page's convention: + = more improvement
    mar_e, mar_lo, mar_hi = (sign * v for v in _cells(rows.loc["MMRM"]))
    own_e, own_lo, own_hi = (sign * v for v in _cells(rows.loc["estimand"]))
    delta = res.tipping_deltas.get("significance", np.nan)
    whose = _shifted(res, possessive=True)
    if np.isfinite(delta):
        tip = (
            f"it would lose statistical significance only if {whose} missing values were "
            f"{fmt(abs(delta), 1)} points {'higher' if delta > 0 else 'lower'} than missing at "
            "random predicts"
        )
    else:
        tip = "no shift of the imputed values within 20 MCIDs removes its significance"

    def interval(estimate: float, low: float, high: float) -> str:
        low, high = sorted((low, high))
        return f"{signed(estimate, 1)} ({signed(low, 1)} to {signed(high, 1)})"

    return (
        f"Assuming patients who stopped coming would have continued like similar patients "
        f"who stayed (missing at random), the difference in improvement, {est.level} vs "
        f"{est.comparison.reference}, in {est.outcome.short} at {_visit(res)} is "
        f"{interval(mar_e, mar_lo, mar_hi)} with its 95 % CI; under the estimand's own "
        f"assumptions about patients with intercurrent events it is "
        f"{interval(own_e, own_lo, own_hi)}, and {tip}."
    )


def merged_pattern(pattern: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Merge adjacent last-visit categories until no group has a count of 1 to threshold - 1.

    Parameters
    ----------
    pattern : pandas.DataFrame
        ``group, last_visit, patients, percent`` (:attr:`MissingDataResult.dropout_pattern`).
    threshold : int
        Smallest count shown (0 and 1 show every count).

    Returns
    -------
    pandas.DataFrame
        ``group, first, last, patients, percent, retained``: the visits ``first..last`` merged
        into one category, and the share still attending after it.
    """
    visits = sorted(pattern["last_visit"].unique())
    table = (
        pattern.pivot_table(
            index="group", columns="last_visit", values="patients", aggfunc="sum", observed=True
        )
        .reindex(columns=visits)
        .fillna(0)
    )
    spans: list[list[int]] = []
    current: list[int] = []
    for v in visits:
        current.append(v)
        counts = table[current].sum(axis=1)
        if threshold <= 1 or not ((counts > 0) & (counts < threshold)).any():
            spans.append(current)
            current = []
    if current:  # a small last category joins the one before it
        if spans:
            spans[-1] += current
        else:
            spans.append(current)
    rows = []
    for group, counts in table.iterrows():
        total = counts.sum()
        done = 0.0
        for span in spans:
            n = float(counts[span].sum())
            done += n
            rows.append([group, span[0], span[-1], int(n), 100.0 * n / total, 1.0 - done / total])
    return pd.DataFrame(rows, columns=["group", "first", "last", "patients", "percent", "retained"])


def _span_words(first: int, last: int) -> str:
    name = {0: "baseline only"}
    if first == last:
        return name.get(first, f"to visit {first}")
    return f"{name.get(first, f'visit {first}')} to visit {last}"


def _jackknife_note(cmi: CmiResult) -> str:
    """Word the table note on the jackknife: leave-one-out, or grouped with its df."""
    if cmi.leave_one_out:
        return "leave-one-patient-out jackknife, with normal 95 % CIs and p-values"
    return (
        f"delete-a-group jackknife ({cmi.replicates} groups), with 95 % CIs and p-values from "
        f"t with {cmi.replicates - 1} df"
    )


def _jackknife_method(cmi: CmiResult) -> str:
    """Word the methods paragraph on the jackknife and how its groups were formed."""
    if cmi.leave_one_out:
        return "leave-one-patient-out jackknife"
    return (
        f"delete-a-group jackknife (Kott 2001): the patients dealt into {cmi.replicates} "
        "groups by a seeded hash of their identifiers, each replicate deleting one group, "
        f"variance (G - 1) / G times the sum of squared deviations, t with "
        f"{cmi.replicates - 1} df; the leave-one-patient-out jackknife is kept for studies "
        "of at most [estimand] jackknife_groups patients"
    )


def estimand_section(
    res: MissingDataResult, threshold: int = 5, audience: str = "publication"
) -> Section:
    """Build the section: statement, sensitivity table, tipping point, dropout, methods.

    Parameters
    ----------
    res : MissingDataResult
        The study's missing-data analysis.
    threshold : int
        ``[privacy] small_cell_threshold``.
    audience : str
        ``publication`` (small counts hidden) or ``internal``.

    Returns
    -------
    Section
    """
    est = res.estimand
    blocks: list = [Heading("The question (estimand)"), Paragraph(estimand_statement(res))]
    counts = res.event_counts
    unrecorded = counts.loc[~counts["recorded"], "event"].tolist()
    if unrecorded:
        blocks.append(
            Paragraph(
                "Not recorded in the analysis data: "
                + ", ".join(EVENT_WORDS[e] for e in unrecorded)
                + "; no patient is counted with this event.",
                "note",
            )
        )
    blocks.append(Paragraph(answer_sentence(res), "headline"))
    mi = res.sensitivity["method"].str.startswith("bootstrapped")
    labels = res.sensitivity["strategy"].map(ROW_WORDS)
    labels = labels.where(~mi, "MI: " + res.sensitivity["strategy"].map(STRATEGY_LABELS))
    sens = res.sensitivity.assign(label=labels)
    blocks.append(
        table(
            sens,
            [
                ("Analysis", "label", None),
                ("Estimate", "#e", lambda r: fmt(r["estimate"], 2)),
                ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 2)),
                ("p", "#p", lambda r: fmt_p(r["p_value"])),
                ("Against the MCID", "verdict", lambda r: VERDICT_WORDS[r["verdict"]]),
            ],
            caption=f"{est.outcome.label} at {_visit(res)}, {_difference(res)}: the answer under "
            "each assumption about the missing values",
            note="Reference-based rows apply the assumption to every patient who stopped "
            "attending; intermittent missed visits are imputed under missing at random. SEs of "
            f"the conditional mean imputations: {_jackknife_note(res.cmi)}; MI rows: "
            "bootstrapped multiple imputation pooled by Rubin's rules (t with Barnard-Rubin "
            "df).",
            anchor="sensitivity-missing",
        )
    )
    deltas = res.tipping_deltas
    blocks.append(Heading("Tipping point"))
    blocks.append(
        Figure(
            png(
                tipping_figure(
                    res.tipping,
                    mcid=est.mcid,
                    deltas=[
                        ("significance lost", deltas.get("significance", np.nan)),
                        ("MCID verdict changes", deltas.get("verdict", np.nan)),
                    ],
                    xlabel=f"delta added to imputed {est.outcome.short} values (points)",
                    ylabel=f"{_difference(res)} ({est.outcome.unit})",
                )
            ),
            alt=f"Estimate and 95 % CI of {_difference(res)} against the delta added to the "
            "values imputed under missing at random",
            caption="Tipping point: the missing-at-random estimate when the imputed values of "
            f"{_shifted(res)} are shifted by delta (dotted: ± MCID).",
            anchor="tipping-point",
        )
    )
    words = []
    for key, text in (
        ("significance", "significance is lost"),
        ("verdict", "the MCID verdict changes"),
    ):
        value = deltas.get(key, np.nan)
        words.append(
            f"{text} at delta = {fmt(value, 2)}"
            if np.isfinite(value)
            else f"{text} at no delta within 20 MCIDs"
        )
    blocks.append(Paragraph("Tipping point: " + "; ".join(words) + ".", "note"))

    shown = threshold if audience != "internal" else 0
    merged = merged_pattern(res.dropout_pattern, shown)
    blocks.append(Heading("Who stopped coming"))
    merged["span"] = [
        _span_words(a, b) for a, b in zip(merged["first"], merged["last"], strict=True)
    ]
    wide = merged.pivot_table(index="group", columns="span", values="percent", sort=False)
    wide = wide.reindex([g for g in est.levels if g in wide.index]).reset_index()
    spans = list(dict.fromkeys(merged["span"]))
    blocks.append(
        table(
            wide,
            [("Group", "group", None)]
            + [(sp, f"#{sp}", lambda r, sp=sp: fmt(r[sp], 0) + " %") for sp in spans],
            caption="Last visit attended, per cent of each group",
            note="Visits are merged where a count would be below the small-cell threshold."
            if len(spans) < res.dropout_pattern["last_visit"].nunique()
            else "",
            anchor="dropout-pattern",
        )
    )
    km = merged.assign(visit=merged["last"] + 1)
    start = pd.DataFrame(
        {"group": list(dict.fromkeys(merged["group"])), "visit": 0, "retained": 1.0}
    )
    km = pd.concat([start, km[["group", "visit", "retained"]]], ignore_index=True)
    km = km.sort_values(["group", "visit"], kind="stable")
    km = km[km["visit"] <= max(res.dropout_pattern["last_visit"])]
    blocks.append(
        Figure(
            png(dropout_figure(km, xlabel="visit")),
            alt="Share of patients still attending at each visit, by group",
            caption="Time to dropout (Kaplan–Meier, visits as the time scale; no patient is "
            "censored before the last visit, so it is the share still attending), by group.",
            anchor="dropout-km",
        )
    )
    last = res.last_value.copy()
    small = (last["patients"] > 0) & (last["patients"] < shown)
    hidden = set(last.loc[small, "group"])
    last = last.astype(object)
    for col in ("patients", "mean_change", "sd_change", "mean_baseline"):
        last.loc[last["group"].isin(hidden), col] = f"<{shown}" if col == "patients" else "–"
    blocks.append(
        table(
            last,
            [
                ("Group", "group", None),
                ("Status", "status", None),
                ("Patients", "#patients", None),
                ("Mean change", "#m", lambda r: fmt(r["mean_change"], 2)),
                ("SD", "#sd", lambda r: fmt(r["sd_change"], 2)),
                ("Mean baseline", "#b", lambda r: fmt(r["mean_baseline"], 2)),
            ],
            caption=f"Change in {est.outcome.short} from baseline at the last visit attended: "
            "patients who stopped early against completers",
            anchor="dropout-last-value",
        )
    )
    cmi = res.cmi
    blocks.append(
        Paragraph(
            "Methods: the imputation model is the MMRM with an unstructured covariance (with "
            "the engine's fallback order) and every covariate interacted with visit "
            f"({res.fit.formula.split('~', 1)[1].strip()}), fitted by REML to the observed "
            "values; each missing value is replaced by its conditional mean given the patient's "
            "observed values under the assumption of the row (Wolbers et al. 2022; the "
            "reference-based means of Carpenter, Roger and Kenward 2013), and the completed "
            "data are analysed by an ANCOVA at the visit. Under missing at random this "
            f"reproduces the MMRM exactly. Standard errors: {_jackknife_method(cmi)} "
            f"({cmi.n_refits} refits of the imputation model, each from the full fit by "
            f"chord-Newton steps with the full fit's Hessian; mean "
            f"{cmi.mean_newton_steps:.1f} steps, {cmi.n_fallback} needed the fallback "
            "optimiser). Alternative: bootstrapped multiple imputation (each imputation refits "
            "the model to a bootstrap sample and draws the missing values from their "
            "conditional distribution), pooled by Rubin's rules; for the reference-based "
            "assumptions Rubin's variance is known to exceed the estimator's repeated-sampling "
            "variance (Wolbers et al. 2022), so the jackknife rows are the primary sensitivity "
            "results. Tipping point: a delta added to the values imputed under missing at "
            f"random, over a grid of {len(res.tipping)} values.",
            "note",
        )
    )
    return Section(SECTION_ID, SECTION_TITLE, tuple(blocks))
