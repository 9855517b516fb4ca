# The local control plane (hack/): included by the root Makefile.
#   make k8s-build     build kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
#                      etcd and kwok into ~/.cache/perennial/k8s/, and fake-gcs-server (the
#                      gs:// tests' emulator) into ~/.cache/perennial/fake-gcs-server/
#                      (a no-op when cached)
#   make cluster-up    start it; prints `export KUBECONFIG=...` last
#   make cluster-down  stop it
CLUSTER_NAME ?= default

.PHONY: k8s-build cluster-up cluster-down cluster-status

k8s-build: install
	$(BIN)/perennial-cluster build

cluster-up: install k8s-build
	@$(BIN)/perennial-cluster up --name $(CLUSTER_NAME)

cluster-down: install
	$(BIN)/perennial-cluster down --name $(CLUSTER_NAME)

cluster-status: install
	@$(BIN)/perennial-cluster status --name $(CLUSTER_NAME)
