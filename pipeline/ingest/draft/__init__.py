"""`outcomes init`: draft a first configuration from a clinic's exports.

:mod:`.words` holds the names and values recognised in six languages, :mod:`.columns` matches
one column, :mod:`.guess` drafts the sources (pure functions of the files' cells), :mod:`.render`
writes the commented TOML and :mod:`.files` reads the exports and writes the file (the only
module touching the file system).
"""
