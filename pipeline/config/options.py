"""How the run goes: where it writes, the exposure cut-offs, the models, privacy and the engine.

The sections ``[outputs]`` (required, two folders: :func:`~pipeline.config.settings.load_config`
reads them), ``[thresholds]``, ``[model]``, ``[privacy]``, ``[engine]``, ``[report]`` and
``[federation]`` (optional, each read by its ``load_*``), each as a frozen dataclass; a key left
out takes the default of its dataclass field. Nothing happens at import time.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.study import BUILT_IN_COVARIATES, INSTRUMENTS, Study
from pipeline.config.toml_values import (
    fail,
    get_choice,
    get_flag,
    get_number,
    get_path,
    get_section,
    get_text,
    get_whole,
)

TIME_AXES = ("weeks", "sessions")
DF_METHODS = ("satterthwaite", "z")
MMRM_STRUCTURES = ("us", "toep", "toeph", "ar1", "ar1h", "cs", "csh", "ad", "adh")
"""Residual covariance structures of the MMRM (the names of
:data:`pipeline.lmm.covariance.STRUCTURES`; the configuration does not import the engine)."""
MMRM_FALLBACK = ("us", "toeph", "ar1h", "csh", "cs")
"""The pre-specified fallback order of SAP §4.6
(:data:`pipeline.lmm.covariance.DEFAULT_FALLBACK`)."""
MMRM_DF_METHODS = (
    "kenward-roger",
    "kenward-roger-linear",
    "satterthwaite",
    "residual",
    "between-within",
    "z",
)
"""Degrees of freedom of the MMRM's tests (:data:`pipeline.lmm.mmrm.DF_METHODS`)."""
SITE_EFFECTS = ("auto", "random", "fixed", "none")


@dataclass(frozen=True)
class Outputs:
    """Folders the pipeline writes to."""

    processed: Path
    reports: Path

    @property
    def quarantine(self) -> Path:
        """Folder of the per-table quarantine CSVs."""
        return self.processed / "quarantine"

    @property
    def tables(self) -> Path:
        """Folder of the tidy result tables."""
        return self.reports / "tables"


@dataclass(frozen=True)
class Thresholds:
    """Cut-offs that turn session-level facts into patient-level exposure groups."""

    twitch_share: float = 0.5
    deep_share: float = 0.5
    odi_max_missing_sections: int = 1
    acute_below_weeks: float = 6.0
    chronic_above_weeks: float = 12.0


@dataclass(frozen=True)
class ModelSettings:
    """How the mixed models are specified.

    ``mmrm_structures`` is the residual covariance of the visit-level model (the MMRM of SAP
    §4.6): the structures tried in order until one converges; ``mmrm_df_method`` its degrees of
    freedom (Kenward-Roger by default, as the SAP asks of a trial's primary analysis).
    """

    time_axis: str = "weeks"
    covariates: tuple[str, ...] = ("chronicity",)
    random_slope: bool = True
    df_method: str = "satterthwaite"
    site: str = "auto"
    min_sites_random: int = 5
    mmrm_structures: tuple[str, ...] = MMRM_FALLBACK
    mmrm_df_method: str = "kenward-roger"


AUDIENCES = ("publication", "internal")


