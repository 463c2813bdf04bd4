"""Canonical tables and visit sheets: one row per patient, session, assessment or visit."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from pipeline.config.source_columns import VISIT_DATE
from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.events import Drafted, draft_events
from pipeline.ingest.draft.guess import (
    CONTENT_DATES,
    HIGH,
    LOW,
    MEDIUM,
    assign,
    content_guesses,
    file_settings,
    guess_of,
    site_from_folder,
    unmapped_note,
    values_settings,
)
from pipeline.ingest.draft.model import (
    Export,
    Guess,
    Layout,
    SourceDraft,
)
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import TABLES

VISITS_BY_DATE = Guess(
    "visits",
    "by_date",
    MEDIUM,
    "no visit column: each patient's assessments are numbered by date, the first the baseline",
)
"""Drafted for assessments with dates and no visit numbers (not for wide files and REDCap)."""


# ------------------------------------------------------------------------------------------
# flat files: canonical tables and visit sheets
# ------------------------------------------------------------------------------------------
def _content_targets(export: Export, unmatched: list[str]) -> list[str]:
    """Return what columns no name matched hold by their cells (coded values, a 0-10 score)."""
    out = []
    for column in unmatched:
        found = cols.by_content(export.frame[column])
        if len(found) == 1:
            out.append(found[0][0])
            continue
        numbers = cols.as_numbers(cols.values_of(export.frame[column]))
        if (
            not numbers.empty
            and numbers.notna().all()
            and (numbers % 1 == 0).all()
            and numbers.between(0, 10).all()
            and numbers.nunique() >= 3
        ):
            out.append("nrs")
    return out


def flat_layout(mapped: Mapping[str, object]) -> tuple[Layout, tuple[str, ...], str]:
    """Decide between a canonical table and a visit sheet, and which tables, from the columns.

    Columns of two tables on one row make a visit sheet (one row per visit): session and score
    columns, or a patient's details repeated beside the scores or the sessions (a long export
    of a trial). One table's columns, with at most the patient's identifier, make a canonical
    table.
    """
    tables = {cols.table_of(t) for t in mapped} - {None}
    given = tuple(t for t in TABLES if t in tables or t == "patients")  # (a sheet gives its ids)
    if "sessions" in tables and "assessments" in tables:
        why = "session and score columns on one row: one row per visit"
        return Layout.VISIT_SHEET, given, why
    for table in ("sessions", "assessments"):
        if table in tables and "patients" in tables:
            why = f"patient details repeated beside {_rows(table)}: one row per visit"
            return Layout.VISIT_SHEET, given, why
        if table in tables:
            return Layout.CANONICAL, (table,), f"{table} columns and no {_other(table)} columns"
    return Layout.CANONICAL, ("patients",), "only patient columns"


def _rows(table: str) -> str:
    return "the scores" if table == "assessments" else "the sessions"


def _absent(tables: tuple[str, ...]) -> str:
    return " or ".join(t.removesuffix("s") for t in TABLES if t not in tables)


def _other(table: str) -> str:
    return "assessment" if table == "sessions" else "session"


def flat_columns(export: Export, tables: tuple[str, ...]) -> tuple[list[Guess], list[str]]:
    """Map one canonical table or visit sheet giving ``tables``; return the guesses and the rest.

    A column of a table the file does not give is left unmapped. A date or number column no
    name places is the visit's (both the session's and the assessment's) on a sheet of sessions
    and scores, else the date and number of the table on the rows (the enrolment date of a
    patient list).
    """
    mapped, unmatched = assign(export, extra=cols.OWN_OUTCOMES)
    out: dict[str, Guess] = {}
    for target, m in mapped.items():
        if target in (cols.DATE, cols.NUMBER):
            continue
        if cols.table_of(target) not in (None, *tables):
            unmatched.append(m.column)
            continue
        out[target] = guess_of(target, m, export)
    date, number = mapped.get(cols.DATE), mapped.get(cols.NUMBER)
    rows = [t for t in tables if t != "patients"]
    if len(rows) == 2:
        if date:
            own = [d for d in ("session_date", "assessment_date") if d not in out]
            targets = [VISIT_DATE] if len(own) == 2 else own
            for t in targets:
                out[t] = guess_of(t, date, export, ", the visit's date")
        if number:
            for t in ("session_number", "visit"):
                if t not in out:
                    out[t] = guess_of(
                        t, number, export, ", both the session number and the visit number"
                    )
        session = out.get("session_number")
        if session is not None and "visit" not in out:
            out["visit"] = Guess(
                "visit",
                session.value,
                MEDIUM,
                f"no visit column: '{session.value}' numbers the visits too (each row's scores "
                "are the assessment of its number)",
            )
    else:
        table = rows[0] if rows else "patients"
        date_column = {"sessions": "session_date", "assessments": "assessment_date"}.get(
            table, "enrolment_date"
        )
        if date and date_column not in out:
            out[date_column] = guess_of(date_column, date, export)
        elif date:
            unmatched.append(date.column)
        number_column = {"sessions": "session_number", "assessments": "visit"}.get(table)
        if number and number_column and number_column not in out:
            out[number_column] = guess_of(number_column, number, export)
        elif number:
            unmatched.append(number.column)
    allowed = set(cols.CODES) | {"nrs", *CONTENT_DATES}
    if len(rows) == 2:
        allowed -= {"session_date", "assessment_date"}
    else:
        allowed = {c for c in allowed if cols.table_of(c) in tables}
    found, left = content_guesses(export, unmatched, set(out), allowed)
    for g in found:
        out[g.key] = g
    if PATIENT_ID not in out and left:
        first = left.pop(0)
        out[PATIENT_ID] = Guess(PATIENT_ID, first, LOW, "no name matched; the first column")
    order = {c: k for k, c in enumerate(export.columns)}
    guesses = sorted(out.values(), key=lambda g: (order.get(str(g.value), 0), g.key))
    rest = set(left)
    return guesses, [c for c in export.columns if c in rest]


def flat_sources(exports: list[Export]) -> list[SourceDraft]:
    """Draft the sources of the canonical tables and visit sheets among ``exports``."""
    sources: list[SourceDraft] = []
    groups: dict[tuple, list[tuple[Export, str, list[Guess], list[str], str]]] = {}
    events: dict[tuple[str, str | None], Drafted] = {}
    for export in exports:
        mapped, unmatched = assign(export, extra=cols.OWN_OUTCOMES)
        seen = dict.fromkeys([*mapped, *_content_targets(export, unmatched)])
        layout, tables, why = flat_layout(seen)
        guesses, left = flat_columns(export, tables)
        if "sessions" in tables:
            events[_key(export)] = draft_events(export, guesses, left)
            guesses, left = events[_key(export)].guesses, events[_key(export)].left
        settings = file_settings(export, {g.key: str(g.value) for g in guesses})
        if layout == Layout.VISIT_SHEET:
            source = SourceDraft(
                kind=Guess("kind", layout.value, HIGH if len(guesses) > 4 else MEDIUM, why),
                files={"data": [export.label]},
                settings=settings,
                columns=guesses,
            )
            if tables != TABLES:
                source.settings.append(
                    Guess("tables", list(tables), MEDIUM, f"{why}; no {_absent(tables)} columns")
                )
            keys = {g.key for g in guesses}
            if (
                "assessments" in tables
                and "visit" not in keys
                and keys & {"assessment_date", VISIT_DATE}
            ):
                source.settings.append(VISITS_BY_DATE)
            if "site" not in {g.key for g in guesses}:
                site = site_from_folder(export)
                if site:
                    source.settings.append(site)
            source.unmapped = _unmapped(export, left, events.get(_key(export)))
            values_settings(source, [export], [guesses])
            _add_events(source, events.get(_key(export)))
            sources.append(source)
            continue
        folder = posixpath.dirname(export.label)
        groups.setdefault(folder, []).append((export, tables[0], guesses, left, why))
    for members in groups.values():
        split: list[list] = []
        for member in members:
            for group in split:
                if member[1] not in {m[1] for m in group} and _same_dialect(group[0], member):
                    group.append(member)
                    break
            else:
                split.append([member])
        for group in split:
            sources.append(_canonical_source(group, events))
    return sources


def _key(export: Export) -> tuple[str, str | None]:
    """Tell the tables of a drafted file apart: its label and sheet (two sheets, one workbook)."""
    return export.label, export.sheet


def _unmapped(export: Export, left: list[str], drafted: Drafted | None) -> list[tuple[str, str]]:
    """List the unmapped columns of a file, each with a note on its cells (or why it was left)."""
    notes = drafted.notes if drafted else {}
    return [(export.label, f"{c} ({notes.get(c) or unmapped_note(export, c)})") for c in left]


def _add_events(source: SourceDraft, drafted: Drafted | None) -> None:
    """Put a file's ``[sources.adverse_events]`` block, and its severity codes, on its source."""
    if drafted is None or drafted.block is None:
        return
    source.adverse_events = drafted.block
    if drafted.severity_codes:
        source.codes = [c for c in source.codes if c.column != "ae_severity"]
        source.codes.append(drafted.severity_codes)


