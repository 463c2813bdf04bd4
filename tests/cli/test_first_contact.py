"""A new user's first contact: version, help texts, install, console words, config errors."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from command import assert_one_sentence_error, outcomes
from factories import write_config, write_study

from pipeline import cli
from pipeline.report.provenance import package_versions
from pipeline.validate.quality import summary_lines
from pipeline.validate.study import rule_text

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_comes_from_the_installed_package():
    result = outcomes("--version")
    assert result.returncode == 0, result.stderr
    installed = metadata.version("needling-outcomes")
    assert result.stdout.strip() == f"outcomes {installed}"
    assert installed == PYPROJECT["project"]["version"]
    # the report's provenance lists the same version
    assert package_versions()["needling-outcomes"] == installed


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_help_text_renders_without_escapes(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # narrow: a percent sign must not be torn off
    parser = cli.build_parser()
    for text in [parser.format_help(), *(p.format_help() for p in _subparsers(parser).values())]:
        assert "%%" not in text and "%(" not in text
        for line in text.splitlines():
            assert not line.lstrip().startswith("%"), line


def test_validate_stats_help_says_95_per_cent():
    text = outcomes("validate-stats", "--help").stdout
    assert re.search(r"95\s%", text) and "95 %%" not in text


def test_make_help_is_aligned():
    result = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("  make ")]
    assert len(lines) >= 10
    starts = set()
    for line in lines:
        name = line.split()[1]
        starts.add(re.search(r"\S", line[len("  make ") + len(name) :]).start() + len(name))
    assert len(starts) == 1, result.stdout  # every description starts in the same column


def test_license_is_an_spdx_string_and_setuptools_knows_it():
    assert PYPROJECT["project"]["license"] == "MIT"
    build = PYPROJECT["build-system"]["requires"]
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77 for r in build)


def _locked(path: Path) -> set[str]:
    names = re.findall(r"^([A-Za-z0-9_.-]+)==", path.read_text(encoding="utf-8"), flags=re.M)
    return {n.lower().replace("_", "-") for n in names}


def test_jupyter_is_an_extra_and_the_runtime_lock_leaves_it_out():
    project = PYPROJECT["project"]
    runtime = [d.split(">")[0].split("=")[0] for d in project["dependencies"]]
    assert not {"jupyter", "jupytext"} & set(runtime)
    notebooks = project["optional-dependencies"]["notebooks"]
    assert {d.split(">")[0] for d in notebooks} == {"jupyter", "jupytext"}
    run_lock, dev_lock = (
        _locked(ROOT / "requirements.lock"),
        _locked(ROOT / "requirements-dev.lock"),
    )
    assert not run_lock & dev_lock  # each package pinned once
    assert {"pandas", "numpy", "scipy", "statsmodels", "pandera", "pyarrow"} <= run_lock
    assert not {"jupyter", "jupytext", "ipykernel", "notebook", "pytest", "ruff"} & run_lock
    assert {"jupyter", "jupytext", "nbclient", "pytest", "ruff", "pypdfium2"} <= dev_lock
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text(encoding="utf-8")
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
        assert all("--hash=sha256:" in e for e in entries if "==" in e.split("\n")[0]), lock
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements.lock -r requirements-dev.lock" in makefile


def test_console_reasons_use_the_data_dictionary_words():
    checks = [
        ("isin(('superficial', 'deep'))", "depth"),
        ("less_than_or_equal_to(10)", "nrs"),
        ("greater_than_or_equal_to(0)", "age"),
        ("str_length(1, 64)", "patient_id"),
        ("str_length(1, None)", "site"),
        ("not_nullable", "site"),
        ("type:integer", "nrs"),
    ]
    import pandas as pd

    summary = pd.DataFrame(
        [
            {
                "file": "f.csv",
                "rows_read": 9,
                "rows_valid": 2,
                "rows_quarantined": 7,
                "rows_unused": 0,
                "cells_blanked": 0,
            }
        ]
    )
    reasons = pd.DataFrame(
        [
            {"file": "f.csv", "check": c, "column": col, "rows": 1, "rule": rule_text(c, col)}
            for c, col in checks
        ]
    )
    printed = "\n".join(summary_lines(summary, reasons, shown=len(checks)))
    assert "depth is not one of superficial, deep" in printed
    assert "nrs is above the maximum 10" in printed
    assert "patient_id is not 1 to 64 characters long" in printed
    for name in ("isin", "less_than", "greater_than", "str_length", "not_nullable", "type:"):
        assert name not in printed, printed


@pytest.mark.parametrize(
    ("remove", "says"),
    [
        (
            "[mcid.nrs]\npoints = 2\npercent = 30\n",
            "[mcid.nrs] section is missing; add [mcid.nrs] with points = 2 and percent = 30",
        ),
        ("mcid", "[mcid] section is missing; add [mcid.nrs], [mcid.vas] and [mcid.odi]"),
        (
            "outputs",
            '[outputs] section is missing; add [outputs] with processed = "data/processed"',
        ),
        (
            "inputs",
            "[inputs] section is missing (or declare [[sources]]); add [inputs] with patients =",
        ),
    ],
)
def test_a_missing_required_section_says_what_to_add(tmp_path, remove, says):
    config = write_config(tmp_path, write_study(tmp_path / "raw"))
    text = config.read_text(encoding="utf-8")
    if remove == "mcid":
        text = re.sub(r"\[mcid\.[a-z]+\]\npoints = [\d.]+\npercent = [\d.]+\n", "", text)
    elif remove in ("outputs", "inputs"):
        text = re.sub(rf"\[{remove}\]\n(?:[a-z]+ = .*\n)+", "", text)
    else:
        assert remove in text
        text = text.replace(remove, "")
    config.write_text(text, encoding="utf-8")
    assert_one_sentence_error(outcomes("validate", "--config", config), says, "docs/ingestion.md")


def test_docs_list_the_required_sections():
    text = (ROOT / "docs" / "ingestion.md").read_text(encoding="utf-8")
    section = text.split("## The required sections", 1)[1].split("\n## ", 1)[0]
    for name in ("[inputs]", "[[sources]]", "[outputs]", "[mcid.nrs]", "[mcid.vas]", "[mcid.odi]"):
        assert name in section, name


def test_checking_files_imports_neither_the_models_nor_the_report():
    """`outcomes validate`, `init` and `preview` are what a user runs again and again while
    correcting their files and configuration: these commands (``pipeline.cli`` and the modules
    it imports for them) must not import the models, the analyses, the run's orchestration or
    the statistics and plotting libraries, which would add seconds to every check."""
    heavy = ("pipeline.lmm", "pipeline.analyses", "pipeline.runner", "scipy.stats", "statsmodels")
    code = (
        "import sys, pipeline.cli, pipeline.processed, pipeline.validate.preview\n"
        "import pipeline.ingest.draft.files, pipeline.ingest.draft.model\n"
        f"print(sorted(m for m in {heavy!r} + ('matplotlib',) if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"
