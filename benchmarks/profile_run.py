"""Where ``outcomes run --refit`` spends its CPU: per stage, per analysis family, with counts.

Two modes. By default the pipeline runs in this process (``[engine] workers = 1``, no PDF)
under :mod:`cProfile` with the process CPU clock as timer, so the figures are the work done
whatever else runs on the machine (the profiler's own overhead inflates Python-heavy code such
as matplotlib's layout more than numpy-heavy code). With ``--timers`` nothing is profiled: each
stage's function is wrapped by a timer of wall time, this process's CPU time and its reaped
children's CPU time (the forked model workers and the ``[estimand]`` block's process, which
runs beside the fits: its stage is then the main process's wait for it), and the
configuration's ``workers`` is kept, which is what ``outcomes run --refit`` (no PDF) does.

Reported per stage (cumulative CPU seconds of the stage's function): ingest +
validate + writing the processed tables, derive, planning (building every model's rows),
fitting (per analysis family, from the CPU clock around each fit), the responder, adverse
event, clinic and descriptive tables, the ``[estimand]`` block and the report. Also
counted: criterion evaluations (REML/ML criterion with gradient), Newton steps, model-data
preparations and the passes over the data behind them, as calls of the engine's functions.

With ``--timers --repeat N`` the timed run is made N times, each in a fresh Python (imports,
memory and caches as a user's run finds them), and ``--out`` names a folder that receives
``profile.csv`` (every run's stages) and ``profile.md`` (per stage, the median of the runs, with
the commit, the machine and its load): this is what ``make bench`` keeps in
``reports/benchmarks/``.

Usage::

    python benchmarks/profile_run.py (--config <analysis.toml> | --patients N) [--timers]
        [--repeat N] [--top 30] [--out FILE or FOLDER]

The configuration should point at a study (``benchmarks/harness.py``'s ``write_config``);
``--patients`` simulates one as ``benchmarks/end_to_end.py`` does (dense schedule, seed 7) and
writes its configuration beside it. ``workers`` and ``pdf`` are overridden here.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from pipeline import runner  # noqa: E402
from pipeline.analyses import run as analyses_run  # noqa: E402
from pipeline.config.settings import load_config  # noqa: E402
from pipeline.errors import UserError  # noqa: E402

sys.path.append(str(HERE))  # after the pipeline: only for the benchmarks' own harness
import pandas as pd  # noqa: E402
from harness import (  # noqa: E402
    DEFAULT_OUT,
    DEFAULT_WORK,
    commit,
    machine,
    markdown_table,
    simulated_study,
    write_config,
    write_results,
)

#: Stage -> (module file suffix, function name) whose cumulative CPU is the stage's.
STAGES = {
    "ingest + validate + processed files": ("pipeline/processed.py", "write_processed"),
    "derive": ("pipeline/derive/dataset.py", "analysis_dataset"),
    "plans (model rows)": ("pipeline/analyses/run.py", "study_plans"),
    "fits (all)": ("pipeline/analyses/run.py", "run_analyses"),
    "combine": ("pipeline/analyses/run.py", "combine"),
    "responders": ("pipeline/describe/responders.py", "responders_by_instrument"),
    "adverse event tables": ("pipeline/describe/safety.py", "adverse_event_rates"),
    "clinic tables": ("pipeline/describe/clinic.py", "clinic_tables"),
    "descriptive tables": ("pipeline/describe/summaries.py", "descriptive_tables"),
    "estimand (missing data)": ("pipeline/analyses/missing_data.py", "missing_data_analysis"),
    "report (render)": ("pipeline/runner.py", "render_report"),
    "report (write)": ("pipeline/runner.py", "write_report"),
}
#: Counted engine calls: label -> (module file suffix, function name).
COUNTS = {
    "criterion + gradient evaluations": ("pipeline/lmm/deviance.py", "criterion_and_gradient"),
    "criterion only evaluations": ("pipeline/lmm/deviance.py", "profiled_deviance"),
    "derivative assemblies (all)": ("pipeline/lmm/deviance.py", "derivatives"),
    "Newton refinements": ("pipeline/lmm/optim.py", "newton_refine"),
    "fit_lmm calls": ("pipeline/lmm/fit.py", "fit_lmm"),
    "prepare_data calls": ("pipeline/lmm/data.py", "prepare_data"),
    "GroupedCrossproducts built": ("pipeline/lmm/deviance.py", "__init__"),
}


def _find(stats: pstats.Stats, suffix: str, name: str) -> tuple[int, float]:
    """Return calls and cumulative seconds of every function ``name`` in files ending ``suffix``."""
    calls, seconds = 0, 0.0
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (path, _, func), (_, ncalls, _, cumulative, _) in entries:
        if func == name and path.endswith(suffix):
            calls += ncalls
            seconds += cumulative
    return calls, seconds


#: Stage -> (object holding the function as seen by the runner, attribute name).
TIMED = {
    "ingest + validate + processed files": (runner, "write_processed"),
    "derive": (runner.derive, "analysis_dataset"),
    "plans (model rows)": (runner, "study_plans"),
    "fits (all; workers' CPU as children)": (runner, "run_analyses"),
    "combine": (runner, "combine"),
    "responders": (runner.responders, "responders_by_instrument"),
    "adverse event tables": (runner.safety, "adverse_event_rates"),
    "clinic tables": (runner.clinic, "clinic_tables"),
    "descriptive tables": (runner.summaries, "descriptive_tables"),
    "estimand (missing data), when run after the fits": (runner, "missing_data_analysis"),
    "estimand: waiting for its own process (started before the fits)": (
        runner.Alongside,
        "result",
    ),
    "report (render, no PDF)": (runner, "render_report"),
    "report (write)": (runner, "write_report"),
}


def _cpu() -> tuple[float, float, float, float]:
    """CPU seconds of this process and of its reaped children, then their system parts.

    User + system seconds; the system part is the kernel's work (mostly zeroing and copying
    pages of fresh memory).
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        own.ru_utime + own.ru_stime,
        children.ru_utime + children.ru_stime,
        own.ru_stime,
        children.ru_stime,
    )


