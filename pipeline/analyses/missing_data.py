"""The estimand and what its answer assumes about patients who stopped coming (SAP §4, ICH E9(R1)).

:func:`missing_data_analysis` takes the analysis data set and the configuration's
``[estimand]`` (:class:`~pipeline.config.estimand.EstimandSettings`; defaults when absent) and
returns:

* the estimand's difference at its visit under the likelihood MMRM (missing at random) and
  by reference-based conditional mean imputation with jackknife SEs
  (:mod:`pipeline.lmm.reference_based`): MAR, J2R, CR, CIR and LMCF for every patient who
  discontinued, and the declared estimand's own per-patient choice from the recorded
  intercurrent events (``sensitivity_missing``);
* a tipping-point grid: a delta added to the imputed values (MAR) of one or both groups, and the
  deltas at which significance and the MCID verdict change (``tipping_point``);
* the dropout description: last visit attended by group, time to dropout (Kaplan-Meier by
  group, visits as the time scale) and the last observed change before dropout against the
  completers'.

The imputation model is the MMRM ``visit * (group + baseline + covariates)``: every covariate
interacted with visit, so that under MAR the imputation reproduces it exactly (the theorem
tested in ``tests/lmm/test_reference_based.py``) when its ``Sigma`` is shared by the groups
(the default; ``covariance_by_group = true`` fits one per group, rbmi's ``same_cov = FALSE``).
The per-visit analysis of the completed data is the ANCOVA ``group + baseline + covariates``.

Intercurrent events recorded in the data
----------------------------------------
* ``discontinued``: the patient's assessments stop before the last visit; the event is at the
  first visit after the last one attended (intermittent missed visits before it are MAR).
* ``protocol_deviation``: the patient flag; it carries no date, so it is placed at the first
  post-baseline visit.
* ``co_intervention``: the assessment column ``co_intervention_started`` (the patient started a
  co-intervention or medication since the previous assessment). It happened after the patient's
  previous assessment, so the event is at the first visit after that one (the visit of the
  report itself when no visit was missed in between). A study whose assessments do not record
  it (the column absent or empty) has the event declared but assigned to nobody, and the
  report says so; the sessions' free-text co-interventions are never read (privacy).

Strategies (ICH E9(R1)): *treatment policy* keeps what was observed after the event and imputes
what is missing under the event's ``imputation`` (default J2R); *hypothetical* and *while on
treatment* set the values after the event aside and impute them (default MAR and LMCF).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.analyses.headline import classify
from pipeline.config.estimand import EstimandSettings, IntercurrentEvent
from pipeline.config.settings import Config
from pipeline.config.study import Comparison, Outcome
from pipeline.lmm.blas import single_threaded
from pipeline.lmm.data import quote_name
from pipeline.lmm.mmrm import MmrmFit, fit_mmrm
from pipeline.lmm.reference_based import (
    STRATEGIES,
    CmiResult,
    build_cmi_data,
    conditional_mean_imputation,
    jackknife_groups,
    multiple_imputation,
)
from pipeline.schemas.outputs import SENSITIVITY_MISSING_COLUMNS, TIPPING_POINT_COLUMNS

__all__ = [
    "ICE_COLUMNS",
    "MissingDataResult",
    "ResolvedEstimand",
    "co_intervention_visits",
    "discontinuation_visits",
    "intercurrent_events",
    "jackknife_words",
    "missing_data_analysis",
    "patient_groups",
    "portable_missing_data_analysis",
    "resolve_estimand",
]

ICE_COLUMNS = ["patient_id", "event", "visit", "strategy", "imputation"]
"""Columns of :attr:`MissingDataResult.events`: each patient's first intercurrent event."""

SUBJECT = "patient_id"
VISIT = "visit_c"


