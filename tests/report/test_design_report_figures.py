"""The declared-design report: figures, typed identities of declared analyses, skipped subgroups.

Tested on a study that looks nothing like the needling demo: an observational comparison of two
clinic types (a declared patient column), measuring pressure-pain threshold (kg/cm², higher is
better) and headache days (an outcome declared in the file, MCID in per cent only).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from pipeline.analyses.run import skipped_analyses, subgroup_gap
from pipeline.config.settings import load_config
from pipeline.privacy.cells import link_tables
from pipeline.report import design
from pipeline.report import figures as report_figures
from pipeline.report.html import Figure
from pipeline.report.sections.appendix import appendix_section
from pipeline.report.sections.common import analysis_label
from pipeline.report.sections.diagnostics import diagnostics_section
from pipeline.schemas.identity import (
    AnalysisId,
    AnalysisKind,
    declared_factors,
    identify,
    kind_of,
)

STUDY = """
[[sources]]
kind = "canonical"
patients = "patients.csv"
assessments = "assessments.csv"

[outcomes.ppt]
instrument = "ppt"

[outcomes.headache_days]
label = "headache days per month"
short = "Headache days"
unit = "days"
low = 0
high = 31
direction = "higher_worse"
mcid_percent = 50

[[comparisons]]
kind = "column"
column = "clinic_type"
reference = "private"
label = "clinic type"

[time]
source = "weeks"

