"""Write a drafted configuration as commented TOML (a pure function of the draft).

Every guessed key is followed by a comment with its confidence and why; the columns no guess
used are listed in a comment under their source. The sections every configuration needs
(``[outputs]``, ``[privacy]``, ``[mcid.*]`` with the SAP's values) close the file.
"""

from __future__ import annotations

import json
import re

from pipeline.ingest.draft.model import (
    CodeDraft,
    Confidence,
    Draft,
    EventsDraft,
    Guess,
    MeasuresDraft,
    SourceDraft,
)
from pipeline.schemas.columns import INSTRUMENT_COLUMNS
from pipeline.schemas.raw import ODI_ITEMS

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
MCID = {"nrs": (2, 30), "vas": (15, 30), "odi": (10, 30)}  # SAP section 2: points, per cent


def value(v: object) -> str:
    """Write a value as TOML (strings quoted, lists of strings, whole numbers, floats)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)


def key(k: str) -> str:
    """Write a key bare when TOML allows, else quoted."""
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def line(g: Guess, name: str | None = None) -> str:
    """Write one guess: ``key = value  # confidence: why``."""
    return f"{key(name or g.key)} = {value(g.value)}  # {g.confidence}: {g.why}"


def _codes(code: CodeDraft, number: int) -> list[str]:
    out = [f"[sources.codes.{code.column}]  # {code.confidence}: {code.why}"]
    out += [f"{key(k)} = {value(v)}" for k, v in code.codes.items()]
    if code.unknown:
        shown = ", ".join(f"'{u}'" for u in code.unknown[:10])
        out.append(f"# not recognised, add by hand: {shown}")
    return out


def _events(block: EventsDraft) -> list[str]:
    """Write ``[sources.adverse_events]``: its keys, then flags, severities and codes as tables."""
    out = ["[sources.adverse_events]  # several adverse events per session (docs/ingestion.md)"]
    out += [line(g) for g in (block.list_column, block.delimiter, block.severity) if g]
    if block.flags:
        out += ["", "[sources.adverse_events.flags]  # your yes/no column = the event it records"]
        out += [line(g) for g in block.flags]
    if block.flag_severity:
        out += ["", "[sources.adverse_events.severity]  # flag column = its severity column"]
        out += [line(g) for g in block.flag_severity]
    if block.codes or block.unknown:
        out += ["", "[sources.adverse_events.codes]  # listed item = event type (none: no event)"]
        out += [line(g) for g in block.codes]
    if block.unknown:
        shown = ", ".join(f"'{u}'" for u in block.unknown[:10])
        out.append(f"# not recognised, add by hand (an item = one of the types, or none): {shown}")
    return out


def _measures(block: MeasuresDraft) -> list[str]:
    out = ["[sources.measures]  # one score per line (docs/ingestion.md)"]
    out += [line(block.column), line(block.value)]
    if block.ignore:
        shown = ", ".join(f"'{m}'" for m in block.ignore[:10])
        out.append(
            f"ignore = {value(block.ignore)}  # low: {shown} "
            f"{'names' if len(block.ignore) == 1 else 'name'} no score; name any that is one "
            "under [sources.measures.names]"
        )
    out += ["", "[sources.measures.names]  # measure as written = the score it fills"]
    return out + [line(g) for g in block.names]


def source_lines(source: SourceDraft, number: int) -> list[str]:
    """Write one ``[[sources]]`` entry."""
    out = ["[[sources]]", line(source.kind)]
    for role, files in source.files.items():
        out.append(f"{'files' if role == 'data' else role} = {value(files)}")
    if source.dictionary:
        out.append(f"dictionary = {value(source.dictionary)}")
    out += [line(g) for g in source.settings]
    if source.unmapped:
        out.append("# Columns not mapped (the pipeline ignores them; map any you need):")
        out += [f"#   {label}: {text}" for label, text in source.unmapped]
    vocabulary = [line(g) for g in (source.languages, source.missing) if g is not None]
    if vocabulary:
        out += ["", "[sources.vocabulary]", *vocabulary]
    if source.columns:
        out += ["", "[sources.columns]  # canonical column = your column"]
        out += [line(g) for g in source.columns]
    if source.measures:
        out += ["", *_measures(source.measures)]
    for table, group in source.time_points.items():
        out += ["", f"[sources.{table}.points]  # time-point label = number"]
        out += [line(g) for g in group.points]
        out += ["", f"[sources.{table}.columns]  # {{t}} stands for the label"]
        out += [line(g) for g in group.columns]
        if group.weeks:
            out += ["", f"[sources.{table}.weeks]  # label = weeks since baseline"]
            out += [line(g) for g in group.weeks]
    if source.instruments:
        out += ["", "[sources.instruments]  # canonical table = REDCap instrument"]
        out += [line(g) for g in source.instruments]
    if source.events:
        out += ["", "[sources.events]  # event = visit"]
        out += [line(g) for g in source.events]
    if source.session_events:
        out += ["", "[sources.session_events]  # event = session number"]
        out += [line(g) for g in source.session_events]
    if source.units:
        out += ["", "[sources.units]"] + [line(g) for g in source.units]
    if source.shift:
        out += ["", "[sources.shift]  # added to the number"] + [line(g) for g in source.shift]
    for code in source.codes:
        if code.codes:
            out += ["", *_codes(code, number)]
        elif code.unknown:
            shown = ", ".join(f"'{u}'" for u in code.unknown[:10])
            out += ["", f"# {code.column}: values {shown} need a code list ({code.why})"]
    if source.adverse_events:
        out += ["", *_events(source.adverse_events)]
    return out


