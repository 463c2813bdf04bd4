"""The study design as configuration: [outcomes.NAME], [[comparisons]], [covariates.NAME], [time].

Every new key is checked with a one-sentence error naming the file and the key.
"""

from pathlib import Path

import pytest

from pipeline.config.instruments import HIGHER_BETTER, HIGHER_WORSE, LIBRARY
from pipeline.config.settings import load_config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TRIAL = ROOT / "data" / "raw" / "examples" / "trial" / "analysis.toml"

# A canonical study without sessions: patients and assessments only.
BASE = """
[[sources]]
kind = "canonical"
patients = "patients.csv"
assessments = "assessments.csv"

[outputs]
processed = "p"
reports = "r"
"""
KIND = 'kind = "canonical"'
OUTCOME = """
[outcomes.rmdq]
instrument = "rmdq"
"""
ARM = """
[[comparisons]]
kind = "randomised"
reference = "sham"
"""


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "analysis.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_trial_example_declares_a_trial_without_sessions():
    config = load_config(TRIAL)
    study = config.study
    assert study.design == "trial" and study.declared and not study.sessions
    assert [o.name for o in study.outcomes] == ["rmdq", "psfs"]
    rmdq, psfs = study.outcomes
    assert (rmdq.low, rmdq.high, rmdq.direction) == (0, 24, HIGHER_WORSE)
    assert (psfs.low, psfs.high, psfs.direction) == (0, 10, HIGHER_BETTER)
    assert psfs.higher_is_better and psfs.improvement_sign == 1.0
    arm = study.comparison("arm")
    assert arm.randomised and arm.reference == "sham" and arm.levels == ("sham", "deep")
    assert study.covariates["diagnosis"].reference == "nonspecific"
    assert config.model.covariates == ("age", "sex", "diagnosis", "symptom_weeks")
    assert (study.time.source, study.time.primary_visit) == ("weeks", 1)
    assert config.sources[0].patient_id == "row"
    assert study.extra_columns() == {
        "patients": {"diagnosis": "text"},
        "assessments": {"rmdq": "number", "psfs": "number"},
    }


def test_the_needling_demo_keeps_its_default_design():
    study = load_config(ROOT / "analysis.toml").study
    assert not study.declared and study.design == "observational" and study.sessions
    assert [o.name for o in study.outcomes] == ["nrs", "vas", "odi"]
    assert [c.name for c in study.comparisons] == ["depth", "twitch"]


def test_library_instruments_carry_range_direction_mcid_and_source():
    for name in ("nrs", "vas", "odi", "rmdq", "ndi", "psfs", "ppt"):
        item = LIBRARY[name]
        assert item.high > item.low and item.source
        assert item.mcid_points is not None or item.mcid_percent is not None
    assert LIBRARY["rmdq"].high == 24 and LIBRARY["ndi"].high == 50
    assert LIBRARY["psfs"].higher_is_better and LIBRARY["ppt"].higher_is_better
    assert LIBRARY["ppt"].unit == "kg/cm²"
    assert not LIBRARY["nrs"].higher_is_better


def test_an_outcome_outside_the_library_declares_itself(tmp_path):
    text = (
        BASE
        + ARM
        + (
            '[outcomes.headache]\nlabel = "headache days"\nlow = 0\nhigh = 31\n'
            'direction = "higher_worse"\nmcid_percent = 50\n'
        )
    )
    study = load_config(_config(tmp_path, text)).study
    (headache,) = study.outcomes
    assert (headache.column, headache.high, headache.mcid.points) == ("headache", 31, None)
    assert headache.mcid.describe("days") == "50 % of baseline"


def test_library_fields_can_be_overridden(tmp_path):
    text = BASE + ARM + '[outcomes.pain]\ninstrument = "nrs"\nmcid_points = 1.5\n'
    (pain,) = load_config(_config(tmp_path, text)).study.outcomes
    assert (pain.column, pain.mcid.points, pain.mcid.percent) == ("nrs", 1.5, 30)


