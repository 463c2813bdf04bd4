"""The pipeline as a Python API for notebooks: data in, tidy tables out, no files written.

Typical use::

    from pipeline import api

    study = api.load_study("analysis.toml")          # read, validate, derive (nothing written)
    res = api.fit("trajectory", study.data, outcome="vas", group="twitch")
    res.fixed_effects, res.emmeans, res.contrasts    # tidy tables, as in reports/tables/
    api.fit("trajectory", study.data, random_slope=False).diagnostics   # change one choice
    tables = api.fit_all(study)                      # every model of the plan (minutes)

A study that declares its design (``[outcomes.NAME]``, ``[[comparisons]]``) is fitted the same
way with its own names, e.g. ``api.fit("change", trial.data, outcome="rmdq", group="arm")``.
Any other model of the engine's family is one call away::

    fit = api.fit_formula(trial.data, "rmdq ~ rmdq_baseline + arm + age", "(1 | patient_id)")
    fit.fixed_effects                                # lme4 / lmerTest-equivalent inference

Every analysis name, table and column is the one the report uses (:mod:`pipeline.analyses.plans`);
``contrasts`` also carries the typed ``kind`` and ``within`` columns that the published CSV leaves
out (:mod:`pipeline.schemas.identity`): select slopes with ``kind == "slope_difference"``, not by
the label.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.analyses import plans as analyses
from pipeline.analyses import run as plan
from pipeline.config.settings import Config, ModelSettings, load_config
from pipeline.derive.dataset import analysis_dataset
from pipeline.describe import responders, safety
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import RawTable
from pipeline.lmm.fit import LmmFit, fit_lmm
from pipeline.validate.study import Validation, validate_study

KINDS: dict[str, Callable[..., analyses.ModelPlan]] = {
    "trajectory": analyses.trajectory_plan,
    "change": analyses.change_plan,
    "session_twitch": analyses.session_twitch_plan,
    "joint": analyses.joint_plan,
    "subgroup": analyses.subgroup_plan,
}
"""Analysis kinds :func:`fit` accepts; ``trajectory``, ``change`` and ``subgroup`` need a group."""


@dataclass(frozen=True)
class Study:
    """One study read, validated and derived, held in memory.

    Attributes
    ----------
    config : Config
        The configuration it was read with.
    raw : dict of str to RawTable
        The raw tables as read (text).
    validation : Validation
        Valid and quarantined rows per table, failures and row accounting.
    data : pandas.DataFrame
        The analysis data set: one row per valid assessment with derived scores, change from
        baseline, responders, time axes and patient-level exposure.
    """

    config: Config
    raw: dict[str, RawTable]
    validation: Validation
    data: pd.DataFrame

    @property
    def sessions(self) -> pd.DataFrame:
        """Valid sessions (one row per needling session)."""
        return self.validation.valid("sessions")

    @property
    def patients(self) -> pd.DataFrame:
        """Valid patients."""
        return self.validation.valid("patients")


def load_study(config: str | Path | Config = "analysis.toml") -> Study:
    """Read, validate and derive a study without writing any file.

    Parameters
    ----------
    config : str, Path or Config
        A configuration file (relative paths inside it are resolved against its folder) or a
        loaded :class:`~pipeline.config.settings.Config`.

    Returns
    -------
    Study
        The validated tables and the analysis data set.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    raw = read_sources(cfg.sources)
    validation = validate_study(raw, cfg.study.ranges())
    data = analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        cfg,
    )
    return Study(config=cfg, raw=raw, validation=validation, data=data)


def settings_with(settings: ModelSettings | None = None, **changes: Any) -> ModelSettings:
    """Model settings with some choices changed, e.g. ``time_axis="sessions"``.

    Parameters
    ----------
    settings : ModelSettings, optional
        Starting point (default: the defaults of :class:`~pipeline.config.settings.ModelSettings`).
    **changes
        ``time_axis``, ``covariates``, ``random_slope``, ``df_method``, ``site``,
        ``min_sites_random``.

    Returns
    -------
    ModelSettings
        The changed settings.
    """
    base = settings or ModelSettings()
    if "covariates" in changes:
        changes["covariates"] = tuple(changes["covariates"])
    return dataclasses.replace(base, **changes)