# Settings two files of one canonical source must share; the others may be absent from one
# (an ASCII file reads the same as Windows-1252, a file without decimals has no decimal mark).
_STRICT = {"delimiter": ",", "header_row": 1, "footer_rows": 0, "sheet": None}


def _dialect(member: tuple) -> dict[str, object]:
    export, _, guesses, _, _ = member
    return {g.key: g.value for g in file_settings(export, {g.key: str(g.value) for g in guesses})}


def _same_dialect(first: tuple, other: tuple) -> bool:
    a, b = _dialect(first), _dialect(other)
    if any(a.get(k, d) != b.get(k, d) for k, d in _STRICT.items()):
        return False
    return all(a[k] == b[k] for k in set(a) & set(b))


def _canonical_source(group: list, events: Mapping[tuple[str, str | None], Drafted]) -> SourceDraft:
    exports = [m[0] for m in group]
    tables = {m[1]: m[0].label for m in group}
    columns: dict[str, Guess] = {}
    for _, _, guesses, _, _ in group:
        for g in guesses:
            held = columns.get(g.key)
            if held is None:
                columns[g.key] = g
            elif held.value != g.value and g.key != PATIENT_ID:
                columns[g.key] = g
    why = "; ".join(f"{posixpath.basename(m[0].label)}: {m[1]} ({m[4]})" for m in group)
    settings: dict[str, Guess] = {}
    for member in group:
        export, _, guesses, _, _ = member
        for g in file_settings(export, {g.key: str(g.value) for g in guesses}):
            settings.setdefault(g.key, g)
    source = SourceDraft(
        kind=Guess("kind", Layout.CANONICAL.value, HIGH, why),
        files={t: [tables[t]] for t in TABLES if t in tables},
        settings=list(settings.values()),
        columns=list(columns.values()),
    )
    if "assessments" in tables and "visit" not in columns and "assessment_date" in columns:
        source.settings.append(VISITS_BY_DATE)
    if "patients" in tables and "site" not in columns:
        site = site_from_folder(exports[0])
        if site:
            source.settings.append(site)
    for export, _, _, left, _ in group:
        source.unmapped += _unmapped(export, left, events.get(_key(export)))
    values_settings(source, exports, [m[2] for m in group])
    if "sessions" in tables:
        sessions = next(m[0] for m in group if m[1] == "sessions")
        _add_events(source, events.get(_key(sessions)))
    return source
