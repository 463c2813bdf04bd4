"""What the study declares: outcomes, comparisons, covariates and time (docs/study-design.md).

``[outcomes.NAME]`` (an :class:`Outcome`, from the instrument library of :mod:`.instruments` or
declared whole), ``[[comparisons]]``, ``[covariates.NAME]`` and ``[time]`` make a
:class:`Study`; without them the study is the needling default, NRS, VAS and ODI with the MCIDs
of ``[mcid]``, compared by needling depth and twitch share (:func:`load_study`). Nothing
happens at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config.instruments import (
    BUILT_IN_COLUMNS,
    DIRECTIONS,
    HIGHER_BETTER,
    LIBRARY,
    SCORINGS,
)
from pipeline.config.toml_values import (
    check_keys,
    fail,
    get_choice,
    get_flag,
    get_number,
    get_table,
    get_text,
    get_whole,
)
from pipeline.schemas.columns import INSTRUMENTS as INSTRUMENT_TABLE

INSTRUMENTS = tuple(INSTRUMENT_TABLE)


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
        raise fail(
            path,
            key,
            f"must be a name of lower-case letters, digits and underscores, got {value!r}",
        )
    return value


def _optional_number(section: dict, key: str, path: Path, name: str, default: float | None):
    if key not in section:
        return default
    return float(get_number(section, key, path, name, 0, -1e9, 1e9))


def _outcome(name: str, section: object, path: Path) -> Outcome:
    """Check one ``[outcomes.NAME]`` table and return the outcome."""
    from pipeline.schemas.raw import column_names

    key = f"outcomes.{name}"
    _identifier(name, path, key)
    if not isinstance(section, dict):
        raise fail(path, key, 'must be a table of keys, e.g. instrument = "rmdq"')
    check_keys(section, OUTCOME_KEYS, path, key)
    instrument = section.get("instrument")
    if instrument is not None and instrument not in LIBRARY:
        raise fail(
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
            raise fail(
                path,
                key,
                f"names no library instrument, so it needs {missing[0]} (or instrument = one "
                f"of {', '.join(LIBRARY)})",
            )
    column = _identifier(section.get("column", base.column if base else name), path, key)
    if column in column_names("assessments") and column not in BUILT_IN_COLUMNS.values():
        raise fail(
            path, f"{key}.column", f"'{column}' is a column of the data contract, not a score"
        )
    low = _optional_number(section, "low", path, key, base.low if base else None)
    high = _optional_number(section, "high", path, key, base.high if base else None)
    if high <= low:
        raise fail(path, f"{key}.high", f"must be above low ({low:g}), got {high:g}")
    direction = get_choice(
        section, "direction", path, key, base.direction if base else "", DIRECTIONS
    )
    points = _optional_number(section, "mcid_points", path, key, base.mcid.points if base else None)
    percent = _optional_number(
        section, "mcid_percent", path, key, base.mcid.percent if base else None
    )
    if points is not None and not 0 < points <= high - low:
        raise fail(
            path,
            f"{key}.mcid_points",
            f"must be above 0 and at most the range ({high - low:g}), got {points:g}",
        )
    if percent is not None and not 0 < percent <= 100:
        raise fail(path, f"{key}.mcid_percent", f"must be between 0 and 100, got {percent:g}")
    if points is None and percent is None:
        raise fail(path, key, "needs mcid_points or mcid_percent (the smallest important change)")
    scoring = get_choice(
        section, "scoring", path, key, base.scoring if base else "recorded", SCORINGS
    )
    if scoring == "odi_items" and column != "odi":
        raise fail(
            path, f"{key}.scoring", "'odi_items' scores the ODI sections into the odi column"
        )
    return Outcome(
        name=name,
        column=column,
        label=get_text(section, "label", path, key, base.label if base else name),
        short=get_text(section, "short", path, key, base.short if base else name.upper()),
        unit=get_text(section, "unit", path, key, base.unit if base else "points"),
        low=float(low),
        high=float(high),
        direction=direction,
        mcid=Mcid(points, percent),
        scoring=scoring,
        source=base.source if base else "declared in the configuration",
        integer=get_flag(section, "integer", path, key, base.integer if base else False),
    )


def _comparison(entry: object, number: int, path: Path, covariates: dict) -> Comparison:
    """Check one ``[[comparisons]]`` entry and return it."""
    key = f"comparisons.{number}"
    if not isinstance(entry, dict):
        raise fail(path, key, "must be a table of keys")
    check_keys(entry, COMPARISON_KEYS, path, key)
    kind = entry.get("kind")
    if kind not in COMPARISON_KINDS:
        raise fail(
            path, f"{key}.kind", f"must be one of {', '.join(COMPARISON_KINDS)}, got {kind!r}"
        )
    if kind in ("depth", "twitch"):
        default = next(c for c in DEFAULT_COMPARISONS if c.kind == kind)
        for given in ("column", "levels"):
            if given in entry:
                raise fail(path, f"{key}.{given}", f"is fixed for the built-in {kind} exposure")
        reference = entry.get("reference", default.reference)
        if reference not in default.levels:
            raise fail(
                path,
                f"{key}.reference",
                f"must be one of {', '.join(default.levels)}, got {reference!r}",
            )
        return Comparison(
            name=_identifier(entry.get("name", kind), path, f"{key}.name"),
            kind=kind,
            column=kind,
            reference=reference,
            label=get_text(entry, "label", path, key, default.label),
            levels=(reference, *(v for v in default.levels if v != reference)),
        )
    column = entry.get("column", "arm" if kind == "randomised" else None)
    if column is None:
        raise fail(path, f"{key}.column", "is required: the patient column holding the groups")
    column = _identifier(column, path, f"{key}.column")
    if column in covariates and covariates[column].kind == "number":
        raise fail(path, f"{key}.column", f"'{column}' is declared a numeric covariate")
    if "reference" not in entry:
        raise fail(path, f"{key}.reference", "is required: the level the others are compared with")
    reference = get_text(entry, "reference", path, key, None)
    levels = entry.get("levels", [])
    if not isinstance(levels, list) or any(not isinstance(v, str) or not v for v in levels):
        raise fail(path, f"{key}.levels", "must be a list of levels in quotes")
    if levels and reference not in levels:
        raise fail(path, f"{key}.reference", f"'{reference}' is not one of the levels")
    if len(set(levels)) != len(levels):
        raise fail(path, f"{key}.levels", "names a level twice")
    default_label = "randomised arm" if kind == "randomised" else column
    return Comparison(
        name=_identifier(entry.get("name", column), path, f"{key}.name"),
        kind=kind,
        column=column,
        reference=reference,
        label=get_text(entry, "label", path, key, default_label),
        levels=(reference, *(v for v in levels if v != reference)) if levels else (),
    )


def _covariates_table(raw: dict[str, Any], path: Path) -> dict[str, Covariate]:
    section = get_table(raw, "covariates", path, required=False)
    out = {}
    for name, entry in section.items():
        key = f"covariates.{name}"
        _identifier(name, path, key)
        if name in BUILT_IN_COVARIATES:
            raise fail(path, key, f"'{name}' is built in; name it in [model] covariates only")
        if not isinstance(entry, dict):
            raise fail(path, key, 'must be a table of keys, e.g. kind = "category"')
        check_keys(entry, COVARIATE_KEYS, path, key)
        kind = entry.get("kind")
        if kind not in COVARIATE_KINDS:
            raise fail(
                path, f"{key}.kind", f"must be one of {', '.join(COVARIATE_KINDS)}, got {kind!r}"
            )
        reference = get_text(entry, "reference", path, key, None)
        if reference is not None and kind == "number":
            raise fail(path, f"{key}.reference", "applies to a category, not a number")
        out[name] = Covariate(
            name=name,
            kind=kind,
            reference=reference,
            label=get_text(entry, "label", path, key, name),
        )
    return out


def _time(raw: dict[str, Any], path: Path) -> TimeSettings:
    section = get_table(raw, "time", path, required=False)
    check_keys(section, {"source", "visit_weeks", "primary_visit"}, path, "time")
    source = get_choice(section, "source", path, "time", "dates", TIME_SOURCES)
    mapping = section.get("visit_weeks", {})
    if not isinstance(mapping, dict):
        raise fail(path, "time.visit_weeks", 'must map visit numbers to weeks, e.g. "1" = 12')
    visit_weeks = {}
    for visit, weeks in mapping.items():
        if not str(visit).isdigit():
            raise fail(path, "time.visit_weeks", f"'{visit}' is not a visit number")
        if isinstance(weeks, bool) or not isinstance(weeks, int | float) or weeks < 0:
            raise fail(
                path, f"time.visit_weeks.{visit}", f"must be weeks (0 or more), got {weeks!r}"
            )
        visit_weeks[int(visit)] = float(weeks)
    if source == "visits" and not visit_weeks:
        raise fail(path, "time.visit_weeks", 'is needed with source = "visits"')
    if source != "visits" and visit_weeks:
        raise fail(path, "time.visit_weeks", 'is used only with source = "visits"')
    primary = None
    if "primary_visit" in section:
        primary = get_whole(section, "primary_visit", path, "time", 1, 1, 100)
        if visit_weeks and primary not in visit_weeks:
            raise fail(path, "time.primary_visit", f"visit {primary} is not in visit_weeks")
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
            raise fail(path, "mcid", "and [outcomes] are both given; put each MCID in its outcome")
        section = get_table(raw, "outcomes", path)
        if not section:
            raise fail(path, "outcomes", "declares no outcome")
        outcomes = tuple(_outcome(name, entry, path) for name, entry in section.items())
        columns = [o.column for o in outcomes]
        twice = next((c for c in columns if columns.count(c) > 1), None)
        if twice:
            raise fail(path, "outcomes", f"two outcomes use the column '{twice}'")
    else:
        outcomes = legacy_outcomes(load_mcid(raw, path))
    covariates = _covariates_table(raw, path)
    comparisons = DEFAULT_COMPARISONS
    if "comparisons" in raw:
        entries = raw["comparisons"]
        if not isinstance(entries, list) or not entries:
            raise fail(path, "comparisons", "must be one or more [[comparisons]] tables")
        comparisons = tuple(
            _comparison(e, k, path, covariates) for k, e in enumerate(entries, start=1)
        )
        names = [c.name for c in comparisons]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice:
            raise fail(path, "comparisons", f"two comparisons are named '{twice}'; set name")
    study = Study(
        outcomes=outcomes, comparisons=comparisons, covariates=covariates, time=_time(raw, path)
    )
    return study, {o.name: o.mcid for o in outcomes}


def load_mcid(raw: dict[str, Any], path: Path) -> dict[str, Mcid]:
    """Read ``[mcid.nrs]``, ``[mcid.vas]`` and ``[mcid.odi]`` (the needling default)."""
    mcid_raw = get_table(raw, "mcid", path)
    check_keys(mcid_raw, set(INSTRUMENTS), path, "mcid")
    mcid = {}
    for instrument in INSTRUMENTS:
        section = get_table(mcid_raw, instrument, path, label=f"mcid.{instrument}")
        name = f"mcid.{instrument}"
        check_keys(section, {"points", "percent"}, path, name)
        if "points" not in section or "percent" not in section:
            raise fail(path, name, "needs both 'points' and 'percent'")
        mcid[instrument] = Mcid(
            points=float(get_number(section, "points", path, name, 0, 0, 100)),
            percent=float(get_number(section, "percent", path, name, 0, 0, 100)),
        )
    return mcid
