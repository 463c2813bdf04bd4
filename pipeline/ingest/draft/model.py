"""What a drafted configuration holds: guesses with their confidence, per source.

Pure data: :mod:`.guess` fills it from the files' cells, :mod:`.render` writes it as TOML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import pandas as pd


class Confidence(StrEnum):
    """How sure a guess is; written next to it in the drafted configuration."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Layout(StrEnum):
    """The layouts `init` recognises (the ``kind`` of a ``[[sources]]`` entry)."""

    CANONICAL = "canonical"
    VISIT_SHEET = "visit_sheet"
    WIDE = "wide"
    REDCAP = "redcap"
    MEASUREMENTS = "measurements"


@dataclass(frozen=True)
class Export:
    """One file (or Excel sheet) as read, with how it was read.

    Attributes
    ----------
    label : str
        The file as the drafted configuration names it (relative to the configuration's folder).
    folder : str
        Name of the folder holding the file (a clinic's folder may name its site).
    frame : pandas.DataFrame
        Text cells, one column per header position (named as ``columns``); missing cells NA.
    columns : tuple of str
        Column names by position (a blank or repeated name made unique by the reader).
    header_row : int
        Line (sheet row) of the header.
    delimiter : str or None
        Delimiter of a text file; ``None`` for a workbook.
    encoding : str
        Encoding read (``xlsx`` for a workbook).
    sheet : str or None
        Sheet of a workbook, when it is not the first.
    footer : tuple of str
        The lines below the table that are no rows (a total, an export note), as written; they
        are not in ``frame``.
    """

    label: str
    folder: str
    frame: pd.DataFrame
    columns: tuple[str, ...]
    header_row: int = 1
    delimiter: str | None = ","
    encoding: str = "utf-8"
    sheet: str | None = None
    footer: tuple[str, ...] = ()


@dataclass(frozen=True)
class Guess:
    """One guessed key: its value, confidence and why (one short clause)."""

    key: str
    value: object
    confidence: Confidence
    why: str


@dataclass
class CodeDraft:
    """A proposed code list for one canonical column: clinic value -> canonical value."""

    column: str
    codes: dict[str, object]
    confidence: Confidence
    why: str
    unknown: list[str] = field(default_factory=list)


@dataclass
class PointsDraft:
    """The repeated groups of a wide file for one table (``[sources.assessments]``)."""

    points: list[Guess]
    columns: list[Guess]
    weeks: list[Guess] = field(default_factory=list)


@dataclass
class EventsDraft:
    """A drafted ``[sources.adverse_events]`` block: flag columns, or a list column, severities.

    Attributes
    ----------
    flags : list of Guess
        Key: a flag column; value: the adverse-event type it records.
    flag_severity : list of Guess
        Key: a flag column; value: the column holding that event's severity.
    list_column : Guess or None
        Key ``list``; value: the column listing the events.
    delimiter : Guess or None
        Key ``delimiter``; value: what separates the listed items.
    codes : list of Guess
        Key: a listed item as written; value: its type (or ``none``).
    severity : Guess or None
        Key ``severity``; value: one column with the severity of every event of the row.
    unknown : list of str
        Listed items no word of the six languages names (to translate by hand).
    """

    flags: list[Guess] = field(default_factory=list)
    flag_severity: list[Guess] = field(default_factory=list)
    list_column: Guess | None = None
    delimiter: Guess | None = None
    codes: list[Guess] = field(default_factory=list)
    severity: Guess | None = None
    unknown: list[str] = field(default_factory=list)

    def rename(self, names: Mapping[str, str], why: Callable[[str], str] | None = None) -> None:
        """Name the columns the block reads by ``names`` (others keep theirs), in place.

        A drafter that judged columns under names of its own (a wide file's stems, a REDCap
        field's label) gives the block the file's names back; ``why`` may rewrite the reasons.
        """

        def named(column: object) -> str:
            return names.get(str(column), str(column))

        def fix(g: Guess, key: bool, value: bool) -> Guess:
            return replace(
                g,
                key=named(g.key) if key else g.key,
                value=named(g.value) if value else g.value,
                why=why(g.why) if why else g.why,
            )

        self.flags = [fix(g, True, False) for g in self.flags]
        self.flag_severity = [fix(g, True, True) for g in self.flag_severity]
        if self.list_column is not None:
            self.list_column = fix(self.list_column, False, True)
        if self.severity is not None:
            self.severity = fix(self.severity, False, True)

    def columns(self) -> set[str]:
        """Return the clinic columns the block reads."""
        out = {str(g.key) for g in self.flags} | {str(g.value) for g in self.flag_severity}
        return out | {str(g.value) for g in (self.list_column, self.severity) if g is not None}


