# tradebot — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help setup binaries cluster-up cluster-down cluster-status test test-unit test-integration lint crds verify-crds clean clean-cache

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: ## install apt packages, the venv and the control-plane binaries (idempotent)
	@hack/setup.sh

binaries: ## build or reuse the control-plane binaries in ~/.cache/tradebot/bin
	@hack/build-binaries.sh

cluster-up: setup ## start a local cluster (kwokctl, binary runtime); prints the kubeconfig path
	@hack/cluster.sh up

cluster-down: ## stop the local cluster and every process it started
	@hack/cluster.sh down

cluster-status: ## show the local cluster's components and nodes
	@hack/cluster.sh status

lint: setup ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup lint ## everything CI runs: lint, unit, integration (starts its own cluster and servers)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: ## fast tests without any server
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup ## tests against the real control plane, PostgreSQL, Redis, Vault
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

clean: cluster-down ## remove local state (.state/)
	rm -rf .state

clean-cache: ## remove cached binaries (next build is cold)
	rm -rf $${TRADEBOT_CACHE:-$$HOME/.cache/tradebot}
