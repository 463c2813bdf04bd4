"""Every mixed-model analysis of the statistical analysis plan, run and gathered into tables.

:func:`analysis_plans` lists the models of SAP §4 for the study's declared outcomes and
comparisons (NRS, VAS and ODI by depth and twitch by default); :func:`skipped_analyses` says
which models the design cannot support and why; :func:`run_analyses` fits them and
:func:`combine` stacks their tidy tables, marks the primary family of comparisons and adds
Holm-adjusted p-values across it.

The primary family holds one headline estimate per comparison and outcome (SAP §4, headline
estimands), chosen and adjusted by :func:`pipeline.analyses.headline.adjust`, the one
definition the answer table shares: depth's difference in slope
of the trajectory model, twitch's within-patient coefficient of the session-level model, a
randomised arm's baseline-adjusted difference at the primary visit from the visit-level model
(``change_<arm>``, the MMRM of SAP §4.6: :func:`pipeline.analyses.plans.change_plan`;
:func:`mmrm_fits` gives its fitted :class:`~pipeline.lmm.mmrm.MmrmFit` per comparison and
outcome). It is chosen by typed fields, never by a label. Every other contrast is secondary and
reported unadjusted.

The analyses are independent, so :func:`run_analyses` fits them in parallel processes (one per
core): each worker fits whole plans with the same code as a sequential run, so the numbers do
not depend on the number of workers, and the results come back in the order of the plans.
Given a :class:`~pipeline.analyses.cache.FitCache`, an analysis whose rows, specification and code
are those of an earlier run is read back instead of refitted.

The workers come from :func:`pipeline.analyses.workers.worker_pool` and never outlive the run
(see :mod:`pipeline.analyses.workers`). A worker killed from outside (usually for memory) ends
the run with one sentence naming the models being fitted and the ``[engine] workers`` setting.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pandas as pd

from pipeline.analyses.cache import CacheWarning, FitCache, plan_key, portable, restore
from pipeline.analyses.headline import adjust
from pipeline.analyses.plans import (
    SENSITIVITY_POPULATIONS,
    TABLES,
    AnalysisResult,
    ModelPlan,
    change_plan,
    fit_plan,
    joint_plan,
    session_twitch_plan,
    subgroup_plan,
    trajectory_plan,
)
from pipeline.analyses.workers import Handover, cores, kill_workers, wait_settled, worker_pool
from pipeline.config.options import ModelSettings
from pipeline.config.study import DEFAULT_COMPARISONS, Comparison, Study
from pipeline.errors import UserError
from pipeline.lmm.mmrm import MmrmFit
from pipeline.lmm.reuse import sharing_designs
from pipeline.schemas.columns import INSTRUMENT_COLUMNS, PATIENT_ID
from pipeline.schemas.identity import FACTORS, AnalysisId, AnalysisKind


def primary_visit(data: pd.DataFrame, study: Study) -> int | None:
    """Return the visit of a trial's headline: the declared one, else the last in the data."""
    if study.time.primary_visit is not None:
        return study.time.primary_visit
    visits = data.loc[data["visit"] > 0, "visit"]
    return int(visits.max()) if len(visits) else None


def headline(comparison: Comparison) -> AnalysisId:
    """Return the analysis giving the headline estimate of one comparison (SAP §4).

    A randomised arm: the visit-level model (``change_<name>``), read at the primary visit;
    an observational grouping: the trajectory model (``trajectory_<name>``), its difference in
    slope.
    """
    kind = AnalysisKind.CHANGE if comparison.randomised else AnalysisKind.TRAJECTORY
    return AnalysisId(kind, comparison.name)


def skipped_analyses(data: pd.DataFrame, study: Study) -> list[tuple[str, str]]:
    """List the analyses of the plan this design cannot support, with the reason.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    study : Study
        The declared design.

    Returns
    -------
    list of (str, str)
        ``(analysis, reason)``; the reason is one sentence for the report.
    """
    skipped = []
    names = {c.kind for c in study.comparisons}
    if not study.sessions:
        reason = "this study has no session log"
        skipped += [
            ("session_twitch", f"the session-level twitch model needs a session log; {reason}."),
            ("joint", f"the joint model of depth and twitch needs a session log; {reason}."),
            (
                "adverse_event_rates",
                f"adverse events are counted per 100 sessions, which needs a session log; "
                f"{reason}.",
            ),
            (
                "session_counts",
                f'time counted in needling sessions ([model] time_axis = "sessions") needs a '
                f"session log; {reason}, so time is counted in weeks.",
            ),
        ]
    else:
        if "twitch" not in names:
            skipped.append(
                ("session_twitch", "the twitch exposure is not among the declared comparisons.")
            )
        if not {"depth", "twitch"} <= names:
            skipped.append(("joint", "depth and twitch are not both declared comparisons."))
    for comparison in study.comparisons:
        reason = subgroup_gap(data, comparison.name, "chronicity")
        if reason:
            name = AnalysisId(AnalysisKind.SUBGROUP, comparison.name, modifier="chronicity").name
            skipped.append((name, reason))
    return skipped


