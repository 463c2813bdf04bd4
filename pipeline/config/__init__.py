"""Configuration: one TOML file, loaded once into typed, frozen settings (:mod:`.settings`)."""
