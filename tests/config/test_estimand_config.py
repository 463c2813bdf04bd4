"""``[estimand]``: the estimand statement and the missing-data analyses' settings."""

from pathlib import Path

import pytest

from pipeline.config.estimand import JACKKNIFE_GROUPS
from pipeline.config.settings import load_config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, extra: str) -> Path:
    text = (ROOT / "analysis.toml").read_text(encoding="utf-8")
    # The demo declares an estimand: take it out, so each test writes its own.
    text = text[: text.index("[estimand]")] + text[text.index("[engine]") :]
    text = text.replace('"data/raw/demo/', f'"{ROOT}/data/raw/demo/')
    path = tmp_path / "analysis.toml"
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return path


def test_absent_section_is_none(tmp_path):
    assert load_config(_write(tmp_path, "")).estimand is None


def test_the_demo_declares_one():
    est = load_config(ROOT / "analysis.toml").estimand
    assert (est.outcome, est.comparison, est.visit) == ("nrs", "depth", 4)
    assert est.events[0].imputation == "J2R" and est.mi_imputations == 50
    assert (est.events[1].event, est.events[1].imputation) == ("protocol_deviation", "MAR")
    co = est.events[2]
    assert (co.event, co.strategy, co.imputation) == ("co_intervention", "hypothetical", "MAR")


def test_section_is_read(tmp_path):
    cfg = load_config(
        _write(
            tmp_path,
            """
[estimand]
population = "adults with chronic low back pain"
outcome = "odi"
comparison = "depth"
visit = 3
strategies = ["MAR", "J2R"]
tipping_deltas = 11
tipping_range = 2
tipping_groups = "both"
covariance_by_group = true

[estimand.events.discontinued]
strategy = "hypothetical"

[estimand.events.protocol_deviation]
strategy = "treatment policy"
imputation = "CR"
""",
        )
    )
    est = cfg.estimand
    assert est.outcome == "odi" and est.visit == 3 and est.tipping_range == 2.0
    assert est.strategies == ("MAR", "J2R") and est.tipping_groups == "both"
    assert (
        est.covariance_by_group
        and not load_config(_write(tmp_path, "[estimand]\n")).estimand.covariance_by_group
    )
    assert [(e.event, e.strategy, e.imputation) for e in est.events] == [
        ("discontinued", "hypothetical", "MAR"),
        ("protocol_deviation", "treatment policy", "CR"),
    ]


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[estimand]\noutcome = "rmdq"', "estimand.outcome"),
        ('[estimand]\nstrategies = ["LOCF"]', "estimand.strategies"),
        ('[estimand.events.fell_ill]\nstrategy = "hypothetical"', "estimand.events.fell_ill"),
        ('[estimand.events.discontinued]\nstrategy = "composite"', "estimand.events.discontinued"),
        ("[estimand]\ntipping_deltas = 2", "estimand.tipping_deltas"),
        ("[estimand]\nmi_imputations = -1", "estimand.mi_imputations"),
        ("[estimand]\njackknife_groups = 9", "estimand.jackknife_groups"),
        ("[estimand]\njackknife_groups = 100.5", "estimand.jackknife_groups"),
        ('[estimand]\njackknife_groups = "many"', "estimand.jackknife_groups"),
        ("[estimand]\njackknife_seed = -3", "estimand.jackknife_seed"),
        ("[estimand]\nwhatever = 1", "estimand"),
    ],
)
def test_mistakes_name_the_key(tmp_path, extra, key):
    with pytest.raises(ConfigError, match=rf"\[{key}"):
        load_config(_write(tmp_path, extra))


def test_jackknife_groups_default_and_setting(tmp_path):
    # The default keeps the demo (240 patients) on the leave-one-out jackknife.
    default = load_config(_write(tmp_path, "[estimand]\n")).estimand
    assert default.jackknife_groups == JACKKNIFE_GROUPS >= 240 and default.jackknife_seed == 0
    est = load_config(
        _write(tmp_path, "[estimand]\njackknife_groups = 150\njackknife_seed = 4")
    ).estimand
    assert (est.jackknife_groups, est.jackknife_seed) == (150, 4)


@pytest.mark.parametrize(
    ("value", "words"),
    [("9", "must be between 10 and"), ("100.5", "must be a whole number")],
)
def test_jackknife_groups_mistake_is_one_sentence(tmp_path, value, words):
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, f"[estimand]\njackknife_groups = {value}"))
    message = str(caught.value)
    assert words in message and "[estimand.jackknife_groups]" in message
    assert "\n" not in message and message.count(". ") == 0
