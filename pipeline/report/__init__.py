"""Reporting: the run's published tables and figures rendered as HTML and PDF.

:mod:`.content` words and lays out the tables, :mod:`.figures` draws the report's figures,
:mod:`.html` renders the template, :mod:`.pdf` prints it, :mod:`.provenance` describes the
run, and :mod:`.table_check` compares regenerated tables with committed ones.
"""
