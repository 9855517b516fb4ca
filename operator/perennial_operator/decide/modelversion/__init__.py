"""ModelVersion: the registry's rules (version numbers, one Production per model)."""
