"""REDCap: a raw longitudinal data export and its data dictionary.

A REDCap export is one table mixing the rows of several instruments: ``record_id`` (the first
field of the project), ``redcap_event_name`` (``baseline_arm_1``, ``week_2_arm_1``, ...),
``redcap_repeat_instrument`` and ``redcap_repeat_instance`` for repeating instruments, and one
column per field (a checkbox field ``f`` as ``f___1``, ``f___2``, ... with 0/1). The data
dictionary says which instrument (form) each field belongs to, its type and its choices.

``[sources.instruments]`` names the instrument of each canonical table. Rows of a table are the
rows of its instrument: for a repeating instrument, the rows that name it (session number =
repeat instance); otherwise the rows where any of the instrument's mapped fields is filled.
``[sources.events]`` maps event names, with or without the ``_arm_N`` suffix, to visit numbers
(and ``[sources.session_events]`` to session numbers, for a session instrument that is not
repeating but filled once per event); ``[sources.arms]`` optionally maps arm numbers to the
patients' ``arm``. The study's own columns (declared outcomes and covariates) are mapped like the
contract's. Coded fields are written
as their labels (``1`` -> ``Deep``), yes/no fields as yes/no, and a canonical column mapped to a
checkbox field gets the labels of the ticked choices joined by ``; `` (a single choice column
``f___1`` can be mapped as a yes/no column). ``[sources.codes.<column>]`` may name a choice by
its code or its label. ``[sources.adverse_events]`` reads several events per session from fields
of the sessions instrument: yes/no fields or checkbox choices as flags, a checkbox field's ticked
labels as the list (:func:`_session_events`).

Only the raw export is read: an export of labels (headers like ``Record ID`` and ``Event Name``,
or values like ``Deep`` where the dictionary has codes) stops with a message asking for the raw
export.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.sources import Source
from pipeline.errors import InputFileError
from pipeline.ingest.adapters import events as event_columns
from pipeline.ingest.adapters.events import SEVERITY_FIELD
from pipeline.ingest.adapters.mapping import (
    Adapted,
    Piece,
    _fold,
    expand,
    file_label,
    normalise,
    per_distinct,
    problems_frame,
    read_source_file,
    source_file,
)
from pipeline.ingest.raw_tables import SOURCE_DETAIL, SOURCE_FILE, SOURCE_LINE, SourceFile
from pipeline.ingest.readers import LINE, STR, TextTable, read_table
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import column_names, required_columns

EVENT, REPEAT, INSTANCE, DAG = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
)
DICTIONARY_COLUMNS = {
    "field": "Variable / Field Name",
    "form": "Form Name",
    "type": "Field Type",
    "label": "Field Label",
    "choices": "Choices, Calculations, OR Slider Labels",
}
LABEL_HEADERS = ("Record ID", "Event Name", "Repeat Instrument", "Repeat Instance")
CODED_TYPES = ("radio", "dropdown", "yesno", "truefalse")
EVENT_COLUMNS = ("adverse_event", "ae_severity")
"""The single-event columns, which ``[sources.N.adverse_events]`` replaces."""
_UNIQUE_EVENT = re.compile(r"^[a-z0-9_]+$")
_ARM = re.compile(r"_arm_(\d+)$")
RAW_EXPORT_HINT = (
    "export the raw data instead (Data Exports: 'CSV / Microsoft Excel (raw data)', raw headers)"
)


@dataclass(frozen=True)
class Field:
    """One field of the data dictionary."""

    name: str
    form: str
    type: str
    label: str
    choices: dict[str, str]


def read_dictionary(source: Source) -> dict[str, Field]:
    """Read the REDCap data dictionary of a source.

    Returns
    -------
    dict of str to Field
        Fields by name, in dictionary order (the first is the record id).

    Raises
    ------
    InputFileError
        The file is missing, unreadable or not a data dictionary.
    """
    path = Path(source.dictionary or "")
    if not path.exists():
        raise InputFileError(
            f"{path}: REDCap data dictionary not found (named in {source.config}: "
            f"{source.key('dictionary')})"
        )
    text = read_table(path, delimiter="auto", encoding="auto")
    where = {}
    for key, name in DICTIONARY_COLUMNS.items():
        hits = [k for k, h in enumerate(text.header) if _fold(h) == _fold(name)]
        if not hits and key != "label":
            raise InputFileError(
                f"{path}: not a REDCap data dictionary (no column '{name}'; columns: "
                f"{', '.join(text.header)})"
            )
        where[key] = text.columns[hits[0]] if hits else None
    fields: dict[str, Field] = {}
    for record in text.frame.to_dict("records"):
        cell = {key: _cell(record, column) for key, column in where.items()}
        if cell["field"]:
            kind = cell["type"].lower()
            fields[cell["field"]] = Field(
                name=cell["field"],
                form=cell["form"],
                type=kind,
                label=cell["label"],
                choices=_choices(cell["choices"], kind),
            )
    if not fields:
        raise InputFileError(f"{path}: the REDCap data dictionary lists no field")
    return fields


def _cell(record: dict, column: str | None) -> str:
    value = record.get(column) if column else None
    return "" if value is None or pd.isna(value) else str(value)


def _choices(text: str, kind: str) -> dict[str, str]:
    if kind == "yesno":
        return {"1": "yes", "0": "no"}
    if kind == "truefalse":
        return {"1": "yes", "0": "no"}
    if kind not in ("radio", "dropdown", "checkbox"):
        return {}
    out = {}
    for part in text.split("|"):
        code, _, label = part.partition(",")
        if code.strip():
            out[code.strip()] = label.strip()
    return out


def _check_raw(source: Source, text: TextTable, label: str, fields: dict[str, Field]) -> None:
    """Stop with a clear message when the export holds labels instead of raw values."""
    record_id = next(iter(fields))
    header = set(text.header)
    labels = [h for h in LABEL_HEADERS if h in header]
    first_label = fields[record_id].label
    if record_id not in header and (labels or (first_label and first_label in header)):
        shown = labels[0] if labels else first_label
        raise InputFileError(
            f"{label}: this is a REDCap export of labels (column '{shown}' instead of "
            f"'{record_id}'); {RAW_EXPORT_HINT}"
        )
    if record_id not in header:
        raise InputFileError(
            f"{label}: not a REDCap export of this project (no column '{record_id}', the first "
            f"field of the data dictionary; columns: {', '.join(h for h in text.header if h)})"
        )
    if EVENT in header:
        events = _written(text, EVENT)
        odd = [e for e in events if not _UNIQUE_EVENT.fullmatch(e)]
        if odd:
            raise InputFileError(
                f"{label}: redcap_event_name holds '{odd[0]}', an event label rather than "
                f"a unique event name; {RAW_EXPORT_HINT}"
            )
    for field in fields.values():
        if field.type not in CODED_TYPES or field.name not in header:
            continue
        unknown = [v for v in _written(text, field.name) if v not in field.choices]
        if unknown:
            labels_folded = {_fold(v) for v in field.choices.values()}
            if _fold(unknown[0]) in labels_folded:
                raise InputFileError(
                    f"{label}: field {field.name} holds '{unknown[0]}', a label rather "
                    f"than a raw code; {RAW_EXPORT_HINT}"
                )
    for field in fields.values():
        if field.type == "checkbox":
            for code in field.choices:
                column = f"{field.name}___{_checkbox_code(code)}"
                if column in header:
                    if {"Checked", "Unchecked"} & set(_written(text, column)):
                        raise InputFileError(
                            f"{label}: checkbox column {column} holds 'Checked'/'Unchecked' "
                            f"labels; {RAW_EXPORT_HINT}"
                        )


def _written(text: TextTable, name: str) -> list[str]:
    """Return the distinct values written in field ``name``, in the order they first appear."""
    return text.frame[_column(text, name)].dropna().unique().tolist()


def _checkbox_code(code: str) -> str:
    return code.lower().replace("-", "_").replace(".", "_")


def _column(text: TextTable, name: str) -> str:
    return text.columns[text.header.index(name)]


def read(source: Source) -> Adapted:
    """Read the REDCap exports of a source into pieces of the configured tables.

    Parameters
    ----------
    source : Source
        A ``kind = "redcap"`` source.

    Returns
    -------
    Adapted
        Per export file, one piece per table in ``[sources.instruments]``.

    Raises
    ------
    InputFileError
        The dictionary or an export is missing or unreadable, the export holds labels, an
        instrument or a mapped field is unknown, or a required column cannot be made.
    """
    fields = read_dictionary(source)
    forms = {f.form for f in fields.values()}
    for table, form in source.instruments.items():
        if form not in forms:
            raise InputFileError(
                f"{source.config}: {source.key('instruments')} names '{form}' for {table}, but "
                f"the data dictionary has no such instrument (instruments: "
                f"{', '.join(dict.fromkeys(f.form for f in fields.values()))})"
            )
    pieces: list[Piece] = []
    files: list[tuple[SourceFile, tuple[str, ...]]] = []
    for path in expand(source, "data"):
        text = read_source_file(source, path)
        label = file_label(source, path)
        _check_raw(source, text, label, fields)
        for table, form in source.instruments.items():
            pieces.append(_table_piece(source, text, label, fields, table, form))
        files.append((source_file(source, text, label), tuple(source.instruments)))
    return Adapted(tuple(pieces), tuple(files))


def _field_values(
    source: Source,
    text: TextTable,
    fields: dict[str, Field],
    canonical: str,
    name: str,
    *,
    key: str = "columns",
    meaning: str | None = None,
    joiner: str = "; ",
) -> pd.Series:
    """Return the text of a field for a canonical column (labels for coded fields).

    ``canonical`` names the codes (``[sources.codes.<canonical>]``) that may rename a choice;
    ``key`` and ``meaning`` (default ``canonical``) say in a message which setting maps the
    field to what; the ticked choices of a checkbox field are joined by ``joiner``.
    """
    meaning = meaning or canonical
    field = fields.get(name)
    if field is not None and field.type == "checkbox":
        choices, ticked = [], []
        for code, choice in field.choices.items():
            column = f"{name}___{_checkbox_code(code)}"
            if column in text.header:
                choices.append(choice)
                ticked.append(text.frame[_column(text, column)].eq("1").fillna(False).to_numpy())
        if not ticked:
            raise InputFileError(
                f"{source.config}: {source.key(key)} maps {meaning} to the checkbox "
                f"field '{name}', but the export has none of its columns ({name}___<code>)"
            )
        return _ticked_labels(choices, np.column_stack(ticked), joiner, text.frame.index)
    if name not in text.header:
        raise InputFileError(
            f"{source.config}: {source.key(key)} maps {meaning} to '{name}', but the "
            f"export has no such column"
        )
    values = text.frame[_column(text, name)].astype(STR)
    if field is not None and field.type in CODED_TYPES:
        user = {_fold(k): v for k, v in source.codes.get(canonical, {}).items()}
        translate = {
            code: user.get(_fold(code), user.get(_fold(choice), choice))
            for code, choice in field.choices.items()
        }

        def labelled(codes: pd.Series) -> pd.Series:
            mapped = codes.map(translate)
            labels = codes.where(mapped.isna(), mapped).astype(STR)
            return labels.mask(labels == "")

        values = per_distinct(labelled, values)
    return values


def _table_piece(
    source: Source,
    text: TextTable,
    label: str,
    fields: dict[str, Field],
    table: str,
    form: str,
) -> Piece:
    """Make one canonical table's rows from the rows of its instrument."""
    record_id = next(iter(fields))
    frame = text.frame
    header = set(text.header)
    repeat = frame[_column(text, REPEAT)] if REPEAT in header else pd.Series(pd.NA, frame.index)
    events = (
        frame[_column(text, EVENT)].astype(STR) if EVENT in header else pd.Series("", frame.index)
    )
    by_events = table == "sessions" and source.adverse_events is not None
    # the contract's columns and the study's own (declared outcomes, covariates), alike
    mapping = {
        c: source.columns.get(c, c)
        for c in column_names(table, source.extra)
        if not (by_events and c in EVENT_COLUMNS)  # read from the event fields instead
    }
    mapping[PATIENT_ID] = source.columns.get(PATIENT_ID, record_id)
    present = {
        c: n
        for c, n in mapping.items()
        if n in header or (n in fields and fields[n].type == "checkbox")
    }
    repeating = repeat.eq(form).fillna(False).astype(bool)
    if repeating.any():
        rows = repeating
    else:
        own = [n for c, n in present.items() if c != PATIENT_ID and _form(fields, n) == form]
        rows = _filled(frame, text, fields, own) & repeat.isna()
    found = None
    if by_events:
        found = _session_events(source, text, fields, form)
        mine = repeating if repeating.any() else repeat.isna()
        rows = rows | (pd.Series(event_columns.triggers(found), index=frame.index) & mine)
    # From here on, only the instrument's rows of the export.
    rows = rows.to_numpy()
    frame = frame[rows].reset_index(drop=True)
    text = dataclasses.replace(text, frame=frame)
    repeat, events = repeat[rows].reset_index(drop=True), events[rows].reset_index(drop=True)
    instance = frame[_column(text, INSTANCE)] if INSTANCE in header else None
    out = pd.DataFrame(
        {
            SOURCE_FILE: pd.Series(label, index=frame.index, dtype=STR),
            SOURCE_LINE: frame[LINE].to_numpy(),
            SOURCE_DETAIL: _details(events, repeat, instance),
        }
    )
    for canonical, name in present.items():
        out[canonical] = _field_values(source, text, fields, canonical, name)
    problems = []
    if table == "sessions" and "session_number" not in source.columns and source.session_events:
        # a session instrument filled once per event: the event gives the session number
        out["session_number"] = _event_numbers(source, table, events, problems)
    elif table == "sessions" and "session_number" not in source.columns and instance is not None:
        out["session_number"] = instance.astype(STR)
    if table == "patients" and "arm" not in source.columns and source.arms:
        arm = events.str.extract(_ARM.pattern, expand=False)
        out["arm"] = arm.map(source.arms).astype(STR)
    if table == "assessments" and "visit" not in source.columns:
        if EVENT not in header:
            raise InputFileError(
                f"{source.config}: {source.key('columns')} must map visit: {label} has no "
                f"redcap_event_name column to take visits from"
            )
        out["visit"] = _event_numbers(source, table, events, problems)
    missing = [c for c in required_columns(table) if c not in out]
    if missing:
        raise InputFileError(
            f"{source.config}: {source.key('columns')} does not map {missing[0]} for the "
            f"{table} table, and the export has no field named '{missing[0]}'"
        )
    # Codes of coded fields were applied with their labels above; not twice.
    coded = {c for c, n in present.items() if n in fields and fields[n].type in CODED_TYPES}
    plain = dataclasses.replace(
        source, codes={c: m for c, m in source.codes.items() if c not in coded}
    )
    kept = normalise(out, plain)
    listed = None
    if found is not None:
        listed, wrong = event_columns.for_rows(found, rows)
        problems += wrong
    return Piece(
        table,
        kept,
        problems=problems_frame(problems),
        date_format=source.date_format,
        events=listed,
    )


