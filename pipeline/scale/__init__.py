"""Registry scale: the pipeline on Polars (out of core, one machine) or Dask (a cluster).

``[engine] backend = "polars" | "dask"`` (docs/scale.md). :mod:`partition` splits the raw
tables by patient hash with Polars' streaming engine; :mod:`tables` validates and derives each
partition with the pipeline's own functions and adds up what they report; :mod:`model` fits the
headline trajectory models over the partitions (sums per evaluation, optimiser on the driver);
:mod:`cluster` runs the partitions in this process or on a Dask cluster; :mod:`run` is the
orchestrator.
"""
