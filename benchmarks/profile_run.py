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

Usage::

    python benchmarks/profile_run.py --config <analysis.toml> [--timers] [--top 30] [--out FILE]

The configuration should point at a study (``benchmarks/harness.py``'s ``write_config``);
``workers`` and ``pdf`` are overridden here.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from pipeline import runner  # noqa: E402
from pipeline.analyses import run as analyses_run  # noqa: E402
from pipeline.config.settings import load_config  # noqa: E402

#: Stage -> (module file suffix, function name) whose cumulative CPU is the stage's.
STAGES = {
    "ingest + validate + processed files": ("pipeline/runner.py", "_validate_inputs"),
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
    "ingest + validate + processed files": (runner, "_validate_inputs"),
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


def run_timed(config) -> list[str]:  # type: ignore[no-untyped-def]
    """Run with a timer around every stage; return the breakdown as text lines."""
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
    own2, children2, own_sys2, children_sys2 = _cpu()
    lines = [
        f"outcomes run --refit in-process, workers = {config.engine.workers or 'one per core'}, "
        f"no PDF: wall {time.perf_counter() - wall:.1f} s, CPU {own2 - own:.1f} s "
        f"(system {own_sys2 - own_sys:.1f} s) + workers {children2 - children:.1f} s "
        f"(system {children_sys2 - children_sys:.1f} s), load {os.getloadavg()[0]:.2f} at the end",
        "",
        "stage | wall s | CPU s | of which system s | workers' CPU s | of which system s | "
        "run's resident MB after it | run's peak MB so far",
    ]
    for label, (w, c, k, cs, ks) in spent.items():
        now, peak = memory[label]
        lines.append(
            f"{label} | {w:.2f} | {c:.2f} | {cs:.2f} | {k:.2f} | {ks:.2f} | {now:,.0f} | "
            f"{peak:,.0f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Profile one run; print the per-stage breakdown and the top functions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--timers", action="store_true", help="time stages, no profiler")
    parser.add_argument("--out", type=Path, default=None, help="also write the text here")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    config = dataclasses.replace(config, report=dataclasses.replace(config.report, pdf=False))
    if args.timers:
        text = "\n".join(run_timed(config))
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