def _session_events(
    source: Source, text: TextTable, fields: dict[str, Field], form: str
) -> event_columns.FileEvents:
    """Read ``[sources.N.adverse_events]`` from the fields of the sessions instrument.

    A flag is a yes/no field or one choice of a checkbox field (``ae___2``, 1 when ticked); a
    list is a checkbox field (its ticked choices' labels), a radio or dropdown field (its
    label) or a text field; a severity field is read as its label (or as a
    ``[sources.codes.ae_severity]`` name of its code).

    Raises
    ------
    InputFileError
        A field is not in the export, or belongs to another instrument.
    """
    spec = source.adverse_events
    meanings = event_columns.column_meanings(spec)
    severities = {spec.severity, *spec.flag_severity.values()}
    cells = {}
    for name, meaning in meanings.items():
        field = fields.get(name) or fields.get(name.rpartition("___")[0])
        if field is not None and field.form != form:
            raise InputFileError(
                f"{source.config}: {source.key('adverse_events')} reads '{name}', a field of "
                f"the instrument '{field.form}'; the events are read from the sessions "
                f"instrument '{form}' (one row per session)"
            )
        if name in fields and fields[name].type == "checkbox" and name != spec.list_column:
            raise InputFileError(
                f"{source.config}: {source.key('adverse_events')} reads the checkbox field "
                f"'{name}' as {meaning}; a flag is one of its choices ({name}___<code>, 1 when "
                f'ticked), or the whole field is the list of events (list = "{name}")'
            )
        canonical = SEVERITY_FIELD if name in severities else name
        cells[name] = _field_values(
            source,
            text,
            fields,
            canonical,
            name,
            key="adverse_events",
            meaning=meaning,
            joiner=f"{spec.delimiter} ",
        )
    # a coded severity field was translated with its labels above; not twice
    coded = any(n in fields and fields[n].type in CODED_TYPES for n in severities if n)
    plain = source
    if coded:
        plain = dataclasses.replace(
            source, codes={c: m for c, m in source.codes.items() if c != SEVERITY_FIELD}
        )
    return event_columns.read_events(plain, pd.DataFrame(cells), {n: n for n in cells})