@dataclass
class MeasuresDraft:
    """A drafted ``[sources.measures]`` block: one score per line.

    Attributes
    ----------
    column : Guess
        Key ``column``; value: the column naming each line's measure.
    value : Guess
        Key ``value``; value: the column holding the score.
    names : list of Guess
        Key: a measure as written; value: the score it fills.
    ignore : list of str
        Measures seen that name no score (left to check by hand).
    """

    column: Guess
    value: Guess
    names: list[Guess] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)


@dataclass
class SourceDraft:
    """One drafted ``[[sources]]`` entry."""

    kind: Guess
    files: dict[str, list[str]]
    dictionary: str | None = None
    settings: list[Guess] = field(default_factory=list)
    columns: list[Guess] = field(default_factory=list)
    codes: list[CodeDraft] = field(default_factory=list)
    units: list[Guess] = field(default_factory=list)
    shift: list[Guess] = field(default_factory=list)
    languages: Guess | None = None
    missing: Guess | None = None
    time_points: dict[str, PointsDraft] = field(default_factory=dict)
    instruments: list[Guess] = field(default_factory=list)
    events: list[Guess] = field(default_factory=list)
    session_events: list[Guess] = field(default_factory=list)
    adverse_events: EventsDraft | None = None
    measures: MeasuresDraft | None = None
    unmapped: list[tuple[str, str]] = field(default_factory=list)

    def column(self, key: str) -> Guess | None:
        """Return the guess of canonical column ``key`` under ``[sources.columns]``, if any."""
        return next((g for g in self.columns if g.key == key), None)

    def setting(self, key: str) -> object | None:
        """Return the value of the entry's key ``key`` (``sheet``, ``tables``, ...), if drafted."""
        return next((g.value for g in self.settings if g.key == key), None)

    def column_guesses(self) -> list[Guess]:
        """Return every guess that maps a clinic column: canonical, time-point, adverse-event."""
        out = [*self.columns, *(c for tp in self.time_points.values() for c in tp.columns)]
        block = self.adverse_events
        if block is not None:
            out += [*block.flags, *block.flag_severity]
            out += [g for g in (block.list_column, block.severity) if g is not None]
        return out


@dataclass
class Draft:
    """A drafted configuration: its sources, the study's own outcomes, covariates, comparisons."""

    sources: list[SourceDraft]
    outcomes: list[Guess] = field(default_factory=list)
    covariates: list[Guess] = field(default_factory=list)
    comparisons: list[Guess] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def mapped_columns(self) -> set[str]:
        """Return the canonical columns the drafted sources fill (by column, pattern, measure)."""
        out: set[str] = set()
        for s in self.sources:
            out |= {g.key for g in s.columns}
            out |= {g.key for tp in s.time_points.values() for g in tp.columns}
            if s.measures is not None:
                out |= {str(g.value) for g in s.measures.names}
        return out

    def missing_tables(self) -> list[str]:
        """Return the tables no drafted source gives among those a configuration needs."""
        given = self._given()
        return [t for t in ("patients", "assessments") if t not in given]

    def gives_sessions(self) -> bool:
        """Whether a drafted source gives the sessions table."""
        return "sessions" in self._given()

    def _given(self) -> set[str]:
        """Return the tables the drafted sources give."""
        given: set[str] = set()
        for s in self.sources:
            if s.kind.value == Layout.CANONICAL:
                given |= set(s.files)
            elif s.kind.value == Layout.MEASUREMENTS:
                given.add("assessments")
            elif s.kind.value in (Layout.VISIT_SHEET, Layout.WIDE):
                chosen = s.setting("tables")
                every = (
                    ["patients", "sessions", "assessments"]
                    if s.kind.value == Layout.VISIT_SHEET
                    else ["patients", *s.time_points]
                )
                given |= set(chosen or every)
            else:
                given |= {g.key for g in s.instruments}
        return given
