"""Validation throughput: read and validate one million canonical assessment rows.

Writes a deterministic study in the canonical layout to a temporary folder (1,000,000
assessments: 200,000 patients with five visits each and two needling sessions each), then times
reading and validating all three tables together
(:func:`pipeline.ingest.raw_tables.read_raw_tables` and
:func:`pipeline.validate.study.validate_study`, exactly what ``outcomes validate`` runs for the
``[inputs]`` form), five runs after one uncounted, the layouts taking turns run by run. The
throughput is counted in assessment rows per second of the median run's whole read +
validate, so the patients and sessions come for free. Issue 15's goals: 2,000,000 rows/s for
the canonical files (fast route) and 1,500,000 for a ``[[sources]]`` entry; the latter is shown
for the entry as it is read (these files need no typed translation, so they take the fast
route too: :mod:`pipeline.ingest.adapters.typed_canonical`) and with its text route forced.

Also timed, for what they cost:

* the same study with 1 % of the assessment rows breaking a value rule (NRS 11), which stay on
  the fast route; each such row has other readable scores, so its NRS cell is blanked and the
  row kept (:func:`pipeline.validate.study.blank_score_cells`);
* the text route (:mod:`pipeline.ingest.typed_reader` declines a file with stray spaces, cells
  that do not parse and the like; every cell is then read as text and parsed), forced here on
  the clean files;
* a ``[[sources]]`` canonical entry, which adds the mapping and normalising steps (codes,
  dates, identifiers), as it is read and with its text route forced (every cell read as text,
  normalised and parsed: what an entry that translates its numbers, dates or yes/no answers
  costs).

Side by side, as whole processes (a fresh Python each time: imports included, which is what a
user waits for): a plain pyarrow read of the same three files (``pyarrow.csv.read_csv``, no
types given) and the pipeline's read + validate of them, each the median of three runs, wall
and CPU seconds; the ratio of the two is issue 23's measure (goal: at most 2). The in-process
pyarrow read is timed too, and so is a fresh Python that only imports the pipeline's reading and
validation, so the import cost can be told apart, and one that reads and validates with
pyarrow's own default allocator (mimalloc) instead of the C library's, which the pipeline
chooses (``pipeline/__init__.py``).

And the other layouts a ``[[sources]]`` entry reads by configuration (visit sheet, wide file,
REDCap export, adverse events as flags and as lists): each committed example of
``data/raw/examples/`` with its own configuration, its rows written over and over (every copy
with its own patient identifiers) to about 190,000 assessments, read and validated as
``outcomes validate`` does (:func:`pipeline.ingest.combine.read_sources`, then
:func:`~pipeline.validate.study.validate_study`), five runs after one uncounted, taking turns.
No goal is set for them: they show what building the canonical rows from a clinic's own layout
costs beside the canonical files.

Results: ``reports/benchmarks/ingest.csv`` and ``ingest.md``. Run with ``make bench``.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

# Run as a script, this folder comes first on sys.path, where benchmarks/pipeline.py would
# stand in for the pipeline package.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import pipeline.ingest.adapters.canonical  # noqa: E402
import pipeline.ingest.raw_tables  # noqa: E402
from pipeline import outputs  # noqa: E402
from pipeline.config.settings import load_config  # noqa: E402
from pipeline.config.sources import Source  # noqa: E402
from pipeline.ingest.combine import read_sources  # noqa: E402
from pipeline.ingest.raw_tables import read_raw_tables  # noqa: E402
from pipeline.validate.study import validate_study  # noqa: E402

sys.path.append(str(HERE))  # after the pipeline: only for the benchmarks' own harness
from harness import DEFAULT_OUT, commit  # noqa: E402

ASSESSMENTS = 1_000_000
VISITS = 5
SESSIONS = 2
SEED = 20260101
CANONICAL = "[inputs] canonical CSVs"
BROKEN = "[inputs] canonical, 1 % of assessments with an NRS out of range (blanked)"
TEXT_ROUTE = "[inputs] canonical, text route forced"
SOURCES = "[[sources]] canonical, normalised"
SOURCES_TEXT = "[[sources]] canonical, normalised, text route forced"
PYARROW_READ = "plain pyarrow read (pyarrow.csv.read_csv, in process)"
PYARROW_PROCESS = "plain pyarrow read, whole process"
PIPELINE_PROCESS = "[inputs] canonical read + validate, whole process"
IMPORTS_PROCESS = "the pipeline's reading and validation imported, nothing read, whole process"
MIMALLOC_PROCESS = (
    "[inputs] canonical read + validate, whole process, pyarrow's default allocator (mimalloc)"
)
#: The pipeline makes the C library's allocator pyarrow's default (``pipeline/__init__.py``)
#: unless this variable names another; the row above times pyarrow's own default.
MIMALLOC = {"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
PROCESS_RUNS = 3
IN_PROCESS_RUNS = 5
#: Issue 15's goals, in assessment rows per second (median run): the fast route for canonical
#: files, a ``[[sources]]`` entry (shown as read and with its text route forced).
GOALS = {CANONICAL: 2_000_000, SOURCES: 1_500_000, SOURCES_TEXT: 1_500_000}
#: Issue 23's goal: a whole process reading and validating, against one reading with pyarrow.
PROCESS_GOAL = 2.0
ROOT = HERE.parent
EXAMPLES = ROOT / "data" / "raw" / "examples"
#: The other layouts: example folder, ``{data file: its patient-identifier column}``, and how
#: many copies of its rows make about 190,000 assessments.
OTHER_LAYOUTS = {
    "visit sheet": ("visit_sheet", {"visits.csv": "Patient"}, 3000),
    "wide file": ("wide", {"wide.csv": "patient_id"}, 3000),
    "REDCap export (repeating instruments, checkboxes)": (
        "redcap",
        {"export.csv": "record_id"},
        3000,
    ),
    "adverse events as 0/1 flags and as a German list (two visit sheets)": (
        "ae_flags",
        {"flags.csv": "Patient", "list.csv": "Patient"},
        1500,
    ),
    "one line per score (measurements), beside canonical patients and sessions": (
        "measurements",
        {"patients.csv": "patient_id", "sessions.csv": "patient_id", "scores.csv": "Patient"},
        3000,
    ),
}

#: A fresh Python reading the files with pyarrow alone (the baseline).
PYARROW_CHILD = "import sys, pyarrow.csv as c\nfor p in sys.argv[1:]: c.read_csv(p)"
#: A fresh Python reading and validating them as ``outcomes validate`` does.
PIPELINE_CHILD = (
    "import sys\n"
    "from pathlib import Path\n"
    "from pipeline.ingest.raw_tables import read_raw_tables\n"
    "from pipeline.validate.study import validate_study\n"
    "names = ('patients', 'sessions', 'assessments')\n"
    "v = validate_study(read_raw_tables(dict(zip(names, map(Path, sys.argv[1:])))))\n"
    "assert v.quarantined_rows == 0\n"
)
#: A fresh Python importing what :data:`PIPELINE_CHILD` imports, and reading nothing.
IMPORTS_CHILD = "import pipeline.ingest.raw_tables, pipeline.validate.study"


def child_times(
    code: str, files: list[Path], repeat: int, env: dict[str, str] | None = None
) -> list[tuple[float, float]]:
    """Wall and CPU seconds (user + system) of ``repeat`` fresh Pythons running ``code``.

    ``env`` adds environment variables to the children's.
    """
    env = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, *map(str, files)], check=True, env=env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        times.append((wall, cpu))
    return times


def study(n_assessments: int = ASSESSMENTS, seed: int = SEED) -> dict[str, pa.Table]:
    """Return a valid study in the canonical layout as text tables (deterministic)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    n = n_assessments // VISITS
    ids = np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
    enrol = np.datetime64("2025-01-06") + rng.integers(0, 548, n)

    def iso(days: np.ndarray) -> np.ndarray:
        return np.datetime_as_string(days, unit="D")

    patients = {
        "patient_id": ids,
        "site": rng.choice(np.array(["Northside", "Riverside", "Hillview"]), n),
        "enrolment_date": iso(enrol),
        "age": rng.integers(18, 86, n).astype(str),
        "sex": rng.choice(np.array(["female", "male", "other"]), n, p=[0.51, 0.47, 0.02]),
        "symptom_weeks": np.round(rng.uniform(1, 260, n), 1).astype(str),
        "anticoagulants": rng.choice(np.array(["yes", "no"]), n, p=[0.02, 0.98]),
        "protocol_deviation": rng.choice(np.array(["yes", "no"]), n, p=[0.03, 0.97]),
    }
    number = np.tile(np.arange(1, SESSIONS + 1), n)
    twitch = rng.random(n * SESSIONS) < 0.4
    event = rng.random(n * SESSIONS) < 0.1
    sessions = {
        "patient_id": np.repeat(ids, SESSIONS),
        "session_number": number.astype(str),
        "session_date": iso(np.repeat(enrol, SESSIONS) + 7 * (number - 1)),
        "therapist": rng.choice(np.array(["T01", "T02", "T03", "T04"]), n * SESSIONS),
        "depth": np.repeat(rng.choice(np.array(["superficial", "deep"]), n), SESSIONS),
        "twitch": np.where(twitch, "yes", "no"),
        "ltr_count": np.where(twitch, rng.integers(1, 5, n * SESSIONS), 0).astype(str),
        "needles": rng.integers(1, 8, n * SESSIONS).astype(str),
        "retention_min": np.round(rng.uniform(1, 20, n * SESSIONS), 1).astype(str),
        "adverse_event": np.where(event, "soreness", "none"),
        "ae_severity": np.where(event, "mild", ""),
    }
    visit = np.tile(np.arange(VISITS), n)
    weeks = np.array([0, 2, 4, 8, 12])[visit]
    items = {
        f"odi_q{k}": np.where(rng.random(n * VISITS) < 0.03, "", rng.integers(0, 6, n * VISITS))
        for k in range(1, 11)
    }
    assessments = {
        "patient_id": np.repeat(ids, VISITS),
        "visit": visit.astype(str),
        "assessment_date": iso(np.repeat(enrol, VISITS) + 7 * weeks),
        "nrs": rng.integers(0, 11, n * VISITS).astype(str),
        "vas_mm": np.where(
            rng.random(n * VISITS) < 0.1, "", rng.integers(0, 101, n * VISITS).astype(str)
        ),
        "odi": "",
        **{k: v.astype(str) for k, v in items.items()},
        "odi_version": "2.1a",
    }
    return {
        name: pa.table({k: np.broadcast_to(v, len(t["patient_id"])) for k, v in t.items()})
        for name, t in {
            "patients": patients,
            "sessions": sessions,
            "assessments": assessments,
        }.items()
    }