MODIFIER_SOURCES = {"chronicity": "the symptom duration (symptom_weeks)"}
"""Where a derived effect modifier comes from, for the sentences saying it was not recorded."""


def subgroup_gap(data: pd.DataFrame, factor: str, modifier: str) -> str | None:
    """Say why the subgroup analysis of ``factor`` by ``modifier`` cannot be run, or None.

    A modifier that no row has a value of was not recorded (never "not estimable": there is
    nothing to estimate from); one whose levels do not each hold patients of every group of
    ``factor`` cannot separate the groups' difference by subgroup.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set.
    factor : str
        The comparison's column.
    modifier : str
        The effect modifier's column (``chronicity``).

    Returns
    -------
    str or None
        One sentence for the report, or None when the subgroup model can be fitted.
    """
    source = MODIFIER_SOURCES.get(modifier, modifier)
    if modifier not in data or data[modifier].notna().sum() == 0:
        derived = f", which comes from {source}," if source != modifier else ""
        return (
            f"{modifier}{derived} is not recorded by any source: the {modifier} subgroups "
            "cannot be formed."
        )
    people = data.drop_duplicates(PATIENT_ID)[[factor, modifier]].dropna()
    groups = set(people[factor].astype(str).unique())  # (distinct first: no Python loop)
    levels = {
        str(level): set(part[factor].astype(str).unique())
        for level, part in people.groupby(modifier, observed=True, sort=True)
    }
    missing = [
        f"{level} has no patient in {' or '.join(sorted(groups - found))}"
        for level, found in levels.items()
        if found != groups
    ]
    if len(levels) < 2:
        return (
            f"the {modifier} subgroups need patients in at least two {modifier} groups; "
            f"every patient of these data is {next(iter(levels), 'unclassified')}."
        )
    if missing:
        return (
            f"the {modifier} subgroups need patients of every {factor} group in each {modifier} "
            f"group, and {'; '.join(missing)}: the difference between the {factor} groups "
            f"cannot be estimated within each {modifier} group."
        )
    return None


def study_plans(data: pd.DataFrame, settings: ModelSettings, study: Study) -> list[ModelPlan]:
    """List every model of SAP §4 the declared design supports.

    Per outcome and comparison: the trajectory and change-from-baseline models, the chronicity
    subgroup model and the sensitivity populations; with a session log and both built-in
    exposures, also the session-level twitch model and the joint model (as
    :func:`analysis_plans`). What is left out is listed by :func:`skipped_analyses`.
    """
    data = patients_coded(data)
    skipped = {name for name, _ in skipped_analyses(data, study)}
    kinds = {c.kind: c for c in study.comparisons}
    groups = [c.name for c in study.comparisons]
    populations = {
        name: select(data) for name, select in SENSITIVITY_POPULATIONS.items() if study.outcomes
    }
    plans: list[ModelPlan] = []
    for outcome in (o.name for o in study.outcomes):
        plans += [trajectory_plan(data, outcome, f, settings) for f in groups]
        plans += [change_plan(data, outcome, f, settings) for f in groups]
        if "session_twitch" not in skipped:
            plans.append(session_twitch_plan(data, outcome, settings))
        if "joint" not in skipped:
            plans.append(joint_plan(data, outcome, settings))
        plans += [
            subgroup_plan(data, outcome, f, settings)
            for f in groups
            if AnalysisId(AnalysisKind.SUBGROUP, f, modifier="chronicity").name not in skipped
        ]
        for name, (subset, note) in populations.items():
            if name == "per_protocol" and "depth" not in kinds and len(subset) == len(data):
                continue  # nobody to exclude: the same fit again
            plans += [
                trajectory_plan(subset, outcome, f, settings, population=name, notes=[note])
                for f in groups
            ]
    return [mark_unrecorded(plan, data) for plan in plans]


Progress = Callable[[int, int, ModelPlan], None]


