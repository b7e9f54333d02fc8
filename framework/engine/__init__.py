"""Build and run stages: `Plan` -> one RDataFrame graph per dataset in a C++ session -> filled histograms."""
