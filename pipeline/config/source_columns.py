"""How a source's clinic columns fill the canonical ones, beyond the plain column mapping.

The rule that one clinic column fills one canonical column (but for :data:`SHARED_MEANINGS`),
the extra columns a source may map (:data:`VISIT_DATE`, :data:`ODI_ANSWERED`), the time-point
groups of a wide file (:class:`TimePoints`) and the columns that record adverse events
(:class:`EventColumns`), each with the check of its tables; :mod:`.sources` reads the rest of a
``[[sources]]`` entry (docs/ingestion.md). Nothing happens at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config.toml_values import check_keys, fail, get_text, get_text_map, get_words
from pipeline.schemas.columns import PATIENT_ID

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


def same_column(name: str) -> str:
    """Return a clinic column's name as compared: spaces collapsed, case folded."""
    return " ".join(name.split()).casefold()


def one_column_each(mapping: dict[str, str], path: Path, name: str) -> None:
    """Two canonical columns mapped to one clinic column is an error (which one is meant?).

    Except the pairs of :data:`SHARED_MEANINGS`, which one column may fill together.
    """
    seen: dict[str, str] = {}
    for canonical, clinic in mapping.items():
        other = seen.setdefault(same_column(clinic), canonical)
        pair = frozenset({other.split(".")[-1], canonical.split(".")[-1]})
        if other != canonical and pair not in SHARED_MEANINGS:
            raise fail(
                path,
                name,
                f"{other} and {canonical} both map to '{clinic}'; a clinic column can fill "
                f"only one canonical column",
            )


def check_time_points(
    section: object, table: str, path: Path, name: str, extra: tuple[str, ...] = ()
) -> TimePoints:
    """Check a wide source's ``[sources.N.assessments]`` or ``[sources.N.sessions]`` group.

    ``table`` is the canonical table the group fills; ``extra`` the study's own columns of it.
    """
    from pipeline.schemas.raw import column_names

    if not isinstance(section, dict):
        raise fail(path, name, "must be a table with points and columns")
    check_keys(section, {"points", "columns", "weeks", "date_from"}, path, name)
    points = section.get("points")
    if not isinstance(points, dict) or not points:
        raise fail(path, f"{name}.points", "must map each time-point label to its number")
    for label, number in points.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise fail(path, f"{name}.points.{label}", f"must be a whole number, got {number!r}")
    number_column = "visit" if table == "assessments" else "session_number"
    allowed = tuple(c for c in column_names(table) if c not in (PATIENT_ID, number_column))
    allowed += extra + ((ODI_ANSWERED,) if table == "assessments" else ())
    columns = get_text_map(section.get("columns", {}), path, f"{name}.columns", keys=allowed)
    weeks = section.get("weeks", {})
    if not isinstance(weeks, dict) or any(
        isinstance(w, bool) or not isinstance(w, int | float) for w in weeks.values()
    ):
        raise fail(path, f"{name}.weeks", "must map time-point labels to numbers of weeks")
    unknown = sorted(set(weeks) - set(points))
    if unknown:
        raise fail(path, f"{name}.weeks", f"'{unknown[0]}' is not one of the points")
    date_column = "assessment_date" if table == "assessments" else "session_date"
    date_from = get_text(section, "date_from", path, name, None)
    # Assessments may be timed by their weeks alone (no dates): a wide file without dates.
    by_weeks = table == "assessments" and "weeks" not in columns and bool(weeks)
    if date_column not in columns and "weeks" not in columns:
        if date_from is None and not by_weeks:
            raise fail(
                path,
                name,
                f"needs columns.{date_column}, or weeks (with date_from to make dates)"
                if table == "assessments"
                else f"needs columns.{date_column} or date_from with weeks",
            )
        missing = [p for p in points if p not in weeks]
        if missing:
            raise fail(path, f"{name}.weeks", f"gives no week for the point '{missing[0]}'")
    return TimePoints(
        points={str(k): int(v) for k, v in points.items()},
        columns=columns,
        weeks={str(k): float(v) for k, v in weeks.items()},
        date_from=date_from,
    )


EVENT_KEYS = {"flags", "list", "delimiter", "codes", "severity"}


def check_wide_events(
    events: EventColumns, time_points: dict[str, TimePoints], path: Path, name: str
) -> tuple[dict[str, str], str]:
    """Check a wide source's event columns: per-session patterns beside a sessions group.

    Returns the sessions group's columns and its key, which the event columns must not repeat.
    """
    if "sessions" not in time_points:
        raise fail(
            path,
            f"{name}.adverse_events",
            f"describes the sessions' adverse events, but this wide source has no "
            f"[{name}.sessions] group (points, columns) to tie them to",
        )
    for clinic in events.clinic_columns():
        if "{t}" not in clinic:
            raise fail(
                path,
                f"{name}.adverse_events",
                f"reads '{clinic}', which has no {{t}}; in a wide file each session has its own "
                f"event columns, so write them as patterns like 'ae_soreness_{{t}}' (the "
                f"session's label in place of {{t}}, as in [{name}.sessions.columns])",
            )
    return time_points["sessions"].columns, f"{name}.sessions.columns"


