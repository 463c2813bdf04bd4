"""``outcomes share`` and ``outcomes pool`` as a network runs them, on the demo split by clinic."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from command import assert_one_sentence_error, outcomes
from factories import DEMO_INPUTS, outputs_and_mcid, write_config
from helpers_federation import DEMO_SCHEDULE

from pipeline import api
from pipeline.cli import main
from pipeline.demo.network import split_by_site

SITES = ("Hillview", "Northside", "Riverside")


def _split_demo(folder: Path) -> dict[str, Path]:
    """Each demo clinic's own raw files and configuration (as if at three places)."""
    sections = outputs_and_mcid(folder / "processed", folder / "reports")
    sections += f"[federation]\n{DEMO_SCHEDULE}\n"
    configs = split_by_site(DEMO_INPUTS["patients"].parent, folder, sections)
    assert sorted(configs) == list(SITES)
    return configs


def _in_process(*args: object) -> SimpleNamespace:
    """Run ``outcomes <args>`` in this process (quicker than a new interpreter)."""
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main([str(a) for a in args])
    return SimpleNamespace(returncode=code, stderr=err.getvalue())


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> tuple[Path, dict[str, Path], Path]:
    folder = tmp_path_factory.mktemp("network")
    configs = _split_demo(folder)
    shares = {}
    for site, config in configs.items():
        shares[site] = folder / f"{site.lower()}.share"
        if site == "Hillview":  # one clinic as a user runs it, the others in this process
            done = outcomes("share", "--config", config, "--out", shares[site])
            assert "patients shared" in done.stdout
        else:
            done = _in_process("share", "--config", config, "--out", shares[site])
        assert done.returncode == 0, done.stderr
    out = folder / "pooled"
    done = outcomes("pool", *shares.values(), "--out", out, "--two-stage")
    assert done.returncode == 0, done.stderr
    return folder, shares, out


def test_pool_writes_tables_and_report_equal_to_the_api(network):
    _, shares, out = network
    for name in ("fixed_effects", "variance_components", "estimands", "meta_analysis"):
        assert (out / f"pooled_{name}.csv").exists()
    html = (out / "pooled.html").read_text(encoding="utf-8")
    assert "nominal time of each visit" in html and "visit 3 = week 8" in html
    assert "Two-stage meta-analysis" in html and "data:image/png;base64" in html
    assert "Disclosure rule" in html
    again = api.pool(list(shares.values()), two_stage=True)
    written = pd.read_csv(out / "pooled_estimands.csv")
    np.testing.assert_allclose(
        written["estimate"], again.tables["estimands"]["estimate"], rtol=1e-12
    )
    assert set(again.tables["meta_analysis"]["k"]) == {3}


def test_pool_refuses_a_file_built_for_another_model(network):
    folder, shares, _ = network
    share = json.loads(shares["Hillview"].read_text(encoding="utf-8"))
    share["specification"]["covariates"] = ["chronicity", "age"]
    share["specification_hash"] = "0" * 64
    odd = folder / "odd.share"
    odd.write_text(json.dumps(share), encoding="utf-8")
    done = _in_process("pool", shares["Northside"], odd, "--out", folder / "x")
    assert_one_sentence_error(done, "odd.share", "covariates")


def test_pool_refuses_another_pipeline_version(network):
    folder, shares, _ = network
    share = json.loads(shares["Riverside"].read_text(encoding="utf-8"))
    share["pipeline_version"] = "0.0.1"
    old = folder / "old.share"
    old.write_text(json.dumps(share), encoding="utf-8")
    done = _in_process("pool", shares["Northside"], old, "--out", folder / "y")
    assert_one_sentence_error(done, "old.share", "version 0.0.1")


def test_pool_refuses_a_clinic_shared_twice_and_a_broken_file(network):
    folder, shares, _ = network
    done = _in_process("pool", shares["Northside"], shares["Northside"], "--out", folder / "z")
    assert_one_sentence_error(done, "Northside", "shared once")
    broken = folder / "broken.share"
    broken.write_text("{not json", encoding="utf-8")
    assert_one_sentence_error(_in_process("pool", broken, "--out", folder / "w"), "broken.share")


def test_share_needs_a_schedule(tmp_path):
    config = write_config(tmp_path, DEMO_INPUTS)
    done = _in_process("share", "--config", config, "--out", tmp_path / "a.share")
    assert_one_sentence_error(done, "[federation] schedule")
