"""Integration tests run against the real local control plane.

The `cluster`, `namespace` and `core` fixtures live in tests/support/cluster_fixtures.py and
are registered by tests/conftest.py (shared with e2e). Set PERENNIAL_TEST_KUBECONFIG to use
an existing cluster instead of starting one; the ambient KUBECONFIG is never used.
"""
