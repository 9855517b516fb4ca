"""The local control plane: build Kubernetes components from Go modules, start and stop them."""
