"""Safety counts from an event table (several events per session) are one set of counts.

The disclosure audit links the counts of every table (:mod:`pipeline.privacy.cells`); a count
shown in two tables is one cell. When the session-level tables (sessions with an event) and the
event-level tables (events by type) were computed from different records of the adverse events,
one cell carried two values and the audit's integer programs had no solution ("could not
bound"). Here every safety table of the example data/raw/examples/ae_flags/ (two sessions with
two events each) is made from the run's one :class:`EventRecord`, and publishing them must keep
each count single-valued and pass the audit.
"""

from pathlib import Path

import pandas as pd
import pytest

from pipeline.config.settings import load_config
from pipeline.derive.adverse_events import event_record
from pipeline.describe import safety, safety_signals, side_effects
from pipeline.ingest.combine import read_sources
from pipeline.privacy.cells import link_tables
from pipeline.privacy.suppression import publish_tables
from pipeline.validate.study import validate_study

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "raw" / "examples" / "ae_flags"


@pytest.fixture(scope="module")
def tables():
    raw = read_sources(load_config(EXAMPLE / "analysis.toml").sources)
    validation = validate_study(raw)
    sessions, patients = validation.valid("sessions"), validation.valid("patients")
    record = event_record(sessions, raw["sessions"].events)
    rates = side_effects.side_effect_rates(sessions, record.events, record.recorded)
    return {
        "row_accounting": validation.accounting,
        "adverse_event_rates": safety.adverse_event_rates(sessions, "depth", record=record),
        "adverse_event_rate_ratio": safety.rate_ratio(sessions, "depth", record=record),
        "side_effect_rates": rates,
        "side_effect_rate_ratios": side_effects.side_effect_rate_ratios(rates),
        "serious_events": side_effects.serious_events(sessions, record.events),
        "safety_signals": safety_signals.needled_with_flags(
            patients, sessions, record.events, record.recorded
        ),
        "safety_signal_rate_ratios": safety_signals.signal_rate_ratios(
            patients, sessions, record.events, record.recorded
        ),
    }


def test_sessions_with_an_event_and_events_are_counted_from_one_table(tables):
    rates = tables["adverse_event_rates"].set_index("level")
    by_type = tables["side_effect_rates"]
    events = by_type[
        (by_type["group"] == "depth")
        & (by_type["ae_type"] == "any")
        & (by_type["ae_severity"] == "all")
    ].set_index("level")
    # the same recorded sessions; at most as many sessions with an event as events, and the two
    # sessions with two events make the whole difference (32 events, 30 sessions with one)
    assert (rates["sessions"] == events.loc[rates.index, "sessions"]).all()
    assert (rates["events"] <= events.loc[rates.index, "events"]).all()
    assert int(events["events"].sum()) - int(rates["events"].sum()) == 2
    signals = tables["safety_signals"]
    assert not signals.empty


def test_every_count_shown_twice_shows_one_value(tables):
    frames = {name: frame.reset_index(drop=True) for name, frame in tables.items()}
    grid = link_tables(frames)
    for key, cell in grid.cells.items():
        for name, row, column in cell.places:
            assert float(frames[name].loc[row, column]) == cell.value, (key, name, row, column)


def test_publishing_the_safety_tables_passes_the_audit(tables):
    published = publish_tables(tables, threshold=5)
    assert set(published) == set(tables)
    shown = published["side_effect_rates"]["events"].astype(str)
    assert shown.str.startswith("<").any()  # small counts are hidden, not dropped
    assert isinstance(published["adverse_event_rates"], pd.DataFrame)
