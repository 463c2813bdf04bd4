"""The reports folder is one run's complete set, locked, owned and checkable (#13.3-5, 13.10).

One small simulated study is run once; its rendered report is then written again and again by
:func:`pipeline.runner.write_report` with a fault injected at every write of the output phase:
an exception (a full disk) in this process, and a kill (``os._exit``) in a forked child.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from command import assert_one_sentence_error, outcomes
from small_study import small_study

from pipeline import outputs, runner
from pipeline.config.settings import load_config

FAULTS: dict[str, int] = {}  # what the fault-injection test measured, for the closing note


class FaultError(OSError):
    def __init__(self) -> None:
        super().__init__(errno.ENOSPC, "No space left on device (injected)")


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    folder = tmp_path_factory.mktemp("output-set")
    config = load_config(small_study(folder, patients=30))
    captured = {}
    real = runner.write_report
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            runner, "write_report", lambda c, r: captured.setdefault("r", r) and real(c, r)
        )
        runner.run(config)
    return config, captured["r"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of the folder by path (the manifest without its creation time)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == outputs.MANIFEST:
                data = json.dumps({**json.loads(data), "created": None}).encode()
            files[path.relative_to(folder).as_posix()] = data
    return files


def beside(folder: Path) -> list[str]:
    """Staging folders, sets moved aside and temporary files beside the folder (not its lock)."""
    hidden = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    return sorted(name for name in hidden if not name.endswith(".lock"))


def two_sets(config, report):
    """An old set (with a PDF) and a new one with other numbers, other HTML and no PDF."""
    old_html = report.html.replace(report.run_id, "0ld0ld0ld0ld0ld0")
    old = replace(report, html=old_html, pdf=b"%PDF-1.7 old", run_id="0ld0ld0ld0ld0ld0")
    tables = dict(report.tables)
    tables["fixed_effects"] = tables["fixed_effects"].assign(estimate=9.999)
    new_html = report.html.replace(report.run_id, "feedfeedfeedfeed")
    new = replace(report, tables=tables, html=new_html, pdf=None, run_id="feedfeedfeedfeed")
    runner.write_report(config, new)
    new_files = snapshot(config.outputs.reports)
    runner.write_report(config, old)
    return old, new, snapshot(config.outputs.reports), new_files


def counting(monkeypatch, fail_at: int | None, action) -> list[int]:
    """Patch every write of the output phase to call ``action`` at the ``fail_at``-th one.

    The points are: each file (tables, HTML, PDF, manifest), the swap, and the moment after
    the swap before the old set is deleted.
    """
    seen = [0]

    def step():
        seen[0] += 1
        if seen[0] == fail_at:
            action()

    real_atomic, real_swap = outputs._atomic, outputs._swap

    def atomic(*args, **kwargs):
        step()
        return real_atomic(*args, **kwargs)

    def swap(*args, **kwargs):
        step()  # before the swap
        real_swap(*args, **kwargs)
        step()  # after it, before the old set is deleted

    monkeypatch.setattr(outputs, "_atomic", atomic)
    monkeypatch.setattr(outputs, "_swap", swap)
    return seen


def test_the_set_is_all_old_or_all_new_after_a_fault_at_any_write(first, monkeypatch):
    config, report = first
    reports = config.outputs.reports
    old, new, old_files, new_files = two_sets(config, report)
    assert (
        old_files != new_files and "outcomes.pdf" in old_files and "outcomes.pdf" not in new_files
    )

    with monkeypatch.context() as patch:
        writes = counting(patch, None, None)
        runner.write_report(config, new)
    total = writes[0]
    # tables, HTML, manifest, the swap and after it, the Word document and its tables
    assert total == len(new.tables) + 4 + 1 + len(new.journal.tables)
    runner.write_report(config, old)

    def fail():
        raise FaultError()

    outcomes_seen = {"old": 0, "new": 0}
    for k in range(1, total + 1):
        if k < total:  # an exception (a full disk) at write k: the old set, nothing beside it
            with monkeypatch.context() as patch:
                counting(patch, k, fail)
                with pytest.raises(FaultError):
                    runner.write_report(config, new)
            assert snapshot(reports) == old_files, k
            assert beside(reports) == [], k

        # a kill at write k: the old or the new set, whole; the next run clears what is left
        pid = os.fork()
        if pid == 0:  # the child writes the new set and dies at write k
            try:
                with monkeypatch.context() as patch:
                    counting(patch, k, lambda: os._exit(137))
                    runner.write_report(config, new)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 137, k
        now = snapshot(reports)
        assert now in (old_files, new_files), k
        outcomes_seen["old" if now == old_files else "new"] += 1
        assert runner.check_output_set(reports) == [], k
        outputs.tidy_output_folder(reports)  # what the next run does first
        assert beside(reports) == [], k
        runner.write_report(config, old)
    FAULTS.update(writes=total, killed=total, **outcomes_seen)
    print(f"\nfault injection: {total} writes killed, {outcomes_seen}")
    assert outcomes_seen == {"old": total - 1, "new": 1}


def test_a_kill_between_the_two_renames_of_the_fallback_swap_is_rolled_back(first, monkeypatch):
    config, report = first
    reports = config.outputs.reports
    _, new, old_files, _ = two_sets(config, report)
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)  # no renameat2 here
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise FaultError()  # stands for a kill: the second rename never happens
        real_rename(src, dst)

    monkeypatch.setattr(outputs.os, "rename", rename)
    with pytest.raises(FaultError):
        runner.write_report(config, new)
    monkeypatch.setattr(outputs.os, "rename", real_rename)
    assert not reports.exists()
    outputs.tidy_output_folder(reports)
    assert snapshot(reports) == old_files and beside(reports) == []


def test_html_tables_and_manifest_share_one_run_id_and_check_verifies_it(first):
    config, report = first
    reports = config.outputs.reports
    runner.write_report(config, report)
    manifest = outputs.read_manifest(reports)
    assert manifest["run_id"] == report.run_id and len(report.run_id) == 16
    assert f"Run {report.run_id}" in (reports / "outcomes.html").read_text()
    assert set(manifest["files"]) == {"outcomes.html", "outcomes.docx"} | {
        f"tables/{name}.csv" for name in report.tables
    } | {f"docx/{name}" for name in report.journal.tables}
    done = outcomes("check", reports)
    assert done.returncode == 0 and "one complete output set" in done.stdout
    # a table from another run beside this HTML is found
    (reports / "tables" / "flow.csv").write_text("step,patients\nenrolled,1\n")
    done = outcomes("check", reports)
    assert done.returncode == 1 and "flow.csv differs from the file of run" in done.stdout
    assert done.stdout.count("\n") == 1
    runner.write_report(config, report)


def test_fit_times_go_to_the_run_log_not_to_the_published_diagnostics(first):
    config, report = first
    published = pd.read_csv(config.outputs.reports / "tables" / "diagnostics.csv")
    assert "fit_seconds" not in published  # machine-dependent: kept in memory and the run log
    log = pd.read_csv(config.outputs.processed / runner.RUN_LOG)
    assert list(log.columns) == ["analysis", "outcome", "status", "fit_seconds"]
    assert len(log) == len(report.tables["diagnostics"]) and (log["fit_seconds"] >= 0).all()


def test_a_second_run_on_the_same_folder_is_one_sentence(first):
    config, _ = first
    with outputs.folder_lock(config.outputs.reports):
        done = outcomes("run", "--config", config.source)
    assert_one_sentence_error(done, "another run is writing to", str(config.outputs.reports))
    with outputs.folder_lock(config.outputs.processed):
        done = outcomes("validate", "--config", config.source)
    assert_one_sentence_error(done, "another run is writing to")


def test_a_folder_holding_files_the_pipeline_did_not_write_is_refused(first, tmp_path):
    config, _ = first
    reports = config.outputs.reports
    mine = reports / "tables" / "my_own_analysis.csv"
    mine.write_text("mine\n")
    before = snapshot(reports)
    done = outcomes("run", "--config", config.source)
    assert_one_sentence_error(done, "my_own_analysis.csv was not written by the pipeline")
    assert snapshot(reports) == before
    mine.unlink()
    # a folder of somebody else's files (no manifest) is refused too
    with pytest.raises(runner.UserError, match="was not written by the pipeline"):
        outputs.check_owned(Path(__file__).parent)
    outputs.check_owned(tmp_path / "new")  # a new folder is fine