@dataclass(frozen=True)
class PrivacySettings:
    """Pseudonym key, audience and small-cell threshold (see :mod:`pipeline.privacy.suppression`).

    ``audience`` is ``"publication"`` (default: small counts of patients are suppressed) or
    ``"internal"`` (exact counts, and the report says it is for internal use only).
    """

    key_env: str = "NEEDLING_PSEUDONYM_KEY"
    key_file: Path | None = None
    demo_key: bool = False
    small_cell_threshold: int = 5
    audience: str = "publication"
    keep_free_text: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineSettings:
    """How the data are processed and the models fitted.

    ``workers`` is the number of processes fitting models (and, after the fits, answering the
    clinic questions and building the report's sections:
    :mod:`pipeline.analyses.side_by_side`) at a time (0: one per core); each holds one model's
    design, so fewer workers need less memory; 1 does everything in the run's own process.
    ``cache_key_file`` is the HMAC key that authenticates the fit cache (default:
    ``$NEEDLING_CACHE_KEY_FILE``, else ``$XDG_CONFIG_HOME/needling-outcomes/cache.key``, see
    :mod:`pipeline.analyses.cache`).

    ``backend`` chooses the engine (docs/scale.md): ``pandas`` (the default: every table in
    memory in one process), ``polars`` (out of core on one machine: the raw tables are split
    by patient hash into Parquet partitions by Polars' streaming engine and processed one
    partition at a time; a model's per-evaluation sums over the partitions run on ``workers``
    threads) or ``dask`` (the partitions are processed and the models reduced on
    a Dask distributed cluster). ``scheduler`` is ``"local"`` (a ``LocalCluster`` of
    ``workers`` processes on this machine, ``worker_memory`` each) or the address of an
    existing scheduler, ``"tcp://host:8786"``; ``partition_size`` is the number of patients
    per partition.
    """

    workers: int = 0
    cache_key_file: Path | None = None
    backend: str = "pandas"
    scheduler: str = "local"
    partition_size: int = 100_000
    worker_memory: str = "4GB"


@dataclass(frozen=True)
class ReportSettings:
    """How the report is rendered."""

    pdf: bool = True
    browser: Path | None = None
    spaghetti_patients: int = 12
    planning: bool = False


@dataclass(frozen=True)
class FederationSettings:
    """How a clinic's share file for a multi-clinic network is built (:mod:`pipeline.federate`).

    Attributes
    ----------
    schedule : tuple of (int, float)
        Visit number -> nominal time on the model's time axis (weeks or sessions), ascending;
        empty when not configured (``outcomes share`` then refuses to run).
    min_patients_per_cell : int
        Fewest patients behind any statistic in the share file.
    outcomes : tuple of str
        Instruments of the shared trajectory models.
    groups : tuple of str
        Patient-level groups (depth, twitch) of the shared trajectory models.
    clinic_effect : str
        ``fixed`` (clinic indicators), ``random`` (clinic random intercept) or ``none`` in the
        pooled model.
    clinic : str
        Name of the clinic in the pooled report; empty: the site name(s) of its data.
    """

    schedule: tuple[tuple[int, float], ...] = ()
    min_patients_per_cell: int = 5
    outcomes: tuple[str, ...] = ("nrs", "vas", "odi")
    groups: tuple[str, ...] = ("depth",)
    clinic_effect: str = "fixed"
    clinic: str = ""


def _mmrm_structures(section: dict, path: Path, default: tuple[str, ...]) -> tuple[str, ...]:
    """``[model] mmrm_structures``: a non-empty list of distinct structure names, tried in order."""
    value = section.get("mmrm_structures", list(default))
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or any(v not in MMRM_STRUCTURES for v in value)
        or len(set(value)) != len(value)
    ):
        raise fail(
            path,
            "model.mmrm_structures",
            f"must be a list of distinct structures from {', '.join(MMRM_STRUCTURES)}, tried in "
            f"order, got {value!r}",
        )
    return tuple(value)


CLINIC_EFFECTS = ("fixed", "random", "none")


def _names(section: dict, key: str, path: Path, allowed: tuple, default: tuple) -> tuple:
    value = section.get(key, list(default))
    if not isinstance(value, list) or not value or any(v not in allowed for v in value):
        raise fail(
            path,
            f"federation.{key}",
            f"must be a non-empty list drawn from {', '.join(allowed)}, got {value!r}",
        )
    return tuple(dict.fromkeys(value))


