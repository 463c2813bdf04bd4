"""Methods: paragraphs generated from the analyses the run produced and its settings."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.config.settings import Config
from pipeline.report.sections.common import analysis_label, present
from pipeline.schemas.identity import (
    AnalysisKind,
    Family,
    kind_of,
)


def methods_text(
    tables: Mapping[str, pd.DataFrame],
    config: Config,
    versions: Mapping[str, str],
    formulas: Mapping[tuple[str, str], str],
) -> list[str]:
    """Generate the methods paragraphs from the analyses the run produced and its settings."""
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
    first = [
        f"Groups are patient-level exposures: a patient is 'deep' when at least "
        f"{th.deep_share:g} of their sessions were deep and 'twitch' when a twitch response was "
        f"elicited in at least {th.twitch_share:g} of the sessions where it was recorded "
        "(references: superficial, no twitch, acute pain). Time is "
        f"{time_words}. Outcomes are NRS pain, VAS pain and the Oswestry Disability Index "
        f"(scored over the answered sections, at most {th.odi_max_missing_sections} unanswered)."
    ]
    models = []
    if AnalysisKind.TRAJECTORY in kinds:
        models.append(
            "trajectory models (SAP §4.1): outcome ~ time × group + baseline covariates "
            f"({covariates}), with a correlated random intercept and slope for time per patient, "
            "refitted with a random intercept only when the slope variance is at the boundary"
        )
    if AnalysisKind.CHANGE in kinds:
        models.append(
            "change-from-baseline (MMRM-style) models (§4.2): post-baseline assessments, "
            "outcome ~ baseline + visit × group with visit categorical and a random intercept "
            "per patient, giving the difference between groups at each visit"
        )
    if AnalysisKind.SESSION in kinds:
        models.append(
            "a session-level twitch model (§4.3) splitting the share of earlier sessions with a "
            "twitch response into the patient's mean (between) and the deviation from it "
            "(within; free of between-patient confounding)"
        )
    if AnalysisKind.JOINT in kinds:
        models.append("a joint model with depth and twitch together (§4.4), as they are confounded")
    if AnalysisKind.SUBGROUP in kinds:
        models.append("subgroup models with a three-way interaction with chronicity")
    if AnalysisKind.SENSITIVITY in kinds:
        models.append(
            "sensitivity refits of the trajectory model in completers and excluding patients "
            "with contraindications or protocol deviations"
        )
    site = getattr(m, "site", None)
    site_words = (
        f" The clinic enters as configured ([model] site = {site}: with at least "
        f"{getattr(m, 'min_sites_random', 5)} clinics a random intercept, otherwise a fixed "
        "effect, when 'auto')."
        if site
        else ""
    )
    second = (
        "Linear mixed-effects models were fitted for each outcome: "
        + "; ".join(models)
        + "."
        + site_words
        + " Estimation was by restricted maximum likelihood: lme4's profiled criterion, "
        "minimised by bounded L-BFGS-B with its exact gradient and finished by Newton steps, "
        "accepted when it passes lme4's gradient check; otherwise, or when the fit is singular, "
        f"statsmodels {versions.get('statsmodels', '?')} MixedLM's optimisers and a "
        "derivative-free route were run too and the best REML criterion kept. Standard errors "
        "are from (X'V⁻¹X)⁻¹ at the estimated variance components, as in lme4, and tests and "
        f"intervals use {df_words}."
    )
    if present(tables, "emmeans"):
        second += (
            " Estimated marginal means are predictions at each visit averaged with equal weights "
            "over the other categorical variables, as R's emmeans computes them."
        )
    if present(tables, "model_comparison"):
        second += (
            " Interactions were tested by likelihood-ratio tests between maximum-likelihood fits "
            "of the nested models."
        )
    contrasts = tables.get("contrasts")
    if (
        contrasts is not None
        and "family" in contrasts
        and (contrasts["family"] == Family.PRIMARY).any()
    ):
        second += (
            " Multiplicity: Holm's method across the primary family, the difference in slopes for "
            "depth and for twitch in the trajectory models of the three outcomes; other "
            "p-values are unadjusted."
        )
    else:
        second += " p-values are not adjusted for multiplicity."
    if present(tables, "effect_sizes"):
        second += (
            " Standardised effect sizes divide a between-group difference by the "
            f"{tables['effect_sizes']['standardiser'].iloc[0]}."
        )
    quoted = [f"{analysis_label(a)}, {o}: {f}" for (a, o), f in sorted(formulas.items())]
    third = (
        "All available assessments were used, which is valid when missed visits are missing at "
        "random given the observed data; no value was imputed, and rows that broke the data "
        "contract were quarantined. Responders reached the MCID (SAP §2) at their last "
        "post-baseline assessment (risk difference with a Wald interval; odds ratio by logistic "
        "regression); adverse events are given per 100 sessions with exact Poisson intervals and "
        "compared by the exact conditional rate-ratio test. Published counts from 1 to "
        f"{config.privacy.small_cell_threshold - 1} are suppressed, with complementary "
        "suppression (README, Privacy). Software: "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "needling-outcomes")
        + "."
    )
    paragraphs = [*first, second, third]
    if quoted:
        paragraphs.append("Models in lme4 notation: " + "; ".join(quoted) + ".")
    return paragraphs
