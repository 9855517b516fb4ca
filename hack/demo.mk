# `make demo`: the whole loop on the local cluster (hack/perennial_hack/demo.py), included
# by the root Makefile: the built images run on a real node (DEMO_RUNTIME=local: through
# the host-process local runtime). It leaves the cluster, the node, the operator and Perennial
# Studio (http://127.0.0.1:8765, STUDIO_PORT=... to change) running; `make demo-down` stops
# them all. DEMO_TEARDOWN=1 make demo stops them at the end.
CLUSTER_NAME ?= default
.PHONY: demo demo-down

demo: install k8s-build images node
	@$(BIN)/python -m perennial_hack.demo --name $(CLUSTER_NAME)

demo-down: install
	@$(BIN)/python -m perennial_hack.demo down --name $(CLUSTER_NAME)