def load_federation(raw: dict[str, Any], path: Path) -> FederationSettings:
    """Read the optional ``[federation]`` section (share files of a clinic network)."""
    section = get_section(raw, "federation", path, FederationSettings, required=False)
    d = FederationSettings()
    schedule_raw = section.get("schedule", {})
    if not isinstance(schedule_raw, dict):
        raise fail(
            path, "federation.schedule", "must map visit numbers to times, e.g. { 0 = 0, 1 = 2 }"
        )
    pairs = []
    for visit, time in schedule_raw.items():
        if not str(visit).isdigit():
            raise fail(path, "federation.schedule", f"{visit!r} is not a visit number")
        if isinstance(time, bool) or not isinstance(time, int | float) or time < 0:
            raise fail(
                path, f"federation.schedule.{visit}", f"must be a time of at least 0, got {time!r}"
            )
        pairs.append((int(visit), float(time)))
    pairs.sort()
    times = [t for _, t in pairs]
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise fail(path, "federation.schedule", "times must increase with the visit number")
    clinic = section.get("clinic", d.clinic)
    if not isinstance(clinic, str):
        raise fail(path, "federation.clinic", f"must be a name in quotes, got {clinic!r}")
    return FederationSettings(
        schedule=tuple(pairs),
        min_patients_per_cell=get_whole(
            section, "min_patients_per_cell", path, "federation", d.min_patients_per_cell, 3, 10**6
        ),
        outcomes=_names(section, "outcomes", path, INSTRUMENTS, d.outcomes),
        groups=_names(section, "groups", path, ("depth", "twitch"), d.groups),
        clinic_effect=get_choice(
            section, "clinic_effect", path, "federation", d.clinic_effect, CLINIC_EFFECTS
        ),
        clinic=clinic.strip(),
    )


def load_privacy(raw: dict[str, Any], path: Path) -> PrivacySettings:
    """Read the optional ``[privacy]`` section (pseudonym key and small-cell threshold)."""
    section = get_section(raw, "privacy", path, PrivacySettings, required=False)
    d = PrivacySettings()
    key_env = section.get("key_env", d.key_env)
    if not isinstance(key_env, str) or not key_env.strip():
        raise fail(path, "privacy.key_env", "must be the name of an environment variable")
    return PrivacySettings(
        key_env=key_env,
        key_file=get_path(section, "key_file", path, "privacy") if "key_file" in section else None,
        demo_key=get_flag(section, "demo_key", path, "privacy", d.demo_key),
        small_cell_threshold=get_whole(
            section, "small_cell_threshold", path, "privacy", d.small_cell_threshold, 0, 1000
        ),
        audience=get_choice(section, "audience", path, "privacy", d.audience, AUDIENCES),
        keep_free_text=_free_text(section, path),
    )


def _free_text(section: dict, path: Path) -> tuple[str, ...]:
    from pipeline.schemas.raw import free_text_columns

    value = section.get("keep_free_text", [])
    allowed = sorted({c for columns in free_text_columns().values() for c in columns})
    if not isinstance(value, list) or any(c not in allowed for c in value):
        raise fail(
            path,
            "privacy.keep_free_text",
            f"must be a list drawn from {', '.join(allowed)}, got {value!r}",
        )
    return tuple(value)


BACKENDS = ("pandas", "polars", "dask")


def load_engine(raw: dict[str, Any], path: Path) -> EngineSettings:
    """Read the optional ``[engine]`` section (workers, fit-cache key, backend, partitions)."""
    section = get_section(raw, "engine", path, EngineSettings, required=False)
    key_file = section.get("cache_key_file")
    d = EngineSettings()
    backend = get_choice(section, "backend", path, "engine", d.backend, BACKENDS)
    scheduler = get_text(section, "scheduler", path, "engine", d.scheduler)
    if scheduler != "local" and not re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d{1,5}", scheduler):
        raise fail(
            path,
            "engine.scheduler",
            f'must be "local" or a scheduler address such as "tcp://10.0.0.5:8786", '
            f"got {scheduler!r}",
        )
    if "scheduler" in section and backend != "dask":
        raise fail(path, "engine.scheduler", f'is read by backend = "dask" only, not {backend!r}')
    memory = get_text(section, "worker_memory", path, "engine", d.worker_memory)
    if not re.fullmatch(r"\d+(\.\d+)?\s*(MB|GB|MiB|GiB)", memory):
        raise fail(
            path, "engine.worker_memory", f'must be a size such as "4GB" or "512MB", got {memory!r}'
        )
    return EngineSettings(
        workers=get_whole(section, "workers", path, "engine", d.workers, 0, 512),
        cache_key_file=get_path(section, "cache_key_file", path, "engine") if key_file else None,
        backend=backend,
        scheduler=scheduler,
        partition_size=get_whole(
            section, "partition_size", path, "engine", d.partition_size, 1, 100_000_000
        ),
        worker_memory=memory,
    )


