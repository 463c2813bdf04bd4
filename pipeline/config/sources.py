"""The clinic's files and how to read them: ``[inputs]``, ``[[sources]]`` and ``[vocabulary]``.

A configuration names its files either in the ``[inputs]`` form (the three canonical tables,
read exactly as written: :class:`Inputs`) or as ``[[sources]]`` entries of any layout (visit
sheets, wide files, REDCap exports, canonical tables: :class:`Source`), documented in
docs/ingestion.md. :func:`load_sources` reads either; the time-point groups and adverse-event
columns of an entry are checked in :mod:`.source_columns`. Nothing happens at import time.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config.source_columns import (
    ODI_ANSWERED,
    VISIT_DATE,
    EventColumns,
    Measures,
    TimePoints,
    check_event_columns,
    check_measures,
    check_time_points,
    check_wide_events,
    one_column_each,
    same_column,
)
from pipeline.config.toml_values import (
    check_keys,
    fail,
    get_choice,
    get_paths,
    get_text,
    get_text_map,
    get_whole,
    get_words,
    missing_section,
)
from pipeline.config.vocabulary import LANGUAGES, Vocabulary


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


SOURCE_KINDS = ("canonical", "visit_sheet", "wide", "redcap", "measurements")
SOURCE_DELIMITERS = ("auto", ",", ";", "\t", "|")
PATIENT_ID_RULES = ("compact", "as_written", "row")
VISIT_RULES = ("column", "by_date")
SOURCE_UNITS = {
    "vas_mm": ("mm", "cm"),
    "odi": ("percent", "points"),
    "symptom_weeks": ("weeks", "days", "months", "years"),
}


@dataclass(frozen=True)
class Source:
    """One ``[[sources]]`` entry: files of one layout and how they map to the canonical tables.

    ``files`` maps a role to path patterns (absolute; a pattern with ``*``, ``?`` or ``[`` is a
    glob): ``data`` for visit sheets, wide files and REDCap exports; the table names for the
    canonical layout. ``number`` is the entry's position from 1 (0 for the ``[inputs]`` form,
    which is read exactly as written: ``legacy``). ``extra`` holds the study's own columns
    (declared outcomes and covariates, :meth:`~pipeline.config.study.Study.extra_columns`) as
    ``{table: {column: kind}}``. The other attributes are the keys of the entry, documented in
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
    footer_rows: int = 0
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
    measures: Measures | None = None
    visits: str = "column"
    given: tuple[str, ...] = ()
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
        """Return the canonical tables this source provides.

        A visit sheet or wide file gives the patients too, unless its ``tables`` key (``given``)
        leaves them to another source (a patient list beside the visit sheet).
        """
        every = ("patients", "sessions", "assessments")
        if self.kind == "canonical":
            return tuple(t for t in every if t in self.files)
        if self.kind == "visit_sheet":
            return tuple(t for t in every if t in (self.given or every))
        if self.kind == "wide":
            patients = ("patients",) if not self.given or "patients" in self.given else ()
            return (*patients, *(t for t in every[1:] if t in self.time_points))
        if self.kind == "measurements":
            return ("assessments",)
        return tuple(t for t in every if t in self.instruments)


DATE_TOKENS = {"YYYY": "%Y", "MONTH": "%B", "MON": "%b", "MM": "%m", "DD": "%d"}
"""The parts of a date format: the year, the month (a number, or its English name or its first
three letters, any case: ``03FEB2025`` as SAS and Stata write dates) and the day."""


def strptime_pattern(date_format: str) -> str:
    """Turn a date format written like ``DD/MM/YYYY`` into a :func:`~time.strptime` pattern.

    ``YYYY``, ``DD`` and one of ``MM``, ``MON`` (``Feb``) and ``MONTH`` (``February``) must
    each appear once (``MM`` and ``DD`` also read one digit), separated by nothing or by ``-``,
    ``/``, ``.``, ``,`` or spaces.

    Raises
    ------
    ValueError
        When the text is not such a format.
    """
    text, out, seen, k = date_format.strip().upper(), "", [], 0
    while k < len(text):
        token = next((t for t in DATE_TOKENS if text.startswith(t, k)), None)
        if token:
            out += DATE_TOKENS[token]
            seen.append("MM" if token.startswith("MON") else token)
            k += len(token)
        elif text[k] in "-/., ":
            out += text[k]
            k += 1
        else:
            raise ValueError(date_format)
    if sorted(seen) != ["DD", "MM", "YYYY"]:
        raise ValueError(date_format)
    return out


