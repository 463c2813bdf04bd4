"""A small simulated study (not the demo) written as raw CSVs with a configuration around it."""

from __future__ import annotations

from pathlib import Path

from factories import write_config

from pipeline.demo.simulate import simulate_study, write_raw_tables


def small_study(folder: Path, patients: int = 30, seed: int = 7, **sections: str) -> Path:
    """Write a simulated study of ``patients`` and its ``analysis.toml`` in ``folder``.

    The configuration uses the demo pseudonym key and no PDF unless ``sections`` say otherwise
    (``privacy=...``, ``report=...``, ``engine=...`` give a section's body).
    """
    inputs = write_raw_tables(simulate_study(patients, seed), folder / "raw")
    sections.setdefault("privacy", "demo_key = true")
    sections.setdefault("report", "pdf = false")
    return write_config(folder, dict(inputs), **sections)
