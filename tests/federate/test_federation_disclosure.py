"""Disclosure: what a share file holds, and what cannot be recovered from it.

Threat model (docs/federation.md): the coordinating centre (or anyone holding the file) sees
one clinic's share file and knows the model; it wants one patient's outcome values. The file
holds sums over atoms of at least ``min_patients_per_cell`` patients who share site, categories
and schedule. Inside an atom, any orthogonal mixing of the patients' outcome vectors that keeps
their total leaves every sum and every sum of products unchanged, so two clinics whose
patients all have different values produce the same file: the file cannot determine any
single patient's values.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
from factories import DEMO_INPUTS
from helpers_federation import DEMO_SCHEDULE, federation_config

from pipeline.federate.disclosure import assign_cells
from pipeline.federate.schema import read_share, write_share
from pipeline.federate.share import build_share

K = 5
DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}")

ALLOWED_KEYS = {
    "": {
        "format",
        "format_version",
        "pipeline_version",
        "specification_hash",
        "specification",
        "clinic",
        "disclosure",
        "models",
    },
    "models": {
        "outcome",
        "response",
        "group",
        "formula",
        "fixed_effects",
        "random_effects",
        "sites",
        "clinic_fit",
        "descriptives",
    },
    "models.sites": {"site", "n_patients", "n_obs", "xtx", "xty", "yty", "cells"},
    "models.sites.cells": {"z", "n_patients", "sum_a", "sum_aa"},
    "models.descriptives": {"visit", "time", "level", "n_patients", "mean", "sd", "withheld"},
}


def _walk(value, path: str, strings: list[str], keys: list[tuple[str, set]]) -> None:
    if isinstance(value, dict):
        keys.append((path, set(value)))
        for k, v in value.items():
            strings.append(k)
            _walk(v, f"{path}.{k}" if path else k, strings, keys)
    elif isinstance(value, list):
        for v in value:
            _walk(v, path, strings, keys)
    elif isinstance(value, str):
        strings.append(value)


def test_share_file_holds_no_identifier_date_or_row_level_value(tmp_path, demo_data):
    config = federation_config(tmp_path, DEMO_INPUTS, DEMO_SCHEDULE)
    site = demo_data.loc[demo_data["site"] == "Northside"]
    path = write_share(build_share(site, config), tmp_path / "northside.share")
    share = json.loads(path.read_text(encoding="utf-8"))  # plain JSON, human-readable
    assert read_share(path)["format_version"] == 1
    assert len(share["specification_hash"]) == 64 and share["pipeline_version"]

    strings: list[str] = []
    keys: list[tuple[str, set]] = []
    _walk(share, "", strings, keys)
    ids = set(demo_data["patient_id"].astype(str))
    assert not ids.intersection(strings)
    assert not [s for s in strings if any(i in s for i in ids)]
    assert not [s for s in strings if DATE.search(s)]
    for where, present in keys:
        if where in ALLOWED_KEYS:
            assert present <= ALLOWED_KEYS[where], (where, present - ALLOWED_KEYS[where])

    for model in share["models"]:
        for block in model["sites"]:
            assert block["n_patients"] >= K
            # every array is a sum over a cell of at least K patients: no per-patient list
            assert all(cell["n_patients"] >= K for cell in block["cells"])
            assert sum(c["n_patients"] for c in block["cells"]) == block["n_patients"]
        for d in model["descriptives"]:
            assert d["withheld"] or d["n_patients"] >= K
            if d["withheld"]:
                assert d["mean"] is None and d["sd"] is None and d["n_patients"] is None
    # the file's length follows the schedules and parameters, not the patients
    n_numbers = len(re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", path.read_text(encoding="utf-8")))
    n_cells = sum(len(b["cells"]) for m in share["models"] for b in m["sites"])
    p = len(share["models"][0]["fixed_effects"])
    assert n_numbers < n_cells * (2 * (p + 1)) ** 2 * 1.5 + 2000


def _small_clinic(rng: np.random.Generator) -> pd.DataFrame:
    """A clinic whose every schedule is held by 5 to 7 patients of each depth x chronicity."""
    rows = []
    pid = 0
    for depth in ("superficial", "deep"):
        for chronicity in ("acute", "chronic"):
            for visits in ((0, 1, 2, 3, 4), (0, 1, 2)):
                for _ in range(int(rng.integers(5, 8))):
                    pid += 1
                    base = rng.normal(60.0, 12.0)
                    slope = rng.normal(-2.0, 0.8)
                    for v in visits:
                        t = (0, 2, 4, 8, 12)[v]
                        rows.append(
                            {
                                "patient_id": f"S{pid:03d}",
                                "site": "Smallville",
                                "visit": v,
                                "vas_mm": base + slope * t + rng.normal(0.0, 6.0),
                                "nrs": base / 10.0 + 0.1 * slope * t + rng.normal(0.0, 0.8),
                                "odi": base / 2.0 + 0.5 * slope * t + rng.normal(0.0, 4.0),
                                "depth": depth,
                                "chronicity": chronicity,
                            }
                        )
    return pd.DataFrame(rows)


def _mixed(data: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Mix the outcome vectors of the patients of every atom by an orthogonal map fixing 1."""
    out = data.copy()
    outcomes = ["nrs", "vas_mm", "odi"]
    patterns = data.groupby("patient_id")["visit"].agg(tuple)
    people = data.groupby("patient_id")[["depth", "chronicity"]].first().assign(v=patterns)
    for _, atom in people.groupby(["depth", "chronicity", "v"]):
        ids = list(atom.index)
        n = len(ids)
        basis = np.linalg.qr(np.c_[np.ones(n), rng.normal(size=(n, n - 1))])[0][:, 1:]
        rotation = np.linalg.qr(rng.normal(size=(n - 1, n - 1)))[0]
        q = np.ones((n, n)) / n + basis @ rotation @ basis.T
        for outcome in outcomes:
            wide = data.loc[data["patient_id"].isin(ids)].pivot_table(
                index="patient_id", columns="visit", values=outcome
            )
            wide = wide.loc[ids]
            mixed = pd.DataFrame(q @ wide.to_numpy(), index=ids, columns=wide.columns)
            for pid in ids:
                for v in wide.columns:
                    mask = (out["patient_id"] == pid) & (out["visit"] == v)
                    out.loc[mask, outcome] = mixed.loc[pid, v]
    return out


