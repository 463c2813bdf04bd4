"""needling-outcomes: the dry-needling outcomes pipeline.

Importing the pipeline makes the C library's allocator pyarrow's default memory pool, unless
``ARROW_DEFAULT_MEMORY_POOL`` names one (``mimalloc``, ``jemalloc``, ``system``). With
pyarrow's own default (mimalloc) on our 2-core machine, a fresh Python reading and validating a
million assessment rows spent 0.3 to 0.4 s more, all of it in system time
(``benchmarks/ingest.py``).
"""

import os

import pyarrow

if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
