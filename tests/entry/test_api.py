"""The notebook API: one analysis on a DataFrame, tidy tables back, no files written."""

import pytest
from factories import DEMO_INPUTS, write_config

from pipeline import api
from pipeline.derive.dataset import visit_assessments


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    study = api.load_study(write_config(folder, DEMO_INPUTS))
    assert not any(folder.rglob("*.parquet")) and not (folder / "reports").exists()
    return study


def test_load_study_holds_the_validated_tables(study):
    assert study.validation.quarantined_rows == 11
    # one analysis row per visit assessment; the pre/post-session pairs (no visit) are the
    # immediate-relief analysis's own rows
    assert len(study.data) == len(visit_assessments(study.validation.valid("assessments")))
    assert len(study.sessions) == 1047 and len(study.patients) == 240


def test_fit_one_analysis_and_change_one_choice(study):
    full = api.fit("trajectory", study.data, outcome="vas", group="twitch", tests=False)
    simple = api.fit(
        "trajectory", study.data, outcome="vas", group="twitch", tests=False, random_slope=False
    )
    assert full.analysis == "trajectory_twitch" and full.outcome == "vas"
    assert full.diagnostics.loc[0, "random_effects"] == "intercept + slope"
    assert simple.diagnostics.loc[0, "random_effects"] == "intercept"
    for table in ("fixed_effects", "emmeans", "contrasts", "effect_sizes", "variance_components"):
        assert len(getattr(full, table)) > 0, table
    # the same slope difference, a different standard error without the random slope
    a = full.contrasts.iloc[0]
    b = simple.contrasts.iloc[0]
    assert a["estimate"] == pytest.approx(b["estimate"], rel=0.2) and a["std_err"] > b["std_err"]


def test_session_and_joint_models_need_no_group(study):
    session = api.fit("session_twitch", study.data, tests=False)
    assert "within patients" in session.contrasts["contrast"].iloc[0]
    joint = api.fit("joint", study.data, outcome="odi", tests=False, df_method="z")
    assert set(joint.contrasts["question"]) == {"depth", "twitch"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "anova"}, "unknown analysis 'anova'"),
        ({"kind": "trajectory", "group": "arm"}, "unknown group 'arm'; these data hold"),
        ({"kind": "trajectory", "outcome": "pain"}, "unknown outcome 'pain'"),
    ],
)
def test_mistakes_are_named(study, kwargs, message):
    with pytest.raises(ValueError, match=message):
        api.fit(data=study.data, **kwargs)


def test_secondary_tables(study):
    assert set(api.responder_table(study, "twitch")["outcome"]) == {"nrs", "vas", "odi"}
    rates, ratio = api.adverse_events(study)
    assert len(rates) == 2 and len(ratio) == 1
