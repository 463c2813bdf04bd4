"""``[engine]`` backend, scheduler, partition_size, worker_memory: defaults and errors."""

from __future__ import annotations

import pytest
from factories import write_config, write_study

from pipeline.config.settings import load_config
from pipeline.errors import ConfigError


def test_pandas_stays_the_default(tmp_path):
    engine = load_config(write_config(tmp_path, write_study(tmp_path / "raw"))).engine
    assert (engine.backend, engine.scheduler, engine.partition_size) == ("pandas", "local", 100_000)


def test_a_dask_engine_reads_its_scheduler_and_partitions(tmp_path):
    engine = 'backend = "dask"\nscheduler = "tcp://10.0.0.5:8786"\npartition_size = 5000'
    path = write_config(tmp_path, write_study(tmp_path / "raw"), engine=engine)
    loaded = load_config(path).engine
    assert (loaded.backend, loaded.scheduler, loaded.partition_size) == (
        "dask",
        "tcp://10.0.0.5:8786",
        5000,
    )


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ('backend = "spark"', "[engine.backend] must be one of pandas, polars, dask"),
        ('backend = "dask"\nscheduler = "10.0.0.5"', '[engine.scheduler] must be "local" or'),
        ('backend = "polars"\nscheduler = "local"', 'is read by backend = "dask" only'),
        ("partition_size = 0", "[engine.partition_size] must be between 1 and"),
        ('worker_memory = "lots"', "[engine.worker_memory] must be a size"),
    ],
)
def test_a_wrong_engine_setting_is_one_sentence(tmp_path, engine, message):
    path = write_config(tmp_path, write_study(tmp_path / "raw"), engine=engine)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert message in str(info.value)
