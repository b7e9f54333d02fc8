"""Tag and probe: efficiencies from fits of pass/fail mass histograms."""
