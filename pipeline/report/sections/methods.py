"""Methods: paragraphs generated from the analyses the run produced and its settings."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.analyses.plans import STRUCTURE_WORDS
from pipeline.config.settings import Config
from pipeline.privacy import wording
from pipeline.report.sections.common import analysis_label, present
from pipeline.schemas.identity import (
    AnalysisId,
    AnalysisKind,
    ContrastKind,
    Family,
    kind_of,
)

MMRM_DF_WORDS = {
    "kenward-roger": "Kenward–Roger degrees of freedom and adjusted covariance of the fixed "
    "effects (Kenward & Roger 1997, as R's pbkrtest and SAS DDFM=KR compute them)",
    "kenward-roger-linear": "Kenward–Roger degrees of freedom and adjusted covariance, "
    "without the second-derivative term (SAS DDFM=KR(LINEARITY))",
    "satterthwaite": "Satterthwaite degrees of freedom",
    "residual": "residual degrees of freedom (observations minus fixed effects)",
    "between-within": "between-within degrees of freedom",
    "z": "large-sample normal (z) reference distributions",
}
"""How the methods name the MMRM's df method (``[model] mmrm_df_method``)."""


def _family_words(contrasts: pd.DataFrame) -> str:
    """Describe the primary family from its typed rows (question, analysis, kind, visit)."""
    primary = contrasts.loc[contrasts["family"] == Family.PRIMARY]
    joint = AnalysisId(AnalysisKind.JOINT).name
    parts = []
    for question, rows in primary.groupby("question", sort=False):
        kinds = set(rows["kind"].astype(str))
        what = []
        if ContrastKind.SLOPE in kinds:
            models = set(rows.loc[rows["kind"].astype(str) == ContrastKind.SLOPE, "analysis"])
            if models - {joint}:
                what.append("the trajectory model's difference in slope")
            if joint in models:
                what.append("the joint model's difference in slope (no session-level fit)")
        if ContrastKind.WITHIN in kinds:
            what.append("the session-level model's within-patient estimate")
        visits = rows.loc[rows["kind"].astype(str) == ContrastKind.VISIT, "visit"].dropna()
        if len(visits):
            at = ", ".join(str(int(v)) for v in sorted(visits.unique()))
            what.append(f"the MMRM's difference between groups at visit {at}")
        parts.append(f"{question}: {' or '.join(what)}")
    pairs = primary[["question", "outcome"]].drop_duplicates()
    return f"{'; '.join(parts)} ({len(pairs)} comparison × outcome pairs, {len(primary)} tests)"


def _structure(name: str) -> str:
    return STRUCTURE_WORDS.get(name, name)


