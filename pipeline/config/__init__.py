"""Configuration: one TOML file, loaded once into typed, frozen settings.

:func:`pipeline.config.settings.load_config` reads the file into a
:class:`~pipeline.config.settings.Config`; each section is read by the module named for it:

- :mod:`.toml_values`: the readers of one key's value, whose errors name the file and the key;
- :mod:`.sources`: ``[inputs]``, ``[[sources]]`` and ``[vocabulary]``, the clinic's files;
- :mod:`.source_columns`: a source's time-point groups and adverse-event columns;
- :mod:`.study`: ``[outcomes]``, ``[[comparisons]]``, ``[covariates]``, ``[time]``, ``[mcid]``;
- :mod:`.options`: ``[outputs]``, ``[thresholds]``, ``[model]``, ``[privacy]``, ``[engine]``,
  ``[report]`` and ``[federation]``;
- :mod:`.estimand`: ``[estimand]``; :mod:`.planning`: ``[planning]``;
- :mod:`.instruments` and :mod:`.vocabulary`: the instrument library and the words for yes, no
  and "not recorded".
"""
