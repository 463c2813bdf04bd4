from pathlib import Path

import pytest
from factories import write_config, write_study

from pipeline.config.settings import load_config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_default_configuration_loads_with_plan_values():
    config = load_config(ROOT / "analysis.toml")
    assert config.inputs.patients == ROOT / "data/raw/demo/patients.csv"
    assert config.mcid["nrs"].points == 2 and config.mcid["nrs"].percent == 30  # SAP §2
    assert config.mcid["vas"].points == 15 and config.mcid["odi"].points == 10
    assert config.thresholds.twitch_share == 0.5
    assert config.model.time_axis == "weeks" and config.model.df_method == "satterthwaite"
    # SAP §4.6: the MMRM's fallback order and Kenward-Roger df
    assert config.model.mmrm_structures == ("us", "toeph", "ar1h", "csh", "cs")
    assert config.model.mmrm_df_method == "kenward-roger"


def test_mmrm_settings_name_what_the_engine_fits(tmp_path):
    from pipeline.config import options
    from pipeline.lmm.covariance import DEFAULT_FALLBACK, STRUCTURES
    from pipeline.lmm.mmrm import DF_METHODS

    assert set(options.MMRM_STRUCTURES) == set(STRUCTURES)
    assert options.MMRM_FALLBACK == DEFAULT_FALLBACK
    assert set(options.MMRM_DF_METHODS) == set(DF_METHODS)
    path = write_config(
        tmp_path,
        write_study(tmp_path / "raw"),
        model='mmrm_structures = "ar1h"\nmmrm_df_method = "satterthwaite"',
    )
    model = load_config(path).model
    assert model.mmrm_structures == ("ar1h",) and model.mmrm_df_method == "satterthwaite"


def test_relative_paths_resolve_against_the_configuration_folder(tmp_path):
    inputs = write_study(tmp_path / "raw")
    path = write_config(tmp_path, {k: f"raw/{v.name}" for k, v in inputs.items()})
    assert load_config(path).inputs.sessions == tmp_path / "raw" / "sessions.csv"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"thresholds": "twitch_share = 2"}, "[thresholds.twitch_share] must be between 0 and 1"),
        ({"thresholds": "colour = 1"}, "[thresholds] unknown key 'colour'"),
        ({"model": 'time_axis = "months"'}, "[model.time_axis] must be one of weeks, sessions"),
        ({"model": "random_slope = 1"}, "[model.random_slope] must be true or false"),
        ({"model": 'covariates = ["bmi"]'}, "[model.covariates] must be a list drawn from"),
        ({"thresholds": 'deep_share = "half"'}, "[thresholds.deep_share] must be a number"),
        (
            {"model": 'mmrm_structures = ["us", "banded"]'},
            "[model.mmrm_structures] must be a list of distinct structures from us, toep",
        ),
        ({"model": "mmrm_structures = []"}, "[model.mmrm_structures] must be a list"),
        ({"model": 'mmrm_df_method = "kr"'}, "[model.mmrm_df_method] must be one of kenward"),
    ],
)
def test_invalid_values_name_the_file_and_key(tmp_path, extra, message):
    path = write_config(tmp_path, write_study(tmp_path / "raw"), **extra)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[inputs\npatients = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_missing_section_and_incomplete_mcid(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[outputs]\nprocessed = "p"\nreports = "r"\n')
    with pytest.raises(ConfigError, match=r"\[inputs\] section is missing"):
        load_config(path)
    path = write_config(tmp_path, write_study(tmp_path / "raw"))
    path.write_text(path.read_text().replace("[mcid.odi]\npoints = 10\n", "[mcid.odi]\n"))
    with pytest.raises(ConfigError, match=r"\[mcid.odi\] needs both 'points' and 'percent'"):
        load_config(path)
