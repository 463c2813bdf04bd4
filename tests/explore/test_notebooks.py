"""The exploration notebooks: paired with their text files, committed clean, and run.

Every notebook in ``notebooks/`` is executed top to bottom on the demo data with nbclient (the
``python3`` kernel of this interpreter, working directory ``notebooks/``), so a change to the
package that breaks a notebook fails the suite.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import pytest
from factories import DEMO, write_config, write_study
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
EXPECTED = ["01-data-quality", "02-trajectories", "03-models", "04-twitch-and-depth"]
CONFIG_CELL = 'CONFIG = "../analysis.toml"'
CELL_TIMEOUT = 120  # seconds for any one cell before the run is declared hung
BUDGET = 60.0  # seconds for a whole notebook on the demo data (issue 6)


def _cells(path: Path) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in jupytext.read(path).cells]


def _run(nb: nbformat.NotebookNode) -> float:
    """Execute in place in notebooks/ with the python3 kernel; return the seconds taken."""
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    started = time.perf_counter()
    client.execute()
    return time.perf_counter() - started


def _output_text(nb: nbformat.NotebookNode) -> str:
    """Every text output of the executed notebook (streams, reprs, HTML, errors)."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            data = output.get("data", {})
            parts += [str(data[k]) for k in ("text/plain", "text/html") if k in data]
            parts += output.get("traceback", [])
    return "\n".join(parts)


def _images(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


@pytest.fixture(scope="module")
def demo_patient_ids() -> set[str]:
    """Every patient identifier written in the demo files, valid or quarantined."""
    ids: set[str] = set()
    for name in ("patients", "sessions", "assessments"):
        frame = pd.read_csv(DEMO / f"{name}.csv", dtype=str, keep_default_na=False)
        ids |= {v for v in frame["patient_id"] if v}
    return ids


def test_the_four_notebooks_are_there_each_with_its_text_pair():
    assert NAMES == EXPECTED
    assert sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]-*.py")) == EXPECTED
    config = (NOTEBOOKS / "jupytext.toml").read_text(encoding="utf-8")
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("name", EXPECTED)
def test_ipynb_and_py_percent_are_in_sync(name):
    text = NOTEBOOKS / f"{name}.py"
    assert text.read_text(encoding="utf-8").count("# %%") > 0, "not in py:percent format"
    assert _cells(NOTEBOOKS / f"{name}.ipynb") == _cells(text), (
        f"{name}.ipynb and {name}.py differ: run `jupytext --sync notebooks/{name}.py`"
    )


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"cells {dirty} of {name}.ipynb carry outputs: "
        f"`jupyter nbconvert --clear-output --inplace notebooks/{name}.ipynb`"
    )
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_conventions(name):
    cells = _cells(NOTEBOOKS / f"{name}.ipynb")
    kind, first = cells[0]
    assert kind == "markdown" and first.startswith("# ") and "**Question.**" in first
    code = [source for kind, source in cells if kind == "code"]
    assert code[0] == CONFIG_CELL, "the first code cell sets CONFIG and nothing else"
    assert not any(re.search(r"^\s*(def|class) ", s, re.MULTILINE) for s in code), (
        "reusable code belongs in the pipeline package"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_on_the_demo_data(name, demo_patient_ids):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    seconds = _run(nb)
    assert seconds < BUDGET, f"{name} took {seconds:.0f} s, over the {BUDGET:.0f} s budget"
    text = _output_text(nb)
    shown = sorted(i for i in demo_patient_ids if re.search(rf"\b{re.escape(i)}\b", text))
    assert not shown, f"{name} shows patient identifiers ({len(shown)})"
    assert _images(nb) > 0, "figures are not displayed inline"


@pytest.mark.slow
def test_changing_config_points_a_notebook_at_other_data(tmp_path):
    inputs = write_study(tmp_path / "raw")
    config = write_config(tmp_path, inputs)
    nb = nbformat.read(NOTEBOOKS / "01-data-quality.ipynb", as_version=4)
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    first_code.source = f"CONFIG = {str(config)!r}"
    _run(nb)
    overview = next(
        output["data"]["text/plain"]
        for cell in nb.cells
        if "explore.overview" in cell.source
        for output in cell.outputs
        if "data" in output
    )
    # the three-patient study of tests/factories.py, not the 240 demo patients
    assert re.search(r"valid patients\s+3\b", overview)
