"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytest

LMER_SCRIPT = Path(__file__).parent / "r" / "lmer_fit.R"


def _r_problem() -> str | None:
    """Why the live R comparison cannot run here, or None when Rscript and lmerTest work."""
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    probe = subprocess.run(
        ["Rscript", "-e", "suppressPackageStartupMessages(library(lmerTest))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"R package lmerTest does not load ({probe.stderr.strip()[-200:]})"
    return None


@pytest.fixture(scope="session")
def lmer_r(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., pd.DataFrame]:
    """Fit a model with R's lme4 + lmerTest through ``tests/r/lmer_fit.R``.

    Returns ``run(csv, formula, reml, *, tight=True, relevel=None, contrasts=None)``, giving
    the script's ``kind, name, value`` table. Skips when Rscript or lmerTest is missing, but
    fails instead when the environment variable ``CI`` is set.
    """
    problem = _r_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the live R comparison must run: {problem}")
        pytest.skip(f"live R comparison skipped: {problem}")
    out_dir = tmp_path_factory.mktemp("lmer_r")

    def run(
        csv: Path,
        formula: str,
        reml: bool,
        *,
        tight: bool = True,
        relevel: Mapping[str, str] | None = None,
        contrasts: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        out = out_dir / f"result_{len(list(out_dir.iterdir()))}.csv"
        args = ["Rscript", str(LMER_SCRIPT), str(csv), formula, str(reml).upper(), str(out)]
        if tight:
            args.append("--tight")
        if contrasts is not None:
            cfile = out.with_suffix(".contrasts.csv")
            contrasts.to_csv(cfile, index=False)
            args.append(f"--contrasts={cfile}")
        extra: Sequence[str] = [f"{k}={v}" for k, v in (relevel or {}).items()]
        done = subprocess.run([*args, *extra], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"lmer_fit.R failed:\n{done.stderr}")
        return pd.read_csv(out, dtype={"value": str}, keep_default_na=False)

    return run