def analysis_plans(
    data: pd.DataFrame,
    settings: ModelSettings,
    outcomes: Sequence[str] = tuple(INSTRUMENT_COLUMNS),
) -> list[ModelPlan]:
    """List every model of SAP §4 for each outcome.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data set (:func:`pipeline.derive.dataset.analysis_dataset`).
    settings : ModelSettings
        Time axis, covariates, random slope, df method and site handling.
    outcomes : sequence of str
        Instruments to analyse (default NRS, VAS and ODI).

    Returns
    -------
    list of ModelPlan
        Per outcome: trajectory and change-from-baseline models for depth and for twitch,
        the session-level twitch model, the joint model, the chronicity subgroup models, and
        the trajectory models in the sensitivity populations.
    """
    data = patients_coded(data)
    populations = {
        name: select(data) for name, select in SENSITIVITY_POPULATIONS.items() if outcomes
    }
    plans: list[ModelPlan] = []
    for outcome in outcomes:
        plans += [trajectory_plan(data, outcome, f, settings) for f in FACTORS]
        plans += [change_plan(data, outcome, f, settings) for f in FACTORS]
        plans.append(session_twitch_plan(data, outcome, settings))
        plans.append(joint_plan(data, outcome, settings))
        plans += [subgroup_plan(data, outcome, f, settings) for f in FACTORS]
        for name, (subset, note) in populations.items():
            plans += [
                trajectory_plan(subset, outcome, f, settings, population=name, notes=[note])
                for f in FACTORS
            ]
    return [mark_unrecorded(plan, data) for plan in plans]


def patients_coded(data: pd.DataFrame) -> pd.DataFrame:
    """Return ``data`` with ``patient_id`` as a categorical column (the same identifiers).

    Every plan selects, groups, sorts and copies its rows by patient: on codes these are
    integer operations, where on text each hashes or copies every identifier again (at
    100,000 patients, building the 36 plans took 7.8 s of CPU with text identifiers, 3.3 s
    with codes), and the plans' copies share one set of identifiers.
    """
    if PATIENT_ID not in data or isinstance(data[PATIENT_ID].dtype, pd.CategoricalDtype):
        return data
    return data.assign(**{PATIENT_ID: data[PATIENT_ID].astype("category")})


def mark_unrecorded(plan: ModelPlan, data: pd.DataFrame) -> ModelPlan:
    """Note the variables of ``plan`` that no row of ``data`` has a value of (not recorded)."""
    wanted = dict.fromkeys([plan.response, *plan.variables])
    gone = tuple(c for c in wanted if c in data and data[c].notna().sum() == 0)
    return dataclasses.replace(plan, unrecorded=gone) if gone else plan


def default_workers(n_plans: int) -> int:
    """Return the processes for :func:`run_analyses`: one per core, at most one per plan.

    Parameters
    ----------
    n_plans : int
        Number of plans to fit.

    Returns
    -------
    int
        At least 1.
    """
    return max(1, min(cores(), n_plans))


def run_analyses(
    plans: Sequence[ModelPlan],
    df_method: str,
    progress: Progress | None = None,
    workers: int | None = None,
    cache: FitCache | None = None,
) -> list[AnalysisResult]:
    """Fit every plan, in parallel processes when there are several cores.

    Parameters
    ----------
    plans : sequence of ModelPlan
        From :func:`analysis_plans`.
    df_method : {"satterthwaite", "z"}
        Inference for every test and interval.
    progress : callable, optional
        Called as ``progress(i, n, plan)`` when plan ``i`` (1-based) of ``n`` starts being
        fitted (in parallel runs, several plans are being fitted at a time).
    workers : int, optional
        Processes; default :func:`default_workers`. 1 fits every plan in this process.
    cache : FitCache, optional
        Fits kept from earlier runs (:mod:`pipeline.analyses.cache`): an analysis whose data,
        specification and code are unchanged is read back instead of refitted, new fits are
        added, and entries this run did not use are deleted.

    Returns
    -------
    list of AnalysisResult
        One per plan, in the order of ``plans`` whatever the number of workers; the numbers
        do not depend on it. Sensitivity analyses are fitted without likelihood-ratio tests.
    """
    where = None if cache is None else (cache.folder, cache.read, cache.secret)
    jobs = [(plan, df_method, _with_tests(plan), where) for plan in plans]
    workers = default_workers(len(jobs)) if workers is None else max(1, int(workers))
    if workers == 1 or len(jobs) < 2:
        done = []
        for i, job in enumerate(jobs, start=1):
            if progress is not None:
                progress(i, len(jobs), job[0])
            done.append(_fit_job(job))
    else:
        done = _run_in_processes(jobs, workers, progress)
    for _, _, problem in done:
        if problem:
            warnings.warn(problem, CacheWarning, stacklevel=2)
    if cache is not None:
        cache.keep_only({key for key, _, _ in done if key})
    return [restore(result, job[0]) for (_, result, _), job in zip(done, jobs, strict=True)]


def _with_tests(plan: ModelPlan) -> bool:
    """Whether a plan gets its likelihood-ratio tests: every analysis but the sensitivity ones."""
    return plan.identity is None or plan.identity.kind is not AnalysisKind.SENSITIVITY


Job = tuple[ModelPlan, str, bool, tuple[Path, bool, bytes | None] | None]
Done = tuple[str, AnalysisResult, str | None]


