"""Two-stage pooling agrees with R's metafor::rma(method = "REML", test = "knha"), run live."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import _require_r

from pipeline.federate.meta import random_effects_meta

SCRIPT = Path(__file__).resolve().parents[1] / "r" / "metafor_rma.R"

SETS = {
    # heterogeneous clinics (tau^2 > 0)
    "heterogeneous": ([-0.10, -0.30, 0.05, -0.20, 0.40], [0.10, 0.12, 0.09, 0.20, 0.15]),
    # homogeneous: REML tau^2 on the boundary 0, prediction interval = confidence interval
    "homogeneous": ([-0.10, -0.12, -0.11], [0.10, 0.12, 0.09]),
    # two clinics: t with 1 df
    "two": ([-1.55, -0.61], [0.42, 0.37]),
    # six clinics on the scale of a VAS difference in mm, unequal precision
    "six": ([-12.1, -4.3, -9.8, 2.5, -15.2, -7.7], [3.1, 5.5, 2.2, 6.8, 4.0, 1.9]),
}
FIELDS = ["estimate", "std_err", "ci_low", "ci_high", "p_value", "tau2", "i2", "q", "q_p_value"]


@pytest.fixture(scope="module")
def metafor(tmp_path_factory) -> pd.DataFrame:
    _require_r("metafor")
    folder = tmp_path_factory.mktemp("metafor")
    rows = [
        {"set": name, "yi": y, "sei": s}
        for name, (yi, sei) in SETS.items()
        for y, s in zip(yi, sei, strict=True)
    ]
    pd.DataFrame(rows).to_csv(folder / "in.csv", index=False)
    done = subprocess.run(
        ["Rscript", str(SCRIPT), str(folder / "in.csv"), str(folder / "out.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"metafor_rma.R failed:\n{done.stderr}")
    return pd.read_csv(folder / "out.csv").set_index("set")


@pytest.mark.parametrize("name", list(SETS))
def test_random_effects_meta_matches_metafor(metafor, name):
    # R: rma(yi, sei = sei, method = "REML", test = "knha"); predict(r) (tests/r/metafor_rma.R)
    yi, sei = SETS[name]
    mine = random_effects_meta(yi, sei)
    ref = metafor.loc[name]
    for field in [*FIELDS, "pi_low", "pi_high"]:
        expected = float(ref[field])
        got = float(getattr(mine, field))
        assert abs(got - expected) <= 1e-7 * max(1.0, abs(expected)), (field, got, expected)


def test_meta_analysis_needs_two_clinics():
    with pytest.raises(ValueError, match="at least 2"):
        random_effects_meta([0.1], [0.2])
    assert np.isfinite(random_effects_meta([0.1, 0.2], [0.1, 0.1]).estimate)
