"""Adverse events as several flag columns or one list: the ``[sources.adverse_events]`` block.

Issue 15, shape 3. A visit sheet (or the sessions file of the canonical tables) may record what
followed a session as one yes/no column per kind (``ae_soreness``, ``Nebenwirkung Hämatom``), each
with its own severity column (``sev_soreness``), or as one column listing the events
(``"Muskelkater; Müdigkeit"``), with or without one severity column. A column is drafted into the
block when its name says so *and* its cells agree:

* a **flag**: the name holds an adverse-event word (:data:`.words.AE_MARKERS`: ``ae``, ``adverse``,
  ``side effect``, ``Nebenwirkung``, ``EI``, ``EA``, ``bijwerking``, ...) and a kind (a word of
  ``VALUE_WORDS["adverse_event"]`` in six languages), and its cells are only yes/no words
  (``1``/``0``, ``ja``/``nein``, ...) or blanks. A column named by the kind alone (``Bruising``) is
  a flag only beside flags named with an adverse-event word; a yes/no column about anything else
  (``Anticoagulants``, ``Diabetes``) never is;
* a **severity**: the name holds a severity word (:data:`.words.SEVERITY_MARKERS`: ``sev``,
  ``severity``, ``Schweregrad``, ``gravité``, ...); what is left of it names the flag it belongs
  to (``sev_soreness`` -> ``ae_soreness``, by the shared words or the same kind), or nothing (one
  severity for every event of the row). Its cells are mild / moderate / severe in the six
  languages, or grades 1-3, or blanks;
* a **list**: the name is an adverse-event name without a kind (``Nebenwirkungen``, ``AE``) and
  some cell lists two items split by one of :data:`.words.AE_LIST_DELIMITERS`; or, without such
  a name, every listed item is a word of the kinds (by the cells alone). Its items get ``codes``.

What looks like an adverse-event column but cannot be placed (a flag of a kind no word names, a
severity no flag matches) stays unmapped with a sentence saying what to do. Pure functions of the
cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipeline.config.vocabulary import LANGUAGES
from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.model import CodeDraft, Confidence, EventsDraft, Export, Guess
from pipeline.ingest.draft.words import (
    AE_LIST_DELIMITERS,
    AE_MARKERS,
    FLAG_NOISE,
    SEVERITY_GRADES,
    SEVERITY_MARKERS,
    VALUE_WORDS,
    base_name,
    norm,
)
from pipeline.schemas.raw import AE_TYPES, NO, SEVERITIES

HIGH, MEDIUM, LOW = Confidence.HIGH, Confidence.MEDIUM, Confidence.LOW
NONE = "none"
SINGLE = ("adverse_event", "ae_severity")  # the one-event-per-session columns the block replaces
TYPES_SHOWN = ", ".join(AE_TYPES)

# A kind as a name or a listed item writes it (after norm()) -> the adverse-event type.
KIND_WORDS = {
    **{k: v for k, v in VALUE_WORDS["adverse_event"].items() if v != NONE},
    **{norm(t): t for t in AE_TYPES},
}
# What a listed item may be: a kind, or "no event" (none, keine, aucun, a no word).
NOTHING_WORDS = {
    *(k for k, v in VALUE_WORDS["adverse_event"].items() if v == NONE),
    NONE,
    *(norm(w) for w in NO),
    *(norm(w) for lang in LANGUAGES.values() for w in lang[1]),
}
SEVERITY_WORDS = {
    **VALUE_WORDS["ae_severity"],
    **{norm(s): s for s in SEVERITIES},
}
MISSING_WORDS = {norm(w) for lang in LANGUAGES.values() for w in lang[2]} | {""}


def _fold(item: str) -> str:
    """Fold a listed item as the reader matches it (case and runs of spaces ignored)."""
    return " ".join(item.split()).casefold()


@dataclass(frozen=True)
class Name:
    """What a column's name says about adverse events.

    Attributes
    ----------
    marked : bool
        It holds an adverse-event word (``ae``, ``Nebenwirkung``, ...).
    graded : bool
        It holds a severity word (``sev``, ``Schweregrad``, ...).
    rest : str
        The words left once those are taken out (normalised), e.g. ``soreness``.
    kind : str or None
        The adverse-event type ``rest`` names, if any.
    """

    marked: bool
    graded: bool
    rest: str
    kind: str | None


def _strip(tokens: list[str], phrases: tuple[str, ...]) -> tuple[bool, list[str]]:
    """Take every phrase (whole words, longest first) out of ``tokens``; say if one was there."""
    found = False
    for phrase in sorted(phrases, key=lambda p: -len(p.split())):
        words = phrase.split()
        k, i = len(words), 0
        while i + k <= len(tokens):
            if tokens[i : i + k] == words:
                tokens = tokens[:i] + tokens[i + k :]
                found = True
            else:
                i += 1
    return found, tokens


def read_name(column: str) -> Name:
    """Read a column's name: its adverse-event and severity words, and the kind it names."""
    marked, tokens = _strip(base_name(column).split(), AE_MARKERS)
    graded, tokens = _strip(tokens, SEVERITY_MARKERS)
    _, tokens = _strip(tokens, FLAG_NOISE)
    rest = " ".join(tokens)
    return Name(marked, graded, rest, KIND_WORDS.get(rest))


