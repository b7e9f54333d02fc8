"""The configuration language, version 1: the single source of truth.

Structure only (types, allowed keys, local rules), one module per part of a config. Meaning
(unknown columns, cycles, cross-references) is checked in `framework.config.checks` and
`framework.plan`. The JSON Schema shipped beside this file is generated from these models
(`analysis.py`: `AnalysisSpec`, the whole config).
"""
