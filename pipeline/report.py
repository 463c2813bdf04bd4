"""The HTML outcome report: a view of tables and figures the pipeline already produced.

Nothing is computed here beyond formatting numbers and wording sentences from them; the template
(``templates/outcomes.html.j2``) only lays them out. Figures are embedded as base64 PNG so the
report is one self-contained file. No patient identifier or date appears in it.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import jinja2
import pandas as pd


@dataclass(frozen=True)
class ReportContent:
    """Everything the report shows.

    Attributes
    ----------
    title : str
        Report title.
    run_date : str
        Date the report was produced (``SOURCE_DATE_EPOCH`` when set).
    config_file : str
        Name of the configuration file and its SHA-256.
    inputs : pandas.DataFrame
        ``role, file, sha256``.
    versions : dict
        Package versions.
    git_commit : str
        Commit of the pipeline code.
    accounting : pandas.DataFrame
        Row accounting per table.
    quarantine_reasons : pandas.DataFrame
        Top reasons for quarantine.
    trajectory_summary : pandas.DataFrame
        Mean outcome by visit and group.
    trajectory_figure : bytes
        PNG of the mean trajectories.
    fixed_effects : pandas.DataFrame
        Tidy fixed effects of the trajectory model.
    variance_components : pandas.DataFrame
        Variance components of the trajectory model.
    diagnostics : pandas.DataFrame
        Fit diagnostics of the trajectory model.
    formula : str
        The model in lme4 notation.
    settings : dict
        Configuration values worth stating (time axis, df method, MCIDs, thresholds).
    headline : str
        The sentence answering the question, generated from the numbers.
    adverse_event_rates, adverse_event_rate_ratio : pandas.DataFrame
        Adverse events per 100 sessions by depth and the deep/superficial rate ratio.
    responders : pandas.DataFrame
        MCID responders at the last assessment by depth, per instrument.
    """

    title: str
    run_date: str
    config_file: str
    inputs: pd.DataFrame
    versions: dict[str, str]
    git_commit: str
    accounting: pd.DataFrame
    quarantine_reasons: pd.DataFrame
    trajectory_summary: pd.DataFrame
    trajectory_figure: bytes
    fixed_effects: pd.DataFrame
    variance_components: pd.DataFrame
    diagnostics: pd.DataFrame
    formula: str
    settings: dict[str, Any]
    headline: str
    adverse_event_rates: pd.DataFrame
    adverse_event_rate_ratio: pd.DataFrame
    responders: pd.DataFrame


def fmt(value: Any, digits: int = 2) -> str:
    """Format a number for a table: fixed decimals, an en dash for missing, ∞ for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        return f"{value:,.{digits}f}"
    return str(value)


