"""The import graph follows the stages of the pipeline: no cycle, no import against the order.

Every ``import`` of every module of ``pipeline`` is read with :mod:`ast` (including imports
inside functions, which run later but still tie the modules together). A sub-package may import
only sub-packages of a lower stage; the engine (``pipeline.lmm``) imports nothing from the rest
of the pipeline, so it can be used, tested and cached on its own.

Stage order (lowest first). ``schemas`` sits below ``config``: the configuration checks source
mappings against the raw-table contract, and the contracts need no setting.

    errors, outputs -> schemas -> config -> privacy -> ingest -> validate -> derive
    -> processed -> analyses (on lmm) -> describe -> figures -> report -> explore, demo
    -> runner, api -> cli

Inside ``pipeline.config`` the modules are layered the same way (:data:`CONFIG_LAYERS`): the
readers of TOML values and the constant tables at the bottom, the sections of the file above
them, :mod:`pipeline.config.settings` (``load_config``) on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline"
STAGES = {
    "errors": -1,
    "outputs": 0,
    "schemas": 1,
    "config": 2,
    "privacy": 3,
    "ingest": 4,
    "validate": 5,
    "derive": 6,
    "processed": 6.5,  # the processed folder: reads, validates, writes (derive's time zero)
    "analyses": 7,
    "describe": 8,
    "figures": 9,
    "report": 10,
    "explore": 11,
    "demo": 11,
    "planning": 11,  # the next study: simulates the analyses, words them like the report
    "federate": 11,  # a network of clinics: shares and pools the analyses, its own report
    "scale": 11,  # registry scale: validates, derives and fits over partitions (Polars, Dask)
    "runner": 12,
    "api": 12,
    "cli": 13,
}
ENGINE = "lmm"
CONFIG_LAYERS = {
    "instruments": 0,  # the instrument library
    "vocabulary": 0,  # the words for yes, no and "not recorded"
    "toml_values": 0,  # the readers of TOML values every section uses
    "source_columns": 1,
    "study": 1,
    "sources": 2,
    "options": 2,
    "estimand": 2,
    "planning": 2,
    "settings": 3,  # Config and load_config
}
"""Modules of ``pipeline.config``: each imports only modules of a lower layer of the package."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every pipeline module imported by a file, with the line, wherever the import sits."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(f"{base}.{a.name}", node.lineno) for a in node.names]
            found.append((base, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == "pipeline"]


def _unit(module: str) -> str | None:
    """The sub-package (or top-level module) of ``pipeline`` a dotted name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _edges() -> list[tuple[str, str, str]]:
    """``(from unit, to unit, where)`` for every import between different sub-packages."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        for name, line in _imports(path):
            target = _unit(name)
            if source and target and target != source:
                where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
                edges.append((source, target, where))
    return edges


def test_every_sub_package_has_a_stage():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")} - {None}
    assert units - {ENGINE} == set(STAGES), "add the new sub-package to STAGES"


def test_the_engine_imports_nothing_from_the_pipeline():
    wrong = [where for source, _, where in _edges() if source == ENGINE]
    assert wrong == []


def test_no_import_goes_against_the_stage_order():
    wrong = [
        where
        for source, target, where in _edges()
        if source != ENGINE and target != ENGINE and STAGES[target] >= STAGES[source]
    ]
    assert wrong == []


def test_the_sub_packages_form_no_cycle():
    graph: dict[str, set[str]] = {}
    for source, target, _ in _edges():
        graph.setdefault(source, set()).add(target)
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_checks_see_an_import_against_the_order(tmp_path):
    """The parser finds imports inside functions and relative imports (so the test can fail)."""
    source = tmp_path / "pipeline" / "derive" / "late.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "def f():\n    from pipeline.report import content\n    from ..analyses import run\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "pipeline"
    try:
        names = [name for name, _ in _imports(source)]
    finally:
        PACKAGE = saved
    assert "pipeline.report.content" in names
    assert "pipeline.analyses.run" in names


def _config_module(name: str) -> str | None:
    """The module of ``pipeline.config`` a dotted name is in (None: elsewhere, or the package)."""
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["pipeline", "config"] else None


def test_every_config_module_has_a_layer():
    modules = {p.stem for p in (PACKAGE / "config").glob("*.py")} - {"__init__"}
    assert modules == set(CONFIG_LAYERS), "add the new module of pipeline.config to CONFIG_LAYERS"


def test_config_modules_import_only_lower_layers():
    wrong = []
    for path in sorted((PACKAGE / "config").glob("*.py")):
        if path.stem == "__init__":
            continue
        for name, line in _imports(path):
            target = _config_module(name)
            if target and target != path.stem and CONFIG_LAYERS[target] >= CONFIG_LAYERS[path.stem]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert wrong == []