def _cells(export: Export, column: str) -> pd.Series:
    """Return the filled cells of a column, stripped, without "not recorded" tokens (``k.A.``)."""
    values = cols.values_of(export.frame[column])
    return values[~values.map(norm).isin(MISSING_WORDS)]


def _shown(values: pd.Series, limit: int = 4) -> str:
    return ", ".join(sorted(set(values))[:limit])


def flag_fit(values: pd.Series) -> bool | None:
    """Whether the cells are only yes/no words (``None``: no filled cell to judge)."""
    if values.empty:
        return None
    return bool(values.map(norm).isin(cols.YES_NO_WORDS).all())


def severity_codes(
    values: pd.Series, delimiter: str | None = None
) -> tuple[bool | None, dict[str, str], list[str]]:
    """Read severity cells (split by ``delimiter`` beside a list).

    Returns
    -------
    ok : bool or None
        Every cell is a severity (``None``: no filled cell).
    codes : dict of str to str
        The written values that are not mild / moderate / severe themselves -> the severity.
    unknown : list of str
        Values that are no severity.
    """
    if values.empty:
        return None, {}, []
    items = values
    if delimiter:
        items = values.str.split(delimiter, regex=False).explode().str.strip()
    codes: dict[str, str] = {}
    unknown: list[str] = []
    for item in dict.fromkeys(i for i in items if i):
        key = norm(item)
        if item.casefold() in SEVERITIES:
            continue
        if key in SEVERITY_WORDS:
            codes[item] = SEVERITY_WORDS[key]
        elif key in SEVERITY_GRADES:
            codes[item] = SEVERITY_GRADES[key]
        else:
            unknown.append(item)
    return not unknown, codes, unknown


@dataclass(frozen=True)
class Listed:
    """A column read as a list of events: its delimiter, items and their types."""

    delimiter: str
    example: str
    codes: dict[str, str]
    unknown: list[str]
    kinds: set[str]
    known: int


def read_list(values: pd.Series) -> Listed | None:
    """Read cells as lists of events split by one delimiter (``None``: no cell lists two).

    Of :data:`.words.AE_LIST_DELIMITERS`, the one whose items the words of the kinds name best
    (ties: the first) is taken, provided some cell holds two items split by it.
    """
    best: tuple[float, Listed] | None = None
    for delimiter in AE_LIST_DELIMITERS:
        parts = values.str.split(delimiter, regex=False)
        several = parts.map(lambda p: sum(1 for i in p if i.strip()) >= 2)
        if not several.any():
            continue
        items: dict[str, str] = {}
        for item in parts.explode().str.strip():
            if item:
                items.setdefault(_fold(item), item)
        codes: dict[str, str] = {}
        unknown: list[str] = []
        kinds: set[str] = set()
        for folded, item in items.items():
            key = norm(item)
            if key in KIND_WORDS:
                kinds.add(KIND_WORDS[key])
                if folded not in AE_TYPES:
                    codes[item] = KIND_WORDS[key]
            elif key in NOTHING_WORDS:
                if folded not in (NONE, *NO):
                    codes[item] = NONE
            else:
                unknown.append(item)
        share = 1 - len(unknown) / len(items)
        example = str(values[several].iloc[0])
        found = Listed(delimiter, example, codes, unknown, kinds, len(items) - len(unknown))
        if best is None or share > best[0]:
            best = (share, found)
    return best[1] if best else None


