"""Pool clinics' share files: the exact one-stage fit and the two-stage meta-analysis.

:func:`check_compatible` refuses files built for another model or by another pipeline version;
:func:`pool_shares` fits every shared trajectory model from the summed sufficient statistics
(:func:`pipeline.lmm.sufficient.fit_sufficient`), with each site as a fixed clinic effect when
the specification says so, and returns tidy tables; :func:`two_stage` meta-analyses the
clinics' own fits (:mod:`pipeline.federate.meta`).

Clinic indicators and empty columns are handled by :mod:`pipeline.federate.design`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.federate.design import CLINIC, combine_sites
from pipeline.federate.meta import random_effects_meta
from pipeline.federate.schema import site_statistics
from pipeline.federate.share import estimand_vectors
from pipeline.federate.spec import pipeline_version
from pipeline.lmm.sufficient import SufficientFit, fit_sufficient

__all__ = [
    "CLINIC",
    "PooledModel",
    "check_compatible",
    "pool_shares",
    "two_stage",
]


class IncompatibleSharesError(UserError):
    """Share files built for different models or by different pipeline versions."""


@dataclass(frozen=True)
class PooledModel:
    """One trajectory model fitted exactly from the pooled statistics.

    Attributes
    ----------
    outcome, group : str
        Instrument and group of the model.
    formula : str
        Fixed effects of the pooled model (with the clinic term).
    fit : SufficientFit
        The fit.
    estimands : pandas.DataFrame
        Headline estimands: ``estimand, label, estimate, std_err, df, statistic, p_value,
        ci_low, ci_high``.
    dropped_columns : tuple of str
        Design columns left out because they are zero in every clinic.
    sites : tuple of str
        Clinics (sites) pooled, reference first.
    """

    outcome: str
    group: str
    formula: str
    fit: SufficientFit
    estimands: pd.DataFrame
    dropped_columns: tuple[str, ...]
    sites: tuple[str, ...]


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """Dotted key of the first difference between two JSON values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{prefix}{key}"
            found = _first_difference(a[key], b[key], f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else prefix.rstrip(".")


def _lookup(spec: dict[str, Any], dotted: str) -> Any:
    value: Any = spec
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def check_compatible(shares: Sequence[tuple[Path, dict[str, Any]]]) -> None:
    """Refuse share files that differ in pipeline version or model specification.

    Parameters
    ----------
    shares : sequence of (Path, dict)
        Files as read by :func:`pipeline.federate.schema.read_share`.

    Raises
    ------
    IncompatibleSharesError
        One sentence naming the two files and what differs.
    """
    if not shares:
        raise IncompatibleSharesError("no share file given.")
    first_path, first = shares[0]
    here = pipeline_version()
    for path, share in shares:
        if share["pipeline_version"] != here:
            raise IncompatibleSharesError(
                f"{path} was written by pipeline version {share['pipeline_version']}, but this "
                f"is version {here}: every clinic must share with the same version."
            )
    for path, share in shares[1:]:
        if share["specification_hash"] != first["specification_hash"]:
            key = _first_difference(share["specification"], first["specification"])
            if key is None:
                raise IncompatibleSharesError(
                    f"{path} and {first_path} carry different specification hashes for the "
                    "same specification: a file was edited by hand."
                )
            raise IncompatibleSharesError(
                f"{path} was built for a different model than {first_path}: its "
                f"specification has {key} = {_lookup(share['specification'], key)!r}, not "
                f"{_lookup(first['specification'], key)!r}."
            )
    seen: dict[str, Path] = {}
    for path, share in shares:
        for site in share["models"][0]["sites"] if share["models"] else []:
            name = site["site"]
            if name in seen:
                raise IncompatibleSharesError(
                    f"{path} and {seen[name]} both hold the clinic (site) {name!r}: each clinic "
                    "must be shared once."
                )
            seen[name] = path


def _pool_model(
    models: Sequence[dict[str, Any]], spec: dict[str, Any], clinic_effect: str
) -> PooledModel:
    head = models[0]
    columns = list(head["fixed_effects"])
    random = list(head["random_effects"])
    p, q = len(columns), len(random)
    blocks = [(site["site"], site_statistics(site, p, q)) for m in models for site in m["sites"]]
    random_clinic = clinic_effect == "random"
    design = combine_sites(blocks, columns, clinic_effect == "fixed", random=random_clinic)
    if random_clinic and len(design.sites) < 2:
        raise UserError("a clinic random intercept needs share files from at least 2 clinics.")
    if design.rank_deficient:
        raise UserError(
            f"The pooled {head['outcome']} model cannot be estimated: design column(s) "
            f"{', '.join(design.rank_deficient)} are combinations of the others in the pooled "
            "data (e.g. a group that only one clinic has)."
        )
    fit = fit_sufficient(
        design.stats,
        design.columns,
        "patient",
        random,
        reml=True,
        df_method=spec["df_method"],
        site=CLINIC if random_clinic else None,
    )
    names = design.columns
    vectors = estimand_vectors(names, spec, head["group"])
    if vectors:
        table = fit.contrast(np.array([v for _, _, v in vectors]), [lab for _, lab, _ in vectors])
        table.insert(0, "estimand", [key for key, _, _ in vectors])
        table = table.rename(columns={"term": "label"})
    else:
        table = pd.DataFrame(columns=["estimand", "label", "estimate", "std_err", "df"])
    rhs = head["formula"].split("~", 1)[1].strip()
    if clinic_effect == "fixed" and len(design.sites) > 1:
        rhs += f" + {CLINIC}"
    if random_clinic:
        rhs += f" + (1 | {CLINIC})"
    return PooledModel(
        outcome=head["outcome"],
        group=head["group"],
        formula=f"{head['response']} ~ {rhs}",
        fit=fit,
        estimands=table,
        dropped_columns=design.dropped,
        sites=design.sites,
    )


def pool_shares(shares: Sequence[tuple[Path, dict[str, Any]]]) -> list[PooledModel]:
    """Fit every shared model exactly from the pooled statistics of all files.

    Parameters
    ----------
    shares : sequence of (Path, dict)
        Checked, compatible share files.

    Returns
    -------
    list of PooledModel
        One per model of the specification (outcome x group), in file order.
    """
    check_compatible(shares)
    spec = shares[0][1]["specification"]
    out = []
    for m in range(len(shares[0][1]["models"])):
        models = [share["models"][m] for _, share in shares]
        out.append(_pool_model(models, spec, spec["clinic_effect"]))
    return out


def two_stage(shares: Sequence[tuple[Path, dict[str, Any]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Meta-analyse the clinics' own fits of every headline estimand.

    Parameters
    ----------
    shares : sequence of (Path, dict)
        Checked, compatible share files.

    Returns
    -------
    clinics : pandas.DataFrame
        One row per clinic, model and estimand: ``outcome, group, estimand, label, clinic,
        status, message, estimate, std_err, df, n_patients, n_obs`` (a clinic whose own model
        is not estimable has NaN estimates, its status and the reason).
    meta : pandas.DataFrame
        One row per model and estimand: ``outcome, group, estimand, label, k, estimate,
        std_err, df, ci_low, ci_high, p_value, tau2, i2, q, q_p_value, pi_low, pi_high``
        (NaN with fewer than 2 estimable clinics).
    """
    rows = []
    for _, share in shares:
        for model in share["models"]:
            fit = model["clinic_fit"]
            base = {
                "outcome": model["outcome"],
                "group": model["group"],
                "clinic": share["clinic"],
                "status": fit["status"],
                "message": fit.get("message", ""),
                "n_patients": fit["n_patients"],
                "n_obs": fit["n_obs"],
            }
            for e in fit["estimands"]:
                rows.append(
                    {
                        **base,
                        "estimand": e["estimand"],
                        "label": e["label"],
                        "estimate": e["estimate"],
                        "std_err": e["std_err"],
                        "df": np.inf if e["df"] is None else e["df"],
                    }
                )
    missing = []
    for _, share in shares:
        for model in share["models"]:
            fit = model["clinic_fit"]
            if fit["status"] == "ok":
                continue
            for r in rows:  # the estimands the other clinics report for this model
                key = (r["outcome"], r["group"], r["estimand"])
                if (r["outcome"], r["group"]) == (model["outcome"], model["group"]) and key not in {
                    (m["outcome"], m["group"], m["estimand"])
                    for m in missing
                    if m["clinic"] == share["clinic"]
                }:
                    missing.append(
                        {
                            **{k: r[k] for k in ("outcome", "group", "estimand", "label")},
                            "clinic": share["clinic"],
                            "status": fit["status"],
                            "message": fit.get("message", ""),
                            "estimate": np.nan,
                            "std_err": np.nan,
                            "df": np.nan,
                            "n_patients": fit["n_patients"],
                            "n_obs": fit["n_obs"],
                        }
                    )
    rows += missing
    clinics = pd.DataFrame(
        rows,
        columns=[
            "outcome",
            "group",
            "estimand",
            "label",
            "clinic",
            "status",
            "message",
            "estimate",
            "std_err",
            "df",
            "n_patients",
            "n_obs",
        ],
    )
    meta_rows = []
    estimable = clinics.loc[clinics["status"] == "ok"]
    for (outcome, group, estimand), block in estimable.groupby(
        ["outcome", "group", "estimand"], sort=False
    ):
        base = {
            "outcome": outcome,
            "group": group,
            "estimand": estimand,
            "label": block["label"].iloc[0],
            "k": len(block),
        }
        if len(block) >= 2:
            r = random_effects_meta(block["estimate"], block["std_err"])
            base.update({f: getattr(r, f) for f in _META_FIELDS})
        meta_rows.append(base)
    columns = ["outcome", "group", "estimand", "label", "k", *_META_FIELDS]
    meta = pd.DataFrame(meta_rows, columns=columns)
    return clinics, meta


_META_FIELDS = (
    "estimate",
    "std_err",
    "df",
    "ci_low",
    "ci_high",
    "p_value",
    "tau2",
    "i2",
    "q",
    "q_p_value",
    "pi_low",
    "pi_high",
)
