"""The analysis configuration: one TOML file, loaded into typed, frozen dataclasses.

``analysis.toml`` at the project root is the default; ``--config`` picks another. Relative paths
in the file are resolved against the folder that holds the file, so a configuration can live next
to the data it describes. Every problem is reported as a :class:`~pipeline.errors.ConfigError`
naming the file and the key. Nothing happens at import time.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

DEFAULT_CONFIG = Path("analysis.toml")
INSTRUMENTS = ("nrs", "vas", "odi")
TIME_AXES = ("weeks", "sessions")
DF_METHODS = ("satterthwaite", "z")


@dataclass(frozen=True)
class Inputs:
    """Paths of the three canonical raw tables."""

    patients: Path
    sessions: Path
    assessments: Path

    def as_dict(self) -> dict[str, Path]:
        """Return ``{table name: path}`` in the canonical order."""
        return {
            "patients": self.patients,
            "sessions": self.sessions,
            "assessments": self.assessments,
        }


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
class Mcid:
    """Minimal clinically important improvement for one instrument (SAP §2).

    A patient is a responder when the improvement from baseline reaches ``points`` **or**
    ``percent`` per cent of the baseline value.
    """

    points: float
    percent: float


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
    """How the mixed models are specified."""

    time_axis: str = "weeks"
    covariates: tuple[str, ...] = ("chronicity",)
    random_slope: bool = True
    df_method: str = "satterthwaite"


@dataclass(frozen=True)
class Config:
    """The whole configuration of one analysis run."""

    source: Path
    inputs: Inputs
    outputs: Outputs
    mcid: dict[str, Mcid]
    thresholds: Thresholds = field(default_factory=Thresholds)
    model: ModelSettings = field(default_factory=ModelSettings)


def _fail(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: [{key}] {message}")


def _table(raw: dict[str, Any], name: str, path: Path, *, required: bool = True) -> dict:
    value = raw.get(name)
    if value is None:
        if required:
            raise _fail(path, name, "section is missing")
        return {}
    if not isinstance(value, dict):
        raise _fail(path, name, "must be a table of keys, e.g. [" + name + "]")
    return value


def _check_keys(section: dict, allowed: set[str], path: Path, name: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise _fail(
            path, name, f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})"
        )


def _number(section: dict, key: str, path: Path, name: str, default: float, lo: float, hi: float):
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"{name}.{key}", f"must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(path, f"{name}.{key}", f"must be between {lo:g} and {hi:g}, got {value!r}")
    return value


def _choice(section: dict, key: str, path: Path, name: str, default: str, allowed: tuple) -> str:
    value = section.get(key, default)
    if value not in allowed:
        raise _fail(path, f"{name}.{key}", f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _path(section: dict, key: str, path: Path, name: str) -> Path:
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"{name}.{key}", "must be a file or folder path in quotes")
    p = Path(value)
    return p if p.is_absolute() else (path.parent / p)


def load_config(path: Path | str = DEFAULT_CONFIG) -> Config:
    """Read and check a TOML configuration file.

    Parameters
    ----------
    path : Path or str
        The TOML file; relative paths inside it are resolved against its folder.

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

    _check_keys(raw, {"inputs", "outputs", "mcid", "thresholds", "model"}, path, "top level")

    inputs_raw = _table(raw, "inputs", path)
    _check_keys(inputs_raw, {f.name for f in fields(Inputs)}, path, "inputs")
    inputs = Inputs(**{f.name: _path(inputs_raw, f.name, path, "inputs") for f in fields(Inputs)})

    outputs_raw = _table(raw, "outputs", path)
    _check_keys(outputs_raw, {f.name for f in fields(Outputs)}, path, "outputs")
    outputs = Outputs(
        **{f.name: _path(outputs_raw, f.name, path, "outputs") for f in fields(Outputs)}
    )

    mcid_raw = _table(raw, "mcid", path)
    _check_keys(mcid_raw, set(INSTRUMENTS), path, "mcid")
    mcid = {}
    for instrument in INSTRUMENTS:
        section = _table(mcid_raw, instrument, path)
        name = f"mcid.{instrument}"
        _check_keys(section, {"points", "percent"}, path, name)
        if "points" not in section or "percent" not in section:
            raise _fail(path, name, "needs both 'points' and 'percent'")
        mcid[instrument] = Mcid(
            points=float(_number(section, "points", path, name, 0, 0, 100)),
            percent=float(_number(section, "percent", path, name, 0, 0, 100)),
        )

    th_raw = _table(raw, "thresholds", path, required=False)
    _check_keys(th_raw, {f.name for f in fields(Thresholds)}, path, "thresholds")
    d = Thresholds()
    max_missing = _number(
        th_raw, "odi_max_missing_sections", path, "thresholds", d.odi_max_missing_sections, 0, 9
    )
    if isinstance(max_missing, float) and not max_missing.is_integer():
        raise _fail(path, "thresholds.odi_max_missing_sections", "must be a whole number")
    acute = _number(th_raw, "acute_below_weeks", path, "thresholds", d.acute_below_weeks, 0, 520)
    chronic = _number(
        th_raw, "chronic_above_weeks", path, "thresholds", d.chronic_above_weeks, 0, 520
    )
    if chronic < acute:
        raise _fail(path, "thresholds.chronic_above_weeks", "must not be below acute_below_weeks")
    thresholds = Thresholds(
        twitch_share=float(
            _number(th_raw, "twitch_share", path, "thresholds", d.twitch_share, 0, 1)
        ),
        deep_share=float(_number(th_raw, "deep_share", path, "thresholds", d.deep_share, 0, 1)),
        odi_max_missing_sections=int(max_missing),
        acute_below_weeks=float(acute),
        chronic_above_weeks=float(chronic),
    )

    m_raw = _table(raw, "model", path, required=False)
    _check_keys(m_raw, {f.name for f in fields(ModelSettings)}, path, "model")
    dm = ModelSettings()
    covariates = m_raw.get("covariates", list(dm.covariates))
    allowed_cov = ("chronicity", "age", "sex", "site")
    if not isinstance(covariates, list) or any(c not in allowed_cov for c in covariates):
        raise _fail(
            path,
            "model.covariates",
            f"must be a list drawn from {', '.join(allowed_cov)}, got {covariates!r}",
        )
    random_slope = m_raw.get("random_slope", dm.random_slope)
    if not isinstance(random_slope, bool):
        raise _fail(path, "model.random_slope", f"must be true or false, got {random_slope!r}")
    model = ModelSettings(
        time_axis=_choice(m_raw, "time_axis", path, "model", dm.time_axis, TIME_AXES),
        covariates=tuple(covariates),
        random_slope=random_slope,
        df_method=_choice(m_raw, "df_method", path, "model", dm.df_method, DF_METHODS),
    )
    return Config(
        source=path, inputs=inputs, outputs=outputs, mcid=mcid, thresholds=thresholds, model=model
    )