def with_broken_scores(tables: dict[str, pa.Table], share: float = 0.01) -> dict[str, pa.Table]:
    """Return the tables with ``share`` of the assessment rows given an NRS of 11 (out of range)."""
    assessments = tables["assessments"]
    rows = np.arange(0, assessments.num_rows, round(1 / share))
    nrs = assessments.column("nrs").to_numpy(zero_copy_only=False).astype(object)
    nrs[rows] = "11"
    broken = assessments.set_column(
        assessments.schema.get_field_index("nrs"), "nrs", pa.array(nrs, pa.string())
    )
    return {**tables, "assessments": broken}


def write(tables: dict[str, pa.Table], folder: Path) -> dict[str, Path]:
    """Write the tables as canonical CSVs (quotes only where needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in tables.items():
        paths[name] = folder / f"{name}.csv"
        options = pacsv.WriteOptions(quoting_style="needed")
        pacsv.write_csv(table, paths[name], write_options=options)
    return paths


def scaled_example(example: str, ids: dict[str, str], copies: int, folder: Path) -> Path:
    """Copy an example to ``folder`` with its data files' rows written ``copies`` times.

    Each copy's patient identifiers (``ids``: the identifier column of each data file) get the
    suffix ``-<copy>``, so that every copy is other patients; the rest of the example (its
    configuration, a REDCap data dictionary) is copied as it is. Returns the configuration.
    """
    target = folder / example
    shutil.copytree(EXAMPLES / example, target)
    for name, column in ids.items():
        with (EXAMPLES / example / name).open(newline="", encoding="utf-8") as file:
            delimiter = ";" if ";" in file.readline() else ","
            file.seek(0)
            header, *rows = list(csv.reader(file, delimiter=delimiter))
        at = header.index(column)
        with (target / name).open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, delimiter=delimiter)
            writer.writerow(header)
            for copy in range(copies):
                for row in rows:
                    if row[at]:
                        row = [*row[:at], f"{row[at]}-{copy:05d}", *row[at + 1 :]]
                    writer.writerow(row)
    return target / "analysis.toml"


def timed(runs: dict[str, Callable[[], None]], repeat: int) -> dict[str, list[tuple[float, float]]]:
    """Wall-clock and CPU seconds (this process, all threads) of ``repeat`` calls of each run.

    Each run is called once first, not counted (it pays for what a process does once: the lazy
    imports, pyarrow's thread pools); the whole-process rows show that cost. Then the runs take
    turns, ``repeat`` rounds of one call each, so that a slow spell of a shared machine, or the
    first calls' fresh memory, falls on every layout alike rather than on whichever came first.
    CPU seconds tell the work done even when other processes share the machine.
    """
    for run in runs.values():
        run()
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in runs}
    for _ in range(repeat):
        for label, run in runs.items():
            start, cpu = time.perf_counter(), time.process_time()
            run()
            times[label].append((time.perf_counter() - start, time.process_time() - cpu))
    return times


def _count(value: float | None) -> str:
    """Write a whole number with thousands separators; empty where there is none."""
    return "" if value is None or pd.isna(value) else f"{round(value):,}"


def _goal(rate: float | None, met: bool | None) -> str:
    """Describe a layout's goal and whether its median run reached it."""
    if rate is None or pd.isna(rate):
        return ""
    return f"{int(rate):,}/s: {'met' if met else 'not met'}"


def other_layouts(folder: Path) -> pd.DataFrame:
    """Time reading and validating each of :data:`OTHER_LAYOUTS`, scaled up in ``folder``."""
    configs = {
        label: load_config(scaled_example(example, ids, copies, folder))
        for label, (example, ids, copies) in OTHER_LAYOUTS.items()
    }
    os.sync()
    counts: dict[str, dict[str, int]] = {}

    def run(label: str) -> Callable[[], None]:
        def read_and_validate() -> None:
            config = configs[label]
            raw = read_sources(config.sources)
            validation = validate_study(raw, config.study.ranges())
            files = {f.path: f.rows for table in raw.values() for f in table.files}
            counts[label] = {
                "lines_read": sum(files.values()),
                "assessment_rows": len(raw["assessments"].source_rows),
                "all_rows": sum(len(table.source_rows) for table in raw.values()),
                "quarantined_rows": validation.quarantined_rows,
            }

        return read_and_validate

    times = timed({label: run(label) for label in configs}, IN_PROCESS_RUNS)
    rows = []
    for label, runs in times.items():
        example, _, copies = OTHER_LAYOUTS[label]
        median = statistics.median(wall for wall, _ in runs)
        rows.append(
            {
                "layout": label,
                "route": f"{example}, {copies:,} copies",
                **counts[label],
                "runs": len(runs),
                "median_seconds": round(median, 3),
                "best_seconds": round(min(wall for wall, _ in runs), 3),
                "median_cpu_seconds": round(statistics.median(c for _, c in runs), 3),
                "assessment_rows_per_second": round(counts[label]["assessment_rows"] / median),
                "all_rows_per_second": round(counts[label]["all_rows"] / median),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """Generate, time, print and write the results to ``--out`` (``ingest.csv``, ``ingest.md``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder of ingest.csv and ingest.md"
    )
    out = parser.parse_args(argv).out
    rows = []
    measured = commit()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        folder = Path(tmp)
        tables = study()
        paths = write(tables, folder / "clean")
        broken_paths = write(with_broken_scores(tables), folder / "broken")
        # The files just written are flushed to disk first, so that the kernel's writing them
        # back does not land in the timed runs of the first layouts.
        os.sync()
        sizes = {n: t.num_rows for n, t in tables.items()}
        total = sum(sizes.values())
        routes: dict[str, str] = {}

        def validate(files: dict[str, Path], blanked: int, label: str) -> None:
            raw = read_raw_tables(files)
            validation = validate_study(raw)
            assert validation.quarantined_rows == 0, validation.failures.head()
            assert validation.blanked_cells == blanked, validation.blanked.head()
            routes[label] = ", ".join(
                f"{n} {'typed' if r.typed is not None else 'text'}" for n, r in raw.items()
            )

        def text_route() -> None:
            typed = pipeline.ingest.raw_tables.read_typed
            pipeline.ingest.raw_tables.read_typed = lambda *args: None
            try:
                validate(paths, 0, TEXT_ROUTE)
            finally:
                pipeline.ingest.raw_tables.read_typed = typed

        source = Source(
            number=1,
            kind="canonical",
            config=folder / "analysis.toml",
            files={n: (str(p),) for n, p in paths.items()},
        )

        def mapped(label: str = SOURCES) -> None:
            raw = read_sources((source,))
            validation = validate_study(raw)
            assert validation.quarantined_rows == 0, validation.failures.head()
            routes[label] = ", ".join(
                f"{n} {'typed' if r.typed is not None else 'text'} (mapped)" for n, r in raw.items()
            )

        def mapped_text() -> None:
            typed = pipeline.ingest.adapters.canonical.read_typed_file
            pipeline.ingest.adapters.canonical.read_typed_file = lambda *args: None
            try:
                mapped(SOURCES_TEXT)
            finally:
                pipeline.ingest.adapters.canonical.read_typed_file = typed

        broken = sizes["assessments"] // 100
        files = [paths[name] for name in ("patients", "sessions", "assessments")]
        routes[PYARROW_READ] = routes[PYARROW_PROCESS] = "pyarrow, types inferred"
        routes[PIPELINE_PROCESS] = "as the canonical layout, plus imports"
        routes[IMPORTS_PROCESS] = "imports only (pandas, pandera, pyarrow, the pipeline's modules)"
        routes[MIMALLOC_PROCESS] = "as the canonical layout, plus imports"

        def pyarrow_read() -> None:
            for path in files:
                pacsv.read_csv(path)

        in_process = timed(
            {
                CANONICAL: lambda: validate(paths, 0, CANONICAL),
                BROKEN: lambda: validate(broken_paths, broken, BROKEN),
                TEXT_ROUTE: text_route,
                SOURCES: mapped,
                SOURCES_TEXT: mapped_text,
                PYARROW_READ: pyarrow_read,
            },
            IN_PROCESS_RUNS,
        )
        for layout, repeat in (
            *((label, IN_PROCESS_RUNS) for label in in_process),
            (PYARROW_PROCESS, PROCESS_RUNS),
            (PIPELINE_PROCESS, PROCESS_RUNS),
            (IMPORTS_PROCESS, PROCESS_RUNS),
            (MIMALLOC_PROCESS, PROCESS_RUNS),
        ):
            if layout == PYARROW_PROCESS:
                runs = child_times(PYARROW_CHILD, files, repeat)
            elif layout == PIPELINE_PROCESS:
                runs = child_times(PIPELINE_CHILD, files, repeat)
            elif layout == IMPORTS_PROCESS:
                runs = child_times(IMPORTS_CHILD, [], repeat)
            elif layout == MIMALLOC_PROCESS:
                runs = child_times(PIPELINE_CHILD, files, repeat, env=MIMALLOC)
            else:
                runs = in_process[layout]
            median = statistics.median(wall for wall, _ in runs)
            rate = None if layout == IMPORTS_PROCESS else round(sizes["assessments"] / median)
            goal = GOALS.get(layout)
            rows.append(
                {
                    "layout": layout,
                    "route": routes[layout],
                    "assessment_rows": sizes["assessments"],
                    "all_rows": total,
                    "runs": repeat,
                    "median_seconds": round(median, 3),
                    "best_seconds": round(min(wall for wall, _ in runs), 3),
                    "median_cpu_seconds": round(statistics.median(c for _, c in runs), 3),
                    "assessment_rows_per_second": rate,
                    "all_rows_per_second": None if rate is None else round(total / median),
                    "goal_rows_per_second": goal,
                    "goal_met": None if goal is None else rate >= goal,
                }
            )
        others = other_layouts(folder / "examples")
    result = pd.DataFrame(rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    by = result.set_index("layout")
    ratio_wall = (
        by.loc[PIPELINE_PROCESS, "median_seconds"] / by.loc[PYARROW_PROCESS, "median_seconds"]
    )
    ratio_cpu = (
        by.loc[PIPELINE_PROCESS, "median_cpu_seconds"]
        / by.loc[PYARROW_PROCESS, "median_cpu_seconds"]
    )
    lines = [
        "# Ingest benchmark",
        "",
        f"Read + validate of {sizes['assessments']:,} canonical assessment rows with "
        f"{sizes['patients']:,} patients and {sizes['sessions']:,} sessions "
        f"(`benchmarks/ingest.py`, `make bench`).",
        "",
        "| layout | route per table | runs | median s | best s | median CPU s | "
        "assessment rows/s | all rows/s | goal (issue 15) |",
        "|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {r.layout} | {r.route} | {r.runs} | {r.median_seconds} | {r.best_seconds} | "
            f"{r.median_cpu_seconds} | {_count(r.assessment_rows_per_second)} | "
            f"{_count(r.all_rows_per_second)} | {_goal(r.goal_rows_per_second, r.goal_met)} |"
            for r in result.itertuples(index=False)
        ],
        "",
        f"Whole process (a fresh Python, imports included), median of {PROCESS_RUNS} runs: "
        f"read + validate takes {ratio_wall:.1f}x the wall time and {ratio_cpu:.1f}x the CPU "
        f"time of a plain pyarrow read of the same three files (issue 23's goal: at most "
        f"{PROCESS_GOAL:g}x: {'met' if ratio_wall <= PROCESS_GOAL else 'not met'}). Of its "
        f"{by.loc[PIPELINE_PROCESS, 'median_seconds']:.2f} s, a fresh Python that only imports "
        f"the pipeline's reading and validation takes "
        f"{by.loc[IMPORTS_PROCESS, 'median_seconds']:.2f} s (median of {PROCESS_RUNS}). With "
        f"pyarrow's own default allocator (mimalloc) instead of the C library's, which the "
        f"pipeline chooses, the same fresh Python takes "
        f"{by.loc[MIMALLOC_PROCESS, 'median_seconds']:.2f} s "
        f"({by.loc[MIMALLOC_PROCESS, 'median_cpu_seconds']:.2f} CPU s against "
        f"{by.loc[PIPELINE_PROCESS, 'median_cpu_seconds']:.2f}).",
        "",
        "## Other layouts, by configuration",
        "",
        "Each committed example of `data/raw/examples/` with its own configuration, its rows "
        "written over and over (each copy with its own patient identifiers), read and validated "
        f"as `outcomes validate` does; {IN_PROCESS_RUNS} runs after one uncounted, the layouts "
        "taking turns. No goal is set for these.",
        "",
        "| layout | example | lines read | assessment rows | all rows | rows quarantined | runs "
        "| median s | best s | median CPU s | assessment rows/s | all rows/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {r.layout} | {r.route} | {r.lines_read:,} | {r.assessment_rows:,} | "
            f"{r.all_rows:,} | {r.quarantined_rows:,} | {r.runs} | {r.median_seconds} | "
            f"{r.best_seconds} | {r.median_cpu_seconds} | "
            f"{_count(r.assessment_rows_per_second)} | {_count(r.all_rows_per_second)} |"
            for r in others.itertuples(index=False)
        ],
        "",
        "Rows/s are wall-clock, of the median run (each in-process layout is run once first, "
        "uncounted; then the layouts take turns, one run each per round, so that a slow spell "
        "of the machine falls on all of them alike); CPU s count every thread of this process, "
        "so they "
        "show the work done even when other processes share the machine. Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at the end "
        f"(other work on the machine lengthens the wall times, less the CPU times), commit "
        f"{measured}, "
        f"Python {platform.python_version()}, pandas {pd.__version__}, pyarrow {pa.__version__}.",
        "",
    ]
    outputs.write_csv(out / "ingest.csv", pd.concat([result, others], ignore_index=True))
    outputs.write_text(out / "ingest.md", "\n".join(lines))
    print("\n".join(lines))
    print(f"Wrote {out / 'ingest.csv'} and {out / 'ingest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
