"""Provenance names the pipeline's own commit, wherever the configuration lives (issue 16)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from factories import write_config, write_study

from pipeline.config.settings import load_config
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.report import provenance
from pipeline.report.html import Paragraph, Table
from pipeline.report.sections.provenance import provenance_section

ROOT = Path(__file__).resolve().parents[2]


def _head(folder: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_configuration_outside_the_repository_still_gets_the_pipeline_commit(tmp_path):
    # the clinic's own folder: no git repository at all
    paths = write_study(tmp_path / "raw")
    config = load_config(write_config(tmp_path, paths))
    run = provenance.collect(config, read_raw_tables(paths), None, "environment variable X")
    assert provenance.package_source() == ROOT  # the worktree's package, on PYTHONPATH
    assert run.commit.startswith(_head(ROOT))
    assert run.config_location == str(tmp_path.resolve())  # not a repository: no commit
    section = provenance_section(config, run)
    text = " ".join(b.text for b in section.blocks if isinstance(b, Paragraph))
    assert f"commit {run.commit} (of the installed pipeline" in text
    assert "unknown" not in text
    tables = [b for b in section.blocks if isinstance(b, Table)]
    settings = next(t for t in tables if t.caption == "Configuration")
    assert ("Configuration folder", str(tmp_path.resolve())) in settings.rows


def test_without_a_checkout_the_commit_pip_recorded_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "installed_commit", lambda: "abc123")
    assert provenance.pipeline_commit(tmp_path) == "abc123"  # tmp_path is no repository
    monkeypatch.setattr(provenance, "installed_commit", lambda: None)
    assert provenance.pipeline_commit(tmp_path) == "unknown"
