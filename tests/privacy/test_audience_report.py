"""The report shows the audience's decisions: a banner for internal use, one explanation."""

from pathlib import Path

import report_tables
from factories import write_config, write_study

from pipeline.config.settings import load_config
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.privacy.suppression import publish_tables
from pipeline.report import provenance
from pipeline.report.content import build_content
from pipeline.report.html import render_html

ROOT = Path(__file__).resolve().parents[2]


def html_for(tmp_path, privacy: str) -> tuple[str, str]:
    paths = write_study(tmp_path / "raw")
    config = load_config(write_config(tmp_path, paths, privacy=privacy))
    tables = report_tables.run_tables()
    tables["responders"].loc[0, ["n", "responders"]] = [4, 2]  # a small count
    published = publish_tables(tables, config.privacy.small_cell_threshold, config.privacy.audience)
    run = provenance.collect(config, read_raw_tables(paths), ROOT, "test")
    content = build_content(config, published, run)
    return content.intro, render_html(content)


def test_internal_report_has_the_banner_and_exact_counts(tmp_path):
    intro, html = html_for(tmp_path, 'audience = "internal"')
    assert intro.startswith("FOR INTERNAL USE ONLY.")
    assert "&lt;5" not in html and "[c]" not in html
    assert "Counts are exact (internal report, no suppression)." in html


def test_publication_report_explains_the_markers_once_without_a_banner(tmp_path):
    intro, html = html_for(tmp_path, 'audience = "publication"')
    assert not intro.startswith("FOR INTERNAL")
    assert "INTERNAL" not in html
    assert html.count("To protect patients, a count of 1 to 4 patients") == 1
    assert "&lt;5" in html and "[c]" in html
