"""The `perennial` CLI: validate manifests offline, inspect and act on models in a cluster."""