@dataclass(frozen=True)
class ResolvedEstimand:
    """The estimand with every default filled from the study.

    Attributes
    ----------
    settings : EstimandSettings
        As configured (or the defaults).
    outcome : Outcome
        The outcome.
    comparison : Comparison
        The comparison; ``level`` is compared with ``comparison.reference``.
    level : str
        The compared level (the first non-reference level).
    levels : tuple of str
        The comparison's levels present in the data, reference first.
    visit : int
        Visit number of the estimand.
    population : str
        Words for the population.
    covariates : tuple of str
        Baseline covariates of the model (``[model] covariates``).
    """

    settings: EstimandSettings
    outcome: Outcome
    comparison: Comparison
    level: str
    levels: tuple[str, ...]
    visit: int
    population: str
    covariates: tuple[str, ...]

    @property
    def mcid(self) -> float:
        """The outcome's MCID in points (NaN when only a percentage is declared)."""
        points = self.outcome.mcid.points
        return float(points) if points is not None else float("nan")


@dataclass(frozen=True, eq=False)
class MissingDataResult:
    """Result of :func:`missing_data_analysis`.

    Attributes
    ----------
    estimand : ResolvedEstimand
        What was estimated.
    sensitivity : pandas.DataFrame
        ``sensitivity_missing`` (:class:`pipeline.schemas.outputs.SensitivityMissing`).
    tipping : pandas.DataFrame
        ``tipping_point`` (:class:`pipeline.schemas.outputs.TippingPoint`).
    tipping_deltas : dict
        ``significance`` and ``verdict``: the delta nearest zero, in the direction that moves
        the MAR estimate towards no difference, at which its significance (two-sided 5 %) or
        its MCID verdict changes; searched out to :data:`TIPPING_SEARCH` MCIDs (NaN beyond).
    events : pandas.DataFrame
        Each patient's first intercurrent event (:data:`ICE_COLUMNS`).
    event_counts : pandas.DataFrame
        ``event, strategy, imputation, patients, recorded`` for every declared event.
    dropout_pattern : pandas.DataFrame
        ``group, last_visit, patients, percent``.
    dropout_km : pandas.DataFrame
        ``group, visit, at_risk, dropped, retained`` (Kaplan-Meier).
    last_value : pandas.DataFrame
        ``group, status, patients, mean_change, sd_change, mean_baseline``.
    fit : MmrmFit
        The imputation MMRM.
    cmi : CmiResult
        The conditional mean imputation and its jackknife.
    seconds : dict
        Wall and CPU seconds of the fit, the CMI block and the whole analysis.
    """

    estimand: ResolvedEstimand
    sensitivity: pd.DataFrame
    tipping: pd.DataFrame
    tipping_deltas: dict[str, float]
    events: pd.DataFrame
    event_counts: pd.DataFrame
    dropout_pattern: pd.DataFrame
    dropout_km: pd.DataFrame
    last_value: pd.DataFrame
    fit: MmrmFit = field(repr=False)
    cmi: CmiResult = field(repr=False)
    seconds: dict[str, float] = field(default_factory=dict)


def resolve_estimand(
    config: Config, data: pd.DataFrame, settings: EstimandSettings | None = None
) -> ResolvedEstimand:
    """Fill the estimand's defaults from the study (outcome, comparison, visit, population).

    Raises
    ------
    ValueError
        When the comparison has fewer than two levels in the data or the visit is absent.
    """
    settings = settings or config.estimand or EstimandSettings()
    study = config.study
    assert study is not None  # Config.__post_init__ fills it
    outcome = study.outcome(settings.outcome) if settings.outcome else study.outcomes[0]
    comparison = (
        study.comparison(settings.comparison) if settings.comparison else study.comparisons[0]
    )
    present = [str(v) for v in pd.unique(data[comparison.column].dropna())]
    levels = [lv for lv in comparison.levels if lv in present] or sorted(present)
    others = [lv for lv in levels if lv != comparison.reference]
    if comparison.reference not in present or not others:
        raise ValueError(
            f"the comparison {comparison.name!r} needs its reference {comparison.reference!r} "
            f"and another level in the data; found {present}"
        )
    visits = sorted(int(v) for v in data.loc[data["visit"] > 0, "visit"].unique())
    visit = settings.visit or study.time.primary_visit or visits[-1]
    if visit not in visits:
        raise ValueError(f"the estimand's visit {visit} is not among the visits {visits}")
    if settings.population:
        population = settings.population
    elif study.design == "trial":
        population = "all randomised patients with a baseline score"
    else:
        population = "all patients who started needling with a baseline score"
    return ResolvedEstimand(
        settings=settings,
        outcome=outcome,
        comparison=comparison,
        level=others[0],
        levels=(comparison.reference, *others),
        visit=int(visit),
        population=population,
        covariates=tuple(c for c in config.model.covariates if c in data.columns),
    )


