"""Shared pieces of the benchmarks: simulated studies, configurations, memory, result files.

The benchmarks are scripts (``python benchmarks/<name>.py``), not tests: they time things and
write what they measured to ``reports/benchmarks/``; nothing here asserts a time.
"""

from __future__ import annotations

import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import outputs
from pipeline.config.settings import Config, load_config
from pipeline.demo.simulate import DENSE_VISIT_WEEKS, simulate_study, write_raw_tables
from pipeline.derive.dataset import analysis_dataset
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.validate.study import validate_study

ROOT = Path(__file__).resolve().parents[1]
TABLE_NAMES = ("patients", "sessions", "assessments")
DEFAULT_WORK = ROOT / "data" / "processed" / "benchmarks"
DEFAULT_OUT = ROOT / "reports" / "benchmarks"
#: Visit schedules a benchmark can simulate (name -> visit -> week; None: the simulator's
#: default, visits 0-4 at weeks 0, 2, 4, 8, 12, about 4.2 assessments per patient).
SCHEDULES: dict[str, Mapping[int, int] | None] = {
    "default": None,
    "dense": DENSE_VISIT_WEEKS,  # visits 0-8 over the same 12 weeks, about 6.2 per patient
}


def simulated_study(n_patients: int, seed: int, work: Path, schedule: str = "default") -> Path:
    """Write the simulator's canonical CSVs for ``n_patients`` once; return their folder.

    Parameters
    ----------
    n_patients : int
        Patients to simulate.
    seed : int
        Simulator seed.
    work : Path
        Scratch folder; the study goes to ``<work>/study-<n>-<seed>/`` (default schedule)
        or ``<work>/study-<n>-<seed>-<schedule>/``.
    schedule : str, default "default"
        Visit schedule, a key of :data:`SCHEDULES`.

    Returns
    -------
    Path
        Folder holding ``patients.csv``, ``sessions.csv`` and ``assessments.csv``.
    """
    visit_weeks = SCHEDULES[schedule]
    suffix = "" if visit_weeks is None else f"-{schedule}"
    folder = work / f"study-{n_patients}-{seed}{suffix}"
    if not all((folder / f"{name}.csv").exists() for name in TABLE_NAMES):
        tables = simulate_study(n_patients, seed, visit_weeks=visit_weeks)
        write_raw_tables(tables, folder)
    return folder


def write_config(study: Path, outputs_dir: Path) -> Path:
    """Copy the project's ``analysis.toml`` with its inputs and outputs pointed elsewhere.

    Parameters
    ----------
    study : Path
        Folder of the three canonical CSVs.
    outputs_dir : Path
        Folder that receives ``processed/`` and ``reports/``.

    Returns
    -------
    Path
        The configuration written, ``<outputs_dir>/analysis.toml``.
    """
    text = (ROOT / "analysis.toml").read_text(encoding="utf-8")
    for name in TABLE_NAMES:
        text = re.sub(
            rf'(?m)^{name}\s*=\s*"[^"]*"', f'{name} = "{study / f"{name}.csv"}"', text, count=1
        )
    text = re.sub(
        r'(?m)^processed\s*=\s*"[^"]*"', f'processed = "{outputs_dir / "processed"}"', text
    )
    text = re.sub(r'(?m)^reports\s*=\s*"[^"]*"', f'reports = "{outputs_dir / "reports"}"', text)
    outputs_dir.mkdir(parents=True, exist_ok=True)
    path = outputs_dir / "analysis.toml"
    path.write_text(text, encoding="utf-8")
    return path


def analysis_data(study: Path, scratch: Path) -> tuple[pd.DataFrame, Config]:
    """Ingest, validate and derive a study as ``outcomes run`` does (no files written).

    Parameters
    ----------
    study : Path
        Folder of the three canonical CSVs.
    scratch : Path
        Folder for the configuration file.

    Returns
    -------
    tuple
        The analysis data set and the configuration.
    """
    config = load_config(write_config(study, scratch))
    validation = validate_study(read_raw_tables(config.inputs.as_dict()))
    data = analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    return data, config


