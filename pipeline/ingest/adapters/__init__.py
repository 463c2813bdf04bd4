"""Source adapters: the clinic's own files in, the three canonical raw tables out.

Each kind of source a clinic may hold is one small module that turns the files into
:class:`~pipeline.ingest.raw_tables.RawTable` frames of text, before validation runs:

``readers``
    Reading one file (CSV in any dialect or encoding, or an Excel sheet) into a frame of text
    cells with their line numbers.
``mapping``
    What the sources share: renaming the clinic's columns, code lists, units, decimal commas,
    date formats and patient identifiers.
``canonical``, ``visit_sheet``, ``wide``, ``redcap``
    One adapter per layout (see ``docs/ingestion.md``).
``combine``
    Runs the adapters named in the configuration and joins their pieces into one raw table per
    canonical table, keeping the file and line every row came from.

Nothing here decides whether a row is valid: :mod:`pipeline.validate.study` stays the one place for
row rules. This package has no import-time side effects.
"""
