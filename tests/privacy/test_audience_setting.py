import pytest
from factories import write_config, write_study

from pipeline.config.settings import load_config
from pipeline.errors import ConfigError


def test_audience_defaults_to_publication_and_reads_internal(tmp_path):
    inputs = write_study(tmp_path / "raw")
    assert load_config(write_config(tmp_path, inputs)).privacy.audience == "publication"
    path = write_config(tmp_path, inputs, privacy='audience = "internal"\ndemo_key = true')
    assert load_config(path).privacy.audience == "internal"


def test_unknown_audience_is_one_sentence_naming_the_key(tmp_path):
    path = write_config(tmp_path, write_study(tmp_path / "raw"), privacy='audience = "public"')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "[privacy.audience] must be one of publication, internal" in str(info.value)
    assert "\n" not in str(info.value)
