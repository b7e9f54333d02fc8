"""Optional parts a config switches on by a top-level key (tag and probe)."""
