"""Draft the whole configuration: one source per file or group of files."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.ingest.adapters.redcap import Field
from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.flat import flat_sources
from pipeline.ingest.draft.guess import HIGH, LOW, MEDIUM
from pipeline.ingest.draft.measures import find_measures, measurements_source
from pipeline.ingest.draft.model import (
    Draft,
    Export,
    Guess,
    Layout,
    SourceDraft,
)
from pipeline.ingest.draft.redcap import is_redcap, redcap_source
from pipeline.ingest.draft.wide import is_wide, wide_source
from pipeline.ingest.draft.words import CONTROL_WORDS, norm


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
    for export in exports:
        match = next((label for label, f in dictionaries.items() if is_redcap(export, f)), None)
        measures = None if match else find_measures(export)
        if match:
            sources.append(redcap_source(export, dictionaries[match], match))
        elif measures or is_wide(export):
            source, own = measurements_source(export, measures) if measures else wide_source(export)
            sources.append(source)
            for g in own:
                if g.key.startswith("covariate:"):
                    name = g.key.split(":", 1)[1]
                    covariates.append(Guess(name, g.value, g.confidence, g.why))
                    source.columns.append(Guess(name, g.value, g.confidence, g.why))
                elif g.key not in {o.key for o in outcomes}:
                    outcomes.append(g)
        else:
            flat.append(export)
    for source in flat_sources(flat):
        sources.append(source)
        outcomes += [
            Guess(g.key, g.key, HIGH, f"'{g.value}' names the instrument {g.key}")
            for g in source.columns
            if g.key in cols.OWN_OUTCOMES and g.key not in {o.key for o in outcomes}
        ]
    own_patients = {c.key for c in covariates}
    for source in sources:
        _patients_from_a_list(source, sources, own_patients)
    drafted = Draft(sources, outcomes, covariates, files=[e.label for e in exports])
    drafted.comparisons = arm_comparisons(drafted, exports)
    return drafted


def arm_comparisons(drafted: Draft, exports: list[Export]) -> list[Guess]:
    """Draft ``[[comparisons]]`` for a randomised arm that a source maps (none without one).

    The arm comes first: a trial's headline is its randomised comparison (SAP section 4). Its
    reference is the level that names a control (sham, placebo, usual care, in six languages),
    else the first in order (a low guess). With a session log, the default comparisons (depth,
    twitch) follow, since ``[[comparisons]]`` replaces them.
    """
    for source in drafted.sources:
        arm = source.column("arm")
        if arm is None or source.kind.value == Layout.REDCAP:
            continue  # (a REDCap arm is a coded field: its levels are the dictionary's labels)
        column = str(arm.value)
        sheet = source.setting("sheet")
        labels = {label for files in source.files.values() for label in files}
        cells = [
            cols.values_of(e.frame[column])
            for e in exports
            if e.label in labels and e.sheet == sheet and column in e.frame
        ]
        levels = sorted(set().union(*(set(c) for c in cells)))
        if not 2 <= len(levels) <= cols.MAX_ARMS:
            continue
        control = [v for v in levels if norm(v) in CONTROL_WORDS]
        reference = control[0] if control else levels[0]
        why = (
            f"'{column}' holds {len(levels)} groups, read as a randomised arm; reference "
            f"'{reference}'" + ("" if control else " (the first in order; check)")
        )
        found = [
            Guess(
                "comparison:arm",
                [reference, *(v for v in levels if v != reference)],
                MEDIUM if control and arm.confidence != LOW else LOW,
                why,
            )
        ]
        if drafted.gives_sessions():
            kept = "the default's comparison, kept (a [[comparisons]] table replaces the default)"
            found += [Guess(f"comparison:{k}", k, HIGH, kept) for k in ("depth", "twitch")]
        return found
    return []


def _named(label: str, source: SourceDraft, beside: list[str]) -> str:
    """Name a source's file with its sheet (``first sheet`` beside another sheet of it)."""
    sheet = source.setting("sheet")
    if sheet:
        return f"{label} (sheet {sheet})"
    return f"{label} (first sheet)" if label in beside else label


def _patients_from_a_list(
    source: SourceDraft, sources: list[SourceDraft], own_patients: set[str]
) -> None:
    """Leave a visit sheet's or wide file's patients to a patient list drafted beside it.

    Both would give each patient a row (the sheet its identifiers, the list their details),
    and two rows of one patient are quarantined as duplicates; so the sheet gets ``tables``
    without the patients, its site guess goes, and any patient detail it holds is listed as not
    mapped. A wide file whose columns the study reads as its own covariates keeps its patients.
    """
    own_files = source.files.get("data", [])
    lists = [
        _named(f, s, own_files)
        for s in sources
        if s.kind.value == Layout.CANONICAL
        for f in s.files.get("patients", [])
    ]
    kind = source.kind.value
    if not lists or kind not in (Layout.VISIT_SHEET, Layout.WIDE):
        return
    if own_patients & {g.key for g in source.columns}:
        return
    named = ", ".join(lists)
    details = [
        g for g in source.columns if cols.table_of(g.key) == "patients" and g.key != "patient_id"
    ]
    source.columns = [g for g in source.columns if g not in details]
    source.codes = [c for c in source.codes if cols.table_of(c.column) != "patients"]
    label = source.files["data"][0]
    source.unmapped += [
        (label, f"{g.value} (a patient detail: the patients come from {named})") for g in details
    ]
    given = source.setting("tables")
    if kind == Layout.VISIT_SHEET:
        tables = [t for t in given or ("sessions", "assessments") if t != "patients"]
    else:
        tables = [*source.time_points]
    source.settings = [g for g in source.settings if g.key not in ("site", "tables")]
    source.settings.append(
        Guess("tables", tables, HIGH, f"the patients come from {named}, one row each")
    )
