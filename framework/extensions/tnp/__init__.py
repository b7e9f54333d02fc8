"""Tag and probe: efficiencies from fits of pass/fail mass histograms (the `tnp:` key).

extension.py (the extension: hooks), schema.py (the `tnp:` section), config.py (the section
as defines, a histogram and the header tnp.hxx), measure.py (efficiencies and scale factors
after the run), fitting.py (fits and counts), likelihood.py and shapes.py (the fit model),
outputs.py and plots.py (what is written).
"""
