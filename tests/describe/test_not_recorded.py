"""Not recorded is not zero: fields a source did not record are never summarised as "no"."""

from __future__ import annotations

import pandas as pd
import pytest
from factories import DEMO_INPUTS, write_config, write_demo_without, write_two_clinics

from pipeline.analyses.plans import per_protocol
from pipeline.config.settings import load_config
from pipeline.derive.dataset import analysis_dataset
from pipeline.describe import responders, safety
from pipeline.describe.table_one import MISSING, patient_characteristics, table_one
from pipeline.ingest.combine import read_sources
from pipeline.ingest.recorded import (
    NOT_RECORDED,
    PARTLY_RECORDED,
    RECORDED,
    field_status,
    optional_columns,
)
from pipeline.schemas.raw import CONTRAINDICATIONS
from pipeline.validate.study import validate_study

DEMO_PATIENTS = pd.read_csv(DEMO_INPUTS["patients"], dtype=str, keep_default_na=False)
# a small slice of the demo (every clinic), so that each study here validates in a moment
SOME = set(DEMO_PATIENTS.groupby("site").head(12)["patient_id"])


def study(config_path):
    """Validate and derive a study: its validation, analysis data set and Table 1."""
    config = load_config(config_path)
    validation = validate_study(read_sources(config.sources))
    data = analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    people = patient_characteristics(data, validation.valid("patients"))
    return validation, data, table_one(people)


def demo_without(tmp_path, drop):
    paths = write_demo_without(tmp_path, drop, SOME)
    return study(write_config(tmp_path, paths))


def test_the_demo_records_every_field_it_summarises(tmp_path):
    config = load_config(write_config(tmp_path, DEMO_INPUTS))
    validation = validate_study(read_sources(config.sources))
    status = field_status(validation.recorded).set_index("column")["status"]
    # the demo leaves `arm` empty on every row, and times its assessments by date, not by a
    # `weeks` column: those two fields are not recorded, all others are
    assert set(status[status == NOT_RECORDED].index) == {"arm", "weeks"}
    assert (status.drop(["arm", "weeks"]) == RECORDED).all()
    data = analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    one, diffs = table_one(patient_characteristics(data, validation.valid("patients")))
    assert MISSING not in set(one["category"])
    assert NOT_RECORDED not in set(diffs["method"])
    _, note = per_protocol(data)
    assert (
        note == "per protocol: excluding patients with a contraindication or a protocol deviation"
    )


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """The demo slice without every optional column it can lose (twitch and NRS stay)."""
    folder = tmp_path_factory.mktemp("bare")
    kept = {"sessions": ("twitch",), "assessments": ("nrs",)}
    drop = {t: [c for c in optional_columns(t) if c not in kept.get(t, ())] for t in kept}
    drop["patients"] = list(optional_columns("patients"))
    return drop, *study(write_config(folder, write_demo_without(folder, drop, SOME)))


def test_every_optional_column_a_source_lacks_is_not_recorded(bare):
    drop, validation, _, _ = bare
    recorded = validation.recorded.set_index(["table", "column"])
    status = field_status(validation.recorded).set_index(["table", "column"])["status"]
    for table, columns in drop.items():
        for column in columns:
            assert not recorded.loc[(table, column), "recorded"], column
            assert recorded.loc[(table, column), "filled"] == 0, column
            assert status[(table, column)] == NOT_RECORDED, column
    assert status[("sessions", "twitch")] == RECORDED
    assert validation.quarantined_rows < 20  # no more than the demo's deliberately bad rows


@pytest.mark.parametrize(
    "field",
    [*CONTRAINDICATIONS, "contraindicated", "protocol_deviation", "sex", "vas_mm_baseline"],
)
def test_a_field_no_source_recorded_is_not_recorded_in_table_one(bare, field):
    _, _, _, (one, diffs) = bare
    rows = one[one["variable"] == field]
    # only "not recorded" rows, each holding every patient of its level: never "0 (0.0 %)"
    assert set(rows["category"]) == {MISSING}
    sizes = one[one["kind"] == "patients"].set_index(["factor", "level"])["n"]
    counts = rows.set_index(["factor", "level"])["n"]
    assert counts.to_dict() == sizes.loc[counts.index].to_dict()
    assert (diffs.loc[diffs["variable"] == field, "method"] == NOT_RECORDED).all()
    assert diffs.loc[diffs["variable"] == field, "std_diff"].isna().all()


