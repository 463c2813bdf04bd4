"""The report's "Planning the next study" section, when [report] planning = true."""

import dataclasses

import pandas as pd
import pytest
from command import assert_one_sentence_error, outcomes
from factories import DEMO_INPUTS, write_config

from pipeline import api
from pipeline.runner import planning_sections


@pytest.fixture(scope="module")
def demo():
    study = api.load_study("analysis.toml")
    config = study.config
    config = dataclasses.replace(
        config,
        report=dataclasses.replace(config.report, planning=True),
        planning=dataclasses.replace(config.planning, sims=0),  # formulas only: fast
    )
    return config, study.data


def test_the_section_plans_from_this_study(demo):
    config, data = demo
    published = {"mean_by_visit": pd.DataFrame({"n": [120, 118]})}
    (section,) = planning_sections(config, data, published)
    text = " ".join(getattr(b, "text", "") for b in section.blocks)
    assert section.title == "Planning the next study"
    # the assumptions say where they came from: this study's fitted variance components
    assert "Variance (estimated from the study)" in text
    assert "the study's own slope difference" in text  # chosen by its typed kind
    assert any(getattr(b, "caption", "").startswith("Answers at n") for b in section.blocks)


def test_suppressed_dropout_counts_leave_the_section_out_of_a_publication_report(demo):
    config, data = demo
    published = {"mean_by_visit": pd.DataFrame({"n": [120, "<5"]})}
    (section,) = planning_sections(config, data, published)
    assert len(section.blocks) == 1
    assert "suppressed" in section.blocks[0].text


def test_not_asked_no_section(demo):
    config, data = demo
    config = dataclasses.replace(config, report=dataclasses.replace(config.report, planning=False))
    assert planning_sections(config, data, {}) == ()


def test_planning_in_the_report_needs_a_planning_section(tmp_path):
    path = write_config(tmp_path, DEMO_INPUTS, report="planning = true\npdf = false")
    result = outcomes("validate", "--config", path)
    assert_one_sentence_error(result, "report.planning", "[planning]")
