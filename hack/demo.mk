# `make demo`: the whole loop on the local cluster (hack/perennial_hack/demo.py), included
# by the root Makefile. It leaves the cluster, the operator and the local runtime running;
# `make demo-down` stops all three. DEMO_TEARDOWN=1 make demo stops them at the end.
CLUSTER_NAME ?= default
.PHONY: demo demo-down

demo: install k8s-build
	@$(BIN)/python -m perennial_hack.demo --name $(CLUSTER_NAME)

demo-down: install
	@$(BIN)/python -m perennial_hack.demo down --name $(CLUSTER_NAME)