def test_without_any_flag_nobody_is_excluded_per_protocol(bare):
    _, _, data, _ = bare
    assert data.loc[data["age"] >= 12, "contraindicated"].isna().all()
    kept, note = per_protocol(data)
    assert len(kept) == len(data)
    assert note == (
        "per protocol: no patient excluded; contraindications were not recorded, so no patient "
        "was excluded for them; protocol deviations were not recorded, so no patient was "
        "excluded for them"
    )


def test_adverse_events_not_recorded_are_no_rate_of_zero(bare):
    _, validation, _, _ = bare
    sessions = validation.valid("sessions")
    rates = safety.adverse_event_rates(sessions, "depth")
    assert (rates["sessions"] == 0).all() and rates["rate_per_100"].isna().all()
    assert (rates["not_recorded"] > 0).all()
    assert (rates["note"] == safety.NOT_RECORDED_NOTE).all()
    ratio = safety.rate_ratio(sessions, "depth")
    assert ratio["rate_ratio"].isna().all()
    assert (ratio["note"] == safety.NOT_RECORDED_NOTE).all()


def test_responders_of_an_instrument_not_recorded_say_so(bare):
    _, _, data, _ = bare
    table = responders.responders_by_instrument(data, "depth")
    for outcome, column in (("vas", "vas_mm"), ("odi", "odi")):
        part = table[table["outcome"] == outcome]
        assert (part["note"] == f"{column} was not recorded").all()
        assert part["estimate"].isna().all()
    nrs = table[table["outcome"] == "nrs"]
    assert not nrs["note"].str.contains("not recorded").any()
    assert nrs.loc[nrs["quantity"] == "proportion", "n"].sum() > 0


def test_per_protocol_says_protocol_deviations_were_not_recorded(tmp_path):
    _, data, _ = demo_without(tmp_path, {"patients": ["protocol_deviation"]})
    assert data["protocol_deviation"].isna().all()
    kept, note = per_protocol(data)
    assert note == (
        "per protocol: excluding patients with a contraindication; protocol deviations were "
        "not recorded, so no patient was excluded for them"
    )
    contraindicated = data.groupby("patient_id")["contraindicated"].first().astype(bool)
    assert kept["patient_id"].nunique() == int((~contraindicated).sum())


def test_two_clinics_one_records_a_field_the_other_does_not(tmp_path):
    drop = {
        "patients": ["pregnant", "protocol_deviation"],
        "sessions": ["adverse_event", "ae_severity"],
    }
    validation, data, (one, _) = study(write_two_clinics(tmp_path, drop, SOME))
    files = validation.recorded[validation.recorded["column"] == "pregnant"]
    assert files.set_index("source_file")["recorded"].to_dict() == {
        "north/patients.csv": True,
        "south/patients.csv": False,
    }
    status = field_status(validation.recorded).set_index("column")
    assert status.loc["pregnant", "status"] == PARTLY_RECORDED
    assert status.loc["pregnant", "sources_recording"] == 1
    # Table 1: yes over the Northside patients only; the rest are counted as not recorded
    north = data.loc[data["site"] == "Northside"].drop_duplicates("patient_id")
    raw = DEMO_PATIENTS.set_index("patient_id")
    rows = one[(one["variable"] == "pregnant") & (one["factor"] == "depth")]
    for level in ("superficial", "deep"):
        here = north[north["depth"] == level]
        yes = rows[(rows["category"] == "yes") & (rows["level"] == level)].iloc[0]
        expected = int((raw.loc[here["patient_id"], "pregnant"] == "yes").sum())
        assert yes["n"] == expected
        assert yes["percent"] == pytest.approx(100 * expected / len(here))
        everyone = data.drop_duplicates("patient_id")
        missing = rows[(rows["category"] == MISSING) & (rows["level"] == level)].iloc[0]
        assert missing["n"] == int(
            ((everyone["depth"] == level) & (everyone["site"] != "Northside")).sum()
        )
    # per protocol: deviations excluded where recorded, and the note gives the denominator
    patients = data["patient_id"].nunique()
    _, note = per_protocol(data)
    assert (
        f"protocol deviations were recorded for {north['patient_id'].nunique()} of {patients} "
        "patients (the others were not excluded for them)"
    ) in note
    # safety: the other clinic's sessions are left out of the denominator, and counted
    sessions = validation.valid("sessions")
    rates = safety.adverse_event_rates(sessions, "depth")
    south = ~sessions["patient_id"].isin(north["patient_id"]) & sessions["patient_id"].isin(
        data["patient_id"]
    )
    assert rates["not_recorded"].sum() == int(south.sum())
    assert (rates["sessions"] > 0).all()
