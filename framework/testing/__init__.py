"""The event generator behind the demo and the tests (`generate:` samples)."""
