# Perennial: the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)

.PHONY: install test test-unit test-integration lint demo clean help browser

help:
	@echo "make demo   - the whole loop on a local cluster"
	@echo "make test   - the whole test suite (unit, integration, e2e)"
	@echo "make lint   - ruff, mypy, import-linter"
	@echo "make install - create .venv with everything the tests and the demo need"
	@echo "make images - build the runtime and operator images (buildah)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[operator,runtime,studio,cli,dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The e2e tests run pods of the built images on a real node: both are built first.
test: install k8s-build images node browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-integration: install k8s-build images node browser
	$(BIN)/python -m pytest -m 'integration or e2e' $(PYTEST_ARGS)

# Debian's headless Chromium and its chromedriver, for the Studio's browser tests
# (tests/e2e/test_studio_browser.py). Installed once; Selenium is pointed at these binaries.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
	  echo "installing chromium and chromium-driver (apt)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver fonts-dejavu-core >/dev/null; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The local control plane (hack/): k8s-build, cluster-up, cluster-down.
-include hack/cluster.mk
# Images (buildah) and the real node (kubelet, containerd): images, node, node-deps.
-include hack/node.mk
# The demo loop lives with the cluster tooling.
-include hack/demo.mk
