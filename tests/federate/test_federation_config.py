"""The ``[federation]`` section: defaults, values, and one-sentence errors."""

from __future__ import annotations

import pytest
from factories import DEMO_INPUTS, write_config

from pipeline.config.settings import load_config
from pipeline.errors import ConfigError
from pipeline.federate.spec import specification, specification_hash


def _load(tmp_path, body: str):
    return load_config(write_config(tmp_path, DEMO_INPUTS, federation=body))


def test_values_and_specification_hash(tmp_path):
    cfg = _load(tmp_path, 'schedule = { 0 = 0, 2 = 6, 1 = 2.5 }\ngroups = ["twitch", "depth"]\n')
    fed = cfg.federation
    assert fed.schedule == ((0, 0.0), (1, 2.5), (2, 6.0))
    assert fed.groups == ("twitch", "depth") and fed.min_patients_per_cell == 5
    spec = specification(cfg)
    assert spec["schedule"] == {"0": 0.0, "1": 2.5, "2": 6.0}
    assert spec["nominal_time"] == "nominal_weeks"
    other = specification(_load(tmp_path, "schedule = { 0 = 0, 1 = 2.5, 2 = 7 }\n"))
    assert specification_hash(spec) != specification_hash(other)
    assert len(specification_hash(spec)) == 64


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("schedule = { 0 = 0, 1 = 4, 2 = 3 }\n", "[federation.schedule] times must increase"),
        ("schedule = { a = 0 }\n", "'a' is not a visit number"),
        ("schedule = { 0 = -1 }\n", "[federation.schedule.0]"),
        ('schedule = { 0 = 0 }\ngroups = ["arm"]\n', "[federation.groups]"),
        ('schedule = { 0 = 0 }\nclinic_effect = "mixed"\n', "[federation.clinic_effect]"),
        ("schedule = { 0 = 0 }\nmin_patients_per_cell = 2\n", "min_patients_per_cell"),
        ("schedule = { 0 = 0 }\nseed = 3\n", "unknown key 'seed'"),
    ],
)
def test_bad_values_are_named(tmp_path, body, fragment):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, body)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_specification_needs_a_schedule(tmp_path):
    with pytest.raises(ConfigError, match=r"\[federation\] schedule is missing"):
        specification(load_config(write_config(tmp_path, DEMO_INPUTS)))
