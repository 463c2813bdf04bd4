"""The report and its CSVs of studies whose sources did not record every optional field.

One run of the whole pipeline on a slice of the demo without any optional column it can lose
(twitch and NRS stay), and the report sections of two clinics of which one records pregnancy,
protocol deviations and adverse events and the other does not.
"""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest
from factories import DEMO_INPUTS, write_config, write_demo_without, write_two_clinics

from pipeline import runner
from pipeline.config.settings import load_config
from pipeline.derive.dataset import analysis_dataset
from pipeline.describe import safety, summaries
from pipeline.ingest.combine import read_sources
from pipeline.ingest.recorded import NOT_RECORDED, optional_columns
from pipeline.privacy.suppression import publish_tables
from pipeline.report.sections.data import data_section
from pipeline.report.sections.safety import safety_section
from pipeline.report.sections.sensitivity import per_protocol_gaps
from pipeline.report.sections.table_one import table_one_section
from pipeline.schemas.raw import CONTRAINDICATIONS
from pipeline.validate.study import validate_study

PATIENTS = pd.read_csv(DEMO_INPUTS["patients"], dtype=str, keep_default_na=False)
SOME = set(PATIENTS.groupby("site").head(12)["patient_id"])
# what the needling design itself uses stays: the time (dates), the default covariate
# (chronicity, from symptom_weeks), the twitch record and one outcome
KEPT = {
    "patients": ("enrolment_date", "age", "symptom_weeks"),
    "sessions": ("twitch",),
    "assessments": ("assessment_date", "nrs"),
}


def text_of(page: str) -> str:
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture(scope="module")
def bare_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bare-run")
    drop = {t: [c for c in optional_columns(t) if c not in KEPT.get(t, ())] for t in KEPT}
    paths = write_demo_without(folder, drop, SOME)
    config = load_config(
        write_config(folder, paths, privacy="demo_key = true", report="pdf = false")
    )
    every_plan = runner.study_plans

    def few(*args, **kwargs):  # the models these tests read; the others would only take time
        keep = ("trajectory_depth", "trajectory_twitch", "sensitivity_per_protocol_depth")
        return [p for p in every_plan(*args, **kwargs) if p.analysis in keep]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "study_plans", few)
        runner.run(config)
    tables = {p.stem: pd.read_csv(p, dtype=str) for p in config.outputs.tables.glob("*.csv")}
    page = (config.outputs.reports / runner.REPORT_NAME).read_text(encoding="utf-8")
    return tables, text_of(page), page


def test_table_one_csv_marks_every_field_no_source_recorded(bare_run):
    tables, _, _ = bare_run
    one = tables["table_one"]
    for field in ("sex", *CONTRAINDICATIONS, "contraindicated", "protocol_deviation"):
        rows = one[one["variable"] == field]
        assert set(rows["category"]) == {NOT_RECORDED}, field  # never a "yes" row of 0
    diffs = tables["table_one_std_diff"]
    assert (diffs.loc[diffs["variable"] == "pregnant", "method"] == NOT_RECORDED).all()
    recorded = tables["recorded_fields"]
    assert set(recorded.loc[recorded["column"] == "pregnant", "recorded"]) == {"False"}


def test_csvs_say_adverse_events_vas_and_deviations_were_not_recorded(bare_run):
    tables, _, _ = bare_run
    assert set(tables["adverse_event_rates"]["note"]) == {safety.NOT_RECORDED_NOTE}
    assert set(tables["adverse_event_rate_ratio"]["note"]) == {safety.NOT_RECORDED_NOTE}
    responders = tables["responders"]
    assert set(responders.loc[responders["outcome"] == "vas", "note"]) == {
        "vas_mm was not recorded"
    }
    diagnostics = tables["diagnostics"]
    per_protocol = diagnostics[
        (diagnostics["analysis"] == "sensitivity_per_protocol_depth")
        & (diagnostics["outcome"] == "nrs")
    ]
    assert len(per_protocol) == 1
    assert (
        per_protocol["message"]
        .str.contains("protocol deviations were not recorded, so no patient was excluded for them")
        .all()
    )
    vas = diagnostics[
        (diagnostics["outcome"] == "vas") & (diagnostics["analysis"] == "trajectory_depth")
    ]
    assert len(vas) == 1
    assert vas["message"].str.startswith("vas_mm was not recorded").all()


def test_the_report_says_not_recorded_and_never_zero(bare_run):
    _, text, page = bare_run
    assert "Pregnant, n (%) not recorded not recorded not recorded" in text
    assert "Pregnant, n (%) 0 (0.0 %)" not in text
    assert "Adverse events were not recorded" in text
    assert "protocol deviations were not recorded, so no patient was excluded for them" in text
    assert "VAS (mm) and ODI (%) were not recorded by any source" in text
    assert "Optional fields not recorded" in text
    # the figures have no empty VAS or ODI panel, and their captions say why
    assert "VAS (mm) and ODI (%) were not recorded by any source: no panel." in text
    assert 'alt="Mean NRS at each visit by needling depth' in page


def test_two_clinics_the_report_shows_the_recorded_denominator(tmp_path):
    drop = {"patients": ["pregnant", "protocol_deviation"], "sessions": ["adverse_event"]}
    config = load_config(write_two_clinics(tmp_path, drop, SOME))
    validation = validate_study(read_sources(config.sources))
    data = analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    sessions = validation.valid("sessions")
    tables = {
        "row_accounting": validation.accounting,
        "adverse_event_rates": safety.adverse_event_rates(sessions, "depth"),
        "adverse_event_rate_ratio": safety.rate_ratio(sessions, "depth"),
        **summaries.descriptive_tables(validation, data, None),
    }
    published = publish_tables(tables, 0)
    one = published["table_one"]
    rows = one[(one["variable"] == "pregnant") & (one["factor"] == "depth")]
    sizes = one[(one["kind"] == "patients") & (one["factor"] == "depth")].set_index("level")["n"]
    section = table_one_section(published, "")
    block = next(b for b in section.blocks if getattr(b, "anchor", "") == "table-one-depth")
    pregnant = next(r for r in block.rows if r[0].startswith("  Pregnant") or "Pregnant" in r[0])
    for cell, level in zip(pregnant[1:3], ("superficial", "deep"), strict=True):
        yes = rows[(rows["category"] == "yes") & (rows["level"] == level)].iloc[0]
        missing = rows[(rows["category"] == NOT_RECORDED) & (rows["level"] == level)].iloc[0]
        assert cell.endswith(f"of {sizes[level] - missing['n']} recorded"), cell
        assert cell.startswith(f"{yes['n']} (")
    note = section.blocks[-1].text
    assert "pregnant (not in south/patients.csv)" in note
    assert "protocol_deviation (not in south/patients.csv)" in per_protocol_gaps(published)
    safety_text = " ".join(
        str(getattr(b, "note", "")) for b in safety_section(published, "").blocks
    )
    assert "adverse_event (not in south/sessions.csv)" in safety_text
    data_tables = [
        b for b in data_section(published, "").blocks if getattr(b, "anchor", "") == "not-recorded"
    ]
    assert ("patients", "pregnant", "partly recorded", "south/patients.csv") in data_tables[0].rows
