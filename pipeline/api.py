"""The pipeline as a Python API for notebooks: data in, tidy tables out, no files written.

Typical use::

    from pipeline import api

    study = api.load_study("analysis.toml")          # read, validate, derive (nothing written)
    res = api.fit("trajectory", study.data, outcome="vas", group="twitch")
    res.fixed_effects, res.emmeans, res.contrasts    # tidy tables, as in reports/tables/
    api.fit("trajectory", study.data, random_slope=False).diagnostics   # change one choice
    tables = api.fit_all(study)                      # every model of the plan (minutes)
    api.plan("analysis.toml", from_study=True).answers   # next study: power, n (docs/planning.md)
    api.share("clinic.toml", "clinic.share")         # a clinic's share file (network pooling)
    api.pool(["a.share", "b.share"], two_stage=True).tables  # exact pooled fit + meta-analysis
    mm = api.fit_mmrm(study.data, outcome="odi", group="twitch", df_method="satterthwaite")
    mm.differences, mm.lsmeans, mm.structure_trials  # the MMRM (SAP section 4, item 6)
    md = api.missing_data(study)                     # estimand: MAR vs J2R/CR/CIR/LMCF (CMI)
    md.sensitivity, md.tipping, md.tipping_deltas    # sensitivity_missing.csv, tipping_point.csv
    draft, toml = api.draft(["visits.csv"])          # a first configuration of your exports
    api.preview("my-analysis.toml").heads["sessions"]  # its first mapped rows (nothing written)

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
from pipeline.analyses import run as runs
from pipeline.config.options import ModelSettings
from pipeline.config.settings import Config, load_config
from pipeline.derive.adverse_events import EventRecord, event_record
from pipeline.derive.dataset import analysis_dataset
from pipeline.describe import responders, safety
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import RawTable
from pipeline.lmm.covariance import DEFAULT_FALLBACK
from pipeline.lmm.data import quote_name
from pipeline.lmm.fit import LmmFit, fit_lmm
from pipeline.lmm.mmrm import MmrmFit
from pipeline.lmm.mmrm import fit_mmrm as _fit_mmrm
from pipeline.schemas.columns import INSTRUMENT_COLUMNS
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

    @property
    def events(self) -> EventRecord:
        """The adverse events of the valid sessions, from every source (one row per event)."""
        return event_record(self.sessions, self.raw["sessions"].events)


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
    sessions = validation.valid("sessions")
    data = analysis_dataset(
        validation.valid("patients"),
        sessions,
        validation.valid("assessments"),
        cfg,
        event_record(sessions, raw["sessions"].events) if cfg.study.sessions else None,
    )
    return Study(config=cfg, raw=raw, validation=validation, data=data)


def settings_with(settings: ModelSettings | None = None, **changes: Any) -> ModelSettings:
    """Model settings with some choices changed, e.g. ``time_axis="sessions"``.

    Parameters
    ----------
    settings : ModelSettings, optional
        Starting point (default: the defaults of :class:`~pipeline.config.options.ModelSettings`).
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
    progress: runs.Progress | None = None,
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
    plans = runs.study_plans(study.data, chosen, design)
    visit = runs.primary_visit(study.data, design)
    fits = runs.run_analyses(plans, chosen.df_method, progress)
    return runs.combine(fits, design.comparisons, visit)


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
    record = study.events
    return (
        safety.adverse_event_rates(study.sessions, group, record=record),
        safety.rate_ratio(study.sessions, group, record=record),
    )


def share(config: str | Path | Config, out: str | Path | None = None) -> dict[str, Any]:
    """Build a clinic's share file for a pooled network analysis (``outcomes share``).

    Parameters
    ----------
    config : str, Path or Config
        The clinic's configuration with a ``[federation]`` section.
    out : str or Path, optional
        Write the file there too.

    Returns
    -------
    dict
        The share file's content (JSON values; schema in docs/federation.md).
    """
    from pipeline.federate.run import share_clinic

    return share_clinic(config, None if out is None else Path(out))


def pool(
    shares: Sequence[str | Path], out: str | Path | None = None, *, two_stage: bool = False
) -> Any:
    """Pool share files: the exact one-stage fit and, optionally, the meta-analysis.

    Parameters
    ----------
    shares : sequence of str or Path
        Share files.
    out : str or Path, optional
        Folder for the tables and ``pooled.html`` (nothing written when omitted).
    two_stage : bool, default False
        Also meta-analyse the clinics' own fits.

    Returns
    -------
    pipeline.federate.run.PooledAnalysis
        ``models`` (fits), ``tables`` (tidy tables) and ``written`` (files).
    """
    from pipeline.federate.run import pool_files

    return pool_files(shares, None if out is None else Path(out), two_stage_meta=two_stage)