@dataclass
class Drafted:
    """The block drafted from one file and what it leaves of the file's other guesses.

    Attributes
    ----------
    block : EventsDraft or None
        ``None`` when no column records several events per session.
    guesses : list of Guess
        The file's column guesses, without ``adverse_event`` / ``ae_severity`` when the block
        replaces them.
    left : list of str
        The columns still unmapped, in file order.
    notes : dict of str to str
        Why an adverse-event-like unmapped column was left (shown in the unmapped list).
    severity_codes : CodeDraft or None
        ``[sources.codes.ae_severity]`` for severities written otherwise than mild / moderate /
        severe.
    """

    block: EventsDraft | None
    guesses: list[Guess]
    left: list[str]
    notes: dict[str, str] = field(default_factory=dict)
    severity_codes: CodeDraft | None = None


def draft_events(export: Export, guesses: list[Guess], left: list[str]) -> Drafted:
    """Draft the ``[sources.adverse_events]`` block of one visit sheet or sessions file.

    Parameters
    ----------
    export : Export
        The file.
    guesses : list of Guess
        Its column guesses (``[sources.columns]``); a column guessed as the single
        ``adverse_event`` or ``ae_severity`` is looked at again.
    left : list of str
        Its columns no guess used.

    Returns
    -------
    Drafted
    """
    single = {str(g.value): g for g in guesses if g.key in SINGLE}
    free = set(left) | set(single)
    candidates = [c for c in export.columns if c in free]
    names = {c: read_name(c) for c in candidates}
    cells = {c: _cells(export, c) for c in candidates}
    notes: dict[str, str] = {}
    block = EventsDraft()

    # flags: named with an adverse-event word and a kind, cells yes/no or blank
    plain: list[str] = []
    for c in candidates:
        name = names[c]
        if name.graded:
            continue
        fits = flag_fit(cells[c])
        if fits is False:
            continue
        if name.marked and name.kind:
            seen = f"cells {_shown(cells[c])}" if fits else "no filled cells"
            level = HIGH if fits else MEDIUM
            how = "" if norm(name.kind) == name.rest else f" ('{name.rest}')"
            why = f"'{c}' names an adverse event, {name.kind}{how}; {seen}"
            block.flags.append(Guess(c, name.kind, level, why))
        elif name.kind and fits:
            plain.append(c)
        elif name.marked and fits:
            notes[c] = (
                f"yes/no values under an adverse-event name, but '{name.rest or c}' names no "
                f"type ({TYPES_SHOWN}); to count it, add it under [sources.adverse_events.flags]"
            )
    if block.flags:
        for c in plain:
            kind = names[c].kind
            why = (
                f"'{c}' names {kind} beside the other adverse-event flags; cells {_shown(cells[c])}"
            )
            block.flags.append(Guess(c, kind, MEDIUM, why))
    flagged = {g.key for g in block.flags}

    # a list: an adverse-event name (or every item a kind) and some cell with two items
    for c in candidates:
        name = names[c]
        if c in flagged or name.graded or name.kind or cells[c].empty:
            continue
        named = name.marked or (c in single and single[c].key == "adverse_event")
        found = read_list(cells[c])
        if found is None:
            continue
        if not named and (found.unknown or len(found.kinds) < 2):
            continue
        if named and len(found.unknown) > found.known:
            continue  # mostly unknown words: not a list of events
        how = f"'{c}' is an adverse-event name" if named else "by content"
        level = (HIGH if named else MEDIUM) if not found.unknown else LOW
        items = "every item a kind" if not found.unknown else f"{len(found.unknown)} unknown"
        block.list_column = Guess("list", c, level, f"{how}; cells list several events ({items})")
        block.delimiter = Guess("delimiter", found.delimiter, HIGH, f"cells like '{found.example}'")
        for item, kind in found.codes.items():
            short = len(norm(item)) <= 2
            block.codes.append(
                Guess(
                    item,
                    kind,
                    MEDIUM if short else HIGH,
                    f"'{item}' is a word for {kind}" if kind != NONE else f"'{item}': no event",
                )
            )
        block.unknown = found.unknown
        break
    if not block.flags and block.list_column is None:
        return Drafted(None, guesses, left, notes)

    # severities: per flag (the rest of the name shared with a flag), or one for the row
    used = {*flagged, *(str(g.value) for g in (block.list_column,) if g)}
    by_rest = {names[g.key].rest: g.key for g in block.flags}
    by_kind: dict[str, str] = {}
    for g in block.flags:
        by_kind.setdefault(str(g.value), g.key)
    read: dict[str, dict[str, str]] = {}
    for c in candidates:
        name = names[c]
        if c in used or not name.graded:
            continue
        delimiter = str(block.delimiter.value) if block.delimiter and not name.rest else None
        ok, found, bad = severity_codes(cells[c], delimiter)
        if ok is False:
            notes[c] = (
                f"a severity name, but values {', '.join(bad[:3])} are not mild, moderate or "
                f"severe (nor grades 1-3)"
            )
            continue
        seen = f"values {_shown(cells[c])}" if ok else "no filled cells"
        if name.rest:
            flag = by_rest.get(name.rest) or by_kind.get(name.kind or "")
            if flag is None or flag in {g.key for g in block.flag_severity}:
                notes[c] = (
                    f"a severity, but no adverse-event flag is named '{name.rest}'; add it under "
                    f"[sources.adverse_events.severity] as flag column = '{c}'"
                )
                continue
            why = f"'{c}' is the severity of the flag '{flag}' (shared words '{name.rest}'); {seen}"
            block.flag_severity.append(Guess(flag, c, HIGH if ok else MEDIUM, why))
        elif block.severity is None:
            why = f"'{c}' is a severity name: one severity for the row's events; {seen}"
            block.severity = Guess("severity", c, HIGH if ok else MEDIUM, why)
        else:
            notes[c] = f"a second severity column beside '{block.severity.value}'"
            continue
        read[c] = found
    if block.severity is not None and block.flag_severity:
        # one severity column per flag, or one for the row: not both
        column = str(block.severity.value)
        notes[column] = "a severity for the whole row, beside the flags' own severity columns"
        del read[column]
        block.severity = None
    used |= set(read)
    codes = {k: v for found in read.values() for k, v in found.items()}
    codes = dict(sorted(codes.items(), key=lambda kv: (SEVERITIES.index(kv[1]), kv[0])))
    grades = any(norm(k) in SEVERITY_GRADES for k in codes)

    kept = [g for g in guesses if g.key not in SINGLE]
    dropped = [str(g.value) for g in guesses if g.key in SINGLE and str(g.value) not in used]
    for c in dropped:
        notes.setdefault(
            c,
            "the adverse events are read from [sources.adverse_events] (below), so the single "
            "adverse_event / ae_severity columns cannot be mapped too",
        )
    rest = set(left) | set(dropped)
    remaining = [c for c in export.columns if c in rest and c not in used]
    severity = None
    if codes:
        if grades:
            why = "grades 1-3 read as mild, moderate, severe; check your form"
            severity = CodeDraft("ae_severity", codes, LOW, why)
        else:
            why = "severity words of the six languages"
            severity = CodeDraft("ae_severity", codes, HIGH, why)
    return Drafted(block, kept, remaining, notes, severity)
