"""Device profiles (one TOML per device) and deployment files. stdlib only."""
