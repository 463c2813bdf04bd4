"""REDCap: a raw export read with its data dictionary (instruments, events)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from pipeline.ingest.adapters.redcap import DAG, EVENT, REPEAT, Field
from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.events import KIND_WORDS, SINGLE, draft_events, read_name
from pipeline.ingest.draft.guess import (
    HIGH,
    MEDIUM,
)
from pipeline.ingest.draft.model import (
    CodeDraft,
    Export,
    Guess,
    Layout,
    SourceDraft,
)
from pipeline.ingest.draft.words import label_weeks, norm
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import TABLES

_ARM_SUFFIX = re.compile(r"_arm_\d+$")


# ------------------------------------------------------------------------------------------
# REDCap
# ------------------------------------------------------------------------------------------
def is_redcap(export: Export, fields: Mapping[str, Field] | None) -> bool:
    """Whether a file is a REDCap raw export (of the dictionary ``fields``, when given)."""
    if fields:
        return next(iter(fields)) in export.columns
    return EVENT in export.columns


def _field_target(f: Field) -> cols.Candidate | None:
    names = [f.name]
    if "_" in f.name:
        names.append(f.name.split("_", 1)[1])
    for strength in (cols.EXACT, cols.WORDS):
        for name in [*names, f.label]:
            if not name:
                continue
            for cand in cols.name_candidates(name):
                if cand.strength >= strength and cand.target != cols.NUMBER:
                    return cols.Candidate(
                        cand.target, cand.strength, f"field {f.name} ('{f.label}')"
                    )
    return None


def redcap_source(export: Export, fields: Mapping[str, Field], dictionary: str) -> SourceDraft:
    """Draft a REDCap source from its raw export and data dictionary."""
    record = next(iter(fields))
    found: dict[str, tuple[str, str, cols.Candidate]] = {}  # target -> (column, form, cand)
    used: set[str] = set()
    for f in list(fields.values())[1:]:
        if f.type in ("descriptive",):
            continue
        if f.type == "checkbox":
            hits = []
            for code, label in f.choices.items():
                column = f"{f.name}___{code}"
                cand = next(
                    (c for c in cols.name_candidates(label) if c.strength == cols.EXACT), None
                )
                if cand and cols.KINDS.get(cand.target) == "yes/no" and column in export.columns:
                    hits.append((cand.target, column, cand, label))
            if hits:
                for target, column, cand, label in hits:
                    if target not in found:
                        found[target] = (
                            column,
                            f.form,
                            cols.Candidate(
                                target, cand.strength, f"choice '{label}' of the checkbox {f.name}"
                            ),
                        )
                        used.add(column)
                continue
        cand = _field_target(f)
        if cand is None or (cand.target in found and cand.target != cols.DATE):
            continue
        key = f"{cand.target}:{f.form}" if cand.target == cols.DATE else cand.target
        found.setdefault(key, (f.name, f.form, cand))
        used.add(f.name)
    forms: dict[str, dict[str, int]] = {}
    for _, form, cand in found.values():
        table = cols.table_of(cand.target)
        if table:
            forms.setdefault(table, {}).setdefault(form, 0)
            forms[table][form] += 1
    instruments = {t: max(c, key=lambda f: c[f]) for t, c in forms.items()}
    form_table = {f: t for t, f in instruments.items()}
    source = SourceDraft(
        kind=Guess(
            "kind", Layout.REDCAP.value, HIGH, f"a REDCap export with its dictionary ({dictionary})"
        ),
        files={"data": [export.label]},
        dictionary=dictionary,
    )
    source.columns.append(Guess(PATIENT_ID, record, HIGH, "the first field of the data dictionary"))
    if DAG in export.columns and export.frame[DAG].notna().any():
        source.columns.append(Guess("site", DAG, HIGH, "the data access group"))
        groups = sorted(export.frame[DAG].dropna().unique())
        source.codes.append(
            CodeDraft(
                "site",
                {g: g.replace("_", " ").title() for g in groups},
                MEDIUM,
                "the group names written as clinic names",
            )
        )
    for column, form, cand in found.values():
        target = cand.target
        if target == cols.DATE:
            table = form_table.get(form)
            target = {"sessions": "session_date", "assessments": "assessment_date"}.get(
                table or "", "enrolment_date"
            )
            if any(g.key == target for g in source.columns):
                continue
        level = HIGH if cand.strength == cols.EXACT else MEDIUM
        source.columns.append(Guess(target, column, level, f"{cand.why} of the form {form}"))
    for table in TABLES:
        if table in instruments:
            source.instruments.append(
                Guess(
                    table,
                    instruments[table],
                    HIGH,
                    f"{forms[table][instruments[table]]} of its fields are {table} columns",
                )
            )
    events = _events(export, fields, instruments)
    source.events, source.session_events = events
    if "sessions" in instruments:
        read = _session_events(export, fields, instruments["sessions"], source)
        used |= read
    columns_of = {f.name for f in fields.values()}
    skipped = [
        c
        for c in export.columns
        if c not in used
        and c != record
        and not c.startswith("redcap_")
        and not c.endswith("_complete")
        and c.split("___")[0] not in used
    ]
    source.unmapped = [
        (export.label, c + ("" if c.split("___")[0] in columns_of else " (not in the dictionary)"))
        for c in skipped
    ]
    return source


def _session_events(
    export: Export, fields: Mapping[str, Field], form: str, source: SourceDraft
) -> set[str]:
    """Draft ``[sources.adverse_events]`` from the fields of the sessions instrument.

    Each field is read by what its name or label says, as a visit sheet's columns are
    (:func:`pipeline.ingest.draft.events.draft_events`): a checkbox field about adverse events
    gives one flag per choice named by a kind (``ae___1``, choice ``Soreness``), a yes/no field
    named by one is a flag, a radio or text field named by a severity word a severity (of the
    kind its name or label names, else of the row). The cells are the session rows', choices
    as their labels. The block replaces the single ``adverse_event`` / ``ae_severity`` guesses
    of the sessions instrument, and the draft's own reading of the sessions form is used only
    when it finds flags.

    Returns
    -------
    set of str
        The export's columns the block reads (none when no block is drafted).
    """
    frame = export.frame
    rows = frame[REPEAT].eq(form).fillna(False) if REPEAT in frame else None
    if rows is None or not rows.any():
        rows = pd.Series(True, index=frame.index)
    cells: dict[str, pd.Series] = {}
    real: dict[str, str] = {}

    def add(name: str, column: str, values: pd.Series) -> None:
        if name not in cells:
            cells[name] = values[rows.to_numpy()].reset_index(drop=True)
            real[name] = column

    for f in fields.values():
        if f.form != form:
            continue
        said = [read_name(text) for text in (f.label, f.name) if text]
        marked = any(n.marked for n in said)
        if f.type == "checkbox" and marked:
            for code, label in f.choices.items():
                column = f"{f.name}___{code}"
                kind = read_name(label).kind or KIND_WORDS.get(norm(label))
                if column in frame and kind:
                    add(f"ae {kind}", column, frame[column])
        elif f.type in ("yesno", "truefalse") and f.name in frame:
            kind = next((n.kind for n in said if n.marked and n.kind), None)
            if kind:
                add(f"ae {kind}", f.name, frame[f.name].map({"1": "yes", "0": "no"}))
        elif f.type in ("radio", "dropdown", "text") and f.name in frame:
            graded = next((n for n in said if n.graded), None)
            if graded is not None:
                values = frame[f.name]
                if f.choices:
                    values = values.map(f.choices).where(values.notna())
                name = f"severity {graded.rest}".strip() if graded.kind else "severity"
                add(name, f.name, values)
    if not any(n.startswith("ae ") for n in cells):
        return set()
    stacked = pd.DataFrame(cells)
    single = [g for g in source.columns if g.key in SINGLE]
    drafted = draft_events(
        Export(export.label, export.folder, stacked, tuple(cells)), [], list(cells)
    )
    block = drafted.block
    if block is None or not block.flags:
        return set()

    def why(text: str) -> str:  # the fields' names, not the names they were read by
        for name, column in real.items():
            text = text.replace(f"'{name}'", f"'{column}' (read as '{name}')", 1)
        return text

    block.rename(real, why)
    source.adverse_events = block
    source.columns = [g for g in source.columns if g not in single]
    if drafted.severity_codes:
        source.codes.append(drafted.severity_codes)
    used = block.columns()
    return used | {str(g.value) for g in single}


def _events(
    export: Export, fields: Mapping[str, Field], instruments: Mapping[str, str]
) -> tuple[list[Guess], list[Guess]]:
    if EVENT not in export.frame:
        return [], []
    frame = export.frame
    events = frame[EVENT].astype(str).str.replace(_ARM_SUFFIX, "", regex=True)

    def filled(form: str) -> pd.Series:
        own = [
            c
            for c in export.columns
            if c.split("___")[0] in fields
            and fields[c.split("___")[0]].form == form
            and c != next(iter(fields))
        ]
        own = [c for c in own if "___" not in c] or own
        return frame[own].notna().any(axis=1) if own else pd.Series(False, index=frame.index)

    out_events, out_sessions = [], []
    if "assessments" in instruments:
        seen = list(dict.fromkeys(events[filled(instruments["assessments"])]))
        weeks = {e: label_weeks(e) for e in seen}
        if all(w is not None for w in weeks.values()):
            seen = sorted(seen, key=lambda e: weeks[e])
            level, why = HIGH, "events numbered in the order of the weeks they name"
        else:
            level, why = MEDIUM, "events in the order they first appear"
        for k, event in enumerate(seen):
            out_events.append(Guess(event, k, level, why))
    if "sessions" in instruments:
        form = instruments["sessions"]
        repeating = REPEAT in frame and (frame[REPEAT] == form).any()
        if not repeating:
            seen = list(dict.fromkeys(events[filled(form)]))
            for k, event in enumerate(seen, start=1):
                out_sessions.append(
                    Guess(
                        event,
                        k,
                        MEDIUM,
                        f"{form} is filled once per event: events in the order they appear",
                    )
                )
    return out_events, out_sessions
