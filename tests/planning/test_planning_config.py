"""The [planning] section: typed, validated with one-sentence errors, and `outcomes plan`."""

from __future__ import annotations

from pathlib import Path

import pytest
from command import assert_one_sentence_error, outcomes
from factories import DEMO_INPUTS, write_config

from pipeline.config.settings import load_config
from pipeline.errors import ConfigError

TRIAL = """outcome = "odi"
comparison = "arm"
levels = ["usual care", "dry needling"]
allocation = 1.5
weeks = [0, 4, 8, 26]
analysis = "visit"
primary_week = 8
alpha = 0.05
holm_family = 3
power = 0.9
n = 40
n_grid = [30, 40]
sims = 3
seed = 7
"""
ASSUMPTIONS = """effect = -6
sd_intercept = 12
sd_slope = 0.4
correlation = 0.1
sd_residual = 8
dropout = {"usual care" = 0.1, "dry needling" = [0.05, 0.05, 0.2]}
"""


def config(tmp_path: Path, planning: str = TRIAL, assumptions: str = ASSUMPTIONS) -> Path:
    sections = {"planning": planning}
    if assumptions is not None:
        sections["planning.assumptions"] = assumptions
    return write_config(tmp_path, DEMO_INPUTS, **sections)


def test_section_is_typed(tmp_path: Path) -> None:
    planning = load_config(config(tmp_path)).planning
    assert planning.levels == ("usual care", "dry needling")
    assert planning.weeks == (0.0, 4.0, 8.0, 26.0)
    assert planning.assumptions.dropout == {"usual care": (0.1,), "dry needling": (0.05, 0.05, 0.2)}
    assert planning.n_grid == (30, 40)


def test_no_section_means_no_plan(tmp_path: Path) -> None:
    path = write_config(tmp_path, DEMO_INPUTS)
    assert load_config(path).planning is None
    result = outcomes("plan", "--config", path, "--out", tmp_path / "out")
    assert_one_sentence_error(result, "[planning] section is missing", "docs/planning.md")


@pytest.mark.parametrize(
    ("planning", "assumptions", "fragment"),
    [
        (
            TRIAL.replace('"visit"', '"mmrm"'),
            ASSUMPTIONS,
            "[planning.analysis] must be one of slope",
        ),
        (TRIAL.replace("[0, 4, 8, 26]", "[1, 4, 8]"), ASSUMPTIONS, "[planning.weeks] must start"),
        (TRIAL.replace("primary_week = 8", "primary_week = 5"), ASSUMPTIONS, "primary_week"),
        (TRIAL.replace('"arm"', '"sex"'), ASSUMPTIONS, "[planning.comparison] must be one of"),
        (
            TRIAL.replace("holm_family = 3", "holm_family = 0"),
            ASSUMPTIONS,
            "[planning.holm_family] must be between 1",
        ),
        (TRIAL, ASSUMPTIONS + "effect_mcid = 1\n", "give effect (outcome units) or effect_mcid"),
        (
            TRIAL,
            ASSUMPTIONS.replace('"usual care" = 0.1', '"control" = 0.1'),
            "[planning.assumptions.dropout] 'control' is not a level compared",
        ),
        (
            TRIAL,
            ASSUMPTIONS.replace("[0.05, 0.05, 0.2]", "[0.05, 0.2]"),
            "[planning.assumptions.dropout.dry needling] must be one number or one per",
        ),
        (TRIAL, ASSUMPTIONS.replace("correlation = 0.1", "correlation = 1.5"), "correlation"),
        (TRIAL + "speed = 3\n", ASSUMPTIONS, "[planning] unknown key 'speed'"),
        (TRIAL, ASSUMPTIONS + "icc = 0.3\n", "[planning.assumptions] unknown key 'icc'"),
    ],
)
def test_bad_values_are_one_sentence(tmp_path, planning, assumptions, fragment) -> None:
    path = config(tmp_path, planning, assumptions)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_typed_design_needs_the_variance_components(tmp_path: Path) -> None:
    path = config(tmp_path, assumptions="effect = -6\n")
    result = outcomes("plan", "--config", path, "--sims", 0, "--out", tmp_path / "out")
    assert_one_sentence_error(
        result, "[planning.assumptions.sd_intercept] is missing", "--from-study"
    )


def test_arm_cannot_come_from_a_study_without_arms(tmp_path: Path) -> None:
    result = outcomes("plan", "--config", config(tmp_path), "--from-study", "--out", tmp_path)
    assert_one_sentence_error(result, "[planning.comparison] = 'arm' is not a column")


def test_plan_writes_the_section_for_a_typed_trial(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    result = outcomes("plan", "--config", config(tmp_path), "--workers", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "simulated studies" in result.stderr  # the progress bar
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "planning.html",
        "planning_answers.csv",
        "planning_assumptions.csv",
        "planning_power_curve.csv",
        "planning_power_curve.png",
        "planning_section.html",
        "planning_type_one_error.csv",
    ]
    page = (out / "planning.html").read_text()
    assert "Planning the next study" in page
    assert "baseline-adjusted difference between the groups at week 8" in page
    assert "Tests are two-sided at 0.01667" in page  # 0.05 / 3, Bonferroni for Holm's family
    assert "Type-I error of the simulated analysis" in page
    assert "0.1, 0.1, 0.1" not in page  # dropout is printed as probabilities per visit
    assert "0.100, 0.100, 0.100 for usual care" in page


def test_plan_has_help() -> None:
    result = outcomes("plan", "--help")
    assert result.returncode == 0
    assert "--from-study" in result.stdout
