"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytest

LMER_SCRIPT = Path(__file__).parent / "r" / "lmer_fit.R"


@pytest.fixture(scope="session", autouse=True)
def cache_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fit cache's HMAC key for the whole session (never the user's own under ~/.config)."""
    path = tmp_path_factory.mktemp("cache-key") / "cache.key"
    old = os.environ.get("NEEDLING_CACHE_KEY_FILE")
    os.environ["NEEDLING_CACHE_KEY_FILE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("NEEDLING_CACHE_KEY_FILE", None)
    else:
        os.environ["NEEDLING_CACHE_KEY_FILE"] = old


EMMEANS_SCRIPT = Path(__file__).parent / "r" / "emmeans_fit.R"
GLS_SCRIPT = Path(__file__).parent / "r" / "gls_plan.R"


def _r_problem(package: str = "lmerTest") -> str | None:
    """Why the live R comparison cannot run here, or None when Rscript and the package work."""
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    probe = subprocess.run(
        ["Rscript", "-e", f"suppressPackageStartupMessages(library({package}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"R package {package} does not load ({probe.stderr.strip()[-200:]})"
    return None


def _require_r(package: str) -> None:
    problem = _r_problem("lmerTest") or _r_problem(package)
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the live R comparison must run: {problem}")
        pytest.skip(f"live R comparison skipped: {problem}")


@pytest.fixture(scope="session")
def gls_r(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., pd.DataFrame]:
    """The plan's MMRM refitted by nlme::gls (unstructured) and emmeans, ``tests/r/gls_plan.R``.

    Returns ``run(csv, formula, factor, visit, subject, *, relevel=None)``, giving the script's
    ``kind, name, value`` table. Skips locally without R, nlme or emmeans; fails when ``CI`` is
    set.
    """
    _require_r("nlme")
    _require_r("emmeans")
    out_dir = tmp_path_factory.mktemp("gls_r")

    def run(
        csv: Path,
        formula: str,
        factor: str,
        visit: str,
        subject: str,
        *,
        relevel: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        out = out_dir / f"result_{len(list(out_dir.iterdir()))}.csv"
        args = ["Rscript", str(GLS_SCRIPT), str(csv), formula, factor, visit, subject, str(out)]
        args += [f"{k}={v}" for k, v in (relevel or {}).items()]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"gls_plan.R failed:\n{done.stderr}")
        return pd.read_csv(out, keep_default_na=False)

    return run


@pytest.fixture(scope="session")
def emmeans_r(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., pd.DataFrame]:
    """Marginal means and contrasts from R's emmeans through ``tests/r/emmeans_fit.R``.

    Returns ``run(csv, formula, factor, time, *, at=None, trend=False, relevel=None)``, giving
    the script's ``kind, level, time, estimate, std_err, df`` table. Skips or fails as
    :func:`lmer_r`.
    """
    _require_r("emmeans")
    out_dir = tmp_path_factory.mktemp("emmeans_r")

    def run(
        csv: Path,
        formula: str,
        factor: str,
        time: str,
        *,
        at: Sequence[float] | None = None,
        trend: bool = False,
        relevel: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        out = out_dir / f"result_{len(list(out_dir.iterdir()))}.csv"
        args = ["Rscript", str(EMMEANS_SCRIPT), str(csv), formula, factor, time, str(out)]
        if at is not None:
            args.append("AT=" + ",".join(repr(float(t)) for t in at))
        if trend:
            args.append("--trend")
        args += [f"{k}={v}" for k, v in (relevel or {}).items()]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"emmeans_fit.R failed:\n{done.stderr}")
        return pd.read_csv(out, dtype={"level": str, "time": str}, keep_default_na=False)

    return run


@pytest.fixture(scope="session")
def lmer_r(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., pd.DataFrame]:
    """Fit a model with R's lme4 + lmerTest through ``tests/r/lmer_fit.R``.

    Returns ``run(csv, formula, reml, *, tight=True, relevel=None, contrasts=None)``, giving
    the script's ``kind, name, value`` table. Skips when Rscript or lmerTest is missing, but
    fails instead when the environment variable ``CI`` is set.
    """
    _require_r("lmerTest")
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


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The analysis data set of the demo study (valid rows of ``data/raw/demo``, derived).

    Shared by the analysis and plan tests; nothing may change the frame.
    """
    from factories import DEMO_INPUTS, write_config

    from pipeline.config.settings import load_config
    from pipeline.derive.dataset import analysis_dataset
    from pipeline.ingest.raw_tables import read_raw_tables
    from pipeline.validate.study import validate_study

    config = load_config(write_config(tmp_path_factory.mktemp("cfg"), DEMO_INPUTS))
    v = validate_study(read_raw_tables(DEMO_INPUTS))
    return analysis_dataset(
        v.valid("patients"), v.valid("sessions"), v.valid("assessments"), config
    )


@pytest.fixture(scope="session")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    """Unbalanced clinic data (150 patients, random slope SD 0.08) and the CSV R reads.

    The engine tests (``test_lmm.py``, ``test_lmm_fast.py``) fit these rows and compare with
    R fitted on the CSV; nothing may change the frame.
    """
    from clinic_models import simulate_clinic, write_and_reload

    path = tmp_path_factory.mktemp("clinic") / "clinic.csv"
    return write_and_reload(simulate_clinic(150, seed=20240611, slope_sd=0.08), path), path


TEST_PSEUDONYM_KEY = "test-only pseudonym key, never for real data"


@pytest.fixture(autouse=True, scope="session")
def pseudonym_key() -> Iterator[str]:
    """Give every test a pseudonym key through the environment (as a real run would).

    Session-scoped, so module fixtures that run the pipeline have it too; tests of the
    missing-key path remove it with ``monkeypatch.delenv``.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEEDLING_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        yield TEST_PSEUDONYM_KEY


def browser_problem() -> str | None:
    """Why headless Chromium cannot run here, or None."""
    from pipeline.report.pdf import find_browser

    if find_browser() is None:
        return "no Chromium browser (chromium, google-chrome) on PATH or in $NEEDLING_BROWSER"
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The headless Chromium executable; skips without one, but fails when ``CI`` is set."""
    from pipeline.report.pdf import find_browser

    problem = browser_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the browser tests must run: {problem}")
        pytest.skip(f"browser test skipped: {problem}")
    return find_browser()


@pytest.fixture()
def pickled_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of what this process pickles for other processes (calls and their arguments).

    Only this process's pickling is seen: a forked worker's copy of the list is its own.
    """
    from multiprocessing.reduction import ForkingPickler

    sizes: list[int] = []
    dumps = ForkingPickler.dumps

    def counting(obj, protocol=None):  # type: ignore[no-untyped-def]
        data = dumps(obj, protocol)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(ForkingPickler, "dumps", counting)
    return sizes
