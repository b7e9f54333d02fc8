"""Plan stage: config + inputs + selection -> a frozen `Plan`, plain data, no ROOT."""
