# Container images and the real node (hack/perennial_hack/images/, node/): included by the
# root Makefile.
#   make node-deps   the Debian packages they need (apt-get, only when one is missing)
#   make images      build perennial/runtime and perennial/operator with buildah from their
#                    Dockerfiles into ~/.cache/perennial/images/ (a no-op when up to date)
#   make node        build the kubelet and the pause image into ~/.cache/perennial/node/
#   make node-up     a real node for the running local cluster (make cluster-up), images loaded
#   make node-down   stop it
NODE_APT := buildah mmdebstrap containerd runc containernetworking-plugins iproute2 iptables \
	gcc libc6-dev
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: node-deps images node node-up node-down

node-deps:
	@missing=$$(for p in $(NODE_APT); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	  | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> apt-get install" $$missing; \
	  $(APT_GET) update -qq && \
	  $(APT_GET) install -y -qq -o DPkg::Lock::Timeout=600 $$missing >/dev/null; \
	fi

images: install node-deps
	$(BIN)/python -m perennial_hack.images build

node: install node-deps k8s-build
	$(BIN)/python -m perennial_hack.node build

node-up: install node images
	$(BIN)/python -m perennial_hack.node up --name $(CLUSTER_NAME)

node-down: install
	$(BIN)/python -m perennial_hack.node down --name $(CLUSTER_NAME)
