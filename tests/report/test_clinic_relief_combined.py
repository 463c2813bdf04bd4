"""Immediate relief and combined care in the report, and the clinic sections of a trial."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from factories import DEMO_INPUTS, write_config

from pipeline.config.settings import load_config
from pipeline.derive.dataset import analysis_dataset
from pipeline.describe.clinic import clinic_tables
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.privacy.suppression import publish_tables
from pipeline.report import provenance
from pipeline.report.content import build_content
from pipeline.report.html import Figure, Paragraph, Table
from pipeline.report.sections.combined_care import combined_care_section, combined_care_sentence
from pipeline.report.sections.immediate_relief import (
    immediate_relief_section,
    immediate_relief_sentence,
)
from pipeline.schemas.outputs import check_output
from pipeline.validate.study import validate_study

ROOT = Path(__file__).resolve().parents[2]
NEW = ("immediate_relief", "immediate_relief_next_visit", "combined_care", "combined_care_tests")
CLINIC = (
    "sessions_to_response",
    "dose_response",
    "immediate_relief",
    "durability",
    "combined_care",
    "side_effects",
)


@pytest.fixture(scope="module")
def demo(demo_data, tmp_path_factory):
    config = load_config(write_config(tmp_path_factory.mktemp("cfg"), DEMO_INPUTS))
    v = validate_study(read_raw_tables(DEMO_INPUTS))
    tables = clinic_tables(
        demo_data,
        v.valid("sessions"),
        config.study,
        5,
        patients=v.valid("patients"),
        assessments=v.valid("assessments"),
    )
    return config, v, tables


def test_demo_relief_and_combined_tables_meet_their_contracts(demo):
    _, _, tables = demo
    assert "clinic_omitted" not in tables
    for name in NEW:
        check_output(name, tables[name])
    published = publish_tables(tables, 5)
    assert set(published) == set(tables)
    # no count below the small-cell threshold is published by these tables
    for name in NEW:
        frame = tables[name]
        for column in ("pairs", "patients"):
            if column in frame:
                assert (frame[column] >= 5).all(), (name, column)


def test_relief_section_has_figure_tables_and_the_sentence(demo):
    _, _, tables = demo
    published = publish_tables(tables, 5)
    section = immediate_relief_section(published, "note")
    assert [type(b) for b in section.blocks] == [Paragraph, Figure, Table, Table]
    sentence = immediate_relief_sentence(published)
    overall = tables["immediate_relief"].query("comparison == 'all'").iloc[0]
    assert sentence.startswith(
        f"Measured immediately before and after {overall['pairs']} sessions of "
        f"{overall['patients']} patients, NRS improved by {overall['estimate']:.2f} points"
    )
    assert "deep sessions by" in sentence and "next visit" in sentence


def test_combined_care_section_and_sentence(demo):
    _, _, tables = demo
    published = publish_tables(tables, 5)
    section = combined_care_section(published, "note")
    kinds = [type(b) for b in section.blocks]
    assert kinds == [Paragraph, Figure, Table, Table]
    sentence = combined_care_sentence(published)
    assert sentence.startswith("Adjusted for co-interventions, the deep group improved NRS")
    assert "likelihood-ratio p" in sentence


def test_without_timing_or_co_interventions_the_sections_say_why(demo, demo_data):
    config, v, _ = demo
    plain = v.valid("assessments")
    plain = plain[plain["visit"].notna()].drop(columns="timing")
    sessions = v.valid("sessions").drop(columns="co_intervention")
    tables = clinic_tables(demo_data, sessions, config.study, 5, assessments=plain)
    omitted = tables["clinic_omitted"].set_index("question")["reason"]
    assert "immediately before or after a session" in omitted["immediate_relief"]
    assert "co-interventions were not recorded" in omitted["combined_care"]
    (block,) = immediate_relief_section(tables, "note").blocks
    assert block.text.startswith("Immediate relief is not analysed: no assessment")
    (block,) = combined_care_section(tables, "note").blocks
    assert block.text.startswith("Combined care is not analysed: co-interventions")


def test_without_a_session_log_every_clinic_question_says_why(demo, demo_data):
    config, _, _ = demo
    study = dataclasses.replace(config.study, sessions=False)
    tables = clinic_tables(demo_data, pd.DataFrame(), study, 5)
    questions = set(tables["clinic_omitted"]["question"])
    assert {"immediate_relief", "combined_care"} <= questions


def test_a_declared_trial_report_states_why_each_clinic_question_is_not_answered():
    # the worked trial (data/raw/examples/trial): a wide file, no session log
    config = load_config(ROOT / "data/raw/examples/trial/analysis.toml")
    raw = read_sources(config.sources)
    v = validate_study(raw, config.study.ranges())
    data = analysis_dataset(
        v.valid("patients"), v.valid("sessions"), v.valid("assessments"), config
    )
    tables = clinic_tables(
        data,
        v.valid("sessions"),
        config.study,
        config.privacy.small_cell_threshold,
        patients=v.valid("patients"),
        assessments=v.valid("assessments"),
    )
    run = provenance.collect(config, raw, ROOT, "environment variable X")
    content = build_content(config, publish_tables(tables, 5), run)
    sections = {s.id: s for s in content.sections}
    assert config.study.declared
    for question in (*CLINIC, "safety_signals"):
        assert question in sections, question
        (block,) = sections[question].blocks
        assert isinstance(block, Paragraph) and "not analysed" in block.text, question
        assert "session log" in block.text or "no patient" in block.text, question


def test_clinic_questions_answered_side_by_side_are_those_answered_in_place(demo, demo_data):
    # (pipeline.analyses.side_by_side: forked helpers where the platform allows, else in place)
    config, v, in_place = demo
    kwargs = {"patients": v.valid("patients"), "assessments": v.valid("assessments")}
    together = clinic_tables(demo_data, v.valid("sessions"), config.study, 5, workers=0, **kwargs)
    assert list(together) == list(in_place)
    for name, frame in in_place.items():
        pd.testing.assert_frame_equal(together[name], frame, check_exact=True)
    # without a session log most questions are omitted, each with its reason, in the same order
    alone = clinic_tables(demo_data, pd.DataFrame(), config.study, 5, workers=1)
    side = clinic_tables(demo_data, pd.DataFrame(), config.study, 5, workers=0)
    pd.testing.assert_frame_equal(side["clinic_omitted"], alone["clinic_omitted"])
    assert len(alone["clinic_omitted"]) >= 4