def _memory_mb() -> tuple[float, float]:
    """Return the resident memory of this process now and its peak so far, in MB (Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (KB on Linux)
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan"), float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20, peak


def run_timed(config) -> dict:  # type: ignore[no-untyped-def]
    """Run with a timer around every stage; return the whole run's and each stage's figures.

    Returns
    -------
    dict
        ``whole``: wall, CPU, system, workers' CPU and system seconds and the load at the end;
        ``stages``: per stage (in the order they ran) the same five times and the run's
        resident memory after it and its peak so far, in MB.
    """
    spent: dict[str, list[float]] = {}
    memory: dict[str, tuple[float, float]] = {}

    def wrap(label, function):  # type: ignore[no-untyped-def]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            wall, before_cpu = time.perf_counter(), _cpu()
            try:
                return function(*args, **kwargs)
            finally:
                after_cpu = _cpu()
                took = [time.perf_counter() - wall]
                took += [b - a for a, b in zip(before_cpu, after_cpu, strict=True)]
                # a stage called more than once (responders: once per comparison) adds up
                before = spent.get(label, [0.0] * 5)
                spent[label] = [a + b for a, b in zip(before, took, strict=True)]
                memory[label] = _memory_mb()

        return timed

    saved = {label: getattr(holder, name) for label, (holder, name) in TIMED.items()}
    for label, (holder, name) in TIMED.items():
        setattr(holder, name, wrap(label, saved[label]))
    wall, (own, children, own_sys, children_sys) = time.perf_counter(), _cpu()
    try:
        runner.run(config, refit=True)
    finally:
        for label, (holder, name) in TIMED.items():
            setattr(holder, name, saved[label])
    wall = time.perf_counter() - wall
    own2, children2, own_sys2, children_sys2 = _cpu()
    whole = {
        "wall_s": wall,
        "cpu_s": own2 - own,
        "system_s": own_sys2 - own_sys,
        "workers_cpu_s": children2 - children,
        "workers_system_s": children_sys2 - children_sys,
        "load": os.getloadavg()[0],
        "workers": config.engine.workers or "one per core",
    }
    stages = []
    for label, (w, c, k, cs, ks) in spent.items():
        now, peak = memory[label]
        stages.append(
            {
                "stage": label,
                "wall_s": w,
                "cpu_s": c,
                "system_s": cs,
                "workers_cpu_s": k,
                "workers_system_s": ks,
                "resident_mb": now,
                "peak_mb": peak,
            }
        )
    return {"whole": whole, "stages": stages}


def timed_lines(result: dict) -> list[str]:
    """Return one timed run (:func:`run_timed`) as text lines."""
    w = result["whole"]
    lines = [
        f"outcomes run --refit in-process, workers = {w['workers']}, no PDF: wall "
        f"{w['wall_s']:.1f} s, CPU {w['cpu_s']:.1f} s (system {w['system_s']:.1f} s) + workers "
        f"{w['workers_cpu_s']:.1f} s (system {w['workers_system_s']:.1f} s), load "
        f"{w['load']:.2f} at the end",
        "",
        "stage | wall s | CPU s | of which system s | workers' CPU s | of which system s | "
        "run's resident MB after it | run's peak MB so far",
    ]
    for st in result["stages"]:
        lines.append(
            f"{st['stage']} | {st['wall_s']:.2f} | {st['cpu_s']:.2f} | {st['system_s']:.2f} | "
            f"{st['workers_cpu_s']:.2f} | {st['workers_system_s']:.2f} | "
            f"{st['resident_mb']:,.0f} | {st['peak_mb']:,.0f}"
        )
    return lines


#: The columns of ``profile.md``'s per-stage table: figure -> heading.
STAGE_COLUMNS = {
    "wall_s": "wall s",
    "cpu_s": "run's CPU s",
    "system_s": "run's system s",
    "workers_cpu_s": "workers' CPU s",
    "workers_system_s": "workers' system s",
    "resident_mb": "run's resident MB after it",
    "peak_mb": "run's peak MB so far",
}


def repeated(config_path: Path, repeat: int) -> list[dict]:
    """Make ``repeat`` timed runs, each in a fresh Python; return what each gave."""
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(1, repeat + 1):
            out = Path(scratch) / f"run-{attempt}.json"
            command = [sys.executable, __file__, "--config", str(config_path), "--timers"]
            done = subprocess.run([*command, "--json", str(out)], check=False)
            if done.returncode != 0:
                raise UserError(
                    f"timed run {attempt} of {repeat} ended with exit code {done.returncode} "
                    "(its messages are above)"
                )
            results.append(json.loads(out.read_text(encoding="utf-8")))
            whole = results[-1]["whole"]
            print(
                f"  run {attempt}/{repeat}: wall {whole['wall_s']:.1f} s, load {whole['load']:.2f}",
                file=sys.stderr,
            )
    return results


def stage_summary(results: list[dict], study: str, measured: str) -> tuple[pd.DataFrame, str]:
    """Return every run's stages as one frame and the Markdown of their per-stage medians.

    Parameters
    ----------
    results : list of dict
        The runs (:func:`run_timed`).
    study : str
        What was run, in words (the study and its size).
    measured : str
        The commit measured.

    Returns
    -------
    (pandas.DataFrame, str)
        One row per run and stage (``stage == "whole run"`` for the run), and the summary.
    """
    rows = []
    for attempt, result in enumerate(results, start=1):
        whole = {k: v for k, v in result["whole"].items() if k in STAGE_COLUMNS}
        rows.append({"run": attempt, "stage": "whole run", **whole})
        rows += [{"run": attempt, **st} for st in result["stages"]]
    frame = pd.DataFrame(rows)
    frame["commit"] = measured
    order = list(dict.fromkeys(frame["stage"]))
    medians = (
        frame.groupby("stage", sort=False)[list(STAGE_COLUMNS)].median().reindex(order)
    ).reset_index()
    medians = medians.rename(columns={"stage": "stage (median of the runs)", **STAGE_COLUMNS})
    walls = [r["whole"]["wall_s"] for r in results]
    loads = [r["whole"]["load"] for r in results]
    workers = results[0]["whole"]["workers"]
    text = "\n".join(
        [
            "# Where `outcomes run --refit` spends its time, stage by stage",
            "",
            f"Machine: {machine()}. {study}. Code: commit {measured}. "
            f"{len(results)} runs of `benchmarks/profile_run.py --timers`, each in a fresh "
            f"Python: `outcomes run --refit` in process, `[engine] workers` = {workers}, PDF off, "
            "with a timer around every stage (wall time, this process's CPU and the CPU of the "
            "worker processes it reaped during the stage: the forked model workers, the "
            "`[estimand]` block's own process, which starts before the fits and runs beside "
            "them, so that its stage is the run's wait for it, and the helpers of the clinic "
            "tables and the report). `system` is the kernel's share of the CPU (mostly giving "
            "the processes fresh memory). Memory: the run's own process (resident set after the "
            "stage, and its peak so far), not its workers. Each figure is the median over the "
            "runs; a stage's figures need not add up to the whole run's.",
            "",
            f"Whole run: wall {statistics.median(walls):.1f} s (runs {min(walls):.1f}-"
            f"{max(walls):.1f} s); 1-minute load at the end of each run "
            f"{min(loads):.2f}-{max(loads):.2f} (2 cores: above 2, other work competed).",
            "",
            markdown_table(medians),
            "",
        ]
    )
    return frame, text


def main(argv: list[str] | None = None) -> int:
    """Profile one run; print the per-stage breakdown and the top functions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path)
    where.add_argument("--patients", type=int, help="simulate a dense-schedule study this size")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--timers", action="store_true", help="time stages, no profiler")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs, each a fresh Python")
    parser.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="also write the text here")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if args.repeat > 1 and not args.timers:
        parser.error("--repeat needs --timers")
    try:
        return _profile(args)
    except UserError as error:
        print(f"profile_run.py: {error}", file=sys.stderr)
        return 2


