"""needling-outcomes: the dry-needling outcomes pipeline.

Importing the pipeline makes the C library's allocator pyarrow's default memory pool, unless
``ARROW_DEFAULT_MEMORY_POOL`` names one (``mimalloc``, ``jemalloc``, ``system``). With
pyarrow's own default (mimalloc), a fresh Python reading and validating a study spent markedly
more system time on our 2-core machine: ``benchmarks/ingest.py`` times both
(``reports/benchmarks/ingest.md``).
"""

import os

import pyarrow

if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