@dataclass(frozen=True)
class MmrmResult:
    """An MMRM fitted by :func:`fit_mmrm`, with its tidy tables.

    Attributes
    ----------
    fit : MmrmFit
        The engine's fit (contrast helpers, covariance, information criteria).
    fixed_effects : pandas.DataFrame
        Coefficients with SE, df, t, p and 95 % CI.
    lsmeans : pandas.DataFrame
        Least-squares means per group level and visit (R ``emmeans``' equal weights).
    differences : pandas.DataFrame
        Each non-reference level minus the reference at every visit, Holm-adjusted across
        the visits of that level (``p_holm``).
    structure_trials : pandas.DataFrame
        Every covariance structure tried (fallback order) with AIC, AICc and BIC.
    """

    fit: MmrmFit
    fixed_effects: pd.DataFrame
    lsmeans: pd.DataFrame
    differences: pd.DataFrame
    structure_trials: pd.DataFrame


def fit_mmrm(
    data: pd.DataFrame,
    outcome: str = "nrs",
    group: str = "depth",
    *,
    reference: Any = None,
    covariates: Sequence[str] = (),
    structure: str | Sequence[str] = DEFAULT_FALLBACK,
    df_method: str = "kenward-roger",
    robust: bool = False,
    separate_covariance: bool = False,
) -> MmrmResult:
    """Fit the MMRM ``y ~ baseline + visit * group + covariates`` on post-baseline visits.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set (``Study.data``) or any long frame with ``patient_id``, ``visit``
        (0 = baseline, excluded), the response and, when present, ``<response>_baseline``.
    outcome : str, default "nrs"
        An instrument (``nrs``, ``vas``, ``odi``) or the name of any numeric column.
    group : str, default "depth"
        Any patient-level categorical column (arm, depth, twitch, ...).
    reference : object, optional
        Reference level of ``group`` (default: the first declared or sorted level).
    covariates : sequence of str
        Further baseline covariates.
    structure : str or sequence of str
        A covariance structure or an order to try (default ``us, toeph, ar1h, csh, cs``).
    df_method : str, default "kenward-roger"
        ``kenward-roger``, ``kenward-roger-linear``, ``satterthwaite``, ``residual``,
        ``between-within`` or ``z``.
    robust : bool, default False
        Sandwich standard errors (then df ``residual``, ``between-within`` or ``z``).
    separate_covariance : bool, default False
        A separate covariance matrix for each level of ``group``.

    Returns
    -------
    MmrmResult

    Raises
    ------
    ValueError
        A column is missing, or ``group`` has fewer than two levels.
    """
    response = INSTRUMENT_COLUMNS.get(outcome, outcome)
    missing = [c for c in (response, group, "visit", analyses.GROUP, *covariates) if c not in data]
    if missing:
        raise ValueError(f"column(s) {missing} are not in the data")
    baseline = f"{response}_baseline" if f"{response}_baseline" in data else None
    post = data.loc[data["visit"] > 0]
    columns = [response, "visit", group, *covariates] + ([baseline] if baseline else [])
    rows = analyses.model_rows(post, columns)
    rows["visit_c"] = pd.Categorical(rows["visit"].astype(int))
    values = rows[group]
    levels = (
        list(values.cat.categories)
        if isinstance(values.dtype, pd.CategoricalDtype)
        else sorted(values.unique())
    )
    if len(levels) < 2:
        raise ValueError(f"{group!r} has {len(levels)} level(s) in the post-baseline rows")
    reference = levels[0] if reference is None else reference
    term = f"C({quote_name(group)}, Treatment({reference!r}))"
    rhs = " + ".join(
        [*([quote_name(baseline)] if baseline else []), f"visit_c * {term}"]
        + [quote_name(c) for c in covariates]
    )
    fit = _fit_mmrm(
        rows,
        response,
        rhs,
        "visit_c",
        analyses.GROUP,
        structure,
        df_method=df_method,  # type: ignore[arg-type]
        robust=robust,
        covariance_group=group if separate_covariance else None,
    )
    differences = pd.concat(
        [fit.visit_differences(group, level, reference) for level in levels if level != reference],
        ignore_index=True,
    )
    return MmrmResult(
        fit=fit,
        fixed_effects=fit.fixed_effects,
        lsmeans=fit.lsmeans(group),
        differences=differences,
        structure_trials=fit.structure_trials,
    )