def _numbers(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    else:
        yield path, float(value)


def test_no_patient_value_can_be_recovered_from_a_small_clinic(tmp_path):
    rng = np.random.default_rng(21)
    config = federation_config(tmp_path, DEMO_INPUTS, DEMO_SCHEDULE)
    original = _small_clinic(rng)
    counts = original.groupby(["depth", "chronicity"])["patient_id"].nunique()
    assert counts.min() >= 10  # two schedules of 5-7 patients per stratum
    other = _mixed(original, rng)

    # every patient's outcome values differ between the two clinics ...
    a = original.pivot_table(index="patient_id", columns="visit", values="vas_mm")
    b = other.pivot_table(index="patient_id", columns="visit", values="vas_mm")
    nearest = [
        np.nanmin(np.nanmax(np.abs(b.to_numpy() - a.loc[pid].to_numpy()), axis=1))
        for pid in a.index
    ]
    assert min(nearest) > 0.5  # no patient of `other` carries any original patient's values

    # ... yet the two share files are the same file
    share_a = build_share(original, config)
    share_b = build_share(other, config)
    assert share_a["disclosure"]["patients_left_out"] == 0
    numbers_a, numbers_b = dict(_numbers(share_a)), dict(_numbers(share_b))
    assert numbers_a.keys() == numbers_b.keys()
    for key, value in numbers_a.items():
        tol = 1e-6 if "clinic_fit" in key else 1e-9  # the clinic's own fit: optimiser's digits
        assert abs(numbers_b[key] - value) <= tol * max(1.0, abs(value)), key


def test_coarsening_rule_moves_small_schedules_to_the_largest_sub_schedule():
    def people(pattern, n, start):
        return [
            {"pid": f"p{start + i}", "visit": v, "site": "A", "g": "x"}
            for i in range(n)
            for v in pattern
        ]

    rows = pd.DataFrame(
        people((0, 1, 2), 6, 0)  # open schedule
        + people((0, 1, 2, 3), 2, 100)  # -> (0, 1, 2): 6 + 2 >= 5
        + people((0, 3), 1, 200)  # no sub-schedule reaches 5 -> left out
        + people((0, 2, 4), 3, 300)  # with the two below: (0, 2) taken by 5 movers
        + people((0, 2, 5), 2, 400)
    )
    out = assign_cells(rows, "pid", "visit", ["site", "g"], K)
    kept = out.rows.groupby("pid")["visit"].agg(tuple)
    assert all(kept[f"p{100 + i}"] == (0, 1, 2) for i in range(2))
    assert "p200" not in kept.index
    assert all(kept[p] == (0, 2) for p in ["p300", "p301", "p302", "p400", "p401"])
    assert (out.patients_in, out.patients_kept, out.patients_left_out) == (14, 13, 1)
    assert out.patients_coarsened == 7
    assert out.rows_dropped == 2 + 2 + 3 + 2
    assert kept.value_counts().min() >= K