def _event_numbers(
    source: Source, table: str, events: pd.Series, problems: list[dict]
) -> pd.Series:
    """Return each row's number from its event: visit (``events``) or session (``session_events``).

    Event names match with or without their ``_arm_N`` suffix. A row whose event is not mapped
    gets no number and an ``unknown_event`` problem (added to ``problems``).
    """
    sessions = table == "sessions"
    mapping, key = (
        (source.session_events, "session_events") if sessions else (source.events, "events")
    )
    column, word = ("session_number", "session") if sessions else ("visit", "visit")

    def numbered(names: pd.Series) -> pd.Series:
        number = names.map(mapping)
        bare = names.str.replace(_ARM.pattern, "", regex=True)
        number = number.where(number.notna(), bare.map(mapping))
        return number.map(lambda v: None if pd.isna(v) else str(int(v))).astype(STR)

    number = per_distinct(numbered, events)  # (an export names a handful of events)
    unknown = number.isna() & events.notna()
    for position in [k for k, flag in enumerate(unknown.to_numpy()) if flag]:
        event = events.iloc[position]
        problems.append(
            {
                "row": position,
                "column": column,
                "check": "unknown_event",
                "value": event,
                "reason": f"event '{event}' is not mapped to a {word} in {source.key(key)}",
            }
        )
    return number


