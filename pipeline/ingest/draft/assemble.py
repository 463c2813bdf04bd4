"""Draft the whole configuration: one source per file or group of files."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.ingest.adapters.redcap import Field
from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.flat import flat_sources
from pipeline.ingest.draft.guess import HIGH
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
        measures = None if match else find_measures(export)
        if match:
            sources.append(redcap_source(export, dictionaries[match], match))
        elif measures or is_wide(export):
            source, own = measurements_source(export, measures) if measures else wide_source(export)
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
    own_patients = {c.key for c in covariates}
    for source in sources:
        _patients_from_a_list(source, sources, own_patients)
    return Draft(sources, outcomes, covariates, comparisons, [e.label for e in exports])


def _patients_from_a_list(
    source: SourceDraft, sources: list[SourceDraft], own_patients: set[str]
) -> None:
    """Leave a visit sheet's or wide file's patients to a patient list drafted beside it.

    Both would give each patient a row (the sheet its identifiers, the list their details),
    and two rows of one patient are quarantined as duplicates; so the sheet gets ``tables``
    without the patients, its site guess goes, and any patient detail it holds is listed as not
    mapped. A wide file whose columns the study reads as its own covariates keeps its patients.
    """
    lists = [
        f for s in sources if s.kind.value == Layout.CANONICAL for f in s.files.get("patients", [])
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
    tables = ["sessions", "assessments"] if kind == Layout.VISIT_SHEET else [*source.time_points]
    source.settings = [g for g in source.settings if g.key != "site"]
    source.settings.append(
        Guess("tables", tables, HIGH, f"the patients come from {named}, one row each")
    )
