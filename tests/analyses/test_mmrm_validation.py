"""Small version of the MMRM coverage simulation (the full one: ``make validate-stats``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analyses.stat_validation import (
    MMRM_METHODS,
    mmrm_markdown,
    run_mmrm_simulations,
    summarise_mmrm,
)


def test_mmrm_simulation_small_version() -> None:
    sims = run_mmrm_simulations(2, per_arm=(12,), seed=5, workers=1)
    assert len(sims) == 2 and not any(c.endswith("|failed") for c in sims)
    summary = summarise_mmrm(sims)
    assert list(summary["method"]) == list(MMRM_METHODS)
    assert (summary["n_coverage"] == 2).all() and (summary["n_null"] == 2).all()
    assert summary["coverage"].between(0, 1).all()
    # the same fit under each method: identical estimates; Kenward-Roger inflates the SE and
    # both small-sample methods have finite df below the number of observations
    est = sims[[f"effect|{m}|estimate" for m in MMRM_METHODS]].to_numpy()
    np.testing.assert_allclose(est, est[:, :1].repeat(3, axis=1))
    assert (sims["effect|kenward-roger|std_err"] >= sims["effect|satterthwaite|std_err"]).all()
    for method in ("kenward-roger", "satterthwaite"):
        df = sims[f"effect|{method}|df"]
        assert (df > 1).all() and (df < sims["effect|n_obs"]).all()
    assert np.isinf(sims["effect|z|df"]).all()
    text = mmrm_markdown(summary, sims, 2, 5)
    assert "2 simulations per trial size (seed 5)" in text and "| 12 | kenward-roger |" in text


def test_seeds_do_not_depend_on_workers() -> None:
    one = run_mmrm_simulations(1, per_arm=(10,), seed=9, workers=1)
    two = run_mmrm_simulations(1, per_arm=(10,), seed=9, workers=2)
    np.testing.assert_allclose(
        one["null|kenward-roger|estimate"], two["null|kenward-roger|estimate"], rtol=1e-10
    )


def test_runs_keep_their_simulations_and_can_be_summarised_later(tmp_path) -> None:
    from pipeline.cli import main

    for per_arm in (10, 12):
        out = tmp_path / f"run{per_arm}"
        args = ["validate-mmrm", "--sims", "2", "--per-arm", str(per_arm), "--workers", "1"]
        assert main([*args, "--seed", "3", "--out", str(out)]) == 0
        assert (out / "mmrm_sims.csv").exists() and (out / "mmrm.md").exists()
    sims = [str(tmp_path / f"run{n}" / "mmrm_sims.csv") for n in (10, 12)]
    both = tmp_path / "both"
    # as if each run had been asked for 5 and stopped after 2: the summary says so
    assert main(["validate-mmrm", "--summarise", *sims, "--sims", "5", "--out", str(both)]) == 0
    text = (both / "mmrm.md").read_text()
    assert "Simulations finished: 2 with 10 per arm, 2 with 12 per arm" in text
    assert "stopped before the end" in text
    assert "| 10 | kenward-roger |" in text and "| 12 | z |" in text
    summary = pd.read_csv(both / "mmrm.csv")
    assert (summary["n_coverage"] == 2).all()
    assert main(["validate-mmrm", "--summarise", str(tmp_path / "none.csv")]) == 2


def test_parts_of_a_run_give_the_rows_of_the_whole_run(tmp_path) -> None:
    from pipeline.cli import main

    whole = run_mmrm_simulations(3, per_arm=(10,), seed=4, workers=1)
    assert list(whole["sim"]) == [1, 2, 3]
    parts = []
    for first, last in ((1, 1), (2, 3)):
        out = tmp_path / f"part{first}"
        args = ["validate-mmrm", "--sims", "3", "--per-arm", "10", "--workers", "1"]
        assert (
            main([*args, "--seed", "4", "--sim-range", str(first), str(last), "--out", str(out)])
            == 0
        )
        parts.append(pd.read_csv(out / "mmrm_sims.csv"))
    joined = pd.concat(parts, ignore_index=True)
    np.testing.assert_allclose(
        joined["null|kenward-roger|estimate"], whole["null|kenward-roger|estimate"], rtol=1e-9
    )
    files = [str(tmp_path / f"part{n}" / "mmrm_sims.csv") for n in (1, 2)]
    assert (
        main(["validate-mmrm", "--summarise", *files, "--sims", "3", "--out", str(tmp_path)]) == 0
    )
    # the same part twice is refused in one sentence
    assert main(["validate-mmrm", "--summarise", files[0], files[0], "--out", str(tmp_path)]) == 2
    assert main(["validate-mmrm", "--sims", "3", "--sim-range", "2", "4"]) == 2
