"""Privacy of what the pipeline writes.

Pseudonyms and days since time zero in processed data (:mod:`.pseudonyms`); disclosure control
of published tables and figures: the counts and their links (:mod:`.cells`), the exact integer
audit (:mod:`.audit`), suppression for the publication audience (:mod:`.suppression`), the
individual-trajectory panel (:mod:`.panel`) and what the report says about it (:mod:`.wording`).
"""