BAD = {
    "unknown instrument": (
        BASE + ARM + '[outcomes.x]\ninstrument = "sf36"\n',
        "[outcomes.x.instrument] must be one of the library instruments",
    ),
    "declared outcome without a range": (
        BASE + ARM + '[outcomes.x]\nhigh = 10\ndirection = "higher_worse"\nmcid_points = 1\n',
        "[outcomes.x] names no library instrument, so it needs low",
    ),
    "bad direction": (
        BASE + ARM + '[outcomes.x]\nlow = 0\nhigh = 10\ndirection = "up"\nmcid_points = 1\n',
        "[outcomes.x.direction] must be one of higher_worse, higher_better",
    ),
    "MCID beyond the range": (
        BASE + ARM + '[outcomes.x]\ninstrument = "rmdq"\nmcid_points = 30\n',
        "[outcomes.x.mcid_points] must be above 0 and at most the range (24)",
    ),
    "no MCID": (
        BASE + ARM + '[outcomes.x]\nlow = 0\nhigh = 10\ndirection = "higher_worse"\n',
        "[outcomes.x] needs mcid_points or mcid_percent",
    ),
    "unknown outcome key": (
        BASE + ARM + '[outcomes.x]\ninstrument = "rmdq"\nscale = 2\n',
        "[outcomes.x] unknown key 'scale'",
    ),
    "bad outcome name": (
        BASE + ARM + '[outcomes.RMDQ]\ninstrument = "rmdq"\n',
        "[outcomes.RMDQ] must be a name of lower-case letters",
    ),
    "two outcomes in one column": (
        BASE + ARM + '[outcomes.a]\ninstrument = "nrs"\n[outcomes.b]\ninstrument = "nrs"\n',
        "[outcomes] two outcomes use the column 'nrs'",
    ),
    "mcid and outcomes": (
        BASE + ARM + OUTCOME + "[mcid.nrs]\npoints = 2\npercent = 30\n",
        "[mcid] and [outcomes] are both given",
    ),
    "unknown comparison kind": (
        BASE + OUTCOME + '[[comparisons]]\nkind = "cluster"\n',
        "[comparisons.1.kind] must be one of depth, twitch, randomised, column",
    ),
    "comparison without reference": (
        BASE + OUTCOME + '[[comparisons]]\nkind = "randomised"\n',
        "[comparisons.1.reference] is required",
    ),
    "reference outside the levels": (
        BASE + OUTCOME + '[[comparisons]]\nkind = "randomised"\nreference = "usual"\n'
        'levels = ["sham", "deep"]\n',
        "[comparisons.1.reference] 'usual' is not one of the levels",
    ),
    "column comparison without column": (
        BASE + OUTCOME + '[[comparisons]]\nkind = "column"\nreference = "a"\n',
        "[comparisons.1.column] is required",
    ),
    "two comparisons with one name": (
        BASE + OUTCOME + ARM + ARM,
        "[comparisons] two comparisons are named 'arm'",
    ),
    "depth without a session log": (
        BASE + OUTCOME + '[[comparisons]]\nkind = "depth"\n',
        "[comparisons] 'depth' is derived from the session log, but no source provides sessions",
    ),
    "default comparisons without a session log": (
        BASE + OUTCOME,
        "[comparisons] 'depth' is derived from the session log",
    ),
    "unknown covariate kind": (
        BASE + OUTCOME + ARM + '[covariates.diagnosis]\nkind = "text"\n',
        "[covariates.diagnosis.kind] must be one of number, category",
    ),
    "reference of a numeric covariate": (
        BASE + OUTCOME + ARM + '[covariates.bmi]\nkind = "number"\nreference = "20"\n',
        "[covariates.bmi.reference] applies to a category, not a number",
    ),
    "declared covariate unused": (
        BASE + OUTCOME + ARM + '[covariates.diagnosis]\nkind = "category"\n',
        "[covariates.diagnosis] is declared but not in [model] covariates",
    ),
    "built-in covariate declared": (
        BASE + OUTCOME + ARM + '[covariates.age]\nkind = "number"\n',
        "[covariates.age] 'age' is built in",
    ),
    "undeclared covariate": (
        BASE + OUTCOME + ARM + '[model]\ncovariates = ["diagnosis"]\n',
        "[model.covariates] must be a list drawn from chronicity, age, sex, symptom_weeks",
    ),
    "unknown time source": (
        BASE + OUTCOME + ARM + '[time]\nsource = "months"\n',
        "[time.source] must be one of dates, weeks, visits",
    ),
    "visits without a mapping": (
        BASE + OUTCOME + ARM + '[time]\nsource = "visits"\n',
        '[time.visit_weeks] is needed with source = "visits"',
    ),
    "mapping without visits": (
        BASE + OUTCOME + ARM + '[time]\nvisit_weeks = { "1" = 12 }\n',
        '[time.visit_weeks] is used only with source = "visits"',
    ),
    "primary visit not mapped": (
        BASE + OUTCOME + ARM + '[time]\nsource = "visits"\nvisit_weeks = { "0" = 0, "1" = 12 }\n'
        "primary_visit = 2\n",
        "[time.primary_visit] visit 2 is not in visit_weeks",
    ),
    "primary visit at baseline": (
        BASE + OUTCOME + ARM + "[time]\nprimary_visit = 0\n",
        "[time.primary_visit] must be between 1 and 100",
    ),
    "sessions axis without sessions": (
        BASE + OUTCOME + ARM + '[model]\ntime_axis = "sessions"\n',
        "[model.time_axis] is 'sessions', but no source provides sessions",
    ),
    "row ids outside a wide source": (
        BASE.replace('kind = "canonical"', 'kind = "canonical"\npatient_id = "row"')
        + OUTCOME
        + ARM,
        "[sources.1.patient_id] 'row' (the row number as identifier) needs a wide source",
    ),
    "unknown symptom unit": (
        BASE.replace(
            'kind = "canonical"', 'kind = "canonical"\nunits = { symptom_weeks = "hours" }'
        )
        + OUTCOME
        + ARM,
        "[sources.1.units.symptom_weeks] must be one of weeks, days, months, years",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_every_new_key_is_checked_in_one_sentence(tmp_path, case):
    text, message = BAD[case]
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, text))
    error = str(caught.value)
    assert message in error, error
    assert error.startswith(str(tmp_path / "analysis.toml") + ": [")
    assert "\n" not in error


def test_a_study_without_sessions_and_a_randomised_arm_loads(tmp_path):
    config = load_config(_config(tmp_path, BASE + OUTCOME + ARM))
    assert config.study.design == "trial" and not config.study.sessions
    assert config.study.time.primary_visit is None
