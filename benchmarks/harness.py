"""Shared pieces of the benchmarks: simulated studies, configurations, memory, result files.

The benchmarks are scripts (``python benchmarks/<name>.py``), not tests: they time things and
write what they measured to ``reports/benchmarks/``; nothing here asserts a time.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import outputs
from pipeline.config import Config, load_config
from pipeline.derive import analysis_dataset
from pipeline.ingest import read_raw_tables
from pipeline.simulate import simulate_study, write_raw_tables
from pipeline.validate import validate_study

ROOT = Path(__file__).resolve().parents[1]
TABLE_NAMES = ("patients", "sessions", "assessments")
DEFAULT_WORK = ROOT / "data" / "processed" / "benchmarks"
DEFAULT_OUT = ROOT / "reports" / "benchmarks"


def simulated_study(n_patients: int, seed: int, work: Path) -> Path:
    """Write the simulator's canonical CSVs for ``n_patients`` once; return their folder.

    Parameters
    ----------
    n_patients : int
        Patients to simulate.
    seed : int
        Simulator seed.
    work : Path
        Scratch folder; the study goes to ``<work>/study-<n>-<seed>/``.

    Returns
    -------
    Path
        Folder holding ``patients.csv``, ``sessions.csv`` and ``assessments.csv``.
    """
    folder = work / f"study-{n_patients}-{seed}"
    if not all((folder / f"{name}.csv").exists() for name in TABLE_NAMES):
        write_raw_tables(simulate_study(n_patients, seed), folder)
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


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of a process and all its descendants (Linux ``/proc``), in bytes."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * page
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


@dataclass(frozen=True)
class ChildRun:
    """What :func:`run_child` measured.

    Attributes
    ----------
    seconds : float
        Wall-clock time of the command.
    peak_tree_mb : float
        Highest sum of resident memory of the command and its descendants (sampled every
        0.2 s; NaN where ``/proc`` is not available).
    returncode : int
        Exit code.
    stderr_tail : str
        Last lines of the command's standard error.
    """

    seconds: float
    peak_tree_mb: float
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
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()
    measurable = Path("/proc/self/stat").exists()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_bytes(proc.pid))
            done.wait(0.2)

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
    return ChildRun(
        seconds=seconds,
        peak_tree_mb=peak[0] / 2**20 if measurable else float("nan"),
        returncode=returncode,
        stderr_tail="".join(lines[-5:]),
    )


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
