"""The faces of the framework: the `run-analysis` command line, the notebook API."""
