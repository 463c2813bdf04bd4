"""Assemble the report from the run's published tidy tables: the sections in reading order.

The runner computes the tables, applies small-cell suppression, collects the provenance
(:func:`pipeline.report.provenance.collect`: file digests, versions, commit) and passes them
here; each section (:mod:`pipeline.report.sections`) only selects rows, words sentences from the
numbers, formats cells and draws the figures. No number shown is recomputed from the data (the
individual-trajectory panel draws a sample of the analysis data set, without identifiers), and
nothing here reads or writes a file.

A section is built only from the tables it needs: when a run has not produced a table (a
model that was not fitted, a table not yet part of the pipeline), the sections and blocks that
depend on it are left out rather than shown empty.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline.analyses.side_by_side import built_side_by_side
from pipeline.config.settings import Config
from pipeline.privacy import wording
from pipeline.report import design
from pipeline.report.answer import (
    Contributor,
    answer_details_section,
    answer_section,
    safety_line,
    sentence_line,
)
from pipeline.report.glossary import glossary_section, methods_table
from pipeline.report.html import Paragraph, ReportContent, Section
from pipeline.report.provenance import RunProvenance
from pipeline.report.sections.appendix import appendix_section
from pipeline.report.sections.combined_care import combined_care_section
from pipeline.report.sections.common import fit_flags
from pipeline.report.sections.data import data_section
from pipeline.report.sections.diagnostics import diagnostics_section
from pipeline.report.sections.dose_response import dose_response_section
from pipeline.report.sections.durability import durability_section
from pipeline.report.sections.immediate_relief import immediate_relief_section
from pipeline.report.sections.methods import methods_text, mmrm_structure_text
from pipeline.report.sections.outcomes import outcomes_section
from pipeline.report.sections.provenance import provenance_section
from pipeline.report.sections.responders import responders_section
from pipeline.report.sections.safety import safety_section
from pipeline.report.sections.safety_signals import (
    safety_signal_sentence,
    safety_signal_short,
    safety_signals_section,
)
from pipeline.report.sections.sensitivity import sensitivity_section
from pipeline.report.sections.sessions_needed import (
    sessions_needed_section,
    sessions_needed_sentence,
    sessions_needed_short,
)
from pipeline.report.sections.side_effects import side_effects_section
from pipeline.report.sections.table_one import table_one_section

TITLE = "Dry needling for low back pain: outcome report"

ANSWER_CONTRIBUTORS: tuple[Contributor, ...] = (
    safety_line,
    sentence_line("safety_signals", 15, safety_signal_sentence, safety_signal_short),
    sentence_line("sessions_needed", 20, sessions_needed_sentence, sessions_needed_short),
)
"""Sections' one-sentence contributions to the answer page (:mod:`pipeline.report.answer`):
add a section's contributor here."""


def clinic_sections(
    tables: Mapping[str, pd.DataFrame], note: str
) -> list[Callable[[], Section | None]]:
    """Return the builders of the clinic's own questions (SAP §4b), in the issue's order.

    Each section is shown, or omitted with its reason; the safety signals come first in the
    report, next to the answer. Both the needling report and a declared-design study's
    report show them: a study without a session log sees each omitted with the reason
    (``clinic_omitted``).
    """
    return [
        functools.partial(section, tables, note)
        for section in (
            sessions_needed_section,
            dose_response_section,
            immediate_relief_section,
            durability_section,
            combined_care_section,
            side_effects_section,
        )
    ]


def build_content(
    config: Config,
    tables: Mapping[str, pd.DataFrame],
    run: RunProvenance,
    *,
    analysis: pd.DataFrame | None = None,
    residuals: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]] | None = None,
    formulas: Mapping[tuple[str, str], str] | None = None,
    extra: Sequence[Section] = (),
    contributors: Sequence[Contributor] = (),
) -> ReportContent:
    """Assemble the report of one run.

    Parameters
    ----------
    config : Config
        The run's configuration.
    tables : mapping of str to pandas.DataFrame
        The published tables (small cells already suppressed), by file stem.
    run : RunProvenance
        Input digests, software versions, commit, date and pseudonym-key source
        (:func:`pipeline.report.provenance.collect`).
    analysis : pandas.DataFrame, optional
        The analysis data set, for the individual-trajectory panel.
    residuals : mapping, optional
        ``(analysis, outcome) -> (fitted, residuals)`` arrays of the models whose residual plots
        are shown.
    formulas : mapping, optional
        ``(analysis, outcome) -> formula`` in lme4 notation, quoted in the methods.
    extra : sequence of Section
        Sections built elsewhere (e.g. "Planning the next study"), placed before the methods.
    contributors : sequence of Contributor
        Answer-page sentences of analyses built elsewhere (e.g. the estimand's tipping point),
        after those of :data:`ANSWER_CONTRIBUTORS`.

    Returns
    -------
    ReportContent
        The sections in reading order.
    """
    threshold = config.privacy.small_cell_threshold
    audience = config.privacy.audience
    note = wording.table_note(audience, threshold)
    flags = fit_flags(tables.get("diagnostics"))
    if config.study.declared:
        return _declared_content(
            config, tables, run, note, flags, residuals, formulas, extra, analysis, contributors
        )
    methods = methods_text(tables, config, run.versions, formulas or {})
    contributions = (*ANSWER_CONTRIBUTORS, *contributors)
    parts: list[Part] = [
        lambda: answer_section(tables, config, contributions),
        lambda: answer_details_section(tables, config, contributions),
        lambda: safety_signals_section(tables, note),
        lambda: provenance_section(config, run),
        lambda: data_section(tables, note),
        lambda: table_one_section(tables, note),
        lambda: outcomes_section(tables, analysis, config, flags),
        lambda: responders_section(tables, config, note),
        lambda: safety_section(tables, note),
        *clinic_sections(tables, note),
        lambda: sensitivity_section(tables, flags),
        lambda: diagnostics_section(tables, flags, residuals or {}),
        *extra,
        Section("methods", "Methods", (methods_table(methods),)),
        glossary_section,
        lambda: appendix_section(tables),
    ]
    return ReportContent(
        title=TITLE,
        run_date=run.run_date,
        intro=_intro(config),
        sections=_built(parts, config),
    )


