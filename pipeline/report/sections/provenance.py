"""Provenance: input files and their digests, the configuration, software and commit.

Pure: the digests, versions, commit and date are collected at the edge
(:func:`pipeline.report.provenance.collect`) and handed in as a
:class:`~pipeline.report.provenance.RunProvenance`.
"""

from __future__ import annotations

from pipeline.config.settings import Config
from pipeline.report.html import (
    Block,
    Paragraph,
    Section,
    Table,
    table,
)
from pipeline.report.provenance import RunProvenance
from pipeline.report.sections.common import UNITS


def provenance_section(config: Config, run: RunProvenance) -> Section:
    """List the input files with their SHA-256, the settings, the software and the commit."""
    m = config.model
    settings = [
        ("Configuration file", config.source.name),
        *([("Configuration folder", run.config_location)] if run.config_location else []),
        ("Time axis", m.time_axis),
        ("Degrees of freedom", m.df_method),
        ("Baseline covariates", ", ".join(m.covariates) or "none"),
        ("Random slope for time", "yes" if m.random_slope else "no"),
    ]
    if hasattr(m, "site"):
        settings.append(("Clinic effect", str(m.site)))
    settings += [
        (f"MCID {o.name.upper()}", o.mcid.describe(UNITS.get(o.name, o.unit)))
        for o in config.study.outcomes
    ]
    th = config.thresholds
    study = config.study
    kinds = {c.kind for c in study.comparisons}
    if study.declared:
        settings.append(("Design", study.design))
        settings += [
            (f"Comparison {c.name}", f"{c.kind}, reference {c.reference}")
            for c in study.comparisons
        ]
    if "depth" in kinds:
        settings.append(
            ("Deep patient", f"deep needling in at least {th.deep_share:g} of sessions")
        )
    if "twitch" in kinds:
        settings.append(
            ("Twitch patient", f"twitch response in at least {th.twitch_share:g} of sessions")
        )
    settings.append(
        (
            "Chronicity",
            f"acute < {th.acute_below_weeks:g} weeks, chronic > {th.chronic_above_weeks:g}",
        )
    )
    if any(o.scoring == "odi_items" for o in study.outcomes):
        settings.append(("ODI unanswered sections allowed", str(th.odi_max_missing_sections)))
    settings += [
        ("Small-cell threshold", str(config.privacy.small_cell_threshold)),
        ("Pseudonym key", run.key_source),
    ]
    blocks: list[Block] = [
        table(
            run.inputs,
            [("Input", "role", None), ("File", "file", None), ("SHA-256", "sha256", None)],
            caption="Input files",
        ),
        Table(
            header=("Setting", "Value"),
            rows=tuple(settings),
            numeric=(False, False),
            caption="Configuration",
        ),
        Table(
            header=("Software", "Version"),
            rows=tuple(run.versions.items()),
            numeric=(False, False),
            caption="Software",
        ),
        Paragraph(
            f"Pipeline: needling-outcomes {run.versions.get('needling-outcomes', 'unknown')}, "
            f"commit {run.commit} (of the installed pipeline, not of the configuration's "
            f"folder); report date {run.run_date}. The PDF is printed from this HTML by "
            "headless Chromium."
        ),
    ]
    return Section("provenance", "Provenance", tuple(blocks))
