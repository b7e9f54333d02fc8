"""Declarative analyses on ROOT's RDataFrame: YAML -> plan -> one graph -> N-dimensional histograms."""

__version__ = "0.1.0"
