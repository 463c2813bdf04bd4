"""Draft ``[[sources]]`` entries from the files' names and cells (pure functions).

For every file: which layout it is (a canonical table, a visit sheet, a wide file, a REDCap
export with its dictionary), which canonical column each of its columns holds (by name in six
languages, checked by the cells; by the cells alone for coded columns), how it is written
(delimiter, encoding, header line, decimal mark, date format, yes/no language) and which code
lists, units and numbering its values need. Every guess carries a :class:`Confidence` and the
reason for it; what is not recognised is listed, never dropped silently.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from pipeline.config.instruments import LIBRARY
from pipeline.config.settings import ODI_ANSWERED, VISIT_DATE
from pipeline.config.vocabulary import LANGUAGES
from pipeline.ingest.adapters.mapping import numbered
from pipeline.ingest.adapters.redcap import DAG, EVENT, REPEAT, Field
from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.model import (
    CodeDraft,
    Confidence,
    Draft,
    Export,
    Guess,
    Layout,
    PointsDraft,
    SourceDraft,
)
from pipeline.ingest.draft.words import (
    CO_INTERVENTION_WORDS,
    LIST_SEPARATORS,
    UNIT_WORDS,
    VALUE_WORDS,
    label_weeks,
    norm,
    unit_of,
)
from pipeline.schemas.columns import INSTRUMENT_COLUMNS, PATIENT_ID
from pipeline.schemas.raw import TABLES

HIGH, MEDIUM, LOW = Confidence.HIGH, Confidence.MEDIUM, Confidence.LOW
CODED = ("sex", "depth", "trigger_point", "adverse_event", "ae_severity")
# Outcome instruments of the library a study declares under [outcomes.NAME] (not built in).
OWN_OUTCOMES = tuple(n for n in LIBRARY if n not in INSTRUMENT_COLUMNS)
_ARM_SUFFIX = re.compile(r"_arm_\d+$")
# Names of a control arm, the reference of a randomised comparison.
CONTROL_WORDS = frozenset(
    norm(w)
    for w in (
        "sham",
        "placebo",
        "control",
        "usual care",
        "kontrolle",
        "schein",
        "controle",
        "simule",
        "simulado",
        "control",
        "controllo",
        "simulato",
        "controle",
        "nep",
    )
)


@dataclass(frozen=True)
class Mapped:
    """A clinic column assigned to a canonical column (or ``DATE`` / ``NUMBER``)."""

    target: str
    column: str
    strength: int
    why: str


# ------------------------------------------------------------------------------------------
# one flat file: its columns by name, then by content
# ------------------------------------------------------------------------------------------
def assign(
    export: Export, names: list[str] | None = None, extra: tuple[str, ...] = ()
) -> tuple[dict[str, Mapped], list[str]]:
    """Assign columns to canonical columns by name; each canonical column to one clinic column.

    When two columns claim one canonical column, the stronger name wins, then the one whose
    cells fit, then the first; the other tries its next meaning.

    Returns
    -------
    mapped : dict of str to Mapped
        By target.
    unmatched : list of str
        Columns no name matched, in file order.
    """
    names = list(export.columns) if names is None else names
    options = {c: cols.name_candidates(c, extra) for c in names}
    fits = {}

    def fitting(target: str, column: str) -> int:
        if target in (cols.DATE, cols.NUMBER) or target in extra:
            return 1
        key = (target, column)
        if key not in fits:
            fits[key] = cols.fit(target, export.frame[column])[0]
        return {True: 2, None: 1, False: 0}[fits[key]]

    mapped: dict[str, Mapped] = {}
    pending = [c for c in names if options[c]]
    tried = {c: 0 for c in names}
    while pending:
        column = pending.pop(0)
        if tried[column] >= len(options[column]):
            continue
        cand = options[column][tried[column]]
        tried[column] += 1
        held = mapped.get(cand.target)
        if held is None or (cand.target in (cols.DATE, cols.NUMBER) and held.column == column):
            mapped[cand.target] = Mapped(cand.target, column, cand.strength, cand.why)
            continue
        mine = (cand.strength, fitting(cand.target, column))
        theirs = (held.strength, fitting(cand.target, held.column))
        if mine > theirs:
            mapped[cand.target] = Mapped(cand.target, column, cand.strength, cand.why)
            pending.insert(0, held.column)
        else:
            pending.insert(0, column)
    used = {m.column for m in mapped.values()}
    return mapped, [c for c in names if c not in used]


def _guess(target: str, m: Mapped, export: Export, note: str = "") -> Guess:
    ok, seen = cols.fit(target, export.frame[m.column]) if m.column in export.frame else (None, "")
    level = cols.confidence(m.strength, ok)
    why = m.why if target in m.why else f"{m.why}, read as {target}"
    return Guess(target, m.column, level, f"{why}; {seen}{note}" if seen else why + note)


def _content_guesses(
    export: Export, unmatched: list[str], taken: set[str], allowed: set[str]
) -> tuple[list[Guess], list[str]]:
    """Map columns no name matched by their values (coded columns only)."""
    out, left = [], []
    for column in unmatched:
        found = [
            (t, why)
            for t, why in cols.by_content(export.frame[column])
            if t not in taken and t in allowed
        ]
        if len(found) == 1:
            target, why = found[0]
            taken.add(target)
            out.append(Guess(target, column, MEDIUM, f"by content: {why}"))
            continue
        by_range = _by_range(export, column, taken, allowed)
        if by_range:
            taken.add(by_range.key)
            out.append(by_range)
        else:
            left.append(column)
    return out, left


# Columns an unnamed column may be recognised as by its cells alone, in this order: a date
# column where the table needs its date, a pain score on 0-10 in whole numbers.
CONTENT_DATES = ("visit_date", "session_date", "assessment_date", "enrolment_date")


def _by_range(export: Export, column: str, taken: set[str], allowed: set[str]) -> Guess | None:
    """Recognise an unnamed date column, or an NRS (whole numbers 0-10), by its cells (low)."""
    values = cols.values_of(export.frame[column])
    if values.empty:
        return None
    if cols.is_date(values).mean() >= 0.9:
        visit_dates = {"session_date", "assessment_date", "visit_date"}
        wanted = [
            d
            for d in CONTENT_DATES
            if d in allowed and d not in taken and not (d in visit_dates and visit_dates & taken)
        ]
        if wanted:
            return Guess(wanted[0], column, LOW, f"by content: the cells of '{column}' are dates")
        return None
    numbers = cols.as_numbers(values)
    whole = numbers.notna().all() and (numbers % 1 == 0).all()
    if "nrs" in allowed and "nrs" not in taken and whole and numbers.between(0, 10).all():
        if numbers.nunique() >= 3:
            return Guess(
                "nrs",
                column,
                LOW,
                f"by content: whole numbers {numbers.min():g}-"
                f"{numbers.max():g}, as a pain score 0-10",
            )
    return None


def _unmapped_note(export: Export, column: str) -> str:
    values = cols.values_of(export.frame[column])
    if values.empty:
        return "empty"
    folded = set(values.map(norm))
    if folded <= cols.YES_NO_WORDS:
        return "yes/no values"
    if cols.is_date(values).mean() >= 0.9:
        return "dates"
    numbers = cols.as_numbers(values)
    if numbers.notna().all():
        return f"numbers {numbers.min():g}-{numbers.max():g}"
    shown = ", ".join(sorted(values.unique())[:4])
    return f"{values.nunique()} distinct values, e.g. {shown}"


# ------------------------------------------------------------------------------------------
# how a file is written
# ------------------------------------------------------------------------------------------
_DMY = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})")
_YMD_SLASH = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}")


def date_format(values: pd.Series) -> Guess | None:
    """Guess how dates are written, from the cells of the date columns (``None``: ISO)."""
    values = values.dropna().astype(str).str.strip()
    if values.empty:
        return None
    parts = values.str.extract(_DMY)
    dmy = parts[0].notna()
    if not dmy.any():
        if values.str.match(_YMD_SLASH).mean() > 0.5:
            return Guess("date_format", "YYYY/MM/DD", HIGH, "dates are written year/month/day")
        return None
    sep = parts.loc[dmy, 1].mode().iloc[0]
    first, second = parts.loc[dmy, 0].astype(int), parts.loc[dmy, 2].astype(int)
    shown = values[dmy].iloc[0]
    if (second > 12).any() and not (first > 12).any():
        return Guess(
            "date_format",
            f"MM{sep}DD{sep}YYYY",
            HIGH,
            f"dates like {shown}: the second number goes above 12",
        )
    if (first > 12).any():
        return Guess(
            "date_format",
            f"DD{sep}MM{sep}YYYY",
            HIGH,
            f"dates like {shown}: the first number goes above 12",
        )
    return Guess(
        "date_format",
        f"DD{sep}MM{sep}YYYY",
        MEDIUM,
        f"dates like {shown}; no number above 12 seen, so day first is assumed",
    )


def file_settings(export: Export, mapped_columns: Mapping[str, str]) -> list[Guess]:
    """How the file is written: delimiter, encoding, header line, sheet, decimal mark, dates."""
    out = []
    if export.delimiter not in (None, ","):
        name = {";": "semicolons", "\t": "tabs", "|": "bars"}[export.delimiter]
        out.append(Guess("delimiter", export.delimiter, HIGH, f"the header is split by {name}"))
    if export.encoding in ("windows-1252", "latin-1"):
        value = "cp1252" if export.encoding == "windows-1252" else "latin-1"
        out.append(Guess("encoding", value, HIGH, "the file is not UTF-8; its letters read right"))
    if export.header_row > 1:
        out.append(
            Guess(
                "header_row",
                export.header_row,
                HIGH,
                f"the lines above line {export.header_row} hold no table",
            )
        )
    if export.sheet:
        out.append(Guess("sheet", export.sheet, HIGH, "the sheet holding the table"))
    numeric = [
        c for t, c in mapped_columns.items() if cols.KINDS.get(t) == "number" and c in export.frame
    ]
    cells = pd.concat([cols.values_of(export.frame[c]) for c in numeric]) if numeric else None
    if cells is not None and not cells.empty:
        comma = cells.str.match(r"^-?\d+,\d+$").sum()
        point = cells.str.match(r"^-?\d+\.\d+$").sum()
        if comma and not point:
            out.append(
                Guess(
                    "decimal", ",", HIGH, f"numbers like {cells[cells.str.contains(',')].iloc[0]}"
                )
            )
    dates = [
        c for t, c in mapped_columns.items() if cols.KINDS.get(t) == "date" and c in export.frame
    ]
    if dates:
        found = date_format(pd.concat([export.frame[c] for c in dates]))
        if found:
            out.append(found)
    return out


def languages(export: Export, mapped_columns: Mapping[str, str]) -> Guess | None:
    """Guess the language of the yes/no and "not recorded" words, when it is not English."""
    kinds = cols.KINDS
    cells = [
        cols.values_of(export.frame[c]).map(norm)
        for t, c in mapped_columns.items()
        if c in export.frame and (kinds.get(t) == "yes/no" or t in cols.CODES)
    ]
    seen = set(pd.concat(cells)) if cells else set()
    scores = {}
    for lang, lists in LANGUAGES.items():
        words = {norm(w) for words in lists for w in words}
        scores[lang] = sorted(seen & words)
    best = max(scores, key=lambda k: len(scores[k]))
    if best == "en" or not scores[best] or len(scores[best]) <= len(scores["en"]):
        return None
    return Guess(
        "languages",
        [best],
        MEDIUM if len(scores[best]) < 2 else HIGH,
        f"cells written {', '.join(scores[best][:4])}",
    )


# ------------------------------------------------------------------------------------------
# code lists and units
# ------------------------------------------------------------------------------------------
def code_list(column: str, cells: pd.Series) -> CodeDraft | None:
    """Propose the code list of a coded column from the values seen (``None``: none needed)."""
    distinct = list(dict.fromkeys(cells.dropna().astype(str).str.strip()))
    if column == "visit":
        return _visit_codes(distinct)
    if column == "co_intervention":
        return _co_intervention_codes(distinct)
    if column == "site":
        short = [v for v in distinct if len(v) <= 4 and v.isupper()]
        if short and len(short) == len(distinct):
            return CodeDraft("site", {}, LOW, "they look like abbreviations of clinics", short)
        return None
    if column not in VALUE_WORDS:
        return None
    canonical = {norm(v) for v in cols.CODES.get(column, ())}
    words = VALUE_WORDS[column]
    codes: dict[str, object] = {}
    unknown = []
    for value in distinct:
        key = norm(value)
        if key in canonical:
            continue
        if key in words:
            codes[value] = words[key]
        else:
            unknown.append(value)
    if column == "depth" and set(distinct) <= {"1", "2"} and distinct:
        return CodeDraft(
            column,
            {"1": "superficial", "2": "deep"},
            LOW,
            "codes 1 and 2 read as superficial and deep; check your form",
        )
    folded = {norm(v) for v in distinct}
    if column == "sex" and {"m", "h"} <= folded:
        # H is hombre / homme (male), so M is mujer (female): Spanish sheets write M and H
        codes = {v: "female" if norm(v) == "m" else c for v, c in codes.items()}
    if not codes and not unknown:
        return None
    short = any(len(norm(v)) <= 1 for v in codes)
    level = MEDIUM if short or unknown else HIGH
    why = "words of the six languages" + (" (single letters)" if short else "")
    return CodeDraft(column, codes, level, why, unknown)


def _co_intervention_codes(distinct: list[str]) -> CodeDraft | None:
    """Translate co-interventions written in another language ("Übungen + Manuelle Therapie")."""
    codes: dict[str, object] = {}
    for value in distinct:
        parts = [p for p in LIST_SEPARATORS.split(value) if p and p.strip()]
        found = [CO_INTERVENTION_WORDS.get(norm(p)) for p in parts]
        if parts and all(found):
            written = "; ".join(dict.fromkeys(f for f in found if f))
            if written != value:
                codes[value] = written
    if not codes:
        return None
    return CodeDraft(
        "co_intervention",
        codes,
        MEDIUM,
        "co-interventions translated; others stay as written (free text)",
    )


def _visit_codes(distinct: list[str]) -> CodeDraft | None:
    numbers = numbered(pd.Series(distinct, dtype="string")).astype(str)
    if cols.as_numbers(numbers).notna().all():
        return None
    weeks = {v: label_weeks(v) for v in distinct}
    if not all(w is not None for w in weeks.values()):
        missing = [v for v, w in weeks.items() if w is None]
        return CodeDraft("visit", {}, LOW, "visit names without a time", missing)
    order = sorted(distinct, key=lambda v: weeks[v])
    codes = {v: k for k, v in enumerate(order)}
    return CodeDraft(
        "visit", codes, HIGH, "visits numbered in the order of their weeks (baseline = 0)"
    )


def unit(column: str, name: str, cells: pd.Series, odi_answered: bool = False) -> Guess | None:
    """Guess the unit of a VAS, ODI or symptom-duration column from its name and values."""
    if column not in UNIT_WORDS:
        return None
    words = set((unit_of(name) + " " + norm(name)).split())
    for choice, spellings in UNIT_WORDS[column].items():
        if words & set(spellings) and choice not in ("mm", "percent", "weeks"):
            return Guess(column, choice, HIGH, f"the name '{name}' says {choice}")
    if column == "odi" and odi_answered:
        return Guess(column, "points", MEDIUM, "written next to the number of sections answered")
    numbers = cols.as_numbers(cols.values_of(cells))
    if column == "vas_mm" and not numbers.dropna().empty and numbers.max() <= 10:
        if (numbers.dropna() % 1 != 0).any():
            return Guess(column, "cm", MEDIUM, "values 0-10 with decimals: centimetres")
    return None


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


def flat_layout(mapped: Mapping[str, object]) -> tuple[Layout, str | None, str]:
    """Decide between a canonical table (which) and a visit sheet, from the columns mapped."""
    tables = {cols.table_of(t) for t in mapped} - {None}
    if "sessions" in tables and "assessments" in tables:
        return Layout.VISIT_SHEET, None, "session and score columns on one row: one row per visit"
    for table in ("sessions", "assessments"):
        if table in tables:
            return Layout.CANONICAL, table, f"{table} columns and no {_other(table)} columns"
    return Layout.CANONICAL, "patients", "only patient columns"


def _other(table: str) -> str:
    return "assessment" if table == "sessions" else "session"


def flat_columns(
    export: Export, layout: Layout, table: str | None
) -> tuple[list[Guess], list[str]]:
    """Map one canonical table or visit sheet; return the column guesses and what is left."""
    mapped, unmatched = assign(export)
    out: dict[str, Guess] = {}
    for target, m in mapped.items():
        if target in (cols.DATE, cols.NUMBER):
            continue
        if layout == Layout.CANONICAL and cols.table_of(target) not in (None, table):
            unmatched.append(m.column)
            continue
        out[target] = _guess(target, m, export)
    date, number = mapped.get(cols.DATE), mapped.get(cols.NUMBER)
    if layout == Layout.VISIT_SHEET:
        if date:
            own = [d for d in ("session_date", "assessment_date") if d not in out]
            targets = [VISIT_DATE] if len(own) == 2 else own
            for t in targets:
                out[t] = _guess(t, date, export, ", the visit's date")
        if number:
            for t in ("session_number", "visit"):
                if t not in out:
                    out[t] = _guess(
                        t, number, export, ", both the session number and the visit number"
                    )
    else:
        date_column = {"sessions": "session_date", "assessments": "assessment_date"}.get(
            table or "", "enrolment_date"
        )
        if date and date_column not in out:
            out[date_column] = _guess(date_column, date, export)
        elif date:
            unmatched.append(date.column)
        number_column = {"sessions": "session_number", "assessments": "visit"}.get(table or "")
        if number and number_column and number_column not in out:
            out[number_column] = _guess(number_column, number, export)
        elif number:
            unmatched.append(number.column)
    allowed = set(cols.CODES) | {"nrs", *CONTENT_DATES}
    if layout == Layout.CANONICAL:
        allowed = {c for c in allowed if cols.table_of(c) == table}
    else:
        allowed -= {"session_date", "assessment_date"}
    found, left = _content_guesses(export, unmatched, set(out), allowed)
    for g in found:
        out[g.key] = g
    if PATIENT_ID not in out and left:
        first = left.pop(0)
        out[PATIENT_ID] = Guess(PATIENT_ID, first, LOW, "no name matched; the first column")
    order = {c: k for k, c in enumerate(export.columns)}
    guesses = sorted(out.values(), key=lambda g: (order.get(str(g.value), 0), g.key))
    rest = set(left)
    return guesses, [c for c in export.columns if c in rest]


def _values_settings(
    source: SourceDraft, exports: list[Export], guesses_by_file: list[list[Guess]]
) -> None:
    """Add code lists, units, shifts and the language from the cells of the mapped columns."""
    codes: dict[str, CodeDraft] = {}
    for export, guesses in zip(exports, guesses_by_file, strict=True):
        by_key = {g.key: str(g.value) for g in guesses}
        for g in guesses:
            column = str(g.value)
            if column not in export.frame:
                continue
            if g.key in (*CODED, "visit", "co_intervention", "site"):
                found = code_list(g.key, export.frame[column])
                if found and (found.codes or found.unknown):
                    if g.key in codes:
                        codes[g.key].codes.update(found.codes)
                        codes[g.key].unknown += [
                            u for u in found.unknown if u not in codes[g.key].unknown
                        ]
                    else:
                        codes[g.key] = found
            found_unit = unit(g.key, column, export.frame[column], ODI_ANSWERED in by_key)
            if found_unit and found_unit.key not in {u.key for u in source.units}:
                source.units.append(found_unit)
        if (
            by_key.get("session_number")
            and by_key.get("session_number") == by_key.get("visit")
            and not any(s.key == "visit" for s in source.shift)
        ):
            first = cols.as_numbers(
                numbered(export.frame[by_key["visit"]].dropna().astype("string")).astype(str)
            ).min()
            if first == 1:
                source.shift.append(
                    Guess(
                        "visit",
                        -1,
                        MEDIUM,
                        "the numbering starts at 1: the first visit's scores are the baseline "
                        "(visit 0)",
                    )
                )
        if source.languages is None:
            source.languages = languages(export, by_key)
    source.codes = list(codes.values())


def _site_from_folder(export: Export) -> Guess | None:
    if not export.folder or export.folder in (".", ""):
        return None
    name = export.folder.replace("_", " ").replace("-", " ").strip()
    return Guess(
        "site",
        name[:1].upper() + name[1:],
        LOW,
        "no site column: the name of the file's folder; write the clinic's name",
    )


def flat_sources(exports: list[Export]) -> list[SourceDraft]:
    """Draft the sources of the canonical tables and visit sheets among ``exports``."""
    sources: list[SourceDraft] = []
    groups: dict[tuple, list[tuple[Export, str, list[Guess], list[str], str]]] = {}
    for export in exports:
        mapped, unmatched = assign(export)
        seen = dict.fromkeys([*mapped, *_content_targets(export, unmatched)])
        layout, table, why = flat_layout(seen)
        guesses, left = flat_columns(export, layout, table)
        settings = file_settings(export, {g.key: str(g.value) for g in guesses})
        if layout == Layout.VISIT_SHEET:
            source = SourceDraft(
                kind=Guess("kind", layout.value, HIGH if len(guesses) > 4 else MEDIUM, why),
                files={"data": [export.label]},
                settings=settings,
                columns=guesses,
            )
            if "site" not in {g.key for g in guesses}:
                site = _site_from_folder(export)
                if site:
                    source.settings.append(site)
            source.unmapped = [(export.label, f"{c} ({_unmapped_note(export, c)})") for c in left]
            _values_settings(source, [export], [guesses])
            sources.append(source)
            continue
        folder = posixpath.dirname(export.label)
        groups.setdefault(folder, []).append((export, table or "patients", guesses, left, why))
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
            sources.append(_canonical_source(group))
    return sources


# Settings two files of one canonical source must share; the others may be absent from one
# (an ASCII file reads the same as Windows-1252, a file without decimals has no decimal mark).
_STRICT = {"delimiter": ",", "header_row": 1, "sheet": None}


def _dialect(member: tuple) -> dict[str, object]:
    export, _, guesses, _, _ = member
    return {g.key: g.value for g in file_settings(export, {g.key: str(g.value) for g in guesses})}


def _same_dialect(first: tuple, other: tuple) -> bool:
    a, b = _dialect(first), _dialect(other)
    if any(a.get(k, d) != b.get(k, d) for k, d in _STRICT.items()):
        return False
    return all(a[k] == b[k] for k in set(a) & set(b))


def _canonical_source(group: list) -> SourceDraft:
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
    if "patients" in tables and "site" not in columns:
        site = _site_from_folder(exports[0])
        if site:
            source.settings.append(site)
    for export, _, _, left, _ in group:
        source.unmapped += [(export.label, f"{c} ({_unmapped_note(export, c)})") for c in left]
    _values_settings(source, exports, [m[2] for m in group])
    return source


# ------------------------------------------------------------------------------------------
# wide files
# ------------------------------------------------------------------------------------------
_LABEL = (
    r"baseline|bl|screening|fu\d*|\d+(?:m|w|wk|mo|y|d)?"
    r"|(?:wk|w|week|m|mo|month|y|d|t|v|visit)\d+"
)
_SUFFIX = re.compile(rf"^(?P<stem>.*?[A-Za-z].*?)(?P<sep>[_ .\-]?)(?P<label>{_LABEL})$", re.I)
_PREFIX = re.compile(r"^(?P<pre>[A-Za-z]{1,3})(?P<label>\d+)(?P<sep>[_ .\-])(?P<stem>.+)$")


@dataclass
class Template:
    """A repeated column group: a pattern with ``{t}``, its stem and the labels seen."""

    pattern: str
    stem: str
    columns: dict[str, str]
    target: str | None = None
    strength: int = 0
    why: str = ""


def templates(export: Export) -> list[Template]:
    """Find the column patterns that repeat over time-point labels (``nrs_{t}``, ``s{t}_depth``).

    A column whose whole name is a canonical column ("ODI3" in a visit sheet) is no time point.
    """
    found: dict[str, Template] = {}
    per_column: dict[str, list[str]] = {}
    for column in export.columns:
        if any(c.strength == cols.EXACT for c in cols.name_candidates(column, OWN_OUTCOMES)):
            continue
        for regex, build in (
            (_SUFFIX, lambda m: (f"{m['stem']}{m['sep']}{{t}}", m["stem"])),
            (_PREFIX, lambda m: (f"{m['pre']}{{t}}{m['sep']}{m['stem']}", m["stem"])),
        ):
            match = regex.match(column)
            if not match:
                continue
            pattern, stem = build(match)
            found.setdefault(pattern, Template(pattern, stem, {})).columns[match["label"]] = column
            per_column.setdefault(column, []).append(pattern)
    for template in found.values():
        cands = cols.name_candidates(template.stem, OWN_OUTCOMES)
        strong = [c for c in cands if c.strength >= cols.WORDS]
        if strong:
            template.target, template.strength = strong[0].target, strong[0].strength
            template.why = f"'{template.pattern}' repeats over {len(template.columns)} time points"
    keep: dict[str, Template] = {}
    for patterns in per_column.values():
        usable = [found[p] for p in patterns if found[p].target and len(found[p].columns) >= 2]
        if usable:
            best = max(usable, key=lambda t: (t.strength, len(t.columns)))
            keep[best.pattern] = best
    return list(keep.values())


def is_wide(export: Export) -> bool:
    """Whether a file repeats column groups over time points (one row per patient)."""
    found = templates(export)
    scores = [t for t in found if t.target != cols.DATE]
    return len(scores) >= 2 or (len(scores) == 1 and len(scores[0].columns) >= 3)


def _numbers(labels: list[str], table: str) -> tuple[dict[str, int], Confidence, str]:
    ints = [int(x) for x in labels if x.isdigit()]
    if len(ints) == len(labels):
        low = min(ints)
        if table == "sessions":
            step = 1 - low if low < 1 else 0
            note = "session numbers from the labels" + (f" (+{step})" if step else "")
            return {x: int(x) + step for x in labels}, HIGH, note
        if low == 0:
            return {x: int(x) for x in labels}, HIGH, "visit numbers from the labels (0 = baseline)"
    weeks = {x: label_weeks(x) for x in labels}
    if all(w is not None for w in weeks.values()):
        order = sorted(labels, key=lambda x: weeks[x])
        first = 1 if table == "sessions" else 0
        return (
            {x: k + first for k, x in enumerate(order)},
            HIGH,
            "numbered in the order of their weeks" + (" (baseline = 0)" if not first else ""),
        )
    first = 1 if table == "sessions" else 0
    return (
        {x: k + first for k, x in enumerate(labels)},
        LOW,
        "numbered in the order of the columns; check",
    )


def wide_source(export: Export) -> tuple[SourceDraft, list[Guess]]:
    """Draft a wide source; return it with the study's own outcomes it found (rmdq, psfs)."""
    found = templates(export)
    in_templates = {c for t in found for c in t.columns.values()}
    tables: dict[str, list[Template]] = {"assessments": [], "sessions": []}
    dates = []
    outcomes: list[Guess] = []
    for t in found:
        if t.target == cols.DATE:
            dates.append(t)
            continue
        table = "assessments" if t.target in OWN_OUTCOMES else cols.table_of(t.target)
        if table in tables:
            tables[table].append(t)
        if t.target in OWN_OUTCOMES:
            outcomes.append(
                Guess(t.target, t.target, HIGH, f"'{t.pattern}' names the instrument {t.target}")
            )
    order = {c: k for k, c in enumerate(export.columns)}

    def labels_of(group: list[Template]) -> list[str]:
        seen = {}
        for t in group:
            for label, column in t.columns.items():
                seen.setdefault(label, order[column])
        return sorted(seen, key=lambda x: seen[x])

    source = SourceDraft(
        kind=Guess("kind", Layout.WIDE.value, HIGH, ""),
        files={"data": [export.label]},
    )
    used_dates = set()
    for table, group in tables.items():
        if not group:
            continue
        labels = labels_of(group)
        date_column = "session_date" if table == "sessions" else "assessment_date"
        columns = [
            Guess(
                t.target, t.pattern, cols.confidence(t.strength, True) if t.strength else LOW, t.why
            )
            for t in group
        ]
        if date_column not in {g.key for g in columns}:
            for d in dates:
                if len(set(d.columns) & set(labels)) >= max(1, len(labels) // 2):
                    columns.insert(
                        0, Guess(date_column, d.pattern, HIGH, f"{d.why}: the dates of the {table}")
                    )
                    used_dates.add(d.pattern)
                    break
        numbers, level, why = _numbers(labels, table)
        points = [Guess(label, n, level, why) for label, n in numbers.items()]
        weeks = []
        if date_column not in {g.key for g in columns}:
            if table == "sessions":
                source.unmapped += [
                    (export.label, f"{g.value} (sessions without a date column per session)")
                    for g in columns
                ]
                continue
            for label in labels:
                w = label_weeks(label)
                weeks.append(
                    Guess(
                        label,
                        w if w is not None else numbers[label],
                        HIGH if w is not None else LOW,
                        "the week the label names"
                        if w is not None
                        else "no week in the label; check",
                    )
                )
        source.time_points[table] = PointsDraft(points, columns, weeks)
    source.kind = Guess(
        "kind",
        Layout.WIDE.value,
        HIGH,
        f"{len(in_templates)} columns repeat over time points",
    )
    rest = [c for c in export.columns if c not in in_templates]
    sub = Export(export.label, export.folder, export.frame, tuple(rest))
    mapped, unmatched = assign(sub, rest)
    for target, m in mapped.items():
        if target in (cols.DATE, cols.NUMBER):
            if target == cols.DATE and "enrolment_date" not in mapped:
                source.columns.append(
                    _guess("enrolment_date", m, export, ", the patient's one date")
                )
            else:
                unmatched.append(m.column)
            continue
        table = cols.table_of(target)
        if table in source.time_points:
            source.time_points[table].columns.append(
                Guess(target, m.column, MEDIUM, f"{m.why}: one column for every time point")
            )
        elif table in (None, "patients"):
            source.columns.append(_guess(target, m, export))
        else:
            unmatched.append(m.column)
    covariates = []
    found_content, left = _content_guesses(
        export, unmatched, {g.key for g in source.columns}, {"sex"}
    )
    source.columns += found_content
    pid = source.column(PATIENT_ID)
    if pid is None or export.frame[str(pid.value)].dropna().duplicated().any():
        if pid is not None:
            source.columns.remove(pid)
            left.insert(0, str(pid.value))
        why = (
            f"the column '{pid.value}' repeats its values: each row is one patient"
            if pid is not None
            else "no identifier column: each row is one patient"
        )
        source.settings.append(Guess("patient_id", "row", MEDIUM, why))
    for column in list(left):
        values = cols.values_of(export.frame[column])
        filled = len(values) / max(len(export.frame), 1)
        if 2 <= values.nunique() <= 8 and filled >= 0.8 and cols.as_numbers(values).isna().all():
            name = "_".join(norm(column).split())
            if name and name[0].isalpha():
                covariates.append(
                    Guess(
                        name,
                        column,
                        LOW,
                        f"a patient characteristic with {values.nunique()} values",
                    )
                )
                left.remove(column)
    source.settings += file_settings(
        export,
        {g.key: str(g.value) for g in source.columns}
        | {
            g.key: next(iter(_pattern_columns(export, str(g.value))), "")
            for tp in source.time_points.values()
            for g in tp.columns
        },
    )
    if "site" not in {g.key for g in source.columns}:
        site = _site_from_folder(export)
        if site:
            source.settings.append(site)
    all_guesses = list(source.columns) + [
        Guess(g.key, c, g.confidence, g.why)
        for tp in source.time_points.values()
        for g in tp.columns
        for c in _pattern_columns(export, str(g.value))[:1]
    ]
    _values_settings(source, [export], [all_guesses])
    source.unmapped += [(export.label, f"{c} ({_unmapped_note(export, c)})") for c in left]
    own = outcomes + [Guess(f"covariate:{g.key}", g.value, g.confidence, g.why) for g in covariates]
    arm = source.column("arm")
    if "sessions" not in source.time_points and arm is not None:
        levels = sorted(cols.values_of(export.frame[str(arm.value)]).unique())
        if len(levels) == 2:
            control = [v for v in levels if norm(v) in CONTROL_WORDS]
            reference = control[0] if control else levels[0]
            ordered = [reference] + [v for v in levels if v != reference]
            own.append(
                Guess(
                    "comparison:arm",
                    ordered,
                    MEDIUM if control else LOW,
                    f"two arms without a session log; reference '{reference}'"
                    + ("" if control else " (the first in order; check)"),
                )
            )
    return source, own


def _pattern_columns(export: Export, pattern: str) -> list[str]:
    if "{t}" not in pattern:
        return [pattern] if pattern in export.frame else []
    head, _, tail = pattern.partition("{t}")
    return [c for c in export.columns if c.startswith(head) and c.endswith(tail) and c != pattern]


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
        for k, event in enumerate(seen):
            out_events.append(
                Guess(event, k, MEDIUM if k else HIGH, "events in the order they first appear")
            )
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


# ------------------------------------------------------------------------------------------
# all files
# ------------------------------------------------------------------------------------------
def draft(
    exports: list[Export], dictionaries: Mapping[str, Mapping[str, Field]] | None = None
) -> Draft:
    """Draft the configuration of a set of exports.

    Parameters
    ----------
    exports : list of Export
        The files (and sheets) read, REDCap data dictionaries excluded.
    dictionaries : mapping of str to mapping of str to Field, optional
        REDCap data dictionaries by label (as :func:`pipeline.ingest.adapters.redcap.
        read_dictionary` reads them).

    Returns
    -------
    Draft
        One source per REDCap export, wide file, visit sheet, and group of canonical tables
        (per folder and dialect).
    """
    dictionaries = dict(dictionaries or {})
    sources: list[SourceDraft] = []
    flat: list[Export] = []
    outcomes: list[Guess] = []
    covariates: list[Guess] = []
    comparisons: list[Guess] = []
    for export in exports:
        match = next((label for label, f in dictionaries.items() if is_redcap(export, f)), None)
        if match:
            sources.append(redcap_source(export, dictionaries[match], match))
        elif is_wide(export):
            source, own = wide_source(export)
            sources.append(source)
            for g in own:
                if g.key.startswith("comparison:"):
                    comparisons.append(g)
                elif g.key.startswith("covariate:"):
                    name = g.key.split(":", 1)[1]
                    covariates.append(Guess(name, g.value, g.confidence, g.why))
                    source.columns.append(Guess(name, g.value, g.confidence, g.why))
                elif g.key not in {o.key for o in outcomes}:
                    outcomes.append(g)
        else:
            flat.append(export)
    sources += flat_sources(flat)
    return Draft(sources, outcomes, covariates, comparisons, [e.label for e in exports])
