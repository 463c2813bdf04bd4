"""The analysis configuration: one TOML file, loaded into typed, frozen dataclasses.

``analysis.toml`` at the project root is the default; ``--config`` picks another. Relative paths
in the file are resolved against the folder that holds the file, so a configuration can live next
to the data it describes. Every problem is reported as a :class:`~pipeline.errors.ConfigError`
naming the file and the key. Nothing happens at import time.

:func:`load_config` reads the file and checks its top-level keys; each section is read by the
module it belongs to: the files by :mod:`.sources`, the study's design by :mod:`.study`, the
run's options by :mod:`.options`, the estimand by :mod:`.estimand` and the next study by
:mod:`.planning`, all with the value readers of :mod:`.toml_values`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.config.estimand import EstimandSettings, load_estimand
from pipeline.config.options import (
    EngineSettings,
    FederationSettings,
    ModelSettings,
    Outputs,
    PrivacySettings,
    ReportSettings,
    Thresholds,
    load_engine,
    load_federation,
    load_model,
    load_privacy,
    load_report,
    load_thresholds,
)
from pipeline.config.planning import PlanningSettings, load_planning
from pipeline.config.sources import Inputs, Source, load_sources
from pipeline.config.study import Mcid, Study, legacy_outcomes, load_study
from pipeline.config.toml_values import check_keys, fail, get_paths, missing_section
from pipeline.errors import ConfigError

DEFAULT_CONFIG = Path("analysis.toml")


@dataclass(frozen=True)
class Config:
    """The whole configuration of one analysis run."""

    source: Path
    inputs: Inputs | None
    outputs: Outputs
    mcid: dict[str, Mcid]
    sources: tuple[Source, ...] = ()
    study: Study | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    model: ModelSettings = field(default_factory=ModelSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    planning: PlanningSettings | None = None
    estimand: EstimandSettings | None = None

    def __post_init__(self) -> None:
        """Fill the study with the needling default (NRS, VAS, ODI; depth, twitch)."""
        if self.study is None:
            object.__setattr__(self, "study", Study(outcomes=legacy_outcomes(self.mcid)))


def load_config(path: Path | str = DEFAULT_CONFIG, analyses: bool = True) -> Config:
    """Read and check a TOML configuration file.

    Parameters
    ----------
    path : Path or str
        The TOML file; relative paths inside it are resolved against its folder.
    analyses : bool
        Check too that the study's comparisons can be made from the files (a depth or twitch
        comparison needs a source of sessions). ``outcomes validate`` and ``preview``, which
        only read and check the files, pass False: a first draft whose comparisons are still
        to be declared can be previewed and validated.

    Returns
    -------
    Config
        The typed configuration.

    Raises
    ------
    ConfigError
        When the file is missing, is not valid TOML, or holds a missing, unknown or invalid key.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None

    check_keys(
        raw,
        {
            "inputs",
            "sources",
            "vocabulary",
            "outputs",
            "mcid",
            "outcomes",
            "comparisons",
            "covariates",
            "time",
            "thresholds",
            "model",
            "privacy",
            "report",
            "engine",
            "federation",
            "planning",
            "estimand",
        },
        path,
        "top level",
    )

    if "sources" not in raw and "inputs" not in raw:
        raise missing_section(path, "inputs", " (or declare [[sources]])")
    study, mcid = load_study(raw, path)
    inputs, sources = load_sources(raw, path, study.extra_columns())
    has_sessions = any("sessions" in s.tables() for s in sources)
    study = replace(study, sessions=has_sessions)
    if analyses and not has_sessions:
        needs = next((c for c in study.comparisons if c.needs_sessions), None)
        if needs is not None:
            raise fail(
                path,
                "comparisons",
                f"'{needs.name}' is derived from the session log, but no source provides "
                f"sessions; declare [[comparisons]] that the data hold (e.g. kind = "
                f'"randomised")',
            )

    outputs = get_paths(raw, "outputs", path, Outputs)

    thresholds = load_thresholds(raw, path)
    # the missing-section rule applies to ODI totals given as raw points with answered sections
    max_missing = thresholds.odi_max_missing_sections
    sources = tuple(replace(s, odi_max_missing_sections=max_missing) for s in sources)
    model = load_model(raw, path, study)
    report = load_report(raw, path)
    planning = load_planning(raw, path)
    if report.planning and planning is None:
        raise fail(
            path,
            "report.planning",
            "is true but there is no [planning] section to plan from; add one (docs/planning.md)",
        )
    return Config(
        source=path,
        inputs=inputs,
        sources=sources,
        outputs=outputs,
        mcid=mcid,
        study=study,
        thresholds=thresholds,
        model=model,
        privacy=load_privacy(raw, path),
        report=report,
        engine=load_engine(raw, path),
        federation=load_federation(raw, path),
        planning=planning,
        estimand=load_estimand(raw, path, study),
    )
