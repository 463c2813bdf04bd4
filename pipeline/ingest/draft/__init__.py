"""`outcomes init`: draft a first configuration from a clinic's exports.

:mod:`.words` holds the names and values recognised in six languages, :mod:`.columns` matches
one column, :mod:`.guess` guesses what one file holds and how it is written, :mod:`.flat`,
:mod:`.wide` and :mod:`.redcap` draft the sources of each layout, :mod:`.events` the adverse
events written as flag columns or one list, and :mod:`.assemble` all of them (pure functions of
the files' cells); :mod:`.render` writes the commented TOML,
:mod:`.files` reads the exports and writes the file (the only module touching the file system)
and :mod:`.preview` shows the first mapped rows of a configuration.
"""
