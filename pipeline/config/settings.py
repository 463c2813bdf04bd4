"""The analysis configuration: one TOML file, loaded into typed, frozen dataclasses.

``analysis.toml`` at the project root is the default; ``--config`` picks another. Relative paths
in the file are resolved against the folder that holds the file, so a configuration can live next
to the data it describes. Every problem is reported as a :class:`~pipeline.errors.ConfigError`
naming the file and the key. Nothing happens at import time.
"""

from __future__ import annotations

import codecs
import itertools
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipeline.config.instruments import (
    BUILT_IN_COLUMNS,
    DIRECTIONS,
    HIGHER_BETTER,
    LIBRARY,
    SCORINGS,
)
from pipeline.config.vocabulary import LANGUAGES, Vocabulary
from pipeline.errors import ConfigError
from pipeline.schemas.columns import INSTRUMENTS as INSTRUMENT_TABLE
from pipeline.schemas.columns import PATIENT_ID

DEFAULT_CONFIG = Path("analysis.toml")
INSTRUMENTS = tuple(INSTRUMENT_TABLE)
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


# --- sources: the clinic's files and how to read them (see docs/ingestion.md) ---------------
SOURCE_KINDS = ("canonical", "visit_sheet", "wide", "redcap")
SOURCE_DELIMITERS = ("auto", ",", ";", "\t", "|")
PATIENT_ID_RULES = ("compact", "as_written", "row")
SOURCE_UNITS = {
    "vas_mm": ("mm", "cm"),
    "odi": ("percent", "points"),
    "symptom_weeks": ("weeks", "days", "months", "years"),
}
# A visit sheet's one date column, filling session_date and assessment_date alike.
VISIT_DATE = "visit_date"
# The number of ODI sections answered, next to an ODI total written as raw points (units.odi =
# "points"): the score is points / (5 x answered) x 100, blank when more sections are unanswered
# than [thresholds] odi_max_missing_sections allows.
ODI_ANSWERED = "odi_answered"
# Canonical columns one clinic column may fill together, because that is what it means: a
# "Termin 3" column numbers the session and the assessment taken before it; one date per time
# point dates the session and the assessment of that time point.
SHARED_MEANINGS = (
    frozenset({"session_number", "visit"}),
    frozenset({"session_date", "assessment_date"}),
)


@dataclass(frozen=True)
class TimePoints:
    """The repeated column groups of a wide layout: one group per time point (or session).

    Attributes
    ----------
    points : dict of str to int
        Time-point label (as written in the column names) to visit (or session) number.
    columns : dict of str to str
        Canonical column to clinic column pattern; ``{t}`` stands for the label. A pattern
        without ``{t}`` names one column used for every time point.
    weeks : dict of str to float
        Label to nominal week, used with ``date_from`` when no date column is mapped.
    date_from : str or None
        Clinic column with the date of week 0; dates are ``date_from + 7 x week`` days.
    """

    points: dict[str, int]
    columns: dict[str, str]
    weeks: dict[str, float] = field(default_factory=dict)
    date_from: str | None = None


@dataclass(frozen=True)
class EventColumns:
    """How a source writes adverse events when a session may have several (issue 15).

    Attributes
    ----------
    flags : dict of str to str
        Clinic column -> adverse-event type (:data:`pipeline.schemas.raw.AE_TYPES`): one yes/no
        (0/1) column per type, ``yes`` meaning the event occurred after the session.
    flag_severity : dict of str to str
        Flag column -> the clinic column holding that event's severity.
    list_column : str or None
        One clinic column listing the session's events, ``"soreness; bruising"``.
    delimiter : str
        What separates the items of ``list_column`` (and of a severity list beside it).
    codes : dict of str to str
        A listed item (matched ignoring case and spaces) -> adverse-event type, or ``none``
        (the session had no event); the type names themselves need no code.
    severity : str or None
        One clinic column with the severity of the row's events: one severity for every event,
        or (with ``list_column``) a list of severities in the order of the events.
    """

    flags: dict[str, str] = field(default_factory=dict)
    flag_severity: dict[str, str] = field(default_factory=dict)
    list_column: str | None = None
    delimiter: str = ";"
    codes: dict[str, str] = field(default_factory=dict)
    severity: str | None = None

    def clinic_columns(self) -> tuple[str, ...]:
        """Every clinic column the record reads, in the order written."""
        named = [*self.flags, *self.flag_severity.values(), self.list_column, self.severity]
        return tuple(dict.fromkeys(c for c in named if c))