def sig(value: Any, digits: int = 4) -> str:
    """Format a number to ``digits`` significant digits (for variances of any scale)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}g}"


def fmt_p(p: float) -> str:
    """Format a p-value: three decimals, or ``< 0.001``."""
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def slope_sentence(
    fixed_effects: pd.DataFrame,
    *,
    time_label: str,
    outcome_label: str,
    group_term: str,
    contrast_label: str,
) -> str:
    """Word the group-by-time interaction as a plain sentence.

    Parameters
    ----------
    fixed_effects : pandas.DataFrame
        Tidy fixed effects of one trajectory model.
    time_label : str
        ``week`` or ``session``.
    outcome_label : str
        e.g. ``NRS pain (0–10)``.
    group_term : str
        The interaction term, e.g. ``weeks:depth[T.deep]``.
    contrast_label : str
        e.g. ``deep than superficial needling``.

    Returns
    -------
    str
        The sentence, or a statement that the term is not in the model.
    """
    row = fixed_effects[fixed_effects["term"] == group_term]
    if row.empty:
        return f"The model has no term {group_term}; the group-by-time effect was not estimated."
    r = row.iloc[0]
    direction = "faster" if r["estimate"] < 0 else "slower"
    return (
        f"{outcome_label} fell {direction} with {contrast_label}: a difference in slope of "
        f"{r['estimate']:+.3f} points per {time_label} (95 % CI {r['ci_low']:+.3f} to "
        f"{r['ci_high']:+.3f}; p {('= ' + fmt_p(r['p_value'])).replace('= <', '<')}; "
        f"Satterthwaite df {fmt(float(r['df']), 1)})."
    )


def _records(frame: pd.DataFrame, formats: dict[str, Any] | None = None) -> list[dict]:
    formats = formats or {}
    rows = []
    for record in frame.to_dict(orient="records"):
        rows.append({k: formats.get(k, fmt)(v) for k, v in record.items()})
    return rows


def render_html(content: ReportContent) -> str:
    """Render the report to one self-contained HTML string."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    fe_formats = {
        "estimate": lambda v: fmt(v, 3),
        "std_err": lambda v: fmt(v, 3),
        "df": lambda v: fmt(v, 1),
        "ci_low": lambda v: fmt(v, 3),
        "ci_high": lambda v: fmt(v, 3),
        "p_value": fmt_p,
    }
    template = env.get_template("outcomes.html.j2")
    return template.render(
        c=content,
        figure=base64.b64encode(content.trajectory_figure).decode("ascii"),
        inputs=_records(content.inputs),
        accounting=_records(content.accounting),
        reasons=_records(content.quarantine_reasons),
        summary=_records(
            content.trajectory_summary,
            {
                "mean": lambda v: fmt(v, 2),
                "sd": lambda v: fmt(v, 2),
                "mean_weeks": lambda v: fmt(v, 1),
            },
        ),
        fixed_effects=_records(content.fixed_effects, fe_formats),
        variance=_records(
            content.variance_components,
            {k: sig for k in ("variance", "std_dev", "correlation")},
        ),
        diagnostics=_records(content.diagnostics),
        ae_rates=_records(content.adverse_event_rates),
        ae_ratio=_records(content.adverse_event_rate_ratio, {"p_value": fmt_p}),
        responders=_records(
            content.responders,
            {
                "p_value": fmt_p,
                **{k: lambda v: fmt(v, 3) for k in ("estimate", "ci_low", "ci_high")},
            },
        ),
    )


def methods_text(
    *,
    formula: str,
    time_axis: str,
    df_method: str,
    covariates: tuple[str, ...],
    random_effects: str,
    versions: dict[str, str],
) -> str:
    """Generate the methods paragraph from the settings actually used."""
    time_words = (
        "weeks since the baseline assessment"
        if time_axis == "weeks"
        else "the number of needling sessions completed before the assessment"
    )
    df_words = (
        "Satterthwaite degrees of freedom, computed as R's lmerTest does"
        if df_method == "satterthwaite"
        else "large-sample normal (z) reference"
    )
    covariate_words = ", ".join(covariates) if covariates else "none"
    return (
        f"NRS pain was analysed with a linear mixed-effects model ({formula}) with time as "
        f"{time_words}, needling depth as a patient-level exposure (the depth used in most of "
        f"the patient's sessions; superficial as reference) and baseline covariates: "
        f"{covariate_words}. Random effects per patient: {random_effects}. Estimation was by "
        f"restricted maximum likelihood in statsmodels {versions.get('statsmodels', '?')}, "
        f"checked against a second optimiser and keeping the better REML criterion; standard "
        f"errors are from (X'V⁻¹X)⁻¹ at the estimated variance components, as in lme4, and "
        f"tests use {df_words}. All available assessments were used, which is valid when "
        f"missing visits are missing at random given the observed data. Rows that broke the "
        f"data contract were quarantined, not imputed. Software: Python "
        f"{versions.get('python', '?')}, pandas {versions.get('pandas', '?')}, pandera "
        f"{versions.get('pandera', '?')}, scipy {versions.get('scipy', '?')}."
    )