def _memory_kb(pid: int) -> tuple[int, int]:
    """Resident and proportional set size of one process in kB (``smaps_rollup``)."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _tree_memory_bytes(root: int) -> tuple[int, int, int]:
    """Memory of a process and its descendants (Linux ``/proc``).

    Returns
    -------
    tuple of int
        ``(rss, pss, largest)`` in bytes: resident and proportional set size summed over the
        tree, and the resident set size of its largest process. RSS counts a page shared by
        forked workers once per process; PSS divides it between them (their sum is what the
        tree really occupies).
    """
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
    rss = pss = largest = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        r, p = _memory_kb(pid)
        rss, pss, largest = rss + r, pss + p, max(largest, r)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return rss * 1024, pss * 1024, largest * 1024


SAMPLE_SECONDS = 0.2
"""Shortest pause between two samples of a measured process tree's memory."""


@dataclass(frozen=True)
class ChildRun:
    """What :func:`run_child` measured.

    Attributes
    ----------
    seconds : float
        Wall-clock time of the command.
    cpu_seconds : float
        User + system CPU time of the command and every descendant it waited for.
    peak_pss_mb : float
        Highest proportional set size summed over the command and its descendants (sampled
        every 0.2 s, or ten times as long as a sample takes): the memory the tree really
        occupies, pages shared between forked workers counted once. NaN where ``/proc`` is
        not available.
    peak_rss_mb : float
        Highest resident set size summed the same way: shared pages counted in every process
        (an upper bound).
    largest_process_mb : float
        Highest resident set size of a single process of the tree.
    load_average : float
        The machine's 1-minute load average when the command ended (other work on the
        machine slows the command down).
    returncode : int
        Exit code.
    stderr_tail : str
        Last lines of the command's standard error.
    """

    seconds: float
    cpu_seconds: float
    peak_pss_mb: float
    peak_rss_mb: float
    largest_process_mb: float
    load_average: float
    returncode: int
    stderr_tail: str