@dataclass(frozen=True)
class Source:
    """One ``[[sources]]`` entry: files of one layout and how they map to the canonical tables.

    ``files`` maps a role to path patterns (absolute; a pattern with ``*``, ``?`` or ``[`` is a
    glob): ``data`` for visit sheets, wide files and REDCap exports; the table names for the
    canonical layout. ``number`` is the entry's position from 1 (0 for the ``[inputs]`` form,
    which is read exactly as written: ``legacy``). ``extra`` holds the study's own columns
    (declared outcomes and covariates, :meth:`Study.extra_columns`) as ``{table: {column:
    kind}}``. The other attributes are the keys of the entry, documented in
    ``docs/ingestion.md``.
    """

    number: int
    kind: str
    config: Path
    files: dict[str, tuple[str, ...]]
    dictionary: str | None = None
    site: str | None = None
    sites: dict[str, str] = field(default_factory=dict)
    delimiter: str = "auto"
    encoding: str = "auto"
    decimal: str = "."
    header_row: int = 1
    sheet: str | None = None
    date_format: str = "YYYY-MM-DD"
    patient_id: str = "compact"
    id_prefix: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    shift: dict[str, int] = field(default_factory=dict)
    odi_max_missing_sections: int = 1
    vocabulary: Vocabulary = field(default_factory=Vocabulary.of)
    time_points: dict[str, TimePoints] = field(default_factory=dict)
    instruments: dict[str, str] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    session_events: dict[str, int] = field(default_factory=dict)
    arms: dict[str, str] = field(default_factory=dict)
    adverse_events: EventColumns | None = None
    legacy: bool = False
    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """Folder of the configuration file (relative paths are resolved against it)."""
        return self.config.parent

    def key(self, name: str = "") -> str:
        """Name a key of this entry for messages, e.g. ``[sources.2.columns]``."""
        if self.legacy:
            return f"[inputs{'.' + name if name else ''}]"
        return f"[sources.{self.number}{'.' + name if name else ''}]"

    def tables(self) -> tuple[str, ...]:
        """Return the canonical tables this source provides."""
        if self.kind == "canonical":
            return tuple(t for t in ("patients", "sessions", "assessments") if t in self.files)
        if self.kind == "visit_sheet":
            return ("patients", "sessions", "assessments")
        if self.kind == "wide":
            return ("patients", *(t for t in ("sessions", "assessments") if t in self.time_points))
        return tuple(t for t in ("patients", "sessions", "assessments") if t in self.instruments)


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
    ``percent`` per cent of the baseline value (either may be absent, not both).
    """

    points: float | None
    percent: float | None

    def describe(self, unit: str) -> str:
        """Return the rule in words, e.g. ``2 points or 30 % of baseline``."""
        parts = []
        if self.points is not None:
            parts.append(f"{self.points:g} {unit}")
        if self.percent is not None:
            parts.append(f"{self.percent:g} % of baseline")
        return " or ".join(parts)


@dataclass(frozen=True)
class Outcome:
    """One declared outcome (``[outcomes.NAME]``, SAP §3): what it measures and how to read it.

    Attributes
    ----------
    name : str
        The name in the configuration and in every table (``rmdq``).
    column : str
        Column of the assessments table holding the score (``nrs``, ``vas_mm``, ``odi`` for the
        built-in instruments, otherwise the name).
    label, short, unit : str
        Name for people, short name, unit of the score.
    low, high : float
        Range of possible scores (a value outside is quarantined).
    direction : {"higher_worse", "higher_better"}
        Whether a rise of the score is a worsening or an improvement.
    mcid : Mcid
        Minimal clinically important improvement.
    scoring : {"recorded", "odi_items"}
        As recorded, or scored from the ODI sections.
    source : str
        Where the range and MCID come from (library instruments), or ``declared``.
    integer : bool
        Whether scores are whole numbers.
    """

    name: str
    column: str
    label: str
    short: str
    unit: str
    low: float
    high: float
    direction: str
    mcid: Mcid
    scoring: str = "recorded"
    source: str = "declared in the configuration"
    integer: bool = False

    @property
    def higher_is_better(self) -> bool:
        """Whether a rise of the score is an improvement."""
        return self.direction == HIGHER_BETTER

    @property
    def improvement_sign(self) -> float:
        """+1 when a rise is an improvement, -1 when a fall is."""
        return 1.0 if self.higher_is_better else -1.0


COMPARISON_KINDS = ("depth", "twitch", "randomised", "column")


@dataclass(frozen=True)
class Comparison:
    """One declared patient-level grouping to compare (``[[comparisons]]``, SAP §3).

    Attributes
    ----------
    name : str
        Name in analysis labels (``trajectory_<name>``) and in the API's ``group=``.
    kind : {"depth", "twitch", "randomised", "column"}
        The built-in exposures (derived from the sessions), a randomised arm, or any
        categorical patient column.
    column : str
        Patient column holding the group (``depth``, ``twitch``, ``arm``, or the declared one).
    reference : str
        Reference level (the first level of the model's factor).
    label : str
        Name for people (``treatment arm``).
    levels : tuple of str
        Every level in model order (reference first); empty: the reference, then the others
        in sorted order as found in the data.
    """

    name: str
    kind: str
    column: str
    reference: str
    label: str
    levels: tuple[str, ...] = ()

    @property
    def randomised(self) -> bool:
        """Whether the grouping is a randomised arm (the design is then a trial)."""
        return self.kind == "randomised"

    @property
    def needs_sessions(self) -> bool:
        """Whether the grouping is derived from the session log."""
        return self.kind in ("depth", "twitch")


COVARIATE_KINDS = ("number", "category")
# Covariates every study may name without declaring them: patient columns of the data contract
# (``chronicity`` is derived from ``symptom_weeks``).
BUILT_IN_COVARIATES = {
    "chronicity": "category",
    "age": "number",
    "sex": "category",
    "symptom_weeks": "number",
}


@dataclass(frozen=True)
class Covariate:
    """One baseline covariate of the models: a patient column, numeric or categorical.

    Attributes
    ----------
    name : str
        Patient column (``age``, ``diagnosis``...).
    kind : {"number", "category"}
        Numeric (a slope) or categorical (one coefficient per level but the reference).
    reference : str or None
        Reference level of a categorical covariate (default: the first in sorted order).
    label : str
        Name for people.
    """

    name: str
    kind: str
    reference: str | None = None
    label: str = ""


TIME_SOURCES = ("dates", "weeks", "visits")


@dataclass(frozen=True)
class TimeSettings:
    """Where the time of each assessment comes from (``[time]``, SAP §3).

    Attributes
    ----------
    source : {"dates", "weeks", "visits"}
        ``dates``: weeks since the baseline assessment date; ``weeks``: the assessments'
        ``weeks`` column (a wide source's ``weeks`` mapping fills it); ``visits``: the
        ``visit_weeks`` mapping of visit numbers to weeks.
    visit_weeks : dict of int to float
        Visit number to nominal week (``source = "visits"``).
    primary_visit : int or None
        Visit of the headline estimate of a trial (default: the last visit in the data).
    """

    source: str = "dates"
    visit_weeks: dict[int, float] = field(default_factory=dict)
    primary_visit: int | None = None


def legacy_outcomes(mcid: dict[str, Mcid]) -> tuple[Outcome, ...]:
    """NRS, VAS and ODI from the library with the MCIDs of ``[mcid]`` (the needling default)."""
    return tuple(
        library_outcome(name, BUILT_IN_COLUMNS[name], mcid.get(name))
        for name in ("nrs", "vas", "odi")
    )


def library_outcome(name: str, column: str, mcid: Mcid | None = None) -> Outcome:
    """Return an outcome measured with the library instrument ``name`` (:mod:`.instruments`)."""
    item = LIBRARY[name]
    return Outcome(
        name=name,
        column=column,
        label=item.label,
        short=item.short,
        unit=item.unit,
        low=float(item.low),
        high=float(item.high),
        direction=item.direction,
        mcid=mcid or Mcid(item.mcid_points, item.mcid_percent),
        scoring=item.scoring,
        source=item.source,
        integer=item.integer,
    )


DEFAULT_COMPARISONS = (
    Comparison("depth", "depth", "depth", "superficial", "needling depth", ("superficial", "deep")),
    Comparison(
        "twitch", "twitch", "twitch", "no twitch", "twitch response", ("no twitch", "twitch")
    ),
)


@dataclass(frozen=True)
class Study:
    """What the study declares: outcomes, comparisons, covariates and time (SAP §3).

    Attributes
    ----------
    outcomes : tuple of Outcome
        The declared outcomes, in order (default NRS, VAS, ODI).
    comparisons : tuple of Comparison
        The declared groupings (default depth and twitch share).
    covariates : dict of str to Covariate
        Covariates declared under ``[covariates.NAME]`` (the built-in ones need no
        declaration).
    time : TimeSettings
        Where time comes from, and the primary visit.
    sessions : bool
        Whether a source provides a session log.
    """

    outcomes: tuple[Outcome, ...]
    comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS
    covariates: dict[str, Covariate] = field(default_factory=dict)
    time: TimeSettings = field(default_factory=TimeSettings)
    sessions: bool = True

    @property
    def declared(self) -> bool:
        """Whether the study declares its own design (not NRS, VAS, ODI by depth and twitch)."""
        default = tuple(o.name for o in self.outcomes) == ("nrs", "vas", "odi")
        return not (default and self.comparisons == DEFAULT_COMPARISONS and not self.covariates)

    @property
    def design(self) -> str:
        """``trial`` when a comparison is a randomised arm, else ``observational``."""
        return "trial" if any(c.randomised for c in self.comparisons) else "observational"

    def outcome(self, name: str) -> Outcome:
        """Return the declared outcome ``name``.

        Raises
        ------
        KeyError
            When the study declares no such outcome.
        """
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def comparison(self, name: str) -> Comparison:
        """Return the declared comparison ``name``.

        Raises
        ------
        KeyError
            When the study declares no such comparison.
        """
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(name)

    def extra_columns(self) -> dict[str, dict[str, str]]:
        """Return the study's own columns beyond the data contract, ``{table: {column: kind}}``.

        Outcomes that are not built-in columns are numeric assessment columns; declared
        covariates and the columns of ``column`` comparisons are patient columns.
        """
        from pipeline.schemas.raw import column_names

        assessments = {
            o.column: "number" for o in self.outcomes if o.column not in column_names("assessments")
        }
        patients = {
            c.name: "number" if c.kind == "number" else "text"
            for c in self.covariates.values()
            if c.name not in column_names("patients")
        }
        for c in self.comparisons:
            if c.kind == "column" and c.column not in column_names("patients"):
                patients[c.column] = "text"
        return {"patients": patients, "assessments": assessments}

    def ranges(self) -> dict[str, tuple[float, float]]:
        """``{assessment column: (low, high)}`` of the outcomes stored in their own column."""
        return {o.column: (o.low, o.high) for o in self.outcomes}


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


# --- planning: the design and assumptions of the next study (see docs/planning.md) ----------
PLANNING_COMPARISONS = {
    "depth": ("superficial", "deep"),
    "twitch": ("no twitch", "twitch"),
    "arm": ("control", "treatment"),
}
PLANNING_ANALYSES = ("slope", "visit")
DEFAULT_N_GRID = (40, 60, 80, 100, 140, 180, 240, 300)


@dataclass(frozen=True)
class PlanningAssumptions:
    """``[planning.assumptions]``: what the next study is assumed to look like.

    Attributes
    ----------
    effect : float or None
        Difference between the groups at the primary week, in outcome units (the difference
        grows linearly from 0 at baseline).
    effect_mcid : float or None
        The same difference as a multiple of the outcome's MCID points (give one of the two).
    sd_intercept, sd_slope, correlation, sd_residual : float or None
        Between-patient SDs of the intercept and the slope per week, their correlation, and
        the residual SD (outcome units); required unless they come from the study.
    dropout : dict of str to tuple of float
        Probability of leaving before each post-baseline visit, per group level; the key
        ``"*"`` applies to both groups. One number stands for every visit.
    """

    effect: float | None = None
    effect_mcid: float | None = None
    sd_intercept: float | None = None
    sd_slope: float | None = None
    correlation: float | None = None
    sd_residual: float | None = None
    dropout: dict[str, tuple[float, ...]] = field(default_factory=lambda: {"*": (0.0,)})


@dataclass(frozen=True)
class PlanningSettings:
    """``[planning]``: the design of the next study and what to compute for it.

    Attributes
    ----------
    outcome : str
        Instrument of the primary analysis (``nrs``, ``vas``, ``odi``).
    comparison : str
        ``depth``, ``twitch`` or ``arm`` (a randomised arm).
    levels : tuple of str
        Reference and compared level (defaults by comparison).
    allocation : float
        Patients in the compared group per patient in the reference group.
    weeks : tuple of float or None
        Visit schedule in weeks, baseline (0) first; None: the study's nominal weeks
        (``--from-study`` only).
    analysis : str
        ``slope`` (trajectory slope difference) or ``visit`` (baseline-adjusted difference at
        the primary week).
    primary_week : float or None
        Week of the primary visit (default the last).
    alpha : float
        Two-sided significance level of the family.
    holm_family : int
        Number of primary comparisons in the Holm family; the formulas use ``alpha / m``.
    power : float
        Target power.
    n : int
        Total patients for the power, the detectable effect and the precision.
    n_grid : tuple of int
        Total patients of the power curve (``n`` is added).
    sims : int
        Simulated studies per point of the curve (0: analytic results only).
    seed : int
        Root seed of the simulations.
    assumptions : PlanningAssumptions
        Effect, variance components and dropout.
    """

    outcome: str = "nrs"
    comparison: str = "depth"
    levels: tuple[str, str] = ("superficial", "deep")
    allocation: float = 1.0
    weeks: tuple[float, ...] | None = None
    analysis: str = "slope"
    primary_week: float | None = None
    alpha: float = 0.05
    holm_family: int = 1
    power: float = 0.8
    n: int = 200
    n_grid: tuple[int, ...] = DEFAULT_N_GRID
    sims: int = 1000
    seed: int = 2026
    assumptions: PlanningAssumptions = field(default_factory=PlanningAssumptions)


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


ESTIMAND_EVENTS = ("discontinued", "co_intervention", "protocol_deviation")
"""Intercurrent events the ``[estimand.events.*]`` tables may name (ICH E9(R1))."""

ESTIMAND_STRATEGIES = ("treatment policy", "hypothetical", "while on treatment")
"""ICH E9(R1) strategies for an intercurrent event."""

IMPUTATION_STRATEGIES = ("MAR", "J2R", "CR", "CIR", "LMCF")
"""Reference-based assumptions for the values missing after an intercurrent event."""

TIPPING_GROUPS = ("level", "both", "reference")
"""Whose imputed values the tipping-point delta shifts: the compared level, both, the reference."""


@dataclass(frozen=True)
class IntercurrentEvent:
    """One intercurrent event and its strategy (``[estimand.events.NAME]``).

    Attributes
    ----------
    event : str
        One of :data:`ESTIMAND_EVENTS`.
    strategy : str
        One of :data:`ESTIMAND_STRATEGIES`.
    imputation : str
        Assumption for the values missing after the event (:data:`IMPUTATION_STRATEGIES`):
        default ``J2R`` for treatment policy, ``MAR`` for hypothetical, ``LMCF`` for while on
        treatment.
    """

    event: str
    strategy: str
    imputation: str


DEFAULT_IMPUTATION = {
    "treatment policy": "J2R",
    "hypothetical": "MAR",
    "while on treatment": "LMCF",
}
"""The imputation each ICH strategy implies unless the event's table names another."""


JACKKNIFE_GROUPS = 500
"""Default ``[estimand] jackknife_groups``: leave-one-out up to 500 patients, 500 groups above.

The leave-one-out jackknife refits and re-imputes every patient once per patient, ``O(n^2)``
(50 s at 2,000 patients, days at 100,000); the delete-a-group jackknife with ``G`` groups costs
``G`` replicates whatever the size, and its SE carries ``G - 1`` df (relative SD of the SE about
``1 / sqrt(2 (G - 1))``, 3 % at 500) (docs/estimands.md)."""

JACKKNIFE_GROUPS_MIN = 10
"""Fewest jackknife groups accepted: fewer leave the SE itself too uncertain (under 9 df)."""


@dataclass(frozen=True)
class EstimandSettings:
    """The estimand and the missing-data sensitivity analyses (``[estimand]``, SAP §4).

    Attributes
    ----------
    population : str or None
        Who the question is about (default: worded from the design).
    outcome : str or None
        Outcome (default: the primary, i.e. first declared, outcome).
    comparison : str or None
        Comparison name (default: the first declared comparison).
    visit : int or None
        Visit of the estimand (default: ``[time] primary_visit``, else the last visit).
    summary : str
        Population-level summary measure.
    events : tuple of IntercurrentEvent
        The intercurrent events and their strategies (default: discontinuation under
        treatment policy with J2R, protocol deviations under treatment policy).
    strategies : tuple of str
        Sensitivity strategies applied to every patient who stopped (all five by default).
    tipping_deltas : int
        Points of the tipping-point grid (default 21).
    tipping_range : float or None
        The grid spans ``-range`` to ``+range`` MCIDs of the outcome (default: wide enough to
        show the tipping points, 1.25 times the farthest, at least 1).
    tipping_groups : str
        ``level`` (the compared level's imputed values), ``both`` or ``reference``.
    jackknife : bool
        Jackknife standard errors (false: point estimates only; never for a report).
    jackknife_groups : int
        ``G``: a study of at most ``G`` patients gets the leave-one-patient-out jackknife; a
        larger one the delete-a-group jackknife (Kott 2001), its patients dealt into ``G``
        groups by a seeded hash of their identifiers, one replicate per group deleted, SEs
        with ``G - 1`` df (default :data:`JACKKNIFE_GROUPS`).
    jackknife_seed : int
        Seed of the hash that deals the patients into jackknife groups.
    mi_imputations : int
        Imputations of the bootstrapped multiple imputation pooled by Rubin's rules, the
        alternative to the jackknife (default 50; 0 leaves it out).
    mi_seed : int
        Seed of the bootstrap and the draws.
    covariance_by_group : bool
        A separate unstructured ``Sigma`` per level of the comparison in the imputation model
        (rbmi's ``same_cov = FALSE``; default false: one shared ``Sigma``). Each patient is then
        conditioned on the matrix their strategy implies (:mod:`pipeline.lmm.reference_based`),
        and the MAR row no longer reproduces the MMRM exactly.
    """

    population: str | None = None
    outcome: str | None = None
    comparison: str | None = None
    visit: int | None = None
    summary: str = "difference in means"
    events: tuple[IntercurrentEvent, ...] = (
        IntercurrentEvent("discontinued", "treatment policy", "J2R"),
        IntercurrentEvent("protocol_deviation", "treatment policy", "MAR"),
    )
    strategies: tuple[str, ...] = IMPUTATION_STRATEGIES
    tipping_deltas: int = 21
    tipping_range: float | None = None
    tipping_groups: str = "level"
    jackknife: bool = True
    jackknife_groups: int = JACKKNIFE_GROUPS
    jackknife_seed: int = 0
    mi_imputations: int = 50
    mi_seed: int = 2022
    covariance_by_group: bool = False


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


def _fail(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: [{key}] {message}")


# What each required section holds, for the message when it is missing (docs/ingestion.md
# lists them too). The MCID values are those of the SAP (Ostelo et al., Spine 2008).
REQUIRED_SECTIONS = {
    "inputs": 'add [inputs] with patients = "...", sessions = "..." and assessments = "..." '
    "(the three CSV files of the data dictionary)",
    "outputs": 'add [outputs] with processed = "data/processed" and reports = "reports"',
    "mcid": "add [mcid.nrs], [mcid.vas] and [mcid.odi], each with points and percent (the "
    "SAP's: 2 and 30, 15 and 30, 10 and 30)",
    "mcid.nrs": "add [mcid.nrs] with points = 2 and percent = 30",
    "mcid.vas": "add [mcid.vas] with points = 15 and percent = 30",
    "mcid.odi": "add [mcid.odi] with points = 10 and percent = 30",
}


def _missing(path: Path, name: str, note: str = "") -> ConfigError:
    """Return the error for a missing required section: what to add, and where they are listed."""
    return _fail(
        path,
        name,
        f"section is missing{note}; {REQUIRED_SECTIONS[name]} "
        "(every required section: docs/ingestion.md)",
    )


def _table(
    raw: dict[str, Any], name: str, path: Path, *, required: bool = True, label: str = ""
) -> dict:
    value = raw.get(name)
    label = label or name
    if value is None:
        if required:
            raise _missing(path, label)
        return {}
    if not isinstance(value, dict):
        raise _fail(path, label, "must be a table of keys, e.g. [" + label + "]")
    return value


def _check_keys(section: dict, allowed: set[str], path: Path, name: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise _fail(
            path, name, f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})"
        )


def _section(raw: dict[str, Any], name: str, path: Path, settings: type, *, required: bool) -> dict:
    """Return the table ``[name]``, whose keys must be fields of the dataclass ``settings``."""
    section = _table(raw, name, path, required=required)
    _check_keys(section, {f.name for f in fields(settings)}, path, name)
    return section


def _paths(raw: dict[str, Any], name: str, path: Path, settings: type) -> Any:
    """Read the required table ``[name]`` of paths into ``settings`` (one path per field)."""
    section = _section(raw, name, path, settings, required=True)
    return settings(**{f.name: _path(section, f.name, path, name) for f in fields(settings)})


def _number(section: dict, key: str, path: Path, name: str, default: float, lo: float, hi: float):
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"{name}.{key}", f"must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(path, f"{name}.{key}", f"must be between {lo:g} and {hi:g}, got {value!r}")
    return value


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
        raise _fail(
            path,
            "model.mmrm_structures",
            f"must be a list of distinct structures from {', '.join(MMRM_STRUCTURES)}, tried in "
            f"order, got {value!r}",
        )
    return tuple(value)


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


def _flag(section: dict, key: str, path: Path, name: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise _fail(path, f"{name}.{key}", f"must be true or false, got {value!r}")
    return value


def _whole(section: dict, key: str, path: Path, name: str, default: int, lo: int, hi: int) -> int:
    value = _number(section, key, path, name, default, lo, hi)
    if isinstance(value, float) and not value.is_integer():
        raise _fail(path, f"{name}.{key}", "must be a whole number")
    return int(value)


CLINIC_EFFECTS = ("fixed", "random", "none")


def _names(section: dict, key: str, path: Path, allowed: tuple, default: tuple) -> tuple:
    value = section.get(key, list(default))
    if not isinstance(value, list) or not value or any(v not in allowed for v in value):
        raise _fail(
            path,
            f"federation.{key}",
            f"must be a non-empty list drawn from {', '.join(allowed)}, got {value!r}",
        )
    return tuple(dict.fromkeys(value))


def load_federation(raw: dict[str, Any], path: Path) -> FederationSettings:
    """Read the optional ``[federation]`` section (share files of a clinic network)."""
    section = _section(raw, "federation", path, FederationSettings, required=False)
    d = FederationSettings()
    schedule_raw = section.get("schedule", {})
    if not isinstance(schedule_raw, dict):
        raise _fail(
            path, "federation.schedule", "must map visit numbers to times, e.g. { 0 = 0, 1 = 2 }"
        )
    pairs = []
    for visit, time in schedule_raw.items():
        if not str(visit).isdigit():
            raise _fail(path, "federation.schedule", f"{visit!r} is not a visit number")
        if isinstance(time, bool) or not isinstance(time, int | float) or time < 0:
            raise _fail(
                path, f"federation.schedule.{visit}", f"must be a time of at least 0, got {time!r}"
            )
        pairs.append((int(visit), float(time)))
    pairs.sort()
    times = [t for _, t in pairs]
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise _fail(path, "federation.schedule", "times must increase with the visit number")
    clinic = section.get("clinic", d.clinic)
    if not isinstance(clinic, str):
        raise _fail(path, "federation.clinic", f"must be a name in quotes, got {clinic!r}")
    return FederationSettings(
        schedule=tuple(pairs),
        min_patients_per_cell=_whole(
            section, "min_patients_per_cell", path, "federation", d.min_patients_per_cell, 3, 10**6
        ),
        outcomes=_names(section, "outcomes", path, INSTRUMENTS, d.outcomes),
        groups=_names(section, "groups", path, ("depth", "twitch"), d.groups),
        clinic_effect=_choice(
            section, "clinic_effect", path, "federation", d.clinic_effect, CLINIC_EFFECTS
        ),
        clinic=clinic.strip(),
    )


def load_privacy(raw: dict[str, Any], path: Path) -> PrivacySettings:
    """Read the optional ``[privacy]`` section (pseudonym key and small-cell threshold)."""
    section = _section(raw, "privacy", path, PrivacySettings, required=False)
    d = PrivacySettings()
    key_env = section.get("key_env", d.key_env)
    if not isinstance(key_env, str) or not key_env.strip():
        raise _fail(path, "privacy.key_env", "must be the name of an environment variable")
    return PrivacySettings(
        key_env=key_env,
        key_file=_path(section, "key_file", path, "privacy") if "key_file" in section else None,
        demo_key=_flag(section, "demo_key", path, "privacy", d.demo_key),
        small_cell_threshold=_whole(
            section, "small_cell_threshold", path, "privacy", d.small_cell_threshold, 0, 1000
        ),
        audience=_choice(section, "audience", path, "privacy", d.audience, AUDIENCES),
        keep_free_text=_free_text(section, path),
    )


def _free_text(section: dict, path: Path) -> tuple[str, ...]:
    from pipeline.schemas.raw import free_text_columns

    value = section.get("keep_free_text", [])
    allowed = sorted({c for columns in free_text_columns().values() for c in columns})
    if not isinstance(value, list) or any(c not in allowed for c in value):
        raise _fail(
            path,
            "privacy.keep_free_text",
            f"must be a list drawn from {', '.join(allowed)}, got {value!r}",
        )
    return tuple(value)


BACKENDS = ("pandas", "polars", "dask")


def load_engine(raw: dict[str, Any], path: Path) -> EngineSettings:
    """Read the optional ``[engine]`` section (workers, fit-cache key, backend, partitions)."""
    section = _section(raw, "engine", path, EngineSettings, required=False)
    key_file = section.get("cache_key_file")
    d = EngineSettings()
    backend = _choice(section, "backend", path, "engine", d.backend, BACKENDS)
    scheduler = _text(section, "scheduler", path, "engine", d.scheduler)
    if scheduler != "local" and not re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d{1,5}", scheduler):
        raise _fail(
            path,
            "engine.scheduler",
            f'must be "local" or a scheduler address such as "tcp://10.0.0.5:8786", '
            f"got {scheduler!r}",
        )
    if "scheduler" in section and backend != "dask":
        raise _fail(path, "engine.scheduler", f'is read by backend = "dask" only, not {backend!r}')
    memory = _text(section, "worker_memory", path, "engine", d.worker_memory)
    if not re.fullmatch(r"\d+(\.\d+)?\s*(MB|GB|MiB|GiB)", memory):
        raise _fail(
            path, "engine.worker_memory", f'must be a size such as "4GB" or "512MB", got {memory!r}'
        )
    return EngineSettings(
        workers=_whole(section, "workers", path, "engine", d.workers, 0, 512),
        cache_key_file=_path(section, "cache_key_file", path, "engine") if key_file else None,
        backend=backend,
        scheduler=scheduler,
        partition_size=_whole(
            section, "partition_size", path, "engine", d.partition_size, 1, 100_000_000
        ),
        worker_memory=memory,
    )


def load_report(raw: dict[str, Any], path: Path) -> ReportSettings:
    """Read the optional ``[report]`` section (PDF, browser, spaghetti sample, planning)."""
    section = _section(raw, "report", path, ReportSettings, required=False)
    d = ReportSettings()
    return ReportSettings(
        pdf=_flag(section, "pdf", path, "report", d.pdf),
        browser=_path(section, "browser", path, "report") if "browser" in section else None,
        spaghetti_patients=_whole(
            section, "spaghetti_patients", path, "report", d.spaghetti_patients, 1, 100
        ),
        planning=_flag(section, "planning", path, "report", d.planning),
    )


def strptime_pattern(date_format: str) -> str:
    """Turn a date format written like ``DD/MM/YYYY`` into a :func:`~time.strptime` pattern.

    ``YYYY``, ``MM`` and ``DD`` must each appear once (``MM`` and ``DD`` also read one digit),
    separated by nothing or by ``-``, ``/``, ``.`` or spaces.

    Raises
    ------
    ValueError
        When the text is not such a format.
    """
    text, out, seen, k = date_format.strip().upper(), "", [], 0
    while k < len(text):
        token = next((t for t in ("YYYY", "MM", "DD") if text.startswith(t, k)), None)
        if token:
            out += {"YYYY": "%Y", "MM": "%m", "DD": "%d"}[token]
            seen.append(token)
            k += len(token)
        elif text[k] in "-/. ":
            out += text[k]
            k += 1
        else:
            raise ValueError(date_format)
    if sorted(seen) != ["DD", "MM", "YYYY"]:
        raise ValueError(date_format)
    return out


def _text(section: dict, key: str, path: Path, name: str, default: str | None) -> str | None:
    value = section.get(key, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _fail(path, f"{name}.{key}", f"must be text in quotes, got {value!r}")
    return value


def _patterns(value: object, path: Path, name: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise _fail(path, name, "must be a file path (or glob) in quotes, or a list of them")
    out = []
    for item in values:
        if not isinstance(item, str) or not item.strip():
            raise _fail(path, name, f"must hold file paths in quotes, got {item!r}")
        out.append(item if Path(item).is_absolute() else str(path.parent / item))
    return tuple(out)


def _text_map(
    section: object, path: Path, name: str, *, keys: tuple | None = None, empty: bool = False
) -> dict:
    if not isinstance(section, dict):
        raise _fail(path, name, "must be a table of keys, e.g. [" + name + "]")
    out = {}
    for key, value in section.items():
        if keys is not None and key not in keys:
            raise _fail(path, name, f"unknown column '{key}' (allowed: {', '.join(keys)})")
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, int | float):
            value = f"{value:g}"
        if not isinstance(value, str) or not (value.strip() or (empty and value == "")):
            raise _fail(path, f"{name}.{key}", f"must be text in quotes, got {value!r}")
        out[str(key)] = value
    return out


def _same_column(name: str) -> str:
    return " ".join(name.split()).casefold()


def _one_column_each(mapping: dict[str, str], path: Path, name: str) -> None:
    """Two canonical columns mapped to one clinic column is an error (which one is meant?).

    Except the pairs of :data:`SHARED_MEANINGS`, which one column may fill together.
    """
    seen: dict[str, str] = {}
    for canonical, clinic in mapping.items():
        other = seen.setdefault(_same_column(clinic), canonical)
        pair = frozenset({other.split(".")[-1], canonical.split(".")[-1]})
        if other != canonical and pair not in SHARED_MEANINGS:
            raise _fail(
                path,
                name,
                f"{other} and {canonical} both map to '{clinic}'; a clinic column can fill "
                f"only one canonical column",
            )


def _vocabulary_section(section: object, path: Path, name: str = "vocabulary") -> dict:
    """Check a ``[vocabulary]`` table; return its keys as given (see :mod:`.vocabulary`)."""
    if not isinstance(section, dict):
        raise _fail(path, name, "must be a table with languages, yes, no and missing")
    _check_keys(section, {"languages", "yes", "no", "missing"}, path, name)
    out = {}
    for key, value in section.items():
        if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
            raise _fail(path, f"{name}.{key}", 'must be a list of words, e.g. ["ja", "j"]')
        if key == "languages":
            unknown = [w for w in value if w not in LANGUAGES]
            if unknown:
                raise _fail(
                    path,
                    f"{name}.languages",
                    f"unknown language '{unknown[0]}' (built in: {', '.join(LANGUAGES)})",
                )
        out[key] = tuple(value)
    return out


def _vocabulary(section: object, path: Path, name: str, common: dict) -> Vocabulary:
    """Return a source's vocabulary: its languages (else the global ones), all words added."""
    own = _vocabulary_section(section, path, name)
    languages = own.get("languages", common.get("languages", tuple(LANGUAGES)))
    words = {k: common.get(k, ()) + own.get(k, ()) for k in ("yes", "no", "missing")}
    vocabulary = Vocabulary.of(tuple(languages), **words)
    clash = vocabulary.clashes()
    if clash:
        raise _fail(path, name, f"{clash}; list it once")
    return vocabulary


def _shift(section: object, path: Path, name: str, kinds: dict[str, str]) -> dict[str, int]:
    """Check ``[sources.shift]``: whole numbers added to whole-number columns (visit = -1)."""
    if not isinstance(section, dict):
        raise _fail(path, name, "must map whole-number columns to a number to add, e.g. visit = -1")
    out = {}
    for column, step in section.items():
        if kinds.get(column) != "integer":
            raise _fail(path, f"{name}.{column}", "only whole-number columns can be shifted")
        if isinstance(step, bool) or not isinstance(step, int):
            raise _fail(path, f"{name}.{column}", f"must be a whole number, got {step!r}")
        out[str(column)] = int(step)
    return out


def _time_points(
    section: object, table: str, path: Path, name: str, extra: tuple[str, ...] = ()
) -> TimePoints:
    from pipeline.schemas.raw import column_names

    if not isinstance(section, dict):
        raise _fail(path, name, "must be a table with points and columns")
    _check_keys(section, {"points", "columns", "weeks", "date_from"}, path, name)
    points = section.get("points")
    if not isinstance(points, dict) or not points:
        raise _fail(path, f"{name}.points", "must map each time-point label to its number")
    for label, number in points.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise _fail(path, f"{name}.points.{label}", f"must be a whole number, got {number!r}")
    number_column = "visit" if table == "assessments" else "session_number"
    allowed = tuple(c for c in column_names(table) if c not in (PATIENT_ID, number_column))
    allowed += extra + ((ODI_ANSWERED,) if table == "assessments" else ())
    columns = _text_map(section.get("columns", {}), path, f"{name}.columns", keys=allowed)
    weeks = section.get("weeks", {})
    if not isinstance(weeks, dict) or any(
        isinstance(w, bool) or not isinstance(w, int | float) for w in weeks.values()
    ):
        raise _fail(path, f"{name}.weeks", "must map time-point labels to numbers of weeks")
    unknown = sorted(set(weeks) - set(points))
    if unknown:
        raise _fail(path, f"{name}.weeks", f"'{unknown[0]}' is not one of the points")
    date_column = "assessment_date" if table == "assessments" else "session_date"
    date_from = _text(section, "date_from", path, name, None)
    # Assessments may be timed by their weeks alone (no dates): a wide file without dates.
    by_weeks = table == "assessments" and "weeks" not in columns and bool(weeks)
    if date_column not in columns and "weeks" not in columns:
        if date_from is None and not by_weeks:
            raise _fail(
                path,
                name,
                f"needs columns.{date_column}, or weeks (with date_from to make dates)"
                if table == "assessments"
                else f"needs columns.{date_column} or date_from with weeks",
            )
        missing = [p for p in points if p not in weeks]
        if missing:
            raise _fail(path, f"{name}.weeks", f"gives no week for the point '{missing[0]}'")
    return TimePoints(
        points={str(k): int(v) for k, v in points.items()},
        columns=columns,
        weeks={str(k): float(v) for k, v in weeks.items()},
        date_from=date_from,
    )


def _source(
    entry: object,
    number: int,
    path: Path,
    extra: dict[str, dict[str, str]] | None = None,
    vocabulary: dict | None = None,
) -> Source:
    """Check one ``[[sources]]`` entry and return it typed.

    ``extra`` holds the study's own columns (:meth:`Study.extra_columns`), which the entry may
    map like the columns of the data contract.
    """
    from pipeline.schemas.raw import TABLES, column_kinds, column_names

    name = f"sources.{number}"
    if not isinstance(entry, dict):
        raise _fail(path, name, "must be a table of keys")
    kind = entry.get("kind")
    if kind not in SOURCE_KINDS:
        raise _fail(path, f"{name}.kind", f"must be one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    common = {"kind", "delimiter", "encoding", "decimal", "header_row", "sheet", "date_format"}
    common |= {"patient_id", "id_prefix", "site", "sites", "columns", "codes", "units", "shift"}
    common |= {"vocabulary"}
    own = {
        "canonical": {"patients", "sessions", "assessments", "adverse_events"},
        "visit_sheet": {"files", "adverse_events"},
        "wide": {"files", "assessments", "sessions", "adverse_events"},
        "redcap": {"files", "dictionary", "instruments", "events", "session_events", "arms"}
        | {"adverse_events"},
    }[kind]
    _check_keys(entry, common | own, path, name)

    if kind == "canonical":
        files = {t: _patterns(entry[t], path, f"{name}.{t}") for t in TABLES if t in entry}
        if not files:
            raise _fail(path, name, "a canonical source names at least one of " + ", ".join(TABLES))
    else:
        if "files" not in entry:
            raise _fail(path, name, "needs files = [...] (paths or globs)")
        files = {"data": _patterns(entry["files"], path, f"{name}.files")}

    extra = extra or {}
    every = {c: k for t in TABLES for c, k in column_kinds(t).items()}
    for table_extra in extra.values():
        every.update(table_extra)
    allowed = tuple(every) + ((VISIT_DATE,) if kind == "visit_sheet" else ())
    allowed += (ODI_ANSWERED,) if kind in ("visit_sheet", "canonical", "redcap") else ()
    columns = _text_map(entry.get("columns", {}), path, f"{name}.columns", keys=allowed)
    patient_id = _choice(entry, "patient_id", path, name, "compact", PATIENT_ID_RULES)
    if patient_id == "row" and kind != "wide":
        raise _fail(
            path,
            f"{name}.patient_id",
            "'row' (the row number as identifier) needs a wide source, one row per patient",
        )
    if patient_id == "row" and "patient_id" in columns:
        raise _fail(
            path, f"{name}.patient_id", "is 'row', so columns.patient_id must not be mapped too"
        )
    if kind == "wide":
        patient_columns = column_names("patients") + tuple(extra.get("patients", {}))
        stray = [c for c in columns if c not in patient_columns]
        if stray:
            raise _fail(
                path,
                f"{name}.columns",
                f"'{stray[0]}' is not a patients column; map it under "
                f"[{name}.assessments.columns] or [{name}.sessions.columns] with {{t}}",
            )
    if kind == "canonical":
        for table in TABLES:
            own = column_names(table) + tuple(extra.get(table, {}))
            mine = {c: v for c, v in columns.items() if c in own}
            _one_column_each(mine, path, f"{name}.columns")
    else:
        _one_column_each(columns, path, f"{name}.columns")

    codes_raw = entry.get("codes", {})
    if not isinstance(codes_raw, dict):
        raise _fail(
            path, f"{name}.codes", "must hold one table per column, e.g. [sources.codes.depth]"
        )
    codes = {}
    for column, mapping in codes_raw.items():
        if column not in allowed:
            raise _fail(path, f"{name}.codes", f"unknown column '{column}'")
        # a code mapped to "" means missing (e.g. "9" = "" for "not recorded")
        codes[column] = _text_map(mapping, path, f"{name}.codes.{column}", empty=True)
        folded: dict[str, str] = {}
        for code in codes[column]:
            other = folded.setdefault(_same_column(code), code)
            if other != code:
                raise _fail(
                    path, f"{name}.codes.{column}", f"'{other}' and '{code}' are the same code"
                )

    units = _text_map(entry.get("units", {}), path, f"{name}.units", keys=tuple(SOURCE_UNITS))
    for column, unit in units.items():
        if unit not in SOURCE_UNITS[column]:
            raise _fail(
                path,
                f"{name}.units.{column}",
                f"must be one of {', '.join(SOURCE_UNITS[column])}, got {unit!r}",
            )

    shift = _shift(entry.get("shift", {}), path, f"{name}.shift", every)
    words = _vocabulary(entry.get("vocabulary", {}), path, f"{name}.vocabulary", vocabulary or {})

    date_format = _text(entry, "date_format", path, name, "YYYY-MM-DD")
    try:
        strptime_pattern(date_format)
    except ValueError:
        raise _fail(
            path,
            f"{name}.date_format",
            f"must be written like DD/MM/YYYY or YYYY-MM-DD, got {date_format!r}",
        ) from None
    encoding = _text(entry, "encoding", path, name, "auto")
    if encoding != "auto":
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise _fail(path, f"{name}.encoding", f"unknown encoding {encoding!r}") from None
    site = _text(entry, "site", path, name, None)
    sites = _text_map(entry.get("sites", {}), path, f"{name}.sites")
    if site and sites:
        raise _fail(path, name, "give site (one clinic) or [sites] (per file), not both")
    if (site or sites) and "site" in columns:
        raise _fail(path, name, "site is set here and also mapped in columns; keep one")

    time_points = {}
    if kind == "wide":
        for table in ("assessments", "sessions"):
            if table in entry:
                time_points[table] = _time_points(
                    entry[table], table, path, f"{name}.{table}", tuple(extra.get(table, {}))
                )
        if "assessments" not in time_points:
            raise _fail(path, name, f"a wide source needs [{name}.assessments] (points, columns)")
        patterns = dict(columns)
        for table, group in time_points.items():
            patterns.update({f"{table}.{c}": p for c, p in group.columns.items()})
        _one_column_each(patterns, path, name)

    instruments, events, session_events, arms, dictionary = {}, {}, {}, {}, None
    if kind == "redcap":
        dictionary = _patterns(entry.get("dictionary"), path, f"{name}.dictionary")[0]
        instruments = _text_map(
            entry.get("instruments", {}), path, f"{name}.instruments", keys=TABLES
        )
        if not instruments:
            raise _fail(path, f"{name}.instruments", "must name the instrument of each table")
        for key, word, into in (
            ("events", "visit", events),
            ("session_events", "session", session_events),
        ):
            events_raw = entry.get(key, {})
            if not isinstance(events_raw, dict):
                raise _fail(path, f"{name}.{key}", f"must map event names to {word} numbers")
            for event, number in events_raw.items():
                if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                    raise _fail(
                        path, f"{name}.{key}.{event}", f"must be a {word} number, got {number!r}"
                    )
                into[str(event)] = int(number)
        arms = _text_map(entry.get("arms", {}), path, f"{name}.arms")

    adverse_events = None
    if "adverse_events" in entry:
        if kind == "canonical" and "sessions" not in files:
            raise _fail(
                path,
                f"{name}.adverse_events",
                "describes the sessions' adverse events, but this source names no sessions file",
            )
        adverse_events = _event_columns(entry["adverse_events"], path, f"{name}.adverse_events")
        session_columns, where = columns, f"{name}.columns"
        if kind == "wide":
            session_columns, where = _wide_events(adverse_events, time_points, path, name)
        if kind == "redcap" and "sessions" not in instruments:
            raise _fail(
                path,
                f"{name}.adverse_events",
                f"describes the sessions' adverse events, but [{name}.instruments] names no "
                f"sessions instrument",
            )
        taken = [c for c in ("adverse_event", "ae_severity") if c in session_columns]
        if taken:
            raise _fail(
                path,
                where,
                f"maps {taken[0]}, and [{name}.adverse_events] records the adverse events too; "
                f"a source records them one way, so remove one of them",
            )
        mapped = {_same_column(v): c for c, v in columns.items()}
        mapped.update({_same_column(v): c for c, v in session_columns.items()})
        for clinic in adverse_events.clinic_columns():
            if _same_column(clinic) in mapped:
                raise _fail(
                    path,
                    f"{name}.adverse_events",
                    f"reads '{clinic}', which [{name}.columns] maps to "
                    f"{mapped[_same_column(clinic)]}; a clinic column can fill only one field",
                )

    d = Source(number=number, kind=kind, config=path, files=files)
    return Source(
        number=number,
        kind=kind,
        config=path,
        files=files,
        dictionary=dictionary,
        site=site,
        sites=sites,
        delimiter=_choice(entry, "delimiter", path, name, d.delimiter, SOURCE_DELIMITERS),
        encoding=encoding,
        decimal=_choice(entry, "decimal", path, name, d.decimal, (".", ",")),
        header_row=_whole(entry, "header_row", path, name, d.header_row, 1, 10_000),
        sheet=_text(entry, "sheet", path, name, None),
        date_format=date_format,
        patient_id=patient_id,
        id_prefix=_text(entry, "id_prefix", path, name, None) or "",
        columns=columns,
        codes=codes,
        units=units,
        shift=shift,
        vocabulary=words,
        time_points=time_points,
        instruments=instruments,
        events=events,
        session_events=session_events,
        arms=arms,
        adverse_events=adverse_events,
        extra={t: dict(c) for t, c in extra.items()},
    )


EVENT_KEYS = {"flags", "list", "delimiter", "codes", "severity"}


def _wide_events(
    events: EventColumns, time_points: dict[str, TimePoints], path: Path, name: str
) -> tuple[dict[str, str], str]:
    """Check a wide source's event columns: per-session patterns beside a sessions group.

    Returns the sessions group's columns and its key, which the event columns must not repeat.
    """
    if "sessions" not in time_points:
        raise _fail(
            path,
            f"{name}.adverse_events",
            f"describes the sessions' adverse events, but this wide source has no "
            f"[{name}.sessions] group (points, columns) to tie them to",
        )
    for clinic in events.clinic_columns():
        if "{t}" not in clinic:
            raise _fail(
                path,
                f"{name}.adverse_events",
                f"reads '{clinic}', which has no {{t}}; in a wide file each session has its own "
                f"event columns, so write them as patterns like 'ae_soreness_{{t}}' (the "
                f"session's label in place of {{t}}, as in [{name}.sessions.columns])",
            )
    return time_points["sessions"].columns, f"{name}.sessions.columns"


def _event_columns(section: object, path: Path, name: str) -> EventColumns:
    """Check ``[sources.N.adverse_events]``: flag columns and/or a list column, severities."""
    from pipeline.schemas.raw import AE_TYPES

    if not isinstance(section, dict):
        raise _fail(path, name, "must be a table with flags and/or list (see docs/ingestion.md)")
    _check_keys(section, EVENT_KEYS, path, name)
    known = ", ".join(AE_TYPES)
    flags = _text_map(section.get("flags", {}), path, f"{name}.flags")
    for column, kind in flags.items():
        if kind not in AE_TYPES:
            raise _fail(
                path,
                f"{name}.flags",
                f"maps '{column}' to '{kind}', which is not an adverse-event type ({known})",
            )
    _one_column_each({f"flags.{k}": k for k in flags}, path, f"{name}.flags")
    list_column = _text(section, "list", path, name, None)
    if not flags and list_column is None:
        raise _fail(
            path,
            name,
            'needs flags = { column = "type", ... } (one yes/no column per event type) or '
            'list = "column" (one column listing the events)',
        )
    if list_column is not None and any(_same_column(list_column) == _same_column(c) for c in flags):
        raise _fail(path, f"{name}.list", f"'{list_column}' is a flag column too; keep one")
    delimiter = _text(section, "delimiter", path, name, ";")
    if len(delimiter.strip()) != 1:
        raise _fail(
            path, f"{name}.delimiter", f"must be one character such as ';', got {delimiter!r}"
        )
    if "delimiter" in section and list_column is None:
        raise _fail(path, f"{name}.delimiter", "is set, but no list column is named (list = ...)")
    codes = _text_map(section.get("codes", {}), path, f"{name}.codes")
    if codes and list_column is None:
        raise _fail(path, f"{name}.codes", "translates listed items, but no list column is named")
    folded: dict[str, str] = {}
    for item, kind in codes.items():
        if kind not in (*AE_TYPES, "none"):
            raise _fail(
                path,
                f"{name}.codes",
                f"maps '{item}' to '{kind}', which is not an adverse-event type ({known}) or none",
            )
        if delimiter.strip() in item:
            raise _fail(
                path,
                f"{name}.codes",
                f"'{item}' contains the delimiter '{delimiter.strip()}', so it can never be "
                f"one item of the list",
            )
        other = folded.setdefault(_same_column(item), item)
        if other != item:
            raise _fail(path, f"{name}.codes", f"'{other}' and '{item}' are the same item")
    raw_severity = section.get("severity")
    severity, flag_severity = None, {}
    if isinstance(raw_severity, dict):
        flag_severity = _text_map(raw_severity, path, f"{name}.severity")
        stray = [c for c in flag_severity if c not in flags]
        if stray:
            raise _fail(
                path,
                f"{name}.severity",
                f"names '{stray[0]}', which is not one of the flag columns ({', '.join(flags)})",
            )
    elif raw_severity is not None:
        severity = _text(section, "severity", path, name, None)
    reads = [*flags, list_column, severity, *flag_severity.values()]
    seen: dict[str, str] = {}
    for clinic in [c for c in reads if c]:
        if seen.setdefault(_same_column(clinic), clinic) != clinic or reads.count(clinic) > 1:
            raise _fail(path, name, f"reads the column '{clinic}' twice; each has one meaning")
    return EventColumns(
        flags=flags,
        flag_severity=flag_severity,
        list_column=list_column,
        delimiter=delimiter.strip(),
        codes=codes,
        severity=severity,
    )


def load_sources(
    raw: dict[str, Any], path: Path, extra: dict[str, dict[str, str]] | None = None
) -> tuple[Inputs | None, tuple[Source, ...]]:
    """Read the input files: the ``[inputs]`` form or the ``[[sources]]`` entries (not both).

    ``extra`` holds the study's own columns (:meth:`Study.extra_columns`). No source needs to
    provide the sessions table: a study without a session log runs without it.

    Returns
    -------
    inputs : Inputs or None
        The three canonical paths of the ``[inputs]`` form; ``None`` with ``[[sources]]``.
    sources : tuple of Source
        The sources to read; the ``[inputs]`` form becomes one canonical source read exactly as
        written (``legacy``).
    """
    from pipeline.schemas.raw import TABLES

    if "sources" not in raw:
        if "inputs" not in raw:
            raise _missing(path, "inputs", " (or declare [[sources]])")
        inputs = _paths(raw, "inputs", path, Inputs)
        legacy = Source(
            number=0,
            kind="canonical",
            config=path,
            files={t: (str(p),) for t, p in inputs.as_dict().items()},
            delimiter=",",
            encoding="utf-8",
            patient_id="as_written",
            legacy=True,
            extra={t: dict(c) for t, c in (extra or {}).items()},
        )
        return inputs, (legacy,)
    if "inputs" in raw:
        raise _fail(path, "inputs", "and [[sources]] are both given; declare the files in one")
    entries = raw["sources"]
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "sources", "must be one or more [[sources]] tables")
    common = _vocabulary_section(raw.get("vocabulary", {}), path)
    sources = tuple(
        _source(entry, k, path, extra, common) for k, entry in enumerate(entries, start=1)
    )
    provided = {t for s in sources for t in s.tables()}
    for table in TABLES:
        if table not in provided and table != "sessions":
            raise _fail(path, "sources", f"no source provides the {table} table")
    return None, sources


# --- the study: outcomes, comparisons, covariates, time (see docs/study-design.md) -----------
OUTCOME_KEYS = {
    "instrument",
    "column",
    "label",
    "short",
    "unit",
    "low",
    "high",
    "direction",
    "mcid_points",
    "mcid_percent",
    "scoring",
    "integer",
}
COMPARISON_KEYS = {"name", "kind", "column", "reference", "label", "levels"}
COVARIATE_KEYS = {"kind", "reference", "label"}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def _identifier(value: object, path: Path, key: str) -> str:
    """Check a name usable as a column and in analysis labels: lower case, digits, underscores."""
    if (
        not isinstance(value, str)
        or not value
        or not set(value) <= _NAME_CHARS
        or value[0].isdigit()
    ):
        raise _fail(
            path,
            key,
            f"must be a name of lower-case letters, digits and underscores, got {value!r}",
        )
    return value


def _optional_number(section: dict, key: str, path: Path, name: str, default: float | None):
    if key not in section:
        return default
    return float(_number(section, key, path, name, 0, -1e9, 1e9))


def _outcome(name: str, section: object, path: Path) -> Outcome:
    """Check one ``[outcomes.NAME]`` table and return the outcome."""
    from pipeline.schemas.raw import column_names

    key = f"outcomes.{name}"
    _identifier(name, path, key)
    if not isinstance(section, dict):
        raise _fail(path, key, 'must be a table of keys, e.g. instrument = "rmdq"')
    _check_keys(section, OUTCOME_KEYS, path, key)
    instrument = section.get("instrument")
    if instrument is not None and instrument not in LIBRARY:
        raise _fail(
            path,
            f"{key}.instrument",
            f"must be one of the library instruments {', '.join(LIBRARY)}, got {instrument!r}",
        )
    base = None
    if instrument:
        base = library_outcome(instrument, BUILT_IN_COLUMNS.get(instrument, name))
    else:
        missing = [k for k in ("low", "high", "direction") if k not in section]
        if missing:
            raise _fail(
                path,
                key,
                f"names no library instrument, so it needs {missing[0]} (or instrument = one "
                f"of {', '.join(LIBRARY)})",
            )
    column = _identifier(section.get("column", base.column if base else name), path, key)
    if column in column_names("assessments") and column not in BUILT_IN_COLUMNS.values():
        raise _fail(
            path, f"{key}.column", f"'{column}' is a column of the data contract, not a score"
        )
    low = _optional_number(section, "low", path, key, base.low if base else None)
    high = _optional_number(section, "high", path, key, base.high if base else None)
    if high <= low:
        raise _fail(path, f"{key}.high", f"must be above low ({low:g}), got {high:g}")
    direction = _choice(section, "direction", path, key, base.direction if base else "", DIRECTIONS)
    points = _optional_number(section, "mcid_points", path, key, base.mcid.points if base else None)
    percent = _optional_number(
        section, "mcid_percent", path, key, base.mcid.percent if base else None
    )
    if points is not None and not 0 < points <= high - low:
        raise _fail(
            path,
            f"{key}.mcid_points",
            f"must be above 0 and at most the range ({high - low:g}), got {points:g}",
        )
    if percent is not None and not 0 < percent <= 100:
        raise _fail(path, f"{key}.mcid_percent", f"must be between 0 and 100, got {percent:g}")
    if points is None and percent is None:
        raise _fail(path, key, "needs mcid_points or mcid_percent (the smallest important change)")
    scoring = _choice(section, "scoring", path, key, base.scoring if base else "recorded", SCORINGS)
    if scoring == "odi_items" and column != "odi":
        raise _fail(
            path, f"{key}.scoring", "'odi_items' scores the ODI sections into the odi column"
        )
    return Outcome(
        name=name,
        column=column,
        label=_text(section, "label", path, key, base.label if base else name),
        short=_text(section, "short", path, key, base.short if base else name.upper()),
        unit=_text(section, "unit", path, key, base.unit if base else "points"),
        low=float(low),
        high=float(high),
        direction=direction,
        mcid=Mcid(points, percent),
        scoring=scoring,
        source=base.source if base else "declared in the configuration",
        integer=_flag(section, "integer", path, key, base.integer if base else False),
    )


def _comparison(entry: object, number: int, path: Path, covariates: dict) -> Comparison:
    """Check one ``[[comparisons]]`` entry and return it."""
    key = f"comparisons.{number}"
    if not isinstance(entry, dict):
        raise _fail(path, key, "must be a table of keys")
    _check_keys(entry, COMPARISON_KEYS, path, key)
    kind = entry.get("kind")
    if kind not in COMPARISON_KINDS:
        raise _fail(
            path, f"{key}.kind", f"must be one of {', '.join(COMPARISON_KINDS)}, got {kind!r}"
        )
    if kind in ("depth", "twitch"):
        default = next(c for c in DEFAULT_COMPARISONS if c.kind == kind)
        for given in ("column", "levels"):
            if given in entry:
                raise _fail(path, f"{key}.{given}", f"is fixed for the built-in {kind} exposure")
        reference = entry.get("reference", default.reference)
        if reference not in default.levels:
            raise _fail(
                path,
                f"{key}.reference",
                f"must be one of {', '.join(default.levels)}, got {reference!r}",
            )
        return Comparison(
            name=_identifier(entry.get("name", kind), path, f"{key}.name"),
            kind=kind,
            column=kind,
            reference=reference,
            label=_text(entry, "label", path, key, default.label),
            levels=(reference, *(v for v in default.levels if v != reference)),
        )
    column = entry.get("column", "arm" if kind == "randomised" else None)
    if column is None:
        raise _fail(path, f"{key}.column", "is required: the patient column holding the groups")
    column = _identifier(column, path, f"{key}.column")
    if column in covariates and covariates[column].kind == "number":
        raise _fail(path, f"{key}.column", f"'{column}' is declared a numeric covariate")
    if "reference" not in entry:
        raise _fail(path, f"{key}.reference", "is required: the level the others are compared with")
    reference = _text(entry, "reference", path, key, None)
    levels = entry.get("levels", [])
    if not isinstance(levels, list) or any(not isinstance(v, str) or not v for v in levels):
        raise _fail(path, f"{key}.levels", "must be a list of levels in quotes")
    if levels and reference not in levels:
        raise _fail(path, f"{key}.reference", f"'{reference}' is not one of the levels")
    if len(set(levels)) != len(levels):
        raise _fail(path, f"{key}.levels", "names a level twice")
    default_label = "randomised arm" if kind == "randomised" else column
    return Comparison(
        name=_identifier(entry.get("name", column), path, f"{key}.name"),
        kind=kind,
        column=column,
        reference=reference,
        label=_text(entry, "label", path, key, default_label),
        levels=(reference, *(v for v in levels if v != reference)) if levels else (),
    )


def _covariates_table(raw: dict[str, Any], path: Path) -> dict[str, Covariate]:
    section = _table(raw, "covariates", path, required=False)
    out = {}
    for name, entry in section.items():
        key = f"covariates.{name}"
        _identifier(name, path, key)
        if name in BUILT_IN_COVARIATES:
            raise _fail(path, key, f"'{name}' is built in; name it in [model] covariates only")
        if not isinstance(entry, dict):
            raise _fail(path, key, 'must be a table of keys, e.g. kind = "category"')
        _check_keys(entry, COVARIATE_KEYS, path, key)
        kind = entry.get("kind")
        if kind not in COVARIATE_KINDS:
            raise _fail(
                path, f"{key}.kind", f"must be one of {', '.join(COVARIATE_KINDS)}, got {kind!r}"
            )
        reference = _text(entry, "reference", path, key, None)
        if reference is not None and kind == "number":
            raise _fail(path, f"{key}.reference", "applies to a category, not a number")
        out[name] = Covariate(
            name=name, kind=kind, reference=reference, label=_text(entry, "label", path, key, name)
        )
    return out


def _time(raw: dict[str, Any], path: Path) -> TimeSettings:
    section = _table(raw, "time", path, required=False)
    _check_keys(section, {"source", "visit_weeks", "primary_visit"}, path, "time")
    source = _choice(section, "source", path, "time", "dates", TIME_SOURCES)
    mapping = section.get("visit_weeks", {})
    if not isinstance(mapping, dict):
        raise _fail(path, "time.visit_weeks", 'must map visit numbers to weeks, e.g. "1" = 12')
    visit_weeks = {}
    for visit, weeks in mapping.items():
        if not str(visit).isdigit():
            raise _fail(path, "time.visit_weeks", f"'{visit}' is not a visit number")
        if isinstance(weeks, bool) or not isinstance(weeks, int | float) or weeks < 0:
            raise _fail(
                path, f"time.visit_weeks.{visit}", f"must be weeks (0 or more), got {weeks!r}"
            )
        visit_weeks[int(visit)] = float(weeks)
    if source == "visits" and not visit_weeks:
        raise _fail(path, "time.visit_weeks", 'is needed with source = "visits"')
    if source != "visits" and visit_weeks:
        raise _fail(path, "time.visit_weeks", 'is used only with source = "visits"')
    primary = None
    if "primary_visit" in section:
        primary = _whole(section, "primary_visit", path, "time", 1, 1, 100)
        if visit_weeks and primary not in visit_weeks:
            raise _fail(path, "time.primary_visit", f"visit {primary} is not in visit_weeks")
    return TimeSettings(source=source, visit_weeks=visit_weeks, primary_visit=primary)


def load_study(raw: dict[str, Any], path: Path) -> tuple[Study, dict[str, Mcid]]:
    """Read what the study declares, or the needling default when it declares nothing.

    The tables are ``[outcomes.NAME]``, ``[[comparisons]]``, ``[covariates.NAME]`` and
    ``[time]`` (``docs/study-design.md``); without ``[outcomes]`` the outcomes are NRS, VAS and
    ODI with the MCIDs of ``[mcid]``, without ``[[comparisons]]`` depth and twitch.

    Returns
    -------
    study : Study
        The declarations (``sessions`` is set later, from the sources).
    mcid : dict of str to Mcid
        The MCID of each outcome by name.
    """
    if "outcomes" in raw:
        if "mcid" in raw:
            raise _fail(path, "mcid", "and [outcomes] are both given; put each MCID in its outcome")
        section = _table(raw, "outcomes", path)
        if not section:
            raise _fail(path, "outcomes", "declares no outcome")
        outcomes = tuple(_outcome(name, entry, path) for name, entry in section.items())
        columns = [o.column for o in outcomes]
        twice = next((c for c in columns if columns.count(c) > 1), None)
        if twice:
            raise _fail(path, "outcomes", f"two outcomes use the column '{twice}'")
    else:
        outcomes = legacy_outcomes(load_mcid(raw, path))
    covariates = _covariates_table(raw, path)
    comparisons = DEFAULT_COMPARISONS
    if "comparisons" in raw:
        entries = raw["comparisons"]
        if not isinstance(entries, list) or not entries:
            raise _fail(path, "comparisons", "must be one or more [[comparisons]] tables")
        comparisons = tuple(
            _comparison(e, k, path, covariates) for k, e in enumerate(entries, start=1)
        )
        names = [c.name for c in comparisons]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice:
            raise _fail(path, "comparisons", f"two comparisons are named '{twice}'; set name")
    study = Study(
        outcomes=outcomes, comparisons=comparisons, covariates=covariates, time=_time(raw, path)
    )
    return study, {o.name: o.mcid for o in outcomes}


def load_mcid(raw: dict[str, Any], path: Path) -> dict[str, Mcid]:
    """Read ``[mcid.nrs]``, ``[mcid.vas]`` and ``[mcid.odi]`` (the needling default)."""
    mcid_raw = _table(raw, "mcid", path)
    _check_keys(mcid_raw, set(INSTRUMENTS), path, "mcid")
    mcid = {}
    for instrument in INSTRUMENTS:
        section = _table(mcid_raw, instrument, path, label=f"mcid.{instrument}")
        name = f"mcid.{instrument}"
        _check_keys(section, {"points", "percent"}, path, name)
        if "points" not in section or "percent" not in section:
            raise _fail(path, name, "needs both 'points' and 'percent'")
        mcid[instrument] = Mcid(
            points=float(_number(section, "points", path, name, 0, 0, 100)),
            percent=float(_number(section, "percent", path, name, 0, 0, 100)),
        )
    return mcid


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

    _check_keys(
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
        raise _missing(path, "inputs", " (or declare [[sources]])")
    study, mcid = load_study(raw, path)
    inputs, sources = load_sources(raw, path, study.extra_columns())
    has_sessions = any("sessions" in s.tables() for s in sources)
    study = replace(study, sessions=has_sessions)
    if not has_sessions:
        needs = next((c for c in study.comparisons if c.needs_sessions), None)
        if needs is not None:
            raise _fail(
                path,
                "comparisons",
                f"'{needs.name}' is derived from the session log, but no source provides "
                f"sessions; declare [[comparisons]] that the data hold (e.g. kind = "
                f'"randomised")',
            )

    outputs = _paths(raw, "outputs", path, Outputs)

    th_raw = _section(raw, "thresholds", path, Thresholds, required=False)
    d = Thresholds()
    max_missing = _whole(
        th_raw, "odi_max_missing_sections", path, "thresholds", d.odi_max_missing_sections, 0, 9
    )
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
        odi_max_missing_sections=max_missing,
        acute_below_weeks=float(acute),
        chronic_above_weeks=float(chronic),
    )

    # the missing-section rule applies to ODI totals given as raw points with answered sections
    sources = tuple(replace(s, odi_max_missing_sections=max_missing) for s in sources)

    m_raw = _section(raw, "model", path, ModelSettings, required=False)
    dm = ModelSettings()
    covariates = m_raw.get("covariates", list(dm.covariates))
    allowed_cov = (*BUILT_IN_COVARIATES, *study.covariates)
    if isinstance(covariates, list) and "site" in covariates:
        raise _fail(
            path, "model.covariates", "site is not a covariate here: set [model] site instead"
        )
    if not isinstance(covariates, list) or any(c not in allowed_cov for c in covariates):
        raise _fail(
            path,
            "model.covariates",
            f"must be a list drawn from {', '.join(allowed_cov)}, got {covariates!r}",
        )
    undeclared = [c for c in study.covariates if c not in covariates]
    if undeclared:
        raise _fail(
            path,
            f"covariates.{undeclared[0]}",
            "is declared but not in [model] covariates; add it there or remove the table",
        )
    min_sites = _whole(m_raw, "min_sites_random", path, "model", dm.min_sites_random, 2, 1000)
    random_slope = _flag(m_raw, "random_slope", path, "model", dm.random_slope)
    time_axis = _choice(m_raw, "time_axis", path, "model", dm.time_axis, TIME_AXES)
    if time_axis == "sessions" and not has_sessions:
        raise _fail(path, "model.time_axis", "is 'sessions', but no source provides sessions")
    model = ModelSettings(
        time_axis=time_axis,
        covariates=tuple(covariates),
        random_slope=random_slope,
        df_method=_choice(m_raw, "df_method", path, "model", dm.df_method, DF_METHODS),
        site=_choice(m_raw, "site", path, "model", dm.site, SITE_EFFECTS),
        min_sites_random=min_sites,
        mmrm_structures=_mmrm_structures(m_raw, path, dm.mmrm_structures),
        mmrm_df_method=_choice(
            m_raw, "mmrm_df_method", path, "model", dm.mmrm_df_method, MMRM_DF_METHODS
        ),
    )
    report = load_report(raw, path)
    planning = load_planning(raw, path)
    if report.planning and planning is None:
        raise _fail(
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


# --- estimand ---------------------------------------------------------------------------------


def load_estimand(raw: dict[str, Any], path: Path, study: Study) -> EstimandSettings | None:
    """Read ``[estimand]`` (docs/estimands.md): the question and the missing-data analyses.

    Returns
    -------
    EstimandSettings or None
        None when the file has no ``[estimand]`` section.

    Raises
    ------
    ConfigError
        One sentence naming the key, for any unknown or invalid value.
    """
    if "estimand" not in raw:
        return None
    name = "estimand"
    section = _section(raw, name, path, EstimandSettings, required=True)
    d = EstimandSettings()
    outcome = _text(section, "outcome", path, name, None)
    if outcome is not None and outcome not in [o.name for o in study.outcomes]:
        raise _fail(
            path,
            "estimand.outcome",
            f"must be a declared outcome ({', '.join(o.name for o in study.outcomes)}), "
            f"got {outcome!r}",
        )
    comparison = _text(section, "comparison", path, name, None)
    if comparison is not None and comparison not in [c.name for c in study.comparisons]:
        raise _fail(
            path,
            "estimand.comparison",
            f"must be a declared comparison ({', '.join(c.name for c in study.comparisons)}), "
            f"got {comparison!r}",
        )
    visit = section.get("visit")
    if visit is not None:
        visit = _whole(section, "visit", path, name, 1, 1, 100)
    events_raw = section.get("events", None)
    if events_raw is None:
        events = d.events
    else:
        if not isinstance(events_raw, dict):
            raise _fail(path, "estimand.events", "must hold tables such as [estimand.events.NAME]")
        events = []
        for event, table in events_raw.items():
            key = f"estimand.events.{event}"
            if event not in ESTIMAND_EVENTS:
                raise _fail(
                    path,
                    key,
                    f"is not an event this pipeline records: choose from "
                    f"{', '.join(ESTIMAND_EVENTS)}",
                )
            if not isinstance(table, dict):
                raise _fail(path, key, 'must be a table with strategy = "..."')
            _check_keys(table, {"strategy", "imputation"}, path, key)
            strategy = _choice(
                table, "strategy", path, key, "treatment policy", ESTIMAND_STRATEGIES
            )
            imputation = _choice(
                table, "imputation", path, key, DEFAULT_IMPUTATION[strategy], IMPUTATION_STRATEGIES
            )
            events.append(IntercurrentEvent(event, strategy, imputation))
        events = tuple(events)
    strategies = section.get("strategies", list(d.strategies))
    if (
        not isinstance(strategies, list)
        or not strategies
        or any(s not in IMPUTATION_STRATEGIES for s in strategies)
    ):
        raise _fail(
            path,
            "estimand.strategies",
            f"must be a list drawn from {', '.join(IMPUTATION_STRATEGIES)}, got {strategies!r}",
        )
    return EstimandSettings(
        population=_text(section, "population", path, name, None),
        outcome=outcome,
        comparison=comparison,
        visit=visit,
        summary=str(_text(section, "summary", path, name, d.summary)),
        events=events,
        strategies=tuple(dict.fromkeys(strategies)),
        tipping_deltas=_whole(section, "tipping_deltas", path, name, d.tipping_deltas, 3, 201),
        tipping_range=(
            float(_number(section, "tipping_range", path, name, 1.0, 0.01, 100))
            if "tipping_range" in section
            else None
        ),
        tipping_groups=_choice(
            section, "tipping_groups", path, name, d.tipping_groups, TIPPING_GROUPS
        ),
        jackknife=_flag(section, "jackknife", path, name, d.jackknife),
        jackknife_groups=_whole(
            section,
            "jackknife_groups",
            path,
            name,
            d.jackknife_groups,
            JACKKNIFE_GROUPS_MIN,
            10_000_000,
        ),
        jackknife_seed=_whole(
            section, "jackknife_seed", path, name, d.jackknife_seed, 0, 2**31 - 1
        ),
        mi_imputations=_whole(section, "mi_imputations", path, name, d.mi_imputations, 0, 10000),
        mi_seed=_whole(section, "mi_seed", path, name, d.mi_seed, 0, 2**31 - 1),
        covariance_by_group=_flag(
            section, "covariance_by_group", path, name, d.covariance_by_group
        ),
    )


# --- planning ---------------------------------------------------------------------------------


def _numbers(value: object, path: Path, key: str, lo: float, hi: float) -> tuple[float, ...]:
    """Read a number or a non-empty list of numbers, each within ``[lo, hi]``."""
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise _fail(path, key, f"must be a number or a list of numbers, got {value!r}")
    if any(not lo <= v <= hi for v in values):
        raise _fail(path, key, f"must hold numbers between {lo:g} and {hi:g}, got {value!r}")
    return tuple(float(v) for v in values)


def _planning_number(section: dict, key: str, path: Path, name: str, lo: float, hi: float):
    if key not in section:
        return None
    return float(_number(section, key, path, name, 0, lo, hi))


def _planning_dropout(value: object, levels: tuple[str, str], path: Path) -> dict:
    key = "planning.assumptions.dropout"
    if not isinstance(value, dict):
        return {"*": _numbers(value, path, key, 0.0, 0.99)}
    unknown = sorted(set(value) - set(levels))
    if unknown:
        raise _fail(path, key, f"'{unknown[0]}' is not a level compared ({' or '.join(levels)})")
    missing = [lv for lv in levels if lv not in value]
    if missing:
        raise _fail(path, key, f"gives no dropout for the level '{missing[0]}'")
    return {lv: _numbers(value[lv], path, f"{key}.{lv}", 0.0, 0.99) for lv in levels}


def _planning_assumptions(raw: dict, levels: tuple[str, str], path: Path) -> PlanningAssumptions:
    name = "planning.assumptions"
    section = raw.get("assumptions", {})
    if not isinstance(section, dict):
        raise _fail(path, name, "must be a table of keys, e.g. [planning.assumptions]")
    _check_keys(section, {f.name for f in fields(PlanningAssumptions)}, path, name)
    if "effect" in section and "effect_mcid" in section:
        raise _fail(path, name, "give effect (outcome units) or effect_mcid, not both")
    dropout = _planning_dropout(section.get("dropout", 0.0), levels, path)
    return PlanningAssumptions(
        effect=_planning_number(section, "effect", path, name, -1e6, 1e6),
        effect_mcid=_planning_number(section, "effect_mcid", path, name, -100, 100),
        sd_intercept=_planning_number(section, "sd_intercept", path, name, 0, 1e6),
        sd_slope=_planning_number(section, "sd_slope", path, name, 0, 1e6),
        correlation=_planning_number(section, "correlation", path, name, -1, 1),
        sd_residual=_planning_number(section, "sd_residual", path, name, 1e-9, 1e6),
        dropout=dropout,
    )


def load_planning(raw: dict[str, Any], path: Path) -> PlanningSettings | None:
    """Read the optional ``[planning]`` section (design and assumptions of the next study).

    Parameters
    ----------
    raw : dict
        The parsed TOML file.
    path : Path
        The file, for messages.

    Returns
    -------
    PlanningSettings or None
        None when the file has no ``[planning]`` section.

    Raises
    ------
    ConfigError
        One sentence naming the key, for any missing, unknown or invalid value.
    """
    if "planning" not in raw:
        return None
    section = _section(raw, "planning", path, PlanningSettings, required=True)
    d = PlanningSettings()
    name = "planning"
    comparison = _choice(
        section, "comparison", path, name, d.comparison, tuple(PLANNING_COMPARISONS)
    )
    levels = section.get("levels", list(PLANNING_COMPARISONS[comparison]))
    if (
        not isinstance(levels, list)
        or len(levels) != 2
        or any(not isinstance(v, str) or not v.strip() for v in levels)
        or levels[0] == levels[1]
    ):
        raise _fail(
            path, "planning.levels", f"must be two different levels in quotes, got {levels!r}"
        )
    levels = (levels[0], levels[1])
    weeks = None
    if "weeks" in section:
        weeks = _numbers(section["weeks"], path, "planning.weeks", 0, 520)
        if len(weeks) < 2 or weeks[0] != 0 or list(weeks) != sorted(set(weeks)):
            raise _fail(
                path,
                "planning.weeks",
                f"must start at 0 (baseline) and increase, with at least two visits, got {weeks}",
            )
    analysis = _choice(section, "analysis", path, name, d.analysis, PLANNING_ANALYSES)
    primary = _planning_number(section, "primary_week", path, name, 0, 520)
    if primary is not None and weeks is not None and primary not in weeks[1:]:
        raise _fail(
            path,
            "planning.primary_week",
            f"must be one of the post-baseline weeks, got {primary:g}",
        )
    n_grid = section.get("n_grid", list(d.n_grid))
    if (
        not isinstance(n_grid, list)
        or not n_grid
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 8 for v in n_grid)
    ):
        raise _fail(
            path,
            "planning.n_grid",
            f"must be a list of whole numbers of at least 8, got {n_grid!r}",
        )
    assumptions = _planning_assumptions(section, levels, path)
    for level, hazards in assumptions.dropout.items():
        if weeks is not None and len(hazards) not in (1, len(weeks) - 1):
            where = "planning.assumptions.dropout" + ("" if level == "*" else f".{level}")
            raise _fail(
                path,
                where,
                f"must be one number or one per post-baseline visit ({len(weeks) - 1}), "
                f"got {len(hazards)}",
            )
    return PlanningSettings(
        outcome=_choice(section, "outcome", path, name, d.outcome, INSTRUMENTS),
        comparison=comparison,
        levels=levels,
        allocation=float(_number(section, "allocation", path, name, d.allocation, 0.05, 20)),
        weeks=weeks,
        analysis=analysis,
        primary_week=primary,
        alpha=float(_number(section, "alpha", path, name, d.alpha, 1e-6, 0.5)),
        holm_family=_whole(section, "holm_family", path, name, d.holm_family, 1, 100),
        power=float(_number(section, "power", path, name, d.power, 0.05, 0.999)),
        n=_whole(section, "n", path, name, d.n, 8, 1_000_000),
        n_grid=tuple(sorted(set(n_grid))),
        sims=_whole(section, "sims", path, name, d.sims, 0, 1_000_000),
        seed=_whole(section, "seed", path, name, d.seed, 0, 2**32 - 1),
        assumptions=assumptions,
    )
