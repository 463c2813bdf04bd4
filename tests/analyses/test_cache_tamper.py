"""The fit cache runs no code from disk and believes no entry it cannot authenticate (#13.1)."""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from pipeline.analyses import codec
from pipeline.analyses import run as pl
from pipeline.analyses.cache import CacheWarning, FitCache, cache_key, plan_key
from pipeline.config.options import ModelSettings
from pipeline.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


class Planted:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code from the cache ran"))


@pytest.fixture
def plan(demo_data):
    settings = ModelSettings(df_method="z", random_slope=False)
    return pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[0]


def fresh(plan):
    return pl.run_analyses([plan], "z", workers=1)[0]


def test_a_planted_pickle_runs_no_code_and_the_model_is_refitted(plan, tmp_path):
    folder, marker = tmp_path / "model_cache", tmp_path / "pwned"
    folder.mkdir()
    key = plan_key(plan, "z", True)
    payload = pickle.dumps(Planted(marker))
    (folder / f"{key}.pkl").write_bytes(payload)  # where the old cache looked
    (folder / f"{key}.json").write_bytes(payload)  # and where the new one looks
    with pytest.warns(CacheWarning, match="not a fit-cache entry"):
        cache = FitCache(folder, secret=b"k" * 32)
        (result,) = pl.run_analyses([plan], "z", workers=1, cache=cache)
    assert not marker.exists()
    pd.testing.assert_frame_equal(result.fixed_effects, fresh(plan).fixed_effects)
    assert (folder / f"{key}.pkl").read_bytes() == payload  # not ours: neither read nor deleted


def test_a_forged_or_foreign_entry_is_ignored_and_the_numbers_are_refitted(plan, tmp_path):
    folder = tmp_path / "model_cache"
    cache = FitCache(folder, secret=b"k" * 32)
    (truth,) = pl.run_analyses([plan], "z", workers=1, cache=cache)
    path = folder / f"{plan_key(plan, 'z', True)}.json"
    entry = json.loads(path.read_text())
    # forge: the group-by-time slope difference becomes 9.999 points per week in every table,
    # the entry re-encoded as the cache writes it, the tag left as it was
    stored = codec.decode(json.loads(entry["body"]))
    tables = {name: frame.copy() for name, frame in stored.tables.items()}
    tables["fixed_effects"].loc[tables["fixed_effects"].index[-1], "estimate"] = 9.999
    forged = replace(stored, tables=tables)
    forged_body = json.dumps(codec.encode(forged), separators=(",", ":"))
    assert forged_body != entry["body"]
    path.write_text(json.dumps({**entry, "body": forged_body}))
    with pytest.warns(CacheWarning, match="failed authentication"):
        (again,) = pl.run_analyses([plan], "z", workers=1, cache=cache)
    pd.testing.assert_frame_equal(again.fixed_effects, truth.fixed_effects)
    assert 9.999 not in again.fixed_effects["estimate"].tolist()
    # an entry written by another installation (another key) is not believed either
    FitCache(folder, secret=b"x" * 32).store(plan_key(plan, "z", True), truth)
    with pytest.warns(CacheWarning, match="another installation"):
        pl.run_analyses([plan], "z", workers=1, cache=cache)
    # and an entry moved to another key's name fails too (the tag covers the name)
    other = folder / ("0" * 64 + ".json")
    path.rename(other)
    assert FitCache(folder, secret=b"k" * 32).check("0" * 64)[1] is not None


def test_the_cache_keeps_files_it_did_not_write(plan, tmp_path):
    folder = tmp_path / "model_cache"
    folder.mkdir()
    mine = {"notes.pkl": b"a user's pickle", "summary.json": b"{}", "readme.txt": b"hello"}
    for name, data in mine.items():
        (folder / name).write_bytes(data)
    cache = FitCache(folder, secret=b"k" * 32)
    pl.run_analyses([plan], "z", workers=1, cache=cache)
    cache.keep_only(set())
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == mine


def test_the_key_lives_outside_the_processed_folder_and_is_private(tmp_path):
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    key = cache_key(environ=environ)
    path = tmp_path / "config" / "needling-outcomes" / "cache.key"
    assert key == path.read_bytes() and len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert cache_key(environ=environ) == key  # read back, not made again
    assert cache_key(environ={"NEEDLING_CACHE_KEY_FILE": str(tmp_path / "k")}) != key
    with pytest.raises(UserError, match="must not be kept in the processed folder"):
        cache_key(tmp_path / "processed" / "cache.key", tmp_path / "processed", environ={})


def test_no_pickle_anywhere_in_the_pipeline():
    for source in sorted((ROOT / "pipeline").rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib|shelve)\b", text, re.M), (
            source
        )
        assert "allow_pickle=True" not in text, source
