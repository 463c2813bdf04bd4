"""The "How many sessions until it helps" section and its tables on the demo (issue 17)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from factories import DEMO_INPUTS, write_config

from pipeline.config.settings import load_config
from pipeline.describe.clinic import clinic_tables
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.privacy.suppression import publish_tables
from pipeline.report.html import Figure, Paragraph, Table
from pipeline.report.sections.sessions_needed import (
    sessions_needed_section,
    sessions_needed_sentence,
)
from pipeline.report.sections.side_effects import side_effects_section
from pipeline.schemas.outputs import check_output
from pipeline.validate.study import validate_study

NAMES = [
    "sessions_to_response",
    "sessions_to_response_shares",
    "sessions_to_response_hr",
    "sessions_to_response_curve",
]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_config(write_config(tmp_path_factory.mktemp("cfg"), DEMO_INPUTS))


@pytest.fixture(scope="module")
def sessions():
    return validate_study(read_raw_tables(DEMO_INPUTS)).valid("sessions")


@pytest.fixture(scope="module")
def tables(demo_data, sessions, config):
    validation = validate_study(read_raw_tables(DEMO_INPUTS))
    return clinic_tables(
        demo_data,
        sessions,
        config.study,
        5,
        patients=validation.valid("patients"),
        assessments=validation.valid("assessments"),
    )


def test_demo_tables_meet_their_contracts_and_publish(tables):
    assert set(NAMES) <= set(tables)
    assert "clinic_omitted" not in tables
    for name in NAMES:
        check_output(name, tables[name])
    published = publish_tables(tables, 5)
    assert set(published) == set(tables)
    curve = tables["sessions_to_response_curve"]
    assert curve["survival"].between(0, 1).all()
    medians = tables["sessions_to_response"]
    assert set(medians["endpoint"]) == {"mcid", "halved"}
    assert {"chronicity", "depth", "twitch"} <= set(medians["group"])


def test_curve_is_cut_below_the_threshold(demo_data, config):
    def curve(threshold):
        return clinic_tables(demo_data, pd.DataFrame(), config.study, threshold)[
            "sessions_to_response_curve"
        ]

    full, cut = curve(1), curve(40)
    assert len(cut) < len(full)


def test_section_and_answer_sentence(tables):
    published = publish_tables(tables, 5)
    section = sessions_needed_section(published, "note")
    assert section is not None
    kinds = [type(b) for b in section.blocks]
    assert Figure in kinds and Table in kinds
    sentence = sessions_needed_sentence(published)
    assert "acute" in sentence and "chronic" in sentence and "sessions" in sentence
    acute = tables["sessions_to_response_shares"].query("endpoint == 'mcid' and level == 'acute'")
    assert f"{100 * acute['share'].iloc[0]:.0f} % of acute patients within 3" in sentence


def test_without_a_session_log_the_section_says_why(demo_data, config):
    study = dataclasses.replace(config.study, sessions=False)
    tables = clinic_tables(demo_data, pd.DataFrame(), study, 5)
    assert list(tables) == ["clinic_omitted"]
    assert list(tables["clinic_omitted"]["question"]) == [
        "sessions_to_response",
        "dose_response",
        "durability",
        "side_effects",
        "safety_signals",
        "immediate_relief",
        "combined_care",
    ]
    section = sessions_needed_section(tables, "note")
    (block,) = section.blocks
    assert isinstance(block, Paragraph) and "no session log" in block.text
    assert sessions_needed_sentence(tables) == ""


def test_side_effects_section_on_the_demo(tables):
    for name in ("side_effect_rates", "side_effect_rate_ratios", "serious_events"):
        check_output(name, tables[name])
    assert "side_effect_durations" not in tables  # the demo records no duration
    published = publish_tables(tables, 5)
    section = side_effects_section(published, "note")
    texts = [b.text for b in section.blocks if isinstance(b, Paragraph)]
    assert any("was not recorded" in t for t in texts)
    assert any(isinstance(b, Figure) for b in section.blocks)
    rates = published["side_effect_rates"]
    hidden = rates[rates["events"].astype(str).str.startswith("<")]
    assert (hidden["rate_per_100"] == "[c]").all()  # a hidden count's rate is withheld


def test_side_effects_without_sessions_say_why(demo_data, config):
    study = dataclasses.replace(config.study, sessions=False)
    tables = clinic_tables(demo_data, pd.DataFrame(), study, 5)
    (block,) = side_effects_section(tables, "note").blocks
    assert "no session log" in block.text


def test_safety_signals_section_on_the_demo(demo_data, sessions, config):
    from pipeline.report.sections.safety_signals import (
        safety_signal_sentence,
        safety_signals_section,
    )

    patients = validate_study(read_raw_tables(DEMO_INPUTS)).valid("patients")
    tables = clinic_tables(demo_data, sessions, config.study, 5, patients=patients)
    for name in ("safety_signals", "safety_signal_rate_ratios"):
        check_output(name, tables[name])
    published = publish_tables(tables, 5)
    sentence = safety_signal_sentence(published)
    signals = published["safety_signals"].set_index(["flag", "depth"])
    assert sentence.startswith(f"{signals.loc[('any flag', 'all'), 'patients']} patients")
    assert "on anticoagulants" in sentence and "<5" in sentence  # small cells keep the marker
    section = safety_signals_section(published, "note")
    assert section.id == "safety_signals" and len(section.blocks) == 3
    without = clinic_tables(demo_data, sessions, config.study, 5)
    (block,) = safety_signals_section(without, "note").blocks
    assert "no patient table" in block.text


def test_dose_response_on_the_demo(tables):
    from pipeline.report.sections.dose_response import (
        dose_response_section,
        dose_response_sentence,
    )

    gains = tables["dose_response"]
    check_output("dose_response", gains)
    assert (gains["assessments"] >= 10).all()
    published = publish_tables(tables, 5)
    section = dose_response_section(published, "note")
    assert [type(b) for b in section.blocks] == [Paragraph, Table]
    assert dose_response_sentence(published).startswith("On NRS")


def test_durability_on_the_demo(tables):
    from pipeline.report.sections.durability import durability_section

    table = tables["durability"]
    check_output("durability", table)
    assert (table["still_responding"] <= table["eot_responders"]).all()
    assert (table["eot_responders"] <= table["patients"]).all()
    published = publish_tables(tables, 5)
    section = durability_section(published, "note")
    assert [type(b) for b in section.blocks] == [Paragraph, Table]
    shown = section.blocks[1]
    eot = shown.header.index("Responders at end")
    assert shown.rows[0][eot] == str(published["durability"]["eot_responders"].iloc[0])
