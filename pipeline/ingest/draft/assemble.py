"""Draft the whole configuration: one source per file or group of files."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.ingest.adapters.redcap import Field
from pipeline.ingest.draft.flat import flat_sources
from pipeline.ingest.draft.model import (
    Draft,
    Export,
    Guess,
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
