"""Wide files: one row per patient, one group of columns per time point (``nrs_{t}``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.events import SINGLE, Drafted, draft_events
from pipeline.ingest.draft.guess import (
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
    Confidence,
    Export,
    Guess,
    Layout,
    PointsDraft,
    SourceDraft,
)
from pipeline.ingest.draft.words import (
    label_weeks,
    norm,
)
from pipeline.schemas.columns import PATIENT_ID

# Outcome instruments of the library a study declares under [outcomes.NAME] (not built in).
OWN_OUTCOMES = cols.OWN_OUTCOMES

# ------------------------------------------------------------------------------------------
# wide files
# ------------------------------------------------------------------------------------------
_SESSION_WORDS = r"session|seance|sitzung|sesion|seduta|sessie|behandlung"
# A number of weeks, months, years or days written out (6 weeks, 3 Monate, 12 mois, 1 anno)
_UNIT_WORDS = (
    r"weeks?|wks?|months?|years?|days?|wochen|woche|monate?n?|jahre?n?|tage?n?|semaines?|mois"
    r"|ans?|jours?|semanas?|meses|mes|anos?|dias?|settimane|settimana|mesi|mese|anni|anno"
    r"|giorni|weken|maanden|maand|jaar|dagen|dag"
)
_LABEL = (
    rf"baseline|bl|screening|pre|post|fu\d*|\d+ ?(?:{_UNIT_WORDS})|\d+(?:m|w|wk|mo|y|d|j)?"
    rf"|(?:wk|w|week|m|mo|month|y|d|j|s|t|v|visit|{_SESSION_WORDS})\d+"
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


def _label_patterns(column: str) -> list[tuple[str, str, str]]:
    """Return ``(pattern, stem, label)`` for each way a column's name holds a time-point label.

    A label at the end (``nrs_wk2``: ``nrs_{t}``, stem ``nrs``) or after a short prefix
    (``s2_depth``: ``s{t}_depth``, stem ``depth``).
    """
    found = []
    suffix, prefix = _SUFFIX.match(column), _PREFIX.match(column)
    if suffix:
        found.append((f"{suffix['stem']}{suffix['sep']}{{t}}", suffix["stem"], suffix["label"]))
    if prefix:
        pattern = f"{prefix['pre']}{{t}}{prefix['sep']}{prefix['stem']}"
        found.append((pattern, prefix["stem"], prefix["label"]))
    return found


def templates(export: Export) -> list[Template]:
    """Find the column patterns that repeat over time-point labels (``nrs_{t}``, ``s{t}_depth``).

    A column whose whole name is a canonical column ("ODI3" in a visit sheet) is no time point.
    """
    found: dict[str, Template] = {}
    per_column: dict[str, list[str]] = {}
    for column in export.columns:
        if any(c.strength == cols.EXACT for c in cols.name_candidates(column, OWN_OUTCOMES)):
            continue
        for pattern, stem, label in _label_patterns(column):
            found.setdefault(pattern, Template(pattern, stem, {})).columns[label] = column
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
    """Whether a file repeats column groups over time points (one row per patient).

    Two repeated scores, or one over three time points, or one over two time points that each
    have a date of their own (``nrs_t0``, ``nrs_t1``, ``date_t0``, ``date_t1``: a pre-post file).
    """
    found = templates(export)
    scores = [t for t in found if t.target != cols.DATE]
    dated = {label for t in found if t.target == cols.DATE for label in t.columns}
    if len(scores) >= 2:
        return True
    return len(scores) == 1 and (len(scores[0].columns) >= 3 or set(scores[0].columns) <= dated)


# 2, t2, V2, visit2; a session's s2, seance2, Sitzung2
_NUMBERED_LABEL = re.compile(rf"(?:t|v|visit|s|{_SESSION_WORDS})?(\d+)", re.I)


def _numbers(labels: list[str], table: str) -> tuple[dict[str, int], Confidence, str]:
    found = {x: _NUMBERED_LABEL.fullmatch(x) for x in labels}
    ints = {x: int(m[1]) for x, m in found.items() if m}
    if len(ints) == len(labels):
        low = min(ints.values())
        if table == "sessions":
            step = 1 - low if low < 1 else 0
            note = "session numbers from the labels" + (f" (+{step})" if step else "")
            return {x: n + step for x, n in ints.items()}, HIGH, note
        if low == 0:
            return ints, HIGH, "visit numbers from the labels (0 = baseline)"
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
    drafted, read_by_events = None, set()
    sessions = source.time_points.get("sessions")
    if sessions is not None and not {g.key for g in sessions.columns} & set(SINGLE):
        drafted, read_by_events = _session_events(
            export, [str(g.key) for g in sessions.points], in_templates
        )
    rest = [c for c in export.columns if c not in in_templates and c not in read_by_events]
    sub = Export(export.label, export.folder, export.frame, tuple(rest))
    mapped, unmatched = assign(sub, rest)
    for target, m in mapped.items():
        if target in (cols.DATE, cols.NUMBER):
            if target == cols.DATE and "enrolment_date" not in mapped:
                source.columns.append(
                    guess_of("enrolment_date", m, export, ", the patient's one date")
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
            source.columns.append(guess_of(target, m, export))
        else:
            unmatched.append(m.column)
    covariates = []
    found_content, left = content_guesses(
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
        categorical = cols.as_numbers(values).isna().all() and not cols.is_date(values).any()
        if 2 <= values.nunique() <= 8 and filled >= 0.8 and categorical:
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
            g.key: next(iter(pattern_columns(export, str(g.value))), "")
            for tp in source.time_points.values()
            for g in tp.columns
        },
    )
    if "site" not in {g.key for g in source.columns}:
        site = site_from_folder(export)
        if site:
            source.settings.append(site)
    all_guesses = list(source.columns) + [
        Guess(g.key, c, g.confidence, g.why)
        for tp in source.time_points.values()
        for g in tp.columns
        for c in pattern_columns(export, str(g.value))[:1]
    ]
    values_settings(source, [export], [all_guesses])
    if drafted is not None and drafted.block is not None:
        source.adverse_events = drafted.block
        if drafted.severity_codes:
            source.codes = [c for c in source.codes if c.column != "ae_severity"]
            source.codes.append(drafted.severity_codes)
    source.unmapped += [(export.label, f"{c} ({unmapped_note(export, c)})") for c in left]
    own = outcomes + [Guess(f"covariate:{g.key}", g.value, g.confidence, g.why) for g in covariates]
    return source, own


def _session_events(
    export: Export, labels: list[str], taken: set[str]
) -> tuple[Drafted | None, set[str]]:
    """Draft ``[sources.adverse_events]`` from column groups repeated over the sessions.

    Each group no canonical column names (``s{t}_ae_soreness``, ``s{t}_sev_soreness``) is read
    as one column of all sessions' cells under its stem (``ae_soreness``), and drafted as a
    visit sheet's event columns are (:func:`pipeline.ingest.draft.events.draft_events`); the
    block then names the patterns.

    Returns
    -------
    tuple of (Drafted or None, set of str)
        The draft, and the file's columns its block reads.
    """
    groups: dict[str, dict[str, str]] = {}
    patterns: dict[str, str] = {}
    for column in export.columns:
        if column in taken:
            continue
        for pattern, stem, label in _label_patterns(column):
            if label in labels:
                if patterns.setdefault(stem, pattern) == pattern:
                    groups.setdefault(stem, {})[label] = column
                break
    groups = {stem: group for stem, group in groups.items() if len(group) >= 2}
    if not groups:
        return None, set()
    missing = pd.Series(pd.NA, index=export.frame.index, dtype=object)
    stacked = pd.DataFrame(
        {
            stem: pd.concat(
                [export.frame[group[x]] if x in group else missing for x in labels],
                ignore_index=True,
            )
            for stem, group in groups.items()
        }
    )
    drafted = draft_events(
        Export(export.label, export.folder, stacked, tuple(groups)), [], list(groups)
    )
    block = drafted.block
    if block is None:
        return None, set()

    block.rename(patterns)
    used = block.columns()
    read = {c for stem, group in groups.items() if patterns[stem] in used for c in group.values()}
    return drafted, read


def pattern_columns(export: Export, pattern: str) -> list[str]:
    """Return the columns a pattern reads (``nrs_{t}``: every ``nrs_...``)."""
    if "{t}" not in pattern:
        return [pattern] if pattern in export.frame else []
    head, _, tail = pattern.partition("{t}")
    return [c for c in export.columns if c.startswith(head) and c.endswith(tail) and c != pattern]