def _profile(args: argparse.Namespace) -> int:
    """Run what the parsed command line asks for (:func:`main`)."""
    config_path, study = args.config, f"The study of `{args.config}`"
    if args.patients is not None:
        folder = simulated_study(args.patients, 7, DEFAULT_WORK, "dense")
        scratch = DEFAULT_WORK / folder.name.replace("study-", "pipeline-")
        config_path = write_config(folder, scratch)
        study = (
            f"The simulated study of `benchmarks/end_to_end.py`: {args.patients:,} patients, "
            "dense schedule, seed 7"
        )
    if args.repeat > 1:
        measured = commit()
        frame, text = stage_summary(repeated(config_path, args.repeat), study, measured)
        print(text)
        write_results(args.out or DEFAULT_OUT, "profile", frame, text)
        return 0
    config = load_config(config_path)
    config = dataclasses.replace(config, report=dataclasses.replace(config.report, pdf=False))
    if args.timers:
        result = run_timed(config)
        if args.json is not None:
            args.json.write_text(json.dumps(result), encoding="utf-8")
        text = "\n".join(timed_lines(result))
        print(text)
        if args.out is not None:
            args.out.write_text(text + "\n", encoding="utf-8")
        return 0
    config = dataclasses.replace(config, engine=dataclasses.replace(config.engine, workers=1))
    family_cpu: dict[str, float] = defaultdict(float)
    family_n: dict[str, int] = defaultdict(int)
    fit_job = analyses_run._fit_job

    def timed_job(job):  # type: ignore[no-untyped-def]
        start = time.process_time()
        try:
            return fit_job(job)
        finally:
            plan = job[0]
            kind = plan.identity.kind.value if plan.identity is not None else plan.analysis
            family_cpu[kind] += time.process_time() - start
            family_n[kind] += 1

    analyses_run._fit_job = timed_job
    profiler = cProfile.Profile(time.process_time)
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    runner.run(config, refit=True)
    profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = pstats.Stats(profiler)
    if args.out is not None:
        stats.dump_stats(args.out.with_suffix(".pstats"))
    lines = [
        f"outcomes run --refit, one process, no PDF: wall {wall:.1f} s, CPU {cpu:.1f} s, "
        f"load {os.getloadavg()[0]:.2f} at the end",
        "",
        "stage | CPU s (cumulative, profiled)",
    ]
    for label, (suffix, name) in STAGES.items():
        lines.append(f"{label} | {_find(stats, suffix, name)[1]:.2f}")
    lines += ["", "analysis family | fits | CPU s"]
    for kind in sorted(family_cpu, key=family_cpu.get, reverse=True):
        lines.append(f"{kind} | {family_n[kind]} | {family_cpu[kind]:.2f}")
    lines += ["", "engine call | calls | CPU s (cumulative)"]
    for label, (suffix, name) in COUNTS.items():
        calls, seconds = _find(stats, suffix, name)
        lines.append(f"{label} | {calls} | {seconds:.2f}")
    text = "\n".join(lines)
    print(text)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