def load_report(raw: dict[str, Any], path: Path) -> ReportSettings:
    """Read the optional ``[report]`` section (PDF, browser, spaghetti sample, planning)."""
    section = get_section(raw, "report", path, ReportSettings, required=False)
    d = ReportSettings()
    return ReportSettings(
        pdf=get_flag(section, "pdf", path, "report", d.pdf),
        browser=get_path(section, "browser", path, "report") if "browser" in section else None,
        spaghetti_patients=get_whole(
            section, "spaghetti_patients", path, "report", d.spaghetti_patients, 1, 100
        ),
        planning=get_flag(section, "planning", path, "report", d.planning),
    )


def load_thresholds(raw: dict[str, Any], path: Path) -> Thresholds:
    """Read the optional ``[thresholds]`` section (exposure shares, ODI sections, chronicity)."""
    th_raw = get_section(raw, "thresholds", path, Thresholds, required=False)
    d = Thresholds()
    max_missing = get_whole(
        th_raw, "odi_max_missing_sections", path, "thresholds", d.odi_max_missing_sections, 0, 9
    )
    acute = get_number(th_raw, "acute_below_weeks", path, "thresholds", d.acute_below_weeks, 0, 520)
    chronic = get_number(
        th_raw, "chronic_above_weeks", path, "thresholds", d.chronic_above_weeks, 0, 520
    )
    if chronic < acute:
        raise fail(path, "thresholds.chronic_above_weeks", "must not be below acute_below_weeks")
    return Thresholds(
        twitch_share=float(
            get_number(th_raw, "twitch_share", path, "thresholds", d.twitch_share, 0, 1)
        ),
        deep_share=float(get_number(th_raw, "deep_share", path, "thresholds", d.deep_share, 0, 1)),
        odi_max_missing_sections=max_missing,
        acute_below_weeks=float(acute),
        chronic_above_weeks=float(chronic),
    )


def load_model(raw: dict[str, Any], path: Path, study: Study) -> ModelSettings:
    """Read the optional ``[model]`` section of a study (its covariates, its session log)."""
    m_raw = get_section(raw, "model", path, ModelSettings, required=False)
    dm = ModelSettings()
    covariates = m_raw.get("covariates", list(dm.covariates))
    allowed_cov = (*BUILT_IN_COVARIATES, *study.covariates)
    if isinstance(covariates, list) and "site" in covariates:
        raise fail(
            path, "model.covariates", "site is not a covariate here: set [model] site instead"
        )
    if not isinstance(covariates, list) or any(c not in allowed_cov for c in covariates):
        raise fail(
            path,
            "model.covariates",
            f"must be a list drawn from {', '.join(allowed_cov)}, got {covariates!r}",
        )
    undeclared = [c for c in study.covariates if c not in covariates]
    if undeclared:
        raise fail(
            path,
            f"covariates.{undeclared[0]}",
            "is declared but not in [model] covariates; add it there or remove the table",
        )
    min_sites = get_whole(m_raw, "min_sites_random", path, "model", dm.min_sites_random, 2, 1000)
    random_slope = get_flag(m_raw, "random_slope", path, "model", dm.random_slope)
    time_axis = get_choice(m_raw, "time_axis", path, "model", dm.time_axis, TIME_AXES)
    if time_axis == "sessions" and not study.sessions:
        raise fail(path, "model.time_axis", "is 'sessions', but no source provides sessions")
    return ModelSettings(
        time_axis=time_axis,
        covariates=tuple(covariates),
        random_slope=random_slope,
        df_method=get_choice(m_raw, "df_method", path, "model", dm.df_method, DF_METHODS),
        site=get_choice(m_raw, "site", path, "model", dm.site, SITE_EFFECTS),
        min_sites_random=min_sites,
        mmrm_structures=_mmrm_structures(m_raw, path, dm.mmrm_structures),
        mmrm_df_method=get_choice(
            m_raw, "mmrm_df_method", path, "model", dm.mmrm_df_method, MMRM_DF_METHODS
        ),
    )
