"""Guess what one file holds and how it is written (pure functions, shared by the layouts).

Which canonical column each column holds (by name in six languages, checked by the cells; by
the cells alone when no name matches), how the file is written (delimiter, encoding, header
line, decimal mark, date format, yes/no language) and which code lists, units and numbering its
values need. Every guess carries a :class:`Confidence` and the reason for it; what is not
recognised is listed, never dropped silently. The layouts are drafted in :mod:`.flat`,
:mod:`.wide` and :mod:`.redcap`, and put together in :mod:`.assemble`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from pipeline.config.source_columns import ODI_ANSWERED
from pipeline.config.vocabulary import LANGUAGES, fold
from pipeline.ingest.adapters.mapping import numbered
from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.model import (
    CodeDraft,
    Confidence,
    Export,
    Guess,
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

HIGH, MEDIUM, LOW = Confidence.HIGH, Confidence.MEDIUM, Confidence.LOW

CODED = ("sex", "depth", "trigger_point", "adverse_event", "ae_severity")


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


def guess_of(target: str, m: Mapped, export: Export, note: str = "") -> Guess:
    """Turn a name match into a guess, its confidence set by how well the cells fit."""
    ok, seen = cols.fit(target, export.frame[m.column]) if m.column in export.frame else (None, "")
    level = cols.confidence(m.strength, ok)
    why = m.why if target in m.why else f"{m.why}, read as {target}"
    return Guess(target, m.column, level, f"{why}; {seen}{note}" if seen else why + note)


def content_guesses(
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


def unmapped_note(export: Export, column: str) -> str:
    """Describe an unmapped column's cells in a few words (empty, yes/no values, dates, ...)."""
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
_DAY_NAMED = re.compile(rf"^\d{{1,2}}([ -]?){cols.MONTH}\1\d{{4}}$", re.IGNORECASE)
_NAMED_DAY = re.compile(rf"^{cols.MONTH} \d{{1,2}}(,?) \d{{4}}$", re.IGNORECASE)


def _named_month(values: pd.Series) -> Guess | None:
    """Guess a format whose month is a name (``03FEB2025``, ``3 Feb 2025``, ``Feb 3, 2025``)."""
    for pattern, day_first in ((_DAY_NAMED, True), (_NAMED_DAY, False)):
        found = values.str.extract(pattern)
        matched = found[0].notna()
        if matched.mean() <= 0.5:
            continue
        sep = found.loc[matched, 0].mode().iloc[0]
        long = values[matched].str.contains(r"[A-Za-z]{4}", regex=True).mean() > 0.5
        month = "MONTH" if long else "MON"
        written = f"DD{sep}{month}{sep}YYYY" if day_first else f"{month} DD{sep} YYYY"
        shown = values[matched].iloc[0]
        return Guess("date_format", written, HIGH, f"dates like {shown}: the month by its name")
    return None


def date_format(values: pd.Series) -> Guess | None:
    """Guess how dates are written, from the cells of the date columns (``None``: ISO)."""
    values = values.dropna().astype(str).str.strip()
    if values.empty:
        return None
    named = _named_month(values)
    if named is not None:
        return named
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
    if export.footer:
        shown = "; ".join(f"'{line[:40]}'" for line in export.footer)
        out.append(
            Guess(
                "footer_rows",
                len(export.footer),
                MEDIUM,
                f"the last line(s) below the table are no rows: {shown}",
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
    """Guess the language of the yes/no and "not recorded" words, when it is not English.

    Cells are compared as the reader compares them (:func:`~pipeline.config.vocabulary.fold`:
    accents count, so ``sì`` is Italian and ``sí`` Spanish). Languages that recognise equally
    many of the words seen are all listed (``si``/``no`` is Spanish or Italian): the reader
    then knows the words of each.
    """
    kinds = cols.KINDS
    cells = [
        cols.values_of(export.frame[c]).map(fold)
        for t, c in mapped_columns.items()
        if c in export.frame and (kinds.get(t) == "yes/no" or t in cols.CODES)
    ]
    seen = set(pd.concat(cells)) if cells else set()
    scores = {
        lang: sorted(seen & {fold(w) for words in lists for w in words})
        for lang, lists in LANGUAGES.items()
    }
    top = max(len(words) for words in scores.values())
    if not top or top <= len(scores["en"]):
        return None
    best = [lang for lang, words in scores.items() if len(words) == top]
    return Guess(
        "languages",
        best,
        MEDIUM if top < 2 else HIGH,
        f"cells written {', '.join(scores[best[0]][:4])}"
        + (f" (words of {' and '.join(best)} alike)" if len(best) > 1 else ""),
    )


def missing_codes(export: Export, mapped_columns: Mapping[str, str]) -> Guess | None:
    """Find the cells of number and date columns written as a code for a missing value.

    No score, date, age or count is negative, and punctuation is no value, so these cells say
    "not recorded"; read as cells, each would be an unreadable score blanked, or a row
    quarantined, with its reason.
    """
    numeric = [
        c
        for t, c in mapped_columns.items()
        if c in export.frame
        and (cols.KINDS.get(t) in ("integer", "number", "date") or t in cols.OWN_OUTCOMES)
    ]
    if not numeric:
        return None
    cells = pd.concat([cols.values_of(export.frame[c]) for c in dict.fromkeys(numeric)])
    codes = cells[cells.str.match(cols.MISSING_CODE)]
    if codes.empty:
        return None
    counts = codes.value_counts()
    seen = sorted(counts.index, key=lambda v: (-counts[v], v))  # (most frequent first)
    return Guess(
        "missing",
        seen,
        MEDIUM,
        f"number or date cells written {', '.join(seen[:4])} ({len(codes)} cells): codes for a "
        "value not recorded, as statistics packages write them",
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


def values_settings(
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
        found_codes = missing_codes(export, by_key)
        if found_codes is not None:
            held = list(source.missing.value) if source.missing is not None else []
            codes_seen = list(dict.fromkeys([*held, *found_codes.value]))
            source.missing = Guess("missing", codes_seen, found_codes.confidence, found_codes.why)
    source.codes = list(codes.values())


def site_from_folder(export: Export) -> Guess | None:
    """Name the site of a file without a site column after its folder (a low guess)."""
    if not export.folder or export.folder in (".", ""):
        return None
    name = export.folder.replace("_", " ").replace("-", " ").strip()
    return Guess(
        "site",
        name[:1].upper() + name[1:],
        LOW,
        "no site column: the name of the file's folder; write the clinic's name",
    )
