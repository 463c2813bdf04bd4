"""Ingestion: the clinic's files read as text exactly as written.

:mod:`.readers` reads one file, :mod:`.typed_reader` is the fast route for canonical files,
:mod:`.adapters` turns each layout into the canonical raw tables, :mod:`.combine` joins every
configured source, and :mod:`.raw_tables` defines the raw table and reads the ``[inputs]``.
"""
