"""STATS (no ROOT): the statistical model declared under `model:` -> a plain-data model built from a
run's output files -> a combine datacard with its shapes, a pyhf workspace, and fits with pyhf."""
