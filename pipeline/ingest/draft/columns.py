"""Which canonical column a clinic column holds: by its name, then checked by its cells.

Pure functions of names and text cells. A name matches a canonical column *exactly* (one of its
names in :mod:`.words`, an ODI section "ODI 3"), *by its words* (every word of a known name in
it) or *closely* (a spelling within a few letters); the cells then either agree with the
column's type and range (dates that parse, whole numbers within 0-10 for the NRS, values of its
code list in any of six languages), which raises the confidence, or do not, which lowers it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import pandas as pd

from pipeline.config.instruments import LIBRARY
from pipeline.config.source_columns import ODI_ANSWERED, VISIT_DATE
from pipeline.config.vocabulary import LANGUAGES
from pipeline.ingest.adapters.mapping import all_codes, all_kinds, numbered
from pipeline.ingest.draft.model import Confidence
from pipeline.ingest.draft.words import (
    ALIASES,
    GENERIC_DATE,
    NUMBER_WORDS,
    VALUE_WORDS,
    base_name,
    label_weeks,
    norm,
    odi_item,
)
from pipeline.schemas.columns import INSTRUMENT_COLUMNS
from pipeline.schemas.raw import MODELS, NO, ODI_ITEMS, OUTCOMES, TABLES, YES, column_names

# Targets of a name whose canonical column depends on the layout.
DATE = "<date>"
NUMBER = "<number>"
# Name strengths: exact name, all words of a name, a close spelling.
EXACT, WORDS, CLOSE = 3, 2, 1
STRENGTH_WHY = {EXACT: "is a name of", WORDS: "holds the words of a name of", CLOSE: "is close to"}

KINDS = {**all_kinds(), ODI_ANSWERED: "integer", VISIT_DATE: "date"}
CODES = all_codes()
# A cell of a number or date column that is a code for "not recorded": punctuation alone (".",
# "?", "--", as SAS and SPSS write a missing value) or a negative run of 9s or 8s (-99, -888).
MISSING_CODE = re.compile(r"^(?:[^\w\s]{1,3}|-(?:9{1,4}|8{1,4}))$")
MAX_ARMS = 6
"""The most groups a column read as a randomised arm may hold."""
YES_NO_WORDS = {norm(w) for lang in LANGUAGES.values() for w in (*lang[0], *lang[1])}
YES_NO_WORDS |= {norm(w) for w in (*YES, *NO)}
# An English month by its name or first three letters (SAS, Stata: 03FEB2025; 3 February 2025).
MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE = re.compile(
    r"^(?:\d{4}-\d{1,2}-\d{1,2}(?:[ T][\d:.]+)?|\d{1,2}[./-]\d{1,2}[./-]\d{4}|\d{4}/\d{1,2}/\d{1,2}"
    rf"|\d{{1,2}}\.\d{{1,2}}\.\d{{4}}|\d{{5}}|\d{{1,2}}[ -]?{MONTH}[ -]?\d{{4}}"
    rf"|{MONTH} \d{{1,2}},? \d{{4}})$",
    re.IGNORECASE,
)


def table_of(column: str) -> str | None:
    """Return the one canonical table a column belongs to (``None`` for patient_id).

    The library's instruments other than the built-in scores (:data:`OWN_OUTCOMES`) are
    assessment columns.
    """
    if column == ODI_ANSWERED or column in OWN_OUTCOMES:
        return "assessments"
    tables = [t for t in TABLES if column in column_names(t)]
    return tables[0] if len(tables) == 1 else None


def _ranges() -> dict[str, tuple[float | None, float | None]]:
    out: dict[str, tuple[float | None, float | None]] = {}
    for model in MODELS.values():
        for name, column in model.to_schema().columns.items():
            low = high = None
            for check in column.checks:
                stats = check.statistics
                if check.name == "greater_than_or_equal_to":
                    low = stats.get("min_value")
                elif check.name == "less_than_or_equal_to":
                    high = stats.get("max_value")
            out[name] = (low, high)
    out[ODI_ANSWERED] = (1, 10)
    return out


RANGES = _ranges()


@dataclass(frozen=True)
class Candidate:
    """A canonical column (or ``DATE`` / ``NUMBER``) a name may mean, and how strongly."""

    target: str
    strength: int
    why: str


def _compact(text: str) -> str:
    return text.replace(" ", "")


_COMPACT = {c: {_compact(a) for a in names} for c, names in ALIASES.items()}
_COMPACT_DATE = {_compact(a) for a in GENERIC_DATE}
_COMPACT_NUMBER = {_compact(a) for a in NUMBER_WORDS}


def name_candidates(name: str, extra: tuple[str, ...] = ()) -> list[Candidate]:
    """Return what a clinic column's name may mean, strongest first.

    Parameters
    ----------
    name : str
        The column name as written.
    extra : tuple of str
        More targets known by their own name (a study's outcome, ``rmdq``).
    """
    base = base_name(name)
    if not base:
        return []
    shown = f"'{name}'"
    out: list[Candidate] = []
    item = odi_item(base) or odi_item(_compact(base))
    if item:
        out.append(Candidate(item, EXACT, f"{shown} names ODI section {item[5:]}"))
    if base in GENERIC_DATE or _compact(base) in _COMPACT_DATE:  # ("visitdate")
        out.append(Candidate(DATE, EXACT, f"{shown} is a date column"))
    if base in NUMBER_WORDS or _compact(base) in _COMPACT_NUMBER:
        out.append(Candidate(NUMBER, EXACT, f"{shown} numbers the visits"))
    for target in extra:
        if base == norm(target):
            out.append(Candidate(target, EXACT, f"{shown} is the name of the outcome {target}"))
        elif target in LIBRARY and _names_instrument(base, target):
            why = f"{shown} names the instrument {LIBRARY[target].label}"
            out.append(Candidate(target, WORDS, why))
    for column, names in ALIASES.items():
        if base in names or _compact(base) in _COMPACT[column]:
            out.append(Candidate(column, EXACT, f"{shown} {STRENGTH_WHY[EXACT]} {column}"))
    if out:
        return out
    words = set(base.split())
    best: dict[str, int] = {}
    for column, names in ALIASES.items():
        for alias in names:
            parts = alias.split()
            if (len(parts) > 1 or len(alias) >= 4) and set(parts) <= words:
                best[column] = max(best.get(column, 0), len(alias))
    for column in sorted(best, key=lambda c: -best[c]):
        out.append(Candidate(column, WORDS, f"{shown} {STRENGTH_WHY[WORDS]} {column}"))
    if out:
        return out
    for column, names in ALIASES.items():
        long_names = [a for a in names if len(a) >= 6]
        if len(base) >= 6 and difflib.get_close_matches(base, long_names, n=1, cutoff=0.85):
            out.append(
                Candidate(column, CLOSE, f"{shown} {STRENGTH_WHY[CLOSE]} a name of {column}")
            )
    return out


def values_of(cells: pd.Series, limit: int = 5000) -> pd.Series:
    """Return the filled cells of a column (at most ``limit``), stripped, as plain text."""
    filled = cells.dropna()
    if len(filled) > limit:
        filled = filled.iloc[:limit]
    return filled.astype(str).str.strip()


def as_numbers(values: pd.Series) -> pd.Series:
    """Read text as numbers, a decimal comma as a point; what is not a number is NaN."""
    return pd.to_numeric(values.str.replace(",", ".", regex=False), errors="coerce")


def is_date(values: pd.Series) -> pd.Series:
    """Whether each cell looks like a date (ISO, D/M/Y in any separator, an Excel serial)."""
    return values.str.match(_DATE)


def fit(column: str, cells: pd.Series) -> tuple[bool | None, str]:
    """Say whether a column's cells fit canonical ``column`` (``None``: nothing to judge).

    Returns
    -------
    ok : bool or None
        True when (nearly) every filled cell is of the column's type and in its range.
    why : str
        What the cells showed, e.g. ``values 0-10, whole numbers``.
    """
    values = values_of(cells)
    kind = KINDS.get(column, "text")
    if kind in ("integer", "number", "date") or column in OWN_OUTCOMES:
        values = values[~values.str.match(MISSING_CODE)]  # (drafted as missing codes)
    if values.empty:
        return None, "no filled cells"
    share = 0.9
    if kind == "date":
        ok = float(is_date(values).mean())
        return ok >= share, f"{ok:.0%} of the cells are dates"
    if column in ("session_number", "visit"):
        values = numbered(values.astype("string")).astype(str)
        if column == "visit" and not as_numbers(values).notna().all():
            weeks = values.map(label_weeks)
            if weeks.notna().mean() >= share:
                return True, "values name time points (baseline, weeks)"
    if kind in ("integer", "number"):
        numbers = as_numbers(values)
        ok = float(numbers.notna().mean())
        if ok < share:
            return False, f"only {ok:.0%} of the cells are numbers"
        low, high = RANGES.get(column, (None, None))
        lo, hi = numbers.min(), numbers.max()
        shown = f"values {lo:g}-{hi:g}"
        if kind == "integer" and not (numbers.dropna() % 1 == 0).all():
            return False, f"{shown}, not all whole numbers"
        if low is not None and lo < low:
            return False, f"{shown}, below {low:g}"
        if high is not None and hi > high and column not in ("vas_mm", "odi"):
            return False, f"{shown}, above {high:g}"
        return True, shown
    if kind == "yes/no":
        folded = values.map(norm)
        ok = float(folded.isin(YES_NO_WORDS).mean())
        return ok >= share, f"{ok:.0%} of the cells are yes/no words"
    if column in CODES:
        folded = set(values.map(norm))
        known = {norm(v) for v in CODES[column]} | set(VALUE_WORDS.get(column, {}))
        unknown = folded - known
        if not unknown:
            return True, f"values {', '.join(sorted(folded)[:6])} are its codes"
        if len(unknown) < len(folded):
            return None, f"values partly its codes ({len(folded) - len(unknown)} of {len(folded)})"
        return False, "values are not its codes"
    if column == "patient_id":
        ids = values.str.match(r"^[A-Za-z0-9][\w\-./ ]{0,63}$") & ~is_date(values)
        ok = float(ids.mean())
        return ok >= share, f"{values.nunique()} identifiers" if ok >= share else "not codes"
    if column == "site":
        return values.nunique() <= 50, f"{values.nunique()} distinct values"
    if column in OWN_OUTCOMES:
        numbers = as_numbers(values)
        ok = float(numbers.notna().mean())
        if ok < share:
            return False, f"only {ok:.0%} of the cells are numbers"
        low, high = LIBRARY[column].low, LIBRARY[column].high
        inside = bool(numbers.dropna().between(low, high).all())
        shown = f"values {numbers.min():g}-{numbers.max():g}"
        return inside, shown if inside else f"{shown}, outside {low:g}-{high:g}"
    if column == "arm":
        groups = sorted(values.unique())
        if not 2 <= len(groups) <= MAX_ARMS:
            return False, f"{len(groups)} distinct values, not a few groups"
        return None, f"{len(groups)} groups: {', '.join(groups)}"
    return None, "free text"


def confidence(strength: int, ok: bool | None) -> Confidence:
    """Combine a name match and the cells' verdict into a confidence.

    An exact name whose cells agree is high; an exact name with nothing to judge, or the words
    of a name with cells that agree, medium; anything else low.
    """
    if strength >= EXACT and ok:
        return Confidence.HIGH
    if (strength >= EXACT and ok is None) or (strength >= WORDS and ok):
        return Confidence.MEDIUM
    return Confidence.LOW


def by_content(cells: pd.Series) -> list[tuple[str, str]]:
    """Canonical coded columns whose code list (in six languages) covers every value seen.

    Returns
    -------
    list of (column, why)
        Each column whose words cover the cells, e.g. ``("depth", "values tief, oberflachlich
        are depths")``.
    """
    values = values_of(cells)
    folded = set(values.map(norm))
    if len(folded) < 2:
        return []
    out = []
    for column, words in VALUE_WORDS.items():
        known = set(words) | {norm(v) for v in CODES.get(column, ())}
        single = {w for w in folded if len(w) == 1}
        if folded <= known and len(folded - single) >= 1:
            out.append((column, f"values {', '.join(sorted(folded)[:5])} are {column} codes"))
    return out


OWN_OUTCOMES = tuple(n for n in LIBRARY if n not in INSTRUMENT_COLUMNS)
"""The library's instruments besides the built-in scores (rmdq, psfs, ...): a study's own."""

SCORES = (*OUTCOMES, *ODI_ITEMS, ODI_ANSWERED)
"""Built-in assessment scores a measure may fill (the library's other outcomes too)."""


def score_of(measure: str) -> str | None:
    """Return the score a measure's name names (``Oswestry (%)``: ``odi``), if any.

    The library's other instruments go by their short name or words of their full name too
    (``RMDQ``, ``Roland-Morris``: ``rmdq``).
    """
    for cand in name_candidates(measure, OWN_OUTCOMES):
        if cand.strength >= WORDS and cand.target in (*SCORES, *OWN_OUTCOMES):
            return cand.target
    return None


def _names_instrument(base: str, name: str) -> bool:
    """Whether a name (:func:`base_name`) is a library instrument's short name or its words."""
    instrument, words = LIBRARY[name], base.split()
    return base == norm(instrument.short) or (
        len(words) >= 2 and set(words) <= set(norm(instrument.label).split())
    )