def mmrm_structure_text(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Say which covariance structure each MMRM used and why, with the AIC and BIC of those tried.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The run's tables; reads ``covariance_structures`` (typed columns ``structure``,
        ``converged``, ``used``).

    Returns
    -------
    list of str
        One paragraph, or none when no MMRM was fitted.
    """
    if not present(tables, "covariance_structures"):
        return []
    trials = tables["covariance_structures"]
    used_rows = trials.loc[trials["used"].astype(bool)]
    first = trials.groupby(["analysis", "outcome"], sort=False)["structure"].first()
    straight = used_rows.set_index(["analysis", "outcome"])["structure"].reindex(first.index)
    at_first = bool((straight == first).all())
    names = sorted({_structure(s) for s in used_rows["structure"]})
    if at_first and len(names) == 1:
        text = (
            f"In every repeated-measures model the first structure of the order ({names[0]}) "
            "converged and was used."
        )
    else:
        text = "Covariance structures used: " + "; ".join(
            f"{analysis_label(a)}, {o}: {_structure(s)}" for (a, o), s in straight.dropna().items()
        )
        text += "."
    failures = trials.loc[~trials["converged"].astype(bool)]
    if len(failures):
        text += (
            " Structures that did not converge, and were therefore replaced by the next of the "
            "order: "
            + "; ".join(
                f"{analysis_label(r.analysis)}, {r.outcome}: {_structure(r.structure)} "
                f"({r.message})"
                for r in failures.itertuples()
            )
            + "."
        )
    fitted = trials.loc[pd.to_numeric(trials["aic"], errors="coerce").notna()]
    if len(fitted):
        text += (
            " A structure converges when the Hessian of the REML criterion is positive definite "
            "and the Newton decrement is below 1e-8. Information criteria of the structures "
            "fitted (-2 REML log-likelihood + 2k for AIC, + k log(patients) for BIC, k "
            "covariance parameters; smaller is better, comparable within a model only): "
            + "; ".join(
                f"{analysis_label(r.analysis)}, {r.outcome}, {_structure(r.structure)}: "
                f"AIC {r.aic:.1f}, BIC {r.bic:.1f}"
                for r in fitted.itertuples()
            )
            + "."
        )
    return [text]


CLINIC_METHODS: tuple[tuple[str, str, str], ...] = (
    (
        "sessions_to_response",
        "Sessions to response (§4b)",
        "sessions completed before each patient's first assessment reaching the MCID (or a "
        "50 % reduction), censored at the last assessment; Kaplan–Meier curves with Greenwood "
        "log intervals and medians by R's survfit rule, hazard ratios from a Cox model with "
        "Efron ties, as R's survival package computes them.",
    ),
    (
        "dose_response",
        "Dose–response (§4b)",
        "change from baseline ~ baseline + sessions completed (categorical) + chronicity with a "
        "random intercept per patient; the gain of each extra session is the difference "
        "between consecutive doses (without a control group, not the effect of one session).",
    ),
    (
        "immediate_relief",
        "Immediate relief (§4b)",
        "pre- minus post-session score (turned to improvement) ~ depth + twitch with a random "
        "intercept per patient; its relation to the next visit's change from baseline by a "
        "mixed regression adjusted for depth and twitch.",
    ),
    (
        "durability",
        "Does it last (§4b)",
        "change from the end-of-treatment assessment to each follow-up (mean, t interval) and "
        "the share of end-of-treatment responders still responding (Clopper–Pearson).",
    ),
    (
        "combined_care",
        "Combined care (§4b)",
        "each patient's co-intervention group as a covariate and as an effect modifier of the "
        "comparison in the change-from-baseline model (random intercept per patient); the "
        "interaction tested by the likelihood ratio of ML refits.",
    ),
    (
        "side_effect_rates",
        "Side effects by kind (§4b)",
        "events per 100 sessions whose adverse events were recorded, by type and severity, "
        "with exact Poisson intervals and exact conditional rate ratios (R's poisson.test); "
        "a session with two events counts in both types.",
    ),
    (
        "safety_signals",
        "Safety signals (§4b)",
        "patients needled despite a contraindication or caution flag, by flag and depth, and "
        "their adverse-event rate against patients whose flags were all recorded as no (a "
        "flag not recorded counts in neither group).",
    ),
)
"""Methods items of the clinic's own questions: ``(table, item, what was done)``, shown when
the run wrote the table."""


def _clinic_items(tables: Mapping[str, pd.DataFrame]) -> list[tuple[str, str]]:
    """Return the methods items of the clinic questions the run answered."""
    return [(item, text) for name, item, text in CLINIC_METHODS if present(tables, name)]


def methods_text(
    tables: Mapping[str, pd.DataFrame],
    config: Config,
    versions: Mapping[str, str],
    formulas: Mapping[tuple[str, str], str],
) -> list[tuple[str, str]]:
    """Generate the methods as a structured list from the analyses the run produced.

    Returns
    -------
    list of (str, str)
        ``(item, what was done)`` in the order a reviewer checks them: groups, time,
        outcomes, each model, estimation, inference, the headline estimates and multiplicity,
        missing data, secondary analyses, privacy, software, the model formulas.
    """
    m = config.model
    time_words = (
        "weeks since the baseline assessment"
        if m.time_axis == "weeks"
        else "the number of needling sessions completed before the assessment"
    )
    df_words = (
        "Satterthwaite degrees of freedom, computed as R's lmerTest does"
        if m.df_method == "satterthwaite"
        else "large-sample normal (z) reference distributions"
    )
    analyses = []
    if present(tables, "diagnostics"):
        analyses = list(dict.fromkeys(tables["diagnostics"]["analysis"]))
    elif present(tables, "fixed_effects"):
        analyses = list(dict.fromkeys(tables["fixed_effects"]["analysis"]))
    kinds = {kind_of(a) for a in analyses}
    th = config.thresholds
    covariates = ", ".join(m.covariates) or "none"
    items = [
        (
            "Groups",
            "patient-level exposures: a patient is 'deep' when at least "
            f"{th.deep_share:g} of their sessions were deep and 'twitch' when a twitch response "
            f"was elicited in at least {th.twitch_share:g} of the sessions where it was "
            "recorded (references: superficial, no twitch, acute pain).",
        ),
        ("Time", f"{time_words}."),
        (
            "Outcomes",
            "NRS pain, VAS pain and the Oswestry Disability Index (scored over the answered "
            f"sections, at most {th.odi_max_missing_sections} unanswered).",
        ),
    ]
    if AnalysisKind.TRAJECTORY in kinds:
        items.append(
            (
                "Trajectory model (SAP §4.1)",
                "outcome ~ time × group + baseline covariates "
                f"({covariates}), with a correlated random intercept and slope for time per "
                "patient, refitted with a random intercept only when the slope variance is at "
                "the boundary.",
            )
        )
    if AnalysisKind.CHANGE in kinds:
        order = " → ".join(STRUCTURE_WORDS.get(n, n) for n in m.mmrm_structures)
        items.append(
            (
                "Change from baseline (MMRM, §4.2 and §4.6)",
                "post-baseline assessments, outcome ~ baseline + visit × group"
                f"{' + ' + covariates if m.covariates else ''} with visit categorical and no "
                "random effects, giving least-squares means per visit and group and the "
                "difference between groups at each visit.",
            )
        )
        items.append(
            (
                "MMRM covariance and df",
                "a residual covariance matrix across visits, the first structure of the "
                f"pre-specified order that converged ({order}), by REML with "
                f"{MMRM_DF_WORDS.get(m.mmrm_df_method, m.mmrm_df_method)}.",
            )
        )
    if AnalysisKind.SESSION in kinds:
        items.append(
            (
                "Session-level twitch model (§4.3)",
                "the share of earlier sessions with a twitch response split into the patient's "
                "mean (between patients) and the deviation from it (within patient; free of "
                "between-patient confounding).",
            )
        )
    if AnalysisKind.JOINT in kinds:
        items.append(("Joint model (§4.4)", "depth and twitch together, as they are confounded."))
    if AnalysisKind.SUBGROUP in kinds:
        items.append(("Subgroups", "a three-way interaction with chronicity."))
    if AnalysisKind.SENSITIVITY in kinds:
        items.append(
            (
                "Sensitivity analyses",
                "the trajectory model refitted in completers and excluding patients with a "
                "recorded contraindication or protocol deviation (one that was not recorded "
                "excludes nobody).",
            )
        )
    site = getattr(m, "site", None)
    if site:
        items.append(
            (
                "Clinic",
                f"as configured ([model] site = {site}: with at least "
                f"{getattr(m, 'min_sites_random', 5)} clinics a random intercept, otherwise a "
                "fixed effect, when 'auto').",
            )
        )
    items.append(
        (
            "Estimation",
            "restricted maximum likelihood (REML): lme4's profiled criterion, minimised by "
            "bounded L-BFGS-B with its exact gradient and finished by Newton steps, accepted "
            "when it passes lme4's gradient check; otherwise, or when the fit is singular, "
            f"statsmodels {versions.get('statsmodels', '?')} MixedLM's optimisers and a "
            "derivative-free route were run too and the best REML criterion kept.",
        )
    )
    items.append(
        (
            "Standard errors and tests",
            "from (X'V⁻¹X)⁻¹ at the estimated variance components, as in lme4; tests and "
            f"intervals use {df_words}.",
        )
    )
    if present(tables, "emmeans"):
        items.append(
            (
                "Marginal means",
                "predictions at each visit averaged with equal weights over the other "
                "categorical variables, as R's emmeans computes them.",
            )
        )
    if present(tables, "model_comparison"):
        items.append(
            (
                "Interaction tests",
                "likelihood-ratio tests between maximum-likelihood fits of the nested models.",
            )
        )
    if present(tables, "answer"):
        items.append(
            (
                "Headline estimates (SAP §4)",
                "depth: the trajectory model's difference in slope accumulated to the last "
                "visit (covariate-adjusted total effect; the joint model's is the direct effect, "
                "supporting); twitch: the session-level model's within-patient estimate, "
                "supported by the joint model adjusted for depth; the unadjusted twitch "
                "comparison is shown as such. Each is classified against the outcome's MCID.",
            )
        )
    contrasts = tables.get("contrasts")
    holm = (
        contrasts is not None
        and "family" in contrasts
        and (contrasts["family"] == Family.PRIMARY).any()
    )
    if holm:
        multiplicity = (
            "Holm's method across one family, the headline estimates (one per question and "
            f"outcome): {_family_words(contrasts)}. It is the family column of "
            "reports/tables/answer.csv and reports/tables/contrasts.csv (primary), and a "
            "headline estimate has the same Holm p wherever it appears; other p-values are "
            "unadjusted."
        )
    else:
        multiplicity = "p-values are not adjusted for multiplicity."
    items.append(("Multiplicity", multiplicity))
    if present(tables, "effect_sizes"):
        items.append(
            (
                "Effect sizes",
                "a between-group difference divided by the "
                f"{tables['effect_sizes']['standardiser'].iloc[0]}.",
            )
        )
    items += [("Covariance structure", text) for text in mmrm_structure_text(tables)]
    items += _clinic_items(tables)
    items += [
        (
            "Missing data",
            "all available assessments were used, which is valid when missed visits are "
            "missing at random given the observed data; no value was imputed, rows that "
            "broke the data contract were quarantined, and a score that could not be read or "
            "lay outside its range was set missing with the assessment's other scores kept.",
        ),
        (
            "Responders",
            "reached the MCID (SAP §2) at their last post-baseline assessment (risk difference "
            "with a Wald interval; odds ratio by logistic regression).",
        ),
        (
            "Safety",
            "adverse events per 100 sessions with exact Poisson intervals, compared by the "
            "exact conditional rate-ratio test.",
        ),
        (
            "Privacy",
            wording.methods_sentence(config.privacy.audience, config.privacy.small_cell_threshold),
        ),
        (
            "Software",
            ", ".join(f"{k} {v}" for k, v in versions.items() if k != "needling-outcomes") + ".",
        ),
    ]
    items += [(f"Model: {analysis_label(a)}, {o}", f) for (a, o), f in sorted(formulas.items())]
    return items