def _wide(data: pd.DataFrame, est: ResolvedEstimand) -> tuple[pd.DataFrame, np.ndarray, list]:
    """Patients analysed (one row each) and their post-baseline responses ``(n, T)``."""
    column = est.outcome.column
    baseline = f"{column}_baseline"
    group = est.comparison.column
    patient_cols = [SUBJECT, group, baseline, *est.covariates]
    patients = (
        data.sort_values([SUBJECT, "visit"])
        .groupby(SUBJECT, sort=True, observed=True)[patient_cols[1:]]
        .first()
        .reset_index()
    )
    patients = patients.dropna(subset=patient_cols[1:])
    patients = patients[patients[group].astype(str).isin(est.levels)].reset_index(drop=True)
    if patients.empty:
        raise ValueError(f"no patient has a baseline {column} and the model's covariates")
    patients[group] = pd.Categorical(patients[group].astype(str), categories=list(est.levels))
    for c in est.covariates:  # a declared level nobody has would be an empty design column
        if isinstance(patients[c].dtype, pd.CategoricalDtype):
            patients[c] = patients[c].cat.remove_unused_categories()
    visits = sorted(int(v) for v in data.loc[data["visit"] > 0, "visit"].unique())
    post = data.loc[data["visit"] > 0, [SUBJECT, "visit", column]].dropna()
    wide = post.pivot_table(index=SUBJECT, columns="visit", values=column, aggfunc="first")
    wide = wide.reindex(index=patients[SUBJECT], columns=visits)
    return patients, wide.to_numpy(dtype=float), visits


def co_intervention_visits(data: pd.DataFrame, patients: pd.DataFrame, visits: list) -> np.ndarray:
    """First post-ICE visit index of each patient's reported co-intervention (module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set: ``patient_id``, ``visit`` and, when recorded,
        ``co_intervention_started``.
    patients : pandas.DataFrame
        One row per patient analysed (``patient_id``).
    visits : list of int
        The post-baseline visit numbers, in order (the columns of the responses).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` index into ``visits`` of the first visit after the assessment preceding the
        first report (``len(visits)``: no report).
    """
    t = len(visits)
    out = np.full(len(patients), t)
    if "co_intervention_started" not in data:
        return out
    rows = data[[SUBJECT, "visit", "co_intervention_started"]].sort_values(
        [SUBJECT, "visit"], kind="stable"
    )
    previous = rows.groupby(SUBJECT, observed=True)["visit"].shift(1)
    started = rows["co_intervention_started"].astype("boolean").fillna(False).to_numpy(bool)
    reports = rows.assign(previous=previous)[started & (rows["visit"] > 0).to_numpy()]
    first = reports.drop_duplicates(SUBJECT, keep="first").set_index(SUBJECT)["previous"]
    reported = patients[SUBJECT].isin(first.index).to_numpy()
    # no earlier assessment in the data: the event is placed at the first visit
    before = first.astype("float64").reindex(patients[SUBJECT]).fillna(-np.inf).to_numpy()
    index = np.searchsorted(np.asarray(visits, dtype=float), before, side="right")
    return np.where(reported, index, out)


