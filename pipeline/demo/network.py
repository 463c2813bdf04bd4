"""Split a study into a network of clinics, each with its own raw files and configuration.

``python -m pipeline.demo.network OUT`` writes ``OUT/<clinic>/`` for every site of the demo
(``data/raw/demo``): the clinic's own ``patients.csv``, ``sessions.csv`` and ``assessments.csv``
(its patients' rows only, exactly as written in the demo files) and an ``analysis.toml`` with
the demo's settings and ``[federation]`` section. Each folder is then what one clinic of a
network holds: ``outcomes share --config OUT/<clinic>/analysis.toml --out <clinic>.share``
(docs/federation.md; ``make federation-demo`` runs the whole round).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

__all__ = ["split_by_site"]

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("patients", "sessions", "assessments")


def _slug(site: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", site.lower()).strip("-") or "clinic"


def split_by_site(
    raw: Path, out: Path, config_text: str, sites: list[str] | None = None
) -> dict[str, Path]:
    """Write each site's raw files and configuration into its own folder.

    Parameters
    ----------
    raw : Path
        Folder with the canonical ``patients.csv``, ``sessions.csv``, ``assessments.csv``.
    out : Path
        Where the clinic folders go.
    config_text : str
        Configuration sections after ``[inputs]`` (outputs, mcid, model, federation, ...);
        relative paths in it are relative to each clinic's folder.
    sites : list of str, optional
        Sites to write (default every site of ``patients.csv``).

    Returns
    -------
    dict of str to Path
        Site -> its ``analysis.toml``.
    """
    tables = {
        name: pd.read_csv(raw / f"{name}.csv", dtype=str, keep_default_na=False) for name in TABLES
    }
    patients = tables["patients"]
    configs = {}
    for site in sites or sorted(set(patients["site"]) - {""}):
        place = out / _slug(site)
        place.mkdir(parents=True, exist_ok=True)
        ids = set(patients.loc[patients["site"] == site, "patient_id"])
        for name, table in tables.items():
            table.loc[table["patient_id"].isin(ids)].to_csv(place / f"{name}.csv", index=False)
        inputs = "".join(f'{name} = "{name}.csv"\n' for name in TABLES)
        path = place / "analysis.toml"
        path.write_text(
            f"# {site}: one clinic of the demo network (pipeline/demo/network.py)\n"
            f"[inputs]\n{inputs}\n{config_text}",
            encoding="utf-8",
        )
        configs[site] = path
    return configs


def _demo_config_text() -> str:
    """Return the demo configuration without its ``[inputs]`` section."""
    text = (ROOT / "analysis.toml").read_text(encoding="utf-8")
    return re.sub(r"\[inputs\]\n(?:[^\[\n].*\n|\n)*", "", text, count=1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pipeline.demo.network OUT")
    written = split_by_site(ROOT / "data/raw/demo", Path(sys.argv[1]), _demo_config_text())
    for site, path in written.items():
        print(f"{site}: {path}")