def missing_data(study: Study, **changes: Any) -> Any:
    """Run the estimand and its missing-data sensitivity analyses in memory (docs/estimands.md).

    Parameters
    ----------
    study : Study
        A study from :func:`load_study`; its ``[estimand]`` section (or the defaults) is used.
    **changes
        Any field of :class:`~pipeline.config.estimand.EstimandSettings` to change, e.g.
        ``visit=2``, ``strategies=("MAR", "J2R")``, ``tipping_groups="both"``,
        ``jackknife=False`` (point estimates only, seconds faster).

    Returns
    -------
    pipeline.analyses.missing_data.MissingDataResult
        ``sensitivity`` (the likelihood MMRM and CMI under MAR, J2R, CR, CIR, LMCF and the
        estimand's per-patient strategies), ``tipping`` and ``tipping_deltas``, ``events``,
        ``dropout_pattern``, ``dropout_km``, ``last_value``, the imputation ``fit`` and ``cmi``.
    """
    from pipeline.analyses.missing_data import missing_data_analysis
    from pipeline.config.estimand import EstimandSettings

    base = study.config.estimand or EstimandSettings()
    return missing_data_analysis(study.data, study.config, dataclasses.replace(base, **changes))


def plan(
    config: str | Path | Config = "analysis.toml",
    *,
    from_study: bool | Study = False,
    sims: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Plan the next study from the configuration's ``[planning]`` section (no file written).

    Parameters
    ----------
    config : str, Path or Config
        A configuration with a ``[planning]`` section (docs/planning.md).
    from_study : bool or Study, default False
        Estimate the variance components and the dropout from the configuration's study
        (read, validated and derived as :func:`load_study` does), or from a study already
        loaded; False uses the assumptions typed in the section.
    sims : int, optional
        Simulated studies per size (default: the section's ``sims``; 0: formulas only).
    seed : int, optional
        Root seed (default: the section's).
    workers : int, default 1
        Processes for the simulations.
    progress : callable, optional
        ``progress(done, total)`` as simulated studies finish.

    Returns
    -------
    pipeline.planning.answers.PlanResult
        ``answers``, ``curve``, ``type_one_error``, ``simulations``, the resolved ``design`` and
        ``assumptions`` (and the study's ``dropout`` with ``from_study``).

    Raises
    ------
    ConfigError
        When the section is missing or lacks what the chosen route needs.
    """
    from pipeline.errors import ConfigError
    from pipeline.planning.answers import plan_study
    from pipeline.planning.design import from_settings
    from pipeline.planning.from_study import assumptions_from_study

    cfg = config if isinstance(config, Config) else load_config(config)
    settings = cfg.planning
    if settings is None:
        raise ConfigError(
            f"{cfg.source}: [planning] section is missing: declare the design and assumptions "
            "of the next study (see docs/planning.md)"
        )
    dropout = None
    if from_study is not False:
        study = from_study if isinstance(from_study, Study) else load_study(cfg)
        design, assumptions, dropout = assumptions_from_study(study.data, cfg, settings)
    else:
        design, assumptions = from_settings(settings, cfg.mcid[settings.outcome], str(cfg.source))
    return plan_study(
        design,
        assumptions,
        settings.sims if sims is None else sims,
        settings.seed if seed is None else seed,
        workers=workers,
        progress=progress,
        dropout=dropout,
    )


# --- a first configuration of a clinic's exports (issue 15; docs/ingestion.md) ---------------


def draft(exports: Sequence[str | Path], out: str | Path = "analysis.toml") -> tuple[Any, str]:
    """Draft the configuration of a clinic's exports, without writing it.

    Parameters
    ----------
    exports : sequence of str or Path
        The export files (CSV, Excel, a REDCap export with its data dictionary).
    out : str or Path
        Where the configuration would be written (its paths are relative to this file).

    Returns
    -------
    draft : pipeline.ingest.draft.model.Draft
        Every guess with its confidence.
    text : str
        The commented TOML that :func:`init` writes.
    """
    from pipeline.ingest.draft.files import draft_files

    return draft_files([Path(p) for p in exports], Path(out))


def init(exports: Sequence[str | Path], out: str | Path, force: bool = False) -> Any:
    """Draft the configuration of a clinic's exports and write it to ``out`` (`outcomes init`).

    Raises
    ------
    UserError
        ``out`` exists and ``force`` is false, or an export cannot be read.
    """
    from pipeline.ingest.draft.files import write_draft

    return write_draft([Path(p) for p in exports], Path(out), force=force)


def preview(config: str | Path | Config, rows: int = 5) -> Any:
    """Read and validate a configuration's files in memory: the first rows and the counts.

    Returns
    -------
    pipeline.validate.preview.Preview
        ``heads`` (first valid rows per table), ``rows`` (kept and quarantined per table),
        ``summary`` and ``reasons`` (per file). Nothing is written.
    """
    from pipeline.validate.preview import preview as _preview

    cfg = config if isinstance(config, Config) else load_config(config, analyses=False)
    return _preview(cfg, rows)
