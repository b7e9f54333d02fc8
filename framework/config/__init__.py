"""Load stage: YAML files -> a checked `LoadedConfig` (the models, every key's file and line)."""