def run_child(command: list[str], echo_stderr: bool = True) -> ChildRun:
    """Run a command, timing it and sampling the memory of its process tree.

    Parameters
    ----------
    command : list of str
        Program and arguments.
    echo_stderr : bool, default True
        Copy the command's standard error to ours as it comes (progress lines).

    Returns
    -------
    ChildRun
        Time, peak memory of the process tree and exit code.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0, 0, 0]
    done = threading.Event()
    measurable = Path("/proc/self/smaps_rollup").exists()

    def sample() -> None:
        # Reading smaps_rollup walks a process's page tables: at 100,000 patients one sample
        # of the tree took 160 ms on average (up to 0.4 s), so sampling every 0.2 s kept a
        # core about half busy and slowed the run it measured. The pause is ten times the
        # last sample's cost (at least 0.2 s): the sampler takes at most a tenth of a core.
        while not done.is_set():
            started = time.perf_counter()
            for k, value in enumerate(_tree_memory_bytes(proc.pid)):
                peak[k] = max(peak[k], value)
            done.wait(max(SAMPLE_SECONDS, 10.0 * (time.perf_counter() - started)))

    sampler = threading.Thread(target=sample, daemon=True)
    if measurable:
        sampler.start()
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if echo_stderr:
            print("    " + line.rstrip(), flush=True)
    returncode = proc.wait()
    seconds = time.perf_counter() - started
    done.set()
    if measurable:
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    nan = float("nan")
    return ChildRun(
        seconds=seconds,
        cpu_seconds=cpu,
        peak_pss_mb=peak[1] / 2**20 if measurable else nan,
        peak_rss_mb=peak[0] / 2**20 if measurable else nan,
        largest_process_mb=peak[2] / 2**20 if measurable else nan,
        load_average=os.getloadavg()[0],
        returncode=returncode,
        stderr_tail="".join(lines[-5:]),
    )


#: The paths whose changes make a measurement ``+changes``.
MEASURED = ("pipeline", "benchmarks", "pyproject.toml", "analysis.toml", "requirements.lock")


def combine_runs(runs: list[dict], medians: Iterable[str], highest: Iterable[str] = ()) -> dict:
    """Combine the runs of one measurement into the row a benchmark publishes.

    Parameters
    ----------
    runs : list of dict
        One row per run of the same measurement (same keys).
    medians : iterable of str
        Keys whose value is the median of the runs (times).
    highest : iterable of str
        Keys whose value is the highest of the runs, missing values ignored (peak memory,
        load).

    Returns
    -------
    dict
        The last run's row with those keys replaced and ``runs``, the number of runs.
    """
    row = dict(runs[-1])
    for key in medians:
        row[key] = float(statistics.median(float(r[key]) for r in runs))
    for key in highest:
        values = [float(r[key]) for r in runs if not math.isnan(float(r[key]))]
        row[key] = max(values) if values else math.nan
    row["runs"] = len(runs)
    return row


def r_problem(packages: tuple[str, ...]) -> str | None:
    """Why R cannot be benchmarked here, or None when ``Rscript`` loads every package.

    Parameters
    ----------
    packages : tuple of str
        R packages the benchmark's R side needs (``("lme4", "lmerTest")``).

    Returns
    -------
    str or None
        One clause saying what is missing, or None.
    """
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    loads = "; ".join(f"library({p})" for p in packages)
    probe = subprocess.run(
        ["Rscript", "-e", f"suppressPackageStartupMessages({{{loads}}})"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"{', '.join(packages)} do not load: {probe.stderr.strip()[-200:]}"
    return None


def require_r(packages: tuple[str, ...], script: str, skip: str) -> None:
    """Stop with one sentence (exit 1) when R or one of ``packages`` is missing.

    A benchmark whose results compare with R would otherwise overwrite the published
    comparison with a file that holds none.

    Parameters
    ----------
    packages : tuple of str
        R packages the benchmark needs.
    script : str
        The benchmark, as the sentence names it.
    skip : str
        The option that times Python only (``"--skip-r"``).
    """
    problem = r_problem(packages)
    if problem:
        raise SystemExit(
            f"{script}: R cannot be run here ({problem}); install R and its packages as "
            ".ci/run does (Debian: r-base-core r-cran-lme4 r-cran-lmertest r-cran-nlme "
            f"r-cran-glmmtmb ...), or pass {skip} to time Python only."
        )


def commit() -> str:
    """Return the short commit of the code measured, ``+changes`` when the tree is not clean.

    Only what is measured counts (:data:`MEASURED`: the pipeline, the benchmarks, the project's
    configuration and pins): ``make bench`` rewrites its results under ``reports/`` one script
    after another, and an edited README changes nothing measured.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *MEASURED],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def machine() -> str:
    """One line describing the machine: CPU model, cores, memory, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 2**20:.0f} GB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def markdown_table(frame: pd.DataFrame, floats: str = "{:.2f}") -> str:
    """Render a small frame as a GitHub Markdown table.

    Parameters
    ----------
    frame : pandas.DataFrame
        Table to render.
    floats : str
        Format of float cells (NaN is shown as an empty cell).

    Returns
    -------
    str
        The table, one line per row.
    """

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else floats.format(value)
        return str(value)

    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def write_results(out: Path, name: str, table: pd.DataFrame, summary: str) -> list[Path]:
    """Write ``<out>/<name>.csv`` and ``<out>/<name>.md`` atomically.

    Parameters
    ----------
    out : Path
        Results folder (``reports/benchmarks``).
    name : str
        File stem.
    table : pandas.DataFrame
        Every measurement.
    summary : str
        Markdown text of the summary.

    Returns
    -------
    list of Path
        The two files written.
    """
    return [
        outputs.write_csv(out / f"{name}.csv", table),
        outputs.write_text(out / f"{name}.md", summary),
    ]
