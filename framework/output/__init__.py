"""Write stage: filled histograms -> versioned output files; merging batch parts."""