[outputs]
processed = "p"
reports = "r"
"""
IDS = [f"PX{k:03d}" for k in range(30)]


@pytest.fixture()
def config(tmp_path: Path):
    path = tmp_path / "analysis.toml"
    path.write_text(STUDY, encoding="utf-8")
    return load_config(path)


def _analysis() -> pd.DataFrame:
    rng = np.random.default_rng(14)
    groups = np.repeat(["private", "public"], 15)
    return pd.DataFrame(
        {
            "patient_id": np.repeat(IDS, 3),
            "clinic_type": pd.Categorical(np.repeat(groups, 3), ["private", "public"]),
            "visit": np.tile([0, 1, 2], 30),
            "weeks": np.tile([0.0, 6.0, 26.0], 30),
            "ppt": rng.uniform(2, 8, 90).round(1),
            "headache_days": rng.integers(0, 20, 90).astype(float),
        }
    )


def _tables() -> dict[str, pd.DataFrame]:
    means = []
    for outcome, base in (("ppt", 4.0), ("headache_days", 10.0)):
        for visit, weeks in ((0, 0.0), (1, 6.0), (2, 26.0)):
            for group, shift in (("private", 0.0), ("public", 0.8)):
                mean = base + shift * visit
                means.append(
                    {
                        "outcome": outcome,
                        "factor": "clinic_type",
                        "visit": visit,
                        "group": group,
                        "n": 15,
                        "mean": mean,
                        "sd": 1.0,
                        "ci_low": mean - 0.5,
                        "ci_high": mean + 0.5,
                        "mean_weeks": weeks,
                    }
                )
    contrasts = []
    for outcome in ("ppt", "headache_days"):
        for analysis, kind, visit, estimate, family in (
            ("change_clinic_type", "visit_difference", 1, 0.9, "secondary"),
            ("change_clinic_type", "visit_difference", 2, 1.4, "secondary"),
            ("trajectory_clinic_type", "slope_difference", None, 0.05, "primary"),
            ("trajectory_clinic_type", "visit_difference", 2, 1.2, "secondary"),
            ("sensitivity_completers_clinic_type", "slope_difference", None, 0.04, "secondary"),
        ):
            contrasts.append(
                {
                    "analysis": analysis,
                    "outcome": outcome,
                    "question": "clinic_type",
                    "contrast": "public − private"
                    + (f", visit {visit}" if visit else ": difference in slope per week"),
                    "visit": visit,
                    "estimate": estimate,
                    "std_err": 0.3,
                    "df": 50.0,
                    "ci_low": estimate - 0.6,
                    "ci_high": estimate + 0.6,
                    "p_value": 0.01,
                    "family": family,
                    "p_holm": 0.02 if family == "primary" else np.nan,
                    "kind": kind,
                }
            )
    diagnostics = pd.DataFrame(
        {
            "analysis": ["trajectory_clinic_type", "sensitivity_completers_clinic_type"],
            "outcome": ["ppt", "ppt"],
            "status": ["ok", "ok"],
            "n_obs": [90, 60],
            "n_patients": [30, 20],
            "random_effects": ["intercept + slope", "intercept + slope"],
            "optimizer": ["lbfgs", "lbfgs"],
        }
    )
    fixed = pd.DataFrame(
        {
            "analysis": ["change_clinic_type", "sensitivity_completers_clinic_type"],
            "outcome": ["ppt", "ppt"],
            "term": ["clinic_type[T.public]", "clinic_type[T.public]"],
            "estimate": [0.9, 0.8],
            "std_err": [0.3, 0.3],
            "df": [50.0, 40.0],
            "ci_low": [0.3, 0.2],
            "ci_high": [1.5, 1.4],
            "p_value": [0.01, 0.02],
        }
    )
    return {
        "mean_by_visit": pd.DataFrame(means),
        "contrasts": pd.DataFrame(contrasts),
        "diagnostics": diagnostics,
        "fixed_effects": fixed,
    }


def test_the_declared_report_draws_trajectories_and_a_forest_plot_against_the_mcid(
    config, monkeypatch
):
    drawn = []
    for name in ("spaghetti", "mean_trajectories", "forest"):
        original = getattr(report_figures, name)

        def keep(*args, _original=original, _name=name, **kwargs):
            drawn.append((_name, args, kwargs, _original(*args, **kwargs)))
            return drawn[-1][-1]

        monkeypatch.setattr(report_figures, name, keep)
    section = design.outcomes(_tables(), config, {}, _analysis())
    figures = {b.anchor: b for b in section.blocks if isinstance(b, Figure)}
    assert list(figures) == [
        "spaghetti-clinic_type",
        "trajectories-clinic_type",
        "forest-clinic_type",
    ]
    forest = figures["forest-clinic_type"]
    # a band where the outcome has an MCID in points (PPT), a sentence where it has none
    assert "± the MCID (PPT)" in forest.caption
    assert "Headache days has no MCID in points, so no band is drawn" in forest.caption
    calls = {name: (args, kwargs) for name, args, kwargs, _ in drawn}
    rows = calls["forest"][0][0]
    # only the baseline-adjusted differences of the visit-level model, each visit once
    assert (
        rows["label"].tolist()
        == [
            "public − private, visit 1 (week 6)",
            "public − private, visit 2 (week 26)",
        ]
        * 2
    )
    assert calls["forest"][1]["bands"] == {"ppt": 1.0}
    assert "positive = better" in calls["forest"][1]["panel_labels"]["ppt"]
    assert "negative = better" in calls["forest"][1]["panel_labels"]["headache_days"]
    labels = calls["mean_trajectories"][1]["outcome_labels"]
    assert labels["ppt"] == "PPT (kg/cm²; higher is better)"
    # no patient identifier anywhere in any figure: every text drawn is checked
    for _, _, _, fig in drawn:
        texts = " ".join(t.get_text() for t in fig.findobj(Text))
        assert not any(patient in texts for patient in IDS)
        assert "PX" not in texts


def test_declared_analyses_have_typed_identities():
    assert identify("trajectory_arm") is None  # outside the needling plan ...
    assert identify("trajectory_arm", ["arm"]) == AnalysisId(AnalysisKind.TRAJECTORY, "arm")
    assert identify("sensitivity_per_protocol_clinic_type", ["clinic_type"]) == AnalysisId(
        AnalysisKind.SENSITIVITY, "clinic_type", population="per_protocol"
    )
    assert identify("subgroup_diagnosis_arm", ["arm"], ["diagnosis"]) == AnalysisId(
        AnalysisKind.SUBGROUP, "arm", modifier="diagnosis"
    )
    assert kind_of("change_arm", ["arm"]) is AnalysisKind.CHANGE
    assert identify("trajectory_depth") == AnalysisId(AnalysisKind.TRAJECTORY, "depth")
    tables = _tables()
    assert declared_factors(tables) == ("clinic_type",)
    assert analysis_label("change_clinic_type", ["clinic_type"]) == (
        "Change from baseline, clinic_type"
    )
    # the disclosure grid treats a declared sensitivity analysis's patients as sensitive
    grid = link_tables({k: tables[k] for k in ("diagnostics", "contrasts")})
    cells = {key[1]: cell for key, cell in grid.cells.items() if key[2] == "n_patients"}
    assert cells[1].sensitive and not cells[1].fixed
    assert cells[0].fixed and not cells[0].sensitive


def test_the_appendix_of_a_declared_study_shows_its_models_and_reference_levels(config):
    shorts = {o.name: o.short for o in config.study.outcomes}
    section = appendix_section(_tables(), design.reference_words(config.study), shorts)
    captions = [getattr(b, "caption", "") for b in section.blocks]
    assert "Fixed effects: Change from baseline, clinic_type" in captions
    assert section.blocks[0].rows[0][0] == "PPT"  # the outcome in the study's own words
    assert not any("Sensitivity" in c for c in captions)
    assert "Reference levels: clinic type: private and" in section.blocks[-1].text


def test_diagnostics_name_the_declared_outcomes_and_analyses(config):
    shorts = {o.name: o.short for o in config.study.outcomes}
    section = diagnostics_section(_tables(), {}, {}, shorts)
    fits = section.blocks[0]
    assert [row[:2] for row in fits.rows] == [
        ("Trajectory model, clinic_type", "PPT"),
        ("Sensitivity: completers, clinic_type", "PPT"),
    ]


def test_a_subgroup_whose_variable_is_not_recorded_is_skipped_with_the_reason(config):
    data = _analysis().assign(chronicity=pd.Series(pd.NA, index=range(90), dtype="object"))
    reason = subgroup_gap(data, "clinic_type", "chronicity")
    assert reason == (
        "chronicity, which comes from the symptom duration (symptom_weeks), is not recorded by "
        "any source: the chronicity subgroups cannot be formed."
    )
    assert ("subgroup_chronicity_clinic_type", reason) in skipped_analyses(data, config.study)
    # recorded, but one chronicity group holds patients of one clinic type only
    levels = np.where(np.arange(90) < 6, "acute", "chronic")
    recorded = _analysis().assign(chronicity=pd.Categorical(levels, ["acute", "chronic"]))
    assert subgroup_gap(recorded, "clinic_type", "chronicity") == (
        "the chronicity subgroups need patients of every clinic_type group in each chronicity "
        "group, and acute has no patient in public: the difference between the clinic_type "
        "groups cannot be estimated within each chronicity group."
    )
    mixed = _analysis().assign(
        chronicity=pd.Categorical(
            np.tile(["acute", "acute", "acute", "chronic", "chronic", "chronic"], 15)
        )
    )
    assert subgroup_gap(mixed, "clinic_type", "chronicity") is None