def check_event_columns(section: object, path: Path, name: str) -> EventColumns:
    """Check ``[sources.N.adverse_events]``: flag columns and/or a list column, severities."""
    from pipeline.schemas.raw import AE_TYPES

    if not isinstance(section, dict):
        raise fail(path, name, "must be a table with flags and/or list (see docs/ingestion.md)")
    check_keys(section, EVENT_KEYS, path, name)
    known = ", ".join(AE_TYPES)
    flags = get_text_map(section.get("flags", {}), path, f"{name}.flags")
    for column, kind in flags.items():
        if kind not in AE_TYPES:
            raise fail(
                path,
                f"{name}.flags",
                f"maps '{column}' to '{kind}', which is not an adverse-event type ({known})",
            )
    one_column_each({f"flags.{k}": k for k in flags}, path, f"{name}.flags")
    list_column = get_text(section, "list", path, name, None)
    if not flags and list_column is None:
        raise fail(
            path,
            name,
            'needs flags = { column = "type", ... } (one yes/no column per event type) or '
            'list = "column" (one column listing the events)',
        )
    if list_column is not None and any(same_column(list_column) == same_column(c) for c in flags):
        raise fail(path, f"{name}.list", f"'{list_column}' is a flag column too; keep one")
    delimiter = get_text(section, "delimiter", path, name, ";")
    if len(delimiter.strip()) != 1:
        raise fail(
            path, f"{name}.delimiter", f"must be one character such as ';', got {delimiter!r}"
        )
    if "delimiter" in section and list_column is None:
        raise fail(path, f"{name}.delimiter", "is set, but no list column is named (list = ...)")
    codes = get_text_map(section.get("codes", {}), path, f"{name}.codes")
    if codes and list_column is None:
        raise fail(path, f"{name}.codes", "translates listed items, but no list column is named")
    folded: dict[str, str] = {}
    for item, kind in codes.items():
        if kind not in (*AE_TYPES, "none"):
            raise fail(
                path,
                f"{name}.codes",
                f"maps '{item}' to '{kind}', which is not an adverse-event type ({known}) or none",
            )
        if delimiter.strip() in item:
            raise fail(
                path,
                f"{name}.codes",
                f"'{item}' contains the delimiter '{delimiter.strip()}', so it can never be "
                f"one item of the list",
            )
        other = folded.setdefault(same_column(item), item)
        if other != item:
            raise fail(path, f"{name}.codes", f"'{other}' and '{item}' are the same item")
    raw_severity = section.get("severity")
    severity, flag_severity = None, {}
    if isinstance(raw_severity, dict):
        flag_severity = get_text_map(raw_severity, path, f"{name}.severity")
        stray = [c for c in flag_severity if c not in flags]
        if stray:
            raise fail(
                path,
                f"{name}.severity",
                f"names '{stray[0]}', which is not one of the flag columns ({', '.join(flags)})",
            )
    elif raw_severity is not None:
        severity = get_text(section, "severity", path, name, None)
    reads = [*flags, list_column, severity, *flag_severity.values()]
    seen: dict[str, str] = {}
    for clinic in [c for c in reads if c]:
        if seen.setdefault(same_column(clinic), clinic) != clinic or reads.count(clinic) > 1:
            raise fail(path, name, f"reads the column '{clinic}' twice; each has one meaning")
    return EventColumns(
        flags=flags,
        flag_severity=flag_severity,
        list_column=list_column,
        delimiter=delimiter.strip(),
        codes=codes,
        severity=severity,
    )


@dataclass(frozen=True)
class Measures:
    """How a file with one row per score names what each row measured (``kind = "measurements"``).

    Attributes
    ----------
    column : str
        Clinic column naming the measure of the row (``NRS``, ``Oswestry``).
    value : str
        Clinic column holding the score.
    names : dict of str to str
        A measure as written (matched ignoring case and spaces) -> the canonical assessment
        column (or the study's own outcome) its score fills.
    ignore : tuple of str
        Measures the file holds that the study does not read (``BMI``); their rows are not used.
    """

    column: str
    value: str
    names: dict[str, str]
    ignore: tuple[str, ...] = ()


def check_measures(section: object, path: Path, name: str, targets: tuple[str, ...]) -> Measures:
    """Check ``[sources.measures]``: its two columns, the measure names and the ones ignored.

    ``targets`` are the columns a measure may fill: the numeric assessment columns of the data
    contract and the study's own outcomes.
    """
    if not isinstance(section, dict):
        raise fail(path, name, "must be a table with column, value and [names]")
    check_keys(section, {"column", "value", "names", "ignore"}, path, name)
    for key in ("column", "value", "names"):
        if key not in section:
            raise fail(path, name, f"needs {key} (docs/ingestion.md, one row per score)")
    column = get_text(section, "column", path, name, None) or ""
    value = get_text(section, "value", path, name, None) or ""
    if same_column(column) == same_column(value):
        raise fail(path, name, f"column and value both name '{column}'; they are two columns")
    names = get_text_map(section["names"], path, f"{name}.names")
    if not names:
        raise fail(path, f"{name}.names", 'must name at least one measure, e.g. NRS = "nrs"')
    for measure, target in names.items():
        if target not in targets:
            raise fail(
                path,
                f"{name}.names.{measure}",
                f"'{target}' is not a score of the assessments (one of {', '.join(targets)})",
            )
    ignore = get_words(section.get("ignore", []), path, f"{name}.ignore", '["BMI"]')
    seen: dict[str, str] = {}
    for measure in [*names, *ignore]:
        other = seen.setdefault(same_column(measure), measure)
        if other != measure or [*names, *ignore].count(measure) > 1:
            raise fail(path, name, f"'{other}' and '{measure}' are the same measure; list it once")
    return Measures(column=column, value=value, names=names, ignore=ignore)
