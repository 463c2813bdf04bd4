"""Running the plan: parallel workers give the sequential numbers, in the plan's order."""

from dataclasses import replace

import pandas as pd
import pytest

from pipeline.analyses import run as pl
from pipeline.analyses import workers
from pipeline.analyses.cache import CacheWarning, FitCache, plan_key
from pipeline.config.options import ModelSettings
from pipeline.lmm.mmrm import MmrmFit


def _without_times(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["fit_seconds"], errors="ignore")


def test_parallel_run_equals_sequential_run(demo_data):
    settings = ModelSettings(df_method="z", random_slope=False)
    plans = pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[:5]
    sequential = pl.run_analyses(plans, "z", workers=1)
    seen = []
    parallel = pl.run_analyses(plans, "z", lambda i, n, p: seen.append((i, n, p)), workers=2)

    assert [(i, n) for i, n, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert [p.analysis for *_, p in seen] == [p.analysis for p in plans]
    assert [r.analysis for r in parallel] == [p.analysis for p in plans]
    for plan, seq, par in zip(plans, sequential, parallel, strict=True):
        for name in seq.tables:
            pd.testing.assert_frame_equal(
                _without_times(seq.tables[name]), _without_times(par.tables[name])
            )
        # the rows and the design information are not sent back: both come from the plan
        assert par.rows is plan.rows
        rows = plan.rows.head(20)
        assert par.fit.design_matrix(rows) == pytest.approx(seq.fit.design_matrix(rows))


def test_forked_workers_inherit_their_jobs_and_spawned_ones_get_them_pickled(
    demo_data, monkeypatch, pickled_sizes
):
    # Forked workers read the plans from their copy of the run (pipeline.analyses.workers):
    # what goes down the pipe to them is a job number, not a plan and its rows. Spawned
    # workers (macOS, Windows) get the pickled jobs, and the same numbers.
    import multiprocessing
    import pickle

    settings = ModelSettings(df_method="z", random_slope=False)
    plans = pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[:3]
    sent = pickled_sizes
    forked = pl.run_analyses(plans, "z", workers=2)
    rows_bytes = min(len(pickle.dumps(p.rows)) for p in plans)
    assert sent and max(sent) < rows_bytes / 10, (max(sent), rows_bytes)
    assert workers._INHERITED == {}

    monkeypatch.setattr(workers, "_pool_context", lambda: multiprocessing.get_context("spawn"))
    spawned = pl.run_analyses(plans, "z", workers=2)
    for a, b in zip(forked, spawned, strict=True):
        for name in a.tables:
            pd.testing.assert_frame_equal(
                _without_times(a.tables[name]), _without_times(b.tables[name])
            )


def test_default_workers_is_bounded_by_plans_and_cores():
    assert pl.default_workers(1) == 1
    assert 1 <= pl.default_workers(100) <= 100


# ---------------------------------------------------------------------------------------------
# fits kept between runs


def test_cache_reads_back_an_unchanged_analysis_without_refitting(demo_data, tmp_path, monkeypatch):
    settings = ModelSettings(df_method="z", random_slope=False)
    plans = pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[:3]
    cache = FitCache(tmp_path / "cache")
    first = pl.run_analyses(plans, "z", workers=1, cache=cache)
    files = sorted((tmp_path / "cache").glob("*.json"))
    assert len(files) == 3

    def no_fitting(*args, **kwargs):
        raise AssertionError("an unchanged analysis was refitted")

    monkeypatch.setattr(pl, "fit_plan", no_fitting)
    again = pl.run_analyses(plans, "z", workers=2, cache=cache)
    for plan, a, b in zip(plans, first, again, strict=True):
        for name in a.tables:
            pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
        if isinstance(a.fit, MmrmFit):  # the visit-level MMRM: read back whole, not refitted
            assert b.fit.structure == a.fit.structure
            pd.testing.assert_frame_equal(b.fit.lsmeans("depth"), a.fit.lsmeans("depth"))
            other = b.fit.with_df_method("satterthwaite").fixed_effects  # needs the likelihood
            pd.testing.assert_frame_equal(
                other, a.fit.with_df_method("satterthwaite").fixed_effects
            )
        else:
            pd.testing.assert_frame_equal(a.fit.random_effects, b.fit.random_effects)
        assert b.rows is plan.rows
        rows = plan.rows.head(5)
        assert b.fit.design_matrix(rows) == pytest.approx(a.fit.design_matrix(rows))
    # the processed folder holds pseudonymised data only: no patient identifier in the cache
    some_id = str(plans[0].rows["patient_id"].iloc[0]).encode()
    assert all(some_id not in f.read_bytes() for f in files)


def test_cache_refits_what_changed_and_keeps_one_run(demo_data, tmp_path):
    settings = ModelSettings(df_method="z", random_slope=False)
    plan = pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[2]
    nrs = plan.rows["nrs"].where(plan.rows.index > 0, 0.0)  # one value changed
    changed = replace(plan, rows=plan.rows.assign(nrs=nrs))
    assert plan_key(plan, "z", True) == plan_key(replace(plan), "z", True)
    assert plan_key(changed, "z", True) != plan_key(plan, "z", True)
    assert plan_key(plan, "satterthwaite", True) != plan_key(plan, "z", True)
    assert plan_key(plan, "z", False) != plan_key(plan, "z", True)

    cache = FitCache(tmp_path / "cache")
    pl.run_analyses([plan, plan], "z", workers=1, cache=cache)
    (new,) = pl.run_analyses([changed], "z", workers=1, cache=cache)
    assert [p.stem for p in (tmp_path / "cache").glob("*.json")] == [plan_key(changed, "z", True)]
    assert new.fixed_effects["estimate"].iloc[0] != pytest.approx(
        pl.run_analyses([plan], "z", workers=1)[0].fixed_effects["estimate"].iloc[0]
    )


def test_the_key_sees_every_kind_of_change_in_the_rows(demo_data):
    settings = ModelSettings(df_method="z", random_slope=False)
    plan = pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[0]
    rows = plan.rows
    assert isinstance(rows["patient_id"].dtype, pd.CategoricalDtype)  # as the plans code them
    same = rows.copy()
    same["patient_id"] = same["patient_id"].astype("str").astype("category")  # new levels object
    ids = rows["patient_id"]
    first, second = ids.cat.categories[:2]
    swapped = ids.astype("str").replace({first: second, second: first}).astype(ids.dtype)
    masked = rows["nrs"].astype("Float64")
    variants = {
        "a value": rows.assign(nrs=rows["nrs"].where(rows.index > 0, -1.0)),
        "a patient": rows.assign(patient_id=swapped),
        "a level's name": rows.assign(patient_id=ids.cat.rename_categories({first: "X"})),
        "the levels' order": rows.assign(
            patient_id=ids.cat.reorder_categories(ids.cat.categories[::-1])
        ),
        "a dtype": rows.assign(nrs=masked),
        "a missing value": rows.assign(nrs=masked.where(rows.index > 0)),
        "the row order": rows.iloc[::-1],
        "the index": rows.set_axis(rows.index + 1),
        "a column's name": rows.rename(columns={"nrs": "pain"}),
    }
    key = plan_key(plan, "z", True)
    assert plan_key(replace(plan, rows=same), "z", True) == key
    keys = {
        what: plan_key(replace(plan, rows=frame), "z", True) for what, frame in variants.items()
    }
    assert all(k != key for k in keys.values()), keys
    assert len(set(keys.values())) == len(keys)
    # a missing value and the number that stands in for it under the mask differ
    zero = rows.assign(nrs=masked.where(rows.index > 0, 0.0))
    assert plan_key(replace(plan, rows=zero), "z", True) != keys["a missing value"]


def test_refit_ignores_the_cache(demo_data, tmp_path, monkeypatch):
    settings = ModelSettings(df_method="z", random_slope=False)
    plan = pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[2]
    pl.run_analyses([plan], "z", workers=1, cache=FitCache(tmp_path / "c"))
    calls = []
    real = pl.fit_plan
    monkeypatch.setattr(pl, "fit_plan", lambda *a, **k: calls.append(1) or real(*a, **k))
    pl.run_analyses([plan], "z", workers=1, cache=FitCache(tmp_path / "c", read=False))
    pl.run_analyses([plan], "z", workers=1, cache=FitCache(tmp_path / "c"))
    assert calls == [1]


def test_an_unreadable_cache_entry_is_refitted(demo_data, tmp_path):
    settings = ModelSettings(df_method="z", random_slope=False)
    plan = pl.analysis_plans(demo_data, settings, outcomes=("nrs",))[2]
    cache = FitCache(tmp_path / "c")
    (first,) = pl.run_analyses([plan], "z", workers=1, cache=cache)
    (tmp_path / "c" / f"{plan_key(plan, 'z', True)}.json").write_bytes(b"not an entry")
    with pytest.warns(CacheWarning, match="is unreadable or not a fit-cache entry"):
        (again,) = pl.run_analyses([plan], "z", workers=1, cache=cache)
    pd.testing.assert_frame_equal(first.fixed_effects, again.fixed_effects)