def _ticked_labels(
    choices: list[str], ticked: np.ndarray, joiner: str, index: pd.Index
) -> pd.Series:
    """Join the labels of each row's ticked choices (missing where none is ticked).

    ``ticked`` holds one column per choice. The labels are joined once per distinct pattern of
    ticks, of which an export has few, not once per row.
    """
    pattern = np.zeros(len(ticked), dtype=np.int64)
    for column in ticked.T:  # (numbered again after each choice, so the numbers stay small)
        pattern = pd.factorize(pattern * 2 + column)[0]
    _, first = np.unique(pattern, return_index=True)  # a row of each pattern
    labels = np.array(
        [
            joiner.join(c for c, on in zip(choices, ticked[row], strict=True) if on and c) or None
            for row in first
        ],
        dtype=object,
    )
    return pd.Series(labels[pattern], index=index).astype(STR)


def _form(fields: dict[str, Field], name: str) -> str | None:
    return fields[name].form if name in fields else None


def _filled(
    frame: pd.DataFrame, text: TextTable, fields: dict[str, Field], names: list[str]
) -> pd.Series:
    """Rows where any of the fields ``names`` is filled (a checkbox: any choice ticked)."""
    filled = pd.Series(False, index=frame.index)
    for name in names:
        if fields[name].type == "checkbox":
            for code in fields[name].choices:
                column = f"{name}___{_checkbox_code(code)}"
                if column in text.header:
                    filled |= frame[_column(text, column)].eq("1").fillna(False).astype(bool)
        else:
            filled |= frame[_column(text, name)].notna()
    return filled


def _details(events: pd.Series, repeat: pd.Series, instance: pd.Series | None) -> pd.Series:
    """Say where each row stands in the export: ``event baseline_arm_1, session #2``."""
    parts = ("event " + events).where(events.notna() & (events != ""), "")
    if instance is not None:
        repeated = (", " + repeat + " #" + instance).where(repeat.notna() & instance.notna(), "")
        parts = parts + repeated.fillna("")
    parts = parts.str.strip(", ")
    return parts.mask(parts == "").astype(STR)