def _patterns(value: object, path: Path, name: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise fail(path, name, "must be a file path (or glob) in quotes, or a list of them")
    out = []
    for item in values:
        if not isinstance(item, str) or not item.strip():
            raise fail(path, name, f"must hold file paths in quotes, got {item!r}")
        out.append(item if Path(item).is_absolute() else str(path.parent / item))
    return tuple(out)


def _vocabulary_section(section: object, path: Path, name: str = "vocabulary") -> dict:
    """Check a ``[vocabulary]`` table; return its keys as given (see :mod:`.vocabulary`)."""
    if not isinstance(section, dict):
        raise fail(path, name, "must be a table with languages, yes, no and missing")
    check_keys(section, {"languages", "yes", "no", "missing"}, path, name)
    out = {}
    for key, raw in section.items():
        value = get_words(raw, path, f"{name}.{key}", '["ja", "j"]')
        if key == "languages":
            unknown = [w for w in value if w not in LANGUAGES]
            if unknown:
                raise fail(
                    path,
                    f"{name}.languages",
                    f"unknown language '{unknown[0]}' (built in: {', '.join(LANGUAGES)})",
                )
        out[key] = value
    return out


def _vocabulary(section: object, path: Path, name: str, common: dict) -> Vocabulary:
    """Return a source's vocabulary: its languages (else the global ones), all words added."""
    own = _vocabulary_section(section, path, name)
    languages = own.get("languages", common.get("languages", tuple(LANGUAGES)))
    words = {k: common.get(k, ()) + own.get(k, ()) for k in ("yes", "no", "missing")}
    vocabulary = Vocabulary.of(tuple(languages), **words)
    clash = vocabulary.clashes()
    if clash:
        raise fail(path, name, f"{clash}; list it once")
    return vocabulary


def _shift(section: object, path: Path, name: str, kinds: dict[str, str]) -> dict[str, int]:
    """Check ``[sources.shift]``: whole numbers added to whole-number columns (visit = -1)."""
    if not isinstance(section, dict):
        raise fail(path, name, "must map whole-number columns to a number to add, e.g. visit = -1")
    out = {}
    for column, step in section.items():
        if kinds.get(column) != "integer":
            raise fail(path, f"{name}.{column}", "only whole-number columns can be shifted")
        if isinstance(step, bool) or not isinstance(step, int):
            raise fail(path, f"{name}.{column}", f"must be a whole number, got {step!r}")
        out[str(column)] = int(step)
    return out


def _source(
    entry: object,
    number: int,
    path: Path,
    extra: dict[str, dict[str, str]] | None = None,
    vocabulary: dict | None = None,
) -> Source:
    """Check one ``[[sources]]`` entry and return it typed.

    ``extra`` holds the study's own columns
    (:meth:`~pipeline.config.study.Study.extra_columns`), which the entry may map like the
    columns of the data contract.
    """
    from pipeline.schemas.raw import TABLES, column_kinds, column_names

    name = f"sources.{number}"
    if not isinstance(entry, dict):
        raise fail(path, name, "must be a table of keys")
    kind = entry.get("kind")
    if kind not in SOURCE_KINDS:
        raise fail(path, f"{name}.kind", f"must be one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    common = {"kind", "delimiter", "encoding", "decimal", "header_row", "footer_rows", "sheet"}
    common |= {"date_format"}
    common |= {"patient_id", "id_prefix", "site", "sites", "columns", "codes", "units", "shift"}
    common |= {"vocabulary"}
    own = {
        "canonical": {"patients", "sessions", "assessments", "adverse_events", "visits"},
        "visit_sheet": {"files", "adverse_events", "tables", "visits"},
        "wide": {"files", "assessments", "sessions", "adverse_events", "tables"},
        "redcap": {"files", "dictionary", "instruments", "events", "session_events", "arms"}
        | {"adverse_events"},
        "measurements": {"files", "measures", "visits"},
    }[kind]
    check_keys(entry, common | own, path, name)

    if kind == "canonical":
        files = {t: _patterns(entry[t], path, f"{name}.{t}") for t in TABLES if t in entry}
        if not files:
            raise fail(path, name, "a canonical source names at least one of " + ", ".join(TABLES))
    else:
        if "files" not in entry:
            raise fail(path, name, "needs files = [...] (paths or globs)")
        files = {"data": _patterns(entry["files"], path, f"{name}.files")}

    extra = extra or {}
    every = {c: k for t in TABLES for c, k in column_kinds(t).items()}
    for table_extra in extra.values():
        every.update(table_extra)
    allowed = tuple(every) + ((VISIT_DATE,) if kind == "visit_sheet" else ())
    allowed += (
        (ODI_ANSWERED,) if kind in ("visit_sheet", "canonical", "redcap", "measurements") else ()
    )
    columns = get_text_map(entry.get("columns", {}), path, f"{name}.columns", keys=allowed)
    patient_id = get_choice(entry, "patient_id", path, name, "compact", PATIENT_ID_RULES)
    if patient_id == "row" and kind != "wide":
        raise fail(
            path,
            f"{name}.patient_id",
            "'row' (the row number as identifier) needs a wide source, one row per patient",
        )
    if patient_id == "row" and "patient_id" in columns:
        raise fail(
            path, f"{name}.patient_id", "is 'row', so columns.patient_id must not be mapped too"
        )
    if kind == "wide":
        patient_columns = column_names("patients") + tuple(extra.get("patients", {}))
        stray = [c for c in columns if c not in patient_columns]
        if stray:
            raise fail(
                path,
                f"{name}.columns",
                f"'{stray[0]}' is not a patients column; map it under "
                f"[{name}.assessments.columns] or [{name}.sessions.columns] with {{t}}",
            )
    measures = None
    if kind == "measurements":
        measures = _measures(entry, path, name, columns, extra)
    if kind == "canonical":
        for table in TABLES:
            own = column_names(table) + tuple(extra.get(table, {}))
            mine = {c: v for c, v in columns.items() if c in own}
            one_column_each(mine, path, f"{name}.columns")
    else:
        one_column_each(columns, path, f"{name}.columns")

    codes_raw = entry.get("codes", {})
    if not isinstance(codes_raw, dict):
        raise fail(
            path, f"{name}.codes", "must hold one table per column, e.g. [sources.codes.depth]"
        )
    codes = {}
    for column, mapping in codes_raw.items():
        if column not in allowed:
            raise fail(path, f"{name}.codes", f"unknown column '{column}'")
        # a code mapped to "" means missing (e.g. "9" = "" for "not recorded")
        codes[column] = get_text_map(mapping, path, f"{name}.codes.{column}", empty=True)
        folded: dict[str, str] = {}
        for code in codes[column]:
            other = folded.setdefault(same_column(code), code)
            if other != code:
                raise fail(
                    path, f"{name}.codes.{column}", f"'{other}' and '{code}' are the same code"
                )

    units = get_text_map(entry.get("units", {}), path, f"{name}.units", keys=tuple(SOURCE_UNITS))
    for column, unit in units.items():
        if unit not in SOURCE_UNITS[column]:
            raise fail(
                path,
                f"{name}.units.{column}",
                f"must be one of {', '.join(SOURCE_UNITS[column])}, got {unit!r}",
            )

    shift = _shift(entry.get("shift", {}), path, f"{name}.shift", every)
    words = _vocabulary(entry.get("vocabulary", {}), path, f"{name}.vocabulary", vocabulary or {})

    date_format = get_text(entry, "date_format", path, name, "YYYY-MM-DD")
    try:
        strptime_pattern(date_format)
    except ValueError:
        raise fail(
            path,
            f"{name}.date_format",
            f"must be written like DD/MM/YYYY, YYYY-MM-DD or DDMONYYYY, got {date_format!r}",
        ) from None
    encoding = get_text(entry, "encoding", path, name, "auto")
    if encoding != "auto":
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise fail(path, f"{name}.encoding", f"unknown encoding {encoding!r}") from None
    site = get_text(entry, "site", path, name, None)
    sites = get_text_map(entry.get("sites", {}), path, f"{name}.sites")
    if site and sites:
        raise fail(path, name, "give site (one clinic) or [sites] (per file), not both")
    if (site or sites) and "site" in columns:
        raise fail(path, name, "site is set here and also mapped in columns; keep one")

    time_points = {}
    if kind == "wide":
        for table in ("assessments", "sessions"):
            if table in entry:
                time_points[table] = check_time_points(
                    entry[table], table, path, f"{name}.{table}", tuple(extra.get(table, {}))
                )
        if "assessments" not in time_points:
            raise fail(path, name, f"a wide source needs [{name}.assessments] (points, columns)")
        patterns = dict(columns)
        for table, group in time_points.items():
            patterns.update({f"{table}.{c}": p for c, p in group.columns.items()})
        one_column_each(patterns, path, name)

    instruments, events, session_events, arms, dictionary = {}, {}, {}, {}, None
    if kind == "redcap":
        dictionary = _patterns(entry.get("dictionary"), path, f"{name}.dictionary")[0]
        instruments = get_text_map(
            entry.get("instruments", {}), path, f"{name}.instruments", keys=TABLES
        )
        if not instruments:
            raise fail(path, f"{name}.instruments", "must name the instrument of each table")
        for key, word, into in (
            ("events", "visit", events),
            ("session_events", "session", session_events),
        ):
            events_raw = entry.get(key, {})
            if not isinstance(events_raw, dict):
                raise fail(path, f"{name}.{key}", f"must map event names to {word} numbers")
            for event, number in events_raw.items():
                if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                    raise fail(
                        path, f"{name}.{key}.{event}", f"must be a {word} number, got {number!r}"
                    )
                into[str(event)] = int(number)
        arms = get_text_map(entry.get("arms", {}), path, f"{name}.arms")

    adverse_events = None
    if "adverse_events" in entry:
        if kind == "canonical" and "sessions" not in files:
            raise fail(
                path,
                f"{name}.adverse_events",
                "describes the sessions' adverse events, but this source names no sessions file",
            )
        adverse_events = check_event_columns(
            entry["adverse_events"], path, f"{name}.adverse_events"
        )
        session_columns, where = columns, f"{name}.columns"
        if kind == "wide":
            session_columns, where = check_wide_events(adverse_events, time_points, path, name)
        if kind == "redcap" and "sessions" not in instruments:
            raise fail(
                path,
                f"{name}.adverse_events",
                f"describes the sessions' adverse events, but [{name}.instruments] names no "
                f"sessions instrument",
            )
        taken = [c for c in ("adverse_event", "ae_severity") if c in session_columns]
        if taken:
            raise fail(
                path,
                where,
                f"maps {taken[0]}, and [{name}.adverse_events] records the adverse events too; "
                f"a source records them one way, so remove one of them",
            )
        mapped = {same_column(v): c for c, v in columns.items()}
        mapped.update({same_column(v): c for c, v in session_columns.items()})
        for clinic in adverse_events.clinic_columns():
            if same_column(clinic) in mapped:
                raise fail(
                    path,
                    f"{name}.adverse_events",
                    f"reads '{clinic}', which [{name}.columns] maps to "
                    f"{mapped[same_column(clinic)]}; a clinic column can fill only one field",
                )

    visits = get_choice(entry, "visits", path, name, "column", VISIT_RULES)
    if visits == "by_date" and kind == "canonical" and "assessments" not in files:
        raise fail(
            path,
            f"{name}.visits",
            "numbers the assessments' visits by date, but this source names no assessments file",
        )
    if visits == "by_date" and "visit" in columns:
        raise fail(
            path,
            f"{name}.visits",
            'is "by_date", which numbers the visits from the dates, and [columns] maps visit '
            "too; keep one",
        )
    given = _tables_given(entry, path, name, kind, time_points)
    if visits == "by_date" and kind == "visit_sheet" and given and "assessments" not in given:
        raise fail(
            path,
            f"{name}.visits",
            "numbers the assessments' visits by date, but this sheet gives no assessments "
            "([tables])",
        )
    gives = given or (("assessments",) if kind == "measurements" else ())
    _check_given(gives, columns, bool(site or sites), adverse_events, path, name, extra)
    if patient_id == "row" and gives and "patients" not in gives:
        raise fail(
            path,
            f"{name}.patient_id",
            "is 'row', but this source leaves the patients to another: row numbers cannot "
            "match its identifiers; map the identifier column",
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
        delimiter=get_choice(entry, "delimiter", path, name, d.delimiter, SOURCE_DELIMITERS),
        encoding=encoding,
        decimal=get_choice(entry, "decimal", path, name, d.decimal, (".", ",")),
        header_row=get_whole(entry, "header_row", path, name, d.header_row, 1, 10_000),
        footer_rows=get_whole(entry, "footer_rows", path, name, d.footer_rows, 0, 10_000),
        sheet=get_text(entry, "sheet", path, name, None),
        date_format=date_format,
        patient_id=patient_id,
        id_prefix=get_text(entry, "id_prefix", path, name, None) or "",
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
        measures=measures,
        visits=visits,
        given=given,
        extra={t: dict(c) for t, c in extra.items()},
    )


def _measures(
    entry: dict,
    path: Path,
    name: str,
    columns: dict[str, str],
    extra: dict[str, dict[str, str]],
) -> Measures:
    """Check ``[measures]`` of a measurements source, and that no column is mapped twice."""
    from pipeline.schemas.raw import column_kinds

    if "measures" not in entry:
        raise fail(path, name, f"a measurements source needs [{name}.measures] (column, value)")
    kinds = {**column_kinds("assessments"), **extra.get("assessments", {})}
    scores = tuple(
        c for c, k in kinds.items() if k in ("integer", "number") and c not in ("visit", "weeks")
    )
    measures = check_measures(entry["measures"], path, f"{name}.measures", (*scores, ODI_ANSWERED))
    for column in columns:
        if column in measures.names.values():
            raise fail(
                path,
                f"{name}.columns",
                f"maps {column}, which [{name}.measures.names] fills from the score rows; map "
                f"it in one place",
            )
    return measures


def _tables_given(
    entry: dict, path: Path, name: str, kind: str, time_points: dict[str, TimePoints]
) -> tuple[str, ...]:
    """Check ``tables`` (a visit sheet's or wide file's tables, when not all it could give).

    A wide file gives the tables of its time-point groups; ``tables`` may only leave out the
    patients. Returns ``()`` when the key is absent (every table the layout gives).
    """
    if "tables" not in entry:
        return ()
    value = entry["tables"]
    every = ("patients", "sessions", "assessments")
    if (
        not isinstance(value, list)
        or not value
        or any(t not in every for t in value)
        or len(set(value)) != len(value)
    ):
        raise fail(
            path,
            f"{name}.tables",
            f"must list the tables this source gives, each once, from {', '.join(every)}; "
            f"got {value!r}",
        )
    if kind == "wide":
        groups = sorted(time_points)
        if sorted(t for t in value if t != "patients") != groups:
            raise fail(
                path,
                f"{name}.tables",
                f"lists {', '.join(value)}, but a wide source gives the tables of its time-point "
                f"groups ({', '.join(groups)}), and the patients unless left out here",
            )
    return tuple(t for t in every if t in value)


def _check_given(
    given: tuple[str, ...],
    columns: dict[str, str],
    has_site: bool,
    adverse_events: EventColumns | None,
    path: Path,
    name: str,
    extra: dict[str, dict[str, str]],
) -> None:
    """Refuse a mapping, site or event block for a table the source does not give.

    ``given`` lists the tables a visit sheet's or wide file's ``tables`` keeps (a measurements
    file gives the assessments only); empty: every table the layout gives.
    """
    from pipeline.schemas.raw import TABLES, column_names

    if not given:
        return
    owner: dict[str, str] = {VISIT_DATE: "sessions", ODI_ANSWERED: "assessments"}
    for table in TABLES:
        for column in (*column_names(table), *extra.get(table, {})):
            owner.setdefault(column, table)
    left_out = [t for t in TABLES if t not in given]
    shown = ", ".join(given)
    for column in columns:
        table = owner.get(column)
        if column == "patient_id" or table in given:
            continue
        if column == VISIT_DATE and "assessments" in given:
            continue
        raise fail(
            path,
            f"{name}.columns",
            f"maps {column}, a column of the {table} table, which this source does not give "
            f"(it gives {shown}); map it on the source that gives the {table}, or remove it",
        )
    if has_site and "patients" in left_out:
        raise fail(
            path,
            name,
            f"sets the patients' site, but this source gives no patients (it gives {shown}); "
            f"set it on the source that gives them",
        )
    if adverse_events is not None and "sessions" in left_out:
        raise fail(
            path,
            f"{name}.adverse_events",
            f"describes the sessions' adverse events, but this source gives no sessions "
            f"(it gives {shown})",
        )


def load_sources(
    raw: dict[str, Any], path: Path, extra: dict[str, dict[str, str]] | None = None
) -> tuple[Inputs | None, tuple[Source, ...]]:
    """Read the input files: the ``[inputs]`` form or the ``[[sources]]`` entries (not both).

    ``extra`` holds the study's own columns (:meth:`~pipeline.config.study.Study.extra_columns`).
    No source needs to provide the sessions table: a study without a session log runs without it.

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
            raise missing_section(path, "inputs", " (or declare [[sources]])")
        inputs = get_paths(raw, "inputs", path, Inputs)
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
        raise fail(path, "inputs", "and [[sources]] are both given; declare the files in one")
    entries = raw["sources"]
    if not isinstance(entries, list) or not entries:
        raise fail(path, "sources", "must be one or more [[sources]] tables")
    common = _vocabulary_section(raw.get("vocabulary", {}), path)
    sources = tuple(
        _source(entry, k, path, extra, common) for k, entry in enumerate(entries, start=1)
    )
    provided = {t for s in sources for t in s.tables()}
    for table in TABLES:
        if table not in provided and table != "sessions":
            raise fail(path, "sources", f"no source provides the {table} table")
    return None, sources