def fit(
    kind: str,
    data: pd.DataFrame,
    outcome: str = "nrs",
    group: str | None = "depth",
    *,
    settings: ModelSettings | None = None,
    tests: bool = True,
    **changes: Any,
) -> analyses.AnalysisResult:
    """Fit one analysis of the plan and return its tidy tables.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`: ``trajectory``, ``change``, ``session_twitch``, ``joint``,
        ``subgroup``.
    data : pandas.DataFrame
        Analysis data set (``Study.data``), possibly filtered.
    outcome : str, default "nrs"
        A declared outcome of the study (``nrs``, ``vas``, ``odi`` by default; ``rmdq``...).
    group : str or None, default "depth"
        A declared comparison (a categorical patient-level column of ``data``: ``depth``,
        ``twitch``, ``arm``...) for trajectory, change and subgroup; ignored otherwise.
    settings : ModelSettings, optional
        Model settings (default: the configuration defaults).
    tests : bool, default True
        Run the likelihood-ratio tests (ML refits).
    **changes
        Setting changes, as :func:`settings_with` (e.g. ``random_slope=False``).

    Returns
    -------
    AnalysisResult
        ``fixed_effects``, ``variance_components``, ``emmeans``, ``contrasts``,
        ``effect_sizes``, ``model_comparison``, ``diagnostics`` and the engine's ``fit``
        (residuals, random effects, contrast helpers).

    Raises
    ------
    ValueError
        Unknown kind, outcome or group.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown analysis {kind!r}; choose from {', '.join(KINDS)}")
    chosen = settings_with(settings, **changes)
    builder = KINDS[kind]
    if kind in ("trajectory", "change", "subgroup"):
        analyses.check_group(data, group)
        model_plan = builder(data, outcome, group, chosen)
    else:
        model_plan = builder(data, outcome, chosen)
    return analyses.fit_plan(model_plan, chosen.df_method, tests=tests)


RANDOM_PARTS = re.compile(
    r"^\s*(?:\(\s*1\s*\|\s*(?P<site>\w+)\s*\)\s*\+\s*)?"
    r"\(\s*1\s*(?:\+\s*(?P<slope>\w+)\s*)?\|\s*(?P<group>\w+)\s*\)\s*$"
)
"""The random parts :func:`fit_formula` supports, in lme4 notation."""


def fit_formula(
    data: pd.DataFrame,
    fixed: str,
    random: str = "(1 | patient_id)",
    *,
    reml: bool = True,
    df_method: str = "satterthwaite",
) -> LmmFit:
    """Fit any linear mixed model of the engine's family with the pipeline's engine.

    The engine minimises lme4's profiled (RE)ML criterion and gives lme4's standard errors and
    lmerTest's Satterthwaite degrees of freedom (:mod:`pipeline.lmm`).

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per observation (e.g. ``Study.data``); rows with a missing value in
        a model variable are dropped. Not modified.
    fixed : str
        ``response ~ terms`` in patsy notation (``*`` and ``:`` for interactions,
        ``C(x, Treatment('ref'))`` for a reference level; a categorical column keeps its first
        category as the reference).
    random : str, default "(1 | patient_id)"
        One of the supported random parts, in lme4 notation: ``(1 | g)``, ``(1 + t | g)``
        (correlated random intercept and slope of the numeric ``t``), or either preceded by
        ``(1 | s) +`` (a random intercept of the sites ``s`` in which the groups are nested).
    reml : bool, default True
        REML (estimates) or ML (likelihood-ratio tests of fixed effects).
    df_method : {"satterthwaite", "z"}
        Degrees of freedom of the tests and intervals.

    Returns
    -------
    LmmFit
        ``fixed_effects`` (term, estimate, std_err, df, ci_low, ci_high, p_value),
        ``variance_components``, ``criterion``, ``contrast(L)`` and the fit diagnostics.

    Raises
    ------
    ValueError
        A formula without ``~``, an unsupported random part, or a column not in ``data``.
    """
    response, tilde, rhs = fixed.partition("~")
    if not tilde or not response.strip() or not rhs.strip():
        raise ValueError(f"fixed must read 'response ~ terms', got {fixed!r}")
    found = RANDOM_PARTS.match(random)
    if found is None:
        raise ValueError(
            f"unsupported random part {random!r}; use (1 | g), (1 + t | g), or either after "
            f"(1 | site) +"
        )
    group, slope, site = found["group"], found["slope"], found["site"]
    response = response.strip()
    named = [response, group, *(c for c in (slope, site) if c)]
    missing = [c for c in named if c not in data]
    if missing:
        raise ValueError(f"column {missing[0]!r} is not in the data")
    return fit_lmm(
        data,
        response,
        rhs.strip(),
        group,
        random_slope=slope,
        reml=reml,
        df_method=df_method,
        site=site,
    )


def fit_all(
    study: Study,
    outcomes: Sequence[str] | None = None,
    settings: ModelSettings | None = None,
    progress: plan.Progress | None = None,
) -> dict[str, pd.DataFrame]:
    """Fit every model of the plan, as ``outcomes run`` does, and return the combined tables.

    Parameters
    ----------
    study : Study
        From :func:`load_study`.
    outcomes : sequence of str, optional
        Declared outcomes to fit (default every one the study declares).
    settings : ModelSettings, optional
        Default: the study's configuration.
    progress : callable, optional
        ``progress(i, n, plan)`` before each model.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``fixed_effects, variance_components, emmeans, contrasts, effect_sizes,
        model_comparison, diagnostics`` with the primary family and Holm-adjusted p.
    """
    chosen = settings or study.config.model
    design = study.config.study
    if outcomes is not None:
        design = dataclasses.replace(
            design, outcomes=tuple(o for o in design.outcomes if o.name in outcomes)
        )
    plans = plan.study_plans(study.data, chosen, design)
    visit = plan.primary_visit(study.data, design)
    family = [
        (identity, visit if identity.kind is analyses.AnalysisKind.CHANGE else None)
        for identity in (plan.headline(c) for c in design.comparisons)
    ]
    return plan.combine(plan.run_analyses(plans, chosen.df_method, progress), family)


def responder_table(study: Study, group: str = "depth") -> pd.DataFrame:
    """MCID responders at the last assessment by group, for every instrument.

    Parameters
    ----------
    study : Study
        From :func:`load_study`.
    group : str
        ``depth`` or ``twitch``.

    Returns
    -------
    pandas.DataFrame
        As ``reports/tables/responders.csv``.
    """
    names = [o.name for o in study.config.study.outcomes]
    return responders.responders_by_instrument(study.data, group, names)


def adverse_events(study: Study, group: str = "depth") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Adverse events per 100 sessions by group and the rate ratio.

    Parameters
    ----------
    study : Study
        From :func:`load_study`.
    group : str
        Session-level grouping column, ``depth`` by default.

    Returns
    -------
    rates, ratio : pandas.DataFrame
        As ``reports/tables/adverse_event_rates.csv`` and ``adverse_event_rate_ratio.csv``.
    """
    return safety.adverse_event_rates(study.sessions, group), safety.rate_ratio(
        study.sessions, group
    )