def discontinuation_visits(y: np.ndarray) -> np.ndarray:
    """First visit index after each patient's last observed one (``T``: attended the last).

    Parameters
    ----------
    y : numpy.ndarray
        ``(n, T)`` post-baseline responses, NaN where missing.

    Returns
    -------
    numpy.ndarray
        ``(n,)``; 0 for a patient with no post-baseline value.
    """
    t = y.shape[1]
    observed = ~np.isnan(y)
    last = np.where(observed.any(axis=1), t - 1 - np.argmax(observed[:, ::-1], axis=1), -1)
    return np.where(last < t - 1, last + 1, t)


def intercurrent_events(
    patients: pd.DataFrame,
    y: np.ndarray,
    events: tuple[IntercurrentEvent, ...],
    flags: pd.Series,
    co_intervention: np.ndarray | None = None,
) -> pd.DataFrame:
    """Each patient's first intercurrent event among the declared ones (module docstring).

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient (``patient_id``).
    y : numpy.ndarray
        ``(n, T)`` post-baseline responses.
    events : tuple of IntercurrentEvent
        The declared events, in order (ties go to the first declared).
    flags : pandas.Series
        ``protocol_deviation`` per patient (aligned with ``patients``; may be all NA).
    co_intervention : numpy.ndarray, optional
        ``(n,)`` first post-ICE visit index of a reported co-intervention
        (:func:`co_intervention_visits`; default: nobody).

    Returns
    -------
    pandas.DataFrame
        :data:`ICE_COLUMNS`; ``visit`` is the index of the first visit after the event
        (``T``: no event), ``event`` empty when none.
    """
    n, t = y.shape
    when = {
        "discontinued": discontinuation_visits(y),
        "protocol_deviation": np.where(flags.fillna(False).astype(bool).to_numpy(), 0, t),
        "co_intervention": (
            np.full(n, t) if co_intervention is None else np.asarray(co_intervention, dtype=int)
        ),
    }
    first = np.full(n, t)
    which = np.full(n, -1)
    for k, ev in enumerate(events):
        at = when[ev.event]
        better = at < first
        first = np.where(better, at, first)
        which = np.where(better, k, which)
    return pd.DataFrame(
        {
            "patient_id": patients[SUBJECT].to_numpy(),
            "event": [events[k].event if k >= 0 else "" for k in which],
            "visit": first,
            "strategy": [events[k].strategy if k >= 0 else "" for k in which],
            "imputation": [events[k].imputation if k >= 0 else "MAR" for k in which],
        }
    )


def _fit_imputation_model(
    patients: pd.DataFrame, y: np.ndarray, visits: list, est: ResolvedEstimand
) -> tuple[MmrmFit, str]:
    group = est.comparison.column
    baseline = f"{est.outcome.column}_baseline"
    n, t = y.shape
    long = patients.loc[patients.index.repeat(t)].reset_index(drop=True)
    long[VISIT] = pd.Categorical(np.tile(visits, n), categories=visits)
    long["response"] = y.ravel()
    long = long.dropna(subset=["response"])
    term = f"C({quote_name(group)}, Treatment({est.comparison.reference!r}))"
    inner = " + ".join([term, quote_name(baseline), *(quote_name(c) for c in est.covariates)])
    fit = fit_mmrm(
        long,
        "response",
        f"{VISIT} * ({inner})",
        VISIT,
        SUBJECT,
        df_method="z",
        covariance_group=group if est.settings.covariance_by_group else None,
    )
    return fit, inner


def _jackknife_row(
    cmi: CmiResult, s: int, t: int, delta: np.ndarray
) -> tuple[float, float, float, float, float]:
    """Estimate, SE, 95 % CI and p of one row (normal, or ``t`` with ``G - 1`` df if grouped)."""
    est = float(cmi.shifted(delta)[s, 0, t])
    se = float(cmi.std_err(delta)[s, 0, t])
    z = cmi.critical_value(0.95)
    p = float(cmi.p_values(np.array(est), np.array(se)))
    return est, se, est - z * se, est + z * se, p


def jackknife_words(cmi: CmiResult) -> str:
    """Name the jackknife of a CMI result, e.g. ``delete-a-group jackknife SE (500 groups)``."""
    if cmi.leave_one_out:
        return "jackknife SE"
    return f"delete-a-group jackknife SE ({cmi.replicates} groups)"