def _built_in_outcomes(draft: Draft) -> list[str]:
    """Return the built-in outcomes to declare under ``[outcomes]`` (none: the default).

    ``[outcomes]`` replaces the default (NRS, VAS, ODI; NRS the primary): when a study's own
    outcome is declared, or the files do not hold every default score, the built-in scores the
    files hold are declared, in the default's order (a default score never recorded would only
    be reported as not estimable).
    """
    mapped = draft.mapped_columns()
    own = {g.key for g in draft.outcomes}
    held = [
        name
        for name, column in INSTRUMENT_COLUMNS.items()
        if name not in own
        and (column in mapped or (name == "odi" and any(c in mapped for c in ODI_ITEMS)))
    ]
    return held if draft.outcomes or len(held) < len(INSTRUMENT_COLUMNS) else []


def missing_sentences(draft: Draft) -> list[str]:
    """Say what the draft lacks: a table no file gives, comparisons the data cannot make."""
    out = [
        f"no file gives the {table} table; name its file to `outcomes init` too, or add a "
        f"[[sources]] entry for it"
        for table in draft.missing_tables()
    ]
    if not draft.gives_sessions() and not draft.comparisons:
        out.append(
            "no file gives sessions and no randomised arm was found, so the built-in "
            "comparisons (depth, twitch) cannot be made: `outcomes preview` and `validate` work "
            "as drafted; before `outcomes run`, declare the [[comparisons]] your data hold "
            "(docs/study-design.md)"
        )
    return out


def render(draft: Draft, title: str = "") -> str:
    """Write the whole drafted configuration.

    Parameters
    ----------
    draft : Draft
        From :func:`pipeline.ingest.draft.guess.draft`.
    title : str
        What the draft was made from, for the first comment.

    Returns
    -------
    str
        TOML text that :func:`pipeline.config.settings.load_config` reads.
    """
    levels = [
        g.confidence
        for s in draft.sources
        for g in (*s.columns, *(c for tp in s.time_points.values() for c in tp.columns))
    ]
    counts = ", ".join(f"{levels.count(c)} {c}" for c in Confidence)
    out = [
        "# Drafted by `outcomes init`" + (f" from {title}" if title else "") + ".",
        "# Every guess says how sure it is (high / medium / low) and why. Check each, the low",
        "# ones first, then run `outcomes preview --config <this file>` to see the mapped rows",
        "# and `outcomes validate --config <this file>`. docs/ingestion.md explains each key.",
        f"# Column guesses: {counts}.",
    ]
    out += [f"# NOTE: {sentence}" for sentence in missing_sentences(draft)]
    out.append("")
    for number, source in enumerate(draft.sources, start=1):
        out += [*source_lines(source, number), ""]
    for g in draft.outcomes:
        out += [
            f"[outcomes.{g.key}]  # {g.confidence}: {g.why}",
            f"instrument = {value(g.value)}",
            "",
        ]
    built_in = _built_in_outcomes(draft)
    for name in built_in:
        why = (
            "declared beside the study's own"
            if draft.outcomes
            else "declared because the files do not hold every default score (NRS, VAS, ODI)"
        )
        out += [
            f"[outcomes.{name}]  # high: the files hold {INSTRUMENT_COLUMNS[name]}; {why} (the "
            "first declared is the primary outcome)",
            f"instrument = {value(name)}",
            "",
        ]
    for g in draft.covariates:
        out += [
            f"[covariates.{g.key}]  # {g.confidence}: {g.why}; remove it if it is no covariate",
            'kind = "category"',
            "",
        ]
    # chronicity, the default covariate, comes from the symptom duration: without it, no value
    durations = "symptom_weeks" in draft.mapped_columns()
    if draft.covariates or not durations:
        names = [*(["chronicity"] if durations else []), *(g.key for g in draft.covariates)]
        why = (
            "the default covariate (chronicity) and the ones declared above"
            if durations
            else "no file gives the symptom duration, so the default covariate (chronicity) "
            "would have no value" + ("; the ones declared above" if draft.covariates else "")
        )
        out += [f"[model]  # {why}", f"covariates = {value(names)}", ""]
    for g in draft.comparisons:
        column = g.key.split(":", 1)[1]
        out.append(f"[[comparisons]]  # {g.confidence}: {g.why}")
        if column != "arm":
            out += [f"kind = {value(column)}", ""]
            continue
        out += [
            'kind = "randomised"',
            f"column = {value(column)}",
            f"reference = {value(g.value[0])}",
            f"levels = {value(list(g.value))}",
            "",
        ]
    if any(
        s.time_points.get("assessments") and s.time_points["assessments"].weeks
        for s in draft.sources
    ):
        out += [
            "[time]  # the wide file has no dates: time is the weeks of its labels",
            'source = "weeks"',
            "",
        ]
    out += [
        "[outputs]  # folders written by validate and run (relative to this file)",
        'processed = "processed"',
        'reports = "reports"',
        "",
        "[privacy]  # the pseudonym key: a secret of your own, never the demo key",
        'key_env = "NEEDLING_PSEUDONYM_KEY"',
        '# key_file = "/a/folder/outside/the/repository/pseudonym.key"',
        "",
    ]
    for name, (points, percent) in MCID.items() if not (draft.outcomes or built_in) else ():
        out += [f"[mcid.{name}]  # SAP section 2", f"points = {points}", f"percent = {percent}", ""]
    return "\n".join(out).rstrip() + "\n"