Part = Section | Callable[[], Section | None]
"""A section of the report: built already, or the function that builds it (or omits it)."""


def _built(parts: Sequence[Part], config: Config) -> tuple[Section, ...]:
    """Build the sections side by side, in order; drop the absent ones.

    The builders run in forked helpers (:mod:`pipeline.analyses.side_by_side`); a part that is
    a section already (one built elsewhere, the methods) is taken as it is.
    """
    builders = [part for part in parts if callable(part)]
    built = iter(built_side_by_side(builders, workers=config.engine.workers))
    sections = [next(built) if callable(part) else part for part in parts]
    return tuple(s for s in sections if s is not None)


def _primary_visit(tables: Mapping[str, pd.DataFrame]) -> int | None:
    """Return the visit of the primary family's visit differences (a trial's primary visit)."""
    contrasts = tables.get("contrasts")
    if contrasts is None or contrasts.empty or "kind" not in contrasts:
        return None
    chosen = contrasts[
        (contrasts["family"].astype(str) == "primary")
        & (contrasts["kind"].astype(str) == "visit_difference")
    ]
    visits = pd.to_numeric(chosen["visit"], errors="coerce").dropna()
    return int(visits.iloc[0]) if len(visits) else None


def _declared_content(
    config: Config,
    tables: Mapping[str, pd.DataFrame],
    run: RunProvenance,
    note: str,
    flags: Mapping[tuple[str, str], str],
    residuals: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]] | None,
    formulas: Mapping[tuple[str, str], str] | None,
    extra: Sequence[Section] = (),
    analysis: pd.DataFrame | None = None,
    contributors: Sequence[Contributor] = (),
) -> ReportContent:
    """Assemble the report of a study that declares its design (:mod:`pipeline.report.design`)."""
    shorts = {o.name: o.short for o in config.study.outcomes}
    contributions = (*ANSWER_CONTRIBUTORS, *contributors)
    methods = Section(
        "methods",
        "Methods",
        tuple(
            Paragraph(p)
            for p in (
                *design.methods(config, run.versions, formulas or {}),
                *mmrm_structure_text(tables),
            )
        ),
    )
    parts: list[Part] = [
        lambda: answer_section(tables, config, contributions),
        lambda: answer_details_section(tables, config, contributions),
        lambda: design.summary(tables, config, _primary_visit(tables)),
        lambda: design.not_in_design(tables),
        lambda: safety_signals_section(tables, note),
        lambda: provenance_section(config, run),
        lambda: data_section(tables, note),
        lambda: table_one_section(tables, note),
        lambda: design.outcomes(tables, config, flags, analysis),
        lambda: design.responders(tables, config, note),
        *clinic_sections(tables, note),
        lambda: diagnostics_section(tables, flags, residuals or {}, shorts),
        *extra,
        methods,
        glossary_section,
        lambda: appendix_section(tables, design.reference_words(config.study), shorts),
    ]
    kind = "randomised trial" if config.study.design == "trial" else "observational study"
    return ReportContent(
        title=f"Outcome report: {kind}",
        run_date=run.run_date,
        intro=_intro(config),
        sections=_built(parts, config),
    )


def _intro(config: Config) -> str:
    """Word the opening lines: the audience's banner, what the report shows, the markers."""
    audience, threshold = config.privacy.audience, config.privacy.small_cell_threshold
    parts = (
        wording.banner(audience, threshold),
        "Generated by needling-outcomes from the raw files listed under Provenance. No "
        "patient identifier or calendar date is shown: time is counted from each patient's "
        "baseline.",
        wording.explanation(audience, threshold),
    )
    return " ".join(part for part in parts if part)