def _fit_job(job: Job) -> Done:
    """Fit one plan (or read it from the cache); return its key, result and cache problem."""
    plan, df_method, tests, where = job
    if where is None or where[2] is None:
        return "", portable(_fit(plan, df_method, tests)), None
    cache = FitCache(*where)
    key = plan_key(plan, df_method, tests)
    result, problem = cache.load(key, plan)
    if result is None:
        result = portable(_fit(plan, df_method, tests))
        cache.store(key, result)
    return key, result, problem


def _fit(plan: ModelPlan, df_method: str, tests: bool) -> AnalysisResult:
    """Fit one plan; its REML fit and the ML refit of the same model share one design."""
    with sharing_designs():
        return fit_plan(plan, df_method, tests=tests)


def _killed_message(plans: Sequence[ModelPlan]) -> str:
    fitting = ", ".join(f"{p.analysis} ({p.outcome})" for p in plans) or "a model"
    return (
        f"a worker process fitting {fitting} was killed from outside, most likely for lack "
        "of memory; set [engine] workers to a smaller number (1 fits one model at a time) "
        "in the configuration, or give the run more memory"
    )


def _run_in_processes(jobs: Sequence[Job], workers: int, progress: Progress | None) -> list[Done]:
    """Fit the jobs with ``workers`` processes, one plan each at a time, results in order.

    Where the workers are forked they inherit the jobs (:class:`~.workers.Handover`) and each
    is sent only its number: a plan's rows are not pickled and copied through a pipe (at
    100,000 patients that took the run 5 s of CPU during the fits).
    """
    results: list[Done | None] = [None] * len(jobs)
    pending: dict[Future, int] = {}
    pool = worker_pool(workers)
    calls = Handover([(_fit_job, (job,)) for job in jobs])
    try:

        def submit(i: int) -> None:
            if progress is not None:
                progress(i + 1, len(jobs), jobs[i][0])
            pending[calls.submit(pool, i)] = i

        queued = iter(range(len(jobs)))
        for i in queued:
            submit(i)
            if len(pending) == workers:
                break
        while pending:
            try:
                for future in wait_settled(pool, pending):
                    results[pending[future]] = future.result()
                    del pending[future]
                    nxt = next(queued, None)
                    if nxt is not None:
                        submit(nxt)
            except BrokenProcessPool:
                fitting = [jobs[i][0] for i in sorted(pending.values())]
                raise UserError(_killed_message(fitting)) from None
    except BaseException:
        kill_workers(pool)
        raise
    finally:
        calls.release()
    pool.shutdown(wait=True)
    return [r for r in results if r is not None]


def mmrm_fits(results: Sequence[AnalysisResult]) -> dict[tuple[str, str], MmrmFit]:
    """Return the fitted visit-level MMRM of each comparison and outcome.

    Parameters
    ----------
    results : sequence of AnalysisResult
        From :func:`run_analyses`.

    Returns
    -------
    dict of (str, str) to MmrmFit
        ``(comparison, outcome) -> fit`` for every ``change_<comparison>`` analysis that could
        be fitted (the full sample; its ``lsmeans``, ``visit_differences``, ``with_df_method``
        and ``structure_trials`` are there for analyses built on it, e.g. reference-based
        imputation).
    """
    return {
        (r.identity.factor, r.outcome): r.fit
        for r in results
        if r.identity is not None
        and r.identity.kind is AnalysisKind.CHANGE
        and r.identity.population is None
        and isinstance(r.fit, MmrmFit)
    }


def combine(
    results: Sequence[AnalysisResult],
    comparisons: Sequence[Comparison] = DEFAULT_COMPARISONS,
    visit: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Stack the tidy tables of every analysis; add the family and Holm's adjustment.

    Parameters
    ----------
    results : sequence of AnalysisResult
        Fitted analyses.
    comparisons : sequence of Comparison
        The declared comparisons (default: the needling study's depth and twitch).
    visit : int or None
        The primary visit (:func:`primary_visit`): a randomised arm's headline is its
        difference at this visit.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``fixed_effects, variance_components, emmeans, contrasts, effect_sizes,
        model_comparison, diagnostics, covariance_structures``. ``contrasts`` gains ``family``
        (``primary`` for the headline estimates of SAP §4, else ``secondary``) and ``p_holm``
        (Holm-adjusted p across the primary family, empty for secondary contrasts), both from
        :func:`pipeline.analyses.headline.adjust`.
    """
    tables = {}
    for name in TABLES:
        frames = [r.tables[name] for r in results if len(r.tables[name])]
        columns = results[0].tables[name].columns if results else []
        tables[name] = (
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        )
    tables["contrasts"] = adjust(tables["contrasts"], comparisons, visit)
    return tables
