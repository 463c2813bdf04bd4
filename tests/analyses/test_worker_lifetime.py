"""Workers die with their parent; signals end in one sentence; a killed worker is named (#13.2).

Each test starts ``outcomes run`` on a small simulated study in its own session, waits until it
is fitting models, and acts on it. Every process of that session is a pipeline process, so the
session's members left after the parent is gone are orphans.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from small_study import small_study

from pipeline.analyses import workers

ROOT = Path(__file__).resolve().parents[2]


def session_members(sid: int) -> list[int]:
    """Pids of the live (not zombie) processes of session ``sid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            members.append(int(entry.name))
    return members


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def start_fitting(config: Path) -> subprocess.Popen:
    """Start ``outcomes run`` in a new session; return once it is fitting with its workers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the run ended before fitting: {process.stderr.read()}")
        if len(children(process.pid)) >= 2:
            return process
        time.sleep(0.05)
    process.kill()
    pytest.fail("the run did not start its workers within 240 s")


def orphans_after(sid: int, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = session_members(sid)
        if not left:
            return []
        time.sleep(0.1)
    return session_members(sid)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return small_study(tmp_path_factory.mktemp("workers"), patients=30, engine="workers = 2")


def test_workers_die_with_a_parent_killed_at_random_points(study):
    rng = random.Random(13)
    orphans = []
    for sig in (signal.SIGKILL, signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
        process = start_fitting(study)
        time.sleep(rng.uniform(0.0, 2.0))
        os.kill(process.pid, sig)
        _, err = process.communicate(timeout=120)
        orphans += orphans_after(process.pid)
        if sig == signal.SIGKILL:
            assert process.returncode == -signal.SIGKILL
            continue
        assert process.returncode == 128 + sig, err
        lines = [line for line in err.splitlines() if not line.startswith("  fitting model")]
        assert "Traceback" not in err
        assert len(lines) == 1 and lines[0].startswith(f"stopped by {signal.Signals(sig).name}")
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert orphans == [], f"{len(orphans)} worker(s) outlived their parent"


def test_a_worker_killed_for_memory_is_one_sentence_naming_the_model(study):
    process = start_fitting(study)
    for pid in children(process.pid):
        os.kill(pid, signal.SIGKILL)  # what the out-of-memory killer does
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    lines = [line for line in err.splitlines() if not line.startswith("  fitting model")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert "was killed from outside" in lines[0] and "[engine] workers" in lines[0]
    assert "(nrs)" in lines[0] or "(vas)" in lines[0] or "(odi)" in lines[0]
    assert orphans_after(process.pid) == []


def test_a_worker_whose_parent_vanished_exits_on_its_own():
    # the watchdog: a worker started for a parent that is already gone exits at once
    script = (
        "import os, sys; from pipeline.analyses import workers;"
        "workers._die_with_parent(os.getppid() + 1_000_000); print('still alive')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 1 and "still alive" not in done.stdout
    assert workers.WATCH_SECONDS <= 1


PARTIAL_MESSAGE = """
import os, signal, struct, sys
from concurrent.futures.process import BrokenProcessPool
from pipeline.analyses import workers


def die_mid_message():
    # what a worker killed while sending a large result leaves in the pool's result pipe: the
    # header of a message whose bytes never come
    frame = sys._getframe(1)
    while "result_queue" not in frame.f_locals:
        frame = frame.f_back
    frame.f_locals["result_queue"]._writer._send(struct.pack("!i", 1 << 20))
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    pool = workers.worker_pool(1)
    future = pool.submit(die_mid_message)
    manager = pool._executor_manager_thread
    try:
        workers.wait_settled(pool, [future])
    except BrokenProcessPool:
        print("broken")
    workers.kill_workers(pool)
    print("manager alive" if manager.is_alive() else "manager ended")
"""


def test_a_worker_killed_while_sending_its_result_breaks_the_pool(tmp_path):
    # The pool's own manager thread would wait for the rest of the message for ever (the hang
    # this test was written for); wait_settled notices the dead worker and the teardown ends
    # the manager thread, so the process exits.
    script = tmp_path / "partial.py"
    script.write_text(PARTIAL_MESSAGE)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["broken", "manager", "ended"], done.stdout + done.stderr


def test_waiting_for_no_futures_returns_at_once():
    from concurrent.futures import ALL_COMPLETED

    pool = workers.worker_pool(1)
    try:
        assert workers.wait_settled(pool, []) == set()
        assert workers.wait_settled(pool, [], ALL_COMPLETED) == set()
    finally:
        pool.shutdown()