def patient_groups(patients: pd.DataFrame, settings: EstimandSettings) -> np.ndarray | None:
    """Delete-a-group jackknife groups of the patients, or None for leave-one-out.

    A study of at most ``settings.jackknife_groups`` patients gets the leave-one-out jackknife;
    above, :func:`pipeline.lmm.reference_based.jackknife_groups` deals the patients into that
    many groups by a seeded hash of their identifiers (independent of the rows' order).
    """
    if len(patients) <= settings.jackknife_groups:
        return None
    keys = patients[SUBJECT].astype(str).tolist()
    return jackknife_groups(keys, settings.jackknife_groups, settings.jackknife_seed)


TIPPING_SEARCH = 20.0
"""The tipping deltas are searched out to this many MCIDs (points when there is no MCID)."""


def _tipping(
    cmi: CmiResult, est: ResolvedEstimand, t: int, labels: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Return the MAR estimate over the delta grid and the deltas where the conclusion changes."""
    s = cmi.strategies.index("MAR")
    settings = est.settings
    mcid = est.mcid if np.isfinite(est.mcid) else np.inf
    scale = est.mcid if np.isfinite(est.mcid) else 1.0
    shift = np.zeros(cmi.slope.shape[-1])
    if settings.tipping_groups in ("level", "both"):
        shift[1] = 1.0  # the compared level is the first non-reference group
    if settings.tipping_groups in ("reference", "both"):
        shift[0] = 1.0
    z = cmi.critical_value(0.95)
    e0, a = float(cmi.estimate[s, 0, t]), float(cmi.slope[s, 0, t] @ shift)
    jk = cmi.jackknife[:, s, 0, t]
    jk_a = cmi.slope_jackknife[:, s, 0, t] @ shift
    n = jk.size

    def evaluate(deltas: np.ndarray) -> tuple[np.ndarray, ...]:
        values = jk[:, None] + jk_a[:, None] * deltas[None, :]
        dev = values - values.mean(axis=0)
        se = np.sqrt((n - 1) / n * np.sum(dev**2, axis=0))
        estimate = e0 + a * deltas
        p = cmi.p_values(estimate, se)
        low, high = estimate - z * se, estimate + z * se
        verdict = np.array(
            [classify(e, lo, hi, mcid).value for e, lo, hi in zip(estimate, low, high, strict=True)]
        )
        return estimate, se, low, high, p, p < 0.05, verdict

    found: dict[str, float] = {"significance": np.nan, "verdict": np.nan}
    base = evaluate(np.zeros(1))
    # The direction that moves the estimate towards (and past) no difference.
    sign = -np.sign(a * e0) if a * e0 != 0 else 1.0
    fine = sign * np.linspace(0.0, TIPPING_SEARCH * scale, 4001)
    for key, index in (("significance", 5), ("verdict", 6)):
        changed = evaluate(fine)[index] != base[index][0]
        if not changed.any():
            continue
        k = int(np.argmax(changed))
        lo, hi = float(fine[k - 1]), float(fine[k])
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            if evaluate(np.array([mid]))[index][0] != base[index][0]:
                hi = mid
            else:
                lo = mid
        found[key] = hi
    reach = settings.tipping_range
    if reach is None:
        far = [abs(v) / scale for v in found.values() if np.isfinite(v)]
        reach = float(np.ceil(1.25 * max(far) * 2) / 2) if far else 1.0
    grid = np.linspace(-reach, reach, settings.tipping_deltas) * scale
    cols = evaluate(grid)
    table = pd.DataFrame(
        {
            **{k: [v] * grid.size for k, v in labels.items()},
            "shifted": settings.tipping_groups,
            "delta": grid,
            "estimate": cols[0],
            "std_err": cols[1],
            "ci_low": cols[2],
            "ci_high": cols[3],
            "p_value": cols[4],
            "significant": cols[5],
            "verdict": cols[6],
        }
    )[TIPPING_POINT_COLUMNS]
    return table, found


def _dropout_tables(
    patients: pd.DataFrame, y: np.ndarray, visits: list, est: ResolvedEstimand
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    group = patients[est.comparison.column].astype(str).to_numpy()
    n, t = y.shape
    observed = ~np.isnan(y)
    last_idx = np.where(observed.any(axis=1), t - 1 - np.argmax(observed[:, ::-1], axis=1), -1)
    last_visit = np.where(last_idx >= 0, np.array(visits)[np.clip(last_idx, 0, t - 1)], 0)
    pattern_rows, km_rows, value_rows = [], [], []
    baseline = patients[f"{est.outcome.column}_baseline"].to_numpy(dtype=float)
    last_value = np.where(last_idx >= 0, y[np.arange(n), np.clip(last_idx, 0, t - 1)], np.nan)
    change = last_value - baseline
    for g in est.levels:
        mask = group == g
        if not mask.any():
            continue
        total = int(mask.sum())
        for v in [0, *visits]:
            k = int(np.sum(last_visit[mask] == v))
            pattern_rows.append([g, int(v), k, 100.0 * k / total])
        surv = 1.0
        for pos, v in enumerate([0, *visits[:-1]]):
            at_risk = int(np.sum(mask & (last_idx >= pos - 1)))
            dropped = int(np.sum(mask & (last_idx == pos - 1)))
            surv *= 1.0 - dropped / at_risk if at_risk else 1.0
            km_rows.append([g, int(v), at_risk, dropped, surv])
        for status, sel in (
            ("completer", mask & (last_idx == t - 1)),
            ("dropped out", mask & (last_idx >= 0) & (last_idx < t - 1)),
        ):
            vals = change[sel]
            value_rows.append(
                [
                    g,
                    status,
                    int(sel.sum()),
                    float(np.mean(vals)) if vals.size else np.nan,
                    float(np.std(vals, ddof=1)) if vals.size > 1 else np.nan,
                    float(np.mean(baseline[sel])) if sel.any() else np.nan,
                ]
            )
    return (
        pd.DataFrame(pattern_rows, columns=["group", "last_visit", "patients", "percent"]),
        pd.DataFrame(km_rows, columns=["group", "visit", "at_risk", "dropped", "retained"]),
        pd.DataFrame(
            value_rows,
            columns=["group", "status", "patients", "mean_change", "sd_change", "mean_baseline"],
        ),
    )


@single_threaded()  # per-pattern products: threads cost more than they save
def missing_data_analysis(
    data: pd.DataFrame, config: Config, settings: EstimandSettings | None = None
) -> MissingDataResult:
    """Estimand, reference-based sensitivity, tipping point and dropout description.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set (``Study.data``): one row per assessment with ``patient_id``,
        ``visit`` (0 = baseline), the outcome, ``<outcome>_baseline``, the comparison's column,
        the covariates and ``protocol_deviation``.
    config : Config
        The study's configuration (outcomes, comparisons, covariates, MCIDs).
    settings : EstimandSettings, optional
        Overrides ``config.estimand`` (default: it, else the defaults).

    Returns
    -------
    MissingDataResult
    """
    started, cpu0 = time.perf_counter(), time.process_time()
    est = resolve_estimand(config, data, settings)
    patients, y, visits = _wide(data, est)
    t = visits.index(est.visit)
    flags = (
        data.groupby(SUBJECT, observed=True)["protocol_deviation"].first()
        if "protocol_deviation" in data
        else pd.Series(dtype="boolean")
    )
    flags = flags.reindex(patients[SUBJECT]).reset_index(drop=True)
    co_intervention = co_intervention_visits(data, patients, visits)
    events = intercurrent_events(patients, y, est.settings.events, flags, co_intervention)
    ice = events["visit"].to_numpy(dtype=int)
    # The strategy rows impute every patient who stopped coming under the strategy, whatever
    # event came first (a deviation or a co-intervention does not make their dropout MAR).
    stopped_ice = discontinuation_visits(y)
    discontinued = stopped_ice < y.shape[1]
    # Hypothetical and while-on-treatment set the values after the event aside.
    set_aside = events["strategy"].isin(["hypothetical", "while on treatment"]).to_numpy()
    post = np.arange(y.shape[1])[None, :] >= ice[:, None]
    y_estimand = np.where(set_aside[:, None] & post, np.nan, y)

    fit_started = time.perf_counter()
    fit, inner = _fit_imputation_model(patients, y, visits, est)
    fit_seconds = time.perf_counter() - fit_started
    group = est.comparison.column
    reference = est.comparison.reference
    ancova = inner
    data_all = build_cmi_data(fit, patients, y, group, reference, ancova, stopped_ice)
    strategies = {
        s: np.where(discontinued, s, "MAR") for s in STRATEGIES if s in est.settings.strategies
    }
    strategies.setdefault("MAR", np.full(len(patients), "MAR"))
    cmi_started, cmi_cpu = time.perf_counter(), time.process_time()
    jackknife = est.settings.jackknife
    jk_groups = patient_groups(patients, est.settings)
    per_patient = events["imputation"].to_numpy()
    global_strategies = dict(strategies)  # (the multiple imputation's: without the estimand's)
    # The estimand sets nothing aside: its per-patient strategies share the same fit.
    shares_fit = np.array_equal(np.isnan(y_estimand), np.isnan(y))
    if shares_fit:
        strategies["estimand"] = (per_patient, ice)
    cmi = conditional_mean_imputation(
        fit, data_all, strategies, jackknife=jackknife, groups=jk_groups
    )
    cmi_seconds = time.perf_counter() - cmi_started
    cmi_cpu_seconds = time.process_time() - cmi_cpu
    settings_mi = est.settings.mi_imputations
    mi = (
        multiple_imputation(
            fit, data_all, global_strategies, m=settings_mi, seed=est.settings.mi_seed
        )
        if settings_mi > 0
        else None
    )
    # The imputation data's designs (two (patients, visits, coefficients) arrays, about 400 MB
    # at 100,000 patients) are let go before the estimand's own are built.
    del data_all
    if shares_fit:
        cmi_est, est_index = cmi, cmi.strategies.index("estimand")
    else:
        cmi_started, cmi_cpu = time.perf_counter(), time.process_time()
        est_fit, _ = _fit_imputation_model(patients, y_estimand, visits, est)
        data_est = build_cmi_data(est_fit, patients, y_estimand, group, reference, ancova, ice)
        cmi_est = conditional_mean_imputation(
            est_fit, data_est, {"estimand": per_patient}, jackknife=jackknife, groups=jk_groups
        )
        del data_est
        est_index = 0
        cmi_seconds += time.perf_counter() - cmi_started
        cmi_cpu_seconds += time.process_time() - cmi_cpu

    z = float(stats.norm.ppf(0.975))
    mcid = est.mcid if np.isfinite(est.mcid) else np.inf
    labels = {
        "outcome": est.outcome.name,
        "comparison": est.comparison.name,
        "contrast": f"{est.level} - {reference}",
        "visit": est.visit,
    }
    level_rows = (patients[group].astype(str) == est.level) | (
        patients[group].astype(str) == reference
    )
    n_patients = int(level_rows.sum())
    n_imputed = int(np.sum(np.isnan(y[:, t]) & level_rows.to_numpy()))
    rows = []
    mmrm = fit.visit_differences(group, est.level, reference).iloc[t]
    rows.append(
        [
            *labels.values(),
            "MMRM",
            "likelihood (MMRM, missing at random)",
            float(mmrm["estimate"]),
            float(mmrm["std_err"]),
            float(mmrm["ci_low"]),
            float(mmrm["ci_high"]),
            float(mmrm["p_value"]),
            classify(mmrm["estimate"], mmrm["ci_low"], mmrm["ci_high"], mcid).value,
            n_patients,
            0,  # the likelihood analysis imputes nothing
        ]
    )
    method = f"conditional mean imputation, {jackknife_words(cmi)}"
    for s, name in enumerate(cmi.strategies):
        if name == "estimand":
            continue
        e, se, lo, hi, p = _jackknife_row(cmi, s, t, np.zeros(cmi.slope.shape[-1]))
        rows.append(
            [
                *labels.values(),
                name,
                method,
                e,
                se,
                lo,
                hi,
                p,
                classify(e, lo, hi, mcid).value,
                n_patients,
                n_imputed,
            ]
        )
    e, se, lo, hi, p = _jackknife_row(cmi_est, est_index, t, np.zeros(cmi.slope.shape[-1]))
    n_imputed_est = int(np.sum(np.isnan(y_estimand[:, t]) & level_rows.to_numpy()))
    rows.append(
        [
            *labels.values(),
            "estimand",
            method,
            e,
            se,
            lo,
            hi,
            p,
            classify(e, lo, hi, mcid).value,
            n_patients,
            n_imputed_est,
        ]
    )
    if mi is not None:
        mi_method = f"bootstrapped multiple imputation ({settings_mi}), Rubin's rules"
        for s, name in enumerate(mi.strategies):
            e, se, dfs = (float(v[s, 0, t]) for v in (mi.estimate, mi.std_err, mi.df))
            q = float(stats.t.ppf(0.975, dfs)) if np.isfinite(dfs) else z
            lo, hi = e - q * se, e + q * se
            p = float(2 * stats.t.sf(abs(e) / se, dfs)) if se > 0 else float("nan")
            cells = [e, se, lo, hi, p, classify(e, lo, hi, mcid).value, n_patients, n_imputed]
            rows.append([*labels.values(), name, mi_method, *cells])
    sensitivity = pd.DataFrame(rows, columns=SENSITIVITY_MISSING_COLUMNS)
    sensitivity["visit"] = sensitivity["visit"].astype("Int64")
    sensitivity[["n_patients", "n_imputed"]] = sensitivity[["n_patients", "n_imputed"]].astype(
        "Int64"
    )
    tipping, deltas = _tipping(cmi, est, t, labels)
    tipping["visit"] = tipping["visit"].astype("Int64")
    pattern, km, last = _dropout_tables(patients, y, visits, est)
    recorded = {
        "discontinued": True,
        "protocol_deviation": True,
        "co_intervention": "co_intervention_started" in data
        and bool(data["co_intervention_started"].notna().any()),
    }
    counts = []
    for ev in est.settings.events:
        k = int((events["event"] == ev.event).sum())
        counts.append([ev.event, ev.strategy, ev.imputation, k, recorded[ev.event]])
    event_counts = pd.DataFrame(
        counts, columns=["event", "strategy", "imputation", "patients", "recorded"]
    )
    return MissingDataResult(
        estimand=est,
        sensitivity=sensitivity,
        tipping=tipping,
        tipping_deltas=deltas,
        events=events,
        event_counts=event_counts,
        dropout_pattern=pattern,
        dropout_km=km,
        last_value=last,
        fit=fit,
        cmi=cmi,
        seconds={
            "fit": fit_seconds,
            "cmi_wall": cmi_seconds,
            "cmi_cpu": cmi_cpu_seconds,
            "total_wall": time.perf_counter() - started,
            "total_cpu": time.process_time() - cpu0,
        },
    )


def portable_missing_data_analysis(data: pd.DataFrame, config: Config) -> MissingDataResult:
    """Run :func:`missing_data_analysis`; return it with the imputation fit without its rows.

    For a run that computes the block in a process of its own
    (:class:`pipeline.analyses.alongside.Alongside`): the result is pickled back, and the
    report needs of the imputation model only its numbers and formula
    (:meth:`pipeline.lmm.mmrm.MmrmFit.without_data`).
    """
    result = missing_data_analysis(data, config)
    return dataclasses.replace(result, fit=result.fit.without_data())
